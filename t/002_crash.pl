# t/002_crash.pl: the lifecycle survives crashes (SPEC 5, 10).
#
# Several clients drive random actions and events on random jobs, committing
# each step and acknowledging it only after its COMMIT returned.  The server
# is killed at three points:
#   1. SIGKILL of the postmaster and every backend while the clients run;
#   2. an immediate shutdown while a transaction that changed, created and
#      deleted jobs is open;
#   3. SIGKILL while two set-based statements (dms_start over many jobs, and
#      a direct UPDATE along an edge) are half done.
# After each restart (crash recovery): every acknowledged change is there,
# every job's (status, phase) is the target of its last history row, each
# job's history is a continuous chain, no failure row belongs to a job that
# is not failed, the uncommitted work left no trace, and amcheck finds every
# btree index of the three tables consistent with its table (SPEC 11): the
# extension's own and a user's indexes of every kind, built with CREATE
# INDEX CONCURRENTLY while the clients of round 1 ran.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DmsTest;

my $clients = 4;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION dms_lifecycle; CREATE EXTENSION amcheck');
$node->safe_psql('postgres', walk_function_sql() . q{
-- r*: the jobs the random clients drive
SELECT dms_create_job('r0-' || i, CASE WHEN i % 4 = 0 THEN 'one_time' ELSE 'continuous' END::dms_migration_type,
                      ARRAY['a', 'b', 'c'])
  FROM generate_series(1, 30) i;
-- u*: the jobs of the open transaction (round 2)
SELECT dms_create_job('u' || i, 'continuous', ARRAY['a', 'b']) FROM generate_series(1, 6) i;
SELECT pg_temp.walk('u2', ARRAY['start', 'started', 'dump_completed']);
SELECT pg_temp.walk('u3', ARRAY['start', 'started', 'dump_completed', 'stop', 'stopped']);
SELECT pg_temp.walk('u4', ARRAY['start', 'started', 'failed|a broke|a']);
SELECT pg_temp.walk('u5', ARRAY['start', 'started', 'dump_completed', 'error|lagging']);
SELECT pg_temp.walk('u6', ARRAY['start', 'started', 'dump_completed', 'promote', 'promoted']);
SELECT dms_create_job('marker', 'continuous', ARRAY['a']);
-- s*, t*: the jobs of the interrupted set-based statements; v*: a committed one (round 3)
SELECT dms_create_job('s' || i, 'continuous', ARRAY['a']) FROM generate_series(1, 150) i;
SELECT dms_create_job('t' || i, 'continuous', ARRAY['a']) FROM generate_series(1, 150) i;
SELECT dms_create_job('v' || i, 'continuous', ARRAY['a']) FROM generate_series(1, 100) i;
});

# ---------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------

# One client: a DO loop that forever picks a random r* job and a random
# action or event, takes it in a subtransaction (refusals 55000, bad
# database edits 22023 and jobs deleted meanwhile P0002 are expected and
# skipped; anything else ends the client with an ERROR), commits, and only
# then says "acked <history id> <job id>" for a change that was made.
sub client_sql
{
	my ($round, $client) = @_;
	return qq{
DO \$client\$
DECLARE
    dbs text[] := ARRAY['a', 'b', 'c', 'd'];
    jid bigint;
    hid bigint;
    op int;
    n bigint := 0;
    done boolean;
BEGIN
    LOOP
        n := n + 1;
        hid := NULL;
        SELECT id INTO jid FROM dms_job WHERE name LIKE 'r%' ORDER BY random() LIMIT 1;
        BEGIN
            op := floor(random() * 21)::int;
            done := true;
            CASE op
                WHEN 0 THEN PERFORM dms_start(jid);
                WHEN 1 THEN PERFORM dms_stop(jid);
                WHEN 2 THEN PERFORM dms_resume(jid);
                WHEN 3 THEN PERFORM dms_restart(jid);
                WHEN 4 THEN PERFORM dms_promote(jid);
                WHEN 5 THEN
                    IF random() < 0.3 THEN PERFORM dms_delete(jid); ELSE done := false; END IF;
                WHEN 6 THEN PERFORM dms_set_dump_parallelism(jid,
                    (ARRAY['min', 'optimal', 'max'])[1 + floor(random() * 3)::int]::dms_dump_parallelism);
                WHEN 7 THEN PERFORM dms_add_database(jid, dbs[1 + floor(random() * 4)::int]);
                WHEN 8 THEN PERFORM dms_remove_database(jid, dbs[1 + floor(random() * 4)::int]);
                WHEN 9 THEN PERFORM dms_report(jid, 'started');
                WHEN 10 THEN PERFORM dms_report(jid, 'restarted');
                WHEN 11 THEN PERFORM dms_report(jid, 'resumed');
                WHEN 12 THEN PERFORM dms_report(jid, 'stopped');
                WHEN 13 THEN PERFORM dms_report(jid, 'dump_completed');
                WHEN 14 THEN PERFORM dms_report(jid, 'error', 'error ' || n || ' of client $client');
                WHEN 15 THEN PERFORM dms_report(jid, 'errors_cleared');
                WHEN 16 THEN PERFORM dms_report(jid, 'failed', 'failure ' || n || ' of client $client');
                WHEN 17 THEN PERFORM dms_report(jid, 'failed', 'database failure ' || n,
                                                dbs[1 + floor(random() * 4)::int]);
                WHEN 18 THEN PERFORM dms_report(jid, 'recovered');
                WHEN 19 THEN PERFORM dms_report(jid, 'promoted');
                ELSE
                    -- keep enough jobs alive
                    IF (SELECT count(*) FROM dms_job WHERE name LIKE 'r%') < 30 THEN
                        jid := dms_create_job('r$round-$client-' || n,
                            CASE WHEN random() < 0.25 THEN 'one_time' ELSE 'continuous' END::dms_migration_type,
                            ARRAY['a', 'b', 'c']);
                    ELSE
                        done := false;
                    END IF;
            END CASE;
            IF done THEN
                -- the change holds the job's row lock until the commit, so the
                -- job's newest history row is this step's
                SELECT max(id) INTO hid FROM dms_job_history WHERE job_id = jid;
            END IF;
        EXCEPTION
            WHEN object_not_in_prerequisite_state OR invalid_parameter_value OR no_data_found THEN
                hid := NULL;
        END;
        COMMIT;
        IF hid IS NOT NULL THEN
            RAISE NOTICE 'acked % %', hid, jid;
        END IF;
    END LOOP;
END
\$client\$;
};
}

sub start_clients
{
	my ($round) = @_;
	my @c;
	for my $i (1 .. $clients)
	{
		my %c = (out => '', err => '', name => "round $round client $i");
		$c{h} = IPC::Run::start(
			[
				'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
				$node->connstr('postgres'), '-c', client_sql($round, $i)
			],
			'<', \undef, '>', \$c{out}, '2>', \$c{err});
		push @c, \%c;
	}
	return @c;
}

sub acks
{
	my ($c) = @_;
	my @a;
	push @a, [ $1, $2 ] while $c->{err} =~ /NOTICE:  acked (\d+) (\d+)/g;
	return @a;
}

# Waits until every client has acknowledged at least $min changes.
sub wait_for_acks
{
	my ($min, @c) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$_->{h}->pump_nb foreach @c;
		return 1 unless grep { scalar(acks($_)) < $min } @c;
		die "a client ended early: $_->{err}"
		  foreach grep { !$_->{h}->pumpable } @c;
		usleep(50_000);
	}
	return 0;
}

sub finish_clients
{
	foreach my $c (@_)
	{
		eval { $c->{h}->finish; };
	}
}

# The checks after every restart.
sub check_after_restart
{
	my ($round, $log_offset, @c) = @_;

	like(
		slurp_file($node->logfile, $log_offset),
		qr/database system was (?:interrupted|not properly shut down); automatic recovery in progress|redo starts? at/,
		"round $round: the restart ran crash recovery");

	my @all_acks;
	foreach my $c (@c)
	{
		my @a = acks($c);
		cmp_ok(scalar(@a), '>=', 20,
			"$c->{name}: made changes before the crash (" . scalar(@a) . ')');
		like($c->{err},
			qr/server closed the connection unexpectedly|terminating connection|connection to server was lost/,
			"$c->{name}: was working until the crash cut its connection");
		my @errors = grep { /ERROR:/ } split /\n/, $c->{err};
		is(join("\n", @errors), '',
			"$c->{name}: met no error but refusals (55000, 22023, P0002)");
		push @all_acks, @a;
	}

	# Every acknowledged change survived, as the history row the step wrote.
	my $values = join(',', map { "($_->[0], $_->[1])" } @all_acks);
	is( $node->safe_psql(
			'postgres', qq{
SELECT string_agg(format('history row %s of job %s', a.id, a.job_id), ', ')
  FROM (VALUES $values) a(id, job_id)
 WHERE NOT EXISTS (SELECT FROM dms_job_history h WHERE h.id = a.id AND h.job_id = a.job_id)}
		),
		'',
		"round $round: all " . scalar(@all_acks) . ' acknowledged changes are in the history');

	is(consistency_violations($node, 'postgres'),
		'',
		"round $round: every job is in the state of its last history row, every history is a continuous chain, failure rows only for failed jobs"
	);
	check_indexes("round $round");
}

# amcheck (bt_index_check with heapallindexed) on every btree index of the
# three tables: one ok per index.
sub check_indexes
{
	my ($what) = @_;
	my @checks = btree_index_checks($node, 'postgres');
	cmp_ok(scalar(@checks), '>=', 10,
		"$what: amcheck checks the " . scalar(@checks) . ' btree indexes of the three tables, the user\'s included');
	foreach my $c (@checks)
	{
		is($c->[1], 'ok', "$what: bt_index_check(heapallindexed) finds $c->[0] consistent");
	}
}

# ---------------------------------------------------------------------
# Round 1: SIGKILL while the clients run.
# ---------------------------------------------------------------------

my @c = start_clients(1);
ok(wait_for_acks(25, @c), 'round 1: every client is changing jobs');

# While the clients change jobs, a user builds indexes of every kind on the
# three tables with CREATE INDEX CONCURRENTLY (each waits for the clients'
# transactions of the moment, then the clients' writes maintain it).
foreach my $sql (user_indexes_sql('CONCURRENTLY'))
{
	$node->safe_psql('postgres', $sql);
}
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE indisvalid) || ' of ' || count(*) FROM pg_index
   WHERE indexrelid::regclass::text LIKE 'user\_%'}),
	'5 of 5',
	'round 1: five indexes built concurrently while the clients ran, all valid');
$_->{h}->pump_nb foreach @c;
my %before_index = map { $_ => scalar(acks($_)) } @c;
ok(wait_for_acks(25 + (sort { $b <=> $a } values %before_index)[0], @c),
	'round 1: the clients go on changing jobs once the indexes are valid');
sleep(1);
my $log_offset = -s $node->logfile;
my $killed = kill_cluster($node);
cmp_ok($killed, '>=', $clients,
	"round 1: SIGKILL of the postmaster and its $killed children, backends included");
finish_clients(@c);
$node->start;
check_after_restart(1, $log_offset, @c);

# The random walk really went places: several statuses were reached.
cmp_ok(
	$node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT to_status) FROM dms_job_history WHERE job_name LIKE 'r%'"),
	'>=', 5,
	'round 1: the clients moved jobs through at least five statuses');

# ---------------------------------------------------------------------
# Round 2: immediate shutdown with a transaction open.
# ---------------------------------------------------------------------

my $u_jobs_sql = q{SELECT j::text FROM dms_job j WHERE name LIKE 'u%' ORDER BY id};
my $u_history_sql =
  q{SELECT h::text FROM dms_job_history h WHERE job_name LIKE 'u%' ORDER BY id};
my $u_failures_sql = q{
SELECT f::text FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id
 WHERE j.name LIKE 'u%' ORDER BY f.job_id, f.database_name};
my %u_before = (
	jobs => $node->safe_psql('postgres', $u_jobs_sql),
	history => $node->safe_psql('postgres', $u_history_sql),
	failures => $node->safe_psql('postgres', $u_failures_sql),
	history_rows => $node->safe_psql('postgres',
		q{SELECT count(*) FROM dms_job_history WHERE job_name LIKE 'u%'}));
is($u_before{failures}, $node->safe_psql('postgres',
		q{SELECT f::text FROM dms_job_failure f WHERE job_id = (SELECT id FROM dms_job WHERE name = 'u4')}),
	'round 2: before the transaction, u4 has its failure row');

@c = start_clients(2);
ok(wait_for_acks(25, @c), 'round 2: every client is changing jobs');

my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe(
	q{
SELECT dms_start(id) FROM dms_job WHERE name = 'u1';
UPDATE dms_job SET status = 'running', phase = 'full_dump' WHERE name = 'u1';
SELECT dms_report(id, 'failed', 'a broke', 'a') FROM dms_job WHERE name = 'u2';
SELECT dms_promote(id) FROM dms_job WHERE name = 'u3';
SELECT dms_restart(id) FROM dms_job WHERE name = 'u4';
SELECT dms_report(id, 'errors_cleared') FROM dms_job WHERE name = 'u5';
SELECT dms_delete(id) FROM dms_job WHERE name = 'u6';
SELECT dms_start(dms_create_job('ghost', 'continuous', ARRAY['a']));
});
# the open transaction sees its own changes
is( $open->query_safe(
		q{
SELECT string_agg(name || ':' || status || '/' || coalesce(phase::text, '-'), ' ' ORDER BY name)
  FROM dms_job WHERE name LIKE 'u%' OR name = 'ghost'}),
	'ghost:starting/- u1:running/full_dump u2:failed/cdc u3:running/promote_in_progress u4:restarting/- u5:running/cdc',
	'round 2: the open transaction changed, created and deleted jobs');
is( $open->query_safe(
		q{SELECT count(*) FROM dms_job_history WHERE job_name LIKE 'u%' OR job_name = 'ghost'}
	) - $u_before{history_rows},
	9,
	'round 2: ... and wrote their nine history rows');

# a change committed just before the crash must survive it
is($node->safe_psql('postgres', "SELECT dms_start(id) FROM dms_job WHERE name = 'marker'"),
	'starting', 'round 2: a change committed just before the crash');

$log_offset = -s $node->logfile;
$node->stop('immediate');
finish_clients(@c);
eval { $open->quit; };
$node->start;
check_after_restart(2, $log_offset, @c);

is($node->safe_psql('postgres', $u_jobs_sql),
	$u_before{jobs}, 'round 2: the jobs of the open transaction are as they were before it');
is($node->safe_psql('postgres', $u_history_sql),
	$u_before{history}, 'round 2: ... their history has no row of the open transaction');
is($node->safe_psql('postgres', $u_failures_sql),
	$u_before{failures}, 'round 2: ... their failure rows are as they were');
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM dms_job WHERE name = 'ghost') + (SELECT count(*) FROM dms_job_history WHERE job_name = 'ghost')}
	),
	'0',
	'round 2: the job created in the open transaction left no row and no history');
is(job_state($node, 'postgres', 'marker'),
	'starting|', 'round 2: the committed change survived');

# ---------------------------------------------------------------------
# Round 3: SIGKILL in the middle of set-based statements.
# ---------------------------------------------------------------------

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE s = 'starting') FROM (SELECT dms_start(id) AS s FROM dms_job WHERE name LIKE 'v%') x}
	),
	'100',
	'round 3: a committed set-based dms_start over 100 jobs');

@c = start_clients(3);
ok(wait_for_acks(25, @c), 'round 3: every client is changing jobs');

# Each statement shows the job it is at in its application_name, so that
# the test sees it is well under way before the crash.
my %set_based = (
	s => q{SELECT dms_start(id), set_config('application_name', 'set-based s ' || id, false),
       pg_sleep(0.01)
  FROM dms_job WHERE name ~ '^s[0-9]+$' ORDER BY id;},
	t => q{UPDATE dms_job SET status = 'starting'
 WHERE name ~ '^t[0-9]+$'
   AND set_config('application_name', 'set-based t ' || id, false) IS NOT NULL
   AND pg_sleep(0.01) IS NOT NULL;});
my %what = (
	s => 'dms_start over the s* jobs',
	t => 'direct UPDATE along the start edge over the t* jobs');
my %stmt;
foreach my $k (sort keys %set_based)
{
	my %s = (out => '', err => '');
	$s{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
			$node->connstr('postgres'), '-c', $set_based{$k}
		],
		'<', \undef, '>', \$s{out}, '2>', \$s{err});
	$stmt{$k} = \%s;
}
foreach my $k (sort keys %set_based)
{
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT substring(application_name from '[0-9]+\$')::bigint
       - (SELECT min(id) FROM dms_job WHERE name ~ '^$k\[0-9]+\$') >= 40
  FROM pg_stat_activity WHERE application_name LIKE 'set-based $k %'}),
		"round 3: the $what{$k} has passed 40 jobs (uncommitted)");
}

$log_offset = -s $node->logfile;
kill_cluster($node);
finish_clients(@c);
foreach my $k (sort keys %stmt)
{
	eval { $stmt{$k}{h}->finish; };
	is($stmt{$k}{out}, '', "round 3: the $what{$k} was interrupted before it returned");
	like($stmt{$k}{err}, qr/server closed the connection unexpectedly|connection to server was lost/,
		"round 3: ... by the crash");
}
$node->start;
check_after_restart(3, $log_offset, @c);

is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(DISTINCT status || '/' || coalesce(phase::text, '-'), ' ') FROM dms_job WHERE name ~ '^[st][0-9]+$'}
	),
	'not_started/-',
	'round 3: the jobs of the interrupted statements are all "Not started"');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) || ' ' || string_agg(DISTINCT cause, ',') FROM dms_job_history WHERE job_name ~ '^[st][0-9]+$'}
	),
	'300 create',
	'round 3: ... and their history holds only their create rows');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) || ' ' || string_agg(DISTINCT status::text, ',') FROM dms_job WHERE name ~ '^v[0-9]+$'}
	),
	'100 starting',
	'round 3: the committed set-based change survived');

# ---------------------------------------------------------------------
# After all the crashes, the lifecycle is still enforced.
# ---------------------------------------------------------------------

my ($state, $msg) = sql_error($node, 'postgres',
	q{UPDATE dms_job SET status = 'completed' WHERE name = 'marker'});
is($state, '55000', 'after the crashes: a direct UPDATE along no edge is refused with 55000');
is($node->safe_psql('postgres', q{
SELECT dms_start(id) FROM dms_job WHERE name = 's1';
SELECT dms_report(id, 'started') FROM dms_job WHERE name = 's1';
SELECT concat_ws('|', cause, from_status, to_status, to_phase) FROM dms_job_history
 WHERE job_name = 's1' ORDER BY id}),
	"starting\nrunning\ncreate|not_started\nstart|not_started|starting\nstarted|starting|running|full_dump",
	'after the crashes: actions and events work and write history');
is(consistency_violations($node, 'postgres'), '', 'after the crashes: still consistent');
check_indexes('after the crashes');

$node->stop;
done_testing();
