-- bench/floor.sql: the floor contender's database: the extension's own tables and
-- indexes with its triggers disabled.  bench/workloads.sh writes to them with plain
-- SQL statements that perform the extension's row writes (the job UPDATE, the history
-- INSERT, the notification) with no validation at all.
CREATE EXTENSION dms_lifecycle;
ALTER TABLE dms_job DISABLE TRIGGER USER;
ALTER TABLE dms_job_failure DISABLE TRIGGER USER;
ALTER TABLE dms_job_history DISABLE TRIGGER USER;
