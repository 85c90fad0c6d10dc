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
