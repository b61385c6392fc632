# Makefile for the catalog extension (PGXS).
#
# Developer entry points (see README.md):
#   make run    install packages, build, start PostgreSQL 15 + PgBouncer, load sample data
#   make stop   stop what `make run` started
#   make test   bootstrap, then every suite against throw-away servers
#   make bench  benchmarks (not part of the test pass/fail)
#   make bench-cost  instructions per write, counted by callgrind
#   make bench-search-cost BASE=<commit>  instructions per search, two builds
#   make fuzz   libFuzzer targets of test/fuzz for FUZZ_SECONDS each (clang)

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
	src/audit_read.o \
	src/ratelimit.o \
	src/token.o \
	src/ddlguard.o

DATA = sql/catalog--$(EXTVERSION).sql

# pg_regress suites, one per concern; each runs in a preloaded throw-away instance.
REGRESS = validate product category roles settings
REGRESS_OPTS = --inputdir=. --encoding=UTF8 --temp-instance=tmp_check --temp-config=test/catalog.conf \
	--load-extension=pg_trgm --load-extension=catalog

# audit_seal_cut stays last: it leaves a forged audit row in the database.
ISOLATION = idempotency_race idempotency_purge sku_race version_race product_deadlock category_cycle_race category_depth_race search_pages_race search_timeout category_lock_order audit_chain_order audit_maintain_race audit_lock_timeout search_terms_cache ratelimit_cache_xact ratelimit_cache_reset audit_verify_retention audit_verify_maintain version_handoff audit_seal_time search_trgm_move category_delete_race snapshot_new_rows snapshot_new_category ddlguard_rename_lock audit_seal_cut
ISOLATION_OPTS = --inputdir=test/isolation --encoding=UTF8 --temp-instance=tmp_check_iso \
	--temp-config=test/catalog.conf --load-extension=pg_trgm --load-extension=catalog

# health() compares the library's version with the installed extension's:
# both come from catalog.control.
PG_CPPFLAGS = -I$(srcdir)/src -DCATALOG_LIBRARY_VERSION='"$(EXTVERSION)"'
# -Wno-unused-parameter: the version-1 calling convention hands fcinfo to every
# SQL-callable function, used or not (core does not build with -Wextra at all).
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

EXTRA_CLEAN = tmp_check tmp_check_iso results regression.diffs regression.out output_iso \
	.tmp/fuzz

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
endif

# the version is a compiler flag, which make does not track: rebuild
# health.o (and its bitcode) when catalog.control changes
src/health.o src/health.bc: catalog.control

.PHONY: run stop test bench bench-cost bench-search-cost bench-profile
run:
	test/harness/run.sh
stop:
	test/harness/stop.sh
test:
	test/harness/test.sh
bench:
	test/bench/run.sh
bench-cost:
	test/bench/cost.sh
# where the CPU time of an audited create_product goes, under load (perf)
bench-profile:
	test/bench/profile.sh
# instructions per search of two commits: make bench-search-cost BASE=<commit> [NEW=<commit>]
bench-search-cost:
	test/bench/search_cost.sh $(BASE) $(NEW)

# libFuzzer targets (test/fuzz): the pure files built outside the server
# with -DFRONTEND against libpgcommon and libpgport, by clang with ASan and
# UBSan.  `make fuzz` runs each target for FUZZ_SECONDS from the seed
# corpus test/data/fuzz_seed (one hex line per seed, NAME.hex, so that no
# raw byte sequence - control bytes, invalid UTF-8, invisible joiners - sits
# in the repository; decoded into $(FUZZ_DIR)/seed by perl before a run);
# new inputs go to $(FUZZ_DIR)/corpus-<target>
# and a crash reproducer (or an input that runs longer than 25 s) to
# $(FUZZ_DIR)/<target>-crash-* (or -timeout-*, -leak-*, -oom-*).
# FUZZ_FLAGS adds libFuzzer options.  -Wno-ignored-attributes: Debian built
# pg_config.h with gcc, whose printf archetype gnu_printf clang does not know.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_DIR ?= .tmp/fuzz
FUZZ_FLAGS ?=
FUZZ_TARGETS = fuzz_validate fuzz_audit_scan
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror -Wno-ignored-attributes -DFRONTEND -I$(srcdir)/src -I$(includedir_server) -I$(includedir_internal)
FUZZ_LIBS = -L$(pkglibdir) -lpgcommon -lpgport -lm

$(FUZZ_DIR)/fuzz_validate: test/fuzz/fuzz_validate.c src/validate.c src/validate.h
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/fuzz/fuzz_validate.c src/validate.c $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_audit_scan: test/fuzz/fuzz_audit_scan.c src/audit_scan.c src/audit_scan.h src/audit_marks.h
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/fuzz/fuzz_audit_scan.c src/audit_scan.c $(FUZZ_LIBS)

.PHONY: fuzz fuzz-build fuzz-seed
fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
fuzz-seed:
	@rm -rf $(FUZZ_DIR)/seed && mkdir -p $(FUZZ_DIR)/seed
	@for f in test/data/fuzz_seed/*.hex; do \
		perl -ne 'chomp; die "not hex: $$ARGV\n" if /[^0-9a-fA-F]/ || length($$_) % 2; print pack("H*", $$_)' \
			"$$f" > $(FUZZ_DIR)/seed/$$(basename "$$f" .hex) || exit 1; \
	done
fuzz: fuzz-build fuzz-seed
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus-$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=8192 -timeout=25 \
			-artifact_prefix=$(FUZZ_DIR)/$$t- $(FUZZ_FLAGS) \
			$(FUZZ_DIR)/corpus-$$t $(FUZZ_DIR)/seed; \
	done
