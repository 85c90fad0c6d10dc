# t/001_dump_restore.pl: migration jobs survive pg_dump/pg_restore (SPEC 5, 10).
#
# A database holds jobs in every legal (status, phase), failure rows, edits
# and deleted jobs whose history stays.  It is copied with pg_dump -Fc and
# pg_restore, and with a plain-SQL pg_dump played by psql.  Each copy must
# hold the same rows, give new jobs and history rows ids that collide with
# nothing, and still enforce the lifecycle.  Last, COPY FROM (the way a
# restore loads rows) is tried directly: every legal state loads without
# writing history, no illegal state does, and writes that merely happen
# while a COPY runs (COPY (INSERT ...) TO, a trigger during a COPY FROM into
# another table) are no load: the guard and the history treat them as the
# ordinary writes they are.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsTest;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

$node->safe_psql('postgres',
	'CREATE ROLE alice; CREATE ROLE engine; CREATE DATABASE src;');
$node->safe_psql(
	'src', q{
CREATE EXTENSION dms_lifecycle;
SELECT dms_grant('alice', 'operator');
SELECT dms_grant('engine', 'engine');
});
$node->safe_psql('src', populate_sql());

# ---------------------------------------------------------------------
# The source: check that the fixture is what the rest of the test assumes.
# ---------------------------------------------------------------------

# SPEC section 3: the sixteen legal (status, phase) pairs.
my $legal_pairs = join("\n",
	'not_started|', 'starting|',
	'running|full_dump', 'running|cdc',
	'running|promote_in_progress', 'running_with_errors|full_dump',
	'running_with_errors|cdc', 'completed|',
	'failed|full_dump', 'failed|cdc',
	'restarting|', 'stopped|full_dump',
	'stopped|cdc', 'resuming|cdc',
	'stopping|full_dump', 'stopping|cdc');

is( $node->safe_psql(
		'src',
		"SELECT DISTINCT status, phase FROM dms_job ORDER BY status, phase"),
	$legal_pairs,
	'source: the jobs cover every legal (status, phase) of SPEC section 3');

is( $node->safe_psql(
		'src',
		"SELECT name || '|' || status || '|' || coalesce(phase::text, '') FROM dms_job ORDER BY id"
	),
	join("\n", populated_states()),
	'source: every job is in the state its walk leads to');

is(failure_rows($node, 'src'), join("\n", populated_failures()),
	'source: failure rows of the failed jobs only (deleted and recovered jobs have none)'
);

is( $node->safe_psql(
		'src', q{
SELECT job_name || '|' || count(*)
  FROM dms_job_history h
 WHERE NOT EXISTS (SELECT FROM dms_job j WHERE j.id = h.job_id)
 GROUP BY job_id, job_name ORDER BY job_id}),
	join("\n",
		'gone early|4', 'gone failed|6', 'gone stopped|7', 'gone not started|2'),
	'source: the history of the four deleted jobs remains');

is( $node->safe_psql(
		'src', "SELECT DISTINCT actor FROM dms_job_history ORDER BY 1"),
	"alice\nengine",
	'source: history rows were written by the operator and the engine');

is(consistency_violations($node, 'src'),
	'', 'source: every job agrees with its history');

# An engine-driven job (ENGINE.md 2): its server and user mapping, and the
# engine's record of its databases, which the extension marks for pg_dump.
$node->safe_psql(
	'src', q{
CREATE SERVER old_primary FOREIGN DATA WRAPPER dms_lifecycle_connection
  OPTIONS (host '10.0.0.5', port '5432', sslmode 'prefer');
CREATE USER MAPPING FOR PUBLIC SERVER old_primary OPTIONS (user 'migrator', password 'secret');
GRANT USAGE ON FOREIGN SERVER old_primary TO alice;
SET ROLE alice;
SELECT dms_create_job('engine driven', 'continuous', ARRAY['shop', 'billing'],
                      source_server => 'old_primary');
SELECT dms_start(id) FROM dms_job WHERE name = 'engine driven';
RESET ROLE;
INSERT INTO dms_job_database (job_id, database_name, state, created_database, source_server, source_oid,
                              tables_total, tables_copied, bytes_total, bytes_copied,
                              rows_copied, observed_at)
SELECT id, 'shop', 'copying', true, 'old_primary', 16384, 41, 12, 2300000000, 1034567890, 812345,
       '2024-05-01 12:00:00.123456+00'
  FROM dms_job WHERE name = 'engine driven';
INSERT INTO dms_job_database (job_id, database_name, state, source_server, source_oid, last_error, observed_at)
VALUES (987654, 'left behind', 'failed', 'old_primary', 16385,
        'the job was deleted; its subscription is still being dropped',
        '2024-05-01 12:00:00.654321+00');
});
# (options in the order of their names: pg_dump may write them in another)
my $engine_setup_sql = q{
SELECT 'server ' || srvname || ' ' || (SELECT string_agg(o, ',' ORDER BY o) FROM unnest(srvoptions) o)
  FROM pg_foreign_server
UNION ALL
SELECT 'mapping ' || srvname || ' ' || usename || ' '
       || (SELECT string_agg(o, ',' ORDER BY o) FROM unnest(umoptions) o)
  FROM pg_user_mappings
UNION ALL
SELECT 'job ' || name || ' ' || source_server FROM dms_job WHERE source_server IS NOT NULL
UNION ALL
SELECT 'engine row ' || d::text FROM dms_job_database d
UNION ALL
SELECT 'progress ' || p::text FROM dms_job_progress p
ORDER BY 1};
my $source_engine_setup = $node->safe_psql('src', $engine_setup_sql);
is( $source_engine_setup =~ tr/\n//,
	5,
	'source: a server, a user mapping, an engine-driven job, two rows of the engine and one of progress'
);

my $source = table_texts($node, 'src');
my $source_actions = $node->safe_psql('src',
	'SELECT id, dms_allowed_actions(id) FROM dms_job ORDER BY id');
my $source_overview = $node->safe_psql(
	'src', q{
SELECT id, name, migration_type, status, substatus, allowed_actions, error_message,
       failed_databases, dump_parallelism, pending_dump_parallelism, updated_at
  FROM dms_job_overview ORDER BY id});
my $source_rows = $node->safe_psql(
	'src', q{
SELECT (SELECT count(*) FROM dms_job), (SELECT count(*) FROM dms_job_failure),
       (SELECT count(*) FROM dms_job_history)});

# ---------------------------------------------------------------------
# The copies.
# ---------------------------------------------------------------------

my $tempdir = PostgreSQL::Test::Utils::tempdir;

$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$tempdir/src.dump", '-d', 'src' ],
	'pg_dump -Fc of the source');
$node->safe_psql('postgres', 'CREATE DATABASE dst_custom');
$node->command_checks_all(
	[ 'pg_restore', '--exit-on-error', '-d', 'dst_custom', "$tempdir/src.dump" ],
	0, [qr/^$/], [qr/^$/],
	'pg_restore of the custom dump into a fresh database, without an error or warning'
);

# No pg_restore -j here: PostgreSQL 15's parallel restore starts loading
# dms_job_failure while dms_job is still loading in another worker, so a
# failure row may not find its job yet ("migration job N does not exist",
# or the foreign key); whether it does is a race, and a test must not be.

$node->command_ok(
	[ 'pg_dump', '-Fp', '-f', "$tempdir/src.sql", '-d', 'src' ],
	'pg_dump -Fp (plain SQL) of the source');
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
$node->command_checks_all(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f',
		"$tempdir/src.sql"
	],
	0,
	[qr/^[\s\S]*$/],
	[qr/^$/],
	'psql plays the plain dump into a fresh database, without an error or warning');

# Nothing must have changed in the source while it was dumped.
is_deeply(table_texts($node, 'src'),
	$source, 'source unchanged by pg_dump');

foreach my $copy (
	[ 'dst_custom', 'pg_restore' ],
	[ 'dst_plain', 'plain SQL' ])
{
	my ($db, $how) = @$copy;
	my $copied = table_texts($node, $db);

	# Row counts first: a short message when whole rows are missing or doubled.
	is( $node->safe_psql(
			$db, q{
SELECT (SELECT count(*) FROM dms_job), (SELECT count(*) FROM dms_job_failure),
       (SELECT count(*) FROM dms_job_history)}),
		$source_rows,
		"$how: as many jobs, failure rows and history rows as the source");

	foreach my $table ('dms_job', 'dms_job_failure', 'dms_job_history')
	{
		is($copied->{$table}, $source->{$table},
			"$how: every row of $table is identical, timestamps included");
	}

	is( $node->safe_psql(
			$db, 'SELECT id, dms_allowed_actions(id) FROM dms_job ORDER BY id'),
		$source_actions,
		"$how: every job allows the same actions");
	is( $node->safe_psql(
			$db, q{
SELECT id, name, migration_type, status, substatus, allowed_actions, error_message,
       failed_databases, dump_parallelism, pending_dump_parallelism, updated_at
  FROM dms_job_overview ORDER BY id}),
		$source_overview,
		"$how: dms_job_overview reads the same");
	is(consistency_violations($node, $db),
		'', "$how: every job agrees with its history");
	is($node->safe_psql($db, $engine_setup_sql),
		$source_engine_setup,
		"$how: the server, its user mapping, the engine-driven job, the engine's rows and dms_job_progress are the source's"
	);

	# -----------------------------------------------------------------
	# New ids collide with nothing, not even a deleted job's id.
	# -----------------------------------------------------------------
	my ($max_job_id, $max_history_id) = split(
		/\|/,
		$node->safe_psql(
			$db, q{
SELECT greatest((SELECT max(id) FROM dms_job), (SELECT max(job_id) FROM dms_job_history)),
       (SELECT max(id) FROM dms_job_history)}));

	my $new_id = $node->safe_psql($db,
		"SET ROLE alice; SELECT dms_create_job('created after the restore', 'one_time', ARRAY['sales'])"
	);
	cmp_ok($new_id, '>', $max_job_id,
		"$how: a new job's id ($new_id) is above every job id the history knows ($max_job_id)"
	);
	is( $node->safe_psql(
			$db,
			"SELECT cause || '|' || (id > $max_history_id) FROM dms_job_history WHERE job_id = $new_id ORDER BY id"
		),
		'create|true',
		"$how: the new job's history is its create row alone, with an id above the old history ids"
	);

	# -----------------------------------------------------------------
	# The guard is active in the copy.
	# -----------------------------------------------------------------
	my $history_count =
	  $node->safe_psql($db, 'SELECT count(*) FROM dms_job_history');

	my ($state, $msg) = sql_error($node, $db,
		"UPDATE dms_job SET status = 'completed', phase = NULL WHERE name = 'running cdc'"
	);
	is($state, '55000',
		"$how: a direct UPDATE from Running (CDC) to Completed is refused with 55000"
	);
	like(
		$msg,
		qr/^invalid transition of migration job \d+ from "Running" \(CDC\) to "Completed"/,
		"$how: ... and the message names both states");

	($state, $msg) = sql_error($node, $db,
		"INSERT INTO dms_job (name, status) VALUES ('forged', 'completed')");
	is($state, '55000',
		"$how: an INSERT of a job that is not \"Not started\" is refused with 55000"
	);

	($state, $msg) = sql_error($node, $db,
		"UPDATE dms_job_history SET actor = 'mallory' WHERE id = 1");
	is($state, '55000', "$how: an UPDATE of a history row is refused with 55000");

	($state, $msg) = sql_error($node, $db,
		"SET ROLE alice; SELECT dms_promote(id) FROM dms_job WHERE name = 'not started'"
	);
	is($state, '55000',
		"$how: promoting a job that is \"Not started\" is refused with 55000");

	is($node->safe_psql($db, 'SELECT count(*) FROM dms_job_history'),
		$history_count, "$how: the refused writes left no history row");

	# A legal action by the operator: one history row, from the restored
	# state, and one notification (SPEC 8).
	my $out = $node->safe_psql($db,
		"LISTEN dms_lifecycle; SET ROLE alice; SELECT dms_stop(id) FROM dms_job WHERE name = 'running cdc'"
	);
	my ($result) = split /\n/, $out;
	is($result, 'stopping',
		"$how: the operator stops the restored job \"running cdc\"");
	is( $node->safe_psql(
			$db, qq{
SELECT count(*) || '|' || string_agg(concat_ws('|', cause, from_status, from_phase, to_status, to_phase, actor, id > $max_history_id), ',')
  FROM dms_job_history
 WHERE id > (SELECT max(id) FROM dms_job_history WHERE job_name = 'created after the restore')}
		),
		'1|stop|running|cdc|stopping|cdc|alice|t',
		"$how: the stop wrote exactly one history row, from running/cdc to stopping/cdc, by alice"
	);
	my ($job_id, $history_id) = split(
		/\|/,
		$node->safe_psql(
			$db,
			"SELECT job_id, id FROM dms_job_history WHERE cause = 'stop' ORDER BY id DESC LIMIT 1"
		));
	is_deeply(
		[ notifications($out) ],
		[
			{
				job_id => $job_id,
				name => 'running cdc',
				cause => 'stop',
				from_status => 'running',
				from_phase => 'cdc',
				to_status => 'stopping',
				to_phase => 'cdc',
				actor => 'alice',
				history_id => $history_id
			}
		],
		"$how: the stop sent one notification on dms_lifecycle naming its history row"
	);

	# The engine's events and the failure rows work too.
	is( $node->safe_psql(
			$db,
			"SET ROLE engine; SELECT dms_report(id, 'failed', 'sales is gone', 'sales') FROM dms_job WHERE name = 'stopping cdc'"
		),
		'failed',
		"$how: the engine reports a database failure of the restored job \"stopping cdc\""
	);
	is( $node->safe_psql(
			$db, q{
SELECT f.database_name || '|' || f.error_message
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id
 WHERE j.name = 'stopping cdc'}),
		'sales|sales is gone',
		"$how: ... which records the database's failure row");
	is(consistency_violations($node, $db),
		'', "$how: every job still agrees with its history after the new changes");
}

# ---------------------------------------------------------------------
# COPY FROM, the way a restore loads rows.
# ---------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE loads');
$node->safe_psql('loads', 'CREATE EXTENSION dms_lifecycle');

my $copy_job =
  'COPY dms_job (id, name, migration_type, status, phase, databases, dump_parallelism, '
  . 'pending_dump_parallelism, error_message, created_at, updated_at, status_changed_at, '
  . 'source_server, destination_server) FROM stdin;';

# One row per legal state of SPEC section 3, as COPY text.
sub job_line
{
	my ($id, $status, $phase, %o) = @_;
	return join("\t",
		$id, $o{name} // "loaded $id",
		$o{type} // 'continuous', $status,
		$phase // '\N', $o{databases} // '{sales,stock}',
		'optimal', $o{pending} // '\N',
		$o{error} // '\N', '2024-01-02 03:04:05.123456+00',
		'2024-02-03 04:05:06.654321+00', '2024-02-03 04:05:06.654321+00',
		$o{source} // '\N', '\N');
}

my @legal = (
	job_line(101, 'not_started', undef, databases => '\N'),
	job_line(102, 'starting', undef),
	job_line(103, 'running', 'full_dump', pending => 'max'),
	# a restore loads the name of a job's server as it was dumped, whether
	# or not the server is there yet
	job_line(104, 'running', 'cdc', source => 'server not restored'),
	job_line(105, 'running', 'promote_in_progress'),
	job_line(106, 'running_with_errors', 'full_dump', error => 'disk slow'),
	job_line(107, 'running_with_errors', 'cdc',
		error => 'lag\nof 10 minutes\tand a \\\\ backslash'),
	job_line(108, 'completed', undef, type => 'one_time'),
	job_line(109, 'failed', 'full_dump', error => 'cannot connect'),
	job_line(110, 'failed', 'cdc'),
	job_line(111, 'restarting', undef),
	job_line(112, 'stopped', 'full_dump', pending => 'min'),
	job_line(113, 'stopped', 'cdc'),
	job_line(114, 'resuming', 'cdc'),
	job_line(115, 'stopping', 'full_dump'),
	job_line(116, 'stopping', 'cdc'));
my @failures = (
	join("\t",
		110, 'sales', 'cdc', 'sales: permission denied',
		'2024-02-03 04:05:06.654321+00'),
	join("\t",
		110, 'stock', 'cdc', 'stock: relation missing',
		'2024-02-03 04:05:06.654321+00'));

my ($ret, $stdout, $stderr) = $node->psql(
	'loads',
	join("\n",
		'LISTEN dms_lifecycle;',
		$copy_job, @legal, '\.',
		'COPY dms_job_failure (job_id, database_name, phase, error_message, failed_at) FROM stdin;',
		@failures, '\.', ''),
	on_error_stop => 1);
is($ret, 0,
	'COPY FROM loads a job in each of the sixteen legal states, and failure rows of a failed job'
) or diag($stderr);

is($node->safe_psql('loads', 'COPY dms_job TO stdout'),
	join("\n", @legal),
	'the loaded jobs read back exactly as loaded, timestamps included');
is( $node->safe_psql(
		'loads',
		"COPY dms_job_failure (job_id, database_name, phase, error_message, failed_at) TO stdout"
	),
	join("\n", @failures),
	'the loaded failure rows read back exactly as loaded, and the failed job stays failed'
);
is($node->safe_psql('loads', 'SELECT count(*) FROM dms_job_history'),
	'0', 'loading wrote no history row (the history is loaded with its own data)');
is($stdout, '', '... and sent no notification');

# SPEC section 4.3: the loaded jobs behave as jobs in their state.
is( $node->safe_psql(
		'loads', 'SELECT id, dms_allowed_actions(id) FROM dms_job ORDER BY id'),
	join("\n",
		'101|{start,edit,delete}',
		'102|{delete}',
		'103|{stop,edit,delete}',
		'104|{stop,promote,edit,delete}',
		'105|{delete}',
		'106|{stop,restart}',
		'107|{stop,restart,promote}',
		'108|{delete}',
		'109|{restart,edit,delete}',
		'110|{restart,promote,edit,delete}',
		'111|{delete}',
		'112|{restart,edit,delete}',
		'113|{resume,restart,promote,edit,delete}',
		'114|{delete}',
		'115|{delete}',
		'116|{delete}'),
	'each loaded job allows the actions of its state (SPEC 4.3)');

is($node->safe_psql('loads', 'SELECT dms_resume(113)'),
	'resuming', 'a loaded job stopped in CDC can be resumed');
is( $node->safe_psql(
		'loads',
		"SELECT concat_ws('|', job_id, cause, from_status, from_phase, to_status, to_phase) FROM dms_job_history"
	),
	'113|resume|stopped|cdc|resuming|cdc',
	'... which writes one history row from the loaded state');
is($node->safe_psql('loads', 'SELECT dms_restart(110)'),
	'restarting', 'a loaded failed job can be restarted');
is($node->safe_psql('loads', 'SELECT count(*) FROM dms_job_failure'),
	'0', '... which removes its loaded failure rows');

# Illegal pairs (SPEC section 3) are refused even in a load, and the whole
# COPY loads nothing.
my $loads_history = $node->safe_psql('loads', 'SELECT count(*) FROM dms_job_history');
my $jobs_before = $node->safe_psql('loads', 'COPY dms_job TO stdout');
foreach my $pair (
	[ 'completed', 'cdc' ],
	[ 'completed', 'full_dump' ],
	[ 'running', undef ],
	[ 'not_started', 'full_dump' ],
	[ 'starting', 'cdc' ],
	[ 'restarting', 'full_dump' ],
	[ 'resuming', 'full_dump' ],
	[ 'resuming', undef ],
	[ 'failed', 'promote_in_progress' ],
	[ 'failed', undef ],
	[ 'stopped', 'promote_in_progress' ],
	[ 'stopping', 'promote_in_progress' ],
	[ 'running_with_errors', 'promote_in_progress' ])
{
	my ($status, $phase) = @$pair;
	my $shown = "$status/" . ($phase // 'NULL');
	my %error =
	  ($status eq 'failed' || $status eq 'running_with_errors')
	  ? (error => 'some error')
	  : ();
	my ($state, $msg) = sql_error(
		$node, 'loads',
		join("\n",
			$copy_job,
			job_line(200, 'stopped', 'cdc', name => 'legal neighbour'),
			job_line(201, $status, $phase, %error),
			'\.', ''));
	is($state, '55000',
		"COPY FROM of a job in the illegal state $shown is refused with 55000");
	like($msg, qr/\bjob 201\b/, "... the message names the job in $shown");
}
is($node->safe_psql('loads', 'COPY dms_job TO stdout'),
	$jobs_before, 'the refused loads left no job behind, not even their legal rows');

# The error message must fit the loaded status (SPEC 5: error_message only
# in running_with_errors and failed).
my ($state, $msg) = sql_error($node, 'loads',
	join("\n", $copy_job, job_line(202, 'running', 'cdc', error => 'stale'), '\.', ''));
is($state, '55000',
	'COPY FROM of a running job with an error message is refused with 55000');
($state, $msg) = sql_error($node, 'loads',
	join("\n", $copy_job, job_line(203, 'running_with_errors', 'cdc'), '\.', ''));
is($state, '55000',
	'COPY FROM of a job running with errors but no error message is refused with 55000'
);

# A failure row may only be loaded for a failed job (decided by the
# implementation: a load restores a consistent state, it takes no edge).
($state, $msg) = sql_error(
	$node, 'loads',
	"COPY dms_job_failure (job_id, database_name, phase, error_message) FROM stdin;\n104\tsales\tcdc\tboom\n\\.\n"
);
is($state, '55000',
	'COPY FROM of a failure row for a running job is refused with 55000');
is(job_state($node, 'loads', 'loaded 104'),
	'running|cdc', '... and the job is still running');

# A plain INSERT is no load: the guard still wants a new job "Not started".
($state, $msg) = sql_error($node, 'loads',
	"INSERT INTO dms_job (id, name, status) OVERRIDING SYSTEM VALUE VALUES (300, 'inserted', 'stopped')"
);
is($state, '55000',
	'an INSERT of a job that is not "Not started" is refused even with explicit values'
);
is($node->safe_psql('loads', 'SELECT count(*) FROM dms_job_history'),
	$loads_history, 'the refused loads and inserts wrote no history row');

# ---------------------------------------------------------------------
# Only a COPY FROM into the table loads rows.  Other writes made while a
# COPY runs are ordinary writes (SPEC 5: "A new row must be not_started";
# one history row for every created job; a failure row appearing puts its
# job into failed).
# ---------------------------------------------------------------------

# COPY (INSERT ... RETURNING) TO: an INSERT, not a load.
($state, $msg) = sql_error($node, 'loads',
	"COPY (INSERT INTO dms_job (name, status) VALUES ('forged by copy to', 'completed') RETURNING id) TO stdout"
);
is($state, '55000',
	'COPY (INSERT ... RETURNING) TO of a "Completed" job is refused with 55000 (it is no load)'
);
is( $node->safe_psql(
		'loads',
		q{SELECT (SELECT count(*) FROM dms_job WHERE name = 'forged by copy to') + (SELECT count(*) FROM dms_job_history WHERE job_name = 'forged by copy to')}
	),
	'0',
	'... and left no job behind');

$node->safe_psql('loads',
	"COPY (INSERT INTO dms_job (name) VALUES ('created by copy to') RETURNING id) TO stdout"
);
is( $node->safe_psql(
		'loads',
		q{SELECT string_agg(concat_ws('|', cause, to_status), ',') FROM dms_job_history WHERE job_name = 'created by copy to'}
	),
	'create|not_started',
	'COPY (INSERT ... RETURNING) TO of a "Not started" job writes its create history row'
);

# COPY (INSERT ... RETURNING) TO of a failure row of a running job: the job
# fails, as with a plain INSERT.
($state, $msg) = sql_error($node, 'loads',
	"COPY (INSERT INTO dms_job_failure (job_id, database_name, error_message) VALUES (104, 'sales', 'sales: boom') RETURNING job_id) TO stdout"
);
is($state, '',
	'COPY (INSERT ... RETURNING) TO of a failure row of a running job is accepted like an INSERT'
) or diag($msg);
is(job_state($node, 'loads', 'loaded 104'),
	'failed|cdc', '... and the job fails in its phase');

# A trigger that inserts a job while a COPY FROM loads another table.
$node->safe_psql(
	'loads', q{
CREATE TABLE job_requests (name text);
CREATE FUNCTION job_requests_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dms_job (name) VALUES (NEW.name);
    RETURN NEW;
END $$;
CREATE TRIGGER job_requests_insert AFTER INSERT ON job_requests
    FOR EACH ROW EXECUTE FUNCTION job_requests_insert();
});
$node->safe_psql('loads',
	"COPY job_requests FROM stdin;\nrequested by copy\n\\.\n");
is( $node->safe_psql(
		'loads',
		q{SELECT string_agg(concat_ws('|', cause, to_status), ',') FROM dms_job_history WHERE job_name = 'requested by copy'}
	),
	'create|not_started',
	'a job inserted by a trigger during a COPY FROM into another table gets its create history row'
);

done_testing();
