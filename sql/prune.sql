--
-- prune: dms_prune_history(older_than), the history's one way out besides
-- TRUNCATE.  It removes the history rows of jobs deleted or completed more
-- than older_than ago, and nothing else; returns how many; and leaves a
-- history row (job id 0) saying so.  Only the extension's owner, or a role
-- it grants EXECUTE, may call it.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
\i sql/try.inc
CREATE EXTENSION dms_lifecycle;

-- Four jobs: one completed, one deleted, one running, one deleted and
-- created again under the same name (a new job, with a new id).
SELECT dms_create_job('completed', 'one_time') AS completed \gset
SELECT dms_start(:completed), dms_report(:completed, 'started'), dms_report(:completed, 'dump_completed');
SELECT dms_create_job('deleted') AS deleted \gset
SELECT dms_delete(:deleted);
SELECT dms_create_job('running') AS running \gset
SELECT dms_start(:running), dms_report(:running, 'started');
SELECT dms_create_job('again') AS again_old \gset
SELECT dms_delete(:again_old);
SELECT dms_create_job('again') AS again \gset
SELECT job_name, count(*) AS history_rows FROM dms_job_history GROUP BY job_id, job_name ORDER BY job_id;

-- Nothing ended a day ago: nothing goes, and a history row says so.
SELECT dms_prune_history('1 day');
SELECT job_id, job_name, cause, regexp_replace(message, 'before .*', 'before <cutoff>') AS message
  FROM dms_job_history WHERE cause = 'prune';

-- Everything that ended before now: the completed job's rows, the deleted
-- jobs' rows; not the running job's, not the new "again", not the prune
-- rows.  The completed job itself stays.
SELECT dms_prune_history('0 seconds');
SELECT job_name, cause FROM dms_job_history ORDER BY id;
SELECT name, status FROM dms_job ORDER BY id;

-- Bad input: 22004, 22023.
SELECT pg_temp.try($$SELECT dms_prune_history(NULL)$$);
SELECT pg_temp.try($$SELECT dms_prune_history('-1 day')$$);

-- The history stays append-only for everybody else, the superuser included.
SELECT pg_temp.try(format('DELETE FROM dms_job_history WHERE job_id = %s', :running));

-- Only the owner, or a role it grants: an operator is refused (42501)
-- until granted.
CREATE ROLE prune_operator;
SELECT dms_grant('prune_operator', 'operator');
SET ROLE prune_operator;
SELECT pg_temp.try($$SELECT dms_prune_history('0 seconds')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION dms_prune_history(interval) TO prune_operator;
SELECT dms_delete(:running);
SET ROLE prune_operator;
SELECT dms_prune_history('0 seconds');
RESET ROLE;
SELECT job_name, cause, actor, regexp_replace(message, 'before .*', 'before <cutoff>') AS message
  FROM dms_job_history ORDER BY id;

DROP OWNED BY prune_operator;
DROP ROLE prune_operator;
RESET client_min_messages;
