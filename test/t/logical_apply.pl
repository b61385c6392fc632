# logical_apply.pl: the caches of a logical replication subscriber.
#
# A backend caches three of the extension's tables: the rate limits
# (catalog.rate_limit), the declared audit masks (catalog.audit_mask) and
# the words of the typo dictionary it found (catalog.search_term).  A change reaches the caches through a relcache
# invalidation that a trigger sends.  A logical replication apply worker
# fires row triggers only, never statement triggers (TRUNCATE excepted), so
# the statement triggers that send the invalidation did nothing for a
# change that arrived by replication; the REPLICA row triggers
# (*_changed_apply, search_term_lock_apply) cover it.
#
# A publisher publishes the three tables; the subscriber has products of
# its own.  One long-lived subscriber session (a pooled connection) fills
# its caches, the publisher changes the tables, and the session's next
# requests must follow the change:
#   1. a mask declared on the publisher masks the session's next audit row;
#   2. a dictionary word deleted on the publisher is put back by the
#      session's next product with that word (before, the session still
#      took it for known and the word stayed missing);
#   3. a limit of one request set on the publisher refuses the session's
#      second request of a new subject (under the cached default, burst
#      200, it would be allowed).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;

my $db = 'apply';

my $pub = catalog_node('apply_publisher', allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', "catalog.audit_seal_interval = 0\n");
$pub->start;
my $sub = catalog_node('apply_subscriber');
$sub->append_conf('postgresql.conf', "catalog.audit_seal_interval = 0\n");
$sub->start;

for my $node ($pub, $sub)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION catalog CASCADE');
}

# The dictionary has no key (duplicates are harmless): its updates and
# deletes are published with the whole row as identity.
$pub->safe_psql($db, q{
ALTER TABLE catalog.search_term REPLICA IDENTITY FULL;
CREATE PUBLICATION catalog_caches FOR TABLE catalog.audit_mask, catalog.search_term, catalog.rate_limit;
});
my $connstr = $pub->connstr . " dbname=$db";
# From 16 on the apply worker writes as each table's owner unless told
# otherwise, and core refuses that for catalog.audit_mask (owned by
# catalog_audit_owner, FORCE ROW LEVEL SECURITY): the README's advice.
my $sub_options =
  $sub->safe_psql('postgres', 'SHOW server_version_num') >= 160000
  ? ' WITH (run_as_owner = true)'
  : '';
$sub->safe_psql($db,
	"CREATE SUBSCRIPTION catalog_caches CONNECTION '$connstr' PUBLICATION catalog_caches$sub_options");
$sub->wait_for_subscription_sync($pub, 'catalog_caches', $db);

# The publisher's dictionary gets "quillwort" from a product there.
$pub->safe_psql($db, q{
SET catalog.actor = 'publisher';
SELECT catalog_api.create_product(sku => 'PUB-1', name => 'Quillwort basket', price => 1,
    category_id => (catalog_api.create_category(name => 'Pub', slug => 'pub') ->> 'id')::bigint);
});
$pub->wait_for_catchup('catalog_caches');
is($sub->safe_psql($db, q{SELECT count(*) FROM catalog.search_term WHERE term = 'quillwort'}),
	'1', 'the word arrived on the subscriber');

# The subscriber session: a product of its own with the word (found, so
# remembered) and an attribute no mask covers yet (stored in clear).
my $session = $sub->background_psql($db);
$session->query_safe(q{SET catalog.actor = 'subscriber'});
# A request as PostgREST makes it (pre_request), its SQLSTATE or "ok".
$session->query_safe(q{
CREATE FUNCTION pg_temp.req(subject text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('request.method', 'GET', true), set_config('request.path', '/rpc/search_products', true),
            set_config('request.jwt.claims', json_build_object('sub', subject)::text, true);
    PERFORM catalog_api.pre_request();
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END;
$$});
is($session->query_safe(q{SELECT pg_temp.req('apply-a')}), 'ok',
	'a request under the default limits (the session caches them)');
$session->query_safe(q{SELECT catalog_api.create_category(name => 'Sub', slug => 'sub')});
$session->query_safe(q{
SELECT catalog_api.create_product(sku => 'SUB-1', name => 'Quillwort teapot', price => 1,
    category_id => (SELECT id FROM catalog.category WHERE slug = 'sub'),
    attributes => '{"supplier_ref": "clear-1"}')});
is($sub->safe_psql($db, q{SELECT count(*) FROM catalog.search_term WHERE term = 'quillwort'}),
	'1', 'the session found the word (no second copy)');
is($sub->safe_psql($db, q{
SELECT new_values #>> '{attributes,supplier_ref}' FROM catalog.audit_log
WHERE table_name = 'product' AND new_values ->> 'sku' = 'SUB-1'}),
	'clear-1', 'no mask yet: the attribute is stored in clear');

# The publisher declares a mask and deletes the word.
$pub->safe_psql($db, q{
SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes',
                                  attribute_key => 'supplier_ref', method => 'redact');
DELETE FROM catalog.search_term WHERE term = 'quillwort';
SELECT catalog_api.rate_limit_set('admin', 'search_products', 0.001, 1);
});
$pub->wait_for_catchup('catalog_caches');
is($sub->safe_psql($db, q{SELECT burst FROM catalog.rate_limit WHERE action = 'search_products'}),
	'1', 'the limit arrived on the subscriber');
is($session->query_safe(q{SELECT pg_temp.req('apply-b')}), 'ok',
	'the first request of a new subject is allowed');
is($session->query_safe(q{SELECT pg_temp.req('apply-b')}), 'PGRST',
	'its second is refused: the limit set on the publisher applies to the session (its cache was invalidated by the apply)');
is($sub->safe_psql($db, q{SELECT count(*) FROM catalog.audit_mask WHERE attribute_key = 'supplier_ref'}),
	'1', 'the mask arrived on the subscriber');
is($sub->safe_psql($db, q{SELECT count(*) FROM catalog.search_term WHERE term = 'quillwort'}),
	'0', 'the deletion arrived on the subscriber');

# The same session writes again.
$session->query_safe(q{
SELECT catalog_api.create_product(sku => 'SUB-2', name => 'Quillwort kettle', price => 1,
    category_id => (SELECT id FROM catalog.category WHERE slug = 'sub'),
    attributes => '{"supplier_ref": "clear-2"}')});
is($sub->safe_psql($db, q{
SELECT new_values #>> '{attributes,supplier_ref}' FROM catalog.audit_log
WHERE table_name = 'product' AND new_values ->> 'sku' = 'SUB-2'}),
	'[redacted]', 'the mask declared on the publisher applies to the session\'s next write');
is($sub->safe_psql($db, q{SELECT count(*) FROM catalog.search_term WHERE term = 'quillwort'}),
	'1', 'the session put the deleted word back (its cache was invalidated by the apply)');
$session->quit;

# A replicated UPDATE and DELETE still change the rows (the BEFORE row
# trigger lets them through).
$pub->safe_psql($db, q{
SET catalog.actor = 'publisher';
SELECT catalog_api.create_product(sku => 'PUB-2', name => 'Zanthoxyl grinder', price => 1,
    category_id => (SELECT id FROM catalog.category WHERE slug = 'pub'));
UPDATE catalog.search_term SET term = 'zanthoxylum' WHERE term = 'zanthoxyl';
});
$pub->wait_for_catchup('catalog_caches');
is($sub->safe_psql($db, q{SELECT string_agg(term, ',' ORDER BY term) FROM catalog.search_term WHERE term LIKE 'zanthox%'}),
	'zanthoxylum', 'a replicated UPDATE of a word is applied');

$sub->safe_psql($db, 'DROP SUBSCRIPTION catalog_caches');
$sub->stop;
$pub->stop;
done_testing();
