-- scripts/demo-migration/start.sql: alice starts the job, and we watch the engine copy both
-- databases (Starting..., then Running (Full dump)) until it streams their changes (Running
-- (CDC)).  Played by scripts/demo on the destination while pgbench writes on the source.

\set overview 'SELECT id, name, migration_type AS type, status, substatus, allowed_actions, error_message FROM dms_job_overview ORDER BY id;'
SET ROLE alice;
\echo '-- this session listens on the channel dms_lifecycle: psql prints each notification after the'
\echo '-- statement during which it arrived'
LISTEN dms_lifecycle;

\echo
\echo '== Starting...: preflight, then per database: the destination database, publications on the'
\echo '== source, a replication slot with an exported snapshot, the schema before the data (pg_dump)'
SELECT dms_start(1);
\set ECHO none
SELECT clock_timestamp() AS began \gset
\set ECHO queries
:overview

\echo
\echo '== Running (Full dump): the rows, copied in that snapshot, two COPY streams per database'
\echo '== (dump_parallelism optimal), then the indexes and constraints.  dms_job_progress, every half second:'
\set samples_left 180
\ir progress.sql
\set ECHO queries
SELECT demo_wait(1, 'Running', 'CDC');
:overview
