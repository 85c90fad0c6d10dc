# t/013_engine_versions.pl: the engine migrates across major versions (ENGINE 1, 5, 7).
#
# A DBA moves two databases off a real PostgreSQL 13 server into this
# PostgreSQL 15 one.  The source holds a pgbench database (scale 2, with
# the harness's extra tables: no key, REPLICA IDENTITY FULL, list
# partitions, a matview, ...) and a shop: a schema and a table with
# mixed-case names, an identity column, a serial, a sequence used as a
# default, a stored generated column, jsonb, arrays, uuid, bytea and
# non-ASCII text, a foreign key, a range-partitioned table and a log table
# without a primary key (whose inserts only are streamed).  pgbench writes
# to both databases before the job starts and goes on through the full dump
# and CDC (TPC-B and the harness's script on one, a script of inserts,
# updates and deletes on the other), and none of its writes fails.  The
# load stops, the operator promotes, and the job completes: every table of
# both databases is equal on the destination row by row, the schemas are
# the same, every sequence is ahead of what the source handed out, and the
# engine left nothing behind (no slot or publication on the source, no
# subscription or password file on the destination).  The destination
# would split tables of 1 MB and more into ranges, but PostgreSQL 13 has
# no TID Range Scan: no table of it is split.
#
# The same DBA then points a job at a PostgreSQL 17 server, whose dump this
# PostgreSQL 15's pg_dump cannot read: preflight refuses it, the job goes
# Failed in full dump with a message naming both versions, and nothing was
# made on either side (not even the destination database).
#
# The servers of 13 and 17 are the npm registry's builds, fetched by
# scripts/fetch-postgres; scripts/test passes their install paths in
# DMS_PG13_INSTALL_PATH and DMS_PG17_INSTALL_PATH.  Without them this test
# fails: a migration from another major version that was not run has not
# passed.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsEngine;

my $timeout = 180;

# The old and new servers, or a failure that says where they should be.
my %install_path;
foreach my $major (13, 17)
{
	my $var = "DMS_PG${major}_INSTALL_PATH";
	my $dir = $ENV{$var};
	ok(defined $dir && -x "$dir/bin/postgres" && -x "$dir/bin/pg_config",
		"PostgreSQL $major server binaries in \$$var ("
		  . ($dir // 'not set')
		  . '; bash scripts/fetch-postgres '
		  . "$major DIR puts them there)")
	  or do
	{
		done_testing();
		exit 1;
	};
	$install_path{$major} = $dir;
}

# (a split threshold that pgbench_accounts, 26 MB at scale 2, passes: the
# source of PostgreSQL 13 has no TID Range Scan, so no table is split)
my ($source, $dest) = engine_nodes(
	install_path => $install_path{13},
	destination_conf => ["dms_lifecycle.split_table_size = '1MB'"]);
like($source->safe_psql('postgres', 'SHOW server_version_num'),
	qr/^13\d{4}$/, 'the source runs PostgreSQL 13');
like($dest->safe_psql('postgres', 'SHOW server_version_num'),
	qr/^15\d{4}$/, 'the destination runs PostgreSQL 15');


# ---------------------------------------------------------------------
# A PostgreSQL 17 source: refused by preflight
# ---------------------------------------------------------------------

my $new = PostgreSQL::Test::Cluster->new('source17',
	install_path => $install_path{17});
$new->init(allows_streaming => 'logical');
$new->append_conf('postgresql.conf',
	"max_replication_slots = 20\nmax_wal_senders = 20\n");
$new->start;
like($new->safe_psql('postgres', 'SHOW server_version_num'),
	qr/^17\d{4}$/, 'the other source runs PostgreSQL 17');
is($new->safe_psql('postgres', 'SHOW wal_level'),
	'logical', 'PostgreSQL 17 is otherwise a good source (wal_level = logical)');
$new->safe_psql('postgres', 'CREATE DATABASE inventory');
$new->safe_psql('inventory',
	'CREATE TABLE items (id int PRIMARY KEY, label text); '
	  . "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i");
my $new_user = $new->safe_psql('postgres', 'SELECT current_user');
$dest->safe_psql(
	'postgres', sprintf(
		q{
CREATE SERVER src17 FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host %s, port '%d');
CREATE USER MAPPING FOR PUBLIC SERVER src17 OPTIONS (user %s);},
		quote_sql($new->host), $new->port, quote_sql($new_user)));

my $job17 = $dest->safe_psql('postgres',
	q{SELECT dms_create_job('from 17', 'continuous', ARRAY['inventory'], source_server => 'src17')}
);
$dest->safe_psql('postgres', "SELECT dms_start($job17)");
ok(wait_for_job($dest, $job17, 'failed', 'full_dump', $timeout),
	'a PostgreSQL 17 source: the job goes Failed in full dump');
my $error17 = job_error($dest, $job17);
like($error17, qr/\b17\b/, 'the message names the source version (17)');
like($error17, qr/\b15\b/, 'the message names this version (15)');
like($error17, qr/\bsrc17\b/, 'the message names the server');
like($error17, qr/\binventory\b/, 'the message names the database');
is($dest->safe_psql('postgres',
		"SELECT count(*) FROM dms_job_history WHERE job_id = $job17 AND cause = 'failed'"),
	'1', 'one failed event');
is($dest->safe_psql('postgres',
		"SELECT count(*) FROM pg_database WHERE datname = 'inventory'"),
	'0', 'no destination database was created');
is_deeply([ leftovers($new, $dest) ], [], 'nothing left behind on the 17 source or the destination');
is($new->safe_psql('inventory',
		'SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)'),
	'0', 'the 17 source has no slot and no publication at all');
$dest->safe_psql('postgres', "SELECT dms_delete($job17)");
$new->stop;

# ---------------------------------------------------------------------
# A PostgreSQL 13 source: migrated, continuous, under load, promoted
# ---------------------------------------------------------------------

$source->safe_psql('postgres', 'CREATE DATABASE bench');
$source->safe_psql('postgres', 'CREATE DATABASE shop');
pgbench_init($source, 'bench', 2);
extra_tables($source, 'bench');
$source->safe_psql(
	'shop', q{
CREATE SCHEMA "Sales";
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    visits integer NOT NULL DEFAULT 0,
    last_seen timestamptz,
    prefs jsonb
);
CREATE SEQUENCE "Sales".invoice_no START 1000;
CREATE TABLE "Sales"."Orders" (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers,
    invoice_no bigint NOT NULL DEFAULT nextval('"Sales".invoice_no'),
    amount numeric(12,2) NOT NULL,
    total_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED,
    details jsonb,
    tags text[],
    obsolete boolean NOT NULL DEFAULT false,
    placed_at timestamptz NOT NULL DEFAULT now(),
    token uuid NOT NULL DEFAULT gen_random_uuid(),
    receipt bytea
);
CREATE INDEX orders_customer ON "Sales"."Orders" (customer_id, placed_at);
-- no primary key and no replica identity: its inserts are streamed, and only inserts happen
CREATE TABLE audit_log (event text NOT NULL, at timestamptz NOT NULL);
CREATE TABLE measurements (
    id bigserial,
    taken_on date NOT NULL,
    sensor integer NOT NULL,
    reading numeric,
    PRIMARY KEY (taken_on, id)
) PARTITION BY RANGE (taken_on);
CREATE TABLE measurements_2023 PARTITION OF measurements FOR VALUES FROM (MINVALUE) TO ('2024-01-01');
CREATE TABLE measurements_later PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO (MAXVALUE);

INSERT INTO customers (name, email, prefs)
SELECT (ARRAY['Zoë', 'Łukasz', '東京 商店', 'O''Brien', 'plain'])[1 + i % 5] || ' ' || i,
       'c' || i || '@example.org',
       jsonb_build_object('lang', (ARRAY['fr', 'pl', 'ja'])[1 + i % 3], 'vip', i % 17 = 0)
  FROM generate_series(1, 500) i;
INSERT INTO "Sales"."Orders" (customer_id, amount, details, tags, obsolete, receipt)
SELECT 1 + i % 500, (i % 9973) / 7.0, jsonb_build_object('n', i, 'note', 'naïve "quoted"'),
       ARRAY['t' || i % 4, 'bulk'], i % 10 = 0, CASE WHEN i % 3 = 0 THEN decode(md5(i::text), 'hex') END
  FROM generate_series(1, 20000) i;
INSERT INTO audit_log SELECT 'seed ' || i, now() - i * interval '1 minute' FROM generate_series(1, 5000) i;
INSERT INTO measurements (taken_on, sensor, reading)
SELECT date '2023-06-01' + i % 400, i % 7, i / 3.0 FROM generate_series(1, 10000) i;
});

# The shop's load: one transaction inserts, updates and deletes in every
# kind of table (the log only gets inserts), rate-limited.
my $shop_script = PostgreSQL::Test::Utils::tempdir() . '/shop.sql';
open my $fh, '>', $shop_script or die "could not write $shop_script: $!";
print $fh <<'EOS';
\set c random(1, 500)
\set amount random(1, 1000000)
BEGIN;
INSERT INTO "Sales"."Orders" (customer_id, amount, details, tags) VALUES (:c, :amount / 100.0, jsonb_build_object('via', 'pgbench', 'n', :amount), ARRAY['load']);
UPDATE customers SET visits = visits + 1, last_seen = now() WHERE id = :c;
DELETE FROM "Sales"."Orders" WHERE id = (SELECT min(id) FROM "Sales"."Orders" WHERE customer_id = :c AND obsolete);
INSERT INTO audit_log VALUES ('order for ' || :c, clock_timestamp());
INSERT INTO measurements (taken_on, sensor, reading) VALUES (date '2023-06-01' + :amount % 400, :c % 7, :amount);
UPDATE measurements SET reading = reading + 1 WHERE taken_on = date '2023-06-01' + :c % 400 AND sensor = :c % 7;
END;
EOS
close $fh;

sub shop_load_start
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			$source->installed_command('pgbench'), '-n', '-c', '2', '-R', '50', '-T', $timeout,
			'-f', $shop_script, '-h', $source->host, '-p', $source->port, 'shop'
		],
		'>', \$out, '2>', \$err);
	return { handle => $h, out => \$out, err => \$err };
}

sub rows
{
	my ($db, $table) = @_;
	return $source->safe_psql($db, "SELECT count(*) FROM $table");
}

my $bench_load = pgbench_load_start($source, 'bench', script => 1);
my $shop_load = shop_load_start();
my $loads_stopped = 0;
# A test that dies before the loads stop must not leave them running (the
# harness's load repeats pgbench until it is told to stop).
END
{
	if (!$loads_stopped)
	{
		pgbench_load_stop($bench_load) if $bench_load;
		$shop_load->{handle}->kill_kill if $shop_load;
	}
}
# both loads are writing before the job starts
$source->poll_query_until('bench', 'SELECT count(*) > 20 FROM pgbench_history')
  or die 'the pgbench load wrote nothing';
$source->poll_query_until('shop', q{SELECT count(*) > 5000 FROM audit_log})
  or die 'the shop load wrote nothing: ' . ${ $shop_load->{err} };
my ($history_at_start, $audit_at_start) = (rows('bench', 'pgbench_history'), rows('shop', 'audit_log'));

my $job = $dest->safe_psql('postgres',
	q{SELECT dms_create_job('from 13', 'continuous', ARRAY['bench', 'shop'], source_server => 'src')}
);
$dest->safe_psql('postgres', "SELECT dms_start($job)");
ok(wait_for_job($dest, $job, 'running', 'cdc', $timeout),
	'PostgreSQL 13: the full dump completes under load and the job streams (Running, CDC)');
cmp_ok(rows('bench', 'pgbench_history'), '>', $history_at_start,
	'pgbench wrote while the full dump ran');
cmp_ok(rows('shop', 'audit_log'), '>', $audit_at_start, 'the shop load wrote while the full dump ran');
unlike(slurp_file($dest->logfile), qr/migration job $job, database "\w+": table .* copied in \d+ ranges/,
	'no table of PostgreSQL 13 was copied in ranges (no TID Range Scan there), above split_table_size as they may be');

# CDC under load: until both loads have written a good deal more.
my ($history_at_cdc, $audit_at_cdc) = (rows('bench', 'pgbench_history'), rows('shop', 'audit_log'));
ok( $source->poll_query_until(
		'bench', "SELECT count(*) > $history_at_cdc + 300 FROM pgbench_history"),
	'pgbench writes during CDC');
ok($source->poll_query_until('shop', "SELECT count(*) > $audit_at_cdc + 100 FROM audit_log"),
	'the shop load writes during CDC');
# and a few statements of the operator's own, of every kind, in one transaction
$source->safe_psql(
	'shop', q{
BEGIN;
INSERT INTO customers (name, email) VALUES ('late ☕ customer', 'late@example.org');
UPDATE "Sales"."Orders" SET amount = amount + 1, tags = tags || ARRAY['touched'] WHERE id % 97 = 0;
DELETE FROM "Sales"."Orders" WHERE obsolete AND id % 3 = 0;
UPDATE customers SET prefs = prefs || '{"moved": true}' WHERE id % 50 = 0;
COMMIT;
});

load_ok(pgbench_load_stop($bench_load), 'PostgreSQL 13 under load');
$shop_load->{handle}->kill_kill;
$shop_load->{handle}->finish;
$loads_stopped = 1;
is(join("\n", grep { /error|abort|fatal/i } split /\n/, ${ $shop_load->{err} }),
	'', 'no write of the shop load failed');

# (psql, not safe_psql: a job that did not reach CDC fails the tests below,
# and what it left behind is checked all the same)
$dest->psql('postgres', "SELECT dms_promote($job)");
ok(wait_for_job($dest, $job, 'completed', undef, $timeout), 'the promotion completes the job');

# (extra_nopk has no key: the load's UPDATEs of it cannot be streamed, and
# no update changes its id and payload)
my %columns = (bench => { 'public.extra_nopk' => 'id, payload' }, shop => {});
my %tables = (bench => 12, shop => 5);
my %sequences = (bench => 3, shop => 4);
foreach my $db ('bench', 'shop')
{
	# (eval: a database missing on the destination fails here, and the
	# checks of what was left behind still run)
	eval {
		my $t = tables_equal($source, $dest, $db, columns => $columns{$db});
		is_deeply($t->{differences}, [], "$db: every table equal row by row on PostgreSQL 15");
		cmp_ok($t->{compared}, '>=', $tables{$db}, "$db: $t->{compared} tables, $t->{rows} rows compared");
		is_deeply([ schema_differences($source, $dest, $db) ], [], "$db: the same schema");
		my $s = sequences_ahead($source, $dest, $db);
		is_deeply($s->{problems}, [], "$db: every sequence ahead of the source's");
		cmp_ok($s->{checked}, '>=', $sequences{$db}, "$db: $s->{checked} sequences checked");
		1;
	} or fail("$db: the comparison died: $@");
}
# the comparison compared something: the tables are there, with their rows
# (psql, not safe_psql: a missing database is a failure here, not the end)
my ($accounts, $load_orders);
$dest->psql('bench', 'SELECT count(*) FROM pgbench_accounts', stdout => \$accounts);
is($accounts, '200000', 'bench: pgbench_accounts has its 200,000 rows (scale 2)');
$dest->psql('shop', q{SELECT count(*) > 0 FROM "Sales"."Orders" WHERE 'load' = ANY (tags)},
	stdout => \$load_orders);
is($load_orders, 't', 'shop: the orders written during the migration arrived');
is_deeply([ wait_for_nothing_left($source, $dest) ],
	[], 'nothing left behind on the source or the destination');

done_testing();

sub quote_sql
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}
