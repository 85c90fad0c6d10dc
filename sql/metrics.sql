--
-- metrics: dms_metrics, one row per metric sample for a monitoring system
-- (a Prometheus exporter's query): jobs by status and phase, zero
-- included; how long the oldest job of each (status, phase) has been in
-- it; failed databases per job; and per database of an engine-driven job
-- what the copy did and the lag.  A value that is not known is no row.
-- Readers see it, and a role granted SELECT on it alone (an exporter's)
-- sees it and nothing else.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
SET test.roles = 'metrics_reader,metrics_exporter,metrics_nobody';
\i sql/drop_roles.inc
RESET client_min_messages;
\i sql/try.inc

-- The samples of one metric, labels first.
CREATE FUNCTION pg_temp.samples(m text)
RETURNS TABLE (job_id bigint, job_name text, database_name text, status dms_job_status,
               phase dms_job_phase, value double precision)
LANGUAGE sql AS $$
    SELECT job_id, job_name, database_name, status, phase, value
      FROM dms_metrics WHERE metric = m
     ORDER BY status, phase NULLS FIRST, job_id, database_name
$$;

--------------------------------------------------------------------------
-- 1. A fresh install: every (status, phase) of the lifecycle counts 0 jobs
--------------------------------------------------------------------------

-- Sixteen samples of dms_jobs, one per state of the lifecycle (its table,
-- as dms_transitions() lists it), all 0; no other metric has a sample.
SELECT metric, status, phase, value FROM dms_metrics ORDER BY metric, status, phase NULLS FIRST;

--------------------------------------------------------------------------
-- 2. Jobs in several statuses, brought there through the public functions
--------------------------------------------------------------------------

SELECT dms_create_job('waiting');
SELECT dms_create_job('launching');
SELECT dms_start(2);
-- two jobs in CDC: early gets there first
SELECT dms_create_job('early');
SELECT dms_start(3), dms_report(3, 'started');
SELECT dms_report(3, 'dump_completed');
SELECT dms_create_job('late');
SELECT dms_start(4), dms_report(4, 'started'), dms_report(4, 'dump_completed');
SELECT dms_create_job('noisy');
SELECT dms_start(5), dms_report(5, 'started'), dms_report(5, 'error', 'slow disk');
-- two of broken's three databases fail in CDC
SELECT dms_create_job('broken', 'continuous', ARRAY['sales', 'stock', 'staff']);
SELECT dms_start(6), dms_report(6, 'started'), dms_report(6, 'dump_completed'),
       dms_report(6, 'failed', 'sales: duplicate key', 'sales'),
       dms_report(6, 'failed', 'stock: permission denied', 'stock');
SELECT dms_create_job('paused');
SELECT dms_start(7), dms_report(7, 'started'), dms_report(7, 'dump_completed'),
       dms_stop(7), dms_report(7, 'stopped');
SELECT dms_create_job('finished', 'one_time');
SELECT dms_start(8), dms_report(8, 'started'), dms_report(8, 'dump_completed');

SELECT id, name, status, phase FROM dms_job ORDER BY id;

-- dms_jobs: every (status, phase) still has its sample; the counts add up to
-- the jobs.
SELECT status, phase, value FROM pg_temp.samples('dms_jobs');
SELECT sum(value) AS counted, (SELECT count(*) FROM dms_job) AS jobs
  FROM dms_metrics WHERE metric = 'dms_jobs';

-- dms_jobs_oldest_status_age_seconds: a sample only where there are jobs,
-- each the seconds since the oldest of them entered its status and phase
-- (status_changed_at), as dms_job_overview.status_age says it.
SELECT s.status, s.phase, s.value > 0 AS positive,
       s.value = (SELECT max(extract(epoch FROM o.status_age))
                    FROM dms_job_overview o JOIN dms_job j USING (id)
                   WHERE j.status = s.status AND j.phase IS NOT DISTINCT FROM s.phase) AS oldest_status_age
  FROM pg_temp.samples('dms_jobs_oldest_status_age_seconds') s;

-- Running (CDC) holds early and late: the sample is early's age, which is
-- above late's.
SELECT s.value = extract(epoch FROM now() - e.status_changed_at) AS early_age,
       s.value > extract(epoch FROM now() - l.status_changed_at) AS above_late_age
  FROM pg_temp.samples('dms_jobs_oldest_status_age_seconds') s,
       dms_job e, dms_job l
 WHERE s.status = 'running' AND s.phase = 'cdc' AND e.name = 'early' AND l.name = 'late';

-- The age counts from the last change of status or phase: an error
-- reported again (the message replaced, a self-loop) does not restart it,
-- and the edge to CDC did.
CREATE TEMP TABLE noisy_before AS SELECT status_changed_at FROM dms_job WHERE name = 'noisy';
SELECT dms_report(5, 'error', 'slower disk');
SELECT j.status_changed_at = b.status_changed_at AS noisy_age_kept,
       e.status_changed_at = (SELECT h.occurred_at FROM dms_job_history h
                               WHERE h.job_id = e.id AND h.cause = 'dump_completed') AS early_from_dump_completed,
       e.status_changed_at > (SELECT h.occurred_at FROM dms_job_history h
                               WHERE h.job_id = e.id AND h.cause = 'started') AS early_after_started
  FROM dms_job j, noisy_before b, dms_job e WHERE j.name = 'noisy' AND e.name = 'early';

-- dms_job_failed_databases: one sample per job, 0 included; broken's two
-- failed databases.
SELECT job_id, job_name, value FROM pg_temp.samples('dms_job_failed_databases');

-- Jobs that no engine drives have no per-database sample.
SELECT count(*) AS database_samples FROM dms_metrics WHERE metric LIKE 'dms\_database\_%';

--------------------------------------------------------------------------
-- 3. An engine-driven job: its databases' copy and lag
--------------------------------------------------------------------------

-- The engine keeps one row per database in dms_job_database (here written
-- by hand, as the engine would): shop copying, billing streaming with its
-- lag measured, stock streaming with a lag in bytes but none in seconds
-- yet, logs whose size is not known yet; and a row of a job that no longer
-- exists.
CREATE SERVER metrics_source FOREIGN DATA WRAPPER dms_lifecycle_connection
  OPTIONS (host 'source.invalid', port '5432');
SELECT dms_create_job('moving', 'continuous', ARRAY['shop', 'billing', 'stock', 'logs'],
                      source_server => 'metrics_source');
INSERT INTO dms_job_database (job_id, database_name, state, source_server, tables_total,
                              tables_copied, bytes_total, bytes_copied, rows_copied, lag_bytes, lag)
VALUES (9, 'shop', 'copying', 'metrics_source', 5, 2, 50000000, 12345678, 1000, NULL, NULL),
       (9, 'billing', 'streaming', 'metrics_source', 3, 3, 1000, 1000, 10, 4096, '2.5 seconds'),
       (9, 'stock', 'streaming', 'metrics_source', 1, 1, 8192, 8192, 1, 0, NULL),
       (9, 'logs', 'schema', 'metrics_source', NULL, 0, NULL, 0, 0, NULL, NULL),
       (987654, 'gone', 'done', 'metrics_source', 1, 1, 10, 10, 1, NULL, NULL);

-- Per database of the job: what was copied (every database), what is to
-- copy (where known), the lag in bytes and in seconds (where known).
SELECT metric, job_id, job_name, database_name, value
  FROM dms_metrics WHERE metric LIKE 'dms\_database\_%'
 ORDER BY metric, database_name;

-- ... the same numbers as dms_job_progress: no sample differs.
SELECT p.database_name, m.metric, m.value
  FROM dms_job_progress p
  JOIN dms_metrics m ON m.job_id = p.job_id AND m.database_name = p.database_name
 WHERE m.value IS DISTINCT FROM CASE m.metric
           WHEN 'dms_database_copied_bytes' THEN p.bytes_copied
           WHEN 'dms_database_copied_tables' THEN p.tables_copied
           WHEN 'dms_database_copied_rows' THEN p.rows_copied
           WHEN 'dms_database_to_copy_bytes' THEN p.bytes_total
           WHEN 'dms_database_to_copy_tables' THEN p.tables_total
           WHEN 'dms_database_lag_bytes' THEN p.lag_bytes
           WHEN 'dms_database_lag_seconds' THEN extract(epoch FROM p.lag) END;

-- No value is NULL, and the labels are those of each metric.
SELECT metric,
       count(*) AS samples,
       count(*) FILTER (WHERE value IS NULL) AS null_values,
       bool_and(job_id IS NOT NULL) AS job_id, bool_and(job_name IS NOT NULL) AS job_name,
       bool_and(database_name IS NOT NULL) AS database_name,
       bool_and(status IS NOT NULL) AS status
  FROM dms_metrics GROUP BY metric ORDER BY metric;

--------------------------------------------------------------------------
-- 4. Deleted jobs leave no sample
--------------------------------------------------------------------------

-- late goes: Running (CDC) counts 1, and the oldest is still early.
SELECT dms_delete(4);
SELECT value AS running_cdc FROM pg_temp.samples('dms_jobs')
 WHERE status = 'running' AND phase = 'cdc';
SELECT job_id, job_name FROM pg_temp.samples('dms_job_failed_databases') WHERE job_id = 4;

-- early goes: Running (CDC) counts 0 and has no age.
SELECT dms_delete(3);
SELECT metric, value FROM dms_metrics WHERE status = 'running' AND phase = 'cdc' ORDER BY metric;

-- The engine-driven job goes: its rows of dms_job_database stay until the
-- engine has cleaned up, but they are no job's samples any more.
SELECT dms_delete(9);
SELECT count(*) AS engine_rows FROM dms_job_database;
SELECT count(*) AS database_samples FROM dms_metrics WHERE metric LIKE 'dms\_database\_%';

--------------------------------------------------------------------------
-- 5. Who reads it
--------------------------------------------------------------------------

-- A reader (dms_grant), an exporter's role granted SELECT on dms_metrics
-- alone, and a role without either.
CREATE ROLE metrics_reader;
CREATE ROLE metrics_exporter LOGIN;
CREATE ROLE metrics_nobody;
SELECT dms_grant('metrics_reader', 'reader');
GRANT SELECT ON dms_metrics TO metrics_exporter;

SELECT r AS role,
       has_table_privilege(r, 'dms_metrics', 'SELECT') AS metrics,
       has_table_privilege(r, 'dms_job', 'SELECT') AS jobs,
       has_table_privilege(r, 'dms_job_history', 'SELECT') AS history,
       has_table_privilege(r, 'dms_job_progress', 'SELECT') AS progress
  FROM unnest(ARRAY['metrics_reader', 'metrics_exporter', 'metrics_nobody']) AS r
 ORDER BY r;

-- The reader and the exporter's role read the same samples; the exporter's
-- role reads no job, error or history.
SET ROLE metrics_reader;
SELECT pg_temp.try('SELECT count(*) FROM dms_metrics');
RESET ROLE;
SET ROLE metrics_exporter;
SELECT pg_temp.try('SELECT count(*) FROM dms_metrics');
SELECT pg_temp.try('SELECT sum(value) FROM dms_metrics WHERE metric = ''dms_jobs''');
SELECT pg_temp.try('SELECT count(*) FROM dms_job');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_overview');
RESET ROLE;
SET ROLE metrics_nobody;
SELECT pg_temp.try('SELECT count(*) FROM dms_metrics');
RESET ROLE;

-- Revoking reader takes dms_metrics back too.
SELECT dms_revoke('metrics_reader', 'reader');
SELECT has_table_privilege('metrics_reader', 'dms_metrics', 'SELECT') AS reader_metrics;

--------------------------------------------------------------------------
-- Clean up
--------------------------------------------------------------------------

SET client_min_messages = warning;
DROP EXTENSION dms_lifecycle CASCADE;
DROP OWNED BY metrics_reader, metrics_exporter, metrics_nobody CASCADE;
DROP ROLE metrics_reader, metrics_exporter, metrics_nobody;
RESET client_min_messages;
