# search_plans.pl: with 200,000 generated products, no search shape reads
# catalog.product with a sequential scan.
#
# A throw-away cluster (preloaded like test/catalog.conf) is loaded with
# test/data/sample.sql at products=200000, vacuumed and analysed.  For each
# query shape below, catalog.search_explain returns every statement the
# search ran with the EXPLAIN (FORMAT JSON) of the generic plan the backend
# keeps for it, and the test asserts, per shape:
#
#   - no plan node anywhere (InitPlans and SubPlans included) is a
#     "Seq Scan" of the relation "product";
#   - every statement that reads catalog.product uses an index of it (Index
#     Scan, Index Only Scan or Bitmap Index Scan);
#   - the result of search_explain is the result of search_products for the
#     same arguments;
#   - the result has items (a page), except for the shape that matches
#     nothing.
#
# Shapes: one common word, a rare word, two words, prefixes, substrings, an
# exact SKU (upper and lower case), partial SKUs, typos, no match, filters
# only (none, department, subcategory, leaf, price range), every sort with
# and without q (common and rare words, with a category), status draft, and
# page 50 (49 next_cursor steps of 20 rows) of a common word, of filters
# only by price_asc and of filters only by newest.  Then a brand's SKU prefix
# with a leaf, a price range and both (the walk of the SKU index must give
# way to the filters' scan), and an identifier's prefix in a leaf (walked to
# its end), each paged through and compared with the products it must find.
#
# Timings (not asserted): each shape is run through search_products in the
# same session, its time measured with clock_timestamp() in SQL, and printed
# with diag so slow shapes show in the log.
#
# Uses PostgreSQL::Test::Cluster (run by `make test` with the PGXS Perl
# modules on the include path) and DBI/DBD::Pg for one session whose kept
# plans every call shares, as a pooled connection's would.
use strict;
use warnings;

use DBI;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node repo_root);
use Test::More;

my $root = repo_root();
my $sample = "$root/test/data/sample.sql";
my $nproducts = 200000;

my $node = catalog_node('search_plans');
# The test decides when statistics are gathered; the load's statements are
# not worth logging.
$node->append_conf('postgresql.conf', "autovacuum = off\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION catalog CASCADE');

my $t_load = time;
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', "products=$nproducts",
		'-f', $sample, '-d', $node->connstr('postgres')
	],
	"sample.sql loads $nproducts products");
$node->safe_psql('postgres', 'VACUUM (ANALYZE)');
diag(sprintf('load, vacuum and analyse: %d s', time - $t_load));

my $dbh = DBI->connect('dbi:Pg:' . $node->connstr('postgres'),
	undef, undef, { AutoCommit => 1, RaiseError => 1, PrintError => 0 })
  or die "cannot connect: $DBI::errstr";

is($dbh->selectrow_array('SELECT count(*) FROM catalog.product'),
	$nproducts, "catalog.product has $nproducts rows");

# The indexes of catalog.product, by name.
my %product_index = map { $_->[0] => 1 } @{
	$dbh->selectall_arrayref(
		q{SELECT c.relname FROM pg_catalog.pg_index i
		  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
		  WHERE i.indrelid = 'catalog.product'::regclass})
};

# Inputs taken from the generated data.
my %cat = map { $_->[0] => $_->[1] } @{
	$dbh->selectall_arrayref(
		q{SELECT slug, id FROM catalog.category WHERE slug IN
		  ('sports-outdoors', 'sports-outdoors-hiking', 'sports-outdoors-hiking-hiking-socks',
		   'clothing-socks-hosiery-ankle-socks')})
};
my $dept = $cat{'sports-outdoors'} // die 'no department sports-outdoors';
my $sub = $cat{'sports-outdoors-hiking'} // die 'no subcategory sports-outdoors-hiking';
my $leaf = $cat{'sports-outdoors-hiking-hiking-socks'} // die 'no leaf hiking socks';
my $leaf2 = $cat{'clothing-socks-hosiery-ankle-socks'} // die 'no leaf ankle socks';
my $sku = $dbh->selectrow_array(
	q{SELECT sku FROM catalog.product WHERE status = 'published' AND id >= 123456
	  ORDER BY id LIMIT 1});

# name => arguments of search_products; items => 0 when nothing may match;
# index => an index that must read both the category and the price range
#   (and the page must equal the search without the price range, filtered);
# walk => the page must come from a walk of the primary key;
# deep => walk to page 50 first.
my @shapes = (
	[ 'word (common)' => { q => 'premium' } ],
	[ 'word (rare)' => { q => 'tourmaline' } ],
	[ 'word (leaf noun)' => { q => 'cuttlebones' } ],
	[ 'two words' => { q => 'merino socks' } ],
	[ 'two words (rare pair)' => { q => 'tourmaline dryer' } ],
	[ 'three words' => { q => 'nordwind merino wool' } ],
	[ 'prefix' => { q => 'lig' } ],
	[ 'word and prefix' => { q => 'wool soc' } ],
	# A brand's two words are in about 4% of the names, not in the 0.1%
	# their frequencies make if independent; the walk fills the page.
	[ 'brand, word and prefix' => { q => 'ember lan' }, walk => 1 ],
	[ 'substring ool' => { q => 'ool' } ],
	[ 'substring ware' => { q => 'ware' } ],
	[ 'SKU exact' => { q => $sku } ],
	[ 'SKU exact, lower case' => { q => lc $sku } ],
	[ 'partial SKU SOC-0001' => { q => 'SOC-0001' } ],
	[ 'partial SKU NW-SOC' => { q => 'NW-SOC' } ],
	[ 'typo premuim' => { q => 'premuim' } ],
	[ 'typo lightwieght' => { q => 'lightwieght' } ],
	[ 'typo in two words' => { q => 'merino sokcs' } ],
	[ 'no match' => { q => 'qzxvbnm' }, items => 0 ],
	[ 'filters only: none' => {} ],
	[ 'filters only: department' => { category_id => $dept } ],
	[ 'filters only: subcategory' => { category_id => $sub } ],
	[ 'filters only: leaf' => { category_id => $leaf } ],
	[ 'filters only: price range' => { min_price => 10, max_price => 25 } ],
	[ 'filters only: narrow price range' => { min_price => 100, max_price => 100.5 } ],
	[ 'filters only: leaf and price range' => { category_id => $leaf, min_price => 10, max_price => 50 } ],
	[ 'word, department and price range' => { q => 'premium', category_id => $dept, min_price => 10, max_price => 100 } ],
	# A department and a price band are read together from (category_id,
	# price, id): one range per category of the department.
	[ 'word, department and price band' => { q => 'premium', category_id => $dept, min_price => 10, max_price => 25 },
	  index => 'product_category_price_idx' ],
	[ 'word, department and price band, newest' =>
		  { q => 'premium', category_id => $dept, min_price => 10, max_price => 25, sort => 'newest' },
	  index => 'product_category_price_idx' ],
	[ 'rare word, leaf' => { q => 'merino', category_id => $leaf2 } ],
	[ 'status draft, filters only' => { status => 'draft' } ],
	[ 'status draft, word' => { q => 'premium', status => 'draft' } ],
	[ 'status draft, leaf, price_asc' => { status => 'draft', category_id => $leaf, sort => 'price_asc' } ],
);
for my $sort (qw(relevance price_asc price_desc newest name))
{
	push @shapes,
	  [ "sort $sort, no q" => { sort => $sort } ],
	  [ "sort $sort, common word" => { q => 'premium', sort => $sort } ],
	  [ "sort $sort, rare word" => { q => 'tourmaline', sort => $sort } ],
	  [ "sort $sort, substring" => { q => 'ool', sort => $sort } ],
	  [ "sort $sort, leaf" => { category_id => $leaf, sort => $sort } ],
	  [ "sort $sort, department" => { category_id => $dept, sort => $sort } ],
	  [ "sort $sort, word and department" => { q => 'lightweight', category_id => $dept, sort => $sort } ];
}
push @shapes,
  [ 'page 50, common word' => { q => 'premium' }, deep => 1 ],
  [ 'page 50, filters only, price_asc' => { sort => 'price_asc' }, deep => 1 ],
  [ 'page 50, filters only, newest' => { sort => 'newest' }, deep => 1 ],
  [ 'page 50, common word, name' => { q => 'premium', sort => 'name' }, deep => 1 ],
  [ 'page 50, department, price_desc' => { category_id => $dept, sort => 'price_desc' }, deep => 1 ];

# SQL of a call with named arguments.
my @argorder = qw(q category_id min_price max_price status sort page_size cursor);
sub call_sql
{
	my ($fn, $args) = @_;
	my @a;
	for my $k (@argorder)
	{
		next unless defined $args->{$k};
		push @a, "$k => " . $dbh->quote($args->{$k});
	}
	return "$fn(" . join(', ', @a) . ')';
}

$dbh->do(
	q{CREATE FUNCTION pg_temp.time_search(sql text, OUT ms numeric, OUT result text)
	  LANGUAGE plpgsql AS $$
	  DECLARE t0 timestamptz;
	  BEGIN
	      t0 := clock_timestamp();
	      EXECUTE sql INTO result;
	      ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2);
	  END $$});

# time_search(args): (ms, result jsonb text) of one search_products call.
sub time_search
{
	my ($args) = @_;
	my $sql = 'SELECT ' . call_sql('catalog_api.search_products', $args) . '::text';
	return $dbh->selectrow_array('SELECT ms, result FROM pg_temp.time_search(?)', undef, $sql);
}

# Every plan node under a JSON value, in pre-order, with its depth.
sub plan_nodes
{
	my ($v, $depth, $out) = @_;
	if (ref $v eq 'HASH')
	{
		if (exists $v->{'Node Type'})
		{
			push @$out, [ $depth, $v ];
			$depth++;
		}
		plan_nodes($v->{$_}, $depth, $out) for sort keys %$v;
	}
	elsif (ref $v eq 'ARRAY')
	{
		plan_nodes($_, $depth, $out) for @$v;
	}
	return $out;
}

sub node_text
{
	my ($n) = @_;
	my $t = $n->{'Node Type'};
	$t .= " ($n->{'Parent Relationship'})"
	  if $n->{'Parent Relationship'} && $n->{'Parent Relationship'} =~ /^(InitPlan|SubPlan)$/;
	$t .= " using $n->{'Index Name'}" if $n->{'Index Name'};
	$t .= " on $n->{'Relation Name'}" if $n->{'Relation Name'};
	return $t;
}

sub plan_text
{
	my ($q) = @_;
	my $s = "  $q->{query} (variant $q->{variant}):\n";
	$s .= ('    ' . ('  ' x $_->[0]) . node_text($_->[1]) . "\n")
	  for @{ plan_nodes($q->{plan}, 0, []) };
	return $s;
}

my $json = JSON::PP->new->canonical;
my @timings;

# The walk sees a scan inside a subquery: a plain EXPLAIN that must read
# the table (no index on description) from an InitPlan.
{
	my ($plan) = $dbh->selectrow_array(
		q{EXPLAIN (FORMAT JSON) SELECT (SELECT count(*) FROM catalog.product p
		  WHERE p.description LIKE '%never%')});
	my @nodes = map { $_->[1] } @{ plan_nodes($json->decode($plan), 0, []) };
	ok( (grep { $_->{'Node Type'} eq 'Seq Scan' && ($_->{'Relation Name'} // '') eq 'product' } @nodes),
		'the plan walk finds a Seq Scan of product below an InitPlan');
}

for my $shape (@shapes)
{
	my ($name, $args, %opt) = @$shape;
	my $expect_items = $opt{items} // 1;
	my %a = %$args;

	if ($opt{deep})
	{
		# pages 1 to 49 through search_products; page 50 is explained
		my ($walk_ms, $cursor) = (0, undef);
		my $ok = eval {
			for my $page (1 .. 49)
			{
				my ($ms, $res) = time_search({ %a, page_size => 20, cursor => $cursor });
				$walk_ms += $ms;
				$cursor = $json->decode($res)->{next_cursor};
				die "page $page has no next_cursor\n" unless defined $cursor;
			}
			1;
		};
		unless (ok($ok, "$name: pages 1 to 49 of 20 rows each give a next_cursor"))
		{
			diag("arguments: " . $json->encode($args) . "\nwalk failed: $@");
			next;
		}
		push @timings, sprintf('%-45s %9.2f ms (pages 1-49 in total)', "$name, walk", $walk_ms);
		$a{page_size} = 20;
		$a{cursor} = $cursor;
	}

	my $explain = eval {
		$dbh->selectrow_array('SELECT ' . call_sql('catalog.search_explain', \%a) . '::text');
	};
	if (!defined $explain)
	{
		fail("$name: search_explain runs");
		diag("error: " . ($@ || 'no result'));
		next;
	}
	my $e = $json->decode($explain);
	my @queries = @{ $e->{queries} };

	# no sequential scan of product, anywhere
	my (@seq, @noindex);
	for my $q (@queries)
	{
		my @nodes = map { $_->[1] } @{ plan_nodes($q->{plan}, 0, []) };
		push @seq, $q
		  if grep { $_->{'Node Type'} eq 'Seq Scan' && ($_->{'Relation Name'} // '') eq 'product' }
		  @nodes;
		my $reads_product = $q->{sql} =~ /\bcatalog\.product\b(?!_)/
		  || grep { ($_->{'Relation Name'} // '') eq 'product' } @nodes;
		push @noindex, $q
		  if $reads_product
		  && !grep {
			$_->{'Node Type'} =~ /^(Index Scan|Index Only Scan|Bitmap Index Scan)$/
			  && $product_index{ $_->{'Index Name'} // '' }
		  } @nodes;
	}
	my $all_plans = join('', map { plan_text($_) } @queries);
	if ($opt{walk})
	{
		my @walk = grep { ($_->{'Index Name'} // '') eq 'product_pkey' }
		  map { map { $_->[1] } @{ plan_nodes($_->{plan}, 0, []) } } @queries;
		ok(@walk > 0, "$name: the page comes from a walk of product_pkey")
		  or diag("arguments: " . $json->encode($args) . "\nplans:\n$all_plans");
	}
	if ($opt{index})
	{
		# the shape is one that index serves with both filters as its
		# conditions (so the variant this shape is here for did run)
		my @both = grep {
			($_->{'Index Name'} // '') eq $opt{index}
			  && ($_->{'Index Cond'} // '') =~ /category_id/
			  && ($_->{'Index Cond'} // '') =~ /price/
		} map { map { $_->[1] } @{ plan_nodes($_->{plan}, 0, []) } } @queries;
		ok(@both > 0, "$name: $opt{index} reads the category and the price range")
		  or diag("arguments: " . $json->encode($args) . "\nplans:\n$all_plans");

		# and the same page as the search without the price range (other
		# plans), walked and its rows outside the range left out: a variant
		# that dropped or bent a condition would differ
		my %wide = %a;
		delete @wide{qw(min_price max_price)};
		$wide{page_size} = 100;
		my (@ref, $cursor);
		my $walked = eval {
			for (1 .. 200)
			{
				my (undef, $res) = time_search({ %wide, cursor => $cursor });
				my $page = $json->decode($res);
				push @ref, map { $_->{id} }
				  grep { $_->{price} >= $a{min_price} && $_->{price} <= $a{max_price} }
				  @{ $page->{items} };
				$cursor = $page->{next_cursor};
				last if @ref >= 20 || !defined $cursor;
			}
			1;
		};
		splice(@ref, 20) if @ref > 20;
		my @got = map { $_->{id} } @{ $e->{result}{items} };
		ok($walked && @got > 0 && "@got" eq "@ref",
			"$name: the page equals the search without the price range, filtered")
		  or diag("arguments: " . $json->encode($args) . "\ngot: @got\nexpected: @ref\n"
			  . ($@ // ''));
	}
	ok(!@seq && @queries, "$name: no sequential scan of catalog.product")
	  or diag("arguments: " . $json->encode($args) . "\n"
		  . (@queries ? "statements with a Seq Scan on product: "
			  . join(', ', map { "$_->{query} (variant $_->{variant})" } @seq) . "\n"
			  . join('', map { "  sql: $_->{sql}\n" } @seq)
			  : "no statement explained\n")
		  . "plans:\n$all_plans");
	ok(!@noindex, "$name: every statement reading catalog.product uses one of its indexes")
	  or diag("arguments: " . $json->encode($args) . "\nwithout an index of product: "
		  . join(', ', map { "$_->{query} (variant $_->{variant})" } @noindex) . "\nplans:\n$all_plans");

	# the same result as search_products, with items
	my ($ms, $res, $ms2, $ms3);
	unless (eval { ($ms, $res) = time_search(\%a); ($ms2) = time_search(\%a); ($ms3) = time_search(\%a); 1 })
	{
		fail("$name: search_products runs");
		diag("error: $@");
		next;
	}
	is($json->encode($e->{result}), $json->encode($json->decode($res)),
		"$name: search_explain returns the result of search_products");
	my $n = scalar @{ $e->{result}{items} };
	if ($expect_items)
	{
		ok($n > 0, "$name: the result has items");
	}
	else
	{
		is($n, 0, "$name: the result has no item");
	}
	my $min = $ms2 < $ms3 ? $ms2 : $ms3;
	push @timings,
	  sprintf('%-45s %9.2f ms (first %.2f) %3d items, %s', $name, $min, $ms, $n,
		join(' ', map { "$_->{query}:v$_->{variant}" } @queries));
}

diag("search_products times (best of 2 after a first call), statements and variants:\n"
	  . join("\n", @timings));

# A SKU prefix that thousands of SKUs share (a brand code) with a filter
# that few of them pass: the walk of the SKU index spends its budget and
# the filter's scan answers the class instead (before, the walk read the
# whole range: a million rows for a catalog whose SKUs all start alike).
# A prefix of a handful of SKUs (an identifier's) is walked to its end and
# needs no other scan.  Either way, walked page by page, the class is
# exactly the matching products in SKU order.
{
	my ($pre, $pcat, $k) = $dbh->selectrow_array(
		q{SELECT left(p.sku, 2), p.category_id, count(*) FROM catalog.product p
		  WHERE p.status = 'published'
		    AND NOT EXISTS (SELECT 1 FROM catalog.category c WHERE c.parent_id = p.category_id)
		  GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1});
	my ($range) = $dbh->selectrow_array(
		q{SELECT count(*) FROM catalog.product WHERE left(sku, 2) = ?}, undef, $pre);
	ok($range > 2000 && $k > 20,
		"SKU prefix $pre: $range SKUs, $k published in leaf $pcat (a shared prefix, a small leaf)");
	my ($lo, $hi) = $dbh->selectrow_array(
		q{SELECT min(price), max(price) FROM (SELECT price FROM catalog.product
		  WHERE left(sku, 2) = ? AND status = 'published' ORDER BY price DESC LIMIT 25) s},
		undef, $pre);
	my ($ident) = $dbh->selectrow_array(
		q{SELECT left(sku, length(sku) - 2) FROM catalog.product
		  WHERE category_id = ? AND left(sku, 2) = ? AND status = 'published'
		  ORDER BY sku LIMIT 1}, undef, $pcat, $pre);

	# args, the variant that must answer the class (undef: the walk alone),
	# and the condition of the class in SQL
	my @cases = (
		[ { q => $pre, category_id => $pcat }, 'sku_prefix (category)',
			"category_id = $pcat" ],
		[ { q => lc $pre, min_price => $lo, max_price => $hi }, 'sku_prefix (price range)',
			"price BETWEEN $lo AND $hi" ],
		[ { q => $pre, category_id => $pcat, min_price => 0, max_price => 30 },
			'sku_prefix (category and price range)', "category_id = $pcat AND price <= 30" ],
		[ { q => $ident, category_id => $pcat }, undef, "category_id = $pcat" ]);
	for my $case (@cases)
	{
		my ($args, $via, $cond) = @$case;
		my $name = "SKU prefix " . $json->encode($args);
		my $sku_q = uc $args->{q};
		my $want = $dbh->selectcol_arrayref(
			qq{SELECT id FROM catalog.product
			   WHERE sku COLLATE "C" > ? AND left(sku, length(?)) = ?
			     AND status = 'published' AND $cond
			   ORDER BY sku COLLATE "C"}, undef, $sku_q, $sku_q, $sku_q);

		my $e = $json->decode($dbh->selectrow_array(
			'SELECT ' . call_sql('catalog.search_explain', { %$args, page_size => 10 }) . '::text'));
		my @ran = map { $_->{query} } @{ $e->{queries} };
		my @seq = grep {
			grep { $_->[1]{'Node Type'} eq 'Seq Scan' } @{ plan_nodes($_->{plan}, 0, []) }
		} @{ $e->{queries} };
		ok(!@seq, "$name: no sequential scan")
		  or diag(join('', map { plan_text($_) } @{ $e->{queries} }));
		if (defined $via)
		{
			ok((grep { $_ eq $via } @ran), "$name: the walk spends its budget and $via answers")
			  or diag("statements: @ran");
		}
		else
		{
			ok(!(grep { /^sku_prefix \((?!walked range)/ } @ran) && (grep { $_ eq 'sku_prefix' } @ran),
				"$name: the walk reaches the end of the range, no other scan")
			  or diag("statements: @ran");
		}

		# every page of 10, until the class is over
		my (@got, $cursor, $pages);
		my $walked = eval {
			for (1 .. 100)
			{
				my (undef, $res) = time_search({ %$args, page_size => 10, cursor => $cursor });
				my $page = $json->decode($res);
				$pages++;
				my @items = @{ $page->{items} };
				push @got, map { $_->{id} } grep { ($_->{match} // '') eq 'sku_prefix' } @items;
				$cursor = $page->{next_cursor};
				last if !defined $cursor || grep { ($_->{match} // '') ne 'sku_prefix' } @items;
			}
			1;
		};
		ok($walked && @$want > 0 && "@got" eq "@$want",
			"$name: " . scalar(@$want) . " rows of the class in SKU order, pages of 10: $pages")
		  or diag("got: @got\nwant: @$want\n" . ($@ // ''));
	}
}

# Facets without text or a category count every row of the statuses the
# caller may see: from the index (status, category_id, price, id) alone,
# next to no heap visit (before, a bitmap scan of the whole price range
# visited every row: 150 ms at 100,000 products, past the search timeout at
# a million).  A narrow price range drives the count instead, and the
# statuses' index is left alone.  Block counts are the backend's pending
# statistics (pg_stat_get_xact_blocks_fetched), read before and after the
# call in one transaction (they may hold earlier transactions' counts, not
# flushed yet, but grow only with this one's); the table was vacuumed after
# the load.
{
	# by OID: catalog_anon may not look names up in the schema catalog
	my @oids = $dbh->selectrow_array(
		q{SELECT 'catalog.product'::regclass::oid, 'catalog.product_status_category_price_idx'::regclass::oid,
		         'catalog.product_price_idx'::regclass::oid});
	my $counts_sql = 'SELECT ' . join(', ', map { "pg_stat_get_xact_blocks_fetched($_)" } @oids);
	# (facets, heap blocks, blocks of the statuses' index, of the price
	# index) of one call, as $role when given
	my $blocks = sub {
		my ($args, $role) = @_;
		$dbh->begin_work;
		$dbh->do("SET LOCAL ROLE $role") if $role;
		my ($heap0, $sidx0, $pidx0) = $dbh->selectrow_array($counts_sql);
		my $res = $dbh->selectrow_array(
			'SELECT ' . call_sql('catalog_api.product_facets', $args) . '::text');
		my ($heap1, $sidx1, $pidx1) = $dbh->selectrow_array($counts_sql);
		$dbh->commit;
		return ($json->decode($res), $heap1 - $heap0, $sidx1 - $sidx0, $pidx1 - $pidx0);
	};
	my ($pages) = $dbh->selectrow_array(
		q{SELECT relpages FROM pg_class WHERE oid = 'catalog.product'::regclass});
	my ($all, $heap, $sidx) = $blocks->({});
	my ($n_all) = $dbh->selectrow_array(q{SELECT count(*) FROM catalog.product WHERE status = 'published'});
	is($all->{total}, $n_all, 'facets of the whole catalog: total is every published product');
	ok($heap < $pages / 100, "facets of the whole catalog visit next to no heap block ($heap of $pages)");
	ok($sidx > 0, "facets of the whole catalog read the index of the statuses ($sidx blocks)");

	my ($anon, $heap_a, $sidx_a) = $blocks->({}, 'catalog_anon');
	is($anon->{total}, $n_all, 'facets of the whole catalog as catalog_anon: every published product');
	is_deeply([ map { $_->{status} } @{ $anon->{status} } ], ['published'],
		'facets of the whole catalog as catalog_anon: the published status only');
	ok($heap_a < $pages / 100 && $sidx_a > 0,
		"facets of the whole catalog as catalog_anon: from the statuses' index ($sidx_a blocks, $heap_a heap)");

	my ($narrow, $heap2, $sidx2) = $blocks->({ min_price => 100, max_price => 100.5 });
	my ($n_narrow) = $dbh->selectrow_array(
		q{SELECT count(*) FROM catalog.product WHERE status = 'published' AND price BETWEEN 100 AND 100.5});
	is($narrow->{total}, $n_narrow, "facets of a narrow price range: total $n_narrow");
	ok($sidx2 < 5 && $heap2 < $pages / 10,
		"facets of a narrow price range: driven by the range ($heap2 heap blocks, $sidx2 of the statuses' index)");

	# text drives, and the default price range is not ANDed into its bitmap
	# (the whole price index read and the bitmap made lossy)
	my ($text, undef, undef, $pidx3) = $blocks->({ q => 'premium' });
	ok($text->{total} > 0 && $pidx3 == 0,
		"facets of a common word: $text->{total} rows, no block of the price index ($pidx3)");

	# every count against a GROUP BY, for both plans and a wide range
	for my $args ({}, { min_price => 100, max_price => 100.5 }, { min_price => 10, max_price => 25 })
	{
		my ($f) = $blocks->($args);
		my ($lo, $hi) = ($args->{min_price} // 0, $args->{max_price} // 1e10);
		my %status = map { $_->[0] => $_->[1] } @{ $dbh->selectall_arrayref(
			q{SELECT status::text, count(*) FROM catalog.product
			  WHERE price BETWEEN ? AND ? GROUP BY 1}, undef, $lo, $hi) };
		my %price = map { $_->[0] => $_->[1] } @{ $dbh->selectall_arrayref(
			q{SELECT CASE WHEN price < 10 THEN 0 WHEN price < 25 THEN 10 WHEN price < 50 THEN 25
			              WHEN price < 100 THEN 50 WHEN price < 250 THEN 100 WHEN price < 500 THEN 250
			              WHEN price < 1000 THEN 500 ELSE 1000 END, count(*)
			  FROM catalog.product WHERE status = 'published' AND price BETWEEN ? AND ? GROUP BY 1},
			undef, $lo, $hi) };
		is_deeply({ map { $_->{status} => $_->{count} } @{ $f->{status} } }, \%status,
			'facets ' . $json->encode($args) . ': status counts equal a GROUP BY');
		is_deeply({ map { $_->{min} => $_->{count} } @{ $f->{price} } }, \%price,
			'facets ' . $json->encode($args) . ': price buckets equal a GROUP BY');
	}
}

# The last page of a plain browse (filters only, newest first, as
# catalog_anon) ends the walk of the index, not its budget: the walk answers
# it, not the scan of every published product that a spent budget falls
# back to.  Walking every page also checks that the pages hold each
# published product once.
{
	my ($n_pub) = $dbh->selectrow_array(q{SELECT count(*) FROM catalog.product WHERE status = 'published'});
	my (%seen, $dups, $cursor, $last_cursor, $pages);
	$dbh->do('SET ROLE catalog_anon');
	my $ok = eval {
		while (1)
		{
			my $res = $dbh->selectrow_array(
				'SELECT ' . call_sql('catalog_api.search_products', { page_size => 100, cursor => $cursor }) . '::text');
			my $page = $json->decode($res);
			$pages++;
			$dups += grep { $seen{ $_->{id} }++ } @{ $page->{items} };
			last unless defined $page->{next_cursor};
			$last_cursor = $cursor;
			$cursor = $page->{next_cursor};
			die "more pages than products\n" if $pages > $n_pub;
		}
		1;
	};
	$dbh->do('RESET ROLE');
	ok($ok && !$dups && scalar(keys %seen) == $n_pub,
		"a browse, newest first, pages of 100: $pages pages, every published product once ($n_pub)")
	  or diag($@ // '');
	my $e = $json->decode($dbh->selectrow_array(
		'SELECT ' . call_sql('catalog.search_explain', { page_size => 100, cursor => $cursor }) . '::text'));
	my @ran = map { $_->{query} } @{ $e->{queries} };
	my @status_idx = grep { ($_->{'Index Name'} // '') eq 'product_status_category_price_idx' }
	  map { map { $_->[1] } @{ plan_nodes($_->{plan}, 0, []) } } @{ $e->{queries} };
	ok(!@status_idx && (grep { $_ eq 'walked entries' } @ran) && @{ $e->{result}{items} } > 0,
		"the browse's last page: the walk and its count answer, not the status's rows (statements: @ran)");
}

# An editor's filters-only search of a status that holds no row (every
# archived product made a draft, in a transaction rolled back): the walk of
# the sort's index spends its budget and the status's own rows, read
# through (status, category_id, price, id), answer instead (before, the
# walk read the whole table: 100 ms at 100,000 products, past the search
# timeout at a million).  After the facets' tests: the rolled-back update
# leaves its pages not all-visible.
{
	$dbh->begin_work;
	my $moved = $dbh->do(q{UPDATE catalog.product SET status = 'draft' WHERE status = 'archived'});
	ok($moved > 1000, "status archived emptied for the test ($moved rows)");
	for my $sort (qw(newest price_asc price_desc name))
	{
		my $name = "status archived, none left, sort $sort";
		my $e = $json->decode($dbh->selectrow_array(
			'SELECT ' . call_sql('catalog.search_explain', { status => 'archived', sort => $sort }) . '::text'));
		my @nodes = map { map { $_->[1] } @{ plan_nodes($_->{plan}, 0, []) } } @{ $e->{queries} };
		ok(!(grep { $_->{'Node Type'} eq 'Seq Scan' } @nodes) && @{ $e->{result}{items} } == 0,
			"$name: no item, no sequential scan");
		# the name sort's walk filters the status in its index scan, so its
		# budget counts matches only: a short page from it is exact
		next if $sort eq 'name';
		ok((grep { ($_->{'Index Name'} // '') eq 'product_status_category_price_idx'
				  && ($_->{'Index Cond'} // '') =~ /status/ } @nodes),
			"$name: the status's own rows answer")
		  or diag(join('', map { plan_text($_) } @{ $e->{queries} }));
	}
	$dbh->rollback;
}

# A session's planner settings do not change the plans: a new session with
# incremental sort (what the name sort's walk of (name, status) needs),
# index-only scans and nested loops off plans every statement of these
# shapes as the session above did.  search_products runs first and builds
# the plans the backend keeps (search_explain then shows those), so the
# pinning of search_products itself is what is tested.
{
	my $plain = sub {
		my ($explain) = @_;
		return join("\n", map { plan_text($_) } @{ $json->decode($explain)->{queries} });
	};
	my @probe = (
		[ 'sort name, no q' => { sort => 'name' } ],
		[ 'sort name, common word' => { q => 'premium', sort => 'name' } ],
		[ 'sort newest, leaf' => { category_id => $leaf, sort => 'newest' } ],
		[ 'sort price_asc, common word' => { q => 'premium', sort => 'price_asc' } ]);
	my $odd = DBI->connect('dbi:Pg:' . $node->connstr('postgres'),
		undef, undef, { AutoCommit => 1, RaiseError => 1, PrintError => 0 })
	  or die "cannot connect: $DBI::errstr";
	$odd->do('SET enable_incremental_sort = off');
	$odd->do('SET enable_indexonlyscan = off');
	$odd->do('SET enable_nestloop = off');
	for my $p (@probe)
	{
		my ($name, $args) = @$p;
		my $sql = 'SELECT ' . call_sql('catalog.search_explain', $args) . '::text';
		my ($want) = $dbh->selectrow_array($sql);
		$odd->selectrow_array('SELECT ' . call_sql('catalog_api.search_products', $args) . ' IS NOT NULL');
		my ($got) = $odd->selectrow_array($sql);
		is($plain->($got), $plain->($want),
			"$name: the same plans under a session's own planner settings");
	}
	$odd->disconnect;
}

# The planning traces go to the server log only (at log_min_messages
# debug1), never to the client: they carry statistics over every row,
# drafts included, and any caller may set client_min_messages.
{
	my $offset = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql(
		'postgres', q{SET client_min_messages = debug1;
		              SET log_min_messages = debug1;
		              SELECT catalog_api.search_products(q => 'wool') IS NOT NULL;});
	is($ret, 0, 'a search at debug1 runs');
	unlike($err, qr/search: (?:sort|class) /, 'the client gets no planning trace');
	like(slurp_file($node->logfile, $offset), qr/search: (?:sort|class) /, 'the server log has it');
}

$dbh->disconnect;
$node->stop;
done_testing();
