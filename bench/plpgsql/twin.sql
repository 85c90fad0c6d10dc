/*
 * bench/plpgsql/twin.sql: dms_lifecycle written in SQL and PL/pgSQL only.
 *
 * The contender of the benchmark: the same SPEC, the same types, tables,
 * functions, view, triggers, messages and SQLSTATEs as version 1.0, written
 * the way a competent user would write it without C.  bench/plpgsql/assemble
 * makes dms_lifecycle--plpgsql.sql of it (with version 1.0's own types and
 * tables), installed with
 *
 *     CREATE EXTENSION dms_lifecycle VERSION 'plpgsql';
 *
 * How it is built:
 * - The lifecycle is one table, dms_lifecycle_edge, filled below from the
 *   edges of SPEC section 4 written once with patterns ("any phase", "same
 *   phase") and expanded over the sixteen legal states.  The triggers,
 *   dms_allowed_actions(), dms_transitions() and the labels read it.
 * - Every action and event is one UPDATE of the job row.  The function names
 *   its request (action or event, message, database, edit, actor) in the
 *   transaction-local setting dms_lifecycle.request; the BEFORE trigger
 *   dms_job_guard checks the edge and writes its target, the AFTER trigger
 *   dms_job_record writes the history row and sends the notification.  A
 *   write without a request for its job is a direct write: the guard names
 *   its edge from the old and new row, or refuses it.
 * - The public functions are SQL one-liners (SECURITY INVOKER, inlined by
 *   the planner) that pass current_user to a SECURITY DEFINER worker, so the
 *   history records the caller as current_user was before the switch to the
 *   tables' owner.  Each worker resets the request when it returns (its SET
 *   clause), so a later direct write in the transaction is judged as one.
 * - dms_job_record, which writes the history and the failure rows, runs as
 *   the tables' owner (SECURITY DEFINER, with a safe search_path); the other
 *   triggers run as the writer, so that dms_job_guard can note who wrote
 *   directly (dms_lifecycle.writer) for the history.  A role that writes
 *   dms_job_failure directly therefore also needs UPDATE on dms_job, whose
 *   status its failure rows change.  Every name in a trigger is qualified
 *   with the extension's schema: a direct write works whatever its search_path.
 * - A request is a setting, so a role that can write dms_job directly could
 *   set one and have its write recorded under another cause or actor; the
 *   guard still applies only an edge of the lifecycle.
 */

\echo Use "CREATE EXTENSION dms_lifecycle VERSION 'plpgsql'" to load this file. \quit

-- @tables: here bench/plpgsql/assemble puts the types and tables of
-- sql/dms_lifecycle--1.0.sql, so that both versions have the very same tables.

--------------------------------------------------------------------------
-- The lifecycle: SPEC sections 3 and 4 as data
--------------------------------------------------------------------------

-- One row per edge and legal state it starts from (the patterns of SPEC 4
-- expanded), in the order of SPEC 4: dms_transitions() lists them as they are.
CREATE TABLE dms_lifecycle_edge (
    ord             int PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('action', 'event')),
    name            text NOT NULL,
    from_status     dms_job_status NOT NULL,
    from_phase      dms_job_phase,
    to_status       dms_job_status,         -- NULL: the row is removed (delete)
    to_phase        dms_job_phase,
    migration_type  dms_migration_type,     -- NULL: either type
    edits_databases boolean NOT NULL,       -- an edit here may change the database list
    sets_message    boolean NOT NULL,       -- the event's message becomes error_message
    applies_pending boolean NOT NULL,       -- the pending dump parallelism takes effect
    -- derived from the rows above when the table is filled:
    keeps_message   boolean NOT NULL,       -- to_status is one that message-setting edges enter
    ends            boolean NOT NULL        -- no edge but delete leaves to_status
);
CREATE INDEX dms_lifecycle_edge_name_idx ON dms_lifecycle_edge (name, from_status);
COMMENT ON TABLE dms_lifecycle_edge IS
    'the lifecycle: every edge of SPEC section 4, one row per legal state it starts from; read by the triggers';

WITH state (ord, status, phase) AS (VALUES
    -- SPEC 3: the legal (status, phase) pairs
    ( 1, 'not_started',         NULL),
    ( 2, 'starting',            NULL),
    ( 3, 'running',             'full_dump'),
    ( 4, 'running',             'cdc'),
    ( 5, 'running',             'promote_in_progress'),
    ( 6, 'running_with_errors', 'full_dump'),
    ( 7, 'running_with_errors', 'cdc'),
    ( 8, 'completed',           NULL),
    ( 9, 'failed',              'full_dump'),
    (10, 'failed',              'cdc'),
    (11, 'restarting',          NULL),
    (12, 'stopped',             'full_dump'),
    (13, 'stopped',             'cdc'),
    (14, 'resuming',            'cdc'),
    (15, 'stopping',            'full_dump'),
    (16, 'stopping',            'cdc')),
edge (ord, kind, name, from_status, from_phase, to_status, to_phase, migration_type, flags) AS (VALUES
    -- from_phase 'any': every phase of the status; to_status 'same': unchanged
    -- (edit), NULL: row removed (delete); to_phase 'same': the phase the job had.
    -- flags: D = an edit that may change the databases, M = needs and sets a message,
    -- P = applies the pending dump parallelism
    -- 4.1 user actions
    ( 1, 'action', 'start',   'not_started',         NULL,        'starting',   NULL,                  NULL, ''),
    ( 2, 'action', 'stop',    'running',             'full_dump', 'stopping',   'same',                NULL, ''),
    ( 3, 'action', 'stop',    'running',             'cdc',       'stopping',   'same',                NULL, ''),
    ( 4, 'action', 'stop',    'running_with_errors', 'any',       'stopping',   'same',                NULL, ''),
    ( 5, 'action', 'resume',  'stopped',             'cdc',       'resuming',   'cdc',                 NULL, ''),
    ( 6, 'action', 'restart', 'running_with_errors', 'any',       'restarting', NULL,                  NULL, 'P'),
    ( 7, 'action', 'restart', 'failed',              'any',       'restarting', NULL,                  NULL, 'P'),
    ( 8, 'action', 'restart', 'stopped',             'any',       'restarting', NULL,                  NULL, 'P'),
    ( 9, 'action', 'promote', 'running',             'cdc',       'running',    'promote_in_progress', NULL, ''),
    (10, 'action', 'promote', 'running_with_errors', 'cdc',       'running',    'promote_in_progress', NULL, ''),
    (11, 'action', 'promote', 'failed',              'cdc',       'running',    'promote_in_progress', NULL, ''),
    (12, 'action', 'promote', 'stopped',             'cdc',       'running',    'promote_in_progress', NULL, ''),
    (13, 'action', 'delete',  'not_started',         NULL,        NULL,         NULL,                  NULL, ''),
    (14, 'action', 'delete',  'starting',            NULL,        NULL,         NULL,                  NULL, ''),
    (15, 'action', 'delete',  'running',             'any',       NULL,         NULL,                  NULL, ''),
    (16, 'action', 'delete',  'completed',           NULL,        NULL,         NULL,                  NULL, ''),
    (17, 'action', 'delete',  'failed',              'any',       NULL,         NULL,                  NULL, ''),
    (18, 'action', 'delete',  'restarting',          NULL,        NULL,         NULL,                  NULL, ''),
    (19, 'action', 'delete',  'stopped',             'any',       NULL,         NULL,                  NULL, ''),
    (20, 'action', 'delete',  'resuming',            'any',       NULL,         NULL,                  NULL, ''),
    (21, 'action', 'delete',  'stopping',            'any',       NULL,         NULL,                  NULL, ''),
    (22, 'action', 'edit',    'not_started',         NULL,        'same',       'same',                NULL, 'D'),
    (23, 'action', 'edit',    'running',             'full_dump', 'same',       'same',                NULL, ''),
    (24, 'action', 'edit',    'running',             'cdc',       'same',       'same',                NULL, ''),
    (25, 'action', 'edit',    'stopped',             'any',       'same',       'same',                NULL, 'D'),
    (26, 'action', 'edit',    'failed',              'any',       'same',       'same',                NULL, 'D'),
    -- 4.2 engine events
    (27, 'event', 'started',        'starting',            NULL,                  'running',             'full_dump', NULL,         ''),
    (28, 'event', 'restarted',      'restarting',          NULL,                  'running',             'full_dump', NULL,         ''),
    (29, 'event', 'resumed',        'resuming',            'cdc',                 'running',             'cdc',       NULL,         ''),
    (30, 'event', 'stopped',        'stopping',            'any',                 'stopped',             'same',      NULL,         ''),
    (31, 'event', 'dump_completed', 'running',             'full_dump',           'running',             'cdc',       'continuous', ''),
    (32, 'event', 'dump_completed', 'running_with_errors', 'full_dump',           'running_with_errors', 'cdc',       'continuous', ''),
    (33, 'event', 'dump_completed', 'running',             'full_dump',           'completed',           NULL,        'one_time',   ''),
    (34, 'event', 'dump_completed', 'running_with_errors', 'full_dump',           'completed',           NULL,        'one_time',   ''),
    (35, 'event', 'error',          'running',             'full_dump',           'running_with_errors', 'same',      NULL,         'M'),
    (36, 'event', 'error',          'running',             'cdc',                 'running_with_errors', 'same',      NULL,         'M'),
    (37, 'event', 'error',          'running_with_errors', 'any',                 'running_with_errors', 'same',      NULL,         'M'),
    (38, 'event', 'errors_cleared', 'running_with_errors', 'any',                 'running',             'same',      NULL,         ''),
    (39, 'event', 'failed',         'starting',            NULL,                  'failed',              'full_dump', NULL,         'M'),
    (40, 'event', 'failed',         'restarting',          NULL,                  'failed',              'full_dump', NULL,         'M'),
    (41, 'event', 'failed',         'resuming',            'cdc',                 'failed',              'cdc',       NULL,         'M'),
    (42, 'event', 'failed',         'running',             'full_dump',           'failed',              'same',      NULL,         'M'),
    (43, 'event', 'failed',         'running',             'cdc',                 'failed',              'same',      NULL,         'M'),
    (44, 'event', 'failed',         'running_with_errors', 'any',                 'failed',              'same',      NULL,         'M'),
    (45, 'event', 'failed',         'stopping',            'any',                 'failed',              'same',      NULL,         'M'),
    (46, 'event', 'failed',         'running',             'promote_in_progress', 'failed',              'cdc',       NULL,         'M'),
    (47, 'event', 'failed',         'failed',              'any',                 'failed',              'same',      NULL,         'M'),
    (48, 'event', 'recovered',      'failed',              'any',                 'running',             'same',      NULL,         ''),
    (49, 'event', 'promoted',       'running',             'promote_in_progress', 'completed',           NULL,        NULL,         ''))
INSERT INTO dms_lifecycle_edge
SELECT row_number() OVER (ORDER BY e.ord, s.ord),
       e.kind, e.name,
       s.status::dms_job_status,
       s.phase::dms_job_phase,
       CASE WHEN e.to_status = 'same' THEN s.status ELSE e.to_status END::dms_job_status,
       CASE WHEN e.to_status IS NULL THEN NULL
            WHEN e.to_phase = 'same' THEN s.phase
            ELSE e.to_phase END::dms_job_phase,
       e.migration_type::dms_migration_type,
       e.flags = 'D',
       e.flags = 'M',
       e.flags = 'P',
       false,
       false
  FROM edge e
  JOIN state s ON s.status = e.from_status
              AND (e.from_phase = 'any' OR s.phase IS NOT DISTINCT FROM e.from_phase);
UPDATE dms_lifecycle_edge e
   SET keeps_message = coalesce(e.to_status IN (SELECT m.to_status FROM dms_lifecycle_edge m
                                                 WHERE m.sets_message), false),
       ends = NOT EXISTS (SELECT FROM dms_lifecycle_edge l
                           WHERE l.from_status = e.to_status AND l.name <> 'delete');

-- The lifecycle reveals no job: anyone may read it, like dms_transitions().
GRANT SELECT ON dms_lifecycle_edge TO PUBLIC;

--------------------------------------------------------------------------
-- Inspection: labels and the lifecycle
--------------------------------------------------------------------------

CREATE FUNCTION dms_status_label(dms_job_status) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'status must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN CASE $1
           WHEN 'not_started'         THEN 'Not started'
           WHEN 'starting'            THEN 'Starting...'
           WHEN 'running'             THEN 'Running'
           WHEN 'running_with_errors' THEN 'Running with errors'
           WHEN 'completed'           THEN 'Completed'
           WHEN 'failed'              THEN 'Failed'
           WHEN 'restarting'          THEN 'Restarting'
           WHEN 'stopped'             THEN 'Stopped'
           WHEN 'resuming'            THEN 'Resuming'
           WHEN 'stopping'            THEN 'Stopping...'
           END;
END $$;
COMMENT ON FUNCTION dms_status_label(dms_job_status) IS
    'the text a person reads for a status: Not started, Starting..., Running, ...';

CREATE FUNCTION dms_substatus_label(dms_job_status, dms_job_phase) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'status must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a status without a phase has no substatus; nor has an illegal pair
    RETURN CASE
           WHEN $1 = 'running' OR ($1 = 'running_with_errors' AND $2 <> 'promote_in_progress') THEN
                CASE $2 WHEN 'full_dump' THEN 'Full dump' WHEN 'cdc' THEN 'CDC'
                        WHEN 'promote_in_progress' THEN 'Promote in progress' END
           WHEN $1 = 'failed' THEN
                CASE $2 WHEN 'full_dump' THEN 'Failed in full dump' WHEN 'cdc' THEN 'Failed in CDC' END
           WHEN $1 = 'stopped' THEN
                CASE $2 WHEN 'full_dump' THEN 'Stopped in full dump' WHEN 'cdc' THEN 'Stopped in CDC' END
           END;
END $$;
COMMENT ON FUNCTION dms_substatus_label(dms_job_status, dms_job_phase) IS
    'the substatus a person reads: Full dump, CDC, Promote in progress, Failed in CDC, Stopped in full dump, ...; NULL if none';

CREATE FUNCTION dms_action_label(dms_action) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'action must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN initcap($1::text);
END $$;
COMMENT ON FUNCTION dms_action_label(dms_action) IS
    'the text a person reads for an action: Start, Stop, ...';

CREATE FUNCTION dms_allowed_action_labels(dms_job_status, dms_job_phase) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'status must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- NULL for a (status, phase) no job is ever in: every legal state allows some action
    RETURN (SELECT string_agg(initcap(e.name), ', ' ORDER BY e.name::@extschema@.dms_action)
              FROM @extschema@.dms_lifecycle_edge e
             WHERE e.kind = 'action' AND e.from_status = $1
               AND e.from_phase IS NOT DISTINCT FROM $2);
END $$;
COMMENT ON FUNCTION dms_allowed_action_labels(dms_job_status, dms_job_phase) IS
    'the labels of the actions allowed in a (status, phase), joined by '', ''; used by dms_job_overview';

CREATE FUNCTION dms_transitions(OUT kind text, OUT name text,
                                OUT from_status dms_job_status, OUT from_phase dms_job_phase,
                                OUT to_status dms_job_status, OUT to_phase dms_job_phase,
                                OUT migration_type dms_migration_type)
    RETURNS SETOF record LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT e.kind, e.name, e.from_status, e.from_phase, e.to_status, e.to_phase, e.migration_type
      FROM dms_lifecycle_edge e
     ORDER BY e.ord;
END;
COMMENT ON FUNCTION dms_transitions() IS
    'every edge of the lifecycle, from the table the triggers enforce; migration_type NULL means either type';

-- Internal helpers of the triggers and workers.

-- A (status, phase) as messages show it: "Running" (CDC).
CREATE FUNCTION dms__state_text(dms_job_status, dms_job_phase) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '"' || dms_status_label($1) || '"'
       || coalesce(' (' || CASE $2 WHEN 'full_dump' THEN 'Full dump' WHEN 'cdc' THEN 'CDC'
                                   WHEN 'promote_in_progress' THEN 'Promote in progress' END
                   || ')', '');
COMMENT ON FUNCTION dms__state_text(dms_job_status, dms_job_phase) IS
    'internal: a (status, phase) as error messages show it, e.g. "Running" (CDC)';

-- NULL, or nothing but (Unicode) white space.
CREATE FUNCTION dms__is_blank(text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN $1 IS NULL
    OR $1 ~ '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$';
COMMENT ON FUNCTION dms__is_blank(text) IS
    'internal: is a message NULL or only white space?';

-- Is the statement under way a COPY FROM into this table, as pg_restore loads it?
-- Such rows come with their own history: they are checked, not replayed.
CREATE FUNCTION dms__loading(table_name name) RETURNS boolean
    LANGUAGE sql VOLATILE
RETURN current_query() ~* ('^\s*copy\s+(only\s+)?([a-z_0-9]+\.|"[^"]+"\.)?"?' || table_name
                           || '"?\s*(\([^)]*\))?\s*from\M');
COMMENT ON FUNCTION dms__loading(name) IS
    'internal: is the statement under way a COPY FROM into this table (a load, as by pg_restore)?';

-- '"Not started", "Stopped" or "Failed"': the statuses that edges with a property
-- (edits_databases: start from it; keeps_message: enter it), in enum order.
CREATE FUNCTION dms__status_list(property text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT string_agg(CASE WHEN n = 1 THEN '' WHEN n = total THEN ' or ' ELSE ', ' END
                      || '"' || dms_status_label(status) || '"', '' ORDER BY status)
      FROM (SELECT status, row_number() OVER (ORDER BY status) AS n, count(*) OVER () AS total
              FROM (SELECT DISTINCT CASE property WHEN 'edits_databases' THEN e.from_status
                                                  ELSE e.to_status END AS status
                      FROM dms_lifecycle_edge e
                     WHERE CASE property WHEN 'edits_databases' THEN e.edits_databases
                                         ELSE e.sets_message END) s) l;
END;
COMMENT ON FUNCTION dms__status_list(text) IS
    'internal: the statuses where edits change databases, or that keep an error message, as messages list them';

-- Job and database names: 1 to 63 characters, no control characters, not blank.
CREATE FUNCTION dms__check_name(value text, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    n int := length(value);
BEGIN
    IF n < 1 OR n > 63 THEN
        RAISE EXCEPTION '% must be 1 to 63 characters long', what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The %s given has %s characters.', what, n);
    END IF;
    IF value ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION '% must not contain control characters', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF @extschema@.dms__is_blank(value) THEN
        RAISE EXCEPTION '% must not be blank', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;
COMMENT ON FUNCTION dms__check_name(text, text) IS
    'internal: refuses a job or database name that is empty, too long, blank or has control characters';

-- A database list: NULL (all databases), or one or more distinct valid names.
CREATE FUNCTION dms__check_databases(list text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    i int;
BEGIN
    IF array_ndims(list) > 1 THEN
        RAISE EXCEPTION 'the database list must be a one-dimensional array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(list) = 0 THEN
        RAISE EXCEPTION 'the database list must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use NULL to migrate all databases of the source.';
    END IF;
    FOR i IN array_lower(list, 1) .. array_upper(list, 1) LOOP
        IF list[i] IS NULL THEN
            RAISE EXCEPTION 'the database list must not contain NULL'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM @extschema@.dms__check_name(list[i], 'database name');
        IF list[i] = ANY (list[array_lower(list, 1) : i - 1]) THEN
            RAISE EXCEPTION 'database "%" appears twice in the database list', list[i]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION dms__check_databases(text[]) IS
    'internal: refuses an empty, multi-dimensional or duplicate database list, or a bad name in it';

-- Refuses an action or event that has no edge from the job's state.
CREATE FUNCTION dms__refuse(job_id bigint, what text, status dms_job_status,
                            phase dms_job_phase, migration_type dms_migration_type)
    RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
    accepted text;
BEGIN
    IF what = ANY (enum_range(NULL::@extschema@.dms_action)::text[]) THEN
        RAISE EXCEPTION 'cannot % migration job % while it is %',
                        what, job_id, @extschema@.dms__state_text(status, phase)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Allowed actions: %s.',
                                  @extschema@.dms_allowed_action_labels(status, phase));
    END IF;
    SELECT string_agg(e.name, ', ' ORDER BY e.name::@extschema@.dms_event) INTO accepted
      FROM @extschema@.dms_lifecycle_edge e
     WHERE e.kind = 'event' AND e.from_status = dms__refuse.status
       AND e.from_phase IS NOT DISTINCT FROM dms__refuse.phase
       AND (e.migration_type IS NULL OR e.migration_type = dms__refuse.migration_type);
    RAISE EXCEPTION 'cannot report "%" for migration job % while it is %',
                    what, job_id, @extschema@.dms__state_text(status, phase)
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = coalesce('Events accepted now: ' || accepted || '.',
                                'A job in this state accepts no event.');
END $$;
COMMENT ON FUNCTION dms__refuse(bigint, text, dms_job_status, dms_job_phase, dms_migration_type) IS
    'internal: raises the refusal of an action or event, naming what the job accepts now';

--------------------------------------------------------------------------
-- Triggers
--------------------------------------------------------------------------

/*
 * The request under way, in the transaction-local setting
 * dms_lifecycle.request: a text[] of
 *   [1] job id  [2] action or event  [3] message  [4] database
 *   [5] edit (dump_parallelism, add_database, remove_database)
 *   [6] dump parallelism  [7] actor
 * [1] and [2] are NULL in a frame that only carries the actor (dms_create_job).
 */

CREATE FUNCTION dms_job_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    req               text[];
    e                 @extschema@.dms_lifecycle_edge;
    is_request        boolean;
    state_changed     boolean;
    message_changed   boolean;
    name_changed      boolean;
    type_changed      boolean;
    databases_changed boolean;
    edited            boolean;
    changed           boolean := true;
    message           text;
    database          text;
    not_null          text;
BEGIN
    -- PostgreSQL checks NOT NULL only after the BEFORE triggers: refuse a NULL
    -- first, as it would, rather than judge a row that lacks a value.
    IF TG_OP <> 'DELETE' THEN
        not_null := CASE WHEN NEW.id IS NULL THEN 'id'
                         WHEN NEW.name IS NULL THEN 'name'
                         WHEN NEW.migration_type IS NULL THEN 'migration_type'
                         WHEN NEW.status IS NULL THEN 'status'
                         WHEN NEW.dump_parallelism IS NULL THEN 'dump_parallelism'
                         WHEN NEW.created_at IS NULL THEN 'created_at'
                         WHEN NEW.updated_at IS NULL THEN 'updated_at'
                         WHEN NEW.status_changed_at IS NULL THEN 'status_changed_at' END;
        IF not_null IS NOT NULL THEN
            RAISE EXCEPTION 'null value in column "%" violates not-null constraint', not_null
                USING ERRCODE = 'not_null_violation';
        END IF;
    END IF;

    req := nullif(current_setting('dms_lifecycle.request', true), '')::text[];
    IF req IS NULL THEN
        -- A direct write: the history names the role that wrote (this trigger runs as
        -- the writer; dms_job_record runs as the tables' owner).
        PERFORM set_config('dms_lifecycle.writer', current_user, true);
    END IF;

    IF TG_OP = 'DELETE' THEN
        PERFORM FROM @extschema@.dms_lifecycle_edge x
         WHERE x.name = 'delete' AND x.from_status = OLD.status
           AND x.from_phase IS NOT DISTINCT FROM OLD.phase;
        IF NOT FOUND THEN
            PERFORM @extschema@.dms__refuse(OLD.id, 'delete', OLD.status, OLD.phase, OLD.migration_type);
        END IF;
        RETURN OLD;
    END IF;

    IF TG_OP = 'INSERT' THEN
        PERFORM @extschema@.dms__check_name(NEW.name, 'job name');
        IF NEW.databases IS NOT NULL THEN
            PERFORM @extschema@.dms__check_databases(NEW.databases);
        END IF;
        IF req IS NULL AND @extschema@.dms__loading(TG_TABLE_NAME) THEN
            -- COPY FROM (pg_restore) loads a job as it was, with its timestamps;
            -- it must be a legal state, and have an error message only where one belongs.
            PERFORM FROM @extschema@.dms_lifecycle_edge x
             WHERE x.from_status = NEW.status AND x.from_phase IS NOT DISTINCT FROM NEW.phase;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'migration job % cannot be loaded with status % and phase %',
                                NEW.id, NEW.status, coalesce(NEW.phase::text, 'NULL')
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            PERFORM FROM @extschema@.dms_lifecycle_edge x
             WHERE x.to_status = NEW.status AND x.keeps_message;
            IF NEW.error_message IS NOT NULL AND NOT FOUND THEN
                RAISE EXCEPTION 'migration job % cannot be loaded as % with an error message',
                                NEW.id, @extschema@.dms__state_text(NEW.status, NEW.phase)
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            -- a failed job may owe its status to failed databases alone (SPEC 5)
            IF NEW.error_message IS NULL AND FOUND AND NEW.status <> 'failed' THEN
                RAISE EXCEPTION 'migration job % cannot be loaded as % without an error message',
                                NEW.id, @extschema@.dms__state_text(NEW.status, NEW.phase)
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            RETURN NEW;
        END IF;
        IF NEW.status <> 'not_started' OR NEW.phase IS NOT NULL
           OR NEW.error_message IS NOT NULL OR NEW.pending_dump_parallelism IS NOT NULL THEN
            RAISE EXCEPTION 'a new migration job must be "Not started", with no phase, error or pending edit'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('The new row of migration job %s is %s.', NEW.id,
                                      @extschema@.dms__state_text(NEW.status, NEW.phase));
        END IF;
        NEW.created_at := now();
        NEW.updated_at := now();
        NEW.status_changed_at := now();
        RETURN NEW;
    END IF;

    -- UPDATE
    is_request := req[2] IS NOT NULL AND req[1]::bigint = OLD.id;
    IF is_request THEN
        -- An action or event of the extension's functions: its edge from the job's state.
        SELECT * INTO e FROM @extschema@.dms_lifecycle_edge x
         WHERE x.name = req[2] AND x.from_status = OLD.status
           AND x.from_phase IS NOT DISTINCT FROM OLD.phase
           AND (x.migration_type IS NULL OR x.migration_type = OLD.migration_type);
        IF NOT FOUND THEN
            PERFORM @extschema@.dms__refuse(OLD.id, req[2], OLD.status, OLD.phase, OLD.migration_type);
        END IF;
        message := req[3];
        database := req[4];
    ELSE
        -- A direct UPDATE: one edge, one edit, or nothing at all.
        state_changed := NEW.status IS DISTINCT FROM OLD.status OR NEW.phase IS DISTINCT FROM OLD.phase;
        message_changed := NEW.error_message IS DISTINCT FROM OLD.error_message;
        name_changed := NEW.name IS DISTINCT FROM OLD.name;
        type_changed := NEW.migration_type IS DISTINCT FROM OLD.migration_type;
        databases_changed := NEW.databases IS DISTINCT FROM OLD.databases;
        edited := name_changed OR type_changed OR databases_changed
                  OR NEW.dump_parallelism IS DISTINCT FROM OLD.dump_parallelism
                  OR NEW.pending_dump_parallelism IS DISTINCT FROM OLD.pending_dump_parallelism;

        IF (state_changed OR message_changed) AND edited THEN
            RAISE EXCEPTION 'migration job % cannot change status and be edited in one UPDATE', OLD.id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Make the transition and the edit in two statements.';
        END IF;
        IF state_changed THEN
            SELECT * INTO e FROM @extschema@.dms_lifecycle_edge x
             WHERE x.name NOT IN ('edit', 'delete')
               AND x.from_status = OLD.status AND x.from_phase IS NOT DISTINCT FROM OLD.phase
               AND (x.migration_type IS NULL OR x.migration_type = OLD.migration_type)
               AND x.to_status = NEW.status AND x.to_phase IS NOT DISTINCT FROM NEW.phase
             ORDER BY x.ord LIMIT 1;
        ELSIF message_changed THEN
            -- a new message is the self-loop that replaces it ("error", "failed")
            SELECT * INTO e FROM @extschema@.dms_lifecycle_edge x
             WHERE x.sets_message
               AND x.from_status = OLD.status AND x.from_phase IS NOT DISTINCT FROM OLD.phase
               AND (x.migration_type IS NULL OR x.migration_type = OLD.migration_type)
               AND x.to_status = OLD.status AND x.to_phase IS NOT DISTINCT FROM OLD.phase
             ORDER BY x.ord LIMIT 1;
        END IF;

        IF state_changed OR message_changed THEN
            IF e.name IS NULL THEN
                IF NOT state_changed THEN
                    RAISE EXCEPTION 'migration job % has no error message while it is %',
                                    OLD.id, @extschema@.dms__state_text(OLD.status, OLD.phase)
                        USING ERRCODE = 'object_not_in_prerequisite_state',
                              DETAIL = format('A job has an error message only while it is %s.',
                                              @extschema@.dms__status_list('keeps_message'));
                END IF;
                PERFORM FROM @extschema@.dms_lifecycle_edge x
                 WHERE x.from_status = NEW.status AND x.from_phase IS NOT DISTINCT FROM NEW.phase;
                message := @extschema@.dms__state_text(NEW.status, NEW.phase)
                           || CASE WHEN NOT FOUND AND NEW.phase IS NULL THEN ' (no phase)' ELSE '' END;
                RAISE EXCEPTION 'invalid transition of migration job % from % to %',
                                OLD.id, @extschema@.dms__state_text(OLD.status, OLD.phase), message
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = format('Allowed actions: %s.',
                                          @extschema@.dms_allowed_action_labels(OLD.status, OLD.phase)),
                          HINT = 'Use the dms_lifecycle functions, or an UPDATE along an edge listed by dms_transitions().';
            END IF;
            message := NEW.error_message;
        ELSIF edited THEN
            SELECT * INTO e FROM @extschema@.dms_lifecycle_edge x
             WHERE x.name = 'edit' AND x.from_status = OLD.status
               AND x.from_phase IS NOT DISTINCT FROM OLD.phase;
            IF NOT FOUND THEN
                PERFORM @extschema@.dms__refuse(OLD.id, 'edit', OLD.status, OLD.phase, OLD.migration_type);
            END IF;
            IF name_changed THEN
                PERFORM @extschema@.dms__check_name(NEW.name, 'job name');
            END IF;
            IF databases_changed THEN
                IF NOT e.edits_databases THEN
                    RAISE EXCEPTION 'cannot change the databases of migration job % while it is %',
                                    OLD.id, @extschema@.dms__state_text(OLD.status, OLD.phase)
                        USING ERRCODE = 'object_not_in_prerequisite_state',
                              DETAIL = format('The databases of a job can change while it is %s.',
                                              @extschema@.dms__status_list('edits_databases'));
                END IF;
                IF NEW.databases IS NOT NULL THEN
                    PERFORM @extschema@.dms__check_databases(NEW.databases);
                END IF;
            END IF;
            IF type_changed AND OLD.status <> 'not_started' THEN
                RAISE EXCEPTION 'cannot change the migration type of migration job % while it is %',
                                OLD.id, @extschema@.dms__state_text(OLD.status, OLD.phase)
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = 'The migration type can change only before the job starts.';
            END IF;
            e := NULL;  -- checked; the row is written as given
        ELSE
            changed := false;
        END IF;
    END IF;

    IF e.name = 'edit' THEN
        -- An edit of dms_set_dump_parallelism(), dms_add_database(), dms_remove_database().
        IF req[5] IN ('add_database', 'remove_database') THEN
            IF NOT e.edits_databases THEN
                RAISE EXCEPTION 'cannot % migration job % while it is %',
                                CASE req[5] WHEN 'add_database' THEN 'add a database to'
                                            ELSE 'remove a database from' END,
                                OLD.id, @extschema@.dms__state_text(OLD.status, OLD.phase)
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = format('The databases of a job can change while it is %s.',
                                          @extschema@.dms__status_list('edits_databases'));
            END IF;
            IF OLD.databases IS NULL THEN
                RAISE EXCEPTION 'migration job % migrates all databases of its source', OLD.id
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Create a job with a list of databases to choose them one by one.';
            END IF;
        END IF;
        CASE req[5]
        WHEN 'dump_parallelism' THEN
            IF OLD.status = 'not_started' THEN
                NEW.dump_parallelism := req[6];
                NEW.pending_dump_parallelism := NULL;
            ELSE
                NEW.pending_dump_parallelism := req[6];
            END IF;
        WHEN 'add_database' THEN
            IF database = ANY (OLD.databases) THEN
                RAISE EXCEPTION 'migration job % already migrates database "%"', OLD.id, database
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            NEW.databases := (OLD.databases || database)[:];  -- a list from 1, as given
            PERFORM @extschema@.dms__check_databases(NEW.databases);
        WHEN 'remove_database' THEN
            IF NOT database = ANY (OLD.databases) THEN
                RAISE EXCEPTION 'migration job % does not migrate database "%"', OLD.id, database
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF cardinality(OLD.databases) <= 1 THEN
                RAISE EXCEPTION 'migration job % must keep at least one database', OLD.id
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Delete the job instead.';
            END IF;
            NEW.databases := (array_remove(OLD.databases, database))[:];
        ELSE
            NULL;
        END CASE;
    ELSIF e.name IS NOT NULL THEN
        -- An edge: its target, and what it does to the error message and parallelism.
        NEW.status := e.to_status;
        NEW.phase := e.to_phase;
        IF NOT e.keeps_message THEN
            NEW.error_message := NULL;
        ELSIF database IS NOT NULL THEN
            -- a database failed: the job-level error is only a failure's own
            IF OLD.status <> e.to_status THEN
                NEW.error_message := NULL;
            END IF;
        ELSIF e.sets_message THEN
            IF @extschema@.dms__is_blank(message) THEN
                RAISE EXCEPTION 'migration job % cannot become % without an error message',
                                OLD.id, @extschema@.dms__state_text(e.to_status, e.to_phase)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            NEW.error_message := message;
        END IF;
        -- A restart applies the pending parallelism; a job that ends never will.
        IF e.applies_pending THEN
            NEW.dump_parallelism := coalesce(OLD.pending_dump_parallelism, NEW.dump_parallelism);
            NEW.pending_dump_parallelism := NULL;
        ELSIF e.ends THEN
            NEW.pending_dump_parallelism := NULL;
        END IF;
    END IF;

    -- The timestamps are the guard's to keep.
    NEW.created_at := OLD.created_at;
    IF changed THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status OR NEW.phase IS DISTINCT FROM OLD.phase THEN
        NEW.status_changed_at := now();
    ELSE
        NEW.status_changed_at := OLD.status_changed_at;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION dms_job_guard() IS
    'BEFORE trigger on dms_job: refuses every write that is no edge of the lifecycle, keeps the timestamps';

CREATE FUNCTION dms_job_record() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req      text[] := nullif(current_setting('dms_lifecycle.request', true), '')::text[];
    actor    text;
    cause    text;
    message  text;
    database text;
    job      @extschema@.dms_job;
    edge     record;
    hid      bigint;
    notified text;  -- pg_notify returns void; assigned rather than PERFORMed (no query needed)
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- a job loaded by COPY FROM brings its history rows along
        IF req IS NULL AND @extschema@.dms__loading(TG_TABLE_NAME) THEN
            RETURN NULL;
        END IF;
        cause := 'create';
        job := NEW;
    ELSIF TG_OP = 'DELETE' THEN
        cause := 'delete';
        job := OLD;
    ELSE
        job := NEW;
        IF req[2] IS NOT NULL AND req[1]::bigint = OLD.id THEN
            cause := req[2];
            database := req[4];
            message := CASE req[5]
                       WHEN 'dump_parallelism' THEN
                            CASE WHEN OLD.status = 'not_started'
                                 THEN 'dump parallelism set to ' || req[6]
                                 ELSE 'dump parallelism ' || req[6] || ' from the next restart' END
                       WHEN 'add_database' THEN format('database "%s" added', req[4])
                       WHEN 'remove_database' THEN format('database "%s" removed', req[4])
                       ELSE req[3] END;
        ELSE
            -- A direct UPDATE, named as the guard judged it.  A change of state is
            -- the edge, whatever the edge did to the other columns itself (a restart
            -- applies the pending parallelism, an edge into an end drops it): the
            -- guard refused any edit made with it.  A new message alone is the
            -- self-loop that replaces it; other changed columns alone, an edit.
            IF NEW.status IS DISTINCT FROM OLD.status OR NEW.phase IS DISTINCT FROM OLD.phase
               OR (NEW.error_message IS DISTINCT FROM OLD.error_message
                   AND NEW.name IS NOT DISTINCT FROM OLD.name
                   AND NEW.migration_type IS NOT DISTINCT FROM OLD.migration_type
                   AND NEW.databases IS NOT DISTINCT FROM OLD.databases
                   AND NEW.dump_parallelism IS NOT DISTINCT FROM OLD.dump_parallelism
                   AND NEW.pending_dump_parallelism IS NOT DISTINCT FROM OLD.pending_dump_parallelism) THEN
                SELECT x.name, x.sets_message INTO edge FROM @extschema@.dms_lifecycle_edge x
                 WHERE x.name NOT IN ('edit', 'delete')
                   AND x.from_status = OLD.status AND x.from_phase IS NOT DISTINCT FROM OLD.phase
                   AND (x.migration_type IS NULL OR x.migration_type = OLD.migration_type)
                   AND x.to_status = NEW.status AND x.to_phase IS NOT DISTINCT FROM NEW.phase
                   AND (x.sets_message
                        OR NEW.status IS DISTINCT FROM OLD.status OR NEW.phase IS DISTINCT FROM OLD.phase)
                 ORDER BY x.ord LIMIT 1;
                IF FOUND THEN
                    cause := edge.name;
                    IF edge.sets_message THEN
                        message := NEW.error_message;
                    END IF;
                END IF;
            ELSIF NEW.error_message IS NOT DISTINCT FROM OLD.error_message
                  AND (NEW.name, NEW.migration_type, NEW.databases, NEW.dump_parallelism,
                       NEW.pending_dump_parallelism)
                      IS DISTINCT FROM (OLD.name, OLD.migration_type, OLD.databases,
                                        OLD.dump_parallelism, OLD.pending_dump_parallelism) THEN
                cause := 'edit';
            END IF;
        END IF;
    END IF;

    -- the caller of the extension's function, or the role that wrote directly
    actor := coalesce(req[7], current_setting('dms_lifecycle.writer', true));
    IF cause IS NOT NULL THEN
        INSERT INTO @extschema@.dms_job_history
               (job_id, job_name, cause, from_status, from_phase, to_status, to_phase,
                database_name, message, actor)
        VALUES (job.id, job.name, cause,
                CASE WHEN TG_OP <> 'INSERT' THEN OLD.status END,
                CASE WHEN TG_OP <> 'INSERT' THEN OLD.phase END,
                CASE WHEN TG_OP <> 'DELETE' THEN NEW.status END,
                CASE WHEN TG_OP <> 'DELETE' THEN NEW.phase END,
                database, message, actor)
        RETURNING id INTO hid;
        notified := pg_notify('dms_lifecycle', format(
            '{"job_id":%s,"name":%s,"cause":%s,"from_status":%s,"from_phase":%s,"to_status":%s,"to_phase":%s,"actor":%s,"history_id":%s}',
            job.id, to_json(job.name), to_json(cause),
            coalesce(CASE WHEN TG_OP <> 'INSERT' THEN to_json(OLD.status)::text END, 'null'),
            coalesce(CASE WHEN TG_OP <> 'INSERT' THEN to_json(OLD.phase)::text END, 'null'),
            coalesce(CASE WHEN TG_OP <> 'DELETE' THEN to_json(NEW.status)::text END, 'null'),
            coalesce(CASE WHEN TG_OP <> 'DELETE' THEN to_json(NEW.phase)::text END, 'null'),
            to_json(actor), hid));
    END IF;

    -- A job that left "Failed" has no failed databases, and a database that
    -- left the migration has no failure row.  (A recovery that follows is the
    -- same actor's: dms_failure_removed reads the actor from the request.)
    IF TG_OP = 'UPDATE' AND ((OLD.status = 'failed' AND NEW.status <> 'failed')
                             OR (NEW.databases IS NOT NULL AND NEW.databases IS DISTINCT FROM OLD.databases)) THEN
        IF req IS NULL THEN
            PERFORM set_config('dms_lifecycle.request',
                               ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, actor]::text, true);
        END IF;
        IF OLD.status = 'failed' AND NEW.status <> 'failed' THEN
            DELETE FROM @extschema@.dms_job_failure f WHERE f.job_id = NEW.id;
        ELSE
            DELETE FROM @extschema@.dms_job_failure f
             WHERE f.job_id = NEW.id AND NOT (f.database_name = ANY (NEW.databases));
        END IF;
        IF req IS NULL THEN
            PERFORM set_config('dms_lifecycle.request', '', true);
        END IF;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION dms_job_record() IS
    'AFTER trigger on dms_job: writes the history row, sends the notification, clears failure rows';

CREATE FUNCTION dms_failure_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    req  text := current_setting('dms_lifecycle.request', true);
    job  record;
BEGIN
    -- NOT NULL before anything else, as PostgreSQL would say it (phase and
    -- failed_at are this trigger's to set)
    IF NEW.job_id IS NULL OR NEW.database_name IS NULL OR NEW.error_message IS NULL THEN
        RAISE EXCEPTION 'null value in column "%" violates not-null constraint',
                        CASE WHEN NEW.job_id IS NULL THEN 'job_id'
                             WHEN NEW.database_name IS NULL THEN 'database_name'
                             ELSE 'error_message' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.job_id IS DISTINCT FROM OLD.job_id
                             OR NEW.database_name IS DISTINCT FROM OLD.database_name) THEN
        RAISE EXCEPTION 'a failure row cannot move to another job or database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Delete it and report the failure of the other database.';
    END IF;
    PERFORM @extschema@.dms__check_name(NEW.database_name, 'database name');
    IF @extschema@.dms__is_blank(NEW.error_message) THEN
        RAISE EXCEPTION 'the error message of failed database "%" must not be blank', NEW.database_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT j.status, j.phase, j.databases INTO job
      FROM @extschema@.dms_job j WHERE j.id = NEW.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', NEW.job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF job.databases IS NOT NULL AND NOT NEW.database_name = ANY (job.databases) THEN
        RAISE EXCEPTION 'migration job % does not migrate database "%"', NEW.job_id, NEW.database_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF coalesce(req, '') = '' AND @extschema@.dms__loading(TG_TABLE_NAME) THEN
        -- a failure row loaded by COPY FROM belongs to a job loaded as failed
        IF job.status <> 'failed' THEN
            RAISE EXCEPTION 'failure of database "%" cannot be loaded for migration job % while it is %',
                            NEW.database_name, NEW.job_id, @extschema@.dms__state_text(job.status, job.phase)
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN NEW;
    END IF;

    -- The database failed: the event "failed" of its job, with the database.
    PERFORM set_config('dms_lifecycle.request',
                       ARRAY[NEW.job_id::text, 'failed', NEW.error_message, NEW.database_name,
                             NULL, NULL,
                             coalesce((nullif(req, '')::text[])[7], current_user::text)]::text,
                       true);
    UPDATE @extschema@.dms_job j SET status = j.status WHERE j.id = NEW.job_id
    RETURNING j.phase INTO NEW.phase;
    PERFORM set_config('dms_lifecycle.request', coalesce(req, ''), true);
    NEW.failed_at := now();
    RETURN NEW;
END $$;
COMMENT ON FUNCTION dms_failure_guard() IS
    'BEFORE trigger on dms_job_failure: a failed database puts its job into failed';

CREATE FUNCTION dms_failure_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    req  text := current_setting('dms_lifecycle.request', true);
    job  record;
BEGIN
    -- Lock the job, then look at it: is this its last failure, and did the
    -- database leave the migration, with no job-level error left?
    SELECT j.status, j.error_message, j.databases INTO job
      FROM @extschema@.dms_job j WHERE j.id = OLD.job_id FOR UPDATE;
    IF FOUND AND job.status = 'failed' AND job.error_message IS NULL
       AND job.databases IS NOT NULL AND NOT OLD.database_name = ANY (job.databases)
       AND NOT EXISTS (SELECT FROM @extschema@.dms_job_failure f WHERE f.job_id = OLD.job_id) THEN
        -- the last failed database has left the migration: the job recovers
        PERFORM set_config('dms_lifecycle.request',
                           ARRAY[OLD.job_id::text, 'recovered', NULL, NULL, NULL, NULL,
                                 coalesce((nullif(req, '')::text[])[7], current_user::text)]::text,
                           true);
        UPDATE @extschema@.dms_job j SET status = j.status WHERE j.id = OLD.job_id;
        PERFORM set_config('dms_lifecycle.request', coalesce(req, ''), true);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION dms_failure_removed() IS
    'AFTER trigger on dms_job_failure: a failed job whose last failed database left the migration recovers';

CREATE FUNCTION dms_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the history of migration jobs is append-only'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = format('%s on dms_job_history is refused.', TG_OP),
              HINT = 'TRUNCATE removes the whole history.';
END $$;
COMMENT ON FUNCTION dms_history_append_only() IS
    'BEFORE trigger on dms_job_history: refuses UPDATE and DELETE';

CREATE FUNCTION dms_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cannot truncate %', TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = 'Migration jobs leave one by one, each with its history row.',
              HINT = 'Use dms_delete() for each job.';
END $$;
COMMENT ON FUNCTION dms_refuse_truncate() IS
    'BEFORE TRUNCATE trigger on dms_job and dms_job_failure: rows leave one by one, through the guard';

CREATE TRIGGER dms_job_guard BEFORE INSERT OR UPDATE OR DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION dms_job_guard();
CREATE TRIGGER dms_job_truncate BEFORE TRUNCATE ON dms_job
    FOR EACH STATEMENT EXECUTE FUNCTION dms_refuse_truncate();
CREATE TRIGGER dms_failure_truncate BEFORE TRUNCATE ON dms_job_failure
    FOR EACH STATEMENT EXECUTE FUNCTION dms_refuse_truncate();
CREATE TRIGGER dms_job_record AFTER INSERT OR UPDATE OR DELETE ON dms_job
    FOR EACH ROW EXECUTE FUNCTION dms_job_record();
CREATE TRIGGER dms_failure_guard BEFORE INSERT OR UPDATE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION dms_failure_guard();
CREATE TRIGGER dms_failure_removed AFTER DELETE ON dms_job_failure
    FOR EACH ROW EXECUTE FUNCTION dms_failure_removed();
CREATE TRIGGER dms_history_append_only BEFORE UPDATE OR DELETE ON dms_job_history
    FOR EACH ROW EXECUTE FUNCTION dms_history_append_only();

--------------------------------------------------------------------------
-- Workers: SECURITY DEFINER, one statement on the job row each.  Called by
-- the public functions below with the caller's current_user as actor.
--------------------------------------------------------------------------

CREATE FUNCTION dms__create_job(p_name text, p_type dms_migration_type, p_databases text[],
                                p_parallelism dms_dump_parallelism, actor name)
    RETURNS bigint LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET dms_lifecycle.request = '' AS $$
DECLARE
    request    text;
    new_id bigint;
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION 'name must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF p_type IS NULL THEN
        RAISE EXCEPTION 'migration_type must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF p_parallelism IS NULL THEN
        RAISE EXCEPTION 'dump_parallelism must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the request the triggers read (assigned: set_config needs no query)
    request := set_config('dms_lifecycle.request',
                         ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, actor]::text, true);
    INSERT INTO @extschema@.dms_job (name, migration_type, databases, dump_parallelism)
    VALUES (p_name, p_type, p_databases, p_parallelism)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;
COMMENT ON FUNCTION dms__create_job(text, dms_migration_type, text[], dms_dump_parallelism, name) IS
    'internal: the work of dms_create_job(), as the tables'' owner, for the actor given';

CREATE FUNCTION dms__act(job_id bigint, action dms_action, actor name)
    RETURNS dms_job_status LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET dms_lifecycle.request = '' AS $$
DECLARE
    request    text;
    new_status @extschema@.dms_job_status;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF action NOT IN ('start', 'stop', 'resume', 'restart', 'promote') THEN
        RAISE EXCEPTION 'dms__act performs start, stop, resume, restart and promote, not %', action;
    END IF;
    -- the request the triggers read (assigned: set_config needs no query)
    request := set_config('dms_lifecycle.request',
                         ARRAY[job_id::text, action::text, NULL, NULL, NULL, NULL, actor]::text, true);
    UPDATE @extschema@.dms_job j SET status = j.status WHERE j.id = dms__act.job_id
    RETURNING j.status INTO new_status;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN new_status;
END $$;
COMMENT ON FUNCTION dms__act(bigint, dms_action, name) IS
    'internal: the work of dms_start(), dms_stop(), dms_resume(), dms_restart() and dms_promote()';

CREATE FUNCTION dms__delete(job_id bigint, actor name)
    RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET dms_lifecycle.request = '' AS $$
DECLARE
    request text;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the request the triggers read (assigned: set_config needs no query)
    request := set_config('dms_lifecycle.request',
                         ARRAY[job_id::text, 'delete', NULL, NULL, NULL, NULL, actor]::text, true);
    DELETE FROM @extschema@.dms_job j WHERE j.id = dms__delete.job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN true;
END $$;
COMMENT ON FUNCTION dms__delete(bigint, name) IS 'internal: the work of dms_delete()';

CREATE FUNCTION dms__edit(job_id bigint, edit text, level dms_dump_parallelism,
                          database_name text, actor name)
    RETURNS dms_job_status LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET dms_lifecycle.request = '' AS $$
DECLARE
    request    text;
    new_status @extschema@.dms_job_status;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF edit = 'dump_parallelism' THEN
        IF level IS NULL THEN
            RAISE EXCEPTION 'level must not be null' USING ERRCODE = 'null_value_not_allowed';
        END IF;
    ELSIF edit IN ('add_database', 'remove_database') THEN
        IF database_name IS NULL THEN
            RAISE EXCEPTION 'database_name must not be null' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM @extschema@.dms__check_name(database_name, 'database name');
    ELSE
        RAISE EXCEPTION 'unknown edit %', edit;
    END IF;
    -- the request the triggers read (assigned: set_config needs no query)
    request := set_config('dms_lifecycle.request',
                         ARRAY[job_id::text, 'edit', NULL, database_name, edit, level::text, actor]::text,
                         true);
    UPDATE @extschema@.dms_job j SET status = j.status WHERE j.id = dms__edit.job_id
    RETURNING j.status INTO new_status;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    IF edit <> 'dump_parallelism' THEN
        -- removing the last failed database may have made the job recover since
        SELECT j.status INTO new_status FROM @extschema@.dms_job j WHERE j.id = dms__edit.job_id;
    END IF;
    RETURN new_status;
END $$;
COMMENT ON FUNCTION dms__edit(bigint, text, dms_dump_parallelism, text, name) IS
    'internal: the work of dms_set_dump_parallelism(), dms_add_database() and dms_remove_database()';

CREATE FUNCTION dms__report(job_id bigint, event dms_event, message text, database_name text,
                            actor name)
    RETURNS dms_job_status LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET dms_lifecycle.request = '' AS $$
DECLARE
    request    text;
    new_status @extschema@.dms_job_status;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF event IS NULL THEN
        RAISE EXCEPTION 'event must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF database_name IS NOT NULL THEN
        IF event <> 'failed' THEN
            RAISE EXCEPTION 'a database_name is reported only with the event "failed"'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('The event was "%s".', event);
        END IF;
        PERFORM @extschema@.dms__check_name(database_name, 'database name');
    END IF;
    IF event IN ('error', 'failed') AND @extschema@.dms__is_blank(message) THEN
        RAISE EXCEPTION 'the event "%" needs a message saying what went wrong', event
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the request the triggers read (assigned: set_config needs no query)
    request := set_config('dms_lifecycle.request',
                         ARRAY[job_id::text, event::text, message, database_name, NULL, NULL, actor]::text,
                         true);

    IF database_name IS NOT NULL THEN
        -- A database failed: its failure row is written, and its trigger fails the job.
        PERFORM FROM @extschema@.dms_job j WHERE j.id = dms__report.job_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
        END IF;
        UPDATE @extschema@.dms_job_failure f SET error_message = message
         WHERE f.job_id = dms__report.job_id AND f.database_name = dms__report.database_name;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.dms_job_failure (job_id, database_name, error_message)
            VALUES (job_id, database_name, message);
        END IF;
        RETURN 'failed';
    END IF;

    UPDATE @extschema@.dms_job j SET status = j.status WHERE j.id = dms__report.job_id
    RETURNING j.status INTO new_status;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN new_status;
END $$;
COMMENT ON FUNCTION dms__report(bigint, dms_event, text, text, name) IS
    'internal: the work of dms_report()';

--------------------------------------------------------------------------
-- Operator actions
--------------------------------------------------------------------------

CREATE FUNCTION dms_create_job(name text,
                               migration_type dms_migration_type DEFAULT 'continuous',
                               databases text[] DEFAULT NULL,
                               dump_parallelism dms_dump_parallelism DEFAULT 'optimal')
    RETURNS bigint LANGUAGE sql VOLATILE
RETURN dms__create_job(name, migration_type, databases, dump_parallelism, current_user);
COMMENT ON FUNCTION dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism) IS
    'creates a migration job in "Not started" and returns its id';

CREATE FUNCTION dms_start(job_id bigint) RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__act(job_id, 'start', current_user);
COMMENT ON FUNCTION dms_start(bigint) IS 'starts a job that has not started; returns its new status';

CREATE FUNCTION dms_stop(job_id bigint) RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__act(job_id, 'stop', current_user);
COMMENT ON FUNCTION dms_stop(bigint) IS 'stops a running job; returns its new status';

CREATE FUNCTION dms_resume(job_id bigint) RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__act(job_id, 'resume', current_user);
COMMENT ON FUNCTION dms_resume(bigint) IS 'resumes a job stopped in CDC; returns its new status';

CREATE FUNCTION dms_restart(job_id bigint) RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__act(job_id, 'restart', current_user);
COMMENT ON FUNCTION dms_restart(bigint) IS
    'restarts a job from the full dump, applying a pending dump parallelism and clearing its errors; returns its new status';

CREATE FUNCTION dms_promote(job_id bigint) RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__act(job_id, 'promote', current_user);
COMMENT ON FUNCTION dms_promote(bigint) IS
    'promotes the destination of a job in CDC; returns its new status';

CREATE FUNCTION dms_delete(job_id bigint) RETURNS boolean LANGUAGE sql VOLATILE
RETURN dms__delete(job_id, current_user);
COMMENT ON FUNCTION dms_delete(bigint) IS 'deletes a job (its history stays); returns true';

CREATE FUNCTION dms_set_dump_parallelism(job_id bigint, level dms_dump_parallelism)
    RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__edit(job_id, 'dump_parallelism', level, NULL, current_user);
COMMENT ON FUNCTION dms_set_dump_parallelism(bigint, dms_dump_parallelism) IS
    'edit: sets the dump parallelism now if the job has not started, else at its next restart';

CREATE FUNCTION dms_add_database(job_id bigint, database_name text)
    RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__edit(job_id, 'add_database', NULL, database_name, current_user);
COMMENT ON FUNCTION dms_add_database(bigint, text) IS
    'edit: adds a database to a job that is not started, stopped or failed';

CREATE FUNCTION dms_remove_database(job_id bigint, database_name text)
    RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__edit(job_id, 'remove_database', NULL, database_name, current_user);
COMMENT ON FUNCTION dms_remove_database(bigint, text) IS
    'edit: removes a database (and its failure) from a job that is not started, stopped or failed';

--------------------------------------------------------------------------
-- Engine events
--------------------------------------------------------------------------

CREATE FUNCTION dms_report(job_id bigint, event dms_event,
                           message text DEFAULT NULL, database_name text DEFAULT NULL)
    RETURNS dms_job_status LANGUAGE sql VOLATILE
RETURN dms__report(job_id, event, message, database_name, current_user);
COMMENT ON FUNCTION dms_report(bigint, dms_event, text, text) IS
    'the migration engine reports an event; failed with a database_name records that database''s failure';

--------------------------------------------------------------------------
-- Inspection
--------------------------------------------------------------------------

CREATE FUNCTION dms_allowed_actions(job_id bigint) RETURNS dms_action[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job record;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT j.status, j.phase INTO job FROM @extschema@.dms_job j WHERE j.id = dms_allowed_actions.job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration job % does not exist', job_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN coalesce((SELECT array_agg(e.name::@extschema@.dms_action ORDER BY e.name::@extschema@.dms_action)
                       FROM @extschema@.dms_lifecycle_edge e
                      WHERE e.kind = 'action' AND e.from_status = job.status
                        AND e.from_phase IS NOT DISTINCT FROM job.phase), '{}');
END $$;
COMMENT ON FUNCTION dms_allowed_actions(bigint) IS
    'the actions an operator may take on the job now, in enum order';

-- @view: here bench/plpgsql/assemble puts the view dms_job_overview of
-- sql/dms_lifecycle--1.0.sql, the same for both versions.

--------------------------------------------------------------------------
-- Privileges
--------------------------------------------------------------------------

/*
 * A capability is a set of ordinary privileges, granted and revoked with GRANT
 * and REVOKE.  The public functions run as their caller and call the workers,
 * so operator and engine get EXECUTE on both.
 */
CREATE FUNCTION dms_grant(role regrole, capability text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grantee  text;
    functions text[];
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF capability IS NULL THEN
        RAISE EXCEPTION 'capability must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    functions := CASE capability
                 WHEN 'reader' THEN ARRAY['dms_allowed_actions']
                 WHEN 'operator' THEN ARRAY['dms_allowed_actions',
                      'dms_create_job', 'dms_start', 'dms_stop', 'dms_resume', 'dms_restart',
                      'dms_promote', 'dms_delete', 'dms_set_dump_parallelism', 'dms_add_database',
                      'dms_remove_database', 'dms__create_job', 'dms__act', 'dms__delete', 'dms__edit']
                 WHEN 'engine' THEN ARRAY['dms_allowed_actions', 'dms_report', 'dms__report']
                 END;
    IF functions IS NULL THEN
        RAISE EXCEPTION 'unknown capability "%"', capability
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The capabilities are reader, operator and engine.';
    END IF;
    SELECT quote_ident(r.rolname) INTO grantee FROM pg_roles r WHERE r.oid = role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invalid role OID: %', role::oid USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA @extschema@ TO %s', grantee);
    EXECUTE format('GRANT SELECT ON @extschema@.dms_job, @extschema@.dms_job_failure, '
                   '@extschema@.dms_job_history, @extschema@.dms_job_overview TO %s', grantee);
    EXECUTE (SELECT format('GRANT EXECUTE ON FUNCTION %s TO %s', string_agg(p.oid::regprocedure::text, ', '), grantee)
               FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname = ANY (functions));
END $$;
COMMENT ON FUNCTION dms_grant(regrole, text) IS
    'gives a role the capability reader, operator or engine';

CREATE FUNCTION dms_revoke(role regrole, capability text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grantee   text;
    functions text[];
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF capability IS NULL THEN
        RAISE EXCEPTION 'capability must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Who cannot read cannot act: revoking reader takes back all three.
    functions := CASE capability
                 WHEN 'reader' THEN ARRAY['dms_allowed_actions',
                      'dms_create_job', 'dms_start', 'dms_stop', 'dms_resume', 'dms_restart',
                      'dms_promote', 'dms_delete', 'dms_set_dump_parallelism', 'dms_add_database',
                      'dms_remove_database', 'dms__create_job', 'dms__act', 'dms__delete', 'dms__edit',
                      'dms_report', 'dms__report']
                 WHEN 'operator' THEN ARRAY[
                      'dms_create_job', 'dms_start', 'dms_stop', 'dms_resume', 'dms_restart',
                      'dms_promote', 'dms_delete', 'dms_set_dump_parallelism', 'dms_add_database',
                      'dms_remove_database', 'dms__create_job', 'dms__act', 'dms__delete', 'dms__edit']
                 WHEN 'engine' THEN ARRAY['dms_report', 'dms__report']
                 END;
    IF functions IS NULL THEN
        RAISE EXCEPTION 'unknown capability "%"', capability
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The capabilities are reader, operator and engine.';
    END IF;
    SELECT quote_ident(r.rolname) INTO grantee FROM pg_roles r WHERE r.oid = role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invalid role OID: %', role::oid USING ERRCODE = 'undefined_object';
    END IF;
    IF capability = 'reader' THEN
        EXECUTE format('REVOKE SELECT ON @extschema@.dms_job, @extschema@.dms_job_failure, '
                       '@extschema@.dms_job_history, @extschema@.dms_job_overview FROM %s', grantee);
    END IF;
    EXECUTE (SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM %s', string_agg(p.oid::regprocedure::text, ', '), grantee)
               FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname = ANY (functions));
END $$;
COMMENT ON FUNCTION dms_revoke(regrole, text) IS
    'takes a capability back from a role; revoking reader takes back all three';

-- Nothing is PUBLIC but the labels and the lifecycle itself, which reveal no job.
REVOKE ALL ON dms_job, dms_job_failure, dms_job_history, dms_job_overview FROM PUBLIC;
REVOKE ALL ON FUNCTION
    dms_job_guard(), dms_job_record(), dms_failure_guard(), dms_failure_removed(),
    dms_history_append_only(), dms_refuse_truncate(),
    dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism),
    dms_start(bigint), dms_stop(bigint), dms_resume(bigint), dms_restart(bigint),
    dms_promote(bigint), dms_delete(bigint),
    dms_set_dump_parallelism(bigint, dms_dump_parallelism),
    dms_add_database(bigint, text), dms_remove_database(bigint, text),
    dms_report(bigint, dms_event, text, text),
    dms_allowed_actions(bigint),
    dms_grant(regrole, text), dms_revoke(regrole, text),
    dms__create_job(text, dms_migration_type, text[], dms_dump_parallelism, name),
    dms__act(bigint, dms_action, name), dms__delete(bigint, name),
    dms__edit(bigint, text, dms_dump_parallelism, text, name),
    dms__report(bigint, dms_event, text, text, name)
  FROM PUBLIC;
