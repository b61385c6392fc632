-- test/bench/product_plain.sql: the baseline table of the write benchmarks
-- (test/bench/run.sh and test/bench/cost.sh): a copy of catalog.product
-- with the same columns, indexes (with their settings), checks and foreign
-- key, and no trigger, holding the same rows, so that both arms insert
-- into tables of the same size.  Needs the schema bench.
CREATE TABLE bench.product_plain (LIKE catalog.product INCLUDING ALL);
-- Every column but the generated ones (the copy computes those itself).
DO $copy$
DECLARE
    cols text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_catalog.pg_attribute
    WHERE attrelid = 'catalog.product'::regclass AND attnum > 0 AND NOT attisdropped
      AND attgenerated = '';
    EXECUTE pg_catalog.format('INSERT INTO bench.product_plain (%s) SELECT %s FROM catalog.product ORDER BY id',
                              cols, cols);
END
$copy$;
ALTER TABLE bench.product_plain
    ADD CONSTRAINT product_plain_category_id_fkey FOREIGN KEY (category_id)
    REFERENCES catalog.category (id) ON DELETE RESTRICT;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('bench.product_plain', 'id'),
                         (SELECT pg_catalog.max(id) FROM bench.product_plain));
