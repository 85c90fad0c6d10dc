# t/022_engine_range_locks.pl: a DBA's VACUUM FULL on the source, while a
# large table is copied in ranges, waits for the copy; it does not stop it
# (ENGINE.md 3 and 8: "large tables split into ranges").
#
# Each copy stream reads in one transaction, in the snapshot, and holds a
# lock on every table it has read until the copy ends: the table cannot be
# rewritten (new row addresses) between two of its ranges.  A stream that
# asks for its first lock on a table behind a DBA's VACUUM FULL, which
# itself waits for another stream's lock on that table, would wait for
# ever, and the copy with it.
#
# The source's database "locks" holds "big" (about 3 MB: 4 ranges with
# dms_lifecycle.split_table_size = 1MB and 2 streams) and "whole" (about
# 900 kB: larger than a range, not split).  Their CHECK constraint calls
# hold_here(), which waits while someone holds the advisory lock 4242 of
# the database it runs in.  The destination database is made empty
# beforehand, and a session holds that lock there: a one-time job with
# dump_parallelism optimal starts copying "whole" on one stream and the
# first range of "big" on the other, and both wait at the destination.
# The source's "big" is then locked by the copy; the DBA runs VACUUM FULL
# big there, which waits.  The session at the destination ends: the job
# copies the rest and completes, every row of both tables arrives once,
# and the VACUUM FULL ends once the copy is over.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use DmsEngine;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($source, $dest) = engine_nodes(destination_conf => ["dms_lifecycle.split_table_size = '1MB'"]);
make_databases($source, 'locks');
$source->safe_psql(
	'locks', q{
CREATE FUNCTION hold_here() RETURNS boolean LANGUAGE sql
  AS $$SELECT true FROM pg_catalog.pg_advisory_xact_lock_shared(4242)$$;
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
CREATE TABLE whole (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
INSERT INTO big SELECT i, repeat('b', 100) FROM generate_series(1, 22000) i;
INSERT INTO whole SELECT i, repeat('w', 100) FROM generate_series(1, 6600) i;
});
my ($big, $whole) = split /\|/,
  $source->safe_psql('locks', q{SELECT pg_relation_size('big') / 1024, pg_relation_size('whole') / 1024});
ok($big > 2048 && $big <= 3072 && $whole > $big / 4 && $whole < 1024,
	"\"big\" ($big kB) makes 4 ranges, each smaller than \"whole\" ($whole kB), which is not split");

# The destination database, empty, and a session there that holds the lock.
$dest->safe_psql('postgres', 'CREATE DATABASE locks');
my $holder = session_start($dest, 'locks', 'SELECT pg_advisory_lock(4242), pg_sleep(600)');

my $job = create_job($dest, 'locks', 'one_time', ['locks'], 'optimal');
operator($dest, "SELECT dms_start($job)");
ok( $dest->poll_query_until(
		'postgres', q{SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}),
	'both copy streams wait at the destination');
ok( $source->poll_query_until(
		'locks', q{
SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.relation = 'big'::regclass AND l.granted AND a.application_name = 'dms_lifecycle'}),
	'a copy stream holds its lock on "big" at the source');

my $vacuum = session_start($source, 'locks', 'VACUUM FULL big');
ok( $source->poll_query_until(
		'locks', q{SELECT count(*) = 1 FROM pg_locks WHERE relation = 'big'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted}),
	'the DBA\'s VACUUM FULL big waits for the copy');

$dest->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock(4242)%'});
session_end($holder);

ok(wait_for_job($dest, $job, 'completed', undef, 60), 'the job copies the rest and completes');
like(slurp_file($dest->logfile), qr/migration job $job, database "locks": table public\.big \(\d+ blocks\) copied in 4 ranges/,
	'"big" was copied in 4 ranges');
is(session_end($vacuum, 60), '', '... and the VACUUM FULL ends, after the copy');
# (a VACUUM FULL still waiting would hold up the reads below)
$source->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'VACUUM FULL big'});
my $eq = tables_equal($source, $dest, 'locks');
is(join("\n", @{ $eq->{differences} }), '', "every row of both tables arrived once ($eq->{rows} rows)");

is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left on either side');

$source->stop;
$dest->stop;
done_testing();
