#!/usr/bin/env bash
# ratelimit_full.sh: what a new key costs when a partition of the rate
# limiter is full, at the largest capacity (catalog.rate_limit_keys =
# 16,777,216: 524,288 entries per partition).  Not part of `make test`.
#
#   test/bench/ratelimit_full.sh        (as root or as a user who can run
#                                        PostgreSQL 15; about 2 minutes)
#
# Builds and installs the extension, starts a throw-away cluster under
# $CATALOG_RLB_DIR (default /tmp/catalog-ratelimit-bench) on port
# $CATALOG_RLB_PORT (default 56210), fills partition 0 with 524,287 keys
# limited for 1,000 s (one request each at 0.001/s, burst 2) and one key
# that comes to rest after 1 s, then sends a new key of partition 0 every
# 0.55 s (each first request evicts the entry that came to rest, or is
# refused while none has) and prints the time of each call: the whole
# catalog_api.product_facets() call as a PL/pgSQL loop sees it, the rate
# limiter's work under the partition's exclusive lock included.  Before the
# heap (commit b5fd468) each such call scanned the partition: 6 to 16 ms.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${CATALOG_RLB_DIR:-/tmp/catalog-ratelimit-bench}
# the directory is removed on exit: never a short or root path by mistake
case "$DIR" in
    /*/*) ;;
    *) echo "ratelimit_full.sh: CATALOG_RLB_DIR must be an absolute path two levels deep or more" >&2; exit 2 ;;
esac
PORT=${CATALOG_RLB_PORT:-56210}
BIN=/usr/lib/postgresql/15/bin
if [ "$(id -u)" -eq 0 ]; then RUN=(runuser -u postgres --); else RUN=(); fi

make -s -C "$REPO" >/dev/null
make -s -C "$REPO" install >/dev/null

stop() { "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop EXIT
stop
mkdir -p "$DIR/sock"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DIR"
"${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'catalog'
catalog.rate_limit_keys = 16777216
catalog.audit_seal_interval = 0
port = $PORT
unix_socket_directories = '$DIR/sock'
listen_addresses = ''
CONF
"${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
PSQL=("${RUN[@]}" "$BIN/psql" -h "$DIR/sock" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -d postgres)
"${PSQL[@]}" -c "CREATE EXTENSION catalog CASCADE" 2>/dev/null
"${PSQL[@]}" <<'SQL'
SELECT catalog_api.rate_limit_set('admin', 'list_categories', 0.001, 2) IS NOT NULL AS long_limit;
SELECT catalog_api.rate_limit_set('admin', 'product_facets', 1, 1) IS NOT NULL AS short_limit;
CREATE TABLE p0 AS SELECT row_number() OVER () AS n, sub
FROM (SELECT 'k' || i AS sub FROM generate_series(1, 17500000) i) s
WHERE catalog.rate_limit_partition('list_categories', sub) = 0;
CREATE TABLE c0 AS SELECT row_number() OVER () AS n, sub
FROM (SELECT 'c' || i AS sub FROM generate_series(1, 5000) i) s
WHERE catalog.rate_limit_partition('product_facets', sub) = 0;
DO $$
DECLARE
  s text;
  per int := (catalog_api.health() #>> '{rate_limiter,capacity}')::int / 32;
BEGIN
  FOR s IN SELECT sub FROM p0 WHERE n < per ORDER BY n LOOP
    PERFORM set_config('request.jwt.claims', json_build_object('sub', s)::text, true);
    PERFORM catalog_api.list_categories();
  END LOOP;
  PERFORM set_config('request.jwt.claims', json_build_object('sub', (SELECT sub FROM c0 WHERE n = 1))::text, true);
  PERFORM catalog_api.product_facets();
END $$;
CREATE FUNCTION attack(n_req int, gap float8) RETURNS TABLE (i int, us float8, outcome text)
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; s text; d text;
BEGIN
  FOR k IN 1 .. n_req LOOP
    SELECT sub INTO s FROM c0 WHERE n = k + 1;
    PERFORM set_config('request.jwt.claims', json_build_object('sub', s)::text, true);
    t0 := clock_timestamp();
    BEGIN
      PERFORM catalog_api.product_facets();
      d := 'allowed (evicted an entry at rest)';
    EXCEPTION WHEN sqlstate 'PGRST' THEN
      d := 'refused (limiter_full)';
    END;
    i := k; us := round(extract(epoch FROM clock_timestamp() - t0) * 1e6); outcome := d;
    RETURN NEXT;
    PERFORM pg_sleep(gap);
  END LOOP;
END $$;
\echo 'partition 0 full: 524,287 keys limited for 1,000 s and one that rests after 1 s'
SELECT h #>> '{rate_limiter,capacity}' AS capacity, h #>> '{rate_limiter,in_use}' AS in_use
FROM catalog_api.health() h;
\echo 'a new key of partition 0 every 0.55 s (microseconds per call):'
CREATE TABLE runs AS SELECT * FROM attack(20, 0.55);
SELECT * FROM runs ORDER BY i;
SELECT outcome, count(*) AS calls, min(us) AS min_us,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY us) AS median_us, max(us) AS max_us
FROM runs GROUP BY outcome ORDER BY outcome;
SQL
echo "client and server share the same machine (2 cores here)"
