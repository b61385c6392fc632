--
-- roles: privileges of catalog_anon, catalog_editor, catalog_admin,
-- catalog_owner and catalog_audit_owner, row-level security and the
-- recorded actor (pg_regress).
--
\set SHOW_CONTEXT never
SET catalog.actor = 'regress-setup';
SELECT id AS cat FROM (SELECT (catalog_api.create_category(name => 'Roles', slug => 'roles')->>'id')::bigint AS id) s \gset
SELECT (catalog_api.create_product(sku => 'R-DRAFT', name => 'Draft item', price => 1, category_id => :cat)->>'id')::bigint AS draft \gset
SELECT (catalog_api.create_product(sku => 'R-PUB', name => 'Published item', price => 2, category_id => :cat, status => 'published')->>'id')::bigint AS pub \gset
SELECT (catalog_api.create_product(sku => 'R-ARCH', name => 'Archived item', price => 3, category_id => :cat, status => 'archived')->>'id')::bigint AS arch \gset

-- the role hierarchy
SELECT r.rolname, r.rolcanlogin, r.rolinherit,
       pg_has_role(r.rolname, 'catalog_anon', 'USAGE') AS has_anon,
       pg_has_role(r.rolname, 'catalog_editor', 'USAGE') AS has_editor
FROM pg_roles r WHERE r.rolname LIKE 'catalog\_%' ORDER BY r.rolname;

-- anonymous: reads published products only, cannot write
SET ROLE catalog_anon;
SELECT p->>'sku' AS sku FROM catalog_api.get_product(:pub) AS p;
SELECT catalog_api.get_product(:draft);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.get_product(:arch);
\echo :LAST_ERROR_SQLSTATE
SELECT jsonb_array_length(catalog_api.list_categories()) > 0 AS sees_categories;
SELECT catalog_api.health()->>'shared_memory' AS shared_memory;
SELECT catalog_api.create_product(sku => 'R-X', name => 'x', price => 1, category_id => :cat);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_product(id => :pub, expected_version => 1, name => 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.archive_product(id => :pub, expected_version => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.create_category(name => 'x', slug => 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.update_category(id => :cat, expected_version => 1, name => 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT catalog_api.purge_idempotency();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM catalog.product;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- editor: sees drafts, writes; the actor is recorded, not the role
SET ROLE catalog_editor;
SELECT p->>'sku' AS sku FROM catalog_api.get_product(:draft) AS p;
SELECT p->>'version' AS version FROM catalog_api.update_product(id => :draft, expected_version => 1, name => 'Draft renamed') AS p;
SELECT catalog_api.purge_idempotency();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM catalog.category;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO catalog.category (slug, name, created_by, updated_by) VALUES ('direct', 'Direct', 'x', 'x');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT updated_by FROM catalog.product WHERE id = :draft;

-- admin: everything, including maintenance (two keys expired an hour ago)
INSERT INTO catalog.idempotency (actor_source, actor, key, operation, fingerprint, expires_at)
SELECT 's', 'regress-purge', 'k' || g, 'create_product', sha256(g::text::bytea), now() - interval '1 hour'
FROM generate_series(1, 2) g;
SET ROLE catalog_admin;
SELECT catalog_api.purge_idempotency() AS purged;
SELECT p->>'sku' AS sku FROM catalog_api.get_product(:arch) AS p;
SELECT count(*) FROM catalog.idempotency;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- no privilege of any API role on any table, sequence or internal function
SELECT r.rolname, c.relname,
       has_table_privilege(r.rolname, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER') AS any_privilege
FROM pg_class c CROSS JOIN (VALUES ('catalog_anon'), ('catalog_editor'), ('catalog_admin')) r(rolname)
WHERE c.relnamespace = 'catalog'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND (NOT c.relispartition OR c.relname = 'audit_log_default')
ORDER BY 1, 2;
SELECT r.rolname, count(*) FILTER (WHERE has_function_privilege(r.rolname, p.oid, 'EXECUTE')) AS executable
FROM pg_proc p CROSS JOIN (VALUES ('catalog_anon'), ('catalog_editor'), ('catalog_admin')) r(rolname)
WHERE p.pronamespace = 'catalog'::regnamespace
GROUP BY 1 ORDER BY 1;

-- the audit tables: owned by catalog_audit_owner, which may only append
-- (DELETE on the default partition for audit_maintain, UPDATE on
-- audit_chain for the sealer); catalog_owner has no privilege on them
SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner,
       array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
                             WHERE has_table_privilege('catalog_audit_owner', c.oid, p)), ',') AS owner_privileges,
       has_table_privilege('catalog_owner', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER') AS catalog_owner_any,
       c.relrowsecurity AND c.relforcerowsecurity AS rls
FROM pg_class c
WHERE c.relnamespace = 'catalog'::regnamespace AND c.relname LIKE 'audit\_%' AND c.relkind IN ('r', 'p')
  AND (NOT c.relispartition OR c.relname = 'audit_log_default')
ORDER BY 1;
SELECT pg_get_userbyid(relowner) AS owner,
       has_sequence_privilege('catalog_owner', oid, 'USAGE,SELECT,UPDATE') AS catalog_owner_any
FROM pg_class WHERE oid = 'catalog.audit_log_id_seq'::regclass;
-- the audit API: admins all of it, editors the histories, anonymous nothing
SELECT p.proname, has_function_privilege('catalog_anon', p.oid, 'EXECUTE') AS anon,
       has_function_privilege('catalog_editor', p.oid, 'EXECUTE') AS editor,
       has_function_privilege('catalog_admin', p.oid, 'EXECUTE') AS admin
FROM pg_proc p
WHERE p.pronamespace = 'catalog_api'::regnamespace AND (p.proname LIKE 'audit\_%' OR p.proname LIKE '%\_history')
ORDER BY 1;

-- row-level security holds even if a privilege is granted by mistake
BEGIN;
GRANT USAGE ON SCHEMA catalog TO catalog_anon;
GRANT SELECT ON catalog.product TO catalog_anon;
SET LOCAL ROLE catalog_anon;
SELECT sku FROM catalog.product ORDER BY sku;
ROLLBACK;
BEGIN;
GRANT USAGE ON SCHEMA catalog TO catalog_editor;
GRANT SELECT ON catalog.idempotency TO catalog_editor;
SET LOCAL ROLE catalog_editor;
SELECT count(*) AS idempotency_rows_visible FROM catalog.idempotency;
ROLLBACK;

-- every API function: SECURITY DEFINER, pinned search_path, owned by catalog_owner
-- (the audit ones by catalog_audit_owner), commented
SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner,
       p.provolatile, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_proc p WHERE p.pronamespace = 'catalog_api'::regnamespace ORDER BY p.proname;
-- PUBLIC may execute nothing in catalog_api
SELECT p.proname FROM pg_proc p, aclexplode(p.proacl) a
WHERE p.pronamespace = 'catalog_api'::regnamespace AND a.grantee = 0 ORDER BY 1;

-- health: anonymous probes learn nothing about the server's version or traffic
SET ROLE catalog_anon;
SELECT k FROM jsonb_object_keys(catalog_api.health()) k ORDER BY k;
RESET ROLE;
SET ROLE catalog_admin;
SELECT k FROM jsonb_object_keys(catalog_api.health()) k ORDER BY k;
RESET ROLE;

-- a pre-existing catalog role with more power than the script grants is refused
BEGIN;
DROP EXTENSION catalog;
ALTER ROLE catalog_owner LOGIN;
CREATE EXTENSION catalog;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DROP EXTENSION catalog;
CREATE ROLE regress_intruder;
GRANT catalog_owner TO regress_intruder;
CREATE EXTENSION catalog;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DROP EXTENSION catalog;
ALTER ROLE catalog_audit_owner LOGIN;
CREATE EXTENSION catalog;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DROP EXTENSION catalog;
CREATE ROLE regress_intruder;
GRANT catalog_audit_owner TO regress_intruder;
CREATE EXTENSION catalog;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- every catalog role with any attribute the script does not grant: the
-- extension is dropped once, each case is tried in a subtransaction, and
-- the drop is undone at the end
CREATE FUNCTION pg_temp.adoption_outcomes()
RETURNS TABLE (role_name text, attr text, outcome text) LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    BEGIN
        DROP EXTENSION catalog;
        FOR role_name, attr IN
            SELECT r, a
            FROM unnest(ARRAY['catalog_owner', 'catalog_audit_owner', 'catalog_anon',
                              'catalog_editor', 'catalog_admin']) r,
                 unnest(ARRAY['LOGIN', 'SUPERUSER', 'BYPASSRLS', 'CREATEROLE', 'CREATEDB',
                              'REPLICATION']) a
        LOOP
            st := NULL;
            BEGIN
                EXECUTE format('ALTER ROLE %I %s', role_name, attr);
                CREATE EXTENSION catalog;
                st := 'created';
                RAISE EXCEPTION 'undo the creation';
            EXCEPTION WHEN others THEN
                IF st IS NULL THEN
                    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
                END IF;
            END;
            outcome := st;
            RETURN NEXT;
        END LOOP;
        RAISE EXCEPTION USING ERRCODE = 'P0003', MESSAGE = 'restore the extension';
    EXCEPTION WHEN SQLSTATE 'P0003' THEN
        NULL;
    END;
END;
$$;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE outcome = '42501') AS refused,
       string_agg(role_name || ' ' || attr || ': ' || outcome, ', ') FILTER (WHERE outcome <> '42501') AS not_refused
FROM pg_temp.adoption_outcomes();
SELECT extversion IS NOT NULL AS extension_back FROM pg_extension WHERE extname = 'catalog';
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('catalog_owner', 'catalog_audit_owner') ORDER BY 1;

-- the same session across DROP and CREATE EXTENSION: what a backend
-- remembers of the extension (the status type's OID, kept plans) follows
-- the new objects; a search before, then a write and a typo search after
BEGIN;
SELECT set_config('catalog.actor', 'regress', true) IS NOT NULL AS actor_set;
SELECT jsonb_array_length(catalog_api.search_products(q => 'quillworx') -> 'items') AS before_drop;
DROP EXTENSION catalog;
CREATE EXTENSION catalog;
SELECT catalog_api.create_product(sku => 'RECREATE-1', name => 'Quillwort Lamp', price => 1, status => 'published',
       category_id => (catalog_api.create_category(name => 'Recreated', slug => 'recreated') ->> 'id')::bigint) ->> 'sku' AS created;
SELECT i ->> 'sku' AS sku, i ->> 'match' AS match
FROM jsonb_array_elements(catalog_api.search_products(q => 'quillworx') -> 'items') i;
ROLLBACK;
