-- scripts/demo-migration/promote.sql: pgbench has stopped writing; alice promotes the job,
-- the engine cuts over, and we compare both sides.  Played by scripts/demo on the destination.

\set overview 'SELECT id, name, migration_type AS type, status, substatus, allowed_actions, error_message FROM dms_job_overview ORDER BY id;'

\echo
\echo '== Promotion: the engine fences the source (new sessions read-only, client sessions ended), waits'
\echo '== until the destination has applied everything written before the fence, compares the row'
\echo '== counts of every table, copies the sequences, and takes replication down'
SET ROLE alice;
SELECT dms_promote(1);
:overview
SELECT demo_wait(1, 'Completed');
:overview
SELECT database_name AS database, state, tables_copied || '/' || tables_total AS tables,
       percent, rows_copied, lag_bytes
  FROM dms_job_progress WHERE job_id = 1 ORDER BY database_name;

\echo
\echo '== The history: alice''s actions and the engine''s events (by its role, postgres), with messages'
SELECT id, cause, to_status, to_phase, actor, message
  FROM dms_job_history WHERE job_id = 1 ORDER BY id;
RESET ROLE;

\echo
\echo '== Source and destination, side by side: the rows of every table, counted on each side'
\set count_tables 'SELECT (SELECT count(*) FROM pgbench_accounts) AS accounts, (SELECT count(*) FROM pgbench_branches) AS branches, (SELECT count(*) FROM pgbench_tellers) AS tellers, (SELECT count(*) FROM pgbench_history) AS history'
\c shop - :host :src_port
:count_tables \gset src_shop_
\c billing - :host :src_port
:count_tables \gset src_billing_
\c shop - :host :dst_port
:count_tables \gset dst_shop_
\c billing - :host :dst_port
:count_tables \gset dst_billing_
\c postgres - :host :dst_port
\set ECHO none
SELECT database, "table", source, destination, source = destination AS same
  FROM (VALUES ('shop', 'pgbench_accounts', :src_shop_accounts, :dst_shop_accounts),
               ('shop', 'pgbench_branches', :src_shop_branches, :dst_shop_branches),
               ('shop', 'pgbench_tellers', :src_shop_tellers, :dst_shop_tellers),
               ('shop', 'pgbench_history', :src_shop_history, :dst_shop_history),
               ('billing', 'pgbench_accounts', :src_billing_accounts, :dst_billing_accounts),
               ('billing', 'pgbench_branches', :src_billing_branches, :dst_billing_branches),
               ('billing', 'pgbench_tellers', :src_billing_tellers, :dst_billing_tellers),
               ('billing', 'pgbench_history', :src_billing_history, :dst_billing_history))
       AS c(database, "table", source, destination);
SELECT :src_shop_accounts = :dst_shop_accounts AND :src_shop_branches = :dst_shop_branches
   AND :src_shop_tellers = :dst_shop_tellers AND :src_shop_history = :dst_shop_history
   AND :src_billing_accounts = :dst_billing_accounts AND :src_billing_branches = :dst_billing_branches
   AND :src_billing_tellers = :dst_billing_tellers AND :src_billing_history = :dst_billing_history AS same \gset
\if :same
\else
DO $$ BEGIN RAISE EXCEPTION 'the row counts of source and destination differ'; END $$;
\endif
\set ECHO queries

\echo
\echo '== After the cutover: nothing of the job is left on either side'
SELECT count(*) AS subscriptions FROM pg_subscription;
\c shop - :host :src_port
SELECT (SELECT count(*) FROM pg_replication_slots) AS slots, (SELECT count(*) FROM pg_publication) AS publications_in_shop;
\echo '-- the source stays fenced: a new session on shop is read-only ...'
SHOW default_transaction_read_only;
\echo '-- ... until the fence is lifted (to write there again, to fall back, say):'
\c postgres - :host :src_port
ALTER DATABASE shop RESET default_transaction_read_only;
ALTER DATABASE billing RESET default_transaction_read_only;
