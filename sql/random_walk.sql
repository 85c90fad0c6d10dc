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

-- Leave the database as the extension alone left it.
SET client_min_messages = warning;
DROP SCHEMA rw CASCADE;
RESET client_min_messages;
