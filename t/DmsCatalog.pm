# t/DmsCatalog.pm: the catalog of dms_lifecycle in a database, as text that
# compares across databases, and the rows of its tables; shared by
# t/004_upgrade.pl and t/005_old_version.pl.
#
# - describe_catalog($node, $db): { category => sorted lines } for the
#   extension's properties, members, types, relations (columns,
#   constraints, indexes, sequences, policies, rules), triggers, functions,
#   views, comments and ACLs, naming objects by name, never by OID;
# - catalogs_equal($got, $want, $how, $reference): one test per category;
# - differences($got, $want): the lines one text has and the other lacks;
# - table_columns($node, $db), data_texts($node, $db, $cols): the rows of the
#   extension's tables (only the columns named) and the sequences' positions.

package DmsCatalog;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(catalog_categories catalog_sql describe_catalog differences
  catalogs_equal table_columns data_texts extension_members_cte);

my $ext = 'dms_lifecycle';

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

# The names of the categories, sorted.
sub catalog_categories { return @categories; }

# The query that describes one category.
sub catalog_sql { my ($category) = @_; return $catalog_sql{$category}; }

# The common table expressions naming the extension's members (members,
# rels, procs, types, objs), to put before a query of one's own.
sub extension_members_cte { return $cte; }

# The catalog of the extension in $db, as { category => text }.  $prefix
# and $suffix run around each query in one session (to alter the catalog
# in a transaction that rolls back).
sub describe_catalog
{
	my ($node, $db, $prefix, $suffix) = @_;
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
	my ($node, $db) = @_;
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
	my ($node, $db, $cols) = @_;
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

1;
