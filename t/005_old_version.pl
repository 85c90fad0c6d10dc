# t/005_old_version.pl: a database still at an earlier version of
# dms_lifecycle keeps working on the library of the default version, and
# then updates to a fresh install (SPEC 11).
#
# A server has one library, the default version's: a database made with
# CREATE EXTENSION dms_lifecycle VERSION V (today 1.0, whose catalog still
# has the trigger dms_failure_removed that 1.1 dropped) runs on it until
# someone runs ALTER EXTENSION ... UPDATE.  For every earlier version V, in
# three variants (the tables as V made them; a dms_job with columns of the
# user's, one of them dropped again; all three tables so altered), a
# database at V and a reference database at the default version with the
# same user columns run the same psql scripts:
#   1. jobs in every (status, phase) through the API (DmsTest::populate_sql);
#   2. walks that take every edge of dms_transitions(), each action and
#      each event, deletes from every state included;
#   3. failed jobs whose failed databases leave the migration through
#      dms_remove_database: the last one gives the history rows 'edit' then
#      'recovered' and the call returns 'running'; not with a job-level
#      error; in a transaction that rolls back, nothing;
#   4. direct writes: INSERT, UPDATE along edges (one of them over several
#      rows), failure rows inserted, updated and deleted, database lists
#      changed by UPDATE (a recovery among them), DELETE of jobs with
#      failure rows, and refused writes;
#   5. refusals through the API (55000, P0002, 22004, 22023, 42501);
#   6. in the variants with user columns: their defaults and values survive
#      every change, and columns added and dropped between two calls of one
#      session break nothing.
# The database at V must print what the reference prints (results, errors,
# notifications), hold the same rows (timestamps aside, in the columns V
# has), agree with its history, have taken every edge, and have sent
# exactly one notification per history row; the server log shows no crash
# and no internal error (XX000).  At 1.0 the engine's objects of 1.1 are
# absent (the wrapper dms_lifecycle_connection, dms_job's server columns,
# dms_job_database, dms_job_progress): the library reads the missing
# columns as NULL and refuses to write a server into them, saying to update.
# Then ALTER EXTENSION ... UPDATE (in the plain variant while another
# session that ran the library on V stays open and goes on after it; in the
# variants with user columns, in the middle of such a session, a recovery
# rolled back before it and done after it), and the capabilities granted
# again as its WARNING says: the catalog is the reference's (the columns the
# update adds come after the user's, where a fresh install has them
# before), no row changed, and one more script prints and writes what the
# reference does.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsTest;
use DmsCatalog;

my $ext = 'dms_lifecycle';

my $node = PostgreSQL::Test::Cluster->new('old_version');
$node->init;
# every error in the log with its SQLSTATE, to find internal errors (XX000)
$node->append_conf('postgresql.conf', "log_error_verbosity = verbose\n");
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE alice; CREATE ROLE engine;');

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = '$ext'");
my @earlier = split /\n/,
  $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = '$ext' AND version NOT IN ('$default', 'plpgsql') ORDER BY version"
  );
if (!@earlier)
{
	$node->stop;
	plan skip_all => "no version of $ext earlier than $default is available";
}

my $grants = "SELECT dms_grant('alice', 'operator'); SELECT dms_grant('engine', 'engine');";

# ---------------------------------------------------------------------
# The variants: user columns added (and dropped) right after CREATE
# EXTENSION, the same in the database at V and in its reference.
# ---------------------------------------------------------------------

my $job_columns = q{
ALTER TABLE dms_job ADD COLUMN note text NOT NULL DEFAULT 'mine';
ALTER TABLE dms_job ADD COLUMN scratch integer;
ALTER TABLE dms_job DROP COLUMN scratch;
ALTER TABLE dms_job ADD COLUMN score integer;
};
my $other_columns = q{
ALTER TABLE dms_job_failure ADD COLUMN scratch integer;
ALTER TABLE dms_job_failure ADD COLUMN ticket text DEFAULT 'T-1';
ALTER TABLE dms_job_failure DROP COLUMN scratch;
ALTER TABLE dms_job_history ADD COLUMN scratch integer;
ALTER TABLE dms_job_history ADD COLUMN shipped boolean NOT NULL DEFAULT false;
ALTER TABLE dms_job_history DROP COLUMN scratch;
};
my @variants = (
	[ 'plain', '' ],
	[ 'job_columns', $job_columns ],
	[ 'all_columns', $job_columns . $other_columns ]);

# ---------------------------------------------------------------------
# The scripts.
# ---------------------------------------------------------------------

# 2. Walks that, with populate_sql, take every edge of the lifecycle.
my $edges_sql = walk_function_sql() . q{
SELECT dms_create_job('e' || i, 'continuous', ARRAY['a', 'b']) FROM generate_series(1, 9) i;
SELECT dms_create_job('e-one-time', 'one_time', ARRAY['a']);
SELECT dms_create_job('d' || i, 'continuous', ARRAY['a', 'b']) FROM generate_series(1, 6) i;
SELECT pg_temp.walk('e1', ARRAY['start', 'started', 'error|e1 x', 'error|e1 y', 'errors_cleared',
    'dump_completed', 'error|e1 z', 'errors_cleared', 'error|e1 w', 'stop', 'failed|e1 m',
    'promote', 'failed|e1 m2', 'recovered', 'promote', 'promoted', 'delete']);
SELECT pg_temp.walk('e2', ARRAY['start', 'failed|e2 boom', 'restart', 'failed|e2 again', 'restart', 'restarted', 'error|e2 e',
    'dump_completed', 'promote', 'delete']);
SELECT pg_temp.walk('e-one-time', ARRAY['start', 'started', 'error|one-time e', 'dump_completed']);
SELECT pg_temp.walk('e5', ARRAY['start', 'started', 'stop', 'failed|e5 x', 'recovered', 'par|max',
    'failed|e5 a|a', 'failed|e5 y', 'add|c', 'restart', 'restarted', 'stop', 'stopped', 'par|min',
    'restart', 'delete']);
SELECT pg_temp.walk('e6', ARRAY['start', 'started', 'dump_completed', 'stop', 'stopped', 'resume',
    'failed|e6 x', 'restart', 'restarted', 'dump_completed', 'stop', 'stopped', 'resume', 'resumed',
    'par|max', 'error|e6 e', 'restart', 'restarted', 'error|e6 e2', 'stop', 'delete']);
SELECT pg_temp.walk('e7', ARRAY['start', 'started', 'error|e7 e', 'failed|e7 f', 'restart',
    'restarted', 'dump_completed', 'error|e7 e2', 'failed|e7 f2', 'failed|e7 b|b', 'par|max',
    'delete']);
SELECT pg_temp.walk('e8', ARRAY['start', 'started', 'error|e8 e', 'restart', 'restarted',
    'dump_completed', 'stop', 'stopped', 'par|min', 'restart', 'restarted', 'dump_completed',
    'stop', 'stopped', 'promote', 'failed|e8 x']);
SELECT pg_temp.walk('e9', ARRAY['start', 'started', 'dump_completed', 'failed|e9 a broke|a',
    'failed|e9 b broke|b', 'recovered']);
SELECT pg_temp.walk('d1', ARRAY['start', 'delete']);
SELECT pg_temp.walk('d2', ARRAY['start', 'started', 'dump_completed', 'delete']);
SELECT pg_temp.walk('d3', ARRAY['start', 'failed|d3 a|a', 'delete']);
SELECT pg_temp.walk('d4', ARRAY['start', 'started', 'stop', 'stopped', 'delete']);
SELECT pg_temp.walk('d5', ARRAY['start', 'started', 'dump_completed', 'stop', 'stopped', 'resume', 'delete']);
SELECT pg_temp.walk('d6', ARRAY['start', 'started', 'dump_completed', 'stop', 'delete']);
};

# 3. Failed databases leaving the migration through the API.
my $recovery_sql = walk_function_sql() . q{
SELECT dms_create_job('recover api', 'continuous', ARRAY['a', 'b', 'c']);
SELECT dms_create_job('no recovery', 'continuous', ARRAY['a', 'b']);
SET ROLE alice;
SELECT pg_temp.walk('recover api', ARRAY['start']);
SELECT pg_temp.walk('no recovery', ARRAY['start']);
SET ROLE engine;
SELECT pg_temp.walk('recover api', ARRAY['started', 'dump_completed', 'failed|a: broken|a', 'failed|b: broken|b']);
SELECT pg_temp.walk('no recovery', ARRAY['started', 'failed|a: broken|a', 'failed|the job is down']);
SET ROLE alice;
SELECT 'recover api, remove a: ' || dms_remove_database(id, 'a') FROM dms_job WHERE name = 'recover api';
SELECT 'recover api, remove b: ' || dms_remove_database(id, 'b') FROM dms_job WHERE name = 'recover api';
SELECT 'no recovery, remove a: ' || dms_remove_database(id, 'a') FROM dms_job WHERE name = 'no recovery';
BEGIN;
SELECT 'rolled back, remove Zürich db: ' || dms_remove_database(id, 'Zürich db')
  FROM dms_job WHERE name = E'naïve "quoted" \'job\' über';
ROLLBACK;
SELECT 'after the rollback: ' || status || '/' || phase || ', '
       || (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = j.id) || ' failure row(s)'
  FROM dms_job j WHERE name = E'naïve "quoted" \'job\' über';
BEGIN;
SELECT 'committed, remove Zürich db: ' || dms_remove_database(id, 'Zürich db')
  FROM dms_job WHERE name = E'naïve "quoted" \'job\' über';
SELECT 'committed, then stop: ' || dms_stop(id) FROM dms_job WHERE name = E'naïve "quoted" \'job\' über';
COMMIT;
RESET ROLE;
};

# 4. Direct writes, as the superuser.  Some are refused.
my $direct_sql = q{
INSERT INTO dms_job (name, databases) VALUES ('direct', ARRAY['a', 'b', 'c']);
UPDATE dms_job SET status = 'starting' WHERE name = 'direct';
UPDATE dms_job SET status = 'running', phase = 'full_dump' WHERE name = 'direct';
INSERT INTO dms_job_failure (job_id, database_name, error_message)
SELECT id, 'a', 'a: direct failure' FROM dms_job WHERE name = 'direct';
INSERT INTO dms_job_failure (job_id, database_name, error_message)
SELECT id, 'b', 'b: direct failure' FROM dms_job WHERE name = 'direct';
UPDATE dms_job_failure SET error_message = 'a: failed again'
 WHERE database_name = 'a' AND job_id = (SELECT id FROM dms_job WHERE name = 'direct');
SELECT 'direct after the failures: ' || status || '/' || phase || ', '
       || (SELECT string_agg(database_name || ' ' || phase || ' ' || error_message, '; ' ORDER BY database_name)
             FROM dms_job_failure f WHERE f.job_id = j.id)
  FROM dms_job j WHERE name = 'direct';
UPDATE dms_job SET databases = ARRAY['b', 'c'] WHERE name = 'direct';
SELECT 'direct without a: ' || status || '/' || phase FROM dms_job WHERE name = 'direct';
UPDATE dms_job SET databases = ARRAY['c'] WHERE name = 'direct';
SELECT 'direct without b: ' || status || '/' || phase || ', '
       || (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = j.id) || ' failure row(s)'
  FROM dms_job j WHERE name = 'direct';
-- two failed databases leave at once
UPDATE dms_job SET databases = ARRAY['hr'] WHERE name = 'failed cdc dbs';
SELECT 'failed cdc dbs: ' || status || '/' || phase FROM dms_job WHERE name = 'failed cdc dbs';
-- a failure row deleted while its database stays in the migration
INSERT INTO dms_job_failure (job_id, database_name, error_message)
SELECT id, 'c', 'c: direct failure' FROM dms_job WHERE name = 'direct';
DELETE FROM dms_job_failure WHERE job_id = (SELECT id FROM dms_job WHERE name = 'direct');
SELECT 'direct after deleting its failure row: ' || status || '/' || phase FROM dms_job WHERE name = 'direct';
-- an edge over several rows
UPDATE dms_job SET status = 'stopped' WHERE status = 'stopping';
-- deletes, one of a job with failure rows
DELETE FROM dms_job WHERE name = 'failed all dbs';
DELETE FROM dms_job WHERE name IN ('completed one-time', 'not started');
-- refused
UPDATE dms_job SET status = 'completed', phase = NULL WHERE name = 'running cdc';
DELETE FROM dms_job WHERE name = 'errors dump';
INSERT INTO dms_job (name, status) VALUES ('born running', 'running');
INSERT INTO dms_job_failure (job_id, database_name, error_message)
SELECT id, 'nowhere', 'x' FROM dms_job WHERE name = 'running dump';
INSERT INTO dms_job_failure (job_id, database_name, error_message)
SELECT id, 'sales', ' ' FROM dms_job WHERE name = 'running dump';
DELETE FROM dms_job_history;
TRUNCATE dms_job_failure;
UPDATE dms_job SET name = 'renamed', status = 'stopping' WHERE name = 'running dump';
SELECT 'jobs: ' || count(*) FROM dms_job;
};

# 5. Refusals through the API: [role, statement, SQLSTATE].
my @refusals = (
	[ 'alice', "SELECT dms_promote(id) FROM dms_job WHERE name = 'starting'", '55000' ],
	[ 'alice', "SELECT dms_delete(id) FROM dms_job WHERE name = 'errors cdc'", '55000' ],
	[ 'alice', "SELECT dms_resume(id) FROM dms_job WHERE name = 'stopped dump'", '55000' ],
	[ 'alice', "SELECT dms_add_database(id, 'x') FROM dms_job WHERE name = 'running cdc'", '55000' ],
	[ 'alice', 'SELECT dms_start(987654321)', 'P0002' ],
	[ 'alice', 'SELECT dms_start(NULL)', '22004' ],
	[ 'alice', "SELECT dms_create_job('   ')", '22023' ],
	[ 'alice', "SELECT dms_create_job('running cdc')", '23505' ],
	[ 'alice', "SELECT dms_remove_database(id, 'db1') FROM dms_job WHERE name = 'stopped cdc'", '22023' ],
	[ 'engine', "SELECT dms_report(id, 'failed', '') FROM dms_job WHERE name = 'running cdc'", '22023' ],
	[ 'engine', "SELECT dms_report(id, 'promoted') FROM dms_job WHERE name = 'running cdc'", '55000' ],
	[ 'engine', "SELECT dms_stop(id) FROM dms_job WHERE name = 'running cdc'", '42501' ],
	[ 'alice', "SELECT dms_report(id, 'stopped') FROM dms_job WHERE name = 'stopping cdc'", '42501' ],
	[ 'alice', "UPDATE dms_job SET status = 'stopping' WHERE name = 'running cdc'", '42501' ]);

# 6. User columns: defaults, values kept, and columns that come and go
# within a session.
my $user_columns_sql = q{
UPDATE dms_job SET note = 'changed by hand', score = 7 WHERE name = 'running cdc';
SELECT 'running cdc: ' || status || '/' || phase || ' ' || note || ' ' || score FROM dms_job WHERE name = 'running cdc';
SET ROLE alice;
SELECT 'stop: ' || dms_stop(id) FROM dms_job WHERE name = 'running cdc';
RESET ROLE;
ALTER TABLE dms_job ADD COLUMN late integer DEFAULT 1;
SET ROLE engine;
SELECT 'stopped: ' || dms_report(id, 'stopped') FROM dms_job WHERE name = 'running cdc';
RESET ROLE;
ALTER TABLE dms_job DROP COLUMN late;
SET ROLE alice;
SELECT 'resume: ' || dms_resume(id) FROM dms_job WHERE name = 'running cdc';
SELECT 'new job: ' || (dms_create_job('user columns', 'continuous', ARRAY['a']) IS NOT NULL);
RESET ROLE;
SELECT 'running cdc: ' || status || '/' || phase || ' ' || note || ' ' || score FROM dms_job WHERE name = 'running cdc';
SELECT 'notes: ' || string_agg(DISTINCT note, ', ') FROM dms_job WHERE name <> 'running cdc';
};

# A session that runs the library on the old version, then updates the
# extension (%s: the ALTER EXTENSION, nothing in the reference) and goes on.
my $across_update_sql = walk_function_sql() . q{
SELECT dms_create_job('across', 'continuous', ARRAY['a', 'b', 'c']);
SELECT pg_temp.walk('across', ARRAY['start', 'started', 'dump_completed', 'failed|a: broken|a', 'failed|b: broken|b']);
SET ROLE alice;
SELECT 'across, remove a: ' || dms_remove_database(id, 'a') FROM dms_job WHERE name = 'across';
BEGIN;
SELECT 'across, rolled back, remove b: ' || dms_remove_database(id, 'b') FROM dms_job WHERE name = 'across';
ROLLBACK;
RESET ROLE;
%s
SET ROLE alice;
SELECT 'across, remove b: ' || dms_remove_database(id, 'b') FROM dms_job WHERE name = 'across';
SELECT 'across, stop: ' || dms_stop(id) FROM dms_job WHERE name = 'across';
RESET ROLE;
};

# After the update.
my $after_update_sql = walk_function_sql() . q{
SET ROLE alice;
SELECT dms_create_job('after update', 'continuous', ARRAY['a', 'b']);
SELECT pg_temp.walk('after update', ARRAY['start']);
SET ROLE engine;
SELECT pg_temp.walk('after update', ARRAY['started', 'dump_completed', 'failed|a: broken|a']);
SET ROLE alice;
SELECT 'after update, remove a: ' || dms_remove_database(id, 'a') FROM dms_job WHERE name = 'after update';
SELECT 'restart: ' || dms_restart(id) FROM dms_job WHERE name = 'failed dump';
SELECT 'promote: ' || dms_promote(id) FROM dms_job WHERE name = 'stopped cdc';
RESET ROLE;
UPDATE dms_job SET databases = ARRAY['sales'] WHERE name = 'failed both';
UPDATE dms_job SET status = 'running', phase = 'cdc' WHERE name = 'resuming';
DELETE FROM dms_job WHERE name = 'completed continuous';
};

# ---------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------

# Runs a script in one session that listens; returns its stdout and stderr.
sub run_script
{
	my ($db, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	$node->psql(
		$db, "LISTEN dms_lifecycle;\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($stdout, $stderr);
}

# Output without the PIDs of notifications, to compare.
sub without_pids
{
	my ($text) = @_;
	$text =~ s/received from server process with PID \d+/received from server process with PID N/g;
	return $text;
}

# Runs a script in the database at V and in its reference: both print the
# same.  Returns the stdout of the database at V.
sub run_both
{
	my ($v, $ref, $what, $sql, $how) = @_;
	my ($out, $err) = run_script($v, $sql);
	my ($ref_out, $ref_err) = run_script($ref, $sql);
	is(without_pids($out), without_pids($ref_out),
		"$how, $what: the results and notifications are the reference's");
	is($err, $ref_err, "$how, $what: the errors are the reference's");
	return ($out, $err);
}

# The columns of the three tables in $db, timestamps aside, user columns
# included, as { table => 'a, b, ...' } in the order of $db.
sub columns_without_times
{
	my ($db) = @_;
	my %c;
	foreach my $table ('dms_job', 'dms_job_failure', 'dms_job_history')
	{
		$c{$table} = $node->safe_psql(
			$db, qq{
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
   AND atttypid <> 'timestamptz'::regtype});
	}
	return \%c;
}

# The rows of the three tables in $db, in the columns $cols names.
sub rows_without_times
{
	my ($db, $cols) = @_;
	my %t;
	foreach my $table (keys %$cols)
	{
		$t{$table} =
		  $node->safe_psql($db, "SELECT row($cols->{$table})::text FROM $table ORDER BY 1");
	}
	return \%t;
}

# The rows of the database at V are the reference's, in the columns V has
# (at 1.0, the reference has dms_job's server columns besides, all NULL).
sub rows_equal
{
	my ($v, $ref, $how) = @_;
	my $cols = columns_without_times($v);
	my ($got, $want) = (rows_without_times($v, $cols), rows_without_times($ref, $cols));
	foreach my $table (sort keys %$want)
	{
		is(differences($got->{$table}, $want->{$table}),
			'', "$how: the rows of $table are the reference's (timestamps aside)");
	}
}

# The catalog without the positions of the columns: an update adds its
# columns after those a user added, where a fresh install has them before.
sub without_column_positions
{
	my ($catalog) = @_;
	my %c = %$catalog;
	$c{relations} = join("\n",
		sort map { s/^(column \S+) at \d+:/$1:/r } split /\n/, $c{relations});
	return \%c;
}

# The objects of 1.1 that the update from 1.0 adds, by kind: what exists of
# them in $db, one line each.
sub objects_of_1_1
{
	my ($db) = @_;
	return $node->safe_psql(
		$db, q{
SELECT 'wrapper ' || fdwname FROM pg_foreign_data_wrapper WHERE fdwname = 'dms_lifecycle_connection'
UNION ALL
SELECT 'column dms_job.' || attname FROM pg_attribute
 WHERE attrelid = 'dms_job'::regclass AND attname IN ('source_server', 'destination_server')
   AND NOT attisdropped
UNION ALL
SELECT 'relation ' || relname FROM pg_class
 WHERE relname IN ('dms_job_database', 'dms_job_progress')
   AND relnamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'dms_lifecycle')
UNION ALL
SELECT 'type ' || typname FROM pg_type WHERE typname = 'dms_database_state'
UNION ALL
SELECT 'function ' || oid::regprocedure FROM pg_proc
 WHERE proname IN ('dms_create_job', 'dms_lifecycle_connection_validator')
ORDER BY 1});
}

# Each history row above $after_id against the notifications, in order.
sub notifications_match_history
{
	my ($db, $after_id, $outputs, $how) = @_;
	my @sent = map {
		join('|',
			map { $_ // '' } @{$_}{qw(history_id job_id name cause from_status from_phase to_status to_phase actor)})
	} map { notifications($_) } @$outputs;
	my @rows = split /\n/, $node->safe_psql(
		$db, qq{
SELECT concat_ws('|', id, job_id, job_name, cause, coalesce(from_status::text, ''),
                 coalesce(from_phase::text, ''), coalesce(to_status::text, ''),
                 coalesce(to_phase::text, ''), actor)
  FROM dms_job_history WHERE id > $after_id ORDER BY id});
	is(differences(join("\n", @sent), join("\n", @rows)),
		'', "$how: one notification per history row, saying what the row says, in order");
	return scalar(@rows);
}

# The history rows of one job after its first $skip, as
# "cause|from|to|actor", with the database of an edit before the actor if
# $edit_database.
sub history_of
{
	my ($db, $name, $skip, $edit_database) = @_;
	my $database = $edit_database ? "CASE WHEN h.cause = 'edit' THEN h.database_name END" : 'NULL';
	$name =~ s/'/''/g;
	return $node->safe_psql(
		$db, qq{
SELECT concat_ws('|', h.cause, coalesce(h.from_status::text, '-') || '/' || coalesce(h.from_phase::text, '-'),
                 coalesce(h.to_status::text, '-') || '/' || coalesce(h.to_phase::text, '-'),
                 $database, h.actor)
  FROM dms_job_history h
 WHERE h.job_id = (SELECT max(job_id) FROM dms_job_history WHERE job_name = '$name')
 ORDER BY h.id OFFSET $skip});
}

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# ---------------------------------------------------------------------
# For every earlier version, every variant.
# ---------------------------------------------------------------------

foreach my $version (@earlier)
{
	foreach my $variant (@variants)
	{
		my ($vname, $alter) = @$variant;
		(my $v = "at_${version}_$vname") =~ s/[^a-z0-9_]/_/gi;
		my $ref = "ref_$v";
		my $how = "$version ($vname) on the $default library";
		my $log_offset = -s $node->logfile;

		$node->safe_psql('postgres', "CREATE DATABASE $v");
		$node->safe_psql('postgres', "CREATE DATABASE $ref");
		$node->safe_psql($v, "CREATE EXTENSION $ext VERSION '$version'; $grants $alter");
		$node->safe_psql($ref, "CREATE EXTENSION $ext; $grants $alter");
		is($node->safe_psql($v, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
			$version, "$how: the database is at $version");
		if ($version eq '1.0')
		{
			is( $node->safe_psql(
					$v,
					"SELECT count(*) FROM pg_trigger WHERE tgname = 'dms_failure_removed' AND tgrelid = 'dms_job_failure'::regclass"
				),
				1,
				"$how: the database has 1.0's trigger dms_failure_removed, which the new library keeps as a no-op"
			);
		}

		my $objects_1_1 = join("\n",
			'column dms_job.destination_server',
			'column dms_job.source_server',
			'function dms_create_job(text,dms_migration_type,text[],dms_dump_parallelism,text,text)',
			'function dms_lifecycle_connection_validator(text[],oid)',
			'relation dms_job_database',
			'relation dms_job_progress',
			'type dms_database_state',
			'wrapper dms_lifecycle_connection');
		is(objects_of_1_1($ref), $objects_1_1,
			"$how: the reference at $default has the engine's objects of 1.1");
		if ($version eq '1.0')
		{
			is( objects_of_1_1($v),
				'function dms_create_job(text,dms_migration_type,text[],dms_dump_parallelism)',
				"$how: the database at 1.0 has none of them, and the dms_create_job of four arguments"
			);
			is( $node->safe_psql(
					$v, q{
SELECT string_agg(a.privilege_type || ' ON ' || c.relname, ', ' ORDER BY c.relname)
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relname LIKE 'dms\_job%' AND c.relkind IN ('r', 'v') AND a.grantee = 'alice'::regrole}),
				'SELECT ON dms_job, SELECT ON dms_job_failure, SELECT ON dms_job_history, SELECT ON dms_job_overview',
				"$how: dms_grant() on the 1.0 database grants what exists of the reader's relations");

			# A value for a column that 1.0 lacks: the library refuses it and
			# says to update (a C declaration of dms_create_job with 1.1's
			# arguments, as a database at 1.0 cannot have through the API).
			my ($stdout, $stderr) = ('', '');
			$node->psql(
				$v, qq{
CREATE FUNCTION create_job_1_1(text, dms_migration_type, text[], dms_dump_parallelism, text, text)
    RETURNS bigint AS '\$libdir/dms_lifecycle', 'dms_create_job' LANGUAGE C;
SELECT create_job_1_1('with a server', 'continuous', NULL, 'optimal', 'old_primary', NULL);
DROP FUNCTION create_job_1_1(text, dms_migration_type, text[], dms_dump_parallelism, text, text);
},
				stdout => \$stdout,
				stderr => \$stderr,
				on_error_stop => 0,
				extra_params => [ '-v', 'VERBOSITY=verbose' ]);
			like($stderr,
				qr/ERROR:  55000: column "source_server" of table dms_job does not exist yet in this database\n/,
				"$how: a source server for a job of the 1.0 database is refused (55000)");
			like($stderr, qr/HINT:  Run ALTER EXTENSION dms_lifecycle UPDATE\./,
				"$how: ... with the hint to update the extension");
			is($node->safe_psql($v, 'SELECT count(*) FROM dms_job'),
				0, "$how: ... and no job was made");
		}

		my @outputs;

		# 1. Jobs in every state.
		my ($out) = run_both($v, $ref, 'jobs in every state', populate_sql(), $how);
		push @outputs, $out;
		is( $node->safe_psql(
				$v,
				"SELECT name || '|' || status || '|' || coalesce(phase::text, '') FROM dms_job ORDER BY id"
			),
			join("\n", populated_states()),
			"$how: every job is in the state its walk leads to");
		is(failure_rows($node, $v), join("\n", populated_failures()),
			"$how: the failure rows are those of the failed jobs");
		is(history_of($v, 'recovered', 4, 1),
			join("\n",
				'failed|running/cdc|failed/cdc|engine',
				'edit|failed/cdc|failed/cdc|hr|alice',
				'recovered|failed/cdc|running/cdc|alice'),
			"$how: the job \"recovered\" recovered once, after the edit that removed its failed database"
		);

		# 2. Every edge.
		($out) = run_both($v, $ref, 'walks along every edge', $edges_sql, $how);
		push @outputs, $out;
		is( $node->safe_psql(
				$v, q{
SELECT concat_ws(' ', t.kind, t.name, 'from', t.from_status, t.from_phase, 'to',
                 coalesce(t.to_status::text, '(deleted)'), t.to_phase, t.migration_type)
  FROM dms_transitions() t
 WHERE NOT EXISTS (SELECT FROM dms_job_history h
                    WHERE h.cause = t.name
                      AND h.from_status = t.from_status
                      AND h.from_phase IS NOT DISTINCT FROM t.from_phase
                      AND h.to_status IS NOT DISTINCT FROM t.to_status
                      AND h.to_phase IS NOT DISTINCT FROM t.to_phase)
 ORDER BY 1}),
			'',
			"$how: the history holds every edge of dms_transitions()");
		is(history_of($v, 'e9', 4, 0),
			join("\n",
				"failed|running/cdc|failed/cdc|$superuser",
				"failed|failed/cdc|failed/cdc|$superuser",
				"recovered|failed/cdc|running/cdc|$superuser"),
			"$how: a reported recovery is one history row");

		# 3. Failed databases leaving through the API.
		my $max_history;
		($out) = run_both($v, $ref, 'failed databases leaving the migration', $recovery_sql, $how);
		push @outputs, $out;
		is( join("\n", grep { /^[a-z].*: / && !/^Asynchronous/ } split /\n/, $out),
			join("\n",
				'recover api, remove a: failed',
				'recover api, remove b: running',
				'no recovery, remove a: failed',
				'rolled back, remove Zürich db: running',
				'after the rollback: failed/cdc, 1 failure row(s)',
				'committed, remove Zürich db: running',
				'committed, then stop: stopping'),
			"$how: removing the last failed database returns running, not with a job-level error, nothing after a rollback"
		);
		is(history_of($v, 'recover api', 6, 1),
			join("\n",
				'edit|failed/cdc|failed/cdc|a|alice',
				'edit|failed/cdc|failed/cdc|b|alice',
				'recovered|failed/cdc|running/cdc|alice'),
			"$how: ... with the history rows edit, then edit and recovered");
		is(history_of($v, 'no recovery', 5, 1),
			'edit|failed/full_dump|failed/full_dump|a|alice',
			"$how: ... and only an edit for the job with a job-level error");
		is(history_of($v, qq(naïve "quoted" 'job' über), 5, 1),
			join("\n",
				'edit|failed/cdc|failed/cdc|Zürich db|alice',
				'recovered|failed/cdc|running/cdc|alice',
				'stop|running/cdc|stopping/cdc|alice'),
			"$how: ... and the rolled back removal left no history row");
		is( $node->safe_psql(
				$v, q{
SELECT j.name || '|' || j.status || '|' || j.phase || '|' || j.databases::text || '|'
       || coalesce(j.error_message, '-') || '|' || (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = j.id)
  FROM dms_job j WHERE j.name IN ('recover api', 'no recovery') ORDER BY j.id}),
			join("\n",
				'recover api|running|cdc|{c}|-|0',
				'no recovery|failed|full_dump|{b}|the job is down|0'),
			"$how: ... and the jobs and failure rows are right");
		is_deeply(
			[
				map { "$_->{name}|$_->{cause}|$_->{to_status}" }
				  grep { $_->{name} eq 'recover api' && $_->{cause} =~ /^(edit|recovered)$/ }
				  notifications($out)
			],
			[ 'recover api|edit|failed', 'recover api|edit|failed', 'recover api|recovered|running' ],
			"$how: ... and notifications edit, edit, recovered");

		# 4. Direct writes.
		my $err;
		($out, $err) = run_both($v, $ref, 'direct writes', $direct_sql, $how);
		push @outputs, $out;
		is( join("\n", grep { /^[a-z].*: / && !/^Asynchronous/ } split /\n/, $out),
			join("\n",
				'direct after the failures: failed/full_dump, a full_dump a: failed again; b full_dump b: direct failure',
				'direct without a: failed/full_dump',
				'direct without b: running/full_dump, 0 failure row(s)',
				'failed cdc dbs: running/cdc',
				'direct after deleting its failure row: failed/full_dump',
				'jobs: ' . $node->safe_psql($v, 'SELECT count(*) FROM dms_job')),
			"$how: direct writes give the states of the lifecycle");
		is(history_of($v, 'direct', 0, 0),
			join("\n",
				"create|-/-|not_started/-|$superuser",
				"start|not_started/-|starting/-|$superuser",
				"started|starting/-|running/full_dump|$superuser",
				"failed|running/full_dump|failed/full_dump|$superuser",
				"failed|failed/full_dump|failed/full_dump|$superuser",
				"failed|failed/full_dump|failed/full_dump|$superuser",
				"edit|failed/full_dump|failed/full_dump|$superuser",
				"edit|failed/full_dump|failed/full_dump|$superuser",
				"recovered|failed/full_dump|running/full_dump|$superuser",
				"failed|running/full_dump|failed/full_dump|$superuser"),
			"$how: ... with one history row per change, a recovery after the edit that removed the last failed database"
		);
		is(history_of($v, 'failed cdc dbs', 7, 0),
			join("\n",
				"edit|failed/cdc|failed/cdc|$superuser",
				"recovered|failed/cdc|running/cdc|$superuser"),
			"$how: ... and one recovery when two failed databases leave at once");
		my @refused = ($err =~ /ERROR:  ([0-9A-Z]{5}):/g);
		is(join(' ', @refused), '55000 55000 55000 22023 22023 55000 55000 55000',
			"$how: ... and the refused direct writes fail with their SQLSTATEs");
		is( $node->safe_psql(
				$v,
				"SELECT count(*) FROM dms_job_history WHERE job_name IN ('failed all dbs', 'completed one-time', 'not started') AND cause = 'delete'"
			),
			3,
			"$how: ... a direct DELETE writes the delete");
		is( $node->safe_psql(
				$v,
				"SELECT count(*) FROM dms_job_failure f WHERE NOT EXISTS (SELECT FROM dms_job j WHERE j.id = f.job_id AND j.status = 'failed')"
			),
			0,
			"$how: ... and no failure row outlives its failed job");

		# 5. Refusals through the API.
		my $history_count = $node->safe_psql($v, 'SELECT count(*) FROM dms_job_history');
		my @wrong;
		foreach my $r (@refusals)
		{
			my ($role, $sql, $want) = @$r;
			my ($state, $msg) = sql_error($node, $v, "SET ROLE $role; $sql");
			my ($ref_state, $ref_msg) = sql_error($node, $ref, "SET ROLE $role; $sql");
			push @wrong, "$role: $sql: got $state $msg, expected $want"
			  if $state ne $want;
			push @wrong, "$role: $sql: got $state $msg, the reference $ref_state $ref_msg"
			  if "$state $msg" ne "$ref_state $ref_msg";
		}
		is(join("\n", @wrong), '', "$how: refused calls fail with their SQLSTATE and message");
		is($node->safe_psql($v, 'SELECT count(*) FROM dms_job_history'),
			$history_count, "$how: ... and write no history row");

		# 6. User columns.
		if ($vname ne 'plain')
		{
			($out) = run_both($v, $ref, 'user columns', $user_columns_sql, $how);
			push @outputs, $out;
			is( join("\n", grep { /^[a-z].*: / && !/^Asynchronous/ } split /\n/, $out),
				join("\n",
					'running cdc: running/cdc changed by hand 7',
					'stop: stopping',
					'stopped: stopped',
					'resume: resuming',
					'new job: true',
					'running cdc: resuming/cdc changed by hand 7',
					'notes: mine'),
				"$how: the user's columns keep their values and defaults through every change");
			if ($vname eq 'all_columns')
			{
				is( $node->safe_psql(
						$v, 'SELECT count(*) FROM dms_job_history WHERE shipped IS DISTINCT FROM false'),
					0,
					"$how: every history row has the default of the user's column");
				is( $node->safe_psql(
						$v,
						"SELECT count(*) FROM dms_job_failure WHERE ticket IS DISTINCT FROM 'T-1'"),
					0,
					"$how: every failure row has the default of the user's column");
			}
		}

		# What holds after all of it.
		is(consistency_violations($node, $v), '', "$how: every job agrees with its history");
		notifications_match_history($v, 0, \@outputs, $how);
		rows_equal($v, $ref, $how);

		my $log = slurp_file($node->logfile, $log_offset);
		unlike($log, qr/terminated by signal|PANIC|was terminated|TRAP:/,
			"$how: no backend crashed");
		my @internal = ($log =~ /^.*ERROR:  XX000: .*$/mg);
		is(join("\n", @internal), '', "$how: no internal error (XX000) in the server log");

		# ALTER EXTENSION ... UPDATE: in the plain variant by itself, so that
		# every row and sequence can be compared with before; in the others
		# in the middle of a session that has run the library on V (its
		# prepared statements, and a transaction rolled back).
		$max_history = $node->safe_psql($v, 'SELECT coalesce(max(id), 0) FROM dms_job_history');
		if ($vname eq 'plain')
		{
			# Another session, open across the update, has run the library
			# on V before it and goes on after it; the reference runs the
			# same calls.
			my @bg_before = (
				walk_function_sql(),
				"SELECT dms_create_job('open session', 'continuous', ARRAY['a', 'b', 'c'])",
				"SELECT pg_temp.walk('open session', ARRAY['start', 'started', 'dump_completed', 'failed|a: broken|a', 'failed|b: broken|b'])",
				'SET ROLE alice',
				"SELECT dms_remove_database(id, 'a') FROM dms_job WHERE name = 'open session'");
			my @bg_after = (
				"SELECT dms_remove_database(id, 'b') FROM dms_job WHERE name = 'open session'",
				"SELECT dms_stop(id) FROM dms_job WHERE name = 'open session'");
			my $bg = $node->background_psql($v, on_error_stop => 1);
			$bg->query_safe($_) foreach @bg_before;
			$node->safe_psql($ref, join(";\n", @bg_before, @bg_after));

			my $cols = table_columns($node, $v);
			my $before = data_texts($node, $v, $cols);
			my ($ret, $stdout, $stderr) =
			  $node->psql($v, "ALTER EXTENSION $ext UPDATE", on_error_stop => 1);
			is($ret, 0, "$how: ALTER EXTENSION $ext UPDATE succeeds") or diag($stderr);
			like($stderr,
				qr/WARNING:  dms_lifecycle 1.1 replaced dms_create_job and added dms_job_progress: grant the capabilities of these roles again: alice, engine\n/,
				"$how: the update names the roles to grant again")
			  if $version eq '1.0';
			$node->safe_psql($v, $grants);
			my $after = data_texts($node, $v, $cols);
			foreach my $name (sort keys %$before)
			{
				is($after->{$name}, $before->{$name}, "$how, updated: $name is as before the update");
			}

			is(join('|', map { $bg->query_safe($_) } @bg_after),
				'running|stopping',
				"$how, updated in another session: the open session's calls work after it");
			$bg->quit;
			is(history_of($v, 'open session', 6, 1),
				join("\n",
					'edit|failed/cdc|failed/cdc|a|alice',
					'edit|failed/cdc|failed/cdc|b|alice',
					'recovered|failed/cdc|running/cdc|alice',
					'stop|running/cdc|stopping/cdc|alice'),
				"$how, updated in another session: ... with one recovery");
			$max_history = $node->safe_psql($v, 'SELECT coalesce(max(id), 0) FROM dms_job_history');
		}
		else
		{
			# the update, then the grants its WARNING asks for; the reference
			# runs the grants only (they change nothing there)
			my ($out, $err) =
			  run_script($v, sprintf($across_update_sql, "ALTER EXTENSION $ext UPDATE;\n$grants"));
			my ($ref_out, $ref_err) = run_script($ref, sprintf($across_update_sql, $grants));
			is(without_pids($out), without_pids($ref_out),
				"$how, updated within a session: the results and notifications are the reference's");
			if ($version eq '1.0')
			{
				like($err,
					qr/WARNING:  01000: dms_lifecycle 1.1 replaced dms_create_job and added dms_job_progress: grant the capabilities of these roles again: alice, engine\n/,
					"$how, updated within a session: the update names the roles to grant again");
				# the WARNING and its DETAIL, HINT, CONTEXT and LOCATION lines
				$err =~ s/^(?:psql:\S+ )?WARNING:  01000: dms_lifecycle 1\.1 replaced .*(?:\n(?:DETAIL|HINT|CONTEXT|LOCATION):  .*)*\n?//m;
			}
			is($err, $ref_err, "$how, updated within a session: the errors are the reference's");
			is( join("\n", grep { /^[a-z].*: / && !/^Asynchronous/ } split /\n/, $out),
				join("\n",
					'across, remove a: failed',
					'across, rolled back, remove b: running',
					'across, remove b: running',
					'across, stop: stopping'),
				"$how, updated within a session: the calls before and after the update work");
			is(history_of($v, 'across', 6, 1),
				join("\n",
					'edit|failed/cdc|failed/cdc|a|alice',
					'edit|failed/cdc|failed/cdc|b|alice',
					'recovered|failed/cdc|running/cdc|alice',
					'stop|running/cdc|stopping/cdc|alice'),
				"$how, updated within a session: one recovery, after the update");
			notifications_match_history($v, $max_history, [$out], "$how, updated within a session");
			$max_history = $node->safe_psql($v, 'SELECT coalesce(max(id), 0) FROM dms_job_history');
		}
		is($node->safe_psql($v, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
			$default, "$how: the database is at $default");
		catalogs_equal(without_column_positions(describe_catalog($node, $v)),
			without_column_positions(describe_catalog($node, $ref)),
			"$how, updated", "a fresh install with the same user columns");
		is(objects_of_1_1($v), $objects_1_1, "$how, updated: the engine's objects of 1.1 are there");
		is( $node->safe_psql(
				$v, q{
SELECT string_agg(attname, ', ' ORDER BY attnum DESC) FROM (
    SELECT attname, attnum FROM pg_attribute
     WHERE attrelid = 'dms_job'::regclass AND attnum > 0 AND NOT attisdropped
     ORDER BY attnum DESC LIMIT 2) last}),
			'destination_server, source_server',
			"$how, updated: the server columns come last in dms_job");
		is($node->safe_psql($v, 'SELECT count(*) FROM dms_job WHERE source_server IS NOT NULL OR destination_server IS NOT NULL'),
			0, "$how, updated: no job has a server");

		$max_history = $node->safe_psql($v, 'SELECT coalesce(max(id), 0) FROM dms_job_history');
		($out) = run_both($v, $ref, 'after the update', $after_update_sql, "$how, updated");
		is( join("\n", grep { /^[a-z].*: / && !/^Asynchronous/ } split /\n/, $out),
			join("\n",
				'after update, remove a: running',
				'restart: restarting',
				'promote: running'),
			"$how, updated: actions, and a recovery");
		is(consistency_violations($node, $v), '', "$how, updated: every job agrees with its history");
		notifications_match_history($v, $max_history, [$out], "$how, updated");
		rows_equal($v, $ref, "$how, updated");
		$log = slurp_file($node->logfile, $log_offset);
		unlike($log, qr/terminated by signal|PANIC|was terminated|TRAP:/,
			"$how, updated: no backend crashed");
		@internal = ($log =~ /^.*ERROR:  XX000: .*$/mg);
		is(join("\n", @internal), '', "$how, updated: no internal error (XX000) in the server log");
	}
}

$node->stop;
done_testing();
