-- pgTAP: the rate limiter (src/ratelimit.c) and CSRF tokens (src/token.c)
-- in one session: what is counted and when, the refusal PostgREST turns
-- into 429, limits per caller class and function, the admin functions, and
-- every CSRF case (valid, missing, altered, mismatched, expired session,
-- other session, rotated key, bearer and safe methods exempt).
-- Concurrency, capacity, forwarded addresses and the hot standby are in
-- test/t/ratelimit.pl.
--
-- Buckets live in shared memory and outlive this transaction: every key
-- used here carries a per-run suffix, and every limit is so slow (one
-- request per 1000 s) that no bucket refills while the test runs.
BEGIN;
SELECT plan(199);

CREATE TEMP TABLE run AS SELECT pg_backend_pid() || '-' || (random() * 1e9)::bigint AS tag;
GRANT SELECT ON run TO PUBLIC;

-- req(): one request as PostgREST sends it (the settings, then
-- pre_request()); get_missing(): a plain SQL call; sub(): a per-run subject.
\ir include/requests.sql

-- request.headers that is not JSON (only a client setting it by hand can
-- send that): 22P02 naming the setting, and no part of the text, which may
-- hold an authorization header, in the message, its detail or its context
-- (jsonb_in's own error quotes the text, and errors reach the server log).
CREATE FUNCTION pg_temp.bad_headers() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; ctx text;
BEGIN
    PERFORM set_config('request.headers', '{"authorization": "Bearer tap-secret-0042", "x-request-id": ', true);
    BEGIN
        PERFORM catalog_api.create_category(name => 'Bad Headers', slug => 'bad-headers-' || (SELECT tag FROM run));
        st := 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                                ctx = PG_EXCEPTION_CONTEXT;
    END;
    PERFORM set_config('request.headers', '', true);
    RETURN st || ' ' || msg || ' | ' || coalesce(det, '') || ' | ' || coalesce(ctx, '');
END $$;
SELECT is(split_part(pg_temp.bad_headers(), ' | ', 1), '22P02 setting "request.headers" is not valid JSON',
          'request.headers that is not JSON: 22P02 naming the setting');
SELECT unalike(pg_temp.bad_headers(), '%tap-secret%', 'and no part of its text in the error, its detail or its context');


------------------------------------------------------------------------------
-- The limiter's table of functions is complete and consistent.
------------------------------------------------------------------------------
SELECT set_eq(
    $$SELECT proname::text FROM pg_proc WHERE pronamespace = 'catalog_api'::regnamespace$$,
    $$SELECT function_name FROM catalog.rate_limit_functions()$$,
    'every catalog_api function has a decided rate limit class, and no other name has one');
SELECT set_eq(
    $$SELECT function_name, action FROM catalog.rate_limit_functions()$$,
    $$SELECT p.proname::text,
             CASE WHEN p.proname IN ('health', 'pre_request', 'rate_limit_set', 'rate_limit_drop', 'rate_limits')
                  THEN 'exempt'
                  WHEN p.provolatile = 's' OR p.proname = 'csrf_token' THEN 'read'
                  ELSE 'write' END
      FROM pg_proc p WHERE p.pronamespace = 'catalog_api'::regnamespace$$,
    'reads (STABLE, and csrf_token) count as read, writes as write; health, pre_request and the limiter''s management are exempt');

------------------------------------------------------------------------------
-- Administration.
------------------------------------------------------------------------------
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('robot', 'read', 1, 1)$$, '22023', NULL,
                 'an unknown caller class is refused');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'health', 1, 1)$$, '22023', NULL,
                 'an exempt function cannot be limited');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'drop table', 1, 1)$$, '22023', NULL,
                 'an unknown action is refused');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'read', 0, 1)$$, '22023', NULL,
                 'a rate of 0 is refused (null means no limit)');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'read', 'NaN'::float8, 1)$$, '22023', NULL,
                 'a NaN rate is refused');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'read', 1, 0)$$, '22023', NULL,
                 'a burst of 0 is refused');
SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'read', 1)$$, '22023', NULL,
                 'burst is required');

SELECT throws_ok($$SELECT catalog_api.rate_limit_set('admin', 'rate_limit_set', 1, 1)$$, '22023', NULL,
                 'the limiter''s own management cannot be limited');
SELECT is(catalog_api.rate_limit_set('admin', 'read', 0.001, 2) - 'updated_at' - 'updated_by',
          '{"caller_class": "admin", "action": "read", "rate": 0.001, "burst": 2}'::jsonb,
          'rate_limit_set returns the limit');
-- its timestamp is written as to_jsonb writes one, whatever the session's DateStyle
SET LOCAL datestyle = 'SQL, DMY';
SET LOCAL timezone = 'Asia/Kathmandu';
SELECT is(catalog_api.rate_limit_set('admin', 'read', 0.001, 2) ->> 'updated_at', to_jsonb(now()) #>> '{}',
          'rate_limit_set: updated_at is ISO 8601 (to_jsonb) under DateStyle SQL, DMY');
SELECT is((SELECT l ->> 'updated_at' FROM jsonb_array_elements(catalog_api.rate_limits() -> 'limits') AS l
           WHERE l ->> 'caller_class' = 'admin' AND l ->> 'action' = 'read'), to_jsonb(now()) #>> '{}',
          'rate_limits: updated_at is ISO 8601 (to_jsonb) too');
RESET datestyle;
RESET timezone;
SELECT is(catalog_api.rate_limit_set('anonymous', 'read', 0.001, 1) ->> 'burst', '1',
          'a limit per caller class');
SELECT is(catalog_api.rate_limit_set('admin', 'get_product', 0.001, 2) ->> 'action', 'get_product',
          'a limit per function');
SELECT is(catalog_api.rate_limit_set('admin', 'write', NULL, 1) ->> 'rate', NULL,
          'a null rate: no limit');
-- (the CSRF part below calls these freely)
SELECT ok(catalog_api.rate_limit_set('admin', 'csrf_token', NULL, 1) IS NOT NULL
          AND catalog_api.rate_limit_set('admin', 'product_facets', NULL, 1) IS NOT NULL,
          'no limit on two functions');
SELECT is(jsonb_array_length(catalog_api.rate_limits() -> 'limits'), 6, 'rate_limits lists the six limits');
SELECT is(catalog_api.rate_limits() #>> '{functions,create_product}', 'write', 'rate_limits shows the classes');
SELECT ok(catalog_api.rate_limit_set('editor', 'read', 5, 5) IS NOT NULL
          AND catalog_api.rate_limit_drop('editor', 'read')
          AND NOT catalog_api.rate_limit_drop('editor', 'read'),
          'rate_limit_drop removes a limit once');

------------------------------------------------------------------------------
-- pre_request: the refusal PostgREST maps to 429 with headers.
------------------------------------------------------------------------------
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('a')) ->> 'state', 'ok', 'first read allowed');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('a')) ->> 'state', 'ok', 'second read allowed (burst 2)');
CREATE TEMP TABLE refusal AS SELECT pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('a')) AS r;
SELECT is(r ->> 'state', 'PGRST', 'third read refused with SQLSTATE PGRST') FROM refusal;
SELECT is((r ->> 'message')::jsonb - 'hint',
          '{"code": "PT429", "message": "rate limit exceeded", "details": "rate_limited"}'::jsonb,
          'the message is PostgREST''s error JSON') FROM refusal;
SELECT is((r ->> 'detail')::jsonb - 'headers',
          '{"status": 429, "status_text": "Too Many Requests"}'::jsonb,
          'the detail carries status 429') FROM refusal;
SELECT ok(((r ->> 'detail')::jsonb #>> '{headers,Retry-After}')::int BETWEEN 998 AND 1000,
          'Retry-After is the wait for the next token (one per 1000 s)') FROM refusal;
SELECT is((r ->> 'detail')::jsonb #>> '{headers,RateLimit-Limit}', '2', 'RateLimit-Limit is the burst') FROM refusal;
SELECT is((r ->> 'detail')::jsonb #>> '{headers,RateLimit-Remaining}', '0', 'RateLimit-Remaining is 0') FROM refusal;
SELECT ok(((r ->> 'detail')::jsonb #>> '{headers,RateLimit-Reset}')::int BETWEEN 1999 AND 2000,
          'RateLimit-Reset is when the bucket is full again') FROM refusal;
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('b')) ->> 'state', 'ok',
          'another subject has its own bucket');
-- Retry-After is at most a day: 90 reads under a lax limit (one per
-- 1000 s, burst 100) put the bucket 90,000 s ahead; under a strict limit
-- (burst 1) the exact wait is 90,000 s, and the client is told a day.
SELECT ok(catalog_api.rate_limit_set('admin', 'list_categories', 0.001, 100) IS NOT NULL, 'a lax limit');
SELECT is(count(*) FILTER (WHERE pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('day')) ->> 'state' = 'ok'),
          90::bigint, '90 reads within the burst of 100')
FROM generate_series(1, 90);
SELECT ok(catalog_api.rate_limit_set('admin', 'list_categories', 0.001, 1) IS NOT NULL, 'a strict limit');
CREATE TEMP TABLE day_refusal AS SELECT pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('day')) AS r;
SELECT is((r ->> 'detail')::jsonb #>> '{headers,Retry-After}', '86400',
          'Retry-After is capped at a day (the exact wait is 90,000 s)') FROM day_refusal;
SELECT ok(((r ->> 'detail')::jsonb #>> '{headers,RateLimit-Reset}')::int BETWEEN 89999 AND 90000,
          'RateLimit-Reset still says when the bucket is full again') FROM day_refusal;
-- A numeric sub too long for any claim is not printed (1e131071: 131,072
-- digits): the limiter takes it as absent, so the request is counted
-- under the caller's other key, the one a request without a sub has.
SELECT is(pg_temp.req('GET', '/rpc/list_categories', '{"sub": 1e131071}') ->> 'state', 'ok',
          'a request with a sub of 131,072 digits is allowed once (limit: burst 1)');
SELECT is(pg_temp.req('GET', '/rpc/list_categories') ->> 'state', 'PGRST',
          'a request without a sub is then refused: both counted under one key (the long sub taken as absent)');
SELECT ok(catalog_api.rate_limit_drop('admin', 'list_categories'), 'the limit is dropped again');
-- A subject too long for a key is keyed by its SHA-256: still one bucket
-- per subject, and subjects differing in their last character apart.
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub(repeat('x', 300) || 'a')) ->> 'state', 'ok',
          'a long subject: first read allowed');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub(repeat('x', 300) || 'a')) ->> 'state', 'ok',
          'a long subject: second read allowed');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub(repeat('x', 300) || 'a')) ->> 'state', 'PGRST',
          'a long subject: third read refused (its hashed key is one bucket)');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub(repeat('x', 300) || 'b')) ->> 'state', 'ok',
          'a long subject differing in its last character has its own bucket');
SELECT is(pg_temp.req('HEAD', '/rpc/unknown_thing', pg_temp.sub('a')) ->> 'state', 'PGRST',
          'an unknown path counts by method: HEAD is a read');
SELECT is(pg_temp.req('POST', '/rpc/unknown_thing', pg_temp.sub('a')) ->> 'state', 'ok',
          'POST to an unknown path is a write (no limit for admin writes here)');
-- Subject a's reads are refused now; under a strict limit on admin writes
-- (so that an allowed write proves a bucket, not the absence of a limit)
-- its first write passes and its second is refused.
SELECT ok(catalog_api.rate_limit_set('admin', 'write', 0.001, 1) IS NOT NULL,
          'a strict limit on admin writes');
SELECT is(pg_temp.req('POST', '/rpc/create_category', pg_temp.sub('a')) ->> 'state', 'ok',
          'writes are a separate scope: a subject whose reads are refused may still write');
SELECT is(pg_temp.req('POST', '/rpc/create_category', pg_temp.sub('a')) ->> 'state', 'PGRST',
          'its writes have their own limit (burst 1)');
SELECT ok(catalog_api.rate_limit_set('admin', 'write', NULL, 1) IS NOT NULL,
          'admin writes unlimited again');
SELECT is(pg_temp.req('GET', '/rpc/health', pg_temp.sub('a')) ->> 'state', 'ok',
          'health is never limited');

-- A null rate is no limit: a function's null row wins over a strict limit
-- of its class (it does not fall back to the class's row).
SELECT ok(catalog_api.rate_limit_set('admin', 'write', 0.001, 1) IS NOT NULL
          AND catalog_api.rate_limit_set('admin', 'archive_product', NULL, 1) IS NOT NULL,
          'a strict limit on admin writes, none on archive_product');
SELECT is(pg_temp.req('POST', '/rpc/update_category', pg_temp.sub('n')) ->> 'state', 'ok',
          'the class limit: a first write allowed');
SELECT is(pg_temp.req('POST', '/rpc/update_category', pg_temp.sub('n')) ->> 'state', 'PGRST',
          'the class limit: the second refused (burst 1)');
SELECT is((SELECT count(*) FROM generate_series(1, 5) i
           WHERE pg_temp.req('POST', '/rpc/archive_product', pg_temp.sub('n')) ->> 'state' = 'ok'), 5::bigint,
          'a null rate on archive_product: five writes of the same subject, none refused');
SELECT ok(catalog_api.rate_limit_set('admin', 'write', NULL, 1) IS NOT NULL
          AND catalog_api.rate_limit_drop('admin', 'archive_product'),
          'the limits of the rest of this file restored');

-- A limit per function is its own bucket, apart from the class's.  The
-- counters health() reports move by what this block does (the pgTAP files
-- run one at a time, on their own server).
CREATE TEMP TABLE rl_counts AS
SELECT (catalog_api.health() #>> '{rate_limiter,allowed}')::bigint AS allowed,
       (catalog_api.health() #>> '{rate_limiter,refused_rate}')::bigint AS refused_rate;
SELECT is(pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('c')) ->> 'state', 'ok', 'get_product: first');
SELECT is(pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('c')) ->> 'state', 'ok', 'get_product: second');
SELECT is(pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('c')) ->> 'state', 'PGRST', 'get_product: third refused');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('c')) ->> 'state', 'ok',
          'the same subject may still search (the read scope is another bucket)');

-- The caller class comes from the request's role.
SET LOCAL ROLE catalog_anon;
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('d')) ->> 'state', 'ok', 'anonymous: first read');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('d')) ->> 'state', 'PGRST',
          'anonymous: the second read is refused (its class has burst 1)');
SELECT ok(NOT (catalog_api.health() ? 'rate_limiter'), 'health hides the limiter from anonymous callers');
RESET ROLE;
SELECT is(ARRAY[(catalog_api.health() #>> '{rate_limiter,allowed}')::bigint - allowed,
                (catalog_api.health() #>> '{rate_limiter,refused_rate}')::bigint - refused_rate],
          ARRAY[4, 2]::bigint[],
          'health counts exactly the requests allowed (4) and refused by their rate (2) since')
FROM rl_counts;

------------------------------------------------------------------------------
-- Counted exactly once: pre_request covers the call that follows it; a
-- plain SQL call counts itself.
------------------------------------------------------------------------------
-- (a successful pre_request above left its mark: this call takes it)
SELECT is(pg_temp.get_missing('flush-' || (SELECT tag FROM run)), 'PT404', 'the mark of the last pre_request is taken');
SELECT is(pg_temp.get_missing('e-' || (SELECT tag FROM run)), 'PT404', 'plain SQL call 1 of get_product: counted, allowed');
SELECT is(pg_temp.get_missing('e-' || (SELECT tag FROM run)), 'PT404', 'plain SQL call 2: allowed');
SELECT is(pg_temp.get_missing('e-' || (SELECT tag FROM run)), 'PGRST', 'plain SQL call 3: refused (burst 2)');

SELECT is(pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('f')) ->> 'state', 'ok', 'pre_request counts request 1');
SELECT is(pg_temp.get_missing('f-' || (SELECT tag FROM run)), 'PT404',
          'the call pre_request counted is not counted again');
SELECT is(pg_temp.get_missing('f-' || (SELECT tag FROM run)), 'PT404', 'the next plain call is request 2');
SELECT is(pg_temp.get_missing('f-' || (SELECT tag FROM run)), 'PGRST', 'and the one after it is refused');

-- A percent-encoded path is the function PostgREST routes it to.
SELECT is(pg_temp.req('GET', '/rpc/get%5Fproduct', pg_temp.sub('p')) ->> 'state', 'ok', 'encoded path: first');
SELECT is(pg_temp.req('GET', '/rpc/get%5fproduct', pg_temp.sub('p')) ->> 'state', 'ok', 'encoded path: second');
SELECT is(pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('p')) ->> 'state', 'PGRST',
          'encoded paths count in the function''s own bucket');
SELECT is(pg_temp.req('GET', '/rpc/get_product%00', pg_temp.sub('p')) ->> 'state', 'ok',
          'a path with an encoded NUL names no function: it counts as a read, not as get_product');

-- A path naming another function gives no discount: the call counts itself.
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('m')) ->> 'state', 'ok',
          'pre_request counts a search (read scope)');
SELECT is(pg_temp.get_missing('m-' || (SELECT tag FROM run)), 'PT404', 'get_product then counts itself: 1');
SELECT is(pg_temp.get_missing('m-' || (SELECT tag FROM run)), 'PT404', 'get_product: 2');
SELECT is(pg_temp.get_missing('m-' || (SELECT tag FROM run)), 'PGRST', 'get_product: 3 refused (burst 2)');

-- Each caller class has its own bucket for the same key: a stricter class
-- cannot reset, nor use, a laxer one's.
SET LOCAL ROLE catalog_anon;
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'ok', 'anonymous k: first');
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'PGRST', 'anonymous k: refused');
RESET ROLE;
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'ok', 'admin k: own bucket, first');
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'ok', 'admin k: second');
SET LOCAL ROLE catalog_anon;
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'PGRST', 'anonymous k: still refused');
RESET ROLE;
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('k')) ->> 'state', 'PGRST',
          'admin k: refused after its burst, whatever the anonymous requests did');

-- A key's bucket is never handed back: a request under another limit (two
-- logins whose default limits differ, for the same client) whose smaller
-- tolerance the bucket's time already exceeds is refused and writes
-- nothing.  The bucket's time used to be cut to that tolerance, and the
-- first limit's burst came back: alternating gave an unbounded rate.
-- (editor read: no row, the defaults apply; 0.001/s, so nothing comes back
-- while the test runs)
SET LOCAL catalog.rate_limit_read_rate = 0.001;
SET LOCAL catalog.rate_limit_read_burst = 3;
SET LOCAL ROLE catalog_editor;
SELECT is(array_agg(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('lim')) ->> 'state' ORDER BY i),
          ARRAY['ok', 'ok', 'ok', 'PGRST'], 'limit A (burst 3): three requests, the fourth refused')
FROM generate_series(1, 4) i;
RESET ROLE;
SET LOCAL catalog.rate_limit_read_burst = 1;
SET LOCAL ROLE catalog_editor;
SELECT is(array_agg(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('lim')) ->> 'state' ORDER BY i),
          ARRAY['PGRST', 'PGRST'], 'limit B (burst 1) for the same client: refused, the key spent more than B allows')
FROM generate_series(1, 2) i;
RESET ROLE;
SET LOCAL catalog.rate_limit_read_burst = 3;
SET LOCAL ROLE catalog_editor;
SELECT is(pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('lim')) ->> 'state', 'PGRST',
          'back under limit A: its spent burst stays spent (B handed nothing back)');
RESET ROLE;
RESET catalog.rate_limit_read_rate;
RESET catalog.rate_limit_read_burst;

-- Default rates outside the range the arithmetic holds for are refused.
SELECT throws_ok($$SET catalog.rate_limit_read_rate = 1e-300$$, '22023', NULL, 'a default rate below 0.001 is refused');
SELECT throws_ok($$SET catalog.rate_limit_write_rate = 'NaN'$$, '22023', NULL, 'a NaN default rate is refused');
SELECT lives_ok($$SET LOCAL catalog.rate_limit_read_rate = 0$$, 'a default rate of 0 (no limit) is accepted');
SET LOCAL catalog.rate_limit_read_burst = 1;
SET LOCAL ROLE catalog_editor;
SELECT is(count(*) FILTER (WHERE pg_temp.req('GET', '/rpc/list_categories', pg_temp.sub('z0')) ->> 'state' = 'ok'),
          5::bigint, 'a default rate of 0 means no limit: five reads of one editor at burst 1 (no row), none refused')
FROM generate_series(1, 5);
RESET ROLE;
RESET catalog.rate_limit_read_rate;
RESET catalog.rate_limit_read_burst;

-- Unlimited: admin writes (rate null).
SELECT is(count(*) FILTER (WHERE pg_temp.req('POST', '/rpc/create_product', pg_temp.sub('g')) ->> 'state' = 'ok'), 20::bigint,
          'a null rate never refuses') FROM generate_series(1, 20);

SELECT ok((catalog_api.health() #>> '{rate_limiter,refused_rate}')::bigint >= 6
          AND (catalog_api.health() #>> '{rate_limiter,in_use}')::bigint >= 6
          AND catalog_api.health() #>> '{rate_limiter,state}' IN ('ok', 'full'),
          'health reports the limiter''s counters to admins');

------------------------------------------------------------------------------
-- CSRF.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.token(cookies text, claims text DEFAULT '') RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t jsonb;
BEGIN
    PERFORM set_config('request.method', 'POST', true), set_config('request.path', '/rpc/csrf_token', true),
            set_config('request.cookies', cookies, true), set_config('request.jwt.claims', claims, true);
    t := catalog_api.csrf_token() || jsonb_build_object('set', current_setting('response.headers'));
    PERFORM set_config('request.method', '', true), set_config('request.path', '', true),
            set_config('request.cookies', '', true), set_config('request.jwt.claims', '', true),
            set_config('response.headers', '', true);
    RETURN t;
END $$;

-- A cookie-authenticated POST with token tok in header and cookie.
CREATE FUNCTION pg_temp.post(session text, in_header text, in_cookie text, claims text DEFAULT '')
RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(r ->> 'detail', r ->> 'state') FROM (SELECT pg_temp.req(
        'POST', '/rpc/create_category', claims,
        CASE WHEN in_header IS NULL THEN '{}' ELSE json_build_object('x-csrf-token', in_header)::text END,
        json_strip_nulls(json_build_object('session', session, '__Host-csrf', in_cookie))::text) AS r) x $$;

CREATE TEMP TABLE tok AS SELECT pg_temp.token('{"session":"s1"}') AS t;
SELECT matches(t ->> 'token', '^v1\.1\.[0-9a-f]{32}\.[0-9a-f]{64}$', 'csrf_token issues a v1 token of kid 1') FROM tok;
SELECT is(t - 'token' - 'set', '{"header": "x-csrf-token", "cookie": "__Host-csrf"}'::jsonb,
          'csrf_token names the header and cookie') FROM tok;
SELECT is((t ->> 'set')::jsonb, jsonb_build_array(jsonb_build_object('Set-Cookie',
          '__Host-csrf=' || (t ->> 'token') || '; Path=/; Secure; HttpOnly; SameSite=Strict')),
          'under PostgREST the token cookie is set (Secure, HttpOnly, SameSite=Strict)') FROM tok;
SELECT isnt((SELECT t ->> 'token' FROM tok), (pg_temp.token('{"session":"s1"}') ->> 'token'),
            'each token is new (random nonce)');
SELECT is(pg_temp.token(json_build_object('session', 's1', '__Host-csrf', t ->> 'token')::text) ->> 'token', t ->> 'token',
          'a second tab asking again gets the session''s current token, not a new one') FROM tok;
SELECT isnt(pg_temp.token(json_build_object('session', 's2', '__Host-csrf', t ->> 'token')::text) ->> 'token', t ->> 'token',
            'a token cookie of another session is not handed back') FROM tok;
SELECT throws_ok($$SELECT catalog_api.csrf_token()$$, '22023', NULL, 'no session: no token');
-- Calls in one transaction: each replaces the cookie the one before it set
-- (it added one more, copying all the earlier ones: quadratic), and the
-- headers others set stay.
SELECT set_config('request.method', 'POST', true), set_config('request.path', '/rpc/csrf_token', true),
       set_config('request.cookies', '{"session":"s1"}', true),
       set_config('response.headers', '[{"X-Other": "1"}]', true);
CREATE TEMP TABLE three AS
    SELECT catalog_api.csrf_token() ->> 'token' AS t1, NULL::text AS t2, NULL::text AS t3;
UPDATE three SET t2 = catalog_api.csrf_token() ->> 'token';
UPDATE three SET t3 = catalog_api.csrf_token() ->> 'token';
SELECT is(current_setting('response.headers')::jsonb,
          jsonb_build_array(jsonb_build_object('X-Other', '1'), jsonb_build_object('Set-Cookie',
                            '__Host-csrf=' || t3 || '; Path=/; Secure; HttpOnly; SameSite=Strict')),
          'three csrf_token calls in one transaction set one token cookie, the last one''s; other headers stay')
FROM three WHERE t1 <> t2 AND t2 <> t3;
-- Savepoints: response.headers is transaction-local, so a rolled-back
-- savepoint restores the header of its parent, and the entry the next call
-- replaces is the parent's (a single remembered entry went stale there and
-- the next call added a second cookie); a released one hands its entry up.
SELECT set_config('response.headers', '[{"X-Other": "1"}]', true);
CREATE TEMP TABLE sp (n int PRIMARY KEY, t text);
INSERT INTO sp SELECT 1, catalog_api.csrf_token() ->> 'token';
SAVEPOINT csrf_a;
INSERT INTO sp SELECT 2, catalog_api.csrf_token() ->> 'token';
SAVEPOINT csrf_b;
INSERT INTO sp SELECT 3, catalog_api.csrf_token() ->> 'token';
ROLLBACK TO SAVEPOINT csrf_a;
RELEASE SAVEPOINT csrf_a;
SELECT is(current_setting('response.headers')::jsonb,
          jsonb_build_array(jsonb_build_object('X-Other', '1'), jsonb_build_object('Set-Cookie',
                            '__Host-csrf=' || t || '; Path=/; Secure; HttpOnly; SameSite=Strict')),
          'a rolled-back savepoint takes its calls'' cookies with it: the earlier call''s stays')
FROM sp WHERE n = 1 AND (SELECT count(*) FROM sp) = 1;
INSERT INTO sp SELECT 4, catalog_api.csrf_token() ->> 'token';
SELECT is(current_setting('response.headers')::jsonb,
          jsonb_build_array(jsonb_build_object('X-Other', '1'), jsonb_build_object('Set-Cookie',
                            '__Host-csrf=' || t || '; Path=/; Secure; HttpOnly; SameSite=Strict')),
          'after a rolled-back savepoint the next call replaces the cookie the header holds')
FROM sp WHERE n = 4;
SAVEPOINT csrf_c;
SAVEPOINT csrf_d;
INSERT INTO sp SELECT 5, catalog_api.csrf_token() ->> 'token';
RELEASE SAVEPOINT csrf_d;
SAVEPOINT csrf_e;
INSERT INTO sp SELECT 6, catalog_api.csrf_token() ->> 'token';
ROLLBACK TO SAVEPOINT csrf_e;
RELEASE SAVEPOINT csrf_c;
INSERT INTO sp SELECT 7, catalog_api.csrf_token() ->> 'token';
SELECT is(current_setting('response.headers')::jsonb,
          jsonb_build_array(jsonb_build_object('X-Other', '1'), jsonb_build_object('Set-Cookie',
                            '__Host-csrf=' || t || '; Path=/; Secure; HttpOnly; SameSite=Strict')),
          'released and rolled-back nested savepoints leave one cookie, the last call''s')
FROM sp WHERE n = 7 AND (SELECT count(*) FROM sp) = 4;
SELECT set_config('request.method', '', true), set_config('request.path', '', true),
       set_config('request.cookies', '', true), set_config('response.headers', '', true);

SELECT is(pg_temp.post('s1', t ->> 'token', t ->> 'token'), 'ok', 'valid token in header and cookie: accepted') FROM tok;
SELECT is(pg_temp.post('s1', NULL, t ->> 'token'), '{"reason":"csrf_missing"}', 'no header token: PT403') FROM tok;
SELECT is(pg_temp.post('s1', t ->> 'token', NULL), '{"reason":"csrf_missing"}', 'no cookie token: PT403') FROM tok;
SELECT is((pg_temp.req('POST', '/rpc/create_category', '', '{}', '{"session":"s1"}')) ->> 'state', 'PT403',
          'the refusal is SQLSTATE PT403 (HTTP 403)');
SELECT is(pg_temp.post('s1', t ->> 'token', (SELECT t ->> 'token' FROM (SELECT pg_temp.token('{"session":"s1"}') AS t) y)),
          '{"reason":"csrf_mismatch"}', 'header and cookie differ: refused') FROM tok;
SELECT is(pg_temp.post('s1', x, x), '{"reason":"csrf_invalid"}', 'a token with one digit of its MAC changed: refused')
FROM (SELECT overlay(t ->> 'token' placing CASE WHEN right(t ->> 'token', 1) = '0' THEN '1' ELSE '0' END
                     from length(t ->> 'token') for 1) AS x FROM tok) y;
SELECT is(pg_temp.post('s1', x, x), '{"reason":"csrf_invalid"}', 'a token with its nonce changed: refused')
FROM (SELECT overlay(t ->> 'token' placing CASE WHEN substr(t ->> 'token', 6, 1) = 'a' THEN 'b' ELSE 'a' END
                     from 6 for 1) AS x FROM tok) y;
SELECT is(pg_temp.post('s1', x, x), '{"reason":"csrf_invalid"}', 'a token claiming another kid: refused')
FROM (SELECT replace(t ->> 'token', 'v1.1.', 'v1.2.') AS x FROM tok) y;
SELECT is(pg_temp.post('s1', x, x), '{"reason":"csrf_invalid"}', 'upper-case hex is not the token: refused')
FROM (SELECT 'v1.1.' || upper(substr(t ->> 'token', 6)) AS x FROM tok) y;
SELECT is(pg_temp.post('s1', 'v1.1.x', 'v1.1.x'), '{"reason":"csrf_invalid"}', 'a malformed token: refused');
SELECT is(pg_temp.post('s1', x, x), '{"reason":"csrf_invalid"}', 'a kid written with a leading zero: refused (one spelling per token)')
FROM (SELECT replace(t ->> 'token', 'v1.1.', 'v1.01.') AS x FROM tok) y;
SELECT is(pg_temp.post('s1', repeat('a', 5000), repeat('a', 5000)), '{"reason":"csrf_invalid"}',
          'a huge token: refused without parsing');
SELECT is(pg_temp.post('s2', t ->> 'token', t ->> 'token'), '{"reason":"csrf_invalid"}',
          'the token of an expired session, sent with the new session: refused') FROM tok;

-- Bound to the JWT sid when there is one.
CREATE TEMP TABLE tok_sid AS SELECT pg_temp.token('{"session":"s9"}', '{"sid":"sid-A"}') AS t;
SELECT is(pg_temp.post('s9', t ->> 'token', t ->> 'token', '{"sid":"sid-A"}'), 'ok', 'bound to JWT sid A: accepted') FROM tok_sid;
SELECT is(pg_temp.post('s9', t ->> 'token', t ->> 'token', '{"sid":"sid-B"}'), '{"reason":"csrf_invalid"}',
          'another session''s token (sid B): refused') FROM tok_sid;
-- A cookie session and a JWT sid of the same text are two sessions: a
-- token bound to one is refused for the other, both ways.
CREATE TEMP TABLE tok_same AS
    SELECT pg_temp.token('{"session":"same-X"}') AS by_cookie,
           pg_temp.token('{"session":"s9"}', '{"sid":"same-Y"}') AS by_sid;
SELECT is(pg_temp.post('s9', by_cookie ->> 'token', by_cookie ->> 'token', '{"sid":"same-X"}'),
          '{"reason":"csrf_invalid"}', 'a token bound to cookie session X is refused for JWT sid X') FROM tok_same;
SELECT is(pg_temp.post('same-Y', by_sid ->> 'token', by_sid ->> 'token'),
          '{"reason":"csrf_invalid"}', 'a token bound to JWT sid Y is refused for cookie session Y') FROM tok_same;
SELECT is(pg_temp.post('same-X', by_cookie ->> 'token', by_cookie ->> 'token'), 'ok',
          'and each is accepted for its own session') FROM tok_same;

-- Exempt: no session cookie (bearer), safe methods, read-only, issuance.
SELECT is(pg_temp.req('POST', '/rpc/create_category', '{"sub":"x","sid":"sid-A"}',
                      '{"authorization":"Bearer abc"}', '{}') ->> 'state', 'ok',
          'a bearer-authenticated POST without cookie needs no token');
SELECT is(pg_temp.req('POST', '/rpc/create_category', '', '{}', cookies) ->> 'detail', '{"reason":"csrf_missing"}', label)
FROM (VALUES ('{"session":""}', 'an empty session cookie is a cookie session: a POST needs a token'),
             ('{"session":"s1","session":""}',
              'the session cookie twice, the last empty (planted): a POST still needs a token'))
     AS t(cookies, label);
SELECT is(pg_temp.req('GET', '/rpc/product_facets', '', '{}', '{"session":"s1"}') ->> 'state', 'ok',
          'a GET with the session cookie needs no token');
SELECT is(pg_temp.req(m, '/rpc/product_facets', '', '{}', '{"session":"s1"}') ->> 'state', 'ok',
          'a ' || m || ' with the session cookie needs no token')
FROM (VALUES ('HEAD'), ('OPTIONS')) AS t(m);
SELECT is(pg_temp.req('POST', '/rpc/product_facets', '', '{}', '{"session":"s1"}') ->> 'state', 'PT403',
          'a POST with the session cookie needs one, even to a read function');
SELECT is(pg_temp.req('POST', '/rpc/csrf_token', '', '{}', '{"session":"s1"}') ->> 'state', 'ok',
          'fetching a token needs no token');
SELECT is(pg_temp.req('POST', '/rpc/csrf%5Ftoken', '', '{}', '{"session":"s1"}') ->> 'state', 'ok',
          'fetching a token needs no token, also by a percent-encoded path (PostgREST decodes it)');
SELECT is(pg_temp.req('POST', '/rpc/csrf_token2', '', '{}', '{"session":"s1"}') ->> 'state', 'PT403',
          'a path that only begins with csrf_token is not exempt');

-- Rotation: a new kid signs; the old kid verifies until it is dropped.
INSERT INTO catalog.signing_key (purpose, kid, secret) VALUES ('csrf', 2, gen_random_uuid()::text::bytea);
CREATE TEMP TABLE tok2 AS SELECT pg_temp.token('{"session":"s1"}') AS t;
SELECT matches(t ->> 'token', '^v1\.2\.', 'after a rotation the newest kid signs') FROM tok2;
SELECT is(pg_temp.post('s1', t ->> 'token', t ->> 'token'), 'ok', 'the new kid verifies') FROM tok2;
SELECT is(pg_temp.post('s1', t ->> 'token', t ->> 'token'), 'ok', 'the old kid still verifies') FROM tok;
SELECT matches(pg_temp.token(json_build_object('session', 's1', '__Host-csrf', t ->> 'token')::text) ->> 'token',
               '^v1\.2\.', 'csrf_token replaces a valid cookie token of an older kid by one of the newest') FROM tok;
SELECT is(pg_temp.token(json_build_object('session', 's1', '__Host-csrf', t ->> 'token')::text) ->> 'token',
          t ->> 'token', 'csrf_token returns a valid cookie token of the newest kid again') FROM tok2;
SELECT matches(pg_temp.token(json_build_object('session', 's1', '__Host-csrf',
                   'v1.4294967298.' || split_part(t ->> 'token', '.', 3) || '.' || split_part(t ->> 'token', '.', 4))::text)
               ->> 'token', '^v1\.2\.[0-9a-f]{32}\.',
               'a cookie token whose kid overflows an int gets a new token (a guard: atoi read it as kid 2)') FROM tok2;
DELETE FROM catalog.signing_key WHERE purpose = 'csrf' AND kid = 1;
SELECT is(pg_temp.post('s1', t ->> 'token', t ->> 'token'), '{"reason":"csrf_invalid"}',
          'after the old kid is dropped, its tokens are refused') FROM tok;
SELECT is(pg_temp.post('s1', t ->> 'token', t ->> 'token'), 'ok', 'the new kid still verifies') FROM tok2;

-- Tokens never reach an audit row.
SELECT pg_temp.req('POST', '/rpc/create_category', '', json_build_object('x-csrf-token', t ->> 'token')::text,
                   json_build_object('session', 's1', '__Host-csrf', t ->> 'token')::text) FROM tok2;
SELECT set_config('request.headers', json_build_object('x-csrf-token', t ->> 'token')::text, true),
       set_config('request.cookies', json_build_object('session', 's1', '__Host-csrf', t ->> 'token')::text, true)
FROM tok2;
SELECT ok(catalog_api.create_category(name => 'Csrf Audit', slug => 'csrf-audit-' || (SELECT tag FROM run)) IS NOT NULL,
          'a write with the token in its request');
SELECT isnt_empty($$SELECT 1 FROM catalog.audit_log a WHERE a.txid = pg_current_xact_id()
                     AND a.table_name = 'category' AND a.action = 'insert'$$,
                  'the write has its audit row');
SELECT is_empty(format($$SELECT 1 FROM catalog.audit_log a WHERE a.txid = pg_current_xact_id()
                        AND a::text LIKE '%%%s%%'$$,
                       (SELECT substr(t ->> 'token', 6) FROM tok2)),
                'no audit row holds the token');
SELECT set_config('request.headers', '', true), set_config('request.cookies', '', true);

-- Secrets: superuser only.
SELECT ok(NOT has_table_privilege(r, 'catalog.signing_key', 'SELECT'), r || ' cannot read the signing keys')
FROM unnest(ARRAY['catalog_anon', 'catalog_editor', 'catalog_admin', 'catalog_owner']) r;

------------------------------------------------------------------------------
-- The extension's tables: no column changes type or goes (src/ddlguard.c),
-- since kept plans would read the new type as the old one.  The ALTERs
-- that pass hold their locks until the ROLLBACK.
------------------------------------------------------------------------------
CREATE TEMP TABLE guard_parent (price numeric(12,2));
CREATE TYPE pg_temp.guard_row AS (id bigint);
CREATE TABLE public.guard_ptab (LIKE catalog.category) PARTITION BY RANGE (id);
CREATE TABLE public.guard_kid3 (LIKE catalog.product);
CREATE FOREIGN DATA WRAPPER guard_fdw;
CREATE SERVER guard_srv FOREIGN DATA WRAPPER guard_fdw;
SELECT throws_ok(stmt, '0A000', msg, d)
FROM (VALUES
    ('ALTER TABLE catalog.product ALTER COLUMN price TYPE float8',
     'cannot change the type of column "price" of table "product", which belongs to extension "catalog"',
     'ALTER COLUMN TYPE of an extension table is refused, even to a superuser'),
    ('ALTER TABLE catalog.product DROP COLUMN description',
     'cannot drop column "description" of table "product", which belongs to extension "catalog"',
     'DROP COLUMN of an extension table is refused'),
    ('ALTER TABLE catalog.product ALTER COLUMN search_doc DROP EXPRESSION',
     'cannot change the expression of column "search_doc" of table "product", which belongs to extension "catalog"',
     'DROP EXPRESSION of the generated search document is refused (new products would fail or go unsearchable)'),
    ('ALTER TABLE catalog.product ALTER COLUMN currency DROP NOT NULL',
     'cannot drop NOT NULL of column "currency" of table "product", which belongs to extension "catalog"',
     'DROP NOT NULL of an extension table is refused (a stored NULL would be read as a pointer)'),
    ('ALTER TABLE catalog.category ADD COLUMN tap_note text, ALTER COLUMN name SET DATA TYPE varchar(50)',
     NULL, 'a type change among other subcommands is refused'),
    ('ALTER TABLE IF EXISTS catalog.idempotency DROP COLUMN IF EXISTS response', NULL, 'DROP COLUMN IF EXISTS too'),
    ('ALTER TABLE catalog.audit_log ALTER COLUMN row_id TYPE numeric', NULL, 'the partitioned audit table too'),
    -- ... nor the changes that would reach a column later: a rename (then
    -- an added column of the old name), a new name or schema (then a new
    -- table of the old name), a parent table or a type whose ALTER would
    -- recurse, through whichever ALTER core lets do it.
    ('ALTER TABLE catalog.product RENAME COLUMN price TO price_old',
     'cannot rename column "price" of table "product", which belongs to extension "catalog"',
     'RENAME COLUMN of an extension table is refused'),
    ('ALTER TABLE catalog.product RENAME TO product_old',
     'cannot rename table "product", which belongs to extension "catalog"',
     'RENAME of an extension table is refused'),
    ('ALTER TABLE catalog.category SET SCHEMA public', NULL, 'SET SCHEMA of an extension table is refused'),
    ('ALTER INDEX catalog.product RENAME TO product_old',
     'cannot rename table "product", which belongs to extension "catalog"',
     'the rename of an extension table through ALTER INDEX is refused too, and the message says what it is'),
    ('ALTER SEQUENCE catalog.audit_log_id_seq RENAME TO audit_log_id_seq_old',
     'cannot rename sequence "audit_log_id_seq", which belongs to extension "catalog"',
     'the rename of an extension sequence is refused, and called a sequence'),
    ('ALTER SEQUENCE catalog.audit_log_id_seq SET SCHEMA public',
     'cannot move sequence "audit_log_id_seq", which belongs to extension "catalog"',
     'SET SCHEMA of an extension sequence is refused, and called a sequence'),
    ('ALTER VIEW catalog.product RENAME COLUMN price TO price_old', NULL,
     'the rename of a column through ALTER VIEW is refused too'),
    ('ALTER SCHEMA catalog RENAME TO catalog_old', NULL, 'the rename of the extension''s schema is refused'),
    ('ALTER SCHEMA catalog_api RENAME TO catalog_api_old', NULL, 'the rename of the API schema is refused'),
    ('ALTER TABLE catalog.product INHERIT guard_parent', NULL,
     'INHERIT: an extension table cannot get a parent whose ALTER would recurse into it'),
    ('ALTER TABLE catalog.search_term OF pg_temp.guard_row', NULL, 'OF: an extension table cannot become a typed table'),
    ('ALTER TABLE public.guard_ptab ATTACH PARTITION catalog.category FOR VALUES FROM (MINVALUE) TO (MAXVALUE)',
     'cannot attach table "category", which belongs to extension "catalog"',
     'ATTACH PARTITION: an extension table cannot become a partition whose parent''s ALTER would recurse into it'),
    ('ALTER TABLE catalog.audit_log DETACH PARTITION catalog.audit_log_default',
     'cannot detach table "audit_log_default", which belongs to extension "catalog"',
     'DETACH PARTITION of the audit log''s default partition is refused (a row whose month has no partition goes there)'),
    -- the other objects the code names: the enum type, its labels, the
    -- functions, a constraint the API tells by name; and a child table
    -- whose rows would show in searches but not in get_product
    ('ALTER TYPE catalog.product_status RENAME TO product_status_old',
     'cannot rename type catalog.product_status, which belongs to extension "catalog"',
     'RENAME of the extension''s enum type is refused (searches failed with XX000)'),
    ('ALTER TYPE catalog.product_status SET SCHEMA public',
     'cannot move type catalog.product_status, which belongs to extension "catalog"',
     'SET SCHEMA of the extension''s enum type is refused'),
    ($$ALTER TYPE catalog.product_status RENAME VALUE 'draft' TO 'published_draft'$$,
     'cannot rename a label of type catalog.product_status, which belongs to extension "catalog"',
     'RENAME VALUE of the enum is refused (renaming draft to published would show drafts to anonymous callers)'),
    ('ALTER FUNCTION catalog.audit_guard() RENAME TO audit_guard_old',
     'cannot rename function catalog.audit_guard(), which belongs to extension "catalog"',
     'RENAME of an extension function is refused (audit_maintain names it in the triggers of new partitions)'),
    ('ALTER FUNCTION catalog_api.get_product(bigint) SET SCHEMA public',
     'cannot move function catalog_api.get_product(bigint), which belongs to extension "catalog"',
     'SET SCHEMA of an extension function is refused'),
    ('ALTER TABLE catalog.product RENAME CONSTRAINT product_sku_key TO product_sku_old',
     'cannot rename constraint "product_sku_key" of table "product", which belongs to extension "catalog"',
     'RENAME CONSTRAINT of an extension table is refused (the API tells a duplicate SKU by its name)'),
    ('CREATE TABLE public.guard_kid () INHERITS (catalog.product)',
     'cannot inherit from table "product", which belongs to extension "catalog"',
     'CREATE TABLE ... INHERITS an extension table is refused'),
    ('ALTER TABLE public.guard_kid3 INHERIT catalog.product',
     'cannot inherit from table "product", which belongs to extension "catalog"',
     'ALTER TABLE ... INHERIT an extension table is refused (the same child, made in two steps)'),
    ('CREATE FOREIGN TABLE public.guard_fkid () INHERITS (catalog.product) SERVER guard_srv',
     'cannot inherit from table "product", which belongs to extension "catalog"',
     'CREATE FOREIGN TABLE ... INHERITS an extension table is refused (every search would read the foreign table)')
) AS t(stmt, msg, d);
SELECT lives_ok($$ALTER TYPE catalog.product_status ADD VALUE IF NOT EXISTS 'published'$$,
                'ADD VALUE of the enum passes (no label the code knows changes)');
CREATE TYPE public.guard_enum AS ENUM ('a');
CREATE FUNCTION public.guard_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT lives_ok($$ALTER TYPE public.guard_enum RENAME VALUE 'a' TO 'b'$$, 'another enum''s label may be renamed');
SELECT lives_ok($$ALTER TYPE public.guard_enum RENAME TO guard_enum2$$, 'another type may be renamed');
SELECT lives_ok($$ALTER FUNCTION public.guard_fn() RENAME TO guard_fn2$$, 'another function may be renamed');
SELECT lives_ok($$CREATE TEMP TABLE guard_kid2 () INHERITS (guard_parent)$$, 'another table may be inherited from');
SET LOCAL ROLE catalog_admin;
SELECT throws_ok($$SET LOCAL catalog.allow_table_changes = on$$, '42501', NULL,
                 'only a superuser may turn catalog.allow_table_changes on');
RESET ROLE;
CREATE TEMP TABLE guard_other (a int);
SELECT lives_ok($$ALTER TABLE guard_other ALTER COLUMN a TYPE bigint$$, 'a table outside the extension is not guarded');
-- what is refused for the extension's tables stays allowed for the others
CREATE SCHEMA guard_s;
CREATE TABLE public.guard_move (a int);
SELECT lives_ok($$ALTER TABLE public.guard_move RENAME COLUMN a TO b$$, 'a column of another table may be renamed');
SELECT lives_ok($$ALTER TABLE public.guard_move RENAME TO guard_moved$$, 'another table may be renamed');
SELECT lives_ok($$ALTER TABLE public.guard_moved SET SCHEMA guard_s$$, 'another table may change schema');
SELECT lives_ok($$ALTER SCHEMA guard_s RENAME TO guard_s2$$, 'another schema may be renamed');
SELECT lives_ok($$ALTER TABLE catalog.product ADD COLUMN tap_note text$$, 'other changes pass: ADD COLUMN');
SET LOCAL catalog.rate_limit = off;
SELECT set_config('tap.guard_id', (catalog_api.create_product(
           sku => 'TAP-GUARD-1', name => 'Guard', price => 1, status => 'published',
           category_id => (catalog_api.create_category(name => 'Guard', slug => 'tap-guard') ->> 'id')::bigint) ->> 'id'),
       true) IS NOT NULL AS created;
SELECT is(catalog_api.get_product(current_setting('tap.guard_id')::bigint)
          - 'id' - 'category' - 'created_at' - 'updated_at' - 'attributes' - 'description' - 'currency' - 'version',
          '{"sku": "TAP-GUARD-1", "name": "Guard", "price": 1.00, "status": "published"}'::jsonb,
          'create_product and get_product still answer after ADD COLUMN, without the new column');
RESET catalog.rate_limit;
SET LOCAL catalog.allow_table_changes = on;
SELECT lives_ok($$ALTER TABLE catalog.category ALTER COLUMN name TYPE varchar(100)$$,
                'with catalog.allow_table_changes on, a superuser may change a type (emergency repair)');
SELECT lives_ok($$ALTER TABLE catalog.product RENAME COLUMN tap_note TO tap_remark$$,
                'with catalog.allow_table_changes on, a superuser may rename a column');
RESET catalog.allow_table_changes;

------------------------------------------------------------------------------
-- Every counted function charges the limiter itself (a function that forgot
-- to call it would pass the class table above): under a limit of burst 1 on
-- that function alone, its second call is refused.  The first may fail on
-- its NULL arguments: the limiter counts a call before it reads them.  Run
-- in a savepoint rolled back before the checks (the limits it sets, and
-- what the first calls did, go with it; pgTAP's counters must not).
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.second_call(fn text, nargs integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    call text := format('SELECT catalog_api.%I(%s)', fn,
                        coalesce((SELECT string_agg('NULL', ', ') FROM generate_series(1, nargs)), ''));
BEGIN
    PERFORM catalog_api.rate_limit_set('admin', fn, 0.001, 1);
    PERFORM set_config('request.jwt.claims', json_build_object('sub', 'charged-' || fn || '-' || (SELECT tag FROM run))::text, true);
    FOR i IN 1..2 LOOP
        BEGIN
            EXECUTE call;
            st := 'ok';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
        END;
    END LOOP;
    PERFORM set_config('request.jwt.claims', '', true);
    RETURN st;
END $$;
SAVEPOINT charged;
SELECT count(*) AS charged_n,
       coalesce(string_agg(function_name || ' ' || second, ', ' ORDER BY function_name) FILTER (WHERE second <> 'PGRST'),
                'none') AS uncharged
FROM (SELECT f.function_name, pg_temp.second_call(f.function_name, p.pronargs - p.pronargdefaults) AS second
      FROM catalog.rate_limit_functions() f
      JOIN pg_proc p ON p.pronamespace = 'catalog_api'::regnamespace AND p.proname = f.function_name
      WHERE f.action <> 'exempt' OFFSET 0) x \gset
ROLLBACK TO SAVEPOINT charged;
SELECT is(:'uncharged'::text, 'none',
          'every counted function is charged by its own call: the second call under burst 1 is refused (PGRST)');
SELECT cmp_ok(:charged_n::bigint, '>=', 20::bigint, 'and that was every read and write function (at least 20)');

-- A read-only transaction: the limiter still answers (and counts).
SET LOCAL transaction_read_only = on;
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('h')) ->> 'state', 'ok', 'read-only: allowed');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('h')) ->> 'state', 'ok', 'read-only: allowed again');
SELECT is(pg_temp.req('GET', '/rpc/search_products', pg_temp.sub('h')) ->> 'state', 'PGRST', 'read-only: refused past the burst');
SELECT is(pg_temp.req('POST', '/rpc/product_facets', '', '{}', '{"session":"s1"}') ->> 'state', 'ok',
          'read-only: a POST with the session cookie needs no token (it cannot change state)');

SELECT * FROM finish();
ROLLBACK;
