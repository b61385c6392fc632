-- 61_api_edges: edges of the rate limiter and the request context that the
-- other files left open (found by mutation testing of ratelimit.c, api.c
-- and document.c: each check fails on a build with the flaw it names).
-- Autocommit: some cases need transactions of their own.  The two cache
-- cases that need a second session are isolation specs
-- (ratelimit_cache_xact, ratelimit_cache_reset).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE TEMP TABLE run AS SELECT pg_backend_pid() || '-' || (random() * 1e9)::bigint AS tag;
GRANT SELECT ON run TO PUBLIC;
CREATE TEMP TABLE got (k text PRIMARY KEY, v text);
GRANT ALL ON got TO PUBLIC;
-- req(), get_missing() and sub(), shared with 60_security
\ir include/requests.sql

-- the value of a query ('null' for NULL: \gset would leave a variable
-- unset), or the SQLSTATE it fails with
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; st text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, 'null');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    RETURN st;
END $$;

SELECT plan(15);

-- K1: the mark pre_request leaves is for its caller class only.  An
-- anonymous pre_request of get_product, then an admin call of get_product in
-- the same transaction: the admin call counts itself (admin get_product
-- burst 1), so in a second such transaction it is refused.
SELECT catalog_api.rate_limit_set('admin', 'get_product', 0.001, 1) IS NOT NULL AS set1,
       catalog_api.rate_limit_set('anonymous', 'get_product', 0.001, 100) IS NOT NULL AS set2 \gset
BEGIN;
SET LOCAL ROLE catalog_anon;
SELECT pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('k1')) ->> 'state' AS pre1 \gset
RESET ROLE;
INSERT INTO got SELECT 'k1a', pg_temp.get_missing('k1-' || (SELECT tag FROM run));
COMMIT;
BEGIN;
SET LOCAL ROLE catalog_anon;
SELECT pg_temp.req('GET', '/rpc/get_product', pg_temp.sub('k1')) ->> 'state' AS pre2 \gset
RESET ROLE;
INSERT INTO got SELECT 'k1b', pg_temp.get_missing('k1-' || (SELECT tag FROM run));
COMMIT;
SELECT is((SELECT v FROM got WHERE k = 'k1a'), 'PT404', 'K1: an admin call after an anonymous pre_request counts itself: allowed once');
SELECT is((SELECT v FROM got WHERE k = 'k1b'), 'PGRST', 'K1: and refused the second time (no discount from another class''s mark)');
SELECT catalog_api.rate_limit_drop('admin', 'get_product') AND catalog_api.rate_limit_drop('anonymous', 'get_product') AS d1 \gset

-- K2: in a read-only transaction a request of an unknown path is a read.
SELECT catalog_api.rate_limit_set('editor', 'read', 0.001, 1) IS NOT NULL AS set3 \gset
BEGIN READ ONLY;
SET LOCAL ROLE catalog_editor;
INSERT INTO got SELECT 'k2a', pg_temp.req('POST', '/rpc/unknown_thing', pg_temp.sub('k2')) ->> 'state';
COMMIT;
BEGIN READ ONLY;
SET LOCAL ROLE catalog_editor;
SELECT pg_temp.req('POST', '/rpc/unknown_thing', pg_temp.sub('k2')) ->> 'state' AS k2b \gset
COMMIT;
INSERT INTO got VALUES ('k2b', :'k2b');
SELECT is((SELECT v FROM got WHERE k = 'k2a'), 'ok', 'K2: read-only POST of an unknown path: first read allowed');
SELECT is((SELECT v FROM got WHERE k = 'k2b'), 'PGRST', 'K2: read-only POST of an unknown path counts as a read (editor read burst 1)');
SELECT catalog_api.rate_limit_drop('editor', 'read') AS d2 \gset

-- K3: with catalog.rate_limit_trusted_proxies = 0 (the default) no
-- forwarded address is believed: requests without a sub share the session
-- user's bucket whatever x-real-ip / x-forwarded-for say.
SELECT is(current_setting('catalog.rate_limit_trusted_proxies'), '0', 'K3: no trusted proxy');
SELECT catalog_api.rate_limit_set('admin', 'product_history', 0.001, 1) IS NOT NULL
   AND catalog_api.rate_limit_set('admin', 'category_history', 0.001, 1) IS NOT NULL AS set4 \gset
SELECT is(ARRAY[pg_temp.req('GET', '/rpc/product_history', '', '{"x-real-ip":"198.51.100.1"}') ->> 'state',
                pg_temp.req('GET', '/rpc/product_history', '', '{"x-real-ip":"198.51.100.2"}') ->> 'state'],
          ARRAY['ok', 'PGRST'], 'K3: x-real-ip ignored without trusted proxies (one bucket)');
SELECT is(ARRAY[pg_temp.req('GET', '/rpc/category_history', '', '{"x-forwarded-for":"192.0.2.1"}') ->> 'state',
                pg_temp.req('GET', '/rpc/category_history', '', '{"x-forwarded-for":"192.0.2.2"}') ->> 'state'],
          ARRAY['ok', 'PGRST'], 'K3: x-forwarded-for ignored without trusted proxies (one bucket)');

-- K4: Retry-After and RateLimit-Reset are whole seconds rounded up:
-- 0.01 requests/s, burst 1: the second request, less than a second after
-- the first (however slow the server, valgrind included), waits 99.x s and
-- is told 100; rounded down it would be 99.
SELECT catalog_api.rate_limit_set('admin', 'product_facets', 0.01, 1) IS NOT NULL AS set5 \gset
SELECT pg_temp.req('GET', '/rpc/product_facets', pg_temp.sub('k4')) ->> 'state' AS k4a \gset
SELECT pg_temp.req('GET', '/rpc/product_facets', pg_temp.sub('k4')) AS k4 \gset
SELECT is(ARRAY[:'k4a', (:'k4'::jsonb ->> 'detail')::jsonb #>> '{headers,Retry-After}',
                (:'k4'::jsonb ->> 'detail')::jsonb #>> '{headers,RateLimit-Reset}'],
          ARRAY['ok', '100', '100'], 'K4: a wait of 99.x s is Retry-After 100 and RateLimit-Reset 100 (rounded up)');

-- K5: the largest burst (1,000,000) is accepted.
SELECT is(pg_temp.try($$SELECT catalog_api.rate_limit_set('anonymous', 'audit_head', 1, 1000000) ->> 'burst'$$), '1000000',
          'K5: rate_limit_set accepts burst 1000000');

-- K6: a correlation id is cut to 128 bytes (in an error DETAIL too).
CREATE FUNCTION pg_temp.detail_of_missing() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE det text;
BEGIN
    PERFORM catalog_api.get_product(-1);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS det = PG_EXCEPTION_DETAIL;
    RETURN det::jsonb;
END $$;
SELECT set_config('catalog.request_id', repeat('r', 129), false) IS NOT NULL AS k6set \gset
SELECT is(pg_temp.detail_of_missing() ->> 'request_id', repeat('r', 128), 'K6: a 129-byte request id is cut to 128 bytes');
SELECT set_config('catalog.request_id', repeat('r', 200), false) IS NOT NULL AS k6set \gset
SELECT is(pg_temp.detail_of_missing() ->> 'request_id', repeat('r', 128), 'K6: a 200-byte request id is cut to 128 bytes');
RESET catalog.request_id;

-- K7: "via" keeps only printable ASCII of the path: a space is '?'.
SELECT set_config('request.method', 'POST', false), set_config('request.path', '/rpc/create_category x', false) \gset
SELECT (catalog_api.create_category(name => 'Via Space', slug => 'via-space-' || (SELECT tag FROM run)) ->> 'id')::bigint AS k7id \gset
SELECT set_config('request.method', '', false), set_config('request.path', '', false) \gset
SELECT is((SELECT via FROM catalog.audit_log WHERE table_name = 'category' AND row_id = :k7id ORDER BY id DESC LIMIT 1),
          'POST /rpc/create_category?x', 'K7: a space in the path is stored as ?');

-- K8: role OIDs are looked up again after pg_authid changes: a
-- catalog_editor role made anew (the old one renamed) is the editor role.
SELECT catalog_api.create_product(sku => 'K8-' || (SELECT tag FROM run), name => 'K8 draft', price => 1,
       currency => 'USD', category_id => :k7id) ->> 'id' AS k8id \gset
BEGIN;
SELECT catalog_api.get_product(:k8id) IS NOT NULL AS warm \gset
ALTER ROLE catalog_editor RENAME TO k8_old_editor;
CREATE ROLE catalog_editor;
CREATE ROLE k8_user;
GRANT catalog_anon, catalog_editor TO k8_user;
SET LOCAL ROLE k8_user;
SELECT pg_temp.try(format($$SELECT catalog_api.get_product(%s) ->> 'status'$$, :k8id)) AS k8 \gset
ROLLBACK;
-- (asserted after the ROLLBACK, which would take pgTAP's record of it along)
SELECT is(:'k8'::text, 'draft', 'K8: a member of the new catalog_editor sees drafts');

-- K9: a numeric sub with 255 decimals (the most a claim may have) is
-- a key of its own: two such subjects have two buckets.
SELECT catalog_api.rate_limit_set('admin', 'audit_masks', 0.001, 1) IS NOT NULL AS set9 \gset
SELECT is(ARRAY[pg_temp.req('GET', '/rpc/audit_masks', '{"sub": 0.' || repeat('0', 254) || '1}') ->> 'state',
                pg_temp.req('GET', '/rpc/audit_masks', '{"sub": 0.' || repeat('0', 254) || '2}') ->> 'state'],
          ARRAY['ok', 'ok'], 'K9: numeric subs of 255 decimals are two keys');

-- K10: get_product checks the type of every column it reads: a
-- column whose type was changed (emergency repair) is 55000, not misread.
BEGIN;
SET LOCAL catalog.allow_table_changes = on;
ALTER TABLE catalog.product ALTER COLUMN version TYPE bigint;
SELECT pg_temp.try(format($$SELECT catalog_api.get_product(%s)::text$$, :k8id)) AS k10 \gset
ROLLBACK;
SELECT is(:'k10'::text, '55000', 'K10: get_product after version became bigint: 55000, not a misread column');

-- the limits set above, gone
SELECT catalog_api.rate_limit_drop('admin', 'product_history') AND catalog_api.rate_limit_drop('admin', 'category_history')
   AND catalog_api.rate_limit_drop('admin', 'product_facets') AND catalog_api.rate_limit_drop('anonymous', 'audit_head')
   AND catalog_api.rate_limit_drop('admin', 'audit_masks') AS dropped \gset

SELECT * FROM finish();
