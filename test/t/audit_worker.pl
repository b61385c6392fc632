# audit_worker.pl: the sealing worker survives a failing job, and does not
# wait for another session's hold on the chain.
#
# A throw-away cluster (preloaded like test/catalog.conf) with the worker
# sealing every 100 ms.
#   1. Its partition maintenance is made to fail: a plain table holds the
#      name of next month's partition, and the worker runs the maintenance
#      when it starts in the test database.  The error reaches the server
#      log; the worker does not exit (the postmaster logs no exit of it and
#      its PID stays) and goes on sealing: a write made after the failure
#      is sealed.  Before, any error ended the worker, which the postmaster
#      restarted 10 s later, to fail again.
#   2. Another session holds the chain's lock (its own audit_seal() in an
#      open transaction): the worker skips its passes instead of waiting,
#      so it is seen idle again after a pass that began while the lock was
#      held; once the lock is released it seals the rows written meanwhile.
#   3. Another session holds catalog.audit_seal in SHARE mode: the
#      worker's pass gives up after its lock timeout (55P03 in the log)
#      and releases the chain's lock, instead of waiting with it held;
#      once the table is free it seals the rows written meanwhile.
#   4. DROP EXTENSION and CREATE EXTENSION in one transaction (so no pass
#      sees the extension missing) take the monthly partitions away: the
#      worker, which had maintained them, sees the new extension and
#      creates them again at once, not at its next hourly maintenance
#      (audited writes would go to the default partition until then).
#   5. The same with sealing off: the worker checks the extension at every
#      wake.
#
# Uses PostgreSQL::Test::Cluster (run by `make test` with the PGXS Perl
# modules on the include path).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;

my $db = 'audit_worker';

my $node = catalog_node('audit_worker');
# The worker starts in postgres, where the extension is not installed: it
# waits there until it is pointed at the test database.  (log_min_messages
# stays at warning, from catalog.conf: at log, ERRORs are not logged.)
$node->append_conf(
	'postgresql.conf', qq{
catalog.audit_seal_interval = '100ms'
catalog.audit_seal_database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION catalog CASCADE');
# Next month's partition name taken by a plain table: maintenance refuses it.
my $stray = $node->safe_psql($db,
	q{SELECT 'audit_log_p' || to_char((now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYYMM')});
$node->safe_psql($db, "CREATE TABLE catalog.$stray (id bigint)");
my $cat = $node->safe_psql(
	$db, q{
	SELECT set_config('catalog.actor', 'worker-setup', false) IS NULL;
	SELECT catalog_api.create_category(name => 'Worker', slug => 'worker')->>'id';
});
($cat) = $cat =~ /(\d+)\s*\z/ or die "no category id in: $cat";

my $offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET catalog.audit_seal_database = '$db'; SELECT pg_reload_conf();");

# 1. The maintenance fails at the worker's start in the test database.
$offset = $node->wait_for_log(qr/relation "catalog\.\Q$stray\E" exists but is not the partition of its month/,
	$offset);
ok(1, 'the worker\'s failed maintenance is in the server log');
my $pid = $node->safe_psql('postgres',
	qq{SELECT pid FROM pg_stat_activity WHERE backend_type = 'catalog audit sealer' AND datname = '$db'});
like($pid, qr/^\d+$/, 'the worker is connected to the test database after the failure');

my $unsealed = q{SELECT count(*) FROM catalog.audit_log a
                 WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id)};
$node->safe_psql($db,
	"SELECT catalog_api.create_product(sku => 'WK-1', name => 'After the failure', price => 1, category_id => $cat)");
ok($node->poll_query_until($db, "SELECT ($unsealed) = 0"),
	'a write made after the failed maintenance is sealed');
is( $node->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity WHERE backend_type = 'catalog audit sealer' AND datname = '$db'}),
	$pid,
	'the same worker (it did not exit and restart)');
unlike(slurp_file($node->logfile, $offset), qr/background worker "catalog audit sealer".*exited/,
	'the postmaster logged no exit of the worker after the failure');

# 2. Another session holds the chain's lock.
my $holder = $node->background_psql($db);
$holder->query_safe('BEGIN');
$holder->query_safe('SELECT catalog_api.audit_seal()');
my $t0 = $node->safe_psql($db, 'SELECT clock_timestamp()');
$node->safe_psql($db,
	"SELECT catalog_api.create_product(sku => 'WK-2', name => 'While locked', price => 1, category_id => $cat)");
ok( $node->poll_query_until(
		'postgres', qq{SELECT state = 'idle' AND state_change > '$t0'
		                 FROM pg_stat_activity
		                WHERE backend_type = 'catalog audit sealer' AND datname = '$db'}),
	'while another session holds the chain, the worker finishes its passes instead of waiting for the lock');
is($node->safe_psql($db, $unsealed), '1', 'the row written meanwhile waits unsealed');
$holder->query_safe('COMMIT');
$holder->quit;
ok($node->poll_query_until($db, "SELECT ($unsealed) = 0"), 'once the lock is released, the worker seals it');
is($node->safe_psql($db, q{SELECT catalog_api.audit_verify()->>'ok'}), 'true', 'and the chain verifies');

# 3. Another session holds an audit table in a mode the pass conflicts with
# (here catalog.audit_seal in SHARE mode: the pass reads the log and the
# seals, then waits to insert its seals; writers and the checks below only
# read it): the worker's pass gives up after its lock timeout instead of
# waiting with the chain's lock and a snapshot held, and seals once the
# table is free.
$offset = -s $node->logfile;
my $locker = $node->background_psql($db);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE catalog.audit_seal IN SHARE MODE');
$node->safe_psql($db,
	"SELECT catalog_api.create_product(sku => 'WK-3', name => 'While the log is held', price => 1, category_id => $cat)");
$offset = $node->wait_for_log(qr/canceling statement due to lock timeout/, $offset);
ok(1, 'the worker\'s pass gives up on the held table with a lock timeout (in the server log)');
ok( $node->poll_query_until(
		$db, q{SELECT EXISTS (SELECT 1 FROM catalog.audit_chain FOR UPDATE NOWAIT)}),
	'and lets go of the chain\'s lock (NOWAIT takes it while the table is still held)');
is($node->safe_psql($db, $unsealed), '1', 'the row written meanwhile waits unsealed');
$locker->query_safe('COMMIT');
$locker->quit;
ok($node->poll_query_until($db, "SELECT ($unsealed) = 0"), 'once the table is free, the worker seals it');
is($node->safe_psql($db, q{SELECT catalog_api.audit_verify()->>'ok'}), 'true', 'and the chain verifies');

# 4. A cancel (pg_cancel_backend) sent to the worker, whether it lands while
# it waits between passes (nothing to cancel: ignored) or inside a pass (the
# pass fails and is retried), never ends the worker: the same process goes
# on sealing.  The worker waits most of the time, so most of these land
# between passes; the build before the fix exited on the first of those.
$offset = -s $node->logfile;
for my $i (1 .. 5) {
	is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"), 't', "cancel $i sent to the worker");
	ok($node->poll_query_until('postgres', qq{SELECT pg_stat_get_backend_pid(s) IS NOT NULL
	                                            FROM pg_stat_get_backend_idset() s
	                                           WHERE pg_stat_get_backend_pid(s) = $pid}),
		"the worker is still there after cancel $i");
}
$node->safe_psql($db,
	"SELECT catalog_api.create_product(sku => 'WK-4', name => 'After the cancels', price => 1, category_id => $cat)");
ok($node->poll_query_until($db, "SELECT ($unsealed) = 0"), 'after the cancels, the worker seals a new write');
is( $node->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity WHERE backend_type = 'catalog audit sealer' AND datname = '$db'}),
	$pid,
	'the same worker (cancels did not end it)');
unlike(slurp_file($node->logfile, $offset), qr/background worker "catalog audit sealer".*exited/,
	'the postmaster logged no exit of the worker after the cancels');

# 4. The stray table gone, a restarted worker maintains at its start; then
# the extension is dropped and created again in one transaction.
$node->safe_psql($db, "DROP TABLE catalog.$stray");
$node->safe_psql('postgres',
	qq{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	   WHERE backend_type = 'catalog audit sealer' AND datname = '$db'});
my $next_attached = qq{SELECT EXISTS (SELECT 1 FROM pg_inherits
                                      WHERE inhrelid = to_regclass('catalog.$stray')
                                        AND inhparent = 'catalog.audit_log'::regclass)};
ok($node->poll_query_until($db, $next_attached), 'the restarted worker creates next month\'s partition');
ok( $node->poll_query_until(
		'postgres', qq{SELECT count(*) = 1 FROM pg_stat_activity
		               WHERE backend_type = 'catalog audit sealer' AND datname = '$db' AND pid <> $pid}),
	'the restarted worker is connected to the test database');
# (checked inside the transaction: after its commit the worker is quick)
is($node->safe_psql($db, "BEGIN; DROP EXTENSION catalog CASCADE; CREATE EXTENSION catalog; $next_attached; COMMIT;"),
	'f', 'DROP EXTENSION took next month\'s partition away');
my $t_created = time;
ok($node->poll_query_until($db, $next_attached),
	'after DROP and CREATE EXTENSION in one transaction the worker creates it again');
cmp_ok(time - $t_created, '<', 60, 'at once, not at its next hourly maintenance');

# 5. The same with sealing off (catalog.audit_seal_interval = 0): no seal
# pass looks at the database, so the worker checks the extension's OID at
# every wake (each minute; a reload wakes it at once, as here).
$node->safe_psql('postgres', 'ALTER SYSTEM SET catalog.audit_seal_interval = 0; SELECT pg_reload_conf();');
is($node->safe_psql($db, "BEGIN; DROP EXTENSION catalog CASCADE; CREATE EXTENSION catalog; $next_attached; COMMIT;"),
	'f', 'sealing off: DROP EXTENSION took next month\'s partition away');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$t_created = time;
ok($node->poll_query_until($db, $next_attached),
	'sealing off: after DROP and CREATE EXTENSION the worker creates it again');
cmp_ok(time - $t_created, '<', 60, 'sealing off: at its next wake, not at its next hourly maintenance');

$node->stop;
done_testing();
