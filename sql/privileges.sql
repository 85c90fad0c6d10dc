--
-- privileges: the capabilities reader, operator and engine (SPEC 9), who
-- the history names as actor, dms_grant/dms_revoke, and functions that a
-- hostile search_path cannot hijack.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- Roles left behind by an earlier, interrupted run go first.
SET client_min_messages = warning;
SET test.roles = 'alice_reader,bob_operator,eve_engine,mallory';
\i sql/drop_roles.inc
RESET client_min_messages;

-- try(sql): runs a statement; 'ok' (with the value it returns, if any) or
-- the error's SQLSTATE and message, without file or line.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN 'ok' || coalesce(': ' || r, '');
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- try_as(role, sql): the same, run as another role; only the SQLSTATE.
CREATE FUNCTION pg_temp.try_as(who name, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SET ROLE %I', who);
    BEGIN
        EXECUTE sql;
        result := 'ok';
    EXCEPTION WHEN OTHERS THEN
        result := SQLSTATE;
    END;
    RESET ROLE;
    RETURN result;
END
$$;

--------------------------------------------------------------------------
-- Four roles, three capabilities
--------------------------------------------------------------------------

-- A reader, an operator, the migration engine, and mallory, who gets nothing.
CREATE ROLE alice_reader NOLOGIN;
CREATE ROLE bob_operator NOLOGIN;
CREATE ROLE eve_engine NOLOGIN;
CREATE ROLE mallory NOLOGIN;
SELECT dms_grant('alice_reader', 'reader');
SELECT dms_grant('bob_operator', 'operator');
SELECT dms_grant('eve_engine', 'engine');

-- Granting twice is harmless.
SELECT dms_grant('alice_reader', 'reader');

-- What each role may now do with the tables and the view.
SELECT r AS role, c AS relation,
       has_table_privilege(r, c, 'SELECT') AS "select",
       has_table_privilege(r, c, 'INSERT') AS "insert",
       has_table_privilege(r, c, 'UPDATE') AS "update",
       has_table_privilege(r, c, 'DELETE') AS "delete",
       has_table_privilege(r, c, 'TRUNCATE') AS "truncate"
  FROM unnest(ARRAY['alice_reader', 'bob_operator', 'eve_engine', 'mallory']) AS r,
       unnest(ARRAY['dms_job', 'dms_job_failure', 'dms_job_history', 'dms_job_overview',
                     'dms_job_database', 'dms_job_progress', 'dms_metrics']) AS c
 ORDER BY r COLLATE "C", c COLLATE "C";

-- Which of the extension's functions each role may execute: the labels
-- and dms_transitions() for everybody, dms_allowed_actions for every
-- capability, the actions for the operator, dms_report for the engine.
SELECT p.proname AS function,
       has_function_privilege('alice_reader', p.oid, 'EXECUTE') AS alice_reader,
       has_function_privilege('bob_operator', p.oid, 'EXECUTE') AS bob_operator,
       has_function_privilege('eve_engine', p.oid, 'EXECUTE') AS eve_engine,
       has_function_privilege('mallory', p.oid, 'EXECUTE') AS mallory
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
   AND d.deptype = 'e'
 ORDER BY p.proname;

-- The same decided by PostgreSQL at call time.  The calls name job 999,
-- which does not exist: a call that passes the privilege check fails with
-- P0002 and changes nothing; dms_create_job gets a NULL name (22004).
-- Rolled back, so that a bug here cannot spoil what follows.
BEGIN;
SELECT s AS statement,
       pg_temp.try_as('alice_reader', s) AS alice_reader,
       pg_temp.try_as('bob_operator', s) AS bob_operator,
       pg_temp.try_as('eve_engine', s) AS eve_engine,
       pg_temp.try_as('mallory', s) AS mallory
  FROM unnest(ARRAY[
        'SELECT count(*) FROM dms_job',
        'SELECT count(*) FROM dms_job_failure',
        'SELECT count(*) FROM dms_job_history',
        'SELECT count(*) FROM dms_job_overview',
        'SELECT dms_allowed_actions(999)',
        'SELECT dms_create_job(NULL)',
        'SELECT dms_start(999)',
        'SELECT dms_stop(999)',
        'SELECT dms_resume(999)',
        'SELECT dms_restart(999)',
        'SELECT dms_promote(999)',
        'SELECT dms_delete(999)',
        'SELECT dms_set_dump_parallelism(999, ''max'')',
        'SELECT dms_add_database(999, ''db'')',
        'SELECT dms_remove_database(999, ''db'')',
        'SELECT dms_report(999, ''started'')',
        'SELECT dms_grant(''mallory'', ''operator'')',
        'SELECT dms_revoke(''alice_reader'', ''reader'')',
        'INSERT INTO dms_job (name) VALUES (''direct'')',
        'UPDATE dms_job SET name = name WHERE id = 999',
        'DELETE FROM dms_job WHERE id = 999',
        'INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (999, ''db'', ''cdc'', ''x'')',
        'DELETE FROM dms_job_failure WHERE job_id = 999',
        'INSERT INTO dms_job_history (job_id, job_name, cause, actor) VALUES (999, ''x'', ''create'', ''x'')',
        'UPDATE dms_job_history SET actor = ''x'' WHERE id = 999',
        'DELETE FROM dms_job_history WHERE id = 999',
        'TRUNCATE dms_job_history',
        'SELECT dms_status_label(''running'')',
        'SELECT dms_substatus_label(''stopped'', ''cdc'')',
        'SELECT dms_action_label(''promote'')',
        'SELECT count(*) FROM dms_transitions()',
        'SELECT dms_allowed_action_labels(''failed'', ''cdc'')'
       ]) AS s;
ROLLBACK;

-- Nothing happened.
SELECT (SELECT count(*) FROM dms_job) AS jobs,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

--------------------------------------------------------------------------
-- The operator acts
--------------------------------------------------------------------------

SET ROLE bob_operator;

-- bob creates two jobs and starts the first.
SELECT dms_create_job('orders');
SELECT dms_create_job('billing', 'continuous', ARRAY['ledger', 'invoices']);
SELECT dms_start(1);

-- bob edits the second job: parallelism, then its databases.
SELECT dms_set_dump_parallelism(2, 'max');
SELECT dms_add_database(2, 'payments');

-- bob cannot report what the engine reports.
SELECT pg_temp.try('SELECT dms_report(1, ''started'')');

-- bob cannot write any table directly, nor empty the history.
SELECT pg_temp.try('INSERT INTO dms_job (name) VALUES (''sneaky'')');
SELECT pg_temp.try('UPDATE dms_job SET status = ''running'', phase = ''full_dump'' WHERE id = 1');
SELECT pg_temp.try('DELETE FROM dms_job WHERE id = 2');
SELECT pg_temp.try('INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (2, ''ledger'', ''cdc'', ''x'')');
SELECT pg_temp.try('UPDATE dms_job_failure SET error_message = ''x''');
SELECT pg_temp.try('DELETE FROM dms_job_failure');
SELECT pg_temp.try('INSERT INTO dms_job_history (job_id, job_name, cause, actor) VALUES (1, ''orders'', ''start'', ''alice_reader'')');
SELECT pg_temp.try('UPDATE dms_job_history SET actor = ''alice_reader''');
SELECT pg_temp.try('DELETE FROM dms_job_history');
SELECT pg_temp.try('TRUNCATE dms_job_history');

-- bob cannot hand out capabilities.
SELECT pg_temp.try('SELECT dms_grant(''mallory'', ''operator'')');
SELECT pg_temp.try('SELECT dms_revoke(''alice_reader'', ''reader'')');

-- bob reads what he did.
SELECT id, name, status, substatus, allowed_actions, dump_parallelism
  FROM dms_job_overview ORDER BY id;

RESET ROLE;

--------------------------------------------------------------------------
-- The engine reports
--------------------------------------------------------------------------

SET ROLE eve_engine;

-- eve reports that job 1 started and finished its dump, and that a
-- database of job 2 failed... which job 2, not started, cannot do.
SELECT dms_report(1, 'started');
SELECT dms_report(1, 'dump_completed');
SELECT pg_temp.try('SELECT dms_report(2, ''failed'', ''disk full'', ''ledger'')');

-- eve can perform no operator action.
SELECT pg_temp.try('SELECT dms_stop(1)');
SELECT pg_temp.try('SELECT dms_promote(1)');
SELECT pg_temp.try('SELECT dms_create_job(''eves'')');
SELECT pg_temp.try('SELECT dms_set_dump_parallelism(1, ''min'')');
SELECT pg_temp.try('SELECT dms_delete(2)');

-- ... nor write a table directly.
SELECT pg_temp.try('UPDATE dms_job SET status = ''running_with_errors'', error_message = ''x'' WHERE id = 1');
SELECT pg_temp.try('INSERT INTO dms_job_failure (job_id, database_name, phase, error_message) VALUES (1, ''orders'', ''cdc'', ''x'')');

-- eve reads the allowed actions of job 1.
SELECT dms_allowed_actions(1);

RESET ROLE;

-- bob starts job 2; eve reports it started, then that its database
-- "ledger" failed; bob removes that database, and the job recovers.
SET ROLE bob_operator;
SELECT dms_start(2);
SET ROLE eve_engine;
SELECT dms_report(2, 'started');
SELECT dms_report(2, 'failed', 'disk full', 'ledger');
SET ROLE bob_operator;
SELECT dms_remove_database(2, 'ledger');
RESET ROLE;

--------------------------------------------------------------------------
-- The reader reads
--------------------------------------------------------------------------

SET ROLE alice_reader;

-- alice reads the jobs, the failures, the history and the overview.
SELECT id, name, migration_type, status, phase, databases FROM dms_job ORDER BY id;
SELECT count(*) AS failures FROM dms_job_failure;
SELECT count(*) AS history_rows FROM dms_job_history;
SELECT id, name, status, substatus, allowed_actions FROM dms_job_overview ORDER BY id;
SELECT dms_allowed_actions(1) AS job_1, dms_allowed_actions(2) AS job_2;

-- alice acts on nothing and reports nothing.
SELECT pg_temp.try('SELECT dms_stop(1)');
SELECT pg_temp.try('SELECT dms_promote(1)');
SELECT pg_temp.try('SELECT dms_create_job(''alices'')');
SELECT pg_temp.try('SELECT dms_report(1, ''error'', ''slow'')');
SELECT pg_temp.try('UPDATE dms_job SET status = ''stopping'' WHERE id = 1');

RESET ROLE;

--------------------------------------------------------------------------
-- mallory, who has no capability
--------------------------------------------------------------------------

SET ROLE mallory;

-- mallory reads the labels and the lifecycle, which reveal no job...
SELECT dms_status_label('stopped') AS status, dms_substatus_label('stopped', 'cdc') AS substatus,
       dms_action_label('resume') AS action,
       dms_allowed_action_labels('stopped', 'cdc') AS allowed_actions;
SELECT count(*) AS edges FROM dms_transitions();

-- ... and nothing else.
SELECT pg_temp.try('SELECT count(*) FROM dms_job');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_overview');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_history');
SELECT pg_temp.try('SELECT dms_allowed_actions(1)');
SELECT pg_temp.try('SELECT dms_stop(1)');
SELECT pg_temp.try('SELECT dms_report(1, ''error'', ''boo'')');
SELECT pg_temp.try('SELECT dms_grant(''mallory'', ''operator'')');

RESET ROLE;

--------------------------------------------------------------------------
-- The history names who called, not who wrote
--------------------------------------------------------------------------

-- The functions write the tables as their owner (bob and eve may not write
-- them), yet every row names the role that called: bob_operator for
-- actions and edits, eve_engine for events, bob_operator for the recovery
-- his removal of the failed database caused.  Nobody else appears.
SELECT h.id, h.job_id, h.cause, h.from_status, h.from_phase, h.to_status, h.to_phase,
       h.database_name, h.message, h.actor,
       h.actor = pg_get_userbyid(c.relowner) AS actor_is_owner
  FROM dms_job_history h, pg_class c
 WHERE c.oid = 'dms_job_history'::regclass
 ORDER BY h.id;

-- The owner of the tables is the role that installed the extension, not
-- one of the four.
SELECT pg_get_userbyid(relowner) IN ('alice_reader', 'bob_operator', 'eve_engine', 'mallory')
       AS owned_by_a_test_role
  FROM pg_class WHERE oid = 'dms_job'::regclass;

--------------------------------------------------------------------------
-- dms_grant and dms_revoke
--------------------------------------------------------------------------

-- An unknown capability, and NULL arguments.
SELECT pg_temp.try('SELECT dms_grant(''mallory'', ''admin'')');
SELECT pg_temp.try('SELECT dms_revoke(''mallory'', ''superuser'')');
SELECT pg_temp.try('SELECT dms_grant(NULL, ''reader'')');
SELECT pg_temp.try('SELECT dms_grant(''mallory'', NULL)');
SELECT pg_temp.try('SELECT dms_revoke(NULL, ''reader'')');
SELECT pg_temp.try('SELECT dms_revoke(''mallory'', NULL)');

-- A role that does not exist is refused by the type regrole itself.
SELECT pg_temp.try('SELECT dms_grant(''nobody_at_all'', ''reader'')');

-- mallory got nothing from those attempts.
SELECT has_function_privilege('mallory', 'dms_stop(bigint)', 'EXECUTE') AS may_stop,
       has_table_privilege('mallory', 'dms_job', 'SELECT') AS may_read;

-- Revoking operator from bob takes the actions and leaves the reading.
SELECT dms_revoke('bob_operator', 'operator');
SET ROLE bob_operator;
SELECT pg_temp.try('SELECT dms_stop(1)');
SELECT pg_temp.try('SELECT dms_create_job(''after revoke'')');
SELECT pg_temp.try('SELECT dms_set_dump_parallelism(1, ''min'')');
SELECT pg_temp.try('SELECT count(*) FROM dms_job');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_overview');
SELECT pg_temp.try('SELECT dms_allowed_actions(1)');
RESET ROLE;

-- Revoking reader from alice takes everything she had.
SELECT dms_revoke('alice_reader', 'reader');
SET ROLE alice_reader;
SELECT pg_temp.try('SELECT count(*) FROM dms_job');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_failure');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_history');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_overview');
SELECT pg_temp.try('SELECT dms_allowed_actions(1)');
SELECT pg_temp.try('SELECT dms_status_label(''running'')');
RESET ROLE;

-- Revoking reader from eve takes dms_report too.
SELECT dms_revoke('eve_engine', 'reader');
SET ROLE eve_engine;
SELECT pg_temp.try('SELECT dms_report(1, ''error'', ''slow'')');
SELECT pg_temp.try('SELECT count(*) FROM dms_job');
RESET ROLE;

-- What is left, role by role: only bob reads.
SELECT r AS role,
       has_table_privilege(r, 'dms_job', 'SELECT') AS reads_jobs,
       has_table_privilege(r, 'dms_job_overview', 'SELECT') AS reads_overview,
       has_function_privilege(r, 'dms_allowed_actions(bigint)', 'EXECUTE') AS allowed_actions,
       has_function_privilege(r, 'dms_start(bigint)', 'EXECUTE') AS acts,
       has_function_privilege(r, 'dms_report(bigint,dms_event,text,text)', 'EXECUTE') AS reports
  FROM unnest(ARRAY['alice_reader', 'bob_operator', 'eve_engine', 'mallory']) AS r
 ORDER BY r COLLATE "C";

-- The jobs are as bob and eve left them: the refused calls changed nothing.
SELECT id, name, status, substatus, allowed_actions, failed_databases
  FROM dms_job_overview ORDER BY id;
SELECT count(*) AS history_rows FROM dms_job_history;

--------------------------------------------------------------------------
-- search_path cannot hijack the functions
--------------------------------------------------------------------------

-- bob gets his operator capability back and, for this part only, the
-- engine's; and a schema of his own.
SELECT dms_grant('bob_operator', 'operator');
SELECT dms_grant('bob_operator', 'engine');
CREATE SCHEMA bob AUTHORIZATION bob_operator;
SELECT max(id) AS last_history_id FROM dms_job_history \gset

-- A new session, so that the extension prepares its statements while
-- bob's search_path is in force.
\c
SET ROLE bob_operator;
SET search_path = bob, pg_catalog, public;

-- bob's look-alikes: a table dms_job in his schema, temporary tables
-- dms_job_history and dms_job_failure (pg_temp comes first for tables,
-- whatever search_path says), a function now() that lies, and an operator
-- = on bigint (and on text) that says everything is equal.
CREATE TABLE bob.dms_job (id bigint, name text, status text);
INSERT INTO bob.dms_job VALUES (1, 'decoy', 'not_started'), (3, 'decoy 3', 'not_started');
CREATE TEMP TABLE dms_job_history (id bigint, job_id bigint, cause text);
INSERT INTO dms_job_history VALUES (1, 3, 'decoy');
CREATE TEMP TABLE dms_job_failure (job_id bigint, database_name text);
INSERT INTO dms_job_failure VALUES (3, 'b');
CREATE FUNCTION bob.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT timestamptz '2000-01-01 00:00:00+00' $$;
CREATE FUNCTION bob.always_equal(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR bob.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = bob.always_equal);
CREATE FUNCTION bob.always_equal(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR bob.= (LEFTARG = text, RIGHTARG = text, FUNCTION = bob.always_equal);

-- Unqualified names now mean bob's objects.
SELECT now() = '2000-01-01 00:00:00+00' AS now_is_bobs,
       1::bigint = 2::bigint AS one_equals_two,
       'a'::text = 'b'::text AS a_equals_b,
       (SELECT string_agg(name, ', ' ORDER BY id) FROM dms_job) AS dms_job_is_bobs,
       (SELECT string_agg(cause, ', ') FROM dms_job_history) AS history_is_bobs;

-- bob creates job 3, removes one of its databases, sets its parallelism
-- and starts it, reports it started and a database failure, and stops
-- job 2.  Each call changes only its own job.
SELECT dms_create_job('shipping', 'continuous', ARRAY['a', 'b', 'c']);
SELECT dms_remove_database(3, 'c');
SELECT dms_set_dump_parallelism(3, 'min');
SELECT dms_start(3);
SELECT dms_report(3, 'started');
SELECT dms_report(3, 'failed', 'disk full', 'a');
SELECT dms_allowed_actions(3);
SELECT dms_stop(2);

RESET ROLE;
RESET search_path;

-- The real table: job 3 created, edited, started and failed; job 2
-- stopping; job 1 untouched (an "=" that matched every row would have
-- moved it too), and no timestamp from bob's now().
SELECT id, name, status, phase, databases, dump_parallelism,
       created_at > '2001-01-01' AS real_created_at,
       updated_at > '2001-01-01' AS real_updated_at,
       status_changed_at > '2001-01-01' AS real_status_changed_at
  FROM public.dms_job ORDER BY id;
SELECT job_id, database_name, phase, error_message, failed_at > '2001-01-01' AS real_failed_at
  FROM public.dms_job_failure ORDER BY job_id, database_name;

-- One history row per change, each for its own job, none from bob's now().
SELECT id, job_id, job_name, cause, from_status, to_status, database_name, message, actor,
       occurred_at > '2001-01-01' AS real_occurred_at
  FROM public.dms_job_history WHERE id > :last_history_id ORDER BY id;

-- bob's look-alikes are untouched.
SELECT * FROM bob.dms_job ORDER BY id;
SELECT * FROM pg_temp.dms_job_history;
SELECT * FROM pg_temp.dms_job_failure;

--------------------------------------------------------------------------
-- Cleanup
--------------------------------------------------------------------------

DROP SCHEMA bob CASCADE;
DROP OWNED BY alice_reader, bob_operator, eve_engine, mallory;
DROP ROLE alice_reader, bob_operator, eve_engine, mallory;
SELECT count(*) AS test_roles_left FROM pg_roles
 WHERE rolname IN ('alice_reader', 'bob_operator', 'eve_engine', 'mallory');
