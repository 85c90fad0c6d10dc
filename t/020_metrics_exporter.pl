# t/020_metrics_exporter.pl: Prometheus's postgres_exporter (Debian's
# prometheus-postgres-exporter, 0.11.1) reads dms_metrics through the
# project's queries file, monitoring/postgres_exporter/dms_lifecycle.yaml,
# and serves every sample with its labels and value.
#
# The destination of an engine migration (DmsEngine) holds an engine-driven
# job of a small pgbench database, streaming in CDC, and four jobs that no
# engine drives, brought into Not started, Failed (two failed databases),
# Stopped (CDC) and Completed.  The exporter connects over the Unix socket
# as dms_exporter, a role with LOGIN and no privilege but SELECT on
# dms_metrics (the least an exporter needs: it reads no job, error or
# history), with the exporter's own metrics of the server turned off
# (--disable-default-metrics, --disable-settings-metrics,
# --no-collector.database, --no-collector.bgwriter), so that it needs
# nothing else.
#   1. Before the GRANT, a scrape reports the error and no dms_ series.
#   2. After it, the file is loaded, the scrape has no error, and the
#      dms_ series are exactly the samples of dms_metrics, read just before
#      and just after the scrape (the same both times): no series missing,
#      extra or with another value; the ages lie between those read before
#      and after.  In particular dms_jobs{status="running",phase="cdc"} is 1
#      and every other (status, phase) has its 0, the failed job counts two
#      failed databases, the ages are above 0, and the engine-driven job's
#      database shows the bytes, tables and rows copied, the bytes to copy
#      and the lag that dms_job_progress shows.  Each metric has its HELP
#      and TYPE gauge.
# The exporter is stopped at the end.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use DmsEngine;

my $exporter_bin = '/usr/bin/prometheus-postgres-exporter';
my $queries = "$FindBin::RealBin/../monitoring/postgres_exporter/dms_lifecycle.yaml";
ok(-x $exporter_bin, "$exporter_bin is installed (scripts/test installs prometheus-postgres-exporter)")
  or BAIL_OUT("no $exporter_bin");
ok(-r $queries, 'the queries file is there');

# ---------------------------------------------------------------------
# The jobs
# ---------------------------------------------------------------------

my ($source, $dest) = engine_nodes();
make_databases($source, 'shop');
pgbench_init($source, 'shop', 1);

my $job = create_job($dest, 'shop', 'continuous', ['shop']);
is(operator($dest, "SELECT dms_start($job)"), 'starting', 'alice starts the engine-driven job of shop');
ok(wait_for_job($dest, $job, 'running', 'cdc'), '... which reaches Running (CDC)');
ok( $dest->poll_query_until(
		'postgres',
		"SELECT lag_bytes IS NOT NULL AND lag IS NOT NULL FROM dms_job_progress WHERE job_id = $job"),
	'... and dms_job_progress shows its lag, in bytes and in seconds');

# Jobs that no engine drives: the superuser reports their events.
$dest->safe_psql(
	'postgres', q{
SELECT dms_create_job('waiting');
SELECT dms_create_job('broken', 'continuous', ARRAY['sales', 'stock', 'staff']);
SELECT dms_start(id), dms_report(id, 'started'),
       dms_report(id, 'failed', 'sales: duplicate key', 'sales'),
       dms_report(id, 'failed', 'stock: permission denied', 'stock')
  FROM dms_job WHERE name = 'broken';
SELECT dms_create_job('paused');
SELECT dms_start(id), dms_report(id, 'started'), dms_report(id, 'dump_completed'),
       dms_stop(id), dms_report(id, 'stopped')
  FROM dms_job WHERE name = 'paused';
SELECT dms_create_job('finished', 'one_time');
SELECT dms_start(id), dms_report(id, 'started'), dms_report(id, 'dump_completed')
  FROM dms_job WHERE name = 'finished';
CREATE ROLE dms_exporter LOGIN;
});
is( $dest->safe_psql(
		'postgres',
		q{SELECT string_agg(name || ' ' || status || coalesce('/' || phase, ''), ', ' ORDER BY id) FROM dms_job}),
	'shop running/cdc, waiting not_started, broken failed/full_dump, paused stopped/cdc, finished completed',
	'five jobs in known statuses');

# ---------------------------------------------------------------------
# The exporter
# ---------------------------------------------------------------------

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $url = "http://127.0.0.1:$port/metrics";
my ($out, $err) = ('', '');
my $exporter;
{
	# The exporter's driver (Go's lib/pq) panics on some libpq variables
	# (PGSYSCONFDIR, which pg_virtualenv sets, PGSERVICE, ...): the DSN says
	# everything, and the exporter gets no PG* variable.
	local %ENV = %ENV;
	delete $ENV{$_} foreach grep { /^PG/ } keys %ENV;
	$ENV{DATA_SOURCE_NAME} =
	  'host=' . $dest->host . ' port=' . $dest->port . ' user=dms_exporter dbname=postgres sslmode=disable';
	$exporter = IPC::Run::start(
		[
			$exporter_bin, "--web.listen-address=127.0.0.1:$port",
			"--extend.query-path=$queries", '--disable-default-metrics',
			'--disable-settings-metrics', '--no-collector.database',
			'--no-collector.bgwriter'
		],
		'<', \undef, '>', \$out, '2>', \$err);
}
END { $exporter->kill_kill if $exporter && $exporter->pumpable; }

my $http = HTTP::Tiny->new(timeout => 30);

# GET $url: the body; a failed test (with the exporter's log) and '' if it
# does not answer 200.
sub scrape
{
	my $r = $http->get($url);
	$exporter->pump_nb if $exporter->pumpable;
	return $r->{content} if $r->{success};
	fail("GET $url answers");
	diag("$r->{status} $r->{reason}\n$r->{content}\nthe exporter's log:\n$err");
	return '';
}

my $deadline = time + 30;
until ($http->get("http://127.0.0.1:$port/")->{success})
{
	$exporter->pump_nb if $exporter->pumpable;
	if (time > $deadline || !$exporter->pumpable)
	{
		fail("the exporter listens on 127.0.0.1:$port");
		diag("it did not answer within 30 s, or ended:\n$err");
		done_testing();
		exit;
	}
	usleep(100_000);
}
pass("the exporter listens on 127.0.0.1:$port");

# The exposition format: { series => { 'name{label="value",...}' => value,
# without the exporter's label server }, type => { name => type }, help => {
# name => text } }.
sub parse_metrics
{
	my ($text) = @_;
	my %m = (series => {}, type => {}, help => {});
	foreach my $line (split /\n/, $text)
	{
		if ($line =~ /^# (TYPE|HELP) (\S+) (.*)$/)
		{
			$m{ lc $1 }->{$2} = $3;
			next;
		}
		next if $line =~ /^#/ || $line !~ /\S/;
		$line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
		  or die "a line the exposition format does not allow: $line";
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l;
		while ($labels =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gc)
		{
			my ($k, $v) = ($1, $2);
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$l{$k} = $v unless $k eq 'server';
		}
		die "labels the exposition format does not allow: $line" unless (pos($labels) // 0) == length $labels;
		$m{series}->{ series_key($name, %l) } = $value;
	}
	return \%m;
}

# name{a="1",b="x"}, labels in order.
sub series_key
{
	my ($name, %l) = @_;
	return $name unless %l;
	return "$name\{" . join(',', map { "$_=\"$l{$_}\"" } sort keys %l) . '}';
}

# A series' value equals a number (the exposition format writes
# 15958747 as 1.5958747e+07); a missing series is not 0.
sub value_is
{
	my ($got, $want, $name) = @_;
	my $ok = ok(defined $got && defined $want && $got == $want, $name);
	diag('got ' . ($got // 'no series') . ', expected ' . ($want // 'undef')) unless $ok;
	return $ok;
}

# The series of a scrape whose name starts with dms_, without the ages.
sub dms_series
{
	my ($m) = @_;
	return { map { $_ => $m->{series}->{$_} }
		  grep { /^dms_/ && !/^dms_jobs_oldest_status_age_seconds\b/ } keys %{ $m->{series} } };
}

# The samples of dms_metrics as the series the queries file makes of them:
# ({ key => value } without the ages, { key => age } of the ages).
sub view_series
{
	my $rows = decode_json(
		$dest->safe_psql(
			'postgres', q{
SELECT coalesce(json_agg(json_build_object('metric', metric, 'job_id', job_id::text, 'job_name', job_name,
                                           'database', database_name, 'status', status, 'phase', phase,
                                           'value', value)), '[]')
  FROM dms_metrics}));
	my (%series, %ages);
	foreach my $r (@$rows)
	{
		my %l = $r->{metric} =~ /^dms_jobs/
		  ? (status => $r->{status}, phase => $r->{phase} // '')
		  : map { defined $r->{$_} ? ($_ => $r->{$_}) : () } qw(job_id job_name database);
		my $key = series_key($r->{metric}, %l);
		if ($r->{metric} eq 'dms_jobs_oldest_status_age_seconds')
		{
			$ages{$key} = $r->{value};
		}
		else
		{
			$series{$key} = $r->{value};
		}
	}
	return (\%series, \%ages);
}

# ---------------------------------------------------------------------
# 1. Without the GRANT
# ---------------------------------------------------------------------

my $m = parse_metrics(scrape());
value_is($m->{series}->{pg_exporter_last_scrape_error},
	1, 'without SELECT on dms_metrics, the scrape reports an error');
is(join(' ', sort keys %{ dms_series($m) }), '', '... and no dms_ series');
$deadline = time + 10;
while ($err !~ /permission denied for view dms_metrics/ && time < $deadline)
{
	$exporter->pump_nb;
	usleep(100_000);
}
like($err, qr/permission denied for view dms_metrics/, "... the exporter's log says why");

# ---------------------------------------------------------------------
# 2. With it
# ---------------------------------------------------------------------

$dest->safe_psql('postgres', 'GRANT SELECT ON dms_metrics TO dms_exporter');

# A scrape between two reads of dms_metrics that agree (the engine rewrites
# dms_job_progress every naptime; 20 tries).
# The engine-driven job's row of dms_job_progress, as JSON.
sub progress_json
{
	return $dest->safe_psql(
		'postgres', qq{
SELECT row_to_json(p)
  FROM (SELECT bytes_copied, tables_copied, rows_copied, bytes_total, tables_total, lag_bytes,
               extract(epoch FROM lag) AS lag_seconds
          FROM dms_job_progress WHERE job_id = $job) p});
}

my $canonical = JSON::PP->new->canonical;
my ($before, $ages_before, $after, $ages_after, $progress_before, $progress_after, $raw, $tries);
foreach my $try (1 .. 20)
{
	$tries = $try;
	$progress_before = progress_json();
	($before, $ages_before) = view_series();
	$raw = scrape();
	$m = parse_metrics($raw);
	($after, $ages_after) = view_series();
	$progress_after = progress_json();
	last if $canonical->encode($before) eq $canonical->encode($after) && $progress_before eq $progress_after;
	usleep(100_000);
}
note("the scrape's dms_ series (try $tries):\n" . join("\n", grep { /^dms_/ } split /\n/, $raw));
is_deeply($after, $before, 'dms_metrics read the same just before and just after the scrape');
is($progress_after, $progress_before, '... and so did dms_job_progress');

value_is($m->{series}->{pg_exporter_last_scrape_error}, 0, 'with SELECT on dms_metrics, the scrape has no error')
  or diag($err);
my ($load) = grep { /^pg_exporter_user_queries_load_error\{/ } keys %{ $m->{series} };
ok(defined $load && $load =~ /filename="\Q$queries\E"/ && $m->{series}->{$load} == 0,
	'... the queries file was loaded');
value_is($m->{series}->{pg_up}, 1, '... pg_up is 1');

# Every sample is a series with its value, and there is no other.
my $scraped = dms_series($m);
my @missing = grep { !exists $scraped->{$_} } sort keys %$before;
my @extra = grep { !exists $before->{$_} } sort keys %$scraped;
my @wrong = map { "$_: $scraped->{$_}, not $before->{$_}" }
  grep { exists $scraped->{$_} && $scraped->{$_} != $before->{$_} } sort keys %$before;
is(join("\n", @missing), '', 'no sample of dms_metrics is missing from the scrape');
is(join("\n", @extra), '', 'no series is extra');
is(join("\n", @wrong), '', 'every series has the value of its sample (' . scalar(keys %$before) . ' series)');

# The ages: one series per (status, phase) with jobs, each between the ages
# read before and after the scrape.
my %scraped_ages = map { $_ => $m->{series}->{$_} }
  grep { /^dms_jobs_oldest_status_age_seconds\{/ } keys %{ $m->{series} };
is(join(' ', sort keys %scraped_ages), join(' ', sort keys %$ages_before),
	'a dms_jobs_oldest_status_age_seconds series for each (status, phase) with jobs: '
	  . scalar(keys %$ages_before));
my @out_of_range = map { "$_: $scraped_ages{$_} not in [$ages_before->{$_}, $ages_after->{$_}]" }
  grep {
	!defined $ages_before->{$_}
	  || $scraped_ages{$_} < $ages_before->{$_}
	  || $scraped_ages{$_} > $ages_after->{$_}
  } sort keys %scraped_ages;
is(join("\n", @out_of_range), '', '... each between the ages read before and after the scrape');

# What a dashboard asks, one by one.
my $s = $m->{series};
value_is($s->{'dms_jobs{phase="cdc",status="running"}'}, 1, 'dms_jobs{status="running",phase="cdc"} 1');
value_is($s->{'dms_jobs{phase="full_dump",status="failed"}'}, 1, 'dms_jobs{status="failed",phase="full_dump"} 1');
value_is($s->{'dms_jobs{phase="",status="not_started"}'}, 1, 'dms_jobs{status="not_started",phase=""} 1');
value_is($s->{'dms_jobs{phase="",status="starting"}'}, 0, 'dms_jobs{status="starting",phase=""} 0: a status without jobs counts 0');
is(scalar(grep { /^dms_jobs\{/ } keys %$s), 16, 'dms_jobs has a series for each of the 16 (status, phase)');
my $broken = $dest->safe_psql('postgres', q{SELECT id FROM dms_job WHERE name = 'broken'});
value_is($s->{"dms_job_failed_databases{job_id=\"$broken\",job_name=\"broken\"}"},
	2, 'dms_job_failed_databases of the failed job: 2');
value_is($s->{"dms_job_failed_databases{job_id=\"$job\",job_name=\"shop\"}"},
	0, 'dms_job_failed_databases of the job in CDC: 0');
cmp_ok($s->{'dms_jobs_oldest_status_age_seconds{phase="cdc",status="running"}'} // 0,
	'>', 0, 'dms_jobs_oldest_status_age_seconds{status="running",phase="cdc"} is above 0');

my $progress = decode_json($progress_before);
my $labels = "job_id=\"$job\",job_name=\"shop\"";
value_is($s->{"dms_database_copied_bytes{database=\"shop\",$labels}"},
	$progress->{bytes_copied}, "dms_database_copied_bytes of shop: $progress->{bytes_copied}, as dms_job_progress says");
cmp_ok($progress->{bytes_copied}, '>', 1_000_000, '... more than a megabyte');
value_is($s->{"dms_database_copied_tables{database=\"shop\",$labels}"},
	4, 'dms_database_copied_tables of shop: the 4 tables of pgbench');
value_is($s->{"dms_database_copied_rows{database=\"shop\",$labels}"},
	$progress->{rows_copied}, "dms_database_copied_rows of shop: $progress->{rows_copied}");
value_is($s->{"dms_database_to_copy_bytes{database=\"shop\",$labels}"},
	$progress->{bytes_total}, "dms_database_to_copy_bytes of shop: $progress->{bytes_total}");
value_is($s->{"dms_database_to_copy_tables{database=\"shop\",$labels}"},
	$progress->{tables_total}, 'dms_database_to_copy_tables of shop: 4');
value_is($s->{"dms_database_lag_bytes{database=\"shop\",$labels}"},
	$progress->{lag_bytes}, "dms_database_lag_bytes of shop: $progress->{lag_bytes}, as dms_job_progress says");
value_is($s->{"dms_database_lag_seconds{database=\"shop\",$labels}"},
	$progress->{lag_seconds}, "dms_database_lag_seconds of shop: $progress->{lag_seconds}");

# HELP and TYPE of each metric.
my @metrics = qw(dms_jobs dms_jobs_oldest_status_age_seconds dms_job_failed_databases
  dms_database_copied_bytes dms_database_copied_tables dms_database_copied_rows
  dms_database_to_copy_bytes dms_database_to_copy_tables dms_database_lag_bytes
  dms_database_lag_seconds);
is(join(' ', map { $m->{type}->{$_} // 'none' } @metrics),
	join(' ', ('gauge') x @metrics), 'each of the ' . scalar(@metrics) . ' metrics is a gauge');
is(join(' ', grep { ($m->{help}->{$_} // '') !~ /\w/ } @metrics), '', '... with its HELP');
is(join(' ', sort grep { /^dms_/ } keys %{ $m->{type} }), join(' ', sort @metrics),
	'... and there is no other dms_ metric');

# ---------------------------------------------------------------------
# The end
# ---------------------------------------------------------------------

$exporter->signal('TERM');
$deadline = time + 10;
while ($exporter->pumpable && time < $deadline)
{
	$exporter->pump_nb;
	usleep(50_000);
}
$exporter->kill_kill if $exporter->pumpable;
$exporter->finish;
ok(!$http->get($url)->{success}, 'the exporter is stopped');

done_testing();
