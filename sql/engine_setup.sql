--
-- engine_setup: what the built-in migration engine needs before it runs
-- (ENGINE.md 2 and 6).  A DBA describes the source as a server of the
-- foreign-data wrapper dms_lifecycle_connection and says who connects in a
-- user mapping; an operator creates a job that names the server; from then
-- on only the engine reports the job's events, and a reader watches
-- dms_job_progress.  Every refused call changes nothing, and the mapping's
-- password shows nowhere.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
DROP FOREIGN DATA WRAPPER IF EXISTS setup_other_wrapper CASCADE;
CREATE EXTENSION dms_lifecycle;
SET test.roles = 'setup_operator,setup_outsider,setup_reader,setup_nobody';
\i sql/drop_roles.inc
RESET client_min_messages;
\i sql/try.inc
\i sql/history.inc

-- refusal(statement): the SQLSTATE, message, detail and hint of the error
-- a statement raises ('ok' if it raises none).
CREATE FUNCTION pg_temp.refusal(stmt text, OUT state text, OUT message text, OUT detail text,
                                OUT hint text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    state := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END
$$;

-- What a refused call could have changed: jobs, history rows, servers,
-- user mappings.
CREATE FUNCTION pg_temp.footprint() RETURNS text LANGUAGE sql AS $$
    SELECT format('%s jobs, %s history rows, servers %s, mappings %s',
                  (SELECT count(*) FROM dms_job), (SELECT count(*) FROM dms_job_history),
                  (SELECT string_agg(srvname || coalesce(srvoptions::text, '{}'), ' ' ORDER BY srvname)
                     FROM pg_foreign_server),
                  (SELECT string_agg(srvname || '/' || usename || coalesce(umoptions::text, '{}'), ' '
                                     ORDER BY srvname, usename)
                     FROM pg_user_mappings))
$$;

--------------------------------------------------------------------------
-- 1. The wrapper: a server says where the source is
--------------------------------------------------------------------------

-- The extension brings the wrapper, with its validator.
SELECT fdwname, fdwvalidator::regproc AS validator, fdwhandler, fdwoptions
  FROM pg_foreign_data_wrapper WHERE fdwname = 'dms_lifecycle_connection';

-- The DBA describes the old primary: host, port and sslmode are libpq
-- connection options, which a server takes.
CREATE SERVER old_primary FOREIGN DATA WRAPPER dms_lifecycle_connection
  OPTIONS (host '10.0.0.5', port '5432', sslmode 'prefer');
ALTER SERVER old_primary OPTIONS (ADD connect_timeout '10', ADD application_name 'dms');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'old_primary';

-- What would name a database, a role or a secret is no server option: the
-- job names its databases, and passwords live only in user mappings (a
-- server's options are visible to every role).  Unknown options are refused
-- too.  Each is HV00D (fdw_invalid_option_name) and says why.
SELECT pg_temp.footprint() AS before_refusals \gset
SELECT s AS statement, r.state, r.message, r.detail
  FROM unnest(ARRAY[
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host 'h', dbname 'shop')$s$,
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host 'h', password 'x')$s$,
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (user 'migrator')$s$,
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (service 'old')$s$,
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (sslpassword 'x')$s$,
    $s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (hots '10.0.0.5')$s$,
    $s$ALTER SERVER old_primary OPTIONS (ADD password 'x')$s$,
    $s$ALTER SERVER old_primary OPTIONS (SET host '10.0.0.6', ADD replication 'database')$s$
  ]) WITH ORDINALITY AS t(s, n),
  LATERAL pg_temp.refusal(s) r
 ORDER BY n;

-- The HINT lists the options a server takes (libpq's list, as the linked
-- libpq has it): the usual ones are there, the refused ones are not.
SELECT hint LIKE 'Valid options for a server are: %' AS hint_lists_options,
       ARRAY['host', 'hostaddr', 'port', 'sslmode', 'sslrootcert', 'connect_timeout',
             'application_name', 'keepalives', 'options', 'target_session_attrs']
         <@ string_to_array(rtrim(substring(hint FROM ': (.*)$'), '.'), ', ') AS has_usual,
       ARRAY['dbname', 'user', 'password', 'passfile', 'service', 'replication',
             'client_encoding', 'fallback_application_name', 'sslpassword']
         && string_to_array(rtrim(substring(hint FROM ': (.*)$'), '.'), ', ') AS has_refused
  FROM pg_temp.refusal($s$CREATE SERVER bad FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (dbname 'shop')$s$);

-- The wrapper itself takes no option.
ALTER FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (ADD host '10.0.0.5');

-- None of the refusals made or changed a server.
SELECT pg_temp.footprint() = :'before_refusals' AS nothing_changed;

--------------------------------------------------------------------------
-- 2. The user mapping says who connects
--------------------------------------------------------------------------

-- user and password, and nothing else: a host belongs to the server.
CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user 'migrator', host '10.0.0.5');
CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user 'migrator', dbname 'shop');
SELECT count(*) AS mappings FROM pg_user_mappings WHERE srvname = 'old_primary';

CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user 'migrator', password 's3cr3t-Pa55');
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'old_primary';

--------------------------------------------------------------------------
-- 3. A job that names the server is engine-driven
--------------------------------------------------------------------------

-- An operator who may use the server, one who may not, a reader, and a role
-- with no capability.  A server of another wrapper stands beside ours.
CREATE ROLE setup_operator NOLOGIN;
CREATE ROLE setup_outsider NOLOGIN;
CREATE ROLE setup_reader NOLOGIN;
CREATE ROLE setup_nobody NOLOGIN;
SELECT dms_grant('setup_operator', 'operator'), dms_grant('setup_outsider', 'operator'),
       dms_grant('setup_reader', 'reader');
GRANT USAGE ON FOREIGN SERVER old_primary TO setup_operator;
CREATE FOREIGN DATA WRAPPER setup_other_wrapper;
CREATE SERVER elsewhere FOREIGN DATA WRAPPER setup_other_wrapper;
GRANT USAGE ON FOREIGN SERVER elsewhere TO setup_operator;

-- The operator creates a job migrating from old_primary: the server's name
-- is stored as given; no destination server means this cluster.
SET ROLE setup_operator;
SELECT dms_create_job('orders', 'continuous', ARRAY['shop', 'billing'],
                      source_server => 'old_primary') AS orders_id \gset
RESET ROLE;
SELECT id, name, status, databases, source_server, destination_server
  FROM dms_job ORDER BY id;

-- Refused creations: a server that does not exist or that belongs to
-- another wrapper (22023), a server the caller may not use (42501), a
-- destination server (0A000: 1.1 migrates into this cluster only).
SELECT pg_temp.footprint() AS before_refusals \gset
SET ROLE setup_operator;
SELECT pg_temp.try($$SELECT dms_create_job('nowhere', source_server => 'no_such_server')$$);
SELECT pg_temp.try($$SELECT dms_create_job('elsewhere', source_server => 'elsewhere')$$);
SELECT pg_temp.try($$SELECT dms_create_job('sideways', source_server => 'old_primary', destination_server => 'old_primary')$$);
SET ROLE setup_outsider;
SELECT pg_temp.try($$SELECT dms_create_job('outsider', source_server => 'old_primary')$$);
RESET ROLE;
SELECT pg_temp.footprint() = :'before_refusals' AS nothing_changed;

-- What they say besides, in full:
SET ROLE setup_outsider;
SELECT dms_create_job('outsider', source_server => 'old_primary');
SET ROLE setup_operator;
SELECT dms_create_job('elsewhere', source_server => 'elsewhere');
SELECT dms_create_job('sideways', destination_server => 'new_primary');
RESET ROLE;

-- A job without a source server is an external engine's, as in 1.0; the
-- positional call of 1.0 still works.
SET ROLE setup_operator;
SELECT dms_create_job('archive', 'one_time', ARRAY['logs']) AS archive_id \gset
RESET ROLE;

-- A direct write (by the tables' owner) is judged like the call: a change
-- of the servers is an edit, allowed only before the start, and checked the
-- same way.
SELECT pg_temp.try($$INSERT INTO dms_job (name, source_server) VALUES ('direct', 'elsewhere')$$);
SELECT pg_temp.try($$INSERT INTO dms_job (name, destination_server) VALUES ('direct', 'old_primary')$$);
SELECT pg_temp.try(format($$UPDATE dms_job SET source_server = 'no_such_server' WHERE id = %s$$, :archive_id));
SELECT pg_temp.try(format($$UPDATE dms_job SET source_server = 'old_primary' WHERE id = %s$$, :archive_id));
SELECT pg_temp.try(format($$UPDATE dms_job SET source_server = NULL WHERE id = %s$$, :archive_id));
SELECT name, source_server FROM dms_job WHERE id = :archive_id;

--------------------------------------------------------------------------
-- 4. Only the engine reports the events of an engine-driven job
--------------------------------------------------------------------------

-- The operator starts both jobs; operators' actions are as ever.
SET ROLE setup_operator;
SELECT dms_start(:orders_id) AS orders, dms_start(:archive_id) AS archive;
RESET ROLE;

-- dms_report on the engine-driven job, from any session but the engine's,
-- is refused (55000), even by a superuser; nothing changes.
SELECT pg_temp.footprint() AS before_refusals \gset
SELECT dms_report(:orders_id, 'started');
SELECT pg_temp.try(format($$SELECT dms_report(%s, 'failed', 'shop: gone', 'shop')$$, :orders_id));
SELECT pg_temp.try(format($$SELECT dms_report(%s, 'failed', 'gone')$$, :orders_id));
SELECT pg_temp.footprint() = :'before_refusals' AS nothing_changed;
SELECT id, pg_temp.state(status, phase) AS state FROM dms_job ORDER BY id;

-- The job without a source server still takes the events of any engine.
SELECT dms_report(:archive_id, 'started');

-- Once a job has started, its servers stay: a direct change is refused
-- even where other edits are allowed.
SELECT pg_temp.try(format($$UPDATE dms_job SET source_server = 'old_primary' WHERE id = %s$$, :archive_id));
SELECT pg_temp.try(format($$UPDATE dms_job SET source_server = NULL WHERE id = %s$$, :orders_id));
SELECT dms_report(:archive_id, 'dump_completed');
SELECT id, pg_temp.state(status, phase) AS state, source_server FROM dms_job ORDER BY id;

--------------------------------------------------------------------------
-- 5. The password shows nowhere
--------------------------------------------------------------------------

-- A listener on the channel: psql writes what arrives into a file, which
-- is read back below (without the listener's process id).
\getenv builddir PG_ABS_BUILDDIR
\set notifications :builddir '/results/engine_setup.notifications'
LISTEN dms_lifecycle;
\o :notifications
SET ROLE setup_operator;
SELECT dms_create_job('orders 2', 'continuous', ARRAY['shop'], 'optimal', 'old_primary');
SELECT dms_start(id) FROM dms_job WHERE name = 'orders 2';
SELECT dms_delete(id) FROM dms_job WHERE name = 'orders 2';
RESET ROLE;
\o
UNLISTEN dms_lifecycle;
SELECT regexp_replace(line, 'PID \d+', 'PID N') AS notification
  FROM regexp_split_to_table(pg_read_file(:'notifications'), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line LIKE 'Asynchronous notification%'
 ORDER BY n;

-- Neither the notifications nor any row of the jobs, their history or the
-- overview holds the password; they name the server only.
SELECT (SELECT count(*) FROM regexp_split_to_table(pg_read_file(:'notifications'), E'\n') l
         WHERE l LIKE '%s3cr3t-Pa55%') AS in_notifications,
       (SELECT count(*) FROM dms_job j WHERE j::text LIKE '%s3cr3t-Pa55%') AS in_jobs,
       (SELECT count(*) FROM dms_job_history h WHERE h::text LIKE '%s3cr3t-Pa55%') AS in_history,
       (SELECT count(*) FROM dms_job_overview o WHERE o::text LIKE '%s3cr3t-Pa55%') AS in_overview,
       (SELECT count(*) FROM dms_job j WHERE j::text LIKE '%old_primary%') AS jobs_naming_the_server;

--------------------------------------------------------------------------
-- 6. Watching the engine: dms_job_progress
--------------------------------------------------------------------------

-- The engine keeps one row per database in dms_job_database (here written
-- by hand, as the engine would): one copying, one streaming, one whose size
-- is not known yet, and one of a job that no longer exists.
INSERT INTO dms_job_database (job_id, database_name, state, source_server, tables_total,
                              tables_copied, bytes_total, bytes_copied, rows_copied, observed_at)
VALUES (:orders_id, 'shop', 'copying', 'old_primary', 41, 12, 2300000000, 1034567890, 812345, '2024-05-01 12:00+00'),
       (:orders_id, 'billing', 'streaming', 'old_primary', 3, 3, 1000, 1000, 10, '2024-05-01 12:00+00'),
       (:archive_id, 'logs', 'schema', 'old_primary', NULL, 0, NULL, 0, 0, '2024-05-01 12:00+00'),
       (987654, 'gone', 'done', 'old_primary', 1, 1, 10, 10, 1, '2024-05-01 12:00+00');
UPDATE dms_job_database SET lag_bytes = 4096, lag = '2 seconds' WHERE database_name = 'billing';

-- A reader sees one row per database of a job that exists, with the
-- percentage of bytes copied (100 once streaming).
SET ROLE setup_reader;
SELECT job_id, job_name, database_name, state,
       tables_copied, tables_total, bytes_copied, bytes_total, percent, rows_copied,
       lag_bytes, lag, last_error, observed_at
  FROM dms_job_progress ORDER BY job_id, database_name;
SELECT count(*) AS engine_rows FROM dms_job_database;
RESET ROLE;

-- A role without a capability reads neither.
SET ROLE setup_nobody;
SELECT pg_temp.try('SELECT count(*) FROM dms_job_progress');
SELECT pg_temp.try('SELECT count(*) FROM dms_job_database');
RESET ROLE;

-- Revoking reader takes them back.
SELECT dms_revoke('setup_reader', 'reader');
SELECT has_table_privilege('setup_reader', 'dms_job_progress', 'SELECT') AS progress,
       has_table_privilege('setup_reader', 'dms_job_database', 'SELECT') AS engine_table;

--------------------------------------------------------------------------
-- Clean up
--------------------------------------------------------------------------

SET client_min_messages = warning;
DROP EXTENSION dms_lifecycle CASCADE;
DROP FOREIGN DATA WRAPPER setup_other_wrapper CASCADE;
DROP OWNED BY setup_operator, setup_outsider, setup_reader, setup_nobody CASCADE;
DROP ROLE setup_operator, setup_outsider, setup_reader, setup_nobody;
RESET client_min_messages;
