-- hostile_triggers: a user's triggers, columns and constraints that try to
-- bend the lifecycle, and what each one meets.  The tables are ordinary
-- tables (SPEC 11): whatever a user adds applies to the extension's writes,
-- and nothing a user adds moves a job along a path the lifecycle has not.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
\i sql/try.inc
CREATE EXTENSION dms_lifecycle;

-- What a call left behind: the jobs, their failures and the history.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(format('%s:%s/%s', name, status, phase), ' ' ORDER BY id)
                       FROM dms_job), '')
        || ' | ' || coalesce((SELECT string_agg(database_name, ' ' ORDER BY database_name)
                                FROM dms_job_failure), '')
        || ' | ' || (SELECT count(*) FROM dms_job_history)
$$;

SELECT dms_create_job('orders', 'continuous', ARRAY['shop', 'billing']) AS orders \gset
SELECT dms_start(:orders), dms_report(:orders, 'started');

--------------------------------------------------------------------------
-- 1. Column triggers: an action's UPDATE sets the columns it may change.
--------------------------------------------------------------------------

-- "UPDATE OF status" fires for an edge as for a direct UPDATE of the
-- status, "UPDATE OF databases" for the edit of the databases; "UPDATE OF
-- name" never, since no call sets the name.
CREATE TABLE fired (n serial, tg text);
CREATE FUNCTION note_fired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fired (tg) VALUES (TG_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER of_status AFTER UPDATE OF status ON dms_job
    FOR EACH ROW EXECUTE FUNCTION note_fired();
CREATE TRIGGER of_name AFTER UPDATE OF name ON dms_job
    FOR EACH ROW EXECUTE FUNCTION note_fired();
CREATE TRIGGER of_databases AFTER UPDATE OF databases ON dms_job
    FOR EACH ROW EXECUTE FUNCTION note_fired();
SELECT dms_report(:orders, 'dump_completed');
SELECT dms_stop(:orders), dms_report(:orders, 'stopped');
SELECT dms_add_database(:orders, 'crm');
SELECT tg, count(*) FROM fired GROUP BY tg ORDER BY tg;
DROP TRIGGER of_status ON dms_job;
DROP TRIGGER of_name ON dms_job;
DROP TRIGGER of_databases ON dms_job;

--------------------------------------------------------------------------
-- 2. A trigger that runs after the guard and moves the job elsewhere.
--------------------------------------------------------------------------

-- BEFORE triggers fire in name order: "zz_finish" runs after dms_job_guard
-- and sets the job "Completed".  The history trigger judges the row as it
-- was written: the call is refused, as is a direct UPDATE, and nothing
-- changes.
CREATE FUNCTION finish_early() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.status := 'completed';
    NEW.phase := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_finish BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION finish_early();
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
SELECT pg_temp.try($$UPDATE dms_job SET status = 'resuming' WHERE id = 1$$);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
DROP TRIGGER zz_finish ON dms_job;

--------------------------------------------------------------------------
-- 3. A trigger that changes the job whose change fired it.
--------------------------------------------------------------------------

-- "a_touch" runs before the guard and updates the same row, as a plain
-- UPDATE would meet it: 27000, as PostgreSQL says of such a trigger.
ALTER TABLE dms_job ADD COLUMN note text;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        UPDATE dms_job SET note = 'touched' WHERE id = NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_touch BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION touch();
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
SELECT pg_temp.try($$UPDATE dms_job SET status = 'resuming' WHERE id = 1$$);
DROP TRIGGER a_touch ON dms_job;

-- "b_again" calls an action on the same job from its trigger.
CREATE FUNCTION again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        PERFORM dms_set_dump_parallelism(NEW.id, 'max');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER b_again BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION again();
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
DROP TRIGGER b_again ON dms_job;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- An AFTER trigger may change the job again, as on any table: the change
-- is complete when it fires, and its own write is judged like any other.
CREATE FUNCTION annotate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        UPDATE dms_job SET note = 'resumed by ' || current_user WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER annotate AFTER UPDATE ON dms_job
    FOR EACH ROW WHEN (NEW.status = 'resuming') EXECUTE FUNCTION annotate();
SELECT dms_resume(1);
SELECT name, status, phase, note FROM dms_job ORDER BY id;
SELECT cause, from_status, to_status FROM dms_job_history WHERE job_id = 1 ORDER BY id DESC LIMIT 1;
DROP TRIGGER annotate ON dms_job;
SELECT dms_report(1, 'resumed');

--------------------------------------------------------------------------
-- 4. Triggers that skip the write.
--------------------------------------------------------------------------

-- A BEFORE trigger that returns NULL skips the row, as on any table.  The
-- call then changes nothing and says so: the status as it was, false for a
-- delete, NULL for a creation; a failed database is not recorded.
CREATE FUNCTION skip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;
CREATE TRIGGER skip_update BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT pg_temp.snapshot() AS before \gset
SELECT dms_stop(1);
SELECT dms_report(1, 'failed', 'disk full', 'shop');
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
DROP TRIGGER skip_update ON dms_job;
CREATE TRIGGER skip_delete BEFORE DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT dms_delete(1);
DROP TRIGGER skip_delete ON dms_job;
CREATE TRIGGER skip_insert BEFORE INSERT ON dms_job
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT dms_create_job('skipped') IS NULL AS not_created;
DROP TRIGGER skip_insert ON dms_job;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- A history row skipped by a trigger sends no notification: there is no
-- row for it to name.  The change itself is made.
LISTEN dms_lifecycle;
CREATE TRIGGER skip_history BEFORE INSERT ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT dms_stop(1);
DROP TRIGGER skip_history ON dms_job_history;
UNLISTEN dms_lifecycle;
SELECT name, status, phase FROM dms_job ORDER BY id;

--------------------------------------------------------------------------
-- 5. Columns and constraints the extension's writes must obey.
--------------------------------------------------------------------------

-- A column of a NOT NULL domain with no default: a new job would have NULL
-- there, which the domain refuses (23502), as it refuses a plain INSERT.
CREATE DOMAIN required_int AS integer NOT NULL;
ALTER TABLE dms_job ADD COLUMN budget required_int DEFAULT 1;
ALTER TABLE dms_job ALTER COLUMN budget DROP DEFAULT;
SELECT pg_temp.try($$SELECT dms_create_job('domain')$$);
SELECT pg_temp.try($$INSERT INTO dms_job (name) VALUES ('domain')$$);
ALTER TABLE dms_job DROP COLUMN budget;

-- A deferred unique constraint is checked at commit, for the extension's
-- writes too: two jobs of one team in one transaction fail at COMMIT.
ALTER TABLE dms_job ADD COLUMN team text DEFAULT 'dba';
ALTER TABLE dms_job ADD CONSTRAINT one_job_per_team UNIQUE (team) DEFERRABLE INITIALLY DEFERRED;
UPDATE dms_job SET team = 'ops' WHERE id = 1;
BEGIN;
SELECT dms_create_job('first of dba') IS NOT NULL AS created;
SELECT dms_create_job('second of dba') IS NOT NULL AS created;
COMMIT;
SELECT name, team FROM dms_job ORDER BY id;
ALTER TABLE dms_job DROP COLUMN team;

-- A job keeps its id: its history, failures and notifications name it.
-- The identity refuses a new value (428C9); its next value, the guard.
SELECT pg_temp.try($$UPDATE dms_job SET id = 100 WHERE id = 1$$);
SELECT pg_temp.try($$UPDATE dms_job SET id = DEFAULT WHERE id = 1$$);

--------------------------------------------------------------------------
-- 6. The session around a call.
--------------------------------------------------------------------------

-- A refused call caught in an exception block leaves the session as it
-- was: the same role, free to create a temporary table.
CREATE ROLE hostile_operator;
SELECT dms_grant('hostile_operator', 'operator');
SET ROLE hostile_operator;
DO $$
BEGIN
    PERFORM dms_promote(1);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE WARNING 'refused: %', SQLERRM;
END $$;
SELECT current_user;
CREATE TEMP TABLE scratch (x integer);
RESET ROLE;

-- A read-only transaction refuses a call as it refuses an UPDATE (25006).
BEGIN READ ONLY;
SELECT pg_temp.try($$SELECT dms_stop(1)$$);
ROLLBACK;

DROP OWNED BY hostile_operator;
DROP ROLE hostile_operator;
DROP TABLE fired;
DROP FUNCTION note_fired(), finish_early(), touch(), again(), annotate(), skip();
DROP DOMAIN required_int;
RESET client_min_messages;
