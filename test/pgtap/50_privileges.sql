-- pgTAP: the privilege model (issue 5).  Every object of the schemas
-- catalog and catalog_api is enumerated from the system catalogs and
-- compared with the decided state written below:
--   1. direct privileges: one expected row per object (kind, identity,
--      owner, exact ACL as grantee: privileges, PUBLIC included), compared
--      both ways, so an extra grant, a missing grant, a changed owner or an
--      object without a decided row each fail and are listed by name;
--      indexes, the row types of relations and array types cannot carry
--      privileges of their own and are checked by rule; no column
--      privilege, no default privilege, no other kind of object; the five
--      catalog roles (attributes, memberships) and nothing of theirs
--      outside the two schemas;
--   2. effective privileges (has_*_privilege, memberships included) of
--      PUBLIC, of a role without memberships created here, of the three
--      API roles and of the two owner roles: EXECUTE on every function,
--      every table privilege on every relation, schemas and types;
--   3. SECURITY DEFINER exactly where decided, never owned by a superuser,
--      each with a search_path pinned the way the PostgreSQL documentation
--      ("Writing SECURITY DEFINER Functions Safely") recommends: only
--      schemas no untrusted role can create objects in, then pg_temp,
--      explicitly and last;
--   4. row-level security enabled and forced per table, and the exact set
--      of policies (table, name, roles, command, expressions);
--   5. PUBLIC can execute no function of catalog_api and use no object of
--      catalog.
-- The monthly audit partitions (catalog.audit_log_pYYYYMM, created by
-- catalog_api.audit_maintain() and named after their month) are checked
-- like the template rows "catalog.audit_log_pYYYYMM" below, once per
-- partition that exists.  "installer" stands for the role that ran
-- CREATE EXTENSION (the extension's owner, a superuser).
--
-- A new object, grant or policy fails this file until its row is added
-- here: decide it, then write it down.
-- Identities are regclass, regprocedure and regtype texts, which are
-- schema-qualified because neither schema is on the search_path.
BEGIN;
SELECT plan(41);

-- Monthly partitions exist (in a deployment the worker creates them).
DO $$ BEGIN PERFORM catalog_api.audit_maintain(); END $$;

-- A role with no membership and no grant: what any login gets through PUBLIC.
CREATE ROLE tap_priv_nobody NOLOGIN;

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------
-- A grantee or owner as written in the expected lists.
CREATE FUNCTION pg_temp.who(r oid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN r = 0 THEN 'PUBLIC'
                WHEN r = (SELECT extowner FROM pg_extension WHERE extname = 'catalog') THEN 'installer'
                ELSE pg_get_userbyid(r)::text END
$$;

-- Whether a namespace is one of the extension's two schemas.
CREATE FUNCTION pg_temp.ours(nsp oid) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT nsp IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
$$;

-- The group an object is compared in (one diagnostic per group).
CREATE FUNCTION pg_temp.grp(kind text, ident text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN kind = 'schema' THEN 'schemas'
                WHEN kind IN ('function', 'procedure', 'aggregate', 'window function')
                    THEN 'functions of ' || split_part(ident, '.', 1)
                WHEN kind = 'type' THEN 'types'
                ELSE 'relations' END
$$;

-- What is wrong with a search_path value set on a SECURITY DEFINER
-- function, or NULL when it is safe.  Safe, per the PostgreSQL
-- documentation: it names only schemas in which no untrusted role can
-- create objects (neither "$user" nor public nor a missing schema, which
-- anybody allowed to create schemas could create), and pg_temp is named
-- explicitly, last (left out, it would be searched first for relations).
-- A schema is trusted when its owner is a superuser and every role that
-- holds CREATE on it (PUBLIC included) is a superuser.
CREATE FUNCTION pg_temp.search_path_problem(setting text) RETURNS text LANGUAGE sql STABLE AS $$
    WITH e AS (
        SELECT ord, CASE WHEN btrim(x) ~ '^".*"$'
                         THEN replace(substr(btrim(x), 2, length(btrim(x)) - 2), '""', '"')
                         ELSE lower(btrim(x)) END AS s
        FROM regexp_split_to_table(setting, ',') WITH ORDINALITY AS t(x, ord)
    ), untrusted AS (
        SELECT e.s FROM e JOIN pg_namespace n ON n.nspname = e.s
        WHERE e.s <> 'pg_temp'
          AND (NOT (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner)
               OR EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                          WHERE a.privilege_type = 'CREATE'
                            AND (a.grantee = 0
                                 OR NOT (SELECT rolsuper FROM pg_roles WHERE oid = a.grantee)))))
    SELECT CASE
        WHEN setting IS NULL THEN 'search_path is not set'
        WHEN EXISTS (SELECT 1 FROM e WHERE s = '$user') THEN 'names "$user"'
        WHEN EXISTS (SELECT 1 FROM e WHERE s = 'public') THEN 'names public'
        WHEN NOT EXISTS (SELECT 1 FROM e WHERE s = 'pg_temp') THEN 'pg_temp is not named, so it is searched first'
        WHEN (SELECT s FROM e ORDER BY ord DESC LIMIT 1) <> 'pg_temp' THEN 'pg_temp is not last'
        WHEN EXISTS (SELECT 1 FROM e WHERE s <> 'pg_temp' AND s NOT IN (SELECT nspname FROM pg_namespace))
            THEN 'names a schema that does not exist'
        WHEN EXISTS (SELECT 1 FROM untrusted)
            THEN 'names ' || (SELECT string_agg(s, ', ') FROM untrusted)
                 || ', where a role other than a superuser can create objects'
        END
$$;

-- The roles whose effective privileges are checked, with their labels.
CREATE TEMP TABLE subject (label text PRIMARY KEY, rolname text NOT NULL);
INSERT INTO subject VALUES
    ('PUBLIC', 'public'),
    ('nobody', 'tap_priv_nobody'),
    ('catalog_anon', 'catalog_anon'),
    ('catalog_editor', 'catalog_editor'),
    ('catalog_admin', 'catalog_admin'),
    ('catalog_owner', 'catalog_owner'),
    ('catalog_audit_owner', 'catalog_audit_owner');

-- "ALL" in an expected grant: every privilege the kind of object has.
CREATE TEMP TABLE kind_privilege (kind text, privilege text);
INSERT INTO kind_privilege
SELECT k, p FROM unnest(ARRAY['table', 'partitioned table', 'view', 'materialized view', 'foreign table']) k,
                 unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
-- PostgreSQL 17 added MAINTAIN to a relation's privileges (and so to an owner's ALL)
UNION ALL SELECT k, 'MAINTAIN'
FROM unnest(ARRAY['table', 'partitioned table', 'view', 'materialized view', 'foreign table']) k
WHERE current_setting('server_version_num')::int >= 170000
UNION ALL SELECT 'sequence', p FROM unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
UNION ALL SELECT 'schema', p FROM unnest(ARRAY['USAGE', 'CREATE']) p
UNION ALL SELECT k, 'EXECUTE' FROM unnest(ARRAY['function', 'procedure', 'aggregate', 'window function']) k
UNION ALL SELECT 'type', 'USAGE';

------------------------------------------------------------------------------
-- 1. The decided state: every object of catalog and catalog_api, its owner
-- and its exact ACL ('grantee: privilege, ...'; PUBLIC gets nothing
-- anywhere; no privilege is grantable).  Reviewed against DESIGN.md
-- ("Schemas and roles"), README.md and sql/catalog--1.0.sql.
------------------------------------------------------------------------------
CREATE TEMP TABLE expected_object (kind text, ident text, owner text, grants text[]);
INSERT INTO expected_object VALUES
    -- catalog: never exposed.  USAGE for the two owner roles, whose
    -- functions read and write its tables; CREATE for catalog_audit_owner,
    -- whose audit_maintain() creates the monthly partitions.
    ('schema', 'catalog', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: USAGE', 'catalog_audit_owner: USAGE, CREATE']),
    -- catalog_api: what PostgREST exposes; USAGE for the API roles only.
    ('schema', 'catalog_api', 'installer',
     ARRAY['installer: ALL', 'catalog_anon: USAGE', 'catalog_editor: USAGE', 'catalog_admin: USAGE']),

    -- Catalog tables: no API role has any privilege (the API functions run
    -- as catalog_owner, which holds what they need and nothing more: no
    -- DELETE of products or categories, which are archived, never deleted).
    ('table', 'catalog.category', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, INSERT, UPDATE']),
    ('sequence', 'catalog.category_id_seq', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: USAGE']),
    -- the tree lock row: locked (SELECT ... FOR UPDATE) and counted (UPDATE)
    ('table', 'catalog.category_tree_lock', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, UPDATE']),
    ('table', 'catalog.product', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, INSERT, UPDATE']),
    ('sequence', 'catalog.product_id_seq', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: USAGE']),
    -- idempotency keys: an expired key is overwritten, purge deletes
    ('table', 'catalog.idempotency', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, INSERT, UPDATE, DELETE']),
    -- typo dictionary: filled by the write trigger, rebuilt by refresh_search_terms
    ('table', 'catalog.search_term', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, INSERT, DELETE']),
    -- secrets: superuser only (the C code reads them below the privilege system)
    ('table', 'catalog.signing_key', 'installer',
     ARRAY['installer: ALL']),
    -- rate limits over the defaults: managed by rate_limit_set/drop (upsert, delete)
    ('table', 'catalog.rate_limit', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: SELECT, INSERT, UPDATE, DELETE']),

    -- Audit tables: owned by catalog_audit_owner, which may only append;
    -- UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER are revoked from the
    -- owner itself, except: DELETE on the default partition (audit_maintain
    -- moves its rows into a new month), UPDATE on audit_chain (the sealer's
    -- bookkeeping row) and audit_mask (the masking policy, managed by
    -- audit_mask_set and audit_mask_drop).  catalog_owner has nothing here.
    ('partitioned table', 'catalog.audit_log', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT']),
    ('table', 'catalog.audit_log_default', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT, DELETE']),
    ('table', 'catalog.audit_log_pYYYYMM', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT']),
    ('sequence', 'catalog.audit_log_id_seq', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: USAGE']),
    ('table', 'catalog.audit_seal', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT']),
    ('table', 'catalog.audit_chain', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT, UPDATE']),
    ('table', 'catalog.audit_retention', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT']),
    ('table', 'catalog.audit_mask', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: SELECT, INSERT, UPDATE, DELETE']),

    -- Types: the status enum is used by catalog_owner's queries only.
    ('type', 'catalog.product_status', 'installer',
     ARRAY['installer: ALL', 'catalog_owner: USAGE']),

    -- Internal functions (schema catalog): no API role, never PUBLIC.
    -- SQL-callable validation hooks (for tests: superusers only)
    ('function', 'catalog.canonical_text(text,text,integer,integer)', 'installer',
     ARRAY['installer: ALL']),
    ('function', 'catalog.check_price(numeric)', 'installer',
     ARRAY['installer: ALL']),
    -- the rate limiter: its table of
    -- functions and a partition probe (tests, superusers only)
    ('function', 'catalog.rate_limit_functions()', 'installer', ARRAY['installer: ALL']),
    ('function', 'catalog.rate_limit_partition(text,text)', 'installer', ARRAY['installer: ALL']),
    -- trigger functions (EXECUTE is checked when a trigger is created, not
    -- when it fires): audit_maintain, as catalog_audit_owner, puts the
    -- guard on each partition it creates
    ('function', 'catalog.category_tree_guard()', 'catalog_owner', ARRAY['catalog_owner: EXECUTE']),
    ('function', 'catalog.id_immutable()', 'installer', ARRAY['installer: ALL']),
    ('function', 'catalog.audit_trigger()', 'installer', ARRAY['installer: ALL']),
    ('function', 'catalog.audit_guard()', 'installer',
     ARRAY['installer: ALL', 'catalog_audit_owner: EXECUTE']),
    ('function', 'catalog.cache_changed()', 'installer', ARRAY['installer: ALL']),
    ('function', 'catalog.search_term_lock()', 'installer', ARRAY['installer: ALL']),
    ('function', 'catalog.audit_row_hash(catalog.audit_log)', 'installer', ARRAY['installer: ALL']),
    -- Owned by catalog_owner: the dictionary trigger (it switches to its
    -- owner in C around its insert), and the search planner view (SECURITY
    -- DEFINER; superusers only: nobody else holds EXECUTE)
    ('function', 'catalog.search_terms_collect()', 'catalog_owner', ARRAY['catalog_owner: EXECUTE']),
    ('function', 'catalog.search_explain(text,bigint,numeric,numeric,text,text,integer,text)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE']),

    -- API (schema catalog_api): owned by catalog_owner, the audit ones by
    -- catalog_audit_owner; EXECUTE for the lowest API role allowed (the
    -- higher ones are members of it).
    -- catalog_anon: read published items, health
    ('function', 'catalog_api.get_product(bigint)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    ('function', 'catalog_api.search_products(text,bigint,numeric,numeric,text,text,integer,text)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    ('function', 'catalog_api.product_facets(text,bigint,numeric,numeric,text,integer)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    ('function', 'catalog_api.list_categories()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    ('function', 'catalog_api.health()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    -- PostgREST's db-pre-request runs as the request's role, any of the three
    ('function', 'catalog_api.pre_request()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    ('function', 'catalog_api.csrf_token()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_anon: EXECUTE']),
    -- catalog_editor: writes (and drafts, by role), a row's history
    ('function', 'catalog_api.create_product(text,text,numeric,bigint,text,text,text,jsonb,text)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.update_product(bigint,integer,text,text,text,text,numeric,text,bigint,jsonb)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.archive_product(bigint,integer)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.create_category(text,text,bigint)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.update_category(bigint,integer,text,text,bigint,boolean)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.product_history(bigint,integer,bigint)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    ('function', 'catalog_api.category_history(bigint,integer,bigint)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_editor: EXECUTE']),
    -- catalog_admin: maintenance and the rest of the audit API
    ('function', 'catalog_api.purge_idempotency(integer)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.refresh_search_terms()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_by_actor(text,integer,bigint)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_by_request(text,integer,bigint)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_seal(integer)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_verify(bigint,text)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_head()', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_maintain(integer)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_drop_partitions(timestamp with time zone)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_mask_set(text,text,text,text)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_mask_drop(text,text,text)', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.audit_masks()', 'catalog_audit_owner',
     ARRAY['catalog_audit_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.rate_limit_set(text,text,double precision,integer)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.rate_limit_drop(text,text)', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_admin: EXECUTE']),
    ('function', 'catalog_api.rate_limits()', 'catalog_owner',
     ARRAY['catalog_owner: EXECUTE', 'catalog_admin: EXECUTE']);

-- The monthly partitions that exist (attached, named after their month).
CREATE TEMP TABLE audit_month AS
SELECT substr(c.relname, length('audit_log_p') + 1) AS month
FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE i.inhparent = 'catalog.audit_log'::regclass AND c.relname ~ '^audit_log_p[0-9]{6}$';

-- The expected objects with the template rows instantiated per month.
CREATE TEMP VIEW exp_object AS
SELECT pg_temp.grp(e.kind, e.ident) AS grp, e.kind,
       CASE WHEN m.month IS NULL THEN e.ident ELSE replace(e.ident, 'YYYYMM', m.month) END AS ident,
       e.owner, e.grants
FROM expected_object e LEFT JOIN audit_month m ON e.ident LIKE '%YYYYMM%'
WHERE e.ident NOT LIKE '%YYYYMM%' OR m.month IS NOT NULL;

CREATE TEMP VIEW exp_grant AS
SELECT o.grp, o.kind, o.ident, btrim(split_part(g, ':', 1)) AS grantee, p.privilege
FROM exp_object o, unnest(o.grants) g,
     LATERAL (SELECT btrim(x) AS privilege
              FROM regexp_split_to_table(split_part(g, ':', 2), ',') x
              WHERE btrim(split_part(g, ':', 2)) <> 'ALL'
              UNION ALL
              SELECT k.privilege FROM kind_privilege k
              WHERE k.kind = o.kind AND btrim(split_part(g, ':', 2)) = 'ALL') p
-- From 17 the owner of an audit table also keeps MAINTAIN (VACUUM, ANALYZE,
-- REINDEX, CLUSTER, LOCK: nothing that changes a row), which the script,
-- written for 15, does not revoke.
UNION ALL
SELECT o.grp, o.kind, o.ident, o.owner, 'MAINTAIN'
FROM exp_object o
WHERE o.owner = 'catalog_audit_owner' AND o.kind IN ('table', 'partitioned table')
  AND current_setting('server_version_num')::int >= 170000;

-- The actual objects: schemas, relations (indexes apart), functions, and
-- types (row types of relations and array types apart), with their ACL or
-- the default ACL of their kind.
CREATE TEMP VIEW act_object AS
SELECT n.nspname::text AS nsp, 'schema'::text AS kind, n.nspname::text AS ident, n.nspowner AS owner_oid,
       coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
FROM pg_namespace n WHERE n.nspname IN ('catalog', 'catalog_api')
UNION ALL
SELECT c.relnamespace::regnamespace::text,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'S' THEN 'sequence'
                      WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      ELSE 'relkind ' || c.relkind::text END,
       c.oid::regclass::text, c.relowner,
       coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
FROM pg_class c
WHERE c.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
  AND c.relkind NOT IN ('i', 'I', 'c')
UNION ALL
SELECT p.pronamespace::regnamespace::text,
       CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      ELSE 'window function' END,
       p.oid::regprocedure::text, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
FROM pg_proc p
WHERE p.pronamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
UNION ALL
SELECT t.typnamespace::regnamespace::text, 'type', t.oid::regtype::text, t.typowner,
       coalesce(t.typacl, acldefault('T', t.typowner))
FROM pg_type t
WHERE t.typnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
  AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid);

CREATE TEMP VIEW act_grant AS
SELECT o.nsp, pg_temp.grp(o.kind, o.ident) AS grp, o.kind, o.ident, pg_temp.who(a.grantee) AS grantee,
       a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS privilege
FROM act_object o, aclexplode(o.acl) a;

SELECT bag_eq(
    format('SELECT kind, ident, pg_temp.who(owner_oid) FROM act_object WHERE pg_temp.grp(kind, ident) = %L', g),
    format('SELECT kind, ident, owner FROM exp_object WHERE grp = %L', g),
    g || ': exactly the decided objects, each with its decided owner')
FROM unnest(ARRAY['schemas', 'relations', 'types', 'functions of catalog', 'functions of catalog_api']) g;

SELECT bag_eq(
    format('SELECT kind, ident, grantee, privilege FROM act_grant WHERE grp = %L', g),
    format('SELECT kind, ident, grantee, privilege FROM exp_grant WHERE grp = %L', g),
    g || ': the ACL of each object is exactly the decided one (grantee, privilege)')
FROM unnest(ARRAY['schemas', 'relations', 'types', 'functions of catalog', 'functions of catalog_api']) g;

SELECT ok((SELECT count(*) FROM audit_month) >= 1,
          'at least one monthly audit partition exists, so the catalog.audit_log_pYYYYMM rows are checked');

-- What cannot carry privileges of its own, by rule.
SELECT is_empty(
    $$SELECT t.oid::regtype::text AS type, pg_temp.who(t.typowner) AS owner, t.typacl::text AS acl,
             'row type of ' || c.oid::regclass::text AS what
      FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid AND c.relkind <> 'c'
      WHERE t.typnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
        AND (t.typacl IS NOT NULL OR t.typowner <> c.relowner OR t.typnamespace <> c.relnamespace)
      UNION ALL
      SELECT t.oid::regtype::text, pg_temp.who(t.typowner), t.typacl::text, 'array of ' || e.oid::regtype::text
      FROM pg_type t JOIN pg_type e ON e.typarray = t.oid
      WHERE t.typnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
        AND (t.typacl IS NOT NULL OR t.typowner <> e.typowner OR t.typnamespace <> e.typnamespace)$$,
    'row types of relations and array types have no ACL of their own and the owner of their relation or element');
SELECT is_empty(
    $$SELECT i.oid::regclass::text AS index, pg_temp.who(i.relowner) AS owner, i.relacl::text AS acl,
             x.indrelid::regclass::text AS on_table
      FROM pg_class i LEFT JOIN pg_index x ON x.indexrelid = i.oid LEFT JOIN pg_class t ON t.oid = x.indrelid
      WHERE i.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND i.relkind IN ('i', 'I')
        AND (i.relacl IS NOT NULL OR t.oid IS NULL OR t.relowner <> i.relowner OR t.relnamespace <> i.relnamespace)$$,
    'every index belongs to a table of its schema, has its owner and no ACL');
SELECT is_empty(
    $$SELECT 'operator' AS kind, oid::regoperator::text AS name FROM pg_operator WHERE pg_temp.ours(oprnamespace)
      UNION ALL SELECT 'operator class', opcname::text FROM pg_opclass WHERE pg_temp.ours(opcnamespace)
      UNION ALL SELECT 'operator family', opfname::text FROM pg_opfamily WHERE pg_temp.ours(opfnamespace)
      UNION ALL SELECT 'collation', collname::text FROM pg_collation WHERE pg_temp.ours(collnamespace)
      UNION ALL SELECT 'conversion', conname::text FROM pg_conversion WHERE pg_temp.ours(connamespace)
      UNION ALL SELECT 'text search configuration', cfgname::text FROM pg_ts_config WHERE pg_temp.ours(cfgnamespace)
      UNION ALL SELECT 'text search dictionary', dictname::text FROM pg_ts_dict WHERE pg_temp.ours(dictnamespace)
      UNION ALL SELECT 'text search parser', prsname::text FROM pg_ts_parser WHERE pg_temp.ours(prsnamespace)
      UNION ALL SELECT 'text search template', tmplname::text FROM pg_ts_template WHERE pg_temp.ours(tmplnamespace)
      UNION ALL SELECT 'statistics object', stxname::text FROM pg_statistic_ext WHERE pg_temp.ours(stxnamespace)$$,
    'no operator, operator class or family, collation, conversion, text search object or statistics object in catalog or catalog_api');
SELECT is_empty(
    $$SELECT c.oid::regclass::text AS relation, a.attname::text AS column_name, a.attacl::text AS acl
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND a.attacl IS NOT NULL$$,
    'no column-level privilege on any relation of catalog or catalog_api');
SELECT is_empty(
    $$SELECT pg_temp.who(d.defaclrole) AS role, d.defaclnamespace::regnamespace::text AS schema,
             d.defaclobjtype::text AS kind, d.defaclacl::text AS acl
      FROM pg_default_acl d
      WHERE d.defaclnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
         OR d.defaclrole IN (SELECT oid FROM pg_roles WHERE rolname IN ('catalog_owner', 'catalog_audit_owner',
                                                                       'catalog_anon', 'catalog_editor', 'catalog_admin'))$$,
    'no default privileges in catalog or catalog_api, nor for objects the catalog roles create (the audit partitions)');
SELECT is_empty(
    $$SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
      FROM pg_depend d
      WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
        AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'catalog')
        AND NOT (d.classid = 'pg_namespace'::regclass AND d.objid IN ('catalog'::regnamespace, 'catalog_api'::regnamespace))
        AND coalesce((pg_identify_object(d.classid, d.objid, d.objsubid)).schema, '') NOT IN ('catalog', 'catalog_api')$$,
    'every member of the extension is one of the two schemas or lives in one of them');

-- The roles of the install script: attributes and memberships.
SELECT bag_eq(
    $$SELECT rolname::text, rolsuper, rolinherit, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
      FROM pg_roles WHERE rolname LIKE 'catalog\_%'$$,
    $$VALUES ('catalog_owner', false, false, false, false, false, false, false),
             ('catalog_audit_owner', false, false, false, false, false, false, false),
             ('catalog_anon', false, true, false, false, false, false, false),
             ('catalog_editor', false, true, false, false, false, false, false),
             ('catalog_admin', false, true, false, false, false, false, false)$$,
    'the catalog roles: NOLOGIN, no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS; the owners NOINHERIT');
SELECT bag_eq(
    $$SELECT m.roleid::regrole::text, m.member::regrole::text, m.admin_option FROM pg_auth_members m
      WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'catalog\_%')
         OR m.roleid IN ('catalog_owner'::regrole, 'catalog_audit_owner'::regrole)$$,
    $$VALUES ('catalog_anon', 'catalog_editor', false), ('catalog_editor', 'catalog_admin', false)$$,
    'memberships: catalog_admin in catalog_editor in catalog_anon, no other; nobody in the owner roles');
SELECT is_empty(
    $$SELECT pg_get_userbyid(s.refobjid)::text AS role, s.deptype::text AS dependency,
             pg_describe_object(s.classid, s.objid, s.objsubid) AS object
      FROM pg_shdepend s
      WHERE s.refclassid = 'pg_authid'::regclass
        AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'catalog\_%')
        AND s.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
        AND NOT coalesce(CASE
                WHEN s.classid = 'pg_namespace'::regclass
                    THEN s.objid IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
                WHEN s.classid = 'pg_policy'::regclass
                    THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                          WHERE p.oid = s.objid) = 'catalog'::regnamespace
                WHEN s.classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass)
                    THEN (pg_identify_object(s.classid, s.objid, s.objsubid)).schema IN ('catalog', 'catalog_api')
                END, false)$$,
    'the catalog roles own nothing, hold no privilege and are named by no policy outside catalog and catalog_api');

------------------------------------------------------------------------------
-- 2. Effective privileges (has_*_privilege: memberships included) of
-- PUBLIC, nobody, the API roles and the owner roles.  The superuser
-- installer is left out (it bypasses every check).
------------------------------------------------------------------------------
-- Who may call each API function, by role (catalog_admin is a member of
-- catalog_editor, which is a member of catalog_anon).
CREATE TEMP TABLE api_matrix (fn text PRIMARY KEY, anon boolean, editor boolean, admin boolean);
INSERT INTO api_matrix VALUES
    ('catalog_api.get_product(bigint)', true, true, true),
    ('catalog_api.search_products(text,bigint,numeric,numeric,text,text,integer,text)', true, true, true),
    ('catalog_api.product_facets(text,bigint,numeric,numeric,text,integer)', true, true, true),
    ('catalog_api.list_categories()', true, true, true),
    ('catalog_api.health()', true, true, true),
    ('catalog_api.pre_request()', true, true, true),
    ('catalog_api.csrf_token()', true, true, true),
    ('catalog_api.rate_limit_set(text,text,double precision,integer)', false, false, true),
    ('catalog_api.rate_limit_drop(text,text)', false, false, true),
    ('catalog_api.rate_limits()', false, false, true),
    ('catalog_api.create_product(text,text,numeric,bigint,text,text,text,jsonb,text)', false, true, true),
    ('catalog_api.update_product(bigint,integer,text,text,text,text,numeric,text,bigint,jsonb)', false, true, true),
    ('catalog_api.archive_product(bigint,integer)', false, true, true),
    ('catalog_api.create_category(text,text,bigint)', false, true, true),
    ('catalog_api.update_category(bigint,integer,text,text,bigint,boolean)', false, true, true),
    ('catalog_api.product_history(bigint,integer,bigint)', false, true, true),
    ('catalog_api.category_history(bigint,integer,bigint)', false, true, true),
    ('catalog_api.purge_idempotency(integer)', false, false, true),
    ('catalog_api.refresh_search_terms()', false, false, true),
    ('catalog_api.audit_by_actor(text,integer,bigint)', false, false, true),
    ('catalog_api.audit_by_request(text,integer,bigint)', false, false, true),
    ('catalog_api.audit_seal(integer)', false, false, true),
    ('catalog_api.audit_verify(bigint,text)', false, false, true),
    ('catalog_api.audit_head()', false, false, true),
    ('catalog_api.audit_maintain(integer)', false, false, true),
    ('catalog_api.audit_drop_partitions(timestamp with time zone)', false, false, true),
    ('catalog_api.audit_mask_set(text,text,text,text)', false, false, true),
    ('catalog_api.audit_mask_drop(text,text,text)', false, false, true),
    ('catalog_api.audit_masks()', false, false, true);

SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'catalog_api'::regnamespace$$,
    $$SELECT fn FROM api_matrix$$,
    'catalog_api: every function has a decided row in the role matrix');
SELECT bag_eq(
    $$SELECT p.oid::regprocedure::text, s.label FROM pg_proc p, subject s
      WHERE p.pronamespace = 'catalog_api'::regnamespace AND has_function_privilege(s.rolname, p.oid, 'EXECUTE')$$,
    $$SELECT fn, 'catalog_anon' FROM api_matrix WHERE anon
      UNION ALL SELECT fn, 'catalog_editor' FROM api_matrix WHERE editor
      UNION ALL SELECT fn, 'catalog_admin' FROM api_matrix WHERE admin
      UNION ALL SELECT ident, owner FROM exp_object WHERE grp = 'functions of catalog_api'$$,
    'catalog_api: EXECUTE is effective exactly per the matrix (and for each owner), never for PUBLIC or nobody');
SELECT bag_eq(
    $$SELECT p.oid::regprocedure::text, s.label FROM pg_proc p, subject s
      WHERE p.pronamespace = 'catalog'::regnamespace AND has_function_privilege(s.rolname, p.oid, 'EXECUTE')$$,
    $$SELECT ident, grantee FROM exp_grant
      WHERE grp = 'functions of catalog' AND grantee IN ('catalog_owner', 'catalog_audit_owner')$$,
    'catalog functions: EXECUTE only for the owner roles as decided, never for PUBLIC, nobody or an API role');
-- Relations: the owner roles have exactly their direct grants (they have
-- no memberships); PUBLIC, nobody and the three API roles have nothing.
SELECT bag_eq(
    $$SELECT c.oid::regclass::text, s.label, p.privilege
      FROM pg_class c, subject s,
           unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
                  || CASE WHEN current_setting('server_version_num')::int >= 170000
                          THEN ARRAY['MAINTAIN'] ELSE '{}' END) p(privilege)
      WHERE c.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(s.rolname, c.oid, p.privilege)
      UNION ALL
      SELECT c.oid::regclass::text, s.label, p.privilege
      FROM pg_class c, subject s, unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p(privilege)
      WHERE c.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
        AND c.relkind = 'S' AND has_sequence_privilege(s.rolname, c.oid, p.privilege)$$,
    $$SELECT ident, grantee, privilege FROM exp_grant
      WHERE grp = 'relations' AND grantee IN ('catalog_owner', 'catalog_audit_owner')$$,
    'relations: no effective privilege for PUBLIC, nobody or an API role; the owner roles exactly their grants');
SELECT bag_eq(
    $$SELECT n.nspname::text, s.label, p.privilege FROM pg_namespace n, subject s, unnest(ARRAY['USAGE', 'CREATE']) p(privilege)
      WHERE n.nspname IN ('catalog', 'catalog_api') AND has_schema_privilege(s.rolname, n.oid, p.privilege)$$,
    $$VALUES ('catalog', 'catalog_owner', 'USAGE'), ('catalog', 'catalog_audit_owner', 'USAGE'),
             ('catalog', 'catalog_audit_owner', 'CREATE'), ('catalog_api', 'catalog_anon', 'USAGE'),
             ('catalog_api', 'catalog_editor', 'USAGE'), ('catalog_api', 'catalog_admin', 'USAGE')$$,
    'schemas: effective USAGE and CREATE exactly as decided');
SELECT bag_eq(
    $$SELECT o.ident, s.label FROM act_object o, subject s
      WHERE o.kind = 'type' AND has_type_privilege(s.rolname, o.ident::regtype, 'USAGE')$$,
    $$VALUES ('catalog.product_status', 'catalog_owner')$$,
    'types: USAGE of catalog.product_status for catalog_owner only');

-- What a login with no catalog role meets.
SET LOCAL ROLE tap_priv_nobody;
SELECT throws_ok('SELECT catalog_api.health()', '42501', NULL, 'nobody: catalog_api is closed (not even health)');
SELECT throws_ok('SELECT count(*) FROM catalog.product', '42501', NULL, 'nobody: catalog.product is closed');
SELECT throws_ok('SELECT NULL::catalog.product', '42501', NULL,
                 'nobody: the row types of catalog cannot be named (no USAGE on the schema)');
RESET ROLE;

------------------------------------------------------------------------------
-- 3. SECURITY DEFINER functions.
------------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT v, pg_temp.search_path_problem(v) FROM unnest(ARRAY[
          'pg_catalog, pg_temp', 'pg_catalog,pg_temp', 'catalog_api, pg_catalog, pg_temp', NULL,
          '"$user", public', 'public, pg_temp', 'pg_catalog', '', 'pg_temp, pg_catalog',
          'catalog, pg_temp', 'no_such_schema, pg_temp']) WITH ORDINALITY AS t(v, o) ORDER BY o$$,
    $$VALUES ('pg_catalog, pg_temp', NULL::text), ('pg_catalog,pg_temp', NULL),
             ('catalog_api, pg_catalog, pg_temp', NULL),
             (NULL, 'search_path is not set'),
             ('"$user", public', 'names "$user"'),
             ('public, pg_temp', 'names public'),
             ('pg_catalog', 'pg_temp is not named, so it is searched first'),
             ('', 'pg_temp is not named, so it is searched first'),
             ('pg_temp, pg_catalog', 'pg_temp is not last'),
             ('catalog, pg_temp', 'names catalog, where a role other than a superuser can create objects'),
             ('no_such_schema, pg_temp', 'names a schema that does not exist')$$,
    'the search_path checker accepts the documented safe forms and names each unsafe one');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
      WHERE p.pronamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND p.prosecdef$$,
    $$SELECT fn FROM api_matrix WHERE fn <> 'catalog_api.get_product(bigint)'
      UNION ALL VALUES ('catalog.search_explain(text,bigint,numeric,numeric,text,text,integer,text)')$$,
    'SECURITY DEFINER exactly where decided: every API function but get_product (no SQL), search_explain');
-- The triggers that write as another role switch in C around their one
-- insert, as core's foreign-key triggers do, and carry no SET clause; the
-- tree guard switches to its owner around its lock and checks, the same way.
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text || ' ' || pg_get_userbyid(p.proowner) || ' '
             || coalesce(p.proconfig::text, 'no settings')
      FROM pg_proc p
      WHERE p.oid IN ('catalog.search_terms_collect()'::regprocedure, 'catalog.audit_trigger()'::regprocedure,
                      'catalog.category_tree_guard()'::regprocedure)$$,
    $$VALUES ('catalog.search_terms_collect() catalog_owner no settings'),
             ('catalog.category_tree_guard() catalog_owner no settings'),
             ('catalog.audit_trigger() ' || (SELECT pg_get_userbyid(proowner) FROM pg_proc
                                             WHERE oid = 'catalog.audit_trigger()'::regprocedure) || ' no settings')$$,
    'the dictionary trigger and the tree guard are owned by catalog_owner, whose rights they use; no role-switching trigger has a SET clause');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text AS function, pg_get_userbyid(p.proowner)::text AS owner
      FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
      WHERE p.pronamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace)
        AND p.prosecdef AND (r.rolsuper OR r.rolbypassrls OR r.rolcanlogin)$$,
    'no SECURITY DEFINER function runs as a superuser, a BYPASSRLS role or a login role');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text AS function, p.proconfig::text AS settings
      FROM pg_proc p
      WHERE p.pronamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND p.prosecdef
        AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')$$,
    'every SECURITY DEFINER function pins search_path');
SELECT is_empty(
    $$SELECT f.function, f.search_path, pg_temp.search_path_problem(f.search_path) AS problem
      FROM (SELECT p.oid::regprocedure::text AS function,
                   (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
                    WHERE c LIKE 'search\_path=%') AS search_path
            FROM pg_proc p
            WHERE p.pronamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND p.prosecdef) f
      WHERE f.search_path IS NOT NULL AND pg_temp.search_path_problem(f.search_path) IS NOT NULL$$,
    'every pinned search_path names only trusted schemas, then pg_temp last (no "$user", no public)');

------------------------------------------------------------------------------
-- 4. Row-level security: enabled and forced on every table, so that even a
-- privilege granted by mistake shows anonymous readers published products
-- only, lets them change nothing, and shows nobody the idempotency keys,
-- the secrets or the audit rows.
------------------------------------------------------------------------------
CREATE TEMP TABLE expected_rls (ident text, enabled boolean, forced boolean);
INSERT INTO expected_rls VALUES
    ('catalog.category', true, true),
    ('catalog.category_tree_lock', true, true),
    ('catalog.product', true, true),
    ('catalog.idempotency', true, true),
    ('catalog.search_term', true, true),
    ('catalog.signing_key', true, true),
    ('catalog.rate_limit', true, true),
    ('catalog.audit_log', true, true),
    ('catalog.audit_log_default', true, true),
    ('catalog.audit_log_pYYYYMM', true, true),
    ('catalog.audit_seal', true, true),
    ('catalog.audit_chain', true, true),
    ('catalog.audit_retention', true, true),
    ('catalog.audit_mask', true, true);
SELECT bag_eq(
    $$SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
      WHERE c.relnamespace IN ('catalog'::regnamespace, 'catalog_api'::regnamespace) AND c.relkind IN ('r', 'p')$$,
    $$SELECT replace(e.ident, 'YYYYMM', coalesce(m.month, 'YYYYMM')), e.enabled, e.forced
      FROM expected_rls e LEFT JOIN audit_month m ON e.ident LIKE '%YYYYMM%'
      WHERE e.ident NOT LIKE '%YYYYMM%' OR m.month IS NOT NULL$$,
    'row-level security: enabled and forced on every table as decided, monthly partitions included');

-- Policies: the API roles' rules on products and categories; full access
-- for the owner role of each table's functions; none for
-- catalog.signing_key (superuser only).
CREATE TEMP TABLE expected_policy (tbl text, policy text, roles text, cmd text, permissive text, qual text, with_check text);
INSERT INTO expected_policy VALUES
    ('catalog.product', 'product_read_published', '{catalog_anon}', 'SELECT', 'PERMISSIVE',
     '(status = ''published''::catalog.product_status)', NULL),
    ('catalog.product', 'product_editor_read', '{catalog_editor}', 'SELECT', 'PERMISSIVE', 'true', NULL),
    ('catalog.product', 'product_editor_insert', '{catalog_editor}', 'INSERT', 'PERMISSIVE', NULL, 'true'),
    ('catalog.product', 'product_editor_update', '{catalog_editor}', 'UPDATE', 'PERMISSIVE', 'true', 'true'),
    ('catalog.product', 'product_owner_read', '{catalog_owner}', 'SELECT', 'PERMISSIVE', 'true', NULL),
    ('catalog.product', 'product_owner_insert', '{catalog_owner}', 'INSERT', 'PERMISSIVE', NULL, 'true'),
    ('catalog.product', 'product_owner_update', '{catalog_owner}', 'UPDATE', 'PERMISSIVE', 'true', 'true'),
    ('catalog.category', 'category_read_all', '{catalog_anon}', 'SELECT', 'PERMISSIVE', 'true', NULL),
    ('catalog.category', 'category_editor_read', '{catalog_editor}', 'SELECT', 'PERMISSIVE', 'true', NULL),
    ('catalog.category', 'category_editor_insert', '{catalog_editor}', 'INSERT', 'PERMISSIVE', NULL, 'true'),
    ('catalog.category', 'category_editor_update', '{catalog_editor}', 'UPDATE', 'PERMISSIVE', 'true', 'true'),
    ('catalog.category', 'category_owner_read', '{catalog_owner}', 'SELECT', 'PERMISSIVE', 'true', NULL),
    ('catalog.category', 'category_owner_insert', '{catalog_owner}', 'INSERT', 'PERMISSIVE', NULL, 'true'),
    ('catalog.category', 'category_owner_update', '{catalog_owner}', 'UPDATE', 'PERMISSIVE', 'true', 'true'),
    ('catalog.category_tree_lock', 'category_tree_lock_owner', '{catalog_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.idempotency', 'idempotency_owner_all', '{catalog_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.search_term', 'search_term_owner_all', '{catalog_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.rate_limit', 'rate_limit_owner_all', '{catalog_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_log', 'audit_log_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_log_default', 'audit_log_default_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_log_pYYYYMM', 'audit_log_pYYYYMM_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_seal', 'audit_seal_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_chain', 'audit_chain_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_retention', 'audit_retention_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true'),
    ('catalog.audit_mask', 'audit_mask_owner', '{catalog_audit_owner}', 'ALL', 'PERMISSIVE', 'true', 'true');
SELECT bag_eq(
    $$SELECT format('%I.%I', schemaname, tablename), policyname::text,
             (SELECT array_agg(r ORDER BY r) FROM unnest(roles) r)::text, cmd, permissive, qual, with_check
      FROM pg_policies WHERE schemaname IN ('catalog', 'catalog_api')$$,
    $$SELECT replace(e.tbl, 'YYYYMM', coalesce(m.month, 'YYYYMM')) AS tbl,
             replace(e.policy, 'YYYYMM', coalesce(m.month, 'YYYYMM')) AS policy,
             e.roles, e.cmd, e.permissive, e.qual, e.with_check
      FROM expected_policy e LEFT JOIN audit_month m ON e.tbl LIKE '%YYYYMM%'
      WHERE e.tbl NOT LIKE '%YYYYMM%' OR m.month IS NOT NULL$$,
    'policies: exactly the decided set (table, name, roles, command, USING, WITH CHECK)');

------------------------------------------------------------------------------
-- 5. PUBLIC.
------------------------------------------------------------------------------
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace
        AND (has_function_privilege('public', p.oid, 'EXECUTE')
             OR 0 IN (SELECT grantee FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))))$$,
    'PUBLIC can execute no function of catalog_api');
SELECT is_empty(
    $$SELECT kind, ident, privilege FROM act_grant WHERE grantee = 'PUBLIC'$$,
    'PUBLIC appears in the ACL of no schema, relation, function or type of catalog or catalog_api');
SELECT ok(NOT has_schema_privilege('public', 'catalog', 'USAGE') AND NOT has_schema_privilege('public', 'catalog', 'CREATE')
          AND NOT has_schema_privilege('public', 'catalog_api', 'USAGE')
          AND NOT has_schema_privilege('public', 'catalog_api', 'CREATE'),
          'PUBLIC can neither use nor create in catalog or catalog_api');
-- The row types of relations keep the default ACL of a type (the owner
-- and PUBLIC: USAGE); without USAGE on the schema PUBLIC cannot name them
-- (see nobody above), so they are left out here.
SELECT is_empty(
    $$SELECT o.kind, o.ident, p.privilege
      FROM act_object o, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER',
                                     'USAGE', 'CREATE', 'EXECUTE']) p(privilege)
      WHERE o.nsp = 'catalog'
        AND CASE
            WHEN o.kind = 'schema' AND p.privilege IN ('USAGE', 'CREATE')
                THEN has_schema_privilege('public', o.ident, p.privilege)
            WHEN o.kind = 'sequence' AND p.privilege IN ('USAGE', 'SELECT', 'UPDATE')
                THEN has_sequence_privilege('public', o.ident::regclass, p.privilege)
            WHEN o.kind IN ('table', 'partitioned table', 'view', 'materialized view', 'foreign table')
                 AND p.privilege NOT IN ('USAGE', 'CREATE', 'EXECUTE')
                THEN has_table_privilege('public', o.ident::regclass, p.privilege)
            WHEN o.kind IN ('function', 'procedure', 'aggregate', 'window function') AND p.privilege = 'EXECUTE'
                THEN has_function_privilege('public', o.ident::regprocedure, p.privilege)
            WHEN o.kind = 'type' AND p.privilege = 'USAGE'
                THEN has_type_privilege('public', o.ident::regtype, p.privilege)
            ELSE false END$$,
    'PUBLIC has no effective privilege on any object of catalog');

SELECT * FROM finish();
ROLLBACK;
