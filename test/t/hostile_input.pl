# hostile_input.pl: every string of the hostile corpus (test/data/hostile,
# format in its README.txt) through every text parameter of every
# catalog_api function, without a crash, an unexpected error, a stored value
# that is not the canonical form of the input, stored active markup, or an
# effect on a table of the caller's.
#
# A throw-away cluster preloaded like test/catalog.conf gets the extension,
# fixtures (two categories, one product) and a canary table
# public.hostile_canary with one row.  The functions and their text
# parameters come from pg_proc (schema catalog_api, input arguments of type
# text), so a new function is covered without editing this file; a new
# function whose required non-text parameter has no fixture below, or a
# new VOLATILE function whose text parameter has no read-back rule below,
# fails the test with a message that says what to add.
#
# Each call is its own transaction on one DBI connection: set the actor and
# SET LOCAL ROLE to the first of catalog_admin, catalog_editor, catalog_anon
# that may execute the function, call it with the hostile value as the one
# text argument under test (every other argument a valid fixture, or its
# default), and then, as superuser, read back what a successful write
# stored.  Successful calls are committed (so later calls and the final
# sweep see them; see below for the exception), failed ones rolled back.
# Asserted:
#
#   - the server never restarts: pg_postmaster_start_time is unchanged at the
#     end, the backend pid is the one of the start, and no call loses the
#     connection (a lost connection is reported with the input, and the test
#     reconnects and goes on);
#   - every call succeeds or fails with a SQLSTATE of class 22 or one listed
#     for the function in %allowed_codes (each with its reason);
#   - after a successful write, the stored value of the field is exactly
#     catalog.canonical_text(kind, input, min, max) for that field's kind and
#     limits (%readback);
#   - no text or jsonb value in any table of schema catalog contains active
#     markup: "<script", "javascript:", an "on<letters>=" handler, or "<"
#     followed by a letter;
#   - public.hostile_canary still has exactly its one row, unchanged.
#
# Successful calls are committed, except creates that set a unique field
# under test (sku, slug): those are rolled back after their read-back so
# that update_* may store the same value.
# Values that contain a NUL byte cannot be sent as a text parameter by
# libpq (it ends a parameter at the first NUL), so they are sent as bytea
# and turned into text by convert_from() in the same statement, as a client
# that builds text from bytes would; the server refuses them (22021) before
# the function runs.  Every other value, invalid UTF-8 included, is sent as
# is in the Bind message, where the server checks its encoding.
use strict;
use warnings;

use DBI;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node repo_root);
use Test::More;
use Time::HiRes qw(time);

my $root = repo_root();
my $corpus_dir = "$root/test/data/hostile";
my $actor = 'hostile-tester';

# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

# json_value(\$s): parse one JSON value at pos($s) (strings, arrays,
# objects, integers, true/false/null).  Strings keep lone surrogate escapes
# as the code points U+D800-U+DFFF (JSON::PP refuses them).
sub json_value
{
	my ($sref) = @_;
	$$sref =~ /\G\s*/gc;
	if ($$sref =~ /\G"/gc)
	{
		my @cp;
		while (1)
		{
			if ($$sref =~ /\G([^"\\]+)/gc) { push @cp, map { ord } split //, $1; next; }
			if ($$sref =~ /\G"/gc) { last; }
			if ($$sref =~ /\G\\u([0-9a-fA-F]{4})/gc) { push @cp, hex $1; next; }
			if ($$sref =~ /\G\\(["\\\/bfnrt])/gc)
			{
				push @cp, ord({ '"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f",
						n => "\n", r => "\r", t => "\t" }->{$1});
				next;
			}
			die 'bad string at offset ' . pos($$sref) . "\n";
		}
		# Join surrogate pairs; keep lone ones.
		my @out;
		for (my $i = 0; $i < @cp; $i++)
		{
			if ($cp[$i] >= 0xD800 && $cp[$i] <= 0xDBFF && $i + 1 < @cp
				&& $cp[$i + 1] >= 0xDC00 && $cp[$i + 1] <= 0xDFFF)
			{
				push @out, 0x10000 + (($cp[$i] - 0xD800) << 10) + ($cp[$i + 1] - 0xDC00);
				$i++;
			}
			else { push @out, $cp[$i]; }
		}
		return { str => \@out };
	}
	if ($$sref =~ /\G\[/gc)
	{
		my @a;
		$$sref =~ /\G\s*/gc;
		return \@a if $$sref =~ /\G\]/gc;
		while (1)
		{
			push @a, json_value($sref);
			$$sref =~ /\G\s*/gc;
			next if $$sref =~ /\G,/gc;
			last if $$sref =~ /\G\]/gc;
			die 'bad array at offset ' . pos($$sref) . "\n";
		}
		return \@a;
	}
	if ($$sref =~ /\G\{/gc)
	{
		my %h;
		$$sref =~ /\G\s*/gc;
		return \%h if $$sref =~ /\G\}/gc;
		while (1)
		{
			my $k = json_value($sref);
			die "object key is not a string\n" unless ref $k eq 'HASH' && $k->{str};
			$$sref =~ /\G\s*:/gc or die 'expected : at offset ' . pos($$sref) . "\n";
			$h{ join '', map { chr } @{ $k->{str} } } = json_value($sref);
			$$sref =~ /\G\s*/gc;
			next if $$sref =~ /\G,/gc;
			last if $$sref =~ /\G\}/gc;
			die 'bad object at offset ' . pos($$sref) . "\n";
		}
		return { obj => \%h };
	}
	return { num => $1 } if $$sref =~ /\G(-?\d+)/gc;
	die 'unexpected JSON at offset ' . (pos($$sref) // 0) . "\n";
}

# part_bytes(VALUE): the byte string a parsed part describes (README.txt).
sub part_bytes
{
	my ($v) = @_;
	if (ref $v eq 'ARRAY') { return join '', map { part_bytes($_) } @$v; }
	die "not a part\n" unless ref $v eq 'HASH';
	if ($v->{str})
	{
		# Perl's internal (lax) UTF-8: lone surrogates become ED xx xx.
		my $s = join '', map { chr } @{ $v->{str} };
		utf8::encode($s);
		return $s;
	}
	my $o = $v->{obj} or die "not a part\n";
	if (exists $o->{hex})
	{
		my $h = join '', map { chr } @{ $o->{hex}{str} };
		die "bad hex\n" unless $h =~ /\A(?:[0-9a-fA-F]{2})*\z/;
		return pack('H*', $h);
	}
	if (exists $o->{repeat})
	{
		my $n = $o->{times}{num} // die "repeat without times\n";
		die "negative times\n" if $n < 0;
		return part_bytes($o->{repeat}) x $n;
	}
	die "unknown part\n";
}

# The corpus: list of [family, line number, bytes].
my @corpus;
my %family_count;
for my $file (sort glob("$corpus_dir/*.jsonl"))
{
	my ($family) = $file =~ m{([^/]+)\.jsonl\z};
	open(my $fh, '<:raw', $file) or die "cannot read $file: $!";
	while (my $line = <$fh>)
	{
		$line =~ s/\r?\n\z//;
		next if $line =~ /\A\s*(?:#|\z)/;
		my $bytes = eval {
			utf8::decode($line) or die "line is not UTF-8\n";
			my $v = json_value(\$line);
			$line =~ /\G\s*\z/gc or die "trailing text\n";
			part_bytes($v);
		};
		die "$file line $.: $@" unless defined $bytes;
		push @corpus, [ $family, $., $bytes ];
		$family_count{$family}++;
	}
	close($fh);
}
cmp_ok(scalar @corpus, '>=', 400, 'the hostile corpus has at least 400 strings');
diag(sprintf('%s: %d', $_, $family_count{$_})) for sort keys %family_count;

# show(BYTES): a short printable form of an input for messages.
sub show
{
	my ($b) = @_;
	my $s = length($b) > 60 ? substr($b, 0, 60) : $b;
	$s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
	return sprintf('"%s"%s', $s, length($b) > 60 ? sprintf(' (%d bytes)', length $b) : '');
}

# ---------------------------------------------------------------------------
# Server, fixtures, canary
# ---------------------------------------------------------------------------
my $node = catalog_node('hostile_input');
# Thousands of expected errors: keep them out of the log (LOG, FATAL and
# PANIC, so a crash, stay).  No background sealer competing for the audit
# rows; a runaway call ends instead of hanging the suite.
$node->append_conf('postgresql.conf', <<'CONF');
log_min_messages = log
log_min_error_statement = panic
catalog.audit_seal_interval = 0
statement_timeout = '60s'
CONF
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION catalog CASCADE');

my $connstr = 'dbi:Pg:' . $node->connstr('postgres');
my %dbi_opts = (AutoCommit => 0, RaiseError => 0, PrintError => 0, pg_enable_utf8 => 0,
	pg_placeholder_nocolons => 1);
# connect_db(): the test's session; notices (long words not indexed, and
# so on) stay out of the log.
sub connect_db
{
	my $h = DBI->connect($connstr, undef, undef, \%dbi_opts) or return undef;
	$h->do('SET client_min_messages = warning') or return undef;
	$h->commit;
	return $h;
}
my $dbh = connect_db() or die "cannot connect: $DBI::errstr";

# run(SQL, BINDS...): one statement that must succeed; returns the first row.
sub run
{
	my ($sql, @binds) = @_;
	my $row = $dbh->selectrow_arrayref($sql, undef, @binds);
	die "$sql: " . $dbh->errstr . "\n" if $dbh->err;
	return $row;
}

$dbh->do(q{CREATE TABLE public.hostile_canary (id integer PRIMARY KEY, note text NOT NULL)})
  or die 'cannot create the canary: ' . $dbh->errstr;
run(q{INSERT INTO public.hostile_canary VALUES (1, 'canary: untouched') RETURNING id});
run(q{SELECT set_config('catalog.actor', $1, true)}, $actor);
my ($cat_id) = @{ run(q{SELECT (catalog_api.create_category(name => 'Hostile root', slug => 'hostile-root'))->>'id'}) };
my ($cat2_id) = @{ run(q{SELECT (catalog_api.create_category(name => 'Hostile target', slug => 'hostile-target'))->>'id'}) };
my ($prod_id) = @{
	run(q{SELECT (catalog_api.create_product(sku => 'HOSTILE-FIXTURE', name => 'Hostile fixture',
	      price => 9.99, category_id => $1::bigint, status => 'published'))->>'id'}, $cat_id)
};
$dbh->commit;

my ($start_time, $start_pid) = @{ run(q{SELECT pg_postmaster_start_time()::text, pg_backend_pid()}) };
my $canary_before = run(q{SELECT count(*), string_agg(id || ':' || note, ',' ORDER BY id) FROM public.hostile_canary});
$dbh->commit;

# ---------------------------------------------------------------------------
# What is called, with what, and what is allowed
# ---------------------------------------------------------------------------

# SQLSTATEs allowed besides class 22, per function, each with its reason.
my %allowed_codes = (
	# 23505: a hostile sku that canonicalises to one already stored (the
	# fixture's, or an earlier hostile one such as "A" after upper-casing).
	# PT422: a hostile idempotency key whose canonical form was used by an
	# earlier call with another payload (every call has its own SKU).
	create_product => { '23505' => 'duplicate sku', 'PT422' => 'idempotency key reused, other payload' },
	# 23505: a hostile sku equal, once canonical, to another product's.
	update_product => { '23505' => 'duplicate sku' },
	# 23505: a hostile slug equal, once canonical, to another category's.
	create_category => { '23505' => 'duplicate slug' },
	update_category => { '23505' => 'duplicate slug' },
);

# Fixture arguments (SQL expressions; $SKU, $SLUG and $VERSION are bound per
# call) for parameters other than the one under test that have no default.
# By function, then by parameter name for any function.
my %fixture_by_function = (
	create_product => { sku => '$SKU', name => q{'Hostile product'}, price => '9.99', category_id => $cat_id },
	update_product => { id => $prod_id, expected_version => '$VERSION' },
	create_category => { name => q{'Hostile category'}, slug => '$SLUG' },
	update_category => { id => $cat2_id, expected_version => '$VERSION' },
	audit_mask_set => { table_name => q{'product'}, column_name => q{'attributes'} },
	audit_mask_drop => { table_name => q{'product'}, column_name => q{'attributes'} },
	audit_verify => { anchor_seq => '1' },
	rate_limit_set => { caller_class => q{'admin'}, action => q{'read'}, rate => 'NULL', burst => '1' },
	rate_limit_drop => { caller_class => q{'admin'}, action => q{'read'} },
);
my %fixture_by_name = (product_id => $prod_id, category_id => $cat_id);

# Successful creates that set these unique fields are rolled back after
# their read-back, so that the same value can then succeed in update_* as
# well (committed, it would only meet 23505 there).
my %rollback_after = (create_product => { sku => 1 }, create_category => { slug => 1 });

# Which row's version $VERSION is, per function.
my %version_of = (
	update_product => "SELECT version FROM catalog.product WHERE id = $prod_id",
	update_category => "SELECT version FROM catalog.category WHERE id = $cat2_id",
);

# Read-back rules for writes: function => parameter => [SQL giving the
# stored value (text, $1 = the function's result as jsonb, when the SQL
# uses it), kind, min, max, empty-is-null].  The stored value must equal
# catalog.canonical_text(kind, input, min, max), or the input itself for
# the kind 'exact'.
my $product_col = sub {
	my ($col, $kind, $min, $max, $empty_null) = @_;
	return [ "SELECT ${col}::text FROM catalog.product WHERE id = (\$1::jsonb->>'id')::bigint",
		$kind, $min, $max, $empty_null ];
};
my $category_col = sub {
	my ($col) = @_;
	return [ "SELECT $col FROM catalog.category WHERE id = (\$1::jsonb->>'id')::bigint",
		$col eq 'slug' ? 'slug' : 'plain', 1, 100, 0 ];
};
my %product_fields = (
	sku => $product_col->('sku', 'sku', 1, 64, 0),
	name => $product_col->('name', 'plain', 1, 255, 0),
	description => $product_col->('description', 'longtext', 0, 5000, 1),
	status => $product_col->('status', 'plain', 1, 16, 0),
	currency => $product_col->('currency', 'currency', 3, 3, 0),
);
my $mask_row = 'SELECT';
my $mask_this_xact = 'FROM catalog.audit_mask WHERE xmin = pg_current_xact_id()::xid';
my %readback = (
	create_product => {
		%product_fields,
		idempotency_key => [
			"SELECT key FROM catalog.idempotency WHERE actor = '$actor'
			 AND (response->>'id')::bigint = (\$1::jsonb->>'id')::bigint", 'token', 1, 255, 0 ],
	},
	update_product => {%product_fields},
	create_category => { name => $category_col->('name'), slug => $category_col->('slug') },
	update_category => { name => $category_col->('name'), slug => $category_col->('slug') },
	# The mask row this transaction wrote (fixture: product.attributes).
	# table_name, column_name and method are identifiers and enumerations,
	# matched exactly and never canonicalised (src/audit_mask.c): their
	# kind 'exact' means the stored value is the input, byte for byte.
	audit_mask_set => {
		attribute_key => [ "$mask_row attribute_key $mask_this_xact", 'plain', 1, 128, 0 ],
		table_name => [ "$mask_row table_name $mask_this_xact", 'exact' ],
		column_name => [ "$mask_row column_name $mask_this_xact", 'exact' ],
		method => [ "$mask_row method $mask_this_xact", 'exact' ],
	},
	# A drop stores nothing; a successful call returns whether a mask went.
	audit_mask_drop => { table_name => undef, column_name => undef, attribute_key => undef },
	# caller_class and action are enumerations, matched exactly
	# (src/ratelimit.c): a value that is stored is the input.
	rate_limit_set => {
		caller_class => [ "SELECT caller_class FROM catalog.rate_limit WHERE xmin = pg_current_xact_id()::xid", 'exact' ],
		action => [ "SELECT action FROM catalog.rate_limit WHERE xmin = pg_current_xact_id()::xid", 'exact' ],
	},
	rate_limit_drop => { caller_class => undef, action => undef },
);

my $functions = $dbh->selectall_arrayref(
	q{SELECT p.proname, p.oid::regprocedure::text, p.provolatile,
	         p.pronargs, p.pronargdefaults,
	         array_to_string(p.proargnames[1:p.pronargs], ','),
	         array_to_string(ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t), ','),
	         CASE WHEN has_function_privilege('catalog_admin', p.oid, 'EXECUTE') THEN 'catalog_admin'
	              WHEN has_function_privilege('catalog_editor', p.oid, 'EXECUTE') THEN 'catalog_editor'
	              WHEN has_function_privilege('catalog_anon', p.oid, 'EXECUTE') THEN 'catalog_anon' END
	  FROM pg_catalog.pg_proc p
	  WHERE p.pronamespace = 'catalog_api'::regnamespace
	  ORDER BY p.proname, p.oid});
die 'pg_proc: ' . $dbh->errstr if $dbh->err;
$dbh->commit;

# The calls: [function, parameter, SQL, needs version, needs sku/slug, readback].
my @targets;
for my $f (@$functions)
{
	my ($name, $signature, $volatility, $nargs, $ndefaults, $argnames, $argtypes, $role) = @$f;
	my @names = split /,/, $argnames, -1;
	my @types = split /,/, $argtypes, -1;
	my @text_params = grep { $types[$_] eq 'text' } 0 .. $#types;
	next unless @text_params;
	unless (defined $role)
	{
		fail("$signature: no API role may execute it, so it cannot be called");
		next;
	}
	for my $i (@text_params)
	{
		my @args;
		my $missing;
		for my $j (0 .. $nargs - 1)
		{
			if ($j == $i)
			{
				push @args, "$names[$j] => \$VALUE";
				next;
			}
			my $has_default = $j >= $nargs - $ndefaults;
			my $fx = $fixture_by_function{$name}{ $names[$j] } // $fixture_by_name{ $names[$j] };
			if (defined $fx)
			{
				push @args, "$names[$j] => $fx";
			}
			elsif (!$has_default)
			{
				$missing = $names[$j];
			}
		}
		if (defined $missing)
		{
			fail("$signature: no fixture for the required parameter $missing; add one to %fixture_by_function");
			next;
		}
		my $rb;
		if ($volatility eq 'v')
		{
			if (!exists $readback{$name} || !exists $readback{$name}{ $names[$i] })
			{
				fail("$signature: VOLATILE, and no read-back rule for its text parameter $names[$i]; add one to %readback");
				next;
			}
			$rb = $readback{$name}{ $names[$i] };
		}
		push @targets, {
			function => $name,
			signature => $signature,
			param => $names[$i],
			role => $role,
			args => \@args,
			readback => $rb,
		};
	}
}
diag(sprintf('%d text parameters of %d functions; %d calls',
		scalar @targets, scalar(grep { 1 } @$functions), @targets * @corpus));
cmp_ok(scalar @targets, '>=', 20, 'pg_proc lists the text parameters of the API');

# ---------------------------------------------------------------------------
# The calls
# ---------------------------------------------------------------------------
my (%bad_code, %bad_readback, @lost);
my ($n_ok, $n_refused, $n_calls) = (0, 0, 0);
my (%codes_seen, %tally);
my $serial = 0;
my $t0 = time;

# prepared(SQL): a statement handle, prepared once per connection.
my %sth_cache;
sub prepared
{
	my ($sql) = @_;
	return $sth_cache{$sql} //= $dbh->prepare($sql);
}

for my $t (@targets)
{
	$t->{sql} = 'SELECT catalog_api.' . $t->{function} . '(' . join(', ', @{ $t->{args} }) . ')::text';
}

for my $c (@corpus)
{
	my ($family, $lineno, $bytes) = @$c;
	my $has_nul = index($bytes, "\0") >= 0;
	for my $t (@targets)
	{
		my $fn = $t->{function};
		my $what = "$fn($t->{param}) with $family line $lineno " . show($bytes);
		$n_calls++;
		$serial++;
		my $tally = $tally{"$fn($t->{param})"} //= { ok => 0, refused => 0 };

		# Bind values in the order of the placeholders in the call.
		my $sql = $t->{sql};
		my @binds;
		my $version;
		if ($sql =~ /\$VERSION/)
		{
			($version) = $dbh->selectrow_array($version_of{$fn}) if $version_of{$fn};
		}
		my $value_bind = $has_nul ? unpack('H*', $bytes) : $bytes;
		my $value_sql = $has_nul ? q{convert_from(decode(?, 'hex'), 'UTF8')} : '?::text';
		$sql =~ s/(\$VALUE|\$SKU|\$SLUG|\$VERSION)/
			$1 eq '$VALUE' ? do { push @binds, $value_bind; $value_sql }
			: $1 eq '$SKU' ? do { push @binds, "HX-$serial"; '?::text' }
			: $1 eq '$SLUG' ? do { push @binds, "hx-$serial"; '?::text' }
			: do { push @binds, $version; '?::integer' }/ge;

		$dbh->do(qq{SELECT set_config('catalog.actor', '$actor', true), set_config('role', '$t->{role}', true)});
		my $sth = prepared($sql);
		my $ok = $sth && $sth->execute(@binds);
		my ($result) = $ok ? $sth->fetchrow_array : ();
		if (!$ok)
		{
			my $state = $dbh->state // '';
			my $err = $dbh->errstr // '';
			$dbh->rollback;
			if (!$dbh->ping)
			{
				push @lost, "$what: connection lost ($state $err)";
				$dbh = connect_db()
				  or BAIL_OUT("cannot reconnect after $what: $DBI::errstr");
				%sth_cache = ();
				next;
			}
			$codes_seen{$state}++;
			$n_refused++;
			$tally->{refused}++;
			if ($state !~ /\A22/ && !exists $allowed_codes{$fn}{$state})
			{
				$err =~ s/\s+/ /g;
				$bad_code{$what} = "$state $err";
			}
			next;
		}
		$n_ok++;
		$tally->{ok}++;
		if (my $rb = $t->{readback})
		{
			my ($rb_sql, $kind, $min, $max, $empty_null) = @$rb;
			$dbh->do('RESET ROLE');
			my ($canon, $canon_sql);
			if ($kind eq 'exact')
			{
				$canon = $bytes;
			}
			else
			{
				$canon_sql = $has_nul
				  ? q{SELECT catalog.canonical_text($1, convert_from(decode($2, 'hex'), 'UTF8'), $3, $4)}
				  : q{SELECT catalog.canonical_text($1, $2::text, $3, $4)};
				($canon) = $dbh->selectrow_array($canon_sql, undef, $kind, $value_bind, $min, $max);
			}
			my $canon_err = $dbh->err ? $dbh->state . ' ' . $dbh->errstr : undef;
			my $stored_err;
			my ($stored) = defined $canon_err ? ()
			  : $dbh->selectrow_array($rb_sql, undef, $rb_sql =~ /\$1/ ? ($result) : ());
			$stored_err = $dbh->state . ' ' . $dbh->errstr if !defined $canon_err && $dbh->err;
			$canon = undef if defined $canon && $empty_null && $canon eq '';
			if (defined $canon_err)
			{
				$bad_readback{$what} = "the write succeeded but canonical_text($kind) refuses the input: $canon_err";
			}
			elsif (defined $stored_err)
			{
				$bad_readback{$what} = "read-back failed: $stored_err";
			}
			elsif ((defined $stored) != (defined $canon) || (defined $stored && $stored ne $canon))
			{
				$bad_readback{$what} = sprintf('stored %s, canonical form %s',
					defined $stored ? show($stored) : 'NULL', defined $canon ? show($canon) : 'NULL');
			}
		}
		if ($rollback_after{$fn}{ $t->{param} }) { $dbh->rollback; }
		else { $dbh->commit; }
	}
}
my $elapsed = time - $t0;
diag(sprintf('%d calls in %.1f s: %d succeeded, %d refused', $n_calls, $elapsed, $n_ok, $n_refused));
 diag(sprintf('  %-40s %5d ok %5d refused', $_, $tally{$_}{ok}, $tally{$_}{refused})) for sort keys %tally;
diag("refusals by SQLSTATE: " . join(', ', map { "$_ $codes_seen{$_}" } sort keys %codes_seen));

# report(NAME, HASH): one check; each offender (at most 30) in the output.
sub report
{
	my ($name, $h) = @_;
	my @k = sort keys %$h;
	ok(!@k, $name) or diag(join("\n", map { "  $_: $h->{$_}" } @k[0 .. ($#k < 29 ? $#k : 29)])
		  . (@k > 30 ? "\n  ... and " . (@k - 30) . ' more' : ''));
}

is(scalar @lost, 0, 'no call lost the connection (no backend crash or FATAL)')
  or diag(join("\n", map { "  $_" } @lost[0 .. ($#lost < 29 ? $#lost : 29)]));
report('every call succeeds or fails with class 22 or a documented code of the function', \%bad_code);
report('every successful write stored exactly the canonical form of the input', \%bad_readback);

# ---------------------------------------------------------------------------
# After all calls
# ---------------------------------------------------------------------------
my ($end_time, $end_pid) = @{ run(q{SELECT pg_postmaster_start_time()::text, pg_backend_pid()}) };
is($end_time, $start_time, 'the postmaster did not restart (pg_postmaster_start_time unchanged)');
is($end_pid, $start_pid, 'the same backend served every call');

# Every text, varchar and jsonb column of every table of schema catalog.
my $columns = $dbh->selectall_arrayref(
	q{SELECT c.oid::regclass::text, quote_ident(a.attname)
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  WHERE c.relnamespace = 'catalog'::regnamespace AND c.relkind IN ('r', 'p')
	    AND NOT c.relispartition
	    AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'jsonb'::regtype, 'json'::regtype)
	  ORDER BY 1, 2});
my $markup_re = q{(?i)<script|javascript:|\mon[a-z]+\s*=|<[a-z]};
my %markup;
for my $col (@$columns)
{
	my ($table, $column) = @$col;
	my $rows = $dbh->selectall_arrayref(
		"SELECT ${column}::text, count(*) OVER () FROM $table WHERE ${column}::text ~ \$1 LIMIT 5",
		undef, $markup_re);
	die "$table.$column: " . $dbh->errstr if $dbh->err;
	$markup{"$table.$column"} = sprintf('%d rows, for example %s', $rows->[0][1],
		join(' | ', map { show($_->[0]) } @$rows)) if @$rows;
}
$dbh->commit;
cmp_ok(scalar @$columns, '>=', 10, 'the markup sweep covers the text and jsonb columns of schema catalog');
report('no stored value contains active markup (<script, javascript:, on...=, < and a letter)', \%markup);

my $products = run(q{SELECT count(*) FROM catalog.product WHERE created_by = $1 AND sku LIKE 'HX-%'}, $actor)->[0];
cmp_ok($products, '>', 0, "some hostile-but-valid values were stored ($products products)");

my $canary_after = run(q{SELECT count(*), string_agg(id || ':' || note, ',' ORDER BY id) FROM public.hostile_canary});
$dbh->commit;
is_deeply($canary_after, $canary_before, 'public.hostile_canary is untouched (same rows, same contents)');

$dbh->disconnect;
$node->stop;
done_testing();
