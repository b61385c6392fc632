# audit_worker_edges.pl: three behaviours of the sealing worker that
# audit_worker.pl does not pin down (found by mutation testing of
# src/audit_chain.c; each check fails on a build without the behaviour).
#
# Each part has a throw-away cluster of its own (preloaded like
# test/catalog.conf) whose sealer works in database postgres, its default:
# the extension is created there once the worker is idle after its first
# pass (which found no extension), and a configuration reload wakes it
# when a part needs it (no restart: the postmaster restarts a worker only
# 10 s after it exits).
#   1. A full pass (it sealed catalog.audit_seal_batch rows) is followed at
#      once by the next one, not by the next tick: with a tick of a minute
#      and two rows a pass, a backlog of seven rows is sealed within 20 s.
#   2. With catalog.audit_seal_interval = 0 the worker seals nothing but
#      still runs the partition maintenance (which runs after the seal job
#      of the same wake): the month's partition appears, no seal does.
#   3. While another session holds the chain (its own audit_seal() in an
#      open transaction), the worker skips its passes (SKIP LOCKED) and is
#      never seen waiting for a lock; without SKIP LOCKED it would wait up
#      to catalog.audit_lock_timeout and give up, which ends the same way
#      and so passes audit_worker.pl.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;
use Time::HiRes qw(time sleep);

my $unsealed = q{SELECT count(*) FROM catalog.audit_log a
                 WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id)};

# node NAME, SETTINGS[, WITH]: a started cluster whose sealer, idle after
# its first pass, has not seen the extension yet; then the extension in
# database postgres, created in one transaction with the statements WITH
# (so that the worker sees both at once, or neither).
sub node
{
	my ($name, $settings, $with) = @_;
	my $node = catalog_node($name);
	$node->append_conf('postgresql.conf', $settings);
	$node->start;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE backend_type = 'catalog audit sealer' AND wait_event_type = 'Extension'})
	  or die "$name: the sealer did not go idle";
	$node->safe_psql('postgres', 'BEGIN; CREATE EXTENSION catalog CASCADE; ' . ($with // '') . ' COMMIT;');
	return $node;
}

# 1. full passes follow each other at once
{
	my $db = 'postgres';
	my $node = node('worker_full', "catalog.audit_seal_interval = '60s'\ncatalog.audit_seal_batch = 2\n");
	$node->safe_psql(
		$db, q{
		SELECT set_config('catalog.actor', 'worker-full', false) IS NULL;
		SELECT catalog_api.create_category(name => 'Full ' || g, slug => 'full-' || chr(96 + g)) FROM generate_series(1, 7) g;
	});
	is($node->safe_psql($db, $unsealed), '7', 'full passes: seven rows wait unsealed');
	# the next tick is a minute away: a reload wakes the worker now
	$node->safe_psql($db, 'SELECT pg_reload_conf()');
	# four passes of two rows, well within one tick of a minute
	my $deadline = time + 20;
	my $left;
	while (1)
	{
		$left = $node->safe_psql($db, $unsealed);
		last if $left eq '0' || time > $deadline;
		sleep 0.2;
	}
	is($left, '0', 'full passes: the backlog is sealed by consecutive passes within 20 s of a 60 s tick');
	is($node->safe_psql($db, q{SELECT catalog_api.audit_verify()->>'ok'}), 'true', 'full passes: the chain verifies');
	$node->stop;
}

# 2. sealing off: maintenance only.  The extension and an audit row come
# in one transaction: the first wake that sees the extension sees the row
# too, and runs the seal job (none, with sealing off) before the
# maintenance, so once the month's partition is there that wake is over.
{
	my $db = 'postgres';
	my $node = node('worker_off', "catalog.audit_seal_interval = 0\n",
		q{SELECT set_config('catalog.actor', 'worker-off', true) IS NULL;
		  SELECT catalog_api.create_category(name => 'Off', slug => 'off') IS NULL;});
	my $part = $node->safe_psql($db, q{SELECT 'catalog.audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')});
	is($node->safe_psql($db, $unsealed), '1', 'sealing off: the audit row is there');
	# a reload wakes the worker, if its idle timer has not yet
	$node->safe_psql($db, 'SELECT pg_reload_conf()');
	ok($node->poll_query_until($db, "SELECT to_regclass('$part') IS NOT NULL"),
		'sealing off: the worker still runs the maintenance');
	is($node->safe_psql($db, 'SELECT count(*) FROM catalog.audit_seal'), '0',
		'sealing off: and sealed nothing in the same wake, before it');
	$node->stop;
}

# 3. another session holds the chain: the worker never waits for it
{
	my $db = 'postgres';
	my $node = node('worker_skip', "catalog.audit_seal_interval = '100ms'\n");
	my $holder = $node->background_psql($db);
	$holder->query_safe('BEGIN');
	$holder->query_safe('SELECT catalog_api.audit_seal()');
	# two seconds (less than catalog.audit_lock_timeout, 5 s) of samples,
	# twenty passes of the worker
	my ($samples, $waiting) = (0, 0);
	my $end = time + 2;
	while (time < $end)
	{
		$samples++;
		$waiting++
		  if $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'catalog audit sealer' AND wait_event_type = 'Lock'})
		  ne '0';
		sleep 0.05;
	}
	ok($samples > 5, "held chain: the worker was sampled ($samples times)");
	is($waiting, 0, 'held chain: the worker was never seen waiting for a lock');
	$holder->query_safe('COMMIT');
	$holder->quit;
	$node->stop;
}

done_testing();
