-- scripts/demo.sql: a psql session that walks migration jobs through the lifecycle dms_lifecycle enforces.
--
-- scripts/demo --lifecycle runs it in a throwaway cluster with `psql -X -e`, so every
-- statement is printed before its result.  It stops at the first error,
-- except around the one refused action it shows on purpose.

\set ON_ERROR_STOP 1
-- What a person reads: the view dms_job_overview, without status_age and updated_at,
-- which change from run to run.  It is printed once with its query, then without.
\set overview 'SELECT id, name, migration_type AS type, status, substatus, allowed_actions, error_message, failed_databases AS failed_dbs, pending_dump_parallelism AS pending FROM dms_job_overview ORDER BY id;'

\echo
\echo '== Setup: the extension, an operator (alice) and the migration engine (engine)'
CREATE EXTENSION dms_lifecycle;
CREATE ROLE alice;
CREATE ROLE engine;
SELECT dms_grant('alice', 'operator'), dms_grant('engine', 'engine');

\echo
\echo '== 1. A continuous migration job, from "Not started" to "Completed"'
\echo '-- alice creates the job: it starts as "Not started"'
SET ROLE alice;
SELECT dms_create_job('orders', 'continuous', ARRAY['sales', 'inventory']);
\echo '-- the overview (dms_job_overview); the demo shows it after each step'
:overview

\echo '-- alice starts it: "Starting..."'
SELECT dms_start(1);
\set ECHO none
:overview
\set ECHO queries

\echo '-- the engine reports that it started: "Running" (Full dump)'
SET ROLE engine;
SELECT dms_report(1, 'started');
\set ECHO none
:overview
\set ECHO queries

\echo '-- the full dump finished: a continuous job goes on with change data capture, "Running" (CDC)'
SELECT dms_report(1, 'dump_completed');
\set ECHO none
:overview
\set ECHO queries

\echo '-- an error appears: "Running with errors"; the job keeps migrating what the error does not touch'
SELECT dms_report(1, 'error', 'replication lag above 10 minutes on sales');
\set ECHO none
:overview
\set ECHO queries

\echo '-- the errors clear by themselves: "Running" again, and the message is gone'
SELECT dms_report(1, 'errors_cleared');
\set ECHO none
:overview
\set ECHO queries

\echo '-- alice edits the dump parallelism of the running job: it waits for the next restart'
SET ROLE alice;
SELECT dms_set_dump_parallelism(1, 'max');
\set ECHO none
:overview
\set ECHO queries

\echo '-- alice stops the job: "Stopping...", then the engine confirms: "Stopped", substatus "Stopped in CDC"'
SELECT dms_stop(1);
SET ROLE engine;
SELECT dms_report(1, 'stopped');
\set ECHO none
:overview
\set ECHO queries

\echo '-- a job stopped in CDC can resume: "Resuming", then "Running" (CDC)'
SET ROLE alice;
SELECT dms_resume(1);
\set ECHO none
:overview
\set ECHO queries
SET ROLE engine;
SELECT dms_report(1, 'resumed');
\set ECHO none
:overview
\set ECHO queries

\echo '-- alice promotes the destination: "Running" (Promote in progress); only Delete is allowed now'
SET ROLE alice;
SELECT dms_promote(1);
\set ECHO none
:overview
\set ECHO queries

\echo '-- the engine reports the promotion: "Completed"'
SET ROLE engine;
SELECT dms_report(1, 'promoted');
\set ECHO none
:overview
\set ECHO queries

\echo
\echo '== 2. A one-time migration job: the full dump is the whole migration'
SET ROLE alice;
SELECT dms_create_job('archive', 'one_time', ARRAY['archive_2024']);

\echo '-- a refused action: promoting a job that has not started.  The error says why, the DETAIL what is allowed;'
\echo '-- nothing changed (no status, no history row, no notification).'
\set ON_ERROR_STOP 0
SELECT dms_promote(2);
\set ON_ERROR_STOP 1
\set ECHO none
:overview
\set ECHO queries

\echo '-- the job starts, runs and finishes its dump: "Completed"'
SELECT dms_start(2);
SET ROLE engine;
SELECT dms_report(2, 'started');

\echo '-- this session listens on the channel dms_lifecycle: psql shows the notification after the statement'
LISTEN dms_lifecycle;
SELECT dms_report(2, 'dump_completed');
UNLISTEN dms_lifecycle;
\set ECHO none
:overview
\set ECHO queries

\echo
\echo '== 3. One database fails; removing it from the migration lets the job recover'
SET ROLE alice;
SELECT dms_create_job('billing', 'continuous', ARRAY['ledger', 'invoices']);
SELECT dms_start(3);
SET ROLE engine;
SELECT dms_report(3, 'started');
SELECT dms_report(3, 'dump_completed');

\echo '-- the engine reports that database invoices failed: the job is "Failed", substatus "Failed in CDC"'
SELECT dms_report(3, 'failed', 'invoices: permission denied for table payments', 'invoices');
\set ECHO none
:overview
\set ECHO queries
SELECT job_id, database_name, phase, error_message FROM dms_job_failure;

\echo '-- alice cannot fix invoices now, so she removes it from the migration: the job recovers, "Running" (CDC)'
SET ROLE alice;
SELECT dms_remove_database(3, 'invoices');
\set ECHO none
:overview
\set ECHO queries
SELECT id, name, databases FROM dms_job WHERE id = 3;
SELECT count(*) AS failure_rows FROM dms_job_failure;

\echo
\echo '== 4. The history: one row per change, with its cause and the role that made it'
SELECT id, job_name, cause, from_status, from_phase, to_status, to_phase, database_name, message, actor
  FROM dms_job_history
 ORDER BY id;
RESET ROLE;
