#!/bin/bash
#
# test/bench/search_cost.sh: the CPU cost of a search, in instructions, of
# two builds side by side (`make bench-search-cost BASE=<commit>`); not part
# of `make test`.
#
#   test/bench/search_cost.sh BASE [NEW]
#
# BASE and NEW are commits of this repository (NEW defaults to HEAD).  Why:
# the throughput benchmark (run.sh) shares 2 cores between client, server
# and background processes, and runs on different days (or machines) differ
# by more than a change to the search does; callgrind's instruction count
# of the same statements on the same data does not drift.  It is a proxy:
# cache misses and I/O cost time and no instruction.
#
# How:
#   1. each commit is exported (git archive) into $DIR/src-{base,new}, built
#      and installed into a private copy of the PostgreSQL 15 installation
#      ($DIR/inst-{base,new}; the system one is not touched);
#   2. each build gets its own cluster with $CATALOG_SEARCH_COST_PRODUCTS
#      products (default 200,000) from its own test/data/sample.sql (seed
#      42; the audit triggers disabled: a fixture is not history), VACUUM
#      ANALYZE;
#   3. the query set (test/bench/search_cost_queries.sql, about 260
#      searches of six kinds) is generated on both clusters and must be
#      identical (same data), and both builds must return documents of the
#      same lengths for it, give or take what the builds' cursors differ by;
#   4. each build runs the set as catalog_anon in single-user mode (one
#      backend, nothing else counted) under callgrind, once with the set
#      once and once with it three times; the cost of a search is the
#      difference of the two totals over twice the number of queries, so
#      start-up, first-call cache loads and shutdown cancel out.
#
# Environment: CATALOG_SEARCH_COST_DIR (default /tmp/catalog-search-cost),
# CATALOG_SEARCH_COST_PRODUCTS, CATALOG_SEARCH_COST_KEEP=1 (keep the
# clusters and profiles).  About 15 minutes at 200,000 products.
#
set -euo pipefail

# shellcheck source=../harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/common.sh"
REPO=$REPO_ROOT
DIR=${CATALOG_SEARCH_COST_DIR:-/tmp/catalog-search-cost}
PRODUCTS=${CATALOG_SEARCH_COST_PRODUCTS:-200000}
KEEP=${CATALOG_SEARCH_COST_KEEP:-0}
RESULTS=$REPO/test/bench/results
DB=catalog_search_cost

say() { printf '[search-cost %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[search-cost] error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 BASE [NEW] (commits)"
BASE=$(git -C "$REPO" rev-parse --verify "$1^{commit}") || die "no commit $1"
NEW=$(git -C "$REPO" rev-parse --verify "${2:-HEAD}^{commit}") || die "no commit ${2:-HEAD}"
case $PRODUCTS in '' | *[!0-9]*) die "CATALOG_SEARCH_COST_PRODUCTS must be a number" ;; esac
[ "$PRODUCTS" -ge 10000 ] || die "CATALOG_SEARCH_COST_PRODUCTS must be at least 10000"
case $DIR in /*) ;; *) die "CATALOG_SEARCH_COST_DIR must be an absolute path" ;; esac
PG_LIB=$(dirname "$PG_BIN")
PG_SHARE=/usr/share/postgresql/15

bootstrap_packages postgresql-15 postgresql-server-dev-15 postgresql-contrib valgrind make gcc
claim_scratch_dir "$DIR"
results_tee "$RESULTS/search-cost.txt"

cleanup() {
    local rc=$?
    set +e
    for side in base new; do
        if [ -f "$DIR/data-$side/postmaster.pid" ]; then
            as_svc_in / "$DIR/inst-$side$PG_LIB/bin/pg_ctl" -D "$DIR/data-$side" -m fast -w stop >/dev/null 2>&1
        fi
    done
    if [ "$KEEP" = 1 ]; then say "kept $DIR (CATALOG_SEARCH_COST_KEEP=1)"; else rm -rf "$DIR"; fi
    results_keep "$rc" "$RESULTS/search-cost.txt"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

find "$DIR" -mindepth 1 -maxdepth 1 ! -name .catalog-scratch -exec rm -rf {} +
say "base $BASE, new $NEW, $PRODUCTS products"

# ---------------------------------------------------------------- builds
for side in base new; do
    commit=$BASE
    [ "$side" = new ] && commit=$NEW
    src=$DIR/src-$side
    inst=$DIR/inst-$side
    mkdir -p "$src" "$inst$(dirname "$PG_LIB")" "$inst$(dirname "$PG_SHARE")"
    git -C "$REPO" archive "$commit" | tar -x -C "$src"
    cp -a "$PG_LIB" "$inst$(dirname "$PG_LIB")/"
    cp -a "$PG_SHARE" "$inst$(dirname "$PG_SHARE")/"
    say "build $side ($commit)"
    if ! (cd "$src" && make -s PG_CONFIG="$PG_CONFIG" && make -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$inst") \
        >"$DIR/build-$side.log" 2>&1; then
        tail -30 "$DIR/build-$side.log"
        die "build of $side failed"
    fi
done
chmod -R a+rX "$DIR"

# ---------------------------------------------------------------- clusters
load() {
    local side=$1 port=$2 bin=$DIR/inst-$1$PG_LIB/bin data=$DIR/data-$1
    mkdir -p "$data" "$DIR/sock-$side" "$DIR/log-$side"
    chmod 700 "$data"
    chown_svc "$data" "$DIR/sock-$side" "$DIR/log-$side"
    as_svc_in / "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust \
        >"$DIR/initdb-$side.log" 2>&1 || { cat "$DIR/initdb-$side.log"; return 1; }
    cat >>"$data/postgresql.conf" <<EOF

# catalog search cost benchmark (test/bench/search_cost.sh)
port = $port
listen_addresses = ''
unix_socket_directories = '$DIR/sock-$side'
shared_preload_libraries = 'catalog'
shared_buffers = 512MB
max_wal_size = 8GB
autovacuum = off
catalog.audit_seal_database = '$DB'
EOF
    as_svc_in / "$bin/pg_ctl" -D "$data" -l "$DIR/log-$side/server.log" -w start >/dev/null
    as_svc_in / "$bin/psql" -X -q -h "$DIR/sock-$side" -p "$port" -U postgres -d postgres \
        -c "CREATE DATABASE $DB"
    as_svc_in / "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock-$side" -p "$port" -U postgres -d "$DB" \
        -c "SET client_min_messages = warning" -c "CREATE EXTENSION catalog CASCADE" \
        -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" \
        -c "ALTER TABLE catalog.category DISABLE TRIGGER category_audit"
    as_svc_in "$DIR/src-$side" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -v products="$PRODUCTS" -v seed=42 \
        -h "$DIR/sock-$side" -p "$port" -U postgres -d "$DB" -f test/data/sample.sql >"$DIR/load-$side.log" 2>&1
    as_svc_in / "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock-$side" -p "$port" -U postgres -d "$DB" \
        -c "VACUUM ANALYZE"
}
say "load: $PRODUCTS products into each build's cluster"
load base 55491 & pid_base=$!
load new 55492 & pid_new=$!
wait "$pid_base" || die "loading the base cluster failed (see $DIR/load-base.log)"
wait "$pid_new" || die "loading the new cluster failed (see $DIR/load-new.log)"

psql_side() {
    local side=$1 port=55491
    shift
    [ "$side" = new ] && port=55492
    as_svc_in / "$DIR/inst-$side$PG_LIB/bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "$DIR/sock-$side" -p "$port" -U postgres -d "$DB" "$@"
}

# ---------------------------------------------------------------- queries
for side in base new; do
    psql_side "$side" -f "$REPO/test/bench/search_cost_queries.sql" >"$DIR/queries-$side.sql"
done
cmp -s "$DIR/queries-base.sql" "$DIR/queries-new.sql" ||
    die "the two clusters gave different query sets (their data differ)"
NQ=$(grep -c '^SELECT' "$DIR/queries-new.sql")
[ "$NQ" -gt 0 ] || die "no query generated"
for side in base new; do
    { echo "SET ROLE catalog_anon;"; cat "$DIR/queries-$side.sql"; } >"$DIR/check-$side.sql"
    chmod 644 "$DIR/check-$side.sql"
    psql_side "$side" -f "$DIR/check-$side.sql" >"$DIR/lengths-$side.txt"
done
# The same items in both: lengths may differ only by what the cursors do
# (a build that signs more into its cursor writes a longer one).
perl -e '
    open(my $a, "<", $ARGV[0]) or die; open(my $b, "<", $ARGV[1]) or die;
    my @a = <$a>; my @b = <$b>; my $far = 0;
    die "different numbers of results\n" if @a != @b;
    for my $i (0 .. $#a) { $far++ if abs($a[$i] - $b[$i]) > 64 }
    die "$far of ", scalar(@a), " documents differ in length by more than 64 bytes\n" if $far;
' "$DIR/lengths-base.txt" "$DIR/lengths-new.txt" || die "the builds return different results"
for side in base new; do
    as_svc_in / "$DIR/inst-$side$PG_LIB/bin/pg_ctl" -D "$DIR/data-$side" -m fast -w stop >/dev/null
done

# ---------------------------------------------------------------- callgrind
for n in 1 3; do
    {
        echo "SET catalog.search_timeout = 600000;"
        echo "SET ROLE catalog_anon;"
        for _ in $(seq 1 "$n"); do cat "$DIR/queries-new.sql"; done
    } >"$DIR/run-$n.sql"
    chmod 644 "$DIR/run-$n.sql"
done
mkdir -p "$DIR/cg"
chown_svc "$DIR/cg"
count() {
    local side=$1 n=$2
    as_svc_in / valgrind --tool=callgrind --callgrind-out-file="$DIR/cg/$side.$n.out" \
        "$DIR/inst-$side$PG_LIB/bin/postgres" --single -D "$DIR/data-$side" "$DB" \
        <"$DIR/run-$n.sql" >"$DIR/cg/$side.$n.log" 2>&1
    if grep -q 'ERROR' "$DIR/cg/$side.$n.log"; then
        grep -m 3 'ERROR' "$DIR/cg/$side.$n.log" >&2
        return 1
    fi
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$DIR/cg/$side.$n.log"
}
say "callgrind: $NQ searches once and three times, each build (the two builds in parallel)"
( count base 1 >"$DIR/cg/base.1.total" && count base 3 >"$DIR/cg/base.3.total" ) & pid_base=$!
( count new 1 >"$DIR/cg/new.1.total" && count new 3 >"$DIR/cg/new.3.total" ) & pid_new=$!
wait "$pid_base" || die "the base build's run failed (see $DIR/cg)"
wait "$pid_new" || die "the new build's run failed (see $DIR/cg)"

per_query() {
    local t1 t3
    t1=$(cat "$DIR/cg/$1.1.total")
    t3=$(cat "$DIR/cg/$1.3.total")
    [ -n "$t1" ] && [ -n "$t3" ] || die "no callgrind total for $1"
    echo $(((t3 - t1) / (2 * NQ)))
}
B=$(per_query base)
N=$(per_query new)
echo
echo "search cost in instructions (callgrind), $PRODUCTS products, $NQ searches as catalog_anon"
echo "command: test/bench/search_cost.sh $1 ${2:-HEAD}"
printf '  base %s  %12d instructions per search\n' "${BASE:0:7}" "$B"
printf '  new  %s  %12d instructions per search\n' "${NEW:0:7}" "$N"
printf '  new / base: %s\n' "$(perl -e 'printf "%.4f", $ARGV[0] / $ARGV[1]' "$N" "$B")"
