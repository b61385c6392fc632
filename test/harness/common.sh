# common.sh: shared functions of the catalog developer harness.
#
# Sourced (never executed) by run.sh, stop.sh and test.sh.  Bash and Perl
# only: a fresh Debian 12 machine has no python3.
#
# Who runs what:
#   - invoked as root: packages and `make install` run as root; every server
#     (PostgreSQL, PgBouncer) and every client step that needs it runs as the
#     service user `postgres` (created by the postgresql-15 package) through
#     `runuser -u postgres --`, because PostgreSQL refuses to run as root;
#   - invoked as a normal user: servers run as that user, and the steps that
#     need root (apt-get, make install, setfacl) go through sudo.

# CATALOG_PG_BIN points the harness at another copy of the PostgreSQL 15
# binaries (a developer running two checkouts side by side installs each
# into its own copy); the default is the Debian package.
PG_BIN=${CATALOG_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG

# Repository root: two levels above this file (used by the scripts that
# source this one).
# shellcheck disable=SC2034
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# Debian packages the harness needs.  pg_trgm ships in postgresql-15 on
# Debian 12 (/usr/lib/postgresql/15/lib/pg_trgm.so); postgresql-contrib is
# the metapackage that depends on it.  C.UTF-8 is built into glibc 2.36, so
# `locales` is not needed.  clang builds the libFuzzer targets (`make fuzz`);
# their runtime (libclang_rt.fuzzer, asan, ubsan) is libclang-rt-14-dev, only
# a Recommends of clang-14, which apt-get here does not install.
CATALOG_PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-contrib
    postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    pgbouncer libdbd-pg-perl libipc-run-perl
    make gcc libc6-dev clang libclang-rt-14-dev acl sysbench perl
)

if [ "$(id -u)" -eq 0 ]; then
    SVC_USER=postgres
else
    SVC_USER=$(id -un)
fi

# Every server and client gets the same deterministic locale.
export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE

# say MESSAGE...: one line of harness progress.
say() {
    printf '[harness] %s\n' "$*"
}

# die MESSAGE...: print to stderr and exit 1.
die() {
    printf '[harness] error: %s\n' "$*" >&2
    exit 1
}

# is_root: true when running as uid 0.
is_root() {
    [ "$(id -u)" -eq 0 ]
}

# as_root COMMAND...: run a command as root (directly, or through sudo).
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -- "$@"
    else
        die "this step needs root and sudo is not installed: $*"
    fi
}

# as_svc COMMAND...: run a command as the service user.  The caller must be
# in a directory the service user can enter (see as_svc_in).
as_svc() {
    if is_root; then
        runuser -u "$SVC_USER" -- "$@"
    else
        "$@"
    fi
}

# as_svc_in DIR COMMAND...: as_svc with DIR as working directory.
as_svc_in() {
    local dir=$1
    shift
    (cd "$dir" && as_svc "$@")
}

# chown_svc PATH...: give paths to the service user (no-op for a normal user).
chown_svc() {
    if is_root; then
        chown -R "$SVC_USER:" "$@"
    fi
}

# results_tee FILE: from here on, the script's output goes to the terminal
# and to a partial copy beside FILE (.NAME.partial); results_keep RC FILE:
# with RC 0 the copy becomes FILE, else it is dropped and FILE stays as it
# was.  The benchmarks' result files (test/bench/results) are written so.
results_partial() {
    printf '%s/.%s.partial' "$(dirname "$1")" "$(basename "$1")"
}
results_tee() {
    mkdir -p "$(dirname "$1")"
    exec > >(tee "$(results_partial "$1")") 2>&1
}
results_keep() {
    local partial
    partial=$(results_partial "$2")
    if [ "$1" -eq 0 ] && [ -s "$partial" ]; then
        mv -f "$partial" "$2"
    else
        rm -f "$partial"
        [ "$1" -eq 0 ] || printf 'failed (exit %s); %s left unchanged\n' "$1" "$2" >&2
    fi
}

# pkg_installed NAME: true when dpkg knows NAME as installed.
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# bootstrap_packages [PACKAGE...]: apt-get install only the missing ones of
# the packages given (default: CATALOG_PACKAGES); apt-get update only when
# something is missing.  Idempotent and quiet when done.
bootstrap_packages() {
    local missing=() p
    local -a want=("$@")
    [ $# -gt 0 ] || want=("${CATALOG_PACKAGES[@]}")
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: the harness needs Debian 12"
    for p in "${want[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "packages: all ${#want[@]} present"
        return 0
    fi
    say "packages: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" || die "apt-get install failed"
    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "package $p is still not installed"
    done
    [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found after installing packages"
}

# build_extension DIR LOG: build with PGXS in DIR, output shown and kept in
# LOG; returns make's exit status.  Runs as the current user, or as the
# service user when BUILD_AS_SVC is set; under `timeout` when BUILD_TIMEOUT
# (seconds) is set (test.sh; an interactive `make run` stays interruptible
# with Ctrl-C, which a `timeout` process group would not see).
build_extension() {
    local dir=$1 log=$2 jobs cmd
    jobs=$(nproc 2>/dev/null || echo 2)
    say "build: make -j$jobs in $dir"
    # a clean environment for the inner make: under `make -jN test` the
    # outer jobserver flags would make it warn ("-jN forced in submake"),
    # and the repository check refuses any warning in the build log
    cmd=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j"$jobs" PG_CONFIG="$PG_CONFIG")
    if [ -n "${BUILD_TIMEOUT:-}" ]; then
        cmd=(timeout -k 30 "$BUILD_TIMEOUT" "${cmd[@]}")
    fi
    if [ -n "${BUILD_AS_SVC:-}" ]; then
        run_step "$log" as_svc_in "$dir" "${cmd[@]}"
    else
        run_step "$log" as_svc_in_self "$dir" "${cmd[@]}"
    fi
}

# as_svc_in_self DIR COMMAND...: COMMAND in DIR as the current user.
as_svc_in_self() {
    local dir=$1
    shift
    (cd "$dir" && "$@")
}

# run_step LOG COMMAND...: run COMMAND with its output shown and kept in LOG,
# in the background, and wait for it, so that a trapped INT or TERM is acted
# on at once (bash runs traps only between foreground commands, but does
# interrupt `wait`).  STEP_PID is the step's pid while it runs (see
# stop_step).  Returns COMMAND's exit status.
STEP_PID=
run_step() {
    local log=$1 rc
    shift
    (
        "$@" 2>&1 | tee "$log"
        exit "${PIPESTATUS[0]}"
    ) &
    STEP_PID=$!
    wait "$STEP_PID"
    rc=$?
    STEP_PID=
    return "$rc"
}

# stop_step: send SIGTERM to the running step and every process below it
# (each by pid; `timeout` runs its command in a process group of its own, so
# a signal to our process group does not reach it), then wait for it.
stop_step() {
    local pids
    [ -n "$STEP_PID" ] || return 0
    pids=$(perl -e '
        my $root = shift;
        my %kids;
        for my $stat (glob "/proc/[0-9]*/stat") {
            open(my $fh, "<", $stat) or next;
            my $line = <$fh> // next;
            my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/s or next;
            push @{ $kids{$ppid} }, $pid;
        }
        my @todo = ($root);
        my @all;
        while (@todo) {
            my $p = shift @todo;
            push @all, $p;
            push @todo, @{ $kids{$p} || [] };
        }
        print join(" ", reverse @all), "\n";
    ' "$STEP_PID")
    # shellcheck disable=SC2086 # a list of pids
    kill -TERM $pids 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
    STEP_PID=
}

# install_extension DIR: make install as root.
install_extension() {
    local dir=$1
    say "install: make install (as root) from $dir"
    (cd "$dir" && as_root make install PG_CONFIG="$PG_CONFIG")
}

# grant_traversal DIR: make DIR reachable by the service user by granting it
# search permission (ACL u:SVC_USER:x, nothing else) on DIR and each ancestor
# that lacks it, top down, printing every change.  Only when running as root
# (a normal user runs the servers as itself).
grant_traversal() {
    local target=$1 d dirs=()
    is_root || return 0
    d=$target
    while :; do
        dirs=("$d" "${dirs[@]}")
        [ "$d" = / ] && break
        d=$(dirname "$d")
    done
    for d in "${dirs[@]}"; do
        if ! runuser -u "$SVC_USER" -- test -x "$d"; then
            command -v setfacl >/dev/null 2>&1 || die "setfacl not found (package acl)"
            setfacl -m "u:$SVC_USER:x" "$d" || die "setfacl -m u:$SVC_USER:x $d failed"
            say "acl: granted traversal to $SVC_USER on $d (setfacl -m u:$SVC_USER:x)"
        fi
    done
    runuser -u "$SVC_USER" -- test -x "$target" || die "$SVC_USER still cannot reach $target"
}

# check_socket_dir DIR PORT: a Unix socket path is limited to 107 bytes.
check_socket_dir() {
    local path="$1/.s.PGSQL.$2.lock"
    [ ${#path} -le 107 ] ||
        die "socket path $path is longer than 107 bytes; move the checkout to a shorter path"
}

# pg_running DATADIR: true when a postmaster runs on DATADIR (pg_ctl status).
pg_running() {
    [ -f "$1/PG_VERSION" ] || return 1
    as_svc_in / "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# pg_stop DATADIR [MODE]: stop a postmaster on DATADIR if one runs.
pg_stop() {
    local data=$1 mode=${2:-fast}
    if pg_running "$data"; then
        as_svc_in / "$PG_BIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop
    else
        return 0
    fi
}

# pid_of_pidfile FILE COMM: print the pid in FILE when that process is alive
# and its command name is COMM, owned by the service user; fail otherwise.
pid_of_pidfile() {
    local file=$1 comm=$2 pid
    [ -s "$file" ] || return 1
    pid=$(head -n 1 "$file" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    # and ours: the service user's (the pid file is in its folder; it could
    # name a PgBouncer of the system, which root must not stop)
    if is_root; then
        [ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = "$SVC_USER" ] || return 1
    else
        [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$(id -u)" ] || return 1
    fi
    printf '%s\n' "$pid"
}

# random_password: 32 hex characters from /dev/urandom.
random_password() {
    perl -e 'open(my $f, "<", "/dev/urandom") or die "urandom: $!";
        read($f, my $b, 16) == 16 or die "short read";
        print unpack("H*", $b), "\n";'
}

# claim_scratch_dir DIR: make DIR this run's scratch folder, which its
# cleanup may delete: refused when another run holds it (a lock on
# DIR.lock, kept until the script exits) or when DIR exists, is not empty
# and was not made by such a run (no .catalog-scratch in it), so that a
# mistyped CATALOG_*_DIR never loses a folder's contents.
claim_scratch_dir() {
    local dir=$1
    exec 9>"$dir.lock" || die "cannot create $dir.lock"
    flock -n 9 || die "$dir is in use by another run (lock $dir.lock)"
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -e "$dir/.catalog-scratch" ]; then
        die "$dir exists and was not made by this script: choose another folder, or remove it"
    fi
    mkdir -p "$dir" && touch "$dir/.catalog-scratch" || die "cannot create $dir"
}

# term_and_wait PID: SIGTERM to PID (the shell's own kill: root may signal
# the service user's process, and /bin/kill, from procps, is missing from
# minimal images), then wait up to 10 s for it to exit; false if it did not.
term_and_wait() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.1
    done
    [ ! -d "/proc/$pid" ]
}
