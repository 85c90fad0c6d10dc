-- test/random_walk.sql: a seeded random walk over dms_lifecycle, checked step by step
-- against an independent model of SPEC sections 3 to 7.
--
-- Load it with psql into a database where the extension is installed (it creates the
-- schema "rw" and nothing else), then:
--
--     CALL rw.walk(seed => 0.42, steps => 20000, jobs => 8);
--     SELECT * FROM rw.run;            -- steps done, mismatches, seconds
--     SELECT * FROM rw.mismatch;       -- the first mismatches, in full detail
--     SELECT * FROM rw.edge_coverage;  -- how often each edge of SPEC 4 was taken
--
-- The model (rw.model_next, rw.model_allowed, rw.model_legal, rw.model_expect) is
-- written from the SPEC's text alone: it calls no function of the extension and reads
-- none of its tables.  rw.walk is a procedure, not a function, because it commits every
-- commit_every steps: a million updates of a few job rows in one transaction would leave
-- chains of row versions no one can prune, and every look-up would walk them.
--
-- Every step is one call (an action, an edit or an event, valid or not), run in its own
-- exception block, then compared with the model: SQLSTATE, return value, status, phase,
-- dms_allowed_actions, databases, dump parallelism (current and pending), error_message,
-- the failure rows, and the history rows the call wrote (how many, their causes, the
-- job they belong to, where the first starts and the last ends, an event's message and
-- database).  Every 1000 steps and at the end every job is compared again.  After a
-- mismatch the model takes the job's real state, so that one bug is reported once per
-- step it shows in rather than poisoning the rest of the walk.
--
-- The walk is biased so that every edge is taken many times.  Of the steps on a job:
--   3%  call anything on a deleted job's id (P0002),
--   2%  pass one NULL argument (22004),
--  10%  pass a bad argument value (22023: no message, unknown or malformed database,
--       database already there, the only database, a job that migrates all databases),
--  20%  call anything at all, with well-formed arguments (mostly refused: 55000),
--  30%  steer: take the least-taken edge of the job's migration type if it starts at the
--       job's state, else the first edge of a shortest path to where it starts,
--  35%  wander: an edge that starts at the job's state, weighted 1 / (1 + times taken)^2.
-- A steered or wandering edge becomes a call that takes it (an edit is a parallelism
-- change or a database added or removed; failed is job-level or of one database;
-- recovered is sometimes the removal of the last failed database).  rw.situation lists
-- the situations (ways failure rows come and go, kinds of bad arguments) the walk must
-- meet besides the edges; rw.summary counts what it never met.
--
-- Every mismatch is the model's fault or the extension's: the model follows the SPEC's
-- text, and says where it reads something the SPEC leaves open.

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS rw CASCADE;
CREATE SCHEMA rw;

--------------------------------------------------------------------------
-- The model
--------------------------------------------------------------------------

-- Where an edge leads: a (status, phase), or removed for delete.
CREATE TYPE rw.target AS (to_status dms_job_status, to_phase dms_job_phase, removed boolean);

CREATE FUNCTION rw.go(status dms_job_status, phase dms_job_phase) RETURNS rw.target
LANGUAGE sql IMMUTABLE AS $$ SELECT ROW(status, phase, false)::rw.target $$;

CREATE FUNCTION rw.removed() RETURNS rw.target
LANGUAGE sql IMMUTABLE AS $$ SELECT ROW(NULL, NULL, true)::rw.target $$;

-- SPEC 3: the legal (status, phase) pairs.
CREATE FUNCTION rw.model_legal(status dms_job_status, phase dms_job_phase) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN status IN ('not_started', 'starting', 'restarting', 'completed') THEN phase IS NULL
        WHEN status = 'running' THEN phase IS NOT NULL
        WHEN status IN ('running_with_errors', 'failed', 'stopping', 'stopped')
            THEN phase IN ('full_dump', 'cdc')
        WHEN status = 'resuming' THEN phase = 'cdc'
        ELSE false
    END
$$;

-- SPEC 4.1 and 4.2: where an action or an event leads from (status, phase) for a job of
-- this migration type; NULL when the table has no such edge (the call is refused).
CREATE FUNCTION rw.model_next(kind text, name text, status dms_job_status,
                              phase dms_job_phase, migration_type dms_migration_type)
RETURNS rw.target LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s text := status::text;
    p text := phase::text;
    fd CONSTANT dms_job_phase := 'full_dump';
    cdc CONSTANT dms_job_phase := 'cdc';
BEGIN
    IF NOT rw.model_legal(status, phase) THEN
        RETURN NULL;
    END IF;
    IF kind = 'action' THEN
        CASE name
        WHEN 'start' THEN           -- not_started -> starting
            IF s = 'not_started' THEN RETURN rw.go('starting', NULL); END IF;
        WHEN 'stop' THEN            -- running, running_with_errors (full_dump, cdc) -> stopping (same)
            IF s IN ('running', 'running_with_errors') AND p IN ('full_dump', 'cdc') THEN
                RETURN rw.go('stopping', phase);
            END IF;
        WHEN 'resume' THEN          -- stopped (cdc) -> resuming (cdc)
            IF s = 'stopped' AND p = 'cdc' THEN RETURN rw.go('resuming', cdc); END IF;
        WHEN 'restart' THEN         -- running_with_errors, failed, stopped (any) -> restarting
            IF s IN ('running_with_errors', 'failed', 'stopped') THEN
                RETURN rw.go('restarting', NULL);
            END IF;
        WHEN 'promote' THEN         -- running, running_with_errors, failed, stopped (cdc) -> running (promote_in_progress)
            IF s IN ('running', 'running_with_errors', 'failed', 'stopped') AND p = 'cdc' THEN
                RETURN rw.go('running', 'promote_in_progress');
            END IF;
        WHEN 'delete' THEN          -- every status except running_with_errors
            IF s <> 'running_with_errors' THEN RETURN rw.removed(); END IF;
        WHEN 'edit' THEN            -- not_started; running (full_dump, cdc); stopped; failed
            IF s IN ('not_started', 'stopped', 'failed')
               OR (s = 'running' AND p IN ('full_dump', 'cdc')) THEN
                RETURN rw.go(status, phase);
            END IF;
        ELSE
            NULL;
        END CASE;
    ELSIF kind = 'event' THEN
        CASE name
        WHEN 'started' THEN         -- starting -> running (full_dump)
            IF s = 'starting' THEN RETURN rw.go('running', fd); END IF;
        WHEN 'restarted' THEN       -- restarting -> running (full_dump)
            IF s = 'restarting' THEN RETURN rw.go('running', fd); END IF;
        WHEN 'resumed' THEN         -- resuming -> running (cdc)
            IF s = 'resuming' THEN RETURN rw.go('running', cdc); END IF;
        WHEN 'stopped' THEN         -- stopping (p) -> stopped (p)
            IF s = 'stopping' THEN RETURN rw.go('stopped', phase); END IF;
        WHEN 'dump_completed' THEN  -- running / running_with_errors (full_dump)
            IF s IN ('running', 'running_with_errors') AND p = 'full_dump' THEN
                IF migration_type = 'one_time' THEN
                    RETURN rw.go('completed', NULL);
                END IF;
                RETURN rw.go(status, cdc);
            END IF;
        WHEN 'error' THEN           -- running (full_dump, cdc), running_with_errors (p) -> running_with_errors (same)
            IF (s = 'running' AND p IN ('full_dump', 'cdc')) OR s = 'running_with_errors' THEN
                RETURN rw.go('running_with_errors', phase);
            END IF;
        WHEN 'errors_cleared' THEN  -- running_with_errors (p) -> running (p)
            IF s = 'running_with_errors' THEN RETURN rw.go('running', phase); END IF;
        WHEN 'failed' THEN
            IF s IN ('starting', 'restarting') THEN RETURN rw.go('failed', fd); END IF;
            IF s = 'resuming' THEN RETURN rw.go('failed', cdc); END IF;
            IF s = 'running' AND p = 'promote_in_progress' THEN RETURN rw.go('failed', cdc); END IF;
            IF s IN ('running', 'running_with_errors', 'stopping', 'failed') THEN
                RETURN rw.go('failed', phase);
            END IF;
        WHEN 'recovered' THEN       -- failed (p) -> running (p)
            IF s = 'failed' THEN RETURN rw.go('running', phase); END IF;
        WHEN 'promoted' THEN        -- running (promote_in_progress) -> completed
            IF s = 'running' AND p = 'promote_in_progress' THEN RETURN rw.go('completed', NULL); END IF;
        ELSE
            NULL;
        END CASE;
    END IF;
    RETURN NULL;
END
$$;

-- SPEC 4.3, copied from its table (not computed from rw.model_next: rw.self_check
-- compares the two).
CREATE FUNCTION rw.model_allowed(status dms_job_status, phase dms_job_phase) RETURNS dms_action[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN status = 'not_started' THEN '{start,edit,delete}'
        WHEN status = 'starting' THEN '{delete}'
        WHEN status = 'running' AND phase = 'full_dump' THEN '{stop,edit,delete}'
        WHEN status = 'running' AND phase = 'cdc' THEN '{stop,promote,edit,delete}'
        WHEN status = 'running' AND phase = 'promote_in_progress' THEN '{delete}'
        WHEN status = 'running_with_errors' AND phase = 'full_dump' THEN '{stop,restart}'
        WHEN status = 'running_with_errors' AND phase = 'cdc' THEN '{stop,restart,promote}'
        WHEN status = 'completed' THEN '{delete}'
        WHEN status = 'failed' AND phase = 'full_dump' THEN '{restart,edit,delete}'
        WHEN status = 'failed' AND phase = 'cdc' THEN '{restart,promote,edit,delete}'
        WHEN status = 'restarting' THEN '{delete}'
        WHEN status = 'stopped' AND phase = 'full_dump' THEN '{restart,edit,delete}'
        WHEN status = 'stopped' AND phase = 'cdc' THEN '{resume,restart,promote,edit,delete}'
        WHEN status = 'resuming' THEN '{delete}'
        WHEN status = 'stopping' THEN '{delete}'
    END::dms_action[]
$$;

-- The names the model knows: the 7 actions and the 10 events of SPEC 2.
CREATE VIEW rw.kind_name AS
    SELECT 'action'::text AS kind, a::text AS name FROM unnest(enum_range(NULL::dms_action)) a
    UNION ALL
    SELECT 'event', e::text FROM unnest(enum_range(NULL::dms_event)) e;

-- The model's own consistency: SPEC 4.3 says the allowed actions are exactly the actions
-- whose edge starts at the state; one row per legal state where the two disagree.
CREATE FUNCTION rw.self_check(OUT status dms_job_status, OUT phase dms_job_phase,
                              OUT migration_type dms_migration_type,
                              OUT from_4_3 dms_action[], OUT from_4_1 dms_action[])
RETURNS SETOF record LANGUAGE sql AS $$
    SELECT s, p, m, rw.model_allowed(s, p),
           ARRAY(SELECT a FROM unnest(enum_range(NULL::dms_action)) a
                  WHERE rw.model_next('action', a::text, s, p, m) IS DISTINCT FROM NULL
                  ORDER BY a)
      FROM unnest(enum_range(NULL::dms_job_status)) s,
           (SELECT NULL::dms_job_phase AS p UNION ALL
            SELECT x FROM unnest(enum_range(NULL::dms_job_phase)) x) ps,
           unnest(enum_range(NULL::dms_migration_type)) m
     WHERE rw.model_legal(s, p)
       AND rw.model_allowed(s, p) IS DISTINCT FROM
           ARRAY(SELECT a FROM unnest(enum_range(NULL::dms_action)) a
                  WHERE rw.model_next('action', a::text, s, p, m) IS DISTINCT FROM NULL
                  ORDER BY a)
$$;

-- The edge universe: every edge that starts at a state a job of that migration type can
-- reach from not_started, found by following rw.model_next.  An edge is named by
-- (migration type, kind, name, from status, from phase); where it leads follows.
CREATE FUNCTION rw.edge_key(migration_type dms_migration_type, kind text, name text,
                            status dms_job_status, phase dms_job_phase) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT migration_type || ' ' || kind || ' ' || name || ' ' || status || ' ' || coalesce(phase::text, '-')
$$;

CREATE FUNCTION rw.model_edges()
RETURNS TABLE (key text, migration_type dms_migration_type, kind text, name text,
               from_status dms_job_status, from_phase dms_job_phase,
               to_status dms_job_status, to_phase dms_job_phase, removed boolean)
LANGUAGE sql AS $$
    WITH RECURSIVE reach(m, s, p) AS (
        SELECT m, 'not_started'::dms_job_status, NULL::dms_job_phase
          FROM unnest(enum_range(NULL::dms_migration_type)) m
        UNION
        SELECT r.m, (t).to_status, (t).to_phase
          FROM reach r, rw.kind_name n,
               LATERAL (SELECT rw.model_next(n.kind, n.name, r.s, r.p, r.m) AS t) x
         WHERE (t).to_status IS NOT NULL
    )
    SELECT rw.edge_key(r.m, n.kind, n.name, r.s, r.p), r.m, n.kind, n.name, r.s, r.p,
           (t).to_status, (t).to_phase, (t).removed
      FROM reach r, rw.kind_name n,
           LATERAL (SELECT rw.model_next(n.kind, n.name, r.s, r.p, r.m) AS t) x
     WHERE (t).removed IS NOT NULL
$$;

-- What the model knows of one job (one slot of the walk).
CREATE TYPE rw.job AS (
    slot int,
    id bigint,
    name text,
    migration_type dms_migration_type,
    status dms_job_status,
    phase dms_job_phase,
    databases text[],
    dump_parallelism dms_dump_parallelism,
    pending_dump_parallelism dms_dump_parallelism,
    error_message text,
    failures jsonb,            -- {database: message} of its dms_job_failure rows
    present boolean            -- false once deleted
);

-- One call: fn is start, stop, resume, restart, promote, delete, set_par, add_db,
-- remove_db or report; variant says how the walk chose it.
CREATE TYPE rw.op AS (
    fn text,
    job_id bigint,
    event dms_event,
    message text,
    database_name text,
    level dms_dump_parallelism,
    variant text
);

-- What the model expects of a call.
CREATE TYPE rw.expect AS (
    codes text[],      -- '{}': succeeds; else one of these SQLSTATEs (more than one only
                       -- where the SPEC leaves the order of its checks open)
    job rw.job,        -- the job afterwards
    ret text,          -- the return value, as text
    causes text[],     -- the causes of the history rows it writes, in order
    edges text[],      -- the edges it takes (rw.edge_key)
    notes text[]       -- the situations it meets (rw.situation)
);

-- SPEC 5/7: a job or database name is 1 to 63 characters, not blank, no control characters.
CREATE FUNCTION rw.good_name(n text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT length(n) BETWEEN 1 AND 63 AND btrim(n) <> '' AND n !~ '[[:cntrl:]]'
$$;

CREATE FUNCTION rw.kind_of(o rw.op) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN o.fn = 'report' THEN 'event' ELSE 'action' END
$$;

CREATE FUNCTION rw.name_of(o rw.op) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN o.fn = 'report' THEN o.event::text
                WHEN o.fn IN ('set_par', 'add_db', 'remove_db') THEN 'edit'
                ELSE o.fn END
$$;

-- The model of one call on job j (j.present false: the id names no job).  notes name
-- the situations the call meets (rw.situation lists them all), for the coverage report.
CREATE FUNCTION rw.model_expect(j rw.job, o rw.op) RETURNS rw.expect
LANGUAGE plpgsql AS $$
DECLARE
    e rw.expect;
    n rw.job := j;
    t rw.target;
    kind text := rw.kind_of(o);
    name text := rw.name_of(o);
    codes text[] := '{}';
    notes text[] := '{}';
    state_refused boolean;
BEGIN
    e.causes := '{}';
    e.edges := '{}';
    e.job := j;

    -- SPEC 6: "All functions raise a clear error on NULL arguments" (22004, SPEC 7).
    -- Without a job id or an event nothing else can be checked.
    IF o.job_id IS NULL OR (o.fn = 'report' AND o.event IS NULL) THEN
        e.codes := '{22004}';
        e.notes := '{"refused: NULL job id or event"}';
        RETURN e;
    END IF;

    -- SPEC 4.1: may this call's edge start here?  add_db and remove_db: SPEC 6 "only in
    -- not_started, stopped, failed" (for remove_db the same, helper-context decision:
    -- "dms_add_database/dms_remove_database while the job is running: 55000").
    IF j.present THEN
        t := rw.model_next(kind, name, j.status, j.phase, j.migration_type);
        state_refused := t IS NULL
            OR (o.fn IN ('add_db', 'remove_db')
                AND j.status NOT IN ('not_started', 'stopped', 'failed'));
    END IF;

    -- A NULL level or database name: 22004, or whatever the SPEC checks first.
    IF (o.fn = 'set_par' AND o.level IS NULL)
       OR (o.fn IN ('add_db', 'remove_db') AND o.database_name IS NULL) THEN
        e.codes := '{22004}';
        e.notes := '{"refused: NULL level or database"}';
        IF NOT j.present THEN
            e.codes := e.codes || 'P0002'::text;
        ELSIF state_refused THEN
            e.codes := e.codes || '55000'::text;
        END IF;
        RETURN e;
    END IF;

    -- SPEC 7: bad argument values that need no job (22023).
    IF o.fn = 'report' THEN
        IF o.event IN ('error', 'failed') AND coalesce(o.message, '') = '' THEN
            codes := codes || '22023'::text;     -- SPEC 4.2: "error and failed require a non-empty message"
            notes := notes || 'refused: error or failed without a message'::text;
        END IF;
        IF o.database_name IS NOT NULL AND o.event <> 'failed' THEN
            codes := codes || '22023'::text;     -- a database goes only with failed (SPEC 6)
            notes := notes || 'refused: a database with an event other than failed'::text;
        ELSIF o.database_name IS NOT NULL AND NOT rw.good_name(o.database_name) THEN
            codes := codes || '22023'::text;
            notes := notes || 'refused: bad database name'::text;
        END IF;
    ELSIF o.fn IN ('add_db', 'remove_db') AND NOT rw.good_name(o.database_name) THEN
        codes := codes || '22023'::text;
        notes := notes || 'refused: bad database name'::text;
    END IF;

    IF NOT j.present THEN
        e.codes := codes || 'P0002'::text;       -- SPEC 7: the job does not exist
        e.notes := notes || 'refused: no such job'::text;
        RETURN e;
    END IF;

    -- SPEC 6 / 7: argument values that depend on the job (22023).
    IF o.fn IN ('add_db', 'remove_db') THEN
        IF j.databases IS NULL THEN
            codes := codes || '22023'::text;
            notes := notes || 'refused: database list of a job that migrates all databases'::text;
        ELSIF o.fn = 'add_db' AND o.database_name = ANY (j.databases) THEN
            codes := codes || '22023'::text;
            notes := notes || 'refused: add a database already there'::text;
        ELSIF o.fn = 'remove_db' AND NOT o.database_name = ANY (j.databases) THEN
            codes := codes || '22023'::text;
            notes := notes || 'refused: remove a database not there'::text;
        ELSIF o.fn = 'remove_db' AND cardinality(j.databases) = 1 THEN
            codes := codes || '22023'::text;     -- "a job must keep at least one database"
            notes := notes || 'refused: remove the only database'::text;
        END IF;
    END IF;
    IF o.fn = 'report' AND o.event = 'failed' AND o.database_name IS NOT NULL
       AND j.databases IS NOT NULL AND NOT o.database_name = ANY (j.databases) THEN
        codes := codes || '22023'::text;         -- SPEC 5: "must be one of the job's databases"
        notes := notes || 'refused: failure of a database the job does not migrate'::text;
    END IF;

    IF state_refused THEN
        codes := codes || '55000'::text;
        IF t IS NOT NULL THEN
            notes := notes || 'refused: database list edited while running'::text;
        ELSE
            notes := notes || 'refused: no such edge from this state'::text;
        END IF;
    END IF;
    IF codes <> '{}' THEN
        e.codes := ARRAY(SELECT DISTINCT c FROM unnest(codes) c ORDER BY c);
        e.notes := notes;
        RETURN e;                                -- SPEC 7: a failed call changes nothing
    END IF;

    -- The call succeeds: one edge, one history row (two for a recovering remove).
    e.codes := '{}';
    e.edges := ARRAY[rw.edge_key(j.migration_type, kind, name, j.status, j.phase)];
    e.causes := ARRAY[name];
    IF t.removed THEN
        n.present := false;
        n.failures := '{}';                      -- SPEC 5: cascade on delete
        IF j.failures <> '{}' THEN
            notes := notes || 'job with failure rows deleted'::text;
        END IF;
        e.job := n;
        e.ret := 'true';
        e.notes := notes;
        RETURN e;
    END IF;
    n.status := t.to_status;
    n.phase := t.to_phase;

    CASE o.fn
    WHEN 'restart' THEN                          -- SPEC 6: applies pending_dump_parallelism
        n.dump_parallelism := coalesce(j.pending_dump_parallelism, j.dump_parallelism);
        n.pending_dump_parallelism := NULL;
        IF j.pending_dump_parallelism IS NOT NULL THEN
            notes := notes || 'restart applies a pending dump parallelism'::text;
        END IF;
    WHEN 'set_par' THEN                          -- SPEC 6: immediate when not_started, else pending
        IF j.status = 'not_started' THEN
            n.dump_parallelism := o.level;
            notes := notes || 'dump parallelism set at once'::text;
        ELSE
            n.pending_dump_parallelism := o.level;
            notes := notes || 'dump parallelism pending until restart'::text;
        END IF;
    WHEN 'add_db' THEN
        n.databases := j.databases || o.database_name;
        notes := notes || 'database added'::text;
    WHEN 'remove_db' THEN                        -- SPEC 6: drops its failure row
        n.databases := array_remove(j.databases, o.database_name);
        IF NOT j.failures ? o.database_name THEN
            notes := notes || 'database without a failure removed'::text;
        ELSE
            n.failures := j.failures - o.database_name;
            -- SPEC 5: the last failure row of a failed job removed with its database, and
            -- no job-level error_message: the job returns to running (edge recovered).
            IF n.failures <> '{}' THEN
                notes := notes || 'failed database removed, others still failed'::text;
            ELSIF j.error_message IS NOT NULL THEN
                notes := notes || 'last failed database removed, job-level error keeps it failed'::text;
            ELSE
                t := rw.model_next('event', 'recovered', j.status, j.phase, j.migration_type);
                n.status := t.to_status;
                n.phase := t.to_phase;
                e.causes := e.causes || 'recovered'::text;
                e.edges := e.edges
                    || rw.edge_key(j.migration_type, 'event', 'recovered', j.status, j.phase);
                notes := notes || 'last failed database removed: recovered'::text;
            END IF;
        END IF;
    WHEN 'report' THEN
        IF o.event = 'error' THEN                -- SPEC 4.2: the message is replaced
            n.error_message := o.message;
            IF j.status = 'running_with_errors' THEN
                notes := notes || 'error message replaced'::text;
            END IF;
        ELSIF o.event = 'failed' AND o.database_name IS NULL THEN
            n.error_message := o.message;        -- SPEC 5: the job-level error of failed
            notes := notes || CASE WHEN j.status = 'failed' THEN 'job-level failure of a failed job'
                                   ELSE 'job-level failure' END;
        ELSIF o.event = 'failed' THEN            -- SPEC 5: a second failure updates its row
            n.failures := jsonb_set(j.failures, ARRAY[o.database_name], to_jsonb(o.message));
            -- SPEC 5: error_message is "the job-level error of running_with_errors or
            -- failed": in failed that is a job-level failure's message.  A job that fails
            -- because of one database has none, whatever error it had while running with
            -- errors (the SPEC does not say it is kept); a failed job keeps its own.
            IF j.status <> 'failed' THEN
                n.error_message := NULL;
            END IF;
            notes := notes || CASE
                WHEN j.failures ? o.database_name THEN 'the same database fails again'
                WHEN j.status = 'failed' AND j.error_message IS NOT NULL
                    THEN 'a database fails in a job failed at job level'
                WHEN j.status = 'failed' THEN 'another database fails'
                WHEN j.status = 'running_with_errors' THEN 'a database fails while running with errors'
                ELSE 'a database fails' END;
            IF j.databases IS NULL THEN
                notes := notes || 'a database of a job that migrates all databases fails'::text;
            END IF;
        ELSIF o.message IS NOT NULL THEN
            notes := notes || 'event with a message'::text;
        ELSE
            notes := notes || 'event without a message'::text;
        END IF;
    ELSE
        NULL;
    END CASE;

    -- SPEC 5: error_message is the job-level error of running_with_errors or failed, else NULL.
    IF n.status NOT IN ('running_with_errors', 'failed') THEN
        n.error_message := NULL;
    END IF;
    -- SPEC 5: pending_dump_parallelism is "set by an edit that waits for a restart, else
    -- NULL"; a completed job has no restart to wait for (SPEC 4.3: Completed offers Delete only).
    IF n.status = 'completed' AND j.pending_dump_parallelism IS NOT NULL THEN
        n.pending_dump_parallelism := NULL;
        notes := notes || 'completed job drops its pending dump parallelism'::text;
    END IF;
    -- SPEC 5: when the job leaves failed its failure rows go.
    IF j.status = 'failed' AND n.status <> 'failed' THEN
        n.failures := '{}';
        IF j.failures <> '{}' AND o.fn <> 'remove_db' THEN
            notes := notes || ('failure rows cleared by ' || name);
        END IF;
    END IF;
    e.job := n;
    e.ret := n.status::text;
    e.notes := notes;
    RETURN e;
END
$$;

-- Every situation rw.model_expect can name; the walk must meet each.
CREATE VIEW rw.situation AS
    SELECT * FROM (VALUES
        ('refused: NULL job id or event'),
        ('refused: NULL level or database'),
        ('refused: error or failed without a message'),
        ('refused: a database with an event other than failed'),
        ('refused: bad database name'),
        ('refused: no such job'),
        ('refused: database list of a job that migrates all databases'),
        ('refused: add a database already there'),
        ('refused: remove a database not there'),
        ('refused: remove the only database'),
        ('refused: failure of a database the job does not migrate'),
        ('refused: database list edited while running'),
        ('refused: no such edge from this state'),
        ('job with failure rows deleted'),
        ('restart applies a pending dump parallelism'),
        ('completed job drops its pending dump parallelism'),
        ('dump parallelism set at once'),
        ('dump parallelism pending until restart'),
        ('database added'),
        ('database without a failure removed'),
        ('failed database removed, others still failed'),
        ('last failed database removed, job-level error keeps it failed'),
        ('last failed database removed: recovered'),
        ('error message replaced'),
        ('job-level failure'),
        ('job-level failure of a failed job'),
        ('the same database fails again'),
        ('a database fails in a job failed at job level'),
        ('another database fails'),
        ('a database fails while running with errors'),
        ('a database fails'),
        ('a database of a job that migrates all databases fails'),
        ('event with a message'),
        ('event without a message'),
        ('failure rows cleared by restart'),
        ('failure rows cleared by recovered'),
        ('failure rows cleared by promote')
    ) v (situation);

--------------------------------------------------------------------------
-- The walk's records
--------------------------------------------------------------------------

CREATE TABLE rw.run (
    seed float8, steps int, jobs int,
    steps_done int, mismatches int, seconds numeric
);

CREATE TABLE rw.mismatch (
    no serial PRIMARY KEY,
    step int,
    slot int,
    call text,          -- the call, as SQL
    variant text,
    before text,        -- the model's job before the call
    expected text,      -- codes, return value, history causes
    differences text[]  -- one line per thing that differs: what, expected, actual
);

CREATE UNLOGGED TABLE rw.step_log (
    step int,
    variant text,
    kind text,
    name text,
    fn text,
    expected_codes text[],
    actual_code text,       -- '' for success
    edges text[],           -- edges taken (as the model names them)
    notes text[],           -- situations met (rw.situation)
    matched boolean         -- the extension did what the model expected
);

CREATE TABLE rw.edge (
    no int PRIMARY KEY,
    key text UNIQUE,
    migration_type dms_migration_type, kind text, name text,
    from_status dms_job_status, from_phase dms_job_phase,
    to_status dms_job_status, to_phase dms_job_phase, removed boolean,
    taken bigint NOT NULL DEFAULT 0
);

-- How often each edge was taken, in the words of the SPEC.
CREATE VIEW rw.edge_coverage AS
    SELECT migration_type, kind, name,
           from_status || coalesce(' (' || from_phase || ')', '') AS "from",
           CASE WHEN removed THEN '(row removed)'
                ELSE to_status || coalesce(' (' || to_phase || ')', '') END AS "to",
           taken
      FROM rw.edge ORDER BY no;

-- Per action and event: calls the model and the extension both accepted, and calls both
-- refused because of the job's state (55000 and nothing else possible).
CREATE VIEW rw.kind_name_coverage AS
    SELECT n.kind, n.name,
           count(*) FILTER (WHERE l.actual_code = '' AND l.expected_codes = '{}') AS accepted,
           count(*) FILTER (WHERE l.actual_code = '55000' AND l.expected_codes = '{55000}') AS refused
      FROM rw.kind_name n LEFT JOIN rw.step_log l USING (kind, name)
     GROUP BY n.kind, n.name;

-- How often the walk met each situation (and the extension did what the model expected).
CREATE VIEW rw.situation_coverage AS
    SELECT s.situation, count(l.step) AS steps
      FROM rw.situation s LEFT JOIN
           (SELECT step, unnest(notes) AS note FROM rw.step_log WHERE matched) l ON l.note = s.situation
     GROUP BY s.situation ORDER BY min(l.step) NULLS LAST, s.situation;

-- Per function and way of choosing: how the calls ended.
CREATE VIEW rw.outcome AS
    SELECT fn, variant, coalesce(nullif(actual_code, ''), 'ok') AS outcome, count(*) AS calls
      FROM rw.step_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

--------------------------------------------------------------------------
-- Reading the extension's state
--------------------------------------------------------------------------

-- The job as the extension has it, in the model's terms (present false if no row).
CREATE FUNCTION rw.actual_job(slot int, job_id bigint) RETURNS rw.job
LANGUAGE plpgsql AS $$
DECLARE
    a rw.job;
BEGIN
    SELECT slot, j.id, j.name, j.migration_type, j.status, j.phase, j.databases,
           j.dump_parallelism, j.pending_dump_parallelism, j.error_message,
           coalesce((SELECT jsonb_object_agg(f.database_name, f.error_message)
                       FROM dms_job_failure f WHERE f.job_id = j.id), '{}'),
           true
      INTO a FROM dms_job j WHERE j.id = job_id;
    IF NOT FOUND THEN
        a := ROW(slot, job_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', false);
        a.failures := coalesce((SELECT jsonb_object_agg(f.database_name, f.error_message)
                                  FROM dms_job_failure f WHERE f.job_id = actual_job.job_id), '{}');
    END IF;
    RETURN a;
END
$$;

-- Where the extension's job differs from the model's: one line per difference.
CREATE FUNCTION rw.compare_job(m rw.job) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    a rw.job := rw.actual_job(m.slot, m.id);
    d text[] := '{}';
    allowed dms_action[];
    bad_phases bigint;
BEGIN
    IF a.present IS DISTINCT FROM m.present THEN
        d := d || format('row present: expected %s, actual %s', m.present, a.present);
    END IF;
    IF a.failures IS DISTINCT FROM m.failures THEN
        d := d || format('failure rows: expected %s, actual %s', m.failures, a.failures);
    END IF;
    IF NOT (m.present AND a.present) THEN
        RETURN d;
    END IF;
    IF (a.name, a.migration_type) IS DISTINCT FROM (m.name, m.migration_type) THEN
        d := d || format('name, type: expected %s %s, actual %s %s',
                         m.name, m.migration_type, a.name, a.migration_type);
    END IF;
    IF (a.status, a.phase) IS DISTINCT FROM (m.status, m.phase) THEN
        d := d || format('status (phase): expected %s (%s), actual %s (%s)',
                         m.status, m.phase, a.status, a.phase);
    END IF;
    IF a.databases IS DISTINCT FROM m.databases THEN
        d := d || format('databases: expected %s, actual %s', m.databases, a.databases);
    END IF;
    IF (a.dump_parallelism, a.pending_dump_parallelism)
       IS DISTINCT FROM (m.dump_parallelism, m.pending_dump_parallelism) THEN
        d := d || format('dump parallelism (pending): expected %s (%s), actual %s (%s)',
                         m.dump_parallelism, m.pending_dump_parallelism,
                         a.dump_parallelism, a.pending_dump_parallelism);
    END IF;
    IF a.error_message IS DISTINCT FROM m.error_message THEN
        d := d || format('error_message: expected %L, actual %L', m.error_message, a.error_message);
    END IF;
    -- SPEC 3: the phase of failed is the phase the job failed in; a failure row records
    -- "the phase in which this database failed", which is that phase.
    SELECT count(*) INTO bad_phases FROM dms_job_failure f
     WHERE f.job_id = m.id AND f.phase IS DISTINCT FROM a.phase;
    IF bad_phases > 0 THEN
        d := d || format('failure rows: %s with a phase other than the job''s %s', bad_phases, a.phase);
    END IF;
    allowed := dms_allowed_actions(m.id);
    IF allowed IS DISTINCT FROM rw.model_allowed(m.status, m.phase) THEN
        d := d || format('dms_allowed_actions: expected %s, actual %s',
                         rw.model_allowed(m.status, m.phase), allowed);
    END IF;
    RETURN d;
END
$$;

CREATE FUNCTION rw.job_text(j rw.job) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN NOT j.present THEN format('job %s: no such job', j.id)
           ELSE format('job %s %s (%s): %s (%s), databases %s, parallelism %s (pending %s), error_message %L, failures %s',
                       j.id, j.name, j.migration_type, j.status, coalesce(j.phase::text, '-'),
                       coalesce(j.databases::text, 'all'), j.dump_parallelism,
                       coalesce(j.pending_dump_parallelism::text, '-'), j.error_message, j.failures)
           END
$$;

CREATE FUNCTION rw.op_text(o rw.op) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE o.fn
        WHEN 'report' THEN format('dms_report(%s, %L, %L, %L)', coalesce(o.job_id::text, 'NULL'),
                                  o.event, o.message, o.database_name)
        WHEN 'set_par' THEN format('dms_set_dump_parallelism(%s, %L)',
                                   coalesce(o.job_id::text, 'NULL'), o.level)
        WHEN 'add_db' THEN format('dms_add_database(%s, %L)', coalesce(o.job_id::text, 'NULL'),
                                  o.database_name)
        WHEN 'remove_db' THEN format('dms_remove_database(%s, %L)',
                                     coalesce(o.job_id::text, 'NULL'), o.database_name)
        ELSE format('dms_%s(%s)', o.fn, coalesce(o.job_id::text, 'NULL'))
    END
$$;

--------------------------------------------------------------------------
-- Choosing the next call
--------------------------------------------------------------------------

CREATE FUNCTION rw.pick(a anyarray) RETURNS anyelement LANGUAGE sql VOLATILE AS $$
    SELECT a[1 + floor(random() * cardinality(a))::int]
$$;

-- The database names jobs are made of; the last one is as long as a name may be.
CREATE FUNCTION rw.pool() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['sales', 'orders', 'users', 'audit', 'billing', repeat('d', 63)]
$$;

CREATE FUNCTION rw.some_message(step int) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN random() < 0.5 THEN NULL ELSE 'message of step ' || step END
$$;

-- Any call at all on job j, with arguments that are usually well formed; most are refused.
CREATE FUNCTION rw.any_op(j rw.job, step int) RETURNS rw.op
LANGUAGE plpgsql AS $$
DECLARE
    o rw.op;
    f text := rw.pick(ARRAY['start', 'stop', 'resume', 'restart', 'promote', 'delete',
                            'set_par', 'add_db', 'remove_db', 'report', 'report', 'report',
                            'report', 'report', 'report']);
BEGIN
    o.fn := f;
    o.job_id := j.id;
    o.variant := 'any';
    CASE f
    WHEN 'set_par' THEN
        o.level := rw.pick(enum_range(NULL::dms_dump_parallelism));
    WHEN 'add_db', 'remove_db' THEN
        o.database_name := rw.pick(rw.pool());
    WHEN 'report' THEN
        o.event := rw.pick(enum_range(NULL::dms_event));
        o.message := rw.some_message(step);
        IF o.event = 'failed' AND random() < 0.5 THEN
            o.database_name := rw.pick(coalesce(j.databases, rw.pool()));
        END IF;
    ELSE
        NULL;
    END CASE;
    RETURN o;
END
$$;

-- A call with a bad argument value (SPEC 7: 22023), whatever the job's state.
CREATE FUNCTION rw.bad_arg_op(j rw.job, step int) RETURNS rw.op
LANGUAGE plpgsql AS $$
DECLARE
    o rw.op;
    v int := floor(random() * 8)::int;
    bad_names CONSTANT text[] := ARRAY['', '   ', repeat('x', 64), E'tab\there'];
BEGIN
    o.job_id := j.id;
    o.fn := 'report';
    CASE v
    WHEN 0 THEN                                  -- error or failed without a message
        o.variant := 'no message';
        o.event := rw.pick('{error,failed}'::dms_event[]);
        o.message := rw.pick(ARRAY[NULL, '']);
    WHEN 1 THEN                                  -- a database with an event other than failed
        o.variant := 'database with event';
        o.event := rw.pick(ARRAY(SELECT e FROM unnest(enum_range(NULL::dms_event)) e WHERE e <> 'failed'));
        o.message := rw.some_message(step);
        o.database_name := rw.pick(coalesce(j.databases, rw.pool()));
    WHEN 2 THEN                                  -- a database failed that the job does not migrate
        o.variant := 'failed unknown database';
        o.event := 'failed';
        o.message := 'message of step ' || step;
        o.database_name := 'nosuchdb';
    WHEN 3 THEN                                  -- add a database the job already has
        o.variant := 'add present database';
        o.fn := 'add_db';
        o.database_name := rw.pick(coalesce(j.databases, rw.pool()));
    WHEN 4 THEN                                  -- remove a database the job does not have
        o.variant := 'remove unknown database';
        o.fn := 'remove_db';
        o.database_name := 'nosuchdb';
    WHEN 5 THEN                                  -- remove the only database
        o.variant := 'remove only database';
        o.fn := 'remove_db';
        o.database_name := rw.pick(coalesce(j.databases, rw.pool()));
    ELSE                                         -- a malformed database name
        o.variant := 'bad database name';
        o.fn := rw.pick(ARRAY['add_db', 'remove_db', 'report']);
        o.database_name := rw.pick(bad_names);
        IF o.fn = 'report' THEN
            o.event := 'failed';
            o.message := 'message of step ' || step;
        END IF;
    END CASE;
    RETURN o;
END
$$;

-- A call with one NULL argument (SPEC 6: 22004).
CREATE FUNCTION rw.null_op(j rw.job, step int) RETURNS rw.op
LANGUAGE plpgsql AS $$
DECLARE
    o rw.op := rw.any_op(j, step);
    v int := floor(random() * 4)::int;
BEGIN
    o.variant := 'null argument';
    IF v = 0 THEN
        o.job_id := NULL;
    ELSIF v = 1 THEN
        o.fn := 'report';
        o.event := NULL;
    ELSIF v = 2 THEN
        o.fn := 'set_par';
        o.level := NULL;
    ELSE
        o.fn := rw.pick(ARRAY['add_db', 'remove_db']);
        o.database_name := NULL;
        o.event := NULL;
    END IF;
    RETURN o;
END
$$;

-- A call that takes the edge (kind, name) from j's state (the model accepts it there).
CREATE FUNCTION rw.edge_op(j rw.job, step int, kind text, name text) RETURNS rw.op
LANGUAGE plpgsql AS $$
DECLARE
    o rw.op;
    options text[];
    editable boolean := j.status IN ('not_started', 'stopped', 'failed') AND j.databases IS NOT NULL;
BEGIN
    o.job_id := j.id;
    o.variant := 'guided';
    IF kind = 'event' THEN
        o.fn := 'report';
        o.event := name;
        o.message := rw.some_message(step);
        IF o.event IN ('error', 'failed') THEN
            o.message := 'message of step ' || step;
        END IF;
        IF o.event = 'failed' AND (random() < 0.5 OR j.failures <> '{}') THEN
            o.database_name := rw.pick(coalesce(j.databases, rw.pool()));
            IF j.status = 'failed' AND random() < 0.7 THEN
                -- more than one failed database, so that removing one leaves others
                o.database_name := coalesce(rw.pick(ARRAY(
                    SELECT d FROM unnest(coalesce(j.databases, rw.pool())) d
                     WHERE NOT j.failures ? d)), o.database_name);
            END IF;
        END IF;
        -- The other way to recover (SPEC 5): remove the last failed database.
        IF o.event = 'recovered' AND j.error_message IS NULL AND editable
           AND cardinality(j.databases) > 1
           AND (SELECT count(*) FROM jsonb_object_keys(j.failures)) = 1
           AND random() < 0.5 THEN
            o := ROW('remove_db', j.id, NULL, NULL,
                     (SELECT k FROM jsonb_object_keys(j.failures) k), NULL, 'guided')::rw.op;
        END IF;
    ELSIF name = 'edit' THEN
        options := '{set_par}';
        IF editable AND EXISTS (SELECT FROM unnest(rw.pool()) p WHERE NOT p = ANY (j.databases)) THEN
            options := options || 'add_db'::text;
        END IF;
        IF editable AND cardinality(j.databases) > 1 THEN
            options := options || 'remove_db'::text;
        END IF;
        o.fn := rw.pick(options);
        IF j.failures <> '{}' AND 'remove_db' = ANY (options) AND random() < 0.7 THEN
            o.fn := 'remove_db';                 -- SPEC 5's way out of failed: see below
        END IF;
        IF o.fn = 'set_par' THEN
            o.level := rw.pick(enum_range(NULL::dms_dump_parallelism));
        ELSIF o.fn = 'add_db' THEN
            o.database_name := rw.pick(ARRAY(SELECT p FROM unnest(rw.pool()) p
                                              WHERE NOT p = ANY (j.databases)));
        ELSE
            o.database_name := rw.pick(j.databases);
            IF j.failures <> '{}' AND random() < 0.8 THEN
                -- most often a failed one: SPEC 5's way out of failed
                o.database_name := coalesce(rw.pick(ARRAY(
                    SELECT d FROM unnest(j.databases) d WHERE j.failures ? d)), o.database_name);
            END IF;
        END IF;
    ELSE
        o.fn := name;
    END IF;
    RETURN o;
END
$$;

-- One of the edges (numbers) that start at j's state, the less taken the likelier:
-- weight 1 / (1 + taken)^2.
CREATE FUNCTION rw.pick_edge(choices int[], taken bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    total float8 := 0;
    r float8;
    i int;
BEGIN
    FOREACH i IN ARRAY choices LOOP
        total := total + 1.0 / ((1 + taken[i]) * (1 + taken[i]));
    END LOOP;
    r := random() * total;
    FOREACH i IN ARRAY choices LOOP
        r := r - 1.0 / ((1 + taken[i]) * (1 + taken[i]));
        EXIT WHEN r <= 0;
    END LOOP;
    RETURN i;
END
$$;

-- For steering: from each state to each other state of a migration type, the edges that
-- begin a shortest path (deletes and self-loops left out), as {"type from to": [edge no]}.
CREATE FUNCTION rw.first_steps() RETURNS jsonb
LANGUAGE sql AS $$
    WITH RECURSIVE moves AS (
        SELECT no, migration_type AS m, from_status AS fs, from_phase AS fp,
               to_status AS ts, to_phase AS tp
          FROM rw.edge
         WHERE NOT removed AND (from_status, from_phase) IS DISTINCT FROM (to_status, to_phase)
    ), paths(m, ss, sp, ds, dp, d, first) AS (
        SELECT m, fs, fp, ts, tp, 1, no FROM moves
        UNION
        SELECT p.m, p.ss, p.sp, mv.ts, mv.tp, p.d + 1, p.first
          FROM paths p JOIN moves mv
            ON mv.m = p.m AND mv.fs = p.ds AND mv.fp IS NOT DISTINCT FROM p.dp
         WHERE p.d < 10
    ), best AS (
        SELECT *, min(d) OVER (PARTITION BY m, ss, sp, ds, dp) AS shortest FROM paths
    )
    SELECT jsonb_object_agg(k, firsts) FROM (
        SELECT m || ' ' || ss || ' ' || coalesce(sp::text, '-') || ' '
                 || ds || ' ' || coalesce(dp::text, '-') AS k,
               jsonb_agg(DISTINCT first) AS firsts
          FROM best WHERE d = shortest GROUP BY 1) x
$$;

--------------------------------------------------------------------------
-- The walk
--------------------------------------------------------------------------

-- Creates the job of a slot (generation gen) and checks the creation; returns the model
-- of the new job and, in diffs, what differed.
CREATE FUNCTION rw.create_job(slot int, gen int, last_history bigint, OUT job rw.job,
                              OUT diffs text[], OUT history_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    dbs text[];
    h record;
BEGIN
    job.slot := slot;
    job.name := format('walk job %s.%s', slot, gen);
    job.migration_type := rw.pick(enum_range(NULL::dms_migration_type));
    IF random() < 0.25 THEN
        dbs := NULL;                             -- all databases of the source
    ELSE
        dbs := ARRAY(SELECT p FROM unnest(rw.pool()) p ORDER BY random()
                      LIMIT 1 + floor(random() * 3)::int);
    END IF;
    job.databases := dbs;
    job.dump_parallelism := rw.pick(enum_range(NULL::dms_dump_parallelism));
    job.status := 'not_started';
    job.failures := '{}';
    job.present := true;
    job.id := dms_create_job(job.name, job.migration_type, dbs, job.dump_parallelism);
    diffs := rw.compare_job(job);
    SELECT count(*) AS n, bool_and(x.job_id = job.id AND x.cause = 'create'
                                   AND x.to_status = 'not_started' AND x.to_phase IS NULL) AS ok,
           max(x.id) AS last
      INTO h FROM (SELECT * FROM dms_job_history y WHERE y.id > last_history
                    ORDER BY y.id LIMIT 100) x;
    IF h.n <> 1 OR NOT h.ok THEN
        diffs := diffs || format('history of create: expected one create row for job %s, got %s rows',
                                 job.id, h.n);
    END IF;
    history_id := coalesce(h.last, last_history);
END
$$;

CREATE PROCEDURE rw.walk(seed float8, steps int, jobs int DEFAULT 8, commit_every int DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    m rw.job[];
    j rw.job;
    a rw.job;
    o rw.op;
    e rw.expect;
    c record;
    h record;
    s int;
    i int;
    step int;
    gen int := 0;
    r float8;
    ret text;
    code text;
    err text;
    diffs text[];
    n_mismatch int := 0;
    last_history bigint;
    missing_id bigint := 1000000000000;     -- no job has this id until one is deleted
    edge_keys text[];
    edge_kind text[];
    edge_name text[];
    edge_from jsonb;
    edge_taken bigint[];
    from_key text;
    allowed dms_action[];
    after rw.job;
    choices int[];
    first_steps jsonb;
    edge_from_state text[];
    edge_type dms_migration_type[];
    target int;
BEGIN
    PERFORM setseed(seed);
    DELETE FROM rw.run;
    DELETE FROM rw.mismatch;
    TRUNCATE rw.step_log;
    DELETE FROM rw.edge;
    INSERT INTO rw.edge (no, key, migration_type, kind, name, from_status, from_phase,
                         to_status, to_phase, removed)
        SELECT row_number() OVER (ORDER BY x.migration_type, x.from_status, x.from_phase NULLS FIRST,
                                           x.kind, x.name),
               x.* FROM rw.model_edges() x;
    SELECT array_agg(key ORDER BY no), array_agg(kind ORDER BY no), array_agg(name ORDER BY no),
           array_agg(0::bigint ORDER BY no)
      INTO edge_keys, edge_kind, edge_name, edge_taken FROM rw.edge;
    SELECT jsonb_object_agg(k, nos) INTO edge_from FROM (
        SELECT migration_type || ' ' || from_status || ' ' || coalesce(from_phase::text, '-') AS k,
               jsonb_agg(no ORDER BY no) AS nos
          FROM rw.edge GROUP BY 1) x;
    SELECT array_agg(from_status || ' ' || coalesce(from_phase::text, '-') ORDER BY no),
           array_agg(migration_type ORDER BY no)
      INTO edge_from_state, edge_type FROM rw.edge;
    first_steps := rw.first_steps();
    INSERT INTO rw.run VALUES (seed, steps, jobs, 0, 0, NULL);

    SELECT coalesce(max(id), 0) INTO last_history FROM dms_job_history;
    FOR s IN 1..jobs LOOP
        gen := gen + 1;
        SELECT * INTO c FROM rw.create_job(s, gen, last_history);
        m[s] := c.job;
        last_history := c.history_id;
        IF c.diffs <> '{}' THEN
            n_mismatch := n_mismatch + 1;
            INSERT INTO rw.mismatch (step, slot, call, variant, before, expected, differences)
                VALUES (0, s, 'dms_create_job', 'create', NULL, 'a not_started job', c.diffs);
        END IF;
    END LOOP;

    FOR step IN 1..steps LOOP
        s := 1 + floor(random() * jobs)::int;
        j := m[s];
        r := random();
        IF r < 0.03 THEN                         -- a call on a job that does not exist
            o := rw.any_op(j, step);
            o.job_id := missing_id;
            o.variant := 'missing job';
            j := ROW(s, missing_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', false);
        ELSIF r < 0.05 THEN
            o := rw.null_op(j, step);
        ELSIF r < 0.15 THEN
            o := rw.bad_arg_op(j, step);
        ELSIF r < 0.35 THEN
            o := rw.any_op(j, step);
        ELSE
            from_key := j.status || ' ' || coalesce(j.phase::text, '-');
            choices := ARRAY(SELECT jsonb_array_elements_text(
                                        edge_from -> (j.migration_type || ' ' || from_key))::int);
            IF choices = '{}' THEN               -- only after a mismatch put the job off the map
                o := rw.any_op(j, step);
            ELSE
                i := NULL;
                IF r < 0.65 THEN
                    -- steer towards the least taken edge of this migration type: take it if
                    -- it starts here, else the first edge of a shortest path to its start
                    target := NULL;
                    FOR i IN 1..cardinality(edge_keys) LOOP
                        IF edge_type[i] = j.migration_type
                           AND (target IS NULL OR edge_taken[i] < edge_taken[target]) THEN
                            target := i;
                        END IF;
                    END LOOP;
                    IF edge_from_state[target] = from_key THEN
                        i := target;
                    ELSE
                        i := rw.pick(ARRAY(SELECT jsonb_array_elements_text(first_steps ->
                                 (j.migration_type || ' ' || from_key || ' ' || edge_from_state[target]))::int));
                    END IF;
                END IF;
                IF i IS NULL THEN                -- no way there but through delete: wander
                    i := rw.pick_edge(choices, edge_taken);
                END IF;
                IF j.status = 'failed' AND j.failures <> '{}' AND cardinality(j.databases) > 1
                   AND random() < 0.3 THEN
                    -- a failed job with failed databases: often edit it (SPEC 5: removing
                    -- failed databases), the rarest situations of the walk
                    i := (SELECT x.e FROM unnest(choices) x (e) WHERE edge_name[x.e] = 'edit');
                END IF;
                o := rw.edge_op(j, step, edge_kind[i], edge_name[i]);
                IF r < 0.65 THEN
                    o.variant := 'steered';
                END IF;
            END IF;
        END IF;

        e := rw.model_expect(j, o);

        ret := NULL;
        code := '';
        err := NULL;
        BEGIN
            CASE o.fn
            WHEN 'start' THEN ret := dms_start(o.job_id);
            WHEN 'stop' THEN ret := dms_stop(o.job_id);
            WHEN 'resume' THEN ret := dms_resume(o.job_id);
            WHEN 'restart' THEN ret := dms_restart(o.job_id);
            WHEN 'promote' THEN ret := dms_promote(o.job_id);
            WHEN 'delete' THEN ret := dms_delete(o.job_id);
            WHEN 'set_par' THEN ret := dms_set_dump_parallelism(o.job_id, o.level);
            WHEN 'add_db' THEN ret := dms_add_database(o.job_id, o.database_name);
            WHEN 'remove_db' THEN ret := dms_remove_database(o.job_id, o.database_name);
            WHEN 'report' THEN
                IF o.message IS NULL AND o.database_name IS NULL THEN
                    ret := dms_report(o.job_id, o.event);        -- the defaults
                ELSE
                    ret := dms_report(o.job_id, o.event, o.message, o.database_name);
                END IF;
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
        END;

        -- Compare: the outcome, the job, the history rows of this call.
        diffs := '{}';
        IF (code = '' AND e.codes <> '{}') OR (code <> '' AND NOT code = ANY (e.codes)) THEN
            diffs := diffs || format('outcome: expected %s, actual %s',
                                     CASE WHEN e.codes = '{}' THEN 'success' ELSE array_to_string(e.codes, ' or ') END,
                                     CASE WHEN code = '' THEN 'success returning ' || ret
                                          ELSE code || ' ' || err END);
        ELSIF code = '' AND ret IS DISTINCT FROM e.ret THEN
            diffs := diffs || format('return value: expected %s, actual %s', e.ret, ret);
        END IF;
        IF NOT (e.codes = '{}' AND code = '') THEN
            e.job := j;                          -- SPEC 7: a failed call changes nothing
            e.causes := '{}';
            e.edges := '{}';
        END IF;
        after := e.job;
        IF j.present OR e.codes = '{}' THEN
            diffs := diffs || rw.compare_job(e.job);
        ELSIF o.job_id IS NOT NULL THEN
            -- a deleted job's id: still no job, and dms_allowed_actions says so (SPEC 7)
            BEGIN
                allowed := dms_allowed_actions(o.job_id);
                diffs := diffs || format('dms_allowed_actions(%s) of no job: expected P0002, actual %s',
                                         o.job_id, allowed);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err = RETURNED_SQLSTATE;
                IF err <> 'P0002' THEN
                    diffs := diffs || format('dms_allowed_actions(%s) of no job: expected P0002, actual %s',
                                             o.job_id, err);
                END IF;
            END;
        END IF;

        SELECT coalesce(array_agg(x.cause ORDER BY x.id), '{}') AS causes,
               coalesce(bool_and(x.job_id = j.id), true) AS own,
               max(x.id) AS last, min(x.id) AS first
          INTO h FROM (SELECT * FROM dms_job_history y WHERE y.id > last_history
                        ORDER BY y.id LIMIT 100) x;   -- LIMIT: an index scan, even in a generic plan
        IF h.causes IS DISTINCT FROM e.causes OR NOT h.own THEN
            diffs := diffs || format('history rows: expected %s for job %s, actual %s%s',
                                     e.causes, j.id, h.causes,
                                     CASE WHEN h.own THEN '' ELSE ' (some of another job)' END);
        ELSIF e.causes <> '{}' THEN
            -- the rows start where the job was and end where it is (SPEC 5)
            PERFORM FROM dms_job_history x
              WHERE x.id = h.first AND x.from_status = j.status
                AND x.from_phase IS NOT DISTINCT FROM j.phase;
            IF NOT FOUND THEN
                diffs := diffs || format('history row %s does not start at %s (%s)', h.first, j.status, j.phase);
            END IF;
            PERFORM FROM dms_job_history x
              WHERE x.id = h.last
                AND x.to_status IS NOT DISTINCT FROM (CASE WHEN after.present THEN after.status END)
                AND x.to_phase IS NOT DISTINCT FROM (CASE WHEN after.present THEN after.phase END)
                AND (o.fn <> 'report' OR (x.message IS NOT DISTINCT FROM o.message
                                          AND x.database_name IS NOT DISTINCT FROM o.database_name));
            IF NOT FOUND THEN
                diffs := diffs || (SELECT format('history row %s: expected to %s (%s)%s, actual to %s (%s), message %L, database %L',
                                                 x.id, after.status, after.phase,
                                                 CASE WHEN o.fn = 'report'
                                                      THEN format(', message %L, database %L', o.message, o.database_name)
                                                      ELSE '' END,
                                                 x.to_status, x.to_phase, x.message, x.database_name)
                                     FROM dms_job_history x WHERE x.id = h.last);
            END IF;
        END IF;
        last_history := coalesce(h.last, last_history);

        INSERT INTO rw.step_log VALUES (step, o.variant, rw.kind_of(o), rw.name_of(o), o.fn,
                                        e.codes, code, e.edges, e.notes, diffs = '{}');
        FOREACH from_key IN ARRAY e.edges LOOP
            i := array_position(edge_keys, from_key);
            edge_taken[i] := edge_taken[i] + 1;
        END LOOP;

        IF diffs <> '{}' THEN
            n_mismatch := n_mismatch + 1;
            IF n_mismatch <= 20 THEN
                INSERT INTO rw.mismatch (step, slot, call, variant, before, expected, differences)
                    VALUES (step, s, rw.op_text(o), o.variant, rw.job_text(j),
                            format('%s, returns %s, history %s, then %s',
                                   CASE WHEN e.codes = '{}' THEN 'success' ELSE array_to_string(e.codes, ' or ') END,
                                   coalesce(e.ret, '-'), e.causes, rw.job_text(e.job)),
                            diffs);
            END IF;
            -- carry on from the extension's state of this job
            IF j.present THEN
                e.job := rw.actual_job(s, j.id);
            END IF;
        END IF;

        IF j.present THEN
            m[s] := e.job;
        END IF;
        IF j.present AND NOT m[s].present THEN
            -- deleted: its id is now the missing job, and a new job takes the slot
            missing_id := j.id;
            gen := gen + 1;
            SELECT * INTO c FROM rw.create_job(s, gen, last_history);
            m[s] := c.job;
            last_history := c.history_id;
            IF c.diffs <> '{}' THEN
                n_mismatch := n_mismatch + 1;
                IF n_mismatch <= 20 THEN
                    INSERT INTO rw.mismatch (step, slot, call, variant, before, expected, differences)
                        VALUES (step, s, 'dms_create_job', 'create', NULL, 'a not_started job', c.diffs);
                END IF;
            END IF;
        END IF;

        IF step % commit_every = 0 OR step = steps THEN
            -- every job again, and nothing else in the tables
            diffs := '{}';
            FOR i IN 1..jobs LOOP
                diffs := diffs || rw.compare_job(m[i]);
            END LOOP;
            IF (SELECT count(*) FROM dms_job) <> jobs THEN
                diffs := diffs || format('dms_job has %s rows, expected %s',
                                         (SELECT count(*) FROM dms_job), jobs);
            END IF;
            IF (SELECT count(*) FROM dms_job_failure)
               <> (SELECT sum((SELECT count(*) FROM jsonb_object_keys(x.failures))) FROM unnest(m) x) THEN
                diffs := diffs || format('dms_job_failure has %s rows, the model %s',
                    (SELECT count(*) FROM dms_job_failure),
                    (SELECT sum((SELECT count(*) FROM jsonb_object_keys(x.failures))) FROM unnest(m) x));
            END IF;
            IF diffs <> '{}' THEN
                n_mismatch := n_mismatch + 1;
                IF n_mismatch <= 20 THEN
                    INSERT INTO rw.mismatch (step, slot, call, variant, before, expected, differences)
                        VALUES (step, NULL, 'sweep of all jobs', 'sweep', NULL, NULL, diffs);
                END IF;
                FOR i IN 1..jobs LOOP
                    IF m[i].present THEN
                        m[i] := rw.actual_job(i, m[i].id);
                    END IF;
                END LOOP;
            END IF;
            IF step % commit_every = 0
               AND ((step / commit_every) & (step / commit_every - 1)) = 0 THEN
                -- No autovacuum sees the walk's writes (a session reports its statistics
                -- when it goes idle, and the walk never does), so plans made while the
                -- tables were nearly empty would scan them whole for ever after.  ANALYZE
                -- at 1, 2, 4, 8, ... times commit_every steps has the plans made again.
                ANALYZE dms_job, dms_job_history, dms_job_failure;
            END IF;
            UPDATE rw.run SET steps_done = step, mismatches = n_mismatch,
                              seconds = round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
            UPDATE rw.edge SET taken = edge_taken[no];
            COMMIT;
        END IF;
    END LOOP;
END
$$;

-- What the regression test prints: nothing here depends on time.
CREATE VIEW rw.summary AS
    SELECT steps_done, mismatches,
           (SELECT count(*) FROM rw.edge) AS edges,
           (SELECT count(*) FROM rw.edge WHERE taken = 0) AS edges_never_taken,
           (SELECT count(*) FROM rw.kind_name_coverage WHERE accepted = 0 OR refused = 0)
               AS names_not_both_accepted_and_refused,
           (SELECT count(*) FROM rw.situation_coverage WHERE steps = 0) AS situations_never_met
      FROM rw.run;

RESET client_min_messages;
