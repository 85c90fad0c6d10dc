-- scripts/demo-migration/source.sql: what the source needs for a migration, played by
-- scripts/demo as postgres on the source (wal_level = logical is in its postgresql.conf).
--
-- The engine's role on the source may replicate (REPLICATION), reads every table, and, on
-- PostgreSQL up to 15, publishes them, which takes their owner or a superuser: migrator
-- owns both databases, and pgbench creates their tables as migrator.  Owning the databases
-- also lets it fence them at the promotion (ALTER DATABASE ... SET
-- default_transaction_read_only) and end its own sessions there.  A superuser is simplest.

\getenv password DEMO_PASSWORD
\echo '-- (migrator''s password is random, made for this run, and not shown)'
\set ECHO none
CREATE ROLE migrator LOGIN REPLICATION PASSWORD :'password';
\set ECHO queries
SELECT rolname, rolsuper, rolreplication FROM pg_roles WHERE rolname = 'migrator';
CREATE DATABASE shop OWNER migrator;
CREATE DATABASE billing OWNER migrator;
