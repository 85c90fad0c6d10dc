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

-- A job's id that comes back (a direct INSERT with the deleted job's id)
-- is a job that exists: its rows stay, the old delete row with them.
SELECT dms_create_job('returning') AS returning \gset
SELECT dms_delete(:returning);
INSERT INTO dms_job (id, name) OVERRIDING SYSTEM VALUE VALUES (:returning, 'returned');
SELECT dms_prune_history('0 seconds');
SELECT job_name, cause FROM dms_job_history WHERE job_id = :returning ORDER BY id;

-- A job completed long ago and deleted just now ended when it completed.
-- The completion is dated back by a direct write of its history, as an
-- import of an old history would (the test cannot wait days).
SELECT dms_create_job('old', 'one_time') AS old \gset
SELECT dms_start(:old), dms_report(:old, 'started'), dms_report(:old, 'dump_completed');
SELECT dms_delete(:old);
ALTER TABLE dms_job_history DISABLE TRIGGER dms_history_append_only;
UPDATE dms_job_history SET occurred_at = occurred_at - interval '10 days'
 WHERE job_id = :old AND cause <> 'delete';
ALTER TABLE dms_job_history ENABLE TRIGGER dms_history_append_only;
SELECT dms_prune_history('5 days');
SELECT count(*) AS rows_of_old FROM dms_job_history WHERE job_id = :old;

-- A user's trigger that keeps a row: it is not counted.
SELECT dms_create_job('kept') AS kept \gset
SELECT dms_delete(:kept);
CREATE FUNCTION keep_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;
CREATE TRIGGER keep_rows BEFORE DELETE ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION keep_rows();
SELECT dms_prune_history('0 seconds');
DROP TRIGGER keep_rows ON dms_job_history;
SELECT count(*) AS rows_of_kept FROM dms_job_history WHERE job_id = :kept;

-- Pruning from inside a pruning (a trigger of the user's) is refused; an
-- interval that reaches into the future, however it is written, too.
CREATE FUNCTION prune_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dms_prune_history('0 seconds');
    RETURN OLD;
END $$;
CREATE TRIGGER prune_again BEFORE DELETE ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION prune_again();
SELECT pg_temp.try($$SELECT dms_prune_history('0 seconds')$$);
DROP TRIGGER prune_again ON dms_job_history;
SELECT pg_temp.try($$SELECT dms_prune_history('1 day -25 hours')$$);
SELECT dms_prune_history('0 seconds');

DROP FUNCTION keep_rows(), prune_again();
DROP OWNED BY prune_operator;
DROP ROLE prune_operator;
RESET client_min_messages;
