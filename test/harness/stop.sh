#!/usr/bin/env bash
# stop.sh: `make stop`: stop the PgBouncer and PostgreSQL that `make run`
# started (found through .run/pgbouncer.pid and .run/pgdata).  Safe when
# nothing runs.  Data in .run/ is kept; remove the folder to start afresh.

set -uo pipefail
# shellcheck source=test/harness/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUN_DIR=$REPO_ROOT/.run
PGDATA_RUN=$RUN_DIR/pgdata
BOUNCER_PID=$RUN_DIR/pgbouncer.pid
status=0
stopped=0

# A `make run` as root leaves .run/ to the service user (mode 700): another
# user cannot read its pid files, and would report nothing to stop while
# both servers run.
if [ -e "$RUN_DIR" ] && ! { [ -r "$RUN_DIR" ] && [ -x "$RUN_DIR" ]; }; then
    die "cannot read $RUN_DIR (made by \`make run\` as root?): run \`sudo make stop\`"
fi

if bpid=$(pid_of_pidfile "$BOUNCER_PID" pgbouncer); then
    say "pgbouncer: stopping (pid $bpid)"
    # SIGTERM: immediate shutdown (clients are disconnected).
    if ! term_and_wait "$bpid"; then
        say "pgbouncer: pid $bpid did not exit within 10 s"
        status=1
    else
        stopped=$((stopped + 1))
        rm -f "$BOUNCER_PID"
    fi
fi

if pg_running "$PGDATA_RUN"; then
    say "postgres: stopping $PGDATA_RUN (-m fast)"
    if pg_stop "$PGDATA_RUN" fast >/dev/null; then
        stopped=$((stopped + 1))
    else
        say "postgres: pg_ctl stop failed (log: $RUN_DIR/postgresql.log)"
        status=1
    fi
fi

if [ "$stopped" -eq 0 ] && [ "$status" -eq 0 ]; then
    say "nothing to stop: no PgBouncer or PostgreSQL of make run is running"
fi
exit "$status"
