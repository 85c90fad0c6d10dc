# t/003_standby.pl: streaming replication carries the jobs (SPEC 10).
#
# A primary holds jobs in every legal state; a streaming standby is made
# from a base backup, and more changes follow the backup.  Once caught up,
# the standby shows the same jobs, failure rows and history; it can be
# read (the view, the allowed actions) but every action, event or direct
# write fails as read-only.  After its promotion the standby is a primary
# of its own: a job walks the lifecycle to "Completed", with history rows
# and notifications, new ids collide with nothing, the guard still
# refuses an illegal UPDATE, and amcheck finds every btree index of the
# three tables consistent (SPEC 11): the extension's own and a user's
# indexes of every kind, built with CREATE INDEX CONCURRENTLY on the
# primary after the base backup and carried by streaming.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;

$primary->safe_psql(
	'postgres', q{
CREATE ROLE alice;
CREATE ROLE engine;
CREATE EXTENSION dms_lifecycle;
CREATE EXTENSION amcheck;
SELECT dms_grant('alice', 'operator');
SELECT dms_grant('engine', 'engine');
});
$primary->safe_psql('postgres', populate_sql());

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# Indexes built after the base backup reach the standby by streaming, and
# so do the changes that follow.
foreach my $sql (user_indexes_sql('CONCURRENTLY'))
{
	$primary->safe_psql('postgres', $sql);
}
$primary->safe_psql('postgres', walk_function_sql() . q{
SET ROLE alice;
SELECT dms_create_job('after the backup', 'continuous', ARRAY['sales', 'stock']);
SELECT pg_temp.walk('after the backup', ARRAY['start']);
SELECT pg_temp.walk('running dump', ARRAY['stop']);
SELECT pg_temp.walk('completed one-time', ARRAY['delete']);
SET ROLE engine;
SELECT pg_temp.walk('after the backup', ARRAY['started', 'failed|stock: disk full|stock']);
SELECT pg_temp.walk('running dump', ARRAY['stopped']);
});

$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

my $on_primary = table_texts($primary, 'postgres');
my $on_standby = table_texts($standby, 'postgres');
foreach my $table ('dms_job', 'dms_job_failure', 'dms_job_history')
{
	is($on_standby->{$table}, $on_primary->{$table},
		"the standby shows every row of $table as the primary has it");
}
like(
	$on_standby->{dms_job_history},
	qr/"after the backup",failed,running,full_dump,failed,full_dump,stock,"stock: disk full",engine,/,
	'... including the history written after the base backup');
is(job_state($standby, 'postgres', 'completed one-time'),
	'', '... and without the job deleted after the base backup');

my $overview = q{
SELECT id, name, status, substatus, allowed_actions, error_message, failed_databases,
       dump_parallelism, pending_dump_parallelism
  FROM dms_job_overview ORDER BY id};
is($standby->safe_psql('postgres', $overview),
	$primary->safe_psql('postgres', $overview),
	'dms_job_overview reads the same on the standby');
is( $standby->safe_psql(
		'postgres',
		"SELECT dms_allowed_actions(id) FROM dms_job WHERE name = 'stopped cdc'"),
	'{resume,restart,promote,edit,delete}',
	'dms_allowed_actions works on the standby');
is(consistency_violations($standby, 'postgres'),
	'', 'on the standby every job agrees with its history');

# ---------------------------------------------------------------------
# The standby is read-only: every change fails with 25006.
# ---------------------------------------------------------------------

foreach my $call (
	[ 'dms_start', "SET ROLE alice; SELECT dms_start(id) FROM dms_job WHERE name = 'not started'" ],
	[ 'dms_promote', "SET ROLE alice; SELECT dms_promote(id) FROM dms_job WHERE name = 'stopped cdc'" ],
	[ 'dms_create_job', "SET ROLE alice; SELECT dms_create_job('on the standby')" ],
	[ 'dms_delete', "SET ROLE alice; SELECT dms_delete(id) FROM dms_job WHERE name = 'completed continuous'" ],
	[ 'dms_set_dump_parallelism', "SET ROLE alice; SELECT dms_set_dump_parallelism(id, 'max') FROM dms_job WHERE name = 'not started'" ],
	[ 'dms_report', "SET ROLE engine; SELECT dms_report(id, 'started') FROM dms_job WHERE name = 'starting'" ],
	[ 'a direct UPDATE', "UPDATE dms_job SET status = 'starting' WHERE name = 'not started'" ])
{
	my ($what, $sql) = @$call;
	my ($state, $msg) = sql_error($standby, 'postgres', $sql);
	is($state, '25006', "on the standby, $what fails as read-only (25006)")
	  or diag($msg);
}
is_deeply(table_texts($standby, 'postgres'),
	$on_primary, 'the refused calls changed nothing on the standby');

# ---------------------------------------------------------------------
# Promotion.
# ---------------------------------------------------------------------

$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby did not leave recovery';
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	'f', 'the promoted standby is a primary');

my ($max_job_id, $max_history_id) = split(
	/\|/,
	$standby->safe_psql(
		'postgres', q{
SELECT greatest((SELECT max(id) FROM dms_job), (SELECT max(job_id) FROM dms_job_history)),
       (SELECT max(id) FROM dms_job_history)}));

# The job "not started" walks to "Completed" on the promoted standby.
my $out = $standby->safe_psql(
	'postgres', q{
LISTEN dms_lifecycle;
SET ROLE alice;
SELECT dms_start(id) FROM dms_job WHERE name = 'not started';
SET ROLE engine;
SELECT dms_report(id, 'started') FROM dms_job WHERE name = 'not started';
SELECT dms_report(id, 'dump_completed') FROM dms_job WHERE name = 'not started';
SET ROLE alice;
SELECT dms_promote(id) FROM dms_job WHERE name = 'not started';
SET ROLE engine;
SELECT dms_report(id, 'promoted') FROM dms_job WHERE name = 'not started';
});
is( join(' ', grep { !/^Asynchronous notification/ } split /\n/, $out),
	'starting running running running completed',
	'on the promoted standby a job walks from "Not started" to "Completed"');
is( $standby->safe_psql(
		'postgres', qq{
SELECT concat_ws('|', cause, from_status, from_phase, to_status, to_phase, actor)
  FROM dms_job_history WHERE id > $max_history_id ORDER BY id}),
	join("\n",
		'start|not_started|starting|alice',
		'started|starting|running|full_dump|engine',
		'dump_completed|running|full_dump|running|cdc|engine',
		'promote|running|cdc|running|promote_in_progress|alice',
		'promoted|running|promote_in_progress|completed|engine'),
	'... appending one history row per step after the replicated ones');
is( join(' ', map { "$_->{cause}:$_->{to_status}" } notifications($out)),
	'start:starting started:running dump_completed:running promote:running promoted:completed',
	'... and sending one notification per step');

# A per-database failure on the promoted standby.
is( $standby->safe_psql(
		'postgres',
		"SET ROLE engine; SELECT dms_report(id, 'failed', 'sales: gone', 'sales') FROM dms_job WHERE name = 'running cdc'"
	),
	'failed',
	'on the promoted standby the engine reports a database failure');
is( $standby->safe_psql(
		'postgres', q{
SELECT f.database_name || '|' || f.phase || '|' || f.error_message
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id WHERE j.name = 'running cdc'}),
	'sales|cdc|sales: gone',
	'... which records its failure row');

my $new_id = $standby->safe_psql('postgres',
	"SET ROLE alice; SELECT dms_create_job('after the promotion')");
cmp_ok($new_id, '>', $max_job_id,
	"a job created after the promotion gets an id ($new_id) above every id the history knows ($max_job_id)"
);

# The guard still refuses what is no edge.
my ($state, $msg) = sql_error($standby, 'postgres',
	"UPDATE dms_job SET status = 'completed', phase = NULL WHERE name = 'stopped cdc'");
is($state, '55000',
	'on the promoted standby a direct UPDATE from Stopped (CDC) to Completed is refused with 55000'
);
like(
	$msg,
	qr/^invalid transition of migration job \d+ from "Stopped" \(CDC\) to "Completed"/,
	'... and the message names both states');
($state, $msg) = sql_error($standby, 'postgres',
	"SET ROLE alice; SELECT dms_resume(id) FROM dms_job WHERE name = 'stopped dump'");
is($state, '55000',
	'on the promoted standby resuming a job stopped in full dump is refused with 55000'
);
($state, $msg) = sql_error($standby, 'postgres',
	'DELETE FROM dms_job_history WHERE id = 1');
is($state, '55000', 'on the promoted standby the history stays append-only');

is(consistency_violations($standby, 'postgres'),
	'', 'on the promoted standby every job agrees with its history');

# amcheck on the promoted standby: every btree index of the three tables,
# one ok per index.
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE indisvalid) || ' of ' || count(*) FROM pg_index
   WHERE indexrelid::regclass::text LIKE 'user\_%'}),
	'5 of 5',
	'the promoted standby has the five indexes built on the primary, all valid');
my @checks = btree_index_checks($standby, 'postgres');
cmp_ok(scalar(@checks), '>=', 10,
	'amcheck checks the ' . scalar(@checks) . ' btree indexes of the three tables, the user\'s included');
foreach my $c (@checks)
{
	is($c->[1], 'ok',
		"on the promoted standby bt_index_check(heapallindexed) finds $c->[0] consistent");
}

$standby->stop;
done_testing();
