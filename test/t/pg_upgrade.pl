# pg_upgrade.pl: a cluster holding the extension, in use, goes through
# pg_upgrade (15 to 15 here: the same binaries on both sides, the path a
# major-version upgrade takes too) with its data, its audit chain and its
# sealer intact, and nothing of the extension runs inside the upgrade.
#
# The old cluster is preloaded like test/catalog.conf and has the
# extension in database postgres, the sealer's default database: products
# and categories written through the API, part of the audit log sealed and
# the chain's head exported, the rest left unsealed (sealing off while
# they are written).  Sealing is then switched on (every 100 ms) and the
# old cluster stopped.  pg_upgrade starts both clusters itself with
# postmaster -b; then:
#   - pg_upgrade succeeds: a sealer in the new cluster would hold a
#     connection to postgres while pg_restore drops and re-creates it
#     ("database is being accessed by other users");
#   - the old cluster's next transaction id did not move: a sealer in the
#     old cluster would seal the unsealed rows after pg_upgrade read it,
#     and the new cluster would hand the same ids out again;
#   - after a normal start of the new cluster, products, categories and
#     audit rows are the same, the worker seals the rest, audit_verify
#     passes and still passes through the head exported before the
#     upgrade, and a new write gets its audit row, sealed too.
use strict;
use warnings;

use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;

my $old = catalog_node('pgup_old');
$old->append_conf('postgresql.conf', "catalog.audit_seal_interval = 0\n");
$old->start;
$old->safe_psql('postgres', 'CREATE EXTENSION catalog CASCADE');

# Writes through the API, as two actors; seal and export the head; more
# writes, left unsealed.
$old->safe_psql(
	'postgres', q{
	SET catalog.actor = 'upgrade-a';
	SELECT catalog_api.create_category(name => 'Upgrade', slug => 'upgrade') IS NOT NULL;
	SELECT catalog_api.create_product(sku => 'UP-' || g, name => 'Upgrade item ' || g, price => g,
	           category_id => (SELECT id FROM catalog.category WHERE slug = 'upgrade'),
	           status => 'published') IS NOT NULL
	  FROM generate_series(1, 5) g;
});
$old->safe_psql('postgres', 'SELECT catalog_api.audit_seal()');
my $head = $old->safe_psql('postgres', q{SELECT h->>'seq' || ' ' || (h->>'hash') FROM catalog_api.audit_head() h});
my ($head_seq, $head_hash) = split / /, $head;
ok($head_seq && $head_seq > 0 && $head_hash =~ /^[0-9a-f]{64}\z/, "old cluster: the chain's head exported ($head_seq)");
$old->safe_psql(
	'postgres', q{
	SET catalog.actor = 'upgrade-b';
	SELECT catalog_api.update_product(id => p.id, expected_version => p.version, price => p.price + 100) IS NOT NULL
	  FROM catalog.product p WHERE p.sku IN ('UP-1', 'UP-2');
	SELECT catalog_api.create_product(sku => 'UP-6', name => 'Upgrade item 6', price => 6,
	           category_id => (SELECT id FROM catalog.category WHERE slug = 'upgrade')) IS NOT NULL;
});

my $state_sql = q{
	SELECT (SELECT string_agg(concat_ws('|', id, sku, name, price, status, version, updated_by), ',' ORDER BY id)
	          FROM catalog.product)
	    || ' / ' || (SELECT string_agg(concat_ws('|', id, slug, version), ',' ORDER BY id) FROM catalog.category)
	    || ' / ' || (SELECT string_agg(concat_ws('|', id, actor, table_name, row_id, action, encode(row_hash, 'hex')), ',' ORDER BY id)
	                   FROM catalog.audit_log)
};
my $state = $old->safe_psql('postgres', $state_sql);
my $unsealed = $old->safe_psql('postgres',
	'SELECT count(*) FROM catalog.audit_log a WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id)');
is($unsealed, '3', 'old cluster: three audit rows left unsealed');

# Sealing on, as in production, then stop.
$old->append_conf('postgresql.conf', "catalog.audit_seal_interval = 100\n");
$old->stop('fast');

my $bindir = $old->config_data('--bindir');
my $next_xid = sub {
	my ($stdout) = run_command([ "$bindir/pg_controldata", $old->data_dir ]);
	my ($xid) = $stdout =~ /^Latest checkpoint's NextXID:\s*(\S+)$/m
	  or die "no NextXID in pg_controldata output:\n$stdout";
	return $xid;
};
my $xid_before = $next_xid->();

my $new = catalog_node('pgup_new');

# pg_upgrade writes its logs under the new data directory and wants a
# working directory of its own.
my $cwd = getcwd();
chdir(PostgreSQL::Test::Utils::tempdir()) or die "chdir: $!";
command_ok(
	[
		"$bindir/pg_upgrade", '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port
	],
	'pg_upgrade succeeds with the extension preloaded on both sides');
chdir($cwd) or die "chdir: $!";

is($next_xid->(), $xid_before, 'the old cluster assigned no transaction id while pg_upgrade ran');

$new->start;
is($new->safe_psql('postgres', $state_sql), $state, 'new cluster: the same products, categories and audit rows');

# The worker seals the rows left unsealed (polled with the harness's
# timeout), the chain verifies, also through the head exported before.
ok( $new->poll_query_until(
		'postgres',
		'SELECT NOT EXISTS (SELECT 1 FROM catalog.audit_log a WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id))'
	),
	'new cluster: the sealer seals the rows the old one left');
is($new->safe_psql('postgres', q{SELECT catalog_api.audit_verify()->>'ok'}), 'true', 'new cluster: audit_verify passes');
is( $new->safe_psql(
		'postgres', qq{SELECT catalog_api.audit_verify(anchor_seq => $head_seq, anchor_hash => '$head_hash')->>'ok'}),
	'true',
	'new cluster: the chain still passes through the head exported before the upgrade');

# A new write: its audit row, sealed by the worker.
$new->safe_psql(
	'postgres', q{
	SET catalog.actor = 'upgrade-c';
	SELECT catalog_api.update_product(id => p.id, expected_version => p.version, price => 1) IS NOT NULL
	  FROM catalog.product p WHERE p.sku = 'UP-6';
});
ok( $new->poll_query_until(
		'postgres', q{
	SELECT EXISTS (SELECT 1 FROM catalog.audit_log a JOIN catalog.audit_seal s ON s.audit_id = a.id
	                WHERE a.actor = 'upgrade-c' AND a.action = 'update')}
	),
	'new cluster: a new write gets its audit row, and the sealer seals it');
is($new->safe_psql('postgres', q{SELECT catalog_api.audit_verify()->>'ok'}), 'true', 'new cluster: audit_verify passes after it');

$new->stop;
done_testing();
