-- scripts/demo-migration/cdc.sql: the job streams the source's changes (Running (CDC)) while
-- pgbench writes there; alice stops it, and resumes it.  Played by scripts/demo on the
-- destination.

\set overview 'SELECT id, name, migration_type AS type, status, substatus, allowed_actions, error_message FROM dms_job_overview ORDER BY id;'
\set lag 'SELECT database_name AS database, state, percent, lag_bytes, lag, last_error FROM dms_job_progress WHERE job_id = 1 ORDER BY database_name;'

\echo
\echo '== Running (CDC): a subscription per database, on the slot the copy began at, applies every change'
\echo '== made on the source since the snapshot.  The lag, as the engine last saw it:'
SET ROLE alice;
:lag
\echo '-- in the destination database shop, the rows pgbench keeps inserting into pgbench_history arrive'
\echo '-- (mtime is the time of the transaction on the source); again two seconds later:'
\c shop
\set history 'SELECT count(*) AS history_rows, max(mtime) AS newest, localtimestamp(0) AS now FROM pgbench_history;'
:history
\set ECHO none
SELECT pg_sleep(2) \g /dev/null
:history
\set ECHO queries
\echo '-- the subscriptions (dms_<job>_<source database oid>) read the password from the job''s password'
\echo '-- file in the data directory; their connection string has none'
SELECT subname, subenabled, subslotname, subconninfo FROM pg_subscription ORDER BY subname;

\echo
\echo '== Stop and resume: Stopping... disables the subscriptions; their slots stay on the source'
\c postgres
SET ROLE alice;
SELECT dms_stop(1);
:overview
SELECT demo_wait(1, 'Stopped', 'Stopped in CDC');
:overview
:lag
\echo '-- on the source, the slots are inactive and keep the WAL written since they stopped (pgbench still'
\echo '-- writes): a stopped job holds WAL on the source until it resumes, restarts, or is deleted'
\c postgres - :host :src_port
\set slots 'SELECT slot_name, database, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS wal_kept FROM pg_replication_slots ORDER BY slot_name;'
:slots
\set ECHO none
SELECT pg_sleep(2) \g /dev/null
:slots
\set ECHO queries

\c postgres - :host :dst_port
SET ROLE alice;
\echo '-- alice resumes the job: Resuming enables the subscriptions, which apply what the slots kept'
SELECT dms_resume(1);
:overview
SELECT demo_wait(1, 'Running', 'CDC');
:overview
