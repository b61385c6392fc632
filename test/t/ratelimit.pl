# ratelimit.pl: the rate limiter (src/ratelimit.c) under concurrency, at
# capacity, behind proxies and on a hot standby.
#
# A throw-away primary (preloaded like test/catalog.conf, but with a table
# of 64 keys: 32 partitions of 2 entries, and one trusted proxy) and a
# streaming standby.  Requests are made as PostgREST makes them: the
# request settings, then catalog_api.pre_request(), from PL/pgSQL loops
# that catch the refusal (a caught error is not logged).
#   1. 8 sessions hammer one key limited to R = 50/s with burst B = 20 for
#      T = 10 s: R*T + B requests are allowed in total, within one (no lost
#      update of the bucket).
#   2. A session holding one partition's lock (the developer option
#      catalog.debug_rate_limit_hold) makes a key of the same partition
#      wait (pg_stat_activity shows the LWLock wait) while a key of another
#      partition is served at once.
#   3. Keys from x-forwarded-for: one trusted hop, then two, spoofed
#      entries to the left ignored, IPv6 by /64, x-real-ip, garbage
#      ignored, and x-real-ip not consulted when x-forwarded-for is present.
#   4. Eviction: 500 new keys whose buckets come to rest at once all get an
#      entry (idle entries are reused); then, with the table full of
#      limited keys, a flood of 500 new keys is refused (fail closed,
#      counted in health()) and every limited key stays limited.
#   5. On the standby: the limiter answers in recovery, and a limit changed
#      on the primary reaches the standby's backends.
#   6. A CSRF refusal reaches the server log without its token or session
#      (run before 4, which fills the table).
#   7. Exactly once across transactions: the mark pre_request() leaves is
#      taken by the next API call of its own transaction only (run before
#      4).  After 4: a refusal (rate_limited, limiter_full) is logged
#      without its statement.
#   8. Without shared_preload_libraries: the API serves plain SQL and
#      pre_request() fails with 55000.  Then preloaded with a refused
#      setting: the default at start (a warning), the old value at reload.
#   9. Eviction by the heap (run before 4): a limited key whose entry was
#      filed before its last requests is filed again, never evicted.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CatalogTest qw(catalog_node);
use Test::More;

my $db = 'ratelimit';

my $node = catalog_node('ratelimit_primary', allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
catalog.rate_limit_keys = 64
catalog.rate_limit_trusted_proxies = 1
catalog.audit_seal_interval = 0
# as deployed (README): statements carry request headers and cookies, so
# they are not logged (the test framework logs them all by default)
log_statement = none
});
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, q{
CREATE EXTENSION catalog CASCADE;
CREATE SCHEMA t;
-- One PostgREST request: settings, then the pre-request.  'ok', or the
-- refusal's details ("rate_limited", "limiter_full") or SQLSTATE.
CREATE FUNCTION t.req(claims text, headers text DEFAULT '{}', path text DEFAULT '/rpc/search_products')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text;
BEGIN
    PERFORM set_config('request.method', 'GET', true), set_config('request.path', path, true),
            set_config('request.jwt.claims', claims, true), set_config('request.headers', headers, true);
    BEGIN
        PERFORM catalog_api.pre_request();
        RETURN 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RETURN CASE WHEN st = 'PGRST' THEN msg::jsonb ->> 'details' ELSE st END;
    END;
END $$;
-- Requests by subject sub from start_at until end_at; the number allowed.
CREATE FUNCTION t.hammer(sub text, start_at timestamptz, end_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
    claims text := json_build_object('sub', sub)::text;
BEGIN
    WHILE clock_timestamp() < start_at LOOP
        PERFORM pg_sleep(0.001);
    END LOOP;
    WHILE clock_timestamp() < end_at LOOP
        IF t.req(claims, '{}', '/rpc/list_categories') = 'ok' THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;
});

sub sql { my ($text) = @_; return $node->safe_psql($db, $text) }

# ---------------------------------------------------------------------------
# 1. 8 sessions, one key, R = 50/s, B = 20, T = 10 s
# ---------------------------------------------------------------------------
{
	my ($rate, $burst, $seconds, $sessions) = (50, 20, 10, 8);
	sql("SELECT catalog_api.rate_limit_set('admin', 'list_categories', $rate, $burst)");
	my $start = sql(q{SELECT (clock_timestamp() + interval '3 seconds')::text});
	my (@h, @out);
	for my $i (0 .. $sessions - 1)
	{
		$out[$i] = '';
		push @h, IPC::Run::start(
			[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-c',
			  "SELECT t.hammer('hammer', '$start', '$start'::timestamptz + interval '$seconds seconds')" ],
			'>', \$out[$i], '2>', \$out[$i]);
	}
	$_->finish for @h;
	my $total = 0;
	for my $i (0 .. $sessions - 1)
	{
		chomp $out[$i];
		like($out[$i], qr/^[0-9]+$/, "session $i counted its allowed requests") or diag($out[$i]);
		$total += $out[$i] =~ /^([0-9]+)$/ ? $1 : 0;
	}
	my $expected = $rate * $seconds + $burst;
	cmp_ok(abs($total - $expected), '<=', 1,
		"$sessions sessions, $seconds s at $rate/s with burst $burst: $total allowed, R*T+B = $expected (within one)");
	my $each = join(', ', @out);
	ok((grep { /^[0-9]+$/ && $_ > 0 } @out) >= 2, "more than one session was served ($each)");
}

# ---------------------------------------------------------------------------
# 2. Partitioned locks: a held partition delays its own keys only
# ---------------------------------------------------------------------------
{
	my ($pb, $pc) = split /\|/, sql(q{
		WITH k AS (SELECT 'key-' || i AS sub, catalog.rate_limit_partition('read', 'key-' || i) AS p,
		                  catalog.rate_limit_partition('read', 'holder') AS ph
		           FROM generate_series(0, 999) i)
		SELECT (SELECT min(sub) FROM k WHERE p <> ph), (SELECT min(sub) FROM k WHERE p = ph)});
	ok(defined $pb && defined $pc, 'found keys in the holder\'s partition and in another');

	my ($out_a, $out_c) = ('', '');
	my $ha = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-d', $node->connstr($db), '-c',
		  q{SET application_name = 'rl_holder'; SET catalog.debug_rate_limit_hold = 6000; }
		  . q{SELECT t.req('{"sub":"holder"}')} ],
		'>', \$out_a, '2>', \$out_a);
	# the holder is in its wait, holding the lock (it waits on its latch
	# only once the lock is held): a same-partition key waits
	ok($node->poll_query_until($db,
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'rl_holder'
			  AND wait_event_type = 'Extension'}),
		'the holder holds its partition');
	my $hc = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-d', $node->connstr($db), '-c',
		  qq{SET application_name = 'rl_same'; SELECT t.req('{"sub":"$pc"}')} ],
		'>', \$out_c, '2>', \$out_c);
	ok($node->poll_query_until($db,
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'rl_same'
			  AND wait_event_type = 'LWLock' AND wait_event = 'catalog'}),
		'a key of the same partition waits on the partition lock');
	my $b = sql(qq{SELECT t.req('{"sub":"$pb"}')});
	is($b, 'ok', 'a key of another partition is served');
	is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('rl_holder', 'rl_same')
	       AND state = 'active'}), '2',
		'... while the holder still holds its partition and the other key still waits');
	$ha->finish;
	$hc->finish;
	chomp($out_a, $out_c);
	is($out_a, 'ok', 'the holder was served');
	is($out_c, 'ok', 'the waiting key was served after it');
}

# ---------------------------------------------------------------------------
# 6. Tokens never reach the server log: a CSRF token and a session, sent
#    with refused and accepted requests, are not in the log afterwards.
# ---------------------------------------------------------------------------
{
	my $token = sql(q{
		BEGIN;
		SELECT set_config('request.method', 'POST', true), set_config('request.path', '/rpc/csrf_token', true),
		       set_config('request.cookies', '{"session":"log-secret-session"}', true);
		SELECT catalog_api.csrf_token() ->> 'token';
		COMMIT;});
	$token = (split /\n/, $token)[-1];
	like($token, qr/^v1\./, 'a token for the log check');
	# a refusal not caught in PL/pgSQL: its ERROR reaches the log
	my ($rc, $out, $err) = $node->psql($db, qq{
		BEGIN;
		SELECT set_config('request.method', 'POST', true), set_config('request.path', '/rpc/create_category', true),
		       set_config('request.cookies', '{"session":"log-secret-session","__Host-csrf":"$token"}', true),
		       set_config('request.headers', '{"x-csrf-token":"${token}x"}', true);
		SELECT catalog_api.pre_request();
		COMMIT;});
	like($err, qr/CSRF token missing or invalid/, 'a refused request (its ERROR goes to the log)');
	unlike($err, qr/\Q$token\E|log-secret-session/, 'the refusal names neither the token nor the session');
	my $log = slurp_file($node->logfile);
	like($log, qr/CSRF token missing or invalid/, 'the refusal is in the server log');
	unlike($log, qr/\Q$token\E/, 'the token is not in the server log');
	unlike($log, qr/log-secret-session/, 'the session is not in the server log');
}

# ---------------------------------------------------------------------------
# 7. The mark of pre_request() is taken within its transaction only: the
#    limiter's "allowed" counter (health()) counts each charge.
# ---------------------------------------------------------------------------
{
	my $allowed = sub { return sql(q{SELECT (catalog_api.health() #>> '{rate_limiter,allowed}')::bigint}) };
	my $pre = q{SELECT set_config('request.method', 'GET', true), set_config('request.path', '/rpc/get_product', true),
	                   set_config('request.jwt.claims', '{"sub":"mark-1"}', true);
	            SELECT catalog_api.pre_request();};
	# a product that does not exist: the call is counted, then answers PT404
	my $call = q{SELECT set_config('request.jwt.claims', '{"sub":"mark-1"}', true);
	             SELECT catalog_api.get_product(-1);};
	my $a0 = $allowed->();
	my ($rc, $out, $err) = $node->psql($db, "BEGIN; $pre $call COMMIT;");
	like($err, qr/not found|PT404/, 'pre_request then get_product in one transaction: the call ran');
	is($allowed->() - $a0, 1, 'in one transaction the call takes the mark: counted once');
	my $a1 = $allowed->();
	($rc, $out, $err) = $node->psql($db, "BEGIN; $pre COMMIT; BEGIN; $call COMMIT;");
	like($err, qr/not found|PT404/, 'pre_request, commit, then get_product: the call ran');
	is($allowed->() - $a1, 2, 'the mark is cleared at commit: the next transaction\'s call counts itself');
	my $a2 = $allowed->();
	($rc, $out, $err) = $node->psql($db, "BEGIN; $pre ROLLBACK; BEGIN; $call COMMIT;");
	is($allowed->() - $a2, 2, 'and at rollback');
}

# ---------------------------------------------------------------------------
# 9 (before 4). Eviction by the heap: an entry whose key made requests since
#    it was filed is filed again, not evicted.  Key A (0.5/s, burst 3) spends
#    its burst at t0: filed at t0 + 2 s, its TAT t0 + 6 s.  Key B (0.125/s)
#    takes the partition's other entry.  At t0 + 2.3 s, A's filed time has
#    passed but A is limited: a new key C of the partition must be refused
#    (limiter_full), and A keeps its bucket: exactly one more request is
#    allowed (a fresh bucket would allow three, an evicted one would make
#    A a new key, refused).  One statement, so the steps' times are the
#    server's; at the end both entries are at rest again (before 4).
# ---------------------------------------------------------------------------
{
	my ($a, $b, $c) = split /\|/, sql(q{
		WITH pa AS (SELECT catalog.rate_limit_partition('list_categories', 'heap-a') AS p)
		SELECT 'heap-a',
		       (SELECT 'heap-b-' || i FROM generate_series(1, 2000) i, pa
		        WHERE catalog.rate_limit_partition('csrf_token', 'heap-b-' || i) = pa.p ORDER BY i LIMIT 1),
		       (SELECT 'heap-c-' || i FROM generate_series(1, 2000) i, pa
		        WHERE catalog.rate_limit_partition('list_categories', 'heap-c-' || i) = pa.p ORDER BY i LIMIT 1)});
	ok(defined $b && defined $c && $b ne '' && $c ne '', 'found keys B and C in the partition of key A');
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'list_categories', 0.5, 3)});
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'csrf_token', 0.125, 1)});
	my $got = sql(qq{
		CREATE FUNCTION pg_temp.heap_case() RETURNS text LANGUAGE plpgsql AS \$\$
		DECLARE
		    t0 timestamptz := clock_timestamp();
		    r text[] := '{}';
		    ca text := json_build_object('sub', '$a')::text;
		BEGIN
		    FOR i IN 1 .. 3 LOOP
		        r := r || t.req(ca, '{}', '/rpc/list_categories');
		    END LOOP;
		    r := r || t.req(json_build_object('sub', '$b')::text, '{}', '/rpc/csrf_token');
		    PERFORM pg_sleep_until(t0 + interval '2.3 seconds');
		    r := r || t.req(json_build_object('sub', '$c')::text, '{}', '/rpc/list_categories');
		    r := r || t.req(ca, '{}', '/rpc/list_categories');
		    r := r || t.req(ca, '{}', '/rpc/list_categories');
		    -- A's next request is allowed again from t0 + 4 s
		    IF clock_timestamp() >= t0 + interval '4 seconds' THEN
		        r := r || 'late'::text;
		    END IF;
		    -- A rests at t0 + 8 s, B at t0 + 8 s
		    PERFORM pg_sleep_until(t0 + interval '8.5 seconds');
		    RETURN array_to_string(r, ',');
		END \$\$;
		SELECT pg_temp.heap_case();});
	is($got, 'ok,ok,ok,ok,limiter_full,ok,rate_limited',
		'a limited key filed before its last requests is filed again, not evicted: the new key is refused, the old keeps its bucket');
	sql(q{SELECT catalog_api.rate_limit_drop('admin', 'list_categories'), catalog_api.rate_limit_drop('admin', 'csrf_token')});
}

# ---------------------------------------------------------------------------
# 4. Capacity: idle entries are reused; limited ones never are
# ---------------------------------------------------------------------------
{
	my $health = sub { return sql(q{SELECT catalog_api.health() -> 'rate_limiter'}) };
	my $num = sub { my ($k) = @_; return sql("SELECT (catalog_api.health() #>> '{rate_limiter,$k}')::bigint") };
	is(sql(q{SELECT (catalog_api.health() #>> '{rate_limiter,capacity}')}), '64', 'capacity 64 keys');

	# Buckets that rest 1 us after their request: the table turns over.
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'product_facets', 1000000, 1)});
	my $full_before = $num->('refused_full');
	is(sql(q{SELECT count(*) FILTER (WHERE t.req(json_build_object('sub', 'idle-' || i)::text, '{}', '/rpc/product_facets') = 'ok')
	       FROM generate_series(1, 500) i}), '500', '500 new keys at rest: every one is served');
	is($num->('refused_full'), $full_before, 'no refusal for lack of an entry');
	cmp_ok($num->('evicted'), '>=', 500 - 64, 'idle entries were evicted to make room');

	# Buckets limited for 1000 s: fill the table.
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'get_product', 0.001, 1)});
	sql(q{CREATE TABLE t.flood AS
	    SELECT i, t.req(json_build_object('sub', 'limited-' || i)::text, '{}', '/rpc/get_product') AS r
	    FROM generate_series(1, 500) i});
	my $admitted = sql(q{SELECT count(*) FROM t.flood WHERE r = 'ok'});
	my $refused = sql(q{SELECT count(*) FROM t.flood WHERE r = 'limiter_full'});
	is($admitted + $refused, 500, 'each flooding key was served or refused for lack of an entry');
	is($admitted, 64, 'exactly the capacity was admitted: the table is full of limited keys');
	is(sql(q{SELECT catalog_api.health() #>> '{rate_limiter,state}'}), 'full', 'health() says the limiter is full');
	my $full_mid = $num->('refused_full');
	is($full_mid - $full_before, $refused, 'every refusal for lack of an entry is counted');

	# A second flood of new keys frees nothing.
	is(sql(q{SELECT count(*) FILTER (WHERE t.req(json_build_object('sub', 'flood2-' || i)::text, '{}', '/rpc/get_product') = 'limiter_full')
	       FROM generate_series(1, 500) i}), '500', 'a second flood of 500 new keys: every one refused (fail closed)');
	is($num->('refused_full') - $full_mid, 500, 'and counted');
	is(sql(q{SELECT count(*) FROM t.flood
	       WHERE r = 'ok' AND t.req(json_build_object('sub', 'limited-' || i)::text, '{}', '/rpc/get_product') = 'rate_limited'}),
		'64', 'every admitted key is still limited: no flood reset its bucket');
}

# ---------------------------------------------------------------------------
# 7 (after 4). A refusal is logged without its statement (errhidestmt): the
#    statement of a PostgREST request carries its headers and cookies.
# ---------------------------------------------------------------------------
{
	my $sub = sql(q{SELECT 'limited-' || i FROM t.flood WHERE r = 'ok' ORDER BY i LIMIT 1});
	my $req = sub {
		my ($who, $marker) = @_;
		my ($rc, $out, $err) = $node->psql($db, qq{
			BEGIN;
			SELECT set_config('request.method', 'GET', true), set_config('request.path', '/rpc/get_product', true),
			       set_config('request.jwt.claims', '{"sub":"$who"}', true);
			SELECT catalog_api.pre_request() AS $marker;
			COMMIT;});
		return $err;
	};
	my $offset = -s $node->logfile;
	like($req->($sub, 'hidestmt_marker_rate'), qr/rate limit exceeded/, 'an uncaught refusal of a limited key');
	my $full_err = $req->('hidestmt-new-key', 'hidestmt_marker_full');
	like($full_err, qr/rate limiter is full/, 'an uncaught refusal of a new key while the table is full');
	like($full_err, qr/"Retry-After":"[0-9]+","RateLimit-Limit":"1","RateLimit-Remaining":"0","RateLimit-Reset":"[0-9]+"/,
		'the refusal carries Retry-After and the RateLimit headers, as a rate refusal does');
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/rate limit exceeded.*rate limiter is full/s, 'both refusals are in the server log');
	unlike($log, qr/hidestmt_marker/, 'neither refusal logs its statement');
	unlike($log, qr/hidestmt-new-key|\Q$sub\E/, 'nor its key');
}

# ---------------------------------------------------------------------------
# 5. The hot standby (and 3.)
# ---------------------------------------------------------------------------
{
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'search_products', 0.001, 2)});
	sql(q{SELECT catalog_api.rate_limit_set('admin', 'read', 0.001, 1)});
	$node->backup('rl_backup');
	my $standby = PostgreSQL::Test::Cluster->new('ratelimit_standby');
	$standby->init_from_backup($node, 'rl_backup', has_streaming => 1);
	# the standby's own table: room enough for the few keys used here
	$standby->append_conf('postgresql.conf', 'catalog.rate_limit_keys = 65536');
	$standby->start;
	$node->wait_for_catchup($standby, 'replay');
	my $sq = sub { return $standby->safe_psql($db, $_[0]) };
	is($sq->('SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
	is($sq->(q{SELECT catalog_api.health() #>> '{rate_limiter,enabled}'}), 'true', 'the limiter is on there');
	is($sq->(q{SELECT t.req('{"sub":"standby-user"}')}), 'ok', 'standby: first search');
	is($sq->(q{SELECT t.req('{"sub":"standby-user"}')}), 'ok', 'standby: second search');
	is($sq->(q{SELECT t.req('{"sub":"standby-user"}')}), 'rate_limited', 'standby: the third is refused (burst 2)');
	is($sq->(q{BEGIN READ ONLY; SELECT t.req('{"sub":"standby-user-2"}'); COMMIT;}), 'ok',
		'standby: a read-only transaction is served');

	# A limit dropped on the primary reaches the cached limits of a standby
	# session that was open (and had read them) before: one long-lived
	# session, as a pooled connection is, not a new backend that would read
	# the table afresh.
	# (a subject whose partition holds neither limited key above: never full)
	my $probe = $sq->(q{
		SELECT min(sub) FROM (SELECT 'probe-' || i AS sub FROM generate_series(0, 999) i) k
		WHERE catalog.rate_limit_partition('read', sub) NOT IN
		      (catalog.rate_limit_partition('search_products', 'standby-user'),
		       catalog.rate_limit_partition('search_products', 'standby-user-2'))});
	my $pooled = $standby->background_psql($db);
	is($pooled->query_safe(qq{SELECT t.req('{"sub":"$probe"}') || ',' || t.req('{"sub":"$probe"}')}), 'ok,ok',
		'standby session: before the drop, search has its own limit (burst 2)');
	sql(q{SELECT catalog_api.rate_limit_drop('admin', 'search_products')});
	$node->wait_for_catchup($standby, 'replay');
	is($pooled->query_safe(qq{SELECT t.req('{"sub":"$probe"}') || ',' || t.req('{"sub":"$probe"}')}),
		'ok,rate_limited',
		'the same standby session, after the drop on the primary: search counts under admin read (burst 1)');
	$pooled->quit;

	# ---------------------------------------------------------------------------
	# 3. Keys from forwarded addresses (one trusted proxy), on the standby,
	#    whose table is its own (the primary's is full of limited keys by now)
	# ---------------------------------------------------------------------------
	{
		my $xff = sub { return qq{'{"x-forwarded-for":"$_[0]"}', '/rpc/category_history'} };
		is($sq->("SELECT t.req('', " . $xff->('6.6.6.6, 192.0.2.9') . ")"), 'ok', 'client 192.0.2.9: first request');
		is($sq->("SELECT t.req('', " . $xff->('7.7.7.7, 192.0.2.9') . ")"), 'rate_limited',
			'a different spoofed entry on the left does not make a new client');
		is($sq->("SELECT t.req('', " . $xff->('192.0.2.9') . ")"), 'rate_limited', 'the same client without a spoofed entry');
		is($sq->("SELECT t.req('', " . $xff->('192.0.2.9:4711') . ")"), 'rate_limited', 'an IPv4 address with a port is the same client');
		is($sq->("SELECT t.req('', " . $xff->('6.6.6.6, 192.0.2.10') . ")"), 'ok', 'client 192.0.2.10 is another bucket');
		is($sq->("SELECT t.req('', " . $xff->('2001:db8:1:2::1') . ")"), 'ok', 'IPv6 client: first request');
		is($sq->("SELECT t.req('', " . $xff->('[2001:db8:1:2:ffff::9]:443') . ")"), 'rate_limited', 'the same /64 is the same client');
		is($sq->("SELECT t.req('', " . $xff->('::ffff:192.0.2.10') . ")"), 'rate_limited', 'an IPv4-mapped address is its IPv4 client');
		is($sq->("SELECT t.req('', " . $xff->('2001:db8:1:3::1') . ")"), 'ok', 'another /64 is another client');
		is($sq->(q{SELECT t.req('', '{"x-real-ip":"198.51.100.7"}', '/rpc/category_history')}), 'ok', 'x-real-ip without x-forwarded-for');
		is($sq->(q{SELECT t.req('', '{"x-real-ip":"198.51.100.7"}', '/rpc/category_history')}), 'rate_limited', 'x-real-ip keys the client');
		is($sq->(q{SELECT t.req('', '{"x-forwarded-for":"not an address"}', '/rpc/category_history')}), 'ok',
			'garbage: the session user\'s bucket (first request)');
		is($sq->(q{SELECT t.req('', '{"x-forwarded-for":"still not one"}', '/rpc/category_history')}), 'rate_limited',
			'garbage from another "client" shares the session user\'s bucket (never more lenient)');
		is($sq->(q{SELECT t.req('{"sub":"jwt-user"}', '{"x-forwarded-for":"192.0.2.9"}', '/rpc/category_history')}), 'ok',
			'a JWT subject takes precedence over the address');
		# x-forwarded-for present but its entry unusable: x-real-ip (new, so
		# a fresh bucket) is not consulted; the session user's spent one is
		for my $case (['unknown', '"unknown"'], ['a zone id', '"fe80::1%eth0"'], ['empty', '""'])
		{
			my ($what, $value) = @$case;
			is($sq->(qq{SELECT t.req('', '{"x-forwarded-for":$value,"x-real-ip":"198.51.100.77"}', '/rpc/category_history')}),
				'rate_limited', "x-forwarded-for $what: x-real-ip is not consulted, the session user's bucket is");
		}
		# two trusted proxies: the second entry from the right is the client
		$standby->append_conf('postgresql.conf', 'catalog.rate_limit_trusted_proxies = 2');
		$standby->reload;
		ok($standby->poll_query_until($db, q{SELECT current_setting('catalog.rate_limit_trusted_proxies') = '2'}),
			'two trusted proxies after a reload');
		is($sq->("SELECT t.req('', " . $xff->('6.6.6.6, 203.0.113.5, 10.0.0.1') . ")"), 'ok',
			'two proxies: client 203.0.113.5, first request');
		is($sq->("SELECT t.req('', " . $xff->('7.7.7.7, 203.0.113.5, 10.0.0.2') . ")"), 'rate_limited',
			'two proxies: another inner proxy, another spoofed entry: the same client');
		is($sq->("SELECT t.req('', " . $xff->('203.0.113.6, 10.0.0.1') . ")"), 'ok',
			'two proxies: client 203.0.113.6 is another bucket');
	}

	$standby->stop;
}

$node->stop;
# ---------------------------------------------------------------------------
# 8. Without shared_preload_libraries (README: the API serves plain SQL,
#    a PostgREST deployment fails closed).
# ---------------------------------------------------------------------------
{
	my $bare = PostgreSQL::Test::Cluster->new('ratelimit_bare');
	$bare->init;
	$bare->start;
	$bare->safe_psql('postgres', 'CREATE EXTENSION catalog CASCADE');
	is($bare->safe_psql('postgres', q{SELECT catalog_api.health() ->> 'shared_memory'}), 'false',
		'health() says there is no shared memory');
	is($bare->safe_psql('postgres', q{SELECT jsonb_typeof(catalog_api.list_categories())}), 'array',
		'an API function serves plain SQL');
	my ($rc, $out, $err) = $bare->psql('postgres', q{
		\set VERBOSITY verbose
		SELECT set_config('request.method', 'GET', false), set_config('request.path', '/rpc/list_categories', false);
		SELECT catalog_api.pre_request();});
	like($err, qr/ERROR:\s+55000: the catalog rate limiter needs shared memory/, 'pre_request() fails with 55000');

	# A refused value of a setting (README, Configuration): at server start
	# PostgreSQL only warns and keeps the default; a reload keeps the old value.
	my $show = sub { return $bare->safe_psql('postgres', 'SHOW catalog.csrf_header') };
	$bare->append_conf('postgresql.conf', "shared_preload_libraries = 'catalog'\ncatalog.csrf_header = 'X-Csrf-Token'\n");
	$bare->restart;
	is($show->(), 'x-csrf-token', 'a refused value at server start: the default is used');
	like(slurp_file($bare->logfile), qr/WARNING:.*invalid value for parameter "catalog\.csrf_header": "X-Csrf-Token"/,
		'and the start logs a warning that names it');
	$bare->append_conf('postgresql.conf', "catalog.csrf_header = 'x-xsrf-token'\n");
	$bare->reload;
	ok($bare->poll_query_until('postgres', "SELECT current_setting('catalog.csrf_header') = 'x-xsrf-token'"),
		'a valid value applies at reload');
	my $offset = -s $bare->logfile;
	$bare->append_conf('postgresql.conf', "catalog.csrf_header = 'Bad Header'\n");
	$bare->reload;
	ok($bare->poll_query_until('postgres',
			"SELECT pg_read_file('" . $bare->logfile . "', $offset, 1000000) ~ 'invalid value for parameter \"catalog.csrf_header\": \"Bad Header\"'"),
		'a refused value at reload is logged');
	is($show->(), 'x-xsrf-token', 'and the value before it is kept');
	$bare->stop;
}

done_testing();
