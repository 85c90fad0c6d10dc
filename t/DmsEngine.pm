# t/DmsEngine.pm: the harness of the engine's TAP tests (ENGINE.md section 7).
#
# Two PostgreSQL::Test::Cluster nodes play a migration: a source with
# wal_level = logical, and a destination that preloads dms_lifecycle, whose
# engine copies the source's databases into it.  The helpers:
#
# - engine_nodes(): the two nodes, the extension, the foreign server "src"
#   and its user mapping, and "alice", an operator who drives the jobs;
# - make_databases(), pgbench_init(), extra_tables(): what there is to
#   migrate;
# - pgbench_load_start(), pgbench_load_stop(), load_ok(): writes on the
#   source while the engine copies and streams, none of which may fail;
# - session_start(), session_end(): a client session that a fence must end;
# - create_job(), operator(), when_job(), wait_for_job(), progress(),
#   history(), engine_role(): drive a job and watch it;
# - tables_equal(), schema_differences(), sequences_ahead(): what arrived;
# - leftovers(), wait_for_takedown(), wait_for_nothing_left(): what the
#   engine left behind;
# - write_refused(), lift_fence(): the source's fence after a promotion;
# - database_oid(): the oid that names the engine's objects (dms_J_O).
#
# Every helper that waits gives up after at most 180 seconds, and then
# prints (diag) the job, its progress and history, and the last lines of
# both servers' logs.

package DmsEngine;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(job_error engine_nodes make_databases pgbench_init extra_tables
  pgbench_load_start pgbench_load_stop load_ok session_start session_end
  create_job operator when_job wait_for_job progress history engine_role
  job_diagnostics tables_equal schema_differences sequences_ahead
  leftovers wait_for_takedown wait_for_nothing_left write_refused lift_fence database_oid
  $OBJECT_NAME $COPYING);

# The names of everything the engine makes (engine-interface.md): slots,
# publications and subscriptions dms_<job>_<database oid>[_ins].
our $OBJECT_NAME = '^dms_[0-9]+_[0-9]+';

# A condition for when_job(): the job is in its full dump and one of its
# databases is copying rows.
our $COPYING = q{j.status = 'running' AND j.phase = 'full_dump'
  AND EXISTS (SELECT FROM dms_job_database d WHERE d.job_id = j.id AND d.state = 'copying')};

# The longest any helper waits.
my $max_wait = 180;

# Every node engine_nodes() made, for the logs in the diagnostics.
my @nodes;

# The operator role that drives the jobs.
my $operator = 'alice';

# ---------------------------------------------------------------------
# The nodes
# ---------------------------------------------------------------------

# engine_nodes(%opts): creates and starts the source and the destination,
# and returns ($source, $destination).
#
# The source: wal_level = logical, max_replication_slots = 20,
# max_wal_senders = 20; with install_path => DIR, the PostgreSQL installed
# there (another major version).  The destination: the settings of
# engine-interface.md (the library preloaded, dms_lifecycle.database =
# 'postgres', naptime 200ms, workers and slots for 20 subscriptions).
# Both log DDL only (not every statement: the load and the tests' polling
# would bury the engine's lines).
#
# On the destination's postgres database: CREATE EXTENSION dms_lifecycle,
# the foreign server "src" pointing at the source's socket and port, a
# PUBLIC user mapping with the source's bootstrap superuser, and the role
# alice, an operator with USAGE on "src".
#
# Options: source_conf, destination_conf (lines, or a string, appended to
# postgresql.conf), source_name, destination_name (node names; default
# "source" and "destination"), install_path (the source's), server => 0 (no
# foreign server, user mapping nor USAGE: for checking the harness without
# the engine).
sub engine_nodes
{
	my (%opts) = @_;

	my $source = PostgreSQL::Test::Cluster->new($opts{source_name} // 'source',
		$opts{install_path} ? (install_path => $opts{install_path}) : ());
	$source->init;
	$source->append_conf(
		'postgresql.conf',
		join("\n",
			'wal_level = logical',
			'max_replication_slots = 20',
			'max_wal_senders = 20',
			'log_statement = ddl',
			conf_lines($opts{source_conf})));
	$source->start;
	push @nodes, $source;

	my $dest = PostgreSQL::Test::Cluster->new($opts{destination_name} // 'destination');
	$dest->init;
	$dest->append_conf(
		'postgresql.conf',
		join("\n",
			"shared_preload_libraries = 'dms_lifecycle'",
			"dms_lifecycle.database = 'postgres'",
			'max_worker_processes = 40',
			'max_logical_replication_workers = 20',
			'max_replication_slots = 20',
			"dms_lifecycle.naptime = '200ms'",
			'log_statement = ddl',
			conf_lines($opts{destination_conf})));
	$dest->start;
	push @nodes, $dest;

	$dest->safe_psql('postgres',
		"CREATE ROLE $operator; CREATE EXTENSION dms_lifecycle; SELECT dms_grant('$operator', 'operator');");
	if ($opts{server} // 1)
	{
		my $superuser = $source->safe_psql('postgres',
			'SELECT quote_literal(rolname) FROM pg_roles WHERE oid = 10');
		my $host = sql_literal($source->host);
		my $port = sql_literal($source->port);
		$dest->safe_psql(
			'postgres', qq{
CREATE SERVER src FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host $host, port $port);
CREATE USER MAPPING FOR PUBLIC SERVER src OPTIONS (user $superuser);
GRANT USAGE ON FOREIGN SERVER src TO $operator;
});
	}
	return ($source, $dest);
}

# Settings given as a list of lines or as one string.
sub conf_lines
{
	my ($conf) = @_;
	return () unless defined $conf;
	return ref $conf ? @$conf : ($conf);
}

# A string as an SQL literal.
sub sql_literal
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# make_databases($node, @names): CREATE DATABASE for each name.
sub make_databases
{
	my ($node, @names) = @_;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$_"}) foreach @names;
	return;
}

# pgbench_init($node, $db, $scale): pgbench -i -s $scale (1 to 5: scale 1
# is 100,000 accounts, about 15 MB; the whole test command must stay within
# a few minutes on 2 cores).  Dies if pgbench fails.
sub pgbench_init
{
	my ($node, $db, $scale) = @_;
	die "pgbench_init: scale $scale is not 1 to 5" unless $scale =~ /^[1-5]$/;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', $scale, $node->connstr($db) ],
		'<', \undef, '>', \$out, '2>', \$err)
	  or die "pgbench -i -s $scale of $db failed:\n$err";
	return;
}

# extra_tables($node, $db): adds to $db the kinds of tables and objects a
# migration must carry beyond pgbench's, with some rows each, and returns
# how many tables that hold rows (relkind r: partitions count, their
# parent does not) it added:
#   extra_nopk      no primary key, no replica identity: the load inserts
#                   into it and updates it (its UPDATEs cannot be streamed,
#                   ENGINE.md 4: compare it on (id, payload), which no
#                   update changes)
#   extra_full      no primary key, REPLICA IDENTITY FULL: the load updates it
#   extra_serial    a bigserial key, an identity column, an index on an
#                   expression
#   extra_counter   a sequence of its own, advanced by the load
#   extra_part      partitioned by list, two partitions
#   extra_gen       a stored generated column
#   extra_child     a foreign key to extra_serial
#   extra_view      a view; extra_matview, a materialized view
#   marks           a primary key, for the tests' own marker rows
sub extra_tables
{
	my ($node, $db) = @_;
	$node->safe_psql(
		$db, q{
CREATE TABLE extra_nopk (id bigint, payload text, touched int NOT NULL DEFAULT 0);
INSERT INTO extra_nopk (id, payload) SELECT i, 'initial ' || i FROM generate_series(1, 1000) i;

CREATE TABLE extra_full (k int NOT NULL, v bigint NOT NULL DEFAULT 0, note text);
ALTER TABLE extra_full REPLICA IDENTITY FULL;
INSERT INTO extra_full (k, note) SELECT i, repeat('x', i % 20) FROM generate_series(1, 1000) i;

CREATE TABLE extra_serial (id bigserial PRIMARY KEY,
                           ident bigint GENERATED ALWAYS AS IDENTITY,
                           v text NOT NULL);
CREATE INDEX extra_serial_lower_v ON extra_serial (lower(v));
INSERT INTO extra_serial (v) SELECT 'Initial ' || i FROM generate_series(1, 1000) i;

CREATE SEQUENCE extra_counter START 100;
SELECT nextval('extra_counter') FROM generate_series(1, 10);

CREATE TABLE extra_part (id bigint NOT NULL, region int NOT NULL, v text,
                         PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE extra_part_a PARTITION OF extra_part FOR VALUES IN (0, 1);
CREATE TABLE extra_part_b PARTITION OF extra_part FOR VALUES IN (2);
INSERT INTO extra_part SELECT i, i % 3, 'initial' FROM generate_series(1, 1000) i;

CREATE TABLE extra_gen (id int PRIMARY KEY, a int NOT NULL,
                        b int GENERATED ALWAYS AS (a * 2) STORED);
INSERT INTO extra_gen (id, a) SELECT i, i FROM generate_series(1, 1000) i;

CREATE TABLE extra_child (id int PRIMARY KEY,
                          parent bigint NOT NULL REFERENCES extra_serial (id));
INSERT INTO extra_child SELECT i, i FROM generate_series(1, 500) i;

CREATE VIEW extra_view AS
    SELECT s.id, s.v, c.id AS child FROM extra_serial s JOIN extra_child c ON c.parent = s.id;
CREATE MATERIALIZED VIEW extra_matview AS SELECT region, count(*) AS n FROM extra_part GROUP BY region;

CREATE TABLE marks (id int PRIMARY KEY, v text);
});
	# extra_nopk, extra_full, extra_serial, extra_part_a, extra_part_b,
	# extra_gen, extra_child, marks
	return 8;
}

# ---------------------------------------------------------------------
# The load
# ---------------------------------------------------------------------

# What pgbench_load_start(script => 1) runs beside TPC-B: every kind of
# table of extra_tables() changed, each statement its own transaction (no
# deadlock between clients, no statement that may fail by design).
my $extra_script = <<'EOS';
\set r random(1000001, 2000000000)
\set k random(1, 1000)
INSERT INTO extra_nopk (id, payload) VALUES (:r, 'load ' || :client_id);
UPDATE extra_nopk SET touched = touched + 1 WHERE id = :k;
UPDATE extra_full SET v = v + 1 WHERE k = :k;
INSERT INTO extra_serial (v) VALUES ('Load ' || :r);
SELECT nextval('extra_counter');
INSERT INTO extra_part VALUES (:r, :r % 3, 'load') ON CONFLICT DO NOTHING;
UPDATE extra_part SET v = 'updated ' || :r WHERE id = :k;
UPDATE extra_gen SET a = a + 1 WHERE id = :k;
INSERT INTO extra_child VALUES (:k + 1000, :k) ON CONFLICT (id) DO UPDATE SET parent = :k;
DELETE FROM extra_child WHERE id = :k + 500 AND :r % 2 = 0;
EOS

# pgbench_load_start($node, $db, %opts): a background pgbench on $db: the
# default TPC-B script (which inserts into pgbench_history, a table without
# a primary key), and with script => 1 also $extra_script (the tables of
# extra_tables() must exist).  Options: clients (default 2), rate (total
# transactions per second, default 100: the engine must keep the cores it
# needs).  pgbench runs in rounds of 2 seconds with -n (pgbench's vacuum
# would TRUNCATE pgbench_history), until pgbench_load_stop(); each round
# reports its transactions and failures.  Its sessions' application_name is
# dms_test_load.  Returns a handle once pgbench is connected.
sub pgbench_load_start
{
	my ($node, $db, %opts) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my @pgbench = (
		'pgbench', '-n', '-c', $opts{clients} // 2,
		'-j', 1, '-R', $opts{rate} // 100, '-T', 2,
		'-b', 'tpcb-like@' . ($opts{script} ? 3 : 1));
	if ($opts{script})
	{
		PostgreSQL::Test::Utils::append_to_file("$dir/extra.sql", $extra_script);
		push @pgbench, '-f', "$dir/extra.sql\@2";
	}
	push @pgbench, $node->connstr($db) . ' application_name=dms_test_load';
	my %h = (db => $db, stop => "$dir/stop", out => '', err => '', started => time);
	$h{h} = IPC::Run::start(
		[
			'bash', '-c',
			# rounds until the stop file appears, the test process is gone, or 10 minutes passed
			'stop=$1; parent=$2; shift 2; while [ ! -e "$stop" ] && kill -0 "$parent" 2>/dev/null && [ $SECONDS -lt 600 ]; do "$@"; rc=$?; echo "pgbench exited with $rc"; [ $rc = 0 ] || sleep 0.5; done',
			'load', $h{stop}, $$, @pgbench
		],
		'<', \undef, '>', \$h{out}, '2>', \$h{err});
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'dms_test_load' AND datname = "
		  . sql_literal($db))
	  or die "the load on $db did not start: $h{err}";
	return \%h;
}

# pgbench_load_stop($h): ends the load after its current round, and
# returns what it did: { db, rounds, transactions, failed, problems => [every
# round that exited non-zero, reported failed transactions or an error],
# seconds }.
sub pgbench_load_stop
{
	my ($h) = @_;
	PostgreSQL::Test::Utils::append_to_file($h->{stop}, '');
	my $deadline = time + 60;
	while ($h->{h}->pumpable && time < $deadline)
	{
		$h->{h}->pump_nb;
		usleep(50_000);
	}
	if ($h->{h}->pumpable)
	{
		$h->{h}->kill_kill;
		push @{ $h->{problems} }, 'the load did not end within 60 s of its stop';
	}
	$h->{h}->finish;
	my %r = (db => $h->{db}, seconds => time - $h->{started}, problems => $h->{problems} // []);
	$r{rounds} = () = $h->{out} =~ /^pgbench exited with/mg;
	$r{transactions} = 0;
	$r{transactions} += $1 while $h->{out} =~ /^number of transactions actually processed: (\d+)/mg;
	$r{failed} = 0;
	$r{failed} += $1 while $h->{out} =~ /^number of failed transactions: (\d+)/mg;
	my (@problems, %times);
	push @problems, "a round of pgbench exited with $1"
	  while $h->{out} =~ /^pgbench exited with ([1-9]\d*)/mg;
	push @problems, "$r{failed} failed transactions" if $r{failed};
	push @problems, grep { /error|abort|fatal/i } split /\n/, $h->{err};
	# each problem once, with how many times it happened
	foreach (@problems)
	{
		push @{ $r{problems} }, $_ unless $times{$_}++;
	}
	$_ .= " ($times{$_} times)" foreach grep { $times{$_} > 1 } @{ $r{problems} };
	return \%r;
}

# load_ok($r, $what): the load pgbench_load_stop() reported ran
# transactions, and none of them failed: the engine never makes a write on
# the source fail (ENGINE.md 4).  Two tests.
sub load_ok
{
	my ($r, $what) = @_;
	cmp_ok($r->{transactions}, '>', 0,
		"$what: pgbench ran $r->{transactions} transactions on $r->{db} in $r->{rounds} rounds");
	is(join("\n", @{ $r->{problems} }),
		'', "$what: every pgbench round on $r->{db} exited 0, with no failed transaction and no error");
	return;
}

# session_start($node, $db, $sql): a client session running $sql (a long
# query, say) in the background; returns once the server shows it active.
sub session_start
{
	my ($node, $db, $sql) = @_;
	my %s = (out => '', err => '');
	$s{h} = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr($db), '-c', $sql ],
		'<', \undef, '>', \$s{out}, '2>', \$s{err});
	$node->poll_query_until('postgres',
		'SELECT count(*) > 0 FROM pg_stat_activity WHERE query = ' . sql_literal($sql))
	  or die "the session running $sql did not start: $s{err}";
	return \%s;
}

# session_end($s, $timeout): waits (default 30 s) for the session to end by
# itself; returns its error output if it did, undef if it had to be killed.
sub session_end
{
	my ($s, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while ($s->{h}->pumpable && time < $deadline)
	{
		$s->{h}->pump_nb;
		usleep(50_000);
	}
	my $ended = !$s->{h}->pumpable;
	$s->{h}->kill_kill unless $ended;
	$s->{h}->finish;
	return $ended ? $s->{err} : undef;
}

# ---------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------

# operator($dest, $sql): runs $sql on the destination as alice, the
# operator; returns its output.
sub operator
{
	my ($dest, $sql) = @_;
	return $dest->safe_psql('postgres', "SET ROLE $operator;\n$sql");
}

# create_job($dest, $name, $type, \@databases, $parallelism): creates an
# engine-driven job (source server "src") as alice; returns its id.
sub create_job
{
	my ($dest, $name, $type, $dbs, $parallelism) = @_;
	my $list = join(', ', map { sql_literal($_) } @$dbs);
	return operator($dest,
		sprintf("SELECT dms_create_job(%s, %s, ARRAY[%s]::text[], %s, source_server => 'src')",
			sql_literal($name), sql_literal($type), $list, sql_literal($parallelism // 'optimal')));
}

# engine_role($dest): the role the engine acts as, the actor of its events:
# dms_lifecycle.engine_role, by default the bootstrap superuser.
sub engine_role
{
	my ($dest) = @_;
	return $dest->safe_psql('postgres',
		q{SELECT coalesce(nullif(current_setting('dms_lifecycle.engine_role', true), ''),
                 (SELECT rolname FROM pg_roles WHERE oid = 10))});
}

# when_job($dest, $job, when => SQL, then => ACTION, missed => SQL,
# timeout => S): waits, inside the server (a function that polls every
# 10 ms, each poll seeing what the engine committed), until the condition
# `when` holds for the job (an SQL expression over j, its dms_job row); then
# performs the operator action `then` (stop, delete, ...) as alice in the
# same breath, so that the job cannot move on in between.  Gives up when
# `missed` holds (the moment has passed) or after the timeout.  Returns
# "status/phase" as seen, followed by " -> " and the action's result; '' if
# it gave up (with diagnostics).
sub when_job
{
	my ($dest, $job, %a) = @_;
	my $missed = $a{missed} // 'false';
	my $timeout = $a{timeout} // $max_wait;
	my $then = $a{then}
	  ? "PERFORM set_config('role', '$operator', true);\n        r := r || ' -> ' || dms_$a{then}($job)::text;"
	  : '';
	# (log_statement = none: the function's text would fill the log)
	my ($ret, $out, $err) = $dest->psql(
		'postgres', qq{
SET log_statement = none;
CREATE FUNCTION pg_temp.when_job() RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '$timeout seconds';
    r text;
BEGIN
    LOOP
        SELECT j.status || '/' || coalesce(j.phase::text, '-') INTO r
          FROM dms_job j WHERE j.id = $job AND ($a{when});
        IF FOUND THEN
            $then
            RETURN r;
        END IF;
        IF NOT EXISTS (SELECT FROM dms_job j WHERE j.id = $job) THEN
            RAISE EXCEPTION 'job $job does not exist';
        END IF;
        IF EXISTS (SELECT FROM dms_job j WHERE j.id = $job AND ($missed)) THEN
            RAISE EXCEPTION 'the moment has passed: job $job is %',
                (SELECT j.status || '/' || coalesce(j.phase::text, '-') FROM dms_job j WHERE j.id = $job);
        END IF;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'timed out after $timeout s';
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
\$f\$;
SELECT pg_temp.when_job();
}, timeout => $timeout + 30);
	return $out if $ret == 0;
	diag("when_job($job): $err");
	job_diagnostics($dest, $job);
	return '';
}

# wait_for_job($dest, $job, $status, $phase, $timeout, %opts): polls
# dms_job every 100 ms until the job is in ($status, $phase) ($phase undef:
# NULL; '*': any); the timeout defaults to, and is at most, 180 s.  Stops
# early if the job no longer exists, or is failed while something else is
# awaited.  Returns true when reached; otherwise prints the diagnostics and
# returns false.  With samples => \@list, appends each poll's
# { t, status, phase, progress => [dms_job_progress rows] } to @list.
sub wait_for_job
{
	my ($dest, $job, $status, $phase, $timeout, %opts) = @_;
	$timeout = $max_wait if !defined $timeout || $timeout > $max_wait;
	my $want = $status . '/' . ($phase // '-');
	my $deadline = time + $timeout;
	my $seen = '';
	while (1)
	{
		my $s = $opts{samples} ? progress($dest, $job) : job_state_of($dest, $job);
		if ($s)
		{
			push @{ $opts{samples} }, $s if $opts{samples};
			$seen = "$s->{status}/" . ($s->{phase} // '-');
			return 1
			  if $s->{status} eq $status
			  && (($phase // '') eq '*' || ($s->{phase} // '-') eq ($phase // '-'));
			last if $s->{status} eq 'failed' && $status ne 'failed';
		}
		else
		{
			$seen = 'deleted';
			last;
		}
		last if time > $deadline;
		usleep(100_000);
	}
	diag("job $job: waited for $want, but it is $seen");
	job_diagnostics($dest, $job);
	return 0;
}

# The job's status and phase, undef if it does not exist.
sub job_state_of
{
	my ($dest, $job) = @_;
	my $json = $dest->safe_psql('postgres',
		"SELECT json_build_object('t', extract(epoch FROM clock_timestamp()), 'status', status, 'phase', phase) FROM dms_job WHERE id = $job"
	);
	return $json eq '' ? undef : decode_json($json);
}

# progress($dest, $job): { t (epoch), status, phase, progress => [the
# job's dms_job_progress rows, by database] }, undef if the job does not
# exist.
sub progress
{
	my ($dest, $job) = @_;
	my $json = $dest->safe_psql(
		'postgres', qq{
SELECT json_build_object('t', extract(epoch FROM clock_timestamp()), 'status', j.status, 'phase', j.phase,
       'progress', (SELECT coalesce(json_agg(p ORDER BY p.database_name), '[]')
                      FROM dms_job_progress p WHERE p.job_id = j.id))
  FROM dms_job j WHERE j.id = $job});
	return $json eq '' ? undef : decode_json($json);
}

# history($dest, $job): the job's history rows in order, as hashes (id,
# cause, from_status, from_phase, to_status, to_phase, database_name,
# message, actor, at: epoch seconds of occurred_at).
sub history
{
	my ($dest, $job) = @_;
	return @{
		decode_json(
			$dest->safe_psql(
				'postgres', qq{
SELECT coalesce(json_agg(json_build_object('id', id, 'cause', cause,
           'from_status', from_status, 'from_phase', from_phase,
           'to_status', to_status, 'to_phase', to_phase, 'database_name', database_name,
           'message', message, 'actor', actor, 'at', extract(epoch FROM occurred_at)) ORDER BY id), '[]')
  FROM dms_job_history WHERE job_id = $job}))
	};
}

# job_diagnostics($dest, $job): prints (diag) the job's row, progress,
# engine records and history, and the last 50 lines of every node's log.
sub job_diagnostics
{
	my ($dest, $job) = @_;
	foreach my $q (
		"SELECT j::text FROM dms_job j WHERE id = $job",
		"SELECT p::text FROM dms_job_progress p WHERE job_id = $job ORDER BY database_name",
		"SELECT d::text FROM dms_job_database d WHERE job_id = $job ORDER BY database_name",
		"SELECT f::text FROM dms_job_failure f WHERE job_id = $job ORDER BY database_name",
		"SELECT h::text FROM dms_job_history h WHERE job_id = $job ORDER BY id")
	{
		my ($ret, $out, $err) = $dest->psql('postgres', $q);
		diag("$q:\n" . ($ret == 0 ? $out : $err));
	}
	foreach my $node (@nodes)
	{
		my @lines = split /\n/, slurp_file($node->logfile);
		splice(@lines, 0, @lines - 50) if @lines > 50;
		diag("last lines of the log of " . $node->name . ":\n" . join("\n", @lines));
	}
	return;
}

# ---------------------------------------------------------------------
# What arrived
# ---------------------------------------------------------------------

# The tables of $db that hold rows (relkind r: ordinary tables and the
# leaves of partitioned ones), schema-qualified and quoted, in order.
sub user_tables
{
	my ($node, $db) = @_;
	return split /\n/, $node->safe_psql(
		$db, q{
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast|temp_)'
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1});
}

# The row (or the columns of %$columns for the table) as text.
sub row_text
{
	my ($table, $columns) = @_;
	my $c = $columns->{$table};
	return $c ? "ROW($c)::text" : 't::text';
}

# tables_equal($source, $dest, $db, columns => { 'public.t' => 'a, b' }):
# compares every table of the source's $db (user_tables) with the
# destination's, as multisets of rows (the whole row as text, or the listed
# columns).  Each table is first compared by its row count and the md5 of
# its rows' sorted md5s on both sides; a table that differs is read row by
# row on both sides and compared in Perl.  Returns { compared => the number
# of source tables compared, rows => the source's rows in them,
# differences => [ one line per table that differs: missing, lost rows
# (fewer copies than on the source), doubled rows (more), extra rows (not
# on the source), with examples ] }.
sub tables_equal
{
	my ($source, $dest, $db, %opts) = @_;
	my $columns = $opts{columns} // {};
	my @src_tables = user_tables($source, $db);
	my %dst_tables = map { $_ => 1 } user_tables($dest, $db);
	my %r = (compared => scalar(@src_tables), rows => 0, differences => []);

	my $summary_sql = sub {
		my (@tables) = @_;
		return join("\nUNION ALL\n",
			map {
				my $rt = row_text($_, $columns);
				"SELECT '$_', count(*), coalesce(md5(string_agg(h, '' ORDER BY h COLLATE \"C\")), '') FROM (SELECT md5($rt) AS h FROM ONLY $_ t) s"
			} @tables);
	};
	my @present = grep { $dst_tables{$_} } @src_tables;
	my %src_sum = summaries($source, $db, $summary_sql->(@src_tables));
	my %dst_sum = @present ? summaries($dest, $db, $summary_sql->(@present)) : ();
	$r{rows} += (split /\|/, $src_sum{$_})[0] foreach keys %src_sum;

	foreach my $t (@src_tables)
	{
		if (!$dst_tables{$t})
		{
			push @{ $r{differences} }, "$db: $t is missing on the destination";
			next;
		}
		next if $src_sum{$t} eq $dst_sum{$t};
		my %s = row_counts($source, $db, $t, $columns);
		my %d = row_counts($dest, $db, $t, $columns);
		my (%n, %examples);
		foreach my $row (keys %s)
		{
			my $dn = $d{$row} // 0;
			my $kind = $dn < $s{$row} ? 'lost' : $dn > $s{$row} ? 'doubled' : next;
			$n{$kind} += abs($dn - $s{$row});
			push @{ $examples{$kind} }, $row;
		}
		foreach my $row (grep { !exists $s{$_} } keys %d)
		{
			$n{extra} += $d{$row};
			push @{ $examples{extra} }, $row;
		}
		push @{ $r{differences} },
		  "$db: $t: "
		  . join(', ', map { ($n{$_} // 0) . " $_" } qw(lost doubled extra))
		  . join('', map {
			  my @e = sort @{ $examples{$_} };
			  splice(@e, 3) if @e > 3;
			  "; $_ e.g. " . join(' ', @e)
			} grep { $examples{$_} } qw(lost doubled extra));
	}
	foreach my $t (sort grep { my $t = $_; !grep { $_ eq $t } @src_tables } keys %dst_tables)
	{
		push @{ $r{differences} }, "$db: $t is on the destination only";
	}
	return \%r;
}

# table => "count|md5" from a summary query.
sub summaries
{
	my ($node, $db, $sql) = @_;
	return map { my ($t, $rest) = split /\|/, $_, 2; ($t, $rest) }
	  split /\n/, $node->safe_psql($db, $sql);
}

# Every distinct row of a table (as a JSON string: one line whatever it
# holds) => how many times it is there.
sub row_counts
{
	my ($node, $db, $table, $columns) = @_;
	my $rt = row_text($table, $columns);
	my %c;
	foreach (split /\n/,
		$node->safe_psql($db, "SELECT count(*) || ' ' || to_json($rt)::text FROM ONLY $table t GROUP BY $rt"))
	{
		my ($n, $row) = split / /, $_, 2;
		$c{$row} = $n;
	}
	return %c;
}

# schema_differences($source, $dest, $db): the lines of `pg_dump
# --schema-only --no-owner` (comments, blank lines and the \restrict
# lines of pg_dump 15.14 on left out) that one
# side has more often than the other, each prefixed with "source only: " or
# "destination only: "; empty when the schemas are the same.
sub schema_differences
{
	my ($source, $dest, $db) = @_;
	my %n;
	foreach my $side ([ $source, 1 ], [ $dest, -1 ])
	{
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'pg_dump', '--schema-only', '--no-owner', '-d', $side->[0]->connstr($db) ],
			'<', \undef, '>', \$out, '2>', \$err)
		  or die "pg_dump of $db on " . $side->[0]->name . " failed: $err";
		# (\restrict and \unrestrict carry a random key of each dump)
		$n{$_} += $side->[1] foreach grep { !/^(--.*|\\(un)?restrict .*)?$/ } split /\n/, $out;
	}
	return map {
		my $side = $n{$_} > 0 ? 'source only' : 'destination only';
		("$side: $_") x abs($n{$_})
	} sort grep { $n{$_} } keys %n;
}

# sequences_ahead($source, $dest, $db): every sequence of the source's $db
# exists on the destination and will hand out no value below the source's
# next one, nor one that a column owning it (serial, identity) already
# holds on the destination.  Returns { checked => the number of sequences
# checked, problems => [ one line each ] }.
sub sequences_ahead
{
	my ($source, $dest, $db) = @_;
	my $list_sql = q{
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1};
	my $next_sql = sub {
		join("\nUNION ALL\n",
			map {
				"SELECT '$_', CASE WHEN is_called THEN last_value + (SELECT seqincrement FROM pg_sequence WHERE seqrelid = '$_'::regclass) ELSE last_value END FROM $_"
			} @_);
	};
	my @seqs = split /\n/, $source->safe_psql($db, $list_sql);
	my %on_dest = map { $_ => 1 } split /\n/, $dest->safe_psql($db, $list_sql);
	my %r = (checked => scalar(@seqs), problems => []);
	return \%r unless @seqs;
	my %src_next = summaries($source, $db, $next_sql->(@seqs));
	my @present = grep { $on_dest{$_} } @seqs;
	my %dst_next = @present ? summaries($dest, $db, $next_sql->(@present)) : ();

	# the columns that own a sequence on the destination, and their maximum
	my $owned = $dest->safe_psql(
		$db, q{
SELECT format('%I.%I', sn.nspname, s.relname), format('%I.%I', tn.nspname, t.relname), quote_ident(a.attname)
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_class t ON t.oid = d.refobjid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
   AND d.deptype IN ('a', 'i')
 ORDER BY 1});

	foreach my $s (@seqs)
	{
		if (!$on_dest{$s})
		{
			push @{ $r{problems} }, "$db: sequence $s is missing on the destination";
			next;
		}
		push @{ $r{problems} },
		  "$db: sequence $s would hand out $dst_next{$s} on the destination, below the source's next value $src_next{$s}"
		  if $dst_next{$s} < $src_next{$s};
	}
	foreach (split /\n/, $owned)
	{
		my ($s, $t, $col) = split /\|/;
		next unless defined $dst_next{$s};
		my $max = $dest->safe_psql($db, "SELECT max($col) FROM $t");
		push @{ $r{problems} },
		  "$db: sequence $s would hand out $dst_next{$s} on the destination, but $t.$col already holds $max"
		  if $max ne '' && $dst_next{$s} <= $max;
	}
	return \%r;
}

# ---------------------------------------------------------------------
# What was left behind
# ---------------------------------------------------------------------

# leftovers($source, $dest, $job): what the engine made and has not taken
# down, one line each: replication slots and publications matching
# '^dms_[0-9]+_[0-9]+' on the source (every database that allows
# connections), subscriptions matching it on the destination, and files in
# the destination's $PGDATA/dms_lifecycle.  With $job, only the objects of
# that job (dms_<job>_...) and its password file.  Empty: nothing left.
sub leftovers
{
	my ($source, $dest, $job) = @_;
	my $pattern = defined $job ? "^dms_${job}_[0-9]+" : $OBJECT_NAME;
	my @left = split /\n/, $source->safe_psql(
		'postgres', qq{
SELECT 'slot ' || slot_name || ' on the source (database ' || coalesce(database, '-')
       || ', ' || CASE WHEN active THEN 'active' ELSE 'inactive' END || ')'
  FROM pg_replication_slots WHERE slot_name ~ '$pattern' ORDER BY 1});
	foreach my $db (split /\n/,
		$source->safe_psql('postgres', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1'))
	{
		push @left, split /\n/, $source->safe_psql($db,
			"SELECT 'publication ' || pubname || ' on the source (database $db)' FROM pg_publication WHERE pubname ~ '$pattern' ORDER BY 1"
		);
	}
	push @left, split /\n/, $dest->safe_psql(
		'postgres', qq{
SELECT 'subscription ' || s.subname || ' on the destination (database ' || d.datname || ', '
       || CASE WHEN s.subenabled THEN 'enabled' ELSE 'disabled' END || ')'
  FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
 WHERE s.subname ~ '$pattern' ORDER BY 1});
	my $dir = $dest->data_dir . '/dms_lifecycle';
	if (opendir(my $dh, $dir))
	{
		push @left, map { "file dms_lifecycle/$_ in the destination's data directory" }
		  sort grep { !/^\.\.?$/ && (!defined $job || /^job_${job}\./) } readdir $dh;
		closedir $dh;
	}
	return @left;
}

# wait_for_takedown($source, $dest, $job, $timeout): waits (at most 180 s)
# until the engine has taken down what it made for a job it no longer
# runs (deleted, or one database removed; a completed job keeps its rows, as done): no row of the job in
# dms_job_database (or none for database => NAME), and nothing of it in
# leftovers() (or none named after the database's oid on the source).
# Returns the leftovers that remain (empty: all gone), with diagnostics if
# any remain.
sub wait_for_takedown
{
	my ($source, $dest, $job, $timeout, %opts) = @_;
	$timeout = $max_wait if !defined $timeout || $timeout > $max_wait;
	my $db_filter = '';
	my $oid_filter = sub { 1 };
	if (defined $opts{database})
	{
		my $oid = database_oid($source, $opts{database});
		$db_filter = ' AND database_name = ' . sql_literal($opts{database});
		$oid_filter = sub { $_[0] =~ /\bdms_${job}_${oid}\b/ };
	}
	my $deadline = time + $timeout;
	my (@left, $rows);
	while (1)
	{
		$rows = $dest->safe_psql('postgres',
			"SELECT string_agg(database_name || ' ' || state, ', ') FROM dms_job_database WHERE job_id = $job$db_filter"
		);
		@left = grep { $oid_filter->($_) } leftovers($source, $dest, $job);
		$rows = '' unless defined $rows;
		return () if $rows eq '' && !@left;
		last if time > $deadline;
		usleep(100_000);
	}
	push @left, "dms_job_database rows of job $job: $rows" if $rows ne '';
	diag("job $job: after $timeout s, still there:\n" . join("\n", @left));
	job_diagnostics($dest, $job);
	return @left;
}

# wait_for_nothing_left($source, $dest, $timeout): waits (at most 180 s,
# default 30) until leftovers() is empty, and returns what remains (empty:
# nothing was left behind).  For jobs that ended: a completed job has taken
# replication down before it reports "promoted", but its password file may
# go a moment later.
sub wait_for_nothing_left
{
	my ($source, $dest, $timeout) = @_;
	$timeout = 30 unless defined $timeout;
	$timeout = $max_wait if $timeout > $max_wait;
	my $deadline = time + $timeout;
	while (1)
	{
		my @left = leftovers($source, $dest);
		return () unless @left;
		if (time > $deadline)
		{
			diag("after $timeout s, still there:\n" . join("\n", @left));
			return @left;
		}
		usleep(100_000);
	}
}

# job_error($dest, $job): the job's failure text, its job-level
# error_message and its failure rows, one a line.
sub job_error
{
	my ($dest, $job) = @_;
	return $dest->safe_psql(
		'postgres', qq{
SELECT concat_ws(E'\\n', j.error_message,
                 (SELECT string_agg(f.database_name || ': ' || f.error_message, E'\\n' ORDER BY f.database_name)
                    FROM dms_job_failure f WHERE f.job_id = j.id))
  FROM dms_job j WHERE j.id = $job});
}

# database_oid($node, $db): the database's oid (names the engine's objects).
sub database_oid
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', 'SELECT oid FROM pg_database WHERE datname = ' . sql_literal($db));
}

# ---------------------------------------------------------------------
# The fence
# ---------------------------------------------------------------------

# write_refused($source, $db): tries an INSERT into marks (extra_tables) in
# a new session; returns the SQLSTATE and message of the refusal ('' and
# psql's output if the write succeeded).
sub write_refused
{
	my ($source, $db) = @_;
	my ($stdout, $stderr) = ('', '');
	$source->psql(
		$db, "INSERT INTO marks VALUES (-1 - (SELECT count(*) FROM marks), 'after the fence')",
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($1, $2) if $stderr =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	return ('', $stdout . $stderr);
}

# lift_fence($source, @dbs): what the README says to do on the source after
# a promotion, to write there again: ALTER DATABASE ... RESET
# default_transaction_read_only (from the postgres database, which no job
# migrates and so is never fenced).
sub lift_fence
{
	my ($source, @dbs) = @_;
	$source->safe_psql('postgres', qq{ALTER DATABASE "$_" RESET default_transaction_read_only})
	  foreach @dbs;
	return;
}

1;
