/* sql/dms_lifecycle--1.0--1.1.sql: dms_lifecycle 1.1, the tables written as ordinary tables, and the setup of the built-in engine */

\echo Use "ALTER EXTENSION dms_lifecycle UPDATE TO '1.1'" to load this file. \quit

-- From 1.1 every write of the three tables goes through the executor, and a
-- change computes its own follow-up: the AFTER trigger on dms_job removes the
-- failure rows a change leaves behind and, when the last failed database has
-- left the migration, applies the edge "recovered" after the change.  The
-- AFTER DELETE trigger on dms_job_failure, which did that from the other
-- side, is gone; its C symbol stays in the library for databases at 1.0.
DROP TRIGGER dms_failure_removed ON dms_job_failure;
DROP FUNCTION dms_failure_removed();

COMMENT ON FUNCTION dms_job_record() IS
    'AFTER trigger on dms_job: writes the history row, sends the notification, removes the failure rows the change leaves behind and applies a recovery';

-- A failure row fails its job once it is written (AFTER), not before: a
-- BEFORE trigger of a user's that skips or changes the row then cannot leave
-- the job failed without it.
CREATE FUNCTION dms_failure_record() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_failure_record' LANGUAGE C;
COMMENT ON FUNCTION dms_failure_record() IS
    'AFTER trigger on dms_job_failure: the written failure row puts its job into failed (or records another failure)';
REVOKE ALL ON FUNCTION dms_failure_record() FROM PUBLIC;
CREATE TRIGGER dms_failure_record AFTER INSERT OR UPDATE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION dms_failure_record();

COMMENT ON FUNCTION dms_failure_guard() IS
    'BEFORE trigger on dms_job_failure: checks a failed database against its job and sets the phase it fails in';

--------------------------------------------------------------------------
-- Every object described: \d+ and \dv+ read as a manual
--------------------------------------------------------------------------

COMMENT ON COLUMN dms_job.id IS 'the job''s number, which every call, failure, history row and notification names';
COMMENT ON COLUMN dms_job.migration_type IS
    'one_time (full dump only) or continuous (full dump, then CDC until promoted); changes only before the start';
COMMENT ON COLUMN dms_job.status IS
    'one of the ten statuses; dms_status_label() gives the seed''s text; changes only along the lifecycle''s edges';
COMMENT ON COLUMN dms_job.dump_parallelism IS 'how many parallel streams the full dump uses: min, optimal or max';
COMMENT ON COLUMN dms_job_failure.job_id IS 'the failed job; its failure rows go when it leaves failed or is deleted';
COMMENT ON COLUMN dms_job_failure.database_name IS 'the database that failed, one of the job''s databases';
COMMENT ON COLUMN dms_job_failure.error_message IS 'what went wrong with this database; not blank';
COMMENT ON COLUMN dms_job_history.id IS 'the order of the changes; notifications name it as history_id';
COMMENT ON COLUMN dms_job_history.job_name IS 'the job''s name at the change';
COMMENT ON COLUMN dms_job_history.from_phase IS 'phase before the change; NULL where the status has none';
COMMENT ON COLUMN dms_job_history.to_phase IS 'phase after the change; NULL where the status has none';
COMMENT ON COLUMN dms_job_history.occurred_at IS 'when the change was made: the start of its transaction';
COMMENT ON SEQUENCE dms_job_id_seq IS 'the identity of dms_job.id';
COMMENT ON SEQUENCE dms_job_history_id_seq IS 'the identity of dms_job_history.id';

COMMENT ON COLUMN dms_job_overview.id IS 'the job''s id';
COMMENT ON COLUMN dms_job_overview.name IS 'the job''s name';
COMMENT ON COLUMN dms_job_overview.migration_type IS 'one_time or continuous';
COMMENT ON COLUMN dms_job_overview.status IS 'the seed''s status: Not started, Starting..., Running, ...';
COMMENT ON COLUMN dms_job_overview.substatus IS
    'the seed''s substatus: Full dump, CDC, Promote in progress, Failed in CDC, Stopped in full dump, ...';
COMMENT ON COLUMN dms_job_overview.allowed_actions IS 'the actions an operator may take now, as the seed names them';
COMMENT ON COLUMN dms_job_overview.error_message IS 'the job-level error while Running with errors or Failed';
COMMENT ON COLUMN dms_job_overview.failed_databases IS 'how many of the job''s databases have failed';
COMMENT ON COLUMN dms_job_overview.dump_parallelism IS 'the dump parallelism in force';
COMMENT ON COLUMN dms_job_overview.pending_dump_parallelism IS 'a dump parallelism that waits for the next restart';
COMMENT ON COLUMN dms_job_overview.status_age IS 'how long the job has been in its status and phase';
COMMENT ON COLUMN dms_job_overview.updated_at IS 'when the job last changed';

--------------------------------------------------------------------------
-- History retention
--------------------------------------------------------------------------

CREATE FUNCTION dms_prune_history(older_than interval) RETURNS bigint
    AS 'MODULE_PATHNAME', 'dms_prune_history' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_prune_history(interval) IS
    'removes the history rows of jobs deleted or completed more than older_than ago, and nothing else; returns how many and leaves a history row (job id 0) saying so; the extension''s owner, or a role it grants EXECUTE';
REVOKE ALL ON FUNCTION dms_prune_history(interval) FROM PUBLIC;
COMMENT ON TABLE dms_job_history IS
    'audit log: one row per created job, transition, edit, delete and pruning; rows leave only through dms_prune_history() or TRUNCATE';
COMMENT ON COLUMN dms_job_history.cause IS
    'the action or event that made the change, or create, or prune (a row of dms_prune_history())';
COMMENT ON COLUMN dms_job_history.job_id IS
    'the job changed, kept after the job is deleted; 0 for a row of dms_prune_history(), about no job';
COMMENT ON FUNCTION dms_history_append_only() IS
    'BEFORE trigger on dms_job_history: refuses UPDATE, and DELETE but dms_prune_history()''s own';

--------------------------------------------------------------------------
-- The built-in migration engine: connections, engine-driven jobs, progress
--------------------------------------------------------------------------

-- Connections are servers and user mappings of a foreign-data wrapper of the
-- extension's own, as dblink_fdw is dblink's: a server says where a source
-- is, a user mapping who connects.
CREATE FUNCTION dms_lifecycle_connection_validator(options text[], catalog oid) RETURNS void
    AS 'MODULE_PATHNAME', 'dms_lifecycle_connection_validator' LANGUAGE C;
COMMENT ON FUNCTION dms_lifecycle_connection_validator(text[], oid) IS
    'validator of dms_lifecycle_connection: servers take libpq connection options (not dbname, user, password, ...), user mappings user and password';
REVOKE ALL ON FUNCTION dms_lifecycle_connection_validator(text[], oid) FROM PUBLIC;

CREATE FOREIGN DATA WRAPPER dms_lifecycle_connection VALIDATOR dms_lifecycle_connection_validator;
COMMENT ON FOREIGN DATA WRAPPER dms_lifecycle_connection IS
    'connections of the built-in migration engine: a server per source (host, port, sslmode, ...), a user mapping for who connects (user, password)';

-- A job with a source server is driven by the built-in engine.
ALTER TABLE dms_job ADD COLUMN source_server text, ADD COLUMN destination_server text;
COMMENT ON COLUMN dms_job.source_server IS
    'the server of dms_lifecycle_connection the built-in engine migrates from; NULL: an external engine reports the job''s events';
COMMENT ON COLUMN dms_job.destination_server IS
    'where the databases go; NULL: this cluster, the only destination of 1.1';

-- dms_create_job takes the two servers.  A new signature is a new function:
-- the grants that dms_grant() made on the old one go with it.  They are not
-- made again here: a grant made by an extension script is recorded as the
-- extension's own (pg_init_privs), and pg_dump would then leave it out.
-- The roles concerned are named, with what to run: in a WARNING, since
-- PostgreSQL runs an extension's script with client_min_messages at
-- warning, and a NOTICE would reach nobody.
DO $$
DECLARE
    commands text;
    operators text;
    roles text;
BEGIN
    WITH grantees AS (
        SELECT a.grantee, 'operator' AS capability, 1 AS rank
          FROM pg_proc p,
               aclexplode(p.proacl) a
         WHERE p.oid = 'dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism)'::regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
        UNION ALL
        SELECT a.grantee, 'engine', 2
          FROM pg_proc p,
               aclexplode(p.proacl) a
         WHERE p.oid = 'dms_report(bigint, dms_event, text, text)'::regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
        UNION ALL
        SELECT a.grantee, 'reader', 3
          FROM pg_class c,
               aclexplode(c.relacl) a
         WHERE c.oid = 'dms_job'::regclass
           AND a.privilege_type = 'SELECT' AND a.grantee NOT IN (0, c.relowner)),
    capabilities AS (
        SELECT DISTINCT ON (grantee) grantee::regrole::text AS role, capability
          FROM grantees
         ORDER BY grantee, rank)
    SELECT string_agg(format('SELECT dms_grant(%L, %L);', role, capability), ' ' ORDER BY role),
           string_agg(role, ', ' ORDER BY role) FILTER (WHERE capability = 'operator'),
           string_agg(role, ', ' ORDER BY role)
      INTO commands, operators, roles
      FROM capabilities;
    IF commands IS NOT NULL THEN
        RAISE WARNING 'dms_lifecycle 1.1 replaced dms_create_job and added dms_job_progress: grant the capabilities of these roles again: %', roles
            USING DETAIL = 'Roles that lost the privilege to call dms_create_job: '
                           || coalesce(operators, 'none')
                           || '. A capability granted before the update does not include the views dms_job_progress and dms_metrics.',
                  HINT = 'Run, as a superuser: ' || commands;
    END IF;
END
$$;

DROP FUNCTION dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism);
CREATE FUNCTION dms_create_job(name text,
                               migration_type dms_migration_type DEFAULT 'continuous',
                               databases text[] DEFAULT NULL,
                               dump_parallelism dms_dump_parallelism DEFAULT 'optimal',
                               source_server text DEFAULT NULL,
                               destination_server text DEFAULT NULL)
    RETURNS bigint AS 'MODULE_PATHNAME', 'dms_create_job' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism, text, text) IS
    'creates a migration job in "Not started" and returns its id; with a source_server (a server of dms_lifecycle_connection) the built-in engine drives it';
REVOKE ALL ON FUNCTION dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism, text, text)
    FROM PUBLIC;

-- What the engine does with each database of a job.
CREATE TYPE dms_database_state AS ENUM (
    'preflight', 'schema', 'copying', 'indexing', 'streaming', 'stopped', 'failed',
    'promoting', 'done');
COMMENT ON TYPE dms_database_state IS
    'where the built-in engine is with one database of a job: preflight, schema, copying, indexing, streaming, stopped, failed, promoting, done';

-- No foreign key to dms_job: a row outlives its job until the engine has
-- taken down what it made for it.
CREATE TABLE dms_job_database (
    job_id           bigint NOT NULL,
    database_name    text NOT NULL,
    state            dms_database_state NOT NULL DEFAULT 'preflight',
    created_database boolean NOT NULL DEFAULT false,
    destination_oid  oid,
    source_server    text NOT NULL,
    source_oid       oid,
    tables_total     integer,
    tables_copied    integer NOT NULL DEFAULT 0,
    bytes_total      bigint,
    bytes_copied     bigint NOT NULL DEFAULT 0,
    rows_copied      bigint NOT NULL DEFAULT 0,
    lag_bytes        bigint,
    lag              interval,
    last_error       text,
    observed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, database_name)
);
COMMENT ON TABLE dms_job_database IS
    'the built-in engine''s record of each database it migrates for a job; kept until the engine has taken down what it made';
COMMENT ON COLUMN dms_job_database.job_id IS 'the job; the row may outlive it while the engine cleans up';
COMMENT ON COLUMN dms_job_database.database_name IS 'the database, on the source and on the destination';
COMMENT ON COLUMN dms_job_database.state IS 'what the engine is doing with this database';
COMMENT ON COLUMN dms_job_database.created_database IS 'whether the engine created the destination database';
COMMENT ON COLUMN dms_job_database.destination_oid IS
    'the oid of the destination database the engine created: a restart drops that database, and no other of its name';
COMMENT ON COLUMN dms_job_database.source_server IS
    'the job''s source server, kept so that the engine can take down what it made after the job is deleted';
COMMENT ON COLUMN dms_job_database.source_oid IS
    'the database''s oid on the source, which names the slot, publications and subscription (dms_<job>_<oid>)';
COMMENT ON COLUMN dms_job_database.tables_total IS 'how many tables to copy; NULL until known';
COMMENT ON COLUMN dms_job_database.tables_copied IS 'how many tables are copied';
COMMENT ON COLUMN dms_job_database.bytes_total IS 'the size of the tables to copy, estimated from the source; NULL until known';
COMMENT ON COLUMN dms_job_database.bytes_copied IS 'how many bytes of table data are copied';
COMMENT ON COLUMN dms_job_database.rows_copied IS 'how many rows are copied';
COMMENT ON COLUMN dms_job_database.lag_bytes IS
    'while streaming: the source''s WAL position minus what the destination confirmed';
COMMENT ON COLUMN dms_job_database.lag IS 'while streaming: how far behind the source the destination is, where known';
COMMENT ON COLUMN dms_job_database.last_error IS 'the last error the engine met with this database';
COMMENT ON COLUMN dms_job_database.observed_at IS 'when the engine last looked';
SELECT pg_catalog.pg_extension_config_dump('dms_job_database', '');

CREATE VIEW dms_job_progress AS
SELECT d.job_id,
       j.name AS job_name,
       d.database_name,
       d.state,
       d.tables_copied,
       d.tables_total,
       d.bytes_copied,
       d.bytes_total,
       CASE WHEN d.state IN ('streaming', 'promoting', 'done') THEN 100.0
            WHEN d.bytes_total > 0
            THEN least(round(d.bytes_copied * 100.0 / d.bytes_total, 1), 100.0)
       END AS percent,
       d.rows_copied,
       d.lag_bytes,
       d.lag,
       d.last_error,
       d.observed_at
  FROM dms_job_database d
  JOIN dms_job j ON j.id = d.job_id;
COMMENT ON VIEW dms_job_progress IS
    'one row per database of an engine-driven job: what the built-in engine is doing, how far the copy is, the lag';
COMMENT ON COLUMN dms_job_progress.job_id IS 'the job''s id';
COMMENT ON COLUMN dms_job_progress.job_name IS 'the job''s name';
COMMENT ON COLUMN dms_job_progress.database_name IS 'the database';
COMMENT ON COLUMN dms_job_progress.state IS 'what the engine is doing with it: preflight, schema, copying, indexing, streaming, ...';
COMMENT ON COLUMN dms_job_progress.tables_copied IS 'tables copied';
COMMENT ON COLUMN dms_job_progress.tables_total IS 'tables to copy';
COMMENT ON COLUMN dms_job_progress.bytes_copied IS 'bytes of table data copied';
COMMENT ON COLUMN dms_job_progress.bytes_total IS 'bytes to copy, estimated from the source';
COMMENT ON COLUMN dms_job_progress.percent IS
    'bytes copied out of the estimate, in percent to one decimal (at most 100); 100 once streaming';
COMMENT ON COLUMN dms_job_progress.rows_copied IS 'rows copied';
COMMENT ON COLUMN dms_job_progress.lag_bytes IS 'while streaming: bytes of source WAL the destination has not confirmed';
COMMENT ON COLUMN dms_job_progress.lag IS 'while streaming: how far behind the source the destination is, where known';
COMMENT ON COLUMN dms_job_progress.last_error IS 'the last error the engine met with this database';
COMMENT ON COLUMN dms_job_progress.observed_at IS 'when the engine last looked';

REVOKE ALL ON dms_job_database, dms_job_progress FROM PUBLIC;

--------------------------------------------------------------------------
-- Metrics: one row per sample, for a Prometheus exporter's query
--------------------------------------------------------------------------

-- Long format, as an exporter reads it: the metric's name, its labels
-- (NULL where the metric has no such label) and a value that is never NULL:
-- a value not known (a lag not measured yet) is no row, not a NULL.  The
-- (status, phase) pairs are those of the lifecycle, from the table the
-- triggers enforce, so that every one of them has a count, zero included.
-- The jobs are read from dms_job, dms_job_overview and dms_job_progress:
-- what those show, this shows, and a row of dms_job_database whose job is
-- gone is not counted.
CREATE VIEW dms_metrics AS
WITH states AS (
    SELECT t.from_status AS status, t.from_phase AS phase FROM dms_transitions() t
    UNION
    SELECT t.to_status, t.to_phase FROM dms_transitions() t WHERE t.to_status IS NOT NULL)
SELECT 'dms_jobs'::text AS metric,
       NULL::bigint AS job_id,
       NULL::text AS job_name,
       NULL::text AS database_name,
       s.status,
       s.phase,
       count(j.id)::double precision AS value
  FROM states s
  LEFT JOIN dms_job j ON j.status = s.status AND j.phase IS NOT DISTINCT FROM s.phase
 GROUP BY s.status, s.phase
UNION ALL
SELECT 'dms_jobs_oldest_status_age_seconds', NULL, NULL, NULL, j.status, j.phase,
       extract(epoch FROM now() - min(j.status_changed_at))::double precision
  FROM dms_job j
 GROUP BY j.status, j.phase
UNION ALL
SELECT 'dms_job_failed_databases', o.id, o.name, NULL, NULL, NULL,
       o.failed_databases::double precision
  FROM dms_job_overview o
UNION ALL
SELECT m.metric, p.job_id, p.job_name, p.database_name, NULL, NULL, m.value
  FROM dms_job_progress p
 CROSS JOIN LATERAL (VALUES
       ('dms_database_copied_bytes', p.bytes_copied::double precision),
       ('dms_database_copied_tables', p.tables_copied::double precision),
       ('dms_database_copied_rows', p.rows_copied::double precision),
       ('dms_database_to_copy_bytes', p.bytes_total::double precision),
       ('dms_database_to_copy_tables', p.tables_total::double precision),
       ('dms_database_lag_bytes', p.lag_bytes::double precision),
       ('dms_database_lag_seconds', extract(epoch FROM p.lag)::double precision)) m (metric, value)
 WHERE m.value IS NOT NULL;
COMMENT ON VIEW dms_metrics IS
    'one row per metric sample, for a monitoring system (a Prometheus exporter''s query): jobs by status and phase, how long the oldest has been there, failed databases per job, and per database of an engine-driven job the copy and the lag';
COMMENT ON COLUMN dms_metrics.metric IS
    'the metric''s name: dms_jobs, dms_jobs_oldest_status_age_seconds, dms_job_failed_databases, dms_database_copied_bytes, _copied_tables, _copied_rows, _to_copy_bytes, _to_copy_tables, _lag_bytes, _lag_seconds';
COMMENT ON COLUMN dms_metrics.job_id IS 'label of the per-job and per-database metrics: the job''s id; NULL for dms_jobs*';
COMMENT ON COLUMN dms_metrics.job_name IS 'label of the per-job and per-database metrics: the job''s name; NULL for dms_jobs*';
COMMENT ON COLUMN dms_metrics.database_name IS 'label of the dms_database_* metrics: the database; NULL otherwise';
COMMENT ON COLUMN dms_metrics.status IS 'label of the dms_jobs* metrics: the status; NULL otherwise';
COMMENT ON COLUMN dms_metrics.phase IS 'label of the dms_jobs* metrics: the phase, NULL where the status has none (and for the other metrics)';
COMMENT ON COLUMN dms_metrics.value IS
    'the sample: a count, bytes, tables, rows or seconds (a status''s age since status_changed_at, a lag); never NULL: what is not known has no row';

REVOKE ALL ON dms_metrics FROM PUBLIC;
