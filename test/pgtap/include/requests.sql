-- include/requests.sql: a request as PostgREST sends it, and a plain SQL
-- call counted by the rate limiter; included (\ir) by 60_security.sql and
-- 61_api_edges.sql.  pg_temp functions: each file's session defines its
-- own.  sub() needs the file's temporary table run (a per-run tag).
-- One request as PostgREST sends it: the settings, then pre_request().
-- Returns 'ok', or the SQLSTATE, message and detail of the refusal.  The
-- settings are cleared again so that the calls after it are plain SQL.
CREATE FUNCTION pg_temp.req(method text, path text, claims text DEFAULT '',
                            headers text DEFAULT '', cookies text DEFAULT '')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text;
BEGIN
    PERFORM set_config('request.method', method, true), set_config('request.path', path, true),
            set_config('request.jwt.claims', claims, true), set_config('request.headers', headers, true),
            set_config('request.cookies', cookies, true);
    BEGIN
        PERFORM catalog_api.pre_request();
        st := 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    END;
    PERFORM set_config('request.method', '', true), set_config('request.path', '', true),
            set_config('request.jwt.claims', '', true), set_config('request.headers', '', true),
            set_config('request.cookies', '', true);
    RETURN jsonb_build_object('state', st, 'message', msg, 'detail', det);
END $$;
-- A plain SQL call of get_product(-1) by subject sub: 'PT404' when counted
-- and allowed (the product does not exist), 'PGRST' when limited.
CREATE FUNCTION pg_temp.get_missing(sub text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    PERFORM set_config('request.jwt.claims', json_build_object('sub', sub)::text, true);
    BEGIN
        PERFORM catalog_api.get_product(-1);
        st := 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    END;
    PERFORM set_config('request.jwt.claims', '', true);
    RETURN st;
END $$;

CREATE FUNCTION pg_temp.sub(name text) RETURNS text LANGUAGE sql AS $$
    SELECT json_build_object('sub', name || '-' || (SELECT tag FROM run))::text $$;
