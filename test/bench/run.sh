#!/usr/bin/env bash
# run.sh: the catalog benchmark (`make bench`).  Not part of `make test`.
#
# What it does, end to end:
#   1. builds and installs the extension (make && make install, from the
#      repository root), installing sysbench and PostgreSQL 15 with apt-get
#      first if they are missing;
#   2. starts a throw-away PostgreSQL 15 cluster under $CATALOG_BENCH_DIR
#      (default /tmp/catalog-bench) on 127.0.0.1:$CATALOG_BENCH_PGPORT
#      (default 55460), as the `postgres` system user when run as root (the
#      server refuses root) or as the calling user otherwise, with
#      shared_preload_libraries = 'catalog', shared_buffers = 4GB,
#      max_connections = 100; sysbench logs in over TCP with SCRAM passwords;
#   3. loads $CATALOG_BENCH_PRODUCTS (default 1,000,000; 100,000 when the
#      audit workload runs without get, search and create) products with the
#      project's generator test/data/sample.sql, with the audit triggers
#      disabled for the load (a fixture is not history: its 1,000,000 audit
#      rows would slow the load and keep the sealer busy during the runs),
#      copies them into the baseline table bench.product_plain (for search
#      and create), then VACUUM ANALYZE;
#   4. runs each workload pair side by side, ours then the baseline, at each
#      client count of $CATALOG_BENCH_CLIENTS (default "1 8" = sysbench
#      --threads), each run $CATALOG_BENCH_WARMUP s of warm-up (default 3)
#      plus $CATALOG_BENCH_SECONDS s measured (default 10), with a CHECKPOINT
#      before every run;
#   5. prints one table (also written to test/bench/results/latest.txt) and
#      stops the cluster on exit, removing its data unless
#      CATALOG_BENCH_KEEP=1.
#
# Workloads (test/bench/catalog_bench.lua, one script for both arms):
#   get     ours:     SELECT catalog_api.get_product($1), as bench_anon, a
#                     login role whose only right is membership of
#                     catalog_anon (so it sees published products only);
#           baseline: the SELECT a user would write by hand, the same
#                     columns as the product document from catalog.product
#                     JOIN catalog.category, WHERE p.id = $1 AND p.status =
#                     'published', as bench_reader (SELECT on the two tables
#                     and BYPASSRLS: the baseline pays no row-level security);
#           both draw ids uniformly from the published products of the
#           loaded range (an unpublished id would be a PT404 error for ours
#           and an empty result for the baseline), with the same seed.
#   create  ours:     SELECT catalog_api.create_product(sku, name, price,
#                     category_id, description, status, currency, attributes)
#                     (no idempotency key) as bench_editor (member of
#                     catalog_editor);
#           baseline: INSERT INTO bench.product_plain (the same columns)
#                     VALUES (...) RETURNING *, as the same bench_editor;
#                     bench.product_plain is CREATE TABLE ... (LIKE
#                     catalog.product INCLUDING ALL) plus the same foreign key
#                     to catalog.category, holding a copy of the loaded rows,
#                     so both tables and all their indexes start equal;
#           the same row values (fresh unique SKUs, a random category) in
#           both arms, once with synchronous_commit = on and once off (SET
#           per connection).
#   search  (test/bench/search_bench.lua; its header defines the query mix)
#           ours:     SELECT catalog_api.search_products(q, category_id,
#                     min_price, max_price, sort, page_size => 20, cursor)
#                     as bench_anon (catalog_anon only);
#           baseline: the query a PostgREST user would write for the same
#                     inputs, as bench_reader: bench.product_plain JOIN
#                     catalog.category, WHERE status = 'published' AND name
#                     (or sku) ILIKE '%q%' AND category_id = ANY (the
#                     category and its descendants, computed by the client)
#                     AND a price range, ORDER BY similarity(name, q) DESC /
#                     price / created_at DESC, LIMIT 20 OFFSET (page - 1) * 20;
#                     for it, bench.product_plain gets the indexes a careful
#                     user adds (GIN gin_trgm_ops on name and on sku, btree
#                     (status, price, id) and (status, created_at, id)),
#                     those its copy of catalog.product's indexes lacks
#                     being created before the search runs, prewarmed, and
#                     dropped after them, so the create pair still compares
#                     tables with the same indexes;
#           the mix, per block of 100 events, each query made from a
#           published product of the loaded data (its words, its SKU, its
#           category, the price range that holds its price): 40 one common
#           word, 15 two words, 15 a prefix of 2 to 6 characters, 10 a SKU
#           or partial SKU, 10 one typo, 10 filters only; 50 with a category
#           filter; 20 with a price range; 60 sorted by relevance, 20 by
#           price, 20 newest first; 10 ask for a page from 11 to 15 instead:
#           the baseline with OFFSET, ours with the cursor of the page
#           before, taken from a pool of deep-page queries walked once
#           before the runs (the walk is not timed, the request for the deep
#           page is).  Both arms run the same sequence of inputs (same seed
#           per thread).  A call cancelled by catalog.search_timeout (57014)
#           is a failed event, counted with the time it took and reported
#           (any other error stops the benchmark); the report adds the
#           latencies by kind of query.  If catalog_api.search_products does
#           not exist, only the baseline runs (its pool is then not
#           checked).  Search runs before the create pair, so both tables
#           hold the same rows.
#   audit   the cost of the audit trail on writes, in three arms on the same
#           table catalog.product, at $CATALOG_BENCH_AUDIT_CLIENTS clients
#           (default 8), with synchronous_commit on and off (SET per
#           connection), for two operations, each as bench_editor:
#             create_product  the create workload above (fresh unique SKUs,
#                             a random category);
#             update_product  catalog_api.update_product(id,
#                             expected_version, price) of a random product of
#                             the loaded range, a real change every time, the
#                             version and price read by the same statement,
#                             PT409 (a concurrent update of the same product)
#                             retried (catalog_bench.lua's header has the
#                             details; the retries are counted and reported);
#           the arms, switched by the superuser between runs (no client is
#           connected then):
#             on       the extension's C trigger product_audit, as installed;
#             off      ALTER TABLE catalog.product DISABLE TRIGGER
#                      product_audit (enabled again after the workload);
#             plpgsql  the classic design: audit off, plus an AFTER INSERT
#                      OR UPDATE OR DELETE FOR EACH ROW PL/pgSQL trigger
#                      (created before each of its runs, dropped after)
#                      inserting into bench.audit_plpgsql (id bigserial
#                      PRIMARY KEY, at timestamptz DEFAULT now(), txid
#                      bigint DEFAULT txid_current(), actor, table_name,
#                      action, old_row jsonb, new_row jsonb) the row
#                      to_jsonb(OLD), to_jsonb(NEW) and the actor (JWT
#                      claim sub of request.jwt.claims, else session_user);
#                      the function is neither SECURITY DEFINER nor given a
#                      SET clause (INSERT on the table is granted to PUBLIC
#                      instead), the cheapest form of the design, so the
#                      comparison does not flatter ours;
#           the same inputs in every arm (same seed, same statement); the
#           arms rotate their order from round to round (on off plpgsql,
#           off plpgsql on, plpgsql on off, ...).  The report gives each
#           arm's TPS and p50/p95/p99, the cost of audit (1 - TPS on / TPS
#           off), the cost of the PL/pgSQL design (1 - TPS plpgsql / TPS
#           off) and their ratio, with the targets: with synchronous_commit
#           off, audit costs at most 10% of the throughput, and at most half
#           of what the PL/pgSQL design costs in the same run.
#           The sealer: the server runs the extension's background worker
#           at its default catalog.audit_seal_interval (1 s) on the bench
#           database (catalog.audit_seal_database = 'catalog_bench'),
#           chaining the audit rows while the clients write, because that is
#           how production runs: its work is part of what audit costs.  The
#           report says how many audit rows it had sealed when the runs
#           ended.  The monthly partitions of catalog.audit_log are created
#           at CREATE EXTENSION (catalog_api.audit_maintain); the script
#           checks that one holds the current month (and says so in the
#           report if the rows go to the default partition instead).
#   select1 SELECT 1: the round-trip ceiling of this client and server.
#   ratelimit  the cost of the rate limiter on get_product at 8 clients:
#           the get workload's get_product as bench_anon (limiter on, as
#           every other workload runs it) against the same as
#           bench_anon_nolimit, a login with the same membership and
#           ALTER ROLE ... SET catalog.rate_limit = off; both arms use the
#           same ids and seed and alternate rounds.  The limiter's default
#           limits are raised on this server so that it never refuses (it
#           still counts every call, in one bucket: all 8 clients are one
#           session user, the worst case for its partition lock); the
#           report checks that it counted and refused nothing.  Target: on
#           costs at most 3% of the TPS (ratio >= 0.97).
# Protocol: every statement in both arms is a server-side prepared statement
# (sysbench con:prepare, then PQexecPrepared per event: extended protocol,
# binary results), so both arms compare like with like.
#
# TPS and percentiles: one sysbench run per configuration, with
# --time=<warm-up + seconds> --report-checkpoints=<warm-up>: sysbench resets
# its counters at the checkpoint, so its final "transactions ... per sec."
# is the TPS of the measured seconds only.  Latency: catalog_bench.lua times
# every event with clock_gettime(CLOCK_MONOTONIC) (LuaJIT FFI), skips the
# events that start in a thread's warm-up, and writes the others to one file
# per thread; this script merges the files of a run, sorts them and takes
# the exact nearest-rank p50, p95 and p99 (the value at rank ceil(p/100 * N)
# of the N events of the run).  sysbench's own --percentile=95, computed
# from its bucketed histogram, is kept in the raw logs as a cross-check.
#
# Interleaving: each pair runs in CATALOG_BENCH_ROUNDS rounds, alternating
# which arm goes first (ours, baseline; baseline, ours; ...), so slow drift
# of the machine (disk flush latency, other tenants) lands on both arms
# alike.  An arm's TPS is its events over its measured seconds, summed over
# the rounds; its percentiles are taken over the events of all its rounds.
#
# Reading the figures: sysbench and PostgreSQL share the machine's cores, so
# compare ours with the baseline within a row (the two arms run back to back)
# rather than across runs.  On a small virtual machine that other work
# shares, two identical 10 s runs can differ by 25% or more, and at one
# client the latency includes waking an idle vCPU at each round trip, which
# widens any gap in server time; at 8 clients the cores stay busy and the
# ratio follows CPU cost per call.
#
# Environment:
#   CATALOG_BENCH_DIR       scratch directory        (/tmp/catalog-bench)
#   CATALOG_BENCH_PGPORT    server port, 55460-55469 (55460)
#   CATALOG_BENCH_SECONDS   measured seconds per round (10)
#   CATALOG_BENCH_WARMUP    warm-up seconds per round (3)
#   CATALOG_BENCH_ROUNDS    rounds per arm, interleaved (3)
#   CATALOG_BENCH_CLIENTS   client counts            ("1 8")
#   CATALOG_BENCH_PRODUCTS  products to load         (1000000; 100000 when only
#                           audit and select1 run)
#   CATALOG_BENCH_SEED      generator and sysbench seed (42)
#   CATALOG_BENCH_WORKLOADS workloads to run, any of get search create audit
#                           select1 ratelimit ("get search create audit
#                           select1 ratelimit": all)
#   CATALOG_BENCH_AUDIT_CLIENTS  clients of the audit workload (8)
#   CATALOG_BENCH_SEARCH_POOL  deep-page queries in the search pool (200)
#   CATALOG_BENCH_KEEP      1: keep the cluster's data directory and logs
#   CATALOG_PG_BIN          the PostgreSQL 15 binaries to build against and run
#                           (/usr/lib/postgresql/15/bin), as in the test harness
#
# Bash and Perl only (a fresh Debian 12 machine has no python3).

set -euo pipefail

START_EPOCH=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BENCH=$REPO/test/bench
LUA=$BENCH/catalog_bench.lua
LUA_SEARCH=$BENCH/search_bench.lua
SAMPLE=$REPO/test/data/sample.sql
RESULTS=$BENCH/results
# as_root, as_svc_in, bootstrap_packages, results_tee and results_keep, and
# PG_BIN and PG_CONFIG (CATALOG_PG_BIN points the benchmark at another copy
# of the PostgreSQL 15 binaries; the default is the Debian package) come
# from the test harness.
# shellcheck source=../harness/common.sh
. "$REPO/test/harness/common.sh"

DIR=${CATALOG_BENCH_DIR:-/tmp/catalog-bench}
PORT=${CATALOG_BENCH_PGPORT:-55460}
SECS=${CATALOG_BENCH_SECONDS:-10}
WARMUP=${CATALOG_BENCH_WARMUP:-3}
ROUNDS=${CATALOG_BENCH_ROUNDS:-3}
CLIENTS=${CATALOG_BENCH_CLIENTS:-1 8}
SEED=${CATALOG_BENCH_SEED:-42}
KEEP=${CATALOG_BENCH_KEEP:-0}
WORKLOADS=${CATALOG_BENCH_WORKLOADS:-get search create audit select1 ratelimit}
SEARCH_POOL=${CATALOG_BENCH_SEARCH_POOL:-200}
AUDIT_CLIENTS=${CATALOG_BENCH_AUDIT_CLIENTS:-8}
DB=catalog_bench

export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for w in $WORKLOADS; do
    case $w in get | search | create | audit | select1 | ratelimit) ;;
        *) die "CATALOG_BENCH_WORKLOADS: unknown workload '$w' (get, search, create, audit, select1, ratelimit)" ;;
    esac
done
[ -n "${WORKLOADS// /}" ] || die "CATALOG_BENCH_WORKLOADS is empty"
# wants W: whether workload W was asked for.
wants() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
# The audit workload needs no million products: alone (or with select1) it
# loads 100,000 unless told otherwise.
if wants get || wants search || wants create; then
    PRODUCTS=${CATALOG_BENCH_PRODUCTS:-1000000}
else
    PRODUCTS=${CATALOG_BENCH_PRODUCTS:-100000}
fi

for v in PORT SECS WARMUP ROUNDS PRODUCTS SEED SEARCH_POOL AUDIT_CLIENTS; do
    case ${!v} in '' | *[!0-9]*) die "$v must be a non-negative integer, not '${!v}'" ;; esac
done
[ "$SECS" -ge 1 ] || die "CATALOG_BENCH_SECONDS must be at least 1"
[ "$ROUNDS" -ge 1 ] || die "CATALOG_BENCH_ROUNDS must be at least 1"
[ "$PRODUCTS" -ge 1 ] || die "CATALOG_BENCH_PRODUCTS must be at least 1"
for c in $CLIENTS; do
    case $c in '' | *[!0-9]* | 0) die "CATALOG_BENCH_CLIENTS must list positive integers" ;; esac
done
case $DIR in /*) ;; *) die "CATALOG_BENCH_DIR must be an absolute path" ;; esac
[ "$SEARCH_POOL" -ge 1 ] || die "CATALOG_BENCH_SEARCH_POOL must be at least 1"
[ "$AUDIT_CLIENTS" -ge 1 ] || die "CATALOG_BENCH_AUDIT_CLIENTS must be at least 1"
# (Without CATALOG_PG_BIN, the Debian package is installed below if missing.)
[ -z "${CATALOG_PG_BIN:-}" ] || [ -x "$PG_BIN/postgres" ] || die "CATALOG_PG_BIN: no postgres binary in $PG_BIN"

# The scratch folder, which cleanup deletes: ours alone (see common.sh).
claim_scratch_dir "$DIR"

# The whole output goes to the terminal and, on success, to results/latest.txt.
results_tee "$RESULTS/latest.txt"

DATA=$DIR/data
SOCK=$DIR/sock
RUN=$DIR/run
LOG=$DIR/logs
STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [ "$STARTED" -eq 1 ]; then
        as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            say "warning: could not stop the server on $DATA"
    fi
    if [ "$KEEP" = 1 ]; then
        say "kept $DIR (CATALOG_BENCH_KEEP=1)"
    else
        rm -rf "$DIR"
    fi
    results_keep "$rc" "$RESULTS/latest.txt"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- packages
bootstrap_packages postgresql-15 postgresql-server-dev-15 postgresql-contrib sysbench make gcc perl
# grep reads all of it (no -q): with pipefail, an early exit would SIGPIPE sysbench
sysbench --help 2>/dev/null | grep 'pgsql options' >/dev/null || die "this sysbench has no PostgreSQL driver"

# ---------------------------------------------------------------- build
# The commit and the uncommitted changes of the tree that is built now (a
# tree edited while the runs go on is not what they measure).
COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
DIRTY=$({ git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null || true; } | { grep -v "test/bench/results/" || true; } | wc -l)
mkdir -p "$DIR"
BUILD_LOG=$(mktemp)
say "build: make && make install in $REPO"
if ! (cd "$REPO" && make PG_CONFIG="$PG_CONFIG" && as_root make install PG_CONFIG="$PG_CONFIG") >"$BUILD_LOG" 2>&1; then
    tail -30 "$BUILD_LOG"
    rm -f "$BUILD_LOG"
    die "build or install failed"
fi
rm -f "$BUILD_LOG"
[ -f "$SAMPLE" ] || die "the generator $SAMPLE does not exist"

# ---------------------------------------------------------------- cluster
if [ -f "$DATA/postmaster.pid" ]; then
    say "stopping a server left on $DATA"
    as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
fi
rm -rf "$DATA" "$SOCK" "$RUN" "$LOG"
mkdir -p "$DATA" "$SOCK" "$RUN" "$LOG"
touch "$DIR/.catalog-scratch"
chmod 755 "$DIR" "$RUN" "$LOG"
if [ "$(id -u)" -eq 0 ]; then
    chown "$SVC_USER:" "$DATA" "$SOCK" "$LOG"
    runuser -u "$SVC_USER" -- test -x "$DIR" || die "$SVC_USER cannot reach $DIR; choose another CATALOG_BENCH_DIR"
fi
chmod 700 "$DATA"

say "cluster: initdb in $DATA, port $PORT"
as_svc_in / "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$LOG/initdb.log" 2>&1 ||
    { cat "$LOG/initdb.log"; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# catalog benchmark (test/bench/run.sh)
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'catalog'
shared_buffers = 4GB
max_connections = 100
password_encryption = 'scram-sha-256'
# No checkpoint or autovacuum starts in the middle of a run: the script
# issues CHECKPOINT before each run and VACUUM ANALYZE after the load.
max_wal_size = 16GB
checkpoint_timeout = 1h
autovacuum = off
# The audit sealer (background worker) chains this database's audit rows at
# its default interval, as in production (see the audit workload above).
catalog.audit_seal_database = '$DB'
# The rate limiter is on, as in production, with limits no run reaches:
# every figure includes its cost, and none of its refusals.
catalog.rate_limit = on
catalog.rate_limit_read_rate = 1000000
catalog.rate_limit_read_burst = 1000000
catalog.rate_limit_write_rate = 1000000
catalog.rate_limit_write_burst = 1000000
EOF
as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG/server.log" -w -t 120 start >/dev/null ||
    { tail -20 "$LOG/server.log"; die "the server did not start"; }
STARTED=1

# psql as the superuser over the Unix socket.
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres)
sql() { "${PSQL[@]}" -d "$DB" "$@"; }
val() { "${PSQL[@]}" -d "$DB" -A -t -c "$1"; }

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
sql -c "CREATE EXTENSION catalog CASCADE"

# ---------------------------------------------------------------- data
say "load: $PRODUCTS products with test/data/sample.sql (seed $SEED), audit triggers disabled"
t0=$(date +%s)
# The fixture is not history: no audit row for it (see the header).
sql -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" \
    -c "ALTER TABLE catalog.category DISABLE TRIGGER category_audit" >"$LOG/load.log" 2>&1 ||
    { tail -20 "$LOG/load.log"; die "disabling the audit triggers failed"; }
sql -v products="$PRODUCTS" -v seed="$SEED" -f "$SAMPLE" >>"$LOG/load.log" 2>&1 ||
    { tail -20 "$LOG/load.log"; die "test/data/sample.sql failed"; }
sql -c "ALTER TABLE catalog.product ENABLE TRIGGER product_audit" \
    -c "ALTER TABLE catalog.category ENABLE TRIGGER category_audit" >>"$LOG/load.log" 2>&1 ||
    { tail -20 "$LOG/load.log"; die "enabling the audit triggers failed"; }
t1=$(date +%s)
LOAD_SECS=$((t1 - t0))
NPROD=$(val "SELECT count(*) FROM catalog.product")
[ "$NPROD" -ge 1 ] || die "the generator loaded no product"
say "load: $NPROD products in ${LOAD_SECS} s"

sql -c "CREATE SCHEMA bench" >"$LOG/baseline.log" 2>&1
# The baseline table serves search and create only.
HAVE_PLAIN=0
if wants search || wants create; then
    HAVE_PLAIN=1
    say "baseline table: bench.product_plain (LIKE catalog.product INCLUDING ALL) + FK, copy of the rows"
else
    say "baseline table: not needed (neither search nor create runs)"
fi
t0=$(date +%s)
[ "$HAVE_PLAIN" -eq 0 ] || sql -f "$REPO/test/bench/product_plain.sql" >>"$LOG/baseline.log" 2>&1 ||
    { tail -20 "$LOG/baseline.log"; die "copying the baseline table failed"; }
VACUUM_T0=$(date +%s)
sql -c "VACUUM ANALYZE" >>"$LOG/baseline.log" 2>&1
t1=$(date +%s)
if [ "$HAVE_PLAIN" -eq 1 ]; then
    say "baseline table copied in $((VACUUM_T0 - t0)) s; VACUUM ANALYZE in $((t1 - VACUUM_T0)) s"
else
    say "VACUUM ANALYZE in $((t1 - VACUUM_T0)) s"
fi

# The audit rows of the runs go to the partition of the current month,
# which CREATE EXTENSION creates (catalog_api.audit_maintain); without it
# they would land in catalog.audit_log_default, and the report says so.
AUDIT_PART=$(val "SELECT coalesce(pg_catalog.string_agg(c.relname, ', '), '')
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
    LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
        'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b(m)
    WHERE i.inhparent = 'catalog.audit_log'::regclass
      AND pg_catalog.now() >= b.m[1]::timestamptz AND pg_catalog.now() < b.m[2]::timestamptz")
if [ -n "$AUDIT_PART" ]; then
    say "audit: the current month's partition is $AUDIT_PART"
else
    say "audit: warning: no partition of catalog.audit_log holds the current month: audit rows go to catalog.audit_log_default"
fi

# Load both arms' tables and indexes into shared buffers, so that neither arm
# pays for warming the cache of the other (the first run would otherwise).
sql -At >>"$LOG/baseline.log" 2>&1 <<'EOF'
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT c.oid::regclass, pg_prewarm(c.oid)
FROM pg_class c
WHERE c.relnamespace IN ('catalog'::regnamespace, 'bench'::regnamespace)
  AND c.relkind IN ('r', 'i');
EOF
say "prewarmed $(val "SELECT pg_size_pretty(sum(pg_relation_size(c.oid))) FROM pg_class c WHERE c.relnamespace IN ('catalog'::regnamespace, 'bench'::regnamespace) AND c.relkind IN ('r', 'i')") of tables and indexes"

# Login roles for sysbench (TCP, SCRAM).  A fresh password for each run.
PW=$(perl -e 'open(my $f, "<", "/dev/urandom") or die; read($f, my $b, 16); print unpack("H*", $b)')
sql -v pw="$PW" >>"$LOG/baseline.log" 2>&1 <<'EOF'
CREATE ROLE bench_anon LOGIN PASSWORD :'pw' IN ROLE catalog_anon;
CREATE ROLE bench_anon_nolimit LOGIN PASSWORD :'pw' IN ROLE catalog_anon;
ALTER ROLE bench_anon_nolimit SET catalog.rate_limit = off;
CREATE ROLE bench_editor LOGIN PASSWORD :'pw' IN ROLE catalog_editor;
CREATE ROLE bench_reader LOGIN PASSWORD :'pw' BYPASSRLS;
GRANT USAGE ON SCHEMA catalog TO bench_reader, bench_editor;
GRANT SELECT ON catalog.product, catalog.category TO bench_reader;
GRANT USAGE ON SCHEMA bench TO bench_editor;
EOF
[ "$HAVE_PLAIN" -eq 0 ] || sql -c "GRANT SELECT, INSERT ON bench.product_plain TO bench_editor" >>"$LOG/baseline.log" 2>&1

# Ids to read (published products of the loaded range) and categories to use.
"${PSQL[@]}" -d "$DB" -c "\\copy (SELECT id FROM catalog.product WHERE status = 'published' ORDER BY id) TO '$RUN/published.ids'"
"${PSQL[@]}" -d "$DB" -c "\\copy (SELECT id FROM catalog.category ORDER BY id) TO '$RUN/categories.ids'"
NPUB=$(wc -l <"$RUN/published.ids")
NCAT=$(wc -l <"$RUN/categories.ids")
[ "$NPUB" -ge 1 ] || die "no published product to read"
[ "$NCAT" -ge 1 ] || die "no category"
IDRANGE=$(val "SELECT pg_catalog.min(id) || '..' || pg_catalog.max(id) FROM catalog.product")
say "data: $NPROD products (ids $IDRANGE), $NPUB published, $NCAT categories"

# ---------------------------------------------------------------- audit setup
# update_product reads the version and price of the product it updates in
# the same statement (catalog_bench.lua), hence the column grant, for the
# benchmark only.  The classic PL/pgSQL design's table and function stay for
# the whole workload; its trigger exists only during its own runs
# (audit_arm).  The function is not SECURITY DEFINER: the rows are written
# as whichever role writes catalog.product (catalog_api's owner), so PUBLIC
# may insert into the table.
ID_MIN=${IDRANGE%%..*}
ID_MAX=${IDRANGE##*..}
if wants audit; then
    sql >"$LOG/audit_setup.log" 2>&1 <<'EOF' || { tail -20 "$LOG/audit_setup.log"; die "audit setup failed"; }
GRANT SELECT (id, price, version) ON catalog.product TO bench_editor;
EOF
    sql -f "$REPO/test/bench/audit_plpgsql.sql" >>"$LOG/audit_setup.log" 2>&1 ||
        { tail -20 "$LOG/audit_setup.log"; die "the PL/pgSQL audit design failed to install"; }
fi

# ---------------------------------------------------------------- search setup
# sysbench's connection options (the pool command of search_bench.lua).
SB_CONN=(--db-driver=pgsql --pgsql-host=127.0.0.1 --pgsql-port="$PORT" --pgsql-db="$DB")
# The inputs of search_bench.lua besides the query mix itself.
SEARCH_ARGS=(--seed="$SEED" --sample_file="$SAMPLE" --products_file="$RUN/search_products.txt"
    --categories_file="$RUN/search_categories.txt" --pool_file="$RUN/search_pool.txt")
HAVE_SEARCH=0
SEARCH_ADDED=""
POOL_INFO=""
if wants search; then
    if [ "$(val "SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc WHERE proname = 'search_products' AND pronamespace = 'catalog_api'::regnamespace")" -gt 0 ]; then
        HAVE_SEARCH=1
    else
        say "search: catalog_api.search_products does not exist: only the baseline arm runs"
    fi
    # The products the queries are made from (one published product in
    # 101), and every category with its depth (0 = department) and its
    # descendants, itself included: what a PostgREST client sends as
    # category_id=in.(...).
    "${PSQL[@]}" -d "$DB" -c "\\copy (SELECT sku, category_id, price, name FROM catalog.product WHERE status = 'published' AND id % 101 = 7 ORDER BY id) TO '$RUN/search_products.txt'"
    "${PSQL[@]}" -d "$DB" -c "\\copy (WITH RECURSIVE d(id, depth) AS (SELECT id, 0 FROM catalog.category WHERE parent_id IS NULL UNION ALL SELECT c.id, d.depth + 1 FROM catalog.category c JOIN d ON c.parent_id = d.id), t(root, id) AS (SELECT id, id FROM catalog.category UNION ALL SELECT t.root, c.id FROM t JOIN catalog.category c ON c.parent_id = t.id) SELECT t.root, d.depth, '{' || pg_catalog.string_agg(t.id::text, ',' ORDER BY t.id) || '}' FROM t JOIN d ON d.id = t.root GROUP BY t.root, d.depth ORDER BY t.root) TO '$RUN/search_categories.txt'"
    [ -s "$RUN/search_products.txt" ] || die "no product to make the search mix from"

    # The baseline's indexes: those a careful PostgREST user adds for these
    # queries, each created only if bench.product_plain (a copy of
    # catalog.product's indexes) has none like it, and dropped after the
    # search runs.
    say "search: indexes of the baseline on bench.product_plain"
    t0=$(date +%s)
    sql >"$LOG/search_setup.log" 2>&1 <<'EOF' || { tail -20 "$LOG/search_setup.log"; die "search setup failed"; }
GRANT USAGE ON SCHEMA bench TO bench_reader;
GRANT SELECT ON bench.product_plain TO bench_reader;
CREATE TABLE bench.search_added_index (name text PRIMARY KEY);
DO $idx$
DECLARE
    col text;
    cols text[];
    idx text;
    have boolean;
BEGIN
    -- GIN trigram indexes for name ILIKE and sku ILIKE
    FOREACH col IN ARRAY ARRAY['name', 'sku'] LOOP
        SELECT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid = ic.relam
            JOIN pg_catalog.pg_opclass oc ON oc.oid = i.indclass[0]
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = 'bench.product_plain'::regclass AND am.amname = 'gin'
              AND oc.opcname = 'gin_trgm_ops' AND i.indnkeyatts = 1 AND a.attname = col
              AND i.indpred IS NULL) INTO have;
        IF NOT have THEN
            idx := 'product_plain_' || col || '_trgm_idx';
            EXECUTE pg_catalog.format('CREATE INDEX %I ON bench.product_plain USING gin (%I gin_trgm_ops)', idx, col);
            INSERT INTO bench.search_added_index VALUES (idx);
        END IF;
    END LOOP;
    -- btree for the price and newest sorts without a category
    FOREACH cols SLICE 1 IN ARRAY ARRAY[['status', 'price'], ['status', 'created_at']] LOOP
        SELECT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid = ic.relam
            JOIN pg_catalog.pg_attribute a0 ON a0.attrelid = i.indrelid AND a0.attnum = i.indkey[0]
            JOIN pg_catalog.pg_attribute a1 ON a1.attrelid = i.indrelid AND a1.attnum = i.indkey[1]
            WHERE i.indrelid = 'bench.product_plain'::regclass AND am.amname = 'btree'
              AND i.indnkeyatts >= 2 AND a0.attname = cols[1] AND a1.attname = cols[2]
              AND i.indpred IS NULL) INTO have;
        IF NOT have THEN
            idx := 'product_plain_' || cols[1] || '_' || cols[2] || '_id_search_idx';
            EXECUTE pg_catalog.format('CREATE INDEX %I ON bench.product_plain (%I, %I, id)', idx, cols[1], cols[2]);
            INSERT INTO bench.search_added_index VALUES (idx);
        END IF;
    END LOOP;
END
$idx$;
ANALYZE bench.product_plain;
SELECT c.oid::regclass, pg_prewarm(c.oid)
FROM bench.search_added_index s
JOIN pg_catalog.pg_class c ON c.relname = s.name AND c.relnamespace = 'bench'::regnamespace;
EOF
    SEARCH_ADDED=$(val "SELECT coalesce(pg_catalog.string_agg(name, ', ' ORDER BY name), '') FROM bench.search_added_index")
    if [ -n "$SEARCH_ADDED" ]; then
        say "search: added $(val "SELECT pg_catalog.string_agg(c.relname || ' (' || pg_catalog.pg_size_pretty(pg_catalog.pg_relation_size(c.oid)) || ')', ', ' ORDER BY c.relname) FROM bench.search_added_index s JOIN pg_catalog.pg_class c ON c.relname = s.name AND c.relnamespace = 'bench'::regnamespace") in $(($(date +%s) - t0)) s"
    else
        say "search: no index to add (bench.product_plain has catalog.product's: trigram on name and sku, (status, price), (status, created_at))"
    fi

    # The deep-page pool: queries of the mix with a page from 11 to 15 and,
    # for ours, the cursor of that page (walked here, not timed).
    t0=$(date +%s)
    sysbench "$LUA_SEARCH" "${SB_CONN[@]}" --pgsql-user=bench_anon --pgsql-password="$PW" \
        "${SEARCH_ARGS[@]}" --pool_size="$SEARCH_POOL" --pool_check="$HAVE_SEARCH" pool \
        >"$LOG/search_pool.log" 2>&1 || { tail -20 "$LOG/search_pool.log"; die "building the deep-page pool failed"; }
    POOL_INFO=$(sed -n 's/^pool: //p' "$LOG/search_pool.log")
    [ -n "$POOL_INFO" ] || { tail -20 "$LOG/search_pool.log"; die "building the deep-page pool failed"; }
    say "search: deep-page pool in $(($(date +%s) - t0)) s: $POOL_INFO"
fi

# ---------------------------------------------------------------- runs
SB_COMMON=(--db-driver=pgsql --pgsql-host=127.0.0.1 --pgsql-port="$PORT" --pgsql-db="$DB"
    --time=$((WARMUP + SECS)) --report-interval=0 --percentile=95
    --rand-type=uniform --rand-seed="$SEED" --warmup="$WARMUP")
if [ "$WARMUP" -gt 0 ]; then
    SB_COMMON+=(--report-checkpoints="$WARMUP")
fi

declare -A TPS P50 P95 P99 NEV
RUN_NO=0

# run_one KEY WORKLOAD THREADS USER [EXTRA...]: one sysbench run (one round
# of an arm); adds its events and measured seconds to EVT[KEY] and
# SEC[KEY] and keeps its per-event latencies under $RUN/agg/ for finish_key.
# RETRY[KEY]: update_product's PT409 retries in the measured events.
declare -A EVT SEC RETRY
mkdir -p "$RUN/agg"
run_one() {
    local key=$1 workload=$2 threads=$3 user=$4
    shift 4
    local file=${key//\//_}
    local logf lat line tps nerr events arg args=() script=$LUA rmeasured rall
    case $workload in search*) script=$LUA_SEARCH ;; esac
    RUN_NO=$((RUN_NO + 1))
    # SKUs must be unique across the rounds of an arm: suffix the prefix.
    for arg in "$@"; do
        case $arg in --sku_prefix=*) args+=("$arg-R$RUN_NO") ;; *) args+=("$arg") ;; esac
    done
    set -- "${args[@]}"
    logf=$LOG/$file.r$RUN_NO.log
    lat=$RUN/agg/$file.r$RUN_NO
    sql -c "CHECKPOINT" >/dev/null
    # A search cancelled by catalog.search_timeout is a failed event that
    # search_bench.lua records (FAIL below), and a PT409 of update_product is
    # retried by catalog_bench.lua (RETRY below); sysbench logs both as
    # FATAL.  Any other FATAL stops the benchmark.
    if ! sysbench "$script" "${SB_COMMON[@]}" --threads="$threads" --pgsql-user="$user" \
        --pgsql-password="$PW" --workload="$workload" --latfile="$lat" "$@" run >"$logf" 2>&1 ||
        [ "$({ grep FATAL "$logf" || true; } |
            { grep -v -e 'cancelled after catalog.search_timeout' -e 'product [0-9]* was modified concurrently' || true; } |
            wc -l)" -gt 0 ]; then
        tail -20 "$logf"
        die "sysbench run $key failed (log above)"
    fi
    # The last "transactions:" line is the measured part (after the checkpoint).
    line=$(grep 'transactions:' "$logf" | tail -n 1)
    tps=$(printf '%s\n' "$line" | sed -n 's/.*(\([0-9.]*\) per sec.).*/\1/p')
    events=$(printf '%s\n' "$line" | awk '{print $2}')
    nerr=$(grep 'ignored errors:' "$logf" | tail -n 1 | awk '{print $3}')
    [ -n "$tps" ] && [ -n "$events" ] || die "no TPS in $logf"
    # sysbench counts the errors the FATAL check above lets through as
    # ignored errors: a search cancelled by catalog.search_timeout, reported
    # as a failed event of the search rows, and a PT409 that update_product
    # retried (no more than the retries catalog_bench.lua counted).
    # Elsewhere none.
    read -r rmeasured rall < <({ grep -o 'bench_retries [0-9]* [0-9]* [0-9]*' "$logf" || true; } |
        awk '{ m += $3; a += $4 } END { print m + 0, a + 0 }')
    case $workload in
        search*) ;;
        update_product)
            [ "${nerr:-0}" -le "$rall" ] || die "sysbench run $key had $nerr ignored errors, more than its $rall PT409 retries" ;;
        *) [ "${nerr:-0}" = 0 ] || die "sysbench run $key had $nerr ignored errors" ;;
    esac
    EVT[$key]=$(( ${EVT[$key]:-0} + events ))
    RETRY[$key]=$(( ${RETRY[$key]:-0} + rmeasured ))
    SEC[$key]=$(awk -v a="${SEC[$key]:-0}" -v e="$events" -v t="$tps" 'BEGIN { printf "%.6f", a + e / t }')
    say "$(printf '%-28s round %s: %10.1f TPS  (sysbench p95 %s ms)' "$key" "$RUN_NO" "$tps" \
        "$(grep '95th percentile:' "$logf" | tail -n 1 | awk '{print $3}')")"
}

# finish_key KEY: TPS[KEY] over all rounds, and exact nearest-rank
# percentiles P50/P95/P99[KEY] (ms) over every timed event of all rounds.
# Latency files whose lines also name the kind of query and the items it
# returned (search_bench.lua) give BREAK[KEY] as well: one line per kind,
# "kind events share% p50 p95 p99 empty% failed", and FAIL[KEY], the events
# that failed (items -1: cancelled by catalog.search_timeout).
declare -A BREAK FAIL
finish_key() {
    local key=$1 file=${1//\//_} n p50 p95 p99
    TPS[$key]=$(awk -v e="${EVT[$key]}" -v s="${SEC[$key]}" 'BEGIN { printf "%.1f", e / s }')
    read -r n p50 p95 p99 < <(
        cat "$RUN/agg/$file".r* | LC_ALL=C sort -g | awk '
            { v[NR] = $1 }
            function rank(p) { r = int((p * NR + 99) / 100); return r < 1 ? 1 : r }
            END {
                if (NR == 0) { print 0, "nan", "nan", "nan"; exit }
                printf "%d %.3f %.3f %.3f\n", NR, v[rank(50)], v[rank(95)], v[rank(99)]
            }')
    [ "$n" -gt 0 ] || die "no event of $key was timed after the warm-up"
    NEV[$key]=$n P50[$key]=$p50 P95[$key]=$p95 P99[$key]=$p99
    BREAK[$key]=$(cat "$RUN/agg/$file".r* | LC_ALL=C sort -g | awk '
        NF >= 3 { k = $2; c[k]++; v[k, c[k]] = $1; if ($3 == 0) e[k]++; if ($3 < 0) f[k]++; t++ }
        function at(k, p,   r) { r = int((p * c[k] + 99) / 100); return v[k, r < 1 ? 1 : r] }
        END {
            split("common two prefix sku typo filters deep", order, " ")
            for (i = 1; i <= 7; i++) {
                k = order[i]
                if (c[k] > 0)
                    printf "%s %d %.1f %.3f %.3f %.3f %.1f %d\n", k, c[k], 100 * c[k] / t,
                        at(k, 50), at(k, 95), at(k, 99), 100 * e[k] / c[k], f[k]
            }
        }')
    FAIL[$key]=$(cat "$RUN/agg/$file".r* | awk 'NF >= 3 && $3 < 0 { n++ } END { print n + 0 }')
    rm -f "$RUN/agg/$file".r*
    [ "${FAIL[$key]}" -eq 0 ] || say "$key: ${FAIL[$key]} timed events failed (cancelled by catalog.search_timeout)"
    say "$(printf '%-28s %10.1f TPS  p50 %7.3f  p95 %7.3f  p99 %7.3f ms  (%s events timed, %s rounds)' \
        "$key" "${TPS[$key]}" "$p50" "$p95" "$p99" "$n" "$ROUNDS")"
}

# run_pair: ROUNDS interleaved rounds of two arms, then their results.
# Arguments: KEY_A WORKLOAD_A THREADS USER_A ARGS_A... -- KEY_B WORKLOAD_B
# THREADS USER_B ARGS_B...
run_pair() {
    local a=() b=() seen=0 arg r
    for arg in "$@"; do
        if [ "$arg" = "--" ] && [ $seen -eq 0 ]; then seen=1; continue; fi
        if [ $seen -eq 0 ]; then a+=("$arg"); else b+=("$arg"); fi
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2 == 1)); then run_one "${a[@]}"; run_one "${b[@]}";
        else run_one "${b[@]}"; run_one "${a[@]}"; fi
    done
    finish_key "${a[0]}"
    finish_key "${b[0]}"
}

# run_single: ROUNDS rounds of one arm (the SELECT 1 ceiling).
run_single() {
    local r
    for ((r = 1; r <= ROUNDS; r++)); do run_one "$@"; done
    finish_key "$1"
}

# ---------------------------------------------------------------- audit runs
# audit_arm ARM: set catalog.product's triggers for the arm (on, off,
# plpgsql), as the superuser, while no client is connected.
audit_arm() {
    case $1 in
        on) sql -c "ALTER TABLE catalog.product ENABLE TRIGGER product_audit" ;;
        off) sql -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" ;;
        plpgsql)
            sql -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" \
                -c "CREATE TRIGGER product_audit_plpgsql AFTER INSERT OR UPDATE OR DELETE ON catalog.product
                    FOR EACH ROW EXECUTE FUNCTION bench.audit_plpgsql_trigger()" ;;
    esac >>"$LOG/audit_arms.log" 2>&1 || { tail -20 "$LOG/audit_arms.log"; die "switching to the audit arm $1 failed"; }
}
# audit_arm_done ARM: undo what only this arm has (the PL/pgSQL trigger).
audit_arm_done() {
    [ "$1" = plpgsql ] || return 0
    sql -c "DROP TRIGGER product_audit_plpgsql ON catalog.product" >>"$LOG/audit_arms.log" 2>&1 ||
        { tail -20 "$LOG/audit_arms.log"; die "dropping the PL/pgSQL audit trigger failed"; }
}

# The sealer's backlog: audit rows not yet in the chain.
audit_backlog() {
    val "SELECT (SELECT pg_catalog.count(*) FROM catalog.audit_log) - (SELECT pg_catalog.count(*) FROM catalog.audit_seal)"
}
# seal_wait: before the first audit run and after each run of the arm "on",
# record the sealer's backlog, then wait until it has sealed it, so that its
# work does not fall into the next arm's run; give up when it makes no
# progress for 5 s (the sealer is not running, or is disabled).
SEAL_BACKLOG_MAX=0 SEAL_WAIT_SECS=0 SEAL_STALLED=0
seal_wait() {
    local n prev still=0 t0
    t0=$(date +%s)
    n=$(audit_backlog)
    [ "$n" -le "$SEAL_BACKLOG_MAX" ] || SEAL_BACKLOG_MAX=$n
    # A sealer that never sealed a row is not running: wait for it once.
    if [ "$SEAL_STALLED" -eq 1 ] && [ "$(val "SELECT pg_catalog.count(*) FROM catalog.audit_seal")" -eq 0 ]; then
        return 0
    fi
    while [ "$n" -gt 0 ]; do
        sleep 0.5
        prev=$n
        n=$(audit_backlog)
        if [ "$n" -lt "$prev" ]; then still=0; else still=$((still + 1)); fi
        if [ "$still" -ge 10 ]; then
            SEAL_STALLED=1
            break
        fi
    done
    SEAL_WAIT_SECS=$((SEAL_WAIT_SECS + $(date +%s) - t0))
}

# run_audit: for each synchronous_commit and operation, ROUNDS rounds of
# the three arms, their order rotating from round to round, then each arm's
# results.  Keys: audit_<op>/<arm>/<sc>.
AUDIT_ARMS=(on off plpgsql)
run_audit() {
    local sc op r i arm key
    # Start with the chain caught up (the create workload writes audit rows too).
    seal_wait
    for sc in on off; do
        for op in create update; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for ((i = 0; i < 3; i++)); do
                    arm=${AUDIT_ARMS[$(((r - 1 + i) % 3))]}
                    key=audit_$op/$arm/$sc
                    audit_arm "$arm"
                    if [ "$op" = create ]; then
                        run_one "$key" create_product "$AUDIT_CLIENTS" bench_editor \
                            --categories_file="$RUN/categories.ids" --sync_commit="$sc" \
                            --sku_prefix="AUDIT-$(printf '%s-%s' "$sc" "$arm" | tr a-z A-Z)"
                    else
                        run_one "$key" update_product "$AUDIT_CLIENTS" bench_editor \
                            --id_min="$ID_MIN" --id_max="$ID_MAX" --sync_commit="$sc"
                    fi
                    audit_arm_done "$arm"
                    [ "$arm" != on ] || seal_wait
                done
            done
            for arm in "${AUDIT_ARMS[@]}"; do
                finish_key "audit_$op/$arm/$sc"
            done
        done
    done
    audit_arm on
}

say "runs: $ROUNDS interleaved rounds per arm, each ${WARMUP} s warm-up + ${SECS} s measured; clients: $CLIENTS$(wants audit && echo " (audit: $AUDIT_CLIENTS)")"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUNS_T0=$(date +%s)
if wants get; then
    for c in $CLIENTS; do
        run_pair "get_product/c$c" get_product "$c" bench_anon --ids_file="$RUN/published.ids" -- \
            "get_select/c$c" get_select "$c" bench_reader --ids_file="$RUN/published.ids"
    done
fi
if wants ratelimit; then
    LIMITER_BEFORE=$(val "SELECT (h->>'allowed') || ' ' || (h->>'refused_rate') || ' ' || (h->>'refused_full') FROM (SELECT catalog_api.health() -> 'rate_limiter' AS h) x")
    run_pair "get_limiter_on/c8" get_product 8 bench_anon --ids_file="$RUN/published.ids" -- \
        "get_limiter_off/c8" get_product 8 bench_anon_nolimit --ids_file="$RUN/published.ids"
    LIMITER_AFTER=$(val "SELECT (h->>'allowed') || ' ' || (h->>'refused_rate') || ' ' || (h->>'refused_full') FROM (SELECT catalog_api.health() -> 'rate_limiter' AS h) x")
    read -r la0 lr0 lf0 <<<"$LIMITER_BEFORE"
    read -r la1 lr1 lf1 <<<"$LIMITER_AFTER"
    LIMITER_COUNTED=$((la1 - la0))
    [ $((lr1 - lr0 + lf1 - lf0)) -eq 0 ] || die "the rate limiter refused requests during the limiter runs"
    [ "$LIMITER_COUNTED" -ge "${EVT[get_limiter_on/c8]:-1}" ] ||
        die "the rate limiter counted $LIMITER_COUNTED requests, fewer than the limited arm's events"
    [ "$(PGPASSWORD=$PW "$PG_BIN/psql" -X -A -t -h 127.0.0.1 -p "$PORT" -U bench_anon_nolimit -d "$DB" \
        -c "SHOW catalog.rate_limit")" = off ] || die "bench_anon_nolimit runs with the limiter on"
fi
# Search before create: both tables hold the same rows.
if wants search; then
    for c in $CLIENTS; do
        if [ "$HAVE_SEARCH" -eq 1 ]; then
            run_pair "search_products/c$c" search "$c" bench_anon "${SEARCH_ARGS[@]}" -- \
                "search_naive/c$c" search_naive "$c" bench_reader "${SEARCH_ARGS[@]}"
        else
            run_single "search_naive/c$c" search_naive "$c" bench_reader "${SEARCH_ARGS[@]}"
        fi
    done
    # The baseline's search indexes go: the create pair compares tables with
    # the same indexes.
    sql >>"$LOG/search_setup.log" 2>&1 <<'EOF'
DO $drop$
DECLARE
    idx text;
BEGIN
    FOR idx IN SELECT name FROM bench.search_added_index ORDER BY name LOOP
        EXECUTE pg_catalog.format('DROP INDEX bench.%I', idx);
    END LOOP;
END
$drop$;
DROP TABLE bench.search_added_index;
EOF
fi
if wants create; then
    for sc in on off; do
        for c in $CLIENTS; do
            prefix=BENCH-$(printf '%s' "$sc" | tr a-z A-Z)-C$c
            run_pair "create_product/c$c/$sc" create_product "$c" bench_editor \
                --categories_file="$RUN/categories.ids" --sync_commit="$sc" --sku_prefix="$prefix-O" -- \
                "insert_plain/c$c/$sc" insert_plain "$c" bench_editor \
                --categories_file="$RUN/categories.ids" --sync_commit="$sc" --sku_prefix="$prefix-B" \
                --actor=bench_editor
        done
    done
fi
if wants audit; then
    run_audit
fi
if wants select1; then
    for c in $CLIENTS; do
        run_single "select1/c$c" select1 "$c" bench_anon
    done
fi
RUNS_T1=$(date +%s)

# ---------------------------------------------------------------- report
PGVER=$(val "SELECT pg_catalog.version()")
NCPU=$(nproc)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
FS=$(df -PT "$DIR" | awk 'NR == 2 {print $2 " on " $1}')
SB_VER=$(sysbench --version)
ENVS=""
for v in CATALOG_BENCH_DIR CATALOG_BENCH_PGPORT CATALOG_BENCH_SECONDS CATALOG_BENCH_WARMUP CATALOG_BENCH_ROUNDS \
    CATALOG_BENCH_CLIENTS CATALOG_BENCH_PRODUCTS CATALOG_BENCH_SEED CATALOG_BENCH_WORKLOADS \
    CATALOG_BENCH_SEARCH_POOL CATALOG_BENCH_AUDIT_CLIENTS CATALOG_BENCH_KEEP CATALOG_PG_BIN; do
    [ -n "${!v:-}" ] && ENVS+="$v='${!v}' "
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r + 0 >= t + 0) ? "PASS" : "MISS" }'; }
row() {   # row LABEL OURS_KEY BASE_KEY TARGET
    local label=$1 o=$2 b=$3 target=$4 r v
    if [ -n "$b" ]; then
        r=$(ratio "${TPS[$o]}" "${TPS[$b]}")
        v="$(verdict "$r" "$target") (>= ${target}x)"
        printf '%-38s | %9.1f %7.3f %7.3f %7.3f | %9.1f %7.3f %7.3f %7.3f | %5s | %s\n' "$label" \
            "${TPS[$o]}" "${P50[$o]}" "${P95[$o]}" "${P99[$o]}" \
            "${TPS[$b]}" "${P50[$b]}" "${P95[$b]}" "${P99[$b]}" "$r" "$v"
    else
        printf '%-38s | %9.1f %7.3f %7.3f %7.3f | %9s %7s %7s %7s | %5s | %s\n' "$label" \
            "${TPS[$o]}" "${P50[$o]}" "${P95[$o]}" "${P99[$o]}" - - - - - "(ceiling)"
    fi
}
# search_row LABEL OURS_KEY BASE_KEY CLIENTS: the targets hold at 8 clients:
# ours >= 10x the baseline's TPS and ours' p99 <= 10 ms.
search_row() {
    local label=$1 o=$2 b=$3 c=$4 r v vr vp
    if [ "$HAVE_SEARCH" -ne 1 ]; then
        printf '%-38s | %9s %7s %7s %7s | %9.1f %7.3f %7.3f %7.3f | %5s | %s\n' "$label" \
            - - - - "${TPS[$b]}" "${P50[$b]}" "${P95[$b]}" "${P99[$b]}" - "(no search_products)"
        return
    fi
    r=$(ratio "${TPS[$o]}" "${TPS[$b]}")
    if [ "$c" -eq 8 ]; then
        vr=$(verdict "$r" 10)
        vp=$(awk -v p="${P99[$o]}" 'BEGIN { print (p + 0 <= 10) ? "PASS" : "MISS" }')
        if [ "$vr" = PASS ] && [ "$vp" = PASS ] && [ "${FAIL[$o]}" -eq 0 ]; then
            v="PASS (>= 10x, p99 <= 10 ms)"
        else
            v="MISS (>= 10x $vr, p99 <= 10 ms $vp)"
        fi
    else
        v="(targets at c=8)"
    fi
    [ "${FAIL[$o]}" -eq 0 ] || v="$v ${FAIL[$o]} timeouts"
    printf '%-38s | %9.1f %7.3f %7.3f %7.3f | %9.1f %7.3f %7.3f %7.3f | %5s | %s\n' "$label" \
        "${TPS[$o]}" "${P50[$o]}" "${P95[$o]}" "${P99[$o]}" \
        "${TPS[$b]}" "${P50[$b]}" "${P95[$b]}" "${P99[$b]}" "$r" "$v"
}
# kind_rows OURS_KEY BASE_KEY: the search latencies by kind of query.
kind_rows() {
    local o=$1 b=$2 k ol bl
    for k in common two prefix sku typo filters deep; do
        ol=$(printf '%s\n' "${BREAK[$o]:-}" | awk -v k="$k" '$1 == k')
        bl=$(printf '%s\n' "${BREAK[$b]:-}" | awk -v k="$k" '$1 == k')
        [ -n "$ol$bl" ] || continue
        # shellcheck disable=SC2086
        set -- ${ol:-- - - - - - - -}
        printf '  %-8s | %7s %5s%% %8s %8s %8s %5s%% %6s ' "$k" "$2" "$3" "$4" "$5" "$6" "$7" "$8"
        # shellcheck disable=SC2086
        set -- ${bl:-- - - - - - - -}
        printf '| %7s %5s%% %9s %9s %9s %5s%% %6s\n' "$2" "$3" "$4" "$5" "$6" "$7" "$8"
    done
}

# cost A B: how much lower A is than B, in percent: 100 * (1 - A / B).
cost() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * (1 - a / b); else print "nan" }'; }
# audit_report: the audit workload's section of the report (the server is
# still up: it also reads what the runs wrote).
audit_report() {
    local sc op arm k con cpl r v line rows bytes sealed deflt prows pbytes sbytes bgw
    local sep="-----------------------+-----------------------------------+-----------------------------------+-----------------------------------"
    echo
    echo "audit: the cost of the audit trail on writes, $AUDIT_CLIENTS clients; client (sysbench) and server"
    echo "(PostgreSQL) share the same $NCPU cores (see machine above)."
    echo "on = the C trigger product_audit, as installed; off = product_audit disabled; PL/pgSQL = off"
    echo "plus the classic AFTER ROW trigger writing to_jsonb(OLD), to_jsonb(NEW), actor, time and txid"
    echo "to bench.audit_plpgsql.  The same inputs in every arm; sc = synchronous_commit; ms."
    echo
    printf '%-22s | %-33s | %-33s | %-33s\n' "" "audit on" "audit off" "PL/pgSQL classic"
    printf '%-22s | %9s %7s %7s %7s | %9s %7s %7s %7s | %9s %7s %7s %7s\n' "operation, sc" \
        TPS p50 p95 p99 TPS p50 p95 p99 TPS p50 p95 p99
    printf '%s\n' "$sep"
    for sc in on off; do
        for op in create update; do
            line=$(printf '%-22s' "${op}_product, sc=$sc")
            for arm in "${AUDIT_ARMS[@]}"; do
                k=audit_$op/$arm/$sc
                line+=$(printf ' | %9.1f %7.3f %7.3f %7.3f' "${TPS[$k]}" "${P50[$k]}" "${P95[$k]}" "${P99[$k]}")
            done
            printf '%s\n' "$line"
        done
    done
    echo
    echo "cost = 1 - TPS / TPS of audit off; targets with synchronous_commit off: audit costs at most"
    echo "10% of the throughput, and at most half of what the PL/pgSQL design costs in the same run."
    echo
    printf '%-22s | %8s | %8s | %8s | %s\n' "" "cost of" "cost of" "audit /" ""
    printf '%-22s | %8s | %8s | %8s | %s\n' "operation, sc" "audit" "PL/pgSQL" "PL/pgSQL" "targets"
    printf '%s\n' "-----------------------+----------+----------+----------+--------------------------------------------"
    for sc in on off; do
        for op in create update; do
            con=$(cost "${TPS[audit_$op/on/$sc]}" "${TPS[audit_$op/off/$sc]}")
            cpl=$(cost "${TPS[audit_$op/plpgsql/$sc]}" "${TPS[audit_$op/off/$sc]}")
            r=$(awk -v a="$con" -v b="$cpl" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            if [ "$sc" = off ]; then
                v=$(awk -v a="$con" -v b="$cpl" 'BEGIN {
                    printf "%s (<= 10%%), %s (<= half of PL/pgSQL)",
                        (a <= 10) ? "met" : "MISSED", (a <= b / 2) ? "met" : "MISSED" }')
            else
                v="(targets with sc=off)"
            fi
            printf '%-22s | %7s%% | %7s%% | %8s | %s\n' "${op}_product, sc=$sc" "$con" "$cpl" "$r" "$v"
        done
    done
    echo
    echo "update_product retries after PT409 (a concurrent update of the same product), measured events:"
    for sc in on off; do
        line="  sc=$sc:"
        for arm in "${AUDIT_ARMS[@]}"; do
            k=audit_update/$arm/$sc
            line+=" $arm ${RETRY[$k]:-0} of ${NEV[$k]},"
        done
        printf '%s\n' "${line%,}"
    done
    rows=$(val "SELECT pg_catalog.count(*) FROM catalog.audit_log")
    bytes=$(val "SELECT coalesce(pg_catalog.sum(pg_catalog.pg_total_relation_size(relid)), 0) FROM pg_catalog.pg_partition_tree('catalog.audit_log') WHERE isleaf")
    deflt=$(val "SELECT pg_catalog.count(*) FROM catalog.audit_log_default")
    sealed=$(val "SELECT pg_catalog.count(*) FROM catalog.audit_seal")
    sbytes=$(val "SELECT pg_catalog.pg_total_relation_size('catalog.audit_seal')")
    prows=$(val "SELECT pg_catalog.count(*) FROM bench.audit_plpgsql")
    pbytes=$(val "SELECT pg_catalog.pg_total_relation_size('bench.audit_plpgsql')")
    bgw=$(val "SELECT coalesce(pg_catalog.string_agg(DISTINCT backend_type, ', '), '') FROM pg_catalog.pg_stat_activity
               WHERE backend_type NOT IN ('client backend', 'autovacuum launcher', 'autovacuum worker',
                   'logical replication launcher', 'background writer', 'checkpointer', 'walwriter',
                   'archiver', 'walsender', 'walreceiver', 'startup')")
    per_row() { awk -v b="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print "-" }'; }
    echo
    echo "audit rows: catalog.audit_log $rows rows (all workloads of this run), $(per_row "$bytes" "$rows") bytes per row"
    echo "  with its indexes (plus $(per_row "$sbytes" "$sealed") bytes per sealed row in catalog.audit_seal);"
    echo "  bench.audit_plpgsql $prows rows, $(per_row "$pbytes" "$prows") bytes per row with its index."
    if [ -n "$AUDIT_PART" ]; then
        echo "  partition of the month: $AUDIT_PART ($deflt rows in catalog.audit_log_default)."
    else
        echo "  no partition held the current month: every audit row went to catalog.audit_log_default."
    fi
    echo "sealer: catalog.audit_seal_interval = $(val "SHOW catalog.audit_seal_interval") on database"
    echo "  $(val "SHOW catalog.audit_seal_database"), left running during the measurements (the production setting);"
    echo "  background workers seen at the end: ${bgw:-none}."
    if [ "$sealed" -eq 0 ] && [ "$rows" -gt 0 ]; then
        echo "  NOTE: the sealer sealed nothing: it did not run, and these figures do not include its cost."
    fi
    echo "  $sealed of $rows audit rows sealed at the end; backlog before the first audit run and after"
    echo "  each audit-on run: at most $SEAL_BACKLOG_MAX rows; the script waited $SEAL_WAIT_SECS s in all for the sealer"
    echo "  to catch up before the next run$([ "$SEAL_STALLED" -eq 1 ] && echo ", and gave up when it made no progress for 5 s")."
}

echo
echo "================================================================================"
echo "catalog benchmark results"
echo "================================================================================"
if [ -n "${MAKELEVEL:-}" ]; then INVOKED="make bench"; else INVOKED="test/bench/run.sh"; fi
echo "command:     cd $REPO && ${ENVS}$INVOKED    (make bench runs test/bench/run.sh)"
echo "workloads:   $WORKLOADS"
echo "sysbench:    sysbench test/bench/catalog_bench.lua ${SB_COMMON[*]} --threads=N --pgsql-user=ROLE --workload=W [...] run"
if wants search; then
    echo "             (search: test/bench/search_bench.lua, the same options plus --seed=$SEED --sample_file=test/data/sample.sql"
    echo "             --products_file --categories_file --pool_file, files made by run.sh)"
fi
echo "commit:      $COMMIT$([ "$DIRTY" -gt 0 ] && echo " + $DIRTY uncommitted change(s) to tracked files")"
echo "machine:     nproc = $NCPU ($CPU_MODEL), $MEM RAM; client (sysbench) and server (PostgreSQL)"
echo "             share the same $NCPU cores, and so does anything else running on the machine"
echo "             (load average 1/5/15 min: before the runs $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg))"
echo "server:      $PGVER"
echo "             shared_buffers 4GB (tables prewarmed), max_connections 100, fsync on, autovacuum off, CHECKPOINT"
echo "             before each run; data on $FS"
echo "client:      $SB_VER, pgsql driver, TCP 127.0.0.1, SCRAM; server-side prepared"
echo "             statements in both arms"
echo "data:        $NPROD products (ids $IDRANGE; $NPUB published), $NCAT categories, loaded by"
if [ "$HAVE_PLAIN" -eq 1 ]; then
    echo "             test/data/sample.sql in $LOAD_SECS s (audit triggers disabled); bench.product_plain is a copy"
else
    echo "             test/data/sample.sql in $LOAD_SECS s (audit triggers disabled)"
fi
if wants search; then
    if [ -n "$SEARCH_ADDED" ]; then
        printf '(for the search runs only, with %s added)\n' "$SEARCH_ADDED" | fold -s -w 86 | sed 's/^/             /'
    else
        echo "             (for the search runs: its copies of catalog.product's indexes serve the naive"
        echo "             search, nothing added)"
    fi
fi
echo "runs:        $ROUNDS rounds per arm, interleaved with the other arm(s) of the row (A B, B A, ...;"
echo "             audit: A B C, B C A, C A B, ...),"
echo "             each ${WARMUP} s warm-up + ${SECS} s measured; TPS = events / measured seconds over all"
echo "             rounds; latency = exact nearest-rank percentiles of every measured event (ms)"
ROLES=()
if wants get; then
    ROLES+=("get_product as bench_anon (catalog_anon only); hand-written SELECT as"
        "bench_reader (table SELECT, BYPASSRLS)")
fi
if wants search; then
    ROLES+=("search_products as bench_anon; the naive search as bench_reader")
fi
if wants create; then
    ROLES+=("create_product and the plain INSERT as bench_editor (catalog_editor)")
fi
if wants audit; then
    ROLES+=("audit workload as bench_editor (catalog_editor), plus SELECT (id, price,"
        "version) on catalog.product for update_product's read of the current version")
fi
if wants select1; then
    ROLES+=("SELECT 1 as bench_anon")
fi
if wants ratelimit; then
    ROLES+=("limiter arms: get_product as bench_anon and as bench_anon_nolimit (catalog_anon only)")
fi
printf 'roles:       %s\n' "${ROLES[0]}"
[ ${#ROLES[@]} -lt 2 ] || printf '             %s\n' "${ROLES[@]:1}"
if wants get || wants search || wants create || wants select1 || wants ratelimit; then
echo
printf '%-38s | %-33s | %-33s | %5s | %s\n' "" "ours" "baseline" "ratio" "target"
printf '%-38s | %9s %7s %7s %7s | %9s %7s %7s %7s | %5s | %s\n' "workload x clients" \
    TPS p50 p95 p99 TPS p50 p95 p99 "TPS" ""
printf '%s\n' "---------------------------------------+-----------------------------------+-----------------------------------+-------+---------------"
if wants get; then
    for c in $CLIENTS; do
        row "get_product / SELECT, c=$c" "get_product/c$c" "get_select/c$c" 1.0
    done
fi
if wants search; then
    for c in $CLIENTS; do
        search_row "search_products / naive search, c=$c" "search_products/c$c" "search_naive/c$c" "$c"
    done
fi
if wants create; then
    for sc in on off; do
        t=0.9
        [ "$sc" = off ] && t=0.85
        for c in $CLIENTS; do
            row "create_product / INSERT, c=$c, sc=$sc" "create_product/c$c/$sc" "insert_plain/c$c/$sc" "$t"
        done
    done
fi
if wants select1; then
    for c in $CLIENTS; do
        row "SELECT 1, c=$c" "select1/c$c" "" ""
    done
fi
if wants ratelimit; then
    row "get_product limiter on / off, c=8" "get_limiter_on/c8" "get_limiter_off/c8" 0.97
fi
echo
echo "ours = catalog_api.get_product / catalog_api.search_products / catalog_api.create_product;"
echo "baseline = the hand-written SELECT with join / the naive search a PostgREST user writes"
echo "(ILIKE '%q%' with a trigram index, ORDER BY, OFFSET) / a plain INSERT ... RETURNING * into"
echo "bench.product_plain; sc = synchronous_commit; ratio = ours TPS / baseline TPS; latencies in ms."
echo "targets: get_product >= 1.0x the hand-written SELECT; search_products at 8 clients >= 10x the"
echo "naive search's TPS with p99 <= 10 ms; create_product >= 0.9x the plain INSERT with"
echo "synchronous_commit on, >= 0.85x with it off.  create_product writes its audit row (the"
echo "trigger product_audit, as installed); the plain INSERT writes none."
if wants ratelimit; then
    echo "limiter: get_product as bench_anon (limiter on, limits never reached: it counted"
    echo "$LIMITER_COUNTED requests in the limiter runs, one bucket for all 8 clients, refused none) /"
    echo "the same as bench_anon_nolimit (catalog.rate_limit = off); target: ratio >= 0.97 (costs <= 3%)."
fi
fi
if wants audit; then
    audit_report
fi
if wants search; then
    echo
    echo "search mix (test/bench/search_bench.lua), per block of 100 events, the same inputs in both arms,"
    echo "each query made from a published product (its words, SKU, category, price range):"
    echo "  40 one common word, 15 two words, 15 prefix of 2-6 characters, 10 SKU or partial SKU,"
    echo "  10 one typo, 10 filters only; 50 with a category (department, subcategory or leaf), 20"
    echo "  with a price range; 60 relevance, 10 price_asc, 10 price_desc, 20 newest; 10 of the 100"
    echo "  ask for page 11 to 15 instead (kind 'deep' below): ours with the cursor of the page before,"
    echo "  the naive search with OFFSET; the walk to the cursor is not timed."
    printf 'deep-page pool: %s.\n' "$POOL_INFO" | fold -s -w 94 | sed 's/^/  /'
    echo "  empty = share of the events that returned no item (the naive search matches the whole"
    echo "  input as one substring: two words only when adjacent, a typo never); failed = calls"
    echo "  cancelled by catalog.search_timeout (57014), counted with the time they took to fail."
    for c in $CLIENTS; do
        echo
        printf '  %-8s | %-53s | %s\n' "c=$c" "ours" "naive search"
        printf '  %-8s | %7s %6s %8s %8s %8s %6s %6s | %7s %6s %9s %9s %9s %6s %6s\n' kind \
            events share p50 p95 p99 empty failed events share p50 p95 p99 empty failed
        kind_rows "search_products/c$c" "search_naive/c$c"
    done
fi
END_EPOCH=$(date +%s)
echo "time:        load $LOAD_SECS s, runs $((RUNS_T1 - RUNS_T0)) s, total $((END_EPOCH - START_EPOCH)) s"
