--
-- settings: the catalog.* settings refuse a value that could never work
-- when it is set (ALTER SYSTEM runs the same checks as the configuration
-- file), not at the first request that needs it (pg_regress).
--
\set SHOW_CONTEXT never

-- the defaults
SHOW catalog.csrf_session_cookie;
SHOW catalog.csrf_cookie;
SHOW catalog.csrf_header;

-- cookie names: an HTTP token of 1 to 64 characters
ALTER SYSTEM SET catalog.csrf_cookie = '';
ALTER SYSTEM SET catalog.csrf_cookie = 'csrf token';
ALTER SYSTEM SET catalog.csrf_cookie = 'csrf;Path=/';
ALTER SYSTEM SET catalog.csrf_session_cookie = 'sid=1';
ALTER SYSTEM SET catalog.csrf_session_cookie = 'séance';
SELECT format('ALTER SYSTEM SET catalog.csrf_session_cookie = %L', repeat('s', 65)) \gexec
SELECT format('ALTER SYSTEM SET catalog.csrf_session_cookie = %L', repeat('s', 64)) \gexec
ALTER SYSTEM SET catalog.csrf_cookie = '__Host-Csrf_Token.v2';
ALTER SYSTEM RESET catalog.csrf_cookie;
ALTER SYSTEM RESET catalog.csrf_session_cookie;

-- the header name: lower case, as PostgREST passes it
ALTER SYSTEM SET catalog.csrf_header = 'X-CSRF-Token';
ALTER SYSTEM SET catalog.csrf_header = 'x-csrf-token:';
ALTER SYSTEM SET catalog.csrf_header = '';
ALTER SYSTEM SET catalog.csrf_header = 'x-xsrf-token';
ALTER SYSTEM RESET catalog.csrf_header;

-- rates: 0 (no limit) or 0.001 to 1000000 per second
ALTER SYSTEM SET catalog.rate_limit_read_rate = 0.0001;
ALTER SYSTEM SET catalog.rate_limit_write_rate = 2000000;
ALTER SYSTEM SET catalog.rate_limit_read_rate = 0;
ALTER SYSTEM RESET catalog.rate_limit_read_rate;

-- the sealer's database: a name of 1 to 63 bytes
ALTER SYSTEM SET catalog.audit_seal_database = '';
SELECT format('ALTER SYSTEM SET catalog.audit_seal_database = %L', repeat('d', 64)) \gexec
SELECT format('ALTER SYSTEM SET catalog.audit_seal_database = %L', repeat('d', 63)) \gexec
ALTER SYSTEM RESET catalog.audit_seal_database;

-- the prefix is reserved: a misspelt setting is an error, not a placeholder
ALTER SYSTEM SET catalog.csrf_headr = 'x-csrf-token';
SET catalog.csrf_headr = 'x-csrf-token';

-- nothing was left in postgresql.auto.conf
SELECT name, setting FROM pg_file_settings
WHERE sourcefile LIKE '%postgresql.auto.conf' AND name LIKE 'catalog.%' ORDER BY name;

-- every setting as the README's Configuration table documents it: type,
-- context, default, range or values, unit
SELECT name, vartype, context, boot_val, min_val, max_val, enumvals, unit
FROM pg_settings WHERE name LIKE 'catalog.%' ORDER BY name;
