# audit_crash.pl: audit rows survive crashes exactly as their writes do,
# and the sealer catches up afterwards.
#
# A throw-away cluster (preloaded like test/catalog.conf) with the sealing
# worker every 100 ms on the test database.  pgbench clients write through
# the API: each script run creates a product and updates it three times
# (one autocommit update, two in one explicit transaction), then updates
# one of the client's earlier products; every update changes the price, so
# every committed write has an audit row.  While they run:
#   1. one client backend is killed with SIGKILL: the postmaster ends every
#      backend and reinitialises (crash recovery); the clients die;
#   2. the writes resume with new clients;
#   3. the server is stopped in immediate mode (no checkpoint) mid-write,
#      and started again (crash recovery).
# Then:
#   - every product has exactly one audit insert and one update per later
#     version: the versions in its audit rows are 1..version, no gap, no
#     duplicate, and its last audit row carries its current price;
#   - no audit row lacks its write: none for a product that does not exist,
#     none above a product's version;
#   - the worker seals everything (polled, with the harness's timeout) and
#     audit_verify() passes;
#   - with the log grown to 6,000 rows and the audit tables' statistics
#     removed, one seal pass scans no audit table sequentially and fetches
#     only the new rows through the indexes (its cost follows the new rows,
#     not the size of the log).
#
# Uses PostgreSQL::Test::Cluster (run by `make test` with the PGXS Perl
# modules on the include path) and pgbench from the same bin directory.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;

my $db = 'audit_crash';
my $clients = 4;

my $node = catalog_node('audit_crash');
$node->append_conf(
	'postgresql.conf', qq{
catalog.audit_seal_interval = '100ms'
catalog.audit_seal_database = '$db'
restart_after_crash = on
log_min_messages = log
});
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION catalog CASCADE');
# This month's partition before the writers start, as the worker makes it in
# a deployment: the worker failed to start (the database did not exist yet)
# and would otherwise create it concurrently with the writers after the
# crash, a race of its own (test/isolation/specs/audit_maintain_race.spec).
$node->safe_psql($db, 'SELECT catalog_api.audit_maintain()');
my $cat = $node->safe_psql(
	$db, q{
	SELECT set_config('catalog.actor', 'crash-setup', false) IS NULL;
	SELECT catalog_api.create_category(name => 'Crash', slug => 'crash')->>'id';
});
($cat) = $cat =~ /(\d+)\s*\z/ or die "no category id in: $cat";

# One pgbench script: a product, three updates, and an update of an older
# product of the same client (clients never touch each other's products,
# so no update fails on a stale version).
my $script = PostgreSQL::Test::Utils::tempdir() . '/write.sql';
PostgreSQL::Test::Utils::append_to_file(
	$script, qq{\\set n random(1, 2000000000)
SELECT (catalog_api.create_product(sku => 'CR' || :client_id || 'X' || :n, name => 'Crash item', price => 1, category_id => $cat))->>'id' AS pid \\gset
SELECT catalog_api.update_product(id => :pid, expected_version => 1, price => 2) IS NOT NULL AS updated;
BEGIN;
SELECT catalog_api.update_product(id => :pid, expected_version => 2, price => 3) IS NOT NULL AS updated;
SELECT catalog_api.update_product(id => :pid, expected_version => 3, price => 4) IS NOT NULL AS updated;
COMMIT;
SELECT id AS oid, version AS over FROM catalog.product WHERE sku LIKE 'CR' || :client_id || 'X%' ORDER BY random() LIMIT 1 \\gset
SELECT catalog_api.update_product(id => :oid, expected_version => :over, price => :over + 100) IS NOT NULL AS updated;
});

# start_writers: pgbench in the background, for at most two minutes.
sub start_writers
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $clients, '-j', 2, '-T', 120, '-f', $script,
			'-h', $node->host, '-p', $node->port, $db
		],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub products
{
	return $node->safe_psql($db, q{SELECT count(*) FROM catalog.product WHERE sku LIKE 'CR%'});
}

# 1. Writes, then SIGKILL of one client backend.
my $w = start_writers();
ok($node->poll_query_until($db, q{SELECT count(*) >= 40 FROM catalog.product WHERE sku LIKE 'CR%'}),
	'the writers are writing');
my $victim = $node->safe_psql($db,
	q{SELECT pid FROM pg_stat_activity
	  WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
	  ORDER BY state = 'active' DESC, pid LIMIT 1});
ok($victim =~ /^\d+$/, "a pgbench backend to kill ($victim)");
my $before_kill = products();
kill 'KILL', $victim;
$w->{h}->finish;
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server is back after the crash of one backend');
like(slurp_file($node->logfile), qr/server process \(PID $victim\) was terminated by signal 9/,
	'the postmaster saw the killed backend and reinitialised');
my $after_kill = products();
diag("products: $before_kill before the kill, $after_kill after recovery");

# 2. Writes resume, 3. immediate stop while they run.
$w = start_writers();
ok( $node->poll_query_until(
		$db, "SELECT count(*) >= $after_kill + 40 FROM catalog.product WHERE sku LIKE 'CR%'"),
	'writes resume after the crash')
  or diag('pgbench: ' . ${ $w->{err} });
# the worker seals while the writers write, so the stop hits a chain in progress
ok( $node->poll_query_until(
		$db, "SELECT count(*) > 0 FROM catalog.audit_seal s JOIN catalog.audit_log a ON a.id = s.audit_id
		      WHERE a.table_name = 'product' AND a.row_id > (SELECT max(id) FROM catalog.product) - 20"),
	'the worker seals recent writes while the writers run');
$node->stop('immediate');
$w->{h}->finish;
$node->start;
my $final = products();
diag("products after the immediate stop and restart: $final");
cmp_ok($final, '>=', $after_kill + 40, 'the writes committed before the immediate stop are there');

# Every committed write has exactly one audit row, and no audit row lacks
# its write.
my $rows = q{
	WITH a AS (
		SELECT row_id, action, (coalesce(new_values, old_values)->>'version')::integer AS v,
		       (new_values->>'price')::numeric AS price
		FROM catalog.audit_log WHERE table_name = 'product')
};
is( $node->safe_psql(
		$db, $rows . q{
	SELECT count(*) FROM catalog.product p
	WHERE p.sku LIKE 'CR%'
	  AND ((SELECT array_agg(a.v ORDER BY a.v) FROM a WHERE a.row_id = p.id)
	           IS DISTINCT FROM (SELECT array_agg(g ORDER BY g) FROM generate_series(1, p.version) g)
	       OR (SELECT array_agg(a.action ORDER BY a.v) FROM a WHERE a.row_id = p.id)
	           IS DISTINCT FROM ARRAY['insert'] || array_fill('update'::text, ARRAY[p.version - 1]))
}),
	'0',
	'every product has one audit insert and one update per later version (versions 1..version, no gap, no duplicate)');
is( $node->safe_psql(
		$db, $rows . q{
	SELECT count(*) FROM catalog.product p
	WHERE p.sku LIKE 'CR%'
	  AND (SELECT a.price FROM a WHERE a.row_id = p.id ORDER BY a.v DESC LIMIT 1) IS DISTINCT FROM p.price
}),
	'0',
	'the last audit row of every product carries its current price');
is( $node->safe_psql(
		$db, $rows . q{
	SELECT count(*) FROM a
	WHERE NOT EXISTS (SELECT 1 FROM catalog.product p WHERE p.id = a.row_id AND a.v <= p.version)
}),
	'0',
	'no audit row for a product that does not exist, nor above its version');
is( $node->safe_psql(
		$db, q{
	SELECT (SELECT count(*) FROM catalog.audit_log a JOIN catalog.product p ON p.id = a.row_id
	        WHERE a.table_name = 'product' AND p.sku LIKE 'CR%')
	       = (SELECT sum(version) FROM catalog.product WHERE sku LIKE 'CR%')
}),
	't',
	'as many audit rows as committed writes');

# The worker seals everything, and the chain verifies.
ok( $node->poll_query_until(
		$db, q{SELECT (catalog_api.audit_verify()->>'unsealed')::bigint = 0}),
	'the sealing worker seals every audit row after the crashes');
my $verify = $node->safe_psql($db,
	q{SELECT v->>'ok', (v->>'checked')::bigint >= (SELECT count(*) FROM catalog.audit_log) FROM catalog_api.audit_verify() v});
is($verify, 'true|t', 'audit_verify() passes and checked every row');
is( $node->safe_psql(
		$db, q{SELECT count(*) FROM catalog.audit_log a LEFT JOIN catalog.audit_seal s ON s.audit_id = a.id WHERE s.seq IS NULL}),
	'0',
	'no audit row is left without its seal');

# A seal pass reads index entries only, whatever the planner knows: without
# statistics it took a third of the log for "id > last_id" and hashed both
# whole tables at every pass (the sealer's cost grew with the log).  The
# statistics of the audit tables are removed, fresh audit rows are written,
# and one pass (its table scans counted by pg_stat_xact_user_tables, which
# sees this transaction only) must seal them (50) without scanning a
# partition or audit_seal, and fetch few rows.
# A log of at least 6,000 rows first, sealed by the worker.
$node->safe_psql(
	$db, q{
DO $$
BEGIN
	WHILE (SELECT count(*) FROM catalog.audit_log) < 6000 LOOP
		UPDATE catalog.product SET price = price + 1 WHERE sku LIKE 'CR%';
	END LOOP;
END $$;
});
ok( $node->poll_query_until(
		$db, q{SELECT (SELECT count(*) FROM catalog.audit_log) = (SELECT count(*) FROM catalog.audit_seal)}),
	'the worker seals the larger log');
# The worker is pointed at another database, so the pass below is the one
# that seals the new rows: the worker leaves this database (it restarts to
# follow the setting), which pg_stat_activity shows.
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET catalog.audit_seal_database = 'postgres'; SELECT pg_reload_conf();});
ok( $node->poll_query_until(
		'postgres', qq{SELECT count(*) = 0 FROM pg_stat_activity
		                WHERE backend_type = 'catalog audit sealer' AND datname = '$db'}),
	'the worker leaves the test database');
$node->safe_psql(
	$db, q{
DELETE FROM pg_statistic
 WHERE starelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'catalog.audit_log'::regclass
                    UNION ALL SELECT 'catalog.audit_seal'::regclass);
UPDATE catalog.product SET price = price + 1
 WHERE id IN (SELECT id FROM catalog.product ORDER BY id LIMIT 50);
});
my $pass = $node->safe_psql(
	$db, q{
BEGIN;
SELECT catalog_api.audit_seal()->>'sealed';
SELECT coalesce(sum(seq_scan), 0) || ' seq, ' || coalesce(sum(idx_scan), 0) || ' idx, '
       || (coalesce(sum(idx_tup_fetch) FILTER (WHERE relid <> 'catalog.audit_seal'::regclass), 0)
           < (SELECT count(*) FROM catalog.audit_log) / 10) || ' bounded'
  FROM pg_stat_xact_user_tables
 WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'catalog.audit_log'::regclass
                 UNION ALL SELECT 'catalog.audit_seal'::regclass);
SELECT count(*) >= 6000 FROM catalog.audit_log;
COMMIT;
});
# Bounded: the pass fetched fewer audit rows than a tenth of the log (it
# needs the 50 new ones at most; a full index scan with the conditions as a
# filter, which an OR of them allowed, fetches them all).
like($pass, qr/^50\n0 seq, [1-9][0-9]* idx, true bounded\nt$/,
	'a seal pass without statistics reads the audit tables through their indexes only, and only the new rows');

$node->stop;
done_testing();
