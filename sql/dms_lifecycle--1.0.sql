/* sql/dms_lifecycle--1.0.sql: types, tables, triggers, functions and view of dms_lifecycle 1.0 */

\echo Use "CREATE EXTENSION dms_lifecycle" to load this file. \quit

--------------------------------------------------------------------------
-- Types
--------------------------------------------------------------------------

CREATE TYPE dms_job_status AS ENUM (
    'not_started', 'starting', 'running', 'running_with_errors', 'completed',
    'failed', 'restarting', 'stopped', 'resuming', 'stopping');
COMMENT ON TYPE dms_job_status IS
    'status of a migration job; dms_status_label() gives the text a person reads';

CREATE TYPE dms_job_phase AS ENUM ('full_dump', 'cdc', 'promote_in_progress');
COMMENT ON TYPE dms_job_phase IS
    'where the data copy of a migration job is: the full dump, change data capture, or promotion';

CREATE TYPE dms_migration_type AS ENUM ('one_time', 'continuous');
COMMENT ON TYPE dms_migration_type IS
    'one_time: full dump only; continuous: full dump, then CDC until promoted';

CREATE TYPE dms_dump_parallelism AS ENUM ('min', 'optimal', 'max');
COMMENT ON TYPE dms_dump_parallelism IS
    'how many parallel connections the full dump uses';

CREATE TYPE dms_action AS ENUM (
    'start', 'stop', 'resume', 'restart', 'promote', 'edit', 'delete');
COMMENT ON TYPE dms_action IS
    'what an operator does to a migration job';

CREATE TYPE dms_event AS ENUM (
    'started', 'restarted', 'resumed', 'stopped', 'dump_completed', 'error',
    'errors_cleared', 'failed', 'recovered', 'promoted');
COMMENT ON TYPE dms_event IS
    'what the migration engine reports about a migration job';

--------------------------------------------------------------------------
-- Tables
--------------------------------------------------------------------------

CREATE TABLE dms_job (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                     text NOT NULL UNIQUE,
    migration_type           dms_migration_type NOT NULL DEFAULT 'continuous',
    status                   dms_job_status NOT NULL DEFAULT 'not_started',
    phase                    dms_job_phase,
    databases                text[],
    dump_parallelism         dms_dump_parallelism NOT NULL DEFAULT 'optimal',
    pending_dump_parallelism dms_dump_parallelism,
    error_message            text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    status_changed_at        timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
-- fillfactor 50: a job's row is rewritten at every transition; room on its page lets
-- the new version stay there (a HOT update), without new index entries.
COMMENT ON TABLE dms_job IS
    'migration jobs; every write is checked against the lifecycle by the trigger dms_job_guard';
COMMENT ON COLUMN dms_job.name IS 'unique name, 1 to 63 characters, not blank';
COMMENT ON COLUMN dms_job.phase IS
    'phase of running, running_with_errors, failed, stopping, stopped and resuming; NULL otherwise';
COMMENT ON COLUMN dms_job.databases IS
    'the databases to migrate; NULL means all databases of the source';
COMMENT ON COLUMN dms_job.pending_dump_parallelism IS
    'parallelism chosen by an edit that waits for the next restart; NULL if none';
COMMENT ON COLUMN dms_job.error_message IS
    'the job-level error while running_with_errors or failed; NULL otherwise';
COMMENT ON COLUMN dms_job.created_at IS 'when the job was created (set by trigger)';
COMMENT ON COLUMN dms_job.updated_at IS 'when the job last changed (set by trigger)';
COMMENT ON COLUMN dms_job.status_changed_at IS
    'when the job last changed status or phase (set by trigger)';

CREATE TABLE dms_job_failure (
    job_id        bigint NOT NULL REFERENCES dms_job (id) ON DELETE CASCADE,
    database_name text NOT NULL,
    phase         dms_job_phase NOT NULL,
    error_message text NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, database_name)
);
COMMENT ON TABLE dms_job_failure IS
    'one row per failed database of a failed migration job; kept consistent with dms_job by triggers';
COMMENT ON COLUMN dms_job_failure.phase IS 'the phase in which this database failed (set by trigger)';
COMMENT ON COLUMN dms_job_failure.failed_at IS 'when this database last failed (set by trigger)';

CREATE TABLE dms_job_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint NOT NULL,
    job_name      text NOT NULL,
    cause         text NOT NULL,
    from_status   dms_job_status,
    from_phase    dms_job_phase,
    to_status     dms_job_status,
    to_phase      dms_job_phase,
    database_name text,
    message       text,
    actor         text NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dms_job_history_job_id_idx ON dms_job_history (job_id, id);
COMMENT ON TABLE dms_job_history IS
    'append-only audit log: one row per created job, transition, edit and delete';
COMMENT ON COLUMN dms_job_history.cause IS
    'the action or event that made the change, or create';
COMMENT ON COLUMN dms_job_history.from_status IS 'status before the change; NULL for create';
COMMENT ON COLUMN dms_job_history.to_status IS 'status after the change; NULL for delete';
COMMENT ON COLUMN dms_job_history.database_name IS
    'the database a per-database failure or an edit of the database list concerns';
COMMENT ON COLUMN dms_job_history.message IS
    'the error of an error or failed event, or what an edit changed';
COMMENT ON COLUMN dms_job_history.actor IS
    'the role that made the change, as current_user was when it called';

SELECT pg_catalog.pg_extension_config_dump('dms_job', '');
SELECT pg_catalog.pg_extension_config_dump('dms_job_failure', '');
SELECT pg_catalog.pg_extension_config_dump('dms_job_history', '');
SELECT pg_catalog.pg_extension_config_dump('dms_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dms_job_history_id_seq', '');

--------------------------------------------------------------------------
-- Triggers
--------------------------------------------------------------------------

CREATE FUNCTION dms_job_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_job_guard' LANGUAGE C;
COMMENT ON FUNCTION dms_job_guard() IS
    'BEFORE trigger on dms_job: refuses every write that is no edge of the lifecycle, keeps the timestamps';

CREATE FUNCTION dms_job_record() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_job_record' LANGUAGE C;
COMMENT ON FUNCTION dms_job_record() IS
    'AFTER trigger on dms_job: writes the history row, sends the notification, clears failure rows';

CREATE FUNCTION dms_failure_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_failure_guard' LANGUAGE C;
COMMENT ON FUNCTION dms_failure_guard() IS
    'BEFORE trigger on dms_job_failure: a failed database puts its job into failed';

CREATE FUNCTION dms_failure_removed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_failure_removed' LANGUAGE C;
COMMENT ON FUNCTION dms_failure_removed() IS
    'AFTER trigger on dms_job_failure: a failed job whose last failed database left the migration recovers';

CREATE FUNCTION dms_history_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_history_append_only' LANGUAGE C;
COMMENT ON FUNCTION dms_history_append_only() IS
    'BEFORE trigger on dms_job_history: refuses UPDATE and DELETE';

CREATE FUNCTION dms_refuse_truncate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dms_refuse_truncate' LANGUAGE C;
COMMENT ON FUNCTION dms_refuse_truncate() IS
    'BEFORE TRUNCATE trigger on dms_job and dms_job_failure: rows leave one by one, through the guard';

CREATE TRIGGER dms_job_guard BEFORE INSERT OR UPDATE OR DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION dms_job_guard();
CREATE TRIGGER dms_job_truncate BEFORE TRUNCATE ON dms_job
    FOR EACH STATEMENT EXECUTE FUNCTION dms_refuse_truncate();
CREATE TRIGGER dms_failure_truncate BEFORE TRUNCATE ON dms_job_failure
    FOR EACH STATEMENT EXECUTE FUNCTION dms_refuse_truncate();
CREATE TRIGGER dms_job_record AFTER INSERT OR UPDATE OR DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION dms_job_record();
CREATE TRIGGER dms_failure_guard BEFORE INSERT OR UPDATE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION dms_failure_guard();
CREATE TRIGGER dms_failure_removed AFTER DELETE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION dms_failure_removed();
CREATE TRIGGER dms_history_append_only BEFORE UPDATE OR DELETE ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION dms_history_append_only();

--------------------------------------------------------------------------
-- Operator actions
--------------------------------------------------------------------------

CREATE FUNCTION dms_create_job(name text,
                               migration_type dms_migration_type DEFAULT 'continuous',
                               databases text[] DEFAULT NULL,
                               dump_parallelism dms_dump_parallelism DEFAULT 'optimal')
    RETURNS bigint AS 'MODULE_PATHNAME', 'dms_create_job' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism) IS
    'creates a migration job in "Not started" and returns its id';

CREATE FUNCTION dms_start(job_id bigint) RETURNS dms_job_status
    AS 'MODULE_PATHNAME', 'dms_start' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_start(bigint) IS 'starts a job that has not started; returns its new status';

CREATE FUNCTION dms_stop(job_id bigint) RETURNS dms_job_status
    AS 'MODULE_PATHNAME', 'dms_stop' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_stop(bigint) IS 'stops a running job; returns its new status';

CREATE FUNCTION dms_resume(job_id bigint) RETURNS dms_job_status
    AS 'MODULE_PATHNAME', 'dms_resume' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_resume(bigint) IS 'resumes a job stopped in CDC; returns its new status';

CREATE FUNCTION dms_restart(job_id bigint) RETURNS dms_job_status
    AS 'MODULE_PATHNAME', 'dms_restart' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_restart(bigint) IS
    'restarts a job from the full dump, applying a pending dump parallelism and clearing its errors; returns its new status';

CREATE FUNCTION dms_promote(job_id bigint) RETURNS dms_job_status
    AS 'MODULE_PATHNAME', 'dms_promote' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_promote(bigint) IS
    'promotes the destination of a job in CDC; returns its new status';

CREATE FUNCTION dms_delete(job_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'dms_delete' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_delete(bigint) IS 'deletes a job (its history stays); returns true';

CREATE FUNCTION dms_set_dump_parallelism(job_id bigint, level dms_dump_parallelism)
    RETURNS dms_job_status AS 'MODULE_PATHNAME', 'dms_set_dump_parallelism' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_set_dump_parallelism(bigint, dms_dump_parallelism) IS
    'edit: sets the dump parallelism now if the job has not started, else at its next restart';

CREATE FUNCTION dms_add_database(job_id bigint, database_name text)
    RETURNS dms_job_status AS 'MODULE_PATHNAME', 'dms_add_database' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_add_database(bigint, text) IS
    'edit: adds a database to a job that is not started, stopped or failed';

CREATE FUNCTION dms_remove_database(job_id bigint, database_name text)
    RETURNS dms_job_status AS 'MODULE_PATHNAME', 'dms_remove_database' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_remove_database(bigint, text) IS
    'edit: removes a database (and its failure) from a job that is not started, stopped or failed';

--------------------------------------------------------------------------
-- Engine events
--------------------------------------------------------------------------

CREATE FUNCTION dms_report(job_id bigint, event dms_event,
                           message text DEFAULT NULL, database_name text DEFAULT NULL)
    RETURNS dms_job_status AS 'MODULE_PATHNAME', 'dms_report' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_report(bigint, dms_event, text, text) IS
    'the migration engine reports an event; failed with a database_name records that database''s failure';

--------------------------------------------------------------------------
-- Inspection
--------------------------------------------------------------------------

CREATE FUNCTION dms_allowed_actions(job_id bigint) RETURNS dms_action[]
    AS 'MODULE_PATHNAME', 'dms_allowed_actions' LANGUAGE C STABLE;
COMMENT ON FUNCTION dms_allowed_actions(bigint) IS
    'the actions an operator may take on the job now, in enum order';

CREATE FUNCTION dms_transitions(OUT kind text, OUT name text,
                                OUT from_status dms_job_status, OUT from_phase dms_job_phase,
                                OUT to_status dms_job_status, OUT to_phase dms_job_phase,
                                OUT migration_type dms_migration_type)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'dms_transitions' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION dms_transitions() IS
    'every edge of the lifecycle, from the table the triggers enforce; migration_type NULL means either type';

CREATE FUNCTION dms_status_label(dms_job_status) RETURNS text
    AS 'MODULE_PATHNAME', 'dms_status_label' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION dms_status_label(dms_job_status) IS
    'the text a person reads for a status: Not started, Starting..., Running, ...';

CREATE FUNCTION dms_substatus_label(dms_job_status, dms_job_phase) RETURNS text
    AS 'MODULE_PATHNAME', 'dms_substatus_label' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION dms_substatus_label(dms_job_status, dms_job_phase) IS
    'the substatus a person reads: Full dump, CDC, Promote in progress, Failed in CDC, Stopped in full dump, ...; NULL if none';

CREATE FUNCTION dms_action_label(dms_action) RETURNS text
    AS 'MODULE_PATHNAME', 'dms_action_label' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION dms_action_label(dms_action) IS
    'the text a person reads for an action: Start, Stop, ...';

CREATE FUNCTION dms_allowed_action_labels(dms_job_status, dms_job_phase) RETURNS text
    AS 'MODULE_PATHNAME', 'dms_allowed_action_labels' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION dms_allowed_action_labels(dms_job_status, dms_job_phase) IS
    'the labels of the actions allowed in a (status, phase), joined by '', ''; used by dms_job_overview';

CREATE VIEW dms_job_overview AS
SELECT j.id,
       j.name,
       j.migration_type,
       dms_status_label(j.status) AS status,
       dms_substatus_label(j.status, j.phase) AS substatus,
       dms_allowed_action_labels(j.status, j.phase) AS allowed_actions,
       j.error_message,
       coalesce(f.failed_databases, 0) AS failed_databases,
       j.dump_parallelism,
       j.pending_dump_parallelism,
       now() - j.status_changed_at AS status_age,
       j.updated_at
  FROM dms_job j
  LEFT JOIN (SELECT job_id, count(*) AS failed_databases
               FROM dms_job_failure
              GROUP BY job_id) f ON f.job_id = j.id;
COMMENT ON VIEW dms_job_overview IS
    'one row per migration job, in the words a person reads';

--------------------------------------------------------------------------
-- Privileges
--------------------------------------------------------------------------

CREATE FUNCTION dms_grant(role regrole, capability text) RETURNS void
    AS 'MODULE_PATHNAME', 'dms_grant' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_grant(regrole, text) IS
    'gives a role the capability reader, operator or engine';

CREATE FUNCTION dms_revoke(role regrole, capability text) RETURNS void
    AS 'MODULE_PATHNAME', 'dms_revoke' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION dms_revoke(regrole, text) IS
    'takes a capability back from a role; revoking reader takes back all three';

-- Nothing is PUBLIC but the labels and the lifecycle itself, which reveal no job.
REVOKE ALL ON dms_job, dms_job_failure, dms_job_history, dms_job_overview FROM PUBLIC;
REVOKE ALL ON FUNCTION
    dms_job_guard(), dms_job_record(), dms_failure_guard(), dms_failure_removed(),
    dms_history_append_only(), dms_refuse_truncate(),
    dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism),
    dms_start(bigint), dms_stop(bigint), dms_resume(bigint), dms_restart(bigint),
    dms_promote(bigint), dms_delete(bigint),
    dms_set_dump_parallelism(bigint, dms_dump_parallelism),
    dms_add_database(bigint, text), dms_remove_database(bigint, text),
    dms_report(bigint, dms_event, text, text),
    dms_allowed_actions(bigint),
    dms_grant(regrole, text), dms_revoke(regrole, text)
  FROM PUBLIC;
