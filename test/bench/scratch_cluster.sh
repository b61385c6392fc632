# test/bench/scratch_cluster.sh: the throw-away cluster of cost.sh and
# profile.sh, sourced by both after the harness (common.sh).
#
# scratch_cluster LABEL: build and install the extension from $REPO; initdb
# a cluster in $DIR/data (socket in $DIR/sock, logs in $DIR/work), as the
# service user when run as root, preloaded with the extension, its sealer
# pointed at $DB, the rate limits out of reach; start it (STARTED=1, PSQL
# the client command); create $DB with the extension and load $PRODUCTS
# products with test/data/sample.sql (seed $SEED) with the audit triggers
# disabled (the fixture is not history), then enable them again.  Uses the
# caller's say and die; sets DATA, SOCK, WORK, STARTED and PSQL.
scratch_cluster() {
    local label=$1 log
    say "build: make && make install in $REPO"
    log=$(mktemp)
    if ! (cd "$REPO" && make PG_CONFIG="$PG_CONFIG" && as_root make install PG_CONFIG="$PG_CONFIG") >"$log" 2>&1; then
        tail -30 "$log"; rm -f "$log"; die "build or install failed"
    fi
    rm -f "$log"

    DATA=$DIR/data
    SOCK=$DIR/sock
    WORK=$DIR/work
    if [ -f "$DATA/postmaster.pid" ]; then
        as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    mkdir -p "$DATA" "$SOCK" "$WORK"
    touch "$DIR/.catalog-scratch"
    chmod 755 "$DIR" "$WORK"
    chmod 700 "$DATA"
    [ "$(id -u)" -ne 0 ] || chown "$SVC_USER:" "$DATA" "$SOCK" "$WORK"
    say "cluster: initdb in $DATA"
    as_svc_in / "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<CONF

# $label
listen_addresses = ''
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'catalog'
shared_buffers = 512MB
max_wal_size = 8GB
autovacuum = off
catalog.audit_seal_database = '$DB'
catalog.rate_limit_write_rate = 1000000
catalog.rate_limit_write_burst = 1000000
CONF
    as_svc_in / "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null ||
        { tail -20 "$WORK/server.log"; die "the server did not start"; }
    STARTED=1
    PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -U postgres)
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >"$WORK/load.log" 2>&1 &&
        "${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION catalog CASCADE" >>"$WORK/load.log" 2>&1 ||
        { tail -20 "$WORK/load.log"; die "could not create the database and the extension"; }
    say "load: $PRODUCTS products (seed $SEED), audit triggers disabled (the fixture is not history)"
    "${PSQL[@]}" -d "$DB" -c "ALTER TABLE catalog.product DISABLE TRIGGER product_audit" \
        -c "ALTER TABLE catalog.category DISABLE TRIGGER category_audit" >/dev/null
    "${PSQL[@]}" -d "$DB" -v products="$PRODUCTS" -v seed="$SEED" -f "$REPO/test/data/sample.sql" >>"$WORK/load.log" 2>&1 ||
        { tail -20 "$WORK/load.log"; die "test/data/sample.sql failed"; }
    "${PSQL[@]}" -d "$DB" -c "ALTER TABLE catalog.product ENABLE TRIGGER product_audit" \
        -c "ALTER TABLE catalog.category ENABLE TRIGGER category_audit" >/dev/null
}
