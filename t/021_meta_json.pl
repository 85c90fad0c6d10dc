# t/021_meta_json.pl: META.json, the distribution's metadata for PGXN, is
# valid under the PGXN Meta Spec 1.0 (https://pgxn.org/spec/) and agrees
# with the project.
#
# Debian packages no PGXN validator, so meta_errors() below checks the
# spec's rules itself: the required keys (name, version, abstract,
# maintainer, license, provides, meta-spec) and the type of every key the
# spec defines (terms, semantic versions, version ranges, paths, URIs, the
# license names it knows, release_status, tags, prereqs' phases and
# relationships, resources, no_index); no other key at the top level or in
# an object the spec closes, but custom x_ keys.  Then the project: the
# name is the extension's, the version is the control file's
# default_version written as a semantic version (1.1 is 1.1.0), so is the
# extension's in provides, and the files provides names exist.
#
# To show that the check can fail, it is run on copies of META.json broken
# one way each, and must find that fault; and on copies changed in ways the
# spec allows, where it must find none.

use strict;
use warnings FATAL => 'all';

use B;
use FindBin;
use JSON::PP;
use Test::More;

my $tree = "$FindBin::RealBin/..";

# The control file's default_version, and as a semantic version (1.1 is 1.1.0).
my ($control_version) = slurp("$tree/dms_lifecycle.control") =~ /^default_version\s*=\s*'([^']+)'/m;
my $want_version = join('.', (split(/\./, $control_version), 0, 0)[0 .. 2]);

# ---------------------------------------------------------------------
# The spec's types
# ---------------------------------------------------------------------

my $number = qr/(?:0|[1-9][0-9]*)/;
my $pre_id = qr/(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)/;
my $build_id = qr/[0-9A-Za-z-]+/;
my $semver = qr/$number\.$number\.$number(?:-$pre_id(?:\.$pre_id)*)?(?:\+$build_id(?:\.$build_id)*)?/;

# The license names the spec knows.
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd
  freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
  mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
  unrestricted unknown);

# A JSON string (not a number, boolean, null, array or object).
sub is_string
{
	my ($v) = @_;
	return 0 if !defined $v || ref $v;
	my $flags = B::svref_2object(\$v)->FLAGS;
	return ($flags & B::SVf_POK) && !($flags & (B::SVf_IOK | B::SVf_NOK)) ? 1 : 0;
}

sub is_object { return ref $_[0] eq 'HASH' }
sub is_array { return ref $_[0] eq 'ARRAY' }
sub is_custom_key { return $_[0] =~ /^[xX]_./ }

# Each check returns the faults it finds, as "where: what".
sub check_term
{
	my ($where, $v) = @_;
	return "$where: a term must be a string of at least 2 characters without slash, backslash, space or control character"
	  unless is_string($v) && length $v >= 2 && $v !~ m{[/\\\s[:cntrl:]]};
	return;
}

sub check_nonempty_string
{
	my ($where, $v) = @_;
	return "$where: must be a non-empty string" unless is_string($v) && length $v;
	return;
}

sub check_version
{
	my ($where, $v) = @_;
	return "$where: must be a semantic version (major.minor.patch), not "
	  . (defined $v && !ref $v ? "\"$v\"" : 'that')
	  unless is_string($v) && $v =~ /^$semver$/;
	return;
}

sub check_version_range
{
	my ($where, $v) = @_;
	# the number 0: any version
	return if defined $v && !ref $v && !is_string($v) && $v == 0;
	return
	  if is_string($v)
	  && ($v eq '0' || !grep { !/^(?:(?:[=!]=|[<>]=?)\s*)?$semver$/ } split(/,\s*/, $v, -1));
	return "$where: must be a version range (0, or semantic versions with ==, !=, <, <=, >, >=, joined by commas)";
}

sub check_path
{
	my ($where, $v) = @_;
	return "$where: must be a relative path in Unix form"
	  unless is_string($v) && length $v >= 2 && $v !~ m{^/} && $v !~ /\\/ && $v !~ m{(?:^|/)\.\.(?:/|$)};
	return;
}

sub check_uri
{
	my ($where, $v) = @_;
	return "$where: must be a URI" unless is_string($v) && $v =~ /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
	return;
}

# An object's keys: the required ones are there, the others are allowed
# (or custom x_ keys).
sub check_keys
{
	my ($where, $v, $required, $allowed) = @_;
	return "$where: must be an object" unless is_object($v);
	my %ok = map { $_ => 1 } @$required, @$allowed;
	return (
		(map { "$where: the required key \"$_\" is missing" } grep { !exists $v->{$_} } @$required),
		(map { "$where: unknown key \"$_\"" } grep { !$ok{$_} && !is_custom_key($_) } sort keys %$v));
}

# A list of unique items, each checked by $check; with $single, also one
# item alone.
sub check_list
{
	my ($where, $v, $check, $single) = @_;
	return $check->($where, $v) if $single && !is_array($v);
	return "$where: must be an array" . ($single ? ' or a single value' : '') unless is_array($v);
	return "$where: must not be empty" unless @$v;
	my %seen;
	return (
		(map { $check->("$where\[$_\]", $v->[$_]) } 0 .. $#$v),
		(map { "$where: \"$_\" is there twice" } grep { $seen{$_}++ == 1 } grep { !ref } @$v));
}

sub check_maintainer
{
	my ($where, $v) = @_;
	return check_list($where, $v, \&check_nonempty_string, 1);
}

sub check_license
{
	my ($where, $v) = @_;
	my $known = sub {
		my ($w, $l) = @_;
		return "$w: \"" . ($l // 'null') . '" is no license the spec knows ('
		  . join(', ', sort keys %licenses) . '), nor an object of names and URIs'
		  unless is_string($l) && $licenses{$l};
		return;
	};
	if (is_object($v))
	{
		return "$where: an object of licenses must not be empty" unless %$v;
		return map { check_uri("$where.$_", $v->{$_}) } sort keys %$v;
	}
	return check_list($where, $v, $known, 1);
}

sub check_provides
{
	my ($where, $v) = @_;
	return "$where: must be an object" unless is_object($v);
	return "$where: must name at least one extension" unless %$v;
	my @faults;
	foreach my $ext (sort keys %$v)
	{
		my $e = $v->{$ext};
		my $w = "$where.$ext";
		push @faults, check_term("$where (key \"$ext\")", $ext);
		my @k = check_keys($w, $e, [qw(file version)], [qw(abstract docfile docpath)]);
		push @faults, @k;
		next unless is_object($e);
		push @faults, check_path("$w.file", $e->{file}) if exists $e->{file};
		push @faults, check_version("$w.version", $e->{version}) if exists $e->{version};
		push @faults, check_nonempty_string("$w.abstract", $e->{abstract}) if exists $e->{abstract};
		push @faults, check_path("$w.docfile", $e->{docfile}) if exists $e->{docfile};
		push @faults, check_nonempty_string("$w.docpath", $e->{docpath}) if exists $e->{docpath};
	}
	return @faults;
}

sub check_meta_spec
{
	my ($where, $v) = @_;
	my @faults = check_keys($where, $v, ['version'], ['url']);
	return @faults unless is_object($v);
	push @faults, "$where.version: must be 1.0.x, the version of the spec this file follows"
	  if exists $v->{version} && !(is_string($v->{version}) && $v->{version} =~ /^1\.0\.[0-9]+$/);
	push @faults, "$where.url: must be https://pgxn.org/meta/spec.txt"
	  if exists $v->{url}
	  && !(is_string($v->{url}) && $v->{url} =~ m{^https?://pgxn\.org/meta/spec\.txt$});
	return @faults;
}

sub check_tags
{
	my ($where, $v) = @_;
	my $tag = sub {
		my ($w, $t) = @_;
		return "$w: a tag must be a string of 2 to 255 characters without slash, backslash or control character"
		  unless is_string($t) && length $t >= 2 && length $t <= 255 && $t !~ m{[/\\[:cntrl:]]};
		return;
	};
	return check_list($where, $v, $tag);
}

sub check_prereqs
{
	my ($where, $v) = @_;
	my @phases = qw(configure build test runtime develop);
	my @relationships = qw(requires recommends suggests conflicts);
	my @faults = check_keys($where, $v, [], \@phases);
	return @faults unless is_object($v);
	push @faults, "$where: must name at least one phase (" . join(', ', @phases) . ')'
	  unless grep { exists $v->{$_} } @phases;
	foreach my $phase (grep { exists $v->{$_} } @phases)
	{
		my $p = $v->{$phase};
		push @faults, check_keys("$where.$phase", $p, [], \@relationships);
		next unless is_object($p);
		push @faults, "$where.$phase: must name at least one relationship (" . join(', ', @relationships) . ')'
		  unless grep { exists $p->{$_} } @relationships;
		foreach my $rel (grep { exists $p->{$_} } @relationships)
		{
			my $r = $p->{$rel};
			my $w = "$where.$phase.$rel";
			if (!is_object($r) || !%$r)
			{
				push @faults, "$w: must be a non-empty object of names and version ranges";
				next;
			}
			push @faults, map { (check_term("$w (key \"$_\")", $_), check_version_range("$w.$_", $r->{$_})) }
			  sort keys %$r;
		}
	}
	return @faults;
}

sub check_resources
{
	my ($where, $v) = @_;
	my @faults = check_keys($where, $v, [], [qw(homepage bugtracker repository)]);
	return @faults unless is_object($v);
	push @faults, "$where: must have a homepage, bugtracker or repository"
	  unless grep { exists $v->{$_} } qw(homepage bugtracker repository);
	push @faults, check_uri("$where.homepage", $v->{homepage}) if exists $v->{homepage};
	if (exists $v->{bugtracker})
	{
		my $b = $v->{bugtracker};
		push @faults, check_keys("$where.bugtracker", $b, [], [qw(web mailto)]);
		if (is_object($b))
		{
			push @faults, "$where.bugtracker: must have web or mailto"
			  unless exists $b->{web} || exists $b->{mailto};
			push @faults, check_uri("$where.bugtracker.web", $b->{web}) if exists $b->{web};
			push @faults, "$where.bugtracker.mailto: must be an email address"
			  if exists $b->{mailto} && !(is_string($b->{mailto}) && $b->{mailto} =~ /^[^@\s]+@[^@\s]+$/);
		}
	}
	if (exists $v->{repository})
	{
		my $r = $v->{repository};
		push @faults, check_keys("$where.repository", $r, [], [qw(url web type)]);
		if (is_object($r))
		{
			push @faults, "$where.repository: must have url and type, or web"
			  unless (exists $r->{url} && exists $r->{type}) || exists $r->{web};
			push @faults, check_uri("$where.repository.$_", $r->{$_}) foreach grep { exists $r->{$_} } qw(url web);
			push @faults, "$where.repository.type: must be a lowercase word (git, hg, ...)"
			  if exists $r->{type} && !(is_string($r->{type}) && $r->{type} =~ /^[a-z]+$/);
		}
	}
	return @faults;
}

sub check_no_index
{
	my ($where, $v) = @_;
	my @faults = check_keys($where, $v, [], [qw(file directory)]);
	return @faults unless is_object($v);
	push @faults, "$where: must have file or directory" unless exists $v->{file} || exists $v->{directory};
	push @faults, check_list("$where.$_", $v->{$_}, \&check_path, 1) foreach grep { exists $v->{$_} } qw(file directory);
	return @faults;
}

# meta_errors($text): every fault of a META.json text, against the spec and
# the project; empty if none.
sub meta_errors
{
	my ($text) = @_;
	my $meta = eval { JSON::PP->new->utf8->decode($text) };
	return "not JSON: $@" unless defined $meta;
	return 'the top level must be an object' unless is_object($meta);

	my %checks = (
		name => \&check_term,
		version => \&check_version,
		abstract => \&check_nonempty_string,
		maintainer => \&check_maintainer,
		license => \&check_license,
		provides => \&check_provides,
		'meta-spec' => \&check_meta_spec,
		description => \&check_nonempty_string,
		generated_by => \&check_nonempty_string,
		tags => \&check_tags,
		no_index => \&check_no_index,
		prereqs => \&check_prereqs,
		release_status => sub {
			my ($w, $v) = @_;
			return "$w: must be stable, testing or unstable"
			  unless is_string($v) && $v =~ /^(?:stable|testing|unstable)$/;
			return;
		},
		resources => \&check_resources);
	my @faults = check_keys('META.json', $meta,
		[qw(name version abstract maintainer license provides meta-spec)],
		[qw(description generated_by tags no_index prereqs release_status resources)]);
	push @faults, $checks{$_}->($_, $meta->{$_}) foreach grep { exists $meta->{$_} } sort keys %checks;

	# The project.
	my $want = $want_version;
	push @faults, 'name: must be dms_lifecycle, the extension\'s name'
	  unless ($meta->{name} // '') eq 'dms_lifecycle';
	push @faults, "version: must be $want, the control file's default_version $control_version"
	  unless ($meta->{version} // '') eq $want;
	my $ext = is_object($meta->{provides}) ? $meta->{provides}->{dms_lifecycle} : undef;
	if (!is_object($ext))
	{
		push @faults, 'provides: must describe the extension dms_lifecycle';
	}
	else
	{
		push @faults, "provides.dms_lifecycle.version: must be $want, the control file's default_version"
		  unless ($ext->{version} // '') eq $want;
		foreach my $key (grep { exists $ext->{$_} } qw(file docfile))
		{
			push @faults, "provides.dms_lifecycle.$key: $ext->{$key} does not exist"
			  unless is_string($ext->{$key}) && -f "$tree/$ext->{$key}";
		}
	}
	return @faults;
}

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
	local $/;
	return scalar <$fh>;
}

# ---------------------------------------------------------------------
# META.json
# ---------------------------------------------------------------------

my $text = slurp("$tree/META.json");
is(join("\n", meta_errors($text)), '', 'META.json is valid under PGXN Meta Spec 1.0 and agrees with the project');

my $meta = decode_json($text);
is($meta->{version}, $want_version, "its version is the control file's default_version $control_version as $want_version");
is($meta->{license}, 'postgresql', 'its license is the PostgreSQL License');
is($meta->{prereqs}{runtime}{requires}{PostgreSQL}, '15.0.0', 'it requires PostgreSQL 15');
ok(!exists $meta->{resources}, 'it names no web address: the project has none yet');

# ---------------------------------------------------------------------
# The check fails on broken copies, and passes on allowed variations
# ---------------------------------------------------------------------

# A copy of META.json changed by $change (a sub on the decoded copy).
sub changed
{
	my ($change) = @_;
	my $copy = decode_json($text);
	$change->($copy);
	return JSON::PP->new->canonical->encode($copy);
}

my @broken = (
	[ 'not JSON (a trailing comma)', do { (my $t = $text) =~ s/\}\s*$/,}/; $t }, qr/^not JSON/ ],
	[ 'no abstract', changed(sub { delete $_[0]{abstract} }), qr/the required key "abstract" is missing/ ],
	[ 'no meta-spec', changed(sub { delete $_[0]{'meta-spec'} }), qr/the required key "meta-spec" is missing/ ],
	[ 'version 1.1 (not semantic)', changed(sub { $_[0]{version} = '1.1' }), qr/^version: must be a semantic version/ ],
	[ 'version a number', changed(sub { $_[0]{version} = 1.1 }), qr/^version: must be a semantic version/ ],
	[
		'version 1.0.0 (not the control file\'s)', changed(sub { $_[0]{version} = '1.0.0' }),
		qr/^version: must be 1\.1\.0, the control file's default_version 1\.1$/
	],
	[ 'license "PostgreSQL License"', changed(sub { $_[0]{license} = 'PostgreSQL License' }), qr/no license the spec knows/ ],
	[ 'license an object with no URI', changed(sub { $_[0]{license} = { PostgreSQL => 'the usual' } }), qr/^license\.PostgreSQL: must be a URI/ ],
	[ 'maintainer an empty list', changed(sub { $_[0]{maintainer} = [] }), qr/^maintainer: must not be empty/ ],
	[ 'name with a space', changed(sub { $_[0]{name} = 'dms lifecycle' }), qr/^name: a term must be/ ],
	[ 'provides no extension', changed(sub { $_[0]{provides} = {} }), qr/^provides: must name at least one extension/ ],
	[ 'provides a file that is not there', changed(sub { $_[0]{provides}{dms_lifecycle}{file} = 'sql/dms_lifecycle.sql' }), qr/file: sql\/dms_lifecycle\.sql does not exist/ ],
	[ 'provides an absolute path', changed(sub { $_[0]{provides}{dms_lifecycle}{file} = '/usr/share/x.sql' }), qr/file: must be a relative path/ ],
	[ 'provides without a version', changed(sub { delete $_[0]{provides}{dms_lifecycle}{version} }), qr/provides\.dms_lifecycle: the required key "version" is missing/ ],
	[ 'provides an unknown key', changed(sub { $_[0]{provides}{dms_lifecycle}{control} = 'dms_lifecycle.control' }), qr/provides\.dms_lifecycle: unknown key "control"/ ],
	[ 'meta-spec 2.0.0', changed(sub { $_[0]{'meta-spec'}{version} = '2.0.0' }), qr/^meta-spec\.version: must be 1\.0\.x/ ],
	[ 'an unknown top-level key', changed(sub { $_[0]{homepage} = 'https://example.org/' }), qr/^META\.json: unknown key "homepage"/ ],
	[ 'a tag with a slash', changed(sub { push @{ $_[0]{tags} }, 'ci/cd' }), qr/^tags\[\d+\]: a tag must be/ ],
	[ 'a tag twice', changed(sub { push @{ $_[0]{tags} }, 'migration' }), qr/^tags: "migration" is there twice/ ],
	[ 'PostgreSQL "15" (no version range)', changed(sub { $_[0]{prereqs}{runtime}{requires}{PostgreSQL} = '15' }), qr/^prereqs\.runtime\.requires\.PostgreSQL: must be a version range/ ],
	[ 'a phase the spec does not know', changed(sub { $_[0]{prereqs}{install} = { requires => { PostgreSQL => '15.0.0' } } }), qr/^prereqs: unknown key "install"/ ],
	[ 'release_status "final"', changed(sub { $_[0]{release_status} = 'final' }), qr/^release_status: must be stable, testing or unstable/ ],
	[ 'resources with a homepage that is no URI', changed(sub { $_[0]{resources} = { homepage => 'our site' } }), qr/^resources\.homepage: must be a URI/ ],
	[ 'a path of one character', changed(sub { $_[0]{no_index} = { directory => 't' } }), qr/^no_index\.directory: must be a relative path/ ],
	[ 'a repository without its type', changed(sub { $_[0]{resources} = { repository => { url => 'git://x.invalid/dms.git' } } }), qr/^resources\.repository: must have url and type, or web/ ]);
foreach my $b (@broken)
{
	my ($what, $copy, $fault) = @$b;
	my @faults = meta_errors($copy);
	ok((grep { $_ =~ $fault } @faults), "a copy with $what fails the check")
	  or diag("faults found:\n" . join("\n", @faults));
}

my @allowed = (
	[ 'the license as an object of names and URIs', changed(sub { $_[0]{license} = { PostgreSQL => 'https://www.postgresql.org/about/licence' } }) ],
	[ 'a list of licenses', changed(sub { $_[0]{license} = [ 'postgresql', 'bsd' ] }) ],
	[ 'two maintainers', changed(sub { $_[0]{maintainer} = [ 'A <a@x.invalid>', 'B <b@x.invalid>' ] }) ],
	[ 'a custom x_ key', changed(sub { $_[0]{x_monitoring} = 'monitoring/postgres_exporter/dms_lifecycle.yaml' }) ],
	[ 'a version range with operators', changed(sub { $_[0]{prereqs}{runtime}{requires}{PostgreSQL} = '>= 15.0.0, < 16.0.0' }) ],
	[ 'a prerequisite of any version', changed(sub { $_[0]{prereqs}{test}{requires}{plpgsql} = 0 }) ],
	[ 'no_index of two directories', changed(sub { $_[0]{no_index} = { directory => [ 'bench', 'specs' ] } }) ]);
foreach my $a (@allowed)
{
	my ($what, $copy) = @$a;
	my @faults = meta_errors($copy);
	is(join("\n", @faults), '', "a copy with $what passes the check");
}

done_testing();
