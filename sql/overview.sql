--
-- overview: dms_job_overview, what a person reads in psql (SPEC 6): the
-- seed's status and substatus, the allowed actions, the job's error, the
-- number of failed databases, the dump parallelism and a pending one, and
-- how long the job has been in its status.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- Jobs in many states, each brought there through the public functions.

-- 1 alpha: created, never started.
SELECT dms_create_job('alpha');

-- 2 bravo: running in CDC.
SELECT dms_create_job('bravo');
SELECT dms_start(2), dms_report(2, 'started'), dms_report(2, 'dump_completed');

-- 3 charlie: running with errors in CDC; the engine's message is the job's error.
SELECT dms_create_job('charlie');
SELECT dms_start(3), dms_report(3, 'started'), dms_report(3, 'dump_completed'),
       dms_report(3, 'error', 'replication lag above 10 minutes');

-- 4 delta: three databases, two of which failed during the full dump.
SELECT dms_create_job('delta', 'continuous', ARRAY['sales', 'stock', 'staff']);
SELECT dms_start(4), dms_report(4, 'started'),
       dms_report(4, 'failed', 'table sales.orders has no primary key', 'sales'),
       dms_report(4, 'failed', 'permission denied for schema stock', 'stock');

-- 5 echo: stopped in CDC.
SELECT dms_create_job('echo');
SELECT dms_start(5), dms_report(5, 'started'), dms_report(5, 'dump_completed'),
       dms_stop(5), dms_report(5, 'stopped');

-- 6 foxtrot: a one-time migration, completed when its dump finished.
SELECT dms_create_job('foxtrot', 'one_time');
SELECT dms_start(6), dms_report(6, 'started'), dms_report(6, 'dump_completed');

-- 7 golf: promotion in progress.
SELECT dms_create_job('golf');
SELECT dms_start(7), dms_report(7, 'started'), dms_report(7, 'dump_completed'),
       dms_promote(7);

-- 8 hotel: stopping during the full dump.
SELECT dms_create_job('hotel');
SELECT dms_start(8), dms_report(8, 'started'), dms_stop(8);

-- 9 india: the whole job failed in CDC, with a job-level error.
SELECT dms_create_job('india');
SELECT dms_start(9), dms_report(9, 'started'), dms_report(9, 'dump_completed'),
       dms_report(9, 'failed', 'source unreachable');

-- 10 juliett: starting; 11 kilo: resuming; 12 lima: restarting.
SELECT dms_create_job('juliett');
SELECT dms_start(10);
SELECT dms_create_job('kilo');
SELECT dms_start(11), dms_report(11, 'started'), dms_report(11, 'dump_completed'),
       dms_stop(11), dms_report(11, 'stopped'), dms_resume(11);
SELECT dms_create_job('lima');
SELECT dms_start(12), dms_report(12, 'started'), dms_report(12, 'error', 'slow source'),
       dms_restart(12);

-- The overview in the seed's words.
SELECT id, name, migration_type, status, substatus, allowed_actions,
       error_message, failed_databases
  FROM dms_job_overview ORDER BY id;

-- Its parallelism columns, and the age of every status: an interval that
-- is never negative.
SELECT id, name, dump_parallelism, pending_dump_parallelism,
       status_age >= '0' AS status_age_not_negative,
       pg_typeof(status_age) AS status_age_type
  FROM dms_job_overview ORDER BY id;

-- The overview agrees with the table it reads: status, substatus and
-- allowed actions are the labels of the job's (status, phase), the failed
-- databases are its failure rows, status_age is measured from
-- status_changed_at.  No row.
SELECT o.id
  FROM dms_job_overview o
  JOIN dms_job j USING (id)
 WHERE o.status IS DISTINCT FROM dms_status_label(j.status)
    OR o.substatus IS DISTINCT FROM dms_substatus_label(j.status, j.phase)
    OR o.allowed_actions IS DISTINCT FROM
       (SELECT string_agg(dms_action_label(a), ', ' ORDER BY a)
          FROM unnest(dms_allowed_actions(j.id)) AS a)
    OR o.failed_databases <> (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = j.id)
    OR o.error_message IS DISTINCT FROM j.error_message
    OR o.status_age <> now() - j.status_changed_at
    OR o.updated_at <> j.updated_at;

-- bravo is edited while running: the new parallelism waits for the next
-- restart; the status has not changed, so status_age still counts from the
-- last change of status while updated_at moves.
SELECT pg_sleep(0.01);
SELECT dms_set_dump_parallelism(2, 'max');
SELECT o.name, o.status, o.substatus, o.dump_parallelism, o.pending_dump_parallelism,
       o.status_age >= '0' AS status_age_not_negative,
       j.status_changed_at < j.updated_at AS status_older_than_edit
  FROM dms_job_overview o JOIN dms_job j USING (id)
 WHERE o.id = 2;

-- bravo is stopped and restarted: the restart applies the parallelism and
-- clears the pending one.
SELECT dms_stop(2), dms_report(2, 'stopped');
SELECT name, status, substatus, allowed_actions, dump_parallelism, pending_dump_parallelism
  FROM dms_job_overview WHERE id = 2;
SELECT dms_restart(2);
SELECT name, status, substatus, allowed_actions, dump_parallelism, pending_dump_parallelism
  FROM dms_job_overview WHERE id = 2;

-- An edit before the start is immediate: nothing pending.
SELECT dms_set_dump_parallelism(1, 'min');
SELECT name, status, dump_parallelism, pending_dump_parallelism
  FROM dms_job_overview WHERE id = 1;

-- charlie's errors clear: no error message any more, and Delete is back.
SELECT dms_report(3, 'errors_cleared');
SELECT name, status, substatus, allowed_actions, error_message
  FROM dms_job_overview WHERE id = 3;

-- delta: removing one failed database leaves one failure; removing the
-- other makes the job recover into the phase it failed in.
SELECT dms_remove_database(4, 'sales');
SELECT name, status, substatus, allowed_actions, error_message, failed_databases
  FROM dms_job_overview WHERE id = 4;
SELECT dms_remove_database(4, 'stock');
SELECT name, status, substatus, allowed_actions, error_message, failed_databases
  FROM dms_job_overview WHERE id = 4;

-- india restarts: its error and Failed are gone.
SELECT dms_restart(9);
SELECT name, status, substatus, allowed_actions, error_message, failed_databases
  FROM dms_job_overview WHERE id = 9;

-- A deleted job leaves the overview (its history stays).
SELECT dms_delete(6);
SELECT count(*) AS foxtrot_rows FROM dms_job_overview WHERE name = 'foxtrot';
SELECT count(*) AS foxtrot_history_rows FROM dms_job_history WHERE job_name = 'foxtrot';

-- The final overview.
SELECT id, name, status, substatus, allowed_actions, error_message, failed_databases,
       dump_parallelism, pending_dump_parallelism, status_age >= '0' AS status_age_not_negative
  FROM dms_job_overview ORDER BY id;
