-- pgTAP: every API function called as each role (allowed, or 42501 as
-- designed); no role can read or write catalog tables directly; drafts and
-- archived products are invisible to catalog_anon, through the API and
-- through row-level security.  The audit tables and functions belong to
-- catalog_audit_owner; catalog_owner (the rest of the API) has no
-- privilege on them, and the owner itself may only append.
BEGIN;
SELECT plan(178);

-- The monthly audit partitions (created by the worker in a deployment) are
-- checked like every other audit table.
SELECT catalog_api.audit_maintain() IS NOT NULL AS partitions_created;

SET LOCAL catalog.actor = 'pgtap-setup';
CREATE TEMP TABLE fx AS
SELECT (catalog_api.create_category(name => 'Tap Roles', slug => 'tap-roles-' || pg_backend_pid())->>'id')::bigint AS cat;
GRANT SELECT ON fx TO PUBLIC;
ALTER TABLE fx ADD COLUMN draft bigint, ADD COLUMN pub bigint, ADD COLUMN arch bigint;
UPDATE fx SET
    draft = (catalog_api.create_product(sku => 'TAP-D-' || pg_backend_pid(), name => 'Tap draft', price => 1, category_id => cat)->>'id')::bigint,
    pub = (catalog_api.create_product(sku => 'TAP-P-' || pg_backend_pid(), name => 'Tap published', price => 2, category_id => cat, status => 'published')->>'id')::bigint,
    arch = (catalog_api.create_product(sku => 'TAP-A-' || pg_backend_pid(), name => 'Tap archived', price => 3, category_id => cat, status => 'archived')->>'id')::bigint;

-- The decided privilege of each role on each API function.
CREATE TEMP TABLE matrix (fn text, anon bool, editor bool, admin bool);
INSERT INTO matrix VALUES
    ('catalog_api.get_product(bigint)', true, true, true),
    ('catalog_api.list_categories()', true, true, true),
    ('catalog_api.health()', true, true, true),
    ('catalog_api.search_products(text,bigint,numeric,numeric,text,text,integer,text)', true, true, true),
    ('catalog_api.product_facets(text,bigint,numeric,numeric,text,integer)', true, true, true),
    ('catalog_api.refresh_search_terms()', false, false, true),
    ('catalog_api.create_product(text,text,numeric,bigint,text,text,text,jsonb,text)', false, true, true),
    ('catalog_api.update_product(bigint,integer,text,text,text,text,numeric,text,bigint,jsonb)', false, true, true),
    ('catalog_api.archive_product(bigint,integer)', false, true, true),
    ('catalog_api.create_category(text,text,bigint)', false, true, true),
    ('catalog_api.update_category(bigint,integer,text,text,bigint,boolean)', false, true, true),
    ('catalog_api.purge_idempotency(integer)', false, false, true),
    ('catalog_api.product_history(bigint,integer,bigint)', false, true, true),
    ('catalog_api.category_history(bigint,integer,bigint)', false, true, true),
    ('catalog_api.audit_by_actor(text,integer,bigint)', false, false, true),
    ('catalog_api.audit_by_request(text,integer,bigint)', false, false, true),
    ('catalog_api.audit_seal(integer)', false, false, true),
    ('catalog_api.audit_verify(bigint,text)', false, false, true),
    ('catalog_api.audit_head()', false, false, true),
    ('catalog_api.audit_maintain(integer)', false, false, true),
    ('catalog_api.audit_drop_partitions(timestamptz)', false, false, true),
    ('catalog_api.audit_mask_set(text,text,text,text)', false, false, true),
    ('catalog_api.audit_mask_drop(text,text,text)', false, false, true),
    ('catalog_api.audit_masks()', false, false, true),
    ('catalog_api.pre_request()', true, true, true),
    ('catalog_api.csrf_token()', true, true, true),
    ('catalog_api.rate_limit_set(text,text,double precision,integer)', false, false, true),
    ('catalog_api.rate_limit_drop(text,text)', false, false, true),
    ('catalog_api.rate_limits()', false, false, true);

SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'catalog_api'::regnamespace$$,
    $$SELECT fn::regprocedure::text FROM matrix$$,
    'every catalog_api function has a decided privilege per role');

SELECT results_eq(
    $$SELECT fn, has_function_privilege('catalog_anon', fn, 'EXECUTE'),
                 has_function_privilege('catalog_editor', fn, 'EXECUTE'),
                 has_function_privilege('catalog_admin', fn, 'EXECUTE')
      FROM matrix ORDER BY fn$$,
    $$SELECT fn, anon, editor, admin FROM matrix ORDER BY fn$$,
    'EXECUTE privileges match the matrix exactly');
SELECT results_eq(
    $$SELECT r, array_agg(p.proname::text COLLATE "default" ORDER BY p.proname)
      FROM pg_proc p, unnest(ARRAY['catalog_anon', 'catalog_editor', 'catalog_admin']) r
      WHERE p.pronamespace = 'catalog_api'::regnamespace
        AND (p.proname LIKE 'audit\_%' OR p.proname LIKE '%\_history')
        AND has_function_privilege(r, p.oid, 'EXECUTE')
      GROUP BY r ORDER BY r$$,
    $$VALUES ('catalog_admin', ARRAY['audit_by_actor', 'audit_by_request', 'audit_drop_partitions', 'audit_head',
                                     'audit_maintain', 'audit_mask_drop', 'audit_mask_set', 'audit_masks', 'audit_seal',
                                     'audit_verify', 'category_history', 'product_history']),
             ('catalog_editor', ARRAY['category_history', 'product_history'])$$,
    'audit functions: anon none, editor the two histories, admin all of them');

SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p, aclexplode(p.proacl) a
      WHERE p.pronamespace IN ('catalog_api'::regnamespace, 'catalog'::regnamespace) AND a.grantee = 0$$,
    'PUBLIC may execute no function of catalog or catalog_api');

SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p
      WHERE p.pronamespace IN ('catalog_api'::regnamespace, 'catalog'::regnamespace)
        AND p.prosecdef
        AND (p.proconfig IS NULL OR NOT ('search_path=pg_catalog, pg_temp' = ANY (p.proconfig)))$$,
    'every SECURITY DEFINER function pins search_path');

SELECT set_eq(
    $$SELECT p.proname::text FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace AND NOT p.prosecdef$$,
    ARRAY['get_product'],
    'only get_product (C index scans, no SQL) runs without SECURITY DEFINER');

SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace
        AND pg_get_userbyid(p.proowner) <> CASE WHEN p.proname LIKE 'audit\_%' OR p.proname LIKE '%\_history'
                                                THEN 'catalog_audit_owner' ELSE 'catalog_owner' END$$,
    'every API function runs as catalog_owner, the audit ones as catalog_audit_owner, never as a superuser');
SELECT set_eq(
    $$SELECT p.proname::text FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace AND pg_get_userbyid(p.proowner) = 'catalog_audit_owner'$$,
    ARRAY['audit_by_actor', 'audit_by_request', 'audit_drop_partitions', 'audit_head', 'audit_maintain', 'audit_mask_drop',
          'audit_mask_set', 'audit_masks', 'audit_seal', 'audit_verify', 'category_history', 'product_history'],
    'catalog_audit_owner owns exactly the audit functions');

SELECT ok(NOT rolsuper AND NOT rolcanlogin AND NOT rolbypassrls AND NOT rolcreaterole AND NOT rolcreatedb
          AND NOT rolreplication AND NOT rolinherit,
          rolname || ' is an unprivileged NOLOGIN NOINHERIT role')
FROM pg_roles WHERE rolname IN ('catalog_owner', 'catalog_audit_owner') ORDER BY rolname;
SELECT is_empty(
    $$SELECT o.rolname FROM pg_roles o, pg_auth_members m
      WHERE o.rolname IN ('catalog_owner', 'catalog_audit_owner') AND (m.roleid = o.oid OR m.member = o.oid)$$,
    'catalog_owner and catalog_audit_owner have no members and belong to no role');

SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace
        AND (obj_description(p.oid, 'pg_proc') IS NULL
             OR p.provolatile <> CASE WHEN p.proname IN ('get_product', 'list_categories', 'health',
                                                          'search_products', 'product_facets',
                                                          'product_history', 'category_history',
                                                          'audit_by_actor', 'audit_by_request', 'audit_verify',
                                                          'audit_head', 'audit_masks', 'rate_limits')
                                      THEN 's' ELSE 'v' END)$$,
    'every API function is commented; reads STABLE, writes VOLATILE');
SELECT is_empty(
    $$SELECT p.proname, p.prorettype::regtype FROM pg_proc p
      WHERE p.pronamespace = 'catalog_api'::regnamespace
        AND p.prorettype <> CASE WHEN p.proname IN ('purge_idempotency', 'refresh_search_terms') THEN 'bigint'::regtype
                                 WHEN p.proname IN ('audit_mask_drop', 'rate_limit_drop') THEN 'boolean'::regtype
                                 WHEN p.proname = 'pre_request' THEN 'void'::regtype
                                 ELSE 'jsonb'::regtype END$$,
    'every API function returns jsonb but the two counters (bigint), the two drops (boolean) and pre_request (void), as the README says');

-- No direct table, sequence or schema privilege for any API role.
SELECT is_empty(
    $$SELECT r, c.relname FROM pg_class c,
             unnest(ARRAY['catalog_anon', 'catalog_editor', 'catalog_admin']) r
      WHERE c.relnamespace = 'catalog'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND has_table_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')$$,
    'no API role has any privilege on a catalog table');
SELECT is_empty(
    $$SELECT r, c.relname FROM pg_class c,
             unnest(ARRAY['catalog_anon', 'catalog_editor', 'catalog_admin']) r
      WHERE c.relnamespace = 'catalog'::regnamespace AND c.relkind = 'S'
        AND has_sequence_privilege(r, c.oid, 'USAGE,SELECT,UPDATE')$$,
    'no API role has any privilege on a catalog sequence');
SELECT ok(NOT has_schema_privilege(r, 'catalog', 'USAGE') AND NOT has_schema_privilege(r, 'catalog', 'CREATE'),
          r || ' has no privilege on schema catalog')
FROM unnest(ARRAY['catalog_anon', 'catalog_editor', 'catalog_admin']) r;
SELECT ok(NOT has_schema_privilege('public', 'catalog_api', 'USAGE'), 'PUBLIC cannot even see catalog_api');
SELECT is_empty(
    $$SELECT c.relname FROM pg_class c, aclexplode(c.relacl) a
      WHERE c.relnamespace = 'catalog'::regnamespace AND a.grantee = 0$$,
    'PUBLIC has no privilege on any table or sequence of catalog');

SELECT is_empty(
    $$SELECT relname FROM pg_class
      WHERE relnamespace = 'catalog'::regnamespace AND relkind IN ('r', 'p')
        AND NOT (relrowsecurity AND relforcerowsecurity)$$,
    'every catalog table, audit partitions included, has row-level security enabled and forced');
SELECT cmp_ok((SELECT count(*) FROM pg_partition_tree('catalog.audit_log') WHERE isleaf), '>=', 5::bigint,
              'the audit log has its default partition and the monthly ones');

-- Audit tables: owned by catalog_audit_owner, which may only append (the
-- default partition also DELETE, for audit_maintain, and audit_chain
-- UPDATE, for the sealer; audit_mask is its own policy table); catalog_owner
-- has no privilege at all on them.
CREATE TEMP TABLE audit_rels AS
SELECT c.oid, c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = 'catalog'::regnamespace AND c.relkind IN ('r', 'p', 'S')
  AND (c.relname LIKE 'audit\_%' OR c.oid IN (SELECT relid FROM pg_partition_tree('catalog.audit_log')));
SELECT is_empty(
    $$SELECT c.relname, pg_get_userbyid(c.relowner) FROM audit_rels JOIN pg_class c USING (oid)
      WHERE pg_get_userbyid(c.relowner) <> 'catalog_audit_owner'$$,
    'catalog_audit_owner owns every audit table, partition and sequence');
SELECT is_empty(
    $$SELECT relname FROM audit_rels
      WHERE CASE WHEN relkind = 'S' THEN has_sequence_privilege('catalog_owner', oid, 'USAGE,SELECT,UPDATE')
                 ELSE has_table_privilege('catalog_owner', oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER') END$$,
    'catalog_owner has no privilege at all on the audit tables and sequence');
SELECT is_empty(
    $$SELECT relname, privs FROM (
          SELECT relname, relkind, array_agg(p ORDER BY o) FILTER (WHERE has_table_privilege('catalog_audit_owner', oid, p)) AS privs
          FROM audit_rels, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) WITH ORDINALITY x(p, o)
          WHERE relkind IN ('r', 'p')
          GROUP BY relname, relkind) t
      WHERE privs IS DISTINCT FROM CASE relname
                WHEN 'audit_log_default' THEN ARRAY['SELECT', 'INSERT', 'DELETE']
                WHEN 'audit_chain' THEN ARRAY['SELECT', 'INSERT', 'UPDATE']
                WHEN 'audit_mask' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']
                ELSE ARRAY['SELECT', 'INSERT'] END$$,
    'catalog_audit_owner holds exactly its privileges: SELECT and INSERT on the log, its partitions and the seals');

-- Direct table access fails for each role.
SET LOCAL ROLE catalog_anon;
SELECT throws_ok('SELECT * FROM catalog.product', '42501', NULL, 'catalog_anon cannot read catalog.product');
SELECT throws_ok($$INSERT INTO catalog.category (slug, name, created_by, updated_by) VALUES ('x', 'x', 'x', 'x')$$,
                 '42501', NULL, 'catalog_anon cannot write catalog.category');
RESET ROLE;
SET LOCAL ROLE catalog_editor;
SELECT throws_ok('SELECT * FROM catalog.category', '42501', NULL, 'catalog_editor cannot read catalog.category');
SELECT throws_ok('UPDATE catalog.product SET name = name', '42501', NULL, 'catalog_editor cannot write catalog.product');
SELECT throws_ok('SELECT * FROM catalog.idempotency', '42501', NULL, 'catalog_editor cannot read catalog.idempotency');
RESET ROLE;
SET LOCAL ROLE catalog_admin;
SELECT throws_ok('DELETE FROM catalog.product', '42501', NULL, 'catalog_admin cannot delete from catalog.product');
SELECT throws_ok('SELECT * FROM catalog.idempotency', '42501', NULL, 'catalog_admin cannot read catalog.idempotency');
RESET ROLE;

-- One call of each audit function (rolled back with the rest).
CREATE TEMP TABLE audit_calls (c text PRIMARY KEY, editor boolean NOT NULL);
INSERT INTO audit_calls VALUES
    (format('SELECT catalog_api.product_history(%s)', (SELECT pub FROM fx)), true),
    (format('SELECT catalog_api.category_history(%s)', (SELECT cat FROM fx)), true),
    ('SELECT catalog_api.audit_by_actor(''pgtap-setup'')', false),
    ('SELECT catalog_api.audit_by_request(''no-such-request'')', false),
    ('SELECT catalog_api.audit_seal()', false),
    ('SELECT catalog_api.audit_verify()', false),
    ('SELECT catalog_api.audit_head()', false),
    ('SELECT catalog_api.audit_maintain()', false),
    ('SELECT catalog_api.audit_drop_partitions(''1990-01-01 00:00:00+00'')', false),
    ('SELECT catalog_api.audit_mask_set(table_name => ''product'', column_name => ''name'', method => ''redact'')', false),
    ('SELECT catalog_api.audit_mask_drop(table_name => ''product'', column_name => ''name'')', false),
    ('SELECT catalog_api.audit_masks()', false);
GRANT SELECT ON audit_calls TO PUBLIC;

-- Each API function as catalog_anon.
SET LOCAL ROLE catalog_anon;
SELECT is((catalog_api.get_product((SELECT pub FROM fx)))->>'name', 'Tap published', 'anon: get_product of a published product');
SELECT throws_ok(format('SELECT catalog_api.get_product(%s)', (SELECT draft FROM fx)), 'PT404', NULL, 'anon: a draft is not found');
SELECT throws_ok(format('SELECT catalog_api.get_product(%s)', (SELECT arch FROM fx)), 'PT404', NULL, 'anon: an archived product is not found');
SELECT ok(jsonb_array_length(catalog_api.list_categories()) >= 1, 'anon: list_categories');
SELECT is(catalog_api.health()->>'status', 'ok', 'anon: health');
SELECT throws_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-X', name => 'x', price => 1, category_id => %s)$$, (SELECT cat FROM fx)),
                 '42501', NULL, 'anon: create_product is refused');
SELECT throws_ok(format($$SELECT catalog_api.update_product(id => %s, expected_version => 1, name => 'x')$$, (SELECT pub FROM fx)),
                 '42501', NULL, 'anon: update_product is refused');
SELECT throws_ok(format($$SELECT catalog_api.archive_product(id => %s, expected_version => 1)$$, (SELECT pub FROM fx)),
                 '42501', NULL, 'anon: archive_product is refused');
SELECT throws_ok($$SELECT catalog_api.create_category(name => 'x', slug => 'tap-x')$$, '42501', NULL, 'anon: create_category is refused');
SELECT throws_ok(format($$SELECT catalog_api.update_category(id => %s, expected_version => 1, name => 'x')$$, (SELECT cat FROM fx)),
                 '42501', NULL, 'anon: update_category is refused');
SELECT throws_ok('SELECT catalog_api.purge_idempotency()', '42501', NULL, 'anon: purge_idempotency is refused');
SELECT is((SELECT jsonb_agg(i->'id') FROM jsonb_array_elements(
               catalog_api.search_products(q => 'Tap', category_id => (SELECT cat FROM fx))->'items') i),
          jsonb_build_array((SELECT pub FROM fx)), 'anon: search_products finds the published product only');
SELECT throws_ok($$SELECT catalog_api.search_products(status => 'draft')$$, '42501', NULL,
                 'anon: searching drafts is refused');
SELECT is((catalog_api.product_facets(category_id => (SELECT cat FROM fx)))->'status',
          '[{"count": 1, "status": "published"}]'::jsonb,
          'anon: product_facets counts published products only, and shows no other status');
SELECT throws_ok('SELECT catalog_api.refresh_search_terms()', '42501', NULL, 'anon: refresh_search_terms is refused');
SELECT throws_ok(c, '42501', NULL, 'anon: ' || c || ' is refused') FROM audit_calls ORDER BY c;
RESET ROLE;

-- Each API function as catalog_editor.
SET LOCAL ROLE catalog_editor;
SELECT is((catalog_api.get_product((SELECT draft FROM fx)))->>'status', 'draft', 'editor: sees drafts');
SELECT is((catalog_api.get_product((SELECT arch FROM fx)))->>'status', 'archived', 'editor: sees archived products');
SELECT ok(jsonb_array_length(catalog_api.list_categories()) >= 1, 'editor: list_categories');
SELECT is(catalog_api.health()->>'status', 'ok', 'editor: health');
SELECT is(catalog_api.health() ?| ARRAY['server_version', 'api_calls', 'rate_limiter'], false,
          'editor: health without the admin-only keys');
SELECT is((catalog_api.create_product(sku => 'TAP-E-' || pg_backend_pid(), name => 'Editor made', price => 4,
          category_id => (SELECT cat FROM fx)))->>'name', 'Editor made', 'editor: create_product');
SELECT is((catalog_api.update_product(id => (SELECT draft FROM fx), expected_version => 1, name => 'Tap draft 2'))->>'version',
          '2', 'editor: update_product');
SELECT is((catalog_api.archive_product(id => (SELECT draft FROM fx), expected_version => 2))->>'status',
          'archived', 'editor: archive_product');
SELECT is((catalog_api.create_category(name => 'Editor cat', slug => 'tap-editor-' || pg_backend_pid()))->>'name',
          'Editor cat', 'editor: create_category');
SELECT is((catalog_api.update_category(id => (SELECT cat FROM fx), expected_version => 1, name => 'Tap Roles 2'))->>'name',
          'Tap Roles 2', 'editor: update_category');
SELECT throws_ok('SELECT catalog_api.purge_idempotency()', '42501', NULL, 'editor: purge_idempotency is refused');
SELECT is(catalog_api.search_products(q => 'Tap', category_id => (SELECT cat FROM fx), status => 'archived') #>> '{items,0,status}',
          'archived', 'editor: search_products of archived products');
SELECT ok((catalog_api.product_facets(category_id => (SELECT cat FROM fx)))->'status' @> '[{"status": "archived"}]',
          'editor: product_facets counts every status');
SELECT throws_ok('SELECT catalog_api.refresh_search_terms()', '42501', NULL, 'editor: refresh_search_terms is refused');
SELECT lives_ok(c, 'editor: ' || c) FROM audit_calls WHERE editor ORDER BY c;
SELECT throws_ok(c, '42501', NULL, 'editor: ' || c || ' is refused') FROM audit_calls WHERE NOT editor ORDER BY c;
RESET ROLE;

-- Expired idempotency keys for purge_idempotency below (inserted as the
-- superuser; every expired key counts, those of earlier files too).
INSERT INTO catalog.idempotency (actor_source, actor, key, operation, fingerprint, expires_at)
SELECT 's', 'tap-purge', 'k' || g, 'create_product', sha256(g::text::bytea), now() - interval '1 hour'
FROM generate_series(1, 3) g;
CREATE TEMP TABLE expired AS
    SELECT count(*) AS n FROM catalog.idempotency WHERE expires_at <= statement_timestamp();
GRANT SELECT ON expired TO PUBLIC;

-- Each API function as catalog_admin.
SET LOCAL ROLE catalog_admin;
SELECT is((catalog_api.get_product((SELECT arch FROM fx)))->>'status', 'archived', 'admin: sees archived products');
SELECT ok(jsonb_array_length(catalog_api.list_categories()) >= 1, 'admin: list_categories');
SELECT is(catalog_api.health()->>'status', 'ok', 'admin: health');
-- health() counts every API function's calls, the read paths too
CREATE TEMP TABLE calls_before AS SELECT (catalog_api.health()->>'api_calls')::bigint AS n;
CREATE TEMP TABLE calls_made AS
    SELECT catalog_api.search_products(q => 'Tap') AS s, catalog_api.product_facets(q => 'Tap') AS f,
           catalog_api.rate_limits() AS r, catalog_api.audit_masks() AS m;
SELECT is((catalog_api.health()->>'api_calls')::bigint - (SELECT n FROM calls_before), 5::bigint,
          'admin: health counts the calls of search, facets, rate limits and masks, and its own');
-- PostgREST's pre-request hook runs before every call: it is not one more
CREATE TEMP TABLE calls_pre AS SELECT (catalog_api.health()->>'api_calls')::bigint AS n;
SELECT catalog_api.pre_request() IS NULL AS pre_request_done;
SELECT is((catalog_api.health()->>'api_calls')::bigint - (SELECT n FROM calls_pre), 1::bigint,
          'admin: pre_request is not counted as an API call (only health itself is)');
-- get_product is not STRICT: a null id is a call (counted, rate limited) refused like
-- every other missing required argument, not an answer of SQL NULL (HTTP 200 "null")
CREATE TEMP TABLE calls_null AS SELECT (catalog_api.health()->>'api_calls')::bigint AS n;
SELECT throws_ok($$SELECT catalog_api.get_product(NULL)$$, '22023',
                 'invalid value for field "id": a value is required', 'admin: get_product(NULL) is refused');
SELECT is((catalog_api.health()->>'api_calls')::bigint - (SELECT n FROM calls_null), 2::bigint,
          'admin: get_product(NULL) is counted as an API call');
SELECT is((catalog_api.create_product(sku => 'TAP-M-' || pg_backend_pid(), name => 'Admin made', price => 5,
          category_id => (SELECT cat FROM fx)))->>'name', 'Admin made', 'admin: create_product');
SELECT is((catalog_api.update_product(id => (SELECT pub FROM fx), expected_version => 1, price => 2.5))->>'price',
          '2.50', 'admin: update_product');
SELECT is((catalog_api.archive_product(id => (SELECT pub FROM fx), expected_version => 2))->>'status',
          'archived', 'admin: archive_product');
SELECT is((catalog_api.create_category(name => 'Admin cat', slug => 'tap-admin-' || pg_backend_pid()))->>'name',
          'Admin cat', 'admin: create_category');
SELECT is((catalog_api.update_category(id => (SELECT cat FROM fx), expected_version => 2, name => 'Tap Roles 3'))->>'version',
          '3', 'admin: update_category');
SELECT is(catalog_api.purge_idempotency(batch_size => 2), 2::bigint,
          'admin: purge_idempotency deletes at most batch_size expired keys');
SELECT is(catalog_api.purge_idempotency(), (SELECT n FROM expired) - 2,
          'admin: purge_idempotency deletes the other expired keys');
SELECT is(catalog_api.purge_idempotency(), 0::bigint, 'admin: nothing expired is left to purge');
SELECT ok(catalog_api.search_products(q => 'Tap', category_id => (SELECT cat FROM fx), status => 'archived')->'items'
              @> jsonb_build_array(jsonb_build_object('id', (SELECT arch FROM fx))),
          'admin: search_products of archived products');
SELECT ok((catalog_api.product_facets(category_id => (SELECT cat FROM fx)))->'status' @> '[{"status": "archived"}]',
          'admin: product_facets counts every status');
SELECT set_config('tap.refreshed', catalog_api.refresh_search_terms()::text, true) IS NOT NULL AS refreshed;
SELECT lives_ok(c, 'admin: ' || c) FROM audit_calls ORDER BY c;
RESET ROLE;
SELECT is(current_setting('tap.refreshed')::bigint,
          (SELECT count(DISTINCT (l.lexeme, p.status)) FROM catalog.product p,
                  unnest(p.search_doc) AS l (lexeme, positions, weights)
           WHERE 'A' = ANY (l.weights) AND length(l.lexeme) BETWEEN 5 AND 64 AND l.lexeme !~ '[-0-9]'),
          'admin: refresh_search_terms returns the number of entries the products give (derived in SQL)');

-- The actor is recorded from JWT sub, else catalog.actor, else session_user.
SELECT is((SELECT created_by FROM catalog.product WHERE sku = 'TAP-E-' || pg_backend_pid()), 'pgtap-setup',
          'created_by is catalog.actor when no JWT is present');
SET LOCAL request.jwt.claims = '{"role":"catalog_editor","sub":"user-42"}';
SET LOCAL ROLE catalog_editor;
SELECT ok(catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 1, name => 'By JWT') IS NOT NULL,
          'editor with a JWT updates');
RESET ROLE;
SELECT is((SELECT updated_by FROM catalog.product WHERE id = (SELECT arch FROM fx)), 'user-42',
          'updated_by is the JWT sub, not the role');
SET LOCAL request.jwt.claims = '';
SET LOCAL catalog.actor = '';
SELECT is((catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 2, name => 'By session'))->>'version', '3',
          'update without JWT or catalog.actor');
SELECT is((SELECT updated_by FROM catalog.product WHERE id = (SELECT arch FROM fx)), session_user::text,
          'updated_by falls back to session_user');
-- A sub of another JSON type is refused, not taken as absent (which would
-- record every holder of such a token as the login role); a JSON null is
-- absent, as ->> reads it, and a number is printed, unless it is too long
-- for an actor: then it is refused without being printed (1e131071 is a
-- few bytes of jsonb and 131,072 digits of text).
SELECT throws_ok(format($$SELECT set_config('request.jwt.claims', %L, true),
                               catalog_api.update_product(id => %s, expected_version => 3, name => 'By odd sub')$$,
                        v, (SELECT arch FROM fx)),
                 st, 'invalid value for field "actor": ' || m, 'a JWT sub that is ' || d || ' is refused')
FROM (VALUES ('{"sub": true}', 'a boolean', '22023', 'value is not a JSON string or number'),
             ('{"sub": {"id": "user-42"}}', 'an object', '22023', 'value is not a JSON string or number'),
             ('{"sub": ["user-42"]}', 'an array', '22023', 'value is not a JSON string or number'),
             ('{"sub": 1e131071}', 'a number of 131,072 digits', '22001', 'value is longer than 255 characters'),
             ('{"sub": 1e255}', 'a number of 256 digits', '22001', 'value is longer than 255 characters'),
             ('{"sub": 1e-300}', 'a number of 300 decimals', '22001', 'value is longer than 255 characters'),
             ('{"sub": "user\u0000-42"}', 'a string escaping \u0000 (valid JSON, no text)', '22023',
              'value holds \u0000 or a lone surrogate, which no text can hold'),
             ('{"sub": "user-\ud800"}', 'a string with a lone surrogate', '22023',
              'value holds \u0000 or a lone surrogate, which no text can hold'),
             ('{"sub": {}, "nick": "a\u0000b"}', 'an object, beside a claim holding \u0000,', '22023',
              'value is not a JSON string or number')) AS t(v, d, st, m);
-- A claim or header that no text can hold but that is not read does not
-- fail the request (jsonb refuses the whole object): the claims and headers
-- the extension reads are still read.
SELECT set_config('request.jwt.claims', '{"sub": "user-43", "name": "a\u0000b", "nick": "\udc00"}', true) IS NOT NULL AS claims_set;
SELECT set_config('request.headers', '{"x-request-id": "rid-nul-43", "user-agent": "x\u0000y"}', true) IS NOT NULL AS headers_set;
SELECT catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 3, name => 'By a claim with NUL') IS NOT NULL AS updated;
SELECT is((SELECT updated_by || ' ' || (SELECT request_id FROM catalog.audit_log
                                         WHERE table_name = 'product' AND row_id = p.id ORDER BY id DESC LIMIT 1)
           FROM catalog.product p WHERE id = (SELECT arch FROM fx)), 'user-43 rid-nul-43',
          'a claim and a header holding \u0000 or a lone surrogate are ignored; sub and x-request-id are read');
SELECT set_config('request.headers', '', true) IS NOT NULL AS headers_reset;
SELECT set_config('request.jwt.claims', '{"sub": null}', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 4, name => 'By null sub') IS NOT NULL AS updated;
SELECT is((SELECT updated_by FROM catalog.product WHERE id = (SELECT arch FROM fx)), session_user::text,
          'a JWT sub that is null is absent');
SELECT set_config('request.jwt.claims', '{"sub": 4242}', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 5, name => 'By number sub') IS NOT NULL AS updated;
SELECT is((SELECT updated_by FROM catalog.product WHERE id = (SELECT arch FROM fx)), '4242',
          'a JWT sub that is a number is printed');
SELECT set_config('request.jwt.claims', '{"sub": 1e254}', true) IS NOT NULL AS claims_set;
SELECT catalog_api.update_product(id => (SELECT arch FROM fx), expected_version => 6, name => 'By a long number sub') IS NOT NULL AS updated;
SELECT is((SELECT updated_by FROM catalog.product WHERE id = (SELECT arch FROM fx)), '1' || repeat('0', 254),
          'a JWT sub that is a number of 255 digits is printed');
SET LOCAL request.jwt.claims = '';

-- Row-level security hides drafts and archived rows even after a mistaken grant.
GRANT USAGE ON SCHEMA catalog TO catalog_anon;
GRANT SELECT, UPDATE ON catalog.product TO catalog_anon;
SET LOCAL ROLE catalog_anon;
SELECT is_empty($$SELECT 1 FROM catalog.product WHERE status <> 'published'$$,
                'RLS: catalog_anon sees no draft or archived row even with SELECT granted');
SELECT lives_ok($$UPDATE catalog.product SET name = 'hijack'$$,
               'RLS: an UPDATE by catalog_anon with a mistaken grant runs');
RESET ROLE;
SELECT is_empty($$SELECT 1 FROM catalog.product WHERE name = 'hijack'$$,
                'RLS: catalog_anon has no UPDATE policy, so no row changed');
-- The same for categories: the tree guard's statement trigger locks the
-- tree as its owner, so a mistaken grant meets the table's policies, not a
-- "row of catalog.category_tree_lock is missing" error (55000); an editor's
-- plain UPDATE passes its policy and the guard still checks the move.
GRANT SELECT, UPDATE ON catalog.category TO catalog_anon, catalog_editor;
SELECT (catalog_api.create_category(name => 'Tap Tree Child', slug => 'tap-tree-child-' || pg_backend_pid(),
                                    parent_id => (SELECT cat FROM fx))->>'id')::bigint AS tree_child \gset
SELECT (SELECT cat FROM fx) AS tree_parent \gset
SET LOCAL ROLE catalog_anon;
SELECT lives_ok($$UPDATE catalog.category SET name = 'hijack'$$,
               'RLS: an UPDATE of catalog.category by catalog_anon with a mistaken grant runs');
RESET ROLE;
SELECT is_empty($$SELECT 1 FROM catalog.category WHERE name = 'hijack'$$,
                'RLS: catalog_anon has no UPDATE policy on catalog.category, so no row changed');
SET LOCAL ROLE catalog_editor;
SELECT lives_ok(format($$UPDATE catalog.category SET name = 'Tap Tree Renamed' WHERE id = %s$$, :tree_child),
                'a mistaken grant: an editor''s plain UPDATE of a category passes the tree guard');
SELECT throws_ok(format($$UPDATE catalog.category SET parent_id = %s WHERE id = %s$$, :tree_child, :tree_parent),
                 '22023', NULL, 'a mistaken grant: an editor''s plain UPDATE that would close a cycle is refused');
RESET ROLE;
SELECT is((SELECT name FROM catalog.category WHERE id = :tree_child), 'Tap Tree Renamed',
          'the editor''s rename is stored');
-- a key to hide: without one, the check below would pass on an empty table
CREATE TEMP TABLE fx_key AS
SELECT catalog_api.create_product(sku => 'TAP-K-' || pg_backend_pid(), name => 'Keyed', price => 1,
    category_id => (SELECT cat FROM fx), idempotency_key => 'tap-key-' || pg_backend_pid()) AS doc;
SELECT isnt_empty('SELECT 1 FROM catalog.idempotency', 'an idempotency key exists (seen by the owner)');
GRANT USAGE ON SCHEMA catalog TO catalog_editor;
GRANT SELECT ON catalog.idempotency TO catalog_editor;
SET LOCAL ROLE catalog_editor;
SELECT is_empty('SELECT 1 FROM catalog.idempotency', 'RLS: idempotency rows stay hidden from editors even with SELECT granted');
RESET ROLE;

-- The purge deletes a batch without reading the whole table: 20,000 live
-- keys, 300 expired ones, no statistics; a batch of 100 deletes 100 and
-- makes no sequential scan of catalog.idempotency (counted for this
-- transaction by pg_stat_xact_user_tables; the fixture's own statements
-- come before the first count), also with the generic plan the plan cache
-- may settle on (forced here: joining the batch back on the key hashed the
-- whole table in that plan).
INSERT INTO catalog.idempotency (actor_source, actor, key, operation, fingerprint, expires_at)
SELECT 's', 'tap-purge', 'k' || g, 'create_product', pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'),
       CASE WHEN g <= 300 THEN now() - interval '1 hour' - g * interval '1 second'
            ELSE now() + interval '1 day' END
  FROM generate_series(1, 20300) g;
CREATE TEMP TABLE purge_scans AS
SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'catalog.idempotency'::regclass;
SET LOCAL plan_cache_mode = force_generic_plan;
SET LOCAL ROLE catalog_admin;
SELECT is(catalog_api.purge_idempotency(batch_size => 100), 100::bigint, 'purge: a batch of 100 deletes 100 expired keys');
RESET ROLE;
SELECT is((SELECT x.seq_scan - s.seq_scan FROM pg_stat_xact_user_tables x, purge_scans s
            WHERE x.relid = 'catalog.idempotency'::regclass),
          0::bigint, 'purge: no sequential scan of catalog.idempotency');

-- A request for what is stored is answered after one UPDATE: the statement
-- triggers of catalog.product fire once (the recheck that catches a version
-- committed after the UPDATE's snapshot runs the UPDATE again only when the
-- request would change the row).
CREATE FUNCTION pg_temp.count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('tap.updates', (coalesce(nullif(current_setting('tap.updates', true), ''), '0')::int + 1)::text, true);
    RETURN NULL;
END $$;
CREATE TRIGGER tap_count_update BEFORE UPDATE ON catalog.product
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.count_update();
SELECT set_config('tap.noop', (catalog_api.create_product(sku => 'TAP-NOOP-' || pg_backend_pid(), name => 'No-op', price => 7,
           category_id => (SELECT cat FROM fx))->>'id'), true) IS NOT NULL AS created;
SELECT set_config('tap.updates', '0', true) IS NOT NULL AS reset;
SELECT is((catalog_api.update_product(id => current_setting('tap.noop')::bigint, expected_version => 1, price => 7))->>'version', '1',
          'a request for the stored price changes nothing');
SELECT is(current_setting('tap.updates'), '1', 'and runs the UPDATE once (its statement trigger fired once)');
DROP TRIGGER tap_count_update ON catalog.product;

-- With row_security off (pg_dump's scripts turn it off), every API function
-- answers as with it on: the extension's tables force row-level security
-- on their owner, so a function that queried them with it off failed with
-- 42501, naming an internal table.  They turn it on for their own queries
-- only, and the caller's setting is its own again afterwards.
-- what the admin functions answer with it on, to compare below
SET LOCAL ROLE catalog_admin;
CREATE TEMP TABLE rls_on AS
SELECT catalog_api.rate_limits() AS limits, catalog_api.health() - 'api_calls' - 'rate_limiter' AS health;
RESET ROLE;
SET LOCAL row_security = off;
SET LOCAL ROLE catalog_editor;
SELECT lives_ok(format($$SELECT set_config('tap.rls_cat', (catalog_api.create_category(name => 'Tap RLS off', slug => 'tap-rls-off-%s')->>'id'), true)$$,
                       pg_backend_pid()), 'row_security off: create_category');
SELECT lives_ok(format($$SELECT set_config('tap.rls_prod', (catalog_api.create_product(sku => 'TAP-RLS-%s', name => 'Tap rls off', price => 4,
                           category_id => current_setting('tap.rls_cat')::bigint, status => 'published',
                           idempotency_key => 'tap-rls-%s')->>'id'), true)$$, pg_backend_pid(), pg_backend_pid()),
                'row_security off: create_product with an idempotency key');
SELECT is((catalog_api.update_product(id => current_setting('tap.rls_prod')::bigint, expected_version => 1, price => 5))->>'price',
          '5.00', 'row_security off: update_product');
SELECT is((catalog_api.update_category(id => current_setting('tap.rls_cat')::bigint, expected_version => 1, name => 'Tap RLS off 2'))->>'version',
          '2', 'row_security off: update_category');
SELECT is((catalog_api.get_product(current_setting('tap.rls_prod')::bigint))->>'version', '2', 'row_security off: get_product');
SELECT ok(catalog_api.list_categories() @> jsonb_build_array(jsonb_build_object('id', current_setting('tap.rls_cat')::bigint)),
          'row_security off: list_categories');
SELECT is(jsonb_array_length(catalog_api.search_products(category_id => current_setting('tap.rls_cat')::bigint)->'items'), 1,
          'row_security off: search_products');
SELECT is((catalog_api.archive_product(current_setting('tap.rls_prod')::bigint, 2))->>'status', 'archived',
          'row_security off: archive_product');
RESET ROLE;
SET LOCAL ROLE catalog_admin;
SELECT lives_ok($$SELECT catalog_api.purge_idempotency(batch_size => 1)$$, 'row_security off: purge_idempotency');
SELECT is(catalog_api.rate_limits(), (SELECT limits FROM rls_on), 'row_security off: rate_limits answers as with it on');
SELECT is(catalog_api.health() - 'api_calls' - 'rate_limiter', (SELECT health FROM rls_on),
          'row_security off: health answers as with it on');
RESET ROLE;
SELECT is(current_setting('row_security'), 'off', 'row_security off: the caller''s setting is its own again');
SET LOCAL row_security = on;

-- catalog.idempotency_ttl: a key is kept that long from its statement
SET LOCAL catalog.idempotency_ttl = 120;
CREATE TEMP TABLE ttl_call AS
    SELECT statement_timestamp() AS at,
           catalog_api.create_product(sku => 'TAP-TTL-' || pg_backend_pid(), name => 'Short lived key', price => 1,
                                      category_id => (SELECT cat FROM fx),
                                      idempotency_key => 'tap-ttl-' || pg_backend_pid()) AS doc;
SELECT is((SELECT i.expires_at - c.at FROM catalog.idempotency i, ttl_call c
           WHERE i.key = 'tap-ttl-' || pg_backend_pid()),
          interval '120 seconds', 'catalog.idempotency_ttl = 120: the key expires 120 s after its statement');
RESET catalog.idempotency_ttl;
SELECT throws_ok('SET LOCAL catalog.idempotency_ttl = 59', '22023', NULL,
                 'catalog.idempotency_ttl below 60 s is refused');

-- health() is degraded when the installed SQL (pg_extension's version)
-- and the loaded library differ, as after ALTER EXTENSION UPDATE without a
-- restart; under PostgREST it then answers 503.  The version is changed in
-- a subtransaction that is undone.
CREATE FUNCTION pg_temp.health_at_version(v text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h jsonb;
    st text;
BEGIN
    BEGIN
        UPDATE pg_extension SET extversion = v WHERE extname = 'catalog';
        PERFORM set_config('request.method', 'GET', true);
        h := catalog_api.health();
        st := current_setting('response.status', true);
        RAISE EXCEPTION USING ERRCODE = 'P0003', MESSAGE = 'undo';
    EXCEPTION WHEN SQLSTATE 'P0003' THEN
        NULL;
    END;
    RETURN concat_ws(' ', h->>'status', h->>'version',
                     CASE WHEN h->>'library_version' = v THEN 'same' ELSE 'differs' END, nullif(st, ''));
END;
$$;
SELECT is(pg_temp.health_at_version('0.9'), 'degraded 0.9 differs 503',
          'health: degraded, with 503 under PostgREST, when the installed version is not the library''s');
SELECT is(pg_temp.health_at_version((SELECT extversion FROM pg_extension WHERE extname = 'catalog')),
          concat_ws(' ', 'ok', (SELECT extversion FROM pg_extension WHERE extname = 'catalog'), 'same'),
          'health: ok, without a status, when the versions match');

-- Only a product's own foreign-key check is rewritten as a missing category
-- (a category deleted while the write waited, category_delete_race.spec):
-- a user's trigger that deletes a category still in use gets core's 23503.
-- (SECURITY DEFINER: the write runs as the API's owner, which may not DELETE)
CREATE FUNCTION public.tap_drop_old_category() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM catalog.category WHERE id = OLD.category_id;
    RETURN NULL;
END $$;
SELECT set_config('catalog.actor', 'pgtap-setup', true) IS NOT NULL AS actor_set;
CREATE TEMP TABLE fk AS
    SELECT (catalog_api.create_category(name => 'Tap FK from', slug => 'tap-fk-from'))->>'id' AS src,
           (catalog_api.create_category(name => 'Tap FK to', slug => 'tap-fk-to'))->>'id' AS dst;
CREATE TEMP TABLE fk_p AS
    SELECT (catalog_api.create_product(sku => 'TAP-FK-1', name => 'Moves', price => 1,
                                       category_id => (SELECT src::bigint FROM fk)))->>'id' AS p1,
           (catalog_api.create_product(sku => 'TAP-FK-2', name => 'Stays', price => 1,
                                       category_id => (SELECT src::bigint FROM fk)))->>'id' AS p2;
CREATE TRIGGER tap_drop_old_category AFTER UPDATE ON catalog.product
    FOR EACH ROW EXECUTE FUNCTION public.tap_drop_old_category();
SELECT throws_ok(format($$SELECT catalog_api.update_product(id => %s, expected_version => 1, category_id => %s)$$,
                        (SELECT p1 FROM fk_p), (SELECT dst FROM fk)),
                 '23503', NULL,
                 'a category deleted while still in use, by a trigger the write set off, is not reported as a missing category_id');
DROP TRIGGER tap_drop_old_category ON catalog.product;
DROP FUNCTION public.tap_drop_old_category();

-- Idempotency keys are scoped by where the actor came from, not by its
-- text alone: a token whose sub is the login role's name, and a sub that
-- is a number printed like another token's string, are other callers (a
-- second call with the same key and another payload would otherwise be
-- refused with PT422, or replay the first caller's response).
SELECT set_config('catalog.actor', '', true) IS NOT NULL AS actor_cleared;
SELECT lives_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-SCOPE-L-%s', name => 'Scope login', price => 1,
                          category_id => %s, idempotency_key => 'tap-scope-%s')$$,
                       pg_backend_pid(), (SELECT cat FROM fx), pg_backend_pid()),
                'a key used by a caller without sub (the login role)');
SELECT set_config('request.jwt.claims', json_build_object('sub', session_user)::text, true) IS NOT NULL AS claims_set;
SELECT lives_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-SCOPE-J-%s', name => 'Scope jwt', price => 1,
                          category_id => %s, idempotency_key => 'tap-scope-%s')$$,
                       pg_backend_pid(), (SELECT cat FROM fx), pg_backend_pid()),
                'the same key from a token whose sub is the login role''s name is another caller''s');
SELECT set_config('request.jwt.claims', '{"sub": 1e2}', true) IS NOT NULL AS claims_set;
SELECT lives_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-SCOPE-N-%s', name => 'Scope number', price => 1,
                          category_id => %s, idempotency_key => 'tap-scope-n-%s')$$,
                       pg_backend_pid(), (SELECT cat FROM fx), pg_backend_pid()),
                'a key used by a token whose sub is the number 1e2');
SELECT set_config('request.jwt.claims', '{"sub": "100"}', true) IS NOT NULL AS claims_set;
SELECT lives_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-SCOPE-S-%s', name => 'Scope string', price => 1,
                          category_id => %s, idempotency_key => 'tap-scope-n-%s')$$,
                       pg_backend_pid(), (SELECT cat FROM fx), pg_backend_pid()),
                'the same key from a token whose sub is the string "100" is another caller''s');
SELECT is((SELECT array_agg(created_by ORDER BY sku) FROM catalog.product
           WHERE sku LIKE 'TAP-SCOPE-%-' || pg_backend_pid()),
          ARRAY[session_user::text, session_user::text, '100', '100'],
          'the recorded actor is the text either way (created_by)');
SELECT set_config('request.jwt.claims', '', true) IS NOT NULL AS claims_cleared;

-- The idempotency fingerprint covers every field of the payload: the same
-- key with any one field changed is another request (PT422), never a
-- replay of the first response (only price was tested, so a fingerprint
-- that left out any other field passed).
SELECT (catalog_api.create_category(name => 'Tap Fp Other', slug => 'tap-fp-other-' || pg_backend_pid())->>'id')::bigint
    AS fp_cat2 \gset
SELECT catalog_api.create_product(sku => 'TAP-FP-' || pg_backend_pid(), name => 'Fp', price => 1,
       category_id => (SELECT cat FROM fx), description => 'd', status => 'draft', currency => 'USD',
       attributes => '{"a": 1}', idempotency_key => 'tap-fp-' || pg_backend_pid()) IS NOT NULL AS fp_created;
SELECT throws_ok(format($$SELECT catalog_api.create_product(sku => %L, name => %L, price => %s, category_id => %s,
                          description => %L, status => %L, currency => %L, attributes => %L,
                          idempotency_key => 'tap-fp-%s')$$,
                        v.sku || pg_backend_pid(), v.name, v.price, coalesce(v.cat, (SELECT cat FROM fx)), v.descr,
                        v.st, v.cur, v.attrs, pg_backend_pid()),
                 'PT422', NULL, 'the idempotency fingerprint covers ' || v.f)
FROM (VALUES ('sku', 'TAP-FQ-', 'Fp', 1, NULL::bigint, 'd', 'draft', 'USD', '{"a": 1}'),
             ('name', 'TAP-FP-', 'Fq', 1, NULL, 'd', 'draft', 'USD', '{"a": 1}'),
             ('price', 'TAP-FP-', 'Fp', 2, NULL, 'd', 'draft', 'USD', '{"a": 1}'),
             ('category_id', 'TAP-FP-', 'Fp', 1, :fp_cat2, 'd', 'draft', 'USD', '{"a": 1}'),
             ('description', 'TAP-FP-', 'Fp', 1, NULL, 'e', 'draft', 'USD', '{"a": 1}'),
             ('status', 'TAP-FP-', 'Fp', 1, NULL, 'd', 'published', 'USD', '{"a": 1}'),
             ('currency', 'TAP-FP-', 'Fp', 1, NULL, 'd', 'draft', 'EUR', '{"a": 1}'),
             ('attributes', 'TAP-FP-', 'Fp', 1, NULL, 'd', 'draft', 'USD', '{"a": 2}'))
     AS v(f, sku, name, price, cat, descr, st, cur, attrs);
SELECT lives_ok(format($$SELECT catalog_api.create_product(sku => 'TAP-FP-%s', name => 'Fp', price => 1, category_id => %s,
                         description => 'd', status => 'draft', currency => 'USD', attributes => '{"a": 1}',
                         idempotency_key => 'tap-fp-%s')$$,
                       pg_backend_pid(), (SELECT cat FROM fx), pg_backend_pid()),
                'the same key with the same payload is a replay');

SELECT * FROM finish();
ROLLBACK;
