/* sql/dms_lifecycle--1.0--1.1.sql: dms_lifecycle 1.1, the tables written as ordinary tables */

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
