-- test/bench/search_cost_queries.sql: the query set of test/bench/search_cost.sh.
--
-- Prints one statement per line: catalog_api.search_products over words of
-- the loaded products (the sample generator's, so the same seed gives the
-- same set on every build), one in 667 products, published ones only, by
-- kind (id / 667 mod 6): 0 one word (the name's last but one, which can be
-- a number), 1 two words, 2 a prefix of 4 letters, 3 a partial SKU (its
-- first 6 characters), 4 a typo (the name's longest word with two letters
-- swapped), 5 filters only (the product's department); half of them and
-- every filter query with the department; sorts relevance, newest and
-- price_asc by id mod 5.  Each statement returns the length of the
-- document, so the result is read in full.
WITH p AS (
    SELECT id, sku, category_id, regexp_split_to_array(lower(name), '\s+') AS w,
           (id / 667) % 6 AS kind
    FROM catalog.product
    WHERE id % 667 = 3 AND status = 'published'
), q AS (
    SELECT id, kind,
           CASE kind
               WHEN 0 THEN w[array_length(w, 1) - 1]
               WHEN 1 THEN w[array_length(w, 1) - 2] || ' ' || w[array_length(w, 1) - 1]
               WHEN 2 THEN left(w[array_length(w, 1)], 4)
               WHEN 3 THEN left(sku, 6)
               WHEN 4 THEN (SELECT CASE WHEN length(x) >= 5
                                        THEN left(x, 2) || substr(x, 4, 1) || substr(x, 3, 1) || substr(x, 5)
                                        ELSE x END
                            FROM unnest(w) x ORDER BY length(x) DESC, x LIMIT 1)
           END AS words,
           (SELECT coalesce(c.parent_id, c.id) FROM catalog.category c WHERE c.id = p.category_id) AS dept
    FROM p
)
SELECT format('SELECT length(catalog_api.search_products(q => %L, category_id => %s, sort => %L)::text);',
              words,
              CASE WHEN id % 2 = 0 OR kind = 5 THEN dept::text ELSE 'NULL' END,
              CASE id % 5 WHEN 0 THEN 'newest' WHEN 1 THEN 'price_asc' ELSE 'relevance' END)
FROM q
ORDER BY id;
