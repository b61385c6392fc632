#!/usr/bin/env bash
# run.sh: `make run`: a development PostgreSQL 15 + PgBouncer with the catalog
# extension and the sample catalog, all under .run/ (git-ignored).
#
#   1. install missing Debian packages, build, `make install`;
#   2. start (or reuse) a cluster in .run/pgdata on 127.0.0.1:$CATALOG_PGPORT
#      (default 54320) and the Unix socket directory .run/sock (mode 700),
#      with shared_preload_libraries = 'catalog';
#   3. create database `catalog`, `CREATE EXTENSION catalog CASCADE`, the
#      login roles catalog_app and authenticator (passwords in
#      .run/passwords, mode 600), and load test/data/sample.sql when the
#      catalog is empty;
#   4. start (or reload) PgBouncer on 127.0.0.1:$CATALOG_BOUNCER_PORT
#      (default 54321), transaction pooling, SCRAM;
#   5. print how to connect and run example calls through PgBouncer.
#
# Safe to run again: a running server or PgBouncer is found through its pid
# file and reused; the sample is loaded only into an empty catalog.  When the
# installed catalog.so differs from the one the server preloaded, PostgreSQL
# is restarted so the preloaded code is current.  When the installed
# script of the database's extension version differs from the one it was
# created from, it stops with a message (CATALOG_RUN_RESET=1 rebuilds the
# database, CATALOG_RUN_ACCEPT=1 keeps it; see step 3).  `make stop` stops both.
#
# As root, the servers run as the `postgres` system user, and the checkout's
# ancestor directories get a traversal-only ACL for it when they lack one.

set -euo pipefail
# shellcheck source=test/harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=${CATALOG_PGPORT:-54320}
BOUNCER_PORT=${CATALOG_BOUNCER_PORT:-54321}
SAMPLE_PRODUCTS=${CATALOG_SAMPLE_PRODUCTS:-100000}
case $SAMPLE_PRODUCTS in '' | *[!0-9]*) die "CATALOG_SAMPLE_PRODUCTS must be a number, got '$SAMPLE_PRODUCTS'" ;; esac
# Ports: decimal without a leading zero (postgresql.conf reads 056100 as
# octal, psql as decimal), 1 to 65535, and two different ones.
for v in "CATALOG_PGPORT=$PORT" "CATALOG_BOUNCER_PORT=$BOUNCER_PORT"; do
    case ${v#*=} in
        '' | 0* | *[!0-9]* | ??????*) die "${v%%=*} must be a port number from 1 to 65535, got '${v#*=}'" ;;
    esac
    [ "${v#*=}" -le 65535 ] || die "${v%%=*} must be a port number from 1 to 65535, got '${v#*=}'"
done
[ "$PORT" != "$BOUNCER_PORT" ] || die "CATALOG_PGPORT and CATALOG_BOUNCER_PORT must differ (both $PORT)"

RUN_DIR=$REPO_ROOT/.run
PGDATA_RUN=$RUN_DIR/pgdata
SOCK=$RUN_DIR/sock
# PgBouncer's connection strings (host=...) end a value at white space;
# pg_ctl hands its log path to /bin/sh in double quotes ($ and ` expand);
# and the connection commands printed at the end must work as printed.
case $SOCK in
    *[[:space:]]* | *[\$\`\"\'\\\;\&\|\<\>\(\)\*\?\[\]\{\}\!\#]*)
        die "the checkout's path ($REPO_ROOT) contains white space or a shell metacharacter (one of \$ \` \" ' \\ ; & | < > ( ) * ? [ ] { } ! #): PgBouncer's connection string, pg_ctl's shell command or the printed commands would break; clone it into a plain path" ;;
esac
PGLOG=$RUN_DIR/postgresql.log
PASSFILE=$RUN_DIR/passwords
BOUNCER_INI=$RUN_DIR/pgbouncer.ini
BOUNCER_USERS=$RUN_DIR/pgbouncer_users.txt
BOUNCER_PID=$RUN_DIR/pgbouncer.pid
BOUNCER_LOG=$RUN_DIR/pgbouncer.log
LIB_STAMP=$RUN_DIR/preloaded_catalog_so.md5
SQL_STAMP=$RUN_DIR/extension_sql.md5

# Every file under $RUN_DIR, a folder the service user owns, is written,
# read and given its mode by the service user, never by root: a symbolic
# link planted there (by anything running as the service user, a database
# superuser's COPY ... TO PROGRAM included) would otherwise turn root's
# write into one anywhere, with content of the planter's choosing.
# svc_write FILE: stdin into FILE (mode 600).  svc_read FILE: FILE's
# content, nothing when it is missing.
svc_write() {
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_svc_in "$RUN_DIR" sh -c 'umask 077 && cat >"$1" && chmod 600 "$1"' svc_write "$1"
}
svc_read() {
    as_svc_in "$RUN_DIR" cat "$1" 2>/dev/null || true
}

# conf_quote VALUE: VALUE as a single-quoted postgresql.conf string.
conf_quote() {
    printf "'%s'" "${1//\'/\'\'}"
}

# psql_su ARGS...: psql as the cluster superuser over the Unix socket.
psql_su() {
    as_svc_in "$RUN_DIR" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" "$@"
}

# running_port: the port of the running postmaster (postmaster.pid line 4).
running_port() {
    svc_read "$PGDATA_RUN/postmaster.pid" | sed -n 4p
}

# installed_lib_md5: checksum of the installed catalog.so.
installed_lib_md5() {
    local libdir
    libdir=$("$PG_CONFIG" --pkglibdir)
    md5sum "$libdir/catalog.so" 2>/dev/null | cut -d' ' -f1
}

# ---------------------------------------------------------------------------
# 1. packages, build, install
# ---------------------------------------------------------------------------
bootstrap_packages

mkdir -p "$RUN_DIR"
build_log=$(mktemp /tmp/catalog-run-build.XXXXXX)
if ! build_extension "$REPO_ROOT" "$build_log"; then
    rm -f "$build_log"
    die "build failed (see the make output above)"
fi
if grep -q 'warning:' "$build_log"; then
    say "build: compiler warnings (make test counts these as a failure):"
    grep 'warning:' "$build_log" || true
fi
rm -f "$build_log"
install_log=$(mktemp /tmp/catalog-run-install.XXXXXX)
if ! install_extension "$REPO_ROOT" >"$install_log" 2>&1; then
    cat "$install_log"
    rm -f "$install_log"
    die "make install failed"
fi
rm -f "$install_log"

# ---------------------------------------------------------------------------
# 2. cluster
# ---------------------------------------------------------------------------
grant_traversal "$REPO_ROOT"
chown_svc "$RUN_DIR"
chmod 700 "$RUN_DIR"
as_svc_in "$RUN_DIR" mkdir -p "$SOCK"
as_svc_in "$RUN_DIR" chmod 700 "$SOCK"
check_socket_dir "$SOCK" "$PORT"
check_socket_dir "$SOCK" "$BOUNCER_PORT"

if [ ! -f "$PGDATA_RUN/PG_VERSION" ]; then
    say "postgres: initdb $PGDATA_RUN (as $SVC_USER)"
    as_svc_in "$RUN_DIR" "$PG_BIN/initdb" -D "$PGDATA_RUN" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 2>&1 | as_svc_in "$RUN_DIR" tee "$RUN_DIR/initdb.log" >/dev/null ||
        { svc_read "$RUN_DIR/initdb.log"; die "initdb failed"; }
fi
# Checked on every run, not only after initdb: a run stopped right after
# initdb would otherwise leave a cluster without the settings for good.
if ! as_svc_in "$RUN_DIR" grep -q "^include_if_exists = 'catalog_run.conf'" "$PGDATA_RUN/postgresql.conf"; then
    printf "\n# Settings of make run (rewritten on every run).\ninclude_if_exists = 'catalog_run.conf'\n" |
        as_svc_in "$RUN_DIR" tee -a "$PGDATA_RUN/postgresql.conf" >/dev/null
fi

# Rewritten on every run; takes effect at the next (re)start.
as_svc_in "$RUN_DIR" tee "$PGDATA_RUN/catalog_run.conf" >/dev/null <<EOF
# catalog_run.conf: written by test/harness/run.sh (make run); edits are lost.
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = $(conf_quote "$SOCK")
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
# The extension's shared memory (rate limiter, metrics) needs preloading.
shared_preload_libraries = 'catalog'
# The audit sealer (a background worker) seals and keeps the monthly
# partitions of the database that has the extension.
catalog.audit_seal_database = 'catalog'
# PgBouncer opens at most 80 server connections; the rest is for direct use.
max_connections = 200
# Sized for the project's 2-core, 24 GB machines and a 1,000,000-product sample.
shared_buffers = 1GB
max_wal_size = 4GB
EOF

CONFIGURED_PORT=$PORT
if pg_running "$PGDATA_RUN"; then
    actual=$(running_port)
    if [ -n "$actual" ] && [ "$actual" != "$PORT" ]; then
        say "postgres: already running on port $actual (not $PORT); using it (make stop, then make run, to move it)"
        PORT=$actual
    fi
    lib_now=$(installed_lib_md5)
    lib_then=$(svc_read "$LIB_STAMP")
    if [ -n "$lib_then" ] && [ "$lib_then" != "$lib_now" ]; then
        say "postgres: the installed catalog.so changed since the server preloaded it; restarting"
        as_svc_in "$RUN_DIR" "$PG_BIN/pg_ctl" -D "$PGDATA_RUN" -l "$PGLOG" -m fast -w -t 60 restart >/dev/null ||
            { svc_read "$PGLOG" | tail -n 30; die "restart failed (log: $PGLOG)"; }
        PORT=$CONFIGURED_PORT
        printf '%s\n' "$lib_now" | svc_write "$LIB_STAMP"
    else
        say "postgres: already running (pid $(svc_read "$PGDATA_RUN/postmaster.pid" | head -n 1)), reusing it"
        [ -n "$lib_then" ] || printf '%s\n' "$lib_now" | svc_write "$LIB_STAMP"
    fi
else
    say "postgres: starting on 127.0.0.1:$PORT, log $PGLOG"
    as_svc_in "$RUN_DIR" "$PG_BIN/pg_ctl" -D "$PGDATA_RUN" -l "$PGLOG" -w -t 60 start >/dev/null ||
        { svc_read "$PGLOG" | tail -n 30; die "PostgreSQL did not start (log: $PGLOG)"; }
    installed_lib_md5 | svc_write "$LIB_STAMP"
fi

# ---------------------------------------------------------------------------
# 3. database, extension, roles, sample data
# ---------------------------------------------------------------------------
# The extension's SQL can change under one version while it is developed
# (1.0 has no release yet), and ALTER EXTENSION UPDATE then has nothing to
# run: a database made by an older checkout keeps the old objects under the
# new library, and calls fail.  SQL_STAMP records, when make run creates
# the extension, its version and the checksum of that version's installed
# script.  When the database's version has another script now (or nothing
# was recorded), make run stops before touching the database and says what
# to do: CATALOG_RUN_RESET=1 drops and recreates the database `catalog`
# (its data is lost), CATALOG_RUN_ACCEPT=1 keeps it as it is and records
# the installed script as its own.  A real version update then runs.
db_exists() {
    [ -n "$(psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'catalog'")" ]
}
ext_exists() {
    [ -n "$(psql_su -d catalog -tAc "SELECT 1 FROM pg_extension WHERE extname = 'catalog'")" ]
}
ext_version() {
    psql_su -d catalog -tAc "SELECT extversion FROM pg_extension WHERE extname = 'catalog'"
}
# script_stamp VERSION: "VERSION <md5 of catalog--VERSION.sql>" (none: not installed).
script_stamp() {
    local f
    f=$("$PG_CONFIG" --sharedir)/extension/catalog--$1.sql
    if [ -f "$f" ]; then
        printf '%s %s\n' "$1" "$(md5sum <"$f" | cut -d' ' -f1)"
    else
        printf '%s none\n' "$1"
    fi
}
write_stamp() {
    script_stamp "$(ext_version)" | svc_write "$SQL_STAMP"
}
if db_exists && ext_exists; then
    v_now=$(ext_version)
    if [ "$(svc_read "$SQL_STAMP")" != "$(script_stamp "$v_now")" ]; then
        if [ "${CATALOG_RUN_RESET:-0}" = 1 ]; then
            say "postgres: CATALOG_RUN_RESET=1: dropping database catalog (made from another catalog--$v_now.sql)"
            psql_su -d postgres -c 'DROP DATABASE catalog WITH (FORCE)'
        elif [ "${CATALOG_RUN_ACCEPT:-0}" = 1 ]; then
            say "postgres: CATALOG_RUN_ACCEPT=1: keeping database catalog as it is"
            write_stamp
        else
            die "database catalog may have been made from another catalog--$v_now.sql than the installed one (it changed, or the database predates this check); rebuild it, losing its data, with CATALOG_RUN_RESET=1 make run, or keep it as it is with CATALOG_RUN_ACCEPT=1 make run"
        fi
    fi
fi
if db_exists && ext_exists; then
    v_before=$(ext_version)
    psql_su -d catalog -c 'SET client_min_messages = warning' -c 'ALTER EXTENSION catalog UPDATE'
    # a real update ran its scripts from a database known to match its version
    [ "$(ext_version)" = "$v_before" ] || write_stamp
fi
if ! db_exists; then
    say "postgres: CREATE DATABASE catalog"
    psql_su -d postgres -c 'CREATE DATABASE catalog'
fi
if ! ext_exists; then
    psql_su -d catalog -c 'SET client_min_messages = warning' \
        -c 'CREATE EXTENSION catalog CASCADE'
    write_stamp
fi
say "postgres: extension catalog $(psql_su -d catalog -tAc "SELECT extversion FROM pg_extension WHERE extname = 'catalog'") installed in database catalog"

new_passwords=false
PASSWORDS=$(svc_read "$PASSFILE")
if [ -z "$PASSWORDS" ]; then
    PASSWORDS=$(printf 'catalog_app=%s\nauthenticator=%s\n' "$(random_password)" "$(random_password)")
    printf '%s\n' "$PASSWORDS" | svc_write "$PASSFILE"
    new_passwords=true
    say "roles: new passwords written to $PASSFILE"
fi
as_svc_in "$RUN_DIR" chmod 600 "$PASSFILE"
password_of() {
    sed -n "s/^$1=//p" <<<"$PASSWORDS"
}
APP_PASSWORD=$(password_of catalog_app)
AUTH_PASSWORD=$(password_of authenticator)
case "$APP_PASSWORD$AUTH_PASSWORD" in
    '' | *[!0-9a-f]*) die "$PASSFILE is malformed; delete it and run make run again" ;;
esac

psql_su -d postgres <<'SQL'
SET client_min_messages = warning;
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'catalog_app') THEN
        CREATE ROLE catalog_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$roles$;
ALTER ROLE catalog_app LOGIN;
ALTER ROLE authenticator LOGIN NOINHERIT;
GRANT catalog_editor TO catalog_app;
GRANT catalog_anon, catalog_editor, catalog_admin TO authenticator;
SQL
# Set a password when the file is new or the role has none (a re-created
# cluster); otherwise keep the SCRAM secret, so PgBouncer's copy stays valid.
without=$(psql_su -d postgres -tAc "SELECT string_agg(rolname, ' ') FROM pg_catalog.pg_authid
    WHERE rolname IN ('catalog_app', 'authenticator') AND rolpassword IS NULL")
for role in catalog_app authenticator; do
    if $new_passwords || [[ " $without " == *" $role "* ]]; then
        pw=$(password_of "$role")
        printf "SET password_encryption = 'scram-sha-256';\nALTER ROLE %s PASSWORD '%s';\n" "$role" "$pw" |
            psql_su -d postgres
        say "roles: password of $role set"
    fi
done

state=$(psql_su -d catalog -tAc "SELECT (SELECT count(*) FROM catalog.product) || ' ' ||
                                        (SELECT count(*) FROM catalog.category)")
read -r n_products n_categories <<<"$state"
if [ "$n_products" = 0 ] && [ "$n_categories" = 0 ]; then
    say "sample: loading test/data/sample.sql with $SAMPLE_PRODUCTS products"
    t0=$(date +%s.%N)
    as_svc_in "$RUN_DIR" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d catalog \
        -v products="$SAMPLE_PRODUCTS" -v seed=42 -f - <"$REPO_ROOT/test/data/sample.sql"
    t1=$(date +%s.%N)
    say "sample: loaded in $(perl -e 'printf "%.1f", $ARGV[1] - $ARGV[0]' "$t0" "$t1") s"
elif [ "$n_products" = 0 ]; then
    say "sample: not loaded ($n_categories categories exist but no product; sample.sql needs an empty catalog)"
else
    say "sample: catalog has $n_products products and $n_categories categories, not reloading"
fi

# ---------------------------------------------------------------------------
# 4. PgBouncer
# ---------------------------------------------------------------------------
# Only secrets of SCRAM's exact form (a superuser could have stored anything
# in pg_authid: a quote or a line break would forge auth_file entries).
users=$(psql_su -d postgres -tAc "SELECT string_agg('\"' || rolname || '\" \"' || rolpassword || '\"', E'\n' ORDER BY rolname)
                                  FROM pg_catalog.pg_authid
                                  WHERE rolname IN ('catalog_app', 'authenticator')
                                    AND rolpassword ~ '^SCRAM-SHA-256\\\$[0-9]+:[A-Za-z0-9+/=]+\\\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+\$'")
[ "$(grep -c . <<<"$users")" = 2 ] ||
    die "no well-formed SCRAM secret for both catalog_app and authenticator in pg_authid"
printf '%s\n' "$users" | svc_write "$BOUNCER_USERS"

# The port a running PgBouncer listens on (a reload does not move it).
OLD_BOUNCER_PORT=$(svc_read "$BOUNCER_INI" | sed -n 's/^listen_port = //p')

svc_write "$BOUNCER_INI" <<EOF
;; pgbouncer.ini: written by test/harness/run.sh (make run); edits are lost.
;; Clients authenticate with SCRAM against auth_file (secrets copied from
;; pg_authid); PgBouncer reaches PostgreSQL over its private Unix socket.

[databases]
catalog = host=$SOCK port=$PORT dbname=catalog
* = host=$SOCK port=$PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $SOCK
auth_type = scram-sha-256
auth_file = $BOUNCER_USERS
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
max_db_connections = 80
;; Transaction pooling: no session state to reset.
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
pidfile = $BOUNCER_PID
logfile = $BOUNCER_LOG
EOF

if bpid=$(pid_of_pidfile "$BOUNCER_PID" pgbouncer) && [ "$OLD_BOUNCER_PORT" != "$BOUNCER_PORT" ]; then
    say "pgbouncer: running (pid $bpid) on port ${OLD_BOUNCER_PORT:-unknown}, restarting on $BOUNCER_PORT"
    term_and_wait "$bpid" || die "pgbouncer (pid $bpid) did not exit within 10 s"
fi
if bpid=$(pid_of_pidfile "$BOUNCER_PID" pgbouncer); then
    say "pgbouncer: already running (pid $bpid), reloading its configuration"
    # the shell's own kill: root may signal the service user's process, and
    # /bin/kill (procps) is missing from minimal images
    kill -HUP "$bpid"
else
    say "pgbouncer: starting on 127.0.0.1:$BOUNCER_PORT, log $BOUNCER_LOG"
    # max_client_conn = 2000 needs more descriptors than the usual 1024.
    # shellcheck disable=SC2016 # expanded by the inner bash
    as_svc_in "$RUN_DIR" bash -c 'ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
                                  exec /usr/sbin/pgbouncer -d -q "$1"' pgbouncer "$BOUNCER_INI" ||
        { svc_read "$BOUNCER_LOG" | tail -n 20; die "PgBouncer did not start (log: $BOUNCER_LOG)"; }
fi

# PgBouncer logs a port it cannot bind and goes on, on its Unix socket
# alone: the port may be held by another program, which the calls below
# would then hand catalog_app's password (libpq answers a cleartext
# password request).  So the TCP listener on 127.0.0.1:$BOUNCER_PORT must
# be PgBouncer's own before any password goes over TCP: its socket inode,
# from /proc/net/tcp, among PgBouncer's descriptors.
# bouncer_owns_port PID PORT (as the service user, PgBouncer's own: root
# may read another user's /proc/PID/fd only with CAP_SYS_PTRACE, which a
# container's root often lacks)
bouncer_owns_port() {
    as_svc_in "$RUN_DIR" perl -e '
        my ($pid, $port) = @ARGV;
        my $want = sprintf("0100007F:%04X", $port);
        my %inode;
        open(my $t, "<", "/proc/net/tcp") or exit 1;
        while (<$t>) {
            my @f = split " ";
            $inode{$f[9]} = 1 if defined $f[3] && $f[1] eq $want && $f[3] eq "0A";
        }
        opendir(my $d, "/proc/$pid/fd") or exit 1;
        for my $fd (readdir $d) {
            my $l = readlink("/proc/$pid/fd/$fd") // next;
            exit 0 if $l =~ /^socket:\[(\d+)\]$/ && $inode{$1};
        }
        exit 1;' "$1" "$2"
}
# (pgbouncer -d returns before the daemon has written its pid file)
owned=false
bpid=
for _ in $(seq 1 50); do
    if bpid=$(pid_of_pidfile "$BOUNCER_PID" pgbouncer) && bouncer_owns_port "$bpid" "$BOUNCER_PORT"; then
        owned=true
        break
    fi
    sleep 0.2
done
if ! $owned; then
    svc_read "$BOUNCER_LOG" | tail -n 5
    if [ -n "$bpid" ]; then
        term_and_wait "$bpid" || true
        die "PgBouncer (pid $bpid, now stopped) does not listen on 127.0.0.1:$BOUNCER_PORT: is another program using the port? (ss -ltnp 'sport = :$BOUNCER_PORT'); free it or set CATALOG_BOUNCER_PORT"
    fi
    die "PgBouncer is not running (log: $BOUNCER_LOG)"
fi

# ---------------------------------------------------------------------------
# 5. how to connect, and example calls through PgBouncer
# ---------------------------------------------------------------------------
bouncer_psql() {
    PGPASSWORD=$APP_PASSWORD PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -h 127.0.0.1 -p "$BOUNCER_PORT" \
        -U catalog_app -d catalog "$@"
}
ready=false
for _ in $(seq 1 50); do
    if bouncer_psql -tAc 'SELECT 1' >/dev/null 2>&1; then
        ready=true
        break
    fi
    sleep 0.2
done
$ready || { bouncer_psql -tAc 'SELECT 1' || true; die "cannot connect through PgBouncer on 127.0.0.1:$BOUNCER_PORT"; }

if is_root; then
    su_prefix="runuser -u $SVC_USER -- "
else
    su_prefix=""
fi
cat <<EOF

catalog is running.
  PostgreSQL 15  127.0.0.1:$PORT  (data $PGDATA_RUN, log $PGLOG)
  PgBouncer      127.0.0.1:$BOUNCER_PORT  (transaction pooling, log $BOUNCER_LOG)
  Passwords      $PASSFILE

Connect through PgBouncer as the application role (member of catalog_editor):
  PGPASSWORD=\$(sed -n 's/^catalog_app=//p' $PASSFILE) psql -h 127.0.0.1 -p $BOUNCER_PORT -U catalog_app catalog
Connect directly to PostgreSQL:
  PGPASSWORD=\$(sed -n 's/^catalog_app=//p' $PASSFILE) psql -h 127.0.0.1 -p $PORT -U catalog_app catalog
As the superuser, over the Unix socket:
  ${su_prefix}psql -h $SOCK -p $PORT catalog
PostgREST (role authenticator, granted catalog_anon, catalog_editor, catalog_admin):
  db-uri = "postgres://authenticator:\$(sed -n 's/^authenticator=//p' $PASSFILE)@127.0.0.1:$BOUNCER_PORT/catalog"
  db-schemas = "catalog_api"   db-anon-role = "catalog_anon"   db-prepared-statements = false
Stop both servers with: make stop

Example calls through PgBouncer (psql as catalog_app):
EOF

examples_ok=true
# run_example SQL: echo the statements (psql -e), then their real output.
run_example() {
    echo
    if ! bouncer_psql -e -A -t -v ON_ERROR_STOP=1 -P pager=off <<<"$1"; then
        examples_ok=false
    fi
}
run_example "select catalog_api.health();"
run_example "select catalog_api.get_product(id => 1);"
run_example "select jsonb_array_length(catalog_api.list_categories());"
run_example "select jsonb_pretty(catalog_api.search_products(q => 'wool soc', page_size => 2) - 'next_cursor');"
# A write, rolled back so that repeated runs leave the data unchanged.
run_example "begin;
select set_config('catalog.actor', 'demo', true);
select catalog_api.create_product(
    sku => 'DEMO-KETTLE-1', name => 'Demo Electric Kettle', price => 39.99,
    category_id => (select (c ->> 'id')::bigint
                    from jsonb_array_elements(catalog_api.list_categories()) as c
                    where c ->> 'slug' = 'home-kitchen-small-appliances-electric-kettles'),
    description => 'Created by make run, then rolled back.',
    attributes => '{\"colour\": \"white\"}');
rollback;"

echo
if $examples_ok; then
    say "make run: ready"
else
    say "make run: the servers run, but an example call failed (see above)"
    exit 1
fi
