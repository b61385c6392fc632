#!/bin/bash
#
# test/bench/cost.sh: the CPU cost of one write, in instructions, counted by
# valgrind's callgrind.  `make bench-cost` runs it; not part of `make test`.
#
# Why: the throughput benchmark (run.sh) shares 2 cores between the client,
# the server and its background processes, and its rounds drift by 10 to
# 20%.  An instruction count does not drift: the same build, data and
# statements give the same count whatever else the machine runs, so a
# change of a few percent in the write path's cost is visible, and the
# count splits by function (what the audit trigger, the sealer and the
# rest each cost).  It is a proxy: cache misses, I/O and lock waits cost
# time and no instruction, so a ratio of counts is not a ratio of
# throughput.  Both are printed by `make bench`; this script prints the
# counts.
#
# How:
#   1. build and install the extension; initdb a throw-away cluster in
#      $CATALOG_COST_DIR (default /tmp/catalog-cost), as the postgres system
#      user when run as root; load $CATALOG_COST_PRODUCTS products (default
#      50,000) with test/data/sample.sql; add bench.product_plain (LIKE
#      catalog.product INCLUDING ALL, its foreign key and a copy of the
#      rows, as run.sh does) and the PL/pgSQL
#      audit design of run.sh (test/bench/audit_plpgsql.sql).  The baseline
#      table holds a copy of the products (test/bench/product_plain.sql):
#      inserts into an empty table, with shallow indexes, cost less.
#   2. each arm runs in single-user mode (postgres --single: one backend,
#      no background worker, nothing else counted) under callgrind: PREPARE
#      once, then EXECUTE per call, each call its own transaction
#      (synchronous_commit off).  An arm runs three times, with N1, N2 and
#      N3 = 2 N2 - N1 calls (default 200, 1,200 and 2,200); the cost of a
#      call is the difference of the first and last totals over N3 - N1, so
#      start-up, the first calls' cache loads and shutdown cancel out, and
#      the two steps (N1 to N2, N2 to N3) are compared: when they differ
#      by more than a percent or two, something other than the calls was
#      counted (the report prints the difference).  Before each run the
#      GIN pending lists are flushed and every audit row is sealed, and each
#      run ends by flushing the pending lists again (see FLUSH), so the
#      runs start alike and each pays for exactly its own rows.
#   3. sealing: after each audit-on arm's run, one catalog_api.audit_seal()
#      in its own single-user session seals that run's rows; its cost per
#      row is again the difference over N3 - N1.
#   4. the audit trigger's own share (catalog_audit_trigger, inclusive) is
#      read from both runs' profiles with callgrind_annotate, and again
#      differenced.
#
# Arms: plain = INSERT ... RETURNING * into bench.product_plain;
# create_off / create_on / create_plpgsql = catalog_api.create_product with
# the trigger product_audit disabled / as installed / replaced by the
# PL/pgSQL design; update_* likewise with catalog_api.update_product (a
# price change of an existing product, each run its own products).
#
# Environment: CATALOG_COST_DIR, CATALOG_COST_PRODUCTS, CATALOG_COST_N1,
# CATALOG_COST_N2, CATALOG_COST_KEEP=1 (keep the cluster and profiles),
# CATALOG_PG_BIN (another PostgreSQL 15 build).
#
set -euo pipefail

# say, die, as_root, as_svc_in, bootstrap_packages, PG_BIN and PG_CONFIG
# (CATALOG_PG_BIN) come from the harness.
# shellcheck source=../harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/common.sh"
# shellcheck source=scratch_cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/scratch_cluster.sh"
REPO=$REPO_ROOT
DIR=${CATALOG_COST_DIR:-/tmp/catalog-cost}
PRODUCTS=${CATALOG_COST_PRODUCTS:-50000}
N1=${CATALOG_COST_N1:-200}
N2=${CATALOG_COST_N2:-1200}
KEEP=${CATALOG_COST_KEEP:-0}
SEED=42
DB=catalog_cost
RESULTS=$REPO/test/bench/results

say() { printf '[cost %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[cost] error: %s\n' "$*" >&2; exit 1; }

for v in PRODUCTS N1 N2; do
    case ${!v} in '' | *[!0-9]*) die "$v must be a non-negative integer, not '${!v}'" ;; esac
done
[ "$N2" -gt "$N1" ] || die "CATALOG_COST_N2 must be greater than CATALOG_COST_N1"
N3=$((2 * N2 - N1))
[ "$PRODUCTS" -ge $((3 * (N1 + N2 + N3))) ] || die "CATALOG_COST_PRODUCTS must be at least 3 * (N1 + N2 + N3) (each update run changes products of its own)"
case $DIR in /*) ;; *) die "CATALOG_COST_DIR must be an absolute path" ;; esac

# ---------------------------------------------------------------- packages
bootstrap_packages postgresql-15 postgresql-server-dev-15 postgresql-contrib valgrind make gcc

claim_scratch_dir "$DIR"
results_tee "$RESULTS/cost.txt"

DATA=$DIR/data
SOCK=$DIR/sock
WORK=$DIR/work
STARTED=0
cleanup() {
    local rc=$?
    set +e
    if [ "$STARTED" -eq 1 ]; then
        as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1
    fi
    if [ "$KEEP" = 1 ]; then say "kept $DIR (CATALOG_COST_KEEP=1)"; else rm -rf "$DIR"; fi
    results_keep "$rc" "$RESULTS/cost.txt"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cluster
scratch_cluster "catalog cost benchmark (test/bench/cost.sh)"
"${PSQL[@]}" -d "$DB" -c "CREATE SCHEMA bench" -f "$REPO/test/bench/product_plain.sql" >>"$WORK/load.log" 2>&1 ||
    { tail -20 "$WORK/load.log"; die "the baseline table failed"; }
"${PSQL[@]}" -d "$DB" -f "$REPO/test/bench/audit_plpgsql.sql" >>"$WORK/load.log" 2>&1 ||
    { tail -20 "$WORK/load.log"; die "the PL/pgSQL audit design failed to install"; }
"${PSQL[@]}" -d "$DB" -c "VACUUM ANALYZE" >/dev/null
as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
STARTED=0

# ---------------------------------------------------------------- arms
# single FILE [callgrind-out]: run FILE's statements in a single-user
# backend, under callgrind when an output file is given; fails on an ERROR.
single() {
    local out=$WORK/single.out
    if [ $# -ge 2 ]; then
        as_svc_in / valgrind --tool=callgrind --callgrind-out-file="$2" \
            "$PG_BIN/postgres" --single -D "$DATA" -c synchronous_commit=off "$DB" \
            <"$1" >"$out" 2>"$WORK/valgrind.log"
    else
        as_svc_in / "$PG_BIN/postgres" --single -D "$DATA" -c synchronous_commit=off "$DB" <"$1" >"$out" 2>&1
    fi
    if grep -q 'ERROR:' "$out"; then
        grep -m 3 -A 2 'ERROR:' "$out"
        die "a statement of $1 failed"
    fi
}
# total FILE: the instructions a callgrind profile counted.
total() { awk '/^(summary|totals):/ && !done { print $2; done = 1 }' "$1"; }
# inclusive FILE FUNCTION: a function's inclusive count in a profile (awk
# reads to the end: an early exit would SIGPIPE callgrind_annotate).
inclusive() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk -v f=":$2 " '!done && index($0, f) { gsub(",", "", $1); print $1; done = 1 }'
}

DESC='A product created by the catalog benchmark: sturdy, light and plain text only, about one hundred and fifty characters long in total.'
ATTRS='{"color": "red", "size": "m", "weight_g": 250}'
# The same rows as run.sh's create workload: a SKU and name per call, a
# price and a category derived from the call's number.
gen() {
    local kind=$1 n=$2 base=$3
    case $kind in
        plain)
            echo "PREPARE w(text, text, numeric, bigint) AS INSERT INTO bench.product_plain (sku, name, price, category_id, description, status, currency, attributes, created_by, updated_by) VALUES (\$1, \$2, \$3, \$4, '$DESC', 'published', 'EUR', '$ATTRS', 'bench_editor', 'bench_editor') RETURNING *;" ;;
        create)
            echo "PREPARE w(text, text, numeric, bigint) AS SELECT catalog_api.create_product(\$1, \$2, \$3, \$4, '$DESC', 'published', 'EUR', '$ATTRS'::jsonb);" ;;
        update)
            echo "PREPARE w(bigint) AS SELECT catalog_api.update_product(id => p.id, expected_version => p.version, price => p.price + 1) FROM catalog.product p WHERE p.id = \$1;" ;;
    esac
    awk -v n="$n" -v base="$base" -v kind="$kind" 'BEGIN {
        for (i = 1; i <= n; i++) {
            k = base + i
            if (kind == "update")
                printf "EXECUTE w(%d);\n", k
            else
                printf "EXECUTE w('"'"'COST-%d'"'"', '"'"'Benchmark product 1-%d'"'"', %d.%02d, %d);\n", k, k % 30000, k % 999 + 1, k % 100, (k * 7919) % 492 + 1
        }
    }'
}
# Flushing the GIN pending lists: before each run, and again at the end of
# each measured run, so that every run pays for its own rows' GIN entries
# and only those.  Without the final flush, whether the last merge falls
# inside a run depends on a few bytes more or less per row, and one merge
# of the three GIN indexes moves a 1,000-call difference by 5%.
FLUSH="SELECT pg_catalog.gin_clean_pending_list(i.indexrelid) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND i.indrelid IN ('catalog.product'::regclass, 'bench.product_plain'::regclass);"
# prepare_arm TRIGGER: set product's audit trigger (on, off, plpgsql), flush
# the GIN pending lists and seal every audit row (uncounted).
prepare_arm() {
    {
        echo "DROP TRIGGER IF EXISTS product_audit_plpgsql ON catalog.product;"
        case $1 in
            on) echo "ALTER TABLE catalog.product ENABLE TRIGGER product_audit;" ;;
            off) echo "ALTER TABLE catalog.product DISABLE TRIGGER product_audit;" ;;
            plpgsql)
                echo "ALTER TABLE catalog.product DISABLE TRIGGER product_audit;"
                echo "CREATE TRIGGER product_audit_plpgsql AFTER INSERT OR UPDATE OR DELETE ON catalog.product FOR EACH ROW EXECUTE FUNCTION bench.audit_plpgsql_trigger();" ;;
        esac
        echo "$FLUSH"
        echo "SELECT catalog_api.audit_seal(1000000);"
        echo "CHECKPOINT;"
    } >"$WORK/prepare.sql"
    single "$WORK/prepare.sql"
}

declare -A COST TRIGGER SEAL SPREAD SEAL_SPREAD
BASE=10000000
# The update runs change products never changed before in the cost run
# (ids UPD_BASE + 1 on): a product updated again has dead versions in its
# pages and index entries, which would make later runs cost more.
UPD_BASE=0
# slope T1 T2 T3: instructions per call over the three runs, and the two
# steps' disagreement in tenths of a percent ("cost spread").
slope() {
    awk -v t1="$1" -v t2="$2" -v t3="$3" -v n1="$N1" -v n2="$N2" -v n3="$N3" 'BEGIN {
        c = (t3 - t1) / (n3 - n1); a = (t2 - t1) / (n2 - n1); b = (t3 - t2) / (n3 - n2)
        d = a - b; if (d < 0) d = -d
        printf "%d %d\n", c, (c > 0) ? int(1000 * d / c + 0.5) : 0
    }'
}
# arm NAME KIND TRIGGER: measure one arm (and its sealing, audit on).
arm() {
    local name=$1 kind=$2 trig=$3 n base r
    local -a tot=() seal=() trg=()
    for n in "$N1" "$N2" "$N3"; do
        prepare_arm "$trig"
        if [ "$kind" = update ]; then
            base=$UPD_BASE; UPD_BASE=$((UPD_BASE + n))
        else
            base=$BASE; BASE=$((BASE + n))
        fi
        { gen "$kind" "$n" "$base"; echo "$FLUSH"; } >"$WORK/$name.$n.sql"
        single "$WORK/$name.$n.sql" "$WORK/$name.$n.callgrind"
        tot+=("$(total "$WORK/$name.$n.callgrind")")
        if [ "$trig" = on ]; then
            trg+=("$(inclusive "$WORK/$name.$n.callgrind" catalog_audit_trigger)")
            echo "SELECT catalog_api.audit_seal(1000000);" >"$WORK/seal.sql"
            single "$WORK/seal.sql" "$WORK/$name.$n.seal.callgrind"
            grep -q "\"sealed\": $n[,}]" "$WORK/single.out" || die "sealing after $name did not seal $n rows"
            seal+=("$(total "$WORK/$name.$n.seal.callgrind")")
        fi
    done
    read -r COST[$name] SPREAD[$name] <<<"$(slope "${tot[@]}")"
    if [ "$trig" = on ]; then
        read -r SEAL[$name] SEAL_SPREAD[$name] <<<"$(slope "${seal[@]}")"
        read -r TRIGGER[$name] r <<<"$(slope "${trg[@]}")"
    fi
    say "$(printf '%-15s %10d instructions per call (steps differ by %d.%d%%)' "$name" "${COST[$name]}" \
        $((SPREAD[$name] / 10)) $((SPREAD[$name] % 10)))"
}

say "arms: $N1, $N2 and $N3 calls each, single-user postgres under callgrind"
arm plain plain off
arm create_off create off
arm create_on create on
arm create_plpgsql create plpgsql
arm update_off update off
arm update_on update on
arm update_plpgsql update plpgsql

# ---------------------------------------------------------------- report
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "================================================================================"
echo "catalog write cost, in instructions per call (callgrind)"
echo "================================================================================"
echo "command:  cd $REPO && make bench-cost    (test/bench/cost.sh)"
echo "commit:   $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$( [ -z "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] || echo ' + uncommitted changes')"
echo "server:   $("$PG_BIN/postgres" --version), single-user mode, synchronous_commit off"
echo "data:     $PRODUCTS products (test/data/sample.sql, seed $SEED); per call: (run of $N3 - run of $N1) / $((N3 - N1))"
echo "valgrind: $(valgrind --version)"
echo
# row LABEL COST SPREAD [NOTE]
row() { printf '%-44s %12d %6d.%d%%%s\n' "$1" "$2" $(($3 / 10)) $(($3 % 10)) "${4:+   $4}"; }
printf '%-44s %12s %8s\n' "arm" "instr/call" "steps"
row "plain INSERT ... RETURNING *" "${COST[plain]}" "${SPREAD[plain]}"
row "create_product, audit off" "${COST[create_off]}" "${SPREAD[create_off]}"
row "create_product, audit on (C trigger)" "${COST[create_on]}" "${SPREAD[create_on]}" "(the trigger ${TRIGGER[create_on]} of it)"
row "  + sealing, per row (background worker)" "${SEAL[create_on]}" "${SEAL_SPREAD[create_on]}"
row "create_product, PL/pgSQL audit trigger" "${COST[create_plpgsql]}" "${SPREAD[create_plpgsql]}"
row "update_product, audit off" "${COST[update_off]}" "${SPREAD[update_off]}"
row "update_product, audit on (C trigger)" "${COST[update_on]}" "${SPREAD[update_on]}" "(the trigger ${TRIGGER[update_on]} of it)"
row "  + sealing, per row (background worker)" "${SEAL[update_on]}" "${SEAL_SPREAD[update_on]}"
row "update_product, PL/pgSQL audit trigger" "${COST[update_plpgsql]}" "${SPREAD[update_plpgsql]}"
echo "(steps: how far the per-call cost of the runs $N1 -> $N2 and $N2 -> $N3 differ)"
echo
for w in create update; do
    off=${COST[${w}_off]}
    on=$((COST[${w}_on] + SEAL[${w}_on]))
    pl=${COST[${w}_plpgsql]}
    ours=$((on - off))
    theirs=$((pl - off))
    echo "$w: audit costs $ours instructions per row, $(pct "$ours" "$on") of the audited write;" \
        "the PL/pgSQL design costs $theirs, $(pct "$theirs" "$pl"); ours / PL/pgSQL = $(ratio "$ours" "$theirs")"
done
echo "create_product / plain INSERT (instructions, audit on, sealing included): $(ratio "${COST[plain]}" "$((COST[create_on] + SEAL[create_on]))")x the INSERT's throughput if time followed instructions"
echo
echo "Instructions are not time: cache misses, I/O, WAL flushes and lock waits"
echo "are not counted.  make bench measures throughput; this counts the work."
