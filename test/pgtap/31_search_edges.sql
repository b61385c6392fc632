--
-- 31_search_edges.sql: search cases that mutation testing showed no other
-- check would notice (pgTAP; its own category and products, rolled back).
--
--   - a cursor binds the price bounds at their scale: 10 and 10.00 are one
--     bound, 10.01 another;
--   - a cursor is only accepted in its canonical base64 text (the unused low
--     bits of the last character set decode to the same bytes);
--   - highlight ranges that touch ("Merino" and the parser's "-10") are one;
--   - a transposition is one edit only when the two letters are swapped:
--     "lantern" is two edits from "lanexrn" (7 letters: no match);
--   - pages of a query that is an existing exact SKU keep leaving out the
--     substring matches of the first page's decision.
--
BEGIN;
SELECT plan(11);
SET LOCAL catalog.actor = 'pgtap-search-edges';
SELECT (catalog_api.create_category(name => 'Kill Search', slug => 'kill-search-' || pg_backend_pid())->>'id')::bigint AS cat \gset
SELECT count(catalog_api.create_product(sku => 'KS-' || i, name => 'Kill Widget ' || i, price => 10 + i,
                                  category_id => :cat, status => 'published')) AS made
FROM generate_series(1, 3) i \gset
SELECT catalog_api.search_products(category_id => :cat, min_price => 10, max_price => 45,
                                   sort => 'price_asc', page_size => 1)->>'next_cursor' AS c \gset
SELECT ok(:'c' IS NOT NULL, 'precondition: a next_cursor');
SELECT lives_ok(format('SELECT catalog_api.search_products(category_id => %s, min_price => 10.00, max_price => 45,'
                       ' sort => %L, page_size => 1, cursor => %L)', :cat, 'price_asc', :'c'),
                'the cursor with 10.00 for 10');
-- SE03: the fingerprint keeps prices at scale 2, not rounded to units
SELECT throws_ok(format('SELECT catalog_api.search_products(category_id => %s, min_price => 10.01, max_price => 45,'
                        ' sort => %L, page_size => 1, cursor => %L)', :cat, 'price_asc', :'c'),
                 '22023', NULL, 'reused with min_price 10.01 (made with 10)');
SELECT throws_ok(format('SELECT catalog_api.search_products(category_id => %s, min_price => 10, max_price => 44.99,'
                        ' sort => %L, page_size => 1, cursor => %L)', :cat, 'price_asc', :'c'),
                 '22023', NULL, 'reused with max_price 44.99 (made with 45)');
-- SE05: only the canonical base64 text of the bytes: the unused low bits
-- of the last character flipped decode to the same bytes, and must fail
CREATE FUNCTION pg_temp.lowbit(c text) RETURNS text LANGUAGE sql AS $$
    SELECT left(c, -1) || substr(a, (strpos(a, right(c, 1)) - 1) # 1 + 1, 1)
    FROM (SELECT 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'::text AS a) s $$;
-- The cursor's length follows its content (ids, prices, sort key), so
-- the first of the sorts whose cursor ends in a character with unused
-- bits is taken, rather than counting on one cursor's length.
SELECT s AS lsort, c AS lc
FROM (SELECT s, o, catalog_api.search_products(category_id => :cat, min_price => 10, max_price => 45,
                                               sort => s, page_size => 1)->>'next_cursor' AS c
      FROM unnest(ARRAY['price_asc', 'price_desc', 'newest', 'name', 'relevance']) WITH ORDINALITY u(s, o)) x
WHERE length(c) % 4 IN (2, 3)
ORDER BY o LIMIT 1 \gset
SELECT ok(:'lc' <> '', 'precondition: a cursor whose last character has unused bits');
SELECT lives_ok(format('SELECT catalog_api.search_products(category_id => %s, min_price => 10, max_price => 45,'
                       ' sort => %L, page_size => 1, cursor => %L)', :cat, :'lsort', :'lc'),
                'that cursor as issued pages on');
SELECT throws_ok(format('SELECT catalog_api.search_products(category_id => %s, min_price => 10, max_price => 45,'
                        ' sort => %L, page_size => 1, cursor => %L)', :cat, :'lsort', pg_temp.lowbit(:'lc')),
                 '22023', NULL, 'a non-canonical encoding of the same bytes');
-- SE29: ranges that touch are one highlight ("Merino" and "-10")
SELECT (catalog_api.create_product(sku => 'KS-HL', name => 'Qorvex Merino-10 Pack', price => 3,
        category_id => :cat, status => 'published')->>'id') IS NOT NULL AS made \gset
SELECT is((SELECT i->'highlight' FROM jsonb_array_elements(catalog_api.search_products(q => 'merino -10',
              category_id => :cat)->'items') i WHERE i->>'sku' = 'KS-HL'),
          '[{"start": 7, "length": 9}]'::jsonb, 'touching ranges are merged into one');
-- SE19: a transposition needs both characters swapped: "lantern" is 2 edits
-- from "lanexrn" (no typo match at 7 characters)
SELECT (catalog_api.create_product(sku => 'KS-TY', name => 'Lanexrn Lamp', price => 3,
        category_id => :cat, status => 'published')->>'id') IS NOT NULL AS made \gset
SELECT is(jsonb_array_length(catalog_api.search_products(q => 'lantern', category_id => :cat)->'items'), 0,
          'lantern does not match Lanexrn (2 edits)');
SELECT is((SELECT i->>'match' FROM jsonb_array_elements(catalog_api.search_products(q => 'lanexrm',
              category_id => :cat)->'items') i WHERE i->>'sku' = 'KS-TY'), 'typo', 'control: one edit matches');
-- SE12: an identifier whose exact SKU exists keeps "no substring matches" on every page
SELECT count(catalog_api.create_product(sku => s, name => 'Ident ' || s, price => 3,
        category_id => :cat, status => 'published')) AS made
FROM unnest(ARRAY['ZQ-100', 'ZQ-1001', 'ZQ-1002', 'XZQ-1005', 'YZQ-1006']) s \gset
CREATE FUNCTION pg_temp.walk(cat bigint) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE res jsonb; cur text; out text[] := '{}';
BEGIN
    LOOP
        res := catalog_api.search_products(q => 'zq-100', category_id => cat, page_size => 1, cursor => cur);
        out := out || ARRAY(SELECT i->>'sku' FROM jsonb_array_elements(res->'items') i);
        cur := res->>'next_cursor';
        EXIT WHEN cur IS NULL;
    END LOOP;
    RETURN out;
END $$;
SELECT is(pg_temp.walk(:cat),
          ARRAY(SELECT i->>'sku' FROM jsonb_array_elements(catalog_api.search_products(q => 'zq-100',
                category_id => :cat, page_size => 100)->'items') i),
          'pages of an exact identifier = the unpaged result (no substring matches on later pages)');
SELECT * FROM finish();
ROLLBACK;
