--
-- labels: the seed's words for statuses, substatuses and actions, and the
-- lifecycle as dms_transitions() lists it, checked against SPEC 3 and 4.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- The seed's "Migration job status" column, one label per status, in enum
-- order (SPEC 6).
SELECT s AS status, dms_status_label(s) AS label
  FROM unnest(enum_range(NULL::dms_job_status)) AS s;

-- The seed's substatuses for every status and every phase, NULL phase
-- included: 'Full dump', 'CDC', 'Promote in progress' for Running and
-- Running with errors, 'Failed in ...' and 'Stopped in ...' for Failed and
-- Stopped, NULL otherwise (SPEC 6).
SELECT s AS status,
       dms_substatus_label(s, NULL) AS "no phase",
       dms_substatus_label(s, 'full_dump') AS full_dump,
       dms_substatus_label(s, 'cdc') AS cdc,
       dms_substatus_label(s, 'promote_in_progress') AS promote_in_progress
  FROM unnest(enum_range(NULL::dms_job_status)) AS s;

-- The label functions are not STRICT (SPEC 6): a NULL status or action
-- is an error naming the argument; a NULL phase is a status without one.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT s AS statement, pg_temp.try(s) AS result
  FROM unnest(ARRAY[
        'SELECT dms_status_label(NULL)',
        'SELECT dms_action_label(NULL)',
        'SELECT dms_substatus_label(NULL, ''cdc'')',
        'SELECT dms_substatus_label(NULL, NULL)',
        'SELECT dms_substatus_label(''completed'', NULL)',
        'SELECT dms_substatus_label(''stopped'', ''cdc'')'
       ]) AS s;

-- The seed's user actions, one label per action, in enum order.
SELECT a AS action, dms_action_label(a) AS label
  FROM unnest(enum_range(NULL::dms_action)) AS a;

-- dms_transitions(): every edge of SPEC 4, one row per (status, phase) it
-- starts from; edits are self-loops, delete goes nowhere, migration_type
-- is NULL where an edge holds for both types.
SELECT kind, name, from_status, from_phase, to_status, to_phase, migration_type
  FROM dms_transitions()
 ORDER BY kind,
          CASE kind WHEN 'action' THEN array_position(enum_range(NULL::dms_action)::text[], name)
                    ELSE array_position(enum_range(NULL::dms_event)::text[], name) END,
          from_status, from_phase NULLS FIRST, migration_type NULLS FIRST;

-- How many edges of each kind, and every name is an action or an event.
SELECT kind, count(*) AS edges, count(DISTINCT name) AS names,
       bool_and(CASE kind WHEN 'action' THEN name = ANY (enum_range(NULL::dms_action)::text[])
                          WHEN 'event' THEN name = ANY (enum_range(NULL::dms_event)::text[])
                END) AS names_known
  FROM dms_transitions()
 GROUP BY kind
 ORDER BY kind;

-- The legal (status, phase) pairs of SPEC 3, written out here.
CREATE TEMP TABLE legal_state (status text, phase text);
INSERT INTO legal_state VALUES
    ('not_started', NULL), ('starting', NULL), ('restarting', NULL), ('completed', NULL),
    ('running', 'full_dump'), ('running', 'cdc'), ('running', 'promote_in_progress'),
    ('running_with_errors', 'full_dump'), ('running_with_errors', 'cdc'),
    ('failed', 'full_dump'), ('failed', 'cdc'),
    ('stopping', 'full_dump'), ('stopping', 'cdc'),
    ('stopped', 'full_dump'), ('stopped', 'cdc'),
    ('resuming', 'cdc');

-- Every edge starts at a legal pair: no row.
SELECT t.kind, t.name, t.from_status, t.from_phase
  FROM dms_transitions() t
 WHERE NOT EXISTS (SELECT FROM legal_state l
                    WHERE l.status = t.from_status::text
                      AND l.phase IS NOT DISTINCT FROM t.from_phase::text);

-- Every edge that does not delete ends at a legal pair: no row.
SELECT t.kind, t.name, t.to_status, t.to_phase
  FROM dms_transitions() t
 WHERE t.to_status IS NOT NULL
   AND NOT EXISTS (SELECT FROM legal_state l
                    WHERE l.status = t.to_status::text
                      AND l.phase IS NOT DISTINCT FROM t.to_phase::text);

-- Only delete goes nowhere, and a deleted job has no phase: no row.
SELECT kind, name, from_status, from_phase, to_phase
  FROM dms_transitions()
 WHERE (to_status IS NULL) <> (kind = 'action' AND name = 'delete')
    OR (to_status IS NULL AND to_phase IS NOT NULL);

-- Every edit is a self-loop: no row.
SELECT name, from_status, from_phase, to_status, to_phase
  FROM dms_transitions()
 WHERE name = 'edit'
   AND (to_status IS DISTINCT FROM from_status OR to_phase IS DISTINCT FROM from_phase);

-- An edge's name is unique for its (from, to) pair, so that a direct
-- UPDATE can be named (SPEC 4): no two edges other than edits share a
-- (from, to) under different names.  No row.
SELECT a.from_status, a.from_phase, a.to_status, a.to_phase, a.name, b.name AS other_name
  FROM dms_transitions() a
  JOIN dms_transitions() b
    ON a.from_status = b.from_status
   AND a.from_phase IS NOT DISTINCT FROM b.from_phase
   AND a.to_status IS NOT DISTINCT FROM b.to_status
   AND a.to_phase IS NOT DISTINCT FROM b.to_phase
   AND a.name < b.name
 WHERE a.name <> 'edit' AND b.name <> 'edit';

-- No edge appears twice (same kind, name, from, to and type): no row.
SELECT kind, name, from_status, from_phase, migration_type, count(*)
  FROM dms_transitions()
 GROUP BY kind, name, from_status, from_phase, to_status, to_phase, migration_type
HAVING count(*) > 1;

-- SPEC 4.1 and 4.2 written out here, the patterns expanded by hand:
-- (kind, name, from status, from phase, to status, to phase, type).
CREATE TEMP TABLE spec_edge (kind text, name text, from_status text, from_phase text,
                             to_status text, to_phase text, migration_type text);
INSERT INTO spec_edge VALUES
    -- 4.1 user actions
    ('action', 'start', 'not_started', NULL, 'starting', NULL, NULL),
    ('action', 'stop', 'running', 'full_dump', 'stopping', 'full_dump', NULL),
    ('action', 'stop', 'running', 'cdc', 'stopping', 'cdc', NULL),
    ('action', 'stop', 'running_with_errors', 'full_dump', 'stopping', 'full_dump', NULL),
    ('action', 'stop', 'running_with_errors', 'cdc', 'stopping', 'cdc', NULL),
    ('action', 'resume', 'stopped', 'cdc', 'resuming', 'cdc', NULL),
    ('action', 'restart', 'running_with_errors', 'full_dump', 'restarting', NULL, NULL),
    ('action', 'restart', 'running_with_errors', 'cdc', 'restarting', NULL, NULL),
    ('action', 'restart', 'failed', 'full_dump', 'restarting', NULL, NULL),
    ('action', 'restart', 'failed', 'cdc', 'restarting', NULL, NULL),
    ('action', 'restart', 'stopped', 'full_dump', 'restarting', NULL, NULL),
    ('action', 'restart', 'stopped', 'cdc', 'restarting', NULL, NULL),
    ('action', 'promote', 'running', 'cdc', 'running', 'promote_in_progress', NULL),
    ('action', 'promote', 'running_with_errors', 'cdc', 'running', 'promote_in_progress', NULL),
    ('action', 'promote', 'failed', 'cdc', 'running', 'promote_in_progress', NULL),
    ('action', 'promote', 'stopped', 'cdc', 'running', 'promote_in_progress', NULL),
    ('action', 'edit', 'not_started', NULL, 'not_started', NULL, NULL),
    ('action', 'edit', 'running', 'full_dump', 'running', 'full_dump', NULL),
    ('action', 'edit', 'running', 'cdc', 'running', 'cdc', NULL),
    ('action', 'edit', 'stopped', 'full_dump', 'stopped', 'full_dump', NULL),
    ('action', 'edit', 'stopped', 'cdc', 'stopped', 'cdc', NULL),
    ('action', 'edit', 'failed', 'full_dump', 'failed', 'full_dump', NULL),
    ('action', 'edit', 'failed', 'cdc', 'failed', 'cdc', NULL),
    -- 4.2 engine events
    ('event', 'started', 'starting', NULL, 'running', 'full_dump', NULL),
    ('event', 'restarted', 'restarting', NULL, 'running', 'full_dump', NULL),
    ('event', 'resumed', 'resuming', 'cdc', 'running', 'cdc', NULL),
    ('event', 'stopped', 'stopping', 'full_dump', 'stopped', 'full_dump', NULL),
    ('event', 'stopped', 'stopping', 'cdc', 'stopped', 'cdc', NULL),
    ('event', 'dump_completed', 'running', 'full_dump', 'running', 'cdc', 'continuous'),
    ('event', 'dump_completed', 'running_with_errors', 'full_dump', 'running_with_errors', 'cdc', 'continuous'),
    ('event', 'dump_completed', 'running', 'full_dump', 'completed', NULL, 'one_time'),
    ('event', 'dump_completed', 'running_with_errors', 'full_dump', 'completed', NULL, 'one_time'),
    ('event', 'error', 'running', 'full_dump', 'running_with_errors', 'full_dump', NULL),
    ('event', 'error', 'running', 'cdc', 'running_with_errors', 'cdc', NULL),
    ('event', 'error', 'running_with_errors', 'full_dump', 'running_with_errors', 'full_dump', NULL),
    ('event', 'error', 'running_with_errors', 'cdc', 'running_with_errors', 'cdc', NULL),
    ('event', 'errors_cleared', 'running_with_errors', 'full_dump', 'running', 'full_dump', NULL),
    ('event', 'errors_cleared', 'running_with_errors', 'cdc', 'running', 'cdc', NULL),
    ('event', 'failed', 'starting', NULL, 'failed', 'full_dump', NULL),
    ('event', 'failed', 'restarting', NULL, 'failed', 'full_dump', NULL),
    ('event', 'failed', 'resuming', 'cdc', 'failed', 'cdc', NULL),
    ('event', 'failed', 'running', 'full_dump', 'failed', 'full_dump', NULL),
    ('event', 'failed', 'running', 'cdc', 'failed', 'cdc', NULL),
    ('event', 'failed', 'running_with_errors', 'full_dump', 'failed', 'full_dump', NULL),
    ('event', 'failed', 'running_with_errors', 'cdc', 'failed', 'cdc', NULL),
    ('event', 'failed', 'stopping', 'full_dump', 'failed', 'full_dump', NULL),
    ('event', 'failed', 'stopping', 'cdc', 'failed', 'cdc', NULL),
    ('event', 'failed', 'running', 'promote_in_progress', 'failed', 'cdc', NULL),
    ('event', 'failed', 'failed', 'full_dump', 'failed', 'full_dump', NULL),
    ('event', 'failed', 'failed', 'cdc', 'failed', 'cdc', NULL),
    ('event', 'recovered', 'failed', 'full_dump', 'running', 'full_dump', NULL),
    ('event', 'recovered', 'failed', 'cdc', 'running', 'cdc', NULL),
    ('event', 'promoted', 'running', 'promote_in_progress', 'completed', NULL, NULL);
-- delete: every legal state except Running with errors (SPEC 4.1).
INSERT INTO spec_edge
SELECT 'action', 'delete', status, phase, NULL, NULL, NULL
  FROM legal_state WHERE status <> 'running_with_errors';

-- Edges of SPEC 4 that dms_transitions() lacks: no row.
SELECT kind, name, from_status, from_phase, to_status, to_phase, migration_type
  FROM spec_edge
EXCEPT
SELECT kind, name, from_status::text, from_phase::text, to_status::text, to_phase::text,
       migration_type::text
  FROM dms_transitions();

-- Edges of dms_transitions() that SPEC 4 does not have: no row.
SELECT kind, name, from_status::text, from_phase::text, to_status::text, to_phase::text,
       migration_type::text
  FROM dms_transitions()
EXCEPT
SELECT kind, name, from_status, from_phase, to_status, to_phase, migration_type
  FROM spec_edge;

-- Spot checks of the rows where the SPEC decides or the seed is precise:
-- does the edge exist?
SELECT q.what, EXISTS (SELECT FROM dms_transitions() t
                        WHERE t.name = q.name
                          AND t.from_status::text = q.from_status
                          AND t.from_phase::text IS NOT DISTINCT FROM q.from_phase
                          AND t.to_status::text IS NOT DISTINCT FROM q.to_status
                          AND t.to_phase::text IS NOT DISTINCT FROM q.to_phase) AS edge_exists
  FROM (VALUES
    ('Stop while Running (Promote in progress)', 'stop', 'running', 'promote_in_progress', 'stopping', 'promote_in_progress'),
    ('Resume while Stopped in full dump', 'resume', 'stopped', 'full_dump', 'resuming', 'full_dump'),
    ('Resume while Stopped in CDC', 'resume', 'stopped', 'cdc', 'resuming', 'cdc'),
    ('Restart while Stopped in full dump', 'restart', 'stopped', 'full_dump', 'restarting', NULL),
    ('Promote while Failed in full dump', 'promote', 'failed', 'full_dump', 'running', 'promote_in_progress'),
    ('Promote while Failed in CDC', 'promote', 'failed', 'cdc', 'running', 'promote_in_progress'),
    ('Promote while Running with errors (CDC)', 'promote', 'running_with_errors', 'cdc', 'running', 'promote_in_progress'),
    ('Promote while Running with errors (Full dump)', 'promote', 'running_with_errors', 'full_dump', 'running', 'promote_in_progress'),
    ('Delete while Running with errors (CDC)', 'delete', 'running_with_errors', 'cdc', NULL, NULL),
    ('Delete while Running with errors (Full dump)', 'delete', 'running_with_errors', 'full_dump', NULL, NULL),
    ('Delete while Completed', 'delete', 'completed', NULL, NULL, NULL),
    ('Edit while Running with errors (CDC)', 'edit', 'running_with_errors', 'cdc', 'running_with_errors', 'cdc'),
    ('Edit while Running (Promote in progress)', 'edit', 'running', 'promote_in_progress', 'running', 'promote_in_progress'),
    ('failed while Running (Promote in progress), to Failed in CDC', 'failed', 'running', 'promote_in_progress', 'failed', 'cdc'),
    ('failed while Failed in CDC, stays Failed in CDC', 'failed', 'failed', 'cdc', 'failed', 'cdc'),
    ('recovered while Failed in full dump, to Running (Full dump)', 'recovered', 'failed', 'full_dump', 'running', 'full_dump'),
    ('failed while Stopped in CDC', 'failed', 'stopped', 'cdc', 'failed', 'cdc'),
    ('failed while Completed', 'failed', 'completed', NULL, 'failed', NULL),
    ('dump_completed while Running (Full dump), to Completed', 'dump_completed', 'running', 'full_dump', 'completed', NULL),
    ('promoted while Running (Promote in progress), to Completed', 'promoted', 'running', 'promote_in_progress', 'completed', NULL),
    ('error while Running (Promote in progress)', 'error', 'running', 'promote_in_progress', 'running_with_errors', 'promote_in_progress')
  ) AS q(what, name, from_status, from_phase, to_status, to_phase);

-- Only dump_completed depends on the migration type: one edge per type.
SELECT name, from_status, from_phase, to_status, to_phase, migration_type
  FROM dms_transitions()
 WHERE migration_type IS NOT NULL
 ORDER BY from_status, migration_type;

-- The seed's "Possible user actions" column as SPEC 4.3 makes it, for
-- every legal state: dms_allowed_action_labels() in the seed's words.
SELECT dms_status_label(status::dms_job_status) AS status, phase,
       dms_substatus_label(status::dms_job_status, phase::dms_job_phase) AS substatus,
       dms_allowed_action_labels(status::dms_job_status, phase::dms_job_phase) AS allowed_actions
  FROM legal_state
 ORDER BY status::dms_job_status, phase::dms_job_phase NULLS FIRST;

-- ... and those labels are exactly the actions whose edge starts at the
-- state in dms_transitions(), in enum order: no row.
SELECT l.status, l.phase,
       dms_allowed_action_labels(l.status::dms_job_status, l.phase::dms_job_phase) AS labels,
       e.from_edges
  FROM legal_state l
  LEFT JOIN LATERAL (
        SELECT string_agg(dms_action_label(t.name::dms_action), ', '
                          ORDER BY t.name::dms_action) AS from_edges
          FROM dms_transitions() t
         WHERE t.kind = 'action'
           AND t.from_status::text = l.status
           AND t.from_phase::text IS NOT DISTINCT FROM l.phase) e ON true
 WHERE dms_allowed_action_labels(l.status::dms_job_status, l.phase::dms_job_phase)
       IS DISTINCT FROM coalesce(e.from_edges, '');
