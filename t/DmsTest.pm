# t/DmsTest.pm: helpers shared by the TAP tests of dms_lifecycle.
#
# - populate_sql(): a psql script that walks migration jobs into every
#   (status, phase) of SPEC section 3, with failure rows, edits, several
#   actors and deleted jobs whose history stays;
# - table_texts(): the text of every row of the three tables, in a fixed
#   order, to compare a database with its copy;
# - sql_error(): the SQLSTATE and message of a statement that must fail;
# - consistency_violations(): what must hold after any crash or copy;
# - btree_index_checks(): amcheck on every btree index of the three tables;
# - kill_cluster(): SIGKILL of a node's postmaster and all its children.

package DmsTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use FindBin;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(walk_function_sql populate_sql table_texts sql_error
  consistency_violations job_state populated_states failure_rows populated_failures notifications
  user_indexes_sql btree_index_checks kill_cluster);

# A session-local function that walks one job through a list of steps:
# action names, 'par|level', 'add|db', 'remove|db', or an event with its
# message and database: 'failed|message|db'.  It calls only the public
# functions, so every step goes through the guard and writes history.
sub walk_function_sql
{
	return <<'EOSQL';
CREATE FUNCTION pg_temp.walk(job text, steps text[]) RETURNS text
LANGUAGE plpgsql AS $walk$
DECLARE
    jid bigint;
    s text;
    p text[];
    st text;
BEGIN
    SELECT j.id INTO STRICT jid FROM dms_job j WHERE j.name = job;
    FOREACH s IN ARRAY steps LOOP
        p := string_to_array(s, '|');
        CASE p[1]
            WHEN 'start' THEN st := dms_start(jid);
            WHEN 'stop' THEN st := dms_stop(jid);
            WHEN 'resume' THEN st := dms_resume(jid);
            WHEN 'restart' THEN st := dms_restart(jid);
            WHEN 'promote' THEN st := dms_promote(jid);
            WHEN 'delete' THEN st := dms_delete(jid);
            WHEN 'par' THEN st := dms_set_dump_parallelism(jid, p[2]::dms_dump_parallelism);
            WHEN 'add' THEN st := dms_add_database(jid, p[2]);
            WHEN 'remove' THEN st := dms_remove_database(jid, p[2]);
            ELSE st := dms_report(jid, p[1]::dms_event, p[2], p[3]);
        END CASE;
    END LOOP;
    RETURN st;
END
$walk$;
EOSQL
}

# Jobs in every legal (status, phase), made through the functions by an
# operator (alice), the engine (engine) and the superuser.  Expects the
# extension and the roles alice (operator) and engine (engine) to exist.
# Names and messages hold quotes, tabs, newlines, backslashes and non-ASCII
# letters, so that a dump has something to escape.
sub populate_sql
{
	my $sql = walk_function_sql();
	$sql .= <<'EOSQL';
SET ROLE alice;
SELECT dms_create_job('not started', 'continuous', ARRAY['sales', 'stock'], 'min');
SELECT dms_create_job('starting', 'continuous', ARRAY['sales']);
SELECT dms_create_job('running dump', 'continuous', ARRAY['sales', 'stock']);
SELECT dms_create_job('running cdc', 'continuous', ARRAY['sales', 'stock', 'hr']);
SELECT dms_create_job('promoting', 'continuous', NULL);
SELECT dms_create_job('gone early', 'continuous', ARRAY['sales']);
SELECT dms_create_job('errors dump', 'continuous', ARRAY['sales']);
SELECT dms_create_job('errors cdc', 'continuous', ARRAY['sales', 'stock']);
SELECT dms_create_job('completed continuous', 'continuous', ARRAY['sales']);
SELECT dms_create_job('completed one-time', 'one_time', ARRAY['archive']);
SELECT dms_create_job('failed dump', 'continuous', ARRAY['sales']);
SELECT dms_create_job('failed cdc dbs', 'continuous', ARRAY['sales', 'stock', 'hr']);
SELECT dms_create_job('gone failed', 'continuous', ARRAY['sales', 'stock']);
SELECT dms_create_job('failed both', 'one_time', ARRAY['sales', 'hr']);
SELECT dms_create_job('failed all dbs', 'continuous', NULL, 'max');
SELECT dms_create_job('restarting', 'continuous', ARRAY['sales']);
SELECT dms_create_job('stopped dump', 'one_time', ARRAY['sales']);
SELECT dms_create_job('stopped cdc', 'continuous', ARRAY['sales', 'stock']);
SELECT dms_create_job('gone stopped', 'continuous', ARRAY['sales']);
SELECT dms_create_job('resuming', 'continuous', ARRAY['sales']);
SELECT dms_create_job('stopping dump', 'continuous', ARRAY['sales']);
SELECT dms_create_job('stopping cdc', 'continuous', ARRAY['sales']);
SELECT dms_create_job('recovered', 'continuous', ARRAY['sales', 'hr']);
SELECT dms_create_job(E'naïve "quoted" \'job\' über', 'continuous', ARRAY['Zürich db', 'db "with" quotes']);
SELECT dms_create_job('gone not started', 'one_time', ARRAY['x']);

-- operator steps as alice, engine steps as engine
SELECT pg_temp.walk('not started', ARRAY['par|max', 'add|hr', 'remove|sales', 'add|sales']);
SELECT pg_temp.walk(name, ARRAY['start'])
  FROM dms_job WHERE name NOT IN ('not started', 'gone not started') ORDER BY id;

SET ROLE engine;
SELECT pg_temp.walk(name, ARRAY['started'])
  FROM dms_job
 WHERE name NOT IN ('not started', 'gone not started', 'starting', 'failed dump', 'restarting')
 ORDER BY id;
SELECT pg_temp.walk('failed dump', ARRAY['failed|cannot connect to the source']);
SELECT pg_temp.walk(name, ARRAY['dump_completed'])
  FROM dms_job
 WHERE name IN ('running cdc', 'promoting', 'errors cdc', 'completed continuous',
                'completed one-time', 'failed cdc dbs', 'gone failed', 'stopped cdc',
                'gone stopped', 'resuming', 'stopping cdc', 'recovered',
                E'naïve "quoted" \'job\' über')
 ORDER BY id;
SELECT pg_temp.walk('errors dump', ARRAY['error|disk slow on the destination']);
SELECT pg_temp.walk('errors cdc', ARRAY[E'error|replication lag\nabove 10 minutes', E'error|lag: 20 min\t(tab) \\ backslash']);
SELECT pg_temp.walk('failed cdc dbs', ARRAY['failed|sales: permission denied|sales', 'failed|stock: relation missing|stock', 'failed|sales: permission denied again|sales']);
SELECT pg_temp.walk('gone failed', ARRAY['failed|sales broke|sales']);
SELECT pg_temp.walk('failed both', ARRAY['failed|hr: out of space|hr', 'failed|the whole job is down']);
SELECT pg_temp.walk('failed all dbs', ARRAY['failed|db1: gone|db1']);
SELECT pg_temp.walk('restarting', ARRAY['failed|starting failed']);
SELECT pg_temp.walk('recovered', ARRAY['failed|hr: broken|hr']);
SELECT pg_temp.walk(E'naïve "quoted" \'job\' über', ARRAY[E'failed|Zürich: "quoted" \'error\'|Zürich db']);

SET ROLE alice;
SELECT pg_temp.walk('promoting', ARRAY['promote']);
SELECT pg_temp.walk('completed continuous', ARRAY['promote']);
SELECT pg_temp.walk('running cdc', ARRAY['par|min']);
SELECT pg_temp.walk('restarting', ARRAY['par|max', 'restart']);
SELECT pg_temp.walk(name, ARRAY['stop'])
  FROM dms_job
 WHERE name IN ('stopped dump', 'stopped cdc', 'gone stopped', 'resuming', 'stopping dump',
                'stopping cdc')
 ORDER BY id;
SELECT pg_temp.walk('recovered', ARRAY['remove|hr']);
SELECT pg_temp.walk('gone early', ARRAY['delete']);
SELECT pg_temp.walk('gone not started', ARRAY['delete']);

SET ROLE engine;
SELECT pg_temp.walk('completed continuous', ARRAY['promoted']);
SELECT pg_temp.walk(name, ARRAY['stopped'])
  FROM dms_job
 WHERE name IN ('stopped dump', 'stopped cdc', 'gone stopped', 'resuming')
 ORDER BY id;

SET ROLE alice;
SELECT pg_temp.walk('stopped cdc', ARRAY['par|min', 'add|hr']);
SELECT pg_temp.walk('resuming', ARRAY['resume']);
SELECT pg_temp.walk('gone stopped', ARRAY['delete']);
SELECT pg_temp.walk('gone failed', ARRAY['delete']);
RESET ROLE;
EOSQL
	return $sql;
}

# The (status, phase) each job of populate_sql() ends in, as
# "name|status|phase"; deleted jobs are absent.
sub populated_states
{
	return (
		'not started|not_started|',
		'starting|starting|',
		'running dump|running|full_dump',
		'running cdc|running|cdc',
		'promoting|running|promote_in_progress',
		'errors dump|running_with_errors|full_dump',
		'errors cdc|running_with_errors|cdc',
		'completed continuous|completed|',
		'completed one-time|completed|',
		'failed dump|failed|full_dump',
		'failed cdc dbs|failed|cdc',
		'failed both|failed|full_dump',
		'failed all dbs|failed|full_dump',
		'restarting|restarting|',
		'stopped dump|stopped|full_dump',
		'stopped cdc|stopped|cdc',
		'resuming|resuming|cdc',
		'stopping dump|stopping|full_dump',
		'stopping cdc|stopping|cdc',
		'recovered|running|cdc',
		qq(naïve "quoted" 'job' über|failed|cdc));
}

# The failure rows of a database, one line each (failure_rows), and those
# populate_sql leaves (populated_failures): deleted and recovered jobs have
# none.
sub failure_rows
{
	my ($node, $db) = @_;
	return $node->safe_psql(
		$db, q{
SELECT j.name, f.database_name, f.phase, f.error_message
  FROM dms_job_failure f JOIN dms_job j ON j.id = f.job_id
 ORDER BY j.id, f.database_name});
}

sub populated_failures
{
	return (
		'failed cdc dbs|sales|cdc|sales: permission denied again',
		'failed cdc dbs|stock|cdc|stock: relation missing',
		'failed both|hr|full_dump|hr: out of space',
		'failed all dbs|db1|full_dump|db1: gone',
		qq(naïve "quoted" 'job' über|Zürich db|cdc|Zürich: "quoted" 'error'));
}

# Every row of the three tables as text, one line per row, in a fixed
# order (the row's text form, so every column counts).
sub table_texts
{
	my ($node, $db) = @_;
	my %t;
	$t{dms_job} =
	  $node->safe_psql($db, 'SELECT j::text FROM dms_job j ORDER BY id');
	$t{dms_job_failure} = $node->safe_psql($db,
		'SELECT f::text FROM dms_job_failure f ORDER BY job_id, database_name');
	$t{dms_job_history} =
	  $node->safe_psql($db, 'SELECT h::text FROM dms_job_history h ORDER BY id');
	return \%t;
}

# Runs $sql, which must fail; returns (sqlstate, message) of its first
# error, or ('', stdout) if it succeeded.
sub sql_error
{
	my ($node, $db, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	$node->psql(
		$db, $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	if ($stderr =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):\s+([^\n]*)/)
	{
		return ($1, $2);
	}
	return ('', $stdout . $stderr);
}

# The payloads (decoded JSON) of the dms_lifecycle notifications psql
# printed in $output (a session that ran LISTEN dms_lifecycle).
sub notifications
{
	my ($output) = @_;
	my @n;
	while ($output =~
		/^Asynchronous notification "dms_lifecycle" with payload "(.*)" received from server process with PID \d+\.$/mg
	  )
	{
		push @n, JSON::PP->new->decode($1);
	}
	return @n;
}

# "status|phase" of a job, by name ('' if it does not exist).
sub job_state
{
	my ($node, $db, $name) = @_;
	$name =~ s/'/''/g;
	return $node->safe_psql($db,
		"SELECT status || '|' || coalesce(phase::text, '') FROM dms_job WHERE name = '$name'"
	);
}

# The invariants that must hold in any committed state of the tables,
# whatever happened (crash, restore, promotion): one line per violation,
# '' if none.
#  - every job has history and its (status, phase) is the to_status/to_phase
#    of its last history row, which is no delete;
#  - the history of every job starts with create (from NULL, to not_started)
#    and is a continuous chain: each row's from is the previous row's to;
#  - a job id whose last history row is a delete has no job row, and no
#    job's history continues after its delete;
#  - every failure row belongs to a failed job;
#  - error_message only in running_with_errors and failed, and always in
#    running_with_errors.
sub consistency_violations
{
	my ($node, $db) = @_;
	return $node->safe_psql(
		$db, q{
WITH h AS (
    SELECT h.*,
           lag(to_status) OVER w AS prev_to_status,
           lag(to_phase) OVER w AS prev_to_phase,
           row_number() OVER w AS n,
           count(*) OVER (PARTITION BY job_id) AS total
      FROM dms_job_history h
    WINDOW w AS (PARTITION BY job_id ORDER BY id)
)
SELECT 'job ' || j.id || ' is ' || j.status || '/' || coalesce(j.phase::text, '-')
       || ' but its last history row says '
       || coalesce(l.cause, 'nothing') || ' -> '
       || coalesce(l.to_status::text, '-') || '/' || coalesce(l.to_phase::text, '-')
  FROM dms_job j
  LEFT JOIN LATERAL (SELECT * FROM dms_job_history h
                      WHERE h.job_id = j.id ORDER BY h.id DESC LIMIT 1) l ON true
 WHERE l.id IS NULL OR l.cause = 'delete'
    OR l.to_status IS DISTINCT FROM j.status OR l.to_phase IS DISTINCT FROM j.phase
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' (' || cause || ') starts the job''s history but is no create from nothing to not_started'
  FROM h
 WHERE n = 1
   AND (cause <> 'create' OR from_status IS NOT NULL OR from_phase IS NOT NULL
        OR to_status IS DISTINCT FROM 'not_started' OR to_phase IS NOT NULL)
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' (' || cause || ') comes from '
       || coalesce(from_status::text, '-') || '/' || coalesce(from_phase::text, '-')
       || ' but the previous row went to '
       || coalesce(prev_to_status::text, '-') || '/' || coalesce(prev_to_phase::text, '-')
  FROM h
 WHERE n > 1
   AND (from_status IS DISTINCT FROM prev_to_status OR from_phase IS DISTINCT FROM prev_to_phase)
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' is a create after the first row'
  FROM h WHERE n > 1 AND cause = 'create'
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' is a delete but not the last row'
  FROM h WHERE cause = 'delete' AND n < total
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' is a delete but the job still exists'
  FROM h WHERE cause = 'delete' AND EXISTS (SELECT FROM dms_job j WHERE j.id = h.job_id)
UNION ALL
SELECT 'history row ' || id || ' of job ' || job_id || ' has no job and is not its delete'
  FROM h WHERE n = total AND cause <> 'delete'
   AND NOT EXISTS (SELECT FROM dms_job j WHERE j.id = h.job_id)
UNION ALL
SELECT 'failure row of job ' || f.job_id || ' database ' || f.database_name
       || ' but the job is ' || coalesce(j.status::text, 'missing') || '/' || coalesce(j.phase::text, '-')
  FROM dms_job_failure f LEFT JOIN dms_job j ON j.id = f.job_id
 WHERE j.status IS DISTINCT FROM 'failed'
UNION ALL
SELECT 'job ' || id || ' is ' || status || ' with error_message ' || coalesce(quote_literal(error_message), 'NULL')
  FROM dms_job
 WHERE (error_message IS NOT NULL AND status NOT IN ('running_with_errors', 'failed'))
    OR (error_message IS NULL AND status = 'running_with_errors')
ORDER BY 1});
}

# A user's indexes of every kind on the three tables (SPEC 11), which every
# write of the extension must keep: an expression, a partial one, a key
# every transition changes, and a partial unique one.  $how is '' or
# 'CONCURRENTLY'; each statement is separate, as CONCURRENTLY wants.
sub user_indexes_sql
{
	my ($how) = @_;
	$how //= '';
	return (
		"CREATE INDEX $how user_job_lower_name ON dms_job (lower(name))",
		"CREATE INDEX $how user_job_status_phase ON dms_job (status, phase) WHERE phase IS NOT NULL",
		"CREATE INDEX $how user_failure_message ON dms_job_failure (job_id, lower(error_message))",
		"CREATE INDEX $how user_history_cause ON dms_job_history (cause, job_id)",
		"CREATE UNIQUE INDEX $how user_history_one_create ON dms_job_history (job_id) WHERE cause = 'create'"
	);
}

# amcheck's bt_index_check(heapallindexed => true) on every btree index of
# the extension's three tables, found in the catalog (so an index added
# later is checked too), by the function of sql/amcheck.inc that the
# regression tests use.  Returns a list of [ "table.index", result ], in
# name order, where result is 'ok' or the SQLSTATE and message of the error.
# Needs the extension amcheck in $db.
sub btree_index_checks
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql($db,
		slurp_file("$FindBin::RealBin/../sql/amcheck.inc")
		  . "SELECT table_name || '.' || index_name, result FROM pg_temp.check_indexes();");
	return map { [ split /\|/, $_, 2 ] } split /\n/, $out;
}

# Is the process still running (a zombie is not)?
sub process_alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return defined $stat && $stat !~ /\)\s+Z\s/;
}

# kill_cluster($node): SIGKILL the postmaster and all its children at
# once, as a power cut would (the children are listed by their parent pid;
# the postmaster is stopped first so that it forks no new one meanwhile).
# Returns the number of children killed; $node->start brings it back
# through crash recovery.
sub kill_cluster
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	my ($pm) = split /\n/, slurp_file($pidfile);
	kill 'STOP', $pm or die "cannot stop postmaster $pm: $!";
	my @children;
	opendir(my $proc, '/proc') or die "no /proc: $!";
	foreach my $pid (grep { /^\d+$/ } readdir $proc)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @children, $pid if $1 == $pm;
	}
	closedir $proc;
	note "killing postmaster $pm and its children @children with SIGKILL";
	kill 'KILL', $pm, @children;
	my $deadline = time + 60;
	# the postmaster must be gone, reaped too: a new one refuses to start
	# while the pid in postmaster.pid answers kill 0
	while (kill(0, $pm) || grep { process_alive($_) } @children)
	{
		die "the killed postmaster or its children do not die" if time > $deadline;
		usleep(10_000);
	}
	# let the test framework forget the postmaster it knew
	$node->kill9;
	return scalar(@children);
}

1;
