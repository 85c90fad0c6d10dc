# t/012_engine_crash.pl: the engine survives the destination's crashes
# (ENGINE.md 4, 7).
#
# The source holds steady (pgbench scale 1 and every other kind of table),
# which pgbench keeps writing, and heavy (scale 5, so that its full dump
# lasts).  alice starts a job of steady and, once it streams, a job of
# heavy.  While heavy's rows are being copied and steady's changes applied,
# the destination is killed: SIGKILL of its postmaster and every child, as
# a power cut would.  It starts again through crash recovery, and the
# engine picks both jobs up without anyone's help: heavy's copy goes on or
# starts over and reaches CDC, steady streams on.  Then the destination is
# killed once more, both jobs in CDC under load.  After the load stops,
# both jobs are promoted and Completed; every table equals the source's,
# no row lost and none applied twice (pgbench_history and extra_nopk have
# no key that would refuse a second copy of a row), every sequence is
# ahead, the histories hold no event the crashes made up, and nothing of
# either job is left on either server.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsTest;
use DmsEngine;

my ($source, $dest) = engine_nodes();
my $engine = engine_role($dest);

make_databases($source, qw(steady heavy));
my %tables;
pgbench_init($source, 'steady', 1);
$tables{steady} = 4 + extra_tables($source, 'steady');
pgbench_init($source, 'heavy', 5);
$tables{heavy} = 4 + extra_tables($source, 'heavy');

# Kills the destination and starts it again; checks it ran crash recovery.
sub crash
{
	my ($what) = @_;
	my $offset = -s $dest->logfile;
	my $killed = kill_cluster($dest);
	$dest->start;
	like(
		slurp_file($dest->logfile, $offset),
		qr/database system was (?:interrupted|not properly shut down); automatic recovery in progress|redo starts? at/,
		"$what: the destination was killed (postmaster and $killed children) and ran crash recovery");
	return;
}

# A row inserted into marks on the source arrives on the destination.
sub streams
{
	my ($db, $id, $what) = @_;
	$source->safe_psql($db, "INSERT INTO marks VALUES ($id, '$what')");
	ok($dest->poll_query_until($db, "SELECT count(*) FROM marks WHERE id = $id", '1'),
		"$what: $db streams: a row inserted on the source arrives");
	return;
}

# ---------------------------------------------------------------------
# A crash during heavy's full dump and steady's CDC
# ---------------------------------------------------------------------

my $load = pgbench_load_start($source, 'steady', script => 1);
my $steady = create_job($dest, 'steady', 'continuous', ['steady']);
is(operator($dest, "SELECT dms_start($steady)"), 'starting', 'alice starts the job of steady, under load');
ok(wait_for_job($dest, $steady, 'running', 'cdc'), 'steady reaches Running (CDC)');

my $heavy = create_job($dest, 'heavy', 'continuous', ['heavy']);
is(operator($dest, "SELECT dms_start($heavy)"), 'starting', 'alice starts the job of heavy (scale 5)');
is( when_job(
		$dest, $heavy,
		when => $COPYING,
		missed => q{j.status <> 'starting' AND j.phase IS DISTINCT FROM 'full_dump'}),
	'running/full_dump',
	'heavy is copying rows');
crash('during the full dump');

ok(wait_for_job($dest, $heavy, 'running', 'cdc'),
	'after the crash, heavy finishes its full dump by itself and reaches Running (CDC)');
ok(wait_for_job($dest, $steady, 'running', 'cdc'), 'steady is still Running (CDC)');
streams('steady', 1, 'after the first crash');
streams('heavy', 1, 'after the first crash');

# ---------------------------------------------------------------------
# A crash in CDC, under load
# ---------------------------------------------------------------------

sleep 2;
crash('in CDC');
ok(wait_for_job($dest, $_, 'running', 'cdc'), "job $_ is still Running (CDC)") foreach ($steady, $heavy);
streams('steady', 2, 'after the second crash');
streams('heavy', 2, 'after the second crash');
sleep 2;
load_ok(pgbench_load_stop($load), 'steady, through both crashes');

# ---------------------------------------------------------------------
# Both promoted: identical data
# ---------------------------------------------------------------------

foreach my $job ($steady, $heavy)
{
	is(operator($dest, "SELECT dms_promote($job)"), 'running', "alice promotes job $job");
}
ok(wait_for_job($dest, $_, 'completed', undef), "job $_ is Completed") foreach ($steady, $heavy);

foreach my $db (qw(steady heavy))
{
	my $r = tables_equal($source, $dest, $db, columns => { 'public.extra_nopk' => 'id, payload' });
	is($r->{compared}, $tables{$db}, "$db: all $tables{$db} tables compared row by row");
	is(join("\n", @{ $r->{differences} }),
		'', "$db: no row lost, doubled or extra, in spite of the crashes ($r->{rows} rows)");
	my $s = sequences_ahead($source, $dest, $db);
	is(join("\n", @{ $s->{problems} }), '', "$db: all $s->{checked} sequences are ahead");
	is(join("\n", schema_differences($source, $dest, $db)), '', "$db: the schema is the source's");
}

foreach my $job ($steady, $heavy)
{
	my @h = history($dest, $job);
	is(join(' ', map { "$_->{cause}:$_->{actor}" } @h),
		"create:alice start:alice started:$engine dump_completed:$engine promote:alice promoted:$engine",
		"job $job: the history has no event the crashes made up");
}
is(consistency_violations($dest, 'postgres'), '', 'every job is in the state of its last history row');

lift_fence($source, qw(steady heavy));
is(join("\n", wait_for_nothing_left($source, $dest)),
	'', 'nothing is left: no slot, publication, subscription or file');

$source->stop;
$dest->stop;
done_testing();
