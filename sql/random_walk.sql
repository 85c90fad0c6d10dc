-- random_walk: a seeded random walk of 20,000 calls over 8 migration jobs, each step
-- checked against an independent model of the SPEC written in test/random_walk.sql
-- (which says what is compared).  scripts/random-walk runs the same walk for a million
-- steps.  Nothing printed here depends on time: the walk is a function of its seed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- The model and the walk: several hundred lines, loaded without echo.
\set ECHO none
\i test/random_walk.sql
\set ECHO all

-- The model agrees with itself: the allowed actions of SPEC 4.3 are exactly the
-- actions whose edge of SPEC 4.1 starts at each legal state (no row: no disagreement).
SELECT * FROM rw.self_check();

-- The edges of SPEC 4 a job can take from the states it can reach, per migration type
-- (a one-time job never reaches CDC).
SELECT migration_type, count(*) AS edges FROM rw.model_edges() GROUP BY 1 ORDER BY 1;

-- A user's indexes of every kind on the three tables, which every write of the walk
-- must keep (SPEC 11): an expression, a partial one, a key every transition changes, and
-- a partial unique one (a job has one create row) on the history.
CREATE INDEX rw_job_lower_name ON dms_job (lower(name));
CREATE INDEX rw_job_status_phase ON dms_job (status, phase) WHERE phase IS NOT NULL;
CREATE INDEX rw_failure_message ON dms_job_failure (job_id, lower(error_message));
CREATE INDEX rw_history_cause ON dms_job_history (cause, job_id);
CREATE UNIQUE INDEX rw_history_one_create ON dms_job_history (job_id) WHERE cause = 'create';

-- The walk: seed 0.2024, 20,000 steps over 8 jobs (a deleted job's slot gets a new job).
CALL rw.walk(0.2024, 20000, 8);

-- Steps done, and steps where the extension and the model disagreed.
SELECT steps_done, mismatches FROM rw.run;

-- Those disagreements in full (no row: none).
\x on
SELECT step, slot, call, variant, before, expected, differences FROM rw.mismatch ORDER BY no;
\x off

-- Every action and event was accepted at least once and refused (55000) at least once
-- (no row: none missing).
SELECT * FROM rw.kind_name_coverage WHERE accepted = 0 OR refused = 0;

-- Every edge was taken (no row: none missing), and the bias made it many times.
SELECT * FROM rw.edge_coverage WHERE taken = 0;
SELECT min(taken) >= 10 AS every_edge_taken_at_least_10_times FROM rw.edge;

-- Every situation the model names was met: each kind of bad argument, each way a
-- failure row comes and goes (no row: none missing).
SELECT situation FROM rw.situation_coverage WHERE steps = 0;

-- The outcomes the extension gave (SQLSTATEs of SPEC 7, and ok).
SELECT coalesce(nullif(actual_code, ''), 'ok') AS outcome
  FROM rw.step_log GROUP BY 1 ORDER BY 1;

-- After the walk, amcheck finds every btree index of the three tables consistent with
-- its table (bt_index_check with heapallindexed: every row version the table holds has
-- its index entry).  The indexes are read from the catalog, so the extension's own and
-- the user's above are all checked: one row per index, "ok" or the error.
CREATE EXTENSION amcheck;
\i sql/amcheck.inc
SELECT table_name AS "table", index_name AS index, result FROM pg_temp.check_indexes();

-- Leave the database as the extension alone left it.
SET client_min_messages = warning;
DROP SCHEMA rw CASCADE;
DROP INDEX rw_job_lower_name, rw_job_status_phase, rw_failure_message, rw_history_cause,
           rw_history_one_create;
DROP EXTENSION amcheck;
RESET client_min_messages;
