-- include/audit_encodings.sql: the audit's documented encodings (src/audit.h)
-- in SQL, and the forgeries the tamper tests make with them; included (\ir)
-- by 41_audit_tamper.sql and 42_audit_edges.sql.  pg_temp functions: each
-- file's session defines its own.
-- microseconds since 2000-01-01 UTC, 8 bytes big-endian
CREATE FUNCTION pg_temp.us(t timestamptz) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT int8send(((extract(epoch FROM t) - 946684800) * 1000000)::bigint) $$;
-- 4-byte big-endian byte length, then the UTF-8 bytes
CREATE FUNCTION pg_temp.lt(s text) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT int4send(octet_length(convert_to(s, 'UTF8'))) || convert_to(s, 'UTF8') $$;
-- a jsonb: its text form as above, or the length 0xFFFFFFFF alone for NULL
CREATE FUNCTION pg_temp.lj(j jsonb) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN j IS NULL THEN '\xffffffff'::bytea ELSE pg_temp.lt(j::text) END $$;
CREATE FUNCTION pg_temp.row_hash(a catalog.audit_log) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to('catalog.audit.v1', 'UTF8')
                  || int8send(a.id) || pg_temp.us(a.occurred_at) || pg_temp.us(a.xact_at)
                  || int8send(a.txid::text::numeric::bigint)
                  || pg_temp.lt(a.actor) || pg_temp.lt(a.role_name) || pg_temp.lt(a.via)
                  || pg_temp.lt(a.request_id) || pg_temp.lt(a.table_name)
                  || int8send(a.row_id) || pg_temp.lt(a.action)
                  || pg_temp.lj(a.old_values) || pg_temp.lj(a.new_values))
$$;
-- A link: every column of the seal but chain_hash, after the previous link.
CREATE FUNCTION pg_temp.chain_step(s catalog.audit_seal, prev bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to('catalog.chain.v2', 'UTF8') || int8send(s.seq) || prev || s.row_hash
                  || int8send(s.audit_id) || pg_temp.us(s.occurred_at) || pg_temp.us(s.sealed_at)
                  || pg_temp.lt(s.table_name) || int8send(s.row_id) || pg_temp.lt(s.actor)
                  || pg_temp.lt(s.request_id))
$$;
-- The row_hash of the prune link of the month [ms, me).
CREATE FUNCTION pg_temp.prune_hash(ms timestamptz, me timestamptz) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT sha256(convert_to('catalog.prune.v1', 'UTF8') || pg_temp.us(ms) || pg_temp.us(me)) $$;
-- The chain recomputed from seq 1 to the head: the seqs whose stored
-- chain_hash differs from the recomputed one.
CREATE FUNCTION pg_temp.chain_breaks() RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    WITH RECURSIVE c AS (
        SELECT s.seq, pg_temp.chain_step(s, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS h
        FROM catalog.audit_seal s WHERE s.seq = 1
        UNION ALL
        SELECT s.seq, pg_temp.chain_step(s, c.h)
        FROM c JOIN catalog.audit_seal s ON s.seq = c.seq + 1)
    SELECT s.seq FROM catalog.audit_seal s LEFT JOIN c USING (seq)
    WHERE c.h IS DISTINCT FROM s.chain_hash
$$;
-- An attacker's rewrite: every chain hash from seq "first" to the head
-- recomputed, so the stored chain is consistent again.
CREATE FUNCTION pg_temp.rechain(first bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
    s catalog.audit_seal;
BEGIN
    SELECT chain_hash INTO prev FROM catalog.audit_seal WHERE seq = first - 1;
    prev := coalesce(prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    FOR s IN SELECT * FROM catalog.audit_seal WHERE seq >= first ORDER BY seq LOOP
        prev := pg_temp.chain_step(s, prev);
        UPDATE catalog.audit_seal SET chain_hash = prev WHERE seq = s.seq;
    END LOOP;
END $$;
-- An attacker's prune link for the month [ms, me), appended at the head
-- with every hash right (a superuser can compute them all), stamped at
-- stamp.  With bad_hash, its row_hash is not the month's; with aid_shift,
-- its audit_id is not -seq (the rest still right).
CREATE FUNCTION pg_temp.forge_prune(ms timestamptz, me timestamptz, bad_hash boolean DEFAULT false,
                                    stamp timestamptz DEFAULT now(), aid_shift bigint DEFAULT 0)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    h catalog.audit_seal;
    s catalog.audit_seal;
BEGIN
    SELECT * INTO h FROM catalog.audit_seal ORDER BY seq DESC LIMIT 1;
    s.seq := h.seq + 1;
    s.audit_id := -s.seq - aid_shift;
    s.occurred_at := ms;
    s.row_hash := CASE WHEN bad_hash THEN sha256('forged') ELSE pg_temp.prune_hash(ms, me) END;
    s.sealed_at := stamp;
    s.table_name := 'audit_retention';
    s.row_id := ((extract(epoch FROM me) - 946684800) * 1000000)::bigint;
    s.actor := '';
    s.request_id := '';
    s.chain_hash := pg_temp.chain_step(s, h.chain_hash);
    INSERT INTO catalog.audit_seal SELECT s.*;
END $$;
-- The UTC month of a time: its start and its end.
CREATE FUNCTION pg_temp.month_start(t timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS
$$ SELECT date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;
CREATE FUNCTION pg_temp.month_end(t timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS
$$ SELECT (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' $$;
CREATE FUNCTION pg_temp.broken(seq bigint, audit_id bigint, reason text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT jsonb_build_object('seq', seq, 'audit_id', audit_id, 'reason', reason) $$;
-- An audit row written by hand (as a superuser can, past the trigger),
-- with its hash right, as the trigger would write it.
CREATE FUNCTION pg_temp.old_row(at timestamptz, note text DEFAULT 'old', who text DEFAULT 'pgtap-tamper',
                                request text DEFAULT 'tap-tamper-old') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r catalog.audit_log;
BEGIN
    r.id := nextval('catalog.audit_log_id_seq');
    r.occurred_at := at;
    r.xact_at := at;
    r.txid := pg_current_xact_id();
    r.actor := who;
    r.role_name := session_user;
    r.via := 'sql';
    r.request_id := request;
    r.table_name := 'product';
    r.row_id := 0;
    r.action := 'insert';
    r.new_values := jsonb_build_object('note', note);
    r.row_hash := catalog.audit_row_hash(r);
    INSERT INTO catalog.audit_log SELECT r.*;
    RETURN r.id;
END $$;
