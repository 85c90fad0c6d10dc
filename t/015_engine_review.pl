# t/015_engine_review.pl: what a committer's review of the engine found,
# one story each, so that none of it comes back (ENGINE.md 3-5).
#
# The source holds appdb (pgbench scale 5, so that its copy lasts a moment)
# in which app_admin, a role that cannot log in and is no superuser, owns a
# table, ledger, and two SECURITY DEFINER functions that EXECUTE the SQL
# they are given: admin_exec, which only app_user may run (REVOKE EXECUTE
# ... FROM PUBLIC, GRANT ... TO app_user), and admin_peek, which only
# auditor may run.  The destination has app_admin, app_user and auditor
# (roles are not migrated: the DBA made them), and mallory, a login role
# with no privilege at all.
#
#   1. Owners and the copy window.  While appdb is copied (Running, Full
#      dump), mallory connects to it (PUBLIC's CONNECT, PostgreSQL's
#      default for a new database) and cannot run admin_exec: the schema
#      came with its grants, in one transaction, so no function was ever
#      there without them (a SECURITY DEFINER function callable by PUBLIC
#      would run anything as its owner).  Once the dump is completed (CDC),
#      mallory still cannot run admin_exec, nor admin_peek (the source's
#      REVOKE from PUBLIC and its GRANT to auditor both arrived), and is
#      still no superuser.  The table and both functions are app_admin's,
#      the functions still SECURITY DEFINER, and app_user may run
#      admin_exec, which runs as app_admin.
#   2. A missing owner.  haunted, another source database, has a table
#      owned by ghost, granted to phantom and with a policy for wraith,
#      roles the destination does not have: the start of its job fails (Failed in full dump) naming both
#      and `pg_dumpall --roles-only` (a grant to a missing role would fail,
#      and the REVOKE from PUBLIC beside it with it), and leaves nothing
#      behind, not even a destination database.
#   3. One worker per job.  With appdb's job in CDC, the engine's manager
#      is ended (pg_terminate_backend); a new one starts, and for 5 seconds
#      pg_stat_activity never shows two workers for the job, nor two
#      managers.  The job still streams (a row inserted on the source
#      arrives) and is promoted: Completed, every table equal, its history
#      the plain one, nothing left behind.
#   4. A restarted worker does not repeat an old apply error.  A job of
#      shop in CDC: a row inserted on the destination, then with the same
#      key on the source, stops shop's changes from applying ("Running with
#      errors"); the row removed on the destination, the change applies and
#      the errors clear (errors_cleared) within 30 s.  Then the job's worker
#      is ended: the manager starts another, and in the 15 s that follow the
#      history has nothing new: no second error for the conflict that was
#      resolved, the job Running (CDC), still streaming.
#   5. A delete while the source is down.  A job of depot in CDC; the
#      source is stopped and the job deleted: its dms_job_database row
#      stays (its slot could not be dropped), however often the engine
#      tries, until the source is back; then the slot and the publications
#      go on the source, and the row with them.  (For the moment of the
#      delete the engine's naptime is a minute, so that the job does not
#      see its source down first: "Running with errors" refuses a delete.)
#   6. An error the engine did not expect (here a user's CHECK constraint
#      on its table) reaches the job: the start fails with its text, not
#      only in the server log; without the constraint, a restart migrates.
#
# After every story, nothing of its job is left on either server.

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

# (the apply workers retry after an error every second rather than every
# five: story 4's conflict clears sooner)
my ($source, $dest) = engine_nodes(destination_conf => ["wal_retrieve_retry_interval = '1s'"]);
my $engine = engine_role($dest);

# ---------------------------------------------------------------------
# The source and the destination's roles
# ---------------------------------------------------------------------

$source->safe_psql(
	'postgres', q{
CREATE ROLE app_admin NOLOGIN;
CREATE ROLE app_user NOLOGIN;
CREATE ROLE auditor NOLOGIN;
CREATE ROLE ghost NOLOGIN;
CREATE ROLE phantom NOLOGIN;
CREATE ROLE wraith NOLOGIN;
});
make_databases($source, qw(appdb haunted shop depot));
pgbench_init($source, 'appdb', 5);
$source->safe_psql(
	'appdb', q{
CREATE TABLE ledger (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO ledger SELECT i, 'entry ' || i FROM generate_series(1, 100) i;
ALTER TABLE ledger OWNER TO app_admin;

CREATE FUNCTION admin_exec(sql text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
  AS $$ BEGIN EXECUTE sql; RETURN current_user; END $$;
ALTER FUNCTION admin_exec(text) OWNER TO app_admin;
REVOKE EXECUTE ON FUNCTION admin_exec(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin_exec(text) TO app_user;

CREATE FUNCTION admin_peek(sql text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
  AS $$ BEGIN EXECUTE sql; RETURN current_user; END $$;
ALTER FUNCTION admin_peek(text) OWNER TO app_admin;
REVOKE EXECUTE ON FUNCTION admin_peek(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin_peek(text) TO auditor;
});
$source->safe_psql('haunted',
	q{CREATE TABLE spirits (id int PRIMARY KEY, name text); ALTER TABLE spirits OWNER TO ghost; GRANT SELECT ON spirits TO phantom;
   CREATE POLICY haunting ON spirits TO wraith USING (true);});
foreach my $db (qw(shop depot))
{
	$source->safe_psql($db,
		q{CREATE TABLE marks (id int PRIMARY KEY, v text); INSERT INTO marks SELECT i, 'initial' FROM generate_series(1, 10) i;}
	);
}

$dest->safe_psql(
	'postgres', q{
CREATE ROLE app_admin NOLOGIN;
CREATE ROLE app_user NOLOGIN;
CREATE ROLE auditor NOLOGIN;
CREATE ROLE mallory LOGIN;
});

# $sql in $db of the destination as mallory: (exit code, stdout, stderr).
sub as_mallory
{
	my ($db, $sql) = @_;
	my ($ret, $out, $err) = $dest->psql($db, $sql, connstr => $dest->connstr($db) . ' user=mallory');
	return ($ret, $out, $err);
}

# The job's history after the row $after_id, as "cause cause ...".
sub causes_after
{
	my ($job, $after_id) = @_;
	return join(' ', map { $_->{cause} } grep { $_->{id} > $after_id } history($dest, $job));
}

# The pid of a process of the engine, by application_name ('' if none).
sub engine_pid
{
	my ($appname) = @_;
	return $dest->safe_psql('postgres',
		"SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE application_name = '$appname'");
}

# Waits until one process named $appname runs, other than $old; returns its pid ('' if none came).
sub new_engine_pid
{
	my ($appname, $old) = @_;
	$dest->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$appname' AND pid <> $old")
	  or return '';
	return engine_pid($appname);
}

# ---------------------------------------------------------------------
# 2. A missing owner (first: it must leave a clean slate)
# ---------------------------------------------------------------------

my $what = 'missing owner';
my $haunted = create_job($dest, 'haunted', 'continuous', ['haunted']);
is(operator($dest, "SELECT dms_start($haunted)"), 'starting', "$what: alice starts the job of haunted");
ok(wait_for_job($dest, $haunted, 'failed', 'full_dump'), "$what: the job is Failed in full dump");
my $message = $dest->safe_psql(
	'postgres', qq{
SELECT concat_ws(E'\\n', j.error_message,
                 (SELECT string_agg(f.database_name || ': ' || f.error_message, E'\\n')
                    FROM dms_job_failure f WHERE f.job_id = j.id))
  FROM dms_job j WHERE j.id = $haunted});
like($message, qr/\bghost\b/, "$what: the message names the missing role ghost") or diag $message;
like($message, qr/\bphantom\b/, "$what: ... and the missing grantee phantom") or diag $message;
like($message, qr/\bwraith\b/, "$what: ... and wraith, the missing role of a policy") or diag $message;
like($message, qr/pg_dumpall --roles-only/, "$what: ... and says how to make it (pg_dumpall --roles-only)");
like($message, qr/\bhaunted\b/, "$what: ... and names the database");
is($dest->safe_psql('postgres', "SELECT count(*) FROM dms_job_history WHERE job_id = $haunted AND cause = 'failed'"),
	'1', "$what: one failed event");
is(join("\n", leftovers($source, $dest)), '', "$what: nothing left on the source or the destination");
is($dest->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'haunted'"),
	'0', "$what: no destination database was created");
is($dest->safe_psql('postgres', "SELECT count(*) FROM dms_job_database WHERE job_id = $haunted"),
	'0', "$what: the engine keeps no database of the job");
is($dest->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname = 'ghost'}),
	'0', "$what: and made no role ghost");

# ---------------------------------------------------------------------
# 1. Owners and the copy window
# ---------------------------------------------------------------------

$what = 'owners';
my $app = create_job($dest, 'appdb', 'continuous', ['appdb'], 'min');
is(operator($dest, "SELECT dms_start($app)"), 'starting', "$what: alice starts the job of appdb");

is(when_job($dest, $app, when => $COPYING, missed => q{j.phase = 'cdc' OR j.status = 'failed'}),
	'running/full_dump', "$what: appdb is being copied (Running, Full dump)");
my $copy_at = time;
my ($ret, $out, $err) = as_mallory('appdb', q{SELECT admin_exec('ALTER ROLE mallory SUPERUSER')});
isnt($ret, 0, "$what: during the copy, mallory cannot run admin_exec");
like($err, qr/permission denied for function admin_exec/, "$what: ... permission denied for function admin_exec");
like(
	$dest->safe_psql('postgres',
		"SELECT state || ' ' || (SELECT status || '/' || phase FROM dms_job WHERE id = $app) FROM dms_job_database WHERE job_id = $app"
	),
	qr{^(copying|indexing) running/full_dump$},
	"$what: ... while appdb was still copying or indexing");
is($dest->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', "$what: mallory is no superuser");

ok(wait_for_job($dest, $app, 'running', 'cdc'), "$what: the job reaches Running (CDC)");
note sprintf('appdb: from copying to CDC in %.1f s', time - $copy_at);

($ret, $out, $err) = as_mallory('appdb', 'SELECT current_user');
is("$ret $out", '0 mallory', "$what: after dump_completed, mallory connects to appdb")
  or diag $err;
is( $dest->safe_psql(
		'postgres',
		q{SELECT has_database_privilege('mallory', 'appdb', 'CONNECT') || ' ' || has_database_privilege('mallory', 'appdb', 'TEMPORARY')}
	),
	'true true',
	"$what: ... PostgreSQL's default for a new database: CONNECT and TEMPORARY to PUBLIC");

($ret, $out, $err) = as_mallory('appdb', q{SELECT admin_exec('ALTER ROLE mallory SUPERUSER')});
isnt($ret, 0, "$what: mallory cannot run admin_exec");
like($err, qr/permission denied for function admin_exec/, "$what: ... permission denied for function admin_exec");
# (SELECT 1: whether it runs, and as whom, without changing anything)
($ret, $out, $err) = as_mallory('appdb', q{SELECT admin_peek('SELECT 1')});
like($err, qr/permission denied for function admin_peek/,
	"$what: mallory cannot run admin_peek either, granted on the source to auditor only: permission denied"
) or diag "admin_peek ran for mallory, as " . ($out || '?');
is($dest->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', "$what: mallory is still no superuser");
is( $dest->safe_psql(
		'appdb',
		q{SELECT string_agg(p.proname || ' ' || has_function_privilege('public', p.oid, 'EXECUTE'), ', ' ORDER BY p.proname)
            FROM pg_proc p WHERE p.proname IN ('admin_exec', 'admin_peek')}
	),
	'admin_exec false, admin_peek false',
	"$what: PUBLIC may run neither function, as on the source");

is( $dest->safe_psql(
		'appdb', q{
SELECT 'ledger ' || pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.ledger'::regclass
UNION ALL
SELECT p.proname || ' ' || pg_get_userbyid(p.proowner) || ' ' || CASE WHEN p.prosecdef THEN 'security definer' ELSE 'security invoker' END
  FROM pg_proc p WHERE p.proname IN ('admin_exec', 'admin_peek')
ORDER BY 1}),
	"admin_exec app_admin security definer\nadmin_peek app_admin security definer\nledger app_admin",
	"$what: on the destination, ledger and both functions are app_admin's, the functions SECURITY DEFINER");
is($dest->safe_psql('appdb', q{SELECT has_function_privilege('app_user', 'admin_exec(text)', 'EXECUTE')}),
	't', "$what: app_user has EXECUTE on admin_exec");
is($dest->safe_psql('appdb', q{SET ROLE app_user; SELECT admin_exec('SELECT 1');}),
	'app_admin', "$what: ... which runs as app_admin, its owner, not as the engine's superuser");
is($dest->safe_psql('appdb', q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'pgbench_accounts'}),
	$source->safe_psql('appdb', q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'pgbench_accounts'}),
	"$what: pgbench_accounts has the source's owner too");
is($dest->safe_psql('appdb', q{SELECT has_function_privilege('auditor', 'admin_peek(text)', 'EXECUTE')}),
	't', "$what: auditor has EXECUTE on admin_peek, as on the source");

# ---------------------------------------------------------------------
# 3. One worker per job
# ---------------------------------------------------------------------

$what = 'one worker';
my $manager = engine_pid('dms_lifecycle manager');
like($manager, qr/^\d+$/, "$what: one manager runs (pid $manager)");
my $app_worker = engine_pid("dms_lifecycle job $app");
like($app_worker, qr/^\d+$/, "$what: one worker drives the job of appdb (pid $app_worker)");
is($dest->safe_psql('postgres', "SELECT pg_terminate_backend($manager)"), 't', "$what: the manager is ended");
my $new_manager = new_engine_pid('dms_lifecycle manager', $manager);
like($new_manager, qr/^\d+$/, "$what: a new manager runs (pid $new_manager)");

# 5 s of pg_stat_activity, every 10 ms, inside the server
my $sampled = $dest->safe_psql(
	'postgres', qq{
SET log_statement = none;
CREATE FUNCTION pg_temp.sample() RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE
    stop_at timestamptz := clock_timestamp() + interval '5 seconds';
    workers int;
    managers int;
    max_workers int := 0;
    max_managers int := 0;
    looks int := 0;
BEGIN
    WHILE clock_timestamp() < stop_at LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT count(*) FILTER (WHERE application_name = 'dms_lifecycle job $app'),
               count(*) FILTER (WHERE application_name = 'dms_lifecycle manager')
          INTO workers, managers
          FROM pg_stat_activity;
        max_workers := greatest(max_workers, workers);
        max_managers := greatest(max_managers, managers);
        looks := looks + 1;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN max_workers || ' ' || max_managers || ' ' || looks;
END
\$f\$;
SELECT pg_temp.sample();
});
my ($max_workers, $max_managers, $looks) = split / /, $sampled;
cmp_ok($looks, '>', 100, "$what: pg_stat_activity looked at $looks times in 5 s");
is($max_workers, 1, "$what: never more than one process 'dms_lifecycle job $app'");
is($max_managers, 1, "$what: never more than one manager");
is(engine_pid("dms_lifecycle job $app"), $app_worker, "$what: the worker of before still drives the job");

$source->safe_psql('appdb', q{INSERT INTO ledger VALUES (1000, 'after the manager was ended')});
ok($dest->poll_query_until('appdb', 'SELECT count(*) FROM ledger WHERE id = 1000', '1'),
	"$what: the job still streams: a row inserted on the source arrives");
is($dest->safe_psql('postgres', "SELECT status || '/' || phase FROM dms_job WHERE id = $app"),
	'running/cdc', "$what: the job is Running (CDC)");

is(operator($dest, "SELECT dms_promote($app)"), 'running', "$what: alice promotes the job");
ok(wait_for_job($dest, $app, 'completed', undef), "$what: the job is Completed");
my $r = tables_equal($source, $dest, 'appdb');
is($r->{compared}, 5, "$what: 5 tables compared row by row (pgbench's 4 and ledger)");
is(join("\n", @{ $r->{differences} }), '', "$what: no row lost, doubled or extra ($r->{rows} rows)");
is(join(' ', map { $_->{cause} } history($dest, $app)),
	'create start started dump_completed promote promoted',
	"$what: the history is the plain one: started, dump_completed, promote, promoted, once each");
is(join("\n", wait_for_nothing_left($source, $dest)), '', "$what: nothing is left behind");
lift_fence($source, 'appdb');

# ---------------------------------------------------------------------
# 4. A restarted worker does not repeat an old apply error
# (the job of depot, for story 5, starts at the same time)
# ---------------------------------------------------------------------

$what = 'old error';
my $shop = create_job($dest, 'shop', 'continuous', ['shop']);
my $depot = create_job($dest, 'depot', 'continuous', ['depot']);
is(operator($dest, "SELECT dms_start($shop)"), 'starting', "$what: alice starts the job of shop");
is(operator($dest, "SELECT dms_start($depot)"), 'starting', "delete, source down: alice starts the job of depot");
ok(wait_for_job($dest, $shop, 'running', 'cdc'), "$what: the job of shop reaches Running (CDC)");

$dest->safe_psql('shop', q{INSERT INTO marks VALUES (1000, 'first on the destination')});
$source->safe_psql('shop', q{INSERT INTO marks VALUES (1000, 'then on the source')});
ok(wait_for_job($dest, $shop, 'running_with_errors', 'cdc', 60), "$what: the conflict: Running with errors (CDC)");
my ($error) = grep { $_->{cause} eq 'error' } history($dest, $shop);
like($error ? $error->{message} : '', qr/\bshop\b.*duplicate key value violates unique constraint "marks_pkey"/s,
	"$what: ... the error names shop and says PostgreSQL's duplicate key error");

$dest->safe_psql('shop', q{DELETE FROM marks WHERE id = 1000});
my $resolved_at = time;
ok($dest->poll_query_until('shop', q{SELECT v FROM marks WHERE id = 1000}, 'then on the source'),
	"$what: the row removed on the destination, the source's row applies");
ok(wait_for_job($dest, $shop, 'running', 'cdc', 30), "$what: the errors clear within 30 s: Running (CDC)");
note sprintf('shop: errors cleared %.1f s after the conflict was resolved', time - $resolved_at);
my @h = history($dest, $shop);
is($h[-1]{cause}, 'errors_cleared', "$what: the last event is errors_cleared");
my $cleared_id = $h[-1]{id};

my $shop_worker = engine_pid("dms_lifecycle job $shop");
like($shop_worker, qr/^\d+$/, "$what: one worker drives the job of shop (pid $shop_worker)");
is($dest->safe_psql('postgres', "SELECT pg_terminate_backend($shop_worker)"), 't', "$what: the worker is ended");
my $new_worker = new_engine_pid("dms_lifecycle job $shop", $shop_worker);
like($new_worker, qr/^\d+$/, "$what: the manager starts a new worker (pid $new_worker)");

# 15 s of the new worker
my %seen;
my $watch_until = time + 15;
my $inserted = 0;
while (time < $watch_until)
{
	$seen{ $dest->safe_psql('postgres', "SELECT status || '/' || phase FROM dms_job WHERE id = $shop") }++;
	if (!$inserted && time > $watch_until - 10)
	{
		$source->safe_psql('shop', q{INSERT INTO marks VALUES (1001, 'after the worker was ended')});
		$inserted = 1;
	}
	usleep(200_000);
}
is(causes_after($shop, $cleared_id), '',
	"$what: in the 15 s after the worker was ended, no new event: no error repeated after errors_cleared");
is(join(', ', sort keys %seen), 'running/cdc', "$what: the job stayed Running (CDC) meanwhile");
is($dest->safe_psql('shop', 'SELECT count(*) FROM marks WHERE id = 1001'),
	'1', "$what: and streamed: a row inserted on the source meanwhile arrived");
is($dest->safe_psql('postgres', "SELECT count(*) FROM dms_job_history WHERE job_id = $shop AND cause = 'error'"),
	'1', "$what: one error in the whole history, for the one conflict");

is(operator($dest, "SELECT dms_delete($shop)"), 't', "$what: alice deletes the job");
is(join("\n", wait_for_takedown($source, $dest, $shop)), '', "$what: the engine takes down what the job made");

# ---------------------------------------------------------------------
# 5. A delete while the source is down
# ---------------------------------------------------------------------

$what = 'delete, source down';
ok(wait_for_job($dest, $depot, 'running', 'cdc'), "$what: the job of depot is Running (CDC)");
my $depot_oid = database_oid($source, 'depot');
like(join("\n", leftovers($source, $dest, $depot)),
	qr/^slot dms_${depot}_$depot_oid on the source/m, "$what: its slot is on the source");

# The job must not see its source down before the delete (Running with
# errors refuses it): its worker naps for a minute, once it has read the
# setting (the reload wakes it).
$dest->safe_psql('postgres', q{ALTER SYSTEM SET dms_lifecycle.naptime = '1min'; SELECT pg_reload_conf();});
sleep 1;
$source->stop;
my ($del_ret, $del_out, $del_err) =
  $dest->psql('postgres', "SET ROLE alice; SELECT dms_delete($depot)");
is("$del_ret $del_out", '0 t', "$what: the source stopped, alice deletes the job") or diag $del_err;
ok( $dest->poll_query_until(
		'postgres', "SELECT count(*) FROM pg_subscription WHERE subname ~ '^dms_${depot}_'", '0'),
	"$what: the engine takes the subscription down");
$dest->safe_psql('postgres', q{ALTER SYSTEM RESET dms_lifecycle.naptime; SELECT pg_reload_conf();});

# For 3 s, the engine tries again every naptime; the row stays.
my $rows_until = time + 3;
my %rows;
while (time < $rows_until)
{
	$rows{ $dest->safe_psql('postgres',
			"SELECT coalesce(string_agg(database_name, ','), 'none') FROM dms_job_database WHERE job_id = $depot") }++;
	usleep(200_000);
}
is(join(' ', sort keys %rows), 'depot',
	"$what: for 3 s, the job's dms_job_database row for depot stays (its slot could not be dropped)");
my $tries = () = slurp_file($dest->logfile) =~
  /cannot connect to drop the slot and publications of migration job $depot\b/g;
cmp_ok($tries, '>', 1, "$what: the engine tried $tries times, and says so in the log");

$source->start;
is(join("\n", wait_for_takedown($source, $dest, $depot, 60)),
	'', "$what: the source back, the slot and publications go, and the row with them");
is($source->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_slots}),
	'0', "$what: no slot is left on the source");

# ---------------------------------------------------------------------
# 6. An error the engine did not expect is told to the job
# ---------------------------------------------------------------------

# A user's CHECK constraint on the engine's table makes its writes for
# depot fail: the start fails with the error's text (not only in the server
# log), and once the constraint is gone a restart migrates the database.
$what = 'unexpected error';
$dest->safe_psql('postgres', q{DROP DATABASE IF EXISTS depot WITH (FORCE)});
$dest->safe_psql('postgres',
	q{ALTER TABLE dms_job_database ADD CONSTRAINT no_depot CHECK (database_name <> 'depot') NOT VALID});
my $odd = create_job($dest, 'depot again', 'continuous', ['depot']);
is(operator($dest, "SELECT dms_start($odd)"), 'starting', "$what: alice starts a job of depot");
ok(wait_for_job($dest, $odd, 'failed', 'full_dump'), "$what: the job fails in the full dump");
like(
	$dest->safe_psql('postgres', "SELECT error_message FROM dms_job WHERE id = $odd"),
	qr/^the engine met an unexpected error: new row for relation "dms_job_database" violates check constraint "no_depot"/,
	"$what: its message is the error, from the engine");
$dest->safe_psql('postgres', q{ALTER TABLE dms_job_database DROP CONSTRAINT no_depot});
$dest->safe_psql('postgres', q{DROP DATABASE IF EXISTS depot WITH (FORCE)});
is(operator($dest, "SELECT dms_restart($odd)"), 'restarting', "$what: without the constraint, alice restarts it");
ok(wait_for_job($dest, $odd, 'running', 'cdc'), "$what: ... and it reaches Running (CDC)");
is(operator($dest, "SELECT dms_delete($odd)"), 't', "$what: alice deletes it");
is(join("\n", wait_for_takedown($source, $dest, $odd)), '', "$what: the engine takes down what it made");

is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left behind by any job');

note sprintf('%.1f s', time - $t0);
$source->stop;
$dest->stop;
done_testing();
