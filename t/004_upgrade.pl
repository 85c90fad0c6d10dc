# t/004_upgrade.pl: ALTER EXTENSION dms_lifecycle UPDATE from every earlier
# version gives the extension of a fresh install, and keeps the jobs (SPEC 11).
#
# For every version V that pg_available_extension_versions lists for
# dms_lifecycle, other than the default version and 'plpgsql' (the PL/pgSQL
# twin of bench/, which no update path joins) -- today 1.0, updated to 1.1:
#   - CREATE EXTENSION dms_lifecycle VERSION V, jobs in every state through
#     the API (DmsTest::populate_sql; the library is the default version's,
#     so this already runs an old database on the new library, which
#     t/005_old_version.pl examines in depth);
#   - before the update, the comparison sees how V differs from a fresh
#     install (for 1.0: the trigger dms_failure_removed and its function,
#     with its comment and ACL, the comments of dms_job_record and
#     dms_failure_guard, and none of the engine's objects: the wrapper
#     dms_lifecycle_connection, dms_job's server columns, dms_create_job's
#     six arguments, dms_job_database and dms_job_progress), so that the
#     equality after it means something;
#   - ALTER EXTENSION ... UPDATE, which names in a WARNING the roles whose
#     capabilities must be granted again (1.0 to 1.1 replaces dms_create_job,
#     and the grants of the old one go with it), and those grants, made
#     again with dms_grant(); the extension's objects (members, types,
#     tables with their columns, constraints, indexes and sequences,
#     triggers, functions with their signatures and bodies, the view's
#     definition, comments, owners and ACLs) are those of a fresh install of
#     the default version in another database, category by category;
#   - every job, failure and history row is as it was (the columns V had),
#     the id sequences did not move back, and the lifecycle still works:
#     actions, events, notifications, refusals, and the recovery of a failed
#     job whose last failed database leaves the migration.
#
# Besides:
#   - the scripts in sql/ are those installed, every version they name is
#     available, and every update script lies on a path to the default
#     version, from a version that can still be installed;
#   - the comparison sees a difference in each category (each one is
#     altered in turn, in a transaction rolled back);
#   - ALTER EXTENSION ... UPDATE on the default version is a no-op: the
#     catalog, the jobs and the behaviour are those of before, and of a
#     fresh install.
#
# The catalog queries live in t/DmsCatalog.pm, shared with
# t/005_old_version.pl.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use File::Basename qw(basename);
use File::Compare qw(compare);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsTest;
use DmsCatalog;

my $ext = 'dms_lifecycle';
my $tree = "$FindBin::RealBin/..";

my @categories = catalog_categories();

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE alice; CREATE ROLE engine;');

# The capabilities every database of this test gives: before an update, and
# again after it where the update says so.
my $grants = "SELECT dms_grant('alice', 'operator'); SELECT dms_grant('engine', 'engine');";


# ---------------------------------------------------------------------
# Behaviour after an update.
# ---------------------------------------------------------------------

# SPEC 4.3, by "status|phase".
my %allowed = (
	'not_started|' => '{start,edit,delete}',
	'starting|' => '{delete}',
	'running|full_dump' => '{stop,edit,delete}',
	'running|cdc' => '{stop,promote,edit,delete}',
	'running|promote_in_progress' => '{delete}',
	'running_with_errors|full_dump' => '{stop,restart}',
	'running_with_errors|cdc' => '{stop,restart,promote}',
	'completed|' => '{delete}',
	'failed|full_dump' => '{restart,edit,delete}',
	'failed|cdc' => '{restart,promote,edit,delete}',
	'restarting|' => '{delete}',
	'stopped|full_dump' => '{restart,edit,delete}',
	'stopped|cdc' => '{resume,restart,promote,edit,delete}',
	'resuming|cdc' => '{delete}',
	'stopping|full_dump' => '{delete}',
	'stopping|cdc' => '{delete}');

sub check_behaviour
{
	my ($db, $how, $fresh_db) = @_;

	is(consistency_violations($node, $db),
		'', "$how: every job agrees with its history");

	is( $node->safe_psql(
			$db, q{
SELECT j.name || '|' || j.status || '|' || coalesce(j.phase::text, '') FROM dms_job j ORDER BY j.id}),
		join("\n", populated_states()),
		"$how: every job is in the state it was walked to");

	my @wrong;
	foreach my $line (
		split /\n/,
		$node->safe_psql(
			$db, q{
SELECT j.status || '|' || coalesce(j.phase::text, '') || '|' || dms_allowed_actions(j.id)::text || '|' || j.name
  FROM dms_job j ORDER BY j.id}))
	{
		my ($status, $phase, $actions, $name) = split /\|/, $line, 4;
		push @wrong, "$name ($status/$phase): $actions"
		  if ($allowed{"$status|$phase"} // '') ne $actions;
	}
	is(join("\n", @wrong), '',
		"$how: every job allows the actions of its state (SPEC 4.3)");

	is( $node->safe_psql(
			$db,
			'SELECT count(*) FROM dms_job_overview o JOIN dms_job j USING (id) WHERE o.name = j.name'),
		$node->safe_psql($db, 'SELECT count(*) FROM dms_job'),
		"$how: dms_job_overview shows every job");
	is($node->safe_psql($db, 'SELECT t::text FROM dms_transitions() t ORDER BY 1'),
		$node->safe_psql($fresh_db, 'SELECT t::text FROM dms_transitions() t ORDER BY 1'),
		"$how: dms_transitions() lists the edges of a fresh install");

	# Refusals change nothing.
	my $history = $node->safe_psql($db, 'SELECT count(*) FROM dms_job_history');
	my ($state, $msg) = sql_error($node, $db,
		"SET ROLE alice; SELECT dms_promote(id) FROM dms_job WHERE name = 'not started'");
	is($state, '55000', "$how: promoting a job that is \"Not started\" is refused with 55000");
	like($msg, qr/^cannot promote migration job \d+ while it is "Not started"/,
		"$how: ... naming the job and its status");
	($state, $msg) = sql_error($node, $db,
		"UPDATE dms_job SET status = 'completed', phase = NULL WHERE name = 'running cdc'");
	is($state, '55000', "$how: a direct UPDATE along no edge is refused with 55000");
	($state, $msg) = sql_error($node, $db,
		"SET ROLE engine; SELECT dms_start(id) FROM dms_job WHERE name = 'not started'");
	is($state, '42501', "$how: the engine cannot start a job (42501)");
	($state, $msg) = sql_error($node, $db, 'DELETE FROM dms_job_history');
	is($state, '55000', "$how: the history stays append-only");
	is($node->safe_psql($db, 'SELECT count(*) FROM dms_job_history'),
		$history, "$how: the refused calls wrote no history row");

	# Actions and events work, write history and notify.
	my $max_history_id = $node->safe_psql($db, 'SELECT max(id) FROM dms_job_history');
	my $out = $node->safe_psql($db,
		"LISTEN dms_lifecycle; SET ROLE alice; SELECT dms_stop(id) FROM dms_job WHERE name = 'running cdc'"
	);
	my ($result) = split /\n/, $out;
	is($result, 'stopping', "$how: the operator stops the job \"running cdc\"");
	is( $node->safe_psql(
			$db, qq{
SELECT concat_ws('|', cause, from_status, from_phase, to_status, to_phase, actor)
  FROM dms_job_history WHERE id > $max_history_id ORDER BY id}),
		'stop|running|cdc|stopping|cdc|alice',
		"$how: ... which writes one history row");
	is_deeply(
		[ map { "$_->{name}|$_->{cause}|$_->{to_status}|$_->{actor}" } notifications($out) ],
		['running cdc|stop|stopping|alice'],
		"$how: ... and sends one notification");
	is( $node->safe_psql(
			$db,
			"SET ROLE engine; SELECT dms_report(id, 'failed', 'sales: gone', 'sales') FROM dms_job WHERE name = 'stopping cdc'"
		),
		'failed',
		"$how: the engine reports a database failure");
	is( $node->safe_psql(
			$db, q{
SELECT f.database_name || '|' || f.phase || '|' || f.error_message
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id WHERE j.name = 'stopping cdc'}),
		'sales|cdc|sales: gone',
		"$how: ... which records its failure row");

	# A failed job whose failed databases leave the migration one by one:
	# the first removal is an edit, the last one an edit and then the edge
	# "recovered" back to the phase the job failed in, once.
	$max_history_id = $node->safe_psql($db, 'SELECT max(id) FROM dms_job_history');
	$out = $node->safe_psql(
		$db, q{
LISTEN dms_lifecycle;
SET ROLE alice;
SELECT dms_remove_database(id, 'sales') FROM dms_job WHERE name = 'failed cdc dbs';
SELECT dms_remove_database(id, 'stock') FROM dms_job WHERE name = 'failed cdc dbs';
});
	is( join('|', grep { !/^Asynchronous notification/ } split /\n/, $out),
		'failed|running',
		"$how: removing a failed database leaves the job failed, removing the last one returns running"
	);
	is( $node->safe_psql(
			$db, qq{
SELECT concat_ws('|', h.cause, h.from_status, h.from_phase, h.to_status, h.to_phase, h.actor)
  FROM dms_job_history h JOIN dms_job j ON j.id = h.job_id
 WHERE j.name = 'failed cdc dbs' AND h.id > $max_history_id ORDER BY h.id}),
		join("\n",
			'edit|failed|cdc|failed|cdc|alice',
			'edit|failed|cdc|failed|cdc|alice',
			'recovered|failed|cdc|running|cdc|alice'),
		"$how: ... with history rows edit, edit, recovered");
	is_deeply(
		[ map { "$_->{name}|$_->{cause}|$_->{to_status}" } notifications($out) ],
		[
			'failed cdc dbs|edit|failed',
			'failed cdc dbs|edit|failed',
			'failed cdc dbs|recovered|running'
		],
		"$how: ... and one notification each");
	is( $node->safe_psql(
			$db, q{
SELECT j.status || '|' || j.phase || '|' || j.databases::text || '|'
       || (SELECT count(*) FROM dms_job_failure f WHERE f.job_id = j.id)
  FROM dms_job j WHERE j.name = 'failed cdc dbs'}),
		'running|cdc|{hr}|0',
		"$how: ... and the job runs in CDC with no failure row");

	my $max_job_id = $node->safe_psql($db,
		'SELECT greatest((SELECT max(id) FROM dms_job), (SELECT max(job_id) FROM dms_job_history))');
	my $new_id = $node->safe_psql($db,
		"SET ROLE alice; SELECT dms_create_job('after the update', 'continuous', ARRAY['sales'])");
	cmp_ok($new_id, '>', $max_job_id,
		"$how: a new job's id ($new_id) is above every id the history knows ($max_job_id)");
	is(consistency_violations($node, $db),
		'', "$how: every job still agrees with its history");
}

# ---------------------------------------------------------------------
# The update itself: $db holds $from with the populated jobs.
# ---------------------------------------------------------------------

sub check_update
{
	my ($db, $from, $default, $fresh) = @_;
	my $how = "update from $from";

	my $cols = table_columns($node, $db);
	my $before = data_texts($node, $db, $cols);
	my $catalog_before = describe_catalog($node, $db);

	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "ALTER EXTENSION $ext UPDATE", on_error_stop => 1);
	is($ret, 0, "$how: ALTER EXTENSION $ext UPDATE succeeds") or diag($stderr);
	if ($from eq $default)
	{
		like($stderr, qr/version "\Q$default\E" of extension "$ext" is already installed/,
			"$how: ... and says the default version is already installed");
		catalogs_equal(describe_catalog($node, $db), $catalog_before, "$how (a no-op)",
			'before the update');
	}
	if ("$from->$default" eq '1.0->1.1')
	{
		# dms_create_job has two more arguments: a new function, without the
		# grants of the old one, which the script does not make again (they
		# would count as the extension's own, and pg_dump would omit them).
		like($stderr,
			qr/WARNING:  dms_lifecycle 1.1 replaced dms_create_job and added dms_job_progress: grant the capabilities of these roles again: alice, engine\n/,
			"$how: a WARNING names the roles whose capabilities must be granted again");
		like($stderr, qr/DETAIL:  Roles that lost the privilege to call dms_create_job: alice\./,
			"$how: ... the operator alice among those who lost dms_create_job");
		like($stderr,
			qr/HINT:  Run, as a superuser: SELECT dms_grant\('alice', 'operator'\); SELECT dms_grant\('engine', 'engine'\);/,
			"$how: ... and says what to run");
		is( $node->safe_psql(
				$db, q{
SELECT has_function_privilege('alice', 'dms_create_job(text, dms_migration_type, text[], dms_dump_parallelism, text, text)', 'EXECUTE'),
       has_table_privilege('alice', 'dms_job_progress', 'SELECT'),
       has_table_privilege('engine', 'dms_job_progress', 'SELECT'),
       has_function_privilege('engine', 'dms_report(bigint, dms_event, text, text)', 'EXECUTE')}),
			'f|f|f|t',
			"$how: before the grants are made again, alice cannot create a job and nobody reads dms_job_progress; engine still reports"
		);
		$node->safe_psql($db, $grants);
	}
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
		$default, "$how: the extension is at the default version $default");

	catalogs_equal(describe_catalog($node, $db), $fresh, $how, 'a fresh install');

	my $after = data_texts($node, $db, $cols);
	foreach my $name (sort keys %$before)
	{
		is($after->{$name}, $before->{$name},
			"$how: $name is as before the update");
	}
	check_behaviour($db, $how, 'fresh');
}

# ---------------------------------------------------------------------
# 1. The scripts and the versions.
# ---------------------------------------------------------------------

my $sharedir = $node->config_data('--sharedir');
my $extdir = "$sharedir/extension";

my ($default) = slurp_file("$tree/$ext.control") =~ /^default_version\s*=\s*'([^']+)'/m;
ok(defined $default, "the control file of the tree names a default version");
is( $node->safe_psql(
		'postgres', "SELECT default_version FROM pg_available_extensions WHERE name = '$ext'"),
	$default,
	"the installed extension's default version is the tree's ($default)");
is(compare("$tree/$ext.control", "$extdir/$ext.control"),
	0, "the installed control file is the tree's");

my @tree_scripts = map { basename($_) } glob("$tree/sql/$ext--*.sql");
my @installed_scripts =
  grep { $_ ne "$ext--plpgsql.sql" } map { basename($_) } glob("$extdir/$ext--*.sql");
is_deeply([ sort @installed_scripts ], [ sort @tree_scripts ],
	'the installed scripts are the scripts of sql/ (the PL/pgSQL twin aside)');
foreach my $script (@tree_scripts)
{
	is(compare("$tree/sql/$script", "$extdir/$script"),
		0, "the installed $script is the tree's");
}

my (%install, @updates);
foreach my $script (@tree_scripts)
{
	my ($versions) = $script =~ /^\Q$ext\E--(.+)\.sql$/;
	my @v = split /--/, $versions;
	if (@v == 1) { $install{ $v[0] } = 1; }
	elsif (@v == 2) { push @updates, [@v]; }
	else { fail("$script names one version (install) or two (update)"); }
}
my %tree_versions = %install;
$tree_versions{ $_->[0] } = $tree_versions{ $_->[1] } = 1 foreach @updates;

my @available = split /\n/,
  $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = '$ext' AND version <> 'plpgsql' ORDER BY version"
  );
is_deeply(\@available, [ sort keys %tree_versions ],
	'the available versions are those the scripts of sql/ name: ' . join(', ', @available));

# Every update script lies on a path to the default version, from a
# version that can be installed (else no test could start from it).
my %paths = map { my ($s, $p) = split /\|/, $_, 2; ($s => $p) } split /\n/,
  $node->safe_psql('postgres',
	"SELECT source || '|' || coalesce(path, '') FROM pg_extension_update_paths('$ext') WHERE target = '$default'"
  );
foreach my $u (@updates)
{
	my ($from, $to) = @$u;
	isnt($from, $to, "$ext--$from--$to.sql updates from one version to another");
	ok($paths{$from}, "$ext--$from--$to.sql: $from has an update path to $default ($paths{$from})");
	ok((grep { $_ eq $from } @available), "$ext--$from--$to.sql: $from can be installed");
	ok(($to eq $default || $paths{$to}), "$ext--$from--$to.sql: $to is $default or leads to it");
}

# The default version installs: from its own script, or (as 1.1, which has
# none) CREATE EXTENSION runs the install script of an earlier version and
# the update path from there.
my @install_from = grep { $_ ne $default && $paths{$_} } sort keys %install;
ok( $install{$default} || @install_from,
	"the default version $default installs: "
	  . ($install{$default}
		? "$ext--$default.sql is in sql/"
		: 'from ' . join(', ', map { "$ext--$_.sql then $paths{$_}" } @install_from)));

my @earlier = grep { $_ ne $default } @available;
foreach my $v (@earlier)
{
	ok($paths{$v}, "the earlier version $v has an update path to $default");
}
is(scalar(@earlier) == 0, scalar(@updates) == 0,
	'there is an earlier version exactly when there is an update script');

# ---------------------------------------------------------------------
# 2. A fresh install of the default version: what every update must give.
# ---------------------------------------------------------------------

# The same grants as the updated databases get ($grants), so that the ACLs
# compare.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', "CREATE EXTENSION $ext; $grants");
my $fresh = describe_catalog($node, 'fresh');
foreach my $category (@categories)
{
	isnt($fresh->{$category}, '', "a fresh install has $category to compare");
}
like($fresh->{members}, qr/^table dms_job$/m, '... among them the table dms_job');
like($fresh->{functions}, qr/FUNCTION public\.dms_report\(job_id bigint, event dms_event/,
	'... and the function dms_report with its signature');

# The comparison sees a change in every category: each alteration runs in
# a transaction that rolls back.
my %alterations = (
	'extension properties' => [ 'a new comment on the extension', "COMMENT ON EXTENSION $ext IS 'altered'" ],
	members => [
		'a function that left the extension',
		"ALTER EXTENSION $ext DROP FUNCTION dms_action_label(dms_action)"
	],
	types => [ 'a new enum label', "ALTER TYPE dms_action ADD VALUE 'pause'" ],
	relations =>
	  [ 'a new column', 'ALTER TABLE dms_job_history ADD COLUMN extra integer' ],
	triggers =>
	  [ 'a disabled trigger', 'ALTER TABLE dms_job DISABLE TRIGGER dms_job_guard' ],
	functions => [
		'a function with another cost',
		'ALTER FUNCTION dms_status_label(dms_job_status) COST 1000'
	],
	views => [
		'a view with another definition', q{DO $$ BEGIN
    EXECUTE 'CREATE OR REPLACE VIEW dms_job_overview AS '
         || rtrim(pg_get_viewdef('dms_job_overview'::regclass), ';') || ' LIMIT 1000';
END $$}
	],
	comments => [ 'a new comment on a column', "COMMENT ON COLUMN dms_job.name IS 'altered'" ],
	acls => [ 'a new grant', 'GRANT SELECT ON dms_job_history TO PUBLIC' ]);
foreach my $category (@categories)
{
	my ($what, $sql) = @{ $alterations{$category} };
	my $altered = describe_catalog($node, 'fresh', "BEGIN; $sql;", 'ROLLBACK;');
	isnt(differences($altered->{$category}, $fresh->{$category}),
		'', "the comparison of $category sees $what");
}
is_deeply(describe_catalog($node, 'fresh'), $fresh, 'the alterations were rolled back');

# ---------------------------------------------------------------------
# 3. The default version updated to itself: a no-op.
# ---------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE noop');
$node->safe_psql('noop', "CREATE EXTENSION $ext; $grants");
$node->safe_psql('noop', populate_sql());
check_update('noop', $default, $default, $fresh);

# ---------------------------------------------------------------------
# 4. Every earlier version updated to the default version.
# ---------------------------------------------------------------------

if (!@earlier)
{
	diag("no earlier version of $ext than $default exists yet: "
		  . "nothing to update from; the checks above hold the ground for the first one");
}
# The categories of the catalog in which an earlier version differs from
# the default version, by "from->to": the update scripts' work.  The
# extension's properties always differ (the version).
my %expected_differences = (
	'1.0->1.1' => [
		'acls', 'comments', 'extension properties', 'functions', 'members', 'relations',
		'triggers', 'types', 'views'
	]);

foreach my $v (@earlier)
{
	(my $db = "from_$v") =~ s/[^a-z0-9_]/_/gi;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION $ext VERSION '$v'; $grants");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
		$v, "version $v installs");
	$node->safe_psql($db, populate_sql());

	# Before the update: the comparison sees what the update has to change.
	my $old = describe_catalog($node, $db);
	my @differ = grep { $old->{$_} ne $fresh->{$_} } @categories;
	note("version $v differs from a fresh install of $default in: " . join(', ', @differ));
	if ($expected_differences{"$v->$default"})
	{
		is_deeply(\@differ, [ sort @{ $expected_differences{"$v->$default"} } ],
			"before the update, version $v differs from $default in the expected categories");
	}
	else
	{
		cmp_ok(scalar(@differ), '>', 1,
			"before the update, version $v differs from $default in more than its version number");
	}
	if ("$v->$default" eq '1.0->1.1')
	{
		like($old->{triggers}, qr/^trigger dms_failure_removed on dms_job_failure, enabled O: CREATE TRIGGER dms_failure_removed AFTER DELETE ON dms_job_failure/m,
			'version 1.0 has the trigger dms_failure_removed');
		unlike($fresh->{triggers}, qr/dms_failure_removed/,
			'... which 1.1 does not have');
		like(differences($old->{members}, $fresh->{members}),
			qr/^unexpected: function dms_failure_removed\(\)$/m,
			'... nor its function');
		my $comments = differences($old->{comments}, $fresh->{comments});
		foreach my $f ('dms_job_record()', 'dms_failure_guard()')
		{
			ok($comments =~ /^missing:    function \Q$f\E: /m
				  && $comments =~ /^unexpected: function \Q$f\E: /m,
				"... and 1.1 has another comment on $f");
		}
		my $members = differences($old->{members}, $fresh->{members});
		foreach my $m (
			'foreign-data wrapper dms_lifecycle_connection',
			'function dms_lifecycle_connection_validator(text[],oid)',
			'function dms_create_job(text,dms_migration_type,text[],dms_dump_parallelism,text,text)',
			'table dms_job_database', 'view dms_job_progress', 'type dms_database_state')
		{
			like($members, qr/^missing:    \Q$m\E$/m, "... 1.0 lacks the $m of 1.1");
		}
		like($members,
			qr/^unexpected: function dms_create_job\(text,dms_migration_type,text\[\],dms_dump_parallelism\)$/m,
			'... and has the dms_create_job of four arguments');
		like(differences($old->{relations}, $fresh->{relations}),
			qr/^missing:    column dms_job\.source_server at 13: text/m,
			'... and no column dms_job.source_server');
	}

	check_update($db, $v, $default, $fresh);
}

$node->stop;
done_testing();
