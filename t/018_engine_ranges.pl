# t/018_engine_ranges.pl: large tables copied in ranges of their blocks
# (ENGINE.md 3 and 8: "large tables split into ranges").
#
# The destination sets dms_lifecycle.split_table_size to 4MB, so that a
# test's tables are large enough: pgbench_accounts at scale 3 (about 40
# MB) and "ranged" (about 8 MB: a dropped column, a stored generated
# column, out-of-line values, holes left by deletes, rows moved by updates,
# and an inheritance child whose rows are its own).  The source's role for
# the engine, "copier", logs every statement it runs there, which shows
# what the copy streams asked for.
#
# A continuous job of that database with dump_parallelism max (4 streams),
# under a pgbench load that updates pgbench_accounts all along: the
# destination's log says each of the two tables was copied in ranges (a
# multiple of 4); the source's log shows those ranges as COPY (SELECT ...
# FROM ONLY ... WHERE ctid >= '(a,0)' AND ctid < '(b,0)'), from block 0
# on, each starting where the previous one ends, the last one open-ended,
# run by several sessions, and no COPY of the whole table; the source
# plans such a range as a TID Range Scan.  dms_job_progress never counts
# more tables or bytes than there are.  Promoted, every table is equal on
# both sides row by row (no row lost or doubled by the ranges), the
# schemas too, sequences ahead.
#
# Then, with the source quiet, a one-time job with dump_parallelism
# optimal (2 streams) of pgbench at scale 1: copied in ranges (a multiple
# of 2), and its progress at the end counts every table once and exactly
# the source's rows.  A one-time job with dump_parallelism min (1 stream)
# splits nothing.  Nothing is left behind.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsEngine;

my ($source, $dest) = engine_nodes(destination_conf => ["dms_lifecycle.split_table_size = '4MB'"]);

# The engine's role on the source logs its statements; the load's does not.
$source->safe_psql('postgres',
	q{CREATE ROLE copier LOGIN SUPERUSER REPLICATION; ALTER ROLE copier SET log_statement = 'all'});
$dest->safe_psql('postgres', q{ALTER USER MAPPING FOR PUBLIC SERVER src OPTIONS (SET user 'copier')});

make_databases($source, qw(ranges quiet single));
pgbench_init($source, 'ranges', 3);
my $tables = 4 + extra_tables($source, 'ranges');
$source->safe_psql(
	'ranges', q{
CREATE TABLE ranged (id bigint PRIMARY KEY, gone int, note text NOT NULL, body text,
                     doubled bigint GENERATED ALWAYS AS (id * 2) STORED);
ALTER TABLE ranged ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO ranged (id, gone, note, body)
SELECT i, i, 'row ' || i, CASE WHEN i % 500 = 0 THEN repeat(md5(i::text), 100) END
  FROM generate_series(1, 120000) i;
ALTER TABLE ranged DROP COLUMN gone;
DELETE FROM ranged WHERE id % 7 = 0;
UPDATE ranged SET note = note || ' updated' WHERE id % 11 = 0;
VACUUM ranged;
CREATE TABLE ranged_child (extra text NOT NULL) INHERITS (ranged);
INSERT INTO ranged_child (id, note, extra) SELECT i, 'child ' || i, 'x' FROM generate_series(200001, 201000) i;
});
$tables += 2;
pgbench_init($source, 'quiet', 1);
pgbench_init($source, 'single', 1);

# The lines of a node's log after $offset bytes.
sub log_since
{
	my ($node, $offset) = @_;
	my $log = slurp_file($node->logfile);
	return substr($log, $offset);
}

# The ranges the destination's log says a job copied a table in: (blocks, ranges, step).
sub ranges_logged
{
	my ($log, $job, $db, $table) = @_;
	return $log =~ /migration job $job, database "$db": table \Q$table\E \((\d+) blocks\) copied in (\d+) ranges of (\d+) blocks/
	  ? ($1, $2, $3)
	  : ();
}

# The copy statements the source's log shows for a table: [pid, first block, end block or undef].
sub range_statements
{
	my ($log, $table) = @_;
	my @r;
	while ($log =~
		/\[(\d+)\][^\n]*statement: COPY \(SELECT [^\n]* FROM ONLY \Q$table\E WHERE ctid >= '\((\d+),0\)'::pg_catalog\.tid(?: AND ctid < '\((\d+),0\)'::pg_catalog\.tid)?\) TO STDOUT/g
	  )
	{
		push @r, [ $1, $2, $3 ];
	}
	return @r;
}

# The ranges' blocks, in order, as one line: 0-410 410-820 ... 4510-end.
sub chain
{
	return join(' ', map { "$_->[1]-" . ($_->[2] // 'end') } sort { $a->[1] <=> $b->[1] } @_);
}

# The chain expected from the logged step: 0-step step-2*step ... (n-1)*step-end.
sub expected_chain
{
	my ($ranges, $step) = @_;
	return join(' ', map { $_ * $step . '-' . ($_ == $ranges - 1 ? 'end' : ($_ + 1) * $step) } 0 .. $ranges - 1);
}

# ---------------------------------------------------------------------
# dump_parallelism max, under load
# ---------------------------------------------------------------------

my $source_log_at = -s $source->logfile;
my $dest_log_at = -s $dest->logfile;
my $load = pgbench_load_start($source, 'ranges', script => 1);
my $job = create_job($dest, 'ranges', 'continuous', ['ranges'], 'max');
is(operator($dest, "SELECT dms_start($job)"), 'starting', 'a continuous job of "ranges", dump_parallelism max');

my @samples;
ok(wait_for_job($dest, $job, 'running', 'cdc', 180, samples => \@samples),
	'the job reaches Running (CDC) while pgbench updates pgbench_accounts');
my @over = grep { $_->{tables_copied} > $_->{tables_total} || $_->{bytes_copied} > $_->{bytes_total} }
  map { @{ $_->{progress} } } @samples;
is(scalar(@over), 0,
	'dms_job_progress never counted more tables or bytes than there are, in ' . scalar(@samples) . ' looks');

my $dest_log = log_since($dest, $dest_log_at);
my $source_log = log_since($source, $source_log_at);
foreach my $table ('public.pgbench_accounts', 'public.ranged')
{
	my ($blocks, $ranges, $step) = ranges_logged($dest_log, $job, 'ranges', $table);
	ok(defined $ranges && $ranges >= 4 && $ranges % 4 == 0,
		"$table: the destination's log says it was copied in ranges, 4 for each stream ("
		  . ($ranges // 'no line') . ' ranges of ' . ($step // '?') . ' of ' . ($blocks // '?') . ' blocks)');
	my @stmts = range_statements($source_log, $table);
	is(chain(@stmts), expected_chain($ranges // 0, $step // 0),
		"$table: the source ran one COPY (SELECT ... WHERE ctid ...) for each range, from block 0, each where the previous ends, the last open-ended"
	);
	my %pids = map { $_->[0] => 1 } @stmts;
	cmp_ok(scalar(keys %pids), '>=', 2, "$table: ... run by " . scalar(keys %pids) . ' sessions of the copy');
	unlike($source_log, qr/statement: COPY \Q$table\E[ (]/, "$table: ... and no COPY of the whole table");
}
like(
	$source->safe_psql(
		'ranges',
		q{EXPLAIN SELECT aid FROM ONLY public.pgbench_accounts WHERE ctid >= '(8,0)'::pg_catalog.tid AND ctid < '(16,0)'::pg_catalog.tid}
	),
	qr/Tid Range Scan on pgbench_accounts/,
	"the source reads a range with a TID Range Scan, not the whole table");
is(scalar(my @small = ranges_logged($dest_log, $job, 'ranges', 'public.pgbench_branches')),
	0, 'pgbench_branches, of one block, was not split');

my $r = pgbench_load_stop($load);
load_ok($r, 'ranges, during the full dump and CDC');
my %at = map { $_->{cause} => $_->{at} } history($dest, $job);
cmp_ok(
	$source->safe_psql(
		'ranges', qq{
SELECT count(*) FROM pgbench_history
 WHERE mtime BETWEEN to_timestamp($at{started})::timestamp AND to_timestamp($at{dump_completed})::timestamp}),
	'>', 0, 'pgbench wrote during the full dump (' . sprintf('%.1f', $at{dump_completed} - $at{started}) . ' s)');

is(operator($dest, "SELECT dms_promote($job)"), 'running', 'promoted');
ok(wait_for_job($dest, $job, 'completed', undef, 180), 'the job is Completed');

my $eq = tables_equal($source, $dest, 'ranges', columns => { 'public.extra_nopk' => 'id, payload' });
is($eq->{compared}, $tables, "all $tables tables compared row by row, ranged_child apart from ranged");
is(join("\n", @{ $eq->{differences} }), '', "no row lost, doubled or extra in any table ($eq->{rows} rows)");
is(join("\n", schema_differences($source, $dest, 'ranges')), '', 'the schema is the source\'s');
my $s = sequences_ahead($source, $dest, 'ranges');
is(join("\n", @{ $s->{problems} }), '', "every sequence is ahead ($s->{checked} checked)");
lift_fence($source, 'ranges');

# ---------------------------------------------------------------------
# dump_parallelism optimal, the source quiet: the progress, exactly
# ---------------------------------------------------------------------

$dest_log_at = -s $dest->logfile;
my $quiet = create_job($dest, 'quiet', 'one_time', ['quiet'], 'optimal');
operator($dest, "SELECT dms_start($quiet)");
ok(wait_for_job($dest, $quiet, 'completed', undef, 180), 'a one-time job of "quiet", dump_parallelism optimal: Completed');
my ($blocks, $ranges, $step) = ranges_logged(log_since($dest, $dest_log_at), $quiet, 'quiet', 'public.pgbench_accounts');
ok(defined $ranges && $ranges >= 2 && $ranges % 2 == 0,
	'pgbench_accounts was copied in ranges, 2 for each stream (' . ($ranges // 'no line') . ')');
my $source_rows = $source->safe_psql('quiet',
	'SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_tellers) + (SELECT count(*) FROM pgbench_history)'
);
is( $dest->safe_psql(
		'postgres',
		"SELECT tables_copied || '/' || tables_total || ' ' || rows_copied || ' ' || (bytes_copied = bytes_total) FROM dms_job_progress WHERE job_id = $quiet"
	),
	"4/4 $source_rows true",
	"its progress: 4 tables of 4 (each counted once, after all its ranges), the source's $source_rows rows, every byte");
$eq = tables_equal($source, $dest, 'quiet');
is(join("\n", @{ $eq->{differences} }), '', "every table of \"quiet\" is equal ($eq->{rows} rows)");

# ---------------------------------------------------------------------
# dump_parallelism min: one stream, nothing split
# ---------------------------------------------------------------------

$dest_log_at = -s $dest->logfile;
$source_log_at = -s $source->logfile;
my $single = create_job($dest, 'single', 'one_time', ['single'], 'min');
operator($dest, "SELECT dms_start($single)");
ok(wait_for_job($dest, $single, 'completed', undef, 180), 'a one-time job of "single", dump_parallelism min: Completed');
unlike(log_since($dest, $dest_log_at), qr/migration job $single, database "single": table .* copied in \d+ ranges/,
	'with one stream, no table was split');
unlike(log_since($source, $source_log_at), qr/ctid >=/, '... and the source saw no range');
$eq = tables_equal($source, $dest, 'single');
is(join("\n", @{ $eq->{differences} }), '', "every table of \"single\" is equal ($eq->{rows} rows)");

is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left on either side');

$source->stop;
$dest->stop;
done_testing();
