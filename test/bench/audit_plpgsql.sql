-- test/bench/audit_plpgsql.sql: the classic PL/pgSQL audit design the
-- audit benchmarks compare against (issue: an AFTER ROW trigger inserting
-- to_jsonb(OLD), to_jsonb(NEW), actor, time and transaction id).  Used by
-- test/bench/run.sh and test/bench/cost.sh; needs the schema bench.
CREATE TABLE bench.audit_plpgsql (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    txid        bigint NOT NULL DEFAULT txid_current(),
    actor       text NOT NULL,
    table_name  text NOT NULL,
    action      text NOT NULL,
    old_row     jsonb,
    new_row     jsonb
);
GRANT USAGE ON SCHEMA bench TO PUBLIC;
GRANT INSERT ON bench.audit_plpgsql TO PUBLIC;
GRANT USAGE ON SEQUENCE bench.audit_plpgsql_id_seq TO PUBLIC;
CREATE FUNCTION bench.audit_plpgsql_trigger()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    INSERT INTO bench.audit_plpgsql (actor, table_name, action, old_row, new_row)
    VALUES (coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
                     session_user),
            TG_TABLE_NAME, lower(TG_OP),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$fn$;
