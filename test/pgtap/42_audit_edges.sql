-- 42_audit_edges: edges of the audit trigger and of the hash chain that
-- 40_audit and 41_audit_tamper left open (found by mutation testing of
-- src/audit.c and src/audit_chain.c: each check fails on a build with the
-- flaw it names).  Every case that breaks something (a partition swapped,
-- a row forged or deleted, a column changed) does it inside a transaction
-- that is rolled back; what it observed is kept in psql variables and
-- asserted after the ROLLBACK (which would otherwise take pgTAP's record
-- of the assertion along).  A kept value is never NULL (coalesce): \gset
-- leaves a variable unset for a NULL, and the assertion would not run.  What the cases commit (a few categories and
-- products, their audit rows and seals, partitions of months in the 1840s
-- to 1870s dropped by retention) leaves a chain that verifies.
SET client_min_messages = warning;
SELECT plan(38);

-- the value of a query, or "SQLSTATE: message" of its error
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; st text; msg text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, 'ok');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || msg;
END $$;
-- a slug no other file uses
CREATE FUNCTION pg_temp.slug(p text) RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT p || '-' || translate(md5(random()::text), '0123456789', 'ghijklmnop') $$;
-- the audit's encodings, forge_prune (a prune link with every hash right)
-- and old_row (an audit row written by hand), shared with 41_audit_tamper
\ir include/audit_encodings.sql

SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained \gset
SELECT 'audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM') AS part \gset

------------------------------------------------------------------------------
-- 1. Arguments of audit_verify, and a pass without the bookkeeping row
------------------------------------------------------------------------------
SELECT is(catalog_api.audit_verify(anchor_seq => 0, anchor_hash => repeat('0', 64))->>'ok', 'true',
          'the anchor of the empty chain (seq 0, 64 zeros) holds');
SELECT is(catalog_api.audit_verify(anchor_seq => 0, anchor_hash => repeat('ab', 32))->'first_broken',
          '{"seq": 0, "audit_id": null, "reason": "anchor_mismatch"}'::jsonb,
          'an anchor at seq 0 with any other hash is an anchor_mismatch at seq 0');
SELECT throws_ok($$SELECT catalog_api.audit_verify(anchor_seq => 0, anchor_hash => repeat('0', 65))$$,
                 '22023', NULL, 'an anchor hash of 65 hex digits is refused (exactly 64)');
SELECT throws_ok($$SELECT catalog_api.audit_verify(anchor_seq => 0, anchor_hash => repeat('0', 64) || 'zz')$$,
                 '22023', NULL, 'an anchor hash with trailing characters is refused');
SELECT throws_ok($$SELECT catalog_api.audit_verify(anchor_seq => -1, anchor_hash => repeat('0', 64))$$,
                 '22023', NULL, 'a negative anchor seq is refused');
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM catalog.audit_chain;
SET LOCAL session_replication_role = origin;
SELECT pg_temp.try('SELECT catalog_api.audit_seal()::text') AS no_book \gset
ROLLBACK;
SELECT is(:'no_book'::text, '55000: the bookkeeping row of catalog.audit_chain is missing',
          'audit_seal without the bookkeeping row fails with 55000 (and does not crash)');

-- Restored as the error's hint says, the row starts at last_id 0, below
-- ids that are sealed already: a pass seals nothing twice.
SELECT set_config('catalog.actor', 'tap-rebook', false) IS NOT NULL AS a \gset
SELECT catalog_api.create_category(name => 'Rebook', slug => pg_temp.slug('rebook')) IS NOT NULL AS created \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT count(*) AS nseals FROM catalog.audit_seal \gset
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM catalog.audit_chain;
INSERT INTO catalog.audit_chain DEFAULT VALUES;
SET LOCAL session_replication_role = origin;
SELECT pg_temp.try('SELECT NULL::text FROM catalog_api.audit_seal()') AS rebook_pass,
       (SELECT count(*) FROM catalog.audit_seal) AS rebook_seals \gset
SELECT coalesce(catalog_api.audit_verify()->>'ok', 'none') AS rebook_ok \gset
ROLLBACK;
SELECT is(:'rebook_pass'::text, 'ok', 'a pass after the bookkeeping row was restored runs');
SELECT is(:'rebook_seals'::bigint, :'nseals'::bigint, 'and seals no row a second time');
SELECT is(:'rebook_ok'::text, 'true', 'and the chain verifies');

------------------------------------------------------------------------------
-- 2. Where the trigger writes: partition bounds, triggers, constraints,
--    generated columns; TRUNCATE of an audited table
------------------------------------------------------------------------------
-- a table named for this month but attached with the bounds of another month
BEGIN;
ALTER TABLE catalog.audit_log DETACH PARTITION catalog.:part;
ALTER TABLE catalog.:part RENAME TO tap_edges_old_part;
CREATE TABLE catalog.:part (LIKE catalog.audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE catalog.audit_log ATTACH PARTITION catalog.:part
    FOR VALUES FROM ('1890-03-01 00:00:00+00') TO ('1890-04-01 00:00:00+00');
SET LOCAL catalog.actor = 'tap-bounds';
SELECT (catalog_api.create_category(name => 'Bounds', slug => pg_temp.slug('bounds'))->>'id')::bigint AS bcat \gset
SELECT coalesce((SELECT tableoid::regclass::text FROM catalog.audit_log WHERE table_name = 'category' AND row_id = :bcat), 'none') AS bounds_part,
       (SELECT count(*) FROM catalog.audit_log WHERE table_name = 'category' AND row_id = :bcat
           AND occurred_at >= now() - interval '1 hour') AS bounds_found \gset
ROLLBACK;
SELECT is(:'bounds_part'::text, 'catalog.audit_log_default',
          'a table named for this month but attached with another month''s bounds does not get this month''s row');
SELECT is(:'bounds_found'::bigint, 1::bigint, 'the row is found by its time (partition pruning)');

-- an insert trigger on this month's partition: the row takes the ordinary path, which fires it
BEGIN;
CREATE TEMP TABLE fired (n int);
GRANT INSERT ON fired TO PUBLIC;
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO fired VALUES (1); RETURN NEW; END $$;
CREATE TRIGGER tap_edges_note BEFORE INSERT ON catalog.:part FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
SET LOCAL catalog.actor = 'tap-trig';
SELECT catalog_api.create_category(name => 'Trig', slug => pg_temp.slug('trig')) IS NOT NULL AS created \gset
SELECT count(*) AS fired FROM fired \gset
ROLLBACK;
SELECT is(:'fired'::bigint, 1::bigint, 'an insert trigger of the month''s partition fires for the audit row');

-- a CHECK constraint added to the audit log holds for the trigger's direct insert
BEGIN;
SET LOCAL catalog.allow_table_changes = on;
ALTER TABLE catalog.audit_log ADD CONSTRAINT tap_edges_actor_check CHECK (actor <> 'tap-check-refused');
SET LOCAL catalog.actor = 'tap-check-refused';
SELECT pg_temp.try(format($$SELECT NULL::text FROM catalog_api.create_category(name => 'Chk', slug => %L)$$, pg_temp.slug('chk'))) AS chk_refused \gset
SET LOCAL catalog.actor = 'tap-check-ok';
SELECT pg_temp.try(format($$SELECT NULL::text FROM catalog_api.create_category(name => 'Chk', slug => %L)$$, pg_temp.slug('chk'))) AS chk_ok \gset
ROLLBACK;
SELECT is(left(:'chk_refused'::text, 5), '23514', 'a CHECK constraint added to the audit log refuses the trigger''s row');
SELECT is(:'chk_ok'::text, 'ok', 'and a row it accepts is written');

-- an audit column turned into a generated one is not written around
BEGIN;
SET LOCAL catalog.allow_table_changes = on;
ALTER TABLE catalog.audit_log DROP COLUMN via;
ALTER TABLE catalog.audit_log ADD COLUMN via text GENERATED ALWAYS AS ('generated') STORED;
SET LOCAL catalog.actor = 'tap-gen';
SELECT pg_temp.try(format($$SELECT NULL::text FROM catalog_api.create_category(name => 'Gen', slug => %L)$$, pg_temp.slug('gen'))) AS gen \gset
ROLLBACK;
SELECT is(left(:'gen'::text, 5), '428C9', 'an audit column made generated: the ordinary path refuses the value (428C9)');

SELECT throws_ok('TRUNCATE catalog.category CASCADE', '42501', 'TRUNCATE of audited table "catalog.category" is not allowed',
                 'TRUNCATE of category is refused as a TRUNCATE of an audited table');
SELECT throws_ok('TRUNCATE catalog.product', '42501', 'TRUNCATE of audited table "catalog.product" is not allowed',
                 'TRUNCATE of product likewise');

------------------------------------------------------------------------------
-- 3. An update of an out-of-line (TOASTed) description to another one
------------------------------------------------------------------------------
-- letters only (digit runs could be masked as phone numbers); about 4,900
-- characters that do not compress below the TOAST threshold
CREATE FUNCTION pg_temp.big() RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT string_agg(translate(md5(random()::text), '0123456789', 'ghijklmnop'), ' ') FROM generate_series(1, 148) $$;
BEGIN;
SET LOCAL catalog.actor = 'tap-toast';
SELECT reltoastrelid::regclass AS toastrel FROM pg_class WHERE oid = 'catalog.product'::regclass \gset
SELECT (catalog_api.create_category(name => 'Toast', slug => pg_temp.slug('toast'))->>'id')::bigint AS tcat \gset
SELECT count(*) AS chunks0 FROM :toastrel \gset
SELECT (catalog_api.create_product(sku => 'TOAST-' || upper(translate(substr(md5(random()::text), 1, 8), '0123456789', 'ghijklmnop')),
        name => 'Toast', price => 1, category_id => :tcat, description => pg_temp.big())->>'id')::bigint AS tpid \gset
SELECT (SELECT count(*) FROM :toastrel) > :chunks0 AS toasted \gset
UPDATE catalog.product SET description = pg_temp.big() WHERE id = :tpid;
SELECT coalesce((SELECT new_values->>'description' FROM catalog.audit_log
                 WHERE table_name = 'product' AND row_id = :tpid AND action = 'update' ORDER BY id DESC LIMIT 1), 'none')
       = (SELECT description FROM catalog.product WHERE id = :tpid) AS toast_recorded \gset
ROLLBACK;
SELECT ok(:'toasted'::boolean, 'fixture: the description is stored out of line');
SELECT ok(:'toast_recorded'::boolean,
          'an update of an out-of-line description to another out-of-line one records the new description');

------------------------------------------------------------------------------
-- 4. Forged rows next to a pending transaction's
------------------------------------------------------------------------------
-- a row keyed like a prune link (id below 1), with a pending transaction's txid
BEGIN;
SET LOCAL catalog.actor = 'tap-negid';
SELECT catalog_api.create_category(name => 'Negid', slug => pg_temp.slug('negid')) IS NOT NULL AS created \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT coalesce((SELECT pg_current_xact_id() = ANY (pending) FROM catalog.audit_chain), false) AS negid_pending \gset
SET LOCAL session_replication_role = replica;
INSERT INTO catalog.audit_log
SELECT -1, occurred_at, xact_at, txid, actor, role_name, via, request_id, table_name, row_id, action, old_values, new_values, row_hash
FROM catalog.audit_log WHERE txid = pg_current_xact_id() ORDER BY id LIMIT 1;
SELECT coalesce(catalog_api.audit_verify()->'first_broken', 'null') AS negid \gset
ROLLBACK;
SELECT ok(:'negid_pending'::boolean, 'fixture: the writing transaction is pending');
SELECT is(:'negid'::jsonb, '{"seq": null, "audit_id": -1, "reason": "unsealed_in_sealed_range"}'::jsonb,
          'a row with an id below 1 is forged even when its txid is a pending transaction''s');

-- a second row with a sealed id, carrying a pending transaction's txid
SELECT set_config('catalog.actor', 'tap-dup', false) IS NOT NULL AS a \gset
SELECT catalog_api.create_category(name => 'Dup', slug => pg_temp.slug('dup')) IS NOT NULL AS created \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT max(audit_id) AS victim FROM catalog.audit_seal \gset
BEGIN;
SELECT catalog_api.create_category(name => 'Dup b', slug => pg_temp.slug('dup')) IS NOT NULL AS created \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT coalesce((SELECT pg_current_xact_id() = ANY (pending) FROM catalog.audit_chain), false) AS dup_pending \gset
SET LOCAL session_replication_role = replica;
INSERT INTO catalog.audit_log
SELECT id, occurred_at + interval '1 month', xact_at, pg_current_xact_id(), actor, role_name, via, request_id,
       table_name, row_id, action, old_values, new_values, row_hash
FROM catalog.audit_log WHERE id = :victim;
SELECT coalesce(catalog_api.audit_verify()->'first_broken', 'null') AS dup \gset
ROLLBACK;
SELECT ok(:'dup_pending'::boolean, 'fixture: the writing transaction is pending');
SELECT is((:'dup'::jsonb)->>'audit_id' || ' ' || ((:'dup'::jsonb)->>'reason'), :victim || ' unsealed_in_sealed_range',
          'a second row with a sealed id is found even when its txid is a pending transaction''s');

-- a broken chain still reports how many rows are unsealed
SELECT set_config('catalog.actor', 'tap-unsealed', false) IS NOT NULL AS a \gset
SELECT (catalog_api.create_category(name => 'Uns', slug => pg_temp.slug('uns'))->>'id')::bigint AS ucat \gset
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT id AS uvictim FROM catalog.audit_log WHERE table_name = 'category' AND row_id = :ucat \gset
BEGIN;
SELECT catalog_api.create_category(name => 'Uns b', slug => pg_temp.slug('uns')) IS NOT NULL AS created \gset
SET LOCAL session_replication_role = replica;
UPDATE catalog.audit_log SET actor = 'forged' WHERE id = :uvictim;
SELECT catalog_api.audit_verify() AS uns \gset
SELECT count(*) AS uns_sql FROM catalog.audit_log a WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id) \gset
ROLLBACK;
SELECT is((:'uns'::jsonb)->'first_broken'->>'reason', 'row_modified', 'the tampered row is the first broken link');
SELECT is(((:'uns'::jsonb)->>'unsealed')::bigint, :'uns_sql'::bigint, 'a broken chain still reports how many rows are unsealed');
SELECT ok(((:'uns'::jsonb)->>'unsealed')::bigint >= 1, 'and that count includes the row written after the pass');
RESET catalog.actor;

------------------------------------------------------------------------------
-- 5. Prune links: which rows a month's link covers, and forged links
------------------------------------------------------------------------------
-- A row at the first microsecond of the next month is not in the month.
-- Two adjacent months of their own, at random in 1840-1859 (no other file
-- uses those years).
SELECT (1840 + floor(random() * 20))::integer AS yr, (1 + floor(random() * 11))::integer AS mo \gset
SELECT make_timestamptz(:yr, :mo, 10, 12, 0, 0, 'UTC') AS at,
       make_timestamptz(:yr, :mo, 1, 0, 0, 0, 'UTC') + interval '1 month' AS next_start \gset
BEGIN;
SELECT pg_temp.old_row(:'at', 'in the month', 'tap-edge', 'tap-edge') AS inside \gset
SELECT pg_temp.old_row(:'next_start', 'next month', 'tap-edge', 'tap-edge') AS edge \gset
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT seq AS edge_seq FROM catalog.audit_seal WHERE audit_id = :edge \gset
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained \gset
SELECT is(catalog_api.audit_drop_partitions(:'next_start')->'dropped',
          to_jsonb(ARRAY['audit_log_p' || to_char(:'at'::timestamptz AT TIME ZONE 'UTC', 'YYYYMM')]),
          'fixture: retention dropped the month only');
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'fixture: the chain verifies after the retention');
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM catalog.audit_log WHERE id = :edge;
SELECT coalesce(catalog_api.audit_verify()->'first_broken', 'null') AS edge_broken \gset
ROLLBACK;
SELECT is(:'edge_broken'::jsonb, jsonb_build_object('seq', :edge_seq, 'audit_id', :edge, 'reason', 'missing_row'),
          'a row at the first instant of the next month is not covered by the month''s prune link');

-- A row of a dropped month sealed after its prune link is not covered by
-- it.  A month of its own, at random in 1860-1879.
SELECT (1860 + floor(random() * 20))::integer AS yr2, (1 + floor(random() * 12))::integer AS mo2 \gset
SELECT make_timestamptz(:yr2, :mo2, 10, 12, 0, 0, 'UTC') AS at2,
       make_timestamptz(:yr2, :mo2, 1, 0, 0, 0, 'UTC') + interval '2 months' AS cutoff2 \gset
BEGIN;
SELECT pg_temp.old_row(:'at2', 'early', 'tap-late', 'tap-late') AS early \gset
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained \gset
SELECT ok(catalog_api.audit_drop_partitions(:'cutoff2')->'dropped'
          @> to_jsonb(ARRAY['audit_log_p' || to_char(:'at2'::timestamptz AT TIME ZONE 'UTC', 'YYYYMM')]),
          'fixture: the month was dropped by retention');
BEGIN;
SELECT pg_temp.old_row(:'at2', 'late', 'tap-late', 'tap-late') AS late \gset
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT seq AS late_seq FROM catalog.audit_seal WHERE audit_id = :late \gset
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'fixture: the chain verifies with the late row');
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM catalog.audit_log WHERE id = :late;
SELECT coalesce(catalog_api.audit_verify()->'first_broken', 'null') AS late_broken \gset
ROLLBACK;
SELECT is(:'late_broken'::jsonb, jsonb_build_object('seq', :late_seq, 'audit_id', :late, 'reason', 'missing_row'),
          'a row sealed after the prune link of its month is not covered by it: deleted, it is missing_row');
-- The late row waits in the default partition: maintenance moves it into a
-- partition of its month again, and retention drops that one too, so that
-- no month before 2000 is left for the files after this one (the Perl
-- tests run on this database too, and count its partitions).
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained \gset
SELECT catalog_api.audit_drop_partitions(:'cutoff2') IS NOT NULL AS dropped \gset
SELECT is((SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'catalog.audit_log'::regclass AND c.relname ~ '^audit_log_p1[0-9]{5}$')
          + (SELECT count(*) FROM catalog.audit_log_default WHERE occurred_at < '2000-01-01 00:00:00+00'),
          0::bigint, 'no partition and no row of a month before 2000 is left behind');

-- a prune link right in every way but its audit_id, which is not -seq
BEGIN;
SET LOCAL session_replication_role = replica;
SELECT pg_temp.forge_prune('1830-01-01 00:00:00+00', '1830-02-01 00:00:00+00', aid_shift => 1000) IS NULL AS forged \gset
SELECT max(seq) AS link_seq FROM catalog.audit_seal \gset
SELECT coalesce(catalog_api.audit_verify()->'first_broken', 'null') AS pruneid \gset
ROLLBACK;
SELECT is(:'pruneid'::jsonb, jsonb_build_object('seq', :link_seq, 'audit_id', NULL, 'reason', 'invalid_prune'),
          'a prune link whose audit_id is not -seq is invalid_prune');

-- this month's partition dropped by hand, and a prune link for it stamped
-- after the month's end: in the future, which no retention can have written
SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS ms,
       (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' AS me \gset
SELECT set_config('catalog.actor', 'tap-future', false) IS NOT NULL AS a \gset
SELECT (catalog_api.create_category(name => 'Future', slug => pg_temp.slug('future'))->>'id')::bigint AS fcat \gset
RESET catalog.actor;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed \gset
SELECT tableoid::regclass AS fpart FROM catalog.audit_log WHERE table_name = 'category' AND row_id = :fcat \gset
SELECT is(:'fpart'::text, 'catalog.' || :'part', 'fixture: the row is in this month''s partition');
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'fixture: the chain verifies before the forgery');
BEGIN;
SET LOCAL session_replication_role = replica;
DROP TABLE :fpart;
SELECT pg_temp.forge_prune(:'ms', :'me', stamp => :'me'::timestamptz + interval '1 day') IS NULL AS forged \gset
SELECT coalesce(catalog_api.audit_verify()->'first_broken'->>'reason', 'none') AS future \gset
ROLLBACK;
SELECT is(:'future'::text, 'missing_row',
          'a prune link stamped in the future is not valid: the month''s rows are missing, not pruned');

SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'the chain verifies after every case');

SELECT * FROM finish();
