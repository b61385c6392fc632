--
-- category: create, update (rename, move), list, tree guard (pg_regress).
--
\set SHOW_CONTEXT never
SET catalog.actor = 'regress-user';

SELECT c - 'id' AS root FROM catalog_api.create_category(name => ' Home  &  Kitchen ', slug => 'Home-Kitchen') AS c;
SELECT id AS home FROM catalog.category WHERE slug = 'home-kitchen' \gset
SELECT (c->>'parent_id')::bigint = :home AS under_home, c->>'slug' AS slug
FROM catalog_api.create_category(name => 'Cookware', slug => 'cookware', parent_id => :home) AS c;
SELECT id AS cookware FROM catalog.category WHERE slug = 'cookware' \gset
SELECT c->>'slug' AS slug FROM catalog_api.create_category(name => 'Frying Pans', slug => 'frying-pans', parent_id => :cookware) AS c;
SELECT id AS pans FROM catalog.category WHERE slug = 'frying-pans' \gset
SELECT c->>'slug' AS slug FROM catalog_api.create_category(name => 'Garden', slug => 'garden') AS c;
SELECT id AS garden FROM catalog.category WHERE slug = 'garden' \gset

-- validation and conflicts
SELECT catalog_api.create_category(name => 'Dup', slug => 'garden');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => 'Bad slug', slug => 'bad slug!');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => 'Bad slug', slug => 'double--dash');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => 'Orphan', slug => 'orphan', parent_id => 999999);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => NULL, slug => 'no-name');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => repeat('n', 101), slug => 'long-name');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => '<b>Bold</b>', slug => 'bold');
\echo :LAST_ERROR_SQLSTATE

-- list: parents before children, with depth
SELECT e->>'slug' AS slug, e->>'depth' AS depth, e->>'version' AS version
FROM jsonb_array_elements(catalog_api.list_categories()) AS e;

-- rename and move
SELECT c->>'name' AS name, c->>'version' AS version
FROM catalog_api.update_category(id => :garden, expected_version => 1, name => 'Garden & Patio') AS c;
SELECT catalog_api.update_category(id => :garden, expected_version => 1, name => 'Stale');
\echo :LAST_ERROR_SQLSTATE
SELECT (c->>'parent_id')::bigint = :home AS moved, c->>'version' AS version
FROM catalog_api.update_category(id => :garden, expected_version => 2, parent_id => :home) AS c;
SELECT c->>'parent_id' AS parent, c->>'version' AS version
FROM catalog_api.update_category(id => :garden, expected_version => 3, to_root => true) AS c;
-- no change: no write, same version
SELECT c->>'version' AS version FROM catalog_api.update_category(id => :garden, expected_version => 4, slug => 'garden') AS c;
SELECT catalog_api.update_category(id => :garden, expected_version => 4, slug => 'cookware');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_category(id => 999999, expected_version => 1, name => 'Nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_category(id => :garden, expected_version => 4, parent_id => :home, to_root => true);
\echo :LAST_ERROR_SQLSTATE

-- cycles are refused: onto itself, under its child, under its grandchild
SELECT catalog_api.update_category(id => :home, expected_version => 1, parent_id => :home);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_category(id => :home, expected_version => 1, parent_id => :cookware);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_category(id => :home, expected_version => 1, parent_id => :pans);
\echo :LAST_ERROR_SQLSTATE
-- the guard holds for direct SQL too
UPDATE catalog.category SET parent_id = :pans WHERE id = :home;
\echo :LAST_ERROR_SQLSTATE
UPDATE catalog.category SET parent_id = :home WHERE id = :home;
\echo :LAST_ERROR_SQLSTATE
-- ids never change: renumbering rewired the tree past the guard (a leaf
-- moved to a free id, then one statement gave the root the leaf's old id
-- and the leaf the root's: the foreign key saw the root's id still there,
-- and the root's grandchild became its parent)
UPDATE catalog.category SET id = :pans + 1000 WHERE id = :pans;
\echo :LAST_ERROR_SQLSTATE
UPDATE catalog.category SET id = CASE id WHEN :home THEN :pans ELSE :home END
WHERE id IN (:home, :pans + 1000);
\echo :LAST_ERROR_SQLSTATE
-- an id set to its own value is no change
UPDATE catalog.category SET id = id, name = name WHERE id = :pans;
SELECT count(*) AS tree_rows FROM catalog.category WHERE id IN (:home, :cookware, :pans);
-- every category is still reachable from a root
WITH RECURSIVE t (id) AS (
    SELECT id FROM catalog.category WHERE parent_id IS NULL
    UNION ALL
    SELECT c.id FROM catalog.category c JOIN t ON c.parent_id = t.id)
SELECT (SELECT count(*) FROM t) = (SELECT count(*) FROM catalog.category) AS all_reachable;

-- depth is bounded at 32 levels, on insert and on move
DO $$
DECLARE
    parent bigint := NULL;
    c jsonb;
BEGIN
    FOR i IN 1..32 LOOP
        c := catalog_api.create_category(name => 'Level ' || i, slug => 'level-' || i, parent_id => parent);
        parent := (c->>'id')::bigint;
    END LOOP;
END
$$;
SELECT catalog_api.create_category(name => 'Level 33', slug => 'level-33',
    parent_id => (SELECT id FROM catalog.category WHERE slug = 'level-32'));
\echo :LAST_ERROR_SQLSTATE
-- moving a subtree of height 3 under level 30 would reach 33 levels
SELECT catalog_api.update_category(id => :home, expected_version => 1,
    parent_id => (SELECT id FROM catalog.category WHERE slug = 'level-30'));
\echo :LAST_ERROR_SQLSTATE
SELECT (c->>'version')::int AS version FROM catalog_api.update_category(id => :home, expected_version => 1,
    parent_id => (SELECT id FROM catalog.category WHERE slug = 'level-29')) AS c;
SELECT max((e->>'depth')::int) AS max_depth FROM jsonb_array_elements(catalog_api.list_categories()) AS e;

SELECT slug, name, created_by, updated_by, version FROM catalog.category ORDER BY id LIMIT 4;

-- the tree lock row is part of the install: its absence is reported, not ignored
BEGIN;
DELETE FROM catalog.category_tree_lock;
SELECT catalog_api.create_category(name => 'No lock', slug => 'no-lock');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a direct insert under a missing parent is refused by the foreign key
INSERT INTO catalog.category (parent_id, slug, name, created_by, updated_by)
VALUES (999999, 'direct-orphan', 'Direct orphan', 'x', 'x');
\echo :LAST_ERROR_SQLSTATE

-- a multi-row insert that lists children before parents is checked too:
-- the last row of the chain measures the subtree inserted before it
INSERT INTO catalog.category (id, parent_id, slug, name, created_by, updated_by)
SELECT g, CASE WHEN g > 1001 THEN g - 1 END, 'chain-' || g, 'Chain ' || g, 'x', 'x'
FROM generate_series(1040, 1001, -1) g;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO catalog.category (id, parent_id, slug, name, created_by, updated_by)
SELECT g, CASE WHEN g > 1001 THEN g - 1 END, 'chain-' || g, 'Chain ' || g, 'x', 'x'
FROM generate_series(1032, 1001, -1) g;
SELECT count(*) AS chain_rows FROM catalog.category WHERE slug LIKE 'chain-%';
-- joining a child-first chain under a node at depth 31 is refused as well
INSERT INTO catalog.category (id, parent_id, slug, name, created_by, updated_by)
SELECT g, CASE WHEN g > 1101 THEN g - 1 ELSE 1031 END, 'join-' || g, 'Join ' || g, 'x', 'x'
FROM generate_series(1102, 1101, -1) g;
\echo :LAST_ERROR_SQLSTATE
