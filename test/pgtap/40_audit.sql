-- pgTAP: the audit log (src/audit.c, src/audit_mask.c, src/audit_read.c,
-- src/audit_chain.c) seen from outside:
--   - each write writes exactly the expected row: create_product,
--     update_product, archive_product, create_category, update_category
--     (rename, move), a plain SQL DELETE; the row image, the diff, txid,
--     xact_at, occurred_at, actor, role_name, via, request_id, row_hash;
--   - an update that changes nothing (or only the bookkeeping columns)
--     writes nothing; a rollback or a rolled-back savepoint leaves nothing;
--   - masking: the built-in key and value patterns, declared masks (redact,
--     hash), the method setting; no clear value anywhere in the audit log;
--   - a PostgREST request replayed statement by statement: the actor from
--     the JWT, the role, "via", the x-request-id header; the bearer token is
--     stored nowhere;
--   - nobody (API roles, the audit owner, a superuser) can change or delete
--     an audit row; TRUNCATE of the audited tables is refused;
--   - the readers (history, by actor, by request): equal to a direct query,
--     keyset pages, who may call them;
--   - retention: rows of an old month wait in the default partition,
--     audit_maintain() moves them into their month, audit_drop_partitions()
--     drops exactly the sealed old partitions, and audit_verify() still
--     passes.
-- Unlike the other pgTAP files this one commits: transaction ids, request
-- ids generated per transaction and sealing need real transactions.  Every
-- fixture has a random suffix of letters (digits could look like a phone
-- number to the masking), so reruns on one database do not collide.
SET client_min_messages = warning;
-- The row images must be UTC whatever the session's time zone.
SET TimeZone = 'America/New_York';
SELECT plan(259);

SELECT translate(substr(md5(random()::text || clock_timestamp()::text), 1, 10),
                 '0123456789', 'ghijklmnop') AS sfx \gset

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------
CREATE TEMP TABLE fx (k text PRIMARY KEY, id bigint NOT NULL);
-- marks: instants and transaction identity captured by the test itself.
CREATE TEMP TABLE marks (k text PRIMARY KEY, t timestamptz NOT NULL, txid xid8, xact_at timestamptz);
-- snap: row images taken by the test (to_jsonb in UTC) before and after writes.
CREATE TEMP TABLE snap (k text PRIMARY KEY, doc jsonb NOT NULL);
-- clear: sensitive values written to products, to be found in no audit row.
CREATE TEMP TABLE clear (v text PRIMARY KEY);
GRANT ALL ON fx, marks, snap, clear TO PUBLIC;

CREATE FUNCTION pg_temp.id(k text) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT id FROM fx WHERE fx.k = id.k $$;
CREATE FUNCTION pg_temp.mark(k text) RETURNS void LANGUAGE sql AS
$$ INSERT INTO marks VALUES (k, clock_timestamp(), pg_current_xact_id(), now()) $$;
CREATE FUNCTION pg_temp.t(k text) RETURNS timestamptz LANGUAGE sql STABLE AS
$$ SELECT t FROM marks WHERE marks.k = t.k $$;
CREATE FUNCTION pg_temp.txid(k text) RETURNS xid8 LANGUAGE sql STABLE AS
$$ SELECT txid FROM marks WHERE marks.k = txid.k $$;
CREATE FUNCTION pg_temp.xact_at(k text) RETURNS timestamptz LANGUAGE sql STABLE AS
$$ SELECT xact_at FROM marks WHERE marks.k = xact_at.k $$;
CREATE FUNCTION pg_temp.snap(key text) RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT doc FROM snap WHERE snap.k = key $$;
-- session_user as text of the default collation (name compares under "C")
CREATE FUNCTION pg_temp.su() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT session_user::text $$;

-- The reference row image: every column but the generated search_doc, as
-- to_jsonb writes it with the time zone pinned to UTC.
CREATE FUNCTION pg_temp.pimage(pid bigint) RETURNS jsonb LANGUAGE sql STABLE SET TimeZone = 'UTC' AS
$$ SELECT to_jsonb(p) - 'search_doc' FROM catalog.product p WHERE p.id = pid $$;
CREATE FUNCTION pg_temp.cimage(cid bigint) RETURNS jsonb LANGUAGE sql STABLE SET TimeZone = 'UTC' AS
$$ SELECT to_jsonb(c) FROM catalog.category c WHERE c.id = cid $$;
-- a timestamp as the images write it
CREATE FUNCTION pg_temp.ts(t timestamptz) RETURNS jsonb LANGUAGE sql STABLE SET TimeZone = 'UTC' AS
$$ SELECT to_jsonb(t) $$;
CREATE FUNCTION pg_temp.take(k text, doc jsonb) RETURNS void LANGUAGE sql AS
$$ INSERT INTO snap VALUES (k, doc) $$;
-- The expected diff of an update: the keys whose values differ, from each side.
CREATE FUNCTION pg_temp.diff(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(jsonb_object_agg(k, a->k), '{}') FROM jsonb_object_keys(a) k WHERE a->k IS DISTINCT FROM b->k $$;
CREATE FUNCTION pg_temp.keys(doc jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(doc) k $$;

-- Audit rows of one row of a table, oldest first; the newest one.
CREATE FUNCTION pg_temp.arows(tbl text, rid bigint) RETURNS SETOF catalog.audit_log LANGUAGE sql STABLE AS
$$ SELECT * FROM catalog.audit_log WHERE table_name = tbl AND row_id = rid ORDER BY id $$;
CREATE FUNCTION pg_temp.alast(tbl text, rid bigint) RETURNS catalog.audit_log LANGUAGE sql STABLE AS
$$ SELECT * FROM catalog.audit_log WHERE table_name = tbl AND row_id = rid ORDER BY id DESC LIMIT 1 $$;
CREATE FUNCTION pg_temp.acount(tbl text, rid bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT count(*) FROM catalog.audit_log WHERE table_name = tbl AND row_id = rid $$;

-- The masking with method hash: "[hmac:" and 32 hex digits of a keyed HMAC of the value "]".
CREATE FUNCTION pg_temp.is_hash_mask(v text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT v ~ '^\[hmac:[0-9a-f]{32}\]$' $$;
-- A generated correlation id: a version 7 UUID (RFC 9562: version nibble 7,
-- variant 10), whose first 48 bits are the Unix time in milliseconds.
CREATE FUNCTION pg_temp.uuid_like(v text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT v ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' $$;
CREATE FUNCTION pg_temp.uuid_ms(v text) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT ('x' || substr(replace(v, '-', ''), 1, 12))::bit(48)::bigint $$;
CREATE FUNCTION pg_temp.ms(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT floor(extract(epoch FROM t) * 1000)::bigint $$;

------------------------------------------------------------------------------
-- 1. create_category and create_product in one transaction
------------------------------------------------------------------------------
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT pg_temp.mark('t1.start');
INSERT INTO fx VALUES ('cat', (catalog_api.create_category(name => 'Tap Audit', slug => 'tap-audit-' || :'sfx')->>'id')::bigint);
SELECT pg_temp.mark('t1.mid');
INSERT INTO fx VALUES ('p1', ((catalog_api.create_product(
    sku => 'TAP-AU-' || upper(:'sfx'), name => 'Audit Lamp', price => 12.5, category_id => pg_temp.id('cat'),
    description => 'A desk lamp', status => 'published', currency => 'EUR',
    attributes => '{"color": "red", "size": {"h": 30, "w": 12.5}, "tags": ["desk", "led"], "dimmable": true}'))->>'id')::bigint);
SELECT pg_temp.mark('t1.end');
COMMIT;
SELECT pg_temp.take('p1.v1', pg_temp.pimage(pg_temp.id('p1')));
SELECT pg_temp.take('cat.v1', pg_temp.cimage(pg_temp.id('cat')));

SELECT results_eq(
    format($$SELECT table_name, row_id, action FROM catalog.audit_log WHERE txid = %L ORDER BY id$$, pg_temp.txid('t1.start')),
    format($$VALUES ('category', %s::bigint, 'insert'), ('product', %s::bigint, 'insert')$$, pg_temp.id('cat'), pg_temp.id('p1')),
    'create_category then create_product: exactly one insert row each, in the order of the writes');
SELECT is((pg_temp.alast('category', pg_temp.id('cat'))).new_values, pg_temp.snap('cat.v1'),
          'create_category: new_values is the whole row image');
SELECT is((pg_temp.alast('product', pg_temp.id('p1'))).new_values, pg_temp.snap('p1.v1'),
          'create_product: new_values is the whole row image');
SELECT is(pg_temp.keys((pg_temp.alast('product', pg_temp.id('p1'))).new_values),
          ARRAY['attributes', 'category_id', 'created_at', 'created_by', 'currency', 'description', 'id', 'name',
                'price', 'sku', 'status', 'updated_at', 'updated_by', 'version'],
          'the product image has every column but the generated search_doc');
SELECT is((pg_temp.alast('product', pg_temp.id('p1'))).new_values,
          jsonb_build_object(
              'id', pg_temp.id('p1'), 'sku', 'TAP-AU-' || upper(:'sfx'), 'name', 'Audit Lamp',
              'description', 'A desk lamp', 'status', 'published', 'category_id', pg_temp.id('cat'),
              'price', 12.50, 'currency', 'EUR',
              'attributes', '{"color": "red", "size": {"h": 30, "w": 12.5}, "tags": ["desk", "led"], "dimmable": true}'::jsonb,
              'created_at', pg_temp.ts(pg_temp.xact_at('t1.start')),
              'updated_at', pg_temp.ts(pg_temp.xact_at('t1.start')),
              'created_by', 'pgtap-audit', 'updated_by', 'pgtap-audit', 'version', 1),
          'create_product: the image value by value (numbers as numbers, timestamps in ISO 8601 in UTC)');
SELECT results_eq(
    format($$SELECT jsonb_typeof(new_values->'price'), jsonb_typeof(new_values->'category_id'), jsonb_typeof(new_values->'version'),
                    jsonb_typeof(new_values->'status'), jsonb_typeof(new_values->'attributes'), jsonb_typeof(new_values->'description')
             FROM catalog.audit_log WHERE table_name = 'product' AND row_id = %s$$, pg_temp.id('p1')),
    $$VALUES ('number', 'number', 'number', 'string', 'object', 'string')$$,
    'create_product: numerics and integers are JSON numbers, enums strings, jsonb nested');
SELECT is((pg_temp.alast('category', pg_temp.id('cat'))).new_values,
          jsonb_build_object('id', pg_temp.id('cat'), 'parent_id', NULL, 'slug', 'tap-audit-' || :'sfx', 'name', 'Tap Audit',
              'created_at', pg_temp.ts(pg_temp.xact_at('t1.start')),
              'updated_at', pg_temp.ts(pg_temp.xact_at('t1.start')),
              'created_by', 'pgtap-audit', 'updated_by', 'pgtap-audit', 'version', 1),
          'create_category: the image value by value (a root has parent_id null)');
SELECT results_eq(
    format($$SELECT old_values IS NULL, txid, xact_at, actor, role_name, via FROM catalog.audit_log WHERE txid = %L ORDER BY id$$,
           pg_temp.txid('t1.start')),
    format($$VALUES (true, %1$L::xid8, %2$L::timestamptz, 'pgtap-audit', pg_temp.su(), 'sql'),
                    (true, %1$L::xid8, %2$L::timestamptz, 'pgtap-audit', pg_temp.su(), 'sql')$$,
           pg_temp.txid('t1.start'), pg_temp.xact_at('t1.start')),
    'insert rows: no old_values; txid and xact_at of the writing transaction; actor catalog.actor; role the session user; via sql');
SELECT ok((SELECT occurred_at BETWEEN pg_temp.t('t1.start') AND pg_temp.t('t1.mid') FROM pg_temp.alast('category', pg_temp.id('cat')))
          AND (SELECT occurred_at BETWEEN pg_temp.t('t1.mid') AND pg_temp.t('t1.end') FROM pg_temp.alast('product', pg_temp.id('p1'))),
          'occurred_at is the wall clock of each write, between the marks taken around it');
SELECT ok((SELECT count(DISTINCT request_id) = 1 AND bool_and(pg_temp.uuid_like(request_id))
           FROM catalog.audit_log WHERE txid = pg_temp.txid('t1.start')),
          'without a request id, one UUID is generated for the whole transaction');
SELECT ok((SELECT pg_temp.uuid_ms(request_id) BETWEEN pg_temp.ms(pg_temp.t('t1.start')) AND pg_temp.ms(pg_temp.t('t1.mid'))
           FROM pg_temp.alast('category', pg_temp.id('cat'))),
          'a generated request id carries the time it was generated, in milliseconds (version 7)');
SELECT is_empty(format($$SELECT id FROM catalog.audit_log a WHERE txid = %L AND row_hash IS DISTINCT FROM catalog.audit_row_hash(a)$$,
                       pg_temp.txid('t1.start')),
                'row_hash is catalog.audit_row_hash of the row');

------------------------------------------------------------------------------
-- 2. update_product: only the changed columns, with the bookkeeping
------------------------------------------------------------------------------
-- Another actor, and catalog.request_id set.
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit-2';
SELECT set_config('catalog.request_id', 'tap-req-' || :'sfx', true) IS NOT NULL AS set;
SELECT pg_temp.mark('t2.start');
SELECT (catalog_api.update_product(id => pg_temp.id('p1'), expected_version => 1, price => 15))->>'version' AS v;
SELECT pg_temp.mark('t2.end');
COMMIT;
SELECT pg_temp.take('p1.v2', pg_temp.pimage(pg_temp.id('p1')));

SELECT is(pg_temp.acount('product', pg_temp.id('p1')), 2::bigint, 'update_product writes one row');
SELECT results_eq(
    format($$SELECT action, old_values, new_values, actor, request_id, txid, xact_at FROM pg_temp.alast('product', %s)$$, pg_temp.id('p1')),
    format($$VALUES ('update', %L::jsonb, %L::jsonb, 'pgtap-audit-2', %L, %L::xid8, %L::timestamptz)$$,
           jsonb_build_object('price', 12.50, 'version', 1, 'updated_at', pg_temp.snap('p1.v1')->'updated_at', 'updated_by', 'pgtap-audit'),
           jsonb_build_object('price', 15.00, 'version', 2, 'updated_at', pg_temp.snap('p1.v2')->'updated_at', 'updated_by', 'pgtap-audit-2'),
           'tap-req-' || :'sfx', pg_temp.txid('t2.start'), pg_temp.xact_at('t2.start')),
    'update_product (price, another actor): old and new hold price, version, updated_at, updated_by only; request_id is catalog.request_id');
SELECT is((pg_temp.alast('product', pg_temp.id('p1'))).new_values,
          pg_temp.diff(pg_temp.snap('p1.v2'), pg_temp.snap('p1.v1')),
          'update_product: new_values is exactly the columns that differ between the two images');

-- The same actor again: updated_by did not change, so it is not in the diff.
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit-2';
SELECT pg_temp.mark('t3.start');
SELECT (catalog_api.update_product(id => pg_temp.id('p1'), expected_version => 2, price => 16.25))->>'version' AS v;
COMMIT;
SELECT pg_temp.take('p1.v3', pg_temp.pimage(pg_temp.id('p1')));
SELECT results_eq(
    format($$SELECT old_values, new_values FROM pg_temp.alast('product', %s)$$, pg_temp.id('p1')),
    format($$VALUES (%L::jsonb, %L::jsonb)$$,
           jsonb_build_object('price', 15.00, 'version', 2, 'updated_at', pg_temp.snap('p1.v2')->'updated_at'),
           jsonb_build_object('price', 16.25, 'version', 3, 'updated_at', pg_temp.snap('p1.v3')->'updated_at')),
    'update_product by the same actor: updated_by is unchanged and left out');
SELECT ok((SELECT pg_temp.uuid_like(request_id)
                  AND request_id <> (SELECT request_id FROM catalog.audit_log WHERE txid = pg_temp.txid('t1.start') LIMIT 1)
           FROM catalog.audit_log WHERE txid = pg_temp.txid('t3.start')),
          'another transaction without a request id gets another generated UUID');
SELECT ok((SELECT request_id FROM catalog.audit_log WHERE txid = pg_temp.txid('t3.start'))
          > (SELECT request_id FROM catalog.audit_log WHERE txid = pg_temp.txid('t1.start') LIMIT 1) COLLATE "C",
          'generated request ids are time-ordered: a later transaction''s sorts after an earlier one''s');

------------------------------------------------------------------------------
-- 3. Updates that change nothing write nothing
------------------------------------------------------------------------------
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit-3';
SELECT pg_temp.mark('t4.start');
-- the same price again through the API
SELECT (catalog_api.update_product(id => pg_temp.id('p1'), expected_version => 3, price => 16.25))->>'version' AS v;
-- plain SQL: a column set to itself, and the bookkeeping columns alone
UPDATE catalog.product SET name = name, attributes = attributes WHERE id = pg_temp.id('p1');
UPDATE catalog.product SET version = version + 1, updated_at = clock_timestamp(), updated_by = 'pgtap-bookkeeper'
 WHERE id = pg_temp.id('p1');
UPDATE catalog.category SET name = name, parent_id = parent_id WHERE id = pg_temp.id('cat');
SELECT catalog_api.update_category(id => pg_temp.id('cat'), expected_version => 1, name => 'Tap Audit') IS NOT NULL AS same_name;
COMMIT;
SELECT is_empty(format($$SELECT id, table_name, action FROM catalog.audit_log WHERE txid = %L$$, pg_temp.txid('t4.start')),
                'no audit row for updates that change nothing, nor for changes of version, updated_at and updated_by alone');
SELECT is(pg_temp.acount('product', pg_temp.id('p1')), 3::bigint, 'the product still has three audit rows');
SELECT is((SELECT version FROM catalog.product WHERE id = pg_temp.id('p1')), 4,
          'the bookkeeping UPDATE did run (version 4)');

------------------------------------------------------------------------------
-- 4. archive_product, update_category (rename, move), plain SQL DELETE
------------------------------------------------------------------------------
SELECT pg_temp.take('p1.v4', pg_temp.pimage(pg_temp.id('p1')));
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit-2';
SELECT (catalog_api.archive_product(id => pg_temp.id('p1'), expected_version => 4))->>'status' AS status;
COMMIT;
SELECT pg_temp.take('p1.v5', pg_temp.pimage(pg_temp.id('p1')));
SELECT results_eq(
    format($$SELECT action, old_values, new_values FROM pg_temp.alast('product', %s)$$, pg_temp.id('p1')),
    format($$VALUES ('update', %L::jsonb, %L::jsonb)$$,
           jsonb_build_object('status', 'published', 'version', 4, 'updated_at', pg_temp.snap('p1.v4')->'updated_at',
                              'updated_by', 'pgtap-bookkeeper'),
           jsonb_build_object('status', 'archived', 'version', 5, 'updated_at', pg_temp.snap('p1.v5')->'updated_at',
                              'updated_by', 'pgtap-audit-2')),
    'archive_product: status, version, updated_at and updated_by');

BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO fx VALUES ('cat2', (catalog_api.create_category(name => 'Tap Audit Parent', slug => 'tap-audit-parent-' || :'sfx')->>'id')::bigint);
COMMIT;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_category(id => pg_temp.id('cat'), expected_version => 1, name => 'Tap Audit Renamed') IS NOT NULL AS renamed;
COMMIT;
SELECT pg_temp.take('cat.v2', pg_temp.cimage(pg_temp.id('cat')));
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_category(id => pg_temp.id('cat'), expected_version => 2, parent_id => pg_temp.id('cat2')) IS NOT NULL AS moved;
COMMIT;
SELECT pg_temp.take('cat.v3', pg_temp.cimage(pg_temp.id('cat')));
SELECT results_eq(
    format($$SELECT action, old_values, new_values, actor FROM pg_temp.arows('category', %s) OFFSET 1$$, pg_temp.id('cat')),
    format($$VALUES ('update', %L::jsonb, %L::jsonb, 'pgtap-audit'), ('update', %L::jsonb, %L::jsonb, 'pgtap-audit')$$,
           jsonb_build_object('name', 'Tap Audit', 'version', 1, 'updated_at', pg_temp.snap('cat.v1')->'updated_at'),
           jsonb_build_object('name', 'Tap Audit Renamed', 'version', 2, 'updated_at', pg_temp.snap('cat.v2')->'updated_at'),
           jsonb_build_object('parent_id', NULL, 'version', 2, 'updated_at', pg_temp.snap('cat.v2')->'updated_at'),
           jsonb_build_object('parent_id', pg_temp.id('cat2'), 'version', 3, 'updated_at', pg_temp.snap('cat.v3')->'updated_at')),
    'update_category: a rename (name) and a move (parent_id from null), each with version and updated_at');

-- A product deleted with plain SQL by a superuser, no catalog.actor.
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO fx VALUES ('pdel', ((catalog_api.create_product(sku => 'TAP-AU-DEL-' || upper(:'sfx'), name => 'Doomed',
    price => 3, category_id => pg_temp.id('cat')))->>'id')::bigint);
COMMIT;
SELECT pg_temp.take('pdel', pg_temp.pimage(pg_temp.id('pdel')));
BEGIN;
SELECT set_config('catalog.actor', '', true);
SELECT pg_temp.mark('t5.start');
DELETE FROM catalog.product WHERE id = pg_temp.id('pdel');
COMMIT;
SELECT results_eq(
    format($$SELECT action, old_values, new_values, actor, role_name, via, txid FROM pg_temp.alast('product', %s)$$, pg_temp.id('pdel')),
    format($$VALUES ('delete', %L::jsonb, NULL::jsonb, pg_temp.su(), pg_temp.su(), 'sql', %L::xid8)$$,
           pg_temp.snap('pdel'), pg_temp.txid('t5.start')),
    'plain SQL DELETE: old_values is the row image; actor falls back to session_user');
SELECT is(pg_temp.acount('product', pg_temp.id('pdel')), 2::bigint, 'the deleted product has its insert and its delete');

------------------------------------------------------------------------------
-- 5. Rollback, savepoints
------------------------------------------------------------------------------
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.create_product(sku => 'TAP-AU-RB-' || upper(:'sfx'), name => 'Rolled back', price => 1,
    category_id => pg_temp.id('cat')) IS NOT NULL AS created;
SELECT catalog_api.update_product(id => pg_temp.id('p1'), expected_version => 5, name => 'Never') IS NOT NULL AS updated;
ROLLBACK;
SELECT is_empty(format($$SELECT id FROM catalog.audit_log WHERE new_values->>'sku' = %L OR new_values->>'name' = 'Never'$$,
                       'TAP-AU-RB-' || upper(:'sfx')),
                'a rolled-back transaction leaves no audit row');

BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT pg_temp.mark('t6.start');
INSERT INTO fx VALUES ('psp', ((catalog_api.create_product(sku => 'TAP-AU-SP-' || upper(:'sfx'), name => 'Savepoint kept',
    price => 2, category_id => pg_temp.id('cat')))->>'id')::bigint);
SAVEPOINT sp;
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 1, price => 99) IS NOT NULL AS updated;
SELECT catalog_api.create_product(sku => 'TAP-AU-SPX-' || upper(:'sfx'), name => 'Savepoint lost', price => 1,
    category_id => pg_temp.id('cat')) IS NOT NULL AS created;
ROLLBACK TO SAVEPOINT sp;
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 1, name => 'Savepoint renamed') IS NOT NULL AS updated;
COMMIT;
SELECT results_eq(
    format($$SELECT row_id, action, pg_temp.keys(new_values) FROM catalog.audit_log WHERE txid = %L ORDER BY id$$, pg_temp.txid('t6.start')),
    format($$VALUES (%1$s::bigint, 'insert', %2$L::text[]), (%1$s::bigint, 'update', ARRAY['name', 'version'])$$,
           pg_temp.id('psp'), pg_temp.keys(pg_temp.pimage(pg_temp.id('psp')))),
    'a rolled-back savepoint leaves none of its rows, the rest of the transaction keeps its own');
SELECT is_empty($$SELECT id FROM catalog.audit_log WHERE new_values->>'price' = '99.00'
                  OR new_values->>'name' = 'Savepoint lost'$$,
                'nothing of the rolled-back savepoint is in the audit log');

------------------------------------------------------------------------------
-- 6. Request ids: sanitised and bounded
------------------------------------------------------------------------------
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT set_config('catalog.request_id', 'tap <script>"x"' || repeat('y', 300), true) IS NOT NULL AS set;
SELECT pg_temp.mark('t7.start');
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 2, price => 2.5) IS NOT NULL AS updated;
COMMIT;
SELECT is((SELECT request_id FROM catalog.audit_log WHERE txid = pg_temp.txid('t7.start')),
          'tap__script__x_' || repeat('y', 113),
          'a hostile catalog.request_id is stored cut to 128 characters, each one outside [A-Za-z0-9._:@/+=-] replaced by _');

------------------------------------------------------------------------------
-- 7. Masking: built-in key patterns (method hash, the default)
------------------------------------------------------------------------------
-- Written with plain SQL so that keys the API refuses (apiKey, creditCard)
-- can be used.  Values are letters only, so that only the key can trigger.
CREATE TEMP TABLE keypaths (path text[] PRIMARY KEY, clear text NOT NULL);
INSERT INTO keypaths
SELECT p, k || '-' || lvl || '-' || :'sfx'
FROM (VALUES ('password'), ('passwd'), ('secret'), ('token'), ('api_key'), ('apiKey'), ('authorization'),
             ('email'), ('phone'), ('card_number'), ('creditCard'),
             -- spellings of the same words: case, separators, prefixes
             ('User_Password'), ('X-API-KEY'), ('accessToken'), ('contact_email'), ('Credit-Card'),
             -- non-ASCII look-alikes, by their compatibility decomposition: Turkish
             -- capital dotted I, long s, Kelvin sign, an accented letter
             ('E-MAİL'), ('paſſword'), ('toKen'), ('sécret')) AS v(k),
     LATERAL (VALUES (ARRAY[k], 'top'), (ARRAY['nested', k], 'nested'), (ARRAY['nested', 'deeper', k], 'deeper')) AS x(p, lvl);
-- the same value under the nested password: equal masks; the deeper one differs
UPDATE keypaths SET clear = 'password-top-' || :'sfx' WHERE path = ARRAY['nested', 'password'];
INSERT INTO clear SELECT DISTINCT clear FROM keypaths;

CREATE FUNCTION pg_temp.keyed_attributes() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := '{"nested": {"deeper": {}}, "color": "red", "note": "kept words"}';
    r record;
BEGIN
    FOR r IN SELECT path, clear FROM keypaths ORDER BY array_length(path, 1) LOOP
        doc := jsonb_set(doc, r.path, to_jsonb(r.clear));
    END LOOP;
    -- a list of objects, and a number under a sensitive key
    doc := jsonb_set(doc, '{list}', jsonb_build_array(jsonb_build_object('token', 'listtoken-clear-' || current_setting('tap.sfx')),
                                                      jsonb_build_object('shade', 'blue')));
    doc := jsonb_set(doc, '{nested,pin}', '1234');
    doc := jsonb_set(doc, '{nested,phone_number}', '4155550132');
    RETURN doc;
END $$;
SELECT set_config('tap.sfx', :'sfx', false);
INSERT INTO clear VALUES ('listtoken-clear-' || :'sfx'), ('4155550132');

BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO catalog.product (sku, name, price, currency, category_id, attributes, created_by, updated_by)
VALUES ('TAP-AU-KEYS-' || upper(:'sfx'), 'Keyed', 1, 'USD', pg_temp.id('cat'), pg_temp.keyed_attributes(),
        'pgtap-audit', 'pgtap-audit')
RETURNING id AS pkeys \gset
COMMIT;
INSERT INTO fx VALUES ('pkeys', :pkeys);

SELECT is_empty(
    format($$SELECT k.path, a.new_values #> ('{attributes}' || k.path) AS stored
             FROM keypaths k, pg_temp.alast('product', %s) a
             WHERE NOT coalesce(pg_temp.is_hash_mask(a.new_values #>> ('{attributes}' || k.path)), false)$$, :pkeys),
    'every built-in sensitive key (top level, nested, deeper) is masked with the keyed hash');
SELECT is((pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,password}',
          (pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,nested,password}',
          'hash masks: equal values give equal masks');
SELECT isnt((pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,password}',
            (pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,nested,deeper,password}',
            'hash masks: different values give different masks');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,list,0,token}'),
          'a sensitive key inside an array of objects is masked');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', :pkeys)).new_values #>> '{attributes,nested,phone_number}'),
          'a number under a sensitive key (phone_number) is masked too');
SELECT is(((pg_temp.alast('product', :pkeys)).new_values -> 'attributes')
          - (SELECT array_agg(path[1]) FROM keypaths WHERE array_length(path, 1) = 1) - '{nested,list}'::text[],
          '{"color": "red", "note": "kept words"}'::jsonb,
          'keys that are not sensitive keep their values');
SELECT is((pg_temp.alast('product', :pkeys)).new_values #> '{attributes,nested,pin}', '1234'::jsonb,
          'a key that merely sits next to sensitive ones keeps its value (pin)');
SELECT is((pg_temp.alast('product', :pkeys)).new_values #> '{attributes,list,1}', '{"shade": "blue"}'::jsonb,
          'array elements without sensitive keys are kept');

------------------------------------------------------------------------------
-- 8. Masking: built-in value patterns inside text
------------------------------------------------------------------------------
INSERT INTO clear VALUES ('alice.' || :'sfx' || '@example.com'), ('bob.' || :'sfx' || '@mail.example.org'),
                         ('carl.' || :'sfx' || '@example.net'), ('dave.' || :'sfx' || '@example.org'),
                         (:'sfx' || '@example.com'),
                         ('4111 1111 1111 1111'), ('4111111111111111'), ('5555-5555-5555-4444'),
                         ('4222222222222'), ('5555555555554444'), ('378282246310005'),
                         ('+1 415 555 0132'), ('(415) 555-0199'),
                         ('0171/1234567'), ('089 / 123 45 67'), ('j.doe.' || :'sfx'),
                         ('first&last.' || :'sfx' || '@example.org'), ('o''brien.' || :'sfx' || '@example.org'),
                         ('qat.' || :'sfx'), ('qesc.' || :'sfx'),
                         ('gina.' || :'sfx'), ('hal.' || :'sfx'), ('ivy.' || :'sfx'), ('jon.' || :'sfx');
CREATE TEMP TABLE valtext AS
SELECT 'Write to alice.' || :'sfx' || '@example.com today; card 4111 1111 1111 1111 or 4111111111111111; call +1 415 555 0132 now' AS descr,
       jsonb_build_object('contact', 'bob.' || :'sfx' || '@mail.example.org is the buyer',
                          'billing', jsonb_build_object('memo', 'paid with 5555-5555-5555-4444, thanks'),
                          'support', 'phone (415) 555-0199 weekdays',
                          'plain', 'order 12345 of 2024-11-26, size 10',
                          'ext', 'call 555-123-4567x89 after six',
                          'apt', 'Apt B2 555-123-4567',
                          'dated', 'on 2024-05-01 555-123-4567',
                          'two', 'dial 555 123 4567 555 765 4321 today',
                          'sizes', 'sizes 38 39 40 41 42 43 44 45 46',
                          'years', 'fits 2018 2019 2020 2021',
                          'range', 'valid 2024-05-01 - 2024-06-30',
                          'cc', jsonb_build_array('carl.' || :'sfx' || '@example.net', 'plain item'),
                          'owners', jsonb_build_object('dave.' || :'sfx' || '@example.org', 'owner'),
                          'hidden', 'ping erin' || U&'\200B' || '.' || :'sfx' || '@example.com please',
                          -- marks, other scripts' digits and look-alikes that once hid a match
                          'vs', 'call 555-123-4567' || U&'\FE0E' || ' now',
                          'under', 'card ' || regexp_replace('4111 1111 1111 1111', '([0-9])', '\1' || U&'\0332', 'g'),
                          'arabic', 'call ' || U&'\0665\0665\0665\0661\0662\0663\0664\0665\0666\0667' || ' today',
                          'math', U&'\+01D7D3\+01D7D3\+01D7D3-\+01D7CF\+01D7D0\+01D7D1-\+01D7D2\+01D7D3\+01D7D4\+01D7D5',
                          'smallat', 'mail frank.' || :'sfx' || U&'\FE6B' || 'example.com now',
                          -- "/" between digit groups, RFC 5322 local parts
                          'slash', 'Tel. 0171/1234567 ab 9 Uhr',
                          'slash2', 'Tel. 089 / 123 45 67',
                          'dates', 'from 01/05/2024 to 12/31/2024',
                          'dates2', 'on 01/05/2024 02/06/2025',
                          'quoted', 'write "j.doe.' || :'sfx' || '"@example.org now',
                          'atext', 'write first&last.' || :'sfx' || '@example.org now',
                          'apos', 'write o''brien.' || :'sfx' || '@example.org now',
                          'quoted_at', 'write "qat.' || :'sfx' || '@b"@example.org now',
                          'quoted_esc', 'write "qesc.' || :'sfx' || '\"x"@example.org now',
                          'notquoted', 'say "hi" @home or "x"@y',
                          -- a dash after an address, numbers wrapped across lines
                          'dash', 'ask gina.' || :'sfx' || '@example.com- any time',
                          'emdash', 'ask hal.' || :'sfx' || '@example.com' || U&'\2014' || ' our rep',
                          'dash3', 'mail ivy.' || :'sfx' || '@mail.example.com- now',
                          'midhyphen', 'mail jon.' || :'sfx' || '@b-.example.com now',
                          'wrap', E'call 555\n123\n4567 now',
                          'cardwrap', E'card 4111 1111\n1111 1111 ok',
                          -- groups the phone scanner does not take (two of 8 digits,
                          -- years), wrapped after a separator or with CR LF
                          'cardcrlf', E'card 41111111\r\n11111111 ok',
                          'carddash', E'card 1990-1990-\n1990-1990 ok',
                          'cardspcrlf', E'card 41111111 \r\n11111111 ok',
                          -- card numbers only the card rule finds (the phone rule
                          -- needs a word boundary and 10 to 15 digits): 13 digits
                          -- glued to a word, 16 and 15 without separators, and a
                          -- 16-digit run that fails the Luhn check (kept)
                          'card13', 'glued ref4222222222222 ok',
                          'mc', 'mc 5555555555554444',
                          'amex', 'amex 378282246310005',
                          'nearmiss', 'ref 5555555555554445 ok') AS attrs;
GRANT SELECT ON valtext TO PUBLIC;

BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO catalog.product (sku, name, description, price, currency, category_id, attributes, created_by, updated_by)
SELECT 'TAP-AU-VALS-' || upper(:'sfx'), 'Valued', descr, 1, 'USD', pg_temp.id('cat'), attrs, 'pgtap-audit', 'pgtap-audit'
FROM valtext
RETURNING id AS pvals \gset
COMMIT;
INSERT INTO fx VALUES ('pvals', :pvals);

CREATE FUNCTION pg_temp.masked_like(v text, pattern text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT v ~ ('^' || replace(pattern, '<m>', '\[hmac:[0-9a-f]{32}\]') || '$') $$;
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values->>'description',
                              'Write to <m> today; card <m> or <m>; call <m> now'),
          'description: the e-mail, the grouped and the ungrouped card number and the phone number are masked, the words around them kept');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,contact}', '<m> is the buyer'),
          'attribute string: an e-mail address is masked, the text around it kept');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,billing,memo}', 'paid with <m>, thanks'),
          'nested attribute string: a card number with dashes is masked');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,support}', 'phone <m> weekdays'),
          'attribute string: a phone number in parentheses is masked');
SELECT is((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,plain}', 'order 12345 of 2024-11-26, size 10',
          'ordinary numbers and dates are not masked');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> ARRAY['attributes', k], p), d)
FROM (VALUES ('ext', 'call <m>x89 after six', 'a phone number followed by an extension is masked'),
             ('apt', 'Apt B2 <m>', 'a phone number after a sequence glued to a word is masked'),
             ('dated', 'on <m>', 'a phone number after a date is masked, with the date (no tail stays clear)'),
             ('two', 'dial <m> today', 'two phone numbers in one sequence are masked')) AS t(k, p, d);
SELECT is((pg_temp.alast('product', :pvals)).new_values #> '{attributes}' -> k, to_jsonb(v), d)
FROM (VALUES ('sizes', 'sizes 38 39 40 41 42 43 44 45 46', 'a list of small numbers is not a phone number'),
             ('years', 'fits 2018 2019 2020 2021', 'a list of years is not a phone number'),
             ('range', 'valid 2024-05-01 - 2024-06-30', 'a date range is not a phone number'),
             ('dates', 'from 01/05/2024 to 12/31/2024', 'dates with "/" are not phone numbers'),
             ('dates2', 'on 01/05/2024 02/06/2025', 'two dates with "/" in a row are not a phone number'),
             ('notquoted', 'say "hi" @home or "x"@y', 'quotes before an "@" without a domain are not an e-mail address')) AS t(k, v, d);
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,cc,0}', '<m>')
          AND (pg_temp.alast('product', :pvals)).new_values #>> '{attributes,cc,1}' = 'plain item',
          'strings inside arrays are scanned too');
SELECT ok((SELECT bool_and(pg_temp.is_hash_mask(k)) AND count(*) = 1
           FROM jsonb_object_keys((pg_temp.alast('product', :pvals)).new_values #> '{attributes,owners}') k),
          'an object key that is an e-mail address is masked');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,hidden}', 'ping <m> please'),
          'a zero-width space inside an e-mail address does not hide it');
SELECT ok(pg_temp.masked_like((pg_temp.alast('product', :pvals)).new_values #>> ARRAY['attributes', k], p), d)
FROM (VALUES ('vs', 'call <m> now', 'a variation selector after a phone number does not hide it'),
             ('under', 'card <m>', 'a card number with every digit underlined (U+0332) is masked'),
             ('arabic', 'call <m> today', 'a phone number in Arabic-Indic digits is masked'),
             ('math', '<m>', 'a phone number in mathematical bold digits is masked'),
             ('smallat', 'mail <m> now', 'an e-mail address with a small commercial at (U+FE6B) is masked'),
             ('slash', 'Tel. <m> ab 9 Uhr', 'a phone number with "/" after the area code is masked'),
             ('slash2', 'Tel. <m>', 'a phone number with " / " after the area code is masked'),
             ('quoted', 'write <m> now', 'an e-mail address with a quoted local part is masked, quotes included'),
             ('atext', 'write <m> now', 'an e-mail address with "&" in its local part is masked whole'),
             ('apos', 'write <m> now', 'an e-mail address with an apostrophe in its local part is masked whole'),
             ('quoted_at', 'write <m> now', 'a quoted local part with an "@" inside is masked whole'),
             ('quoted_esc', 'write <m> now', 'a quoted local part with an escaped quote inside is masked whole'),
             ('dash', 'ask <m>- any time', 'an e-mail address followed by a hyphen is masked, the hyphen kept'),
             ('emdash', 'ask <m>' || U&'\2014' || ' our rep', 'an e-mail address followed by an em dash is masked'),
             ('dash3', 'mail <m>- now', 'a three-label address followed by a hyphen is masked whole'),
             ('midhyphen', 'mail <m> now', 'a label ending with a hyphen inside the domain does not cut the address short'),
             ('wrap', E'call <m> now', 'a phone number wrapped across lines is masked'),
             ('cardwrap', E'card <m> ok', 'a card number wrapped across lines is masked'),
             ('cardcrlf', E'card <m> ok', 'a card number wrapped with CR LF (a textarea) is masked'),
             ('carddash', E'card <m> ok', 'a card number wrapped after a dash is masked'),
             ('cardspcrlf', E'card <m> ok', 'a card number wrapped after a space with CR LF is masked'),
             ('card13', 'glued ref<m> ok', 'a 13-digit card number glued to a word is masked (the card rule''s minimum)'),
             ('mc', 'mc <m>', 'a 16-digit card number with 5s in doubled positions is masked (Luhn doubling of 5)'),
             ('amex', 'amex <m>', 'a 15-digit card number without separators is masked')) AS t(k, p, d);
SELECT is((pg_temp.alast('product', :pvals)).new_values #>> '{attributes,nearmiss}', 'ref 5555555555554445 ok',
          'a 16-digit run that fails the Luhn check is no card number: kept');

-- catalog.audit_mask_method = redact: the same writes give "[redacted]".
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SET LOCAL catalog.audit_mask_method = 'redact';
SELECT pg_temp.mark('t8.start');
INSERT INTO catalog.product (sku, name, description, price, currency, category_id, attributes, created_by, updated_by)
SELECT 'TAP-AU-RED-' || upper(:'sfx'), 'Redacted', descr, 1, 'USD', pg_temp.id('cat'),
       attrs || jsonb_build_object('password', 'password-clear-' || :'sfx', 'nested', jsonb_build_object('apiKey', 'apiKey-clear-' || :'sfx'),
                                   'refs', '{"ref_5551234567": 1, "ref_5559876543": 2, "ref_plain": 3}'::jsonb),
       'pgtap-audit', 'pgtap-audit'
FROM valtext
RETURNING id AS pred \gset
COMMIT;
SELECT results_eq(
    format($$SELECT new_values->>'description', new_values #>> '{attributes,contact}', new_values #>> '{attributes,billing,memo}',
                    new_values #>> '{attributes,support}', new_values #>> '{attributes,password}',
                    new_values #>> '{attributes,nested,apiKey}', new_values #>> '{attributes,plain}',
                    new_values #> '{attributes,cc}', new_values #>> '{attributes,hidden}'
             FROM pg_temp.alast('product', %s)$$, :pred),
    $$VALUES ('Write to [redacted] today; card [redacted] or [redacted]; call [redacted] now', '[redacted] is the buyer',
              'paid with [redacted], thanks', 'phone [redacted] weekdays', '[redacted]', '[redacted]',
              'order 12345 of 2024-11-26, size 10', '["[redacted]", "plain item"]'::jsonb, 'ping [redacted] please')$$,
    'catalog.audit_mask_method = redact: every built-in match in a value becomes [redacted], the rest is kept');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys((pg_temp.alast('product', :pred)).new_values #> '{attributes,owners}') k),
          ARRAY['[redacted]#1'],
          'under redact, a masked object key is redacted and numbered within its object');
SELECT is((pg_temp.alast('product', :pred)).new_values #> '{attributes,refs}',
          '{"ref_[redacted]#1": 1, "ref_[redacted]#2": 2, "ref_plain": 3}'::jsonb,
          'two keys redacted alike stay two members, each with its value (jsonb would keep one of two equal keys)');
-- redact is what the missing-key error's hint offers: with no audit key a
-- write whose attribute key holds a phone number goes through (it failed
-- with 55000 while keys were hashed under every method)
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SET LOCAL catalog.audit_mask_method = 'redact';
DELETE FROM catalog.signing_key WHERE purpose = 'audit';
SELECT (c->>'id')::bigint AS nokey
FROM catalog_api.create_product(sku => 'TAP-AU-NOKEY-' || upper(:'sfx'), name => 'No audit key', price => 1,
                                category_id => pg_temp.id('cat'),
                                attributes => '{"ref_5551234567": "x", "size": "call 555 123 4567"}') AS c \gset
SELECT is((pg_temp.alast('product', :nokey)).new_values #> '{attributes}',
          '{"ref_[redacted]#1": "x", "size": "call [redacted]"}'::jsonb,
          'redact without an audit key: a write with a phone number in an attribute key and value is audited, masked');
-- under redact every masked actor or request id is stored alike: a lookup
-- by one would return them all, so it is refused; a clear one still works
SELECT throws_ok(format('SELECT catalog_api.audit_by_actor(%L)', 'ops.' || :'sfx' || '@example.com'),
                 '22023', 'invalid value for field "actor": value is not valid (masked_by_redact)',
                 'redact: audit_by_actor of an actor that would be masked is refused (masked_by_redact)');
SELECT throws_ok(format('SELECT catalog_api.audit_by_request(%L)', 'req ops.' || :'sfx' || '@example.com'),
                 '22023', 'invalid value for field "request_id": value is not valid (masked_by_redact)',
                 'redact: audit_by_request of an id that would be masked is refused (masked_by_redact)');
SELECT lives_ok($$SELECT catalog_api.audit_by_actor('pgtap-audit')$$,
                'redact: audit_by_actor of a clear actor is answered');
ROLLBACK;

-- a key read inside a savepoint that rolls back goes with it: the key may
-- have been inserted there and never commit, and a committed row masked
-- with it could never be matched by its clear value again
BEGIN;
SELECT set_config('catalog.actor', 'keysub.' || :'sfx' || '@example.com', true) IS NOT NULL AS actor_set;
SAVEPOINT ks;
INSERT INTO catalog.signing_key (purpose, kid, secret)
SELECT 'audit', max(kid) + 1000, decode(repeat('cd', 32), 'hex') FROM catalog.signing_key WHERE purpose = 'audit';
SELECT catalog_api.create_product(sku => 'TAP-AU-KSX-' || upper(:'sfx'), name => 'Key rolled back', price => 1,
    category_id => pg_temp.id('cat')) IS NOT NULL AS created;
ROLLBACK TO SAVEPOINT ks;
INSERT INTO fx VALUES ('pks1', ((catalog_api.create_product(sku => 'TAP-AU-KS1-' || upper(:'sfx'), name => 'Key kept one',
    price => 1, category_id => pg_temp.id('cat')))->>'id')::bigint);
COMMIT;
BEGIN;
SELECT set_config('catalog.actor', 'keysub.' || :'sfx' || '@example.com', true) IS NOT NULL AS actor_set;
INSERT INTO fx VALUES ('pks2', ((catalog_api.create_product(sku => 'TAP-AU-KS2-' || upper(:'sfx'), name => 'Key kept two',
    price => 1, category_id => pg_temp.id('cat')))->>'id')::bigint);
COMMIT;
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', pg_temp.id('pks1'))).actor),
          'an actor that is an e-mail address is masked with a keyed hash');
SELECT is((pg_temp.alast('product', pg_temp.id('pks1'))).actor, (pg_temp.alast('product', pg_temp.id('pks2'))).actor,
          'after a savepoint that inserted and used an audit key rolls back, the committed key masks again: the same actor, the same mask as in the next transaction');
SELECT is(jsonb_array_length(catalog_api.audit_by_actor('keysub.' || :'sfx' || '@example.com')->'items'), 2,
          'audit_by_actor finds both committed rows of that actor by its clear value');

------------------------------------------------------------------------------
-- 9. Masking: declared masks
------------------------------------------------------------------------------
SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'description', method => 'redact') IS NOT NULL AS set1;
SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes', attribute_key => 'serial', method => 'hash') IS NOT NULL AS set2;
-- A key no attribute can have would be saved and never applied: refused.
SELECT throws_ok($$SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes',
                                                      attribute_key => 'Supplier_Ref', method => 'hash')$$,
                 '22023', 'invalid value for field "attribute_key": a key does not match [a-z][a-z0-9_]* at position 1',
                 'audit_mask_set refuses an attribute key outside the attributes'' key syntax');
-- A key the plain-text canonicalisation would change is refused, not
-- stored changed (a mask stored as ' supplier' would never match).
SELECT throws_ok($$SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes',
                                                      attribute_key => ' supplier', method => 'hash')$$,
                 '22023', 'invalid value for field "attribute_key": value is not in canonical form (white space, Unicode normalisation)',
                 'audit_mask_set refuses an attribute key with white space the canonical form trims (not_canonical)');
SELECT throws_ok(format($$SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes',
                                                             attribute_key => %L, method => 'hash')$$, U&'cafe\0301'),
                 '22023', 'invalid value for field "attribute_key": value is not in canonical form (white space, Unicode normalisation)',
                 'audit_mask_set refuses a decomposed attribute key (not_canonical)');
SELECT throws_ok(format($$SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'attributes',
                                                             attribute_key => %L, method => 'hash')$$, repeat('k', 65)),
                 '22023', 'invalid value for field "attribute_key": a key is longer than 64 bytes',
                 'audit_mask_set refuses an attribute key longer than an attribute key can be');
SELECT ok(catalog_api.audit_masks()->'declared' @> jsonb_build_array(
              jsonb_build_object('table_name', 'product', 'column_name', 'description', 'method', 'redact'),
              jsonb_build_object('table_name', 'product', 'column_name', 'attributes', 'attribute_key', 'serial', 'method', 'hash')),
          'audit_masks lists the two declared masks');
-- (the serials are not in "clear": one is kept on purpose under another key,
-- and after the mask is dropped an update shows the old serial)
INSERT INTO clear VALUES ('plain words ' || :'sfx'), ('other words ' || :'sfx');
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO fx VALUES ('pm1', ((catalog_api.create_product(sku => 'TAP-AU-M1-' || upper(:'sfx'), name => 'Declared one',
    price => 1, category_id => pg_temp.id('cat'), description => 'plain words ' || :'sfx',
    attributes => jsonb_build_object('serial', 'SN-AAA-' || upper(:'sfx'), 'part', jsonb_build_object('serial', 'SN-AAA-' || upper(:'sfx')),
                                     'model', 'SN-AAA-' || upper(:'sfx'), 'seri', 'SN-SER-' || upper(:'sfx'))))->>'id')::bigint);
COMMIT;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
INSERT INTO fx VALUES ('pm2', ((catalog_api.create_product(sku => 'TAP-AU-M2-' || upper(:'sfx'), name => 'Declared two',
    price => 1, category_id => pg_temp.id('cat'),
    attributes => jsonb_build_object('serial', 'SN-BBB-' || upper(:'sfx'))))->>'id')::bigint);
INSERT INTO fx VALUES ('pm3', ((catalog_api.create_product(sku => 'TAP-AU-M3-' || upper(:'sfx'), name => 'Declared three',
    price => 1, category_id => pg_temp.id('cat'),
    attributes => jsonb_build_object('serial', 'SN-AAA-' || upper(:'sfx'))))->>'id')::bigint);
SELECT catalog_api.update_product(id => pg_temp.id('pm1'), expected_version => 1, description => 'other words ' || :'sfx') IS NOT NULL AS updated;
COMMIT;
CREATE FUNCTION pg_temp.afirst(tbl text, rid bigint) RETURNS catalog.audit_log LANGUAGE sql STABLE AS
$$ SELECT * FROM catalog.audit_log WHERE table_name = tbl AND row_id = rid ORDER BY id LIMIT 1 $$;
SELECT is((pg_temp.afirst('product', pg_temp.id('pm1'))).new_values->>'description', '[redacted]',
          'declared column (redact): the description is [redacted]');
SELECT results_eq(
    format($$SELECT action, old_values->>'description', new_values->>'description' FROM pg_temp.alast('product', %s)$$, pg_temp.id('pm1')),
    $$VALUES ('update', '[redacted]', '[redacted]')$$,
    'declared column: a change of the masked column is still recorded, both sides masked');
SELECT ok(pg_temp.is_hash_mask((pg_temp.afirst('product', pg_temp.id('pm1'))).new_values #>> '{attributes,serial}'),
          'declared key (hash): the value is a keyed hash');
SELECT results_eq(
    format($$SELECT (pg_temp.afirst('product', %1$s)).new_values #>> '{attributes,part,serial}',
                    (pg_temp.afirst('product', %2$s)).new_values #>> '{attributes,serial}'$$,
           pg_temp.id('pm1'), pg_temp.id('pm3')),
    format($$SELECT new_values #>> '{attributes,serial}', new_values #>> '{attributes,serial}' FROM pg_temp.afirst('product', %s)$$,
           pg_temp.id('pm1')),
    'declared key (hash): equal values give equal masks, at any depth and in other rows and transactions');
SELECT isnt((pg_temp.afirst('product', pg_temp.id('pm2'))).new_values #>> '{attributes,serial}',
            (pg_temp.afirst('product', pg_temp.id('pm1'))).new_values #>> '{attributes,serial}',
            'declared key (hash): different values give different masks');
SELECT is((pg_temp.afirst('product', pg_temp.id('pm1'))).new_values #>> '{attributes,model}',
          'SN-AAA-' || upper(:'sfx'), 'declared key: the same value under another key is kept');
SELECT is((pg_temp.afirst('product', pg_temp.id('pm1'))).new_values #>> '{attributes,seri}',
          'SN-SER-' || upper(:'sfx'), 'declared key: a key that is a prefix of it (seri for serial) is kept');
SELECT is(catalog_api.audit_mask_drop(table_name => 'product', column_name => 'description'), true, 'audit_mask_drop removes a mask');
SELECT is(catalog_api.audit_mask_drop(table_name => 'product', column_name => 'attributes', attribute_key => 'serial'), true,
          'audit_mask_drop removes a key mask');
SELECT is(catalog_api.audit_mask_drop(table_name => 'product', column_name => 'attributes', attribute_key => 'serial'), false,
          'audit_mask_drop of a mask that is not there returns false');
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('pm2'), expected_version => 1, description => 'now in clear',
    attributes => jsonb_build_object('serial', 'SN-CCC')) IS NOT NULL AS updated;
COMMIT;
SELECT results_eq(
    format($$SELECT new_values->>'description', new_values #>> '{attributes,serial}' FROM pg_temp.alast('product', %s)$$, pg_temp.id('pm2')),
    $$VALUES ('now in clear', 'SN-CCC')$$,
    'after audit_mask_drop (committed) the next write is no longer masked');

-- A declared mask that was rolled back does not stay in force.
BEGIN;
SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'name', method => 'redact') IS NOT NULL AS set3;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('pm3'), expected_version => 1, name => 'Hidden name') IS NOT NULL AS updated;
SELECT is((pg_temp.alast('product', pg_temp.id('pm3'))).new_values->>'name', '[redacted]',
          'a mask declared in the transaction applies to its later writes');
ROLLBACK;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('pm3'), expected_version => 1, name => 'Visible name') IS NOT NULL AS updated;
COMMIT;
SELECT is((pg_temp.alast('product', pg_temp.id('pm3'))).new_values->>'name', 'Visible name',
          'after the declaring transaction rolled back, the mask is gone');

-- A mask written under session_replication_role = replica (as a logical
-- replication apply worker writes) reaches the cached policy too: its
-- trigger is ENABLE ALWAYS.
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO catalog.audit_mask (table_name, column_name, method, created_by)
VALUES ('product', 'name', 'redact', 'pgtap-replica');
SET LOCAL session_replication_role = origin;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('pm3'), expected_version => 2, name => 'Replica hidden') IS NOT NULL AS updated;
SELECT is((pg_temp.alast('product', pg_temp.id('pm3'))).new_values->>'name', '[redacted]',
          'a mask written under session_replication_role = replica applies to the next write');
ROLLBACK;

-- Columns an administrator added.  Keys are matched byte for byte, and a
-- jsonb column of one's own has no key syntax: a declared key that
-- canonicalisation would change is refused, never stored changed (the key
-- as written would go unmasked).  A json value or an array of jsonb is
-- stored as its text: one with a sensitive key is masked whole.
BEGIN;
ALTER TABLE catalog.product ADD COLUMN tap_meta jsonb, ADD COLUMN tap_json json, ADD COLUMN tap_jsons jsonb[];
SELECT throws_ok(format($$SELECT catalog_api.audit_mask_set(table_name => 'product', column_name => 'tap_meta',
                                                             attribute_key => %L, method => 'redact')$$, k),
                 '22023', NULL, d)
FROM (VALUES ('supplier  ref ', 'a declared key with white space that canonicalisation would change is refused'),
             (U&'cafe\0301', 'a declared key in decomposed form is refused')) AS t(k, d);
SELECT is(catalog_api.audit_mask_set(table_name => 'product', column_name => 'tap_meta', attribute_key => 'supplier ref',
                                     method => 'redact') ->> 'attribute_key', 'supplier ref',
          'a canonical key of an added jsonb column is stored as given');
SET LOCAL catalog.actor = 'pgtap-audit';
UPDATE catalog.product
SET tap_meta = jsonb_build_object('supplier ref', 'raw-meta-' || :'sfx'),
    tap_json = json_build_object('note', 'kept', 'password', 'raw-json-' || :'sfx'),
    tap_jsons = ARRAY['{"a": 1}'::jsonb, jsonb_build_object('api_key', 'raw-jsons-' || :'sfx')]
WHERE id = pg_temp.id('pm3');
SELECT is((pg_temp.alast('product', pg_temp.id('pm3'))).new_values #>> '{tap_meta,supplier ref}', '[redacted]',
          'the declared key of an added jsonb column is masked');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> k), d)
FROM (VALUES ('tap_json', 'a json value with a password key is masked whole'),
             ('tap_jsons', 'a jsonb array with an api_key key in an element is masked whole')) AS t(k, d);
UPDATE catalog.product SET tap_json = '{"note": "kept \u0000 \"x\"", "n\u00e4me": 1}', tap_jsons = ARRAY['{"a": 2}'::jsonb]
WHERE id = pg_temp.id('pm3');
SELECT is(ARRAY[(pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_json',
                (pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_jsons'],
          ARRAY['{"note": "kept \u0000 \"x\"", "n\u00e4me": 1}', (ARRAY['{"a": 2}'::jsonb])::text],
          'json (with an escaped NUL and escaped keys, as the json type accepts) and jsonb arrays without a sensitive key are kept as their text');
UPDATE catalog.product SET tap_json = '{"outer": [{"pass\u0077ord": "raw-escaped-key"}]}' WHERE id = pg_temp.id('pm3');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_json'),
          'a sensitive json key written with an escape, nested in an array, masks the value whole');
-- Value patterns that only an escape hides from the scan of the text: the
-- value is masked whole (the text scan found none of them).
CREATE FUNCTION pg_temp.tap_json_stored(j json) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog.product SET tap_json = j WHERE id = pg_temp.id('pm3');
    RETURN (pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_json';
END $$;
SELECT ok(pg_temp.is_hash_mask(pg_temp.tap_json_stored(j::json)), 'json value masked whole: ' || label)
FROM (VALUES
    (1, '{"note": "write to alice\u0040example.com"}', 'an e-mail address whose @ is written \u0040'),
    (2, '{"note": "card 4111\n1111\n1111\n1111"}', 'a card number broken across lines (\n, as json must write it)'),
    (3, '{"note": "mail \"bob\"@example.com"}', 'an address with a quoted local part (\")'),
    (4, '{"note": "x\u0000 \u0035\u0035\u0035-123-4567"}', 'a phone number in escaped digits, beside an escaped NUL'),
    (5, '[{"deep": ["carol\u0040example.com"]}]', 'an escaped address nested in arrays'))
    AS t(n, j, label)
ORDER BY n;
SELECT is(pg_temp.tap_json_stored('{"note": "line\none \"quoted\" no address"}'),
          '{"note": "line\none \"quoted\" no address"}', 'escapes without a value pattern are kept as written');
-- jsonb strings that the array's text escapes twice
UPDATE catalog.product SET tap_jsons = ARRAY['{"n": "mail \"bob\"@example.com"}'::jsonb] WHERE id = pg_temp.id('pm3');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_jsons'),
          'a jsonb array whose element holds an address with a quoted local part is masked whole');
-- An array of a domain over jsonb is an array of jsonb: its keys are checked.
CREATE DOMAIN tap_jb_dom AS jsonb;
ALTER TABLE catalog.product ADD COLUMN tap_doms tap_jb_dom[];
UPDATE catalog.product SET tap_doms = ARRAY['{"password": "hunter2"}'::tap_jb_dom] WHERE id = pg_temp.id('pm3');
SELECT ok(pg_temp.is_hash_mask((pg_temp.alast('product', pg_temp.id('pm3'))).new_values ->> 'tap_doms'),
          'an array of a domain over jsonb with a password key is masked whole');
ROLLBACK;

------------------------------------------------------------------------------
-- 10. A PostgREST request, replayed statement by statement
------------------------------------------------------------------------------
-- As PostgREST v12 sends it (/work/shared/POSTGREST.md 1.1-1.4): BEGIN,
-- one SELECT of set_config calls (role, claims, method, path, headers with
-- the bearer token, cookies), the main query with the body as a json $1.
INSERT INTO clear VALUES ('carol.' || :'sfx' || '@example.com'), ('eyJhbGciOiJIUzI1NiJ9.' || :'sfx' || 'payload.' || :'sfx' || 'sig');
PREPARE pgrst_create_product(json) AS
WITH pgrst_source AS (SELECT pgrst_call.pgrst_scalar FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT "sku", "name", "price", "category_id" FROM json_to_record(pgrst_payload.json_data) AS _("sku" text, "name" text, "price" numeric, "category_id" bigint) LIMIT 1) pgrst_body , LATERAL (SELECT "catalog_api"."create_product"("sku" := pgrst_body."sku", "name" := pgrst_body."name", "price" := pgrst_body."price", "category_id" := pgrst_body."category_id") pgrst_scalar) pgrst_call) SELECT null::bigint AS total_result_set, 1 AS page_total, coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body, nullif(current_setting('response.headers', true), '') AS response_headers, nullif(current_setting('response.status', true), '') AS response_status, '' AS response_inserted FROM (SELECT "create_product".* FROM "pgrst_source" AS "create_product"     ) _postgrest_t;
PREPARE pgrst_update_product(json) AS
WITH pgrst_source AS (SELECT pgrst_call.pgrst_scalar FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT "id", "expected_version", "price" FROM json_to_record(pgrst_payload.json_data) AS _("id" bigint, "expected_version" integer, "price" numeric) LIMIT 1) pgrst_body , LATERAL (SELECT "catalog_api"."update_product"("id" := pgrst_body."id", "expected_version" := pgrst_body."expected_version", "price" := pgrst_body."price") pgrst_scalar) pgrst_call) SELECT null::bigint AS total_result_set, 1 AS page_total, coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body, nullif(current_setting('response.headers', true), '') AS response_headers, nullif(current_setting('response.status', true), '') AS response_status, '' AS response_inserted FROM (SELECT "update_product".* FROM "pgrst_source" AS "update_product"     ) _postgrest_t;

BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
\o /dev/null
select set_config('search_path', '"catalog_api", "public"', true), set_config('role', 'catalog_editor', true),
       set_config('request.jwt.claims', '{"role":"catalog_editor","sub":"carol.' || :'sfx' || '@example.com","exp":4102444800}', true),
       set_config('request.method', 'POST', true), set_config('request.path', '/rpc/create_product', true),
       set_config('request.headers', '{"accept":"application/json","authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.' || :'sfx' || 'payload.' || :'sfx' || 'sig","content-type":"application/json","x-request-id":"tap-rq-' || :'sfx' || '"}', true),
       set_config('request.cookies', '{}', true);
\o
SELECT pg_temp.mark('e1.start');
EXECUTE pgrst_create_product(json_build_object('sku', 'TAP-AU-RQ-' || upper(:'sfx'), 'name', 'Requested', 'price', 9.5, 'category_id', pg_temp.id('cat'))) \gset e1_
COMMIT;
INSERT INTO fx VALUES ('prq', (:'e1_body'::jsonb->>'id')::bigint);

SELECT results_eq(
    format($$SELECT action, role_name, via, request_id, txid FROM pg_temp.arows('product', %s)$$, pg_temp.id('prq')),
    format($$VALUES ('insert', 'catalog_editor', 'POST /rpc/create_product', %L, %L::xid8)$$, 'tap-rq-' || :'sfx', pg_temp.txid('e1.start')),
    'PostgREST: role_name is the JWT role, via the method and path, request_id the x-request-id header');
SELECT ok((SELECT pg_temp.is_hash_mask(actor) FROM pg_temp.alast('product', pg_temp.id('prq'))),
          'PostgREST: the actor is the JWT sub, an e-mail address, stored masked');
-- A path holding an address (a client or proxy that sets request.path):
-- the path is stored masked, the method kept.
BEGIN;
SELECT set_config('request.method', 'POST', true), set_config('request.path', '/rpc/update_product/eve.' || :'sfx' || '@example.com', true);
SELECT catalog_api.update_product(id => pg_temp.id('prq'), expected_version => 1, name => 'Requested Path') IS NOT NULL AS updated;
SELECT ok((SELECT via ~ '^POST \[hmac:[0-9a-f]{32}\]$' FROM pg_temp.alast('product', pg_temp.id('prq'))),
          'a request path holding an e-mail address is stored masked, after the method');
ROLLBACK;
SELECT is((SELECT new_values->>'created_by' = actor AND new_values->>'updated_by' = actor FROM pg_temp.alast('product', pg_temp.id('prq'))),
          true, 'PostgREST: created_by and updated_by in the image carry the same mask as the actor');

-- The claims have no sub: catalog.actor; no x-request-id: catalog.request_id.
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT set_config('catalog.actor', 'tap-service-' || :'sfx', true) IS NOT NULL AS set, set_config('catalog.request_id', 'tap-rq2-' || :'sfx', true) IS NOT NULL AS set;
\o /dev/null
select set_config('search_path', '"catalog_api", "public"', true), set_config('role', 'catalog_admin', true),
       set_config('request.jwt.claims', '{"role":"catalog_admin"}', true),
       set_config('request.method', 'POST', true), set_config('request.path', '/rpc/update_product', true),
       set_config('request.headers', '{"authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.' || :'sfx' || 'payload.' || :'sfx' || 'sig","content-type":"application/json"}', true),
       set_config('request.cookies', '{}', true);
\o
EXECUTE pgrst_update_product(json_build_object('id', pg_temp.id('prq'), 'expected_version', 1, 'price', 10)) \gset e2_
COMMIT;
SELECT results_eq(
    format($$SELECT action, actor, role_name, via, request_id FROM pg_temp.alast('product', %s)$$, pg_temp.id('prq')),
    format($$VALUES ('update', %L, 'catalog_admin', 'POST /rpc/update_product', %L)$$, 'tap-service-' || :'sfx', 'tap-rq2-' || :'sfx'),
    'PostgREST without sub: the actor is catalog.actor; without x-request-id: catalog.request_id');
DEALLOCATE pgrst_create_product;
DEALLOCATE pgrst_update_product;

-- Plain SQL, SET ROLE: the role is recorded, the actor falls back to session_user.
BEGIN;
SELECT set_config('catalog.actor', '', true);
SET LOCAL ROLE catalog_editor;
SELECT catalog_api.update_product(id => pg_temp.id('prq'), expected_version => 2, price => 11) IS NOT NULL AS updated;
RESET ROLE;
COMMIT;
SELECT results_eq(
    format($$SELECT actor, role_name, via FROM pg_temp.alast('product', %s)$$, pg_temp.id('prq')),
    $$VALUES (pg_temp.su(), 'catalog_editor', 'sql')$$,
    'plain SQL under SET ROLE: role_name is that role, actor session_user, via sql');

-- A correlation id holding an e-mail address, under a role named by one
-- (as cloud IAM roles are): both stored masked, and the clear id finds the
-- row through audit_by_request.
INSERT INTO clear VALUES ('dave.' || :'sfx' || '@example.com'), ('tap.role.' || :'sfx' || '@example.com');
SELECT format('CREATE ROLE %I IN ROLE catalog_editor', 'tap.role.' || :'sfx' || '@example.com') AS mkrole,
       format('DROP ROLE %I', 'tap.role.' || :'sfx' || '@example.com') AS rmrole \gset
:mkrole;
BEGIN;
SELECT set_config('catalog.request_id', 'dave.' || :'sfx' || '@example.com', true) IS NOT NULL AS set;
SELECT set_config('role', 'tap.role.' || :'sfx' || '@example.com', true) IS NOT NULL AS set;
SELECT catalog_api.update_product(id => pg_temp.id('prq'), expected_version => 3, price => 12) IS NOT NULL AS updated;
RESET ROLE;
COMMIT;
:rmrole;
SELECT ok((SELECT pg_temp.is_hash_mask(role_name) AND pg_temp.is_hash_mask(request_id)
           FROM pg_temp.alast('product', pg_temp.id('prq'))),
          'a role name and a correlation id holding an e-mail address are stored masked');
SELECT is((catalog_api.audit_by_request('dave.' || :'sfx' || '@example.com')->'items'->0->>'audit_id')::bigint,
          (SELECT id FROM pg_temp.alast('product', pg_temp.id('prq'))),
          'audit_by_request finds that row by the clear correlation id');
-- Sanitizing breaks up an address ("jörg@müller.de" is stored as
-- "j__rg@m__ller.de", a domain without a dot between label characters), and
-- so does the cut to 128 bytes ("ab@exam"): the value as given decides.
BEGIN;
SELECT set_config('request.headers', json_build_object('x-request-id', 'jörg.' || :'sfx' || '@müller.de')::text, true) IS NOT NULL AS set;
SELECT catalog_api.update_product(id => pg_temp.id('prq'), expected_version => 4, price => 13) IS NOT NULL AS updated;
COMMIT;
BEGIN;
SELECT set_config('catalog.request_id', repeat('r', 120) || ' ab@example.com', true) IS NOT NULL AS set;
SELECT catalog_api.update_product(id => pg_temp.id('prq'), expected_version => 5, price => 14) IS NOT NULL AS updated;
COMMIT;
SELECT ok((SELECT bool_and(pg_temp.is_hash_mask(request_id)) AND count(*) = 2
           FROM catalog.audit_log WHERE table_name = 'product' AND row_id = pg_temp.id('prq')
            AND new_values->>'price' IN ('13.00', '14.00')),
          'a correlation id whose address sanitizing or the 128-byte cut broke up is stored masked');
SELECT is((SELECT array_agg((i->>'audit_id')::bigint ORDER BY (i->>'audit_id')::bigint)
           FROM (SELECT catalog_api.audit_by_request(r)->'items'->0 AS i
                 FROM (VALUES ('jörg.' || :'sfx' || '@müller.de'), (repeat('r', 120) || ' ab@example.com')) v(r)) x),
          (SELECT array_agg(id ORDER BY id) FROM catalog.audit_log
           WHERE table_name = 'product' AND row_id = pg_temp.id('prq') AND new_values->>'price' IN ('13.00', '14.00')),
          'audit_by_request finds both rows by the values as given');

------------------------------------------------------------------------------
-- 11. Nothing in clear
------------------------------------------------------------------------------
SELECT is_empty($$SELECT c.v, a.id FROM clear c, catalog.audit_log a WHERE strpos(a::text, c.v) > 0$$,
                'no clear sensitive value (keys, patterns, declared masks, JWT sub, bearer token) appears in any audit row');
SELECT is_empty($$SELECT a.id FROM catalog.audit_log a WHERE a::text ILIKE '%bearer%' OR a::text ILIKE '%authorization":"%'$$,
                'no header is stored');
SELECT isnt_empty($$SELECT c.v FROM clear c, catalog.product p WHERE strpos(p::text, c.v) > 0$$,
                  'the products themselves do hold the clear values (so the scan above would find them)');

------------------------------------------------------------------------------
-- 12. Readers
------------------------------------------------------------------------------
-- The expected items of a row's history, newest first, from the tables.
-- (SECURITY DEFINER: the tests below call it under SET ROLE)
CREATE FUNCTION pg_temp.expected_items(tbl text, rid bigint) RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'audit_id', a.id, 'txid', a.txid::text, 'action', a.action, 'actor', a.actor, 'role', a.role_name,
               'via', a.via, 'request_id', a.request_id, 'table', a.table_name, 'row_id', a.row_id,
               'old', a.old_values, 'new', a.new_values, 'seq', s.seq)
               ORDER BY a.id DESC), '[]')
    FROM catalog.audit_log a LEFT JOIN catalog.audit_seal s ON s.audit_id = a.id
    WHERE a.table_name = tbl AND a.row_id = rid
$$;
-- A query of the audit tables that returns one jsonb, run as the superuser.
CREATE FUNCTION pg_temp.direct(q text) RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
DECLARE
    r jsonb;
BEGIN
    EXECUTE q INTO r;
    RETURN r;
END $$;
-- Items without occurred_at (compared on its own, as a timestamp).
CREATE FUNCTION pg_temp.strip(items jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(jsonb_agg(i - 'occurred_at' ORDER BY o), '[]') FROM jsonb_array_elements(items) WITH ORDINALITY AS x(i, o) $$;
-- Every page of a history function, walked with next_cursor.
CREATE FUNCTION pg_temp.walk(fn text, arg text, size integer) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    page jsonb;
    cur bigint;
    items jsonb := '[]';
    pages integer := 0;
BEGIN
    LOOP
        EXECUTE format('SELECT catalog_api.%I(%L, page_size => %s, cursor => %L)', fn, arg, size, cur) INTO page;
        pages := pages + 1;
        items := items || (page->'items');
        EXIT WHEN page->'next_cursor' IS NULL OR jsonb_typeof(page->'next_cursor') = 'null' OR pages > 100;
        cur := (page->>'next_cursor')::bigint;
    END LOOP;
    RETURN jsonb_build_object('items', items, 'pages', pages);
END $$;

-- Before the seal: the history is found among the unsealed rows.
SET ROLE catalog_editor;
SELECT is(pg_temp.strip(catalog_api.product_history(pg_temp.id('p1'))->'items'), pg_temp.expected_items('product', pg_temp.id('p1')),
          'editor: product_history of rows not sealed yet equals the audit rows newest first');
RESET ROLE;
-- Sealed, then one more write (not sealed): the pages mix both.
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit-2';
UPDATE catalog.product SET price = 17 WHERE id = pg_temp.id('p1');
COMMIT;

SET ROLE catalog_editor;
SELECT is(pg_temp.strip(catalog_api.product_history(pg_temp.id('p1'))->'items'), pg_temp.expected_items('product', pg_temp.id('p1')),
          'editor: product_history equals the audit rows newest first, with their seal seq (null for the newest)');
SELECT is((SELECT count(*) FILTER (WHERE i->'seq' = 'null') || '/' || count(*)
           FROM jsonb_array_elements(catalog_api.product_history(pg_temp.id('p1'))->'items') i), '1/5',
          'four sealed rows and one not sealed');
SELECT is(pg_temp.keys(catalog_api.product_history(pg_temp.id('p1'))->'items'->0),
          ARRAY['action', 'actor', 'audit_id', 'new', 'occurred_at', 'old', 'request_id', 'role', 'row_id', 'seq', 'table',
                'txid', 'via'],
          'history items have exactly the documented keys');
SELECT is((SELECT jsonb_agg((i->>'occurred_at')::timestamptz ORDER BY o) FROM jsonb_array_elements(catalog_api.product_history(pg_temp.id('p1'))->'items') WITH ORDINALITY x(i, o)),
          pg_temp.direct(format($$SELECT jsonb_agg(occurred_at ORDER BY id DESC) FROM catalog.audit_log WHERE table_name = 'product' AND row_id = %s$$, pg_temp.id('p1'))),
          'history items carry occurred_at');
-- p1 has five rows: insert, two price updates, the archive, the plain UPDATE.
SELECT results_eq(
    format($$SELECT n, w->'pages', pg_temp.strip(w->'items') FROM (VALUES (1), (2), (3), (4), (5), (6)) v(n), pg_temp.walk('product_history', %L, n) w ORDER BY n$$,
           pg_temp.id('p1')),
    format($$SELECT n, to_jsonb(p), pg_temp.expected_items('product', %s) FROM (VALUES (1, 5), (2, 3), (3, 2), (4, 2), (5, 1), (6, 1)) v(n, p) ORDER BY n$$,
           pg_temp.id('p1')),
    'product_history walked with next_cursor in pages of 1 to 6: always the whole history, and no empty last page');
SELECT is(pg_temp.strip(catalog_api.category_history(pg_temp.id('cat'))->'items'), pg_temp.expected_items('category', pg_temp.id('cat')),
          'editor: category_history equals the audit rows newest first');
SELECT is(catalog_api.product_history(pg_temp.id('pdel'))->'items'->0->>'action', 'delete',
          'the history of a deleted product is still readable');
SELECT is(catalog_api.product_history(-1), '{"items": [], "next_cursor": null}'::jsonb, 'history of an unknown id: no item');
SELECT throws_ok(format('SELECT catalog_api.product_history(%s, page_size => 0)', pg_temp.id('p1')), '22023', NULL,
                 'page_size 0 is refused with 22023');
SELECT throws_ok(format('SELECT catalog_api.product_history(%s, page_size => 101)', pg_temp.id('p1')), '22023', NULL,
                 'page_size above 100 is refused with 22023');
SELECT throws_ok(format('SELECT catalog_api.product_history(%s, cursor => 0)', pg_temp.id('p1')), '22023', NULL,
                 'a cursor below 1 is refused with 22023 (not an empty page)');
SELECT throws_ok(format('SELECT catalog_api.audit_by_actor(%L)', 'pgtap-audit-2'), '42501', NULL, 'editor: audit_by_actor is refused');
SELECT throws_ok(format('SELECT catalog_api.audit_by_request(%L)', 'tap-req-' || :'sfx'), '42501', NULL, 'editor: audit_by_request is refused');
RESET ROLE;

SET ROLE catalog_anon;
SELECT throws_ok(format('SELECT catalog_api.product_history(%s)', pg_temp.id('p1')), '42501', NULL, 'anon: product_history is refused');
SELECT throws_ok(format('SELECT catalog_api.category_history(%s)', pg_temp.id('cat')), '42501', NULL, 'anon: category_history is refused');
SELECT throws_ok(format('SELECT catalog_api.audit_by_actor(%L)', 'pgtap-audit-2'), '42501', NULL, 'anon: audit_by_actor is refused');
SELECT throws_ok(format('SELECT catalog_api.audit_by_request(%L)', 'tap-req-' || :'sfx'), '42501', NULL, 'anon: audit_by_request is refused');
RESET ROLE;

SET ROLE catalog_admin;
SELECT is((SELECT jsonb_agg(i->'audit_id' ORDER BY o) FROM jsonb_array_elements(catalog_api.audit_by_request('tap-req-' || :'sfx')->'items') WITH ORDINALITY x(i, o)),
          pg_temp.direct(format($$SELECT jsonb_agg(id ORDER BY id DESC) FROM catalog.audit_log WHERE request_id = %L$$, 'tap-req-' || :'sfx')),
          'admin: audit_by_request finds the rows of that request id');
SELECT is((SELECT jsonb_agg(jsonb_build_array(i->'audit_id', i->'table', i->'row_id') ORDER BY o)
           FROM jsonb_array_elements((pg_temp.walk('audit_by_actor', 'pgtap-audit-2', 2))->'items') WITH ORDINALITY x(i, o)),
          pg_temp.direct($$SELECT jsonb_agg(jsonb_build_array(id, table_name, row_id) ORDER BY id DESC) FROM catalog.audit_log WHERE actor = 'pgtap-audit-2'$$),
          'admin: audit_by_actor, walked in pages of 2, finds every row of the actor with table and row key');
SELECT is((SELECT jsonb_agg(i->'audit_id' ORDER BY o) FROM jsonb_array_elements(catalog_api.audit_by_actor('carol.' || :'sfx' || '@example.com')->'items') WITH ORDINALITY x(i, o)),
          pg_temp.direct(format($$SELECT jsonb_agg(id ORDER BY id DESC) FROM catalog.audit_log WHERE table_name = 'product' AND row_id = %s AND action = 'insert'$$, pg_temp.id('prq'))),
          'admin: audit_by_actor finds the rows of a masked e-mail actor by its clear value');
-- A request id of one allowed character is stored as it is; an argument
-- with no allowed character at all matches nothing (it once looked up "_").
BEGIN;
SELECT set_config('catalog.request_id', '_', true) AS req;
SELECT catalog_api.create_category(name => 'Tap Underscore', slug => 'tap-underscore-' || :'sfx') IS NOT NULL AS created;
COMMIT;
SELECT is((SELECT jsonb_agg(i->'audit_id' ORDER BY o) FROM jsonb_array_elements(catalog_api.audit_by_request('_')->'items') WITH ORDINALITY x(i, o)),
          pg_temp.direct($$SELECT jsonb_agg(id ORDER BY id DESC) FROM catalog.audit_log WHERE request_id = '_'$$),
          'admin: audit_by_request finds exactly the rows of the request id "_" (not a LIKE wildcard)');
SELECT is(catalog_api.audit_by_request('!!!'), '{"items": [], "next_cursor": null}'::jsonb,
          'admin: a request id with no allowed character matches no row (not those of "_")');
SELECT throws_ok('SET catalog.audit_lock_timeout = 1', '42501', NULL,
                 'admin: catalog.audit_lock_timeout is a superuser setting (it bounds how long writers queue)');
RESET ROLE;
SET catalog.audit_lock_timeout = '2s';
SELECT is(current_setting('catalog.audit_lock_timeout'), '2s', 'a superuser sets catalog.audit_lock_timeout');
RESET catalog.audit_lock_timeout;

------------------------------------------------------------------------------
-- 13. Append-only: nobody changes or deletes an audit row
------------------------------------------------------------------------------
-- try(stmt): the SQLSTATE and message of the error stmt raised, or
-- 'succeeded' (and its effects undone: a statement that should have been
-- refused must not damage the database the next tests use).
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE stmt;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'TAP00';
    EXCEPTION WHEN OTHERS THEN
        RETURN CASE WHEN SQLSTATE = 'TAP00' THEN 'succeeded' ELSE SQLSTATE || ' ' || SQLERRM END;
    END;
END $$;

-- The monthly partitions (the worker creates them in a deployment; this
-- database is not the worker's): the rows written so far move out of the
-- default partition, and the trigger writes the next ones into the month's
-- partition directly.
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
SELECT is((SELECT count(*) FROM catalog.audit_log_default), 0::bigint,
          'audit_maintain moved every row out of the default partition');
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 3, price => 3.5) IS NOT NULL AS updated;
COMMIT;
SELECT is((SELECT tableoid::regclass::text || ' ' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYYMM')
           FROM catalog.audit_log WHERE table_name = 'product' AND row_id = pg_temp.id('psp') ORDER BY id DESC LIMIT 1),
          (SELECT 'catalog.audit_log_p' || m || ' ' || m FROM (SELECT to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYYMM') AS m
           FROM catalog.audit_log WHERE table_name = 'product' AND row_id = pg_temp.id('psp')) x),
          'a write after audit_maintain lands in the partition of its month (catalog.audit_log_pYYYYMM)');
SELECT is((pg_temp.alast('product', pg_temp.id('psp'))).new_values,
          jsonb_build_object('price', 3.50, 'version', 4, 'updated_at', pg_temp.pimage(pg_temp.id('psp'))->'updated_at'),
          'and its content is the same as through the ordinary path');
-- A column whose type changed (an upgrade script's ALTER, or a superuser's
-- with catalog.allow_table_changes) takes the ordinary
-- path, which converts: written straight into the heap, the int8 datum of
-- row_id would be read as a numeric's pointer.
BEGIN;
SET LOCAL catalog.allow_table_changes = on;   -- else refused (src/ddlguard.c)
ALTER TABLE catalog.audit_log ALTER COLUMN row_id TYPE numeric;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 4, price => 3.75) IS NOT NULL AS updated;
SELECT is((SELECT row_id::text FROM catalog.audit_log WHERE table_name = 'product' ORDER BY id DESC LIMIT 1),
          pg_temp.id('psp')::text, 'a partition whose column changed type gets the row through the ordinary path, converted');
ROLLBACK;

SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
CREATE TEMP TABLE victims AS
SELECT a.id AS aid, a.tableoid::regclass::text AS part, s.seq
FROM catalog.audit_log a JOIN catalog.audit_seal s ON s.audit_id = a.id
WHERE a.table_name = 'product' AND a.row_id = pg_temp.id('p1') AND a.action = 'insert';
CREATE TEMP TABLE forbidden (stmt text PRIMARY KEY, superuser_too boolean NOT NULL);
INSERT INTO forbidden
SELECT format(s, v.aid, v.part, v.seq), su
FROM victims v, (VALUES
    ('UPDATE catalog.audit_log SET actor = ''forged'' WHERE id = %1$s', true),
    ('DELETE FROM catalog.audit_log WHERE id = %1$s', true),
    ('TRUNCATE catalog.audit_log', true),
    ('INSERT INTO catalog.audit_log SELECT * FROM catalog.audit_log WHERE id = %1$s', false),
    ('UPDATE %2$s SET actor = ''forged'' WHERE id = %1$s', true),
    ('DELETE FROM %2$s WHERE id = %1$s', true),
    ('TRUNCATE %2$s', true),
    ('TRUNCATE catalog.audit_log_default', true),
    ('UPDATE catalog.audit_seal SET chain_hash = row_hash WHERE seq = %3$s', true),
    ('DELETE FROM catalog.audit_seal WHERE seq = %3$s', true),
    ('TRUNCATE catalog.audit_seal', true),
    ('UPDATE catalog.audit_chain SET last_id = 0', true),
    ('DELETE FROM catalog.audit_chain', true),
    ('TRUNCATE catalog.audit_chain', true)) AS x(s, su);
GRANT SELECT ON forbidden, victims TO PUBLIC;
SELECT is((SELECT count(*) FROM forbidden), 14::bigint, 'the victim row is sealed and every statement is ready');

SET ROLE catalog_anon;
SELECT is(left(pg_temp.try(stmt), 5), '42501', 'catalog_anon: ' || stmt) FROM forbidden ORDER BY stmt;
RESET ROLE;
SET ROLE catalog_editor;
SELECT is(left(pg_temp.try(stmt), 5), '42501', 'catalog_editor: ' || stmt) FROM forbidden ORDER BY stmt;
RESET ROLE;
SET ROLE catalog_admin;
SELECT is(left(pg_temp.try(stmt), 5), '42501', 'catalog_admin: ' || stmt) FROM forbidden ORDER BY stmt;
RESET ROLE;
SELECT is(pg_temp.try(stmt), '42501 audit rows are append-only', 'superuser (guard trigger): ' || stmt)
FROM forbidden WHERE superuser_too ORDER BY stmt;
SELECT is(left(pg_temp.try('TRUNCATE catalog.product'), 5), '42501',
          'superuser: TRUNCATE catalog.product is refused (it would bypass the audit trigger)');
SELECT is(left(pg_temp.try('TRUNCATE catalog.category CASCADE'), 5), '42501',
          'superuser: TRUNCATE catalog.category is refused');
SET ROLE catalog_audit_owner;
SELECT is(pg_temp.try(format('UPDATE catalog.audit_log SET actor = %L WHERE id = %s', 'forged', aid)), '42501 permission denied for table audit_log',
          'the audit owner itself holds no UPDATE privilege on the audit log') FROM victims;
RESET ROLE;
SELECT throws_ok(format('UPDATE catalog.audit_log SET actor = %L WHERE id = %s', 'forged', aid), '42501',
                 'audit rows are append-only', 'superuser: a direct UPDATE of the sealed row is refused by the guard') FROM victims;
SELECT throws_ok(format('DELETE FROM catalog.audit_log WHERE id = %s', aid), '42501',
                 'audit rows are append-only', 'superuser: a direct DELETE of the sealed row is refused by the guard') FROM victims;

------------------------------------------------------------------------------
-- 14. Retention: old months, partitions, drop of sealed partitions
------------------------------------------------------------------------------
-- A row of an old month, written as the trigger would (row_hash included):
-- pg_temp.old_row of the shared helpers (41 and 42 use them too).
\ir include/audit_encodings.sql
-- The leaf partitions of catalog.audit_log, and the one that holds a row.
CREATE FUNCTION pg_temp.partitions() RETURNS SETOF oid LANGUAGE sql STABLE AS
$$ SELECT relid::oid FROM pg_partition_tree('catalog.audit_log') WHERE isleaf $$;
CREATE FUNCTION pg_temp.holder(aid bigint) RETURNS oid LANGUAGE sql STABLE AS
$$ SELECT tableoid FROM catalog.audit_log WHERE id = aid $$;

-- Leftovers of an earlier run on this database (the harness starts afresh).
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
SELECT catalog_api.audit_drop_partitions('2001-06-01 00:00:00+00') IS NOT NULL AS dropped;

-- The old year, picked at random between 1950 and 1999 so that a rerun on
-- the same database does not bring back a month an earlier run pruned (its
-- retention records stay; 41_audit_tamper.sql keeps out of these years).
SELECT (1950 + floor(random() * 50))::integer AS yr \gset
CREATE TEMP TABLE ret (k text, id bigint, month text);
GRANT SELECT ON ret TO PUBLIC;
BEGIN;
INSERT INTO ret SELECT 'jan', pg_temp.old_row((:yr || t)::timestamptz, 'january ' || n, 'pgtap-retention', 'tap-retention'), :yr || '-01'
FROM (VALUES (1, '-01-01 00:00:00+00'), (2, '-01-15 12:00:00+00'), (3, '-01-31 23:59:59.999999+00')) v(n, t);
COMMIT;
SELECT is((SELECT array_agg(DISTINCT pg_temp.holder(id)::regclass::text) FROM ret), ARRAY['catalog.audit_log_default'],
          'rows of a month without a partition land in the default partition');
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
-- March: written after the seal, so still unsealed at the first drop.
BEGIN;
INSERT INTO ret SELECT 'mar', pg_temp.old_row((:yr || t)::timestamptz, 'march ' || n, 'pgtap-retention', 'tap-retention'), :yr || '-03'
FROM (VALUES (1, '-03-01 00:00:00+00'), (2, '-03-20 08:00:00+00')) v(n, t);
COMMIT;
SET ROLE catalog_audit_owner;
SELECT is(pg_temp.try(format('DELETE FROM catalog.audit_log_default WHERE id = %s', (SELECT min(id) FROM ret))),
          '42501 audit rows are append-only',
          'the audit owner cannot delete from the default partition outside audit_maintain');
RESET ROLE;
CREATE TEMP TABLE ret_copy AS SELECT a.* FROM catalog.audit_log a JOIN ret USING (id);

SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
SELECT is((SELECT count(*) FROM catalog.audit_log_default a JOIN ret USING (id)), 0::bigint,
          'audit_maintain moves the rows out of the default partition');
SELECT is((SELECT count(DISTINCT pg_temp.holder(id)) FROM ret), 2::bigint, 'into one partition per month');
SELECT is((SELECT array_agg(pg_get_expr(c.relpartbound, c.oid) ORDER BY x.m)
           FROM (SELECT DISTINCT month AS m, pg_temp.holder(id) AS p FROM ret) x JOIN pg_class c ON c.oid = x.p),
          (SELECT array_agg(format('FOR VALUES FROM (%L) TO (%L)', (m || '-01')::date::timestamp AT TIME ZONE 'UTC',
                                   ((m || '-01')::date + interval '1 month') AT TIME ZONE 'UTC') ORDER BY m)
           FROM (VALUES (:yr || '-01'), (:yr || '-03')) v(m)),
          'each partition spans exactly its calendar month in UTC');
SELECT results_eq($$SELECT a.* FROM catalog.audit_log a JOIN ret USING (id) ORDER BY id$$,
                  $$SELECT * FROM ret_copy ORDER BY id$$,
                  'the moved rows are unchanged (same id, content and row_hash)');
SELECT is(catalog_api.audit_verify() - 'checked' - 'pruned' - 'unsealed' - 'head',
          '{"ok": true, "first_broken": null}'::jsonb, 'the chain verifies after the move');

CREATE TEMP TABLE parts AS SELECT k, pg_temp.holder(min(id)) AS part, (SELECT relname::text FROM pg_class WHERE oid = pg_temp.holder(min(id))) AS name FROM ret GROUP BY k;
CREATE TEMP TABLE parts_before AS SELECT p FROM pg_temp.partitions() p;
CREATE TEMP TABLE rows_before AS SELECT id, tableoid AS part FROM catalog.audit_log;
SELECT catalog_api.audit_drop_partitions((:yr || '-02-01 00:00:00+00')::timestamptz)::text AS dropped_jan \gset
SELECT is(:'dropped_jan'::jsonb, jsonb_build_object('dropped', jsonb_build_array((SELECT name FROM parts WHERE k = 'jan')), 'kept', '[]'::jsonb),
          'audit_drop_partitions names the partition it drops, and keeps none older');
SELECT set_eq($$SELECT p FROM pg_temp.partitions() p$$,
              $$SELECT p FROM parts_before WHERE p <> (SELECT part FROM parts WHERE k = 'jan')$$,
              'audit_drop_partitions(start of February) drops exactly the January partition');
SELECT set_eq($$SELECT id FROM catalog.audit_log$$,
              $$SELECT id FROM rows_before WHERE part <> (SELECT part FROM parts WHERE k = 'jan')$$,
              'every row of every other partition is still there');
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'the chain verifies after the drop');
SELECT cmp_ok((catalog_api.audit_verify()->>'pruned')::bigint, '>=', 3::bigint,
              'audit_verify counts the dropped rows as pruned');

SELECT catalog_api.audit_drop_partitions((:yr || '-04-01 00:00:00+00')::timestamptz)::text AS kept_mar \gset
SELECT is(:'kept_mar'::jsonb -> 'dropped', '[]'::jsonb, 'a partition with unsealed rows is not dropped');
SELECT is(:'kept_mar'::jsonb #>> '{kept,0,partition}', (SELECT name FROM parts WHERE k = 'mar'), 'it is listed as kept');
SELECT is((:'kept_mar'::jsonb #> '{kept,0}') - 'partition', '{"reason": "unsealed_rows", "unsealed": 2}'::jsonb,
          'with the reason unsealed_rows and the number of its unsealed rows');
SELECT ok((SELECT part FROM parts WHERE k = 'mar') IN (SELECT p FROM pg_temp.partitions() p)
          AND (SELECT count(*) FROM catalog.audit_log a JOIN ret USING (id) WHERE ret.k = 'mar') = 2,
          'a partition with unsealed rows is kept, with its rows');
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT catalog_api.audit_drop_partitions((:yr || '-04-01 00:00:00+00')::timestamptz) IS NOT NULL AS dropped;
SELECT ok((SELECT part FROM parts WHERE k = 'mar') NOT IN (SELECT p FROM pg_temp.partitions() p),
          'once sealed, it is dropped');
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'the chain still verifies');
SELECT is(catalog_api.audit_verify()->>'unsealed', '0', 'and nothing is left unsealed');
-- A pruned seal above a live row of the same key does not end the history:
-- June's row (kept) is written before May's (dropped), so the pruned seals
-- have the higher ids and come first in the walk.
BEGIN;
INSERT INTO ret SELECT 'jun', pg_temp.old_row((:yr || '-06-10 00:00:00+00')::timestamptz, 'june', 'pgtap-retention', 'tap-retention'), :yr || '-06';
INSERT INTO ret SELECT 'may', pg_temp.old_row((:yr || t)::timestamptz, 'may ' || n, 'pgtap-retention', 'tap-retention'), :yr || '-05'
FROM (VALUES (1, '-05-02 00:00:00+00'), (2, '-05-03 00:00:00+00')) v(n, t);
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
SELECT catalog_api.audit_drop_partitions((:yr || '-06-01 00:00:00+00')::timestamptz) IS NOT NULL AS dropped;
SELECT ok(jsonb_array_length(p->'items') = 0 AND jsonb_typeof(p->'next_cursor') = 'number',
          'a page of pruned seals only has no item but a next_cursor (it reads at most page_size + 1 seals)')
FROM (SELECT catalog_api.product_history(0, page_size => 1) AS p) x;
SELECT is((SELECT jsonb_agg(i->'audit_id') FROM jsonb_array_elements(pg_temp.walk('product_history', '0', 1)->'items') i
           WHERE (i->>'audit_id')::bigint IN (SELECT id FROM ret WHERE k IN ('jun', 'may'))),
          jsonb_build_array((SELECT id FROM ret WHERE k = 'jun')),
          'walking the pages past pruned seals of higher ids reaches the live row below them');
SELECT catalog_api.audit_drop_partitions((:yr || '-07-01 00:00:00+00')::timestamptz) IS NOT NULL AS dropped;
-- A partition attached by hand with bounds other than its month's is kept:
-- its drop would chain a prune link that names no month, which verify
-- refuses.
CREATE TABLE catalog.audit_log_p194005 (LIKE catalog.audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE catalog.audit_log ATTACH PARTITION catalog.audit_log_p194005
    FOR VALUES FROM ('1940-05-01 00:00:00+00') TO ('1940-07-01 00:00:00+00');
SELECT is(catalog_api.audit_drop_partitions('1940-08-01 00:00:00+00'),
          '{"dropped": [], "kept": [{"partition": "audit_log_p194005", "reason": "not_a_month"}]}'::jsonb,
          'a partition attached by hand over two months is kept by retention (not_a_month)');
DROP TABLE catalog.audit_log_p194005;
-- A cutoff after the end of the current month does not drop it: its month
-- has not ended (not_ended).  Rolled back: nothing else is to be dropped.
BEGIN;
SELECT ok(catalog_api.audit_drop_partitions((date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months') AT TIME ZONE 'UTC')->'kept'
          @> jsonb_build_array(jsonb_build_object('partition', 'audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM'),
                                                  'reason', 'not_ended')),
          'retention keeps the current month, whose month has not ended, whatever the cutoff (not_ended)');
ROLLBACK;

-- After partitions were created, moved into and dropped, this backend's
-- trigger still writes into the right partition.
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 4, price => 4.5) IS NOT NULL AS updated;
COMMIT;
SELECT is((SELECT tableoid::regclass::text || ' ' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYYMM')
           FROM catalog.audit_log WHERE table_name = 'product' AND row_id = pg_temp.id('psp') ORDER BY id DESC LIMIT 1),
          (SELECT 'catalog.audit_log_p' || m || ' ' || m FROM (SELECT to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYYMM') AS m
           FROM catalog.audit_log WHERE table_name = 'product' AND row_id = pg_temp.id('psp')) x),
          'after the partition changes, a write still lands in its month''s partition');
SELECT is_empty($$SELECT id FROM catalog.audit_log a WHERE row_hash IS DISTINCT FROM catalog.audit_row_hash(a)$$,
                'every audit row''s row_hash is catalog.audit_row_hash of its content');

-- audit_seal() in the transaction that wrote: its snapshot shows the
-- transaction's own rows, which are not committed; they wait for a pass
-- after the commit, like the rows of any transaction in progress (they were
-- sealed at once, chained ahead of rows that committed before them).
BEGIN;
SET LOCAL catalog.actor = 'pgtap-audit';
SELECT catalog_api.update_product(id => pg_temp.id('psp'), expected_version => 5, price => 5.5) IS NOT NULL AS updated;
SELECT max(id) AS own_audit FROM catalog.audit_log WHERE txid = pg_current_xact_id() \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT is((SELECT count(*) FROM catalog.audit_seal WHERE audit_id = :own_audit), 0::bigint,
          'audit_seal() leaves the calling transaction''s own audit rows unsealed');
SELECT ok((SELECT pg_current_xact_id() = ANY (pending) FROM catalog.audit_chain),
          'and records the calling transaction as pending');
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT is((SELECT count(*) FROM catalog.audit_seal WHERE audit_id = :own_audit), 1::bigint,
          'after the commit, the next pass seals them');
SELECT is(catalog_api.audit_verify() ->> 'ok', 'true', 'and the chain verifies');

-- audit_row_hash of a row whose NOT NULL column is NULL: 22004, not XX000
SELECT throws_ok($$SELECT catalog.audit_row_hash(row(1, now(), now(), '1'::xid8, NULL, 'r', 'v', 'q', 't', 1, 'a',
                                                     NULL, NULL, '\x00')::catalog.audit_log)$$,
                 '22004', 'audit row has a NULL actor', 'audit_row_hash of a row with a NULL actor fails with 22004');

-- A month that starts exactly at the newest partition's upper bound is not
-- covered by it: one month further ahead creates exactly that month.
SELECT catalog_api.audit_maintain(months_ahead => 3) IS NOT NULL AS maintained;
SELECT is(catalog_api.audit_maintain(months_ahead => 4) -> 'created',
          jsonb_build_array('audit_log_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '4 months', 'YYYYMM')),
          'audit_maintain one month further ahead creates exactly the month after the newest partition');

SELECT * FROM finish();
