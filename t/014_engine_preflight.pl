# t/014_engine_preflight.pl: preflight refuses what cannot work, says how to
# fix it, and leaves nothing behind; passwords go nowhere (ENGINE 2, 5).
#
# A DBA has one good source (PostgreSQL 15, wal_level = logical) and makes
# every mistake ENGINE section 5 lists, one job each:
#   - a server pointing to a closed port;
#   - a mapping with the wrong password for 'migrator', whom the source
#     authenticates with scram-sha-256;
#   - a source still at wal_level = replica (a third node);
#   - a source whose replication slots are all taken by other slots;
#   - a source whose WAL senders are all taken by other connections;
#   - a role without REPLICATION;
#   - a role that cannot read one table;
#   - a role that owns every table but that row-level security (forced on
#     its owner) shows only some rows of one;
#   - a destination database that exists and has a table of its own;
#   - a database that another job already migrates;
#   - a database that does not exist on the source;
#   - all the source's databases, one named with U+202E, which no job's
#     list may name.
# Each start ends in one `failed` event: the job is Failed in full dump,
# its message names the server, the database and what to fix, and nothing
# was made: no slot or publication on the source, no subscription or
# password file on the destination, no destination database (and the one
# that existed keeps its table and rows).
#
# Then the secrets rule: a database migrated from the scram source with the
# mapping password 'Sup3r-S3cret-pw', through CDC and promoted.  The
# password is in no column of dms_job, its history, failure rows, progress
# and the engine's own table, in no notification, in no line of either
# server's log, in no subscription's connection string, and in no command
# line that `ps` showed while the job ran; the engine's password file is
# readable by its owner only, and gone once the job is done.
#
# (dms_create_job's own refusals, a server that does not exist or belongs
# to another wrapper, one without USAGE, a destination server, are the
# regression test engine_setup's.)

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DmsEngine;
use DmsTest;

my $timeout = 180;
my $secret = 'Sup3r-S3cret-pw';
my $wrong_password = 'Wr0ng-pw-not-this';

my ($source, $dest) = engine_nodes();
my $superuser = $source->safe_psql('postgres', 'SELECT current_user');

# ---------------------------------------------------------------------
# The source: databases, roles, scram for 'migrator'
# ---------------------------------------------------------------------

foreach my $db (qw(appdb taken busy vault))
{
	$source->safe_psql('postgres', "CREATE DATABASE $db");
}
$source->safe_psql(
	'postgres', qq{
SET log_statement = none;
SET password_encryption = 'scram-sha-256';
CREATE ROLE migrator LOGIN SUPERUSER PASSWORD '$secret';
CREATE ROLE norepl LOGIN NOREPLICATION;
CREATE ROLE halfreader LOGIN REPLICATION;
CREATE ROLE ledgerowner LOGIN REPLICATION;
CREATE DATABASE ledger OWNER ledgerowner;
});
$source->safe_psql(
	'appdb', q{
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE TABLE secrets (id int PRIMARY KEY, note text);
INSERT INTO accounts SELECT i, 'owner ' || i FROM generate_series(1, 100) i;
INSERT INTO secrets SELECT i, 'note ' || i FROM generate_series(1, 10) i;
GRANT SELECT ON accounts, secrets TO norepl;
GRANT SELECT ON accounts TO halfreader;
});
$source->safe_psql(
	'ledger', q{
SET ROLE ledgerowner;
CREATE TABLE entries (id int PRIMARY KEY, amount numeric NOT NULL);
INSERT INTO entries SELECT i, i * 10 FROM generate_series(1, 10) i;
ALTER TABLE entries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY recent ON entries USING (id > 5);
-- forced on tables the copy does not read: a partitioned table (the copy
-- reads its partitions, which have no policy) and an unlogged one
CREATE TABLE parted (id int, amount numeric) PARTITION BY RANGE (id);
CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
INSERT INTO parted SELECT i, i FROM generate_series(1, 10) i;
ALTER TABLE parted ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY recent ON parted USING (id > 5);
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
ALTER TABLE scratch ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY recent ON scratch USING (id > 5);
});
$source->safe_psql('taken',
	'CREATE TABLE stock (id int PRIMARY KEY, qty int); INSERT INTO stock VALUES (1, 10), (2, 20)');
# busy has no table: the job that migrates it reaches CDC and leaves its
# destination database empty, so that only "another job" is left to refuse
$source->safe_psql(
	'vault', q{
CREATE TABLE gold (id serial PRIMARY KEY, bars int NOT NULL, vaulted_at timestamptz DEFAULT now());
INSERT INTO gold (bars) SELECT i FROM generate_series(1, 1000) i;
});
is($source->safe_psql('postgres', q{SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'migrator'}),
	't', "migrator's password is a scram-sha-256 verifier");

# migrator must authenticate with scram-sha-256, by socket or TCP
my $hba = $source->data_dir . '/pg_hba.conf';
my $hba_before = slurp_file($hba);
open my $fh, '>', $hba or die "could not write $hba: $!";
print $fh "local all migrator scram-sha-256\n"
  . "host all migrator 127.0.0.1/32 scram-sha-256\n"
  . "host all migrator ::1/128 scram-sha-256\n"
  . $hba_before;
close $fh;
$source->reload;
{
	my ($ret, $out, $err) = $source->psql('postgres', 'SELECT 1',
		connstr => $source->connstr('postgres') . " user=migrator password=$wrong_password");
	like($err, qr/password authentication failed for user "migrator"/,
		'the source refuses migrator with a wrong password (scram-sha-256)');
}

# A third source, at wal_level = replica.
my $other = PostgreSQL::Test::Cluster->new('other');
$other->init(allows_streaming => 1);
$other->start;
is($other->safe_psql('postgres', 'SHOW wal_level'), 'replica', 'the third source has wal_level = replica');
$other->safe_psql('postgres', 'CREATE DATABASE appdb');
$other->safe_psql('appdb', 'CREATE TABLE accounts (id int PRIMARY KEY, owner text)');

# ---------------------------------------------------------------------
# Servers and mappings on the destination
# ---------------------------------------------------------------------

sub quote_sql
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# CREATE SERVER and a PUBLIC mapping.  The statements that hold a password
# are not logged (log_statement = none): the test's own statements must not
# put a password in the log it searches.
sub make_server
{
	my ($name, $host, $port, $user, $password) = @_;
	my $sql = "SET log_statement = none;\n"
	  . sprintf(
		"CREATE SERVER %s FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host %s, port '%d');\n",
		$name, quote_sql($host), $port);
	$sql .= sprintf("CREATE USER MAPPING FOR PUBLIC SERVER %s OPTIONS (user %s%s);\n",
		$name, quote_sql($user),
		defined $password ? ', password ' . quote_sql($password) : '');
	$dest->safe_psql('postgres', $sql);
}

my $closed_port = PostgreSQL::Test::Cluster::get_free_port();
make_server('src_down', '127.0.0.1', $closed_port, $superuser);
make_server('src_badpw', $source->host, $source->port, 'migrator', $wrong_password);
make_server('src_other', $other->host, $other->port, $superuser);
make_server('src_norepl', $source->host, $source->port, 'norepl');
make_server('src_halfreader', $source->host, $source->port, 'halfreader');
make_server('src_ledger', $source->host, $source->port, 'ledgerowner');
make_server('src_secret', $source->host, $source->port, 'migrator', $secret);

# ---------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------


sub new_job
{
	my ($name, $server, @databases) = @_;
	return $dest->safe_psql(
		'postgres',
		sprintf(
			"SELECT dms_create_job(%s, 'continuous', ARRAY[%s], source_server => %s)",
			quote_sql($name), join(', ', map { quote_sql($_) } @databases),
			quote_sql($server)));
}

sub destination_has_database
{
	my ($db) = @_;
	return $dest->safe_psql('postgres',
		'SELECT count(*) FROM pg_database WHERE datname = ' . quote_sql($db)) ne '0';
}

# The files of the engine's password directory ($PGDATA/dms_lifecycle).
sub password_files
{
	my @files = grep { -f $_ } glob($dest->data_dir . '/dms_lifecycle/*');
	return @files;
}

# Starts a job that preflight must refuse and checks what ENGINE 5 says:
# one failed event, Failed in full dump, a message that names the server,
# the database and each of @$fix (the words of the fix), and nothing new
# on $node (the source side) or the destination: the same leftovers as
# before the start (none, except where another job runs) and the same
# password files, and no destination database.  Deletes the job unless
# keep => 1, so that a failed job does not count as one that migrates the
# database.  Returns (job id, message).
sub expect_refused
{
	my (%c) = @_;
	my $what = $c{what};
	my $job = new_job("refused: $what", $c{server}, $c{database});
	my $had_database = destination_has_database($c{database});
	my @leftovers_before = leftovers($c{node}, $dest);
	$dest->safe_psql('postgres', "SELECT dms_start($job)");
	ok(wait_for_job($dest, $job, 'failed', 'full_dump', $timeout),
		"$what: the job goes Failed in full dump");
	my $message = job_error($dest, $job);
	like($message, qr/(?<!\w)\Q$c{server}\E(?!\w)/, "$what: the message names the server")
	  or diag $message;
	like($message, qr/(?<!\w)\Q$c{database}\E(?!\w)/, "$what: the message names the database");
	foreach my $word (@{ $c{fix} })
	{
		like($message, $word, "$what: the message says $word");
	}
	is($dest->safe_psql('postgres',
			"SELECT count(*) FROM dms_job_history WHERE job_id = $job AND cause = 'failed'"),
		'1', "$what: one failed event");
	# (leftovers() counts the password files too)
	is_deeply([ leftovers($c{node}, $dest) ],
		[@leftovers_before], "$what: nothing left on the source or the destination, no password file");
	ok(!destination_has_database($c{database}), "$what: no destination database was created")
	  unless $had_database;
	$dest->safe_psql('postgres', "SELECT dms_delete($job)") unless $c{keep};
	return ($job, $message);
}

# An open replication connection to $node: a WAL sender until it ends.
sub hold_wal_sender
{
	my ($node) = @_;
	my ($in, $out, $err) = ("IDENTIFY_SYSTEM;\n", '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAt', '-d', $node->connstr('postgres') . ' replication=database' ],
		'<', \$in, '>', \$out, '2>', \$err);
	return { handle => $h, in => \$in };
}

sub release_wal_sender
{
	my ($held) = @_;
	${ $held->{in} } .= "\\q\n";
	$held->{handle}->finish;
}

# ---------------------------------------------------------------------
# Every preflight failure
# ---------------------------------------------------------------------

expect_refused(
	what => 'source unreachable',
	server => 'src_down',
	database => 'appdb',
	node => $source,
	fix => [qr/connect|reach/i, qr/\b$closed_port\b/]);

my (undef, $badpw_message) = expect_refused(
	what => 'wrong password',
	server => 'src_badpw',
	database => 'appdb',
	node => $source,
	fix => [ qr/password/i, qr/\bmigrator\b/ ]);
unlike($badpw_message, qr/\Q$wrong_password\E/, 'wrong password: the message does not show the password');

expect_refused(
	what => 'wal_level = replica',
	server => 'src_other',
	database => 'appdb',
	node => $other,
	fix => [ qr/\bwal_level\b/, qr/\breplica\b/, qr/\blogical\b/ ]);

# Every replication slot of the source taken by slots of someone else.
my $free_slots = $source->safe_psql('postgres',
	'SELECT current_setting($$max_replication_slots$$)::int - count(*) FROM pg_replication_slots');
$source->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('filler_' || i) FROM generate_series(1, $free_slots) i");
expect_refused(
	what => 'no free replication slot',
	server => 'src',
	database => 'appdb',
	node => $source,
	fix => [qr/\bmax_replication_slots\b/]);
is($source->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'filler\_%'}),
	$free_slots, 'the slots of someone else are untouched');
$source->safe_psql('postgres',
	q{SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'filler\_%'});

# The third source at wal_level = logical, its two WAL senders taken.
$other->append_conf('postgresql.conf', "wal_level = logical\nmax_wal_senders = 2\n");
$other->restart;
my @held = map { hold_wal_sender($other) } 1 .. 2;
ok( $other->poll_query_until(
		'postgres', q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'walsender'}),
	'both WAL senders of the third source are taken');
expect_refused(
	what => 'no free WAL sender',
	server => 'src_other',
	database => 'appdb',
	node => $other,
	fix => [qr/\bmax_wal_senders\b/]);
release_wal_sender($_) foreach @held;

expect_refused(
	what => 'role without REPLICATION',
	server => 'src_norepl',
	database => 'appdb',
	node => $source,
	fix => [ qr/\bnorepl\b/, qr/\bREPLICATION\b/i ]);

expect_refused(
	what => 'role that cannot read a table',
	server => 'src_halfreader',
	database => 'appdb',
	node => $source,
	fix => [ qr/\bhalfreader\b/, qr/\bsecrets\b/ ]);

# (a copy as ledgerowner would have had 5 of the 10 rows of entries)
my (undef, $rls_message) = expect_refused(
	what => 'row-level security hiding rows from the role',
	server => 'src_ledger',
	database => 'ledger',
	node => $source,
	fix => [
		qr/\bledgerowner\b/, qr/\bentries\b/, qr/row-level security/, qr/\bBYPASSRLS\b/,
		qr/\bNO FORCE ROW LEVEL SECURITY\b/
	]);
like($rls_message, qr/\btables public\.entries;/,
	'row-level security: only the tables the copy reads are named (not the partitioned parted, not the unlogged scratch)');

# The destination already has a database of that name, with a table.
$dest->safe_psql('postgres', 'CREATE DATABASE taken');
$dest->safe_psql('taken',
	q{CREATE TABLE local_notes (id int PRIMARY KEY, note text); INSERT INTO local_notes VALUES (1, 'a'), (2, 'b'), (3, 'c')});
expect_refused(
	what => 'destination database with a table',
	server => 'src',
	database => 'taken',
	node => $source,
	fix => [qr/\btables?\b/i]);
is($dest->safe_psql('taken', 'SELECT string_agg(note, $$,$$ ORDER BY id) FROM local_notes'),
	'a,b,c', 'the destination database that existed keeps its table and rows');
is($dest->safe_psql('taken', q{SELECT count(*) FROM pg_class WHERE relname = 'stock'}),
	'0', 'and got nothing from the source');

# Another job migrates busy: a second job on it is refused.
my $first = new_job('migrates busy', 'src', 'busy');
$dest->safe_psql('postgres', "SELECT dms_start($first)");
ok(wait_for_job($dest, $first, 'running', 'cdc', $timeout), 'a first job migrates busy (Running, CDC)');
my (undef, $busy_message) = expect_refused(
	what => 'another job migrates it',
	server => 'src',
	database => 'busy',
	node => $source,
	keep => 1,
	fix => []);
like($busy_message, qr/migrates busy|\bjob $first\b/, 'another job migrates it: the message names that job');
is($dest->safe_psql('postgres', "SELECT status || '|' || phase FROM dms_job WHERE id = $first"),
	'running|cdc', 'the first job goes on');

expect_refused(
	what => 'database missing on the source',
	server => 'src',
	database => 'nosuchdb',
	node => $source,
	fix => [qr/\bexist/i]);

# The first job, deleted, takes down what it made.
$dest->safe_psql('postgres',
	"SELECT dms_delete(id) FROM dms_job WHERE name IN ('migrates busy', 'refused: another job migrates it')");
is_deeply([ wait_for_nothing_left($source, $dest) ], [], 'the deleted first job left nothing behind, nor did any other');

# A job of all the source's databases (databases NULL), one of which has a
# name that a job's list refuses: a right-to-left override (U+202E) makes
# "inv" U+202E "eciov" read as "invoice".  Preflight refuses it as the
# list would, before anything is made: the job is Failed in full dump, the
# message says what is wrong with which database and what to do, and no
# database of the source has a row of the engine's.
$source->safe_psql('postgres', q{CREATE DATABASE U&"inv\202Eeciov"});
my @before_all = leftovers($source, $dest);
my $all = $dest->safe_psql('postgres',
	q{SELECT dms_create_job('refused: all databases', source_server => 'src')});
$dest->safe_psql('postgres', "SELECT dms_start($all)");
ok(wait_for_job($dest, $all, 'failed', 'full_dump', $timeout),
	'all databases, one named with U+202E: the job goes Failed in full dump');
my $all_message = job_error($dest, $all);
like($all_message, qr/\bsrc\b.*invisible formatting characters.*U\+202E.*rename the database on the source/s,
	'... its message names the server, what is wrong and the fix')
  or diag $all_message;
is($dest->safe_psql('postgres', "SELECT count(*) FROM dms_job_database WHERE job_id = $all"),
	'0', '... no database was taken up');
is_deeply([ leftovers($source, $dest) ], [@before_all], '... and nothing was made on either side');
$dest->safe_psql('postgres', "SELECT dms_delete($all)");
$source->safe_psql('postgres', q{DROP DATABASE U&"inv\202Eeciov"});

# ---------------------------------------------------------------------
# Secrets: a migration from the scram source, through CDC, promoted
# ---------------------------------------------------------------------

my ($listen_in, $listen_out, $listen_err) = ("LISTEN dms_lifecycle;\nSELECT 'listening';\n", '', '');
# (the timer bounds each wait on psql, restarted before each: the listener
# itself lives as long as the migration)
my $listen_timer = IPC::Run::timeout($timeout);
my $listener = IPC::Run::start([ 'psql', '-XAt', '-d', $dest->connstr('postgres') ],
	'<', \$listen_in, '>', \$listen_out, '2>', \$listen_err, $listen_timer);
$listener->pump until $listen_out =~ /listening/;

# Every row of the extension's tables and view, as text (the query holds
# no password: the destination logs DDL, and the test's own statements
# must not put the password in the log it searches).
sub secret_in_no_table
{
	my ($when) = @_;
	foreach my $table (qw(dms_job dms_job_history dms_job_failure dms_job_progress dms_job_database))
	{
		my $text = $dest->safe_psql('postgres', "SELECT t::text FROM $table t");
		ok(index($text, $secret) < 0, "secrets, $when: no column of $table holds the password");
	}
}

# ps, every 50 ms, while the job runs
my $ps_file = PostgreSQL::Test::Utils::tempdir() . '/ps.txt';
my $sampler = IPC::Run::start([ 'sh', '-c', 'while :; do ps -eo args; echo ---; sleep 0.05; done' ],
	'>', $ps_file);

my $vault = new_job('vault', 'src_secret', 'vault');
$dest->safe_psql('postgres', "SELECT dms_start($vault)");
ok(wait_for_job($dest, $vault, 'running', 'cdc', $timeout),
	'secrets: the job reaches CDC with the scram password');
$source->safe_psql('vault', 'INSERT INTO gold (bars) SELECT i FROM generate_series(1, 100) i');

secret_in_no_table('in CDC');

my @conninfo = split /\n/, $dest->safe_psql('postgres', q{SELECT subconninfo FROM pg_subscription WHERE subname ~ '^dms_[0-9]+_[0-9]+'});
ok(scalar @conninfo, 'secrets: the job streams through a subscription');
is_deeply([ grep { index($_, $secret) >= 0 } @conninfo ], [],
	'secrets: no subscription connection string holds the password');
my @files = password_files();
is_deeply([ grep { ((stat $_)[2] & 07777) != 0600 } @files ], [],
	"secrets: the engine's password files are readable by their owner only (mode 0600)");

# (psql, not safe_psql: a job that did not reach CDC fails the test below,
# and the secrets are checked all the same)
$dest->psql('postgres', "SELECT dms_promote($vault)");
ok(wait_for_job($dest, $vault, 'completed', undef, $timeout), 'secrets: the promotion completes the job');
# (eval: a missing database must not stop the secrets' checks below)
my $vault_tables = eval { tables_equal($source, $dest, 'vault') };
is_deeply($vault_tables ? $vault_tables->{differences} : ["the comparison died: $@"],
	[], 'secrets: the migrated table is equal');
is_deeply([ wait_for_nothing_left($source, $dest) ], [], 'secrets: nothing left behind, no password file');

$sampler->kill_kill;
$sampler->finish;
my $ps = slurp_file($ps_file);
# (ok, not like: a failure must not print every command line of the machine)
ok($ps =~ /logical replication (?:apply )?worker for subscription/,
	'ps was sampled while the job streamed (an apply worker shows)');
ok(index($ps, $secret) < 0, 'secrets: no command line shown by ps holds the password');

$listen_in .= "SELECT 'done';\n\\q\n";
$listen_timer->start($timeout);
$listener->finish;
my @payloads = notifications($listen_out);
ok(scalar(grep { $_->{job_id} == $vault } @payloads) >= 3, 'the listener received the job\'s notifications');
ok(index($listen_out, $secret) < 0, 'secrets: no notification payload holds the password');

secret_in_no_table('after the promotion');
ok(index(slurp_file($dest->logfile), $secret) < 0, "secrets: no line of the destination's log holds the password");
ok(index(slurp_file($source->logfile), $secret) < 0, "secrets: no line of the source's log holds the password");

done_testing();

