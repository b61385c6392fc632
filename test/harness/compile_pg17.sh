#!/usr/bin/env bash
# compile_pg17.sh: compile every file of src/ against PostgreSQL 17's server
# headers, with the flags PGXS gives the PostgreSQL 15 build plus the
# Makefile's own and the -fvisibility=hidden that PGXS adds to modules from
# 16 on, to an object (so the optimiser runs, and with it the warnings that
# need it, such as -Wclobbered), and fail on any error or warning.
#
#   test/harness/compile_pg17.sh WORKDIR
#
# The headers come from Debian 13 (trixie)'s postgresql-server-dev-17,
# fetched by apt-get with a private configuration and state under WORKDIR
# (the machine's own apt sources, lists and installed packages are not
# touched) and checked against the Debian archive keyring like any apt
# download; the package is only unpacked, never installed.  Only 15 runs
# here: this proves the PG_VERSION_NUM guards compile, not that 17 behaves.
#
# Debian 12's glibc has no strlcpy/strlcat while trixie's pg_config.h says it
# has, so port.h does not declare them: a forced include declares them
# (nothing is linked, so nothing needs their definitions).
#
# Exit: 0 when every file compiled without a diagnostic, 1 otherwise (the
# compiler's output is printed), 2 when the headers could not be fetched.

set -uo pipefail

WORK=${1:?usage: compile_pg17.sh WORKDIR}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

mkdir -p "$WORK" || exit 2
WORK=$(cd "$WORK" && pwd)
APT=$WORK/apt
rm -rf "$APT" "$WORK/root"
mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" \
    "$APT/state/lists/partial" "$APT/cache/archives/partial" "$APT/dl" "$WORK/root" || exit 2
[ -r "$KEYRING" ] || { echo "compile_pg17: $KEYRING is missing (package debian-archive-keyring)" >&2; exit 2; }
printf 'deb [signed-by=%s] http://deb.debian.org/debian trixie main\n' "$KEYRING" \
    >"$APT/etc/sources.list"

APT_OPTS=(
    -o "Dir::Etc=$APT/etc"
    -o "Dir::Etc::SourceList=$APT/etc/sources.list"
    -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$APT/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d"
    -o "Dir::State=$APT/state"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$APT/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Architecture=amd64"
    -o "Acquire::Languages=none"
    -o "Acquire::Retries=3"
)
# apt drops to the _apt user for downloads when run as root; that user cannot
# write into a private directory under /tmp owned by root.
[ "$(id -u)" -eq 0 ] && APT_OPTS+=(-o "APT::Sandbox::User=root")

if ! apt-get "${APT_OPTS[@]}" -q update >"$WORK/apt-update.log" 2>&1; then
    cat "$WORK/apt-update.log" >&2
    echo "compile_pg17: apt-get update of trixie failed" >&2
    exit 2
fi
if ! (cd "$APT/dl" && apt-get "${APT_OPTS[@]}" -q download postgresql-server-dev-17) \
    >"$WORK/apt-download.log" 2>&1; then
    cat "$WORK/apt-download.log" >&2
    echo "compile_pg17: apt-get download postgresql-server-dev-17 failed" >&2
    exit 2
fi
DEB=$(ls "$APT/dl"/postgresql-server-dev-17_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || { echo "compile_pg17: no package was downloaded" >&2; exit 2; }
dpkg-deb -x "$DEB" "$WORK/root" || exit 2
INC=$WORK/root/usr/include/postgresql/17/server
[ -f "$INC/pg_config.h" ] || { echo "compile_pg17: $INC/pg_config.h missing" >&2; exit 2; }
VERSION_NUM=$(sed -n 's/^#define PG_VERSION_NUM \([0-9]*\)$/\1/p' "$INC/pg_config.h")
case $VERSION_NUM in
    17????) ;;
    *) echo "compile_pg17: the headers are not PostgreSQL 17 (PG_VERSION_NUM '$VERSION_NUM')" >&2; exit 2 ;;
esac

cat >"$WORK/strl.h" <<'EOF'
#include <stddef.h>
extern size_t strlcpy(char *dst, const char *src, size_t siz);
extern size_t strlcat(char *dst, const char *src, size_t siz);
EOF

# the flags of the 15 build: PGXS's CFLAGS and CPPFLAGS from pg_config, the
# Makefile's PG_CFLAGS and PG_CPPFLAGS (read from the Makefile, not copied)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
read -r -a PGXS_CFLAGS <<<"$("$PG_CONFIG" --cflags)"
read -r -a PGXS_CPPFLAGS <<<"$("$PG_CONFIG" --cppflags)"
read -r -a OWN_CFLAGS <<<"$(sed -n 's/^PG_CFLAGS[[:space:]]*=[[:space:]]*//p' "$REPO/Makefile")"
[ "${#OWN_CFLAGS[@]}" -gt 0 ] || { echo "compile_pg17: no PG_CFLAGS in the Makefile" >&2; exit 2; }
EXTVERSION=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$REPO/catalog.control")

STATUS=0
COUNT=0
for src in "$REPO"/src/*.c; do
    COUNT=$((COUNT + 1))
    if ! out=$(gcc -c -o "$WORK/object.o" -fPIC -fvisibility=hidden \
        "${PGXS_CFLAGS[@]}" "${OWN_CFLAGS[@]}" "${PGXS_CPPFLAGS[@]}" \
        -include "$WORK/strl.h" -I"$REPO/src" -I"$INC" \
        -DCATALOG_LIBRARY_VERSION="\"$EXTVERSION\"" "$src" 2>&1) || [ -n "$out" ]; then
        printf '%s\n' "$out"
        echo "compile_pg17: ${src#"$REPO"/} does not compile cleanly against PostgreSQL $VERSION_NUM" >&2
        STATUS=1
    fi
done
[ "$COUNT" -gt 0 ] || { echo "compile_pg17: no source file in $REPO/src" >&2; exit 2; }
[ "$STATUS" -eq 0 ] && echo "compile_pg17: $COUNT files compiled against PostgreSQL $VERSION_NUM without a diagnostic"
exit "$STATUS"
