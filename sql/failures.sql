--
-- failures: per-database failures (SPEC section 5, dms_job_failure).
--
-- The seed: "When you migrate specific databases, Database Migration Service
-- displays the Failed status separately for each database ... If you need to
-- progress the migration but can't resolve the issues, you can remove the
-- failed database from the migration."
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- pg_temp.try(statement), shared by the tests that show SQLSTATEs
\i sql/try.inc

-- pg_temp.state(status, phase) and the view hist, shared with other tests
\i sql/history.inc

-- The jobs as a person reads them.
CREATE TEMP VIEW jobs AS
SELECT id, name, status, substatus, allowed_actions, error_message, failed_databases
  FROM dms_job_overview;

-- The failure rows.
CREATE TEMP VIEW failures AS
SELECT job_id AS job, database_name, phase, error_message
  FROM dms_job_failure;

--------------------------------------------------------------------------
-- Part 1: one job, three databases, a story of failures.
--------------------------------------------------------------------------

-- Job 1 migrates orders, billing and audit; it runs and reaches CDC.
SELECT dms_create_job('shop', 'continuous', ARRAY['orders', 'billing', 'audit']) AS shop;
SELECT dms_start(1), dms_report(1, 'started'), dms_report(1, 'dump_completed');
SELECT * FROM jobs WHERE id = 1;

-- orders fails: the job is "Failed in CDC", orders has a failure row with the
-- phase and the message, the history row names the database.  A per-database
-- failure is not the job's own error: error_message stays NULL.
SELECT dms_report(1, 'failed', 'replication slot dropped', 'orders');
SELECT * FROM jobs WHERE id = 1;
SELECT * FROM failures ORDER BY job, database_name;
SELECT * FROM hist WHERE job = 1 ORDER BY id DESC LIMIT 1;
-- Failed in CDC offers Restart, Promote, Edit, Delete.
SELECT dms_allowed_actions(1);

-- billing fails too: the "failed" self-loop, another history row.
SELECT dms_report(1, 'failed', 'permission denied for table invoices', 'billing');
SELECT * FROM jobs WHERE id = 1;
SELECT * FROM failures ORDER BY job, database_name;
SELECT * FROM hist WHERE job = 1 ORDER BY id DESC LIMIT 1;

-- orders fails again: its row is updated (still one row per database), and
-- the self-loop is recorded once more.
SELECT dms_report(1, 'failed', 'replication slot dropped again', 'orders');
SELECT * FROM failures ORDER BY job, database_name;
SELECT count(*) AS orders_rows FROM dms_job_failure WHERE job_id = 1 AND database_name = 'orders';
SELECT * FROM hist WHERE job = 1 ORDER BY id DESC LIMIT 1;
SELECT count(*) AS history_rows_of_shop FROM dms_job_history WHERE job_id = 1;

-- The operator removes orders from the migration: its failure row goes, but
-- the job stays Failed because billing still failed.
SELECT dms_remove_database(1, 'orders');
SELECT * FROM jobs WHERE id = 1;
SELECT databases FROM dms_job WHERE id = 1;
SELECT * FROM failures ORDER BY job, database_name;
SELECT * FROM hist WHERE job = 1 ORDER BY id DESC LIMIT 1;

-- The operator removes billing: the last failed database is gone and the job
-- has no job-level error, so it recovers to Running in the phase it failed
-- in (CDC).  History: the edit, then "recovered".  dms_remove_database
-- returns the final status.
SELECT dms_remove_database(1, 'billing');
SELECT * FROM jobs WHERE id = 1;
SELECT databases FROM dms_job WHERE id = 1;
SELECT count(*) AS failure_rows_of_shop FROM dms_job_failure WHERE job_id = 1;
SELECT * FROM hist WHERE job = 1 ORDER BY id DESC LIMIT 2;

--------------------------------------------------------------------------
-- Part 2: a job-level failure keeps the job failed.
--------------------------------------------------------------------------

-- Job 2 migrates sales and stock; it fails as a whole in the full dump.
SELECT dms_create_job('warehouse', 'continuous', ARRAY['sales', 'stock']) AS warehouse;
SELECT dms_start(2), dms_report(2, 'started');
SELECT dms_report(2, 'failed', 'source unreachable');
-- Then sales fails as well (self-loop); the job-level error stays.
SELECT dms_report(2, 'failed', 'sales: out of disk', 'sales');
SELECT * FROM jobs WHERE id = 2;
SELECT * FROM failures WHERE job = 2;

-- Removing sales removes its failure row, but the job-level error keeps the
-- job "Failed in full dump": no "recovered".
SELECT dms_remove_database(2, 'sales');
SELECT * FROM jobs WHERE id = 2;
SELECT count(*) AS failure_rows_of_warehouse FROM dms_job_failure WHERE job_id = 2;
SELECT * FROM hist WHERE job = 2 ORDER BY id DESC LIMIT 1;

-- The other order: a database fails first, then the engine reports a
-- job-level failure (self-loop that sets the job's error).  Removing the
-- database still leaves the job failed.
SELECT dms_create_job('ledger', 'continuous', ARRAY['gl', 'ap']) AS ledger;
SELECT dms_start(3), dms_report(3, 'started');
SELECT dms_report(3, 'failed', 'gl: checksum mismatch', 'gl');
SELECT dms_report(3, 'failed', 'destination full');
SELECT * FROM jobs WHERE id = 3;
SELECT dms_remove_database(3, 'gl');
SELECT * FROM jobs WHERE id = 3;
SELECT * FROM hist WHERE job = 3 ORDER BY id;

--------------------------------------------------------------------------
-- Part 3: leaving "Failed" clears the failure rows.
--------------------------------------------------------------------------

-- restart: job 2 fails in stock too, then is restarted: its failure rows and
-- its error are gone.
SELECT dms_report(2, 'failed', 'stock: lock timeout', 'stock');
SELECT count(*) AS failure_rows_of_warehouse FROM dms_job_failure WHERE job_id = 2;
SELECT dms_restart(2);
SELECT * FROM jobs WHERE id = 2;
SELECT count(*) AS failure_rows_of_warehouse FROM dms_job_failure WHERE job_id = 2;

-- recovered: job 4 fails in one database in the full dump; the engine reports
-- it recovered ("may resume automatically after the issue is fixed").
SELECT dms_create_job('crm', 'continuous', ARRAY['contacts', 'deals']) AS crm;
SELECT dms_start(4), dms_report(4, 'started');
SELECT dms_report(4, 'failed', 'contacts: connection reset', 'contacts');
SELECT dms_report(4, 'failed', 'deals: connection reset', 'deals');
SELECT count(*) AS failure_rows_of_crm FROM dms_job_failure WHERE job_id = 4;
SELECT dms_report(4, 'recovered');
SELECT * FROM jobs WHERE id = 4;
SELECT count(*) AS failure_rows_of_crm FROM dms_job_failure WHERE job_id = 4;

-- promote: job 4 reaches CDC, a database fails, the operator promotes from
-- "Failed in CDC": the failure rows go.
SELECT dms_report(4, 'dump_completed');
SELECT dms_report(4, 'failed', 'deals: replication lag too high', 'deals');
SELECT * FROM jobs WHERE id = 4;
SELECT dms_promote(4);
SELECT * FROM jobs WHERE id = 4;
SELECT count(*) AS failure_rows_of_crm FROM dms_job_failure WHERE job_id = 4;

-- delete: job 3 (still failed) is deleted; its failure rows go, its history stays.
SELECT dms_report(3, 'failed', 'ap: timeout', 'ap');
SELECT count(*) AS failure_rows_of_ledger FROM dms_job_failure WHERE job_id = 3;
SELECT dms_delete(3);
SELECT count(*) AS failure_rows_of_ledger FROM dms_job_failure WHERE job_id = 3;
SELECT * FROM hist WHERE job = 3 ORDER BY id DESC LIMIT 2;

--------------------------------------------------------------------------
-- Part 4: which databases and which states accept a failure.
--------------------------------------------------------------------------

-- Job 1 (Running, CDC) migrates only audit now: a failure of a database it
-- does not migrate (or no longer migrates) is refused, and changes nothing.
SELECT count(*) AS history_rows FROM dms_job_history \gset
SELECT pg_temp.try($$SELECT dms_report(1, 'failed', 'boom', 'payroll')$$) AS unknown_database,
       pg_temp.try($$SELECT dms_report(1, 'failed', 'boom', 'orders')$$) AS removed_database;
SELECT * FROM jobs WHERE id = 1;
SELECT count(*) - :history_rows AS new_history_rows, (SELECT count(*) FROM dms_job_failure) AS failure_rows
  FROM dms_job_history;

-- Job 5 migrates all databases of its source (databases NULL): a failure of
-- any database name is accepted.
SELECT dms_create_job('everything', 'continuous') AS everything;
SELECT dms_start(5), dms_report(5, 'started');
SELECT dms_report(5, 'failed', 'tenant_42: corrupt page', 'tenant_42');
SELECT dms_report(5, 'failed', 'tenant_7: corrupt page', 'tenant_7');
SELECT * FROM jobs WHERE id = 5;
SELECT * FROM failures WHERE job = 5 ORDER BY database_name;
-- Such a job has no list to remove a database from.
SELECT pg_temp.try($$SELECT dms_remove_database(5, 'tenant_7')$$) AS remove_from_all;

-- A failure reported in a state where "failed" is no edge is refused (55000)
-- and writes no failure row: Not started, Stopped, Completed.
SELECT dms_create_job('idle', 'continuous', ARRAY['a', 'b']) AS idle;              -- 6: Not started
SELECT dms_create_job('paused', 'continuous', ARRAY['a', 'b']) AS paused;          -- 7: Stopped in CDC
SELECT dms_start(7), dms_report(7, 'started'), dms_report(7, 'dump_completed'),
       dms_stop(7), dms_report(7, 'stopped');
SELECT dms_create_job('done', 'one_time', ARRAY['a', 'b']) AS done;                -- 8: Completed
SELECT dms_start(8), dms_report(8, 'started'), dms_report(8, 'dump_completed');
SELECT count(*) AS history_rows FROM dms_job_history \gset
SELECT id, status, substatus,
       pg_temp.try(format($$SELECT dms_report(%s, 'failed', 'boom', 'a')$$, id)) AS database_failure,
       pg_temp.try(format($$SELECT dms_report(%s, 'failed', 'boom')$$, id)) AS job_failure
  FROM jobs WHERE id IN (6, 7, 8) ORDER BY id;
SELECT count(*) - :history_rows AS new_history_rows,
       (SELECT count(*) FROM dms_job_failure WHERE job_id IN (6, 7, 8)) AS failure_rows
  FROM dms_job_history;
SELECT * FROM jobs WHERE id IN (6, 7, 8) ORDER BY id;

-- A database failure in each state where "failed" is an edge: the failure
-- row records the phase the job is failed in.  Starting and restarting fail
-- in the full dump, resuming in CDC, stopping in its phase; a promotion that
-- fails goes back to CDC (so that it may be retried).
SELECT dms_create_job('s1', 'continuous', ARRAY['a']) AS s1;                       -- 9: Starting...
SELECT dms_start(9);
SELECT dms_create_job('s2', 'continuous', ARRAY['a']) AS s2;                       -- 10: Restarting
SELECT dms_start(10), dms_report(10, 'started'), dms_report(10, 'error', 'slow'),
       dms_restart(10);
SELECT dms_create_job('s3', 'continuous', ARRAY['a']) AS s3;                       -- 11: Resuming
SELECT dms_start(11), dms_report(11, 'started'), dms_report(11, 'dump_completed'),
       dms_stop(11), dms_report(11, 'stopped'), dms_resume(11);
SELECT dms_create_job('s4', 'continuous', ARRAY['a']) AS s4;                       -- 12: Stopping... (CDC)
SELECT dms_start(12), dms_report(12, 'started'), dms_report(12, 'dump_completed'),
       dms_stop(12);
SELECT dms_create_job('s5', 'continuous', ARRAY['a']) AS s5;                       -- 13: Running (Promote in progress)
SELECT dms_start(13), dms_report(13, 'started'), dms_report(13, 'dump_completed'),
       dms_promote(13);
SELECT dms_create_job('s6', 'continuous', ARRAY['a']) AS s6;                       -- 14: Running with errors (Full dump)
SELECT dms_start(14), dms_report(14, 'started'), dms_report(14, 'error', 'slow source');
SELECT j.id, pg_temp.state(j.status, j.phase) AS before,
       dms_report(j.id, 'failed', 'a: gone', 'a') AS reported
  FROM dms_job j WHERE j.id BETWEEN 9 AND 14 ORDER BY j.id;
SELECT j.id, j.status, j.substatus, j.error_message, f.phase AS failure_phase, f.error_message AS failure_message
  FROM jobs j JOIN dms_job_failure f ON f.job_id = j.id
 WHERE j.id BETWEEN 9 AND 14 ORDER BY j.id;
SELECT * FROM hist WHERE job BETWEEN 9 AND 14 AND cause = 'failed' ORDER BY id;

-- Job 13 failed during its promotion and is back in CDC: the promotion may be retried.
SELECT dms_promote(13);
SELECT * FROM jobs WHERE id = 13;

-- Job 14 was "Running with errors" (error "slow source") when database a
-- failed: the job-level error belonged to running with errors and went with
-- it (error_message is NULL above).  So once a leaves the migration, the job
-- recovers to the phase it failed in.  A job keeps at least one database:
-- add b first.
SELECT dms_add_database(14, 'b');
SELECT dms_remove_database(14, 'a');
SELECT * FROM jobs WHERE id = 14;

--------------------------------------------------------------------------
-- Part 5: direct writes to dms_job_failure (as superuser).
--------------------------------------------------------------------------

-- A failure row inserted directly puts its job into "Failed" exactly like
-- dms_report: job 15 is Running (Full dump); the row's phase and failed_at
-- are the trigger's, whatever the INSERT says.
SELECT dms_create_job('direct', 'continuous', ARRAY['x', 'y']) AS direct;
SELECT dms_start(15), dms_report(15, 'started');
BEGIN;
INSERT INTO dms_job_failure (job_id, database_name, phase, error_message, failed_at)
VALUES (15, 'x', 'cdc', 'x: disk full', '2000-01-01');
SELECT * FROM jobs WHERE id = 15;
SELECT job_id, database_name, phase, error_message, failed_at = now() AS failed_at_is_now
  FROM dms_job_failure WHERE job_id = 15;
COMMIT;
SELECT * FROM hist WHERE job = 15 ORDER BY id DESC LIMIT 1;

-- A second direct failure row is the self-loop.
INSERT INTO dms_job_failure (job_id, database_name, phase, error_message)
VALUES (15, 'y', 'full_dump', 'y: disk full');
SELECT * FROM jobs WHERE id = 15;
SELECT * FROM hist WHERE job = 15 ORDER BY id DESC LIMIT 1;

-- Direct inserts are held to the same rules: an unknown database, an empty
-- message, a job that is not running, a job that does not exist.
SELECT count(*) AS history_rows FROM dms_job_history \gset
SELECT pg_temp.try($$INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (15, 'z', 'full_dump', 'z: gone')$$) AS unknown_database,
       pg_temp.try($$INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (6, 'a', 'full_dump', 'a: gone')$$) AS not_started_job;
SELECT pg_temp.try($$INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (15, 'x', 'full_dump', '')$$) AS empty_message,
       pg_temp.try($$INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (99, 'x', 'full_dump', 'x')$$) AS missing_job;
SELECT count(*) - :history_rows AS new_history_rows,
       (SELECT count(*) FROM dms_job_failure WHERE job_id = 15) AS failure_rows_of_direct
  FROM dms_job_history;

-- A direct UPDATE of a failure row's message: the database failed again,
-- the self-loop is recorded.
UPDATE dms_job_failure SET error_message = 'x: disk still full'
 WHERE job_id = 15 AND database_name = 'x';
SELECT * FROM failures WHERE job = 15 ORDER BY database_name;
SELECT * FROM hist WHERE job = 15 ORDER BY id DESC LIMIT 1;

-- A failure row cannot move to another database or job.
SELECT count(*) AS history_rows FROM dms_job_history \gset
SELECT pg_temp.try($$UPDATE dms_job_failure SET database_name = 'y' WHERE job_id = 15 AND database_name = 'x'$$) AS move_database,
       pg_temp.try($$UPDATE dms_job_failure SET job_id = 5 WHERE job_id = 15 AND database_name = 'x'$$) AS move_job;
SELECT count(*) - :history_rows AS new_history_rows FROM dms_job_history;
SELECT * FROM failures WHERE job IN (5, 15) ORDER BY job, database_name;

-- A direct DELETE of the failure row of y, which the job still migrates, is
-- not "removing that database from the migration": the job stays failed.
DELETE FROM dms_job_failure WHERE job_id = 15 AND database_name = 'y';
SELECT * FROM jobs WHERE id = 15;

-- Removing x, the database of the last failure row, makes the job recover.
SELECT dms_remove_database(15, 'x');
SELECT * FROM jobs WHERE id = 15;
SELECT * FROM hist WHERE job = 15 ORDER BY id DESC LIMIT 2;

--------------------------------------------------------------------------
-- Part 6: the overview counts the failed databases.
--------------------------------------------------------------------------

SELECT id, name, status, substatus, error_message, failed_databases
  FROM dms_job_overview ORDER BY id;
