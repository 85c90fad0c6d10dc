# t/017_engine_memory.pl: the engine's processes do not grow while a job
# streams: a worker streams for weeks, a manager runs for months (STYLE.md,
# "a million calls ... must not grow the backend").
#
# A continuous job of memdb (pgbench scale 1) in Running (CDC) under a light
# load, with the engine's naptime at 10 ms, so that the manager and the
# job's worker go round their loops up to a hundred times a second.  After a
# warm-up, the memory contexts of both are read twice, 20 seconds apart
# (pg_log_backend_memory_contexts: the "Grand total" line each writes to the
# server log): the bytes they use may not grow by more than 16 kB.  The
# manager once kept the list of its workers of every turn, some 80 bytes a
# turn (bench/migrate's workload memory found it: 400 bytes a second at a
# naptime of 200 ms); here that would be tens of kilobytes.  Then the job is
# promoted: Completed, every table equal, nothing left.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use DmsTest;
use DmsEngine;

my $t0 = time;
my ($source, $dest) = engine_nodes(destination_conf => ["dms_lifecycle.naptime = '10ms'"]);

make_databases($source, 'memdb');
pgbench_init($source, 'memdb', 1);
my $job = create_job($dest, 'memdb', 'continuous', ['memdb']);
is(operator($dest, "SELECT dms_start($job)"), 'starting', 'alice starts the job of memdb');
ok(wait_for_job($dest, $job, 'running', 'cdc'), 'the job reaches Running (CDC)');
my $load = pgbench_load_start($source, 'memdb', rate => 20);

my %pid = (
	'the manager' => $dest->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'dms_lifecycle manager'}),
	'the job worker' => $dest->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity WHERE application_name = 'dms_lifecycle job $job'}));

# The bytes a process's memory contexts use between its turns, from the
# server log: a dump taken while a turn's transaction runs (its SPI
# contexts, some 45 kB, come and go with it) is taken again.
sub contexts_used
{
	my ($pid) = @_;
	my $pattern = qr/\[$pid\] .*?LOG:  Grand total: \d+ bytes in \d+ blocks; \d+ free \(\d+ chunks\); (\d+) used/;
	for my $try (1 .. 50)
	{
		my $offset = -s $dest->logfile;
		$dest->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
		$dest->wait_for_log($pattern, $offset);
		my $dump = slurp_file($dest->logfile, $offset);
		$dump =~ $pattern or die "no Grand total for process $pid";
		my $used = $1;
		return $used unless $dump =~ /\[$pid\] .*?LOG:  TopTransactionContext:/;
		usleep(20_000);
	}
	die "process $pid was in a transaction at each of 50 dumps";
}

sleep 5;    # warm-up: caches filled, every kind of turn taken
my %before = map { $_ => contexts_used($pid{$_}) } keys %pid;
sleep 20;
my %after = map { $_ => contexts_used($pid{$_}) } keys %pid;
foreach my $who (sort keys %pid)
{
	cmp_ok($after{$who} - $before{$who}, '<=', 16384,
		"$who (pid $pid{$who}): its memory contexts use $before{$who} bytes, then $after{$who} 20 s later");
}
is($dest->safe_psql('postgres', qq{SELECT pid FROM pg_stat_activity WHERE application_name = 'dms_lifecycle job $job'}),
	$pid{'the job worker'}, 'the same job worker streamed all along');

load_ok(pgbench_load_stop($load), 'the load');
is(operator($dest, "SELECT dms_promote($job)"), 'running', 'alice promotes the job');
ok(wait_for_job($dest, $job, 'completed', undef), 'the job is Completed');
my $r = tables_equal($source, $dest, 'memdb');
is(join("\n", @{ $r->{differences} }), '', "no row lost, doubled or extra ($r->{compared} tables, $r->{rows} rows)");
is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left behind');
lift_fence($source, 'memdb');

note sprintf('%.1f s', time - $t0);
$source->stop;
$dest->stop;
done_testing();
