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
#   3. loads $CATALOG_BENCH_PRODUCTS (default 1,000,000) products with the
#      project's generator test/data/sample.sql, copies them into the
#      baseline table bench.product_plain, then VACUUM ANALYZE;
#   4. runs each workload pair side by side, ours then the baseline, at each
#      client count of $CATALOG_BENCH_CLIENTS (default "1 8" = sysbench
#      --threads), each run $CATALOG_BENCH_WARMUP s of warm-up (default 5)
#      plus $CATALOG_BENCH_SECONDS s measured (default 20), with a CHECKPOINT
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
#   select1 SELECT 1: the round-trip ceiling of this client and server.
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
#   CATALOG_BENCH_PRODUCTS  products to load         (1000000)
#   CATALOG_BENCH_SEED      generator and sysbench seed (42)
#   CATALOG_BENCH_KEEP      1: keep the cluster's data directory and logs
#
# Bash and Perl only (a fresh Debian 12 machine has no python3).

set -euo pipefail

START_EPOCH=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BENCH=$REPO/test/bench
LUA=$BENCH/catalog_bench.lua
SAMPLE=$REPO/test/data/sample.sql
RESULTS=$BENCH/results
PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG

DIR=${CATALOG_BENCH_DIR:-/tmp/catalog-bench}
PORT=${CATALOG_BENCH_PGPORT:-55460}
SECS=${CATALOG_BENCH_SECONDS:-10}
WARMUP=${CATALOG_BENCH_WARMUP:-3}
ROUNDS=${CATALOG_BENCH_ROUNDS:-3}
CLIENTS=${CATALOG_BENCH_CLIENTS:-1 8}
PRODUCTS=${CATALOG_BENCH_PRODUCTS:-1000000}
SEED=${CATALOG_BENCH_SEED:-42}
KEEP=${CATALOG_BENCH_KEEP:-0}
DB=catalog_bench

export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in PORT SECS WARMUP ROUNDS PRODUCTS SEED; do
    case ${!v} in '' | *[!0-9]*) die "$v must be a non-negative integer, not '${!v}'" ;; esac
done
[ "$SECS" -ge 1 ] || die "CATALOG_BENCH_SECONDS must be at least 1"
[ "$ROUNDS" -ge 1 ] || die "CATALOG_BENCH_ROUNDS must be at least 1"
[ "$PRODUCTS" -ge 1 ] || die "CATALOG_BENCH_PRODUCTS must be at least 1"
for c in $CLIENTS; do
    case $c in '' | *[!0-9]* | 0) die "CATALOG_BENCH_CLIENTS must list positive integers" ;; esac
done
case $DIR in /*) ;; *) die "CATALOG_BENCH_DIR must be an absolute path" ;; esac

if [ "$(id -u)" -eq 0 ]; then
    SVC_USER=postgres
else
    SVC_USER=$(id -un)
fi

# as_root CMD...: root directly, or through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -- "$@"; fi
}
# as_svc CMD...: as the user that owns the server, from a directory it can enter.
as_svc() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$SVC_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# The whole output goes to the terminal and, on success, to results/latest.txt.
mkdir -p "$RESULTS"
PARTIAL=$RESULTS/.latest.txt.partial
exec > >(tee "$PARTIAL") 2>&1

DATA=$DIR/data
SOCK=$DIR/sock
RUN=$DIR/run
LOG=$DIR/logs
STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [ "$STARTED" -eq 1 ]; then
        as_svc "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            say "warning: could not stop the server on $DATA"
    fi
    if [ "$KEEP" = 1 ]; then
        say "kept $DIR (CATALOG_BENCH_KEEP=1)"
    else
        rm -rf "$DIR"
    fi
    if [ "$rc" -eq 0 ] && [ -s "$PARTIAL" ]; then
        mv -f "$PARTIAL" "$RESULTS/latest.txt"
    else
        rm -f "$PARTIAL"
        [ "$rc" -eq 0 ] || printf '[bench] failed (exit %s); %s left unchanged\n' "$rc" "$RESULTS/latest.txt" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- packages
missing=()
for p in postgresql-15 postgresql-server-dev-15 postgresql-contrib sysbench make gcc perl; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# grep reads all of it (no -q): with pipefail, an early exit would SIGPIPE sysbench
sysbench --help 2>/dev/null | grep 'pgsql options' >/dev/null || die "this sysbench has no PostgreSQL driver"

# ---------------------------------------------------------------- build
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
    as_svc "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
fi
rm -rf "$DATA" "$SOCK" "$RUN" "$LOG"
mkdir -p "$DATA" "$SOCK" "$RUN" "$LOG"
chmod 755 "$DIR" "$RUN" "$LOG"
if [ "$(id -u)" -eq 0 ]; then
    chown "$SVC_USER:" "$DATA" "$SOCK" "$LOG"
    runuser -u "$SVC_USER" -- test -x "$DIR" || die "$SVC_USER cannot reach $DIR; choose another CATALOG_BENCH_DIR"
fi
chmod 700 "$DATA"

say "cluster: initdb in $DATA, port $PORT"
as_svc "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
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
EOF
as_svc "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG/server.log" -w -t 120 start >/dev/null ||
    { tail -20 "$LOG/server.log"; die "the server did not start"; }
STARTED=1

# psql as the superuser over the Unix socket.
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres)
sql() { "${PSQL[@]}" -d "$DB" "$@"; }
val() { "${PSQL[@]}" -d "$DB" -A -t -c "$1"; }

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
sql -c "CREATE EXTENSION catalog CASCADE"

# ---------------------------------------------------------------- data
say "load: $PRODUCTS products with test/data/sample.sql (seed $SEED)"
t0=$(date +%s)
sql -v products="$PRODUCTS" -v seed="$SEED" -f "$SAMPLE" >"$LOG/load.log" 2>&1 ||
    { tail -20 "$LOG/load.log"; die "test/data/sample.sql failed"; }
t1=$(date +%s)
LOAD_SECS=$((t1 - t0))
NPROD=$(val "SELECT count(*) FROM catalog.product")
[ "$NPROD" -ge 1 ] || die "the generator loaded no product"
say "load: $NPROD products in ${LOAD_SECS} s"

say "baseline table: bench.product_plain (LIKE catalog.product INCLUDING ALL) + FK, copy of the rows"
t0=$(date +%s)
sql >"$LOG/baseline.log" 2>&1 <<'EOF'
CREATE SCHEMA bench;
CREATE TABLE bench.product_plain (LIKE catalog.product INCLUDING ALL);
INSERT INTO bench.product_plain SELECT * FROM catalog.product ORDER BY id;
ALTER TABLE bench.product_plain
    ADD CONSTRAINT product_plain_category_id_fkey FOREIGN KEY (category_id)
    REFERENCES catalog.category (id) ON DELETE RESTRICT;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('bench.product_plain', 'id'),
                         (SELECT pg_catalog.max(id) FROM bench.product_plain));
EOF
VACUUM_T0=$(date +%s)
sql -c "VACUUM ANALYZE" >>"$LOG/baseline.log" 2>&1
t1=$(date +%s)
say "baseline table copied in $((VACUUM_T0 - t0)) s; VACUUM ANALYZE in $((t1 - VACUUM_T0)) s"

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
CREATE ROLE bench_editor LOGIN PASSWORD :'pw' IN ROLE catalog_editor;
CREATE ROLE bench_reader LOGIN PASSWORD :'pw' BYPASSRLS;
GRANT USAGE ON SCHEMA catalog TO bench_reader, bench_editor;
GRANT SELECT ON catalog.product, catalog.category TO bench_reader;
GRANT USAGE ON SCHEMA bench TO bench_editor;
GRANT SELECT, INSERT ON bench.product_plain TO bench_editor;
EOF

# Ids to read (published products of the loaded range) and categories to use.
"${PSQL[@]}" -d "$DB" -c "\\copy (SELECT id FROM catalog.product WHERE status = 'published' ORDER BY id) TO '$RUN/published.ids'"
"${PSQL[@]}" -d "$DB" -c "\\copy (SELECT id FROM catalog.category ORDER BY id) TO '$RUN/categories.ids'"
NPUB=$(wc -l <"$RUN/published.ids")
NCAT=$(wc -l <"$RUN/categories.ids")
[ "$NPUB" -ge 1 ] || die "no published product to read"
[ "$NCAT" -ge 1 ] || die "no category"
IDRANGE=$(val "SELECT pg_catalog.min(id) || '..' || pg_catalog.max(id) FROM catalog.product")
say "data: $NPROD products (ids $IDRANGE), $NPUB published, $NCAT categories"

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
declare -A EVT SEC
mkdir -p "$RUN/agg"
run_one() {
    local key=$1 workload=$2 threads=$3 user=$4
    shift 4
    local file=${key//\//_}
    local logf lat line tps nerr events arg args=()
    RUN_NO=$((RUN_NO + 1))
    # SKUs must be unique across the rounds of an arm: suffix the prefix.
    for arg in "$@"; do
        case $arg in --sku_prefix=*) args+=("$arg-R$RUN_NO") ;; *) args+=("$arg") ;; esac
    done
    set -- "${args[@]}"
    logf=$LOG/$file.r$RUN_NO.log
    lat=$RUN/agg/$file.r$RUN_NO
    sql -c "CHECKPOINT" >/dev/null
    if ! sysbench "$LUA" "${SB_COMMON[@]}" --threads="$threads" --pgsql-user="$user" \
        --pgsql-password="$PW" --workload="$workload" --latfile="$lat" "$@" run >"$logf" 2>&1 ||
        grep -q FATAL "$logf"; then
        tail -20 "$logf"
        die "sysbench run $key failed (log above)"
    fi
    # The last "transactions:" line is the measured part (after the checkpoint).
    line=$(grep 'transactions:' "$logf" | tail -n 1)
    tps=$(printf '%s\n' "$line" | sed -n 's/.*(\([0-9.]*\) per sec.).*/\1/p')
    events=$(printf '%s\n' "$line" | awk '{print $2}')
    nerr=$(grep 'ignored errors:' "$logf" | tail -n 1 | awk '{print $3}')
    [ -n "$tps" ] && [ -n "$events" ] || die "no TPS in $logf"
    [ "${nerr:-0}" = 0 ] || die "sysbench run $key had $nerr ignored errors"
    EVT[$key]=$(( ${EVT[$key]:-0} + events ))
    SEC[$key]=$(awk -v a="${SEC[$key]:-0}" -v e="$events" -v t="$tps" 'BEGIN { printf "%.6f", a + e / t }')
    say "$(printf '%-28s round %s: %10.1f TPS  (sysbench p95 %s ms)' "$key" "$RUN_NO" "$tps" \
        "$(grep '95th percentile:' "$logf" | tail -n 1 | awk '{print $3}')")"
}

# finish_key KEY: TPS[KEY] over all rounds, and exact nearest-rank
# percentiles P50/P95/P99[KEY] (ms) over every timed event of all rounds.
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
    rm -f "$RUN/agg/$file".r*
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

say "runs: $ROUNDS interleaved rounds per arm, each ${WARMUP} s warm-up + ${SECS} s measured; clients: $CLIENTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUNS_T0=$(date +%s)
for c in $CLIENTS; do
    run_pair "get_product/c$c" get_product "$c" bench_anon --ids_file="$RUN/published.ids" -- \
        "get_select/c$c" get_select "$c" bench_reader --ids_file="$RUN/published.ids"
done
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
for c in $CLIENTS; do
    run_single "select1/c$c" select1 "$c" bench_anon
done
RUNS_T1=$(date +%s)

# ---------------------------------------------------------------- report
PGVER=$(val "SELECT pg_catalog.version()")
COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | { grep -v "test/bench/results/" || true; } | wc -l)
NCPU=$(nproc)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
FS=$(df -PT "$DIR" | awk 'NR == 2 {print $2 " on " $1}')
SB_VER=$(sysbench --version)
ENVS=""
for v in CATALOG_BENCH_DIR CATALOG_BENCH_PGPORT CATALOG_BENCH_SECONDS CATALOG_BENCH_WARMUP CATALOG_BENCH_ROUNDS \
    CATALOG_BENCH_CLIENTS CATALOG_BENCH_PRODUCTS CATALOG_BENCH_SEED CATALOG_BENCH_KEEP; do
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

echo
echo "================================================================================"
echo "catalog benchmark results"
echo "================================================================================"
if [ -n "${MAKELEVEL:-}" ]; then INVOKED="make bench"; else INVOKED="test/bench/run.sh"; fi
echo "command:     cd $REPO && ${ENVS}$INVOKED    (make bench runs test/bench/run.sh)"
echo "sysbench:    sysbench test/bench/catalog_bench.lua ${SB_COMMON[*]} --threads=N --pgsql-user=ROLE --workload=W [...] run"
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
echo "             test/data/sample.sql in $LOAD_SECS s; bench.product_plain is a copy"
echo "runs:        $ROUNDS rounds per arm, interleaved with the other arm of the row (A B, B A, ...),"
echo "             each ${WARMUP} s warm-up + ${SECS} s measured; TPS = events / measured seconds over all"
echo "             rounds; latency = exact nearest-rank percentiles of every measured event (ms)"
echo "roles:       get_product as bench_anon (catalog_anon only); hand-written SELECT as"
echo "             bench_reader (table SELECT, BYPASSRLS); create_product and the plain INSERT"
echo "             as bench_editor (catalog_editor); SELECT 1 as bench_anon"
echo
printf '%-38s | %-33s | %-33s | %5s | %s\n' "" "ours" "baseline" "ratio" "target"
printf '%-38s | %9s %7s %7s %7s | %9s %7s %7s %7s | %5s | %s\n' "workload x clients" \
    TPS p50 p95 p99 TPS p50 p95 p99 "TPS" ""
printf '%s\n' "---------------------------------------+-----------------------------------+-----------------------------------+-------+---------------"
for c in $CLIENTS; do
    row "get_product / SELECT, c=$c" "get_product/c$c" "get_select/c$c" 1.0
done
for sc in on off; do
    t=0.9
    [ "$sc" = off ] && t=0.85
    for c in $CLIENTS; do
        row "create_product / INSERT, c=$c, sc=$sc" "create_product/c$c/$sc" "insert_plain/c$c/$sc" "$t"
    done
done
for c in $CLIENTS; do
    row "SELECT 1, c=$c" "select1/c$c" "" ""
done
echo
echo "ours = catalog_api.get_product / catalog_api.create_product; baseline = the hand-written"
echo "SELECT with join / a plain INSERT ... RETURNING * into bench.product_plain; sc ="
echo "synchronous_commit; ratio = ours TPS / baseline TPS; latencies in ms."
echo "targets: get_product >= 1.0x the hand-written SELECT; create_product >= 0.9x the plain"
echo "INSERT with synchronous_commit on, >= 0.85x with it off."
END_EPOCH=$(date +%s)
echo "time:        load $LOAD_SECS s, runs $((RUNS_T1 - RUNS_T0)) s, total $((END_EPOCH - START_EPOCH)) s"
