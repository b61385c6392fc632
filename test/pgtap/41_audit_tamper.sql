-- pgTAP: the audit hash chain (src/audit_chain.c) detects tampering.
--
-- A chain is built (writes through the API, one of them rolled back so
-- that the audit ids have a gap, a row of a month without partition, then
-- catalog_api.audit_seal()), and recomputed here in SQL from the encodings
-- written in src/audit.h, so both catalog.audit_row_hash and the chain
-- hashes are checked against the documented bytes.  Then, as a superuser
-- with session_replication_role = replica (which silences the append-only
-- guard, as an attacker with superuser access could), each attack runs in
-- its own savepoint:
--   a sealed row modified, modified with its row_hash recomputed, or only
--   its row_hash changed; deleted; two rows' contents swapped; a forged row
--   in a gap of the sealed range; a second row with a sealed id; a seal's
--   chain_hash, row_hash or copied lookup key changed; a seal row deleted
--   in the middle; the last seal row deleted (without an anchor, and
--   against one); a row and every later hash rewritten consistently (only
--   an anchor tells); the sealed row of a month without partition deleted
--   from the default partition; this month's partition dropped by hand.
-- audit_verify() must answer ok = false and name the first broken link
-- (seq, audit_id, reason), and after each rollback it passes again.  The
-- verify answers are captured with \gset inside the savepoint and asserted
-- after the rollback.
SET client_min_messages = warning;
SELECT plan(75);

SELECT translate(substr(md5(random()::text || clock_timestamp()::text), 1, 10),
                 '0123456789', 'ghijklmnop') AS sfx \gset

------------------------------------------------------------------------------
-- The documented encodings (src/audit.h), in SQL, and the forgeries
------------------------------------------------------------------------------
\ir include/audit_encodings.sql

------------------------------------------------------------------------------
-- The chain
------------------------------------------------------------------------------
-- This month's partition (the worker's job in a deployment).
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
CREATE TEMP TABLE fx (k text PRIMARY KEY, id bigint NOT NULL);
BEGIN;
SET LOCAL catalog.actor = 'pgtap-tamper';
INSERT INTO fx VALUES ('cat', (catalog_api.create_category(name => 'Tap Tamper', slug => 'tap-tamper-' || :'sfx')->>'id')::bigint);
INSERT INTO fx VALUES ('p1', ((catalog_api.create_product(sku => 'TAP-TA1-' || upper(:'sfx'), name => 'Tamper one', price => 1,
    category_id => (SELECT id FROM fx WHERE k = 'cat')))->>'id')::bigint);
INSERT INTO fx VALUES ('p2', ((catalog_api.create_product(sku => 'TAP-TA2-' || upper(:'sfx'), name => 'Tamper two', price => 2,
    category_id => (SELECT id FROM fx WHERE k = 'cat'), attributes => '{"colour": "green"}'))->>'id')::bigint);
COMMIT;
-- A rolled-back write: its audit id is never used, a gap in the sealed range.
BEGIN;
SET LOCAL catalog.actor = 'pgtap-tamper';
SELECT catalog_api.update_product(id => (SELECT id FROM fx WHERE k = 'p1'), expected_version => 1, price => 50) IS NOT NULL AS updated;
SELECT max(id) AS gap_id FROM catalog.audit_log \gset
ROLLBACK;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-tamper-2';
SELECT catalog_api.update_product(id => (SELECT id FROM fx WHERE k = 'p1'), expected_version => 1, price => 1.5) IS NOT NULL AS updated;
SELECT catalog_api.update_product(id => (SELECT id FROM fx WHERE k = 'p2'), expected_version => 1, name => 'Tamper two b') IS NOT NULL AS updated;
COMMIT;
BEGIN;
SET LOCAL catalog.actor = 'pgtap-tamper';
SELECT catalog_api.archive_product(id => (SELECT id FROM fx WHERE k = 'p2'), expected_version => 2) IS NOT NULL AS archived;
COMMIT;
-- A row of a month without a partition (a month of its own, picked at
-- random in 1900-1949 so that a rerun does not share it, and never a month
-- of 40_audit.sql's retention, 1950-1999, nor attack 16's forged 1890-01),
-- written as the trigger would: it waits in the default partition.
BEGIN;
SELECT pg_temp.old_row(timestamptz '1900-01-15 12:00:00+00' + make_interval(months => floor(random() * 600)::integer)) AS old_id \gset
-- its twin, a second row of the same month (section 17)
SELECT pg_temp.old_row(occurred_at + interval '1 second') AS twin_id FROM catalog.audit_log WHERE id = :old_id \gset
COMMIT;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT seq AS old_seq FROM catalog.audit_seal WHERE audit_id = :old_id \gset

-- Victims: the insert of p1 (v1) and the update of p2 (v2); the last seal.
SELECT s.seq AS v1_seq, a.id AS v1_id FROM catalog.audit_log a JOIN catalog.audit_seal s ON s.audit_id = a.id
WHERE a.table_name = 'product' AND a.row_id = (SELECT id FROM fx WHERE k = 'p1') AND a.action = 'insert' \gset
SELECT s.seq AS v2_seq, a.id AS v2_id FROM catalog.audit_log a JOIN catalog.audit_seal s ON s.audit_id = a.id
WHERE a.table_name = 'product' AND a.row_id = (SELECT id FROM fx WHERE k = 'p2') AND a.action = 'update'
ORDER BY a.id LIMIT 1 \gset
SELECT max(seq) AS head_seq FROM catalog.audit_seal \gset
SELECT audit_id AS head_id FROM catalog.audit_seal WHERE seq = :head_seq \gset
SELECT catalog_api.audit_head()::text AS anchor \gset
-- rows an earlier file's retention pruned (the count is over the whole chain)
SELECT catalog_api.audit_verify()->>'pruned' AS base_pruned \gset

SELECT ok(:v1_seq < :v2_seq AND :v2_seq < :head_seq AND :gap_id > :v1_id AND :gap_id < :v2_id,
          'the chain: v1 before the gap before v2 before the head');
SELECT is((SELECT tableoid::regclass::text FROM catalog.audit_log WHERE id = :old_id), 'catalog.audit_log_default',
          'the row of a month without partition is sealed in the default partition');
SELECT is((SELECT count(*) FROM catalog.audit_seal s JOIN catalog.audit_log a ON a.id = s.audit_id
           WHERE a.table_name = 'product' AND a.row_id IN (SELECT id FROM fx WHERE k LIKE 'p%')), 5::bigint,
          'the five product rows (two inserts, two updates, an archive) are sealed');
SELECT is_empty($$SELECT a.id FROM catalog.audit_log a WHERE a.row_hash IS DISTINCT FROM pg_temp.row_hash(a)$$,
                'every audit row_hash equals SHA-256 over the documented encoding (src/audit.h)');
SELECT is_empty($$SELECT s.seq FROM catalog.audit_seal s JOIN catalog.audit_log a ON a.id = s.audit_id
                  WHERE s.row_hash <> a.row_hash OR s.occurred_at <> a.occurred_at
                     OR (s.table_name, s.row_id, s.actor, s.request_id)
                        IS DISTINCT FROM (a.table_name, a.row_id, a.actor, a.request_id)$$,
                'each seal carries the row_hash, occurred_at and lookup keys (table, row, actor, correlation id) of its row');
SELECT is_empty($$SELECT * FROM pg_temp.chain_breaks()$$,
                'every chain_hash equals SHA-256 over the documented chain encoding, from seq 1 to the head');
SELECT results_eq($$SELECT min(seq), max(seq), count(*) FROM catalog.audit_seal$$,
                  $$SELECT 1::bigint, max(seq), max(seq) FROM catalog.audit_seal$$,
                  'seqs run from 1 without a gap');
SELECT is((:'anchor'::jsonb)->>'seq', :'head_seq', 'audit_head names the last seq');
SELECT is((:'anchor'::jsonb)->>'hash', (SELECT encode(chain_hash, 'hex') FROM catalog.audit_seal WHERE seq = :head_seq),
          'audit_head names its chain hash (hex)');
SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'the intact chain verifies');
SELECT is(catalog_api.audit_verify()->'first_broken', 'null'::jsonb, 'the intact chain has no first broken link');
SELECT is(catalog_api.audit_verify(anchor_seq => (:'anchor'::jsonb->>'seq')::bigint, anchor_hash => :'anchor'::jsonb->>'hash')->>'ok', 'true',
          'the intact chain verifies against its anchor');

-- A pass in a transaction that wrote no audit row: its own transaction id
-- (given by the chain's lock) is not recorded as pending; it was, and a row
-- forged with an old id and that txid passed verify (attack 6b).
BEGIN;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
SELECT pg_current_xact_id() AS pass_xid \gset
COMMIT;
SELECT ok(NOT (SELECT :'pass_xid'::xid8 = ANY (pending) FROM catalog.audit_chain),
          'a sealing pass that wrote no audit row does not record its own transaction as pending');
-- The same in a savepoint: the lock gives the subtransaction an id of its
-- own, which is no pending transaction either (audit rows carry the
-- top-level id).  The savepoint's id is the xmin of a row it writes.
CREATE TEMP TABLE subx (n int);
BEGIN;
SAVEPOINT sealsp;
SELECT catalog_api.audit_seal() IS NOT NULL AS sealed;
INSERT INTO subx VALUES (1);
SELECT xmin::text AS sub_xid FROM subx \gset
COMMIT;
SELECT ok(NOT EXISTS (SELECT 1 FROM catalog.audit_chain, unnest(pending) x
                      WHERE x::text::numeric % 4294967296 = :'sub_xid'::numeric),
          'a sealing pass in a savepoint does not record the savepoint''s transaction id as pending');

------------------------------------------------------------------------------
-- Attacks
------------------------------------------------------------------------------
-- The seal after a given audit id (where verify places an unsealed row).
SELECT min(seq) AS gap_next_seq FROM catalog.audit_seal WHERE audit_id > :gap_id \gset
SELECT min(seq) AS v1_next_seq FROM catalog.audit_seal WHERE audit_id > :v1_id \gset
SELECT audit_id AS v1_after_id FROM catalog.audit_seal WHERE seq = :v1_seq + 1 \gset
BEGIN;
SET LOCAL session_replication_role = replica;

-- 1. a sealed row's content changed
SAVEPOINT attack;
UPDATE catalog.audit_log SET new_values = new_values || '{"price": 0.01}' WHERE id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_modify \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_modify_after \gset

-- 2. changed, and its row_hash recomputed to match
SAVEPOINT attack;
UPDATE catalog.audit_log SET new_values = new_values || '{"price": 0.01}' WHERE id = :v1_id;
UPDATE catalog.audit_log a SET row_hash = catalog.audit_row_hash(a) WHERE id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_rehash \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_rehash_after \gset

-- 3. only its stored row_hash changed
SAVEPOINT attack;
UPDATE catalog.audit_log SET row_hash = sha256('forged') WHERE id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_rowhash \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_rowhash_after \gset

-- 4. deleted
SAVEPOINT attack;
DELETE FROM catalog.audit_log WHERE id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_delete \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_delete_after \gset

-- 5. two rows' contents swapped (everything but the key)
SAVEPOINT attack;
UPDATE catalog.audit_log a
   SET (xact_at, txid, actor, role_name, via, request_id, table_name, row_id, action, old_values, new_values, row_hash) =
       (SELECT b.xact_at, b.txid, b.actor, b.role_name, b.via, b.request_id, b.table_name, b.row_id, b.action,
               b.old_values, b.new_values, b.row_hash
        FROM catalog.audit_log b WHERE b.id = CASE WHEN a.id = :v1_id THEN :v2_id ELSE :v1_id END)
 WHERE a.id IN (:v1_id, :v2_id);
SELECT catalog_api.audit_verify()::text AS r_swap \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_swap_after \gset

-- 6. a forged row in the gap, with a correct row_hash and the txid of a
-- committed, sealed transaction
SAVEPOINT attack;
INSERT INTO catalog.audit_log
SELECT :gap_id, a.occurred_at, a.xact_at, a.txid, a.actor, a.role_name, a.via, a.request_id, a.table_name, a.row_id,
       'update', '{"price": 1.00}', '{"price": 0.01}', '\x00'
FROM catalog.audit_log a WHERE a.id = :v1_id;
UPDATE catalog.audit_log a SET row_hash = catalog.audit_row_hash(a) WHERE id = :gap_id;
SELECT catalog_api.audit_verify()::text AS r_forge \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_forge_after \gset

-- 6b. the same with the txid of the last sealing pass, which wrote no audit
-- row: no pending transaction, so the row is forged in the sealed range
SAVEPOINT attack;
INSERT INTO catalog.audit_log
SELECT :gap_id, a.occurred_at, a.xact_at, :'pass_xid'::xid8, a.actor, a.role_name, a.via, a.request_id, a.table_name,
       a.row_id, 'update', '{"price": 1.00}', '{"price": 0.01}', '\x00'
FROM catalog.audit_log a WHERE a.id = :v1_id;
UPDATE catalog.audit_log a SET row_hash = catalog.audit_row_hash(a) WHERE id = :gap_id;
SELECT catalog_api.audit_verify()::text AS r_forge_pass \gset
ROLLBACK TO SAVEPOINT attack;

-- 7. a second row with a sealed id (the key is (id, occurred_at); a month
-- later, so in another partition)
SAVEPOINT attack;
INSERT INTO catalog.audit_log
SELECT a.id, a.occurred_at + interval '1 month', a.xact_at, a.txid, a.actor, a.role_name, a.via, a.request_id,
       a.table_name, a.row_id, a.action, a.old_values, a.new_values, a.row_hash
FROM catalog.audit_log a WHERE a.id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_dup \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_dup_after \gset

-- 8. a seal's chain_hash changed
SAVEPOINT attack;
UPDATE catalog.audit_seal SET chain_hash = sha256('forged') WHERE seq = :v1_seq;
SELECT catalog_api.audit_verify()::text AS r_chain \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_chain_after \gset

-- 9. a seal's row_hash changed
SAVEPOINT attack;
UPDATE catalog.audit_seal SET row_hash = sha256('forged') WHERE seq = :v1_seq;
SELECT catalog_api.audit_verify()::text AS r_sealhash \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_sealhash_after \gset

-- 9b. a seal's copy of a lookup key changed (the row's history would
-- show another actor's write)
SAVEPOINT attack;
UPDATE catalog.audit_seal SET actor = actor || '-forged' WHERE seq = :v1_seq;
SELECT catalog_api.audit_verify()::text AS r_lookup \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_lookup_after \gset

-- 10. a seal row in the middle deleted
SAVEPOINT attack;
DELETE FROM catalog.audit_seal WHERE seq = :v1_seq;
SELECT catalog_api.audit_verify()::text AS r_gap \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_gap_after \gset

-- 11. the last seal row deleted: its row is left unsealed below the
-- sealer's mark, and an exported anchor knows the chain was longer
SAVEPOINT attack;
DELETE FROM catalog.audit_seal WHERE seq = :head_seq;
SELECT catalog_api.audit_verify()::text AS r_trunc_plain \gset
SELECT catalog_api.audit_verify(anchor_seq => (:'anchor'::jsonb->>'seq')::bigint, anchor_hash => :'anchor'::jsonb->>'hash')::text AS r_trunc \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_trunc_after \gset

-- 12. a row rewritten and every hash after it recomputed: consistent
-- without the anchor, broken against it
SAVEPOINT attack;
UPDATE catalog.audit_log SET new_values = new_values || '{"price": 0.01}' WHERE id = :v1_id;
UPDATE catalog.audit_log a SET row_hash = catalog.audit_row_hash(a) WHERE id = :v1_id;
UPDATE catalog.audit_seal s SET row_hash = a.row_hash FROM catalog.audit_log a WHERE a.id = s.audit_id AND s.seq = :v1_seq;
SELECT pg_temp.rechain(:v1_seq);
SELECT catalog_api.audit_verify()::text AS r_rewrite_plain \gset
SELECT catalog_api.audit_verify(anchor_seq => (:'anchor'::jsonb->>'seq')::bigint, anchor_hash => :'anchor'::jsonb->>'hash')::text AS r_rewrite \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_rewrite_after \gset

-- 13. the sealed row of a month without a partition deleted from the
-- default partition (retention never deletes from it)
SAVEPOINT attack;
DELETE FROM catalog.audit_log_default WHERE id = :old_id;
SELECT catalog_api.audit_verify()::text AS r_default \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_default_after \gset

-- 14. this month's partition dropped (retention drops only ended months,
-- and only through audit_drop_partitions)
SAVEPOINT attack;
SELECT format('DROP TABLE %s', tableoid::regclass) AS drop_month FROM catalog.audit_log WHERE id = :v1_id \gset
:drop_month;
SELECT catalog_api.audit_verify()::text AS r_dropped \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_dropped_after \gset

-- 15. the sealer's bookkeeping row deleted: a row above the sealed range
-- is only unsealed while the bookkeeping says where that range ends;
-- without it every unsealed row counts as inside
SAVEPOINT attack;
SELECT pg_temp.old_row(now()) AS book_id \gset
SELECT catalog_api.audit_verify()::text AS r_book_control \gset
DELETE FROM catalog.audit_chain;
SELECT catalog_api.audit_verify()::text AS r_book \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_book_after \gset

-- 16. a row deleted and passed off as retention: a retention record for a
-- month long gone, the seal's time moved into it (the seal's columns are
-- all in its link, and only a prune link in the chain makes a row pruned)
SAVEPOINT attack;
INSERT INTO catalog.audit_retention VALUES ('1890-01-01 00:00:00+00', '1890-02-01 00:00:00+00', 'audit_log_p189001', now(), 'forged');
UPDATE catalog.audit_seal SET occurred_at = '1890-01-15 00:00:00+00' WHERE audit_id = :v1_id;
DELETE FROM catalog.audit_log WHERE id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_retain_record \gset
SELECT pg_temp.forge_prune('1890-01-01 00:00:00+00', '1890-02-01 00:00:00+00');
SELECT catalog_api.audit_verify()::text AS r_retain \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_retain_after \gset

-- 17. one row of an old month deleted and a prune link forged for the
-- month: another row of that month, sealed before the link, is still
-- there, so the month was not dropped (the link is not valid); with both
-- rows gone it would be the same as retention of the whole month
SAVEPOINT attack;
DELETE FROM catalog.audit_log_default WHERE id = :old_id;
SELECT pg_temp.forge_prune(pg_temp.month_start(occurred_at), pg_temp.month_end(occurred_at))
FROM catalog.audit_seal WHERE audit_id = :old_id;
SELECT catalog_api.audit_verify()::text AS r_partial \gset
DELETE FROM catalog.audit_log_default WHERE id = :twin_id;
SELECT catalog_api.audit_verify()::text AS r_whole \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_partial_after \gset

-- 18. this month's partition dropped by hand and a prune link forged for
-- it: retention drops only months that have ended, and a link stamped
-- before its month's end is not valid
SAVEPOINT attack;
SELECT format('DROP TABLE %s', tableoid::regclass) AS drop_month FROM catalog.audit_log WHERE id = :v1_id \gset
:drop_month;
SELECT pg_temp.forge_prune(pg_temp.month_start(now()), pg_temp.month_end(now()));
SELECT catalog_api.audit_verify()::text AS r_current \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_current_after \gset

-- 19. one row deleted under a valid-looking prune link of one microsecond
-- around it (a link must name a whole calendar month)
SAVEPOINT attack;
DELETE FROM catalog.audit_log WHERE id = :v1_id;
SELECT pg_temp.forge_prune(occurred_at, occurred_at + interval '1 microsecond') FROM catalog.audit_seal WHERE audit_id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_narrow \gset
ROLLBACK TO SAVEPOINT attack;

-- 20. this month's partition dropped under a link from the month's start
-- to now (ended, but not a month)
SAVEPOINT attack;
SELECT format('DROP TABLE %s', tableoid::regclass) AS drop_month FROM catalog.audit_log WHERE id = :v1_id \gset
:drop_month;
SELECT pg_temp.forge_prune(pg_temp.month_start(now()), now());
SELECT catalog_api.audit_verify()::text AS r_sofar \gset
ROLLBACK TO SAVEPOINT attack;

-- 21. a prune link whose row_hash is not its month's
SAVEPOINT attack;
SELECT pg_temp.forge_prune('1890-01-01 00:00:00+00', '1890-02-01 00:00:00+00', bad_hash => true);
SELECT catalog_api.audit_verify()::text AS r_badprune \gset
ROLLBACK TO SAVEPOINT attack;
SELECT catalog_api.audit_verify()->>'ok' AS r_badprune_after \gset
ROLLBACK;

SELECT is((:'r_modify'::jsonb)->>'ok', 'false', 'modified row: not ok');
SELECT is((:'r_modify'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'row_modified'),
          'modified row: the first broken link is its seq, its id, row_modified');
SELECT is(:'r_modify_after'::text, 'true', 'modified row: verifies again after the rollback');

SELECT is((:'r_rehash'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'row_modified'),
          'modified row with a recomputed row_hash: it no longer matches its seal (row_modified)');
SELECT is(:'r_rehash_after'::text, 'true', 'recomputed row_hash: verifies again after the rollback');

SELECT is((:'r_rowhash'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'row_hash_mismatch'),
          'stored row_hash changed, content intact: row_hash_mismatch');
SELECT is(:'r_rowhash_after'::text, 'true', 'stored row_hash changed: verifies again after the rollback');

SELECT is((:'r_delete'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'missing_row'),
          'deleted row: missing_row at its seq');
SELECT is(:'r_delete_after'::text, 'true', 'deleted row: verifies again after the rollback');

SELECT is((:'r_swap'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'row_modified'),
          'swapped rows: the first of them is row_modified');
SELECT is(:'r_swap_after'::text, 'true', 'swapped rows: verifies again after the rollback');

SELECT is((:'r_forge'::jsonb)->'first_broken', pg_temp.broken(:gap_next_seq, :gap_id, 'unsealed_in_sealed_range'),
          'forged row in a gap of the sealed range: unsealed_in_sealed_range, its id, the seq after it');
SELECT is(:'r_forge_after'::text, 'true', 'forged row: verifies again after the rollback');
SELECT is((:'r_forge_pass'::jsonb)->'first_broken', pg_temp.broken(:gap_next_seq, :gap_id, 'unsealed_in_sealed_range'),
          'forged row with the txid of the last sealing pass: unsealed_in_sealed_range, not a pending row');

SELECT is((:'r_dup'::jsonb)->'first_broken', pg_temp.broken(:v1_next_seq, :v1_id, 'unsealed_in_sealed_range'),
          'a second row with a sealed id: unsealed_in_sealed_range');
SELECT is(:'r_dup_after'::text, 'true', 'second row with a sealed id: verifies again after the rollback');

SELECT is((:'r_chain'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'chain_mismatch'),
          'changed chain_hash: chain_mismatch at that seq');
SELECT is(:'r_chain_after'::text, 'true', 'changed chain_hash: verifies again after the rollback');

SELECT is((:'r_sealhash'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'row_modified'),
          'changed seal row_hash: the row no longer matches its seal (row_modified)');
SELECT is(:'r_sealhash_after'::text, 'true', 'changed seal row_hash: verifies again after the rollback');

SELECT is((:'r_lookup'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'lookup_mismatch'),
          'changed lookup key of a seal: lookup_mismatch at that seq');
SELECT is(:'r_lookup_after'::text, 'true', 'changed lookup key of a seal: verifies again after the rollback');

SELECT is((:'r_gap'::jsonb)->'first_broken', pg_temp.broken(:v1_seq + 1, :v1_after_id, 'sequence'),
          'deleted seal row: the next seal is out of sequence');
SELECT is(:'r_gap_after'::text, 'true', 'deleted seal row: verifies again after the rollback');

SELECT is((:'r_trunc_plain'::jsonb)->'first_broken', pg_temp.broken(NULL, :head_id, 'unsealed_in_sealed_range'),
          'deleted last seal row, without an anchor: its row is unsealed inside the sealed range');
SELECT is((:'r_trunc'::jsonb)->'first_broken', pg_temp.broken(:head_seq, NULL, 'truncated'),
          'deleted last seal row, against the anchor: truncated at the anchor seq');
SELECT is(:'r_trunc_after'::text, 'true', 'deleted last seal row: verifies again after the rollback');

SELECT is((:'r_rewrite_plain'::jsonb)->>'ok', 'true',
          'a consistent rewrite of the chain is invisible without an anchor (why audit_head must be exported)');
SELECT is((:'r_rewrite'::jsonb)->'first_broken', pg_temp.broken(:head_seq, :head_id, 'anchor_mismatch'),
          'a consistent rewrite fails against the anchor: anchor_mismatch at the anchor seq');
SELECT is(:'r_rewrite_after'::text, 'true', 'consistent rewrite: verifies again after the rollback');

SELECT is((:'r_default'::jsonb)->'first_broken', pg_temp.broken(:old_seq, :old_id, 'missing_row'),
          'the one sealed row of a month without partition deleted from the default partition: missing_row, not pruned');
SELECT is(:'r_default_after'::text, 'true', 'deleted from the default partition: verifies again after the rollback');

SELECT is((:'r_dropped'::jsonb)->>'ok', 'false', 'this month''s partition dropped by hand: not ok');
SELECT is((:'r_dropped'::jsonb)->'first_broken'->>'reason', 'missing_row',
          'this month''s partition dropped by hand: missing_row, not pruned');
SELECT is(:'r_dropped_after'::text, 'true', 'dropped partition: verifies again after the rollback');

SELECT is((:'r_book_control'::jsonb) - 'checked' - 'pruned' - 'head', '{"ok": true, "unsealed": 1, "first_broken": null}'::jsonb,
          'a row above the sealed range is unsealed, not broken');
SELECT is((:'r_book'::jsonb)->'first_broken', pg_temp.broken(NULL, :book_id, 'unsealed_in_sealed_range'),
          'bookkeeping row deleted: the unsealed row counts as inside the sealed range');
SELECT is(:'r_book_after'::text, 'true', 'bookkeeping row deleted: verifies again after the rollback');

SELECT is((:'r_retain_record'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'missing_row'),
          'a deleted row with a forged retention record and its seal moved into that month: missing_row');
SELECT is((:'r_retain'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'chain_mismatch'),
          'the same under a valid prune link of that month: the moved seal time breaks its link (chain_mismatch)');
SELECT is(:'r_retain_after'::text, 'true', 'forged retention record: verifies again after the rollback');

SELECT is((:'r_partial'::jsonb)->'first_broken', pg_temp.broken(:old_seq, :old_id, 'missing_row'),
          'one row of a month deleted under a forged prune link, another row of the month left: missing_row at the deleted one');
SELECT is((:'r_whole'::jsonb) - 'checked' - 'unsealed' - 'head',
          jsonb_build_object('ok', true, 'pruned', :base_pruned + 2, 'first_broken', NULL),
          'every row of an ended month gone under a prune link: the same as retention, pruned');
SELECT is(:'r_partial_after'::text, 'true', 'forged prune link: verifies again after the rollback');

SELECT is((:'r_current'::jsonb)->'first_broken'->>'reason', 'missing_row',
          'this month dropped by hand under a forged prune link stamped before the month ends: missing_row');
SELECT is(:'r_current_after'::text, 'true', 'forged prune link of this month: verifies again after the rollback');

SELECT is((:'r_narrow'::jsonb)->'first_broken', pg_temp.broken(:v1_seq, :v1_id, 'missing_row'),
          'a row deleted under a prune link of one microsecond: missing_row (a link names a whole month)');
SELECT is((:'r_sofar'::jsonb)->'first_broken'->>'reason', 'missing_row',
          'this month dropped under a link from its start to now: missing_row');
SELECT is((:'r_badprune'::jsonb)->'first_broken', pg_temp.broken(:head_seq + 1, NULL, 'invalid_prune'),
          'a prune link with a wrong row_hash: invalid_prune at its seq, no audit id');
SELECT is(:'r_badprune_after'::text, 'true', 'invalid prune link: verifies again after the rollback');

------------------------------------------------------------------------------
-- Anchors that do not fit
------------------------------------------------------------------------------
SELECT is(catalog_api.audit_verify(anchor_seq => :head_seq, anchor_hash => encode(sha256('forged'), 'hex'))->'first_broken'->>'reason',
          'anchor_mismatch', 'an anchor hash that is not the chain''s: anchor_mismatch');
SELECT is(catalog_api.audit_verify(anchor_seq => :head_seq + 1000000, anchor_hash => :'anchor'::jsonb->>'hash')->'first_broken'->>'reason',
          'truncated', 'an anchor beyond the head: truncated');
SELECT throws_ok(format('SELECT catalog_api.audit_verify(anchor_seq => %s)', :head_seq), '22023', NULL,
                 'an anchor seq without its hash is refused with 22023');
SELECT throws_ok(format('SELECT catalog_api.audit_verify(anchor_seq => %s, anchor_hash => %L)', :head_seq, 'not hex'), '22023', NULL,
                 'an anchor hash that is not 64 hex digits is refused with 22023');

SELECT is(catalog_api.audit_verify()->>'ok', 'true', 'after every attack was rolled back, the chain verifies');

-- Leave no old month behind for the tests that follow: the old row and its
-- twin move into a partition of their month, which retention drops (they
-- are sealed).
SELECT catalog_api.audit_maintain() IS NOT NULL AS maintained;
SELECT is(catalog_api.audit_drop_partitions('2000-01-01 00:00:00+00')->'dropped',
          jsonb_build_array('audit_log_p' || to_char((SELECT occurred_at FROM catalog.audit_seal WHERE seq = :old_seq) AT TIME ZONE 'UTC', 'YYYYMM')),
          'the old row''s month is dropped by retention once it has a partition');
SELECT is(catalog_api.audit_verify() - 'checked' - 'unsealed' - 'head',
          jsonb_build_object('ok', true, 'pruned', :base_pruned + 2, 'first_broken', NULL),
          'and the chain still verifies, the month''s two rows pruned');
SELECT is((SELECT jsonb_build_array(s.audit_id = -s.seq, s.table_name, s.actor, s.request_id,
                                    s.occurred_at = pg_temp.month_start(o.occurred_at),
                                    s.row_id = ((extract(epoch FROM pg_temp.month_end(o.occurred_at)) - 946684800) * 1000000)::bigint,
                                    s.row_hash = pg_temp.prune_hash(s.occurred_at, pg_temp.month_end(o.occurred_at)))
           FROM catalog.audit_seal s, catalog.audit_seal o
           WHERE s.seq = (SELECT max(seq) FROM catalog.audit_seal) AND o.seq = :old_seq),
          '[true, "audit_retention", "", "", true, true, true]'::jsonb,
          'the drop appended the month''s prune link at the head, as src/audit.h documents it');
SELECT is(catalog_api.audit_head()->'audit_id', 'null'::jsonb, 'audit_head names no audit row for a prune link');
SELECT is_empty($$SELECT * FROM pg_temp.chain_breaks()$$,
                'the prune link is chained like every seal: the chain recomputes to the head');
-- 22. a forged row keyed like that prune link (id -seq, its time): no
-- sequence gives such an id, and it is not that link's row
SELECT max(seq) AS negseq FROM catalog.audit_seal \gset
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO catalog.audit_log
SELECT -s.seq, s.occurred_at, a.xact_at, a.txid, a.actor, a.role_name, a.via, a.request_id, a.table_name, a.row_id,
       a.action, a.old_values, a.new_values, a.row_hash
FROM catalog.audit_seal s, catalog.audit_log a
WHERE s.seq = (SELECT max(seq) FROM catalog.audit_seal) AND a.id = :v1_id;
SELECT catalog_api.audit_verify()::text AS r_negid \gset
ROLLBACK;
SELECT is((:'r_negid'::jsonb)->'first_broken', pg_temp.broken(NULL, -:negseq, 'unsealed_in_sealed_range'),
          'a row keyed like a prune link is found: unsealed_in_sealed_range, its id, no seq');
SELECT * FROM finish();
