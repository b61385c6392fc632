--
-- product: create, get, update, archive, idempotency (pg_regress).
-- Runs as the bootstrap superuser; role-specific behaviour is in roles.sql.
--
\set SHOW_CONTEXT never
SET catalog.actor = 'regress-user';

-- a category to put products in
SELECT c - 'id' AS category FROM catalog_api.create_category(name => 'Clothing', slug => 'clothing') AS c;
SELECT id AS clothing FROM catalog.category WHERE slug = 'clothing' \gset

-- create: canonicalised fields, defaults, document keys
SELECT p - 'created_at' - 'updated_at' - 'id' AS product
FROM catalog_api.create_product(sku => ' ws-001 ', name => '  Wool   Socks  ',
    price => 9.9, category_id => :clothing,
    description => 'Warm socks.', attributes => '{"colour": " grey ", "size": [40, 41]}') AS p;
SELECT id AS ws1 FROM catalog.product WHERE sku = 'WS-001' \gset
SELECT created_by, updated_by, version, status FROM catalog.product WHERE id = :ws1;

-- get: one document with the category
SELECT p - 'created_at' - 'updated_at' - 'id' AS product FROM catalog_api.get_product(:ws1) AS p;
SELECT catalog_api.get_product(id => -1);
\echo :LAST_ERROR_SQLSTATE
-- get_product is PARALLEL UNSAFE: under PARALLEL RESTRICTED a query whose
-- cheapest plan was parallel called it in the leader of a Gather, where
-- core refuses the snapshots it takes (the rate limiter's rule cache on a
-- new backend, the read itself): XX000.  Now no plan around it is parallel.
CREATE TABLE public.par_ids AS SELECT :ws1::bigint AS id FROM generate_series(1, 2000);
ANALYZE public.par_ids;
\c
SET catalog.actor = 'regress-user';
-- (force_parallel_mode was renamed debug_parallel_query in 16)
SELECT current_setting('server_version_num')::int >= 160000 AS pg16 \gset
\if :pg16
SET debug_parallel_query = on;
\else
SET force_parallel_mode = on;
\endif
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT catalog_api.get_product(id)->>'sku' FROM public.par_ids;
SELECT count(*) AS calls, min(p->>'sku') AS sku FROM (SELECT catalog_api.get_product(id) AS p FROM public.par_ids) s;
SELECT p->>'sku' AS sku FROM catalog_api.get_product(:ws1) AS p;
\if :pg16
RESET debug_parallel_query;
\else
RESET force_parallel_mode;
\endif
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE public.par_ids;

-- required arguments and validation errors carry field-level DETAIL
SELECT catalog_api.create_product(sku => NULL, name => 'x', price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => '<script>alert(1)</script>', price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => -1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1.005, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 12345678901, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, status => 'deleted');
\echo :LAST_ERROR_SQLSTATE
-- any wrong status is invalid_value: longer than every label, markup, empty
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, status => 'published-for-everyone');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, status => '<b>draft</b>');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, status => ' ');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => :ws1, expected_version => 1, status => repeat('x', 100000));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, currency => 'XXX');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => 999999);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '[1]');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"Bad Key": 1}');
\echo :LAST_ERROR_SQLSTATE
-- a key must start with a letter: not a digit, not an underscore
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"9lives": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"_x": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"a": {"b": {"c": {}}}}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"note": "<img src=x onerror=alert(1)>"}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"note": "x&#8203;y"}');
\echo :LAST_ERROR_SQLSTATE
-- numbers: at most 15 digits before the point and 15 after (1e131000 is 10
-- bytes of jsonb and 131,001 characters of text)
BEGIN;
SELECT catalog_api.create_product(sku => 'NUM-1', name => 'Bounds', price => 1, category_id => :clothing,
    attributes => '{"n": [999999999999999.999999999999999, -0.000000000000001, 0]}')->'attributes' AS attributes;
ROLLBACK;
-- trailing zeros are not decimals (what JSON.stringify never writes, but a
-- hand-written or decimal-library payload does); the value is kept as sent
BEGIN;
SELECT catalog_api.create_product(sku => 'NUM-2', name => 'Zeros', price => 1, category_id => :clothing,
    attributes => '{"n": [1.0000000000000000, 0.500000000000000000000]}')->'attributes' AS attributes;
ROLLBACK;
-- but at most 30 places written: jsonb keeps them, and 0e-16383 would
-- print as 16,385 characters from 12 stored bytes
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": [0e-16383]}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": 1.0000000000000000000000000000000}');
\echo :LAST_ERROR_SQLSTATE
-- 0.1 + 0.2 in binary floating point has 17 decimals: refused
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"w": 0.30000000000000004}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": [1e15]}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": -1e131000}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": {"m": 1e-16}}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"n": 1e-16383}');
\echo :LAST_ERROR_SQLSTATE
-- an array's element is reported under the array's key, not under the
-- last key read inside an earlier element
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"a": [{"b": 1}, "<b>x"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing, attributes => '{"a": [{"b": 1}, 1e20]}');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 65) g));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('list', (SELECT jsonb_agg(g) FROM generate_series(1, 65) g)));
\echo :LAST_ERROR_SQLSTATE
-- a container inside an array is one of its elements too
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('list', (SELECT jsonb_agg('[]'::jsonb) FROM generate_series(1, 65) g)));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('list', (SELECT jsonb_agg(CASE WHEN g % 2 = 0 THEN to_jsonb(g) ELSE '{}'::jsonb END)
                                              FROM generate_series(1, 65) g)));
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT jsonb_array_length(catalog_api.create_product(sku => 'ARR-64', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('list', (SELECT jsonb_agg(CASE WHEN g % 2 = 0 THEN to_jsonb(g) ELSE '{"k": 1}'::jsonb END)
                                              FROM generate_series(1, 64) g)))->'attributes'->'list') AS elements;
ROLLBACK;
-- 64 keys in all, nested ones counted: 64 accepted, 65 refused
BEGIN;
SELECT (SELECT count(*) FROM jsonb_object_keys(catalog_api.create_product(sku => 'KEYS-64', name => 'Fine', price => 1,
    category_id => :clothing, attributes => jsonb_build_object('outer',
        (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 63) g)))->'attributes'->'outer')) AS nested_keys;
ROLLBACK;
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('outer', (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 64) g)));
\echo :LAST_ERROR_SQLSTATE
-- a key of 64 bytes and a string of 500 code points are accepted; 501 are not
BEGIN;
SELECT (SELECT k FROM jsonb_object_keys(p->'attributes') k WHERE length(k) > 1) = repeat('k', 64) AS key_64,
       length(p->'attributes'->>'s') AS string_code_points
FROM catalog_api.create_product(sku => 'KEY-64', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object(repeat('k', 64), 1, 's', repeat(U&'\00e9', 500))) p;
ROLLBACK;
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('s', repeat(U&'\00e9', 501)));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('blob', repeat('x', 400), 'blob2', repeat('y', 400),
        'more', (SELECT jsonb_agg(repeat('z', 450)) FROM generate_series(1, 20))));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 'NaN', category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE

-- duplicate SKU (after canonicalisation): 23505 with field-level DETAIL
SELECT catalog_api.create_product(sku => 'ws-001', name => 'Other', price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE

-- idempotency: same key and payload replays; different payload is PT422
SELECT p->>'sku' AS sku, p->>'version' AS version
FROM catalog_api.create_product(sku => 'IDEM-1', name => 'Idem', price => 3, category_id => :clothing,
    idempotency_key => 'req-0001') AS p;
SELECT p->>'sku' AS sku, p->>'version' AS version, (p->>'id')::bigint = (SELECT id FROM catalog.product WHERE sku = 'IDEM-1') AS same_product
FROM catalog_api.create_product(sku => 'idem-1', name => ' Idem ', price => 3.00, category_id => :clothing,
    idempotency_key => 'req-0001') AS p;
SELECT catalog_api.create_product(sku => 'IDEM-1', name => 'Idem', price => 4, category_id => :clothing,
    idempotency_key => 'req-0001');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'IDEM-2', name => 'Idem', price => 4, category_id => :clothing,
    idempotency_key => 'has space');
\echo :LAST_ERROR_SQLSTATE
-- another actor may use the same key for its own request
SELECT set_config('catalog.actor', 'someone-else', false) IS NOT NULL AS actor_set;
SELECT p->>'sku' AS sku FROM catalog_api.create_product(sku => 'IDEM-2', name => 'Idem two', price => 4,
    category_id => :clothing, idempotency_key => 'req-0001') AS p;
SET catalog.actor = 'regress-user';
SELECT count(*) AS idem_products FROM catalog.product WHERE sku LIKE 'IDEM-%';

-- an expired key no longer matches: the next request with it is new
UPDATE catalog.idempotency SET expires_at = now() - interval '1 second' WHERE key = 'req-0001' AND actor = 'regress-user';
SELECT p->>'sku' AS sku FROM catalog_api.create_product(sku => 'IDEM-3', name => 'Idem three', price => 5,
    category_id => :clothing, idempotency_key => 'req-0001') AS p;
SELECT (response->>'sku') AS stored_sku FROM catalog.idempotency WHERE key = 'req-0001' AND actor = 'regress-user';
-- expiry is judged at the statement, not at the start of its transaction: a
-- key that expires while a transaction runs no longer matches in it
BEGIN;
SELECT pg_sleep(0.01);
UPDATE catalog.idempotency SET expires_at = now() + (statement_timestamp() - now()) / 2
 WHERE key = 'req-0001' AND actor = 'regress-user';
SELECT p->>'sku' AS sku FROM catalog_api.create_product(sku => 'IDEM-4', name => 'Idem four', price => 6,
    category_id => :clothing, idempotency_key => 'req-0001') AS p;
ROLLBACK;

-- purge deletes only expired keys
UPDATE catalog.idempotency SET expires_at = now() - interval '1 second' WHERE actor = 'someone-else';
SELECT catalog_api.purge_idempotency();
SELECT actor, key FROM catalog.idempotency ORDER BY actor, key;
SELECT catalog_api.purge_idempotency(batch_size => 0);
\echo :LAST_ERROR_SQLSTATE

-- update: partial, optimistic
SELECT p->>'name' AS name, p->>'price' AS price, p->>'description' AS description, p->>'version' AS version
FROM catalog_api.update_product(id => :ws1, expected_version => 1, price => 12.5) AS p;
SELECT p->>'name' AS name, p->>'version' AS version
FROM catalog_api.update_product(id => :ws1, expected_version => 1, name => 'Stale') AS p;
\echo :LAST_ERROR_SQLSTATE
-- clearing the description with an empty string
SELECT p->>'description' AS description, p->>'version' AS version
FROM catalog_api.update_product(id => :ws1, expected_version => 2, description => '   ') AS p;
-- an update that changes nothing writes nothing and keeps the version
SELECT xmin AS before_xmin FROM catalog.product WHERE id = :ws1 \gset
SELECT p->>'price' AS price, p->>'version' AS version
FROM catalog_api.update_product(id => :ws1, expected_version => 3, price => 12.50, sku => 'ws-001') AS p;
SELECT xmin = :'before_xmin'::xid AS row_untouched FROM catalog.product WHERE id = :ws1;
SELECT catalog_api.update_product(id => :ws1, expected_version => 3, sku => 'IDEM-1');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => :ws1, expected_version => 3, category_id => 424242);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => 424242, expected_version => 1, name => 'Nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => :ws1, expected_version => NULL, name => 'No version');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => :ws1, expected_version => 3, name => E'bad\u202Ename');
\echo :LAST_ERROR_SQLSTATE

-- attribute numbers are stored as sent: 1.0 and 1.00 are equal as jsonb
-- values but not as sent, so rewriting only a number's scale is a change
-- (version 2, stored 1.00); sending the stored form again is not
SELECT (catalog_api.create_product(sku => 'WS-SCALE', name => 'Scale Socks', price => 1,
        category_id => :clothing, attributes => '{"weight": 1.0}')->>'id')::bigint AS wscale \gset
SELECT p->'attributes' AS attributes, p->>'version' AS version
FROM catalog_api.update_product(id => :wscale, expected_version => 1, attributes => '{"weight": 1.00}') AS p;
SELECT p->'attributes' AS attributes, p->>'version' AS version
FROM catalog_api.update_product(id => :wscale, expected_version => 2, attributes => '{"weight": 1.00}') AS p;
SELECT attributes, version FROM catalog.product WHERE id = :wscale;

-- archive
SELECT p->>'status' AS status, p->>'version' AS version
FROM catalog_api.archive_product(id => :ws1, expected_version => 3) AS p;
SELECT catalog_api.archive_product(id => :ws1, expected_version => 3);
\echo :LAST_ERROR_SQLSTATE
SELECT updated_by, version FROM catalog.product WHERE id = :ws1;

-- the actor comes from PostgREST's JWT claims first
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "catalog_editor", "sub": "jwt-user-7"}', true) IS NOT NULL AS claims_set;
SELECT p->>'status' AS status FROM catalog_api.update_product(id => :ws1, expected_version => 4, status => 'published') AS p;
SELECT updated_by FROM catalog.product WHERE id = :ws1;
ROLLBACK;
-- a numeric sub is accepted; an unusable actor is refused
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": 12345}', true) IS NOT NULL AS claims_set;
SELECT p->>'version' AS version FROM catalog_api.update_product(id => :ws1, expected_version => 4, name => 'By number') AS p;
SELECT updated_by FROM catalog.product WHERE id = :ws1;
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "<b>x</b>"}', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => :ws1, expected_version => 4, name => 'Hostile actor');
ROLLBACK;
-- an identity is compared exactly: one that canonicalisation would change
-- is refused, never merged with another ("a  b" would be "a b").  Each case
-- runs in a subtransaction that is always rolled back (an accepted write
-- is reported by an error of its own), so every case sees version 4.
CREATE FUNCTION pg_temp.actor_outcome(claims text, actor text, pid bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    det text;
BEGIN
    BEGIN
        PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
        PERFORM set_config('catalog.actor', coalesce(actor, ''), true);
        PERFORM catalog_api.update_product(id => pid, expected_version => 4, name => 'Actor probe');
        RAISE EXCEPTION 'accepted' USING ERRCODE = 'P0001',
            DETAIL = (SELECT p.updated_by FROM catalog.product p WHERE p.id = pid);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
        RETURN CASE WHEN st = 'P0001' THEN 'accepted, updated_by ' || det ELSE st || ' ' || det END;
    END;
END $$;
SELECT v.input, pg_temp.actor_outcome(v.claims, v.actor, :ws1) AS outcome
FROM (VALUES ('sub with a doubled space', '{"sub": "jwt  user"}', NULL),
             ('sub e + combining acute (NFD)', '{"sub": "jose\u0301"}', NULL),
             ('catalog.actor with a trailing space', NULL, 'alice '),
             ('catalog.actor with a no-break space', NULL, U&'bob\00A0smith'),
             ('sub with a precomposed e-acute (NFC)', '{"sub": "jos\u00e9"}', NULL),
             ('catalog.actor plain', NULL, 'alice')) AS v (input, claims, actor);
-- an empty sub is refused like one of spaces (as absent, every holder of
-- such a token would share the login role's idempotency keys); a JSON null
-- is absent, and catalog.actor applies
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": ""}', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => :ws1, expected_version => 4, name => 'Empty sub');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": null}', true) IS NOT NULL AS claims_set;
SELECT p->>'version' AS version FROM catalog_api.update_product(id => :ws1, expected_version => 4, name => 'Null sub') AS p;
SELECT updated_by FROM catalog.product WHERE id = :ws1;
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', 'not json', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => :ws1, expected_version => 4, name => 'Broken claims');
ROLLBACK;

-- a write in a read-only transaction (PostgREST GET, hot standby) is refused plainly
BEGIN READ ONLY;
SELECT catalog_api.create_product(sku => 'RO-1', name => 'Read only', price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- the audit functions that move or chain rows must see every row committed
-- before their locks: a transaction snapshot is refused
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT catalog_api.audit_maintain();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT catalog_api.audit_seal();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.audit_drop_partitions(now() - interval '10 years');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- writes refuse SERIALIZABLE: a failure at COMMIT would reach PostgREST as 40001
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.create_product(sku => 'SER-1', name => 'Serializable', price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- every writer, not only create_product
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.update_product(id => :ws1, expected_version => 1, name => 'Serializable');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.archive_product(id => :ws1, expected_version => 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.create_category(name => 'Serializable', slug => 'serializable');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.update_category(id => :clothing, expected_version => 1, name => 'Serializable');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.purge_idempotency();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT catalog_api.refresh_search_terms();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- attribute keys longer than 64 bytes, and documents over 64 KiB refused before any work
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object(repeat('k', 65), 1));
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_product(sku => 'OK-1', name => 'Fine', price => 1, category_id => :clothing,
    attributes => jsonb_build_object('blob', repeat('x', 70000)));
\echo :LAST_ERROR_SQLSTATE
-- a text argument far over its limit is refused before it is detoasted
SELECT catalog_api.create_product(sku => 'OK-1', name => repeat('n', 100000), price => 1, category_id => :clothing);
\echo :LAST_ERROR_SQLSTATE

-- a product's id never changes (its audit trail and idempotent replies name it)
UPDATE catalog.product SET id = id + 1000000 WHERE id = :ws1;
\echo :LAST_ERROR_SQLSTATE
UPDATE catalog.product SET id = id WHERE id = :ws1;

-- an empty or blank description clears it: JSON null and SQL NULL, not ""
SELECT (catalog_api.create_product(sku => 'MT-1', name => 'Mutant one', price => 5, category_id => :clothing,
    description => 'text') ->> 'id')::bigint AS mt1 \gset
SELECT jsonb_typeof(p->'description') AS description_type, p->>'version' AS version
FROM catalog_api.update_product(id => :mt1, expected_version => 1, description => '   ') AS p;
SELECT description IS NULL AS cleared FROM catalog.product WHERE id = :mt1;
SELECT jsonb_typeof(p->'description') AS create_empty_description
FROM catalog_api.create_product(sku => 'MT-2', name => 'Mutant two', price => 5, category_id => :clothing,
    description => '') AS p;
-- an expected_version ahead of the row is stale too (PT409), and nothing is written
SELECT catalog_api.update_product(id => :mt1, expected_version => 5, name => 'Ahead');
\echo :LAST_ERROR_SQLSTATE
SELECT name, version FROM catalog.product WHERE id = :mt1;
-- under REPEATABLE READ an update that changes nothing answers the row, no error
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT p->>'version' AS version
FROM catalog_api.update_product(id => :mt1, expected_version => 2, name => 'Mutant one') AS p;
COMMIT;
-- purge_idempotency's batch_size is bounded by 100,000
SELECT catalog_api.purge_idempotency(batch_size => 100001);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.purge_idempotency(batch_size => 100000) >= 0 AS max_batch_ok;
