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

-- The same for every column of the extension, not only the state: a job's
-- id moved, its databases emptied, its creation time forged.
CREATE FUNCTION sneak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_ARGV[0]
        WHEN 'id' THEN NEW.id := NEW.id + 1000;
        WHEN 'databases' THEN NEW.databases := '{}';
        WHEN 'created_at' THEN NEW.created_at := '2000-01-01';
    END CASE;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_sneak BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION sneak('id');
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
DROP TRIGGER zz_sneak ON dms_job;
CREATE TRIGGER zz_sneak BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION sneak('databases');
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
DROP TRIGGER zz_sneak ON dms_job;
CREATE TRIGGER zz_sneak BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION sneak('created_at');
SELECT pg_temp.try($$UPDATE dms_job SET name = 'renamed' WHERE id = 1$$);
DROP TRIGGER zz_sneak ON dms_job;
CREATE TRIGGER zz_sneak BEFORE INSERT ON dms_job
    FOR EACH ROW EXECUTE FUNCTION sneak('created_at');
SELECT pg_temp.try($$SELECT dms_create_job('forged')$$);
DROP TRIGGER zz_sneak ON dms_job;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

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

-- An AFTER trigger fires once the change is written; triggers fire in name
-- order, and dms_job_record writes its history row.  One that fires before
-- it and changes the job would have the second change recorded before the
-- first: refused (27000), whether it edits a column of its own or calls an
-- action.  One that fires after it may change the job, as on any table.
CREATE FUNCTION annotate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        UPDATE dms_job SET note = 'resumed by ' || current_user WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER a_annotate AFTER UPDATE ON dms_job
    FOR EACH ROW WHEN (NEW.status = 'resuming') EXECUTE FUNCTION annotate();
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
DROP TRIGGER a_annotate ON dms_job;
CREATE FUNCTION resumed_at_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dms_report(NEW.id, 'resumed');
    RETURN NULL;
END $$;
CREATE TRIGGER a_resumed_at_once AFTER UPDATE ON dms_job
    FOR EACH ROW WHEN (NEW.status = 'resuming') EXECUTE FUNCTION resumed_at_once();
SELECT pg_temp.try($$SELECT dms_resume(1)$$);
DROP TRIGGER a_resumed_at_once ON dms_job;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
CREATE TRIGGER zz_annotate AFTER UPDATE ON dms_job
    FOR EACH ROW WHEN (NEW.status = 'resuming') EXECUTE FUNCTION annotate();
SELECT dms_resume(1);
SELECT name, status, phase, note FROM dms_job ORDER BY id;
SELECT cause, from_status, to_status FROM dms_job_history WHERE job_id = 1 ORDER BY id DESC LIMIT 1;
DROP TRIGGER zz_annotate ON dms_job;
SELECT dms_report(1, 'resumed');

--------------------------------------------------------------------------
-- 4. Triggers that skip the write.
--------------------------------------------------------------------------

-- A BEFORE trigger that returns NULL skips the row, as on any table.  The
-- call then changes nothing and says so: the status as it was, false for a
-- delete, NULL for a creation.  A failed database whose job's change is
-- skipped cannot be recorded without it: the report fails (55000).
CREATE FUNCTION skip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;
CREATE TRIGGER skip_update BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT pg_temp.snapshot() AS before \gset
SELECT dms_stop(1);
SELECT pg_temp.try($$SELECT dms_report(1, 'failed', 'disk full', 'shop')$$);
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

-- On dms_job_failure: a skipped failure row fails no job; the row as
-- written is checked again, so one moved to a database the job does not
-- migrate after it was checked is refused (22023).
CREATE TRIGGER zz_skip_failure BEFORE INSERT ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION skip();
SELECT dms_report(1, 'failed', 'disk full', 'shop');
DROP TRIGGER zz_skip_failure ON dms_job_failure;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
CREATE FUNCTION move_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.database_name := 'elsewhere';
    RETURN NEW;
END $$;
CREATE TRIGGER zz_move_failure BEFORE INSERT ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION move_failure();
SELECT pg_temp.try($$SELECT dms_report(1, 'failed', 'disk full', 'shop')$$);
DROP TRIGGER zz_move_failure ON dms_job_failure;
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

-- A recovery is decided once the follow-up's deletes are done: a trigger
-- that fails another database while "shop" leaves keeps the job failed.
SELECT dms_create_job('crm', 'continuous', ARRAY['shop', 'billing', 'crm']) AS crm \gset
SELECT dms_start(:crm), dms_report(:crm, 'started'), dms_report(:crm, 'failed', 'disk full', 'shop');
CREATE FUNCTION fail_billing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dms_report(OLD.job_id, 'failed', 'billing is down too', 'billing');
    RETURN NULL;
END $$;
CREATE TRIGGER fail_billing AFTER DELETE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION fail_billing();
SELECT dms_remove_database(:crm, 'shop');
DROP TRIGGER fail_billing ON dms_job_failure;
SELECT job_id = :crm AS crm, database_name, error_message FROM dms_job_failure ORDER BY 2;
SELECT cause, from_status, to_status, database_name FROM dms_job_history
 WHERE job_id = :crm ORDER BY id;

--------------------------------------------------------------------------
-- 5. Columns and constraints the extension's writes must obey.
--------------------------------------------------------------------------

-- A serial column for a team's bookkeeping, on each table: it takes its
-- value on every row the extension inserts, for an operator and an engine
-- who have no privilege on its sequence, as an identity column would.
ALTER TABLE dms_job ADD COLUMN seq bigserial;
ALTER TABLE dms_job_history ADD COLUMN seq serial;
ALTER TABLE dms_job_failure ADD COLUMN seq smallserial;
CREATE ROLE serial_operator;
CREATE ROLE serial_engine;
SELECT dms_grant('serial_operator', 'operator'), dms_grant('serial_engine', 'engine');
SET ROLE serial_operator;
SELECT dms_create_job('serial', 'continuous', ARRAY['a']) AS serial \gset
SELECT dms_start(:serial);
SET ROLE serial_engine;
SELECT dms_report(:serial, 'started'), dms_report(:serial, 'failed', 'disk full', 'a');
RESET ROLE;
SELECT name, seq IS NOT NULL AS numbered FROM dms_job WHERE id = :serial;
SELECT count(*) AS history_rows, count(DISTINCT seq) AS numbered FROM dms_job_history
 WHERE job_id = :serial;
SELECT database_name, seq IS NOT NULL AS numbered FROM dms_job_failure WHERE job_id = :serial;
ALTER TABLE dms_job DROP COLUMN seq;
ALTER TABLE dms_job_history DROP COLUMN seq;
ALTER TABLE dms_job_failure DROP COLUMN seq;
DROP OWNED BY serial_operator, serial_engine;
DROP ROLE serial_operator, serial_engine;

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
UPDATE dms_job SET team = name;
ALTER TABLE dms_job ADD CONSTRAINT one_job_per_team UNIQUE (team) DEFERRABLE INITIALLY DEFERRED;
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
-- 6. What the checks of the row as written must not take for a change.
--------------------------------------------------------------------------

-- A BEFORE trigger that changes nothing: a long error message, which the
-- table stores compressed or out of line, is still the message the guard
-- wrote; a long database list as well.
CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END $$;
CREATE TRIGGER zz_keep BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION keep();
SELECT dms_create_job('long', 'continuous', ARRAY(SELECT 'database_' || g FROM generate_series(1, 200) g)) AS long \gset
SELECT dms_start(:long), dms_report(:long, 'started');
SELECT dms_report(:long, 'error', repeat('the source went away; ', 300));
SELECT dms_report(:long, 'error', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g));
SELECT dms_stop(:long), dms_report(:long, 'stopped');
UPDATE dms_job SET databases = databases || ARRAY['database_201'] WHERE id = :long;
SELECT status, length(error_message) AS message_length, cardinality(databases) AS databases
  FROM dms_job WHERE id = :long;

-- A write skipped by a trigger, or rolled back to a savepoint after the
-- guard (the new name is taken: 23505), leaves nothing that a later change
-- of the job would be compared with.
CREATE FUNCTION skip_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.note = 'skip me' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_skip_named BEFORE UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION skip_named();
UPDATE dms_job SET note = 'skip me' WHERE id = :long;
BEGIN;
SAVEPOINT before_rename;
UPDATE dms_job SET name = 'orders' WHERE id = :long;
ROLLBACK TO before_rename;
COMMIT;
DROP TRIGGER zz_skip_named ON dms_job;
DROP TRIGGER zz_keep ON dms_job;
SELECT dms_restart(:long);

-- An AFTER trigger that fires before dms_job_record and changes the job in
-- a subtransaction it rolls back has changed nothing.
CREATE TABLE probes (job_id bigint);
CREATE FUNCTION probe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        INSERT INTO probes VALUES (NEW.id);
        BEGIN
            UPDATE dms_job SET note = 'probed' WHERE id = NEW.id;
            RAISE EXCEPTION 'undo';
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER a_probe AFTER UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION probe();
SELECT dms_report(:long, 'restarted');
DROP TRIGGER a_probe ON dms_job;
SELECT status, phase, note, (SELECT count(*) FROM probes) AS probes FROM dms_job WHERE id = :long;
DROP TABLE probes;

-- A user's column of a failure row is the user's: writing it is no new
-- failure.  And with dms_failure_record disabled, a failure still fails
-- its job: the BEFORE trigger then does it.
ALTER TABLE dms_job_failure ADD COLUMN acknowledged boolean NOT NULL DEFAULT false;
SELECT dms_report(:long, 'failed', 'disk full', 'database_1');
SELECT count(*) AS history_rows FROM dms_job_history WHERE job_id = :long \gset
UPDATE dms_job_failure SET acknowledged = true WHERE job_id = :long;
SELECT count(*) - :history_rows AS new_history_rows FROM dms_job_history WHERE job_id = :long;
-- The phase and the time of a failure are the triggers': values written to
-- them by such an UPDATE are ignored, as the timestamps of a job are.
UPDATE dms_job_failure SET phase = 'cdc', failed_at = '2000-01-01', acknowledged = false
 WHERE job_id = :long;
SELECT database_name, phase, failed_at > '2000-01-01' AS failed_at_kept, acknowledged
  FROM dms_job_failure WHERE job_id = :long;
-- A user's trigger that marks the other failures of the job acknowledged
-- while another database fails: one failure, not two.
CREATE FUNCTION acknowledge_others() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dms_job_failure SET acknowledged = true
     WHERE job_id = NEW.job_id AND database_name <> NEW.database_name;
    RETURN NULL;
END $$;
CREATE TRIGGER zz_acknowledge AFTER INSERT ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION acknowledge_others();
SELECT count(*) AS history_rows FROM dms_job_history WHERE job_id = :long \gset
SELECT dms_report(:long, 'failed', 'out of memory', 'database_3');
SELECT cause, database_name FROM dms_job_history WHERE job_id = :long ORDER BY id DESC
 LIMIT (SELECT count(*) - :history_rows FROM dms_job_history WHERE job_id = :long);
DROP TRIGGER zz_acknowledge ON dms_job_failure;
-- A failure of another job reported from a trigger during a failure, with
-- the same message as before: both are failures, each with its row.
SELECT dms_create_job('downstream', 'continuous', ARRAY['database_1']) AS downstream \gset
SELECT dms_start(:downstream), dms_report(:downstream, 'started');
CREATE FUNCTION cascade_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.job_id <> current_setting('test.downstream')::bigint THEN
        PERFORM dms_report(current_setting('test.downstream')::bigint, 'failed',
                           'upstream failed', 'database_1');
    END IF;
    RETURN NULL;
END $$;
SELECT set_config('test.downstream', :'downstream', false) IS NOT NULL AS noted;
CREATE TRIGGER a_cascade AFTER INSERT OR UPDATE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION cascade_failure();
SELECT max(id) AS history_mark FROM dms_job_history \gset
SELECT dms_report(:long, 'failed', 'disk full', 'database_1');
SELECT job_id = :long AS upstream, cause, database_name, message FROM dms_job_history
 WHERE id > :history_mark ORDER BY id;
DROP TRIGGER a_cascade ON dms_job_failure;
ALTER TABLE dms_job_failure DROP COLUMN acknowledged;
SELECT dms_restart(:long), dms_report(:long, 'restarted');
ALTER TABLE dms_job_failure DISABLE TRIGGER dms_failure_record;
SELECT dms_report(:long, 'failed', 'disk full', 'database_2');
ALTER TABLE dms_job_failure ENABLE TRIGGER dms_failure_record;
SELECT dms_restart(:long), dms_report(:long, 'restarted');
ALTER TABLE dms_job_failure ENABLE REPLICA TRIGGER dms_failure_record;
SELECT dms_report(:long, 'failed', 'disk full', 'database_2');
ALTER TABLE dms_job_failure ENABLE TRIGGER dms_failure_record;
SELECT j.status, j.phase, f.database_name, f.phase AS failed_in
  FROM dms_job j JOIN dms_job_failure f ON f.job_id = j.id WHERE j.id = :long;

-- dms_failure_record made again in other shapes: with a column list, a WHEN
-- clause, for INSERT only, deferred.  Whichever fires, one failure is one
-- history row, and the call returns the job failed.
CREATE TEMP TABLE shapes (shape text, create_trigger text);
INSERT INTO shapes VALUES
    ('UPDATE OF error_message', 'CREATE TRIGGER dms_failure_record AFTER INSERT OR UPDATE OF error_message ON dms_job_failure FOR EACH ROW EXECUTE FUNCTION dms_failure_record()'),
    ('WHEN clause',             'CREATE TRIGGER dms_failure_record AFTER INSERT OR UPDATE ON dms_job_failure FOR EACH ROW WHEN (NEW.error_message IS NOT NULL) EXECUTE FUNCTION dms_failure_record()'),
    ('INSERT only',             'CREATE TRIGGER dms_failure_record AFTER INSERT ON dms_job_failure FOR EACH ROW EXECUTE FUNCTION dms_failure_record()'),
    ('deferred',                'CREATE CONSTRAINT TRIGGER dms_failure_record AFTER INSERT OR UPDATE ON dms_job_failure DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION dms_failure_record()');
CREATE FUNCTION pg_temp.failures_in_shape(shape text) RETURNS TABLE (reported text, again text, history_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
    job bigint;
    mark bigint;
BEGIN
    DROP TRIGGER dms_failure_record ON dms_job_failure;
    EXECUTE (SELECT create_trigger FROM shapes s WHERE s.shape = failures_in_shape.shape);
    job := dms_create_job('shape ' || shape, 'continuous', ARRAY['a']);
    PERFORM dms_start(job), dms_report(job, 'started');
    SELECT max(id) INTO mark FROM dms_job_history;
    reported := dms_report(job, 'failed', 'disk full', 'a');
    again := dms_report(job, 'failed', 'disk full', 'a');
    SET CONSTRAINTS ALL IMMEDIATE;
    SELECT count(*) INTO history_rows FROM dms_job_history h
     WHERE h.id > mark AND h.job_id = job AND h.cause = 'failed';
    DROP TRIGGER dms_failure_record ON dms_job_failure;
    CREATE TRIGGER dms_failure_record AFTER INSERT OR UPDATE ON dms_job_failure
        FOR EACH ROW EXECUTE FUNCTION dms_failure_record();
    RETURN NEXT;
END $$;
SELECT shape, f.* FROM shapes, pg_temp.failures_in_shape(shape) f ORDER BY shape;

-- A database name in a case-insensitive collation: the failure row of
-- "shop" is the row of "SHOP", and the extension's write of it is a
-- failure, whatever the case and the message.
CREATE COLLATION case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
ALTER TABLE dms_job_failure ALTER COLUMN database_name TYPE text COLLATE case_insensitive;
SELECT dms_create_job('any case') AS any_case \gset
SELECT dms_start(:any_case), dms_report(:any_case, 'started');
SELECT dms_report(:any_case, 'failed', 'disk full', 'shop'),
       dms_report(:any_case, 'failed', 'disk full', 'shop'),
       dms_report(:any_case, 'failed', 'disk full', 'SHOP');
SELECT count(*) AS failures, (SELECT count(*) FROM dms_job_failure WHERE job_id = :any_case) AS rows
  FROM dms_job_history WHERE job_id = :any_case AND cause = 'failed';
ALTER TABLE dms_job_failure ALTER COLUMN database_name TYPE text COLLATE "default";
DROP COLLATION case_insensitive;

--------------------------------------------------------------------------
-- 7. The session around a call.
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
DROP FUNCTION note_fired(), finish_early(), sneak(), touch(), again(), annotate(),
    resumed_at_once(), skip(), move_failure(), fail_billing(), keep(), skip_named(), probe(), acknowledge_others(), cascade_failure();
DROP DOMAIN required_int;
RESET client_min_messages;
