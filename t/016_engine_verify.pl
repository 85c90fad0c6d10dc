# t/016_engine_verify.pl: a promotion compares every table before it cuts
# over (dms_lifecycle.verify, ENGINE.md 4), and a difference stops it.
#
# The source holds ledger (pgbench scale 1).  alice drives three
# continuous jobs of it, one after another; before each promotion the
# destination's copy is changed behind the engine's back, or not:
#   1. verify = checksum, one branch's filler changed on the destination
#      (its row count unchanged): the promotion fails naming
#      pgbench_branches with both checksums; the source is writable again
#      and the changes made there afterwards still stream;
#   2. verify = count, one teller deleted on the destination: the promotion
#      fails naming pgbench_tellers, 10 rows against 9;
#   3. verify = checksum, the copy untouched, after some load: Completed,
#      every table compared (rows and checksums), equal row by row;
#   4. verify = checksum, a database "marks" whose table has a column
#      named t, another column of a row changed on the destination: the
#      promotion fails naming the table (the checksum reads whole rows).
# A failed job is deleted, and after each job nothing of it is left.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use DmsEngine;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($source, $dest) = engine_nodes();
make_databases($source, 'ledger');
pgbench_init($source, 'ledger', 1);

# verify($mode): dms_lifecycle.verify on the destination, for the next promotion.
sub verify
{
	my ($mode) = @_;
	$dest->safe_psql('postgres', "ALTER SYSTEM SET dms_lifecycle.verify = $mode; SELECT pg_reload_conf();");
	return;
}

# A continuous job of ledger, started and waited for in CDC.
sub job_in_cdc
{
	my ($name) = @_;
	$dest->safe_psql('postgres', 'DROP DATABASE IF EXISTS ledger WITH (FORCE)');
	my $job = create_job($dest, $name, 'continuous', ['ledger']);
	operator($dest, "SELECT dms_start($job)");
	ok(wait_for_job($dest, $job, 'running', 'cdc'), "$name: the job reaches Running (CDC)");
	return $job;
}

# The job's last history row of that cause: its message.
sub last_message
{
	my ($job, $cause) = @_;
	my @rows = grep { $_->{cause} eq $cause } history($dest, $job);
	return @rows ? $rows[-1]{message} // '' : '';
}

# A failed promotion: Failed, with the message; the source not fenced; the
# job deleted and nothing left.
sub promotion_refused
{
	my ($job, $what, $message_like) = @_;
	operator($dest, "SELECT dms_promote($job)");
	ok(wait_for_job($dest, $job, 'failed', '*'), "$what: the promotion fails: the job is Failed");
	like(last_message($job, 'failed'), $message_like, "$what: ... and says which table differs, and how");
	my ($ret, $out, $err) = $source->psql('ledger',
		'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 0, now())');
	is($ret . $err, '0', "$what: a new session on the source can write again (the fence lifted)");
	return;
}

sub delete_and_nothing_left
{
	my ($job, $what) = @_;
	operator($dest, "SELECT dms_delete($job)");
	is(join("\n", wait_for_takedown($source, $dest, $job)), '', "$what: deleted, nothing of the job is left");
	return;
}

# ---------------------------------------------------------------------
# 1. A checksum sees a changed row that a count cannot
# ---------------------------------------------------------------------

verify('checksum');
my $what = 'checksum, a row changed on the destination';
my $job = job_in_cdc($what);
$dest->safe_psql('ledger', "UPDATE pgbench_branches SET filler = 'changed behind the engine' WHERE bid = 1");
promotion_refused($job, $what,
	qr/the tables differ: ledger\.(public\.)?pgbench_branches: source 1 rows, checksum -?\d+, destination 1 rows, checksum -?\d+/);
unlike(last_message($job, 'failed'), qr/pgbench_(accounts|tellers|history)/, "$what: ... and names no other table");

# The replication is still there: a change made on the source now arrives.
$source->safe_psql('ledger', 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 4242, now())');
ok($dest->poll_query_until('ledger', 'SELECT count(*) = 1 FROM pgbench_history WHERE delta = 4242'),
	"$what: after the failed promotion, a change on the source still arrives");
delete_and_nothing_left($job, $what);

# ---------------------------------------------------------------------
# 2. A count sees a missing row
# ---------------------------------------------------------------------

verify('count');
$what = 'count, a row deleted on the destination';
$job = job_in_cdc($what);
$dest->safe_psql('ledger', 'DELETE FROM pgbench_tellers WHERE tid = 10');
promotion_refused($job, $what,
	qr/the tables differ: ledger\.(public\.)?pgbench_tellers: source 10 rows, destination 9 rows/);
delete_and_nothing_left($job, $what);

# ---------------------------------------------------------------------
# 3. An untouched copy passes the checksum
# ---------------------------------------------------------------------

verify('checksum');
$what = 'checksum, the copy untouched';
$job = job_in_cdc($what);
my $load = pgbench_load_start($source, 'ledger');
sleep 2;
load_ok(pgbench_load_stop($load), "$what: the load in CDC");
operator($dest, "SELECT dms_promote($job)");
ok(wait_for_job($dest, $job, 'completed', undef), "$what: the job is Completed");
like(last_message($job, 'promoted'), qr/promoted 1 database in [0-9.]+ s; 4 tables compared \(rows and checksums\)/,
	"$what: ... its 4 tables compared by rows and checksums");
my $r = tables_equal($source, $dest, 'ledger');
is(join("\n", @{ $r->{differences} }), '', "$what: every table equal row by row");
lift_fence($source, 'ledger');
is(join("\n", wait_for_nothing_left($source, $dest)), '', "$what: nothing is left");

# ---------------------------------------------------------------------
# 4. A checksum of a table that has a column named "t"
# ---------------------------------------------------------------------

# The checksum reads each whole row, not the one column that has the
# alias's name.
make_databases($source, 'marks');
$source->safe_psql('marks',
	q{CREATE TABLE marks (id int PRIMARY KEY, t int NOT NULL, note text NOT NULL);
      INSERT INTO marks SELECT i, i, 'note ' || i FROM generate_series(1, 10) i});
$what = 'checksum, a row changed beside a column named t';
$job = create_job($dest, $what, 'continuous', ['marks']);
operator($dest, "SELECT dms_start($job)");
ok(wait_for_job($dest, $job, 'running', 'cdc'), "$what: the job reaches Running (CDC)");
$dest->safe_psql('marks', "UPDATE marks SET note = 'changed behind the engine' WHERE id = 1");
operator($dest, "SELECT dms_promote($job)");
ok(wait_for_job($dest, $job, 'failed', '*'), "$what: the promotion fails: the job is Failed");
like(last_message($job, 'failed'),
	qr/the tables differ: marks\.(public\.)?marks: source 10 rows, checksum -?\d+, destination 10 rows, checksum -?\d+/,
	"$what: ... and names the table");
delete_and_nothing_left($job, $what);

done_testing();
