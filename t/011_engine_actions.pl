# t/011_engine_actions.pl: every operator action on an engine-driven job
# does what ENGINE.md section 3 says (ENGINE.md 3-4, 7).
#
# The source holds alpha and beta (pgbench scale 1 and every other kind of
# table), big (pgbench scale 5, so that a full dump lasts) and gamma (the
# other kinds only, small).  alice, an operator, drives one job after
# another:
#   1. a one-time job of alpha ends Completed by itself, with the tables and
#      sequences copied, and the source not fenced;
#   2. a continuous job of alpha, under load, is stopped in CDC: the source
#      keeps its slot, the changes made meanwhile do not arrive, and arrive
#      once each after the resume;
#   3. a job of big is stopped during its full dump, then restarted: it
#      starts over, and after the promotion the tables are equal;
#   4. a job of beta is stopped in CDC and restarted: the destination is
#      emptied (a row written only there is gone) and copied again;
#   5. a job of alpha and beta: a row inserted on the destination, then
#      with the same key on the source, stops beta's changes from applying:
#      "Running with errors" with PostgreSQL's duplicate key message naming
#      beta, then after error_grace "Failed" with a failure row for beta,
#      while alpha keeps streaming.  Removing beta takes down its
#      replication and the job recovers; it is promoted and Completed;
#   6. a job is deleted at every status the engine passes through:
#      Starting... (held there by a lock on the source), Running (Full
#      dump), Running (CDC), Stopped, Failed: each time the engine takes
#      down everything the job made.
# After each job, nothing of it is left on either server.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DmsTest;
use DmsEngine;

my ($source, $dest) = engine_nodes();
my $engine = engine_role($dest);

make_databases($source, qw(alpha beta big gamma));
my %tables;
foreach my $db (qw(alpha beta big))
{
	pgbench_init($source, $db, $db eq 'big' ? 5 : 1);
	$tables{$db} = 4 + extra_tables($source, $db);
}
$tables{gamma} = extra_tables($source, 'gamma');

# The causes of a job's history, in order.
sub causes
{
	my ($job) = @_;
	return join(' ', map { $_->{cause} } history($dest, $job));
}

# The actors of the engine's events in a job's history, once each.
sub event_actors
{
	my ($job) = @_;
	my %a = map { $_->{actor} => 1 }
	  grep { $_->{cause} =~ /^(started|restarted|resumed|stopped|dump_completed|error|errors_cleared|failed|promoted)$/ }
	  history($dest, $job);
	return join(' ', sort keys %a);
}

# Every table of $db equal on both sides, and every sequence ahead.
sub copied_ok
{
	my ($db, $what) = @_;
	my $r = tables_equal($source, $dest, $db, columns => { 'public.extra_nopk' => 'id, payload' });
	is($r->{compared}, $tables{$db}, "$what: all $tables{$db} tables of $db compared row by row");
	is(join("\n", @{ $r->{differences} }), '', "$what: no row lost, doubled or extra ($r->{rows} rows)");
	my $s = sequences_ahead($source, $dest, $db);
	is(join("\n", @{ $s->{problems} }), '', "$what: all $s->{checked} sequences of $db are ahead");
	return;
}

# Starts the job and waits for Running (CDC).
sub start_to_cdc
{
	my ($job, $what) = @_;
	is(operator($dest, "SELECT dms_start($job)"), 'starting', "$what: alice starts the job");
	ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: the job reaches Running (CDC)");
	return;
}

# Promotes the job, waits for Completed, lifts the fence of its databases.
sub promote
{
	my ($job, $what, @dbs) = @_;
	is(operator($dest, "SELECT dms_promote($job)"), 'running', "$what: alice promotes the job");
	ok(wait_for_job($dest, $job, 'completed', undef), "$what: the job is Completed");
	lift_fence($source, @dbs);
	return;
}

# Nothing of the job is left (it is Completed or deleted).
sub nothing_left_ok
{
	my ($job, $what) = @_;
	is(join("\n", wait_for_nothing_left($source, $dest)),
		'', "$what: nothing is left: no slot, publication, subscription or file");
	return;
}

# The destination without these databases, for the next job.
sub drop_on_destination
{
	$dest->safe_psql('postgres', qq{DROP DATABASE IF EXISTS "$_" WITH (FORCE)}) foreach @_;
	return;
}

# Waits until a row of marks is on the destination.
sub mark_arrives
{
	my ($db, $id) = @_;
	return $dest->poll_query_until($db, "SELECT count(*) FROM marks WHERE id = $id", '1');
}

# ---------------------------------------------------------------------
# 1. A one-time job
# ---------------------------------------------------------------------

my $what = 'one-time';
my $job = create_job($dest, 'alpha once', 'one_time', ['alpha']);
is(operator($dest, "SELECT dms_start($job)"), 'starting', "$what: alice starts a one-time job of alpha");
ok(wait_for_job($dest, $job, 'completed', undef), "$what: it ends Completed by itself");
is(causes($job), 'create start started dump_completed', "$what: the history: started, dump_completed");
is(event_actors($job), $engine, "$what: the events are the engine's");
copied_ok('alpha', $what);
is(join("\n", schema_differences($source, $dest, 'alpha')), '', "$what: the schema is the source's");
my ($state, $msg) = write_refused($source, 'alpha');
is($state, '', "$what: the source is not fenced (no promotion)");
nothing_left_ok($job, $what);
drop_on_destination('alpha');

# ---------------------------------------------------------------------
# 2. Stop and resume in CDC, under load
# ---------------------------------------------------------------------

$what = 'stop and resume';
$job = create_job($dest, 'alpha paused', 'continuous', ['alpha']);
my $load = pgbench_load_start($source, 'alpha', script => 1);
start_to_cdc($job, $what);
is(operator($dest, "SELECT dms_stop($job)"), 'stopping', "$what: alice stops the job in CDC");
ok(wait_for_job($dest, $job, 'stopped', 'cdc'), "$what: the job is Stopped (in CDC)");
my $alpha = database_oid($source, 'alpha');
like(join("\n", leftovers($source, $dest, $job)),
	qr/^slot dms_${job}_$alpha on the source/m, "$what: the source keeps the job's slot dms_${job}_$alpha");

# Changes made while stopped: 100 rows inserted, 10 of them updated, 10
# deleted.  None arrives while the job is stopped.
$source->safe_psql(
	'alpha', q{
INSERT INTO marks SELECT i, 'while stopped' FROM generate_series(1, 100) i;
UPDATE marks SET v = 'updated while stopped' WHERE id <= 10;
DELETE FROM marks WHERE id > 90;
});
sleep 2;
is($dest->safe_psql('alpha', 'SELECT count(*) FROM marks WHERE id > 0'),
	'0', "$what: 2 s later, nothing of it has arrived on the destination");

is(operator($dest, "SELECT dms_resume($job)"), 'resuming', "$what: alice resumes the job");
ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: the job is Running (CDC) again");
ok( $dest->poll_query_until(
		'alpha',
		q{SELECT count(*) || ' ' || count(*) FILTER (WHERE v = 'updated while stopped') FROM marks WHERE id > 0},
		'90 10'),
	"$what: the changes made while stopped arrive: 90 rows, 10 of them updated");
sleep 2;
load_ok(pgbench_load_stop($load), "$what: the load through stop and resume");
promote($job, $what, 'alpha');
copied_ok('alpha', $what);
is(causes($job),
	'create start started dump_completed stop stopped resume resumed promote promoted',
	"$what: the history: ... stop, stopped, resume, resumed, ...");
nothing_left_ok($job, $what);
drop_on_destination('alpha');

# ---------------------------------------------------------------------
# 3. Stop during the full dump, then restart
# ---------------------------------------------------------------------

$what = 'stop in full dump';
$job = create_job($dest, 'big stopped early', 'continuous', ['big']);
is(operator($dest, "SELECT dms_start($job)"), 'starting', "$what: alice starts a job of big (scale 5)");
is( when_job(
		$dest, $job,
		when => $COPYING,
		then => 'stop',
		missed => q{j.status <> 'starting' AND j.phase IS DISTINCT FROM 'full_dump'}),
	'running/full_dump -> stopping',
	"$what: alice stops it while it copies rows: Stopping...");
ok(wait_for_job($dest, $job, 'stopped', 'full_dump'), "$what: the job is Stopped (in full dump)");
is(operator($dest, "SELECT dms_restart($job)"), 'restarting', "$what: alice restarts it");
ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: it copies again and reaches Running (CDC)");
promote($job, $what, 'big');
copied_ok('big', $what);
is(causes($job),
	'create start started stop stopped restart restarted dump_completed promote promoted',
	"$what: the history: started, stop, stopped, restart, restarted, dump_completed, ...");
nothing_left_ok($job, $what);
drop_on_destination('big');

# ---------------------------------------------------------------------
# 4. Restart from CDC
# ---------------------------------------------------------------------

$what = 'restart from CDC';
$job = create_job($dest, 'beta again', 'continuous', ['beta']);
start_to_cdc($job, $what);
$source->safe_psql('beta', q{INSERT INTO marks SELECT i, 'before the restart' FROM generate_series(1, 10) i});
ok(mark_arrives('beta', 10), "$what: rows inserted on the source in CDC arrive");
$dest->safe_psql('beta', q{INSERT INTO marks VALUES (-100, 'only on the destination')});
is(operator($dest, "SELECT dms_stop($job)"), 'stopping', "$what: alice stops the job");
ok(wait_for_job($dest, $job, 'stopped', 'cdc'), "$what: Stopped (in CDC)");
is(operator($dest, "SELECT dms_restart($job)"), 'restarting', "$what: alice restarts it");
ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: it copies again and reaches Running (CDC)");
is( $dest->safe_psql('beta', q{SELECT count(*) FILTER (WHERE id = -100) || ' ' || count(*) FROM marks}),
	'0 10',
	"$what: the destination was emptied (the row written only there is gone) and copied again (10 rows, once each)");
promote($job, $what, 'beta');
copied_ok('beta', $what);
is(causes($job),
	'create start started dump_completed stop stopped restart restarted dump_completed promote promoted',
	"$what: the history: ... stop, stopped, restart, restarted, dump_completed, ...");
nothing_left_ok($job, $what);
drop_on_destination('beta');

# ---------------------------------------------------------------------
# 5. A database that fails, removed
# ---------------------------------------------------------------------

$what = 'failed database';
$dest->safe_psql('postgres', q{ALTER SYSTEM SET dms_lifecycle.error_grace = '3s'; SELECT pg_reload_conf();});
$job = create_job($dest, 'alpha and beta', 'continuous', [ 'alpha', 'beta' ]);
start_to_cdc($job, $what);

# The same key, first on the destination, then on the source: beta's
# changes can no longer be applied.
$dest->safe_psql('beta', q{INSERT INTO marks VALUES (1000, 'first on the destination')});
$source->safe_psql('beta', q{INSERT INTO marks VALUES (1000, 'then on the source')});
ok(wait_for_job($dest, $job, 'failed', 'cdc'), "$what: the job is Failed (in CDC) after error_grace");
my @h = history($dest, $job);
my ($error) = grep { $_->{cause} eq 'error' } @h;
ok($error && $error->{to_status} eq 'running_with_errors',
	"$what: first an error: Running with errors");
like($error ? $error->{message} : '', qr/\bbeta\b/, "$what: ... its message names the database beta");
like(
	$error ? $error->{message} : '',
	qr/duplicate key value violates unique constraint "marks_pkey"/,
	"$what: ... and says PostgreSQL's duplicate key error");
my ($failed) = grep { $_->{cause} eq 'failed' } @h;
is($failed ? $failed->{database_name} // '' : '', 'beta', "$what: then the failure of beta");
is( $dest->safe_psql(
		'postgres',
		"SELECT database_name || ' ' || phase || ' ' || (error_message ~ 'duplicate key value violates unique constraint') FROM dms_job_failure WHERE job_id = $job"
	),
	'beta cdc true',
	"$what: one failure row, for beta, in CDC, with the duplicate key error");

$source->safe_psql('alpha', q{INSERT INTO marks VALUES (2000, 'while beta is failed')});
ok(mark_arrives('alpha', 2000), "$what: alpha keeps streaming while beta is failed");

is(operator($dest, "SELECT dms_remove_database($job, 'beta')"),
	'running', "$what: alice removes beta from the job: it recovers");
ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: Running (CDC)");
my $beta = database_oid($source, 'beta');
is(join("\n", wait_for_takedown($source, $dest, $job, 180, database => 'beta')),
	'', "$what: beta's slot, publications and subscription (dms_${job}_$beta) are gone");
$alpha = database_oid($source, 'alpha');
like(join("\n", leftovers($source, $dest, $job)),
	qr/^slot dms_${job}_$alpha on the source/m, "$what: alpha's slot is still there");
$source->safe_psql('alpha', q{INSERT INTO marks VALUES (2001, 'after the removal')});
ok(mark_arrives('alpha', 2001), "$what: alpha still streams");

promote($job, $what, 'alpha');
copied_ok('alpha', $what);
($state, $msg) = write_refused($source, 'beta');
is($state, '', "$what: beta, removed from the job, was not fenced");
is( join(' ', grep { !/^(error|failed)$/ } split / /, causes($job)),
	'create start started dump_completed edit recovered promote promoted',
	"$what: the history: ... error(s), failed, edit (the removal), recovered, promote, promoted");
nothing_left_ok($job, $what);

# ---------------------------------------------------------------------
# 6. Delete at every status
# ---------------------------------------------------------------------

# Deletes the job once the condition holds (it is then in $expected,
# "status/phase"), then, after $meanwhile if any, checks that the engine
# took down everything the job made.
sub delete_when
{
	my ($job, $what, $when, $missed, $expected, $meanwhile) = @_;
	is(when_job($dest, $job, when => $when, then => 'delete', missed => $missed),
		"$expected -> true", "delete in $what: alice deletes the job while it is $expected");
	my @h = history($dest, $job);
	is( ($h[-1]{cause} // '') . ' ' . ($h[-1]{from_status} // ''),
		'delete ' . (split m{/}, $expected)[0],
		"delete in $what: the history's last row is the delete");
	$meanwhile->() if $meanwhile;
	is(join("\n", wait_for_takedown($source, $dest, $job)),
		'', "delete in $what: the engine took down everything the job made");
	return;
}

# Starting...: a session holding a lock on one of gamma's tables holds
# the engine there (the schema's pg_dump, or the publication, waits for
# it); the lock goes once the job is deleted.
$job = create_job($dest, 'gamma starting', 'continuous', ['gamma']);
my $lock = $source->background_psql('gamma');
$lock->query_safe('BEGIN; LOCK TABLE marks IN ACCESS EXCLUSIVE MODE;');
is(operator($dest, "SELECT dms_start($job)"), 'starting', 'delete in Starting...: alice starts a job of gamma');
delete_when(
	$job, 'Starting...',
	q{j.status = 'starting' AND j.status_changed_at < clock_timestamp() - interval '1 second'
      AND EXISTS (SELECT FROM dms_job_database d WHERE d.job_id = j.id)},
	q{j.status <> 'starting'},
	'starting/-',
	sub { $lock->query_safe('COMMIT'); $lock->quit; });
drop_on_destination('gamma');

# Running (Full dump)
$job = create_job($dest, 'big deleted', 'continuous', ['big']);
is(operator($dest, "SELECT dms_start($job)"), 'starting', 'delete in Full dump: alice starts a job of big');
delete_when($job, 'Full dump', $COPYING,
	q{j.status <> 'starting' AND j.phase IS DISTINCT FROM 'full_dump'},
	'running/full_dump');

# Running (CDC): the migrated data stays.
$job = create_job($dest, 'gamma deleted in CDC', 'continuous', ['gamma']);
start_to_cdc($job, 'delete in CDC');
delete_when($job, 'CDC', q{true}, q{false}, 'running/cdc');
my $r = tables_equal($source, $dest, 'gamma');
is(join("\n", @{ $r->{differences} }), '', 'delete in CDC: the migrated data stays on the destination');
drop_on_destination('gamma');

# Stopped
$job = create_job($dest, 'gamma deleted when stopped', 'continuous', ['gamma']);
start_to_cdc($job, 'delete in Stopped');
is(operator($dest, "SELECT dms_stop($job)"), 'stopping', 'delete in Stopped: alice stops the job');
ok(wait_for_job($dest, $job, 'stopped', 'cdc'), 'delete in Stopped: Stopped (in CDC)');
delete_when($job, 'Stopped', q{true}, q{false}, 'stopped/cdc');
drop_on_destination('gamma');

# Failed
$job = create_job($dest, 'gamma deleted when failed', 'continuous', ['gamma']);
start_to_cdc($job, 'delete in Failed');
$dest->safe_psql('gamma', q{INSERT INTO marks VALUES (3000, 'first on the destination')});
$source->safe_psql('gamma', q{INSERT INTO marks VALUES (3000, 'then on the source')});
ok(wait_for_job($dest, $job, 'failed', 'cdc'), 'delete in Failed: the conflict fails the job');
delete_when($job, 'Failed', q{true}, q{false}, 'failed/cdc');

is(join("\n", wait_for_nothing_left($source, $dest)),
	'', 'at the end, nothing of any job is left on either server');
is(consistency_violations($dest, 'postgres'), '', 'every job is in the state of its last history row');

$source->stop;
$dest->stop;
done_testing();
