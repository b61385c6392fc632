/* catalog--1.0.sql: base install script of the catalog extension */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION catalog" to load this file. \quit

------------------------------------------------------------------------------
-- A UTF8 database only.  Validation (src/validate.c) works on Unicode code
-- points; in another server encoding NFC can compose a character the
-- encoding cannot hold (WIN1258: e-circumflex and a combining acute), and
-- identities would be checked as UTF-8 while stored in another encoding.
------------------------------------------------------------------------------
DO $encoding$
BEGIN
    IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'extension "catalog" requires a UTF8 database, not %',
                        pg_catalog.current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8'' (and TEMPLATE template0 when template1 has another encoding).';
    END IF;
END
$encoding$;

------------------------------------------------------------------------------
-- Roles.  Cluster-wide, so created only when missing; never dropped by the
-- extension (other databases may use them).  NOLOGIN: a deployment grants
-- them to its login role (PostgREST's authenticator or an application role).
-- Hierarchy: catalog_admin > catalog_editor > catalog_anon.  catalog_owner
-- owns the SECURITY DEFINER API functions and holds only the table
-- privileges they need, so no API path ever runs as a superuser.
------------------------------------------------------------------------------
DO $roles$
DECLARE
    r record;
BEGIN
    -- Owner of the API functions: they run as this role, never as a superuser.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_owner') THEN
        CREATE ROLE catalog_owner NOLOGIN NOINHERIT;
    END IF;
    -- Owner of the audit tables and of the functions that manage them; the
    -- audit trigger writes as this role, so no writer needs a privilege on
    -- the audit tables, and catalog_owner (the API) has none at all.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_audit_owner') THEN
        CREATE ROLE catalog_audit_owner NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_anon') THEN
        CREATE ROLE catalog_anon NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_editor') THEN
        CREATE ROLE catalog_editor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_admin') THEN
        CREATE ROLE catalog_admin NOLOGIN;
    END IF;

    -- A role that already existed is adopted only if it is what this script
    -- would have created: a role created beforehand by somebody else (with
    -- LOGIN, or SUPERUSER, or members of its own) would otherwise inherit
    -- the extension's privileges.
    FOR r IN SELECT rolname, rolsuper, rolcanlogin, rolbypassrls, rolcreaterole,
                    rolcreatedb, rolreplication
             FROM pg_catalog.pg_roles
             WHERE rolname IN ('catalog_owner', 'catalog_audit_owner', 'catalog_anon',
                               'catalog_editor', 'catalog_admin')
    LOOP
        IF r.rolsuper OR r.rolcanlogin OR r.rolbypassrls OR r.rolcreaterole
           OR r.rolcreatedb OR r.rolreplication THEN
            RAISE EXCEPTION 'role "%" exists with attributes catalog does not grant', r.rolname
                USING ERRCODE = '42501',
                      HINT = 'The catalog roles must be NOLOGIN roles without SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION; drop or alter the role, then retry.';
        END IF;
    END LOOP;
    FOR r IN SELECT o.rolname FROM pg_catalog.pg_roles o
             WHERE o.rolname IN ('catalog_owner', 'catalog_audit_owner')
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                           WHERE m.roleid = o.oid OR m.member = o.oid)
    LOOP
        RAISE EXCEPTION 'role "%" has members or memberships', r.rolname
            USING ERRCODE = '42501',
                  HINT = 'Nobody may be a member of catalog_owner or catalog_audit_owner: they own SECURITY DEFINER functions.';
    END LOOP;

    IF NOT pg_catalog.pg_has_role('catalog_editor', 'catalog_anon', 'MEMBER') THEN
        GRANT catalog_anon TO catalog_editor;
    END IF;
    IF NOT pg_catalog.pg_has_role('catalog_admin', 'catalog_editor', 'MEMBER') THEN
        GRANT catalog_editor TO catalog_admin;
    END IF;
END
$roles$;

------------------------------------------------------------------------------
-- Schemas.  "catalog" holds data and internals and is never exposed;
-- "catalog_api" holds only the functions meant to be called from outside.
------------------------------------------------------------------------------
CREATE SCHEMA catalog;
CREATE SCHEMA catalog_api;
REVOKE ALL ON SCHEMA catalog FROM PUBLIC;
REVOKE ALL ON SCHEMA catalog_api FROM PUBLIC;
GRANT USAGE ON SCHEMA catalog_api TO catalog_anon, catalog_editor, catalog_admin;
COMMENT ON SCHEMA catalog_api IS
'Product catalog API

Every function of this schema is an endpoint (POST /rpc/<name>, GET for read-only functions).';

------------------------------------------------------------------------------
-- Types
------------------------------------------------------------------------------
CREATE TYPE catalog.product_status AS ENUM ('draft', 'published', 'archived');

------------------------------------------------------------------------------
-- Category tree.  Cycles are made impossible by catalog.category_tree_guard
-- (a C trigger that serialises moves and walks ancestors under row locks).
------------------------------------------------------------------------------
CREATE TABLE catalog.category (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    parent_id   bigint REFERENCES catalog.category (id) ON DELETE RESTRICT,
    slug        text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by  text NOT NULL,
    updated_by  text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    CONSTRAINT category_slug_key UNIQUE (slug),
    CONSTRAINT category_not_own_parent CHECK (parent_id IS DISTINCT FROM id),
    CONSTRAINT category_slug_len CHECK (pg_catalog.length(slug) BETWEEN 1 AND 100),
    CONSTRAINT category_name_len CHECK (pg_catalog.length(name) BETWEEN 1 AND 100),
    CONSTRAINT category_actor_len CHECK (pg_catalog.length(created_by) <= 255
                                         AND pg_catalog.length(updated_by) <= 255),
    CONSTRAINT category_version_positive CHECK (version >= 1)
);
CREATE INDEX category_parent_idx ON catalog.category (parent_id, name, id);

-- One row whose row lock serialises every change of the tree's structure
-- (see src/category.c).  A table row rather than an advisory lock: nobody
-- but catalog_owner can lock it, while any login can take any advisory lock.
CREATE TABLE catalog.category_tree_lock (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    changes  bigint NOT NULL DEFAULT 0
);
INSERT INTO catalog.category_tree_lock DEFAULT VALUES;
COMMENT ON TABLE catalog.category IS 'Category tree; parent_id NULL for a root';

------------------------------------------------------------------------------
-- Products
------------------------------------------------------------------------------
CREATE TABLE catalog.product (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sku          text NOT NULL,
    name         text NOT NULL,
    description  text,
    status       catalog.product_status NOT NULL DEFAULT 'draft',
    category_id  bigint NOT NULL REFERENCES catalog.category (id) ON DELETE RESTRICT,
    price        numeric(12,2) NOT NULL,
    currency     text NOT NULL,
    attributes   jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   text NOT NULL,
    updated_by   text NOT NULL,
    version      integer NOT NULL DEFAULT 1,
    -- What search matches (src/search.c): name and SKU (weight A), attribute
    -- values (B), description (C); the 'simple' configuration (no stemming,
    -- no stop words: the last word of a query is matched as a prefix instead).
    search_doc   tsvector NOT NULL GENERATED ALWAYS AS (
                     pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple'::regconfig, name || ' ' || sku), 'A')
                     || pg_catalog.setweight(pg_catalog.jsonb_to_tsvector('pg_catalog.simple'::regconfig, attributes, '["string", "numeric"]'::jsonb), 'B')
                     || pg_catalog.setweight(pg_catalog.to_tsvector('pg_catalog.simple'::regconfig, COALESCE(description, '')), 'C')
                 ) STORED,
    CONSTRAINT product_sku_key UNIQUE (sku),
    CONSTRAINT product_sku_len CHECK (pg_catalog.length(sku) BETWEEN 1 AND 64),
    CONSTRAINT product_name_len CHECK (pg_catalog.length(name) BETWEEN 1 AND 255),
    CONSTRAINT product_description_len CHECK (pg_catalog.length(description) <= 5000),
    CONSTRAINT product_price_range CHECK (price >= 0 AND price <> 'NaN'),
    CONSTRAINT product_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT product_attributes_object CHECK (pg_catalog.jsonb_typeof(attributes) = 'object'),
    CONSTRAINT product_attributes_size CHECK (pg_catalog.pg_column_size(attributes) <= 16384),
    CONSTRAINT product_actor_len CHECK (pg_catalog.length(created_by) <= 255
                                        AND pg_catalog.length(updated_by) <= 255),
    CONSTRAINT product_version_positive CHECK (version >= 1)
);
-- Query shapes (src/search.c chooses among them per query):
--   counts by status, category and price without touching the heap
--   (facets): (status, category, price, id);
--   a category newest first, which also serves the foreign key, and a
--   category by price: (category, created_at, id), (category, price, id);
--   the whole catalog by price, newest first, by name: (price, id),
--   (created_at, id), (name, status);
--   SKU prefixes in byte order (sku COLLATE "C");
--   words (GIN over search_doc), substrings of names and SKUs (pg_trgm).
-- Why status leads no ordering index: the API reads as catalog_owner under
-- row-level security, where a condition is kept apart from the policy
-- unless its operator is leakproof, and enum equality is not; so
-- "status = $1" cannot fix an index prefix to give an order.  Status is a
-- filter of the ordered scans instead (most rows are published).
CREATE INDEX product_status_category_price_idx
    ON catalog.product (status, category_id, price, id);
CREATE INDEX product_category_created_idx ON catalog.product (category_id, created_at, id);
CREATE INDEX product_category_price_idx ON catalog.product (category_id, price, id);
CREATE INDEX product_price_idx ON catalog.product (price, id);
CREATE INDEX product_created_idx ON catalog.product (created_at, id);
CREATE INDEX product_name_status_idx ON catalog.product (name, status);
CREATE INDEX product_sku_bytes_idx ON catalog.product (sku COLLATE "C");
-- The GIN indexes keep a pending list of new entries that every search
-- scans in full until it is merged: at the default 4 MB a word's search
-- paid about 10 ms more once a few thousand products had been written
-- since the last merge (and the write that merges pays for all of them).
-- 512 kB bounds that to about 2 ms, at no measured cost to a create;
-- fastupdate = off (no list at all) made a create cost 2.4 times as much.
CREATE INDEX product_search_doc_idx ON catalog.product USING gin (search_doc)
    WITH (gin_pending_list_limit = 512);
CREATE INDEX product_name_trgm_idx ON catalog.product USING gin (name gin_trgm_ops)
    WITH (gin_pending_list_limit = 512);
CREATE INDEX product_sku_trgm_idx ON catalog.product USING gin (sku gin_trgm_ops)
    WITH (gin_pending_list_limit = 512);
COMMENT ON TABLE catalog.product IS 'Products; every write goes through catalog_api';

------------------------------------------------------------------------------
-- Idempotency keys: (actor, key) -> fingerprint of the canonical request
-- and the stored response, valid until expires_at.  An expired row no
-- longer matches (it is overwritten by the next request with that key) and
-- catalog_api.purge_idempotency() deletes expired rows in small batches with
-- SKIP LOCKED, so it never waits for, nor blocks, a writer for long.
------------------------------------------------------------------------------
CREATE TABLE catalog.idempotency (
    actor_source "char" NOT NULL,
    actor        text NOT NULL,
    key          text NOT NULL,
    operation    text NOT NULL,
    fingerprint  bytea NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (actor_source, actor, key),
    CONSTRAINT idempotency_actor_source CHECK (actor_source IN ('j', 'n', 's', 'l')),
    CONSTRAINT idempotency_actor_len CHECK (pg_catalog.length(actor) <= 255),
    CONSTRAINT idempotency_key_len CHECK (pg_catalog.length(key) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_fingerprint_len CHECK (pg_catalog.length(fingerprint) = 32)
);
CREATE INDEX idempotency_expires_idx ON catalog.idempotency (expires_at);

------------------------------------------------------------------------------
-- Search support.
--
-- search_term: the words of product names (5 to 64 characters, no digits),
-- each with the status of the product it came from: the dictionary
-- typo-tolerant search corrects a query word against, among the words of
-- the statuses it searches (an anonymous search: published products' words
-- only, so the words of drafts never change what it finds).  Filled
-- by a statement trigger on catalog.product, without a unique index so that
-- a writer never waits for another (two transactions adding the same new
-- word may both insert it; readers use DISTINCT and
-- catalog_api.refresh_search_terms() compacts).  Words of renamed products,
-- and of products whose status changed, stay until the refresh: a stale
-- word only costs a candidate that matches nothing.
--
-- signing_key: server-side secrets.  'cursor' signs search cursors
-- (HMAC-SHA256); the newest kid signs, any listed kid verifies, so a key can
-- be rotated by adding one and dropping the old one after the longest a
-- client keeps a cursor.  'audit' keys the masking HMAC of audit rows
-- (src/audit_mask.c; the newest kid masks, so after a rotation equal values
-- masked before and after differ).  'csrf' signs CSRF tokens (src/token.c;
-- the newest kid signs, any listed kid verifies: dropping a kid revokes
-- every token it signed).  No role but the superuser can read it: the C code
-- reads it below the privilege system.
------------------------------------------------------------------------------
CREATE TABLE catalog.search_term (
    term    text NOT NULL,
    status  catalog.product_status NOT NULL,
    CONSTRAINT search_term_len CHECK (pg_catalog.length(term) BETWEEN 1 AND 64)
);
CREATE INDEX search_term_term_idx ON catalog.search_term (term);
CREATE INDEX search_term_trgm_idx ON catalog.search_term USING gin (term gin_trgm_ops);
COMMENT ON TABLE catalog.search_term IS 'Words of product names, for typo-tolerant search';

CREATE TABLE catalog.signing_key (
    purpose     text NOT NULL,
    kid         integer NOT NULL,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (purpose, kid),
    CONSTRAINT signing_key_purpose CHECK (purpose IN ('cursor', 'audit', 'csrf')),
    CONSTRAINT signing_key_kid CHECK (kid BETWEEN 1 AND 65535),
    CONSTRAINT signing_key_secret_len CHECK (pg_catalog.length(secret) BETWEEN 32 AND 256)
);
COMMENT ON TABLE catalog.signing_key IS 'Server-side secrets (superuser only)';
-- 32 bytes from pg_strong_random (two version 4 UUIDs carry 244 random bits).
INSERT INTO catalog.signing_key (purpose, kid, secret)
VALUES ('cursor', 1, pg_catalog.decode(pg_catalog.replace(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex')),
       ('audit', 1, pg_catalog.decode(pg_catalog.replace(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex')),
       ('csrf', 1, pg_catalog.decode(pg_catalog.replace(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex'));

------------------------------------------------------------------------------
-- Rate limits (src/ratelimit.c).  A row overrides, for one caller class, the
-- default limit (settings catalog.rate_limit_read_rate/_burst and
-- catalog.rate_limit_write_rate/_burst) of an action class ('read',
-- 'write') or of one API function; rate NULL means no limit.  Every backend
-- caches the table and drops its cache on the table's relcache
-- invalidation (statement trigger below), on the primary and on standbys.
-- Managed with catalog_api.rate_limit_set/drop.
------------------------------------------------------------------------------
CREATE TABLE catalog.rate_limit (
    caller_class  text NOT NULL,
    action        text NOT NULL,
    rate          double precision,
    burst         integer NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by    text NOT NULL,
    PRIMARY KEY (caller_class, action),
    CONSTRAINT rate_limit_class CHECK (caller_class IN ('anonymous', 'editor', 'admin')),
    CONSTRAINT rate_limit_action CHECK (action ~ '^[a-z_]{1,63}$'),
    CONSTRAINT rate_limit_rate CHECK (rate IS NULL OR (rate >= 0.001 AND rate <= 1000000)),
    CONSTRAINT rate_limit_burst CHECK (burst BETWEEN 1 AND 1000000),
    CONSTRAINT rate_limit_by_len CHECK (pg_catalog.length(updated_by) <= 255)
);
COMMENT ON TABLE catalog.rate_limit IS 'Rate limits per caller class and action, over the defaults';

-- The statement trigger of every table that backends cache (rate limits,
-- audit masks, search terms): it invalidates the table's relcache entry, which each
-- cache listens to (this backend at its next command, the others and hot
-- standbys when the transaction commits).
CREATE FUNCTION catalog.cache_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_cache_changed'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog.cache_changed() IS
'Tells every backend that a cached table (rate limits, audit masks, search terms) changed';
CREATE TRIGGER rate_limit_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON catalog.rate_limit
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.cache_changed();
-- ALWAYS: also under session_replication_role = replica (a restore run
-- that way), or the change would reach no backend's cache.  A logical
-- replication apply worker runs in that role too but fires row triggers
-- only (TRUNCATE excepted): the REPLICA row trigger covers it, and fires
-- only in that role, so ordinary writes pay for one trigger, not two.
ALTER TABLE catalog.rate_limit ENABLE ALWAYS TRIGGER rate_limit_changed;
CREATE TRIGGER rate_limit_changed_apply
    AFTER INSERT OR UPDATE OR DELETE ON catalog.rate_limit
    FOR EACH ROW EXECUTE FUNCTION catalog.cache_changed();
ALTER TABLE catalog.rate_limit ENABLE REPLICA TRIGGER rate_limit_changed_apply;

CREATE FUNCTION catalog.rate_limit_functions(OUT function_name text, OUT action text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'catalog_rate_limit_functions'
LANGUAGE C STABLE STRICT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog.rate_limit_functions() IS
'The rate limiter''s action class of each catalog_api function (read, write or exempt)';

CREATE FUNCTION catalog.rate_limit_partition(scope text, sub text)
RETURNS integer
AS 'MODULE_PATHNAME', 'catalog_rate_limit_partition'
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog.rate_limit_partition(text, text) IS
'Lock partition of the bucket of a JWT subject in a scope (for tests; superuser only)';

------------------------------------------------------------------------------
-- Audit (src/audit.c, src/audit_mask.c, src/audit_chain.c).
--
-- audit_log: one row per changed row of catalog.product and
-- catalog.category, written by the C trigger catalog.audit_trigger in the
-- writer's own transaction (so it commits, or rolls back, with the write).
-- Partitioned by month of occurred_at; the default partition catches a row
-- whose month has no partition yet, so an insert never fails for lack of
-- one, and catalog_api.audit_maintain() moves such rows into their month.
-- Append-only: catalog.audit_guard refuses UPDATE, DELETE and TRUNCATE, and
-- no role holds those privileges.  Retention drops whole partitions only
-- (catalog_api.audit_drop_partitions).
--
-- Columns: occurred_at is the wall clock of the write (clock_timestamp),
-- xact_at the start of its transaction, txid its top-level transaction id;
-- actor is the JWT "sub", else catalog.actor, else session_user; role_name
-- the role in effect (PostgREST's SET ROLE role, not the SECURITY DEFINER
-- owner); via is 'POST /rpc/create_product' under PostgREST, else 'sql';
-- request_id the correlation id.  old_values and new_values: for an insert
-- new_values is the row image, for a delete old_values is; for an update
-- both hold only the changed columns.  Values are masked before the row is
-- built (catalog.audit_mask and the built-in patterns).  row_hash is the
-- SHA-256 of the row's canonical content (catalog.audit_row_hash).  No CHECK
-- constraints: the trigger is the one writer and builds every column (an
-- action and its images agree, texts are bounded: actor 255 code points,
-- role 63 bytes, via 300, request_id 128, row_hash 32 bytes), and rows go
-- into their month's partition without a plan (src/audit.c).
--
-- audit_seal and audit_chain: the hash chain.  catalog_api.audit_seal()
-- appends the committed, not yet sealed audit rows to the chain
-- (chain_hash = SHA-256 of the previous chain_hash, the seq and the
-- row_hash), one writer at a time under the audit_chain row lock; writers
-- never touch the chain.  See README.md (Audit) for what it proves.
------------------------------------------------------------------------------
CREATE SEQUENCE catalog.audit_log_id_seq AS bigint;

CREATE TABLE catalog.audit_log (
    id           bigint NOT NULL DEFAULT pg_catalog.nextval('catalog.audit_log_id_seq'::regclass),
    occurred_at  timestamptz NOT NULL,
    xact_at      timestamptz NOT NULL,
    txid         xid8 NOT NULL,
    actor        text NOT NULL,
    role_name    text NOT NULL,
    via          text NOT NULL,
    request_id   text NOT NULL,
    table_name   text NOT NULL,
    row_id       bigint NOT NULL,
    action       text NOT NULL,
    old_values   jsonb,
    new_values   jsonb,
    row_hash     bytea NOT NULL
) PARTITION BY RANGE (occurred_at);
-- The write path maintains two indexes only, both on ever-increasing keys
-- (so each insert lands on the rightmost leaf): the primary key (id) and
-- txid (for the sealer: rows of transactions that were in progress at its
-- last pass).  The lookups by row, actor and correlation id are indexed on
-- audit_seal, filled by the sealer off the write path; rows not sealed yet
-- (the last second, with the background worker) are found by id and txid.
--
-- Each partition carries its own two indexes (audit_maintain creates them
-- with the partition); the parent has none.  A partitioned index on the
-- parent would make the monthly partitions, which do not belong to the
-- extension, impossible to restore from pg_dump: their ATTACH would create
-- the index before the dump's own ADD CONSTRAINT.  id is unique by its
-- sequence; the per-partition key enforces it within a month.
CREATE TABLE catalog.audit_log_default PARTITION OF catalog.audit_log DEFAULT;
ALTER TABLE catalog.audit_log_default ADD CONSTRAINT audit_log_default_pkey PRIMARY KEY (id);
CREATE INDEX audit_log_default_txid_idx ON catalog.audit_log_default (txid);
COMMENT ON TABLE catalog.audit_log IS 'Audit rows of product and category writes (append-only, partitioned by month)';

-- Besides the chain, a seal row carries the audit row's lookup keys
-- (table_name, row_id, actor, request_id), copied by the sealer, so that
-- their indexes cost the writers nothing; audit_verify checks the copies,
-- and every column but chain_hash is part of the row's link.  A prune link
-- (a month dropped by retention) has a negative audit_id and no audit row.
-- The text keys are identifiers, looked up by equality and ordered only
-- for keyset paging: COLLATE "C" compares them by bytes, where the
-- database's collation would call strcoll for every comparison of every
-- index insert (a tenth of a sealing pass under C.UTF-8).
CREATE TABLE catalog.audit_seal (
    seq          bigint PRIMARY KEY,
    audit_id     bigint NOT NULL,
    occurred_at  timestamptz NOT NULL,
    row_hash     bytea NOT NULL,
    chain_hash   bytea NOT NULL,
    sealed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    table_name   text COLLATE "C" NOT NULL,
    row_id       bigint NOT NULL,
    actor        text COLLATE "C" NOT NULL,
    request_id   text COLLATE "C" NOT NULL,
    CONSTRAINT audit_seal_audit_id_key UNIQUE (audit_id),
    CONSTRAINT audit_seal_seq_positive CHECK (seq >= 1),
    CONSTRAINT audit_seal_hash_len CHECK (pg_catalog.length(row_hash) = 32
                                          AND pg_catalog.length(chain_hash) = 32)
);
CREATE INDEX audit_seal_row_idx ON catalog.audit_seal (table_name, row_id, audit_id);
CREATE INDEX audit_seal_actor_idx ON catalog.audit_seal (actor, audit_id);
CREATE INDEX audit_seal_request_idx ON catalog.audit_seal (request_id, audit_id);
COMMENT ON TABLE catalog.audit_seal IS 'Hash chain over sealed audit rows, in sealing order (append-only)';

-- The sealer's bookkeeping and lock, one row (the head of the chain is the
-- last row of audit_seal).  last_id is the highest audit id the last pass
-- saw and pending the transactions that were in progress then: the next
-- pass looks only at audit rows above last_id or written by a pending
-- transaction.  Not dumped: after a restore the first pass starts from 0
-- and finds the unsealed rows by their missing seal.
CREATE TABLE catalog.audit_chain (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_id    bigint NOT NULL DEFAULT 0,
    pending    xid8[] NOT NULL DEFAULT '{}',
    sealed_at  timestamptz
);
INSERT INTO catalog.audit_chain DEFAULT VALUES;
COMMENT ON TABLE catalog.audit_chain IS 'Bookkeeping and lock of the audit sealer';

-- Retention's record: every month audit_drop_partitions dropped, written in
-- the same transaction as the DROP, for people to read.  What audit_verify
-- trusts is the chain: the same transaction appends a prune link for the
-- month to audit_seal (audit_id = -seq, table_name 'audit_retention', see
-- src/audit.h), and a sealed row whose audit row is gone counts as pruned
-- only when a later valid prune link covers its time; any other missing row
-- (a DELETE, a partition dropped by hand) is broken.
CREATE TABLE catalog.audit_retention (
    month_start  timestamptz PRIMARY KEY,
    month_end    timestamptz NOT NULL,
    partition    text NOT NULL,
    dropped_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    dropped_by   text NOT NULL,
    CONSTRAINT audit_retention_range CHECK (month_start < month_end)
);
COMMENT ON TABLE catalog.audit_retention IS 'Months dropped by audit retention (append-only)';

-- Declared masking policy: a column of an audited table, or a key (at any
-- depth) of one of its jsonb columns, is masked by 'redact' (the value is
-- replaced by "[redacted]") or 'hash' (by a keyed HMAC-SHA256, so equal
-- values stay equal).  Managed with catalog_api.audit_mask_set/drop.
CREATE TABLE catalog.audit_mask (
    table_name     text NOT NULL,
    column_name    text NOT NULL,
    attribute_key  text NOT NULL DEFAULT '',
    method         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by     text NOT NULL,
    PRIMARY KEY (table_name, column_name, attribute_key),
    CONSTRAINT audit_mask_table CHECK (table_name IN ('product', 'category')),
    CONSTRAINT audit_mask_method CHECK (method IN ('redact', 'hash')),
    CONSTRAINT audit_mask_len CHECK (pg_catalog.length(column_name) BETWEEN 1 AND 63
                                     AND pg_catalog.length(attribute_key) <= 128
                                     AND pg_catalog.length(created_by) <= 255)
);
COMMENT ON TABLE catalog.audit_mask IS 'Declared audit masking policy';

-- No SET clause: the trigger runs no SQL on its usual path (the row goes
-- into its month's partition without a plan); the fallback insert through
-- the parent pins search_path itself and passes the owner's row-level
-- security policy whatever row_security says (src/audit.c).
CREATE FUNCTION catalog.audit_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_audit_trigger'
LANGUAGE C;
COMMENT ON FUNCTION catalog.audit_trigger() IS
'Writes the audit row of an inserted, updated or deleted row (masked, hashed)';

CREATE FUNCTION catalog.audit_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_audit_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog.audit_guard() IS
'Refuses UPDATE, DELETE and TRUNCATE of audit rows, and TRUNCATE of audited tables';

CREATE FUNCTION catalog.audit_row_hash(entry catalog.audit_log)
RETURNS bytea
AS 'MODULE_PATHNAME', 'catalog_audit_row_hash'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION catalog.audit_row_hash(catalog.audit_log) IS
'SHA-256 of the canonical content of an audit row (every column but row_hash)';

-- Plain triggers, not SECURITY DEFINER: the C code switches to
-- catalog_audit_owner only around its own insert (as core's foreign-key
-- triggers switch to the table owner), so the actor and role it records
-- are the caller's.
CREATE TRIGGER product_audit
    AFTER INSERT OR UPDATE OR DELETE ON catalog.product
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_trigger();
CREATE TRIGGER category_audit
    AFTER INSERT OR UPDATE OR DELETE ON catalog.category
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_trigger();
CREATE TRIGGER product_no_truncate
    BEFORE TRUNCATE ON catalog.product
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER category_no_truncate
    BEFORE TRUNCATE ON catalog.category
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
-- Row triggers on a partitioned table are cloned to every partition, now
-- and future; TRUNCATE triggers are not, so audit_maintain() adds one to
-- each partition it creates.
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON catalog.audit_log
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON catalog.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_log_default_no_truncate
    BEFORE TRUNCATE ON catalog.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_seal_append_only
    BEFORE UPDATE OR DELETE ON catalog.audit_seal
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_seal_no_truncate
    BEFORE TRUNCATE ON catalog.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_retention_append_only
    BEFORE UPDATE OR DELETE ON catalog.audit_retention
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_retention_no_truncate
    BEFORE TRUNCATE ON catalog.audit_retention
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_chain_guard
    BEFORE UPDATE OR DELETE ON catalog.audit_chain
    FOR EACH ROW EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_chain_no_truncate
    BEFORE TRUNCATE ON catalog.audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard();
CREATE TRIGGER audit_mask_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON catalog.audit_mask
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.cache_changed();
-- ALWAYS, as rate_limit_changed: a mask must apply however it was written
-- (and a REPLICA row trigger for a logical replication apply).
ALTER TABLE catalog.audit_mask ENABLE ALWAYS TRIGGER audit_mask_changed;
CREATE TRIGGER audit_mask_changed_apply
    AFTER INSERT OR UPDATE OR DELETE ON catalog.audit_mask
    FOR EACH ROW EXECUTE FUNCTION catalog.cache_changed();
ALTER TABLE catalog.audit_mask ENABLE REPLICA TRIGGER audit_mask_changed_apply;

------------------------------------------------------------------------------
-- Backups: the tables of an extension are left out of pg_dump unless marked
-- as configuration tables, and the catalog's data is the whole point.  The
-- tree lock row is not dumped: CREATE EXTENSION creates it.  See README.md
-- (Operations) for restoring.
------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('catalog.category', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.product', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.idempotency', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.search_term', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.category_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.product_id_seq', '');
-- Audit: the monthly partitions are created after the install by
-- catalog_api.audit_maintain() (the background worker runs it at start and
-- hourly), so they are ordinary tables that pg_dump dumps whole, rows and
-- attachment included; only the default partition belongs to the extension.
SELECT pg_catalog.pg_extension_config_dump('catalog.audit_log_default', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.audit_seal', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.audit_retention', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.audit_mask', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.rate_limit', '');
SELECT pg_catalog.pg_extension_config_dump('catalog.audit_log_id_seq', '');

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC, nothing on tables for the API roles.
-- Row-level security enforces the same rules should a privilege ever be
-- granted by mistake: anonymous readers see only published products.
------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA catalog FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA catalog FROM PUBLIC;
REVOKE ALL ON TYPE catalog.product_status FROM PUBLIC;

ALTER TABLE catalog.product ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.product FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.category ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.category FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.category_tree_lock ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.category_tree_lock FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.idempotency ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.idempotency FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.search_term ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.search_term FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.signing_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.signing_key FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.rate_limit ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.rate_limit FORCE ROW LEVEL SECURITY;

CREATE POLICY product_read_published ON catalog.product
    FOR SELECT TO catalog_anon USING (status = 'published');
-- Editors read, insert and update; nobody deletes products or categories
-- (they are archived), so no policy allows DELETE even if a privilege is
-- granted by mistake.
CREATE POLICY product_editor_read ON catalog.product
    FOR SELECT TO catalog_editor USING (true);
CREATE POLICY product_editor_insert ON catalog.product
    FOR INSERT TO catalog_editor WITH CHECK (true);
CREATE POLICY product_editor_update ON catalog.product
    FOR UPDATE TO catalog_editor USING (true) WITH CHECK (true);
CREATE POLICY category_read_all ON catalog.category
    FOR SELECT TO catalog_anon USING (true);
CREATE POLICY category_editor_read ON catalog.category
    FOR SELECT TO catalog_editor USING (true);
CREATE POLICY category_editor_insert ON catalog.category
    FOR INSERT TO catalog_editor WITH CHECK (true);
CREATE POLICY category_editor_update ON catalog.category
    FOR UPDATE TO catalog_editor USING (true) WITH CHECK (true);
CREATE POLICY product_owner_read ON catalog.product
    FOR SELECT TO catalog_owner USING (true);
CREATE POLICY product_owner_insert ON catalog.product
    FOR INSERT TO catalog_owner WITH CHECK (true);
CREATE POLICY product_owner_update ON catalog.product
    FOR UPDATE TO catalog_owner USING (true) WITH CHECK (true);
CREATE POLICY category_owner_read ON catalog.category
    FOR SELECT TO catalog_owner USING (true);
CREATE POLICY category_owner_insert ON catalog.category
    FOR INSERT TO catalog_owner WITH CHECK (true);
CREATE POLICY category_owner_update ON catalog.category
    FOR UPDATE TO catalog_owner USING (true) WITH CHECK (true);
CREATE POLICY category_tree_lock_owner ON catalog.category_tree_lock
    FOR ALL TO catalog_owner USING (true) WITH CHECK (true);
CREATE POLICY idempotency_owner_all ON catalog.idempotency
    FOR ALL TO catalog_owner USING (true) WITH CHECK (true);
CREATE POLICY search_term_owner_all ON catalog.search_term
    FOR ALL TO catalog_owner USING (true) WITH CHECK (true);
CREATE POLICY rate_limit_owner_all ON catalog.rate_limit
    FOR ALL TO catalog_owner USING (true) WITH CHECK (true);
-- catalog.idempotency and catalog.search_term have no policy for the API
-- roles: they never see a row.  catalog.signing_key has no policy at all.

-- What the API functions (owned by catalog_owner) need, and nothing more.
GRANT USAGE ON SCHEMA catalog TO catalog_owner;
GRANT USAGE ON TYPE catalog.product_status TO catalog_owner;
GRANT SELECT, INSERT, UPDATE ON catalog.product, catalog.category TO catalog_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON catalog.idempotency TO catalog_owner;
GRANT SELECT, UPDATE ON catalog.category_tree_lock TO catalog_owner;
GRANT SELECT, INSERT, DELETE ON catalog.search_term TO catalog_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON catalog.rate_limit TO catalog_owner;
GRANT USAGE ON SEQUENCE catalog.product_id_seq, catalog.category_id_seq TO catalog_owner;

-- Audit tables: owned by catalog_audit_owner, which keeps only what the
-- trigger, the sealer and the maintenance functions need.  UPDATE, DELETE
-- and TRUNCATE are revoked even from the owner; the one exception is
-- DELETE on the default partition, which audit_maintain() uses to move
-- rows into a partition created after them (the guard trigger lets only
-- that C code through).
ALTER TABLE catalog.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_log_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_log_default FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_seal ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_seal FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_chain FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_retention ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_retention FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_retention_owner ON catalog.audit_retention
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
ALTER TABLE catalog.audit_retention OWNER TO catalog_audit_owner;
ALTER TABLE catalog.audit_mask ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog.audit_mask FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_owner ON catalog.audit_log
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
CREATE POLICY audit_log_default_owner ON catalog.audit_log_default
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
CREATE POLICY audit_seal_owner ON catalog.audit_seal
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
CREATE POLICY audit_chain_owner ON catalog.audit_chain
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
CREATE POLICY audit_mask_owner ON catalog.audit_mask
    FOR ALL TO catalog_audit_owner USING (true) WITH CHECK (true);
ALTER TABLE catalog.audit_log OWNER TO catalog_audit_owner;
ALTER TABLE catalog.audit_log_default OWNER TO catalog_audit_owner;
ALTER TABLE catalog.audit_seal OWNER TO catalog_audit_owner;
ALTER TABLE catalog.audit_chain OWNER TO catalog_audit_owner;
ALTER TABLE catalog.audit_mask OWNER TO catalog_audit_owner;
ALTER SEQUENCE catalog.audit_log_id_seq OWNER TO catalog_audit_owner;
REVOKE ALL ON catalog.audit_log, catalog.audit_log_default, catalog.audit_seal,
              catalog.audit_chain, catalog.audit_mask, catalog.audit_retention FROM PUBLIC;
REVOKE ALL ON SEQUENCE catalog.audit_log_id_seq FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON catalog.audit_log, catalog.audit_log_default, catalog.audit_seal, catalog.audit_retention
    FROM catalog_audit_owner;
REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON catalog.audit_chain FROM catalog_audit_owner;
-- the masking policy is upserted and deleted by audit_mask_set/drop: never truncated
REVOKE TRUNCATE, REFERENCES, TRIGGER ON catalog.audit_mask FROM catalog_audit_owner;
-- nextval needs USAGE only; UPDATE would allow setval, and rewinding the
-- sequence could repeat an audit id in another month's partition
REVOKE SELECT, UPDATE ON SEQUENCE catalog.audit_log_id_seq FROM catalog_audit_owner;
GRANT DELETE ON catalog.audit_log_default TO catalog_audit_owner;
-- Partitions are created by audit_maintain(), which runs as the owner.
GRANT USAGE, CREATE ON SCHEMA catalog TO catalog_audit_owner;

------------------------------------------------------------------------------
-- Internal C functions (schema catalog; no grant to any API role).
------------------------------------------------------------------------------
CREATE FUNCTION catalog.canonical_text(kind text, value text,
                                       min_len integer DEFAULT 1,
                                       max_len integer DEFAULT 255)
RETURNS text
AS 'MODULE_PATHNAME', 'catalog_canonical_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION catalog.canonical_text(text, text, integer, integer) IS
'Canonical form of a value of the given field kind (plain, longtext, sku, slug, currency, token), or a 22xxx error';

CREATE FUNCTION catalog.check_price(value numeric)
RETURNS numeric
AS 'MODULE_PATHNAME', 'catalog_check_price'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION catalog.check_price(numeric) IS
'Returns the price when it is in range (0 to 9999999999.99, at most 2 decimals), or a 22xxx error';

CREATE FUNCTION catalog.category_tree_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_category_tree_guard'
LANGUAGE C;
-- No SET clause: its only SQL runs between ApiOwnerBegin and ApiOwnerEnd
-- (src/category.c), which pin search_path and row_security themselves, as
-- the other triggers that switch roles do (a SET clause would save and
-- restore the setting on every call, twice per statement).
COMMENT ON FUNCTION catalog.category_tree_guard() IS
'Refuses a category parent that would create a cycle or a tree deeper than 32 levels';

-- The statement trigger takes the tree lock before any row is locked (the
-- API's order: tree, then rows), for every write statement: a plain rename
-- or delete holding a row without the tree, in a transaction that then
-- moved a category, deadlocked with an API call holding the tree and
-- waiting for that row.  The row trigger checks each row.
CREATE TRIGGER category_tree_lock_first
    BEFORE INSERT OR UPDATE OR DELETE ON catalog.category
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.category_tree_guard();
CREATE TRIGGER category_tree_guard
    BEFORE INSERT OR UPDATE OF parent_id ON catalog.category
    FOR EACH ROW EXECUTE FUNCTION catalog.category_tree_guard();

-- Ids never change: the tree guard watches parent_id only, and renumbering
-- rows in one statement could rewire the tree past it (the foreign key's
-- NO ACTION check passes when another row takes a vanished id).  Fires
-- before category_tree_guard (triggers fire in name order).
CREATE FUNCTION catalog.id_immutable()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_id_immutable'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog.id_immutable() IS
'Refuses an UPDATE that changes a row''s id (22023, reason immutable)';
CREATE TRIGGER category_id_immutable
    BEFORE UPDATE OF id ON catalog.category
    FOR EACH ROW EXECUTE FUNCTION catalog.id_immutable();
CREATE TRIGGER product_id_immutable
    BEFORE UPDATE OF id ON catalog.product
    FOR EACH ROW EXECUTE FUNCTION catalog.id_immutable();

-- Whoever writes a product, the dictionary insert runs as the function's
-- owner (catalog_owner, below) with its narrow rights, so a writer needs no
-- privilege on catalog.search_term.  The C code switches to the owner, and
-- pins search_path and row_security = on (a restore runs with it off, as
-- pg_dump's scripts set it, which would make the owner's policy an error
-- instead of a filter), only around that insert, the one SQL it runs (as
-- core's foreign-key triggers do): a SECURITY DEFINER function with SET
-- clauses paid for both settings twice on every write, words new or not.
-- The lookups of known words read the index in C, below the privilege
-- system.
CREATE FUNCTION catalog.search_terms_collect()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_search_terms_collect'
LANGUAGE C;
COMMENT ON FUNCTION catalog.search_terms_collect() IS
'Adds the new words of inserted or updated product names to catalog.search_term';

-- Statement triggers with transition tables: one query per statement, so a
-- bulk load pays once, not once per row.
CREATE TRIGGER product_search_terms_insert
    AFTER INSERT ON catalog.product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.search_terms_collect();
CREATE TRIGGER product_search_terms_update
    AFTER UPDATE ON catalog.product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.search_terms_collect();

-- Backends remember the words they found in catalog.search_term (the
-- known-word cache of src/search.c); only a deletion can make one wrong, so
-- every UPDATE, DELETE and TRUNCATE of the dictionary invalidates it.
-- ALWAYS, as rate_limit_changed (and a REPLICA row trigger for a logical
-- replication apply).
CREATE TRIGGER search_term_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON catalog.search_term
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.cache_changed();
ALTER TABLE catalog.search_term ENABLE ALWAYS TRIGGER search_term_changed;
CREATE TRIGGER search_term_changed_apply
    AFTER UPDATE OR DELETE ON catalog.search_term
    FOR EACH ROW EXECUTE FUNCTION catalog.cache_changed();
ALTER TABLE catalog.search_term ENABLE REPLICA TRIGGER search_term_changed_apply;

-- Every UPDATE or DELETE of the dictionary (the refresh's, or one by hand)
-- first takes the SHARE lock on catalog.product that the refresh takes, so
-- writers of products wait until it has committed and its invalidation has
-- reached them: none takes a deleted word for known in between.  TRUNCATE
-- needs none (its own lock holds the writers).  ALWAYS, as above.  As with
-- the refresh, a deletion waits for every writer in flight, so two
-- transactions that each wrote a product and then delete words deadlock
-- (PostgreSQL detects it and cancels one); delete words apart from writes.
CREATE FUNCTION catalog.search_term_lock()
RETURNS trigger
AS 'MODULE_PATHNAME', 'catalog_search_term_lock'
LANGUAGE C;
COMMENT ON FUNCTION catalog.search_term_lock() IS
'Holds writers of products while the dictionary of search terms loses words';
CREATE TRIGGER search_term_lock
    BEFORE UPDATE OR DELETE ON catalog.search_term
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.search_term_lock();
ALTER TABLE catalog.search_term ENABLE ALWAYS TRIGGER search_term_lock;
-- (a logical replication apply fires row triggers only)
CREATE TRIGGER search_term_lock_apply
    BEFORE UPDATE OR DELETE ON catalog.search_term
    FOR EACH ROW EXECUTE FUNCTION catalog.search_term_lock();
ALTER TABLE catalog.search_term ENABLE REPLICA TRIGGER search_term_lock_apply;

-- What the search of each query shape runs, with the plan PostgreSQL keeps
-- for it (EXPLAIN, FORMAT JSON): for tests and for operators.  Superuser only
-- (no grant); runs as catalog_owner like search_products.
CREATE FUNCTION catalog.search_explain(
    q text DEFAULT NULL,
    category_id bigint DEFAULT NULL,
    min_price numeric DEFAULT NULL,
    max_price numeric DEFAULT NULL,
    status text DEFAULT NULL,
    sort text DEFAULT NULL,
    page_size integer DEFAULT 20,
    cursor text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_search_explain'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_indexscan = on
SET enable_bitmapscan = on
SET enable_sort = on
SET jit = off
SET row_security = on
SET gin_fuzzy_search_limit = 0
SET pg_trgm.similarity_threshold = 0.2;

REVOKE ALL ON FUNCTION catalog.canonical_text(text, text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.check_price(numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.category_tree_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.id_immutable() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.search_terms_collect() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.search_term_lock() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.search_explain(text, bigint, numeric, numeric, text, text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.audit_trigger() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.audit_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.audit_row_hash(catalog.audit_log) FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.cache_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.rate_limit_functions() FROM PUBLIC;
REVOKE ALL ON FUNCTION catalog.rate_limit_partition(text, text) FROM PUBLIC;
-- audit_maintain (running as catalog_audit_owner) puts the guard on each
-- partition it creates, which needs EXECUTE on the guard.
GRANT EXECUTE ON FUNCTION catalog.audit_guard() TO catalog_audit_owner;

------------------------------------------------------------------------------
-- API (schema catalog_api).  Every function is C, SECURITY DEFINER with a
-- pinned search_path, and takes named, defaulted arguments so PostgREST may
-- pass only the keys a client sent.
------------------------------------------------------------------------------
CREATE FUNCTION catalog_api.create_product(
    sku text,
    name text,
    price numeric,
    category_id bigint,
    description text DEFAULT NULL,
    status text DEFAULT 'draft',
    currency text DEFAULT 'USD',
    attributes jsonb DEFAULT '{}',
    idempotency_key text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_create_product'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.create_product(text, text, numeric, bigint, text, text, text, jsonb, text) IS
'Create a product

Validates and canonicalises every field and returns the product document. With idempotency_key, a retry with the same payload returns the first result; the same key with a different payload fails with PT422.';

CREATE FUNCTION catalog_api.get_product(id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_get_product'
LANGUAGE C STABLE PARALLEL UNSAFE;
-- Not STRICT: a NULL id is refused (22023 "required") after the rate
-- limiter has counted the call, as every other required argument is.
-- PARALLEL UNSAFE, like every API function: every call goes through the
-- rate limiter, whose rule cache reads with a fresh snapshot, and reads
-- the product with the transaction's snapshot, neither of which core lets
-- even the leader of a parallel plan take (XX000 "cannot update
-- SecondarySnapshot during a parallel operation" under PARALLEL
-- RESTRICTED); a worker would not see the limiter's per-request mark
-- either.  A call reads one row: a parallel plan gains nothing.
-- get_product runs no SQL: it reads the two rows with primary-key index
-- scans in C (src/document.c) and applies the visibility rule itself, so it
-- needs neither SECURITY DEFINER nor a pinned search_path.
COMMENT ON FUNCTION catalog_api.get_product(bigint) IS
'Get one product with its category

Anonymous callers see only published products; a missing or hidden product fails with PT404.';

CREATE FUNCTION catalog_api.update_product(
    id bigint,
    expected_version integer,
    sku text DEFAULT NULL,
    name text DEFAULT NULL,
    description text DEFAULT NULL,
    status text DEFAULT NULL,
    price numeric DEFAULT NULL,
    currency text DEFAULT NULL,
    category_id bigint DEFAULT NULL,
    attributes jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_update_product'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.update_product(bigint, integer, text, text, text, text, numeric, text, bigint, jsonb) IS
'Update some fields of a product

Only the arguments given change (an empty description clears it). expected_version must be the version read; a stale version fails with PT409 and nothing is written.';

CREATE FUNCTION catalog_api.archive_product(id bigint, expected_version integer)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_archive_product'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.archive_product(bigint, integer) IS
'Archive a product

Sets the status to archived (hidden from anonymous readers); a stale expected_version fails with PT409.';

CREATE FUNCTION catalog_api.create_category(
    name text,
    slug text,
    parent_id bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_create_category'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.create_category(text, text, bigint) IS
'Create a category

parent_id NULL creates a root. Returns the category document.';

CREATE FUNCTION catalog_api.update_category(
    id bigint,
    expected_version integer,
    name text DEFAULT NULL,
    slug text DEFAULT NULL,
    parent_id bigint DEFAULT NULL,
    to_root boolean DEFAULT false)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_update_category'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.update_category(bigint, integer, text, text, bigint, boolean) IS
'Rename or move a category

parent_id moves the node (a move under its own subtree fails with 22023); to_root makes it a root. A stale expected_version fails with PT409.';

CREATE FUNCTION catalog_api.list_categories()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_list_categories'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.list_categories() IS
'List the category tree

A JSON array of categories, parents before children, each with its depth.';

CREATE FUNCTION catalog_api.health()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_health'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.health() IS
'Readiness for load balancers

Status, extension version, recovery state and shared memory state. Under PostgREST a degraded state answers HTTP 503.';

-- The search functions pin the planner settings they rely on: no sequential
-- scan (every query shape has an index path, src/search.c), index and
-- bitmap scans and sorts allowed whatever the session says (a plan is kept
-- for the backend's life), no JIT (a generic plan's cost estimate must not
-- buy a compilation per call), row-level security on (a session that set
-- row_security = off, as pg_dump's scripts do, would fail every search with
-- 42501), GIN results complete (gin_fuzzy_search_limit would return a
-- random subset of the matches), and the trigram similarity floor of the
-- typo dictionary lookup.
CREATE FUNCTION catalog_api.search_products(
    q text DEFAULT NULL,
    category_id bigint DEFAULT NULL,
    min_price numeric DEFAULT NULL,
    max_price numeric DEFAULT NULL,
    status text DEFAULT NULL,
    sort text DEFAULT NULL,
    page_size integer DEFAULT 20,
    cursor text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_search_products'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_indexscan = on
SET enable_bitmapscan = on
SET enable_sort = on
SET jit = off
SET row_security = on
SET gin_fuzzy_search_limit = 0
SET pg_trgm.similarity_threshold = 0.2;
COMMENT ON FUNCTION catalog_api.search_products(text, bigint, numeric, numeric, text, text, integer, text) IS
'Search products

Matches exact SKU, SKU prefix, words (the last as a prefix), substrings and words with typos; filters by category (with descendants), price and status; sorts by relevance, price_asc, price_desc, newest or name; pages with the signed next_cursor.';

CREATE FUNCTION catalog_api.product_facets(
    q text DEFAULT NULL,
    category_id bigint DEFAULT NULL,
    min_price numeric DEFAULT NULL,
    max_price numeric DEFAULT NULL,
    status text DEFAULT NULL,
    top integer DEFAULT 10)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_product_facets'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_indexscan = on
SET enable_bitmapscan = on
SET enable_sort = on
SET jit = off
SET row_security = on
SET gin_fuzzy_search_limit = 0
SET pg_trgm.similarity_threshold = 0.2;
COMMENT ON FUNCTION catalog_api.product_facets(text, bigint, numeric, numeric, text, integer) IS
'Facet counts of a search

Exact counts by category (top N children, descendants rolled up), by status and by price bucket, for the same filters as search_products.';

CREATE FUNCTION catalog_api.refresh_search_terms()
RETURNS bigint
AS 'MODULE_PATHNAME', 'catalog_refresh_search_terms'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.refresh_search_terms() IS
'Rebuild the typo dictionary

Replaces catalog.search_term with the distinct words of current product names, each with its product''s status; returns the number of entries. Run it after bulk renames (optional: stale words only cost time).';

CREATE FUNCTION catalog_api.purge_idempotency(batch_size integer DEFAULT 1000)
RETURNS bigint
AS 'MODULE_PATHNAME', 'catalog_purge_idempotency'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.purge_idempotency(integer) IS
'Delete expired idempotency keys

Deletes up to batch_size expired rows, skipping rows a writer holds; returns how many were deleted. Schedule it (pg_cron or any job runner).';

------------------------------------------------------------------------------
-- Audit API.  Owned by catalog_audit_owner (see the end of this script).
-- Reading a row's history: editors and admins; everything else: admins.
-- row_security = on: the audit tables force row-level security, and a
-- session with it off (pg_dump's scripts set that) would otherwise turn
-- every query of these functions into an error.
------------------------------------------------------------------------------
CREATE FUNCTION catalog_api.product_history(
    id bigint,
    page_size integer DEFAULT 20,
    cursor bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_product_history'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.product_history(bigint, integer, bigint) IS
'Audit history of a product

Newest first: {items: [{audit_id, occurred_at, txid, action, actor, role, via, request_id, table, row_id, old, new, seq}], next_cursor}; seq is null until the row is sealed. Pass next_cursor as cursor for the next page.';

CREATE FUNCTION catalog_api.category_history(
    id bigint,
    page_size integer DEFAULT 20,
    cursor bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_category_history'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.category_history(bigint, integer, bigint) IS
'Audit history of a category

Same shape and paging as product_history.';

CREATE FUNCTION catalog_api.audit_by_actor(
    actor text,
    page_size integer DEFAULT 20,
    cursor bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_by_actor'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_by_actor(text, integer, bigint) IS
'Audit rows written by one actor

Newest first, with table and row key; same paging as product_history. An actor masked as an e-mail address is found by its unmasked value.';

CREATE FUNCTION catalog_api.audit_by_request(
    request_id text,
    page_size integer DEFAULT 20,
    cursor bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_by_request'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_by_request(text, integer, bigint) IS
'Audit rows of one request (correlation id)

Newest first; same paging as product_history.';

CREATE FUNCTION catalog_api.audit_seal(max_rows integer DEFAULT 10000)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_seal'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_seal(integer) IS
'Seal committed audit rows into the hash chain

Appends up to max_rows committed, unsealed audit rows to the chain; returns {sealed, seq, head}. The extension''s background worker runs it every catalog.audit_seal_interval.';

CREATE FUNCTION catalog_api.audit_verify(
    anchor_seq bigint DEFAULT NULL,
    anchor_hash text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_verify'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_verify(bigint, text) IS
'Verify the audit hash chain

Recomputes every sealed row''s hash and the chain; returns {ok, checked, first_broken: {seq, audit_id, reason} or null, head, unsealed}. With an exported anchor (audit_head), also proves the chain still passes through it.';

CREATE FUNCTION catalog_api.audit_head()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_head'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_head() IS
'Head of the audit hash chain

{seq, hash, sealed_at, audit_id}: export it regularly (to another system) as an anchor for audit_verify.';

CREATE FUNCTION catalog_api.audit_maintain(months_ahead integer DEFAULT 3)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_maintain'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_maintain(integer) IS
'Create the monthly audit partitions ahead

Creates the partitions from the current month to months_ahead months ahead and moves any row of the default partition into its month; returns {created, moved}. The background worker runs it hourly.';

CREATE FUNCTION catalog_api.audit_drop_partitions(older_than timestamptz)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_drop_partitions'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_drop_partitions(timestamptz) IS
'Retention: drop whole audit partitions

Drops every monthly partition that ends at or before older_than and whose rows are all sealed; returns {dropped, kept}, each kept partition with its reason (not_ended, unsealed_rows, not_a_month). Never deletes single rows.';

CREATE FUNCTION catalog_api.audit_mask_set(
    table_name text,
    column_name text,
    attribute_key text DEFAULT NULL,
    method text DEFAULT 'hash')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_mask_set'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_mask_set(text, text, text, text) IS
'Declare a masked column or jsonb key

Masks column_name of table_name (product or category), or with attribute_key that key of a jsonb column, in every later audit row: method redact or hash (keyed HMAC, equal values stay equal).';

CREATE FUNCTION catalog_api.audit_mask_drop(
    table_name text,
    column_name text,
    attribute_key text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'catalog_audit_mask_drop'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_mask_drop(text, text, text) IS
'Remove a declared mask

Returns whether a mask was removed.';

CREATE FUNCTION catalog_api.audit_masks()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_audit_masks'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = on;
COMMENT ON FUNCTION catalog_api.audit_masks() IS
'The audit masking policy

{declared: [...], builtin_keys: [...], builtin_values: [...], method}.';

-- Security (src/ratelimit.c, src/token.c).  pre_request is PostgREST's
-- db-pre-request (db-pre-request = "catalog_api.pre_request"): it counts the
-- request against its rate limit and checks the CSRF token.  Every API role
-- runs it (PostgREST calls it after SET ROLE).
CREATE FUNCTION catalog_api.pre_request()
RETURNS void
AS 'MODULE_PATHNAME', 'catalog_pre_request'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.pre_request() IS
'PostgREST pre-request check

Counts the request against its rate limit (429 with Retry-After when limited) and checks the CSRF token of cookie-authenticated writes (403).';

CREATE FUNCTION catalog_api.csrf_token()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_csrf_token'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.csrf_token() IS
'A CSRF token for the current session

{token, header, cookie}: send the token in that header and that cookie with every cookie-authenticated write. Under PostgREST the cookie is set too.';

CREATE FUNCTION catalog_api.rate_limit_set(
    caller_class text,
    action text,
    rate double precision DEFAULT NULL,
    burst integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_rate_limit_set'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.rate_limit_set(text, text, double precision, integer) IS
'Set a rate limit

For caller_class (anonymous, editor, admin) and action (read, write, or one limited function): rate in requests per second (null: no limit) and burst.';

CREATE FUNCTION catalog_api.rate_limit_drop(
    caller_class text,
    action text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'catalog_rate_limit_drop'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.rate_limit_drop(text, text) IS
'Drop a rate limit (back to the defaults)';

CREATE FUNCTION catalog_api.rate_limits()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'catalog_rate_limits'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION catalog_api.rate_limits() IS
'The rate limits in force

{enabled, defaults: {read, write}, limits: [...], functions: {name: action}, trusted_proxies}.';

------------------------------------------------------------------------------
-- Grants on the API: PUBLIC gets nothing; each role exactly its functions.
------------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA catalog_api FROM PUBLIC;

GRANT EXECUTE ON FUNCTION catalog_api.get_product(bigint),
                          catalog_api.search_products(text, bigint, numeric, numeric, text, text, integer, text),
                          catalog_api.product_facets(text, bigint, numeric, numeric, text, integer),
                          catalog_api.list_categories(),
                          catalog_api.health(),
                          catalog_api.pre_request(),
                          catalog_api.csrf_token()
    TO catalog_anon;
GRANT EXECUTE ON FUNCTION catalog_api.create_product(text, text, numeric, bigint, text, text, text, jsonb, text),
                          catalog_api.update_product(bigint, integer, text, text, text, text, numeric, text, bigint, jsonb),
                          catalog_api.archive_product(bigint, integer),
                          catalog_api.create_category(text, text, bigint),
                          catalog_api.update_category(bigint, integer, text, text, bigint, boolean)
    TO catalog_editor;
GRANT EXECUTE ON FUNCTION catalog_api.purge_idempotency(integer),
                          catalog_api.refresh_search_terms()
    TO catalog_admin;
GRANT EXECUTE ON FUNCTION catalog_api.product_history(bigint, integer, bigint),
                          catalog_api.category_history(bigint, integer, bigint)
    TO catalog_editor;
GRANT EXECUTE ON FUNCTION catalog_api.audit_by_actor(text, integer, bigint),
                          catalog_api.audit_by_request(text, integer, bigint),
                          catalog_api.audit_seal(integer),
                          catalog_api.audit_verify(bigint, text),
                          catalog_api.audit_head(),
                          catalog_api.audit_maintain(integer),
                          catalog_api.audit_drop_partitions(timestamptz),
                          catalog_api.audit_mask_set(text, text, text, text),
                          catalog_api.audit_mask_drop(text, text, text),
                          catalog_api.audit_masks(),
                          catalog_api.rate_limit_set(text, text, double precision, integer),
                          catalog_api.rate_limit_drop(text, text),
                          catalog_api.rate_limits()
    TO catalog_admin;

-- The API functions run as catalog_owner (see the roles section).
DO $owner$
DECLARE
    f regprocedure;
    o name;
BEGIN
    -- The audit functions run as catalog_audit_owner, the others as
    -- catalog_owner: neither can touch the other's tables.
    FOR f, o IN SELECT p.oid::regprocedure,
                       CASE WHEN p.proname LIKE 'audit\_%' OR p.proname LIKE '%\_history'
                            THEN 'catalog_audit_owner' ELSE 'catalog_owner' END
                FROM pg_catalog.pg_proc p
                WHERE p.pronamespace = 'catalog_api'::regnamespace
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', f, o);
    END LOOP;
END
$owner$;
ALTER FUNCTION catalog.search_terms_collect() OWNER TO catalog_owner;
-- The tree guard locks the tree and walks the parents as catalog_owner
-- (src/category.c): the invoker of a plain SQL write may not see the lock
-- row, which only the owner's policy shows.
ALTER FUNCTION catalog.category_tree_guard() OWNER TO catalog_owner;
-- search_explain plans as the search itself does: as catalog_owner, under
-- row-level security (EXECUTE stays with superusers).
ALTER FUNCTION catalog.search_explain(text, bigint, numeric, numeric, text, text, integer, text)
    OWNER TO catalog_owner;

-- Tell a running PostgREST to reload its schema cache.
NOTIFY pgrst, 'reload schema';
