--
-- hostile: input that is too big, out of range, malformed or full of strange
-- characters.  Every function refuses what is bad with the SQLSTATE of SPEC
-- section 7 (or PostgreSQL's own 22P02 for text that is no enum label) and a
-- refused call changes nothing; what is good but unusual (huge messages,
-- newlines in messages, names in any script) is accepted and kept exactly.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- pg_temp.try(statement), shared by the tests that show SQLSTATEs
\i sql/try.inc

-- Everything about the jobs, as text: every job row, the number of history
-- rows and the newest history id, every failure row.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(j::text, ' ' ORDER BY j.id) FROM dms_job j), '')
        || ' | ' || (SELECT count(*) || ' ' || coalesce(max(id), 0) FROM dms_job_history)
        || ' | ' || coalesce((SELECT string_agg(f::text, ' ' ORDER BY f.job_id, f.database_name)
                                FROM dms_job_failure f), '')
$$;

-- refused(statement): try() on the statement, and whether the snapshot
-- after it equals the snapshot before it.
CREATE FUNCTION pg_temp.refused(stmt text, OUT result text, OUT nothing_changed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.snapshot();
BEGIN
    result := pg_temp.try(stmt);
    nothing_changed := pg_temp.snapshot() = before;
END $$;

-- The jobs these calls aim at:
--   1 alpha: Not started, databases a and b
--   2 omega: Running (Full dump), all databases of its source
--   3 busy:  Running (CDC), databases a and b
SELECT dms_create_job('alpha', 'continuous', ARRAY['a', 'b']) AS alpha,
       dms_create_job('omega') AS omega,
       dms_create_job('busy', 'continuous', ARRAY['a', 'b']) AS busy;
SELECT dms_start(2), dms_report(2, 'started');
SELECT dms_start(3), dms_report(3, 'started'), dms_report(3, 'dump_completed');
SELECT id, name, status, substatus, allowed_actions FROM dms_job_overview ORDER BY id;
SELECT count(*) AS history_rows FROM dms_job_history;

--------------------------------------------------------------------------
-- 1. Names of 1 MB: 22023, nothing changed.
--------------------------------------------------------------------------

-- 1,048,576 characters: ASCII, three-byte CJK (3 MB), blanks; through
-- dms_create_job and through direct writes, which the same guard checks.
SELECT label, (r).result, (r).nothing_changed FROM (
    SELECT label, pg_temp.refused(stmt) AS r FROM (VALUES
        ('create, 1 MB of x',          $$SELECT dms_create_job(repeat('x', 1048576))$$),
        ('create, 1 M CJK characters', $$SELECT dms_create_job(repeat('日', 1048576))$$),
        ('create, 1 MB of spaces',     $$SELECT dms_create_job(repeat(' ', 1048576))$$),
        ('create, 1 MB, one_time',     $$SELECT dms_create_job(repeat('x', 1048576), 'one_time', ARRAY['a'], 'max')$$),
        ('direct INSERT',              $$INSERT INTO dms_job (name) VALUES (repeat('x', 1048576))$$),
        ('direct UPDATE of a name',    $$UPDATE dms_job SET name = repeat('x', 1048576) WHERE id = 1$$)
    ) v(label, stmt)) c;
SELECT count(*) AS history_rows FROM dms_job_history;
SELECT id, name, status, substatus FROM dms_job_overview ORDER BY id;

--------------------------------------------------------------------------
-- 2. Database names of 1 MB, in every function that takes one: 22023.
--------------------------------------------------------------------------

-- omega migrates all databases of its source, so any database may fail
-- there: only the name's own check stands between 1 MB and a failure row.
SELECT label, (r).result, (r).nothing_changed FROM (
    SELECT label, pg_temp.refused(stmt) AS r FROM (VALUES
        ('dms_create_job',                $$SELECT dms_create_job('big', 'continuous', ARRAY['a', repeat('d', 1048576)])$$),
        ('dms_add_database',              $$SELECT dms_add_database(1, repeat('d', 1048576))$$),
        ('dms_remove_database',           $$SELECT dms_remove_database(1, repeat('d', 1048576))$$),
        ('dms_report failed, omega (all)', $$SELECT dms_report(2, 'failed', 'boom', repeat('d', 1048576))$$),
        ('dms_report failed, busy (a, b)', $$SELECT dms_report(3, 'failed', 'boom', repeat('d', 1048576))$$),
        ('direct UPDATE of databases',    $$UPDATE dms_job SET databases = ARRAY[repeat('d', 1048576)] WHERE id = 1$$),
        ('direct INSERT of a failure',    $$INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (2, repeat('d', 1048576), 'boom')$$)
    ) v(label, stmt)) c;
SELECT count(*) AS history_rows FROM dms_job_history;
SELECT id, name, status, substatus, failed_databases FROM dms_job_overview ORDER BY id;
SELECT id, databases FROM dms_job ORDER BY id;

--------------------------------------------------------------------------
-- 3. Job ids at the ends of bigint, and 0: P0002 from every function.
--------------------------------------------------------------------------

-- Every other argument is valid, so only the id is wrong.
SELECT call, bool_and((r).nothing_changed) AS nothing_changed,
       string_agg((r).result, E'\n' ORDER BY id) AS results
  FROM (SELECT call, id, pg_temp.refused(format('SELECT ' || call, id)) AS r
          FROM (VALUES
                ('dms_start(%s)'),
                ('dms_stop(%s)'),
                ('dms_resume(%s)'),
                ('dms_restart(%s)'),
                ('dms_promote(%s)'),
                ('dms_delete(%s)'),
                ('dms_set_dump_parallelism(%s, ''max'')'),
                ('dms_add_database(%s, ''c'')'),
                ('dms_remove_database(%s, ''a'')'),
                ('dms_report(%s, ''started'')'),
                ('dms_report(%s, ''error'', ''slow'')'),
                ('dms_report(%s, ''failed'', ''boom'', ''a'')'),
                ('dms_allowed_actions(%s)')
          ) f(call),
          (VALUES (-9223372036854775808), (0), (9223372036854775807)) i(id)) c
 GROUP BY call ORDER BY call;
SELECT count(*) AS history_rows FROM dms_job_history;

--------------------------------------------------------------------------
-- 4. Text that is no label of the enum type: PostgreSQL's own 22P02,
--    for each enum type, through each function that takes it.
--------------------------------------------------------------------------

-- Wrong words, wrong case, surrounding spaces, the empty string, and a
-- label of another of the extension's enum types.
SELECT type, call, (r).result, (r).nothing_changed FROM (
    SELECT type, call, pg_temp.refused('SELECT ' || call) AS r FROM (VALUES
        ('dms_migration_type',   $$dms_create_job('x', 'forever')$$),
        ('dms_migration_type',   $$dms_create_job('x', 'Continuous')$$),
        ('dms_migration_type',   $$dms_create_job('x', ' one_time')$$),
        ('dms_migration_type',   $$dms_create_job('x', '')$$),
        ('dms_dump_parallelism', $$dms_create_job('x', 'continuous', NULL, 'huge')$$),
        ('dms_dump_parallelism', $$dms_create_job('x', 'continuous', NULL, 'optimal ')$$),
        ('dms_dump_parallelism', $$dms_set_dump_parallelism(1, 'MAX')$$),
        ('dms_dump_parallelism', $$dms_set_dump_parallelism(1, '')$$),
        ('dms_dump_parallelism', $$dms_set_dump_parallelism(1, 'continuous')$$),
        ('dms_event',            $$dms_report(2, 'bogus')$$),
        ('dms_event',            $$dms_report(2, 'Failed', 'boom')$$),
        ('dms_event',            $$dms_report(2, 'stop')$$),
        ('dms_event',            $$dms_report(2, '', 'boom', 'a')$$),
        ('dms_job_status',       $$dms_status_label('paused')$$),
        ('dms_job_status',       $$dms_status_label('Not started')$$),
        ('dms_job_status',       $$dms_substatus_label('Running', 'cdc')$$),
        ('dms_job_status',       $$dms_allowed_action_labels('', NULL)$$),
        ('dms_job_phase',        $$dms_substatus_label('running', 'CDC')$$),
        ('dms_job_phase',        $$dms_substatus_label('running', 'promote')$$),
        ('dms_job_phase',        $$dms_allowed_action_labels('running', 'full dump')$$),
        ('dms_action',           $$dms_action_label('launch')$$),
        ('dms_action',           $$dms_action_label('Start')$$),
        ('dms_action',           $$dms_action_label('started')$$)
    ) v(type, call)) c;
-- Direct writes of enum columns.
SELECT call, (r).result, (r).nothing_changed FROM (
    SELECT call, pg_temp.refused(call) AS r FROM (VALUES
        ($$UPDATE dms_job SET status = 'paused' WHERE id = 2$$),
        ($$UPDATE dms_job SET phase = 'cdc ' WHERE id = 2$$),
        ($$UPDATE dms_job SET migration_type = 'twice' WHERE id = 1$$),
        ($$UPDATE dms_job SET dump_parallelism = 'none' WHERE id = 1$$),
        ($$INSERT INTO dms_job (name, migration_type) VALUES ('x', 'sometimes')$$)
    ) v(call)) c;
SELECT count(*) AS history_rows FROM dms_job_history;

--------------------------------------------------------------------------
-- 5. Control characters in names and database names: 22023.
--------------------------------------------------------------------------

-- The calls and direct writes that take a job or database name: each
-- statement has a %L for the name.
CREATE TEMP TABLE name_calls (call text, stmt text);
INSERT INTO name_calls VALUES
    ('dms_create_job(name)',            'SELECT dms_create_job(%L)'),
    ('UPDATE dms_job SET name',         'UPDATE dms_job SET name = %L WHERE id = 1'),
    ('dms_create_job(databases)',       'SELECT dms_create_job(''names'', ''continuous'', ARRAY[''a'', %L])'),
    ('dms_add_database',                'SELECT dms_add_database(1, %L)'),
    ('dms_remove_database',             'SELECT dms_remove_database(1, %L)'),
    ('dms_report failed, omega (all)',  'SELECT dms_report(2, ''failed'', ''boom'', %L)'),
    ('UPDATE dms_job SET databases',    'UPDATE dms_job SET databases = ARRAY[''a'', %L] WHERE id = 1'),
    ('INSERT INTO dms_job_failure',     'INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (2, %L, ''boom'')');

-- Every C0 control character but NUL (which text cannot hold; tab and
-- newline among them), DEL, and every C1 control character (U+0080 to
-- U+009F, U+0085 "next line" among them), inside a name: 'x' || c || 'y'.
-- One line per function: how many of the 64 code points it refused, with
-- which errors, the code points (hex) it accepted, and whether any call
-- changed something.
SELECT call,
       count(*) FILTER (WHERE (r).result LIKE 'ERROR 22023:%') AS refused_22023,
       string_agg(DISTINCT (r).result, E'\n') AS results,
       coalesce(string_agg(to_hex(cp), ' ' ORDER BY cp) FILTER (WHERE (r).result NOT LIKE 'ERROR 22023:%'), '')
         AS accepted,
       bool_and((r).nothing_changed) AS nothing_changed
  FROM (SELECT call, cp,
               pg_temp.refused(format(stmt, 'x' || chr(cp) || 'y')) AS r
          FROM name_calls f,
          (SELECT generate_series(1, 31) UNION ALL SELECT 127
           UNION ALL SELECT generate_series(128, 159)) p(cp)) c
 GROUP BY call ORDER BY call;

-- Invisible format characters (Unicode category Cf) inside a name, through
-- the same calls: soft hyphen, Arabic letter mark, zero-width space,
-- non-joiner and joiner, left-to-right and right-to-left marks, the
-- bidirectional embeddings, overrides and isolates, word joiner, byte order
-- mark, a language tag: 22023, nothing changed.
SELECT call,
       count(*) FILTER (WHERE (r).result LIKE 'ERROR 22023: % must not contain invisible formatting characters') AS refused_22023,
       count(*) AS tried,
       bool_and((r).nothing_changed) AS nothing_changed
  FROM (SELECT call, cp,
               pg_temp.refused(format(stmt, 'x' || chr(cp) || 'y')) AS r
          FROM name_calls f,
          (SELECT unnest(ARRAY[x'00AD', x'061C', x'200B', x'200C', x'200D', x'200E', x'200F',
                               x'202A', x'202B', x'202C', x'202D', x'202E', x'2060', x'2066',
                               x'2067', x'2068', x'2069', x'FEFF', x'E0001']::int[])) p(cp)) c
 GROUP BY call ORDER BY call;

-- A name that is only a control character, and control characters at the
-- ends (a trailing newline is easy to paste by mistake).
SELECT label, (r).result, (r).nothing_changed FROM (
    SELECT label, pg_temp.refused(format('SELECT dms_create_job(%L)', name)) AS r FROM (VALUES
        ('only a tab',         E'\t'),
        ('only U+0085',        E'\u0085'),
        ('trailing newline',   E'orders\n'),
        ('leading tab',        E'\torders'),
        ('trailing CR LF',     E'orders\r\n'),
        ('leading DEL',        E'\x7forders'),
        ('only U+0001',        E'\x01')
    ) v(label, name)) c;
SELECT count(*) AS history_rows FROM dms_job_history;
SELECT id, name, databases, status FROM dms_job ORDER BY id;

--------------------------------------------------------------------------
-- 6. Names in any script: up to 63 characters, however many bytes.
--------------------------------------------------------------------------

-- A character is a code point (what length() counts): a combining accent
-- counts apart from its letter.  Bytes do not matter: 63 emoji are 252
-- bytes.  Invisible format characters are refused (22023): a zero-width
-- joiner (even between emoji), a right-to-left override (U+202E) that
-- makes "invoice" U+202E "txt.exe" read as "invoiceexe.txt", a zero-width
-- space: each makes a name read as another.
CREATE TEMP TABLE names (label text, name text);
INSERT INTO names VALUES
    ('63 CJK characters',                repeat('日', 63)),
    ('63 emoji (4 bytes each)',          repeat('🚀', 63)),
    ('31 e + combining acute, and x',    repeat(E'e\u0301', 31) || 'x'),
    ('family emoji with joiners',        E'\U0001F468\u200D\U0001F469\u200D\U0001F467 migration'),
    ('Arabic, right to left',            'ترحيل قاعدة البيانات'),
    ('Greek, Cyrillic, Hangul',          'μετανάστευση миграция 이전'),
    ('precomposed é',                    E'caf\u00e9'),
    ('decomposed é (e + U+0301)',        E'cafe\u0301'),
    ('right-to-left override U+202E',    E'invoice\u202Etxt.exe'),
    ('zero-width space inside',          E'zero\u200Bwidth');
-- (The ids of new jobs are not shown: refused creations above used some.)
SELECT label, regexp_replace(pg_temp.try(format('SELECT dms_create_job(%L)', name)),
                             '^ok: [0-9]+$', 'created') AS result,
       length(name) AS characters, octet_length(name) AS bytes
  FROM names ORDER BY label;

-- Every name round-trips: the job row, the overview and the history row
-- hold exactly the text given.  The precomposed and the decomposed "café"
-- look alike but are two different names (PostgreSQL compares code points).
SELECT n.label,
       j.name = n.name AS job_row_exact,
       o.name = n.name AS overview_exact,
       (SELECT bool_and(h.job_name = n.name) AND count(*) = 1
          FROM dms_job_history h WHERE h.job_id = j.id) AS history_exact
  FROM names n JOIN dms_job j ON j.name = n.name JOIN dms_job_overview o ON o.id = j.id
 ORDER BY j.id;

-- One character too many, whatever its bytes; and names that are only
-- white space of other scripts: 22023.
SELECT label, (r).result, (r).nothing_changed FROM (
    SELECT label, pg_temp.refused(format('SELECT dms_create_job(%L)', name)) AS r FROM (VALUES
        ('64 CJK characters',               repeat('日', 64)),
        ('64 emoji',                        repeat('🚀', 64)),
        ('32 e + combining acute',          repeat(E'e\u0301', 32)),
        ('only ideographic space U+3000',   E'\u3000\u3000'),
        ('only no-break space U+00A0',      E'\u00a0'),
        ('only zero-width space U+200B',    E'\u200B'),
        ('duplicate of a CJK name',         repeat('日', 63))
    ) v(label, name)) c;
SELECT count(*) AS history_rows FROM dms_job_history;

-- Database names in any script, through every function that takes one.
SELECT dms_create_job('scripts', 'continuous', ARRAY[repeat('日', 63), repeat('🚀', 63), E'cafe\u0301']) > 0 AS created;
SELECT dms_add_database(id, 'база_данных') FROM dms_job WHERE name = 'scripts';
SELECT dms_remove_database(id, repeat('🚀', 63)) FROM dms_job WHERE name = 'scripts';
-- 64 emoji are too many; the decomposed "café" is there already, the
-- precomposed one is not (the job's id shows as <id>).
SELECT label, replace((r).result, 'job ' || id || ' ', 'job <id> ') AS result, (r).nothing_changed
  FROM (SELECT label, j.id, pg_temp.refused(format(stmt, j.id, dbname)) AS r
          FROM dms_job j, (VALUES
                ('add 64 emoji',             'SELECT dms_add_database(%s, %L)', repeat('🚀', 64)),
                ('add decomposed café',      'SELECT dms_add_database(%s, %L)', E'cafe\u0301'),
                ('remove precomposed café',  'SELECT dms_remove_database(%s, %L)', E'caf\u00e9')
               ) v(label, stmt, dbname)
         WHERE j.name = 'scripts') c;
SELECT dms_start(id), dms_report(id, 'started'),
       dms_report(id, 'failed', 'データベースが見つかりません', repeat('日', 63)),
       dms_report(id, 'failed', 'нет места на диске', 'база_данных')
  FROM dms_job WHERE name = 'scripts';
SELECT databases = ARRAY[repeat('日', 63), E'cafe\u0301', 'база_данных'] AS databases_exact,
       cardinality(databases) AS databases
  FROM dms_job WHERE name = 'scripts';
SELECT length(f.database_name) AS characters, octet_length(f.database_name) AS bytes,
       f.phase, f.error_message
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id
 WHERE j.name = 'scripts' ORDER BY f.database_name;
SELECT h.cause, length(h.database_name) AS database_characters, h.message
  FROM dms_job_history h WHERE h.job_name = 'scripts' ORDER BY h.id;

--------------------------------------------------------------------------
-- 7. Messages: anything that is not blank, kept exactly.
--------------------------------------------------------------------------

-- Newlines, tabs, C0 and C1 control characters, DEL, CJK, emoji and
-- combining marks are all accepted in a message, for "error", for a
-- job-level "failed" and for a database's "failed".
CREATE TEMP TABLE messages (label text, message text);
INSERT INTO messages VALUES
    ('lines and tabs',  E'replication lag\n\tabove 10 minutes\r\nsee the log'),
    ('controls',        E'bell\x07 escape\x1b[31m del\x7f next line\u0085 end'),
    ('scripts',         E'ディスクがいっぱいです 🚀 cafe\u0301 \U0001F468\u200D\U0001F469'),
    ('only a control',  E'\x01'),
    ('json and sql',    E'"}, {"x": "\\u0000\\n</script>\'); DROP TABLE dms_job; --');
SELECT label, length(message) AS characters, octet_length(message) AS bytes FROM messages ORDER BY label;

-- report_exact(job, event, message, database): the event's result, and
-- whether the job (or the database's failure row) and the newest history
-- row now hold exactly the message given.
CREATE FUNCTION pg_temp.report_exact(job bigint, event dms_event, msg text, db text DEFAULT NULL,
                                     OUT result text, OUT kept_exactly boolean, OUT history_exact boolean)
LANGUAGE plpgsql AS $$
BEGIN
    result := pg_temp.try(format('SELECT dms_report(%s, %L, %L, %L)', job, event, msg, db));
    IF db IS NULL THEN
        SELECT j.error_message = msg INTO kept_exactly FROM dms_job j WHERE j.id = job;
    ELSE
        SELECT f.error_message = msg INTO kept_exactly
          FROM dms_job_failure f WHERE f.job_id = job AND f.database_name = db;
    END IF;
    SELECT h.message = msg AND h.cause = event::text AND h.database_name IS NOT DISTINCT FROM db
      INTO history_exact
      FROM dms_job_history h WHERE h.job_id = job ORDER BY h.id DESC LIMIT 1;
END $$;

-- busy (Running (CDC)) reports each as an error (the message is replaced
-- each time), then fails in database a with each (the failure row is
-- updated each time).
SELECT m.label, (r).* FROM (
    SELECT m.label, pg_temp.report_exact(3, 'error', m.message) AS r
      FROM messages m ORDER BY m.label) m;
SELECT dms_report(3, 'errors_cleared');
SELECT m.label, (r).* FROM (
    SELECT m.label, pg_temp.report_exact(3, 'failed', m.message, 'a') AS r
      FROM messages m ORDER BY m.label) m;
-- The history holds every message, once as an error and once as a failure.
SELECT m.label,
       (SELECT count(*) FROM dms_job_history h WHERE h.job_id = 3 AND h.cause = 'error' AND h.message = m.message) AS as_error,
       (SELECT count(*) FROM dms_job_history h WHERE h.job_id = 3 AND h.cause = 'failed' AND h.database_name = 'a' AND h.message = m.message) AS as_failure
  FROM messages m ORDER BY m.label;
SELECT id, status, substatus, error_message IS NULL AS no_job_level_error, failed_databases
  FROM dms_job_overview WHERE id = 3;
SELECT dms_restart(3), dms_report(3, 'restarted');

-- Blank messages (white space of any script, U+0085 included) say
-- nothing: 22023, nothing changed.
SELECT label, (r).result, (r).nothing_changed FROM (
    SELECT label, pg_temp.refused(format(stmt, msg)) AS r FROM (VALUES
        ('error, spaces',                 'SELECT dms_report(3, ''error'', %L)', '     '),
        ('error, tab and newline',        'SELECT dms_report(3, ''error'', %L)', E'\t\n'),
        ('error, U+0085',                 'SELECT dms_report(3, ''error'', %L)', E'\u0085'),
        ('failed, U+3000 U+00A0',         'SELECT dms_report(3, ''failed'', %L)', E'\u3000\u00a0'),
        ('failed a, U+2003 U+2028',       'SELECT dms_report(3, ''failed'', %L, ''a'')', E'\u2003\u2028'),
        ('failed a, 1 MB of spaces',      'SELECT dms_report(3, ''failed'', %L, ''a'')', repeat(' ', 1048576))
    ) v(label, stmt, msg)) c;

--------------------------------------------------------------------------
-- 8. Messages of 1 MB: accepted, kept whole in the job, the history and
--    the failure row.
--------------------------------------------------------------------------

-- Four messages of 1,048,576 characters: hex digits (md5s, which compress
-- poorly), and three-byte CJK (3 MB).
CREATE TEMP TABLE big (label text, message text);
INSERT INTO big
SELECT 'hex ' || k, k || ': ' || left(string_agg(md5(k || ':' || i), '' ORDER BY i), 1048576 - length(k || ': '))
  FROM generate_series(1, 3) k, generate_series(1, 32768) i GROUP BY k;
INSERT INTO big VALUES ('CJK', left(repeat('ディスク障害', 174763), 1048576));
SELECT label, length(message) AS characters, octet_length(message) AS bytes FROM big ORDER BY label;

-- omega (Running (Full dump)): a 1 MB error, replaced by a 3 MB one, then
-- a job-level failure of 1 MB.  Each is on the job and in its history row.
SELECT dms_report(2, 'error', message) FROM big WHERE label = 'hex 1';
SELECT length(error_message) AS characters,
       error_message = (SELECT message FROM big WHERE label = 'hex 1') AS job_exact
  FROM dms_job WHERE id = 2;
SELECT dms_report(2, 'error', message) FROM big WHERE label = 'CJK';
SELECT length(error_message) AS characters, octet_length(error_message) AS bytes,
       error_message = (SELECT message FROM big WHERE label = 'CJK') AS job_exact
  FROM dms_job WHERE id = 2;
SELECT dms_report(2, 'failed', message) FROM big WHERE label = 'hex 2';
SELECT status, substatus, length(error_message) AS characters,
       error_message = (SELECT message FROM big WHERE label = 'hex 2') AS overview_exact
  FROM dms_job_overview WHERE id = 2;

-- busy (Running (Full dump) after its restart): database b fails with 1 MB.
SELECT dms_report(3, 'failed', message, 'b') FROM big WHERE label = 'hex 3';
SELECT f.database_name, f.phase, length(f.error_message) AS characters,
       f.error_message = (SELECT message FROM big WHERE label = 'hex 3') AS failure_row_exact,
       j.error_message IS NULL AS no_job_level_error
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id WHERE f.job_id = 3;

-- The history rows carry the whole messages.
SELECT h.job_id, h.cause, h.to_status, h.to_phase, h.database_name,
       length(h.message) AS characters, b.label AS exactly
  FROM dms_job_history h LEFT JOIN big b ON b.message = h.message
 WHERE length(h.message) > 1000 ORDER BY h.id;

-- A notification carries no message (SPEC 8): these calls could not have
-- succeeded otherwise, since PostgreSQL refuses a NOTIFY payload of 8000
-- bytes or more.  (The payload itself is checked in specs/notify.spec.)

-- The jobs move on: the messages leave the jobs and the failure row, and
-- stay in the history.
SELECT dms_restart(2), dms_restart(3);
SELECT id, status, error_message IS NULL AS no_error_message, failed_databases
  FROM dms_job_overview WHERE id IN (2, 3) ORDER BY id;
SELECT count(*) AS failure_rows FROM dms_job_failure WHERE job_id IN (2, 3);
SELECT count(*) AS history_rows_of_1_mb FROM dms_job_history h JOIN big b ON b.message = h.message;

--------------------------------------------------------------------------
-- 9. Names that are hostile to JSON, HTML, SQL and printf round-trip.
--------------------------------------------------------------------------

-- Quotes, backslashes, a JSON escape written out, a closing script tag,
-- SQL, printf conversions: names like any other, kept exactly through a
-- walk of the job (create, start, started, a database failure, restart),
-- in the job row, the overview and every history row.  Each job migrates
-- one database of its own name.
CREATE TEMP TABLE hostile_names (label text, name text);
INSERT INTO hostile_names VALUES
    ('JSON',    $n$"},{"job_id":0,"name":"\"\\u0000\n$n$),
    ('HTML',    $n$</script><script>alert('x')</script>$n$),
    ('SQL',     $n$x'); DROP TABLE dms_job; --$n$),
    ('printf',  $n$%s%s%s%n%x%p%$1s%%$n$),
    ('all',     $n$"a\"b" \\ 'c' </script> %s {}[]:,$n$);
SELECT label, name, length(name) AS characters,
       dms_create_job(name, 'continuous', ARRAY[name]) > 0 AS created
  FROM hostile_names ORDER BY label;
SELECT label, dms_start(j.id), dms_report(j.id, 'started'),
       dms_report(j.id, 'failed', 'failed: ' || h.name, h.name)
  FROM hostile_names h JOIN dms_job j ON j.name = h.name ORDER BY label;

-- Errors that quote such a database name show it as given (the job is
-- failed, so its databases may change).
SELECT replace(pg_temp.try(format('SELECT dms_remove_database(%s, %L)', j.id, '%s%n ' || h.name)),
               'job ' || j.id || ' ', 'job <id> ') AS unknown_database
  FROM hostile_names h JOIN dms_job j ON j.name = h.name WHERE h.label = 'printf';

SELECT label, dms_restart(j.id)
  FROM hostile_names h JOIN dms_job j ON j.name = h.name ORDER BY label;
SELECT h.label,
       j.name = h.name AND j.databases = ARRAY[h.name] AS job_row_exact,
       o.name = h.name AS overview_exact,
       (SELECT string_agg(x.cause, ', ' ORDER BY x.id) FROM dms_job_history x WHERE x.job_id = j.id) AS history,
       (SELECT bool_and(x.job_name = h.name) FROM dms_job_history x WHERE x.job_id = j.id) AS history_names_exact,
       (SELECT x.database_name = h.name AND x.message = 'failed: ' || h.name
          FROM dms_job_history x WHERE x.job_id = j.id AND x.cause = 'failed') AS failure_exact
  FROM hostile_names h JOIN dms_job j ON j.name = h.name JOIN dms_job_overview o ON o.id = j.id
 ORDER BY j.id;

-- After all of this, every job agrees with its last history row.
SELECT count(*) AS jobs,
       count(*) FILTER (WHERE j.status = l.to_status AND j.phase IS NOT DISTINCT FROM l.to_phase) AS agreeing
  FROM dms_job j
  CROSS JOIN LATERAL (SELECT * FROM dms_job_history h WHERE h.job_id = j.id ORDER BY h.id DESC LIMIT 1) l;

--------------------------------------------------------------------------
-- 9. A database in another encoding judges the same characters.
--------------------------------------------------------------------------

-- In a LATIN1 database the names are judged by their Unicode code points
-- all the same: a soft hyphen (U+00AD) and a C1 control (U+0085) are
-- refused, a name of only a no-break space is blank, "café" is a name.
SELECT current_database() AS regression_database \gset
CREATE DATABASE dms_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c dms_latin1
SET client_min_messages = warning;
CREATE EXTENSION dms_lifecycle;
\i sql/try.inc
SELECT label, regexp_replace(pg_temp.try(format('SELECT dms_create_job(%L)', name)), '^ok: [0-9]+$', 'created') AS result
  FROM (VALUES ('soft hyphen U+00AD', E'soft\u00ADhyphen'),
               ('next line U+0085',    E'next\u0085line'),
               ('only U+00A0',         E'\u00A0'),
               ('café',                E'caf\u00E9')) v(label, name);
SELECT pg_temp.try($$SELECT dms_create_job('db', 'continuous', ARRAY[E'data\u00ADbase'])$$) AS database_name;
\c :regression_database
DROP DATABASE dms_latin1;
