-- scripts/demo-migration/setup.sql: the destination's setup, played by scripts/demo as
-- postgres (a superuser) on the destination, whose postgresql.conf preloads dms_lifecycle.

\set overview 'SELECT id, name, migration_type AS type, status, substatus, allowed_actions, error_message FROM dms_job_overview ORDER BY id;'

\echo '-- the extension, in dms_lifecycle.database (postgres): the engine watches its jobs'
CREATE EXTENSION dms_lifecycle;
\echo '-- roles are not migrated: the role that owns the source's objects is created here first'
\echo '-- (pg_dumpall --roles-only on the source writes such statements), so that the schema keeps it'
CREATE ROLE migrator;
\echo '-- alice is an operator: she creates, starts, stops and promotes jobs'
CREATE ROLE alice;
SELECT dms_grant('alice', 'operator');

\echo '-- the source: a server of the wrapper dms_lifecycle_connection (libpq options: here its socket'
\echo '-- directory and port), and a user mapping with the role and password the engine connects with'
CREATE SERVER old_primary FOREIGN DATA WRAPPER dms_lifecycle_connection
  OPTIONS (host :'host', port :'src_port');
\getenv password DEMO_PASSWORD
\echo 'CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user ''migrator'', password ''(not shown)'');'
\set ECHO none
CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user 'migrator', password :'password');
\set ECHO queries
\unset password
GRANT USAGE ON FOREIGN SERVER old_primary TO alice;

\echo '-- demo_wait(job, status, substatus, timeout): polls dms_job_overview until the job shows that'
\echo '-- status and substatus; raises an error if the job fails instead, or on timeout.  The demo'
\echo '-- waits with it rather than sleeping.'
CREATE FUNCTION demo_wait(job bigint, want_status text, want_substatus text DEFAULT NULL,
                          timeout interval DEFAULT '90 s') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    began timestamptz := clock_timestamp();
    o record;
BEGIN
    LOOP
        -- each statement of a function sees what the engine committed before it
        SELECT status, substatus, error_message INTO o FROM dms_job_overview WHERE id = job;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'job % does not exist', job;
        END IF;
        IF o.status = want_status AND o.substatus IS NOT DISTINCT FROM want_substatus THEN
            RETURN format('%s%s after %s s', o.status, coalesce(' (' || o.substatus || ')', ''),
                          round(extract(epoch FROM clock_timestamp() - began)::numeric, 1));
        END IF;
        IF o.status = 'Failed' AND want_status <> 'Failed' OR clock_timestamp() - began > timeout THEN
            RAISE EXCEPTION 'job % is "%"%, not "%"%', job, o.status, coalesce(' (' || o.substatus || ')', ''),
                            want_status, coalesce(' (' || want_substatus || ')', '')
                  USING DETAIL = concat_ws(E'\n', 'after ' || (clock_timestamp() - began)::text,
                                           'error: ' || o.error_message,
                                           (SELECT string_agg(format('database %s failed: %s', database_name, error_message), E'\n')
                                              FROM dms_job_failure WHERE job_id = job),
                                           (SELECT string_agg(format('database %s: %s, last error %s', database_name, state,
                                                                     coalesce(last_error, '-')), E'\n')
                                              FROM dms_job_progress WHERE job_id = job));
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

\echo '-- alice creates a continuous job: copy shop and billing from old_primary, then stream their changes'
SET ROLE alice;
SELECT dms_create_job('orders', 'continuous', ARRAY['shop', 'billing'], source_server => 'old_primary');
:overview
