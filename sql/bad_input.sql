--
-- bad_input: every function refuses bad arguments with the SQLSTATE of SPEC
-- section 7, and a refused call changes nothing.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- pg_temp.try(statement), shared by the tests that show SQLSTATEs
\i sql/try.inc

-- sqlstate_of(statement): like try(), but an error shows its SQLSTATE only
-- (for errors whose wording the SPEC leaves open).
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE stmt INTO result;
    RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE;
END $$;

-- Everything about the jobs, as text, to compare before and after refused calls.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(j::text, ' ' ORDER BY j.id) FROM dms_job j), '')
        || ' | ' || (SELECT count(*) FROM dms_job_history)
        || ' | ' || coalesce((SELECT string_agg(f::text, ' ' ORDER BY f.job_id, f.database_name)
                                FROM dms_job_failure f), '')
$$;

-- The jobs these calls aim at:
--   1 alpha: Not started, databases a and b
--   2 omega: Not started, all databases of its source
--   3 busy:  Running (Full dump), databases a and b
--   4 solo:  Not started, database only
SELECT dms_create_job('alpha', 'continuous', ARRAY['a', 'b']) AS alpha,
       dms_create_job('omega') AS omega,
       dms_create_job('busy', 'continuous', ARRAY['a', 'b']) AS busy,
       dms_create_job('solo', 'one_time', ARRAY['only']) AS solo;
SELECT dms_start(3), dms_report(3, 'started');
SELECT id, name, status, substatus FROM dms_job_overview ORDER BY id;
SELECT pg_temp.snapshot() AS before \gset
SELECT count(*) AS history_rows FROM dms_job_history;

--------------------------------------------------------------------------
-- 1. NULL for each argument: 22004, naming the argument.
--------------------------------------------------------------------------

SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$dms_create_job(NULL)$$),
    ($$dms_create_job('x', NULL)$$),
    ($$dms_create_job('x', 'continuous', ARRAY['a'], NULL)$$),
    ($$dms_start(NULL)$$),
    ($$dms_stop(NULL)$$),
    ($$dms_resume(NULL)$$),
    ($$dms_restart(NULL)$$),
    ($$dms_promote(NULL)$$),
    ($$dms_delete(NULL)$$),
    ($$dms_set_dump_parallelism(NULL, 'max')$$),
    ($$dms_set_dump_parallelism(1, NULL)$$),
    ($$dms_add_database(NULL, 'c')$$),
    ($$dms_add_database(1, NULL)$$),
    ($$dms_remove_database(NULL, 'a')$$),
    ($$dms_remove_database(1, NULL)$$),
    ($$dms_report(NULL, 'started')$$),
    ($$dms_report(3, NULL)$$),
    ($$dms_report(3, NULL, 'boom', 'a')$$),
    ($$dms_allowed_actions(NULL)$$),
    ($$dms_grant(NULL, 'reader')$$),
    ($$dms_grant(current_user::regrole, NULL)$$),
    ($$dms_revoke(NULL, 'reader')$$),
    ($$dms_revoke(current_user::regrole, NULL)$$)
) v(call);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

-- The label functions too ("All functions raise a clear error on NULL
-- arguments"); a NULL phase is a value, not a missing argument: a status
-- without a phase has no substatus.
SELECT call, pg_temp.sqlstate_of('SELECT ' || call) AS result FROM (VALUES
    ($$dms_status_label(NULL)$$),
    ($$dms_action_label(NULL)$$),
    ($$dms_substatus_label(NULL, 'cdc')$$),
    ($$dms_substatus_label(NULL, NULL)$$),
    ($$dms_allowed_action_labels(NULL, NULL)$$),
    ($$dms_substatus_label('not_started', NULL)$$),
    ($$dms_allowed_action_labels('not_started', NULL)$$)
) v(call);

-- NULL for the database list is no error: it means all databases of the source.
SELECT dms_create_job('all-of-them', 'continuous', NULL) AS all_of_them;
SELECT id, name, databases FROM dms_job WHERE name = 'all-of-them';
SELECT dms_delete(id) FROM dms_job WHERE name = 'all-of-them';
SELECT pg_temp.snapshot() AS before \gset

--------------------------------------------------------------------------
-- 2. Job ids that do not exist: P0002.
--------------------------------------------------------------------------

-- Job 5 was deleted just above; 0 and negative ids never exist.
SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$dms_start(5)$$),
    ($$dms_stop(0)$$),
    ($$dms_resume(-1)$$),
    ($$dms_restart(-9223372036854775808)$$),
    ($$dms_promote(9223372036854775807)$$),
    ($$dms_delete(999)$$),
    ($$dms_set_dump_parallelism(999, 'max')$$),
    ($$dms_add_database(999, 'c')$$),
    ($$dms_remove_database(999, 'a')$$),
    ($$dms_report(999, 'started')$$),
    ($$dms_report(999, 'failed', 'boom')$$),
    ($$dms_report(999, 'failed', 'boom', 'a')$$),
    ($$dms_allowed_actions(999)$$),
    ($$dms_allowed_actions(-1)$$)
) v(call);
-- An id beyond bigint is PostgreSQL's own error: out of range as text, no
-- such function as a numeric literal.
SELECT pg_temp.try($$SELECT dms_start('9223372036854775808')$$) AS too_big_text,
       pg_temp.try($$SELECT dms_start(9223372036854775808)$$) AS too_big_numeric;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

--------------------------------------------------------------------------
-- 3. Job names: 1 to 63 characters, not blank, no control characters.
--------------------------------------------------------------------------

SELECT label, pg_temp.try(format('SELECT dms_create_job(%L)', name)) AS result FROM (VALUES
    ('empty', ''),
    ('one space', ' '),
    ('blank', '     '),
    ('tab', E'\t'),
    ('64 characters', repeat('x', 64)),
    ('64 multi-byte characters', repeat('é', 64)),
    ('newline inside', E'orders\nbilling'),
    ('carriage return', E'orders\r'),
    ('escape character', E'\x1b[31mred'),
    ('DEL character', E'orders\x7f'),
    ('C1 control character U+0085', E'orders\u0085')
) v(label, name);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

-- Accepted: 63 characters, 63 multi-byte characters (189 bytes), spaces inside.
SELECT dms_create_job(repeat('x', 63)) IS NOT NULL AS created_63,
       dms_create_job(repeat('日', 63)) IS NOT NULL AS created_63_multibyte,
       dms_create_job('orders to new region') IS NOT NULL AS created_with_spaces;
SELECT length(name) AS characters, octet_length(name) AS bytes, status
  FROM dms_job_overview WHERE id > 5 ORDER BY id;
SELECT pg_temp.snapshot() AS before \gset

-- A job name is unique: 23505 from the unique index.
SELECT pg_temp.try($$SELECT dms_create_job('alpha')$$) AS duplicate_name,
       pg_temp.try($$SELECT dms_create_job(repeat('日', 63))$$) AS duplicate_multibyte_name;
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

--------------------------------------------------------------------------
-- 4. Database lists and database names: 22023.
--------------------------------------------------------------------------

SELECT label, pg_temp.try(format('SELECT dms_create_job(%L, %L, %L::text[])', 'dbs', 'continuous', list)) AS result
  FROM (VALUES
    ('empty array', '{}'),
    ('NULL element', '{a,NULL}'),
    ('duplicate', '{a,b,a}'),
    ('empty name', '{a,""}'),
    ('blank name', '{a,"   "}'),
    ('two dimensions', '{{a,b},{c,d}}'),
    ('64 characters', '{' || repeat('d', 64) || '}'),
    ('control character', E'{"a\tb"}')
) v(label, list);
SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$dms_add_database(1, '')$$),
    ($$dms_add_database(1, '  ')$$),
    ($$dms_add_database(1, repeat('d', 64))$$),
    ($$dms_add_database(1, E'c\nd')$$),
    ($$dms_report(3, 'failed', 'boom', '')$$),
    ($$dms_report(3, 'failed', 'boom', E'a\tb')$$)
) v(call);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

--------------------------------------------------------------------------
-- 5. Messages and database names of events.
--------------------------------------------------------------------------

-- "error" and "failed" need a non-empty message (22023); a database_name
-- goes only with "failed" (22023).  Job 3 is Running (Full dump), where
-- error, failed, stop and the others would be accepted.
SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$dms_report(3, 'error')$$),
    ($$dms_report(3, 'error', '')$$),
    ($$dms_report(3, 'failed')$$),
    ($$dms_report(3, 'failed', '')$$),
    ($$dms_report(3, 'failed', NULL, 'a')$$),
    ($$dms_report(3, 'failed', '', 'a')$$),
    ($$dms_report(3, 'error', 'slow', 'a')$$),
    ($$dms_report(3, 'dump_completed', NULL, 'a')$$),
    ($$dms_report(3, 'stopped', NULL, 'a')$$)
) v(call);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;
SELECT id, status, substatus, error_message, failed_databases FROM dms_job_overview WHERE id = 3;

--------------------------------------------------------------------------
-- 6. Adding and removing databases.
--------------------------------------------------------------------------

SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$dms_add_database(2, 'c')$$),          -- omega migrates all databases
    ($$dms_add_database(1, 'a')$$),          -- alpha has a already
    ($$dms_remove_database(2, 'a')$$),       -- omega has no list
    ($$dms_remove_database(1, 'zzz')$$),     -- alpha has no zzz
    ($$dms_remove_database(4, 'only')$$),    -- solo must keep one database
    ($$dms_add_database(3, 'c')$$),          -- busy is running
    ($$dms_remove_database(3, 'a')$$)        -- busy is running
) v(call);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;
SELECT id, name, databases FROM dms_job WHERE id <= 4 ORDER BY id;

--------------------------------------------------------------------------
-- 7. Values that are no enum label: PostgreSQL's own error (22P02).
--------------------------------------------------------------------------

SELECT call, pg_temp.try('SELECT ' || call) AS result FROM (VALUES
    ($$'bogus'::dms_event$$),
    ($$dms_report(3, 'bogus')$$),
    ($$dms_report(3, 'Failed', 'boom')$$),
    ($$dms_create_job('x', 'forever')$$),
    ($$dms_create_job('x', 'continuous', NULL, 'huge')$$),
    ($$dms_set_dump_parallelism(1, 'MAX')$$),
    ($$dms_substatus_label('paused', NULL)$$)
) v(call);
SELECT pg_temp.snapshot() = :'before' AS nothing_changed,
       (SELECT count(*) FROM dms_job_history) AS history_rows;
