# t/019_engine_output_settings.pl: the copy reads the source's rows as text
# that the destination reads back as the same values, whatever the
# source's settings say (ENGINE.md 3: "Copy every table's rows").
#
# The source's database "styles" prints dates the European way
# (DateStyle = 'SQL, DMY'), intervals in the SQL standard's style, and
# floats rounded (extra_float_digits = 0, as every source before 12
# does by default); the destination reads dates month first (its
# initdb's 'ISO, MDY').  A one-time job copies a table of such values:
# every value arrives unchanged, 2 January as 2 January (not 1 February),
# 0.1 + 0.2 with all its digits, a negative interval still negative.

use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use DmsEngine;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($source, $dest) = engine_nodes();
make_databases($source, 'styles');
$source->safe_psql(
	'styles', q{
ALTER DATABASE styles SET DateStyle = 'SQL, DMY';
ALTER DATABASE styles SET IntervalStyle = 'sql_standard';
ALTER DATABASE styles SET extra_float_digits = 0;
CREATE TABLE typed (id int PRIMARY KEY, d date, ts timestamp, f8 float8, f4 float4, iv interval);
INSERT INTO typed VALUES (1, '2020-01-02', '2020-01-02 03:04:05', 0.1::float8 + 0.2::float8,
                          1::float4 / 3::float4, interval '-1 day -2 hours');
});
like($source->safe_psql('styles', 'COPY typed TO STDOUT'), qr{^1\t02/01/2020\t},
	'the source prints 2 January 2020 as 02/01/2020 in its sessions');

my $check = q{SELECT d = date '2020-01-02', ts = timestamp '2020-01-02 03:04:05',
                     f8 = 0.1::float8 + 0.2::float8, f4 = 1::float4 / 3::float4,
                     iv = interval '-1 day -2 hours'
                FROM typed};
is($source->safe_psql('styles', $check), 't|t|t|t|t', 'the source holds the values checked');

my $job = create_job($dest, 'styles', 'one_time', ['styles'], 'min');
operator($dest, "SELECT dms_start($job)");
ok(wait_for_job($dest, $job, 'completed', undef, 120), 'a one-time job of "styles" is Completed');
is($dest->safe_psql('styles', $check), 't|t|t|t|t',
	'every value arrived unchanged: the date, the timestamp, both floats, the interval');

is(join("\n", wait_for_nothing_left($source, $dest)), '', 'nothing is left on either side');

$source->stop;
$dest->stop;
done_testing();
