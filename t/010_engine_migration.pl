# t/010_engine_migration.pl: the engine migrates three databases under load
# (ENGINE.md 2-4, 7).
#
# A source server holds three databases, bank1 to bank3: pgbench's tables
# (scale 2, 1 and 1) and every other kind of table a migration must carry
# (extra_tables: no primary key, REPLICA IDENTITY FULL, serial and identity
# columns, a sequence, a partitioned table, a generated column, an
# expression index, a foreign key, views).  alice, an operator, starts one
# continuous job for the three while pgbench writes on bank1 and bank2,
# updating a table without a primary key too: no write on the source may
# fail.  We watch dms_job_progress move during the full dump, see every
# database streaming in CDC while the load goes on, stop the load and
# promote.  Once the job is Completed, every table of every database is
# compared row by row with the source (no row lost, doubled or extra), the
# schemas are the same, every sequence is ahead of every copied value, and
# every row the load inserted into the table without a primary key is
# there.  The source is fenced: a session that was connected was ended, a
# new one cannot write, until the README's ALTER DATABASE ... RESET
# default_transaction_read_only.  The history tells the story: started,
# dump_completed, promoted, by the engine's role; and nothing of the job is
# left on either server.

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

my ($source, $dest) = engine_nodes();
my $engine = engine_role($dest);

my %scale = (bank1 => 2, bank2 => 1, bank3 => 1);
my @dbs = sort keys %scale;
my @loaded = qw(bank1 bank2);
make_databases($source, @dbs);
my %tables;
foreach my $db (@dbs)
{
	pgbench_init($source, $db, $scale{$db});
	$tables{$db} = 4 + extra_tables($source, $db);
}

# ---------------------------------------------------------------------
# The full dump, under load
# ---------------------------------------------------------------------

my $job = create_job($dest, 'three banks', 'continuous', \@dbs);
my %load = map { $_ => pgbench_load_start($source, $_, script => 1) } @loaded;

is(operator($dest, "SELECT dms_start($job)"),
	'starting', 'alice starts the job of bank1, bank2 and bank3: "Starting..."');

my @samples;
ok(wait_for_job($dest, $job, 'running', 'cdc', 180, samples => \@samples),
	'the job reaches Running (CDC) while pgbench writes on bank1 and bank2');

# dms_job_progress showed the copy moving: a database copying, a percent
# between 0 and 100, or tables_copied growing.
my (%tables_copied, @moving);
foreach my $s (@samples)
{
	foreach my $p (@{ $s->{progress} })
	{
		my $db = $p->{database_name};
		push @moving, "$db copying" if $p->{state} eq 'copying';
		push @moving, "$db at $p->{percent}%"
		  if defined $p->{percent} && $p->{percent} > 0 && $p->{percent} < 100;
		push @moving, "$db tables_copied $tables_copied{$db} -> $p->{tables_copied}"
		  if defined $tables_copied{$db} && $p->{tables_copied} > $tables_copied{$db};
		$tables_copied{$db} = $p->{tables_copied};
	}
}
ok(scalar(@moving),
	'dms_job_progress showed the full dump moving, in ' . scalar(@samples) . ' looks: '
	  . join(', ', @moving[ 0 .. ($#moving < 4 ? $#moving : 4) ]));

# ---------------------------------------------------------------------
# CDC, under load
# ---------------------------------------------------------------------

ok( $dest->poll_query_until(
		'postgres', qq{
SELECT string_agg(database_name || ' ' || state || ' ' || (percent = 100), ', ' ORDER BY database_name)
  FROM dms_job_progress WHERE job_id = $job},
		'bank1 streaming true, bank2 streaming true, bank3 streaming true'),
	'in CDC, every database is streaming, at 100 percent');

# The load goes on in CDC for some seconds; the lag is watched meanwhile.
my $cdc_until = time + 4;
while (time < $cdc_until)
{
	push @samples, progress($dest, $job);
	usleep(200_000);
}
my @lag = map { $_->{lag_bytes} // 0 } map { @{ $_->{progress} } } @samples;
my $max_lag = (sort { $b <=> $a } @lag)[0] // 0;

# The lag in time is how long ago the source was where the destination has
# applied to.  A session on the destination holds a lock that bank1's
# changes wait for: while pgbench goes on writing there, bank1's lag grows
# second by second, and falls back once the lock is released.
my $bank1_lag = qq{SELECT coalesce(extract(epoch FROM lag), -1) || ' ' || lag_bytes
  FROM dms_job_progress WHERE job_id = $job AND database_name = 'bank1'};
my $blocker = session_start($dest, 'bank1',
	'BEGIN; LOCK TABLE pgbench_accounts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT');
my ($held_lag, $held_bytes) = (0, 0);
my $held_until = time + 4.5;
while (time < $held_until)
{
	($held_lag, $held_bytes) = split / /, $dest->safe_psql('postgres', $bank1_lag);
	last if $held_lag >= 2;
	usleep(100_000);
}
ok($held_lag >= 2 && $held_bytes > 0,
	"while bank1's changes wait for a lock on the destination, its lag grows (seen $held_lag s, $held_bytes bytes)");
session_end($blocker);
ok( $dest->poll_query_until(
		'postgres', "SELECT extract(epoch FROM lag) < 1 FROM dms_job_progress WHERE job_id = $job AND database_name = 'bank1'"),
	'... and falls back below a second once the lock is released');

# A client connected to bank3 before the promotion, in a long query: the
# fence ends it (ENGINE.md 4), since it would keep writing.
my $sleeper = session_start($source, 'bank3', 'SELECT pg_sleep(170)');

my %loaded_rows;
foreach my $db (@loaded)
{
	my $r = pgbench_load_stop($load{$db});
	load_ok($r, "$db, during the full dump and CDC");
	$loaded_rows{$db} = $r->{transactions};
}

# ---------------------------------------------------------------------
# The promotion
# ---------------------------------------------------------------------

is(operator($dest, "SELECT dms_promote($job)"),
	'running', 'alice promotes the job: Running (Promote in progress)');
ok(wait_for_job($dest, $job, 'completed', undef, 180), 'the job is Completed');

my $sleeper_err = session_end($sleeper);
ok(defined $sleeper_err, 'the session connected to bank3 before the promotion has ended');
like($sleeper_err // '', qr/terminating connection|server closed the connection|connection to server was lost/,
	'... the fence ended it');

is( $dest->safe_psql(
		'postgres',
		"SELECT string_agg(database_name || ' ' || state, ', ' ORDER BY database_name) FROM dms_job_progress WHERE job_id = $job"
	),
	'bank1 done, bank2 done, bank3 done',
	'dms_job_progress: every database is done');

# ---------------------------------------------------------------------
# What arrived
# ---------------------------------------------------------------------

my %rows;
foreach my $db (@dbs)
{
	# extra_nopk's UPDATEs cannot be streamed (no replica identity): its
	# rows are compared on what no update changes.
	my $r = tables_equal($source, $dest, $db, columns => { 'public.extra_nopk' => 'id, payload' });
	is($r->{compared}, $tables{$db},
		"$db: all $tables{$db} tables compared row by row (pgbench's 4, 8 more; partitions one by one)");
	is(join("\n", @{ $r->{differences} }),
		'', "$db: no row lost, doubled or extra in any table ($r->{rows} rows)");
	$rows{$db} = $r->{rows};
	is(join("\n", schema_differences($source, $dest, $db)),
		'', "$db: the schema is the source's (pg_dump --schema-only, owners aside)");
	my $s = sequences_ahead($source, $dest, $db);
	is($s->{checked}, 3, "$db: three sequences (a bigserial, an identity, a sequence of its own)");
	is(join("\n", @{ $s->{problems} }),
		'', "$db: every sequence is ahead of the source's and of every value its column holds");
}

# The table without a primary key: every row the load inserted arrived,
# while its updates on the source went through.
foreach my $db (@loaded)
{
	my $inserted = q{SELECT count(*) FROM extra_nopk WHERE payload LIKE 'load %'};
	my $n = $source->safe_psql($db, $inserted);
	cmp_ok($n, '>', 0, "$db: the load inserted $n rows into extra_nopk, which has no primary key");
	is($dest->safe_psql($db, $inserted), $n, "$db: ... all $n arrived, once each");
	cmp_ok($source->safe_psql($db, 'SELECT sum(touched) FROM extra_nopk'),
		'>', 0, "$db: ... and the load's UPDATEs of extra_nopk on the source succeeded");
}

# ---------------------------------------------------------------------
# The history
# ---------------------------------------------------------------------

my @h = history($dest, $job);
is(join(' ', map { $_->{cause} } @h),
	'create start started dump_completed promote promoted',
	'the history: create, start, started, dump_completed, promote, promoted');
is( join(' ', map { "$_->{cause}:$_->{actor}" } @h),
	"create:alice start:alice started:$engine dump_completed:$engine promote:alice promoted:$engine",
	"alice's actions, and the engine's events by its role ($engine)");
my %at = map { $_->{cause} => $_->{at} } @h;
my ($started) = grep { $_->{cause} eq 'started' } @h;
like($started->{message} // '', qr/pgbench_history/,
	'the "started" message names the tables without a primary key: pgbench_history ...');
like($started->{message} // '', qr/extra_nopk/, '... and extra_nopk');

# The load really ran during the full dump and during CDC (pgbench_history
# rows carry the time of their transaction).
foreach my $db (@loaded)
{
	foreach my $phase ([ 'the full dump', 'started', 'dump_completed' ], [ 'CDC', 'dump_completed', 'promote' ])
	{
		my ($what, $from, $to) = @$phase;
		if (!defined $at{$from} || !defined $at{$to})
		{
			fail("$db: pgbench wrote during $what: the history has no $from or no $to");
			next;
		}
		cmp_ok(
			$source->safe_psql(
				$db, qq{
SELECT count(*) FROM pgbench_history
 WHERE mtime BETWEEN to_timestamp($at{$from})::timestamp AND to_timestamp($at{$to})::timestamp}),
			'>', 0, "$db: pgbench wrote during $what");
	}
}

is(consistency_violations($dest, 'postgres'), '', 'the job is in the state of its last history row');

# ---------------------------------------------------------------------
# The fence on the source
# ---------------------------------------------------------------------

foreach my $db (@dbs)
{
	my ($state, $msg) = write_refused($source, $db);
	is($state, '25006', "$db: a new session on the source cannot write ($msg)");
}
lift_fence($source, @dbs);
foreach my $db (@dbs)
{
	my ($state, $msg) = write_refused($source, $db);
	is($state, '', "$db: after ALTER DATABASE $db RESET default_transaction_read_only, it can");
}

is(join("\n", wait_for_nothing_left($source, $dest)),
	'', 'nothing is left: no slot or publication on the source, no subscription or file on the destination');

note sprintf('rows: %s', join(', ', map { "$_ $rows{$_}" } @dbs));
note sprintf('load: %s transactions', join(', ', map { "$_ $loaded_rows{$_}" } @loaded));
my $span = sub {
	my ($from, $to) = @_;
	return defined $at{$from} && defined $at{$to} ? sprintf('%.1f', $at{$to} - $at{$from}) : '?';
};
note sprintf('seconds: starting %s, full dump %s, CDC %s, promotion %s',
	$span->('start', 'started'), $span->('started', 'dump_completed'),
	$span->('dump_completed', 'promote'), $span->('promote', 'promoted'));
note "largest lag_bytes observed: $max_lag";

$source->stop;
$dest->stop;
done_testing();
