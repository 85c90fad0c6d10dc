--
-- ordinary_tables: dms_job, dms_job_failure and dms_job_history stay
-- ordinary PostgreSQL tables (SPEC 11, from 1.1).
--
-- A team adds columns of its own to the three tables and drops them again,
-- adds indexes of every kind, CHECK constraints, NOT NULL, foreign keys and
-- row triggers (one of them ships every history row to another table).  The
-- calls keep working through all of it, write their rows through
-- PostgreSQL's executor (defaults, generated columns, indexes, constraints
-- and row triggers included), and a constraint that refuses the new row
-- refuses the call with its own SQLSTATE, changing nothing.
--
-- Section 1 replays the issue: on 1.0 its first statement crashed the
-- server, the second made every call fail, and the others were skipped or
-- broke the actions.
--
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ord CASCADE;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
DROP EXTENSION IF EXISTS amcheck;
-- Roles left behind by an earlier, interrupted run go first.
SET test.roles = 'ord_operator,ord_nobody';
\i sql/drop_roles.inc
CREATE EXTENSION dms_lifecycle;
-- amcheck checks every btree index of the three tables against their rows.
CREATE EXTENSION amcheck;
RESET client_min_messages;

-- pg_temp.try(statement), shared by the tests that show SQLSTATEs
\i sql/try.inc

-- pg_temp.state(status, phase) and the view hist, shared with other tests
\i sql/history.inc

--------------------------------------------------------------------------
-- The team's own objects, in the schema ord.
--------------------------------------------------------------------------

CREATE SCHEMA ord;

-- Every history row is shipped to ord.shipped by a user's AFTER INSERT row
-- trigger, whoever writes the row.
CREATE TABLE ord.shipped (
    history_id bigint PRIMARY KEY,
    job_name   text NOT NULL,
    cause      text NOT NULL,
    to_status  text
);
CREATE FUNCTION ord.ship_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ord.shipped VALUES (NEW.id, NEW.job_name, NEW.cause, NEW.to_status::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER ord_ship AFTER INSERT ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION ord.ship_history();

-- What the team's row triggers saw: the trigger, the job (or database), the
-- values before and after, and whether the trigger ran as the owner of the
-- tables (as it does when a call of the extension fires it).
CREATE TABLE ord.trigger_log (
    n         bigserial PRIMARY KEY,
    tg        text NOT NULL,
    name      text NOT NULL,
    old_value text,
    new_value text,
    as_owner  boolean
);
CREATE FUNCTION ord.as_owner() RETURNS boolean LANGUAGE sql AS $$
    SELECT current_user = tableowner FROM pg_catalog.pg_tables
     WHERE schemaname = 'public' AND tablename = 'dms_job'
$$;

-- pg_temp.call(statement): pg_temp.try, with every result kept in the
-- table attempts, so that the end of the test can list the SQLSTATEs seen.
CREATE TEMP TABLE attempts (n serial PRIMARY KEY, stmt text NOT NULL, result text NOT NULL);
GRANT SELECT, INSERT ON attempts TO PUBLIC;
GRANT USAGE ON SEQUENCE attempts_n_seq TO PUBLIC;
CREATE FUNCTION pg_temp.call(stmt text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO attempts (stmt, result) VALUES (stmt, pg_temp.try(stmt)) RETURNING result
$$;

-- A job's id from its name.
CREATE FUNCTION pg_temp.id(job_name text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM dms_job WHERE name = job_name
$$;

-- Everything about the jobs, as text, to compare before and after a refused
-- call: the jobs (all their columns), the failure rows, the number of
-- history rows, shipped rows and trigger log rows.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(j::text, ' ' ORDER BY j.id) FROM dms_job j), '')
        || ' | ' || coalesce((SELECT string_agg(f::text, ' ' ORDER BY f.job_id, f.database_name)
                                FROM dms_job_failure f), '')
        || ' | ' || (SELECT count(*) FROM dms_job_history)
        || ' | ' || (SELECT count(*) FROM ord.shipped)
        || ' | ' || (SELECT count(*) FROM ord.trigger_log)
$$;

-- pg_temp.check_indexes(): amcheck on every btree index of the three tables.
\i sql/amcheck.inc

-- The jobs as a person reads them.
CREATE TEMP VIEW jobs AS
SELECT name, status, substatus, allowed_actions, error_message, failed_databases
  FROM dms_job_overview;

--------------------------------------------------------------------------
-- 1. The issue, statement by statement.
--------------------------------------------------------------------------

-- (a) A column with a default on the history, then a new job.  1.0 formed
-- the history row itself from the columns it knew and crashed the server;
-- the executor fills the default of the column it does not know.
ALTER TABLE dms_job_history ADD COLUMN note text DEFAULT 'x';
SELECT dms_create_job('b') IS NOT NULL AS created_b;
SELECT job_name, cause, note FROM dms_job_history ORDER BY id;

-- (b) A column on dms_job: 1.0 failed every call ("dms_job has 13
-- columns"), and still did after DROP COLUMN.  Job b starts, runs and
-- reaches CDC with the column, stops and resumes after it is dropped.
ALTER TABLE dms_job ADD COLUMN team text;
SELECT dms_start(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'started'),
       dms_report(pg_temp.id('b'), 'dump_completed');
ALTER TABLE dms_job DROP COLUMN team;
SELECT dms_stop(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'stopped'),
       dms_resume(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'resumed');
SELECT * FROM jobs ORDER BY name;
SELECT cause, "from", "to" FROM hist WHERE job = pg_temp.id('b') ORDER BY id;

-- (c) A unique index on lower(name): 1.0's actions failed on it.  The calls
-- maintain it, and it refuses a second job 'ORDERS' and a rename of b to
-- 'Orders' (23505), with nothing changed.
CREATE UNIQUE INDEX dms_job_lower_name_key ON dms_job (lower(name));
SELECT dms_create_job('orders', 'continuous', ARRAY['sales', 'stock', 'audit']) IS NOT NULL AS created_orders;
SELECT dms_start(pg_temp.id('orders')), dms_report(pg_temp.id('orders'), 'started');
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_create_job('ORDERS')$$) AS create_orders_again;
SELECT pg_temp.call($$UPDATE dms_job SET name = 'Orders' WHERE name = 'b'$$) AS rename_b;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- (d) A user's CHECK constraint: 1.0's actions skipped it.  The team's rule:
-- a production job is never stopped.  dms_stop on prod-eu is refused by the
-- constraint (23514): the job, its history and the trigger tables are as
-- before, and no notification comes (this session listens on the channel
-- while the call runs: a notification would print a line after it).
SELECT dms_create_job('prod-eu') IS NOT NULL AS created_prod_eu;
SELECT dms_start(pg_temp.id('prod-eu')), dms_report(pg_temp.id('prod-eu'), 'started'),
       dms_report(pg_temp.id('prod-eu'), 'dump_completed');
ALTER TABLE dms_job ADD CONSTRAINT ord_prod_never_stops
    CHECK (name NOT LIKE 'prod-%' OR status <> 'stopping');
SELECT pg_temp.snapshot() AS before \gset
LISTEN dms_lifecycle;
SELECT pg_temp.call($$SELECT dms_stop(pg_temp.id('prod-eu'))$$) AS stop_prod_eu;
UNLISTEN dms_lifecycle;
-- A direct UPDATE along the edge "stop" is refused by it too.
SELECT pg_temp.call($$UPDATE dms_job SET status = 'stopping' WHERE name = 'prod-eu'$$) AS direct_stop_prod_eu;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SELECT * FROM jobs WHERE name = 'prod-eu';

-- (d, continued) A user's row triggers: 1.0's actions skipped them too.  The
-- BEFORE trigger logs what it sees and counts the job's changes in a column
-- of the team's own; the AFTER trigger logs what it sees.  (They fire after
-- the extension's triggers, whose names sort first: dms_job_guard before
-- ord_before, dms_job_record before ord_after.)
ALTER TABLE dms_job ADD COLUMN changes integer NOT NULL DEFAULT 0;
CREATE FUNCTION ord.job_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('before insert', NEW.name, NULL,
                NEW.status::text || coalesce('/' || NEW.phase::text, ''), ord.as_owner());
        NEW.changes := 0;
    ELSE
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('before update', NEW.name,
                OLD.status::text || coalesce('/' || OLD.phase::text, ''),
                NEW.status::text || coalesce('/' || NEW.phase::text, ''), ord.as_owner());
        NEW.changes := OLD.changes + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE FUNCTION ord.job_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('after insert', NEW.name, NULL,
                NEW.status::text || coalesce('/' || NEW.phase::text, ''), ord.as_owner());
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('after update', NEW.name,
                OLD.status::text || coalesce('/' || OLD.phase::text, ''),
                NEW.status::text || coalesce('/' || NEW.phase::text, ''), ord.as_owner());
    ELSE
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('after delete', OLD.name,
                OLD.status::text || coalesce('/' || OLD.phase::text, ''), NULL, ord.as_owner());
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ord_before BEFORE INSERT OR UPDATE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION ord.job_before();
CREATE TRIGGER ord_after AFTER INSERT OR UPDATE OR DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION ord.job_after();
-- orders stops (Running in full dump, so Stopped in full dump); a job
-- named scratch is created and deleted.
SELECT dms_stop(pg_temp.id('orders')), dms_report(pg_temp.id('orders'), 'stopped');
SELECT dms_create_job('scratch') IS NOT NULL AS created_scratch;
SELECT dms_delete(pg_temp.id('scratch'));
SELECT tg, name, old_value, new_value, as_owner FROM ord.trigger_log ORDER BY n;
SELECT name, status, phase, changes FROM dms_job ORDER BY name;

--------------------------------------------------------------------------
-- 2. dms_job: columns added and dropped, again and again.
--------------------------------------------------------------------------

-- A partial index of the jobs that need a person, kept by every change.
CREATE INDEX dms_job_troubled_idx ON dms_job (status, name)
    WHERE status IN ('running_with_errors', 'failed');

-- team, with a default: the jobs there are get it, and so do new ones.
ALTER TABLE dms_job ADD COLUMN team text DEFAULT 'core';
-- A direct UPDATE of a user column alone is neither an edge nor an edit: it
-- is accepted and writes no history row.
SELECT count(*) AS history_rows FROM dms_job_history \gset
UPDATE dms_job SET team = 'red' WHERE name = 'orders';
SELECT count(*) - :history_rows AS new_history_rows FROM dms_job_history;
-- orders restarts and reaches CDC: its team stays red.  c is a new one-time job.
SELECT dms_restart(pg_temp.id('orders')), dms_report(pg_temp.id('orders'), 'restarted'),
       dms_report(pg_temp.id('orders'), 'dump_completed');
SELECT dms_create_job('c', 'one_time') IS NOT NULL AS created_c;
SELECT name, status, phase, team, changes FROM dms_job ORDER BY name;

-- slot, with an exclusion constraint: one job per replication slot.
ALTER TABLE dms_job ADD COLUMN slot integer;
ALTER TABLE dms_job ADD CONSTRAINT ord_one_job_per_slot EXCLUDE USING btree (slot WITH =);
UPDATE dms_job SET slot = 1 WHERE name = 'orders';
UPDATE dms_job SET slot = 2 WHERE name = 'b';
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$UPDATE dms_job SET slot = 1 WHERE name = 'prod-eu'$$) AS slot_taken;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- team is dropped while slot stays; c starts, runs into an error and out of it.
ALTER TABLE dms_job DROP COLUMN team;
SELECT dms_start(pg_temp.id('c')), dms_report(pg_temp.id('c'), 'started'),
       dms_report(pg_temp.id('c'), 'error', 'source is slow'),
       dms_report(pg_temp.id('c'), 'errors_cleared');
-- b is stopped by direct UPDATEs along the edges stop and stopped.
UPDATE dms_job SET status = 'stopping' WHERE name = 'b';
UPDATE dms_job SET status = 'stopped' WHERE name = 'b';

-- Another column added and dropped around a second team column: a new
-- column, so every job is back to the default 'core'.
ALTER TABLE dms_job ADD COLUMN tmp text;
ALTER TABLE dms_job ADD COLUMN team text DEFAULT 'core';
ALTER TABLE dms_job DROP COLUMN tmp;
-- c (one-time) completes and is deleted.
SELECT dms_report(pg_temp.id('c'), 'dump_completed'), dms_delete(pg_temp.id('c'));
SELECT h.cause, h."from", h."to", h.message
  FROM hist h JOIN dms_job_history d USING (id) WHERE d.job_name = 'c' ORDER BY id;

-- A generated column, computed by PostgreSQL on every row the calls write.
ALTER TABLE dms_job ADD COLUMN needs_attention boolean
    GENERATED ALWAYS AS (status IN ('running_with_errors', 'failed')) STORED;
SELECT dms_report(pg_temp.id('orders'), 'error', 'lag on stock');
SELECT name, status, phase, needs_attention FROM dms_job ORDER BY name;
SELECT dms_report(pg_temp.id('orders'), 'errors_cleared');
SELECT name, status, phase, needs_attention FROM dms_job ORDER BY name;

-- A column added in a transaction that rolls back, with a call in it: inside,
-- the new row has the column; after the rollback the column, the change and
-- its history are gone, and the next calls go on without it.
SELECT count(*) AS history_rows FROM dms_job_history \gset
BEGIN;
ALTER TABLE dms_job ADD COLUMN scratch text DEFAULT 'tmp';
SELECT dms_resume(pg_temp.id('b'));
SELECT name, status, phase, scratch FROM dms_job WHERE name = 'b';
ROLLBACK;
SELECT count(*) - :history_rows AS new_history_rows FROM dms_job_history;
SELECT dms_resume(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'resumed');

-- A change of slot's type rewrites the table and rebuilds its indexes; the
-- calls go on with the new files.  orders stops in CDC, is promoted and
-- completes.
ALTER TABLE dms_job ALTER COLUMN slot TYPE bigint;
SELECT dms_stop(pg_temp.id('orders')), dms_report(pg_temp.id('orders'), 'stopped'),
       dms_promote(pg_temp.id('orders')), dms_report(pg_temp.id('orders'), 'promoted');
SELECT name, status, phase, team, slot, needs_attention, changes FROM dms_job ORDER BY name;
SELECT cause, "from", "to", message FROM hist WHERE job = pg_temp.id('orders') ORDER BY id;
SELECT count(*) AS indexes, count(*) FILTER (WHERE result <> 'ok') AS inconsistent
  FROM pg_temp.check_indexes();

--------------------------------------------------------------------------
-- 3. dms_job_history: columns added and dropped; the history rows the
--    extension inserts get each column's default.
--------------------------------------------------------------------------

-- The team's indexes on the history: an expression index, a partial index,
-- a unique index and an exclusion constraint.
CREATE INDEX dms_job_history_lower_job_name_idx ON dms_job_history (lower(job_name), id);
CREATE INDEX dms_job_history_failed_idx ON dms_job_history (database_name, id)
    WHERE cause = 'failed';
CREATE UNIQUE INDEX dms_job_history_job_latest_key ON dms_job_history (job_id, id DESC);
ALTER TABLE dms_job_history ADD CONSTRAINT ord_history_id_excl EXCLUDE USING btree (id WITH =);

SELECT max(id) AS mark FROM dms_job_history \gset
-- reviewed, NOT NULL with a default.  Job d is created and started.
ALTER TABLE dms_job_history ADD COLUMN reviewed boolean NOT NULL DEFAULT false;
SELECT dms_create_job('d') IS NOT NULL AS created_d;
SELECT dms_start(pg_temp.id('d'));
SELECT job_name, cause, note, reviewed FROM dms_job_history WHERE id > :mark ORDER BY id;
-- note is dropped; d starts running and fails (a direct UPDATE along the edge "failed").
ALTER TABLE dms_job_history DROP COLUMN note;
SELECT dms_report(pg_temp.id('d'), 'started');
UPDATE dms_job SET status = 'failed', error_message = 'disk full' WHERE name = 'd';
-- note comes back with the default 'y', which every row there is gets; then
-- its default becomes 'z', which only the rows inserted from now on get.
ALTER TABLE dms_job_history ADD COLUMN note text DEFAULT 'y';
ALTER TABLE dms_job_history ALTER COLUMN note SET DEFAULT 'z';
-- A generated column: did the row change the status or phase?
ALTER TABLE dms_job_history ADD COLUMN moved boolean
    GENERATED ALWAYS AS (from_status IS DISTINCT FROM to_status
                         OR from_phase IS DISTINCT FROM to_phase) STORED;
SELECT dms_restart(pg_temp.id('d'));
-- A volatile default rewrites the table.
ALTER TABLE dms_job_history ADD COLUMN archived_at timestamptz DEFAULT clock_timestamp();
SELECT dms_report(pg_temp.id('d'), 'restarted');
ALTER TABLE dms_job_history DROP COLUMN reviewed;
SELECT dms_report(pg_temp.id('d'), 'dump_completed'), dms_report(pg_temp.id('d'), 'error', 'lag'),
       dms_report(pg_temp.id('d'), 'error', 'more lag');
SELECT h.job_name, h.cause, hist."from", hist."to", h.message, h.note, h.moved,
       h.archived_at IS NOT NULL AS archived
  FROM dms_job_history h JOIN hist USING (id) WHERE id > :mark ORDER BY id;
SELECT count(*) AS indexes, count(*) FILTER (WHERE result <> 'ok') AS inconsistent
  FROM pg_temp.check_indexes();

--------------------------------------------------------------------------
-- 4. dms_job_failure: columns added and dropped while databases fail,
--    fail again, and leave the migration.
--------------------------------------------------------------------------

-- The team's indexes on the failures: a unique expression index (a database
-- once per job, whatever the case of its name), a partial index, an
-- exclusion constraint.
CREATE UNIQUE INDEX dms_job_failure_lower_db_key ON dms_job_failure (job_id, lower(database_name));
CREATE INDEX dms_job_failure_cdc_idx ON dms_job_failure (error_message) WHERE phase = 'cdc';
ALTER TABLE dms_job_failure ADD CONSTRAINT ord_failure_excl
    EXCLUDE USING btree (database_name WITH =, job_id WITH =);

-- A row trigger on the failures logs what the extension writes there.
CREATE FUNCTION ord.failure_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('failure delete', OLD.database_name, OLD.error_message, NULL, ord.as_owner());
    ELSE
        INSERT INTO ord.trigger_log (tg, name, old_value, new_value, as_owner)
        VALUES ('failure ' || lower(TG_OP), NEW.database_name,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.error_message END, NEW.error_message,
                ord.as_owner());
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ord_failure_after AFTER INSERT OR UPDATE OR DELETE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION ord.failure_after();

-- Job shop migrates sales, stock and audit, and reaches CDC.
ALTER TABLE dms_job_failure ADD COLUMN triage text DEFAULT 'new';
SELECT dms_create_job('shop', 'continuous', ARRAY['sales', 'stock', 'audit']) IS NOT NULL AS created_shop;
SELECT dms_start(pg_temp.id('shop')), dms_report(pg_temp.id('shop'), 'started'),
       dms_report(pg_temp.id('shop'), 'dump_completed');
SELECT max(id) AS mark FROM dms_job_history \gset
SELECT max(n) AS log_mark FROM ord.trigger_log \gset

-- sales fails: its row gets triage 'new'.  Then a generated column, and sales
-- fails again: the row is updated, its triage kept, its length recomputed.
SELECT dms_report(pg_temp.id('shop'), 'failed', 'sales: slot dropped', 'sales');
ALTER TABLE dms_job_failure ADD COLUMN message_length integer
    GENERATED ALWAYS AS (length(error_message)) STORED;
SELECT dms_report(pg_temp.id('shop'), 'failed', 'sales: slot dropped again', 'sales');
SELECT database_name, phase, error_message, triage, message_length
  FROM dms_job_failure ORDER BY job_id, database_name;

-- triage is dropped; stock fails; triage comes back with the default 'later'.
ALTER TABLE dms_job_failure DROP COLUMN triage;
SELECT dms_report(pg_temp.id('shop'), 'failed', 'stock: permission denied', 'stock');
ALTER TABLE dms_job_failure ADD COLUMN triage text DEFAULT 'later';
SELECT database_name, phase, error_message, triage, message_length
  FROM dms_job_failure ORDER BY job_id, database_name;

-- sales leaves the migration: stock is still failed, the job stays "Failed".
SELECT dms_remove_database(pg_temp.id('shop'), 'sales');
ALTER TABLE dms_job_failure DROP COLUMN message_length;
-- stock leaves too: it was the last failure row and the job has no error of
-- its own, so it recovers: two history rows, edit then recovered, and the
-- call returns the status after both.
SELECT dms_remove_database(pg_temp.id('shop'), 'stock');
SELECT * FROM jobs WHERE name = 'shop';
SELECT databases FROM dms_job WHERE name = 'shop';
SELECT cause, "from", "to", database_name, message FROM hist WHERE id > :mark ORDER BY id;
-- What the team's triggers saw, in the order they fired.  The recovery is
-- an UPDATE made by the extension's AFTER trigger for the edit, so its own
-- row triggers fire inside it, before ord_after sees the edit.
SELECT tg, name, old_value, new_value, as_owner FROM ord.trigger_log WHERE n > :log_mark ORDER BY n;

-- Failures that stay: warehouse fails in full dump, crm in CDC; the triage
-- default is now 'urgent', and the extension's new rows get it.
ALTER TABLE dms_job_failure ALTER COLUMN triage SET DEFAULT 'urgent';
SELECT dms_create_job('warehouse', 'continuous', ARRAY['inventory', 'shipping']) IS NOT NULL AS created_warehouse;
SELECT dms_start(pg_temp.id('warehouse')), dms_report(pg_temp.id('warehouse'), 'started'),
       dms_report(pg_temp.id('warehouse'), 'failed', 'inventory: out of disk', 'inventory');
SELECT dms_create_job('crm') IS NOT NULL AS created_crm;
SELECT dms_start(pg_temp.id('crm')), dms_report(pg_temp.id('crm'), 'started'),
       dms_report(pg_temp.id('crm'), 'dump_completed'),
       dms_report(pg_temp.id('crm'), 'failed', 'contacts: no primary key', 'contacts'),
       dms_report(pg_temp.id('crm'), 'failed', 'stock: table locked', 'stock');
SELECT j.name, f.database_name, f.phase, f.error_message, f.triage
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id ORDER BY j.name, f.database_name;
SELECT count(*) AS indexes, count(*) FILTER (WHERE result <> 'ok') AS inconsistent
  FROM pg_temp.check_indexes();

--------------------------------------------------------------------------
-- 5. The indexes answer index scans with the right rows.
--------------------------------------------------------------------------

SET enable_seqscan = off;
SET enable_bitmapscan = off;

-- dms_job, unique on lower(name):
EXPLAIN (COSTS OFF)
SELECT lower(name), status FROM dms_job WHERE lower(name) IN ('orders', 'prod-eu', 'c') ORDER BY lower(name);
SELECT lower(name), status FROM dms_job WHERE lower(name) IN ('orders', 'prod-eu', 'c') ORDER BY lower(name);
-- dms_job, partial (the jobs that need a person):
EXPLAIN (COSTS OFF)
SELECT status, name FROM dms_job WHERE status IN ('running_with_errors', 'failed') ORDER BY status, name;
SELECT status, name FROM dms_job WHERE status IN ('running_with_errors', 'failed') ORDER BY status, name;
-- dms_job, the exclusion constraint's index on slot:
EXPLAIN (COSTS OFF)
SELECT slot, name FROM dms_job WHERE slot IS NOT NULL ORDER BY slot;
SELECT slot, name FROM dms_job WHERE slot IS NOT NULL ORDER BY slot;
-- dms_job_history, expression (lower(job_name), id):
EXPLAIN (COSTS OFF)
SELECT cause, from_status, to_status FROM dms_job_history WHERE lower(job_name) = 'd' ORDER BY lower(job_name), id;
SELECT cause, from_status, to_status FROM dms_job_history WHERE lower(job_name) = 'd' ORDER BY lower(job_name), id;
-- dms_job_history, partial (failures of a database):
EXPLAIN (COSTS OFF)
SELECT job_name, message FROM dms_job_history WHERE cause = 'failed' AND database_name = 'stock' ORDER BY database_name, id;
SELECT job_name, message FROM dms_job_history WHERE cause = 'failed' AND database_name = 'stock' ORDER BY database_name, id;
-- dms_job_failure, the exclusion constraint's index (database_name, job_id):
EXPLAIN (COSTS OFF)
SELECT error_message FROM dms_job_failure WHERE database_name = 'stock' ORDER BY database_name, job_id;
SELECT error_message FROM dms_job_failure WHERE database_name = 'stock' ORDER BY database_name, job_id;
-- dms_job_failure, partial (failures in CDC):
EXPLAIN (COSTS OFF)
SELECT database_name FROM dms_job_failure WHERE phase = 'cdc' ORDER BY error_message;
SELECT database_name FROM dms_job_failure WHERE phase = 'cdc' ORDER BY error_message;

RESET enable_seqscan;
RESET enable_bitmapscan;

-- And amcheck, on every btree index of the three tables.
SELECT * FROM pg_temp.check_indexes();

--------------------------------------------------------------------------
-- 6. Constraints apply to the extension's own writes: CHECK, NOT NULL,
--    foreign keys.  A refusal carries the constraint's SQLSTATE and
--    changes nothing.
--------------------------------------------------------------------------

-- CHECK on the history: messages of at most 40 characters.  An error
-- reported with a longer one is refused with the job unchanged.
ALTER TABLE dms_job_history ADD CONSTRAINT ord_short_messages CHECK (length(message) <= 40);
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_report(pg_temp.id('b'), 'error',
                     'replication lag above ten minutes on every table of sales')$$) AS long_error;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SELECT * FROM jobs WHERE name = 'b';

-- CHECK on the failures: the database legacy is never recorded as failed.
-- b migrates all databases; the failure of legacy is refused, b runs on.
ALTER TABLE dms_job_failure ADD CONSTRAINT ord_no_legacy CHECK (database_name <> 'legacy');
SELECT pg_temp.call($$SELECT dms_report(pg_temp.id('b'), 'failed', 'legacy: broken', 'legacy')$$) AS legacy_fails;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- NOT NULL without a default on dms_job: cost_center is given to the jobs
-- there are, then its default is dropped.  The calls on those jobs keep the
-- value; a new job has none, and dms_create_job is refused (23502).
ALTER TABLE dms_job ADD COLUMN cost_center text NOT NULL DEFAULT 'cc-1';
ALTER TABLE dms_job ALTER COLUMN cost_center DROP DEFAULT;
SELECT dms_stop(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'stopped');
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_create_job('e')$$) AS create_without_cost_center;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
ALTER TABLE dms_job ALTER COLUMN cost_center SET DEFAULT 'cc-2';
SELECT dms_create_job('e') IS NOT NULL AS created_e;
SELECT name, status, phase, cost_center FROM dms_job ORDER BY name;
ALTER TABLE dms_job DROP COLUMN cost_center;

-- NOT NULL without a default on the history: every change writes a history
-- row, so every call is refused (23502), and the job stays as it was.
ALTER TABLE dms_job_history ADD COLUMN reviewer text NOT NULL DEFAULT 'nobody';
ALTER TABLE dms_job_history ALTER COLUMN reviewer DROP DEFAULT;
SELECT pg_temp.snapshot() AS before \gset
SELECT stmt, pg_temp.call(stmt) AS result FROM (VALUES
    ($$SELECT dms_start(pg_temp.id('e'))$$),
    ($$SELECT dms_resume(pg_temp.id('b'))$$),
    ($$SELECT dms_create_job('f')$$)
) v(stmt);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
ALTER TABLE dms_job_history DROP COLUMN reviewer;
SELECT dms_start(pg_temp.id('e')), dms_report(pg_temp.id('e'), 'started');

-- NOT NULL without a default on the failures: a database's failure is
-- refused (23502), and e stays "Running".
ALTER TABLE dms_job_failure ADD COLUMN ticket text NOT NULL DEFAULT 'T-0';
ALTER TABLE dms_job_failure ALTER COLUMN ticket DROP DEFAULT;
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_report(pg_temp.id('e'), 'failed', 'db1: gone', 'db1')$$) AS db1_fails;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
ALTER TABLE dms_job_failure ALTER COLUMN ticket SET DEFAULT 'T-1';
SELECT dms_report(pg_temp.id('e'), 'failed', 'db1: gone', 'db1');
SELECT database_name, error_message, triage, ticket FROM dms_job_failure
 WHERE job_id = pg_temp.id('e') ORDER BY database_name;

-- A foreign key from the team column of dms_job to the team's own table.
-- The calls keep the column; a job created while the default names no team
-- is refused (23503); the team's table cannot lose a team a job names.
CREATE TABLE ord.teams (name text PRIMARY KEY);
INSERT INTO ord.teams VALUES ('core'), ('red');
ALTER TABLE dms_job ADD CONSTRAINT ord_job_team_fkey FOREIGN KEY (team) REFERENCES ord.teams (name);
UPDATE dms_job SET team = 'red' WHERE name = 'b';
SELECT dms_resume(pg_temp.id('b')), dms_report(pg_temp.id('b'), 'resumed');
ALTER TABLE dms_job ALTER COLUMN team SET DEFAULT 'blue';
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_create_job('f')$$) AS create_team_blue;
SELECT pg_temp.call($$DELETE FROM ord.teams WHERE name = 'red'$$) AS delete_team_red;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
INSERT INTO ord.teams VALUES ('blue');
SELECT dms_create_job('f') IS NOT NULL AS created_f;
SELECT name, status, phase, team FROM dms_job ORDER BY name;

-- A foreign key from a table of the team to dms_job: a job that has an open
-- ticket cannot be deleted (23503) until the ticket goes.
CREATE TABLE ord.tickets (job_id bigint NOT NULL REFERENCES dms_job (id), ticket text NOT NULL);
INSERT INTO ord.tickets VALUES (pg_temp.id('f'), 'OPS-1');
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_delete(pg_temp.id('f'))$$) AS delete_f;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
DELETE FROM ord.tickets;
SELECT dms_delete(pg_temp.id('f'));
SELECT h.cause, h."from", h."to"
  FROM hist h JOIN dms_job_history d USING (id) WHERE d.job_name = 'f' ORDER BY id;

--------------------------------------------------------------------------
-- 7. A user's trigger fires during a call as the role that called, as it
--    would for that role's own write: never with the owner's privileges.
--------------------------------------------------------------------------

-- ord_operator may call the operator actions and nothing else.  The team's
-- triggers write into the schema ord, which ord_operator cannot use: its
-- call fails as its own INSERT there would (42501), and changes nothing.
CREATE ROLE ord_operator NOLOGIN;
SELECT dms_grant('ord_operator', 'operator');
SELECT pg_temp.snapshot() AS before \gset
SET ROLE ord_operator;
SELECT pg_temp.call($$SELECT dms_create_job('ops')$$) AS create_ops;
RESET ROLE;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;

-- The team lets operators write its logs; now the calls go through, and the
-- triggers ran as ord_operator (as_owner false).  The history names
-- ord_operator as the actor.
GRANT USAGE ON SCHEMA ord TO ord_operator;
GRANT INSERT ON ALL TABLES IN SCHEMA ord TO ord_operator;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ord TO ord_operator;
SELECT max(n) AS log_mark FROM ord.trigger_log \gset
SET ROLE ord_operator;
SELECT dms_create_job('ops') IS NOT NULL AS created_ops;
SELECT dms_start(pg_temp.id('ops'));
RESET ROLE;
SELECT tg, name, old_value, new_value, as_owner FROM ord.trigger_log WHERE n > :log_mark ORDER BY n;
SELECT job_name, cause, actor FROM dms_job_history WHERE job_name = 'ops' ORDER BY id;
SELECT job_name, cause, to_status FROM ord.shipped WHERE job_name = 'ops' ORDER BY history_id;

-- A trigger that names a table without its schema resolves it on the
-- caller's search_path, where the caller's temporary schema comes first.
-- An operator who puts a temporary table of that name there, with a
-- trigger of its own that tries to make it superuser, gains nothing: that
-- trigger runs as the operator, and the ALTER ROLE is refused (42501).
SELECT dms_create_job('probe') IS NOT NULL AS created_probe;
CREATE TABLE ord.archive (job_id bigint, cause text);
GRANT INSERT ON ord.archive TO ord_operator;
CREATE FUNCTION ord.archive_history() RETURNS trigger LANGUAGE plpgsql
    SET search_path = ord AS $$
BEGIN
    INSERT INTO archive VALUES (NEW.job_id, NEW.cause);
    RETURN NULL;
END
$$;
CREATE TRIGGER ord_archive AFTER INSERT ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION ord.archive_history();
SELECT pg_temp.snapshot() AS before \gset
SET ROLE ord_operator;
CREATE TEMP TABLE archive (job_id bigint, cause text);
CREATE FUNCTION pg_temp.promote_me() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE ord_operator SUPERUSER;
    RETURN NULL;
END
$$;
CREATE TRIGGER promote_me AFTER INSERT ON pg_temp.archive
    FOR EACH ROW EXECUTE FUNCTION pg_temp.promote_me();
SELECT pg_temp.call($$SELECT dms_start(pg_temp.id('probe'))$$) AS start_probe;
DROP TABLE pg_temp.archive;
RESET ROLE;
SELECT rolsuper AS operator_is_superuser FROM pg_roles WHERE rolname = 'ord_operator';
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SELECT dms_start(pg_temp.id('probe'));
SELECT job_id = pg_temp.id('probe') AS archived_probe, cause FROM ord.archive ORDER BY cause;
DROP TRIGGER ord_archive ON dms_job_history;

--------------------------------------------------------------------------
-- 8. Locks taken on the tables are held to the end of the transaction.
--------------------------------------------------------------------------

SELECT dms_create_job('locks') IS NOT NULL AS created_locks;
BEGIN;
SELECT dms_start(pg_temp.id('locks'));
SELECT relation::regclass AS table_name, mode, granted FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'RowExclusiveLock'
   AND relation IN ('dms_job'::regclass, 'dms_job_history'::regclass)
 ORDER BY relation::regclass::text;
SELECT dms_report(pg_temp.id('locks'), 'started'),
       dms_report(pg_temp.id('locks'), 'failed', 'db1: gone', 'db1');
SELECT relation::regclass AS table_name, mode, granted FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'RowExclusiveLock'
   AND relation IN ('dms_job'::regclass, 'dms_job_failure'::regclass, 'dms_job_history'::regclass)
 ORDER BY relation::regclass::text;
COMMIT;
SELECT count(*) AS locks_after_commit FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation'
   AND relation IN ('dms_job'::regclass, 'dms_job_failure'::regclass, 'dms_job_history'::regclass);

--------------------------------------------------------------------------
-- 9. Any role can LISTEN and NOTIFY on the channel dms_lifecycle.
--------------------------------------------------------------------------

-- ord_nobody has no capability: it cannot read a job, but PostgreSQL has no
-- privilege on channels, so it can listen (and a listener should read the
-- history row named by a payload's history_id rather than trust the payload).
CREATE ROLE ord_nobody NOLOGIN;
SET ROLE ord_nobody;
SELECT pg_temp.try($$SELECT count(*) FROM dms_job$$) AS read_jobs;
LISTEN dms_lifecycle;
SELECT pg_listening_channels() AS listening;
RESET ROLE;
-- While it listens, a call refused after its history row was written sends
-- nothing (a notification would print a line): the shipping trigger's table
-- refuses the history rows of a job named poison.
ALTER TABLE ord.shipped ADD CONSTRAINT ord_no_poison CHECK (job_name <> 'poison');
SELECT pg_temp.snapshot() AS before \gset
SELECT pg_temp.call($$SELECT dms_create_job('poison')$$) AS create_poison;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed;
SET ROLE ord_nobody;
UNLISTEN dms_lifecycle;
-- It can also notify on the channel.
NOTIFY dms_lifecycle, 'anyone can notify';
SELECT pg_notify('dms_lifecycle', '{"job_id":1,"cause":"forged"}');
RESET ROLE;

--------------------------------------------------------------------------
-- 10. After all of it.
--------------------------------------------------------------------------

-- The shipping trigger saw every history row, and only those.
SELECT (SELECT count(*) FROM dms_job_history) AS history_rows,
       (SELECT count(*) FROM ord.shipped) AS shipped_rows,
       (SELECT count(*) FROM dms_job_history h FULL JOIN ord.shipped s ON s.history_id = h.id
         WHERE h.id IS NULL OR s.history_id IS NULL
            OR h.job_name <> s.job_name OR h.cause <> s.cause
            OR h.to_status::text IS DISTINCT FROM s.to_status) AS differences;

-- Every btree index of the three tables is consistent with the rows.
SELECT * FROM pg_temp.check_indexes();

-- The jobs, with the team's columns.
SELECT name, status, phase, team, slot, needs_attention, changes FROM dms_job ORDER BY name;

-- Every refusal above had a real SQLSTATE (none XX000, internal error).
SELECT coalesce(substring(result FROM '^ERROR (\w{5}):'), 'ok') AS outcome, count(*) AS calls
  FROM attempts GROUP BY 1 ORDER BY 1;
SELECT count(*) AS internal_errors FROM attempts WHERE result LIKE 'ERROR XX%';

-- The team's objects and roles go.
SET client_min_messages = warning;
DROP SCHEMA ord CASCADE;
DROP OWNED BY ord_operator, ord_nobody;
DROP ROLE ord_operator, ord_nobody;
DROP EXTENSION amcheck;
RESET client_min_messages;
