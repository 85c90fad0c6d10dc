--
-- states_actions: the sixteen legal states of a migration job (SPEC 3), the
-- actions each one offers (SPEC 4.3, the seed's "Possible user actions"), and
-- what each of the seven actions really does there (SPEC 4.1, 7).
--
-- Every job is brought to its state only through the public functions, along
-- a legal path; every action is tried on a fresh job of its own.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- The legal states, in the order of the table of SPEC 4.3.  Each names the
-- state it is reached from and the one public call that leads from there.
CREATE TEMP TABLE legal_state (
    ord    int PRIMARY KEY,
    status dms_job_status NOT NULL,
    phase  dms_job_phase,
    via    int REFERENCES legal_state,  -- the state before; NULL: a new job
    step   text NOT NULL                -- the call that leads from via to here
);
INSERT INTO legal_state VALUES
    ( 1, 'not_started',         NULL,                  NULL, 'dms_create_job'),
    ( 2, 'starting',            NULL,                  1,    'dms_start'),
    ( 3, 'running',             'full_dump',           2,    'report started'),
    ( 4, 'running',             'cdc',                 3,    'report dump_completed'),
    ( 5, 'running',             'promote_in_progress', 4,    'dms_promote'),
    ( 6, 'running_with_errors', 'full_dump',           3,    'report error'),
    ( 7, 'running_with_errors', 'cdc',                 4,    'report error'),
    ( 8, 'completed',           NULL,                  5,    'report promoted'),
    ( 9, 'failed',              'full_dump',           3,    'report failed'),
    (10, 'failed',              'cdc',                 4,    'report failed'),
    (11, 'restarting',          NULL,                  9,    'dms_restart'),
    (12, 'stopped',             'full_dump',           15,   'report stopped'),
    (13, 'stopped',             'cdc',                 16,   'report stopped'),
    (14, 'resuming',            'cdc',                 13,   'dms_resume'),
    (15, 'stopping',            'full_dump',           3,    'dms_stop'),
    (16, 'stopping',            'cdc',                 4,    'dms_stop');

-- How a state reads in this file: the seed's status, and the phase in the
-- words of the seed's substatus ("Running" in phase "CDC" reads Running (CDC)).
CREATE FUNCTION pg_temp.state_label(s dms_job_status, p dms_job_phase) RETURNS text
LANGUAGE sql AS $$
    SELECT dms_status_label(s)
           || coalesce(' (' || dms_substatus_label('running', p) || ')', '')
$$;

-- drive(name, state): creates a continuous job and walks it to the state,
-- one public call per step, checking every state on the way.
CREATE FUNCTION pg_temp.drive(job_name text, target int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s   legal_state;
    job bigint;
    got record;
BEGIN
    SELECT * INTO STRICT s FROM legal_state WHERE ord = target;
    IF s.via IS NULL THEN
        job := dms_create_job(job_name);
    ELSE
        job := pg_temp.drive(job_name, s.via);
        CASE s.step
        WHEN 'dms_start'   THEN PERFORM dms_start(job);
        WHEN 'dms_stop'    THEN PERFORM dms_stop(job);
        WHEN 'dms_resume'  THEN PERFORM dms_resume(job);
        WHEN 'dms_restart' THEN PERFORM dms_restart(job);
        WHEN 'dms_promote' THEN PERFORM dms_promote(job);
        WHEN 'report error'  THEN PERFORM dms_report(job, 'error', 'replication lag too high');
        WHEN 'report failed' THEN PERFORM dms_report(job, 'failed', 'source unreachable');
        ELSE PERFORM dms_report(job, substr(s.step, 8)::dms_event);
        END CASE;
    END IF;
    SELECT status, phase INTO STRICT got FROM dms_job WHERE id = job;
    IF got.status IS DISTINCT FROM s.status OR got.phase IS DISTINCT FROM s.phase THEN
        RAISE EXCEPTION 'job % reached (%, %) instead of (%, %)',
            job, got.status, got.phase, s.status, s.phase;
    END IF;
    RETURN job;
END $$;

-- try_action(job, action): performs the action (dms_set_dump_parallelism
-- stands for edit) and returns what the function returned, or the error.
CREATE FUNCTION pg_temp.try_action(job bigint, act dms_action,
                                   OUT returned text, OUT code text,
                                   OUT msg text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    CASE act
    WHEN 'start'   THEN returned := dms_start(job);
    WHEN 'stop'    THEN returned := dms_stop(job);
    WHEN 'resume'  THEN returned := dms_resume(job);
    WHEN 'restart' THEN returned := dms_restart(job);
    WHEN 'promote' THEN returned := dms_promote(job);
    WHEN 'edit'    THEN returned := dms_set_dump_parallelism(job, 'max');
    WHEN 'delete'  THEN returned := dms_delete(job);
    END CASE;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
END $$;

-- Step 1: one job in each state (jobs 1 to 16, in the order above).  Every
-- state and the way to it is legal: drive() checked each step.
CREATE TEMP TABLE state_job AS
SELECT ord, pg_temp.drive('state ' || ord, ord) AS job
  FROM legal_state ORDER BY ord;
SELECT ord, job, pg_temp.state_label(j.status, j.phase) AS state
  FROM state_job JOIN dms_job j ON j.id = job ORDER BY ord;

-- The sixteen states are exactly the states the lifecycle knows: every state
-- an edge of dms_transitions() leaves or reaches is one of them, and each of
-- them is left by some edge.  Expect no rows.
WITH lifecycle_state AS (
    SELECT from_status AS status, from_phase AS phase FROM dms_transitions()
    UNION
    SELECT to_status, to_phase FROM dms_transitions() WHERE to_status IS NOT NULL)
(SELECT 'only in dms_transitions()' AS problem, * FROM lifecycle_state
 EXCEPT SELECT 'only in dms_transitions()', status, phase FROM legal_state)
UNION ALL
(SELECT 'left by no edge', status, phase FROM legal_state
 EXCEPT SELECT 'left by no edge', from_status, from_phase FROM dms_transitions());

-- Step 2: the actions each state offers (SPEC 4.3), as dms_allowed_actions()
-- returns them and as the overview shows them in the seed's words.
SELECT j.status, j.phase, dms_allowed_actions(j.id) AS allowed,
       o.status AS "Status", o.substatus AS "Substatus",
       o.allowed_actions AS "Possible user actions"
  FROM state_job sj JOIN dms_job j ON j.id = sj.job
  JOIN dms_job_overview o ON o.id = j.id
 ORDER BY sj.ord;

-- Step 3: a refused action says why, in the seed's words, and what is
-- allowed instead.
SELECT dms_promote(1);   -- Not started
SELECT dms_resume(4);    -- Running (CDC)
SELECT dms_stop(5);      -- Running (Promote in progress): a promotion cannot be stopped
SELECT dms_delete(6);    -- Running with errors (Full dump): no Delete in the seed
SELECT dms_promote(9);   -- Failed in full dump: no complete copy to promote
SELECT dms_resume(12);   -- Stopped in full dump: only a job stopped in CDC resumes
SELECT dms_set_dump_parallelism(16, 'max');  -- Stopping... (CDC)
-- ... and nothing happened to those jobs: still in their states, no history
-- row beyond the ones of the way there.
SELECT sj.job, pg_temp.state_label(j.status, j.phase) AS state,
       (SELECT count(*) FROM dms_job_history h WHERE h.job_id = j.id) AS history_rows
  FROM state_job sj JOIN dms_job j ON j.id = sj.job
 WHERE sj.job IN (1, 4, 5, 6, 9, 12, 16) ORDER BY sj.job;

-- Step 4: every action on a fresh job in every state.  Record the job before
-- and after: the whole row, its history rows and its failure rows.
CREATE TEMP TABLE attempt (
    ord             int,
    action          dms_action,
    job             bigint,
    before_row      jsonb,
    before_history  bigint,
    before_failures bigint,
    returned        text,
    code            text,
    msg             text,
    detail          text,
    after_row       jsonb,      -- NULL: the row is gone
    after_history   bigint,
    after_failures  bigint,
    PRIMARY KEY (ord, action)
);
DO $$
DECLARE
    s   legal_state;
    a   dms_action;
    jid bigint;
    r   record;
BEGIN
    FOR s IN SELECT * FROM legal_state ORDER BY ord LOOP
        FOREACH a IN ARRAY enum_range(NULL::dms_action) LOOP
            jid := pg_temp.drive(format('state %s %s', s.ord, a), s.ord);
            INSERT INTO attempt (ord, action, job, before_row, before_history, before_failures)
            SELECT s.ord, a, jid,
                   (SELECT to_jsonb(j) FROM dms_job j WHERE j.id = jid),
                   (SELECT count(*) FROM dms_job_history h WHERE h.job_id = jid),
                   (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = jid);
            r := pg_temp.try_action(jid, a);
            UPDATE attempt
               SET returned = r.returned, code = r.code, msg = r.msg, detail = r.detail,
                   after_row = (SELECT to_jsonb(j) FROM dms_job j WHERE j.id = jid),
                   after_history = (SELECT count(*) FROM dms_job_history h WHERE h.job_id = jid),
                   after_failures = (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = jid)
             WHERE attempt.ord = s.ord AND attempt.action = a;
        END LOOP;
    END LOOP;
END $$;

-- The matrix: accepted, with the state the job is in now, or refused, with
-- its SQLSTATE, and then the job must be exactly as before (same row, same
-- history, same failures; a refused delete leaves the row in place).
CREATE TEMP VIEW matrix AS
SELECT a.ord, a.action,
       pg_temp.state_label((a.before_row->>'status')::dms_job_status,
                           (a.before_row->>'phase')::dms_job_phase) AS state,
       CASE WHEN a.code IS NULL THEN 'accepted' ELSE 'refused ' || a.code END AS outcome,
       CASE
       WHEN a.code IS NOT NULL
            AND a.after_row IS NOT DISTINCT FROM a.before_row
            AND a.after_history = a.before_history
            AND a.after_failures = a.before_failures THEN 'unchanged'
       WHEN a.after_row IS NULL THEN '(deleted)'
       ELSE pg_temp.state_label((a.after_row->>'status')::dms_job_status,
                                (a.after_row->>'phase')::dms_job_phase)
            || CASE WHEN a.code IS NOT NULL THEN ' CHANGED BY A REFUSAL' ELSE '' END
       END AS result,
       CASE WHEN a.code IS NULL AND a.after_row IS NOT NULL THEN
            dms_substatus_label((a.after_row->>'status')::dms_job_status,
                                (a.after_row->>'phase')::dms_job_phase)
       END AS substatus
  FROM attempt a;
SELECT state, action, outcome, result, substatus FROM matrix ORDER BY ord, action;

-- Every refusal reads as SPEC 7 and the design say: the action, the job, its
-- state in the seed's words, and the allowed actions.  Expect no rows.
SELECT a.ord, a.action, a.msg, a.detail
  FROM attempt a
 WHERE a.code IS NOT NULL
   AND (a.msg IS DISTINCT FROM format('cannot %s migration job %s while it is "%s"%s',
                                      a.action, a.job,
                                      dms_status_label((a.before_row->>'status')::dms_job_status),
                                      coalesce(' (' || dms_substatus_label('running',
                                                  (a.before_row->>'phase')::dms_job_phase) || ')', ''))
        OR a.detail IS DISTINCT FROM format('Allowed actions: %s.',
                                      dms_allowed_action_labels((a.before_row->>'status')::dms_job_status,
                                                                (a.before_row->>'phase')::dms_job_phase)));

-- Every accepted action returned the job's new status (delete: true, and the
-- row is gone) and wrote exactly one history row naming the action and both
-- states.  Expect no rows.
SELECT a.ord, a.action, a.returned, a.after_row->>'status' AS status_now,
       a.after_history - a.before_history AS new_history_rows, h.*
  FROM attempt a
  LEFT JOIN LATERAL (SELECT cause, from_status, from_phase, to_status, to_phase
                       FROM dms_job_history WHERE job_id = a.job
                      ORDER BY id DESC LIMIT 1) h ON true
 WHERE a.code IS NULL
   AND (a.after_history - a.before_history <> 1
        OR h.cause IS DISTINCT FROM a.action::text
        OR h.from_status::text IS DISTINCT FROM a.before_row->>'status'
        OR h.from_phase::text IS DISTINCT FROM a.before_row->>'phase'
        OR h.to_status::text IS DISTINCT FROM a.after_row->>'status'
        OR h.to_phase::text IS DISTINCT FROM a.after_row->>'phase'
        OR CASE WHEN a.action = 'delete'
                THEN a.returned IS DISTINCT FROM 'true' OR a.after_row IS NOT NULL
                ELSE a.returned IS DISTINCT FROM a.after_row->>'status' END);

-- The allowed actions of each state are exactly the actions it accepted.
-- Expect no rows.
SELECT sj.ord, dms_allowed_actions(sj.job) AS allowed,
       array_agg(a.action ORDER BY a.action) FILTER (WHERE a.code IS NULL) AS accepted
  FROM state_job sj JOIN attempt a ON a.ord = sj.ord
 GROUP BY sj.ord, sj.job
HAVING dms_allowed_actions(sj.job)
       IS DISTINCT FROM coalesce(array_agg(a.action ORDER BY a.action)
                                 FILTER (WHERE a.code IS NULL), '{}');

-- Every accepted action took an edge of dms_transitions() to the state that
-- edge names, and no refused action has an edge there.  Expect no rows.
SELECT a.ord, a.action, a.code, t.*
  FROM attempt a
  LEFT JOIN dms_transitions() t
    ON t.kind = 'action' AND t.name = a.action::text
   AND t.from_status::text = a.before_row->>'status'
   AND t.from_phase::text IS NOT DISTINCT FROM a.before_row->>'phase'
   AND (t.migration_type IS NULL OR t.migration_type::text = a.before_row->>'migration_type')
 WHERE CASE WHEN a.code IS NULL
            THEN t.kind IS NULL
                 OR t.to_status::text IS DISTINCT FROM a.after_row->>'status'
                 OR t.to_phase::text IS DISTINCT FROM a.after_row->>'phase'
            ELSE t.kind IS NOT NULL END;

-- Step 5: the edit (dms_set_dump_parallelism 'max') is immediate while the job
-- has not started and waits for the next restart otherwise.
SELECT state, a.after_row->>'dump_parallelism' AS dump_parallelism,
       a.after_row->>'pending_dump_parallelism' AS pending_dump_parallelism
  FROM attempt a JOIN matrix m USING (ord, action)
 WHERE a.action = 'edit' AND a.code IS NULL ORDER BY a.ord;

-- The job-level error message stays only in Running with errors and Failed:
-- every accepted action (but delete) from a state with an error message, and
-- the message after it.
SELECT state, a.action, result,
       a.before_row->>'error_message' AS error_before,
       a.after_row->>'error_message' AS error_after
  FROM attempt a JOIN matrix m USING (ord, action)
 WHERE a.code IS NULL AND a.action <> 'delete'
   AND a.before_row->>'error_message' IS NOT NULL
 ORDER BY a.ord, a.action;
