# server_states.pl: the extension in the server states a deployment meets.
#
#  1. Loaded without shared_preload_libraries: CREATE EXTENSION and every
#     data function work; health() says "degraded" and shared_memory false,
#     and under PostgREST (request.method set) answers HTTP 503 through
#     response.status.
#  2. Preloaded: health() is "ok" and sets no status.
#  3. A streaming hot standby: every read function answers what the
#     primary answers (in_recovery true), as the role that may call it in a
#     read-only transaction, and every write is refused with 25006 and a
#     message that says why.
#  4. pg_dump and restore: the catalog's tables are configuration tables of
#     the extension, so their rows (and sequence positions) are in a plain
#     pg_dump, and the dump restores with psql even when a parent category
#     lies physically after its children.  The audit history comes along
#     whole (monthly partitions, default partition, seals) and still
#     verifies; the restore runs with session_replication_role = replica,
#     as README.md says, so loading the rows writes no new audit rows.
#
#  5. A search cursor is refused in a copy of its database (CREATE
#     DATABASE ... TEMPLATE copies the signing keys).
#
#  0. (first) A database that is not UTF8 refuses CREATE EXTENSION.
#
# Uses PostgreSQL::Test::Cluster (run by `make test` with the PGXS Perl
# modules on the include path).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION catalog CASCADE');

# 0. Only in a UTF8 database: elsewhere CREATE EXTENSION fails and leaves
# nothing behind (not even pg_trgm, created by CASCADE in the same
# statement).
$primary->safe_psql('postgres',
	"CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'");
{
	my ($ret, $out, $err) = $primary->psql('latin', 'CREATE EXTENSION catalog CASCADE');
	isnt($ret, 0, 'CREATE EXTENSION fails in a LATIN1 database');
	like($err, qr/extension "catalog" requires a UTF8 database, not LATIN1/,
		'and says that the database must be UTF8');
	is( $primary->safe_psql('latin',
			"SELECT count(*) FROM pg_extension WHERE extname IN ('catalog', 'pg_trgm')"),
		'0', 'and leaves no extension behind');
}
$primary->safe_psql('postgres', 'DROP DATABASE latin');

# 1. Not preloaded.
is( $primary->safe_psql(
		'postgres',
		"SELECT h->>'status', h->>'shared_memory' FROM catalog_api.health() h"),
	'degraded|false',
	'without preloading, health() is degraded and reports no shared memory');

my $doc = $primary->safe_psql(
	'postgres', q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT catalog_api.create_category(name => 'Tap', slug => 'tap') IS NOT NULL;
	SELECT (catalog_api.create_product(sku => 'tap-1', name => 'Tap product', price => 3.5,
	        category_id => (SELECT id FROM catalog.category WHERE slug = 'tap'),
	        status => 'published'))->>'sku';
});
like($doc, qr/TAP-1$/, 'without preloading, create_product works');

# The rate limiter cannot count without shared memory: the API functions
# stay usable for plain SQL, but PostgREST's pre-request fails closed.
my ($rc, $out, $err) = $primary->psql('postgres', 'SELECT catalog_api.pre_request()');
isnt($rc, 0, 'without preloading, pre_request() fails (fail closed)');
like($err, qr/rate limiter needs shared memory/, '... saying that the limiter needs shared memory');
like($err, qr/HINT:\s+Add catalog to shared_preload_libraries and restart the server/,
	'... with a hint that says how to fix it');
is($primary->safe_psql('postgres', "SELECT catalog_api.list_categories() IS NOT NULL"), 't',
	'without preloading, a plain SQL read is served');

# Every other API function, called once with valid arguments, works too;
# the list must name every function of catalog_api (pre_request above is
# the one that fails by design), so a new function cannot miss this check.
# On rows of their own (the sections below use TAP-1 and tap).
$primary->safe_psql('postgres', q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT catalog_api.create_category(name => 'Tap x', slug => 'tap-x') IS NOT NULL;
	SELECT catalog_api.create_product(sku => 'tapx-1', name => 'Tap extra', price => 2,
	       category_id => (SELECT id FROM catalog.category WHERE slug = 'tap-x')) IS NOT NULL;
});
my @calls = (
	[ get_product => q{SELECT catalog_api.get_product((SELECT id FROM catalog.product WHERE sku = 'TAPX-1'))} ],
	[ update_product => q{SELECT catalog_api.update_product(id => (SELECT id FROM catalog.product WHERE sku = 'TAPX-1'),
	      expected_version => 1, name => 'Tap product two')} ],
	[ archive_product => q{SELECT catalog_api.archive_product(id => (SELECT id FROM catalog.product WHERE sku = 'TAPX-1'),
	      expected_version => 2)} ],
	[ search_products => q{SELECT catalog_api.search_products(q => 'tap', status => 'archived')} ],
	[ product_facets => q{SELECT catalog_api.product_facets(q => 'tap', status => 'archived')} ],
	[ update_category => q{SELECT catalog_api.update_category(id => (SELECT id FROM catalog.category WHERE slug = 'tap-x'),
	      expected_version => 1, name => 'Tap two')} ],
	[ product_history => q{SELECT catalog_api.product_history((SELECT id FROM catalog.product WHERE sku = 'TAPX-1'))} ],
	[ category_history => q{SELECT catalog_api.category_history((SELECT id FROM catalog.category WHERE slug = 'tap-x'))} ],
	[ purge_idempotency => q{SELECT catalog_api.purge_idempotency()} ],
	[ refresh_search_terms => q{SELECT catalog_api.refresh_search_terms()} ],
	[ audit_seal => q{SELECT catalog_api.audit_seal()} ],
	[ audit_verify => q{SELECT catalog_api.audit_verify()} ],
	[ audit_head => q{SELECT catalog_api.audit_head()} ],
	[ audit_maintain => q{SELECT catalog_api.audit_maintain()} ],
	[ audit_mask_set => q{SELECT catalog_api.audit_mask_set('product', 'description', NULL, 'redact')} ],
	[ audit_masks => q{SELECT catalog_api.audit_masks()} ],
	[ audit_mask_drop => q{SELECT catalog_api.audit_mask_drop('product', 'description', NULL)} ],
	[ audit_by_actor => q{SELECT catalog_api.audit_by_actor('tap-user')} ],
	[ audit_by_request => q{SELECT catalog_api.audit_by_request('tap-request')} ],
	[ audit_drop_partitions => q{SELECT catalog_api.audit_drop_partitions(now() - interval '10 years')} ],
	[ rate_limits => q{SELECT catalog_api.rate_limits()} ],
	[ rate_limit_set => q{SELECT catalog_api.rate_limit_set('admin', 'read', 10, 10)} ],
	[ rate_limit_drop => q{SELECT catalog_api.rate_limit_drop('admin', 'read')} ],
	[ csrf_token => q{SELECT set_config('request.jwt.claims', '{"sid": "tap-session"}', true) IS NOT NULL;
	      SELECT catalog_api.csrf_token()} ],
);
for my $c (@calls)
{
	my ($name, $sql) = @$c;
	my ($crc, $cout, $cerr) = $primary->psql('postgres',
		"BEGIN; SELECT set_config('catalog.actor', 'tap-user', true) IS NOT NULL; $sql; COMMIT;",
		on_error_stop => 1);
	is($crc, 0, "without preloading, $name works") or diag($cerr);
}
is( $primary->safe_psql(
		'postgres', q{
	SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc
	WHERE pronamespace = 'catalog_api'::regnamespace
	  AND proname NOT IN ('pre_request', 'health', 'create_category', 'create_product', 'list_categories')}),
	join(',', sort map { $_->[0] } @calls),
	'... which is every function of catalog_api (health, create_category, create_product, list_categories and pre_request above)');
$primary->safe_psql('postgres', q{
	DELETE FROM catalog.product WHERE sku = 'TAPX-1';
	DELETE FROM catalog.category WHERE slug = 'tap-x';
});

# As PostgREST calls it: the pre-request function first, which fails closed
# without shared memory for every other path (above) but lets the probe
# through, so the load balancer sees the 503, not a 500.
is( $primary->safe_psql(
		'postgres', q{
	BEGIN;
	SELECT set_config('request.method', 'GET', true), set_config('request.path', '/rpc/health', true);
	SELECT catalog_api.pre_request();
	SELECT catalog_api.health() IS NOT NULL;
	SELECT current_setting('response.status', true);
	COMMIT;
}),
	"GET|/rpc/health\n\nt\n503",
	'under PostgREST (pre_request, then health) a degraded health() answers HTTP 503');

# 2. Preloaded.
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'catalog'");
# The dump-and-restore step below seals by itself: the background worker
# sealing in between would make the original and the copy differ by design.
$primary->append_conf('postgresql.conf', "catalog.audit_seal_interval = 0");
$primary->restart;
is( $primary->safe_psql(
		'postgres',
		"SELECT h->>'status', h->>'shared_memory', h->>'in_recovery' FROM catalog_api.health() h"),
	'ok|true|false',
	'preloaded, health() is ok');
is( $primary->safe_psql(
		'postgres', q{
	BEGIN;
	SELECT set_config('request.method', 'GET', true);
	SELECT catalog_api.health() IS NOT NULL;
	SELECT coalesce(nullif(current_setting('response.status', true), ''), 'unset');
	COMMIT;
}),
	"GET\nt\nunset",
	'a healthy node sets no response status');

# 3. Hot standby.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "shared_preload_libraries = 'catalog'");
$standby->start;
$primary->safe_psql('postgres',
	"SELECT catalog_api.update_product(id => (SELECT id FROM catalog.product WHERE sku = 'TAP-1'), expected_version => 1, price => 4)"
);
$primary->wait_for_catchup($standby);

is( $standby->safe_psql(
		'postgres',
		"SELECT h->>'status', h->>'in_recovery' FROM catalog_api.health() h"),
	'ok|true',
	'on the standby, health() is ok and in recovery');

my $id = $primary->safe_psql('postgres', "SELECT id FROM catalog.product WHERE sku = 'TAP-1'");
is( $standby->safe_psql(
		'postgres', "SET ROLE catalog_anon; SELECT catalog_api.get_product($id)::text"),
	$primary->safe_psql('postgres', "SELECT catalog_api.get_product($id)::text"),
	'on the standby, get_product answers the primary\'s document, as catalog_anon');
is( $standby->safe_psql(
		'postgres', "SELECT jsonb_array_length(catalog_api.list_categories())"),
	'1', 'on the standby, list_categories answers');

# Every other read function answers on the standby what it answers on the
# primary (nothing writes in between: sealing is off), as the role that
# may call it, in a read-only transaction as PostgREST's GET runs.
my $cat_id = $primary->safe_psql('postgres', "SELECT id FROM catalog.category WHERE slug = 'tap'");
my @reads = (
	[ catalog_anon => "catalog_api.search_products(q => 'tap')" ],
	[ catalog_anon => "catalog_api.search_products(category_id => $cat_id, sort => 'price_asc', page_size => 1)" ],
	[ catalog_anon => "catalog_api.search_products(q => 'tpa product')" ],
	[ catalog_anon => "catalog_api.product_facets(q => 'tap')" ],
	[ catalog_editor => "catalog_api.search_products(q => 'tap', status => 'archived')" ],
	[ catalog_admin => "catalog_api.product_history($id)" ],
	[ catalog_admin => "catalog_api.category_history($cat_id)" ],
	[ catalog_admin => "catalog_api.audit_by_actor('tap-user')" ],
	[ catalog_admin => "catalog_api.audit_by_request('tap-request')" ],
	[ catalog_admin => "catalog_api.audit_verify()" ],
	[ catalog_admin => "catalog_api.audit_head()" ],
	[ catalog_admin => "catalog_api.audit_masks()" ],
	[ catalog_admin => "catalog_api.rate_limits()" ],
);
for my $r (@reads)
{
	my ($role, $call) = @$r;
	my $sql = "BEGIN READ ONLY; SET LOCAL ROLE $role; SELECT ($call)::text; COMMIT;";
	my $want = $primary->safe_psql('postgres', $sql);
	my ($rrc, $rout, $rerr) = $standby->psql('postgres', $sql);
	is($rrc, 0, "on the standby, $call answers as $role") or diag($rerr);
	is($rout, $want, "on the standby, $call answers what the primary answers");
}
like( $standby->safe_psql(
		'postgres', q{BEGIN READ ONLY; SET LOCAL ROLE catalog_anon;
		SELECT set_config('request.jwt.claims', '{"sid": "tap-standby-session"}', true) IS NOT NULL;
		SELECT length(catalog_api.csrf_token()->>'token') > 0; COMMIT;}),
	qr/^t\nt$/, 'on the standby, csrf_token answers a token for a session');

my ($ret, $sout, $serr) = $standby->psql('postgres',
	"SELECT catalog_api.update_product(id => $id, expected_version => 2, name => 'x')",
	extra_params => ['-v', 'VERBOSITY=verbose']);
isnt($ret, 0, 'on the standby, update_product fails');
like($serr, qr/25006: update_product cannot run in a read-only transaction/,
	'on the standby, a write is refused with 25006 and says why');

$standby->stop;

# 4. Dump and restore.  Renaming the root after its child was created puts
# the parent's row physically after the child's.
$primary->safe_psql(
	'postgres', q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT catalog_api.create_category(name => 'Tap child', slug => 'tap-child',
	       parent_id => (SELECT id FROM catalog.category WHERE slug = 'tap')) IS NOT NULL;
	SELECT catalog_api.update_category(id => (SELECT id FROM catalog.category WHERE slug = 'tap'),
	       expected_version => 1, name => 'Tap renamed') IS NOT NULL;
});
# Audit history to carry: monthly partitions, sealed rows and one unsealed.
$primary->safe_psql(
	'postgres', q{
	SELECT catalog_api.audit_maintain(2) IS NOT NULL;
	SELECT set_config('catalog.actor', 'ann@example.com', false);
	SELECT catalog_api.create_category(name => 'Ann made', slug => 'ann-made') IS NOT NULL;
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT catalog_api.audit_seal() IS NOT NULL;
	SELECT catalog_api.update_category(id => (SELECT id FROM catalog.category WHERE slug = 'tap-child'),
	       expected_version => 1, name => 'Tap child renamed') IS NOT NULL;
});
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/catalog_dump.sql';
$primary->command_ok([ 'pg_dump', '-f', $dump, '-d', $primary->connstr('postgres') ],
	'pg_dump of a database with the extension');
$primary->safe_psql('postgres', 'CREATE DATABASE restored');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$primary->command_ok(
		[ 'psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $primary->connstr('restored') ],
		'the dump restores with psql, in one transaction');
}
# The audit key, carried as README (Operations) says.
my $ann = q{SELECT jsonb_array_length(catalog_api.audit_by_actor('ann@example.com') -> 'items')};
is($primary->safe_psql('postgres', $ann), '1', 'the original finds the masked actor\'s row');
is($primary->safe_psql('restored', $ann), '0',
	'under the new database\'s own audit key, the restored masked actor is not found');
my $keyfile = $PostgreSQL::Test::Utils::tmp_check . '/audit_key.copy';
$primary->command_ok(
	[ 'psql', '-X', '-A', '-t', '-o', $keyfile, '-d', $primary->connstr('postgres'), '-c',
	  q{COPY (SELECT purpose, kid, secret, created_at FROM catalog.signing_key WHERE purpose = 'audit') TO STDOUT} ],
	'the audit key is copied out of the old database');
$primary->command_ok(
	[ 'psql', '-X', '-1', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('restored'),
	  '-c', q{DELETE FROM catalog.signing_key WHERE purpose = 'audit'},
	  '-c', qq{\\copy catalog.signing_key (purpose, kid, secret, created_at) FROM '$keyfile'} ],
	'and into the restored one');
is($primary->safe_psql('restored', $ann), '1', 'with the carried key, the restored masked actor is found');
my $audit_rows = q{
	SELECT string_agg(id || ':' || table_name || ':' || row_id || ':' || action || ':' || encode(row_hash, 'hex'), ',' ORDER BY id)
	    || '|' || (SELECT string_agg(seq || ':' || audit_id || ':' || encode(chain_hash, 'hex'), ',' ORDER BY seq) FROM catalog.audit_seal)
	  FROM catalog.audit_log
};
is($primary->safe_psql('restored', $audit_rows), $primary->safe_psql('postgres', $audit_rows),
	'the restored audit rows and seals equal the original, and the restore wrote none');
is($primary->safe_psql('restored', q{SELECT catalog_api.audit_seal()->>'sealed'}), '1',
	'after the restore, the unsealed row seals');
is($primary->safe_psql('restored', q{SELECT (catalog_api.audit_verify()->>'ok')}), 'true',
	'after the restore, the audit chain verifies');
my $snapshot = q{
	SELECT (SELECT string_agg(id || ':' || coalesce(parent_id::text, '-') || ':' || name, ',' ORDER BY id) FROM catalog.category)
	    || '|' || (SELECT string_agg(sku || ':' || price || ':' || version, ',' ORDER BY id) FROM catalog.product)
	    || '|' || (SELECT count(*) FROM catalog.idempotency)
};
is($primary->safe_psql('restored', $snapshot), $primary->safe_psql('postgres', $snapshot),
	'the restored catalog equals the original');
like(
	$primary->safe_psql(
		'restored', q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT ((catalog_api.create_product(sku => 'tap-2', name => 'After restore', price => 1,
	        category_id => (SELECT id FROM catalog.category WHERE slug = 'tap-child')))->>'id')::bigint
	       > (SELECT max(id) FROM catalog.product);
}),
	qr/t$/,
	'after the restore, new rows take ids after the restored ones');
$primary->safe_psql('restored', q{
	SELECT set_config('catalog.actor', 'ann@example.com', false);
	SELECT catalog_api.create_category(name => 'Ann again', slug => 'ann-again') IS NOT NULL;
});
is($primary->safe_psql('restored', $ann), '2',
	'one lookup finds the masked actor\'s rows from before and after the restore');

# 4b. A column, index and trigger an administrator added to catalog.product:
# pg_dump leaves out an extension table's definition, so the README's
# sectioned restore re-applies them between pre-data and data, in one
# transaction.
$primary->safe_psql('postgres', 'CREATE DATABASE extra');
my $mine = q{
	ALTER TABLE catalog.product ADD COLUMN extra_note integer;
	CREATE INDEX product_extra_note_idx ON catalog.product (extra_note);
};
$primary->safe_psql('extra', 'CREATE EXTENSION catalog CASCADE; ' . $mine . q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT catalog_api.create_category(name => 'Extra', slug => 'extra') IS NOT NULL;
	SELECT catalog_api.create_product(sku => 'extra-1', name => 'Extra product', price => 1,
	       category_id => (SELECT id FROM catalog.category WHERE slug = 'extra')) IS NOT NULL;
	UPDATE catalog.product SET extra_note = 42;
	SELECT catalog_api.audit_seal() IS NOT NULL;
});
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
$primary->command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/extra.custom", '-d', $primary->connstr('extra') ],
	'pg_dump (custom format) of a database whose product table has an added column');
for my $section ('pre-data', 'data', 'post-data')
{
	$primary->command_ok([ 'pg_restore', "--section=$section", '-f', "$tmp/extra-$section.sql", "$tmp/extra.custom" ],
		"pg_restore writes the $section section");
}
append_to_file("$tmp/extra-mine.sql", $mine);
$primary->safe_psql('postgres', 'CREATE DATABASE extra_restored');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$primary->command_ok(
		[ 'psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', "$tmp/extra-pre-data.sql", '-f', "$tmp/extra-mine.sql",
		  '-f', "$tmp/extra-data.sql", '-f', "$tmp/extra-post-data.sql", '-d', $primary->connstr('extra_restored') ],
		'the sections restore in one transaction with the added column re-applied between them');
}
is( $primary->safe_psql('extra_restored', q{
	SELECT sku || ':' || extra_note FROM catalog.product;
	SELECT to_regclass('catalog.product_extra_note_idx') IS NOT NULL;
	SELECT catalog_api.audit_verify()->>'ok';
}),
	"EXTRA-1:42\nt\ntrue",
	'the added column keeps its values, the added index is there, and the audit chain verifies');

# 5. A search cursor belongs to its database: CREATE DATABASE ... TEMPLATE
# copies the signing keys, not the cursors' validity.
$primary->safe_psql(
	'restored', q{
	SELECT set_config('catalog.actor', 'tap-user', false);
	SELECT count(catalog_api.create_product(sku => 'tap-cur-' || i, name => 'Cursor ' || i, price => i,
	       status => 'published', category_id => (SELECT id FROM catalog.category WHERE slug = 'tap-child')))
	FROM generate_series(1, 3) i;
});
my $cursor = $primary->safe_psql('restored',
	q{SELECT catalog_api.search_products(page_size => 1) ->> 'next_cursor'});
like($cursor, qr/^[A-Za-z0-9_-]+$/, 'a first page gives a cursor');
is( $primary->safe_psql('restored',
		"SELECT jsonb_array_length(catalog_api.search_products(page_size => 1, cursor => '$cursor') -> 'items')"),
	'1', 'the cursor pages on in its database');
$primary->safe_psql('postgres', 'CREATE DATABASE cloned TEMPLATE restored');
my ($crc, $cout, $cerr) = $primary->psql('cloned',
	"SELECT catalog_api.search_products(page_size => 1, cursor => '$cursor')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($crc, 0, 'in a copy of the database, the cursor is refused');
like($cerr, qr/22023/, 'with 22023, as a foreign cursor');

$primary->stop;
done_testing();
