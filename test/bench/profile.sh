#!/bin/bash
#
# test/bench/profile.sh: where the time of an audited create_product goes,
# in CPU time, under load.  `make bench-profile` runs it; not part of
# `make test`.
#
# Why: cost.sh counts instructions in one backend, which cache misses,
# SHA-256 instructions of the CPU, WAL writing and the background sealer's
# share of the cores do not follow; run.sh measures throughput but not
# where it goes.  This runs the write at 8 clients, as run.sh does, and
# samples every CPU of the machine with perf while it runs, so the shares
# it prints are shares of all the work the machine did for the calls: the
# client (pgbench), the backends, the sealer, the WAL writer.
#
# How:
#   1. build and install the extension; initdb a throw-away cluster in
#      $CATALOG_PROFILE_DIR (default /tmp/catalog-profile), as the postgres
#      system user when run as root; load $CATALOG_PROFILE_PRODUCTS products
#      (default 50,000) with test/data/sample.sql, audit triggers disabled
#      (the fixture is not history).
#   2. six pgbench runs of $CATALOG_PROFILE_SECONDS seconds (default 15),
#      8 clients, 2 threads, prepared statements, synchronous_commit off,
#      each call its own transaction: create_product with the audit trigger
#      on, off, on, off, on, off (the background sealer runs throughout, as
#      in production).  Before each run: every audit row sealed, the GIN
#      pending lists flushed, CHECKPOINT.  The rows are run.sh's: the same
#      SKU, name, description and attributes (BENCH-T<client>-<n> and
#      "Benchmark product <client>-<n>", n from a sequence: no new word for
#      the typo dictionary per call, and far fewer than the 10 digits that
#      would read as a phone number and get masked).
#   3. during the second run of each arm, `perf record -a -g` samples
#      every CPU at 999 Hz for all but the first and last 2 seconds; a
#      function's CPU time per transaction is the samples whose call stack
#      holds it (inclusive; a sample counts once per function however deep
#      the recursion), 1/999 s each, over the window's transactions (the
#      run's TPS times the window), printed for both arms side by side.  Functions of the postgres binary that Debian strips
#      (static ones) are not named; their time shows under their callers.
#
# Environment: CATALOG_PROFILE_DIR, CATALOG_PROFILE_PRODUCTS,
# CATALOG_PROFILE_SECONDS, CATALOG_PROFILE_KEEP=1 (keep the cluster and the
# perf data), CATALOG_PG_BIN (another PostgreSQL 15 build).
#
set -euo pipefail

# say, die, as_root, as_svc_in, bootstrap_packages, PG_BIN and PG_CONFIG
# (CATALOG_PG_BIN) come from the harness.
# shellcheck source=../harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../harness/common.sh"
# shellcheck source=scratch_cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/scratch_cluster.sh"
REPO=$REPO_ROOT
DIR=${CATALOG_PROFILE_DIR:-/tmp/catalog-profile}
PRODUCTS=${CATALOG_PROFILE_PRODUCTS:-50000}
SECONDS_PER_RUN=${CATALOG_PROFILE_SECONDS:-15}
KEEP=${CATALOG_PROFILE_KEEP:-0}
SEED=42
DB=catalog_profile
RESULTS=$REPO/test/bench/results

say() { printf '[profile %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[profile] error: %s\n' "$*" >&2; exit 1; }

for v in PRODUCTS SECONDS_PER_RUN; do
    case ${!v} in '' | *[!0-9]*) die "$v must be a non-negative integer, not '${!v}'" ;; esac
done
[ "$PRODUCTS" -ge 1000 ] || die "CATALOG_PROFILE_PRODUCTS must be at least 1000 (the rows need categories)"
[ "$SECONDS_PER_RUN" -ge 8 ] || die "CATALOG_PROFILE_SECONDS must be at least 8 (perf skips 2 s at each end)"
case $DIR in /*) ;; *) die "CATALOG_PROFILE_DIR must be an absolute path" ;; esac

# ---------------------------------------------------------------- packages
bootstrap_packages postgresql-15 postgresql-server-dev-15 postgresql-contrib linux-perf make gcc perl
PERF=$(command -v perf) || die "perf not found after installing linux-perf"
# perf samples other users' processes only as root (or with a low
# perf_event_paranoid, which the harness does not change)
is_root || [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -le 0 ] ||
    die "perf cannot sample the server's processes: run as root, or lower kernel.perf_event_paranoid"

claim_scratch_dir "$DIR"
results_tee "$RESULTS/profile.txt"

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
    if [ "$KEEP" = 1 ]; then say "kept $DIR (CATALOG_PROFILE_KEEP=1)"; else rm -rf "$DIR"; fi
    results_keep "$rc" "$RESULTS/profile.txt"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cluster
scratch_cluster "catalog profile benchmark (test/bench/profile.sh)"
"${PSQL[@]}" -d "$DB" -c "VACUUM ANALYZE" >/dev/null
CATEGORIES=$("${PSQL[@]}" -At -d "$DB" -c "SELECT count(*) FROM catalog.category")
[ "$CATEGORIES" -ge 1 ] || die "the sample loaded no category"

# ---------------------------------------------------------------- runs
# run.sh's create row (catalog_bench.lua): SKU and name from the client
# and a number (a sequence: unique across runs), a random category.
"${PSQL[@]}" -d "$DB" -c "CREATE SEQUENCE public.profile_sku"
cat >"$WORK/create.sql" <<EOF
\\set c random(1, $CATEGORIES)
SELECT catalog_api.create_product('BENCH-T' || :client_id || '-' || s.n, 'Benchmark product ' || :client_id || '-' || s.n, 219.01, :c, 'A product created by the catalog benchmark: sturdy, light and plain text only, about one hundred and fifty characters long in total.', 'published', 'EUR', '{"color": "red", "size": "m", "weight_g": 250}'::jsonb) FROM (SELECT pg_catalog.nextval('public.profile_sku') AS n) s;
EOF
chmod 644 "$WORK/create.sql"
FLUSH="SELECT pg_catalog.gin_clean_pending_list(i.indexrelid) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND i.indrelid = 'catalog.product'::regclass"

# run ARM PERF: one pgbench run with the audit trigger on or off; with PERF
# 1, perf samples the machine meanwhile (WORK/perf.ARM.data, the run's
# processes in WORK/pids.ARM).  Prints the TPS.
run() {
    local arm=$1 sample=$2 out=$WORK/pgbench.$1.$RANDOM.log perf_pid=
    case $arm in
        on) "${PSQL[@]}" -d "$DB" -c "ALTER TABLE catalog.product ENABLE TRIGGER product_audit" ;;
        off) "${PSQL[@]}" -d "$DB" -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" ;;
    esac
    "${PSQL[@]}" -d "$DB" -c "SELECT catalog_api.audit_seal(1000000)" -c "$FLUSH" -c "CHECKPOINT" >/dev/null
    if [ "$sample" = 1 ]; then
        # the processes of this run: the server's (postmaster, backends,
        # sealer, WAL writer...) and pgbench's, listed once pgbench is
        # connected; samples of any other process on the machine are
        # counted apart
        (sleep 2
         { head -1 "$DATA/postmaster.pid"
           pgrep -P "$(head -1 "$DATA/postmaster.pid")"
           pgrep -f -- "$WORK/create.sql"; } >"$WORK/pids.$arm" || true
         exec "$PERF" record -a -g -F 999 -o "$WORK/perf.$arm.data" -- sleep $((SECONDS_PER_RUN - 4))) \
            >"$WORK/perf.$arm.log" 2>&1 &
        perf_pid=$!
    fi
    as_svc_in "$WORK" env PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" -h "$SOCK" -U postgres \
        -n -M prepared -c 8 -j 2 -T "$SECONDS_PER_RUN" -f "$WORK/create.sql" "$DB" >"$out" 2>&1 ||
        { tail -20 "$out" >&2; die "pgbench failed (arm $arm)"; }
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || { cat "$WORK/perf.$arm.log" >&2; die "perf record failed"; }
    fi
    grep -q 'number of failed transactions: 0 ' "$out" || { tail -20 "$out" >&2; die "transactions failed (arm $arm)"; }
    awk '/^tps = / { print $3 }' "$out"
}

say "runs: 8 clients, ${SECONDS_PER_RUN} s each, audit on, off, on and off (both profiled), on, off"
declare -a TPS_ON TPS_OFF
TPS_ON+=("$(run on 0)"); TPS_OFF+=("$(run off 0)")
TPS_ON+=("$(run on 1)"); TPS_OFF+=("$(run off 1)")
TPS_ON+=("$(run on 0)"); TPS_OFF+=("$(run off 0)")
for t in "${TPS_ON[@]}" "${TPS_OFF[@]}"; do
    case $t in '' | *[!0-9.]*) die "a run did not report its throughput" ;; esac
done
"${PSQL[@]}" -d "$DB" -c "SELECT catalog_api.audit_seal(1000000)" >/dev/null
VERIFIED=$("${PSQL[@]}" -At -d "$DB" -c "SELECT catalog_api.audit_verify()->>'ok'")
[ "$VERIFIED" = "true" ] || die "audit_verify did not pass after the runs"

# ---------------------------------------------------------------- report
for arm in on off; do
    say "perf script: $WORK/perf.$arm.data"
    "$PERF" script -i "$WORK/perf.$arm.data" -F comm,pid,ip,sym 2>/dev/null >"$WORK/perf.$arm.txt" ||
        die "perf script failed"
    [ "$(wc -l <"$WORK/pids.$arm")" -ge 3 ] || die "the processes of the profiled run ($arm) were not found"
done

cat <<EOF

================================================================================
catalog: where the CPU time of an audited create_product goes (perf, all CPUs)
================================================================================
command:  cd $REPO && make bench-profile    (test/bench/profile.sh)
commit:   $(cd "$REPO" && git rev-parse HEAD 2>/dev/null || echo unknown)
server:   $("$PG_BIN/postgres" --version), synchronous_commit off
machine:  $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); client and server share them
data:     $PRODUCTS products (test/data/sample.sql, seed $SEED); pgbench -c 8 -j 2 -M prepared, ${SECONDS_PER_RUN} s per run

throughput (TPS), audit on:  ${TPS_ON[*]}
throughput (TPS), audit off: ${TPS_OFF[*]}
EOF
awk -v on="${TPS_ON[*]}" -v off="${TPS_OFF[*]}" 'BEGIN {
    n = split(on, a, " "); split(off, b, " ")
    for (i = 1; i <= n; i++) { son += a[i]; soff += b[i] }
    printf "cost of the audit in throughput: %.1f%% (sum of the on runs against the off runs)\n\n", 100 * (1 - son / soff)
}'

# CPU time per transaction by function, audit on against off: a sample
# counts for every function its stack holds (inclusive), a sample is
# 1/999 s of one CPU, and the transactions of the sampled window are the
# run's TPS times its length (the runs are steady by then).
perl -e '
    my ($window, $tps_on, $tps_off, @files) = @ARGV;
    my @watch = (
        ["create_product_impl",        "create_product (the API function, inclusive)"],
        ["ExecConstraints",            "  core: CHECK constraints, re-read per statement"],
        ["ExecComputeStoredGenerated", "  core: the generated search_doc column"],
        ["AfterTriggerEndQuery",       "  AFTER triggers: audit, search terms, foreign key"],
        ["catalog_audit_trigger",      "    the audit trigger"],
        ["push_column",                "      images and masking"],
        ["AuditRowHash",               "      row hash (canonical text and SHA-256)"],
        ["catalog_search_terms_collect", "    the search terms trigger (typo dictionary)"],
        ["SPI_execute_snapshot",       "    the foreign key check (core runs it through SPI)"],
        ["seal_pass",                  "the sealer (background worker, one pass a second)"],
        ["ExecInsertIndexTuples",      "index entries of every row (product, audit, seal, dictionary)"],
        ["ginInsertCleanup",           "GIN pending-list merges"],
        ["XLogInsert",                 "WAL records (all processes)"],
        ["WalWriterMain",              "the WAL writer"],
        ["stringToNode",               "parsing stored expressions (all callers)"],
        ["[pgbench]",                  "the client, pgbench"],
    );
    sub profile {
        my ($pids, $txt) = @_;
        open(my $pf, "<", $pids) or die "$pids: $!\n";
        my %ours = map { chomp; ($_ => 1) } grep { /^\d+$/ } <$pf>;
        close($pf);
        my %hits;
        my ($total, $others, $comm, $pid) = (0, 0);
        my @stack;
        my $flush = sub {
            return unless defined $comm;
            if ($ours{$pid}) {
                $total++;
                $hits{"[pgbench]"}++ if $comm eq "pgbench";
                my %seen;
                for my $f (@stack) { $hits{$f}++ unless $seen{$f}++ }
            } else {
                $others++;
            }
            @stack = ();
            undef $comm;
        };
        open(my $fh, "<", $txt) or die "$txt: $!\n";
        while (my $l = <$fh>) {
            chomp $l;
            if ($l =~ /^\s*$/) { $flush->(); next }
            if (!defined $comm) { ($comm, $pid) = $l =~ /^\s*(.*?)\s+(\d+)\s*$/ or die "perf script: $l\n"; next }
            my @p = split " ", $l;
            push @stack, $p[-1] if @p >= 2;
        }
        $flush->();
        close($fh);
        die "perf recorded no sample of the run in $txt\n" unless $total;
        return (\%hits, $total, $others);
    }
    my ($on, $n_on, $x_on) = profile($files[0], $files[1]);
    my ($off, $n_off, $x_off) = profile($files[2], $files[3]);
    # ms of CPU per transaction: samples / 999 Hz / (TPS * window) * 1000
    my $ms_on = sub { 1000 * ($_[0] // 0) / 999 / ($tps_on * $window) };
    my $ms_off = sub { 1000 * ($_[0] // 0) / 999 / ($tps_off * $window) };
    printf "profiled windows: %d s of the second run of each arm; %d and %d samples of the runs'"'"' own\n", $window, $n_on, $n_off;
    printf "processes (%d and %d more of other processes on the machine, not counted)\n\n", $x_on // 0, $x_off // 0;
    printf "%-64s %9s %9s %9s\n", "CPU per transaction, ms (inclusive)", "audit on", "off", "on - off";
    printf "%-64s %9.3f %9.3f %9.3f\n", "all the run'"'"'s processes", $ms_on->($n_on), $ms_off->($n_off), $ms_on->($n_on) - $ms_off->($n_off);
    for my $w (@watch) {
        my ($a, $b) = ($ms_on->($on->{$w->[0]}), $ms_off->($off->{$w->[0]}));
        printf "%-64s %9.3f %9.3f %9.3f\n", substr($w->[1], 0, 64), $a, $b, $a - $b;
    }
' "$((SECONDS_PER_RUN - 4))" "${TPS_ON[1]}" "${TPS_OFF[1]}" \
    "$WORK/pids.on" "$WORK/perf.on.txt" "$WORK/pids.off" "$WORK/perf.off.txt"
