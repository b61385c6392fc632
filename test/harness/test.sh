#!/usr/bin/env bash
# test.sh: `make test`: every suite against throw-away servers, with one
# closing line "N passed, N failed" and a non-zero exit on any failure.
#
#   0. install missing Debian packages (valgrind too);
#   1. copy the repository's files (check_repo.pl list: git's tracked and
#      new, non-ignored files) into a scratch directory under /tmp owned by
#      the service user, build there (a full build every time, output
#      captured) and `make install`;
#   a. repository checks: no emoji in any file, nor in the last 50 commit
#      messages, no compiler warning, src/ compiling against PostgreSQL 17's
#      headers (test/harness/compile_pg17.sh), and a self-test of the emoji
#      checker;
#   b. pg_regress and pg_isolation_regress (`make installcheck`, which
#      starts its own preloaded temp instances), one check per test;
#   c. pgTAP: a throw-away cluster in the scratch directory (Unix socket
#      only, port $CATALOG_TEST_PGPORT, default 54330, test/catalog.conf
#      appended), database catalog_test with pgtap and catalog, roles
#      authenticator and regress_app; pg_prove --verbose test/pgtap/*.sql,
#      one check per TAP line, one failure per file whose plan failed;
#   d. Perl TAP tests test/t/*.pl (when any) with prove -v against the same
#      cluster (PGHOST, PGPORT, PGDATABASE=catalog_test, PGUSER exported);
#   e. valgrind memcheck: the pg_regress inputs and the pgTAP files again
#      on a server run under valgrind (port $CATALOG_TEST_VG_PGPORT, default
#      54331), one check each, and one for the errors of the extension's
#      code in its logs (test/harness/valgrind_report.pl);
#   f. libFuzzer: `make fuzz` for each target of test/fuzz, for
#      $CATALOG_TEST_FUZZ_SECONDS (default 60) each, one check per target; a
#      crash, sanitizer report or broken invariant fails it and the
#      reproducer stays in the scratch directory;
#   g. `make run` and `make stop` in another copy, on ports of their own
#      ($CATALOG_TEST_RUN_PGPORT, default 54340, and the next), with a
#      2,000-product sample: a first and a second run, links planted in
#      .run/ written through only as the service user, a port with a leading
#      zero refused, PgBouncer's port held by another program refused before
#      any password goes over TCP.
#
# Every suite runs even when an earlier one failed; a suite that cannot start
# counts as a failure.  The cluster is stopped on exit; the scratch directory
# is removed on success and kept (path printed) on failure.

set -uo pipefail
# shellcheck source=test/harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TEST_PORT=${CATALOG_TEST_PGPORT:-54330}
case $TEST_PORT in '' | *[!0-9]*) die "CATALOG_TEST_PGPORT must be a number" ;; esac
VG_PORT=${CATALOG_TEST_VG_PGPORT:-54331}
case $VG_PORT in '' | *[!0-9]*) die "CATALOG_TEST_VG_PGPORT must be a number" ;; esac
FUZZ_SECONDS=${CATALOG_TEST_FUZZ_SECONDS:-60}
# (0 would be no limit at all for libFuzzer)
case $FUZZ_SECONDS in '' | 0* | *[!0-9]*) die "CATALOG_TEST_FUZZ_SECONDS must be a positive number" ;; esac
PGXS_PERL_LIB=$(dirname "$PG_BIN")/lib/pgxs/src/test/perl
PG_REGRESS_BIN=$(dirname "$PG_BIN")/lib/pgxs/src/test/regress/pg_regress
PG_ISOLATION_BIN=$(dirname "$PG_BIN")/lib/pgxs/src/test/isolation/pg_isolation_regress

PASSED=0
FAILED=0
FAILURES=()
SCRATCH=
SRC=
RUN_SRC=
SQUATTER_PID_FILE=
CLUSTER_DATA=
START=$(date +%s)

section() {
    printf '\n==== %s ====\n' "$*"
}

# pass NAME / fail NAME: record one check.
pass() {
    PASSED=$((PASSED + 1))
    say "ok: $*"
}
fail() {
    FAILED=$((FAILED + 1))
    FAILURES+=("$*")
    say "FAILED: $*"
}

# add_counts NAME OK BAD: record a suite's counts.
add_counts() {
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    [ "$3" -eq 0 ] || FAILURES+=("$1: $3 failed")
    say "$1: $2 ok, $3 not ok"
}

cleanup() {
    local sq
    if [ -n "$CLUSTER_DATA" ]; then
        pg_stop "$CLUSTER_DATA" fast >/dev/null 2>&1 || true
        CLUSTER_DATA=
    fi
    # section g: the copy's servers and the program holding its port
    if [ -n "$RUN_SRC" ]; then
        (cd "$RUN_SRC" && timeout -k 10 60 make -s stop) >/dev/null 2>&1 || true
        RUN_SRC=
    fi
    if [ -n "$SQUATTER_PID_FILE" ]; then
        if sq=$(pid_of_pidfile "$SQUATTER_PID_FILE" perl); then
            kill "$sq" 2>/dev/null || true
        fi
        SQUATTER_PID_FILE=
    fi
}
# on_signal NAME: stop the running step at once, then close as usual
# (cluster stopped, summary printed) with a failure for the interruption.
# shellcheck disable=SC2317 # invoked by trap
on_signal() {
    trap - INT TERM
    echo
    say "interrupted by SIG$1"
    stop_step
    fail "interrupted by SIG$1"
    summary
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# show_file FILE [MAX]: print a file (at most MAX lines) into the log.
show_file() {
    local f=$1 max=${2:-400} n
    [ -s "$f" ] || return 0
    n=$(wc -l <"$f")
    printf -- '---- %s (%s lines) ----\n' "$f" "$n"
    head -n "$max" "$f"
    [ "$n" -le "$max" ] || printf -- '---- (first %s lines shown) ----\n' "$max"
}

# make_var DIR VAR: the value of a Makefile variable.
make_var() {
    # shellcheck disable=SC2016 # $(VAR) is for make
    printf 'harness-print-var:\n\t@echo $(%s)\n' "$2" |
        make -s --no-print-directory -C "$1" -f Makefile -f - PG_CONFIG="$PG_CONFIG" harness-print-var 2>/dev/null
}

# count_regress LOG NAMES...: "OK BAD" for pg_regress output; each expected
# name without a result line counts as failed.  Lines look like
#   test validate                     ... ok           12 ms
#        product                      ... FAILED       30 ms   (parallel group)
# and, from PostgreSQL 16 on, "ok 1 - validate", "not ok 2 + product".
count_regress() {
    local log=$1
    shift
    perl -e '
        my ($log, @expected) = @ARGV;
        my %status;
        open(my $fh, "<", $log) or die "cannot read $log: $!\n";
        while (<$fh>) {
            # 16 and later print TAP: "ok 1 - name", "not ok 2 + name" (a parallel group)
            if (/^(not )?ok\s+\d+\s+[-+]\s+(\S+)/) {
                $status{$2} = defined $1 ? "failed" : "ok";
                next;
            }
            next unless /^(?:test\s+|\s+)(\S+)\s+\.\.\.\s+(ok|FAILED|failed \(ignored\))/;
            $status{$1} = $2 eq "ok" ? "ok" : "failed";
        }
        my ($ok, $bad) = (0, 0);
        for my $name (@expected) {
            my $s = delete $status{$name} // "missing";
            if ($s eq "ok") { $ok++ } else { $bad++; print STDERR "  $name: $s\n" if $s eq "missing" }
        }
        for my $s (values %status) { $s eq "ok" ? $ok++ : $bad++ }
        print "$ok $bad\n";
    ' "$log" "$@"
}

# count_tap LOG: "OK BAD" for prove / pg_prove output.  Each "ok N" or
# "not ok N" line counts, nested or not; a check marked SKIP or TODO counts
# as a failure (no check may be skipped or expected to fail), and so does a
# file skipped whole ("1..0", prove's "skipped:"); each file that the
# summary reports with a parse error (bad plan, no plan, died) or with a
# non-zero exit but no failed test counts as one more failure.
count_tap() {
    perl -e '
        my ($ok, $bad, $in_summary, $file) = (0, 0, 0, undef);
        my %planfail;
        while (<>) {
            s/\r?\n\z//;
            if (/^Test Summary Report/) { $in_summary = 1; next; }
            if ($in_summary) {
                if (/^Files=\d+/) { $in_summary = 0; next; }
                # "(Wstat: 768 (exited 3) Tests: ...)" on Debian 12 (Test::Harness 3.44)
                if (/^(\S.*?)\s+\(Wstat: (\d+)(?: \([^)]*\))? Tests: \d+ Failed: (\d+)\)/) {
                    $file = $1;
                    # died without a failed test (a failing Perl test exits
                    # non-zero by itself, so only this case is extra)
                    $planfail{$file} = 1 if $2 != 0 && $3 == 0;
                    next;
                }
                $planfail{$file} = 1 if defined $file && /^\s+Parse errors:/;
                next;
            }
            if (/^(?:\S+ \.\.+ ?)?\s*1\.\.0\b/ || /^\S+ \.\.+ ?skipped:/) {
                print STDERR "  skipped whole: $_\n";
                $bad++;
                next;
            }
            next unless /^(?:\S+ \.\.+ ?)?\s*(not )?ok \d+\b(.*)$/;
            my ($not, $rest) = ($1, $2);
            if ($rest =~ /#\s*(?:SKIP|TODO)\b/i) {
                print STDERR "  skipped or TODO check: $_\n";
                $bad++;
            }
            elsif ($not) { $bad++ }
            else { $ok++ }
        }
        for my $f (sort keys %planfail) { print STDERR "  plan failed: $f\n"; $bad++ }
        print "$ok $bad\n";
    ' "$1"
}

# summary: the closing line, and the exit status.
summary() {
    cleanup
    section "summary"
    if [ ${#FAILURES[@]} -gt 0 ]; then
        say "failures:"
        printf '  - %s\n' "${FAILURES[@]}"
    fi
    if [ -n "$SCRATCH" ] && [ -d "$SCRATCH" ]; then
        if [ "$FAILED" -eq 0 ]; then
            rm -rf "$SCRATCH"
        else
            say "scratch directory kept for inspection: $SCRATCH"
        fi
    fi
    say "total time $(($(date +%s) - START)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# ---------------------------------------------------------------------------
# 0. packages
# ---------------------------------------------------------------------------
section "bootstrap"
if ! (bootstrap_packages && bootstrap_packages valgrind); then
    fail "bootstrap: Debian packages could not be installed"
    summary
fi

# ---------------------------------------------------------------------------
# 1. scratch copy, build, install
# ---------------------------------------------------------------------------
section "build"
SCRATCH=$(mktemp -d /tmp/catalog-test.XXXXXX) || die "mktemp failed"
SRC=$SCRATCH/src
mkdir -p "$SRC" "$SCRATCH/logs"
if perl "$REPO_ROOT/test/harness/check_repo.pl" list >"$SCRATCH/files.lst" &&
    tar -C "$REPO_ROOT" --null -T "$SCRATCH/files.lst" -cf - | tar -C "$SRC" -xf -; then
    say "copied $(tr -cd '\0' <"$SCRATCH/files.lst" | wc -c) files into $SRC"
else
    fail "copy of the repository into $SRC"
fi
chown_svc "$SCRATCH"

BUILD_OK=false
# shellcheck disable=SC2034 # read by build_extension (common.sh)
BUILD_AS_SVC=1 BUILD_TIMEOUT=900
if build_extension "$SRC" "$SCRATCH/logs/build.log"; then
    pass "build (make)"
    if install_extension "$SRC" >"$SCRATCH/logs/install.log" 2>&1; then
        pass "install (make install)"
        BUILD_OK=true
    else
        show_file "$SCRATCH/logs/install.log"
        fail "install (make install)"
    fi
else
    fail "build (make)"
fi
unset BUILD_AS_SVC BUILD_TIMEOUT

# ---------------------------------------------------------------------------
# a. repository checks
# ---------------------------------------------------------------------------
section "repository checks"
CHECK=$REPO_ROOT/test/harness/check_repo.pl
if perl "$CHECK" emoji; then
    pass "no emoji or pictograph in the repository's files"
else
    fail "emoji or pictograph found in the repository's files (file:line above)"
fi
perl "$CHECK" commits all
case $? in
    0) pass "no emoji in any commit message" ;;
    3) ;; # not a git checkout: no commit messages to check
    *) fail "emoji found in commit messages (above)" ;;
esac
if [ -f "$SCRATCH/logs/build.log" ] && perl "$CHECK" warnings "$SCRATCH/logs/build.log"; then
    pass "no compiler warning in the build output"
else
    fail "compiler warnings in the build output (above), or no build output"
fi
# PostgreSQL 17 cannot run here, but its headers (Debian trixie's
# postgresql-server-dev-17, unpacked, not installed) prove that the
# PG_VERSION_NUM guards compile: no warning, no error.
if "$REPO_ROOT/test/harness/compile_pg17.sh" "$SCRATCH/pg17" >"$SCRATCH/logs/pg17.log" 2>&1; then
    pass "src/ compiles against PostgreSQL 17's headers without a diagnostic"
else
    show_file "$SCRATCH/logs/pg17.log"
    fail "src/ against PostgreSQL 17's headers (compiler output above)"
fi
if perl "$CHECK" selftest; then
    pass "emoji checker self-test"
else
    fail "emoji checker self-test"
fi

# Every regression input and isolation spec is run: a file missing from
# REGRESS or ISOLATION (or its expected output) would be skipped silently.
# listed_everywhere KIND VAR DIR EXT EXPECTED_DIR
listed_everywhere() {
    local kind=$1 var=$2 dir=$3 ext=$4 expdir=$5 names f base missing=""
    names=" $(make_var "$SRC" "$var") "
    for f in "$SRC/$dir"/*."$ext"; do
        [ -e "$f" ] || continue
        base=$(basename "$f" ."$ext")
        case $base in catalog--*) continue ;; esac
        case $names in *" $base "*) ;; *) missing="$missing $base(not in $var)" ;; esac
        [ -f "$SRC/$expdir/$base.out" ] || missing="$missing $base(no $expdir/$base.out)"
    done
    for base in $names; do
        [ -f "$SRC/$dir/$base.$ext" ] || missing="$missing $base(no $dir/$base.$ext)"
    done
    if [ -z "$missing" ]; then
        pass "every $kind is listed in $var and has its expected output"
    else
        fail "$kind files not run:$missing"
    fi
}
listed_everywhere "regression input" REGRESS sql sql expected
listed_everywhere "isolation spec" ISOLATION test/isolation/specs spec test/isolation/expected

# ---------------------------------------------------------------------------
# b. pg_regress and isolation (make installcheck, temp instances)
# ---------------------------------------------------------------------------
# run_installcheck NAME LOG DIFFS NAMES ONLY...: one half of installcheck.
run_installcheck() {
    local name=$1 log=$2 diffs=$3 names=$4 rc counts ok bad
    shift 4
    # shellcheck disable=SC2086
    run_step "$log" as_svc_in "$SRC" timeout -k 30 1200 make installcheck PG_CONFIG="$PG_CONFIG" "$@"
    rc=$?
    # shellcheck disable=SC2086
    counts=$(count_regress "$log" $names)
    read -r ok bad <<<"$counts"
    ok=${ok:-0} bad=${bad:-1} # no counts: the log could not be read
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        say "$name: make installcheck exited $rc without a failed test line"
        bad=1
    fi
    add_counts "$name" "$ok" "$bad"
    if [ "$bad" -ne 0 ]; then
        show_file "$diffs" 500
        if [ ! -s "$diffs" ]; then
            find "$SRC/tmp_check" "$SRC/tmp_check_iso" -name '*.log' -path '*/log/*' 2>/dev/null |
                while read -r f; do show_file "$f" 60; done
        fi
    fi
}

# installcheck_section NAME VAR LOG DIFFS OVERRIDE: one of the two suites of
# `make installcheck` (pg_regress or isolation), the names from the Makefile
# variable VAR, the other suite switched off by OVERRIDE.
installcheck_section() {
    local name=$1 var=$2 log=$3 diffs=$4 override=$5 names
    section "$name"
    names=$(make_var "$SRC" "$var")
    if ! $BUILD_OK; then
        [ -z "$names" ] || fail "$name: not run (build or install failed)"
    elif [ -z "$names" ]; then
        say "$name: $var is empty, nothing to run"
    else
        run_installcheck "$name" "$log" "$diffs" "$names" "$override"
    fi
}

installcheck_section pg_regress REGRESS "$SCRATCH/logs/regress.log" "$SRC/regression.diffs" ISOLATION=
installcheck_section isolation ISOLATION "$SCRATCH/logs/isolation.log" \
    "$SRC/output_iso/regression.diffs" REGRESS=

# ---------------------------------------------------------------------------
# c. pgTAP, on a throw-away cluster
# ---------------------------------------------------------------------------
# add_tap_counts NAME RUNNER LOG RC: add the checks of a TAP log to the
# totals; a runner that exited non-zero without a failed test counts as one
# failure.  Sets TAP_BAD.
add_tap_counts() {
    local name=$1 runner=$2 log=$3 rc=$4 ok bad
    read -r ok bad <<<"$(count_tap "$log")"
    ok=${ok:-0} bad=${bad:-1} # no counts: the log could not be read
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        say "$name: $runner exited $rc without a failed test"
        bad=1
    fi
    add_counts "$name" "$ok" "$bad"
    TAP_BAD=$bad
}

section "pgTAP"
mapfile -t PGTAP_FILES < <(cd "$SRC" && find test/pgtap -maxdepth 1 -name '*.sql' -type f 2>/dev/null | LC_ALL=C sort)
mapfile -t PERL_TAP_FILES < <(cd "$SRC" && find test/t -maxdepth 1 -name '*.pl' -type f 2>/dev/null | LC_ALL=C sort)
SOCK=$SCRATCH/sock
CLUSTER_OK=false

# init_cluster NAME DATA SOCK PORT [CONF]: initdb DATA as the service user,
# with test/catalog.conf, a Unix socket SOCK only (port PORT), fsync off,
# and the settings CONF appended; logs/NAME-initdb.log keeps initdb's output.
init_cluster() {
    local name=$1 data=$2 sock=$3 port=$4 conf=${5:-}
    as_svc_in "$SCRATCH" mkdir -p "$sock" && chmod 700 "$sock" || return 1
    (check_socket_dir "$sock" "$port") || return 1
    as_svc_in "$SCRATCH" "$PG_BIN/initdb" -D "$data" -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$SCRATCH/logs/$name-initdb.log" 2>&1 || { show_file "$SCRATCH/logs/$name-initdb.log"; return 1; }
    {
        printf '\n# test/catalog.conf\n'
        cat "$SRC/test/catalog.conf"
        printf '\n# throw-away server of test/harness/test.sh (%s)\n' "$name"
        printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$sock"
        printf "unix_socket_permissions = 0700\nfsync = off\n"
        printf '%s\n' "$conf"
    } | as_svc_in "$SCRATCH" tee -a "$data/postgresql.conf" >/dev/null
}

start_test_cluster() {
    local data=$SCRATCH/pgdata
    init_cluster pgtap "$data" "$SOCK" "$TEST_PORT" || return 1
    CLUSTER_DATA=$data
    as_svc_in "$SCRATCH" "$PG_BIN/pg_ctl" -D "$data" -l "$SCRATCH/logs/pgtap-server.log" -w -t 60 start \
        >/dev/null || { show_file "$SCRATCH/logs/pgtap-server.log" 60; return 1; }
    create_test_db "$SOCK" "$TEST_PORT"
}

# create_test_db SOCKET PORT: the database of the pgTAP files, with pgtap,
# the extension and the roles they log in as.
create_test_db() {
    as_svc_in "$SCRATCH" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -d postgres \
        -c 'CREATE DATABASE catalog_test' || return 1
    as_svc_in "$SCRATCH" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -d catalog_test <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION catalog CASCADE;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT catalog_anon, catalog_editor, catalog_admin TO authenticator;
CREATE ROLE regress_app LOGIN;
SQL
}

if [ ${#PGTAP_FILES[@]} -eq 0 ] && [ ${#PERL_TAP_FILES[@]} -eq 0 ]; then
    say "no test/pgtap/*.sql and no test/t/*.pl: no throw-away cluster needed"
elif ! $BUILD_OK; then
    [ ${#PGTAP_FILES[@]} -eq 0 ] || fail "pgTAP: not run (build or install failed)"
    [ ${#PERL_TAP_FILES[@]} -eq 0 ] || fail "Perl TAP: not run (build or install failed)"
elif ! start_test_cluster; then
    fail "throw-away cluster: start, CREATE EXTENSION pgtap and catalog CASCADE, roles"
    [ ${#PGTAP_FILES[@]} -eq 0 ] || fail "pgTAP: not run (no cluster)"
    [ ${#PERL_TAP_FILES[@]} -eq 0 ] || fail "Perl TAP: not run (no cluster)"
else
    pass "throw-away cluster: start, CREATE EXTENSION pgtap and catalog CASCADE, roles"
    CLUSTER_OK=true
fi

if $CLUSTER_OK && [ ${#PGTAP_FILES[@]} -gt 0 ]; then
    log=$SCRATCH/logs/pgtap.log
    run_step "$log" as_svc_in "$SRC" env PATH="$PG_BIN:$PATH" timeout -k 30 900 \
        pg_prove --verbose -h "$SOCK" -p "$TEST_PORT" -d catalog_test -U "$SVC_USER" \
        "${PGTAP_FILES[@]}"
    add_tap_counts pgTAP pg_prove "$log" $?
    [ "$TAP_BAD" -eq 0 ] || show_file "$SCRATCH/logs/pgtap-server.log" 100
elif $CLUSTER_OK; then
    say "pgTAP: no test/pgtap/*.sql"
fi

# ---------------------------------------------------------------------------
# d. Perl TAP tests
# ---------------------------------------------------------------------------
section "Perl TAP"
if $CLUSTER_OK && [ ${#PERL_TAP_FILES[@]} -gt 0 ]; then
    log=$SCRATCH/logs/perl-tap.log
    # (TESTDATADIR and TESTLOGDIR: where 17's test modules put what 15's put
    # under TESTDIR/tmp_check by themselves)
    run_step "$log" as_svc_in "$SRC" env PATH="$PG_BIN:$PATH" PGHOST="$SOCK" PGPORT="$TEST_PORT" \
        PGDATABASE=catalog_test PGUSER="$SVC_USER" TESTDIR="$SRC" PG_REGRESS="$PG_REGRESS_BIN" \
        TESTDATADIR="$SRC/tmp_check" TESTLOGDIR="$SRC/tmp_check/log" \
        timeout -k 30 1200 prove -v -I "$PGXS_PERL_LIB" -I test/t "${PERL_TAP_FILES[@]}"
    add_tap_counts "Perl TAP" prove "$log" $?
elif [ ${#PERL_TAP_FILES[@]} -eq 0 ]; then
    say "Perl TAP: no test/t/*.pl"
fi

# ---------------------------------------------------------------------------
# e. valgrind memcheck: the pg_regress inputs, the isolation specs and the
#    pgTAP files again, on a server whose every
#    process runs under valgrind (as core's buildfarm
#    animal skink runs core's suites); test/harness/valgrind_report.pl
#    counts the errors of the extension's code in its logs.  Without a
#    valgrind-aware build of the server, palloc chunks are not tracked one
#    by one: what it finds is memory that went back to malloc (a deleted
#    memory context) or was never initialised.
# ---------------------------------------------------------------------------
section "valgrind"
cleanup # the pgTAP cluster is not needed any more: its CPU goes to valgrind
VG=$SCRATCH/vg
VG_SOCK=$VG/sock
VG_DATA=$VG/pgdata
VG_OK=false

start_vg_cluster() {
    as_svc_in "$SCRATCH" mkdir -p "$VG/log" || return 1
    # every statement is 20 to 50 times slower: the search timer is raised
    # (the tests of the timer set their own)
    init_cluster vg "$VG_DATA" "$VG_SOCK" "$VG_PORT" \
        "$(printf "autovacuum = off\njit = off\nmax_connections = 50\ncatalog.search_timeout = '60s'\n")" ||
        return 1
    # pg_ctl starts this in place of postgres: every process of the server
    # (forked, never exec'd) is memchecked, each logging to its own file
    {
        printf '#!/bin/sh\n'
        printf 'exec valgrind --quiet --track-origins=yes --read-var-info=no --num-callers=30 \\\n'
        printf '    --error-limit=no --log-file=%s/log/%%p.log %s/postgres "$@"\n' "$VG" "$PG_BIN"
    } | as_svc_in "$SCRATCH" tee "$VG/postgres" >/dev/null && chmod 755 "$VG/postgres" || return 1
    CLUSTER_DATA=$VG_DATA
    as_svc_in "$SCRATCH" "$PG_BIN/pg_ctl" -D "$VG_DATA" -p "$VG/postgres" -l "$SCRATCH/logs/vg-server.log" \
        -w -t 600 start >/dev/null || { show_file "$SCRATCH/logs/vg-server.log" 60; return 1; }
}

# create_regress_db NAME: on the valgrind server, the database that
# pg_regress or pg_isolation_regress would create for NAME without
# --use-existing (their create_database and --load-extension), which
# --use-existing leaves to the caller.
create_regress_db() {
    as_svc_in "$SCRATCH" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$VG_SOCK" -p "$VG_PORT" \
        -d postgres -v db="$1" >/dev/null <<'SQL'
CREATE DATABASE :"db" TEMPLATE template0 ENCODING 'UTF8';
ALTER DATABASE :"db" SET lc_messages TO 'C';
ALTER DATABASE :"db" SET lc_monetary TO 'C';
ALTER DATABASE :"db" SET lc_numeric TO 'C';
ALTER DATABASE :"db" SET lc_time TO 'C';
ALTER DATABASE :"db" SET bytea_output TO 'hex';
ALTER DATABASE :"db" SET timezone_abbreviations TO 'Default';
\c :"db"
CREATE EXTENSION pg_trgm;
CREATE EXTENSION catalog;
SQL
}

if ! $BUILD_OK; then
    fail "valgrind: not run (build or install failed)"
elif ! command -v valgrind >/dev/null 2>&1; then
    fail "valgrind: not installed"
elif ! start_vg_cluster; then
    fail "valgrind: a server under valgrind (start)"
else
    VG_OK=true
    log=$SCRATCH/logs/vg-regress.log
    # shellcheck disable=SC2046 # one word per suite
    if create_regress_db contrib_regression &&
        run_step "$log" as_svc_in "$SRC" timeout -k 30 1200 "$PG_REGRESS_BIN" --use-existing \
            --host="$VG_SOCK" --port="$VG_PORT" --inputdir=. --outputdir="$VG/regress" \
            --dbname=contrib_regression $(make_var "$SRC" REGRESS) >/dev/null; then
        pass "valgrind: the pg_regress suites pass under memcheck"
    else
        show_file "$VG/regress/regression.diffs" 100
        fail "valgrind: the pg_regress suites under memcheck (log $log)"
    fi
    log=$SCRATCH/logs/vg-isolation.log
    mapfile -t VG_SPECS < <(make_var "$SRC" ISOLATION | tr ' ' '\n' | grep -v -x -e '')
    if create_regress_db isolation_regression &&
        run_step "$log" as_svc_in "$SRC" timeout -k 30 1200 "$PG_ISOLATION_BIN" --use-existing \
            --host="$VG_SOCK" --port="$VG_PORT" --inputdir=test/isolation --outputdir="$VG/isolation" \
            --dbname=isolation_regression "${VG_SPECS[@]}" >/dev/null; then
        pass "valgrind: the isolation specs (${#VG_SPECS[@]}) pass under memcheck"
    else
        show_file "$VG/isolation/regression.diffs" 100
        fail "valgrind: the isolation specs under memcheck (log $log)"
    fi
    log=$SCRATCH/logs/vg-pgtap.log
    if create_test_db "$VG_SOCK" "$VG_PORT" &&
        run_step "$log" as_svc_in "$SRC" env PATH="$PG_BIN:$PATH" timeout -k 30 1800 \
            pg_prove -h "$VG_SOCK" -p "$VG_PORT" -d catalog_test -U "$SVC_USER" "${PGTAP_FILES[@]}" >/dev/null; then
        pass "valgrind: the pgTAP files pass under memcheck"
    else
        tail -n 40 "$log"
        fail "valgrind: the pgTAP files under memcheck (log $log)"
    fi
    pg_stop "$VG_DATA" fast >/dev/null 2>&1 || true
    CLUSTER_DATA=
fi
if $VG_OK; then
    if perl "$SRC/test/harness/valgrind_report.pl" "$VG/log" "$SRC"; then
        pass "valgrind: no memory error in the extension's code"
    else
        fail "valgrind: memory errors in the extension's code (above; logs in $VG/log)"
    fi
fi

# ---------------------------------------------------------------------------
# f. libFuzzer targets (clang, outside the server)
# ---------------------------------------------------------------------------
section "fuzz"
for target in $(make_var "$SRC" FUZZ_TARGETS); do
    log=$SCRATCH/logs/$target.log
    # The full libFuzzer output (one line per new input) stays in the log.
    run_step "$log" as_svc_in "$SRC" timeout -k 30 $((FUZZ_SECONDS + 300)) \
        make fuzz PG_CONFIG="$PG_CONFIG" FUZZ_TARGETS="$target" \
        FUZZ_SECONDS="$FUZZ_SECONDS" FUZZ_DIR="$SCRATCH/fuzz" >/dev/null
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done [0-9]+ runs|^stat::' "$log"
    if [ "$rc" -eq 0 ]; then
        pass "fuzz: $target, $FUZZ_SECONDS s without a crash, sanitizer report or broken invariant"
    else
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 80
        find "$SCRATCH/fuzz" -maxdepth 1 -name "$target-*" -type f 2>/dev/null |
            while read -r f; do say "reproducer: $f"; done
        fail "fuzz: $target (make fuzz exited $rc; log $log)"
    fi
done

# ---------------------------------------------------------------------------
# g. make run and make stop, in a copy of the sources, on ports of their own
#    (CATALOG_TEST_RUN_PGPORT, default 54340, and the next one for
#    PgBouncer), with a small sample: the README's claims about them.
# ---------------------------------------------------------------------------
section "make run"
RUN_PG=${CATALOG_TEST_RUN_PGPORT:-54340}
RUN_BOUNCER=$((RUN_PG + 1))
# run_make LOG TARGET [VAR=VALUE...]: make TARGET in the copy, as this
# user, as a step (a signal stops it; cleanup stops what it started).
run_make() {
    local log=$1 target=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner bash
    run_step "$log" bash -c 'cd "$1" && shift && exec "$@"' run_make "$RUN_SRC" \
        env CATALOG_PGPORT="$RUN_PG" CATALOG_BOUNCER_PORT="$RUN_BOUNCER" CATALOG_SAMPLE_PRODUCTS=2000 "$@" \
        timeout -k 30 600 make -s "$target"
}
# copy_bouncer_running: a PgBouncer of the copy is running.
copy_bouncer_running() {
    pgrep -u "$SVC_USER" -f "pgbouncer -d -q $SCRATCH/run/" >/dev/null
}
RUN_SRC=$SCRATCH/run
if mkdir -p "$RUN_SRC" && tar -C "$REPO_ROOT" --null -T "$SCRATCH/files.lst" -cf - | tar -C "$RUN_SRC" -xf -; then
    log=$SCRATCH/logs/make-run-1.log
    if run_make "$log" run && grep -q 'make run: ready' "$log"; then
        pass "make run: starts both servers and runs the example calls"
    else
        show_file "$log" 80
        fail "make run: first run (log $log)"
    fi
    # Links planted in .run/ by the service user in place of every file make
    # run writes there: root must not write through them.  (The second run
    # accepts the database: its stamp now reads as missing.)
    PLANTED="pgbouncer_users.txt pgbouncer.ini passwords preloaded_catalog_so.md5 extension_sql.md5"
    for f in $PLANTED; do
        as_svc_in "$RUN_SRC/.run" ln -sf "$SCRATCH/planted-$f" "$RUN_SRC/.run/$f"
    done
    log=$SCRATCH/logs/make-run-2.log
    if run_make "$log" run CATALOG_RUN_ACCEPT=1 && grep -q 'make run: ready' "$log"; then
        pass "make run: a second run reuses both servers"
    else
        show_file "$log" 80
        fail "make run: second run (log $log)"
    fi
    owners=$(for f in $PLANTED; do
        if [ -e "$SCRATCH/planted-$f" ]; then stat -c %U "$SCRATCH/planted-$f"; else echo "(none: $f)"; fi
    done | sort -u | tr '\n' ' ')
    if [ "$owners" = "$SVC_USER " ]; then
        pass "make run: files in .run/ are written as $SVC_USER, never as root (links planted there wrote $owners)"
    else
        fail "make run: a link planted in .run/ was written through by another user than $SVC_USER (owners: '$owners')"
    fi
    log=$SCRATCH/logs/make-run-port.log
    if ! run_make "$log" run CATALOG_PGPORT=0"$RUN_PG" && grep -q 'must be a port number from 1 to 65535' "$log"; then
        pass "make run: a port with a leading zero (octal to postgresql.conf) is refused"
    else
        show_file "$log" 40
        fail "make run: a port with a leading zero was not refused"
    fi
    log=$SCRATCH/logs/make-stop.log
    if run_make "$log" stop && ! pg_running "$RUN_SRC/.run/pgdata" && ! copy_bouncer_running; then
        pass "make stop: stops both servers"
    else
        show_file "$log" 40
        fail "make stop"
    fi
    # PgBouncer's port taken by another program: no password may go to it.
    # (its own pid in a file, to be stopped itself and not only runuser; at
    # most 300 s in any case; no descriptor of ours, so it holds no pipe)
    SQUATTER_PID_FILE=$SCRATCH/squatter.pid
    rm -f "$SQUATTER_PID_FILE"
    as_svc_in "$SCRATCH" timeout 300 perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 5, ReuseAddr => 1)
            or die "listen: $!";
        open(my $p, ">", $ARGV[1]) or die "$ARGV[1]: $!";
        print $p "$$\n";
        close $p;
        $SIG{TERM} = sub { exit 0 };
        while (my $c = $s->accept) { close $c }' "$RUN_BOUNCER" "$SQUATTER_PID_FILE" </dev/null >/dev/null 2>&1 &
    squatter=$!
    for _ in $(seq 1 50); do
        pid_of_pidfile "$SQUATTER_PID_FILE" perl >/dev/null && break
        sleep 0.1
    done
    log=$SCRATCH/logs/make-run-taken.log
    if ! run_make "$log" run && grep -q "does not listen on 127.0.0.1:$RUN_BOUNCER" "$log" &&
        ! copy_bouncer_running; then
        pass "make run: PgBouncer's port taken by another program: refused before any password goes over TCP, PgBouncer stopped"
    else
        show_file "$log" 60
        fail "make run: PgBouncer's port taken by another program was not detected"
    fi
    # (the pid file lies in the service user's folder: only a perl of its own is stopped)
    if sq=$(pid_of_pidfile "$SQUATTER_PID_FILE" perl); then
        kill "$sq" 2>/dev/null
    fi
    wait "$squatter" 2>/dev/null
    SQUATTER_PID_FILE=
    run_make "$SCRATCH/logs/make-stop-2.log" stop || true
    if pg_running "$RUN_SRC/.run/pgdata" || copy_bouncer_running; then
        fail "make run: a server of the copy is still running after make stop"
    fi
    RUN_SRC=
else
    fail "make run: copy of the repository into $RUN_SRC"
fi

summary
