--
-- direct_writes: the guard holds whoever writes the jobs table.
--
-- Everything here runs as the superuser with plain INSERT, UPDATE and DELETE
-- on dms_job: a write along an edge of SPEC section 4 is accepted and
-- recorded under the edge's name; every other write is refused (55000) and
-- changes nothing.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- pg_temp.try(statement), shared by the tests that show SQLSTATEs
\i sql/try.inc

-- sqlstate_of(statement): 'ok' or 'ERROR <sqlstate>' (for errors whose
-- wording the SPEC leaves open).
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE;
END $$;

-- pg_temp.state(status, phase) and the view hist, shared with other tests
\i sql/history.inc

-- Everything about the jobs, as text, to compare before and after a refused write.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(j::text, ' ' ORDER BY j.id) FROM dms_job j), '')
        || ' | ' || (SELECT count(*) FROM dms_job_history)
        || ' | ' || coalesce((SELECT string_agg(f::text, ' ' ORDER BY f.job_id, f.database_name)
                                FROM dms_job_failure f), '')
$$;

-- Move a job along a path of direct UPDATEs: each step sets (status, phase, error_message).
CREATE FUNCTION pg_temp.walk(job bigint, VARIADIC steps text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    step text;
    parts text[];
BEGIN
    FOREACH step IN ARRAY steps LOOP
        parts := string_to_array(step, '/');
        UPDATE dms_job
           SET status = parts[1]::dms_job_status,
               phase = nullif(parts[2], '')::dms_job_phase,
               error_message = nullif(parts[3], '')
         WHERE id = job;
    END LOOP;
    RETURN (SELECT pg_temp.state(status, phase) FROM dms_job WHERE id = job);
END $$;

--------------------------------------------------------------------------
-- 1. Direct UPDATEs along edges are accepted and named after the edge.
--------------------------------------------------------------------------

-- Job 1 (continuous) walks its whole life by UPDATE alone.
INSERT INTO dms_job (name, databases) VALUES ('walker', ARRAY['a', 'b']);
UPDATE dms_job SET status = 'starting' WHERE id = 1;                                          -- start
UPDATE dms_job SET status = 'running', phase = 'full_dump' WHERE id = 1;                      -- started
UPDATE dms_job SET status = 'running_with_errors', error_message = 'slow source' WHERE id = 1; -- error
UPDATE dms_job SET error_message = 'very slow source' WHERE id = 1;                           -- error (self-loop)
UPDATE dms_job SET phase = 'cdc' WHERE id = 1;                                                -- dump_completed
UPDATE dms_job SET status = 'running', error_message = NULL WHERE id = 1;                     -- errors_cleared
UPDATE dms_job SET status = 'stopping' WHERE id = 1;                                          -- stop
UPDATE dms_job SET status = 'stopped' WHERE id = 1;                                           -- stopped
UPDATE dms_job SET status = 'resuming' WHERE id = 1;                                          -- resume
UPDATE dms_job SET status = 'running' WHERE id = 1;                                           -- resumed
UPDATE dms_job SET status = 'failed', error_message = 'disk full' WHERE id = 1;               -- failed
UPDATE dms_job SET error_message = 'disk still full' WHERE id = 1;                            -- failed (self-loop)
UPDATE dms_job SET status = 'running', error_message = NULL WHERE id = 1;                     -- recovered
UPDATE dms_job SET phase = 'promote_in_progress' WHERE id = 1;                                -- promote
UPDATE dms_job SET status = 'failed', phase = 'cdc', error_message = 'promotion failed' WHERE id = 1; -- failed
UPDATE dms_job SET status = 'running', phase = 'promote_in_progress', error_message = NULL WHERE id = 1; -- promote
UPDATE dms_job SET status = 'completed', phase = NULL WHERE id = 1;                           -- promoted
SELECT * FROM hist WHERE job = 1 ORDER BY id;
SELECT id, name, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 1;

-- The remaining edges, on job 2 (continuous) and job 3 (one_time), one UPDATE each.
INSERT INTO dms_job (name) VALUES ('second');
INSERT INTO dms_job (name, migration_type) VALUES ('third', 'one_time');
SELECT pg_temp.walk(2, 'starting//', 'running/full_dump/', 'stopping/full_dump/', 'stopped/full_dump/',
                    'restarting//', 'running/full_dump/', 'running_with_errors/full_dump/e',
                    'restarting//', 'failed/full_dump/f', 'restarting//', 'failed/full_dump/f',
                    'running/full_dump/', 'running/cdc/', 'stopping/cdc/', 'stopped/cdc/',
                    'running/promote_in_progress/', 'failed/cdc/f', 'restarting//') AS job_2;
SELECT pg_temp.walk(3, 'starting//', 'running/full_dump/', 'running_with_errors/full_dump/e',
                    'completed//') AS job_3;
SELECT cause, "from", "to" FROM hist WHERE job = 2 ORDER BY id;
SELECT cause, "from", "to" FROM hist WHERE job = 3 ORDER BY id;
-- Every (from, to) recorded above is listed by dms_transitions() under the same name.
SELECT count(*) AS history_steps,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM dms_transitions() t
            WHERE t.name = h.cause
              AND t.from_status = h.from_status AND t.from_phase IS NOT DISTINCT FROM h.from_phase
              AND t.to_status = h.to_status AND t.to_phase IS NOT DISTINCT FROM h.to_phase)) AS listed
  FROM dms_job_history h
 WHERE h.cause NOT IN ('create', 'edit', 'delete');

--------------------------------------------------------------------------
-- 2. UPDATEs along no edge are refused.
--------------------------------------------------------------------------

-- Jobs 4 to 7: Running (CDC), Not started, Stopped (Full dump), Running with errors (CDC).
INSERT INTO dms_job (name, databases)
VALUES ('cdc', NULL), ('fresh', NULL), ('halted', ARRAY['a']), ('noisy', NULL);
SELECT pg_temp.walk(4, 'starting//', 'running/full_dump/', 'running/cdc/') AS job_4,
       pg_temp.walk(6, 'starting//', 'running/full_dump/', 'stopping/full_dump/', 'stopped/full_dump/') AS job_6,
       pg_temp.walk(7, 'starting//', 'running/full_dump/', 'running/cdc/', 'running_with_errors/cdc/lag') AS job_7;
SELECT pg_temp.snapshot() AS before \gset
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$UPDATE dms_job SET status = 'completed', phase = NULL WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'running', phase = 'full_dump' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'starting', phase = NULL WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'stopped' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'running', phase = 'full_dump' WHERE id = 5$$),
    ($$UPDATE dms_job SET status = 'completed' WHERE id = 5$$),
    ($$UPDATE dms_job SET status = 'resuming', phase = 'cdc' WHERE id = 6$$),
    ($$UPDATE dms_job SET status = 'running', phase = 'promote_in_progress' WHERE id = 6$$),
    ($$UPDATE dms_job SET status = 'not_started', phase = NULL WHERE id = 7$$),
    ($$UPDATE dms_job SET status = 'completed', phase = NULL WHERE id = 7$$),
    ($$UPDATE dms_job SET status = 'running', phase = 'cdc' WHERE id = 3$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- Illegal (status, phase) pairs are refused, whatever the phase.
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$UPDATE dms_job SET phase = NULL WHERE id = 4$$),
    ($$UPDATE dms_job SET phase = 'cdc' WHERE id = 5$$),
    ($$UPDATE dms_job SET status = 'stopping', phase = 'promote_in_progress' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'resuming', phase = 'full_dump' WHERE id = 6$$),
    ($$UPDATE dms_job SET status = 'running_with_errors', phase = 'promote_in_progress', error_message = 'x' WHERE id = 7$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- An error message appears only with an edge that carries one: on a Running
-- job it is no edge; running with errors and failed need a non-empty one.
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$UPDATE dms_job SET error_message = 'oops' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'running_with_errors' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'failed', error_message = '' WHERE id = 4$$),
    ($$UPDATE dms_job SET error_message = NULL WHERE id = 7$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- A transition and an edit in one UPDATE are refused.
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$UPDATE dms_job SET status = 'starting', name = 'fresh2' WHERE id = 5$$),
    ($$UPDATE dms_job SET status = 'stopping', dump_parallelism = 'max' WHERE id = 4$$),
    ($$UPDATE dms_job SET status = 'restarting', phase = NULL, databases = ARRAY['x'] WHERE id = 6$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

--------------------------------------------------------------------------
-- 3. Edits (name, dump parallelism, databases) only where "edit" is allowed.
--------------------------------------------------------------------------

-- Allowed: Not started (job 5), Running in CDC (job 4), Stopped (job 6).
-- A direct UPDATE may replace the whole database list: job 6 migrated a,
-- now it migrates x and y.
UPDATE dms_job SET name = 'fresh-renamed', dump_parallelism = 'max' WHERE id = 5;
UPDATE dms_job SET name = 'cdc-renamed' WHERE id = 4;
UPDATE dms_job SET databases = ARRAY['x', 'y'] WHERE id = 6;
SELECT id, name, dump_parallelism, databases, status, phase FROM dms_job WHERE id IN (4, 5, 6) ORDER BY id;
SELECT * FROM hist WHERE cause = 'edit' ORDER BY id;

-- Refused: no edit in Running with errors (job 7), Completed (job 1),
-- Restarting (job 2); databases only in Not started, Stopped, Failed.
SELECT pg_temp.snapshot() AS before \gset
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$UPDATE dms_job SET name = 'noisy-renamed' WHERE id = 7$$),
    ($$UPDATE dms_job SET dump_parallelism = 'min' WHERE id = 7$$),
    ($$UPDATE dms_job SET name = 'walker-renamed' WHERE id = 1$$),
    ($$UPDATE dms_job SET databases = ARRAY['c'] WHERE id = 2$$),
    ($$UPDATE dms_job SET databases = ARRAY['a', 'b', 'c'] WHERE id = 4$$),
    ($$UPDATE dms_job SET migration_type = 'one_time' WHERE id = 4$$),
    ($$UPDATE dms_job SET name = '' WHERE id = 5$$),
    ($$UPDATE dms_job SET name = 'walker' WHERE id = 5$$),
    ($$UPDATE dms_job SET databases = '{}' WHERE id = 6$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- A failed job whose failed database is dropped from its list by a direct
-- UPDATE: the edit takes the failure row with it, and the job recovers.
INSERT INTO dms_job (name, databases) VALUES ('dropper', ARRAY['p', 'q']);
SELECT pg_temp.walk(8, 'starting//', 'running/full_dump/') AS job_8;
INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (8, 'p', 'full_dump', 'p: broken');
SELECT id, status, substatus, failed_databases FROM dms_job_overview WHERE id = 8;
UPDATE dms_job SET databases = ARRAY['q'] WHERE id = 8;
SELECT id, status, substatus, failed_databases FROM dms_job_overview WHERE id = 8;
SELECT * FROM hist WHERE job = 8 ORDER BY id DESC LIMIT 3;

--------------------------------------------------------------------------
-- 4. INSERT: a new job is "Not started"; the trigger keeps the timestamps.
--------------------------------------------------------------------------

-- Timestamps given by the writer are ignored: the trigger sets them to the
-- transaction's time.  An UPDATE of a timestamp alone changes nothing.
BEGIN;
INSERT INTO dms_job (name, created_at, updated_at, status_changed_at)
VALUES ('backdated', '2000-01-01', '2000-01-01', '2000-01-01');
SELECT id, name, created_at = now() AS created_now, updated_at = now() AS updated_now,
       status_changed_at = now() AS status_changed_now
  FROM dms_job WHERE name = 'backdated';
COMMIT;
SELECT pg_temp.snapshot() AS before \gset
UPDATE dms_job SET created_at = '2000-01-01', updated_at = '2000-01-01', status_changed_at = '2000-01-01'
 WHERE id = 9;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SELECT * FROM hist WHERE job = 9 ORDER BY id;

-- updated_at moves on every change, status_changed_at only when status or phase does.
BEGIN;
UPDATE dms_job SET name = 'backdated-renamed' WHERE id = 9;
SELECT updated_at = now() AS updated_now, status_changed_at = now() AS status_changed_now
  FROM dms_job WHERE id = 9;
COMMIT;
BEGIN;
UPDATE dms_job SET status = 'starting' WHERE id = 9;
SELECT updated_at = now() AS updated_now, status_changed_at = now() AS status_changed_now,
       created_at < now() AS created_earlier
  FROM dms_job WHERE id = 9;
COMMIT;

-- A new row that is not "Not started", with no phase, error or pending edit, is refused.
SELECT pg_temp.snapshot() AS before \gset
SELECT stmt, pg_temp.try(stmt) AS result FROM (VALUES
    ($$INSERT INTO dms_job (name, status) VALUES ('early', 'starting')$$),
    ($$INSERT INTO dms_job (name, status, phase) VALUES ('early', 'running', 'cdc')$$),
    ($$INSERT INTO dms_job (name, status) VALUES ('early', 'completed')$$),
    ($$INSERT INTO dms_job (name, phase) VALUES ('early', 'full_dump')$$),
    ($$INSERT INTO dms_job (name, error_message) VALUES ('early', 'already broken')$$),
    ($$INSERT INTO dms_job (name, pending_dump_parallelism) VALUES ('early', 'max')$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
-- (Each refused INSERT has used up an identity value: the next job is not 9.)

--------------------------------------------------------------------------
-- 5. DELETE: refused only in "Running with errors".
--------------------------------------------------------------------------

SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.try($$DELETE FROM dms_job WHERE id = 7$$) AS delete_running_with_errors;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
-- Job 9 (Starting...) and job 3 (Completed) can go; their history stays, with a delete row.
DELETE FROM dms_job WHERE id IN (3, 9);
SELECT id FROM dms_job WHERE id IN (3, 9);
-- (one statement deletes both, in the order of the heap: sorted by job, not by id)
SELECT job, cause, "from", "to", database_name, message
  FROM hist WHERE job IN (3, 9) AND cause = 'delete' ORDER BY job;
SELECT job_id, count(*) AS history_rows FROM dms_job_history WHERE job_id IN (3, 9) GROUP BY job_id ORDER BY job_id;

--------------------------------------------------------------------------
-- 6. The history is append-only.
--------------------------------------------------------------------------

SELECT count(*) AS history_rows FROM dms_job_history \gset
SELECT pg_temp.try($$UPDATE dms_job_history SET cause = 'forged' WHERE job_id = 1$$) AS update_history,
       pg_temp.try($$DELETE FROM dms_job_history WHERE job_id = 3$$) AS delete_history;
SELECT count(*) - :history_rows AS history_rows_lost, count(*) FILTER (WHERE cause = 'forged') AS forged
  FROM dms_job_history;

--------------------------------------------------------------------------
-- 7. A statement is all or nothing.
--------------------------------------------------------------------------

-- Stopping jobs 4 (Running, CDC) and 7 (Running with errors, CDC) is fine,
-- but job 5 (Not started) cannot stop: the UPDATE of the three changes nothing.
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.try($$UPDATE dms_job SET status = 'stopping' WHERE id IN (4, 5, 7)$$) AS stop_three;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SELECT id, status, substatus FROM dms_job_overview WHERE id IN (4, 5, 7) ORDER BY id;
-- Without job 5 it works, and each job has its own history row named "stop".
UPDATE dms_job SET status = 'stopping' WHERE id IN (4, 7);
SELECT * FROM hist WHERE job IN (4, 7) AND cause = 'stop' ORDER BY job;

-- Set-based use of the functions: start every job that has not started.
INSERT INTO dms_job (name) VALUES ('batch-1'), ('batch-2');
SELECT id, name, dms_start(id) FROM dms_job WHERE status = 'not_started' ORDER BY id;
SELECT id, name, status FROM dms_job_overview WHERE id = 5 OR name LIKE 'batch-%' ORDER BY id;
SELECT h.job, h.cause, h."from", h."to"
  FROM hist h JOIN dms_job j ON j.id = h.job
 WHERE (j.id = 5 OR j.name LIKE 'batch-%') AND h.cause = 'start' ORDER BY h.job;

--------------------------------------------------------------------------
-- 8. A no-op UPDATE writes no history and keeps updated_at.
--------------------------------------------------------------------------

SELECT pg_temp.snapshot() AS before \gset
UPDATE dms_job SET status = status;
UPDATE dms_job SET name = name, databases = databases, error_message = error_message WHERE id = 6;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

--------------------------------------------------------------------------
-- 9. COPY FROM, as pg_restore does it, loads jobs as they were.
--------------------------------------------------------------------------

-- A restore must bring back jobs in every state with their own history, so a
-- COPY FROM (with no action under way) loads a job in any legal state and
-- writes no history row; an illegal (status, phase) pair is still refused.
SELECT count(*) AS history_rows FROM dms_job_history \gset
COPY dms_job (id, name, status, phase, error_message, created_at, updated_at, status_changed_at) FROM stdin;
100	restored	failed	cdc	disk full	2020-01-01 00:00:00+00	2020-01-02 00:00:00+00	2020-01-02 00:00:00+00
\.
SELECT id, name, status, substatus, error_message,
       updated_at = '2020-01-02 00:00:00+00' AS kept_updated_at
  FROM dms_job_overview WHERE id = 100;
SELECT count(*) - :history_rows AS new_history_rows FROM dms_job_history;
SELECT pg_temp.snapshot() AS before \gset
-- (FROM PROGRAM rather than stdin so that psql records the SQLSTATE; the
-- empty last CSV field is a NULL phase.)
COPY dms_job (id, name, status, phase) FROM PROGRAM 'echo 101,impossible,running,' WITH (FORMAT csv);
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

--------------------------------------------------------------------------
-- 10. TRUNCATE is a write too.
--------------------------------------------------------------------------

-- Emptying the table while a job is "Running with errors" (which cannot be
-- deleted) must be refused like the DELETE above (55000): the delete edge
-- does not start there, and every delete needs its history row.
INSERT INTO dms_job (name) VALUES ('last-one');
SELECT dms_start(id), dms_report(id, 'started'), dms_report(id, 'error', 'lag')
  FROM dms_job WHERE name = 'last-one';
SELECT pg_temp.snapshot() AS before \gset
SET client_min_messages = warning;
SELECT pg_temp.sqlstate_of('TRUNCATE dms_job CASCADE') AS truncate_jobs;
RESET client_min_messages;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

--------------------------------------------------------------------------
-- 11. NULL where a column is NOT NULL.
--------------------------------------------------------------------------

-- The guard runs before PostgreSQL checks NOT NULL, so it says the same
-- thing PostgreSQL would (23502) instead of reading a value that is absent.
SELECT pg_temp.snapshot() AS before \gset
SELECT stmt, pg_temp.try(stmt) AS result
  FROM (VALUES
    ($$INSERT INTO dms_job (name) VALUES (NULL)$$),
    ($$UPDATE dms_job SET name = NULL$$),
    ($$UPDATE dms_job SET status = NULL$$),
    ($$UPDATE dms_job SET migration_type = NULL$$),
    ($$UPDATE dms_job SET dump_parallelism = NULL$$),
    ($$INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (NULL, 'x', 'y')$$),
    ($$INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (1, NULL, 'y')$$),
    ($$INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (1, 'x', NULL)$$)
  ) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

--------------------------------------------------------------------------
-- 12. A direct restart applies the pending parallelism and is recorded.
--------------------------------------------------------------------------

-- The edge's own effects (the pending parallelism taking effect) are no
-- edit: the history names the restart.
SELECT dms_create_job('pending-restart') AS id \gset
SELECT dms_start(:id), dms_report(:id, 'started'), dms_report(:id, 'dump_completed'),
       dms_stop(:id), dms_report(:id, 'stopped');
SELECT dms_set_dump_parallelism(:id, 'min');
UPDATE dms_job SET status = 'restarting', phase = NULL WHERE id = :id;
SELECT dump_parallelism, pending_dump_parallelism FROM dms_job WHERE id = :id;
SELECT cause, from_status, to_status FROM dms_job_history
 WHERE job_id = :id ORDER BY id DESC LIMIT 2;
