--
-- events: what the migration engine reports (SPEC 4.2) from every legal state
-- (SPEC 3), for both migration types, checked against dms_transitions().
--
-- Every job is brought to its state only through the public functions, along
-- a legal path; every event is reported to a fresh job of its own.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- The legal states, in the order of the table of SPEC 4.3.
CREATE TEMP TABLE legal_state (
    ord    int PRIMARY KEY,
    status dms_job_status NOT NULL,
    phase  dms_job_phase
);
INSERT INTO legal_state VALUES
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
    (16, 'stopping',            'cdc');

-- The way to each state, per migration type: the state before and the one
-- public call that leads from there.  A one-time job has no CDC: it reaches
-- Completed when its dump completes, and never a state of the CDC phase.
CREATE TEMP TABLE way (
    migration_type dms_migration_type,
    ord            int REFERENCES legal_state,
    via            int,    -- the state before; NULL: a new job
    step           text NOT NULL,
    PRIMARY KEY (migration_type, ord)
);
INSERT INTO way VALUES
    ('continuous',  1, NULL, 'dms_create_job'),
    ('continuous',  2, 1,    'dms_start'),
    ('continuous',  3, 2,    'report started'),
    ('continuous',  4, 3,    'report dump_completed'),
    ('continuous',  5, 4,    'dms_promote'),
    ('continuous',  6, 3,    'report error'),
    ('continuous',  7, 4,    'report error'),
    ('continuous',  8, 5,    'report promoted'),
    ('continuous',  9, 3,    'report failed'),
    ('continuous', 10, 4,    'report failed'),
    ('continuous', 11, 9,    'dms_restart'),
    ('continuous', 12, 15,   'report stopped'),
    ('continuous', 13, 16,   'report stopped'),
    ('continuous', 14, 13,   'dms_resume'),
    ('continuous', 15, 3,    'dms_stop'),
    ('continuous', 16, 4,    'dms_stop'),
    ('one_time',    1, NULL, 'dms_create_job'),
    ('one_time',    2, 1,    'dms_start'),
    ('one_time',    3, 2,    'report started'),
    ('one_time',    6, 3,    'report error'),
    ('one_time',    8, 3,    'report dump_completed'),
    ('one_time',    9, 3,    'report failed'),
    ('one_time',   11, 9,    'dms_restart'),
    ('one_time',   12, 15,   'report stopped'),
    ('one_time',   15, 3,    'dms_stop');

-- How a state reads in this file: the seed's status, and the phase in the
-- words of the seed's substatus ("Running" in phase "CDC" reads Running (CDC)).
CREATE FUNCTION pg_temp.state_label(s dms_job_status, p dms_job_phase) RETURNS text
LANGUAGE sql AS $$
    SELECT dms_status_label(s)
           || coalesce(' (' || dms_substatus_label('running', p) || ')', '')
$$;

-- drive(name, type, state): creates a job of the type and walks it to the
-- state, one public call per step, checking every state on the way.
CREATE FUNCTION pg_temp.drive(job_name text, mtype dms_migration_type, target int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    w   way;
    s   legal_state;
    job bigint;
    got record;
BEGIN
    SELECT * INTO STRICT w FROM way WHERE migration_type = mtype AND ord = target;
    SELECT * INTO STRICT s FROM legal_state WHERE ord = target;
    IF w.via IS NULL THEN
        job := dms_create_job(job_name, mtype);
    ELSE
        job := pg_temp.drive(job_name, mtype, w.via);
        CASE w.step
        WHEN 'dms_start'   THEN PERFORM dms_start(job);
        WHEN 'dms_stop'    THEN PERFORM dms_stop(job);
        WHEN 'dms_resume'  THEN PERFORM dms_resume(job);
        WHEN 'dms_restart' THEN PERFORM dms_restart(job);
        WHEN 'dms_promote' THEN PERFORM dms_promote(job);
        WHEN 'report error'  THEN PERFORM dms_report(job, 'error', 'replication lag too high');
        WHEN 'report failed' THEN PERFORM dms_report(job, 'failed', 'source unreachable');
        ELSE PERFORM dms_report(job, substr(w.step, 8)::dms_event);
        END CASE;
    END IF;
    SELECT status, phase INTO STRICT got FROM dms_job WHERE id = job;
    IF got.status IS DISTINCT FROM s.status OR got.phase IS DISTINCT FROM s.phase THEN
        RAISE EXCEPTION 'job % reached (%, %) instead of (%, %)',
            job, got.status, got.phase, s.status, s.phase;
    END IF;
    RETURN job;
END $$;

-- try_report(job, event, message): reports the event and returns what
-- dms_report returned, or the error.
CREATE FUNCTION pg_temp.try_report(job bigint, ev dms_event, message text,
                                   OUT returned text, OUT code text,
                                   OUT msg text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    returned := dms_report(job, ev, message);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
END $$;

-- Step 1: the dump completes.  A continuous job goes on with CDC (job 1); a
-- one-time job is then Completed (job 2), and a one-time job running with
-- errors too (job 3).
SELECT pg_temp.drive('orders', 'continuous', 3), pg_temp.drive('billing', 'one_time', 3),
       pg_temp.drive('archive', 'one_time', 6);
SELECT dms_report(1, 'dump_completed'), dms_report(2, 'dump_completed'),
       dms_report(3, 'dump_completed');
SELECT id, name, migration_type, status, substatus, allowed_actions, error_message
  FROM dms_job_overview WHERE id IN (1, 2, 3) ORDER BY id;

-- Step 2: an error while running (job 4), then another one: the job stays
-- Running with errors, and the new message replaces the old one.
SELECT pg_temp.drive('customers', 'continuous', 4);
SELECT dms_report(4, 'error', 'replication lag too high');
SELECT id, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 4;
SELECT dms_report(4, 'error', 'table "items" has no primary key');
SELECT id, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 4;
-- The errors clear: Running (CDC) again, with no error message.
SELECT dms_report(4, 'errors_cleared');
SELECT id, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 4;
-- Each report is one history row, the self-loop included.
SELECT cause, from_status, from_phase, to_status, to_phase, message
  FROM dms_job_history WHERE job_id = 4 ORDER BY id;

-- Step 3: a promotion fails (job 5): the job is Failed in CDC, and the
-- promotion may be retried.
SELECT pg_temp.drive('payments', 'continuous', 5);
SELECT dms_report(5, 'failed', 'destination refused the promotion');
SELECT id, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 5;
SELECT dms_promote(5);
SELECT dms_report(5, 'promoted');
SELECT id, status, substatus, allowed_actions, error_message FROM dms_job_overview WHERE id = 5;

-- Step 4: a failed job recovers to running in the phase it failed in: job 6
-- failed in the full dump, job 7 in CDC, job 8 while promoting (so in CDC:
-- the promotion is not resumed by itself).
SELECT pg_temp.drive('stock', 'continuous', 9), pg_temp.drive('ledger', 'continuous', 10),
       pg_temp.drive('audit', 'continuous', 5);
SELECT dms_report(8, 'failed', 'promotion timed out');
SELECT id, status, substatus, error_message FROM dms_job_overview WHERE id IN (6, 7, 8) ORDER BY id;
SELECT dms_report(6, 'recovered'), dms_report(7, 'recovered'), dms_report(8, 'recovered');
SELECT id, status, substatus, allowed_actions, error_message
  FROM dms_job_overview WHERE id IN (6, 7, 8) ORDER BY id;

-- Step 5: a refused event names the state in the seed's words and the events
-- accepted now (job 9 is Stopped in CDC, job 10 Resuming, job 11 Starting...).
SELECT pg_temp.drive('refused 1', 'continuous', 13), pg_temp.drive('refused 2', 'continuous', 14),
       pg_temp.drive('refused 3', 'continuous', 2);
SELECT dms_report(9, 'promoted');
SELECT dms_report(10, 'dump_completed');
SELECT dms_report(11, 'recovered');
SELECT id, status, substatus FROM dms_job_overview WHERE id IN (9, 10, 11) ORDER BY id;
SELECT job_id, count(*) AS history_rows FROM dms_job_history
 WHERE job_id IN (9, 10, 11) GROUP BY job_id ORDER BY job_id;

-- Step 6: error and failed need a message.  No message, or an empty one, is
-- refused with 22023 and changes nothing (job 12 is Running (CDC)).
SELECT pg_temp.drive('events', 'continuous', 4);
SELECT dms_report(12, 'error');
SELECT m.event, coalesce(quote_literal(m.message), 'NULL') AS message, r.*
  FROM (VALUES ('error'::dms_event, NULL), ('error', ''),
               ('failed', NULL), ('failed', '')) m(event, message),
       pg_temp.try_report(12, m.event, m.message) r;
SELECT id, status, substatus, error_message FROM dms_job_overview WHERE id = 12;
SELECT count(*) AS history_rows FROM dms_job_history WHERE job_id = 12;
-- The same from every state that accepts error or failed, on a fresh job each
-- time: 22023, and the job exactly as before.
CREATE TEMP TABLE no_message AS
SELECT NULL::int AS ord, NULL::dms_event AS event, NULL::text AS message,
       NULL::text AS code, NULL::boolean AS unchanged
 WHERE false;
DO $$
DECLARE
    w   way;
    ev  dms_event;
    m   text;
    jid bigint;
    before_row jsonb;
    before_history bigint;
    r   record;
BEGIN
    FOR w IN SELECT * FROM way WHERE migration_type = 'continuous' ORDER BY ord LOOP
        FOREACH ev IN ARRAY ARRAY['error', 'failed']::dms_event[] LOOP
            CONTINUE WHEN NOT EXISTS (
                SELECT FROM dms_transitions() t, legal_state s
                 WHERE s.ord = w.ord AND t.kind = 'event' AND t.name = ev::text
                   AND t.from_status = s.status AND t.from_phase IS NOT DISTINCT FROM s.phase);
            FOREACH m IN ARRAY ARRAY[NULL, ''] LOOP
                jid := pg_temp.drive(format('no message %s %s %s', w.ord, ev, m IS NULL), 'continuous', w.ord);
                SELECT to_jsonb(j) INTO before_row FROM dms_job j WHERE j.id = jid;
                SELECT count(*) INTO before_history FROM dms_job_history h WHERE h.job_id = jid;
                r := pg_temp.try_report(jid, ev, m);
                INSERT INTO no_message
                SELECT w.ord, ev, m, r.code,
                       (SELECT to_jsonb(j) FROM dms_job j WHERE j.id = jid) = before_row
                       AND (SELECT count(*) FROM dms_job_history h WHERE h.job_id = jid) = before_history;
            END LOOP;
        END LOOP;
    END LOOP;
END $$;
SELECT pg_temp.state_label(s.status, s.phase) AS state, n.event,
       coalesce(quote_literal(n.message), 'NULL') AS message, n.code, n.unchanged
  FROM no_message n JOIN legal_state s USING (ord)
 ORDER BY n.ord, n.event, n.message NULLS FIRST;

-- Step 7: every event from every state, for both types, on a fresh job each
-- time.  error and failed carry a message.  Record the job before and after:
-- the whole row, its history rows and its failure rows.
CREATE TEMP TABLE attempt (
    migration_type  dms_migration_type,
    ord             int,
    event           dms_event,
    job             bigint,
    message         text,
    before_row      jsonb,
    before_history  bigint,
    before_failures bigint,
    returned        text,
    code            text,
    msg             text,
    detail          text,
    after_row       jsonb,
    after_history   bigint,
    after_failures  bigint,
    PRIMARY KEY (migration_type, ord, event)
);
DO $$
DECLARE
    w   way;
    ev  dms_event;
    jid bigint;
    m   text;
    r   record;
BEGIN
    FOR w IN SELECT * FROM way ORDER BY migration_type DESC, ord LOOP
        FOREACH ev IN ARRAY enum_range(NULL::dms_event) LOOP
            jid := pg_temp.drive(format('%s %s %s', w.migration_type, w.ord, ev), w.migration_type, w.ord);
            m := CASE WHEN ev IN ('error', 'failed') THEN 'disk full on the destination' END;
            INSERT INTO attempt (migration_type, ord, event, job, message,
                                 before_row, before_history, before_failures)
            SELECT w.migration_type, w.ord, ev, jid, m,
                   (SELECT to_jsonb(j) FROM dms_job j WHERE j.id = jid),
                   (SELECT count(*) FROM dms_job_history h WHERE h.job_id = jid),
                   (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = jid);
            r := pg_temp.try_report(jid, ev, m);
            UPDATE attempt
               SET returned = r.returned, code = r.code, msg = r.msg, detail = r.detail,
                   after_row = (SELECT to_jsonb(j) FROM dms_job j WHERE j.id = jid),
                   after_history = (SELECT count(*) FROM dms_job_history h WHERE h.job_id = jid),
                   after_failures = (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = jid)
             WHERE attempt.migration_type = w.migration_type AND attempt.ord = w.ord
               AND attempt.event = ev;
        END LOOP;
    END LOOP;
END $$;

-- The matrix: the state the job is in after the event, or "refused" with the
-- SQLSTATE, and then the job must be exactly as before (same row, same
-- history, same failures).  "-" marks a state a one-time job never reaches.
CREATE TEMP VIEW outcome AS
SELECT a.*,
       CASE
       WHEN a.code IS NULL THEN
            pg_temp.state_label((a.after_row->>'status')::dms_job_status,
                                (a.after_row->>'phase')::dms_job_phase)
       WHEN a.after_row IS NOT DISTINCT FROM a.before_row
            AND a.after_history = a.before_history
            AND a.after_failures = a.before_failures THEN 'refused ' || a.code
       ELSE 'refused ' || a.code || ' BUT CHANGED'
       END AS result
  FROM attempt a;
SELECT pg_temp.state_label(s.status, s.phase) AS state, e.event,
       coalesce(max(o.result) FILTER (WHERE o.migration_type = 'continuous'), '-') AS continuous,
       coalesce(max(o.result) FILTER (WHERE o.migration_type = 'one_time'), '-') AS one_time
  FROM legal_state s
 CROSS JOIN unnest(enum_range(NULL::dms_event)) e(event)
  LEFT JOIN outcome o ON o.ord = s.ord AND o.event = e.event
 GROUP BY s.ord, s.status, s.phase, e.event
 ORDER BY s.ord, e.event;

-- Every accepted event took the edge dms_transitions() lists for its event,
-- state and type, to the state that edge names; no refused event has an edge
-- there.  Expect no rows.
SELECT a.migration_type, a.ord, a.event, a.code, a.after_row->>'status' AS status_now,
       a.after_row->>'phase' AS phase_now, t.edges, t.to_status, t.to_phase
  FROM attempt a
 CROSS JOIN LATERAL (
       SELECT count(*) AS edges, min(to_status::text) AS to_status, min(to_phase::text) AS to_phase
         FROM dms_transitions() t
        WHERE t.kind = 'event' AND t.name = a.event::text
          AND t.from_status::text = a.before_row->>'status'
          AND t.from_phase::text IS NOT DISTINCT FROM a.before_row->>'phase'
          AND (t.migration_type IS NULL OR t.migration_type = a.migration_type)) t
 WHERE CASE WHEN a.code IS NULL
            THEN t.edges <> 1
                 OR t.to_status IS DISTINCT FROM a.after_row->>'status'
                 OR t.to_phase IS DISTINCT FROM a.after_row->>'phase'
            ELSE t.edges <> 0 OR a.code <> '55000' END;

-- ... and every event edge of dms_transitions() was taken by some accepted
-- report above.  Expect no rows.
SELECT t.*
  FROM dms_transitions() t
 WHERE t.kind = 'event'
   AND NOT EXISTS (
       SELECT FROM attempt a
        WHERE a.code IS NULL AND a.event::text = t.name
          AND a.before_row->>'status' = t.from_status::text
          AND a.before_row->>'phase' IS NOT DISTINCT FROM t.from_phase::text
          AND (t.migration_type IS NULL OR t.migration_type = a.migration_type));

-- Every accepted event returned the job's new status and wrote exactly one
-- history row naming the event, both states and the message of error and
-- failed.  Expect no rows.
SELECT a.migration_type, a.ord, a.event, a.returned,
       a.after_history - a.before_history AS new_history_rows, h.*
  FROM attempt a
  LEFT JOIN LATERAL (SELECT cause, from_status, from_phase, to_status, to_phase, message
                       FROM dms_job_history WHERE job_id = a.job
                      ORDER BY id DESC LIMIT 1) h ON true
 WHERE a.code IS NULL
   AND (a.after_history - a.before_history <> 1
        OR a.after_failures <> 0
        OR a.returned IS DISTINCT FROM a.after_row->>'status'
        OR h.cause IS DISTINCT FROM a.event::text
        OR h.from_status::text IS DISTINCT FROM a.before_row->>'status'
        OR h.from_phase::text IS DISTINCT FROM a.before_row->>'phase'
        OR h.to_status::text IS DISTINCT FROM a.after_row->>'status'
        OR h.to_phase::text IS DISTINCT FROM a.after_row->>'phase'
        OR h.message IS DISTINCT FROM a.message);

-- The job-level error message after an accepted event: the event's message
-- after error and failed; the old message while the job stays Running with
-- errors; none in any other status.  Expect no rows.
SELECT a.migration_type, a.ord, a.event, a.before_row->>'error_message' AS error_before,
       a.after_row->>'error_message' AS error_after
  FROM attempt a
 WHERE a.code IS NULL
   AND a.after_row->>'error_message' IS DISTINCT FROM
       CASE
       WHEN a.event IN ('error', 'failed') THEN a.message
       WHEN a.after_row->>'status' = a.before_row->>'status'
            AND a.after_row->>'status' IN ('running_with_errors', 'failed')
       THEN a.before_row->>'error_message'
       END;

-- Every refusal names the event, the job and its state in the seed's words,
-- and the events that state accepts (as the matrix found them).  Expect no
-- rows.
SELECT a.migration_type, a.ord, a.event, a.msg, a.detail
  FROM attempt a
 WHERE a.code IS NOT NULL
   AND (a.msg IS DISTINCT FROM format('cannot report "%s" for migration job %s while it is "%s"%s',
                                      a.event, a.job,
                                      dms_status_label((a.before_row->>'status')::dms_job_status),
                                      coalesce(' (' || dms_substatus_label('running',
                                                  (a.before_row->>'phase')::dms_job_phase) || ')', ''))
        OR a.detail IS DISTINCT FROM (
              SELECT coalesce('Events accepted now: '
                              || string_agg(b.event::text, ', ' ORDER BY b.event) || '.',
                              'A job in this state accepts no event.')
                FROM attempt b
               WHERE b.migration_type = a.migration_type AND b.ord = a.ord
                 AND b.code IS NULL));
