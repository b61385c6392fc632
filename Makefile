# Makefile for the catalog extension (PGXS).
#
# Developer entry points (see README.md):
#   make run    install packages, build, start PostgreSQL 15 + PgBouncer, load sample data
#   make stop   stop what `make run` started
#   make test   bootstrap, then every suite against throw-away servers
#   make bench  benchmarks (not part of the test pass/fail)

EXTENSION = catalog
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" catalog.control)
MODULE_big = catalog
OBJS = \
	src/catalog.o \
	src/guc.o \
	src/shmem.o \
	src/validate.o \
	src/validate_sql.o \
	src/api.o \
	src/attributes.o \
	src/product.o \
	src/category.o \
	src/health.o \
	src/document.o \
	src/search.o \
	src/keys.o \
	src/audit.o \
	src/audit_mask.o \
	src/audit_scan.o \
	src/audit_chain.o \
	src/audit_part.o \
	src/audit_read.o

DATA = sql/catalog--$(EXTVERSION).sql

# pg_regress suites, one per concern; each runs in a preloaded throw-away instance.
REGRESS = validate product category roles
REGRESS_OPTS = --inputdir=. --encoding=UTF8 --temp-instance=tmp_check --temp-config=test/catalog.conf \
	--load-extension=pg_trgm --load-extension=catalog

ISOLATION = idempotency_race idempotency_purge sku_race version_race product_deadlock category_cycle_race category_depth_race search_pages_race search_timeout category_lock_order audit_chain_order audit_maintain_race
ISOLATION_OPTS = --inputdir=test/isolation --encoding=UTF8 --temp-instance=tmp_check_iso \
	--temp-config=test/catalog.conf --load-extension=pg_trgm --load-extension=catalog

PG_CPPFLAGS = -I$(srcdir)/src
# -Wno-unused-parameter: the version-1 calling convention hands fcinfo to every
# SQL-callable function, used or not (core does not build with -Wextra at all).
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = tmp_check tmp_check_iso results regression.diffs regression.out output_iso

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
endif

.PHONY: run stop test bench
run:
	test/harness/run.sh
stop:
	test/harness/stop.sh
test:
	test/harness/test.sh
bench:
	test/bench/run.sh
