# t/004_upgrade.pl: ALTER EXTENSION dms_lifecycle UPDATE from every earlier
# version gives the extension of a fresh install, and keeps the jobs.
#
# For every version V that pg_available_extension_versions lists for
# dms_lifecycle, other than the default version and 'plpgsql' (the PL/pgSQL
# twin of bench/, which no update path joins):
#   - CREATE EXTENSION dms_lifecycle VERSION V, jobs in every state through
#     the API (DmsTest::populate_sql), then ALTER EXTENSION ... UPDATE;
#   - the extension's objects (members, types, tables with their columns,
#     constraints, indexes and sequences, triggers, functions with their
#     signatures and bodies, the view's definition, comments, owners and
#     ACLs) are those of a fresh install of the default version in another
#     database, category by category;
#   - every job, failure and history row is as it was (the columns V had),
#     the id sequences did not move back, and the lifecycle still works:
#     actions, events, notifications, refusals.
#
# While the default version is the only one, the loop has nothing to do.
# The test then checks what holds the day an earlier version appears:
#   - the scripts in sql/ are those installed, every version they name is
#     available, and every update script lies on a path to the default
#     version, from a version that can still be installed;
#   - the comparison sees a difference in each category (each one is
#     altered in turn, in a transaction rolled back);
#   - ALTER EXTENSION ... UPDATE on the default version is a no-op: the
#     catalog, the jobs and the behaviour are those of before, and of a
#     fresh install.

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

my $ext = 'dms_lifecycle';
my $tree = "$FindBin::RealBin/..";

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE alice; CREATE ROLE engine;');

# ---------------------------------------------------------------------
# The catalog of the extension, category by category: sorted text lines
# that name objects by name, never by OID.
# ---------------------------------------------------------------------

# The extension's members, and the relations among them.
my $cte = qq{
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = '$ext'),
members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (
    SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl
      FROM members m JOIN pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_class'::regclass),
procs AS (
    SELECT p.oid, p.prokind, p.proowner, p.proacl
      FROM members m JOIN pg_proc p ON p.oid = m.objid
     WHERE m.classid = 'pg_proc'::regclass),
types AS (
    SELECT t.oid, t.typtype, t.typowner, t.typacl, t.typrelid, t.typbasetype
      FROM members m JOIN pg_type t ON t.oid = m.objid
     WHERE m.classid = 'pg_type'::regclass),
-- members, and the columns, constraints, indexes, triggers, policies and
-- rules of member relations: what a comment or an initial privilege may
-- be attached to
objs AS (
    SELECT classid, objid, objsubid FROM members
    UNION ALL SELECT 'pg_class'::regclass, a.attrelid, a.attnum
      FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT 'pg_constraint'::regclass, c.oid, 0
      FROM pg_constraint c WHERE c.conrelid IN (SELECT oid FROM rels)
                              OR c.contypid IN (SELECT oid FROM types)
    UNION ALL SELECT 'pg_class'::regclass, i.indexrelid, 0
      FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL SELECT 'pg_trigger'::regclass, t.oid, 0
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL SELECT 'pg_policy'::regclass, p.oid, 0
      FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
    UNION ALL SELECT 'pg_rewrite'::regclass, w.oid, 0
      FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class)
};

# An ACL with PostgreSQL's default for NULL, its items sorted.
sub acl_sql
{
	my ($acl, $kind, $owner) = @_;
	return
	  "(SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(coalesce($acl, acldefault('$kind', $owner))) a)";
}

my %catalog_sql = (
	'extension properties' => qq{
SELECT format('extension %s %s, schema %s, relocatable %s, comment %L',
              e.extname, e.extversion, e.extnamespace::regnamespace, e.extrelocatable,
              obj_description(e.oid, 'pg_extension'))
  FROM pg_extension e WHERE e.extname = '$ext'
UNION ALL
SELECT format('configuration table %s, condition %L', c.tab::regclass, c.cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) c(tab, cond)
 WHERE e.extname = '$ext'
ORDER BY 1},

	members => qq{$cte
SELECT pg_describe_object(classid, objid, objsubid) FROM members ORDER BY 1},

	types => qq{$cte
SELECT format('type %s: typtype %s', t.oid::regtype, t.typtype)
  FROM types t
UNION ALL
SELECT format('enum %s: %s', t.oid::regtype, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder))
  FROM types t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.oid
UNION ALL
SELECT format('domain %s over %s, not null %s, default %s',
              t.oid::regtype, t.typbasetype::regtype, d.typnotnull, d.typdefault)
  FROM types t JOIN pg_type d ON d.oid = t.oid WHERE t.typtype = 'd'
UNION ALL
SELECT format('composite %s, attribute %s: %s %s', t.oid::regtype, a.attnum, a.attname,
              format_type(a.atttypid, a.atttypmod))
  FROM types t JOIN pg_attribute a ON a.attrelid = t.typrelid
 WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1},

	relations => qq{$cte
SELECT format('relation %s: kind %s, persistence %s, options %s, row security %s/%s, replica identity %s',
              c.oid::regclass, c.relkind, c.relpersistence, c.reloptions,
              c.relrowsecurity, c.relforcerowsecurity, c.relreplident)
  FROM rels r JOIN pg_class c ON c.oid = r.oid
UNION ALL
-- columns, by position among the live columns (an upgrade that adds a
-- column puts it last, a fresh install may not)
SELECT format('column %s.%s at %s: %s, not null %s, default %s, identity %L, generated %L, collation %s, storage %s, options %s',
              a.attrelid::regclass, a.attname,
              row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
              format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
              CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
              a.attstorage,
              -- this server marks every column with a pg_attver option whose
              -- value differs from one database to the next
              array(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_attver=%' ORDER BY o))
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE r.relkind <> 'S' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('constraint %s on %s: %s', c.conname,
              coalesce(c.conrelid::regclass::text, c.contypid::regtype::text),
              pg_get_constraintdef(c.oid, true))
  FROM pg_constraint c
 WHERE c.conrelid IN (SELECT oid FROM rels) OR c.contypid IN (SELECT oid FROM types)
UNION ALL
SELECT format('index %s: %s, replica identity %s, clustered %s',
              i.indexrelid::regclass, pg_get_indexdef(i.indexrelid), i.indisreplident, i.indisclustered)
  FROM rels r JOIN pg_index i ON i.indrelid = r.oid
UNION ALL
SELECT format('sequence %s: %s from %s by %s, %s to %s, cache %s, cycle %s',
              s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement,
              s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
  FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
UNION ALL
SELECT format('sequence %s owned by %s.%s (%s)', d.objid::regclass, d.refobjid::regclass,
              a.attname, d.deptype)
  FROM rels r
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE r.relkind = 'S'
UNION ALL
SELECT format('policy %s on %s: %s %s to %s using %s with check %s', p.polname, p.polrelid::regclass,
              p.polcmd, p.polpermissive, p.polroles::regrole[],
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
UNION ALL
SELECT format('rule %s on %s: %s', w.rulename, w.ev_class::regclass, pg_get_ruledef(w.oid, true))
  FROM rels r JOIN pg_rewrite w ON w.ev_class = r.oid
 WHERE w.rulename <> '_RETURN'
ORDER BY 1},

	triggers => qq{$cte
SELECT format('trigger %s on %s, enabled %s: %s', t.tgname, t.tgrelid::regclass, t.tgenabled,
              pg_get_triggerdef(t.oid, true))
  FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT format('event trigger %s on %s, enabled %s, tags %s: %s', e.evtname, e.evtevent,
              e.evtenabled, e.evttags, e.evtfoid::regprocedure)
  FROM members m JOIN pg_event_trigger e ON e.oid = m.objid
 WHERE m.classid = 'pg_event_trigger'::regclass
ORDER BY 1},

	# pg_get_functiondef: the signature, result, language, volatility,
	# strictness, security, parallel safety, cost, settings and body (on
	# one line: its newlines shown as \n, so that a difference names the
	# function).
	functions => qq{$cte
SELECT CASE WHEN p.prokind = 'a'
            THEN format('aggregate %s', p.oid::regprocedure)
            ELSE replace(pg_get_functiondef(p.oid), chr(10), '\\n') END
  FROM procs p
UNION ALL
SELECT format('cast (%s AS %s) with %s, context %s, method %s', c.castsource::regtype,
              c.casttarget::regtype, c.castfunc::regprocedure, c.castcontext, c.castmethod)
  FROM members m JOIN pg_cast c ON c.oid = m.objid WHERE m.classid = 'pg_cast'::regclass
UNION ALL
SELECT format('operator %s: %s', o.oid::regoperator, o.oprcode::regprocedure)
  FROM members m JOIN pg_operator o ON o.oid = m.objid WHERE m.classid = 'pg_operator'::regclass
ORDER BY 1},

	views => qq{$cte
SELECT format('view %s (%s):%s', r.oid::regclass, r.relkind,
              replace(pg_get_viewdef(r.oid, true), chr(10), '\\n'))
  FROM rels r WHERE r.relkind IN ('v', 'm')
ORDER BY 1},

	comments => qq{$cte
SELECT format('%s: %s', pg_describe_object(o.classid, o.objid, o.objsubid),
              replace(d.description, chr(10), '\\n'))
  FROM objs o
  JOIN pg_description d ON d.classoid = o.classid AND d.objoid = o.objid AND d.objsubid = o.objsubid
ORDER BY 1},

	acls => qq{$cte
SELECT format('%s owned by %s: %s', r.oid::regclass, r.relowner::regrole,
              @{[acl_sql('r.relacl', 'r', 'r.relowner')]})
  FROM rels r WHERE r.relkind <> 'S'
UNION ALL
SELECT format('sequence %s owned by %s: %s', r.oid::regclass, r.relowner::regrole,
              @{[acl_sql('r.relacl', 's', 'r.relowner')]})
  FROM rels r WHERE r.relkind = 'S'
UNION ALL
SELECT format('column %s.%s: %s', a.attrelid::regclass, a.attname,
              (SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(a.attacl) x))
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid
 WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
UNION ALL
SELECT format('function %s owned by %s: %s', p.oid::regprocedure, p.proowner::regrole,
              @{[acl_sql('p.proacl', 'f', 'p.proowner')]})
  FROM procs p
UNION ALL
SELECT format('type %s owned by %s: %s', t.oid::regtype, t.typowner::regrole,
              @{[acl_sql('t.typacl', 'T', 't.typowner')]})
  FROM types t
UNION ALL
SELECT format('schema %s owned by %s: %s', n.nspname, n.nspowner::regrole,
              @{[acl_sql('n.nspacl', 'n', 'n.nspowner')]})
  FROM ext JOIN pg_namespace n ON n.oid = ext.extnamespace
UNION ALL
SELECT format('initial privileges (%s) of %s: %s', i.privtype,
              pg_describe_object(i.classoid, i.objoid, i.objsubid),
              (SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(i.initprivs) x))
  FROM objs o
  JOIN pg_init_privs i ON i.classoid = o.classid AND i.objoid = o.objid AND i.objsubid = o.objsubid
ORDER BY 1});

my @categories = sort keys %catalog_sql;

# The catalog of the extension in $db, as { category => text }.  $prefix
# and $suffix run around each query in one session (to alter the catalog
# in a transaction that rolls back).
sub describe_catalog
{
	my ($db, $prefix, $suffix) = @_;
	$prefix //= '';
	$suffix //= '';
	my %c;
	foreach my $category (@categories)
	{
		$c{$category} = $node->safe_psql($db,
			"$prefix\n$catalog_sql{$category};\n$suffix");
	}
	return \%c;
}

# The lines of $want missing from $got, and the lines of $got that $want
# lacks, as text ('' when both hold the same lines in the same order).
sub differences
{
	my ($got, $want) = @_;
	return '' if $got eq $want;
	my (%count, @d);
	$count{$_}++ foreach split /\n/, $want;
	$count{$_}-- foreach split /\n/, $got;
	foreach my $line (sort keys %count)
	{
		push @d, "missing:    $line" if $count{$line} > 0;
		push @d, "unexpected: $line" if $count{$line} < 0;
	}
	return @d ? join("\n", @d) : 'the same lines in another order';
}

# Compares two catalogs category by category; $reference names $want.
sub catalogs_equal
{
	my ($got, $want, $how, $reference) = @_;
	foreach my $category (@categories)
	{
		is(differences($got->{$category}, $want->{$category}),
			'', "$how: the $category are those of $reference");
	}
}

# ---------------------------------------------------------------------
# Data: the rows of the tables (the columns they have now) and the
# positions of the sequences.
# ---------------------------------------------------------------------

# { table => [columns] } for the extension's tables in $db.
sub table_columns
{
	my ($db) = @_;
	my %cols;
	foreach my $line (
		split /\n/,
		$node->safe_psql(
			$db, qq{$cte
SELECT r.relname || '|' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid
 WHERE r.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY r.relname}))
	{
		my ($table, $list) = split /\|/, $line, 2;
		$cols{$table} = $list;
	}
	return \%cols;
}

# The rows of each table (only the columns of $cols), and each sequence's
# position, as { name => text }.
sub data_texts
{
	my ($db, $cols) = @_;
	my %t;
	foreach my $table (sort keys %$cols)
	{
		$t{$table} = $node->safe_psql($db,
			"SELECT row($cols->{$table})::text FROM $table ORDER BY 1");
	}
	foreach my $seq (
		split /\n/,
		$node->safe_psql(
			$db, qq{$cte SELECT relname FROM rels WHERE relkind = 'S' ORDER BY 1}))
	{
		$t{$seq} = $node->safe_psql($db, "SELECT last_value || ' ' || is_called FROM $seq");
	}
	return \%t;
}

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

	my $cols = table_columns($db);
	my $before = data_texts($db, $cols);
	my $catalog_before = describe_catalog($db);

	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "ALTER EXTENSION $ext UPDATE", on_error_stop => 1);
	is($ret, 0, "$how: ALTER EXTENSION $ext UPDATE succeeds") or diag($stderr);
	if ($from eq $default)
	{
		like($stderr, qr/version "\Q$default\E" of extension "$ext" is already installed/,
			"$how: ... and says the default version is already installed");
		catalogs_equal(describe_catalog($db), $catalog_before, "$how (a no-op)",
			'before the update');
	}
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
		$default, "$how: the extension is at the default version $default");

	catalogs_equal(describe_catalog($db), $fresh, $how, 'a fresh install');

	my $after = data_texts($db, $cols);
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
ok($install{$default}, "the install script of the default version, $ext--$default.sql, is in sql/");

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

# The same grants as the updated databases get, so that the ACLs compare.
my $grants = "SELECT dms_grant('alice', 'operator'); SELECT dms_grant('engine', 'engine');";

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', "CREATE EXTENSION $ext; $grants");
my $fresh = describe_catalog('fresh');
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
	my $altered = describe_catalog('fresh', "BEGIN; $sql;", 'ROLLBACK;');
	isnt(differences($altered->{$category}, $fresh->{$category}),
		'', "the comparison of $category sees $what");
}
is_deeply(describe_catalog('fresh'), $fresh, 'the alterations were rolled back');

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
foreach my $v (@earlier)
{
	(my $db = "from_$v") =~ s/[^a-z0-9_]/_/gi;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION $ext VERSION '$v'; $grants");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
		$v, "version $v installs");
	$node->safe_psql($db, populate_sql());
	check_update($db, $v, $default, $fresh);
}

$node->stop;
done_testing();
