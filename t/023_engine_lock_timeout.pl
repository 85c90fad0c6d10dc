# t/023_engine_lock_timeout.pl: a DBA's transaction on the source that
# holds a lock a copy stream needs, and waits for one another stream holds,
# fails the database's copy after dms_lifecycle.copy_lock_timeout, with a
# message that names the table and says what to do, instead of holding the
# copy, and itself, for ever (ENGINE.md 3 and 8).
#
# The source's database "ddl" holds "first" (about 5 MB), "second" (about
# 150 kB) and "small" (10 rows).  The CHECK constraint of "first" and
# "second" calls hold_here(), which waits while someone holds the advisory
# lock 4242 of the database it runs in.  The destination database is made
# empty beforehand, and a session holds that lock there: a one-time job
# with dump_parallelism optimal (two streams; no table is large enough to
# be split) starts copying "first" on one stream and "second" on the
# other, and both wait at the destination.  The DBA then runs, in one
# transaction, ALTER TABLE small and ALTER TABLE first: the first is done
# at once, the second waits for the stream that reads "first".  The
# session at the destination ends: the stream of "second" ends it and asks
# for "small", behind the DBA's lock.  The stream of "first" waits for
# nothing on the source (it waits for the engine, which waits for the
# other stream): PostgreSQL sees no deadlock, and without a lock_timeout
# the copy and the DBA's transaction would wait for ever.  With
# copy_lock_timeout at 2s the job goes Failed in full dump, naming
# "small" and the fix, and the DBA's transaction then commits.  Deleted,
# the job leaves nothing behind.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use DmsEngine;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($source, $dest) = engine_nodes();
is($dest->safe_psql('postgres', 'SHOW dms_lifecycle.copy_lock_timeout'), '1min', 'copy_lock_timeout is 1min by default');
$dest->safe_psql('postgres', q{ALTER SYSTEM SET dms_lifecycle.copy_lock_timeout = '2s'});
$dest->reload;
ok($dest->poll_query_until('postgres', q{SELECT current_setting('dms_lifecycle.copy_lock_timeout') = '2s'}),
	'the DBA sets it to 2s (a reload)');

make_databases($source, 'ddl');
$source->safe_psql(
	'ddl', q{
CREATE FUNCTION hold_here() RETURNS boolean LANGUAGE sql
  AS $$SELECT true FROM pg_catalog.pg_advisory_xact_lock_shared(4242)$$;
CREATE TABLE first (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
CREATE TABLE second (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
CREATE TABLE small (id int PRIMARY KEY);
INSERT INTO first SELECT i, repeat('f', 100) FROM generate_series(1, 40000) i;
INSERT INTO second SELECT i, repeat('s', 100) FROM generate_series(1, 1000) i;
INSERT INTO small SELECT generate_series(1, 10);
});

$dest->safe_psql('postgres', 'CREATE DATABASE ddl');
my $holder = session_start($dest, 'ddl', 'SELECT pg_advisory_lock(4242), pg_sleep(600)');

my $job = create_job($dest, 'ddl', 'one_time', ['ddl'], 'optimal');
operator($dest, "SELECT dms_start($job)");
ok( $dest->poll_query_until(
		'postgres', q{SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}),
	'both copy streams wait at the destination');

my $ddl = 'ALTER TABLE small ADD COLUMN note text; ALTER TABLE first ADD COLUMN note text';
my $dba = session_start($source, 'ddl', $ddl);
ok( $source->poll_query_until(
		'ddl',
		q{SELECT count(*) = 1 FROM pg_locks WHERE relation = 'first'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted}
	),
	'the DBA\'s transaction holds "small" and waits for the stream that reads "first"');

$dest->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock(4242)%'});
session_end($holder);

ok(wait_for_job($dest, $job, 'failed', 'full_dump', 60), 'the job goes Failed in full dump');
my $message = job_error($dest, $job);
like(
	$message,
	qr/database "ddl": table public\.small: a concurrent DDL on the source held a lock the copy needed for longer than dms_lifecycle\.copy_lock_timeout \(canceling statement due to lock timeout\); restart the job once it is done/,
	'the message names the table, the DDL, the setting and the fix')
  or diag $message;
is(session_end($dba, 60), '', "... and the DBA's transaction commits");
is($source->safe_psql('ddl', q{SELECT count(*) FROM pg_attribute WHERE attname = 'note' AND attrelid IN ('first'::regclass, 'small'::regclass)}),
	'2', '... both its ALTER TABLEs');

operator($dest, "SELECT dms_delete($job)");
is(join("\n", wait_for_takedown($source, $dest, $job)), '', 'deleted, the job leaves nothing behind');
is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left on either side');
is($source->safe_psql('ddl', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dms_lifecycle'}),
	'0', 'no session of the engine is left on the source');

$source->stop;
$dest->stop;
done_testing();
