# t/022_engine_range_locks.pl: a DBA's VACUUM FULL, or REINDEX TABLE, on
# the source, while a large table is copied in ranges, waits for the copy;
# it does not stop it (ENGINE.md 3 and 8: "large tables split into ranges").
#
# Each copy stream reads in one transaction, in the snapshot, and holds a
# lock on every table it has read, and on its indexes (the planner of a
# range's query takes them), until the copy ends: the table cannot be
# rewritten (new row addresses) between two of its ranges.  A stream that
# asks for its first lock on a table behind a DBA's VACUUM FULL (ACCESS
# EXCLUSIVE on the table), or on its index behind a REINDEX TABLE (SHARE on
# the table, which lets the copy read, but ACCESS EXCLUSIVE on each index),
# which itself waits for another stream's lock, would wait for ever, and
# the copy with it.
#
# Two stories, the same but for the DBA's command, each in a database of
# its own.  The source's database holds "big" (about 3 MB: 4 ranges with
# dms_lifecycle.split_table_size = 1MB and 2 streams) and "whole" (about
# 900 kB: larger than a range, not split).  Their CHECK constraint calls
# hold_here(), which waits while someone holds the advisory lock 4242 of
# the database it runs in.  The destination database is made empty
# beforehand, and a session holds that lock there: a one-time job with
# dump_parallelism optimal starts copying "whole" on one stream and the
# first range of "big" on the other, and both wait at the destination.
# The source's "big" and its index are then locked by the copy; the DBA
# runs VACUUM FULL big (or REINDEX TABLE big) there, which waits.  The
# session at the destination ends: the job copies the rest and completes,
# every row of both tables arrives once, and the DBA's command ends once
# the copy is over.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use DmsEngine;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($source, $dest) = engine_nodes(destination_conf => ["dms_lifecycle.split_table_size = '1MB'"]);

# story($db, $command, $waits_on): the story in database $db, the DBA
# running $command on the source, which waits for ACCESS EXCLUSIVE on the
# relation $waits_on.
sub story
{
	my ($db, $command, $waits_on) = @_;
	make_databases($source, $db);
	$source->safe_psql(
		$db, q{
CREATE FUNCTION hold_here() RETURNS boolean LANGUAGE sql
  AS $$SELECT true FROM pg_catalog.pg_advisory_xact_lock_shared(4242)$$;
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
CREATE TABLE whole (id int PRIMARY KEY, pad text NOT NULL CHECK (hold_here()));
INSERT INTO big SELECT i, repeat('b', 100) FROM generate_series(1, 22000) i;
INSERT INTO whole SELECT i, repeat('w', 100) FROM generate_series(1, 6600) i;
});
	my ($big, $whole) = split /\|/,
	  $source->safe_psql($db, q{SELECT pg_relation_size('big') / 1024, pg_relation_size('whole') / 1024});
	ok($big > 2048 && $big <= 3072 && $whole > $big / 4 && $whole < 1024,
		"$db: \"big\" ($big kB) makes 4 ranges, each smaller than \"whole\" ($whole kB), which is not split");

	# The destination database, empty, and a session there that holds the lock.
	$dest->safe_psql('postgres', "CREATE DATABASE $db");
	my $holder = session_start($dest, $db, 'SELECT pg_advisory_lock(4242), pg_sleep(600)');

	my $job = create_job($dest, $db, 'one_time', [$db], 'optimal');
	operator($dest, "SELECT dms_start($job)");
	ok( $dest->poll_query_until(
			'postgres', q{SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}),
		"$db: both copy streams wait at the destination");
	# (taken by every stream before either began to copy)
	foreach my $rel ('big', 'big_pkey')
	{
		is( $source->safe_psql(
				$db, qq{
SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.relation = '$rel'::regclass AND l.granted AND a.application_name = 'dms_lifecycle'}),
			'2', "$db: both copy streams hold their lock on \"$rel\" at the source");
	}

	my $dba = session_start($source, $db, $command);
	ok( $source->poll_query_until(
			$db,
			qq{SELECT count(*) = 1 FROM pg_locks WHERE relation = '$waits_on'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted}
		),
		"$db: the DBA's $command waits for the copy");

	$dest->safe_psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock(4242)%'});
	session_end($holder);

	ok(wait_for_job($dest, $job, 'completed', undef, 60), "$db: the job copies the rest and completes");
	like(
		slurp_file($dest->logfile),
		qr/migration job $job, database "$db": table public\.big \(\d+ blocks\) copied in 4 ranges/,
		"$db: \"big\" was copied in 4 ranges");
	is(session_end($dba, 60), '', "$db: ... and the $command ends, after the copy");
	# (a command still waiting would hold up the reads below)
	$source->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = '$command'");
	my $eq = tables_equal($source, $dest, $db);
	is(join("\n", @{ $eq->{differences} }), '', "$db: every row of both tables arrived once ($eq->{rows} rows)");

	is(join("\n", wait_for_nothing_left($source, $dest)), '', "$db: nothing is left on either side");
	return;
}

story('locks', 'VACUUM FULL big', 'big');
story('reindex', 'REINDEX TABLE big', 'big_pkey');

$source->stop;
$dest->stop;
done_testing();
