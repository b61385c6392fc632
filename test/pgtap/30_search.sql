-- pgTAP: catalog_api.search_products and catalog_api.product_facets
-- (src/search.c) on a hand-made fixture in a category subtree of its own
-- (every search is filtered by the fixture's root or one of its nodes, so
-- rows of other tests cannot interfere):
--   - relevance: the exact order of the match classes, the order inside
--     each class, the class of each item and highlight ranges;
--   - typo tolerance: 1 edit from 5 characters, 2 from 9, none below 5;
--   - keyset pages: walking next_cursor with page sizes 1, 2, 3 and a
--     changing size gives exactly the unpaged result, for every sort, with
--     and without q, with and without a price range, before and after
--     ANALYZE (the statistics choose other access paths);
--   - cursors: altered, truncated, extended, garbage, foreign (another
--     signing key) or replayed against another query fail with 22023;
--   - facets: equal to a GROUP BY over catalog.product for the same filters;
--   - validation and pathological inputs: a documented SQLSTATE or a normal
--     result, never an unescaped LIKE pattern or a raw tsquery.
-- Products are inserted directly (as superuser) to control created_at;
-- categories go through the API.
BEGIN;
SELECT plan(465);

SET LOCAL catalog.actor = 'pgtap-search';

------------------------------------------------------------------------------
-- Fixture
------------------------------------------------------------------------------
-- Categories: root -> knit, root -> out -> rain; "other" is a second root.
CREATE TEMP TABLE fxc (k text PRIMARY KEY, id bigint NOT NULL);
INSERT INTO fxc VALUES ('root', (catalog_api.create_category(name => 'Tap Search',
    slug => 'tap-search-' || pg_backend_pid())->>'id')::bigint);
INSERT INTO fxc VALUES ('knit', (catalog_api.create_category(name => 'Tap Knit',
    slug => 'tap-search-knit-' || pg_backend_pid(), parent_id => (SELECT id FROM fxc WHERE k = 'root'))->>'id')::bigint);
INSERT INTO fxc VALUES ('out', (catalog_api.create_category(name => 'Tap Outdoor',
    slug => 'tap-search-out-' || pg_backend_pid(), parent_id => (SELECT id FROM fxc WHERE k = 'root'))->>'id')::bigint);
INSERT INTO fxc VALUES ('rain', (catalog_api.create_category(name => 'Tap Rain',
    slug => 'tap-search-rain-' || pg_backend_pid(), parent_id => (SELECT id FROM fxc WHERE k = 'out'))->>'id')::bigint);
INSERT INTO fxc VALUES ('other', (catalog_api.create_category(name => 'Tap Elsewhere',
    slug => 'tap-search-else-' || pg_backend_pid())->>'id')::bigint);
INSERT INTO fxc VALUES ('uni', (catalog_api.create_category(name => 'Tap Unicode',
    slug => 'tap-search-uni-' || pg_backend_pid())->>'id')::bigint);
INSERT INTO fxc VALUES ('hl', (catalog_api.create_category(name => 'Tap Highlight',
    slug => 'tap-search-hl-' || pg_backend_pid())->>'id')::bigint);
CREATE TEMP TABLE fxp (k text PRIMARY KEY, id bigint NOT NULL);
GRANT SELECT ON fxc, fxp TO PUBLIC;

CREATE FUNCTION pg_temp.cid(k text) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT id FROM fxc WHERE fxc.k = cid.k $$;
CREATE FUNCTION pg_temp.pid(k text) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT id FROM fxp WHERE fxp.k = pid.k $$;
CREATE FUNCTION pg_temp.pids(VARIADIC ks text[]) RETURNS bigint[] LANGUAGE sql STABLE AS
$$ SELECT array_agg(pg_temp.pid(k) ORDER BY o) FROM unnest(ks) WITH ORDINALITY AS t(k, o) $$;

-- One product; t is minutes after a fixed instant (equal t: equal created_at).
CREATE FUNCTION pg_temp.mk(k text, sku text, name text, price numeric, cat text, t integer,
                           descr text DEFAULT NULL, attrs jsonb DEFAULT '{}',
                           status text DEFAULT 'published')
RETURNS void LANGUAGE sql AS $$
    WITH p AS (
        INSERT INTO catalog.product (sku, name, description, status, category_id, price, currency,
                                     attributes, created_at, created_by, updated_by)
        VALUES (sku, name, descr, status::catalog.product_status, pg_temp.cid(cat), price, 'USD',
                attrs, timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => t),
                'pgtap-search', 'pgtap-search')
        RETURNING id)
    INSERT INTO fxp SELECT k, id FROM p;
$$;

-- For q 'merino', one or more products per match class, in insertion order.
SELECT pg_temp.mk('r01', 'MERINO', 'Plain Scarf', 30, 'knit', 1);                -- sku_exact
SELECT pg_temp.mk('r02', 'MERINO-2', 'Grey Cap', 12, 'knit', 2);                 -- sku_prefix
SELECT pg_temp.mk('r03', 'MERINO-10', 'Blue Cap', 12, 'knit', 2);                -- sku_prefix
SELECT pg_temp.mk('r04', 'MERINOX', 'Red Cap', 12, 'knit', 3);                   -- sku_prefix
SELECT pg_temp.mk('r05', 'TS-N1', 'Merino Socks', 9.99, 'knit', 4);              -- name
SELECT pg_temp.mk('r06', 'TS-N2', 'Fine Merinos Shirt', 45, 'root', 5);          -- name (prefix)
SELECT pg_temp.mk('r07', 'TS-N3', 'Socks merino', 9.99, 'knit', 5);              -- name
SELECT pg_temp.mk('r08', 'TS-T1', 'Wool Jumper', 80, 'knit', 6,
                  descr => 'Knitted from merino yarn');                          -- text (description)
SELECT pg_temp.mk('r09', 'TS-T2', 'Thermal Vest', 25, 'out', 7,
                  attrs => '{"fibre": "merino"}');                               -- text (attribute)
SELECT pg_temp.mk('r10', 'TS-S1', 'Supermerino Blanket', 120, 'root', 8);        -- substring (name)
SELECT pg_temp.mk('r11', 'XMERINO7', 'Green Cap', 12, 'knit', 9);                -- substring (SKU)
SELECT pg_temp.mk('r12', 'TS-Y1', 'Merimo Gloves', 25, 'knit', 10);              -- typo (substitution)
SELECT pg_temp.mk('r13', 'TS-Y2', 'Mernio Hat', 10, 'out', 11);                  -- typo (transposition)
SELECT pg_temp.mk('r14', 'TS-X1', 'Merxnx Hat', 10, 'out', 11);                  -- 2 edits at 6: no match
SELECT pg_temp.mk('r15', 'TS-D1', 'Merino Draft', 50, 'knit', 12, status => 'draft');
SELECT pg_temp.mk('r16', 'TS-O1', 'Merino Elsewhere', 50, 'other', 12);          -- outside the subtree
SELECT pg_temp.mk('r17', 'TS-N4', U&'Cr\00E8me Merino Wrap', 60, 'rain', 13);    -- name, non-ASCII
-- typo rules and LIKE metacharacters
SELECT pg_temp.mk('t01', 'TS-Y3', 'Windbreaker Shell', 95, 'rain', 14);
SELECT pg_temp.mk('t02', 'TS-Y4', 'Rucksack Large', 70, 'out', 14);
SELECT pg_temp.mk('t03', 'TS-Y5', 'Botas Sandals', 5, 'root', 15);
SELECT pg_temp.mk('t04', 'TS-T3', 'Phonetic Poster', 33, 'rain', 16,
                  descr => 'alpha bravo charlie delta echo foxtrot golf hotel india juliet');
SELECT pg_temp.mk('p01', 'TS-P1', '50% Off_Sale Item', 5, 'root', 15);
-- non-ASCII letters: typo distances and highlights count characters
SELECT pg_temp.mk('u01', 'TS-U1', U&'M\00FCller Kaffeem\00FChle', 40, 'uni', 17);
SELECT pg_temp.mk('u02', 'TS-U2', U&'\00DCberzug Decke', 30, 'uni', 18);
SELECT pg_temp.mk('p02', 'TS-P2', 'Promo 10%_Off Pack', 5, 'root', 15);
-- highlight boundaries: words after non-ASCII punctuation, a word inside a
-- longer one, a number with its sign
SELECT pg_temp.mk('h01', 'TS-H1', U&'Tea Kettle\2013Zorbex Steel', 20, 'hl', 19);
SELECT pg_temp.mk('h02', 'TS-H2', U&'\201CZorbex\201D Wool Socks', 20, 'hl', 20);
SELECT pg_temp.mk('h03', 'TS-H3', 'Zorbwoolen Zorbwool Blanket', 20, 'hl', 21);
SELECT pg_temp.mk('h04', 'TS-H4', 'Zorbex Merino-10', 20, 'hl', 22);
SELECT pg_temp.mk('h05', 'TS-H5', U&'Zorbtil\0303 Zorbtil Blanket', 20, 'hl', 23);
SELECT pg_temp.mk('h06', 'TS-H6', U&'Zorbq\0303uark Lamp', 20, 'hl', 24);
SELECT pg_temp.mk('h07', 'TS-H7', repeat('Zorbgo ', 9) || 'Zorbgadget', 20, 'hl', 25);
SELECT pg_temp.mk('h08', 'TS-H8', 'Zorbmix Zorbmix', 20, 'hl', 26);
SELECT pg_temp.mk('h09', 'TS-H9', 'Zorbhose-4 K Zorbclamp', 20, 'hl', 27);
-- Fillers for the page walks: repeated names, prices and created_at (ties
-- broken by id), SKU prefixes for q 'cap', a few drafts and archived.
DO $$
BEGIN
    FOR i IN 1..24 LOOP
        PERFORM pg_temp.mk('w' || lpad(i::text, 2, '0'),
            CASE WHEN i % 3 = 0 THEN 'CAP-' || lpad(i::text, 2, '0') ELSE 'TS-W' || i END,
            (ARRAY['Walk Cap', 'Green Cap', 'Walk Tote', 'Handicap Rail'])[1 + i % 4],
            (ARRAY[5, 12, 12, 19.5, 45, 45, 120])[1 + i % 7],
            (ARRAY['root', 'knit', 'out', 'rain'])[1 + i % 4],
            30 + i % 5,
            status => CASE WHEN i % 8 = 0 THEN 'draft' WHEN i % 11 = 0 THEN 'archived'
                           ELSE 'published' END);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------
-- The item ids of a result page, in order.
CREATE FUNCTION pg_temp.ids(j jsonb) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(array_agg((i->>'id')::bigint ORDER BY o), '{}')
   FROM jsonb_array_elements(j->'items') WITH ORDINALITY AS t(i, o) $$;
CREATE FUNCTION pg_temp.matches(j jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(array_agg(i->>'match' ORDER BY o), '{}')
   FROM jsonb_array_elements(j->'items') WITH ORDINALITY AS t(i, o) $$;
CREATE FUNCTION pg_temp.item(j jsonb, id bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT i FROM jsonb_array_elements(j->'items') i WHERE (i->>'id')::bigint = item.id $$;

-- One call with the largest page; the fixture never fills it.
CREATE FUNCTION pg_temp.unpaged(q text, cat bigint, minp numeric, maxp numeric, st text, srt text)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    res jsonb;
BEGIN
    res := catalog_api.search_products(q => q, category_id => cat, min_price => minp, max_price => maxp,
                                       status => st, sort => srt, page_size => 100);
    IF res->>'next_cursor' IS NOT NULL THEN
        RAISE EXCEPTION 'a result of 100 items has a next_cursor: the fixture is too large';
    END IF;
    RETURN pg_temp.ids(res);
END;
$$;

-- Follow next_cursor from the first page until it is null, the page size
-- cycling through sizes; raises on a malformed page (too long, short with a
-- next_cursor, an empty page after the first, a changed sort).
CREATE FUNCTION pg_temp.walk(q text, cat bigint, minp numeric, maxp numeric, st text, srt text,
                             sizes integer[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    cur text;
    res jsonb;
    acc bigint[] := '{}';
    ps integer;
    n integer := 0;
    n_items integer;
    eff_sort text;
BEGIN
    LOOP
        ps := sizes[1 + n % array_length(sizes, 1)];
        n := n + 1;
        IF n > 500 THEN
            RAISE EXCEPTION 'no last page after 500 pages';
        END IF;
        res := catalog_api.search_products(q => q, category_id => cat, min_price => minp,
                                           max_price => maxp, status => st, sort => srt,
                                           page_size => ps, cursor => cur);
        n_items := jsonb_array_length(res->'items');
        IF (res->>'page_size')::integer <> ps THEN
            RAISE EXCEPTION 'page %: page_size % instead of %', n, res->>'page_size', ps;
        END IF;
        IF n_items > ps THEN
            RAISE EXCEPTION 'page %: % items for page_size %', n, n_items, ps;
        END IF;
        IF res->>'next_cursor' IS NOT NULL AND n_items < ps THEN
            RAISE EXCEPTION 'page %: % items and a next_cursor', n, n_items;
        END IF;
        IF n > 1 AND n_items = 0 THEN
            RAISE EXCEPTION 'page % is empty', n;
        END IF;
        IF n > 1 AND res->>'sort' <> eff_sort THEN
            RAISE EXCEPTION 'page %: sort % after %', n, res->>'sort', eff_sort;
        END IF;
        eff_sort := res->>'sort';
        acc := acc || pg_temp.ids(res);
        cur := res->>'next_cursor';
        EXIT WHEN cur IS NULL;
    END LOOP;
    RETURN acc;
END;
$$;

CREATE FUNCTION pg_temp.subtree(cat bigint) RETURNS bigint[] LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t (id) AS (
        SELECT cat UNION ALL SELECT c.id FROM catalog.category c JOIN t ON c.parent_id = t.id)
    SELECT array_agg(id) FROM t
$$;

-- Products passing the filters (category subtree, price range, status),
-- read directly from the table.
CREATE FUNCTION pg_temp.filtered(cat bigint, minp numeric, maxp numeric, st text)
RETURNS bigint[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(p.id), '{}') FROM catalog.product p
    WHERE (cat IS NULL OR p.category_id = ANY (pg_temp.subtree(cat)))
      AND p.price >= coalesce(minp, 0) AND p.price <= coalesce(maxp, 1e10)
      AND (st IS NULL OR p.status = st::catalog.product_status)
$$;

-- The order a sort gives to a set of products (relevance without text is
-- newest), computed directly from the table.
CREATE FUNCTION pg_temp.ordered(ids bigint[], srt text) RETURNS bigint[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(p.id ORDER BY
        CASE WHEN srt = 'price_asc' THEN p.price END, CASE WHEN srt = 'price_asc' THEN p.id END,
        CASE WHEN srt = 'price_desc' THEN p.price END DESC,
        CASE WHEN srt = 'price_desc' THEN p.id END DESC,
        CASE WHEN srt IN ('newest', 'relevance') THEN p.created_at END DESC,
        CASE WHEN srt IN ('newest', 'relevance') THEN p.id END DESC,
        CASE WHEN srt = 'name' THEN p.name END, CASE WHEN srt = 'name' THEN p.id END), '{}')
    FROM catalog.product p WHERE p.id = ANY (ids)
$$;

CREATE FUNCTION pg_temp.sorted(a bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(a) x $$;

-- 'ok', or the SQLSTATE of the error and the "field" of its JSON DETAIL.
CREATE FUNCTION pg_temp.outcome(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    det text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || CASE WHEN det LIKE '{%' THEN coalesce(' ' || (det::jsonb->>'field'), '') ELSE '' END;
END;
$$;

------------------------------------------------------------------------------
-- Relevance
------------------------------------------------------------------------------
CREATE TEMP TABLE rel AS
SELECT catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'), page_size => 100) AS j;

SELECT is(pg_temp.ids(j),
          pg_temp.pids('r01', 'r03', 'r02', 'r04', 'r17', 'r07', 'r06', 'r05', 'r09', 'r08',
                       'r11', 'r10', 'r13', 'r12'),
          'relevance: exact SKU, SKU prefixes in byte order, name words, other fields, substrings, typos; id desc inside a class')
FROM rel;
SELECT is(pg_temp.matches(j),
          ARRAY['sku_exact', 'sku_prefix', 'sku_prefix', 'sku_prefix', 'name', 'name', 'name', 'name',
                'text', 'text', 'substring', 'substring', 'typo', 'typo'],
          'relevance: the match class of each item')
FROM rel;
SELECT is(j->>'sort', 'relevance', 'relevance is the default sort when q has words') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r05'))->'highlight', '[{"start": 0, "length": 6}]',
          'highlight of a name word at the start') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r06'))->'highlight', '[{"start": 5, "length": 6}]',
          'highlight of a word matched as a prefix ("Merinos")') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r17'))->'highlight', '[{"start": 6, "length": 6}]',
          'highlight offsets count code points, not bytes') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r10'))->'highlight', '[{"start": 5, "length": 6}]',
          'highlight of a substring inside a word') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r13'))->'highlight', '[{"start": 0, "length": 6}]',
          'highlight of the corrected word of a typo match') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r01'))->'highlight', '[]',
          'a SKU match highlights nothing in the name') FROM rel;
SELECT is(pg_temp.item(j, pg_temp.pid('r09')) - 'highlight',
          jsonb_build_object('id', pg_temp.pid('r09'), 'sku', 'TS-T2', 'name', 'Thermal Vest',
                             'price', 25.00, 'currency', 'USD', 'status', 'published',
                             'category', jsonb_build_object('id', pg_temp.cid('out'), 'name', 'Tap Outdoor'),
                             'match', 'text'),
          'an item has exactly the documented keys') FROM rel;

SELECT is(pg_temp.ids(catalog_api.search_products(q => 'socks mer', category_id => pg_temp.cid('root'))),
          pg_temp.pids('r07', 'r05'), 'two words in any order, the last as a prefix: newest id first');
SELECT is(pg_temp.item(catalog_api.search_products(q => 'socks mer', category_id => pg_temp.cid('root')),
                       pg_temp.pid('r05'))->'highlight',
          '[{"start": 0, "length": 3}, {"start": 7, "length": 5}]',
          'highlight of two words, in name order');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'merino-1', category_id => pg_temp.cid('root'))),
          ARRAY['sku_prefix'], 'a lower-case SKU prefix matches the SKU (upper(q))');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'merino-10', category_id => pg_temp.cid('root'))),
          ARRAY['sku_exact'], 'a lower-case exact SKU is an exact match');
-- A cursor belongs to the query, not to how its numbers were written.
SELECT is(catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'), min_price => 0.0,
              max_price => 1000.00, page_size => 2,
              cursor => catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'),
                            min_price => 0, max_price => 1000, page_size => 2)->>'next_cursor'),
          catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'), min_price => 0,
              max_price => 1000, page_size => 2,
              cursor => catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'),
                            min_price => 0, max_price => 1000, page_size => 2)->>'next_cursor'),
          'a cursor made with prices 0 and 1000 is valid for 0.0 and 1000.00');

-- Identifiers (a digit, and a separator or 6+ characters) are searched as
-- SKUs only: exact, prefix, substring; their parts are not words.  An exact
-- hit drops the substring class.
SELECT pg_temp.mk('i01', 'ZQ-ID-0042', 'Identifier Lamp', 40, 'other', 50);
SELECT pg_temp.mk('i02', 'ZQ-ID-00421', 'Identifier Lamp Large', 41, 'other', 51);
SELECT pg_temp.mk('i03', 'XZQ-ID-0042', 'Identifier Lamp Copy', 42, 'other', 52);
SELECT pg_temp.mk('i04', 'ZQ-LAMP-7', 'Zq Id Lamp', 43, 'other', 53);
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'zq-id-0042', category_id => pg_temp.cid('other'))),
          pg_temp.pids('i01', 'i02'),
          'an exact identifier: the product and the SKUs it starts, not the substring XZQ-ID-0042, not the words zq/id');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'ZQ-ID-0042', category_id => pg_temp.cid('other'))),
          ARRAY['sku_exact', 'sku_prefix'], 'identifier classes: exact then prefix');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'ID-0042', category_id => pg_temp.cid('other'))),
          pg_temp.pids('i03', 'i02', 'i01'),
          'a partial identifier: substring matches of the SKU, newest first, no word match of "id"');
-- A partial SKU is a substring only with a run of 3 letters or digits, from
-- which pg_trgm extracts a trigram; without one its index scan would read
-- the whole index.
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'AMP-7', category_id => pg_temp.cid('other'))),
          pg_temp.pids('i04'), 'a partial SKU with a run of 3 letters ("AMP-7") is a substring of ZQ-LAMP-7');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'P-7', category_id => pg_temp.cid('other'))),
          '{}'::bigint[], 'a partial SKU without a run of 3 letters or digits ("P-7") has no substring class');
SELECT is((catalog_api.product_facets(q => 'ZQ-ID-0042', category_id => pg_temp.cid('other')))->>'total', '2',
          'facets count an identifier as the search returns it');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'zq', category_id => pg_temp.cid('other'))),
          pg_temp.pids('i01', 'i02', 'i04'),
          'a token without a digit is a SKU prefix in byte order (XZQ is no prefix, 2 characters make no substring)');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'identifier lamp', category_id => pg_temp.cid('other'))),
          ARRAY['name', 'name', 'name'],
          'the names of identified products are still found by their words');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'),
                                                  status => 'draft')),
          pg_temp.pids('r15'), 'status draft finds only the draft');

------------------------------------------------------------------------------
-- Typo tolerance: the edit budget depends on the length of the query word.
-- The similarity preconditions show the dictionary lookup (pg_trgm, floor
-- 0.2) does return the word, so a refusal is the edit budget's.
------------------------------------------------------------------------------
SELECT ok(similarity('merxnx', 'merino') >= 0.2 AND similarity('ruckzazk', 'rucksack') >= 0.2
          AND similarity('wimdbrexkr', 'windbreaker') >= 0.2,
          'precondition: the refused typos are trigram-similar to the dictionary word');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'botaz', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], '5 characters, 1 edit: matches');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'btoas', category_id => pg_temp.cid('root'))),
          pg_temp.pids('t03'), '5 characters, 1 transposition (trigram similarity exactly 0.2, the floor): matches');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'bots', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], '4 characters, 1 edit (a missing letter of "botas"): no match');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'rucksazk', category_id => pg_temp.cid('root'))),
          pg_temp.pids('t02'), '8 characters, 1 edit: matches');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'ruckzazk', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], '8 characters, 2 edits: no match');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'wimdbreakr', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], '10 characters, 2 edits: matches');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'wndbreakr', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], '9 characters, 2 edits (two letters of "windbreaker" missing): matches, 2 edits from 9');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'wimdbrexkr', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], '10 characters, 3 edits: no match');
SELECT is(pg_temp.item(catalog_api.search_products(q => 'wimdbreakr', category_id => pg_temp.cid('root')),
                       pg_temp.pid('t01'))->'highlight',
          '[{"start": 0, "length": 11}]', 'a typo match highlights the corrected word');
-- Edits count characters, not bytes: u for a two-byte letter is one edit.
SELECT ok(similarity('muller', U&'m\00FCller') >= 0.2 AND similarity('uberzug', U&'\00FCberzug') >= 0.2
          AND similarity('muler', U&'m\00FCller') >= 0.2,
          'precondition: the non-ASCII typos are trigram-similar to the dictionary word');
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'muller', category_id => pg_temp.cid('uni'))),
          ARRAY['typo'], U&'6 characters, 1 edit of a non-ASCII letter ("muller" for "m\00FCller"): matches');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'muler', category_id => pg_temp.cid('uni'))),
          '{}'::bigint[], '5 characters, 2 edits, one of them a non-ASCII letter: no match');
SELECT is(pg_temp.item(catalog_api.search_products(q => 'muller', category_id => pg_temp.cid('uni')),
                       pg_temp.pid('u01'))->'highlight',
          '[{"start": 0, "length": 6}]', 'a non-ASCII typo match highlights the corrected word');
SELECT is(pg_temp.item(catalog_api.search_products(q => 'uberzug', category_id => pg_temp.cid('uni')),
                       pg_temp.pid('u02'))->'highlight',
          '[{"start": 0, "length": 7}]',
          'the corrected word is highlighted whatever the case of its non-ASCII first letter');
-- Highlights start and end where the parser's words do: a word after an en
-- dash or a curly quote (non-ASCII, not letters) is highlighted; a query
-- word other than the last matches whole words only, so it is not
-- highlighted inside a longer word, while the last word is a prefix.
SELECT is(pg_temp.item(catalog_api.search_products(q => q, category_id => pg_temp.cid('hl')),
                       pg_temp.pid(k))->'highlight', hl::jsonb, label)
FROM (VALUES
    ('zorbex', 'h01', '[{"start": 11, "length": 6}]', 'a word after an en dash is highlighted'),
    ('zorbex', 'h02', '[{"start": 1, "length": 6}]', 'a word inside curly quotes is highlighted'),
    ('zorbwool blanket', 'h03', '[{"start": 11, "length": 8}, {"start": 20, "length": 7}]',
     'a word that is not the last is highlighted as a whole word only, not inside a longer one'),
    ('blanket zorbwool', 'h03', '[{"start": 0, "length": 8}, {"start": 11, "length": 8}, {"start": 20, "length": 7}]',
     'the last word is highlighted as a prefix too'),
    ('zorbex -10', 'h04', '[{"start": 0, "length": 6}, {"start": 13, "length": 3}]',
     'a signed number ("-10" of "Merino-10") is highlighted right after the letter before it'),
    ('merino zorb', 'h04', '[{"start": 0, "length": 4}, {"start": 7, "length": 6}]',
     'a whole word ends at a hyphen; the last word is highlighted as a prefix'),
    ('zorbtil blanket', 'h05', '[{"start": 9, "length": 7}, {"start": 17, "length": 7}]',
     'a combining mark goes on with the word before it: a word that is not the last is not highlighted there'),
    ('zorbq', 'h06', '[{"start": 0, "length": 6}]',
     'a prefix highlight takes the combining mark after its last character: a character is never split from its marks'),
    ('zorbex 10', 'h04', '[{"start": 0, "length": 6}, {"start": 14, "length": 2}]',
     'a number after a hyphen ("10" of "Merino-10", the parser''s "-10") is found and highlighted by the number alone'),
    ('merino 10 zorbex', 'h04', '[{"start": 0, "length": 6}, {"start": 7, "length": 6}, {"start": 14, "length": 2}]',
     'the number after a hyphen, as a word that is not the last'),
    ('zorbgo zorbgadget', 'h07',
     '[{"start": 0, "length": 6}, {"start": 7, "length": 6}, {"start": 14, "length": 6}, {"start": 21, "length": 6},
       {"start": 28, "length": 6}, {"start": 35, "length": 6}, {"start": 42, "length": 6}, {"start": 63, "length": 10}]',
     'at most 8 ranges, each query word''s first occurrence before repeats: a word repeated nine times leaves room for the other'),
    ('zorbmix zorb', 'h08', '[{"start": 0, "length": 7}, {"start": 8, "length": 7}]',
     'overlapping ranges of two query words (a word and a prefix of it) merge, each within the name'),
    ('4 zorbclamp', 'h09', '[{"start": 9, "length": 1}, {"start": 13, "length": 9}]',
     'a plain number matches its signed form ("-4" of "Zorbhose-4")'))
    AS t(q, k, hl, label);
SELECT is(pg_temp.item(catalog_api.search_products(q => '4k zorbclamp', category_id => pg_temp.cid('hl')), pg_temp.pid('h09')),
          NULL, 'a word that starts with a digit but is no plain number ("4k") does not match a number and a word ("-4 K")');
-- pg_trgm moved to another schema, then that schema renamed: the typo
-- lookup's kept text names pg_trgm's schema, and the backend that ran it
-- (this one, above) must follow both (it failed with 42883 until it
-- reconnected)
SAVEPOINT trgm_move;
CREATE SCHEMA tap_trgm;
GRANT USAGE ON SCHEMA tap_trgm TO PUBLIC;   -- as public has it
ALTER EXTENSION pg_trgm SET SCHEMA tap_trgm;
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'botaz', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], 'a typo search after pg_trgm moved to another schema');
ALTER SCHEMA tap_trgm RENAME TO tap_trgm_renamed;
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'botaz', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], 'a typo search after pg_trgm''s schema was renamed');
ROLLBACK TO SAVEPOINT trgm_move;
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'botaz', category_id => pg_temp.cid('root'))),
          ARRAY['typo'], 'a typo search after the move was rolled back');
SELECT is(pg_temp.item(catalog_api.search_products(q => U&'\00FCberzug', category_id => pg_temp.cid('uni')),
                       pg_temp.pid('u02')) - 'id' - 'sku' - 'price' - 'currency' - 'status' - 'category',
          jsonb_build_object('name', U&'\00DCberzug Decke', 'match', 'name',
                             'highlight', '[{"start": 0, "length": 7}]'::jsonb),
          'a word highlights whatever the case of a non-ASCII letter');
SELECT is(pg_temp.item(catalog_api.search_products(q => U&'FFEEM\00DCH', category_id => pg_temp.cid('uni')),
                       pg_temp.pid('u01')) - 'id' - 'sku' - 'price' - 'currency' - 'status' - 'category',
          jsonb_build_object('name', U&'M\00FCller Kaffeem\00FChle', 'match', 'substring',
                             'highlight', '[{"start": 9, "length": 7}]'::jsonb),
          'a substring highlights case-insensitively, in characters, after a non-ASCII letter');

------------------------------------------------------------------------------
-- Page walks: every sort, with and without q, with and without a price
-- range, a leaf category, the whole catalog, drafts and archived products.
------------------------------------------------------------------------------
SELECT ok((SELECT count(*) > count(DISTINCT price) AND count(*) > count(DISTINCT created_at)
                  AND count(*) > count(DISTINCT name)
           FROM catalog.product WHERE id = ANY (pg_temp.filtered(pg_temp.cid('root'), NULL, NULL, 'published'))),
          'precondition: the fixture has equal prices, equal created_at and equal names');

CREATE TEMP TABLE combo AS
SELECT row_number() OVER () AS n, q, cat, minp, maxp, st, srt FROM (
    SELECT q, pg_temp.cid('root') AS cat, minp, maxp, NULL::text AS st, srt
    FROM unnest(ARRAY[NULL, 'merino', 'cap']) q,
         (VALUES (NULL::numeric, NULL::numeric), (10, 45)) pr (minp, maxp),
         unnest(ARRAY['relevance', 'price_asc', 'price_desc', 'newest', 'name']) srt
    UNION ALL
    SELECT q, pg_temp.cid('knit'), NULL, NULL, NULL, srt
    FROM unnest(ARRAY[NULL, 'cap']) q,
         unnest(ARRAY['relevance', 'price_asc', 'price_desc', 'newest', 'name']) srt
    UNION ALL
    SELECT 'merino', NULL, NULL, NULL, NULL, srt
    FROM unnest(ARRAY['relevance', 'price_asc', 'price_desc', 'newest', 'name']) srt
    UNION ALL
    SELECT q, pg_temp.cid('root'), NULL, NULL, st, srt
    FROM unnest(ARRAY[NULL, 'cap']) q, unnest(ARRAY['draft', 'archived']) st,
         unnest(ARRAY['relevance', 'newest', 'price_desc']) srt
) c;

-- A walk, or the error that stopped it (shown by the test that compares).
CREATE FUNCTION pg_temp.walk_or_error(q text, cat bigint, minp numeric, maxp numeric, st text, srt text,
                                      sizes integer[])
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN pg_temp.walk(q, cat, minp, maxp, st, srt, sizes)::text;
EXCEPTION WHEN others THEN
    RETURN format('walk %s failed: %s %s', sizes, SQLSTATE, SQLERRM);
END;
$$;

-- Run every combination; a phase is one state of the planner statistics.
CREATE TEMP TABLE walked (phase text, n bigint, label text, q text, cat bigint, minp numeric,
                          maxp numeric, st text, srt text,
                          f bigint[], w1 text, w2 text, w3 text, wm text);
CREATE FUNCTION pg_temp.walk_all(phase text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO walked
    SELECT phase, n,
           format('q %s, category %s, price %s..%s, status %s, sort %s',
                  coalesce(q, 'null'), coalesce((SELECT k FROM fxc WHERE id = cat), 'null'),
                  coalesce(minp::text, '-'), coalesce(maxp::text, '-'), coalesce(st, 'default'), srt),
           q, cat, minp, maxp, st, srt,
           pg_temp.unpaged(q, cat, minp, maxp, st, srt),
           pg_temp.walk_or_error(q, cat, minp, maxp, st, srt, '{1}'),
           pg_temp.walk_or_error(q, cat, minp, maxp, st, srt, '{2}'),
           pg_temp.walk_or_error(q, cat, minp, maxp, st, srt, '{3}'),
           pg_temp.walk_or_error(q, cat, minp, maxp, st, srt, '{2,1,3,100}')
    FROM combo;
$$;

SELECT pg_temp.walk_all('no statistics');
ANALYZE catalog.product;
SELECT pg_temp.walk_all('analyzed');

-- Walking pages of 1, 2, 3 and changing sizes gives the unpaged result:
-- same order, no duplicate, no gap.
SELECT is(format('%s | %s | %s | %s', w1, w2, w3, wm), format('%s | %s | %s | %s', f, f, f, f),
          format('pages (%s): %s', phase, label))
FROM walked ORDER BY phase DESC, n;

-- The unpaged result is right: without q, the filtered rows of the table in
-- the sort's order; with q, every sort orders the set relevance returns,
-- which has no duplicate and passes the filters.
SELECT CASE
    WHEN w.q IS NULL THEN
        is(w.f, pg_temp.ordered(pg_temp.filtered(w.cat, w.minp, w.maxp, coalesce(w.st, 'published')), w.srt),
           format('order (%s): %s', w.phase, w.label))
    -- 'cap' (3 characters: no typo class) by the documented classes in plain
    -- SQL; 'merino' under root by the hand-pinned relevance list (rel).
    WHEN w.srt = 'relevance' AND w.q = 'cap' THEN
        is(pg_temp.sorted(w.f),
           pg_temp.sorted(ARRAY(SELECT p.id FROM catalog.product p
                                WHERE p.id = ANY (pg_temp.filtered(w.cat, w.minp, w.maxp, coalesce(w.st, 'published')))
                                  AND (p.sku ILIKE '%cap%' OR p.name ILIKE '%cap%'
                                       OR p.search_doc @@ to_tsquery('simple', 'cap:*')))),
           format('set (%s): %s: the rows an independent SQL match gives', w.phase, w.label))
    WHEN w.srt = 'relevance' AND w.q = 'merino' AND w.cat = pg_temp.cid('root') THEN
        is(pg_temp.sorted(w.f),
           pg_temp.sorted(ARRAY(SELECT x FROM unnest(pg_temp.ids((SELECT j FROM rel))) x
                                WHERE x = ANY (pg_temp.filtered(w.cat, w.minp, w.maxp, coalesce(w.st, 'published'))))),
           format('set (%s): %s: the pinned relevance list, filtered', w.phase, w.label))
    WHEN w.srt = 'relevance' THEN
        ok(cardinality(w.f) > 0
           AND cardinality(w.f) = (SELECT count(DISTINCT x) FROM unnest(w.f) x)
           AND w.f <@ pg_temp.filtered(w.cat, w.minp, w.maxp, coalesce(w.st, 'published')),
           format('order (%s): %s: distinct, filtered, not empty', w.phase, w.label))
    ELSE
        is(w.f, pg_temp.ordered(r.f, w.srt), format('order (%s): %s', w.phase, w.label))
    END
FROM walked w
LEFT JOIN walked r ON r.phase = w.phase AND r.q = w.q AND r.cat IS NOT DISTINCT FROM w.cat
    AND r.minp IS NOT DISTINCT FROM w.minp AND r.st IS NOT DISTINCT FROM w.st AND r.srt = 'relevance'
ORDER BY w.phase DESC, w.n;

SELECT is(count(*), 0::bigint, 'with q, every sort returns the same set as relevance')
FROM walked w JOIN walked r ON r.phase = w.phase AND r.q = w.q AND r.cat IS NOT DISTINCT FROM w.cat
    AND r.minp IS NOT DISTINCT FROM w.minp AND r.st IS NOT DISTINCT FROM w.st AND r.srt = 'relevance'
WHERE pg_temp.sorted(w.f) <> pg_temp.sorted(r.f);
SELECT is(count(*), 0::bigint, 'statistics change the access path, never the result')
FROM walked a JOIN walked b ON a.n = b.n AND a.phase = 'no statistics' AND b.phase = 'analyzed'
WHERE a.f <> b.f;
SELECT is(catalog_api.search_products(category_id => pg_temp.cid('root'))->>'sort', 'newest',
          'without q the default sort is newest');
SELECT is(catalog_api.search_products(category_id => pg_temp.cid('root'), sort => 'relevance')->>'sort', 'newest',
          'relevance without q is newest');
SELECT is(catalog_api.search_products(category_id => pg_temp.cid('root'))#>'{items,0,match}', 'null'::jsonb,
          'without q an item has no match class');

------------------------------------------------------------------------------
-- Cursors
------------------------------------------------------------------------------
CREATE TEMP TABLE cur AS
SELECT catalog_api.search_products(q => 'cap', category_id => pg_temp.cid('root'), min_price => 10,
                                   max_price => 45, sort => 'price_asc', page_size => 2)->>'next_cursor' AS c,
       catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'),
                                   page_size => 2)->>'next_cursor' AS rc;
-- The query the cursor c belongs to, with one argument replaced.
CREATE FUNCTION pg_temp.with_cursor(c text, q text DEFAULT 'cap', cat bigint DEFAULT pg_temp.cid('root'),
                                    minp numeric DEFAULT 10, maxp numeric DEFAULT 45,
                                    st text DEFAULT NULL, srt text DEFAULT 'price_asc',
                                    ps integer DEFAULT 2)
RETURNS text LANGUAGE sql AS $$
    SELECT format('SELECT catalog_api.search_products(q => %L, category_id => %s, min_price => %s,'
                  ' max_price => %s, status => %L, sort => %L, page_size => %s, cursor => %L)',
                  q, coalesce(cat::text, 'NULL'), coalesce(minp::text, 'NULL'), coalesce(maxp::text, 'NULL'),
                  st, srt, ps, c)
$$;

SELECT ok(c IS NOT NULL AND rc IS NOT NULL, 'precondition: the first pages have a next_cursor') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c)), 'ok', 'the cursor with its own query') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, ps => 7)), 'ok', 'the cursor with another page_size') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, st => 'published')), 'ok',
          'the cursor with the default status written out') FROM cur;
-- every single character replaced, the last one included (its unused low bits)
SELECT is(count(*) FILTER (WHERE pg_temp.outcome(pg_temp.with_cursor(
              overlay(c placing CASE WHEN substr(c, i, 1) = 'A' THEN 'B' ELSE 'A' END from i for 1)))
              = '22023 cursor'),
          length(c)::bigint, 'a cursor with any one character changed fails with 22023 (field cursor)')
FROM cur, generate_series(1, length(c)) i GROUP BY c;
-- the last byte of the MAC flipped, whatever base64 position holds it
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rtrim(translate(replace(encode(
              set_byte(b, length(b) - 1, get_byte(b, length(b) - 1) # 1), 'base64'), E'\n', ''), '+/', '-_'), '='))),
          '22023 cursor', 'a cursor with the low bit of its last byte (the MAC''s) flipped fails')
FROM (SELECT decode(translate(c, '-_', '+/') || repeat('=', (4 - length(c) % 4) % 4), 'base64') AS b FROM cur) x;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(left(c, -1))), '22023 cursor', 'truncated by one character') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(left(c, length(c) / 2))), '22023 cursor', 'truncated by half') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c || 'A')), '22023 cursor', 'extended by one character') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c || 'AAAA')), '22023 cursor', 'extended by four characters') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c || '=')), '22023 cursor', 'with base64 padding') FROM cur;
-- A cursor that has a URL-safe character (some do not: pick one that does).
SELECT ok((SELECT count(*) FROM generate_series(1, 12) k
           WHERE catalog_api.search_products(q => 'cap', category_id => pg_temp.cid('root'),
                                             page_size => k)->>'next_cursor' ~ '[-_]') > 0,
          'precondition: some cursor of the query has a - or _');
SELECT is(pg_temp.outcome(pg_temp.with_cursor(translate(uc, '-_', '+/'))), '22023 cursor',
          'in the standard base64 alphabet')
FROM (SELECT catalog_api.search_products(q => 'cap', category_id => pg_temp.cid('root'),
                                         page_size => k)->>'next_cursor' AS uc
      FROM generate_series(1, 12) k) u
WHERE uc ~ '[-_]' LIMIT 1;
SELECT is(pg_temp.outcome(pg_temp.with_cursor('')), '22023 cursor', 'empty string');
SELECT is(pg_temp.outcome(pg_temp.with_cursor('not a cursor!')), '22023 cursor', 'garbage');
SELECT is(pg_temp.outcome(pg_temp.with_cursor(repeat('A', 3000))), '22023 cursor', '3000 characters');
SELECT is(pg_temp.outcome(pg_temp.with_cursor(
              translate(encode(decode(repeat(md5('tap'), 3), 'hex'), 'base64'), '+/=', '-_'))),
          '22023 cursor', 'well-formed base64 of the right size, not signed');
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rc)), '22023 cursor', 'a cursor of another query (q, sort, price)') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, q => 'caps')), '22023 cursor', 'reused with another q') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, q => NULL)), '22023 cursor', 'reused without q') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, cat => pg_temp.cid('knit'))), '22023 cursor',
          'reused with another category') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, cat => NULL)), '22023 cursor', 'reused without category') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, st => 'draft')), '22023 cursor', 'reused with another status') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, srt => 'price_desc')), '22023 cursor', 'reused with price_desc') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, srt => 'name')), '22023 cursor', 'reused with sort name') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, minp => 11)), '22023 cursor', 'reused with another min_price') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, maxp => 44)), '22023 cursor', 'reused with another max_price') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c, maxp => NULL)), '22023 cursor', 'reused without max_price') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rc, q => 'merino', minp => NULL, maxp => NULL, srt => 'relevance')),
          'ok', 'the relevance cursor with its own query') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rc, q => 'merinos', minp => NULL, maxp => NULL, srt => 'relevance')),
          '22023 cursor', 'the relevance cursor with another q') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rc, q => 'merino', minp => NULL, maxp => NULL, srt => 'newest')),
          '22023 cursor', 'the relevance cursor with another sort') FROM cur;

-- Key rotation: the newest key signs, every listed key verifies; a cursor
-- of a dropped key is foreign.
INSERT INTO catalog.signing_key (purpose, kid, secret)
VALUES ('cursor', 2, decode(repeat(md5('tap-search-key-2'), 2), 'hex'));
UPDATE cur SET rc = catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'),
                                                page_size => 2)->>'next_cursor';
SELECT is(get_byte(decode(translate(rc, '-_', '+/') || repeat('=', (4 - length(rc) % 4) % 4), 'base64'), 1), 2,
          'after a new key is added, cursors are signed with it (kid 2)') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c)), 'ok', 'a cursor of the older key still verifies') FROM cur;
-- the highest kid signs, not the newest row: kid 5, created before kid 2
INSERT INTO catalog.signing_key (purpose, kid, secret, created_at)
VALUES ('cursor', 5, decode(repeat(md5('tap-search-key-5'), 2), 'hex'), now() - interval '1 day');
SELECT is(get_byte(decode(translate(k, '-_', '+/') || repeat('=', (4 - length(k) % 4) % 4), 'base64'), 1), 5,
          'the highest kid signs (kid 5, whose row is older than kid 2''s)')
FROM (SELECT catalog_api.search_products(q => 'merino', category_id => pg_temp.cid('root'), page_size => 2)->>'next_cursor' AS k) x;
DELETE FROM catalog.signing_key WHERE purpose = 'cursor' AND kid = 5;
DELETE FROM catalog.signing_key WHERE purpose = 'cursor' AND kid = 1;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(c)), '22023 cursor', 'a cursor of a dropped key fails') FROM cur;
SELECT is(pg_temp.outcome(pg_temp.with_cursor(rc, q => 'merino', minp => NULL, maxp => NULL, srt => 'relevance')),
          'ok', 'a cursor of the remaining key verifies') FROM cur;

------------------------------------------------------------------------------
-- Facets: equal to a GROUP BY over the table for the same filters
------------------------------------------------------------------------------
-- The expected product_facets of the products ids (every status; the other
-- filters already applied), for the status st, the statuses the caller may
-- see, the category filter cat and the top N.
CREATE FUNCTION pg_temp.expected_facets(ids bigint[], cat bigint, st text, visible text[], top integer)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up (start, id, parent_id) AS (
        SELECT c.id, c.id, c.parent_id FROM catalog.category c
        UNION ALL
        SELECT up.start, c.id, c.parent_id FROM up JOIN catalog.category c ON c.id = up.parent_id
    ), node AS (   -- each category's facet: a root, a child of cat, or cat itself
        SELECT start, id FROM up
        WHERE CASE WHEN cat IS NULL THEN parent_id IS NULL
                   ELSE (start = cat AND id = cat) OR parent_id = cat END
    ), m AS (
        SELECT p.* FROM catalog.product p WHERE p.id = ANY (ids) AND p.status::text = ANY (visible)
    ), mine AS (
        SELECT * FROM m WHERE m.status::text = st
    ), cats AS (
        SELECT n.id, c.name, count(*) AS cnt FROM mine JOIN node n ON n.start = mine.category_id
        JOIN catalog.category c ON c.id = n.id GROUP BY n.id, c.name
    ), buckets AS (
        SELECT b.lo, b.hi, count(*) AS cnt FROM mine
        JOIN (VALUES (0, 10), (10, 25), (25, 50), (50, 100), (100, 250), (250, 500), (500, 1000),
                     (1000, NULL)) b (lo, hi)
          ON mine.price >= b.lo AND (b.hi IS NULL OR mine.price < b.hi)
        GROUP BY b.lo, b.hi
    )
    SELECT jsonb_build_object(
        'total', (SELECT count(*) FROM mine),
        'categories', coalesce((SELECT jsonb_agg(jsonb_build_object('id', id, 'name', name, 'count', cnt)
                                                 ORDER BY cnt DESC, id)
                                FROM (SELECT * FROM cats ORDER BY cnt DESC, id LIMIT top) t), '[]'),
        'status', coalesce((SELECT jsonb_agg(jsonb_build_object('status', s.status, 'count', s.cnt)
                                             ORDER BY s.status::catalog.product_status = 'published' DESC,
                                                      s.status::catalog.product_status)
                            FROM (SELECT status::text AS status, count(*) AS cnt FROM m GROUP BY status) s), '[]'),
        'price', coalesce((SELECT jsonb_agg(jsonb_build_object('min', lo, 'max', hi, 'count', cnt) ORDER BY lo)
                           FROM buckets), '[]'))
$$;

-- The matches of q in every status (as superuser), other filters applied.
CREATE FUNCTION pg_temp.matches_any_status(q text, cat bigint, minp numeric, maxp numeric)
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT CASE WHEN q IS NULL THEN pg_temp.filtered(cat, minp, maxp, NULL)
                ELSE pg_temp.unpaged(q, cat, minp, maxp, 'published', 'relevance')
                     || pg_temp.unpaged(q, cat, minp, maxp, 'draft', 'relevance')
                     || pg_temp.unpaged(q, cat, minp, maxp, 'archived', 'relevance') END
$$;

CREATE TEMP TABLE fcombo (n serial, q text, cat bigint, minp numeric, maxp numeric, st text, top integer);
INSERT INTO fcombo (q, cat, minp, maxp, st, top) VALUES
    (NULL, pg_temp.cid('root'), NULL, NULL, NULL, 10),
    (NULL, pg_temp.cid('root'), 10, 45, NULL, 10),
    (NULL, pg_temp.cid('root'), NULL, NULL, NULL, 1),
    (NULL, pg_temp.cid('out'), NULL, NULL, NULL, 10),
    (NULL, pg_temp.cid('knit'), NULL, NULL, 'draft', 10),
    ('merino', pg_temp.cid('root'), NULL, NULL, NULL, 10),
    ('merino', pg_temp.cid('root'), NULL, NULL, NULL, 2),
    ('merino', NULL, NULL, NULL, NULL, 10),
    ('cap', pg_temp.cid('root'), 10, 45, NULL, 10),
    ('cap', pg_temp.cid('root'), NULL, NULL, 'draft', 10),
    ('cap', pg_temp.cid('out'), NULL, NULL, 'archived', 10);

SELECT is(catalog_api.product_facets(q => q, category_id => cat, min_price => minp, max_price => maxp,
                                     status => st, top => top),
          pg_temp.expected_facets(pg_temp.matches_any_status(q, cat, minp, maxp), cat, coalesce(st, 'published'),
                                  ARRAY['published', 'draft', 'archived'], top),
          format('facets (superuser) of q %s, category %s, price %s..%s, status %s, top %s',
                 coalesce(q, 'null'), coalesce((SELECT k FROM fxc WHERE id = cat), 'null'),
                 coalesce(minp::text, '-'), coalesce(maxp::text, '-'), coalesce(st, 'default'), top))
FROM fcombo ORDER BY n;
SELECT is((catalog_api.product_facets(q => q, category_id => cat, min_price => minp, max_price => maxp,
                                      status => st)->>'total')::integer,
          cardinality(pg_temp.walk(q, cat, minp, maxp, st, NULL, '{3}')),
          format('facet total = items of a page walk: q %s, category %s, price %s..%s, status %s',
                 coalesce(q, 'null'), coalesce((SELECT k FROM fxc WHERE id = cat), 'null'),
                 coalesce(minp::text, '-'), coalesce(maxp::text, '-'), coalesce(st, 'default')))
FROM fcombo ORDER BY n;
SELECT ok(catalog_api.product_facets(category_id => pg_temp.cid('root'))->'categories'
              @> jsonb_build_array(jsonb_build_object('id', pg_temp.cid('root'))),
          'the filter category itself is a facet when it holds products directly');
SELECT is(jsonb_array_length(catalog_api.product_facets(category_id => pg_temp.cid('root'), top => 1)->'categories'), 1,
          'top limits the category facets');

-- A price is a number: NaN (which numeric(12,2) accepts and which sorts
-- above every number, so price >= 0 lets it pass) is refused by the table
-- itself, for a direct write too; facets without a price range count every
-- row of the statuses and rely on it.
SELECT throws_ok($$UPDATE catalog.product SET price = 'NaN'
                   WHERE id = (SELECT min(id) FROM catalog.product)$$,
                 '23514', NULL, 'a direct write of a NaN price violates product_price_range');
SELECT throws_ok($$INSERT INTO catalog.product (sku, name, price, currency, category_id,
                                                  created_by, updated_by)
                   VALUES ('NAN-1', 'Not A Number', 'NaN', 'USD', pg_temp.cid('root'), 'test', 'test')$$,
                 '23514', NULL, 'a direct insert of a NaN price violates product_price_range');

-- As catalog_anon: only published products are counted, in every facet.
CREATE TEMP TABLE anon_facets (n integer, j jsonb);
GRANT SELECT ON fcombo TO PUBLIC;
GRANT INSERT ON anon_facets TO PUBLIC;
SET LOCAL ROLE catalog_anon;
INSERT INTO anon_facets
SELECT n, catalog_api.product_facets(q => q, category_id => cat, min_price => minp, max_price => maxp, top => top)
FROM fcombo WHERE st IS NULL;
RESET ROLE;
SELECT is(a.j,
          pg_temp.expected_facets(pg_temp.matches_any_status(q, cat, minp, maxp), cat, 'published',
                                  ARRAY['published'], top),
          format('facets (anon) of q %s, category %s, price %s..%s, top %s',
                 coalesce(q, 'null'), coalesce((SELECT k FROM fxc WHERE id = cat), 'null'),
                 coalesce(minp::text, '-'), coalesce(maxp::text, '-'), top))
FROM fcombo f JOIN anon_facets a USING (n) ORDER BY n;

------------------------------------------------------------------------------
-- Validation
------------------------------------------------------------------------------
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(sort => 'best')$$), '22023 sort', 'unknown sort');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(sort => 'PRICE_ASC')$$), '22023 sort',
          'sort names are case-sensitive');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(status => 'deleted')$$), '22023 status', 'unknown status');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(status => 'deleted')$$), '22023 status',
          'facets: unknown status');
-- Search options out of range are invalid options (22023, like an unknown
-- sort), as the search contract says.
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(page_size => 0)$$), '22023 page_size', 'page_size 0');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(page_size => 101)$$), '22023 page_size', 'page_size 101');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(page_size => -1)$$), '22023 page_size', 'page_size -1');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(top => 0)$$), '22023 top', 'facets: top 0');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(top => 101)$$), '22023 top', 'facets: top 101');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(top => 100)$$), 'ok', 'facets: top 100');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(min_price => 20, max_price => 10)$$),
          '22023 max_price', 'min_price above max_price');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(min_price => 20, max_price => 10)$$),
          '22023 max_price', 'facets: min_price above max_price');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(min_price => 10, max_price => 10)$$), 'ok',
          'min_price equal to max_price');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(min_price => -1)$$), '22003 min_price',
          'negative min_price: 22003 on min_price');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(max_price => -0.01)$$), '22003 max_price',
          'negative max_price: 22003 on max_price');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(min_price => 1.001)$$), '22003 min_price',
          'a price with 3 decimals: 22003');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(max_price => 'NaN')$$), '22003 max_price',
          'NaN price: 22003');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(category_id => 9223372036854775807)$$), 'PT404',
          'unknown category_id');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(category_id => 9223372036854775807)$$), 'PT404',
          'facets: unknown category_id');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(category_id => 0)$$), '22003 category_id',
          'category_id 0: 22003 out of range');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat('a', 201))), '22001 q',
          'q of 201 code points');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat(U&'\00E9', 201))), '22001 q',
          'q of 201 two-byte code points');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat(U&'\00E9', 200))), 'ok',
          'q of 200 two-byte code points');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(q => '<script>alert(1)</script>')$$), '22023 q',
          'q with markup');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(q => 'wool &lt;b&gt;')$$), '22023 q',
          'q with encoded markup');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(q => '<b>wool</b>')$$), '22023 q', 'facets: q with markup');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', 'wool' || chr(7))), '22023 q',
          'q with a control character');
SET LOCAL ROLE catalog_anon;
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(status => 'draft')$$), '42501 status', 'anon: status draft');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(status => 'archived')$$), '42501 status',
          'anon: status archived');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(status => 'draft')$$), '42501 status',
          'anon: facets of drafts');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(status => 'published')$$), 'ok', 'anon: status published');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(min_price => '1e131071')$$), '22003 min_price',
          'anon: a min_price of 1e131071 is out of range (compared, not printed)');
SELECT is(pg_temp.outcome($$SELECT catalog_api.product_facets(max_price => '-1e131071')$$), '22003 max_price',
          'anon: a facets max_price of -1e131071 is negative');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'merino draft', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], 'anon: a draft is not found by its name');
SELECT throws_ok('SET LOCAL catalog.search_timeout = 10', '42501', NULL, 'anon: catalog.search_timeout cannot be set');
RESET ROLE;

------------------------------------------------------------------------------
-- Pathological inputs: a normal result or a 22xxx error, within the search
-- timeout (a call that ran past it would fail with 57014, not pass).
------------------------------------------------------------------------------
SELECT is(pg_temp.unpaged('50% Off', pg_temp.cid('root'), NULL, NULL, NULL, NULL), pg_temp.pids('p01'),
          'q "50% Off" finds "50% Off_Sale Item"');
SELECT is(pg_temp.ids(catalog_api.search_products(q => '0%_Off', category_id => pg_temp.cid('root'))),
          pg_temp.pids('p02'),
          'q "0%_Off": % and _ are literal in the substring class ("10%_Off" matches, "50% Off" does not)');
SELECT is(pg_temp.matches(catalog_api.search_products(q => '0%_Off', category_id => pg_temp.cid('root'))),
          ARRAY['substring'], 'q "0%_Off" is a substring match');
-- parse_request: a q with no word, no SKU-like token and no run of 3
-- letters or digits has no text condition; it searches by the filters only
-- (like an empty q), it never becomes a LIKE wildcard.  The reference is
-- not empty, so the comparisons below can fail.
SELECT cmp_ok(cardinality(pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL)), '>', 1,
              'the filters-only reference of the checks below has rows');
SELECT is(pg_temp.unpaged('%', pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          'q "%" has no text condition: the filters-only result');
SELECT is(pg_temp.unpaged('_', pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          'q "_" has no text condition: the filters-only result');
-- Symbols are no word characters for pg_trgm (three stars, U+2605): no
-- trigram, so no substring pattern.
SELECT is(pg_temp.unpaged(U&'\2605\2605\2605', pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          'q of three symbols has no text condition: the filters-only result');
SELECT is(pg_temp.unpaged('%%% ___', pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          'q "%%% ___" has no text condition: the filters-only result');
SELECT is(pg_temp.ids(catalog_api.search_products(q => '%Off%', category_id => pg_temp.cid('root'))),
          pg_temp.pids('p02', 'p01'), 'q "%Off%" matches the word off only, % is no wildcard');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'Sale Item\', category_id => pg_temp.cid('root'))),
          pg_temp.pids('p01'), 'a trailing backslash is literal (no broken LIKE escape)');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat(' ', 10000))), '22001 q',
          '10,000 spaces: refused as too long before canonicalisation');
SELECT is(pg_temp.unpaged(repeat(' ', 1000), pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.unpaged(NULL, pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          '1,000 spaces: canonically empty, the filters-only result');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', '.*(a|b)+$')), 'ok',
          'regular expression syntax is plain text');
SELECT is(pg_temp.ids(catalog_api.search_products(q => '.*(merino|socks)+$', category_id => pg_temp.cid('root'))),
          pg_temp.pids('r07', 'r05'), 'regular expression syntax: its words, all of them');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', 'wool & !sock | (a <-> b):*')), 'ok',
          'tsquery syntax is plain text');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'merino & !socks', category_id => pg_temp.cid('root'))),
          pg_temp.pids('r07', 'r05'), 'tsquery syntax: "!" negates nothing, both words are required');
SELECT is(pg_temp.ids(catalog_api.search_products(q => $$merino' | 'wool$$, category_id => pg_temp.cid('root'))),
          pg_temp.pids('r08'), 'quotes cannot break out of a tsquery operand: both words are required');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)',
                                 (SELECT string_agg('word' || i, ' ') FROM generate_series(1, 200) i))),
          '22001 q', '200 words: too long');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)',
                                 (SELECT string_agg('w' || i, ' ') FROM generate_series(1, 40) i))),
          'ok', '40 short words under 200 characters');
SELECT is(pg_temp.ids(catalog_api.search_products(
              q => 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo',
              category_id => pg_temp.cid('root'))),
          pg_temp.pids('t04'), 'only the first 10 words are used (kilo is in no product)');
SELECT is(pg_temp.ids(catalog_api.search_products(
              q => 'alpha bravo charlie delta echo foxtrot golf hotel india kilo',
              category_id => pg_temp.cid('root'))),
          '{}'::bigint[], 'the 10th word is used (kilo as the 10th word matches nothing)');
SELECT is(pg_temp.ids(catalog_api.search_products(q => repeat('alpha ', 10) || 'kilo', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], 'the first 10 distinct words: a word written ten times counts once, so kilo is used');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(q => 'x')$$), 'ok', 'a single character');
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(q => '-')$$), 'ok', 'a single punctuation character');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat('m', 200))), 'ok',
          'one token of 200 characters');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.search_products(q => %L)', repeat('ab1-', 50))), 'ok',
          'one compound token of 200 characters');
SELECT is(pg_temp.outcome(format('SELECT catalog_api.product_facets(q => %L)', repeat('m', 200))), 'ok',
          'facets: one token of 200 characters');
-- A word longer than 64 bytes is a word like any other (it was dropped,
-- and the other words matched alone).
SELECT pg_temp.mk('lw1', 'TS-LW1', 'Zanzibark ' || repeat('q', 70), 15, 'root', 60);
SELECT is(pg_temp.ids(catalog_api.search_products(q => repeat('q', 70) || ' zanzibark')), pg_temp.pids('lw1'),
          'a word of 70 letters matches the product that has it');
SELECT is(pg_temp.ids(catalog_api.search_products(q => repeat('x', 65) || ' socks', category_id => pg_temp.cid('root'))),
          '{}'::bigint[], 'a word of 65 letters no product has: no match, whatever the other words match');
SELECT is(catalog_api.product_facets(q => repeat('x', 65) || ' socks', category_id => pg_temp.cid('root')) ->> 'total',
          '0', 'facets: a word of 65 letters no product has counts nothing');
-- Lone surrogates.  As six plain characters they are ordinary text.
SELECT is(pg_temp.outcome($$SELECT catalog_api.search_products(q => '\ud800')$$), 'ok',
          'the six characters \ud800 are plain text');
-- As an escape (E'\uD800', U&'\D800') PostgreSQL's own lexer refuses it
-- (42601) before any function is called: a lone surrogate cannot exist in a
-- text value, so there is nothing of ours to test there.
-- Its UTF-8 bytes (ED A0 80) are invalid UTF-8, refused on conversion to text (22021).
SELECT throws_ok($$SELECT catalog_api.search_products(q => convert_from('\xeda080', 'UTF8'))$$, '22021', NULL,
                 'the UTF-8 bytes of a lone surrogate are refused before the call (22021)');
-- In JSON (how PostgREST passes arguments) the jsonb parser refuses it (22P02).
SELECT throws_ok($$SELECT catalog_api.search_products(q => '"\ud800"'::jsonb->>0)$$, '22P02', NULL,
                 'a lone surrogate in JSON is refused by the jsonb parser (22P02)');
-- NUL cannot be part of a text value at all: nothing to test.

------------------------------------------------------------------------------
-- catalog.search_timeout: a superuser setting (the deterministic timeout
-- test is test/isolation/specs/search_timeout.spec).
------------------------------------------------------------------------------
SET LOCAL catalog.search_timeout = 5000;
SELECT is(current_setting('catalog.search_timeout'), '5s', 'a superuser sets catalog.search_timeout');
SELECT is(pg_temp.unpaged('merino', pg_temp.cid('root'), NULL, NULL, NULL, NULL),
          pg_temp.ids((SELECT j FROM rel)), 'search under a changed timeout');

------------------------------------------------------------------------------
-- The typo dictionary trigger: a multi-row statement adds each new word
-- once; a rename adds the new word; a statement that changes nothing adds
-- nothing; short words, words with digits and compound tokens stay out.
------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term IN ('quokkaberry', 'wombat', 'ferns')), 0::bigint,
          'precondition: the new words are not in the dictionary yet');
INSERT INTO catalog.product (sku, name, status, category_id, price, currency, created_by, updated_by)
SELECT 'TS-DICT-' || g, 'Quokkaberry Quokkaberry Lamp Zebraxx9 Wombat-Ferns ' || g, 'published',
       pg_temp.cid('other'), 5, 'USD',
       'pgtap-search', 'pgtap-search'
FROM generate_series(1, 3) g;
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term = 'quokkaberry'), 1::bigint,
          'a three-row INSERT adds its new word once');
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term IN ('lamp', 'zebraxx9', 'wombat-ferns')),
          0::bigint, 'words under 5 characters, with a digit, or with a hyphen are not dictionary words');
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term IN ('wombat', 'ferns')), 2::bigint,
          'the parts of a hyphenated name word are');
CREATE TEMP TABLE dict_before AS SELECT count(*) AS n FROM catalog.search_term;
UPDATE catalog.product SET name = name WHERE sku LIKE 'TS-DICT-%';
SELECT is((SELECT count(*) FROM catalog.search_term), (SELECT n FROM dict_before),
          'an UPDATE that brings no new word adds nothing');
UPDATE catalog.product SET name = 'Wombatfern Lamp' WHERE sku = 'TS-DICT-1';
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term = 'wombatfern'), 1::bigint,
          'a rename adds the new word');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'wombatfren', category_id => pg_temp.cid('other'))),
          ARRAY[(SELECT id FROM catalog.product WHERE sku = 'TS-DICT-1')],
          'and a typo of the new word finds the renamed product');
SELECT lives_ok($$UPDATE catalog.product SET name = name WHERE sku = 'TS-NO-SUCH-SKU'$$,
                'an UPDATE of no row runs the trigger on an empty transition table');

-- The word insert runs as the trigger function's owner with search_path
-- and row_security pinned, and only it: an editor (no privilege on the
-- dictionary) adds new words through the API; with row_security off (as a
-- restore sets it) the owner's forced policy still filters instead of
-- failing the write; the caller's user and settings are its own again after.
SELECT set_config('tap.dict_cat', pg_temp.cid('other')::text, true) IS NOT NULL AS cat_set;
SET LOCAL ROLE catalog_editor;
SELECT lives_ok($$SELECT catalog_api.create_product(sku => 'TS-DICT-ED', name => 'Echidnoid Lamp',
                      price => 1, category_id => current_setting('tap.dict_cat')::bigint)$$,
                'an editor creates a product with a new word');
SELECT is(current_user::text, 'catalog_editor', 'the trigger gave the user back');
SELECT throws_ok($$INSERT INTO catalog.search_term (term) VALUES ('editorword')$$, '42501', NULL,
                 'the editor has no privilege on the dictionary itself');
RESET ROLE;
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term = 'echidnoid'), 1::bigint,
          'the editor''s new word is in the dictionary');
-- A role that may insert products directly but has no privilege on the
-- dictionary (a loader; the API's owner has both).
CREATE ROLE tap_dict_loader NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA catalog TO tap_dict_loader;
GRANT INSERT ON catalog.product TO tap_dict_loader;
GRANT USAGE ON SEQUENCE catalog.product_id_seq TO tap_dict_loader;
SET LOCAL ROLE tap_dict_loader;
SELECT lives_ok($$INSERT INTO catalog.product (sku, name, status, category_id, price, currency, created_by, updated_by)
                  VALUES ('TS-DICT-LD', 'Wallabyish Lamp', 'published', current_setting('tap.dict_cat')::bigint,
                          5, 'USD', 'pgtap-search', 'pgtap-search')$$,
                'a loader without privileges on the dictionary inserts a product with a new word');
SELECT is(current_user::text, 'tap_dict_loader', 'the trigger gave the loader its user back');
RESET ROLE;
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term = 'wallabyish'), 1::bigint,
          'the loader''s new word is in the dictionary (inserted with the owner''s rights)');
SET LOCAL row_security = off;
SELECT lives_ok($$INSERT INTO catalog.product (sku, name, status, category_id, price, currency, created_by, updated_by)
                  VALUES ('TS-DICT-RLS', 'Platypoid Lamp', 'published', current_setting('tap.dict_cat')::bigint,
                          5, 'USD', 'pgtap-search', 'pgtap-search')$$,
                'with row_security off a write still adds its new words');
SELECT is((SELECT count(*) FROM catalog.search_term WHERE term = 'platypoid'), 1::bigint,
          'the word is in the dictionary');
SELECT is(current_setting('row_security'), 'off', 'the caller''s row_security is its own again');
SET LOCAL row_security = on;

-- The refresh rebuilds exactly the words an independent SQL derivation
-- gives (weight-A lexemes of 5 to 64 characters without digit or hyphen).
SELECT is(catalog_api.refresh_search_terms(),
          (SELECT count(DISTINCT (l.lexeme, p.status)) FROM catalog.product p,
                  unnest(p.search_doc) AS l (lexeme, positions, weights)
           WHERE 'A' = ANY (l.weights) AND length(l.lexeme) BETWEEN 5 AND 64
             AND l.lexeme !~ '[-0-9]'),
          'refresh_search_terms returns the number of dictionary entries (a word and a status)');
SELECT set_eq($$SELECT term, status FROM catalog.search_term$$,
              $$SELECT DISTINCT l.lexeme, p.status FROM catalog.product p,
                       unnest(p.search_doc) AS l (lexeme, positions, weights)
                WHERE 'A' = ANY (l.weights) AND length(l.lexeme) BETWEEN 5 AND 64
                  AND l.lexeme !~ '[-0-9]'$$,
              'after a refresh the dictionary is exactly the words of the products with their statuses, once each');

-- The words of drafts never change what a search of published products
-- finds: eight draft words closer to "zephyrone" (by similarity, at the
-- same distance) than the published "zephyrine" would otherwise take every
-- correction slot, and the published product would vanish for catalog_anon
-- (telling it that such drafts exist).  Draft searches still use them.
SELECT pg_temp.mk('zp', 'TS-ZEPH-PUB', 'Zephyrine Scarf', 5, 'other', 900);
SELECT pg_temp.mk('zd' || c, 'TS-ZEPH-D' || upper(c), 'Zephyron' || c || ' Shawl', 5, 'other', 901, NULL, '{}', 'draft')
FROM unnest(ARRAY['a', 'b', 'c', 'd', 'f', 'g', 'h', 'i']) c;
SELECT set_config('tap.zeph', pg_temp.pid('zp')::text, true) IS NOT NULL AS zeph_set;
SET LOCAL ROLE catalog_anon;
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'zephyrone')), ARRAY[current_setting('tap.zeph')::bigint],
          'anonymous typo search: the published product is found, whatever words drafts have');
SELECT is((catalog_api.product_facets(q => 'zephyrone') ->> 'total')::integer, 1,
          'anonymous facets of the same typo count it');
RESET ROLE;
SET LOCAL ROLE catalog_editor;
SELECT is(jsonb_array_length(catalog_api.search_products(q => 'zephyrone', status => 'draft') -> 'items'), 8,
          'a draft search corrects against the drafts'' words');
SELECT is(pg_temp.ids(catalog_api.search_products(q => 'zephyrone')), ARRAY[current_setting('tap.zeph')::bigint],
          'an editor''s search of published products corrects against published words');
SELECT is((catalog_api.product_facets(q => 'zephyrone') ->> 'total')::integer, 1,
          'an editor''s facets of published products count what the search returns (the drafts'' words took every slot)');
SELECT is(catalog_api.product_facets(q => 'zephyrone', status => 'draft') ->> 'total', '8',
          'an editor''s facets of drafts count what the draft search returns');
RESET ROLE;

------------------------------------------------------------------------------
-- An identifier's walk keeps the first page's decision: a product given the
-- SKU q between two pages (which would make the search an exact-SKU one,
-- without substring matches) must not drop the substring matches not yet
-- shown.
------------------------------------------------------------------------------
INSERT INTO fxc VALUES ('ident', (catalog_api.create_category(name => 'Tap Ident',
    slug => 'tap-search-ident-' || pg_backend_pid())->>'id')::bigint);
SELECT pg_temp.mk('i1', 'XQJ-700', 'Ident One', 5, 'ident', 1);
SELECT pg_temp.mk('i2', 'YQJ-700', 'Ident Two', 5, 'ident', 2);
SELECT pg_temp.mk('i3', 'ZQJ-700', 'Ident Three', 5, 'ident', 3);
CREATE TEMP TABLE idwalk (n integer PRIMARY KEY, j jsonb NOT NULL);
INSERT INTO idwalk SELECT 1, catalog_api.search_products(q => 'QJ-700', category_id => pg_temp.cid('ident'),
                                                         page_size => 1);
SELECT is((SELECT pg_temp.matches(j) FROM idwalk WHERE n = 1), ARRAY['substring'],
          'identifier walk: the first page is a substring match (no product has the SKU q yet)');
SELECT pg_temp.mk('i4', 'QJ-700', 'Ident Exact', 5, 'ident', 4);
SELECT is(pg_temp.matches(catalog_api.search_products(q => 'QJ-700', category_id => pg_temp.cid('ident'))),
          ARRAY['sku_exact'], 'identifier walk: a new search is now an exact-SKU one');
INSERT INTO idwalk
WITH RECURSIVE w (n, j) AS (
    SELECT n, j FROM idwalk WHERE n = 1
    UNION ALL
    SELECT w.n + 1, catalog_api.search_products(q => 'QJ-700', category_id => pg_temp.cid('ident'),
                                                page_size => 1, cursor => w.j->>'next_cursor')
    FROM w WHERE w.j->>'next_cursor' IS NOT NULL AND w.n < 10)
SELECT n, j FROM w WHERE n > 1;
SELECT is((SELECT array_agg(x ORDER BY x) FROM (SELECT (i->>'id')::bigint AS x FROM idwalk,
               jsonb_array_elements(idwalk.j->'items') i) s
           WHERE x = ANY (pg_temp.pids('i1', 'i2', 'i3'))),
          pg_temp.sorted(pg_temp.pids('i1', 'i2', 'i3')),
          'identifier walk: every substring match that existed on the first page is shown once');

------------------------------------------------------------------------------
-- The pending lists of the search indexes stay small: every search scans a
-- GIN index's pending list in full (catalog--1.0.sql sets 512 kB).
------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM pg_class c
           WHERE c.oid IN ('catalog.product_search_doc_idx'::regclass, 'catalog.product_name_trgm_idx'::regclass,
                           'catalog.product_sku_trgm_idx'::regclass)
             AND c.reloptions @> ARRAY['gin_pending_list_limit=512']), 3::bigint,
          'the three GIN indexes of catalog.product have a pending list limit of 512 kB');
CREATE EXTENSION IF NOT EXISTS pgstattuple;
-- No autovacuum on the table until this transaction ends (the setting is
-- rolled back with it; its lock cancels a running one): a vacuum cleaning
-- a list while the inserts add to it could leave the list past the limit,
-- which is the vacuum's doing, not the setting's.
ALTER TABLE catalog.product SET (autovacuum_enabled = false);
DO $$ BEGIN
    PERFORM gin_clean_pending_list(i) FROM unnest(ARRAY['catalog.product_search_doc_idx'::regclass,
        'catalog.product_name_trgm_idx'::regclass, 'catalog.product_sku_trgm_idx'::regclass]) i;
END $$;
-- 3,000 products, about 1.1 MB of pending entries in the search_doc index
INSERT INTO catalog.product (sku, name, description, status, category_id, price, currency, created_by, updated_by)
SELECT 'PEND-' || pg_backend_pid() || '-' || g,
       'Pending Item ' || g || ' ' || md5(g::text), 'A description of pending item ' || md5((g * 7)::text),
       'published', (SELECT id FROM fxc WHERE k = 'knit'), 1, 'USD', 'pgtap', 'pgtap'
FROM generate_series(1, 3000) g;
SELECT cmp_ok((pgstatginindex(i)).pending_pages, '<=', 66,
              i::text || ': at most 512 kB of pending pages after 3,000 inserts')
FROM unnest(ARRAY['catalog.product_search_doc_idx'::regclass, 'catalog.product_name_trgm_idx'::regclass,
                  'catalog.product_sku_trgm_idx'::regclass]) i;

SELECT * FROM finish();
ROLLBACK;
