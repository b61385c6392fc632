/*-------------------------------------------------------------------------
 *
 * search.c
 *	  Product search: catalog_api.search_products, catalog_api.product_facets,
 *	  the typo dictionary trigger and catalog.search_explain.
 *
 * Matching.  A query q is canonicalised like a product name and split into
 * words by the 'simple' text search configuration.  A product matches in
 * the first of these classes that applies (each product appears once):
 *
 *	 0 sku_exact	upper(q) is the SKU
 *	 1 sku_prefix	the SKU starts with upper(q) (2 characters or more)
 *	 2 name			every word in the name or SKU (the last word as a prefix)
 *	 3 text			every word in name, SKU, attribute values or description
 *	 4 substring	the name contains q, or the SKU contains upper(q)
 *	 5 typo			every word, allowing 1 edit from 5 characters and 2 from
 *					9 (Damerau-Levenshtein, over characters), in the name or
 *					SKU
 *
 * Relevance is the class, then the SKU for class 1 and the newest (highest
 * id) first for the others: a deterministic order that an index can
 * produce, so a common word never ranks every match.  The other sorts
 * (price, newest, name) order the union of the classes.
 *
 * Index-aware planning.  Every query a search runs is one of a fixed set of
 * statements ("variants"), prepared once per backend as generic plans and
 * kept.  Each variant is written so that exactly one access path is open to
 * the planner: the conditions it must not use for access are wrapped in
 * "(...) IS TRUE", which no index can serve, and an order it must not take
 * from an index is written as an expression ("p.id + 0").  The functions run
 * with enable_seqscan = off, so no variant can fall back to a sequential
 * scan of catalog.product.  C chooses the variant per query from the
 * shape of q and the estimated number of matches, read from the planner's
 * own statistics (pg_statistic: most common lexemes of search_doc, most
 * common values of status and category_id, the histogram of name and
 * sku): an ordered index scan that stops after a page when matches are
 * common, a bitmap index scan and a sort of the matches when they are rare.
 *
 * Keyset pagination.  next_cursor carries the class and the sort key of the
 * last row returned, signed with HMAC-SHA256 under a key of
 * catalog.signing_key together with a fingerprint of the query, so a cursor
 * cannot be forged, altered or replayed against another query.  The next
 * page continues strictly after that key: no OFFSET, no duplicate, no gap,
 * whatever other sessions insert or update in between, for every row whose
 * own position does not change; a row whose sort key or class changes is
 * shown at its new place (missed, or seen a second time), as in any keyset
 * design.
 *
 * Safety.  q never reaches to_tsquery raw (words are lexemes of the parser,
 * quoted), LIKE patterns are escaped, SQL is fixed text, and each call runs
 * under its own timer (catalog.search_timeout).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <wctype.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/indexing.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "commands/trigger.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "tsearch/ts_locale.h"
#include "tsearch/ts_type.h"
#include "tsearch/ts_utils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "api.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "validate_sql.h"
#include "ratelimit.h"

/* Limits of the search input. */
#define SEARCH_Q_MAX			200		/* code points after canonicalisation */
#define SEARCH_MAX_WORDS		10
#define SEARCH_TERM_MIN			5		/* code points of a typo dictionary word */
#define SEARCH_TERM_MAX			64
#define SEARCH_MAX_CANDIDATES	8		/* typo corrections per word */
#define SEARCH_PAGE_MAX			100
#define SEARCH_CURSOR_MAX		2048	/* characters of a cursor */
#define SEARCH_MAC_LEN			16		/* truncated HMAC-SHA256, 128 bits */
#define SEARCH_MAX_HIGHLIGHTS	8
#define FACET_TOP_MAX			100

/* Match classes, in relevance order. */
typedef enum SearchClass
{
	SC_SKU_EXACT,
	SC_SKU_PREFIX,
	SC_NAME,
	SC_TEXT,
	SC_SUBSTRING,
	SC_TYPO,
	SC_COUNT
} SearchClass;

static const char *const class_names[SC_COUNT] = {
	"sku_exact", "sku_prefix", "name", "text", "substring", "typo"
};

typedef enum SearchSort
{
	SS_RELEVANCE,
	SS_PRICE_ASC,
	SS_PRICE_DESC,
	SS_NEWEST,
	SS_NAME,
	SS_COUNT
} SearchSort;

static const char *const sort_names[SS_COUNT] = {
	"relevance", "price_asc", "price_desc", "newest", "name"
};

/* Access paths of a sort over the union of the classes. */
typedef enum SortPath
{
	SP_GLOBAL,					/* ordered scan of the sort's index */
	SP_CATEGORY,				/* ordered scan of the sort's per-category index */
	SP_BITMAP_TEXT,				/* bitmap scans of the text indexes, then sort */
	SP_BITMAP_CATEGORY,			/* bitmap scan of the category index, then sort */
	SP_BITMAP_CATEGORY_PRICE,	/* scan of the category and price index, then sort */
	SP_BITMAP_TEXT_CATEGORY,	/* the text and category indexes, ANDed, then sort */
	SP_BITMAP_PRICE,			/* bitmap scan of the price range, then sort */
	SP_BITMAP_STATUS,			/* bitmap scan of one status (filters only), then sort */
	SP_COUNT
} SortPath;

/*
 * Parameters shared by every variant (1-based in SQL).  One fixed vector,
 * so that any variant can be run with the same values.
 */
enum
{
	PRM_STATUS,					/* $1  catalog.product_status */
	PRM_MIN_PRICE,				/* $2  numeric */
	PRM_MAX_PRICE,				/* $3  numeric */
	PRM_CATEGORY,				/* $4  bigint: the category when it has no descendants */
	PRM_CATEGORIES,				/* $5  bigint[]: category and descendants, or NULL */
	PRM_SKU,					/* $6  text: exact SKU */
	PRM_SKU_LO,					/* $7  text: SKU prefix, lower bound */
	PRM_SKU_HI,					/* $8  text: SKU prefix, upper bound (exclusive) */
	PRM_TSQ_NAME,				/* $9  tsquery: words in name or SKU */
	PRM_TSQ_ALL,				/* $10 tsquery: words anywhere */
	PRM_NAME_LIKE,				/* $11 text: ILIKE pattern for the name */
	PRM_SKU_LIKE,				/* $12 text: LIKE pattern for the SKU */
	PRM_TSQ_TYPO,				/* $13 tsquery: corrected words in the name */
	PRM_KEY_PRICE,				/* $14 numeric: keyset */
	PRM_KEY_TIME,				/* $15 timestamptz: keyset */
	PRM_KEY_TEXT,				/* $16 text: keyset (name or SKU) */
	PRM_KEY_ID,					/* $17 bigint: keyset */
	PRM_LIMIT,					/* $18 bigint: the walk budget of an ordered variant */
	PRM_NO_TEXT,				/* $19 boolean: q has no text condition */
	PRM_STATUSES,				/* $20 catalog.product_status[]: facets */
	PRM_COUNT
};

/* A search request, validated. */
typedef struct SearchRequest
{
	/* q */
	char	   *q;				/* canonical, "" when absent */
	int			qlen;
	int			nwords;
	char	   *words[SEARCH_MAX_WORDS];	/* lexemes, lower case */
	int			wordlen[SEARCH_MAX_WORDS];
	char	   *sku;			/* upper-cased q when it looks like a SKU */
	bool		sku_mode;		/* q is an identifier: SKU classes only */
	bool		sku_exact;		/* ... and is the SKU of a product that passes
								 * the filters (sku_mode_exact; kept in the
								 * cursor) */
	bool		has_text;		/* any text condition at all */
	bool		typo_done;		/* PRM_TSQ_TYPO computed */
	char	   *typo_words[SEARCH_MAX_WORDS][SEARCH_MAX_CANDIDATES];
	int			ntypo[SEARCH_MAX_WORDS];

	/* filters */
	int64		category_id;	/* -1: none */
	ArrayType  *categories;
	int			ncategories;
	int64	   *category_ids;
	Numeric		min_price;
	Numeric		max_price;
	bool		price_filtered;
	char	   *status;
	SearchSort	sort;
	int			page_size;
	int			top;			/* facets */

	/* cursor */
	bool		has_cursor;
	int			cur_class;
	bool		cur_sku_exact;	/* sku_exact as the walk's first page decided */
	int64		cur_id;
	TimestampTz cur_time;
	char	   *cur_price;		/* numeric text */
	char	   *cur_text;

	/* the call's memory context (outlives SPI) */
	MemoryContext cxt;

	/* parameter vector */
	Oid			status_type;
	Oid			status_array_type;
	Datum		values[PRM_COUNT];
	char		nulls[PRM_COUNT];
} SearchRequest;

/* One row of a result page. */
typedef struct SearchRow
{
	int64		id;
	char	   *sku;
	char	   *name;
	Numeric		price;
	char	   *currency;
	char	   *status;
	int64		category_id;
	char	   *category_name;
	TimestampTz created_at;
	int			klass;
} SearchRow;

/* Column numbers of a variant's result (1-based, SPI). */
#define COL_ID			1
#define COL_SKU			2
#define COL_NAME		3
#define COL_PRICE		4
#define COL_CURRENCY	5
#define COL_STATUS		6
#define COL_CATEGORY	7
#define COL_CREATED		8
#define COL_CATNAME		9
#define COL_CLASS		10

/* A kept statement. */
typedef struct SearchPlan
{
	char	   *sql;			/* in TopMemoryContext */
	SPIPlanPtr	plan;
} SearchPlan;

/*
 * The schema name V_TYPO_TERMS's kept text was built with, and whether a
 * change of pg_proc or pg_namespace (ALTER EXTENSION pg_trgm SET SCHEMA
 * moves its functions; ALTER SCHEMA ... RENAME renames it) means it must
 * be checked before the next use.  Without the check every backend that
 * had run a typo search failed with 42883 on each one until it
 * reconnected: the plan cache re-parses the kept text, which still names
 * the old schema.
 */
static char typo_schema[NAMEDATALEN];
static bool typo_schema_stale = true;
static bool typo_callbacks = false;

/* Variant numbering: see variant_sql(). */
#define V_SKU_EXACT			0
#define V_SKU_PREFIX		1
/* a class's variants: ordered scan, bitmap scan, bitmap scan ANDed with the category */
#define TIER_ORDERED		0
#define TIER_BITMAP			1
#define TIER_BITMAP_CAT		2
#define TIER_BITMAP_PRICE	3	/* driven by a narrow price range */
#define TIER_BITMAP_CATONLY	4	/* driven by a small category, words as a filter */
#define TIER_BITMAP_CATPRICE	5	/* driven by a category and a price range together */
#define TIER_KINDS			6
#define V_TIER(c, k)		(2 + ((c) - SC_NAME) * TIER_KINDS + (k))	/* c = SC_NAME..SC_TYPO */
#define V_TIER_FIRST		V_TIER(SC_NAME, 0)
#define V_TIER_LAST			V_TIER(SC_TYPO, TIER_KINDS - 1)
#define V_SORT_BASE			(V_TIER_LAST + 1)
#define V_SORT(s, p)		(V_SORT_BASE + ((s) - SS_PRICE_ASC) * SP_COUNT + (p))
#define V_SORT_LAST			V_SORT(SS_NAME, SP_COUNT - 1)
#define V_FACETS(t, c)		(V_SORT_LAST + 1 + (t) * 2 + (c))
#define V_TYPO_TERMS		(V_FACETS(1, 1) + 1)
#define V_DESCENDANTS		(V_TYPO_TERMS + 1)
#define V_CATEGORIES		(V_DESCENDANTS + 1)
/* the SKU prefix class past its walk budget: see run_sku_prefix() */
#define V_SKU_PREFIX_SPAN	(V_CATEGORIES + 1)	/* rows of the range, capped */
#define V_SKU_PREFIX_CAT	(V_CATEGORIES + 2)	/* driven by the category */
#define V_SKU_PREFIX_PRICE	(V_CATEGORIES + 3)	/* driven by the price range */
#define V_SKU_PREFIX_CATPRICE	(V_CATEGORIES + 4)	/* driven by both */
#define V_FACETS_PRICE		(V_CATEGORIES + 5)	/* facets driven by a narrow price range */
#define V_FACETS_ALL		(V_CATEGORIES + 6)	/* facets without text, category or price */
/* entries a filters-only walk of price_asc, price_desc or newest had, capped */
#define V_SORT_SPAN(s)		(V_CATEGORIES + 7 + (s) - SS_PRICE_ASC)
#define V_COUNT				(V_SORT_SPAN(SS_NEWEST) + 1)

static SearchPlan plans[V_COUNT];
static Oid	plans_status_type = InvalidOid;

/*
 * Planning traces for operators, to the server log only (when
 * log_min_messages is debug1 or lower), never to the client: they carry
 * statistics over every row, drafts included (row counts, the share of
 * published rows, lexeme frequencies), which any caller could otherwise
 * read by setting client_min_messages.
 */
#define SEARCH_TRACE(...) \
	do { \
		if (log_min_messages <= DEBUG1) \
			ereport(LOG_SERVER_ONLY, errmsg_internal(__VA_ARGS__)); \
	} while (0)

/* EXPLAIN capture for catalog.search_explain. */
static bool explaining = false;
static JsonbParseState *explain_state = NULL;
static MemoryContext explain_cxt = NULL;	/* outlives SPI */

/* The per-call timer. */
static TimeoutId search_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t search_timed_out = false;

PG_FUNCTION_INFO_V1(catalog_search_products);
PG_FUNCTION_INFO_V1(catalog_product_facets);
PG_FUNCTION_INFO_V1(catalog_search_explain);
PG_FUNCTION_INFO_V1(catalog_search_terms_collect);
PG_FUNCTION_INFO_V1(catalog_search_term_lock);
PG_FUNCTION_INFO_V1(catalog_refresh_search_terms);

/* ------------------------------------------------------------------------
 * SQL of the variants
 * ------------------------------------------------------------------------
 */

/*
 * Every variant returns these columns.  The category name is a scalar
 * subquery: with a LIMIT, the planner evaluates it after the sort, for the
 * rows returned only (make_sort_input_target), so it costs one primary key
 * probe per row of the page.  The LIMIT is the largest page plus one, a
 * constant so that the generic plan is costed for a page (a LIMIT
 * parameter would be costed as 10% of the table); SPI stops the executor
 * after the rows the page needs (SPI_execute_plan's count).
 */
#define SELECT_COLS \
	"SELECT p.id, p.sku, p.name, p.price, p.currency, p.status::text AS status," \
	" p.category_id, p.created_at," \
	" (SELECT c.name FROM catalog.category c WHERE c.id = p.category_id) AS category_name, "
#define KLASS_NULL "NULL::integer AS klass "
#define SELECT_INNER SELECT_COLS KLASS_NULL "FROM catalog.product p WHERE "

/*
 * An ordered variant walks its index inside a subquery bounded by $18 rows
 * (the walk budget, set by C from the estimate) and filters outside it, so
 * a walk can never read more than the budget, however wrong the estimate
 * (two words that never occur together); when it returns less than a page,
 * C runs the bitmap variant of the same query instead.
 */
#define WALK_OPEN "FROM (SELECT * FROM catalog.product p WHERE "
#define WALK_CLOSE " LIMIT $18) p WHERE "
#define LIMIT_PAGE " LIMIT 101"

/*
 * Conditions a variant must not use to access the table are wrapped in
 * booleq((...), true): no index can serve a function call, and the planner
 * estimates it at a constant 1/3 instead of multiplying the default
 * selectivities of what is inside, which would make an ordered scan look
 * as if it had to read the whole index to fill a page.
 */
#define HIDE_OPEN "pg_catalog.booleq(("

#define P_STATUS	"p.status = $1"
#define P_PRICE		"p.price >= $2 AND p.price <= $3"
#define P_CATS		"($5 IS NULL OR p.category_id = ANY ($5))"
#define E_SKU		"p.sku = $6"
#define E_PREFIX	"(p.sku COLLATE \"C\" >= $7 AND p.sku COLLATE \"C\" < $8)"
#define E_NAME		"p.search_doc @@ $9"
#define E_TEXT		"p.search_doc @@ $10"
#define E_SUBSTR	"(p.name ILIKE $11 OR p.sku LIKE $12)"
#define E_TYPO		"p.search_doc @@ $13"
#define M_ANY		"(" E_SKU " OR " E_PREFIX " OR " E_TEXT " OR " E_SUBSTR " OR " E_TYPO ")"
#define P_MATCH		"($19 OR " M_ANY ")"
/* the class of a row of a sorted result (computed for the rows kept only) */
#define KLASS_CASE \
	"CASE WHEN $19 THEN NULL WHEN " E_SKU " THEN 0 WHEN " E_PREFIX " THEN 1" \
	" WHEN " E_NAME " THEN 2 WHEN " E_TEXT " THEN 3 WHEN " E_SUBSTR " THEN 4" \
	" WHEN " E_TYPO " THEN 5 END AS klass "
#define SELECT_INNER_K SELECT_COLS KLASS_CASE "FROM catalog.product p WHERE "

/* A class's condition without its driving clause: rows of earlier classes. */
static const char *const class_exclusion[SC_COUNT] = {
	"true",
	"(" E_SKU ") IS NOT TRUE",
	"(" E_SKU " OR " E_PREFIX ") IS NOT TRUE",
	"(" E_SKU " OR " E_PREFIX " OR " E_NAME ") IS NOT TRUE",
	"(" E_SKU " OR " E_PREFIX " OR " E_TEXT ") IS NOT TRUE",
	"(" E_SKU " OR " E_PREFIX " OR " E_TEXT " OR " E_SUBSTR ") IS NOT TRUE"
};
static const char *const class_driver[SC_COUNT] = {
	E_SKU, E_PREFIX, E_NAME, E_TEXT, E_SUBSTR, E_TYPO
};

/* Per sort: keyset condition, index order, hidden order, outer order. */
static const char *const sort_keyset[SS_COUNT] = {
	NULL,
	"(p.price, p.id) > ($14, $17)",
	"(p.price, p.id) < ($14, $17)",
	"(p.created_at, p.id) < ($15, $17)",
	"(p.name, p.id) > ($16, $17)"
};
static const char *const sort_order[SS_COUNT] = {
	NULL,
	"p.price, p.id",
	"p.price DESC, p.id DESC",
	"p.created_at DESC, p.id DESC",
	"p.name, p.id"
};
static const char *const sort_hidden_order[SS_COUNT] = {
	NULL,
	"p.price + 0, p.id + 0",
	"p.price + 0 DESC, p.id + 0 DESC",
	"p.created_at + '0 s'::interval DESC, p.id + 0 DESC",
	"p.name || '', p.id + 0"
};

/* The price buckets of the facets, by their lower bounds (-1 ends the list). */
#define PRICE_BUCKETS 8

static const int price_bucket_bounds[PRICE_BUCKETS + 1] = {0, 10, 25, 50, 100, 250, 500, 1000, -1};

/*
 * trgm_schema
 *	  The schema of pg_trgm (relocatable: not necessarily public), for its
 *	  similarity operator.  get_extension_schema() is not exported before
 *	  PostgreSQL 16, hence the scan of pg_extension.
 */
static char *
trgm_schema(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;
	char	   *name;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_trgm"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	name = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension pg_trgm is not installed"),
				 errhint("The catalog extension requires pg_trgm.")));
	return name;
}

/*
 * sorted_bitmap_sql
 *	  A sorted variant driven by a bitmap scan: driver is what the scan may
 *	  use, hidden the conditions it must not (with the sort's keyset), and
 *	  the order is one no index provides, so the rows are sorted.
 */
static char *
sorted_bitmap_sql(const char *driver, const char *hidden, SearchSort s)
{
	return psprintf(SELECT_INNER_K "%s AND " HIDE_OPEN "%s AND %s), true) ORDER BY %s" LIMIT_PAGE,
					driver, hidden, sort_keyset[s], sort_hidden_order[s]);
}

/*
 * variant_sql
 *	  The fixed SQL text of variant v.  Built from the constant fragments
 *	  above only; nothing from the input.
 */
static char *
variant_sql(int v)
{
	if (v == V_SKU_EXACT)
		return psprintf(SELECT_INNER
						E_SKU " AND " HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_CATS "), true)"
						" ORDER BY p.id" LIMIT_PAGE);
	if (v == V_SKU_PREFIX)
		return psprintf(SELECT_COLS KLASS_NULL
						WALK_OPEN E_PREFIX " AND p.sku COLLATE \"C\" > $16"
						" ORDER BY p.sku COLLATE \"C\"" WALK_CLOSE
						HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_CATS " AND %s), true)"
						" ORDER BY p.sku COLLATE \"C\"" LIMIT_PAGE,
						class_exclusion[SC_SKU_PREFIX]);
	if (v >= V_SORT_SPAN(SS_PRICE_ASC) && v <= V_SORT_SPAN(SS_NEWEST))
	{
		SearchSort	s = SS_PRICE_ASC + (v - V_SORT_SPAN(SS_PRICE_ASC));

		/* the walk's conditions (SP_GLOBAL below), counted up to its budget */
		return psprintf("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM catalog.product p WHERE %s%s"
						" LIMIT $18 + 1) s",
						s == SS_NEWEST ? "" : P_PRICE " AND ", sort_keyset[s]);
	}
	if (v == V_SKU_PREFIX_SPAN)
		return pstrdup("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM catalog.product p WHERE "
					   E_PREFIX " AND p.sku COLLATE \"C\" > $16 LIMIT $18 + 1) s");

	/*
	 * The SKU prefix driven by the filters: the prefix and the keyset are
	 * hidden and the order is not the SKU index's, so neither can lead the
	 * plan back to a walk of the range.
	 */
	if (v == V_SKU_PREFIX_CAT || v == V_SKU_PREFIX_PRICE || v == V_SKU_PREFIX_CATPRICE)
		return psprintf(SELECT_INNER "%s AND " HIDE_OPEN "%s AND " E_PREFIX
						" AND p.sku COLLATE \"C\" > $16 AND %s), true)"
						" ORDER BY (p.sku || '') COLLATE \"C\"" LIMIT_PAGE,
						v == V_SKU_PREFIX_CAT ? "p.category_id = ANY ($5)" :
						v == V_SKU_PREFIX_PRICE ? P_PRICE :
						"p.category_id = ANY ($5) AND " P_PRICE,
						v == V_SKU_PREFIX_CAT ? P_STATUS " AND " P_PRICE :
						v == V_SKU_PREFIX_PRICE ? P_STATUS " AND " P_CATS :
						P_STATUS,
						class_exclusion[SC_SKU_PREFIX]);
	if (v >= V_TIER_FIRST && v <= V_TIER_LAST)
	{
		int			c = SC_NAME + (v - V_TIER_FIRST) / TIER_KINDS;
		int			k = (v - V_TIER_FIRST) % TIER_KINDS;

		if (k == TIER_BITMAP_CATPRICE)
			return psprintf(SELECT_INNER
							"p.category_id = ANY ($5) AND " P_PRICE " AND " HIDE_OPEN P_STATUS
							" AND p.id < $17 AND %s AND %s), true)"
							" ORDER BY p.id + 0 DESC" LIMIT_PAGE,
							class_driver[c], class_exclusion[c]);
		if (k == TIER_BITMAP_CATONLY)
			return psprintf(SELECT_INNER
							"p.category_id = ANY ($5) AND " HIDE_OPEN P_STATUS " AND " P_PRICE
							" AND p.id < $17 AND %s AND %s), true)"
							" ORDER BY p.id + 0 DESC" LIMIT_PAGE,
							class_driver[c], class_exclusion[c]);
		if (k == TIER_BITMAP_PRICE)
			return psprintf(SELECT_INNER
							P_PRICE " AND " HIDE_OPEN P_STATUS " AND " P_CATS
							" AND p.id < $17 AND %s AND %s), true)"
							" ORDER BY p.id + 0 DESC" LIMIT_PAGE,
							class_driver[c], class_exclusion[c]);
		if (k == TIER_BITMAP_CAT)
			return psprintf(SELECT_INNER
							"%s AND p.category_id = ANY ($5) AND " HIDE_OPEN P_STATUS " AND " P_PRICE
							" AND p.id < $17 AND %s), true)"
							" ORDER BY p.id + 0 DESC" LIMIT_PAGE,
							class_driver[c], class_exclusion[c]);
		if (k == TIER_ORDERED)
			return psprintf(SELECT_COLS KLASS_NULL
							WALK_OPEN "p.id < $17 ORDER BY p.id DESC" WALK_CLOSE
							HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_CATS
							" AND %s AND %s), true)"
							" ORDER BY p.id DESC" LIMIT_PAGE,
							class_driver[c], class_exclusion[c]);
		return psprintf(SELECT_INNER
						"%s AND " HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_CATS
						" AND p.id < $17 AND %s), true)"
						" ORDER BY p.id + 0 DESC" LIMIT_PAGE,
						class_driver[c], class_exclusion[c]);
	}
	if (v >= V_SORT_BASE && v <= V_SORT_LAST)
	{
		SearchSort	s = SS_PRICE_ASC + (v - V_SORT_BASE) / SP_COUNT;
		SortPath	p = (v - V_SORT_BASE) % SP_COUNT;

		switch (p)
		{
			case SP_GLOBAL:
				/* status is a filter: see the indexes in catalog--1.0.sql */
				if (s == SS_PRICE_ASC || s == SS_PRICE_DESC)
					return psprintf(SELECT_COLS KLASS_CASE
									WALK_OPEN P_PRICE " AND %s ORDER BY %s" WALK_CLOSE
									HIDE_OPEN P_STATUS " AND " P_CATS " AND " P_MATCH "), true)"
									" ORDER BY %s" LIMIT_PAGE,
									sort_keyset[s], sort_order[s], sort_order[s]);
				if (s == SS_NEWEST)
					return psprintf(SELECT_COLS KLASS_CASE
									WALK_OPEN "%s ORDER BY %s" WALK_CLOSE
									HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_CATS
									" AND " P_MATCH "), true)"
									" ORDER BY %s" LIMIT_PAGE,
									sort_keyset[s], sort_order[s], sort_order[s]);
				/* name: index (name, status) */
				return psprintf(SELECT_COLS KLASS_CASE
								WALK_OPEN "%s AND " P_STATUS " ORDER BY %s" WALK_CLOSE
								HIDE_OPEN P_PRICE " AND " P_CATS " AND " P_MATCH "), true)"
								" ORDER BY %s" LIMIT_PAGE,
								sort_keyset[s], sort_order[s], sort_order[s]);
			case SP_CATEGORY:
				if (s == SS_PRICE_ASC || s == SS_PRICE_DESC)
					return psprintf(SELECT_COLS KLASS_CASE
									WALK_OPEN "p.category_id = $4 AND " P_PRICE " AND %s ORDER BY %s"
									WALK_CLOSE
									HIDE_OPEN P_STATUS " AND " P_MATCH "), true)"
									" ORDER BY %s" LIMIT_PAGE,
									sort_keyset[s], sort_order[s], sort_order[s]);
				if (s == SS_NEWEST)
					return psprintf(SELECT_COLS KLASS_CASE
									WALK_OPEN "p.category_id = $4 AND %s ORDER BY %s" WALK_CLOSE
									HIDE_OPEN P_STATUS " AND " P_PRICE " AND " P_MATCH "), true)"
									" ORDER BY %s" LIMIT_PAGE,
									sort_keyset[s], sort_order[s], sort_order[s]);
				return NULL;	/* no per-category name index */
			case SP_BITMAP_TEXT:
				return sorted_bitmap_sql(M_ANY, P_STATUS " AND " P_PRICE " AND " P_CATS, s);
			case SP_BITMAP_PRICE:
				return sorted_bitmap_sql(P_PRICE, P_STATUS " AND " P_CATS " AND " P_MATCH, s);
			case SP_BITMAP_STATUS:

				/*
				 * The status as an index condition of (status, category_id,
				 * price, id): under row-level security it cannot order a
				 * scan (see the indexes in catalog--1.0.sql), but it can
				 * bound one, which a status holding few rows needs.
				 */
				return sorted_bitmap_sql(P_STATUS, P_PRICE " AND " P_CATS " AND " P_MATCH, s);
			case SP_BITMAP_TEXT_CATEGORY:
				return sorted_bitmap_sql(M_ANY " AND p.category_id = ANY ($5)",
										 P_STATUS " AND " P_PRICE, s);
			case SP_BITMAP_CATEGORY_PRICE:
				return sorted_bitmap_sql("p.category_id = ANY ($5) AND " P_PRICE,
										 P_STATUS " AND " P_MATCH, s);
			case SP_BITMAP_CATEGORY:
				return sorted_bitmap_sql("p.category_id = ANY ($5)",
										 P_STATUS " AND " P_PRICE " AND " P_MATCH, s);
			default:
				return NULL;
		}
	}
	if ((v >= V_FACETS(0, 0) && v <= V_FACETS(1, 1)) || v == V_FACETS_PRICE || v == V_FACETS_ALL)
	{
		bool		text = v < V_FACETS_PRICE && (v - V_FACETS(0, 0)) / 2 == 1;
		bool		cats = v < V_FACETS_PRICE && (v - V_FACETS(0, 0)) % 2 == 1;
		StringInfoData sql;

		/*
		 * One row per (status, category): its count, then how many of its
		 * rows lie below each bucket's upper bound (C takes the buckets as
		 * differences).  One hash key per row, and comparisons of the price
		 * with constants: at a million products, grouping sets over a CASE
		 * of the price took twice as long (width_bucket() over a numeric
		 * array one and a half times).
		 *
		 * The generic plan takes a range of parameters for a narrow one, so
		 * the price range is hidden wherever it must not drive: with text,
		 * it (and the statuses) would be ANDed into the text's bitmap, read
		 * in full (the default range is every row) and make it lossy, 4 s
		 * for "premium" at a million products.  A category reads the
		 * statuses, its ids and the price range from (status, category_id,
		 * price, id).  Without text or a category, the statuses drive an
		 * index-only scan of that index, the price range hidden or, without
		 * one, left out (the table's CHECK keeps NaN out, which the range
		 * would exclude); V_FACETS_PRICE is the other way round, for a
		 * range narrow enough to drive.
		 */
		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT p.status::text, p.category_id, pg_catalog.count(*)");
		for (int b = 1; b < PRICE_BUCKETS; b++)
			appendStringInfo(&sql, ", pg_catalog.count(*) FILTER (WHERE p.price < %d)",
							 price_bucket_bounds[b]);
		appendStringInfoString(&sql, " FROM catalog.product p WHERE ");
		if (v == V_FACETS_PRICE)
			appendStringInfoString(&sql, P_PRICE " AND " HIDE_OPEN "p.status = ANY ($20)), true)");
		else if (v == V_FACETS_ALL)
			appendStringInfoString(&sql, "p.status = ANY ($20)");
		else if (!text && !cats)
			appendStringInfoString(&sql, "p.status = ANY ($20) AND " HIDE_OPEN P_PRICE "), true)");
		else if (text)
			appendStringInfo(&sql, M_ANY " AND %s" HIDE_OPEN "p.status = ANY ($20) AND " P_PRICE
							 "), true)",
							 cats ? "p.category_id = ANY ($5) AND " : "");
		else
			appendStringInfoString(&sql, "p.category_id = ANY ($5) AND p.status = ANY ($20) AND "
								   P_PRICE);
		appendStringInfoString(&sql, " GROUP BY p.status, p.category_id");
		return sql.data;
	}
	if (v == V_TYPO_TERMS)
	{
		/* best first and deterministic: the same candidates on every page */
		char	   *schema = trgm_schema();
		const char *nsp = quote_identifier(schema);

		/* after the callbacks (typo_schema_check): no move goes unseen */
		strlcpy(typo_schema, schema, sizeof(typo_schema));
		typo_schema_stale = false;

		return psprintf("SELECT d.term FROM (SELECT DISTINCT t.term FROM catalog.search_term t"
						" WHERE t.term OPERATOR(%s.%%) $1"
						" AND pg_catalog.length(t.term) BETWEEN $2 AND $3"
						" AND t.status = ANY ($4)) d"
						" ORDER BY %s.similarity(d.term, $1) DESC, d.term COLLATE \"C\" LIMIT 200",
						nsp, nsp);
	}
	if (v == V_DESCENDANTS)
		return pstrdup("WITH RECURSIVE t (id, depth) AS ("
					   " SELECT c.id, 0 FROM catalog.category c WHERE c.id = $1"
					   " UNION ALL SELECT c.id, t.depth + 1 FROM catalog.category c"
					   " JOIN t ON c.parent_id = t.id WHERE t.depth < 64)"
					   " SELECT pg_catalog.array_agg(t.id ORDER BY t.id) FROM t");
	if (v == V_CATEGORIES)
		return pstrdup("SELECT c.id, c.parent_id, c.name FROM catalog.category c");
	return NULL;
}

/* Argument types of every search variant (the shared vector). */
static void
variant_argtypes(const SearchRequest *r, Oid *types)
{
	types[PRM_STATUS] = r->status_type;
	types[PRM_MIN_PRICE] = NUMERICOID;
	types[PRM_MAX_PRICE] = NUMERICOID;
	types[PRM_CATEGORY] = INT8OID;
	types[PRM_CATEGORIES] = INT8ARRAYOID;
	types[PRM_SKU] = TEXTOID;
	types[PRM_SKU_LO] = TEXTOID;
	types[PRM_SKU_HI] = TEXTOID;
	types[PRM_TSQ_NAME] = TSQUERYOID;
	types[PRM_TSQ_ALL] = TSQUERYOID;
	types[PRM_NAME_LIKE] = TEXTOID;
	types[PRM_SKU_LIKE] = TEXTOID;
	types[PRM_TSQ_TYPO] = TSQUERYOID;
	types[PRM_KEY_PRICE] = NUMERICOID;
	types[PRM_KEY_TIME] = TIMESTAMPTZOID;
	types[PRM_KEY_TEXT] = TEXTOID;
	types[PRM_KEY_ID] = INT8OID;
	types[PRM_LIMIT] = INT8OID;
	types[PRM_NO_TEXT] = BOOLOID;
	types[PRM_STATUSES] = r->status_array_type;
}

static void
typo_schema_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	typo_schema_stale = true;
}

/*
 * typo_schema_check
 *	  Before V_TYPO_TERMS is used: register the callbacks (once), and when
 *	  one fired, drop its plan and text if pg_trgm's schema name is no
 *	  longer the one they were built with.  A catalog scan only after a
 *	  change of pg_proc or pg_namespace (or a cache reset), so the common
 *	  call costs a look at the invalidation queue and a flag test.
 */
static void
typo_schema_check(SearchPlan *sp)
{
	char	   *now;

	if (!typo_callbacks)
	{
		CacheRegisterSyscacheCallback(PROCOID, typo_schema_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, typo_schema_invalidate, (Datum) 0);
		typo_callbacks = true;
	}
	/*
	 * A move committed since this transaction's last new lock counts too.
	 * Usually a lock the call took before this point has read the
	 * invalidations already (search_trgm_move.spec passes without this
	 * line); it closes the case in which none did, where the lock on
	 * search_term would then invalidate the plan after this check.
	 */
	AcceptInvalidationMessages();
	if (!typo_schema_stale || sp->sql == NULL)
		return;
	now = trgm_schema();
	if (strcmp(now, typo_schema) != 0)
	{
		if (sp->plan != NULL)
			SPI_freeplan(sp->plan);
		sp->plan = NULL;
		pfree(sp->sql);
		sp->sql = NULL;
	}
	pfree(now);
	typo_schema_stale = false;
}

/*
 * get_plan
 *	  The kept generic plan of variant v.  Plans are dropped and prepared
 *	  again when catalog.product_status has a new OID (the extension was
 *	  dropped and created again): their parameter types name it; the typo
 *	  variant's also when pg_trgm's schema moved (typo_schema_check).
 */
static SPIPlanPtr
get_plan(const SearchRequest *r, int v)
{
	SearchPlan *sp;

	if (v < 0 || v >= V_COUNT)
		elog(ERROR, "search variant %d does not exist", v);
	sp = &plans[v];
	if (plans_status_type != r->status_type)
	{
		for (int i = 0; i < V_COUNT; i++)
		{
			if (plans[i].plan != NULL)
				SPI_freeplan(plans[i].plan);
			plans[i].plan = NULL;
			/* the SQL names the pg_trgm schema, which may have moved too */
			if (plans[i].sql != NULL)
				pfree(plans[i].sql);
			plans[i].sql = NULL;
		}
		plans_status_type = r->status_type;
	}
	if (v == V_TYPO_TERMS)
		typo_schema_check(sp);
	if (sp->plan == NULL)
	{
		Oid			types[PRM_COUNT];
		int			nargs = PRM_COUNT;
		SPIPlanPtr	plan;

		if (sp->sql == NULL)
		{
			char	   *sql = variant_sql(v);

			if (sql == NULL)
				elog(ERROR, "search variant %d does not exist", v);
			sp->sql = MemoryContextStrdup(TopMemoryContext, sql);
		}
		if (v == V_TYPO_TERMS)
		{
			types[0] = TEXTOID;
			types[1] = INT4OID;
			types[2] = INT4OID;
			types[3] = r->status_array_type;
			nargs = 4;
		}
		else if (v == V_DESCENDANTS)
		{
			types[0] = INT8OID;
			nargs = 1;
		}
		else if (v == V_CATEGORIES)
			nargs = 0;
		else
			variant_argtypes(r, types);

		/* always the generic plan: its shape is what the variant forces */
		plan = SPI_prepare_cursor(sp->sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for search variant %d: %s",
				 v, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		sp->plan = plan;
	}
	return sp->plan;
}

/*
 * explain_plan
 *	  Append the EXPLAIN (FORMAT JSON) of variant v's kept plan to the
 *	  capture of catalog.search_explain.
 */
static void
explain_plan(const SearchRequest *r, int v, const char *label)
{
	CachedPlan *cplan;
	ListCell   *lc;
	JsonbValue	jv;
	MemoryContext old;

	cplan = SPI_plan_get_cached_plan(get_plan(r, v));
	if (cplan == NULL)
		elog(ERROR, "no cached plan for search variant %d", v);

	old = MemoryContextSwitchTo(explain_cxt);
	pushJsonbValue(&explain_state, WJB_BEGIN_OBJECT, NULL);
	DocPushText(&explain_state, "query", DocCString(label));
	DocPushInt(&explain_state, "variant", v);
	DocPushText(&explain_state, "sql", DocCString(plans[v].sql));
	DocPushKey(&explain_state, "plan");
	pushJsonbValue(&explain_state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *pstmt = lfirst_node(PlannedStmt, lc);
		ExplainState *es = NewExplainState();
		Jsonb	   *plan_json;

		es->format = EXPLAIN_FORMAT_JSON;
		es->costs = true;
		ExplainBeginOutput(es);
#if PG_VERSION_NUM >= 170000
		ExplainOnePlan(pstmt, NULL, es, plans[v].sql, NULL, NULL, NULL, NULL, NULL);
#else
		ExplainOnePlan(pstmt, NULL, es, plans[v].sql, NULL, NULL, NULL, NULL);
#endif
		ExplainEndOutput(es);
		plan_json = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(es->str->data)));
		jv.type = jbvBinary;
		jv.val.binary.data = &plan_json->root;
		jv.val.binary.len = VARSIZE(plan_json) - VARHDRSZ;
		pushJsonbValue(&explain_state, WJB_ELEM, &jv);
	}
	pushJsonbValue(&explain_state, WJB_END_ARRAY, NULL);
	pushJsonbValue(&explain_state, WJB_END_OBJECT, NULL);
	MemoryContextSwitchTo(old);
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
}

/*
 * run_variant
 *	  Execute variant v with the request's parameters; rows in SPI_tuptable.
 */
static bool
variant_is_ordered(int v)
{
	if (v == V_SKU_PREFIX || v == V_SKU_PREFIX_SPAN ||
		(v >= V_SORT_SPAN(SS_PRICE_ASC) && v <= V_SORT_SPAN(SS_NEWEST)))
		return true;
	if (v >= V_TIER_FIRST && v <= V_TIER_LAST)
		return (v - V_TIER_FIRST) % TIER_KINDS == TIER_ORDERED;
	if (v >= V_SORT_BASE && v <= V_SORT_LAST)
	{
		SortPath	p = (v - V_SORT_BASE) % SP_COUNT;

		return p == SP_GLOBAL || p == SP_CATEGORY;
	}
	return false;
}

/*
 * run_variant
 *	  Execute variant v with the request's parameters, stopping after count
 *	  rows (0: all); rows in SPI_tuptable.
 *
 * An ordered variant is planned (and so run) with enable_bitmapscan and
 * enable_sort off, in a GUC nest level of its own (as fmgr applies a
 * function's SET clause): its only possible plan is then the ordered index
 * scan that stops after a page, whatever the generic plan's estimates say
 * (a parameterised range or a small category looks cheap to sort).  The
 * plan cache builds a generic plan under the settings in force when it
 * plans, and a variant always runs under the same settings, so a replan
 * after an invalidation gives the same shape.
 */
static uint64
run_variant(const SearchRequest *r, int v, const char *label, long count)
{
	SPIPlanPtr	plan;
	int			rc;
	int			nest = -1;

	if (variant_is_ordered(v))
	{
		nest = NewGUCNestLevel();
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	plan = get_plan(r, v);
	if (explaining)
		explain_plan(r, v, label);
	rc = SPI_execute_plan(plan, (Datum *) r->values, r->nulls, true, count);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "search variant %d failed: %s", v, SPI_result_code_string(rc));
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	return SPI_processed;
}

/* ------------------------------------------------------------------------
 * Statement timer
 * ------------------------------------------------------------------------
 */

static void
search_timeout_handler(void)
{
	search_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

static void
search_timer_start(void)
{
	if (search_timeout_id == MAX_TIMEOUTS)
		search_timeout_id = RegisterTimeout(USER_TIMEOUT, search_timeout_handler);
	search_timed_out = false;
	enable_timeout_after(search_timeout_id, catalog_search_timeout);
}

static void
search_timer_stop(void)
{
	if (search_timeout_id != MAX_TIMEOUTS)
		disable_timeout(search_timeout_id, false);
}

/*
 * search_timer_forget
 *	  The timer fired but the cancel it asked for was not taken (it fired
 *	  after the last interrupt check, or the call failed with another
 *	  error): withdraw it, or it would cancel the caller's next step.  A
 *	  client's own cancel arriving in that same instant is lost with it.
 */
static void
search_timer_forget(void)
{
	if (search_timed_out)
	{
		search_timed_out = false;
		QueryCancelPending = false;
	}
}

/*
 * search_timer_rethrow
 *	  In PG_CATCH: stop the timer; a cancel the timer caused becomes the
 *	  documented 57014 with a message that names the setting.
 */
static void
search_timer_rethrow(MemoryContext cxt, const char *fn)
{
	ErrorData  *edata;

	search_timer_stop();
	if (!search_timed_out)
		PG_RE_THROW();
	search_timed_out = false;
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
	{
		FreeErrorData(edata);
		QueryCancelPending = false; /* the timer's cancel, not taken */
		PG_RE_THROW();
	}
	FlushErrorState();
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("%s was cancelled after catalog.search_timeout (%d ms)",
					fn, catalog_search_timeout),
			 errhint("Narrow the query (more words, a category or a price range).")));
}

/* ------------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------------
 */

static Oid
simple_config(void)
{
	return get_ts_config_oid(list_make2(makeString("pg_catalog"), makeString("simple")), false);
}

static bool
is_sku_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.';
}

/*
 * trigram_run
 *	  Whether s (len bytes, NUL-terminated, valid in the server encoding)
 *	  holds three consecutive word characters as pg_trgm sees them (a letter
 *	  or a digit by t_isalpha / t_isdigit, pg_trgm's ISWORDCHR).  Only then
 *	  does pg_trgm extract a trigram from the pattern '%s%': from a pattern
 *	  without one (symbols, "7.-", letters the locale does not class as
 *	  letters) its GIN scan degrades to reading the whole index and
 *	  rechecking every row (GIN_SEARCH_MODE_ALL), which the cost model does
 *	  not see.  Such a q gets no substring pattern at all.
 */
static bool
trigram_run(const char *s, int len)
{
	int			run = 0;

	for (int i = 0; i < len;)
	{
		int			l = pg_mblen(s + i);

		if (l > len - i)
			break;
		if (t_isalpha(s + i) || t_isdigit(s + i))
		{
			if (++run >= 3)
				return true;
		}
		else
			run = 0;
		i += l;
	}
	return false;
}

/* Escape LIKE metacharacters (backslash is the default escape). */
static char *
like_contains(const char *s, int len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '%');
	for (int i = 0; i < len; i++)
	{
		if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
			appendStringInfoChar(&buf, '\\');
		appendStringInfoChar(&buf, s[i]);
	}
	appendStringInfoChar(&buf, '%');
	return buf.data;
}

/* Append a lexeme as a quoted to_tsquery operand. */
static void
append_operand(StringInfo buf, const char *w, bool prefix, bool name_only)
{
	appendStringInfoChar(buf, '\'');
	for (const char *p = w; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, *p == '\'' ? '\'' : '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
	if (prefix || name_only)
		appendStringInfoChar(buf, ':');
	if (prefix)
		appendStringInfoChar(buf, '*');
	if (name_only)
		appendStringInfoChar(buf, 'A');
}

static Datum
make_tsquery(const char *text)
{
	return DirectFunctionCall2(to_tsquery_byid, ObjectIdGetDatum(simple_config()),
							   CStringGetTextDatum(text));
}

/*
 * plain_number
 *	  Whether w is digits, or digits, one '.' and digits: a number whose
 *	  signed form is again one lexeme.  "-4k" or "-15mm" would be parsed
 *	  into a phrase ('-4' <-> 'k'), matching "Hose-4 K" for '4k'.
 */
static bool
plain_number(const char *w)
{
	bool		dot = false;

	if (!isdigit((unsigned char) w[0]))
		return false;
	for (const char *p = w; *p; p++)
	{
		if (*p == '.' && !dot && isdigit((unsigned char) p[1]))
			dot = true;
		else if (!isdigit((unsigned char) *p))
			return false;
	}
	return true;
}

/*
 * append_word
 *	  A query word as tsquery operands, without parentheses: the word, and
 *	  for a plain number (plain_number) also the signed number the parser
 *	  makes of it after a hyphen ("iPhone-15" is "iphone" and "-15", so the
 *	  15 of 'iphone 15' is '15' | '-15', as a reader of the name expects;
 *	  the highlight marks the 15 either way).
 */
static void
append_word(StringInfo buf, const char *w, bool prefix, bool name_only)
{
	append_operand(buf, w, prefix, name_only);
	if (plain_number(w))
	{
		char	   *negative = psprintf("-%s", w);

		appendStringInfoString(buf, " | ");
		append_operand(buf, negative, prefix, name_only);
		pfree(negative);
	}
}

/*
 * words_tsquery
 *	  ('w1') & ('w2') & ('w3':*) (name_only: every operand restricted to
 *	  weight A); each word as append_word writes it.
 */
static Datum
words_tsquery(const SearchRequest *r, bool name_only)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < r->nwords; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, " & ");
		appendStringInfoChar(&buf, '(');
		append_word(&buf, r->words[i], i == r->nwords - 1, name_only);
		appendStringInfoChar(&buf, ')');
	}
	return make_tsquery(buf.data);
}

/*
 * parse_words
 *	  Lexemes of q by the 'simple' configuration, in order, without
 *	  duplicates; compound tokens ("wi-fi", "nw-soc-0001") are skipped
 *	  because the parser also returns their parts.  A leading '-' is no
 *	  compound but the sign of a number ("merino-10" is "merino" and
 *	  "-10", in q as in search_doc): kept, or q would lose the number.
 *	  A word of any length is kept (q holds at most SEARCH_Q_MAX code
 *	  points): one dropped for its length let the others match alone.
 */
static void
parse_words(SearchRequest *r)
{
	ParsedText	prs;

	r->nwords = 0;
	if (r->qlen == 0)
		return;
	prs.lenwords = 32;
	prs.curwords = 0;
	prs.pos = 0;
	prs.words = (ParsedWord *) palloc(sizeof(ParsedWord) * prs.lenwords);
	parsetext(simple_config(), &prs, r->q, r->qlen);

	for (int i = 0; i < prs.curwords && r->nwords < SEARCH_MAX_WORDS; i++)
	{
		ParsedWord *w = &prs.words[i];
		bool		dup = false;

		if (w->len == 0 || memchr(w->word + 1, '-', w->len - 1) != NULL)
			continue;
		for (int j = 0; j < r->nwords; j++)
			if (r->wordlen[j] == w->len && memcmp(r->words[j], w->word, w->len) == 0)
				dup = true;
		if (dup)
			continue;
		r->words[r->nwords] = pnstrdup(w->word, w->len);
		r->wordlen[r->nwords] = w->len;
		r->nwords++;
	}
}

/* Number of characters of s (len bytes in the server encoding). */
static int
code_points(const char *s, int len)
{
	return pg_mbstrlen_with_len(s, len);
}

/*
 * The characters of s (len bytes in the server encoding) as pg_wchar, *n
 * of them: code points in UTF-8, the encoding's own codes in another.
 */
static pg_wchar *
wide_chars(const char *s, int len, int *n)
{
	pg_wchar   *w = palloc((len + 1) * sizeof(pg_wchar));

	*n = pg_mb2wchar_with_len(s, w, len);
	return w;
}

/*
 * Case folding of one character as the 'simple' configuration lowercases
 * a lexeme (lowerstr_with_len): towlower of the character in a multibyte
 * database whose LC_CTYPE is not C, tolower of the byte otherwise.  A
 * pg_wchar is the wchar_t towlower takes only in UTF-8: in another
 * multibyte encoding (EUC_JP, ...) the highlight folds ASCII only, where
 * lowerstr folds every letter, so a non-ASCII capital there is found but
 * not highlighted.
 */
typedef enum FoldMode
{
	FOLD_ASCII,
	FOLD_BYTE,
	FOLD_WIDE
} FoldMode;

static FoldMode
fold_mode(void)
{
	if (pg_database_encoding_max_length() == 1)
		return FOLD_BYTE;
	if (GetDatabaseEncoding() == PG_UTF8 && !lc_ctype_is_c(DEFAULT_COLLATION_OID))
		return FOLD_WIDE;
	return FOLD_ASCII;
}

static void
fold_chars(pg_wchar *w, int n, FoldMode mode)
{
	for (int i = 0; i < n; i++)
	{
		if (mode == FOLD_WIDE)
			w[i] = (pg_wchar) towlower((wint_t) w[i]);
		else if (mode == FOLD_BYTE && w[i] < 256)
			w[i] = (pg_wchar) tolower((int) w[i]);
		else if (w[i] < 128)
			w[i] = (pg_wchar) pg_ascii_tolower((unsigned char) w[i]);
	}
}

/* Edit distance allowed for a word of n code points. */
static int
typo_budget(int n)
{
	return n >= 9 ? 2 : (n >= 5 ? 1 : 0);
}

/*
 * damerau_levenshtein
 *	  Optimal string alignment distance of two character strings, stopping
 *	  early once every cell of a row exceeds max (returns max + 1).  Over
 *	  characters, not bytes: "muller" is one edit from "m\u00fcller", as
 *	  the typo budget, counted in characters, means.
 */
static int
damerau_levenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb, int max)
{
	int		   *prev2,
			   *prev,
			   *cur;

	if (abs(la - lb) > max)
		return max + 1;
	prev2 = palloc((lb + 1) * sizeof(int));
	prev = palloc((lb + 1) * sizeof(int));
	cur = palloc((lb + 1) * sizeof(int));
	for (int j = 0; j <= lb; j++)
		prev[j] = j;
	for (int i = 1; i <= la; i++)
	{
		int			rowmin;
		int		   *tmp;

		cur[0] = i;
		rowmin = cur[0];
		for (int j = 1; j <= lb; j++)
		{
			int			cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int			d = Min(Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);

			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				d = Min(d, prev2[j - 2] + 1);
			cur[j] = d;
			rowmin = Min(rowmin, d);
		}
		if (rowmin > max)
		{
			pfree(prev2);
			pfree(prev);
			pfree(cur);
			return max + 1;
		}
		tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	{
		int			d = prev[lb];

		pfree(prev2);
		pfree(prev);
		pfree(cur);
		return d;
	}
}

/*
 * compute_typo
 *	  Corrections of each word from the dictionary (catalog.search_term),
 *	  and the typo class's tsquery.  Must run inside SPI.  Sets
 *	  PRM_TSQ_TYPO, or leaves it NULL when no word has a correction.
 */
static void
compute_typo(SearchRequest *r)
{
	StringInfoData buf;
	bool		any = false;
	Datum		statuses;

	if (r->typo_done)
		return;
	r->typo_done = true;
	r->nulls[PRM_TSQ_TYPO] = 'n';
	if (r->nwords == 0)
		return;

	/*
	 * The status asked for: corrections come from the words of its products
	 * only (see TermCollector).  The facets use the same corrections for the
	 * count of every status, as they do the identifier decision: taken from
	 * every status the caller may see, the words of drafts could take the
	 * eight slots of a word, and an editor's total of published products
	 * differed from what the search of them returns.
	 */
	statuses = PointerGetDatum(construct_array(&r->values[PRM_STATUS], 1, r->status_type, 4,
											   true, TYPALIGN_INT));

	initStringInfo(&buf);
	for (int i = 0; i < r->nwords; i++)
	{
		int			n = code_points(r->words[i], r->wordlen[i]);
		int			k = typo_budget(n);
		bool		digits = strpbrk(r->words[i], "0123456789") != NULL;
		bool		last = (i == r->nwords - 1);

		r->ntypo[i] = 0;
		/* no dictionary word is within k edits of a word too long for it */
		if (k > 0 && !digits && n - k <= SEARCH_TERM_MAX)
		{
			Datum		vals[4];
			uint64		rows;
			int			best[SEARCH_MAX_CANDIDATES];
			int			wn;
			pg_wchar   *word = wide_chars(r->words[i], r->wordlen[i], &wn);

			vals[0] = CStringGetTextDatum(r->words[i]);
			vals[1] = Int32GetDatum(n - k);
			vals[2] = Int32GetDatum(n + k);
			vals[3] = statuses;
			if (explaining)
				explain_plan(r, V_TYPO_TERMS, "typo dictionary");
			if (SPI_execute_plan(get_plan(r, V_TYPO_TERMS), vals, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "typo dictionary lookup failed");
			rows = SPI_processed;
			for (uint64 t = 0; t < rows; t++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, 1, &isnull);
				text	   *term;
				pg_wchar   *tw;
				int			tn;
				int			dist;
				int			slot;

				if (isnull)
					continue;
				term = DatumGetTextPP(d);
				if ((int) VARSIZE_ANY_EXHDR(term) == r->wordlen[i] &&
					memcmp(VARDATA_ANY(term), r->words[i], r->wordlen[i]) == 0)
					continue;	/* the word itself */
				tw = wide_chars(VARDATA_ANY(term), VARSIZE_ANY_EXHDR(term), &tn);
				dist = damerau_levenshtein(word, wn, tw, tn, k);
				pfree(tw);
				if (dist > k)
					continue;
				/* keep the closest SEARCH_MAX_CANDIDATES, first found on ties */
				slot = r->ntypo[i];
				if (slot == SEARCH_MAX_CANDIDATES)
				{
					int			worst = 0;

					for (int c = 1; c < SEARCH_MAX_CANDIDATES; c++)
						if (best[c] > best[worst])
							worst = c;
					if (best[worst] <= dist)
						continue;
					slot = worst;
					pfree(r->typo_words[i][slot]);
				}
				else
					r->ntypo[i]++;
				r->typo_words[i][slot] = MemoryContextStrdup(r->cxt, text_to_cstring(term));
				best[slot] = dist;
				any = true;
			}
			SPI_freetuptable(SPI_tuptable);
			pfree(word);
		}

		if (i > 0)
			appendStringInfoString(&buf, " & ");
		appendStringInfoChar(&buf, '(');
		append_word(&buf, r->words[i], last, true);
		for (int c = 0; c < r->ntypo[i]; c++)
		{
			appendStringInfoString(&buf, " | ");
			append_operand(&buf, r->typo_words[i][c], false, true);
		}
		appendStringInfoChar(&buf, ')');
	}
	if (any)
	{
		r->values[PRM_TSQ_TYPO] = make_tsquery(buf.data);
		r->nulls[PRM_TSQ_TYPO] = ' ';
	}
}

/*
 * The OID of catalog.product_status, remembered per backend (every search
 * and every product write's dictionary trigger needs it) and forgotten at
 * any change of pg_type: a DROP and CREATE EXTENSION in the session gives
 * the type a new OID, and the invalidation arrives before the next use.
 */
static Oid	status_type_cached = InvalidOid;
static bool status_type_registered = false;

static void
status_type_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	status_type_cached = InvalidOid;
}

/*
 * status_type_oid
 *	  OID of catalog.product_status (remembered until pg_type changes: the
 *	  extension may have been dropped and created again).
 */
static Oid
status_type_oid(void)
{
	Oid			nsp;
	Oid			typ;

	if (!status_type_registered)
	{
		CacheRegisterSyscacheCallback(TYPEOID, status_type_invalidate, (Datum) 0);
		status_type_registered = true;
	}
	if (OidIsValid(status_type_cached))
		return status_type_cached;
	nsp = get_namespace_oid("catalog", false);
	typ = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
						  CStringGetDatum("product_status"),
						  ObjectIdGetDatum(nsp));
	if (!OidIsValid(typ))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type catalog.product_status does not exist"),
				 errhint("The extension's objects were renamed or moved with catalog.allow_table_changes on: reinstall the extension.")));
	status_type_cached = typ;
	return typ;
}

static Datum
status_datum(const SearchRequest *r, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(r->status_type));
}

static Numeric
numeric_from_cstring(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * parse_price
 *	  A price filter: NULL, or a number >= 0 with at most 2 decimals and 10
 *	  integer digits (the range of the column).
 */
static Numeric
parse_price(FunctionCallInfo fcinfo, int argno, const char *field)
{
	Numeric		n;

	if (PG_ARGISNULL(argno))
		return NULL;
	n = PG_GETARG_NUMERIC(argno);
	ValidatePriceArg(field, n);
	return n;
}

/*
 * parse_request
 *	  Validate and canonicalise the arguments shared by search_products
 *	  and product_facets (arguments 0 to 4), and the parameters that do not
 *	  need SPI.
 */
static void
parse_request(FunctionCallInfo fcinfo, SearchRequest *r)
{
	memset(r, 0, sizeof(SearchRequest));
	for (int i = 0; i < PRM_COUNT; i++)
	{
		r->values[i] = (Datum) 0;
		r->nulls[i] = 'n';
	}
	r->category_id = -1;
	r->cxt = CurrentMemoryContext;
	r->status_type = status_type_oid();
	r->status_array_type = get_array_type(r->status_type);

	/* q */
	if (PG_ARGISNULL(0))
	{
		r->q = "";
		r->qlen = 0;
	}
	else
	{
		r->q = ValidateTextArg("q", CATALOG_GETARG_RAW_TEXT(0), VT_PLAIN, 0, SEARCH_Q_MAX);
		r->qlen = strlen(r->q);
	}
	parse_words(r);

	/* an SKU-like q: one token of SKU characters */
	if (r->qlen > 0 && r->qlen <= CATALOG_SKU_MAX &&
		((r->q[0] >= '0' && r->q[0] <= '9') || (r->q[0] >= 'A' && r->q[0] <= 'Z') ||
		 (r->q[0] >= 'a' && r->q[0] <= 'z')))
	{
		bool		ok = true;

		for (int i = 0; i < r->qlen && ok; i++)
			ok = is_sku_char(r->q[i]);
		if (ok)
		{
			bool		digit = false;
			bool		punct = false;

			r->sku = pstrdup(r->q);
			for (char *p = r->sku; *p; p++)
			{
				*p = pg_ascii_toupper((unsigned char) *p);
				digit |= (*p >= '0' && *p <= '9');
				punct |= (*p == '-' || *p == '_' || *p == '.');
			}

			/*
			 * An identifier ("BM-TRI-0123457", "TRI-0123", "0123457"): a
			 * digit, and a separator or six characters or more.  It is
			 * searched as a SKU only (exact, prefix, substring of SKU or
			 * name): its parts ("bm", "tri") as words would match thousands
			 * of products by brand and kind and rank them above nothing
			 * useful.  Short tokens with digits ("4K", "18V", "A4") stay
			 * words.
			 */
			if (digit && (punct || r->qlen >= 6))
			{
				r->sku_mode = true;
				r->nwords = 0;
			}
		}
	}

	/* category */
	if (!PG_ARGISNULL(1))
	{
		r->category_id = PG_GETARG_INT64(1);
		if (r->category_id <= 0)
			ValidateRaiseReason("category_id", "out_of_range");
	}

	/* prices */
	r->min_price = parse_price(fcinfo, 2, "min_price");
	r->max_price = parse_price(fcinfo, 3, "max_price");
	if (r->min_price && r->max_price &&
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(r->min_price),
										  NumericGetDatum(r->max_price))) > 0)
		ValidateRaiseReason("max_price", "less_than_min_price");
	r->price_filtered = r->min_price != NULL || r->max_price != NULL;
	if (r->min_price == NULL)
		r->min_price = int64_to_numeric(0);
	if (r->max_price == NULL)
		r->max_price = numeric_from_cstring("10000000000");

	/* status */
	if (PG_ARGISNULL(4))
		r->status = "published";
	else
	{
		char	   *s;

		if (toast_raw_datum_size(PG_GETARG_DATUM(4)) > VARHDRSZ + 16)
			ValidateRaiseReason("status", "unknown_value");
		s = text_to_cstring(PG_GETARG_TEXT_PP(4));

		if (strcmp(s, "published") != 0 && strcmp(s, "draft") != 0 &&
			strcmp(s, "archived") != 0)
			ValidateRaiseReason("status", "unknown_value");
		r->status = s;
	}
	if (strcmp(r->status, "published") != 0 && !ApiCallerSeesDrafts())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only editors may search %s products", r->status),
				 ApiErrDetail("{\"field\": \"status\", \"reason\": \"not_allowed\"}")));

	/* parameters that need no SPI */
	r->values[PRM_STATUS] = status_datum(r, r->status);
	r->nulls[PRM_STATUS] = ' ';
	r->values[PRM_MIN_PRICE] = NumericGetDatum(r->min_price);
	r->nulls[PRM_MIN_PRICE] = ' ';
	r->values[PRM_MAX_PRICE] = NumericGetDatum(r->max_price);
	r->nulls[PRM_MAX_PRICE] = ' ';
	if (r->sku)
	{
		int			len = strlen(r->sku);

		r->values[PRM_SKU] = CStringGetTextDatum(r->sku);
		r->nulls[PRM_SKU] = ' ';
		if (len >= 2)
		{
			char	   *hi = pstrdup(r->sku);

			/* SKU characters are ASCII below 0x7F: the successor is safe */
			hi[len - 1]++;
			r->values[PRM_SKU_LO] = CStringGetTextDatum(r->sku);
			r->nulls[PRM_SKU_LO] = ' ';
			r->values[PRM_SKU_HI] = CStringGetTextDatum(hi);
			r->nulls[PRM_SKU_HI] = ' ';
		}
		if (len >= 3 && trigram_run(r->sku, len))
		{
			r->values[PRM_SKU_LIKE] = CStringGetTextDatum(like_contains(r->sku, len));
			r->nulls[PRM_SKU_LIKE] = ' ';
		}
	}
	if (r->nwords > 0)
	{
		r->values[PRM_TSQ_NAME] = words_tsquery(r, true);
		r->nulls[PRM_TSQ_NAME] = ' ';
		r->values[PRM_TSQ_ALL] = words_tsquery(r, false);
		r->nulls[PRM_TSQ_ALL] = ' ';
	}
	/* substring: only when pg_trgm can extract a trigram from q */
	if (trigram_run(r->q, r->qlen))
	{
		r->values[PRM_NAME_LIKE] = CStringGetTextDatum(like_contains(r->q, r->qlen));
		r->nulls[PRM_NAME_LIKE] = ' ';
	}
	r->has_text = r->nulls[PRM_SKU] == ' ' || r->nulls[PRM_TSQ_ALL] == ' ' ||
		r->nulls[PRM_NAME_LIKE] == ' ';
	r->values[PRM_NO_TEXT] = BoolGetDatum(!r->has_text);
	r->nulls[PRM_NO_TEXT] = ' ';
}

/*
 * resolve_categories
 *	  The category and its descendants (inside SPI); PT404 when unknown.
 */
static void
resolve_categories(SearchRequest *r, MemoryContext cxt)
{
	Datum		arg;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	if (r->category_id < 0)
		return;
	arg = Int64GetDatum(r->category_id);
	if (explaining)
		explain_plan(r, V_DESCENDANTS, "category descendants");
	if (SPI_execute_plan(get_plan(r, V_DESCENDANTS), &arg, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "category lookup failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		ApiRaiseNotFound("category", r->category_id);
	old = MemoryContextSwitchTo(cxt);
	r->categories = DatumGetArrayTypePCopy(d);
	deconstruct_array(r->categories, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  (Datum **) &r->category_ids, NULL, &r->ncategories);
	{
		/* deconstruct_array gives Datums; keep int64s */
		Datum	   *ds = (Datum *) r->category_ids;
		int64	   *ids = palloc(sizeof(int64) * r->ncategories);

		for (int i = 0; i < r->ncategories; i++)
			ids[i] = DatumGetInt64(ds[i]);
		r->category_ids = ids;
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);

	r->values[PRM_CATEGORIES] = PointerGetDatum(r->categories);
	r->nulls[PRM_CATEGORIES] = ' ';
	r->values[PRM_CATEGORY] = Int64GetDatum(r->category_id);
	r->nulls[PRM_CATEGORY] = ' ';
}

/* ------------------------------------------------------------------------
 * Estimates from pg_statistic
 * ------------------------------------------------------------------------
 */

typedef struct SearchStats
{
	double		rows;			/* reltuples of catalog.product */
	double		f_status;
	double		f_category;
	double		f_price;		/* of the price range; 1 without one */
	double		f_words;		/* words anywhere */
	double		f_gin;			/* index entries the GIN scan of the words reads */
	double		f_substring;
	double		f_typo;
} SearchStats;

static bool
attr_stats(Oid relid, const char *attname, HeapTuple *tup)
{
	AttrNumber	att = get_attnum(relid, attname);

	*tup = NULL;
	if (att == InvalidAttrNumber)
		return false;
	*tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid), Int16GetDatum(att),
						   BoolGetDatum(false));
	return HeapTupleIsValid(*tup);
}

/* Frequency of an enum (OID) value among the most common values of a column, or -1. */
static double
mcv_freq(Oid relid, const char *attname, Datum value, double rows, double *other)
{
	HeapTuple	tup;
	AttStatsSlot sslot;
	double		found = -1;

	*other = -1;
	if (!attr_stats(relid, attname, &tup))
		return -1;
	if (get_attstatsslot(&sslot, tup, STATISTIC_KIND_MCV, InvalidOid,
						 ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS))
	{
		double		sum = 0;

		for (int i = 0; i < Min(sslot.nvalues, sslot.nnumbers); i++)
		{
			sum += sslot.numbers[i];
			if (DatumGetObjectId(sslot.values[i]) == DatumGetObjectId(value))
				found = sslot.numbers[i];
		}
		{
			double		nd = ((Form_pg_statistic) GETSTRUCT(tup))->stadistinct;

			if (nd < 0)
				nd = -nd * rows;
			if (nd > sslot.nvalues)
				*other = (1.0 - sum) / (nd - sslot.nvalues);
			else
				*other = 0;
		}
		free_attstatsslot(&sslot);
	}
	ReleaseSysCache(tup);
	return found;
}

/*
 * price_fraction
 *	  Fraction of rows with a price in [lo, hi], from the histogram of
 *	  price (the share of its buckets inside the range).
 */
static double
price_fraction(Oid relid, Numeric lo, Numeric hi)
{
	HeapTuple	tup;
	AttStatsSlot sslot;
	double		f = 0.3333;

	if (!attr_stats(relid, "price", &tup))
		return f;
	if (get_attstatsslot(&sslot, tup, STATISTIC_KIND_HISTOGRAM, InvalidOid, ATTSTATSSLOT_VALUES) &&
		sslot.nvalues > 1)
	{
		int			inside = 0;

		for (int i = 0; i < sslot.nvalues; i++)
		{
			Datum		b = sslot.values[i];

			if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, b, NumericGetDatum(lo))) >= 0 &&
				DatumGetInt32(DirectFunctionCall2(numeric_cmp, b, NumericGetDatum(hi))) <= 0)
				inside++;
		}
		/* each bound inside stands for about one bucket; half a bucket when none */
		f = Max(inside, 0.5) / (sslot.nvalues - 1);
		free_attstatsslot(&sslot);
	}
	ReleaseSysCache(tup);
	return Min(f, 1.0);
}

/*
 * category_fraction
 *	  Fraction of rows in any of the categories, from the most common values
 *	  of category_id and the number of distinct values (the planner's
 *	  method, one statistics lookup for the whole set).
 */
static double
category_fraction(Oid relid, const int64 *ids, int n, double rows)
{
	HeapTuple	tup;
	AttStatsSlot sslot;
	double		sum = 0;

	if (!attr_stats(relid, "category_id", &tup))
		return Min(1.0, n * 0.01);
	if (get_attstatsslot(&sslot, tup, STATISTIC_KIND_MCV, InvalidOid,
						 ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS))
	{
		double		mcvsum = 0;
		double		nd = ((Form_pg_statistic) GETSTRUCT(tup))->stadistinct;
		double		other;

		int			nv = Min(sslot.nvalues, sslot.nnumbers);

		for (int i = 0; i < nv; i++)
			mcvsum += sslot.numbers[i];
		if (nd < 0)
			nd = -nd * rows;
		other = nd > sslot.nvalues ? (1.0 - mcvsum) / (nd - sslot.nvalues) : 0;
		for (int k = 0; k < n; k++)
		{
			double		f = other;

			for (int i = 0; i < nv; i++)
				if (DatumGetInt64(sslot.values[i]) == ids[k])
				{
					f = sslot.numbers[i];
					break;
				}
			sum += f;
		}
		free_attstatsslot(&sslot);
	}
	else
	{
		double		nd = ((Form_pg_statistic) GETSTRUCT(tup))->stadistinct;

		if (nd < 0)
			nd = -nd * rows;
		sum = nd > 0 ? n / nd : n * 0.01;
	}
	ReleaseSysCache(tup);
	return Min(Max(sum, 1e-7), 1.0);
}

/* Fraction of rows whose search_doc has lexeme w (prefix: starting with w). */
static double
lexeme_freq(AttStatsSlot *mce, bool have, const char *w, int len, bool prefix)
{
	double		minfreq;
	double		sum = 0;
	bool		found = false;

	if (!have || mce->nnumbers < mce->nvalues + 2)
		return 0.005;			/* DEFAULT_TS_MATCH_SEL */
	minfreq = mce->numbers[mce->nvalues];
	for (int i = 0; i < mce->nvalues; i++)
	{
		text	   *t = DatumGetTextPP(mce->values[i]);
		int			tl = VARSIZE_ANY_EXHDR(t);

		if (prefix ? (tl >= len && memcmp(VARDATA_ANY(t), w, len) == 0)
			: (tl == len && memcmp(VARDATA_ANY(t), w, len) == 0))
		{
			sum += mce->numbers[i];
			found = true;
			if (!prefix)
				break;
		}
	}
	if (!found)
		return Min(0.005, minfreq / 2);
	return Min(sum, 1.0);
}

/*
 * Fraction of histogram entries of a text column containing needle; the
 * number of entries that do in *nhits (when not NULL).
 */
static double
histogram_contains(Oid relid, const char *attname, const char *needle, int nlen, int *nhits)
{
	HeapTuple	tup;
	AttStatsSlot sslot;
	double		f = 0.001;

	if (nhits)
		*nhits = 0;

	if (!attr_stats(relid, attname, &tup))
		return f;
	if (get_attstatsslot(&sslot, tup, STATISTIC_KIND_HISTOGRAM, InvalidOid, ATTSTATSSLOT_VALUES) &&
		sslot.nvalues > 0)
	{
		int			hits = 0;

		for (int i = 0; i < sslot.nvalues; i++)
		{
			text	   *t = DatumGetTextPP(sslot.values[i]);
			const char *s = VARDATA_ANY(t);
			int			sl = VARSIZE_ANY_EXHDR(t);

			for (int j = 0; j + nlen <= sl; j++)
			{
				if (pg_strncasecmp(s + j, needle, nlen) == 0)
				{
					hits++;
					break;
				}
			}
		}
		f = hits > 0 ? (double) hits / sslot.nvalues : 0.1 / sslot.nvalues;
		if (nhits)
			*nhits = hits;
		free_attstatsslot(&sslot);
	}
	ReleaseSysCache(tup);
	return f;
}

static void
estimate(SearchRequest *r, SearchStats *st)
{
	Relation	rel = DocOpenTable("product");
	Oid			relid = RelationGetRelid(rel);
	double		other;
	double		f;

	st->rows = rel->rd_rel->reltuples > 0 ? rel->rd_rel->reltuples : 1000;
	table_close(rel, AccessShareLock);

	f = mcv_freq(relid, "status", r->values[PRM_STATUS], st->rows, &other);
	st->f_status = f >= 0 ? f : (other >= 0 ? other : 0.5);

	st->f_price = r->price_filtered ?
		price_fraction(relid, r->min_price, r->max_price) : 1.0;
	st->f_category = 1.0;
	if (r->ncategories > 0)
		st->f_category = category_fraction(relid, r->category_ids, r->ncategories, st->rows);

	st->f_words = 0;
	st->f_gin = 0;
	st->f_typo = 0;
	st->f_substring = 0;
	if (r->nwords > 0)
	{
		HeapTuple	tup;
		AttStatsSlot mce;
		bool		have = false;
		double		rarest = 1.0;

		if (attr_stats(relid, "search_doc", &tup))
			have = get_attstatsslot(&mce, tup, STATISTIC_KIND_MCELEM, InvalidOid,
									ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS);

		st->f_words = 1.0;
		st->f_typo = 1.0;
		st->f_gin = 0;
		for (int i = 0; i < r->nwords; i++)
		{
			bool		prefix = (i == r->nwords - 1);
			double		w = lexeme_freq(&mce, have, r->words[i], r->wordlen[i], prefix);

			st->f_words *= w;

			/*
			 * GIN reads the entries of a prefix in full (into a bitmap, about
			 * three times the cost of an exact entry here), while exact words
			 * are intersected driven by the rarest ("fast scan").
			 */
			if (prefix)
				st->f_gin += 3 * w;
			else
				rarest = Min(rarest, w);
			if (r->typo_done)
			{
				for (int c = 0; c < r->ntypo[i]; c++)
					w += lexeme_freq(&mce, have, r->typo_words[i][c],
									 strlen(r->typo_words[i][c]), false);
				st->f_typo *= Min(w, 1.0);
			}
		}
		if (rarest < 1.0)
			st->f_gin += rarest;
		if (have)
			free_attstatsslot(&mce);
		if (tup)
			ReleaseSysCache(tup);
	}
	if (r->nulls[PRM_NAME_LIKE] == ' ')
	{
		int			hits;

		st->f_substring = histogram_contains(relid, "name", r->q, r->qlen, &hits);

		/*
		 * Several words are estimated as if independent, but words that
		 * go together (a brand, "ember lane"; a material, "stainless
		 * steel") are found together a hundred times more often.  A name
		 * that contains q as it was typed has all its words, the last as
		 * a prefix, so the share of such names bounds the words' share
		 * from below.  One entry of the histogram is noise ("select
		 * stainless", one entry in 101, is in 0.17% of the names); two or
		 * more are evidence ("ember lan", 4 entries, 4.2%; "stainless
		 * steel", 4 entries, 3.4%).
		 */
		if (r->nwords > 1 && hits >= 2)
			st->f_words = Max(st->f_words, st->f_substring);
	}
	if (r->nulls[PRM_SKU_LIKE] == ' ')
		st->f_substring = Max(st->f_substring,
							  histogram_contains(relid, "sku", r->sku, strlen(r->sku), NULL));
}

/*
 * Cost model of the variants, in microseconds of this machine's order of
 * magnitude (what matters is the ratio): an ordered scan pays a heap visit
 * and a filter per row it walks past until the page is full (rows arrive in
 * index order, so the heap pages are random); a bitmap scan pays per index
 * entry of its driving indexes, then a visit per row that survives the
 * bitmap (in heap order) and a sort.
 *
 * Measured at one million products, cached (EXPLAIN ANALYZE): a walk costs
 * 1.8 us per row by the primary key and 2.3 us by price, with its text
 * condition; a bitmap scan 0.2 us per posting read and 2.2 us per row it
 * visits ("stainless & steel": 15 ms of GIN, 73 ms for 33,500 rows).  A
 * walked row and a visited row cost about the same, so they weigh the
 * same here; the weights of a visited row and of a posting read keep the
 * earlier calibration (1.5 and 0.2, a ratio of 0.13 where this
 * measurement says 0.09), which this change did not measure against.
 *
 * A walked row was once weighed at 3.5: the walks that would have won,
 * two words that go together or a word and its department, were sent to
 * bitmap scans of every match ("stainless steel" took 130 ms, and takes
 * 1.5 ms).  On 540 queries of the benchmark's mix at one client, the best
 * of three runs each, four interleaved pairs, the change took 7% off the
 * mean and 14% off the p99.
 *
 * A category and a price range are read together from the index
 * (category_id, price, id), one range per category id (COST_DESCENT each):
 * "eco" in a department (41 leaves) at 10 to 25, newest first, visited the
 * 99,417 rows of the price band (232 ms) and now visits the 8,287 rows of
 * the department's band (28 ms).  A scan driven by filters evaluates the
 * text condition on every row it visits (COST_TEXT_FILTER; "kestrel" in a
 * department at 0 to 10 visited 27,016 rows in 68 ms, where the text and
 * category bitmap took 38 ms).  On 2,000 queries of the benchmark's mix at
 * one client, the 179 whose plans these two changed took 2.3 s instead of
 * 3.7 s (best of five, two interleaved runs each), the slowest of them 73
 * ms instead of 187 ms, and every one of the 2,000 results was the same.
 */
#define COST_ORDERED_ROW	1.5
#define COST_BITMAP_ENTRY	0.2
#define COST_BITMAP_ROW		1.5
#define COST_DESCENT		2.0		/* one descent of a btree, per array element */
#define COST_TEXT_FILTER	0.8		/* the text condition as a filter, per row */
/*
 * An entry of an index-only scan of all-visible pages, with a filter and a
 * count, against a row a scan visits in the heap: the facets of a price
 * range, 10 to 25, at a million products (99,417 rows in the range, cached)
 * took 268 ms reading all 1,000,000 entries of (status, category_id, price,
 * id) and 393 ms visiting the range's rows by the price index (675 ms by
 * the generic plan's bitmap scan): 0.27 us an entry, 4 to 7 us a row.
 */
#define COST_INDEX_ONLY_ENTRY	0.1

static double
cost_ordered(double need, double f_all)
{
	return need / Max(f_all, 1e-9) * COST_ORDERED_ROW;
}

static double
cost_bitmap(double rows, double f_driver, double f_survivors)
{
	return rows * (f_driver * COST_BITMAP_ENTRY + f_survivors * COST_BITMAP_ROW) + 20;
}

/* ------------------------------------------------------------------------
 * Cursor
 * ------------------------------------------------------------------------
 */

/*
 * The query a cursor belongs to: every input but page_size and cursor, and
 * the database.  CREATE DATABASE ... TEMPLATE copies the signing keys, so
 * without the database's OID a cursor of one database would verify in its
 * copy and resume at a key taken from the other's rows.  A hot standby has
 * the primary's OIDs: its cursors and the primary's are interchangeable.
 */
static void
fingerprint(const SearchRequest *r, StringInfo buf)
{
	appendStringInfo(buf, "%u|", MyDatabaseId);
	appendBinaryStringInfo(buf, r->q, r->qlen + 1);
	/* prices at scale 2, so that 5 and 5.0 are the same query */
	appendStringInfo(buf, "%lld|%s|%s|%s|%d|",
					 (long long) r->category_id,
					 DatumGetCString(DirectFunctionCall1(numeric_out,
														 DirectFunctionCall2(numeric_round,
																			 NumericGetDatum(r->min_price),
																			 Int32GetDatum(2)))),
					 DatumGetCString(DirectFunctionCall1(numeric_out,
														 DirectFunctionCall2(numeric_round,
																			 NumericGetDatum(r->max_price),
																			 Int32GetDatum(2)))),
					 r->status, (int) r->sort);
}

/*
 * The first bytes the cursor MAC covers, its terminating NUL included: the
 * MAC of a cursor can be no other keyed hash of the extension's (an audit
 * mask, a CSRF token), even under a key a superuser stored for two
 * purposes.
 */
#define CURSOR_MAC_LABEL		"catalog-cursor-v2"

/*
 * The cursor format's version byte (2: the MAC starts with the label; 3:
 * a flags byte after the class, CURSOR_SKU_EXACT the one flag).
 */
#define CURSOR_VERSION			3
#define CURSOR_SKU_EXACT		0x01

/* Start the bytes a cursor MAC covers: the label. */
static void
begin_signed(StringInfo signed_part)
{
	initStringInfo(signed_part);
	appendBinaryStringInfo(signed_part, CURSOR_MAC_LABEL, sizeof(CURSOR_MAC_LABEL));
}

/*
 * compute_mac
 *	  The cursor MAC: HMAC-SHA256 of data under k, truncated.
 */
static void
compute_mac(const SigningKey *k, const char *data, int len, uint8 *mac)
{
	uint8		full[SIGNING_MAC_LEN];

	SigningKeyHmac(k, data, len, full);
	memcpy(mac, full, SEARCH_MAC_LEN);
}

static void
put_u16(StringInfo b, int v)
{
	appendStringInfoChar(b, (char) ((v >> 8) & 0xFF));
	appendStringInfoChar(b, (char) (v & 0xFF));
}

static void
put_i64(StringInfo b, int64 v)
{
	for (int s = 56; s >= 0; s -= 8)
		appendStringInfoChar(b, (char) ((uint64) v >> s & 0xFF));
}

/*
 * encode_cursor
 *	  base64url(kid | version | sort | class | flags | id | created_at | price | text | mac)
 *	  where mac = HMAC-SHA256(secret, label | kid .. text | fingerprint),
 *	  truncated.
 */
static char *
encode_cursor(const SearchRequest *r, List *keys, const SearchRow *row)
{
	SigningKey *k = SigningKeyFind(keys, -1);
	StringInfoData b;
	StringInfoData signed_part;
	uint8		mac[SEARCH_MAC_LEN];
	char	   *price = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(row->price)));
	const char *txt = r->sort == SS_NAME ? row->name :
		(r->sort == SS_RELEVANCE && row->klass == SC_SKU_PREFIX ? row->sku : "");
	char	   *out;
	int			len;

	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no cursor signing key in catalog.signing_key")));
	initStringInfo(&b);
	put_u16(&b, k->kid);
	appendStringInfoChar(&b, CURSOR_VERSION);
	appendStringInfoChar(&b, (char) r->sort);
	appendStringInfoChar(&b, (char) row->klass);	/* -1 (0xFF): no text condition */
	appendStringInfoChar(&b, (char) (r->sku_exact ? CURSOR_SKU_EXACT : 0));
	put_i64(&b, row->id);
	put_i64(&b, row->created_at);
	put_u16(&b, strlen(price));
	appendStringInfoString(&b, price);
	put_u16(&b, strlen(txt));
	appendStringInfoString(&b, txt);

	begin_signed(&signed_part);
	appendBinaryStringInfo(&signed_part, b.data, b.len);
	fingerprint(r, &signed_part);
	compute_mac(k, signed_part.data, signed_part.len, mac);
	appendBinaryStringInfo(&b, (char *) mac, SEARCH_MAC_LEN);

	out = palloc(pg_b64_enc_len(b.len) + 1);
	len = pg_b64_encode(b.data, b.len, out, pg_b64_enc_len(b.len));
	if (len < 0)
		elog(ERROR, "could not encode a cursor");
	/* URL-safe alphabet, no padding */
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : (*p == '/' ? '_' : *p);
	return out;
}

static void
bad_cursor(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid cursor"),
			 ApiErrDetail("{\"field\": \"cursor\", \"reason\": \"invalid\"}"),
			 errhint("Pass next_cursor unchanged, with the same q, filters and sort.")));
}

/*
 * decode_cursor
 *	  Verify a cursor's MAC against this query's fingerprint (in constant
 *	  time), then read it; any failure is 22023.
 */
static void
decode_cursor(SearchRequest *r, List *keys, text *cursor)
{
	int			clen = VARSIZE_ANY_EXHDR(cursor);
	const char *c = VARDATA_ANY(cursor);
	char	   *b64;
	char	   *raw;
	int			rawlen;
	int			pos;
	SigningKey *k;
	StringInfoData signed_part;
	uint8		mac[SEARCH_MAC_LEN];
	uint8		diff = 0;
	int			plen,
				tlen;
	int			inlen;

	if (clen < 8 || clen > SEARCH_CURSOR_MAX)
		bad_cursor();
	b64 = palloc(clen + 4);
	for (int i = 0; i < clen; i++)
	{
		char		ch = c[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			bad_cursor();
		b64[i] = ch;
	}
	inlen = clen;
	while (clen % 4 != 0)
		b64[clen++] = '=';
	raw = palloc(pg_b64_dec_len(clen) + 1);
	rawlen = pg_b64_decode(b64, clen, raw, pg_b64_dec_len(clen));
	/* kid 2, version 1, sort 1, class 1, flags 1, id 8, time 8, 2 + 2 lengths, mac */
	if (rawlen < 2 + 4 + 16 + 4 + SEARCH_MAC_LEN)
		bad_cursor();

	/*
	 * Only the canonical encoding of these bytes: the last character of a
	 * base64 text carries unused low bits, and a cursor that differs there
	 * decodes to the same bytes.  Encode again and compare.
	 */
	{
		char	   *canon = palloc(pg_b64_enc_len(rawlen) + 1);
		int			n = pg_b64_encode(raw, rawlen, canon, pg_b64_enc_len(rawlen));

		while (n > 0 && canon[n - 1] == '=')
			n--;
		if (n != inlen || memcmp(canon, b64, n) != 0)
			bad_cursor();
	}

	k = SigningKeyFind(keys, ((unsigned char) raw[0] << 8) | (unsigned char) raw[1]);
	if (k == NULL)
		bad_cursor();
	begin_signed(&signed_part);
	appendBinaryStringInfo(&signed_part, raw, rawlen - SEARCH_MAC_LEN);
	fingerprint(r, &signed_part);
	compute_mac(k, signed_part.data, signed_part.len, mac);
	for (int i = 0; i < SEARCH_MAC_LEN; i++)
		diff |= mac[i] ^ (uint8) raw[rawlen - SEARCH_MAC_LEN + i];
	if (diff != 0)
		bad_cursor();

	/* authentic: written by encode_cursor for this query */
	rawlen -= SEARCH_MAC_LEN;
	pos = 2;
	if (raw[pos++] != CURSOR_VERSION || raw[pos++] != (char) r->sort)
		bad_cursor();
	r->cur_class = (unsigned char) raw[pos++];
	/* 0xFF: the row had no class (a search without a text condition) */
	if (r->cur_class == 0xFF && r->sort != SS_RELEVANCE)
		r->cur_class = -1;
	else if (r->cur_class >= SC_COUNT)
		bad_cursor();
	if ((raw[pos] & ~CURSOR_SKU_EXACT) != 0)
		bad_cursor();
	r->cur_sku_exact = (raw[pos++] & CURSOR_SKU_EXACT) != 0;
	r->cur_id = 0;
	for (int i = 0; i < 8; i++)
		r->cur_id = (int64) (((uint64) r->cur_id << 8) | (unsigned char) raw[pos++]);
	r->cur_time = 0;
	for (int i = 0; i < 8; i++)
		r->cur_time = (int64) (((uint64) r->cur_time << 8) | (unsigned char) raw[pos++]);
	plen = ((unsigned char) raw[pos] << 8) | (unsigned char) raw[pos + 1];
	pos += 2;
	if (plen < 1 || plen > 40 || pos + plen + 2 > rawlen)
		bad_cursor();
	r->cur_price = pnstrdup(raw + pos, plen);
	pos += plen;
	tlen = ((unsigned char) raw[pos] << 8) | (unsigned char) raw[pos + 1];
	pos += 2;
	if (pos + tlen != rawlen)
		bad_cursor();
	r->cur_text = pnstrdup(raw + pos, tlen);
	r->has_cursor = true;
}

/*
 * read_cursor
 *	  decode_cursor under the cursor keys, loaded for it and wiped once it
 *	  is read, also when a forged cursor is refused.
 */
static void
read_cursor(SearchRequest *r, text *cursor)
{
	List	   *keys = SigningKeysLoad("cursor");

	PG_TRY();
	{
		decode_cursor(r, keys, cursor);
	}
	PG_CATCH();
	{
		SigningKeysWipe(keys);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SigningKeysWipe(keys);
}

/*
 * set_keyset
 *	  Keyset parameters to continue after the cursor within class klass
 *	  (relevance) or within the sort; from the start when no cursor applies.
 */
static void
set_keyset(SearchRequest *r, bool from_cursor)
{
	r->nulls[PRM_KEY_PRICE] = ' ';
	r->nulls[PRM_KEY_TIME] = ' ';
	r->nulls[PRM_KEY_TEXT] = ' ';
	r->nulls[PRM_KEY_ID] = ' ';
	if (from_cursor)
	{
		r->values[PRM_KEY_PRICE] = NumericGetDatum(numeric_from_cstring(r->cur_price));
		r->values[PRM_KEY_TIME] = TimestampTzGetDatum(r->cur_time);
		r->values[PRM_KEY_TEXT] = CStringGetTextDatum(r->cur_text);
		r->values[PRM_KEY_ID] = Int64GetDatum(r->cur_id);
		return;
	}
	switch (r->sort)
	{
		/*
		 * The price sorts start at the bound of the price range: btree
		 * cannot tell which of a row comparison and a scalar bound on the
		 * same column is tighter, so the start key must be the tight one.
		 */
		case SS_PRICE_ASC:
			r->values[PRM_KEY_PRICE] = NumericGetDatum(r->min_price);
			r->values[PRM_KEY_ID] = Int64GetDatum(PG_INT64_MIN);
			break;
		case SS_PRICE_DESC:
			r->values[PRM_KEY_PRICE] = NumericGetDatum(r->max_price);
			r->values[PRM_KEY_ID] = Int64GetDatum(PG_INT64_MAX);
			break;
		default:
			r->values[PRM_KEY_PRICE] = NumericGetDatum(numeric_from_cstring("0"));
			r->values[PRM_KEY_ID] = Int64GetDatum(r->sort == SS_NAME ? PG_INT64_MIN : PG_INT64_MAX);
			break;
	}
	{
		TimestampTz inf;

		TIMESTAMP_NOEND(inf);
		r->values[PRM_KEY_TIME] = TimestampTzGetDatum(inf);
	}
	r->values[PRM_KEY_TEXT] = CStringGetTextDatum("");
}

/* ------------------------------------------------------------------------
 * Page assembly
 * ------------------------------------------------------------------------
 */

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Copy the rows of SPI_tuptable into out (in cxt), tagged with klass. */
static int
collect_rows(SearchRow *out, int have, int want, int klass, MemoryContext cxt)
{
	SPITupleTable *tt = SPI_tuptable;
	MemoryContext old = MemoryContextSwitchTo(cxt);

	for (uint64 i = 0; i < SPI_processed && have < want; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		SearchRow  *row = &out[have++];

		row->id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, COL_ID, &isnull));
		row->sku = spi_text(tup, tt->tupdesc, COL_SKU);
		row->name = spi_text(tup, tt->tupdesc, COL_NAME);
		row->price = DatumGetNumericCopy(SPI_getbinval(tup, tt->tupdesc, COL_PRICE, &isnull));
		row->currency = spi_text(tup, tt->tupdesc, COL_CURRENCY);
		row->status = spi_text(tup, tt->tupdesc, COL_STATUS);
		row->category_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, COL_CATEGORY, &isnull));
		row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, tt->tupdesc, COL_CREATED, &isnull));
		row->category_name = spi_text(tup, tt->tupdesc, COL_CATNAME);
		row->klass = klass;
		if (klass < 0)
		{
			Datum		k = SPI_getbinval(tup, tt->tupdesc, COL_CLASS, &isnull);

			row->klass = isnull ? -1 : DatumGetInt32(k);
		}
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(tt);
	return have;
}


/* Is class c possible for this request at all? */
static bool
class_possible(SearchRequest *r, int c)
{
	switch (c)
	{
		case SC_SKU_EXACT:
			return r->nulls[PRM_SKU] == ' ';
		case SC_SKU_PREFIX:
			return r->nulls[PRM_SKU_LO] == ' ';
		case SC_NAME:
		case SC_TEXT:
			return r->nwords > 0;
		case SC_SUBSTRING:
			return r->nulls[PRM_NAME_LIKE] == ' ' || r->nulls[PRM_SKU_LIKE] == ' ';
		case SC_TYPO:
			compute_typo(r);
			return r->nulls[PRM_TSQ_TYPO] == ' ';
	}
	return false;
}

/* Index entries a bitmap scan of class c's driving index reads. */
static double
class_driver_freq(const SearchStats *st, int c)
{
	switch (c)
	{
		case SC_NAME:
		case SC_TEXT:
			return st->f_gin;
		case SC_SUBSTRING:
			return 3 * st->f_substring;	/* trigram posting lists, several per pattern */
		case SC_TYPO:
			return 3 * st->f_typo;	/* ORs of corrections: bitmaps in full */
	}
	return 0;
}

static double
class_freq(const SearchStats *st, int c)
{
	switch (c)
	{
		case SC_NAME:
		case SC_TEXT:
			return st->f_words;
		case SC_SUBSTRING:
			return st->f_substring;
		case SC_TYPO:
			return st->f_typo;
	}
	return 0;
}

/*
 * sku_mode_exact
 *	  For an identifier (sku_mode): when it is exactly the SKU of a product
 *	  that passes the filters, the result is that product and the SKUs that
 *	  start with it, without substring matches (which for a whole SKU are
 *	  noise, and cost a trigram scan).  Decided by the first page, from the
 *	  data, and kept in the cursor: the later pages of one walk follow that
 *	  decision.  Deciding again on every page lost rows: a product given
 *	  the SKU q between two pages switched the substring class off, and the
 *	  substring matches not yet shown were never shown (and a walk whose
 *	  exact product was archived would have grown a class midway).
 */
static void
sku_mode_exact(SearchRequest *r)
{
	r->sku_exact = false;
	if (!r->sku_mode)
		return;
	if (r->has_cursor)
		r->sku_exact = r->cur_sku_exact;
	else
	{
		set_keyset(r, false);
		r->sku_exact = run_variant(r, V_SKU_EXACT, "sku_exact (identifier)", 1) > 0;
		SPI_freetuptable(SPI_tuptable);
	}
	if (r->sku_exact)
	{
		r->nulls[PRM_NAME_LIKE] = 'n';
		r->nulls[PRM_SKU_LIKE] = 'n';
	}
}

/*
 * walk_budget
 *	  Rows an ordered variant may walk before the bitmap variant replaces
 *	  it: three times what the estimate says a page needs (so an estimate
 *	  that is right never falls back), and at least what half the bitmap
 *	  variant's cost buys.  A walk is taken only when its estimate is under
 *	  the bitmap's (under half of it when the estimate combines factors,
 *	  see ordered_wins), so a walk that spends its budget costs at most
 *	  three times the bitmap plan (one and a half times with combined
 *	  factors), which then runs as well.
 */
static int64
walk_budget(double need, double f_all, double fallback_cost)
{
	double		b = Max(3 * need / Max(f_all, 1e-9), 0.5 * fallback_cost / COST_ORDERED_ROW);

	return (int64) Min(Max(b, 400), 1e9);
}

/*
 * ordered_wins
 *	  Take the ordered walk only when its estimate beats the bitmap's by the
 *	  margin the estimate deserves: a single word's frequency is measured,
 *	  but a combination (several words, a word and a category) assumes
 *	  independence, which a catalog breaks all the time ("signature
 *	  recycled": two adjectives that rarely meet), and an ordered walk that
 *	  runs out of budget pays for the bitmap scan as well.
 *
 *	  Probing was measured and left out: an ordered walk tried first within
 *	  a quarter of the bitmap variant's cost, whenever that variant cost 2
 *	  ms or more, would have helped where a word clusters in a department
 *	  ("wooden" in toys: 69 ms to 2.5 ms), but on the 2,700 queries of the
 *	  benchmark's mix at one client (1M products) only 46 of 1,605 probes
 *	  filled their page, and the mix took 20% longer (its p99 61 ms to 72).
 */
static bool
ordered_wins(const SearchRequest *r, double ordered, double bitmap)
{
	int			factors = (r->nwords > 1 ? r->nwords - 1 : 0) + (r->ncategories > 0) +
		(r->price_filtered ? 1 : 0);

	return ordered < bitmap * (factors > 0 ? 0.5 : 1.0);
}

/*
 * run_ordered
 *	  Run an ordered variant within its walk budget.  True when it filled
 *	  its want rows (they are in SPI_tuptable); false when the budget ran
 *	  out first or the rows ran out (the caller then runs a bitmap variant,
 *	  which is exact either way).
 */
static bool
run_ordered(SearchRequest *r, int v, const char *label, int want, double f_all,
			double fallback_cost)
{
	r->values[PRM_LIMIT] = Int64GetDatum(walk_budget(want, f_all, fallback_cost));
	r->nulls[PRM_LIMIT] = ' ';
	if (run_variant(r, v, label, want) >= (uint64) want)
		return true;
	SEARCH_TRACE("search: %s: walk budget spent, bitmap instead", label);
	SPI_freetuptable(SPI_tuptable);
	return false;
}

/* What drives a bitmap variant. */
typedef enum BitmapDriver
{
	BD_TEXT,					/* the text indexes */
	BD_TEXT_CATEGORY,			/* the text indexes ANDed with the category index */
	BD_CATEGORY,				/* the category index, text as a filter */
	BD_CATEGORY_PRICE,			/* the category and price index, text as a filter */
	BD_PRICE,					/* the price range, the rest as a filter */
	BD_NONE
} BitmapDriver;

/*
 * cheapest_bitmap
 *	  The cheapest bitmap driver for a text condition matching f_text of the
 *	  rows, whose indexes read f_driver of the table's entries (has_text
 *	  false: no text condition), and its cost in *cost (BD_NONE when there
 *	  is nothing to drive a bitmap scan).
 */
static BitmapDriver
cheapest_bitmap(const SearchRequest *r, const SearchStats *st, bool has_text,
				double f_driver, double f_text, double *cost)
{
	BitmapDriver best = BD_NONE;
	double		c;

	/* a row a filter-driven scan visits also pays the text condition */
	double		filter = has_text ? COST_TEXT_FILTER : 0;

	/* a scan of category_id = ANY ($5) descends once per category id */
	double		descents = COST_DESCENT * r->ncategories;

	*cost = 1e300;
	if (has_text)
	{
		*cost = cost_bitmap(st->rows, f_driver, f_text);
		best = BD_TEXT;
	}
	if (r->ncategories > 0)
	{
		if (has_text &&
			(c = cost_bitmap(st->rows, f_driver + st->f_category, f_text * st->f_category) +
			 descents) < *cost)
		{
			*cost = c;
			best = BD_TEXT_CATEGORY;
		}
		if ((c = cost_bitmap(st->rows, st->f_category, st->f_category) +
			 st->rows * st->f_category * filter + descents) < *cost)
		{
			*cost = c;
			best = BD_CATEGORY;
		}
	}
	if (r->price_filtered &&
		(c = cost_bitmap(st->rows, st->f_price, st->f_price) + st->rows * st->f_price * filter) < *cost)
	{
		*cost = c;
		best = BD_PRICE;
	}

	/*
	 * Both filters at once: the index (category_id, price, id) reads the
	 * price range of each category, so a department and a common price
	 * band read a tenth of either alone.
	 */
	if (r->ncategories > 0 && r->price_filtered)
	{
		double		f_both = st->f_category * st->f_price;

		c = cost_bitmap(st->rows, f_both, f_both) + st->rows * f_both * filter + descents;
		if (c < *cost)
		{
			*cost = c;
			best = BD_CATEGORY_PRICE;
		}
	}
	return best;
}

/*
 * walk_spent
 *	  After a walk bounded by budget came back short: did it stop at the
 *	  budget (true) or read every entry of its range (false, its page is
 *	  exact)?  v_span counts the walk's entries, one past the budget at most,
 *	  from its index alone.
 */
static bool
walk_spent(const SearchRequest *r, int v_span, const char *label, int64 budget)
{
	bool		isnull;
	int64		span;

	run_variant(r, v_span, label, 1);
	if (SPI_processed != 1)
		elog(ERROR, "search: %s returned " UINT64_FORMAT " rows", label, SPI_processed);
	span = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		elog(ERROR, "search: %s returned NULL", label);
	SPI_freetuptable(SPI_tuptable);
	return span > budget;
}

/*
 * run_sku_prefix
 *	  The SKU prefix class, from its keyset: a walk of the SKU index in SKU
 *	  order that checks the filters on each row it reads.  A prefix that
 *	  many SKUs share (a brand code, or the "SKU-" of a whole catalog) with
 *	  filters few of them pass (a leaf, a narrow price range) would make that
 *	  walk read the whole range for a short page: a million rows, past the
 *	  search timeout.  So when a filter can drive a scan, the walk is bounded
 *	  like the other classes' walks, and when it spends its budget, the
 *	  filters' cheapest scan replaces it, with the prefix as a filter and a
 *	  sort by SKU.  The walk comes first even when the estimate favours the
 *	  filters, with a budget of half their cost only: a range can be a
 *	  handful of SKUs (an identifier's), which the estimate, blind to the
 *	  prefix, cannot tell from a brand.  A short page from the walk is exact
 *	  when the walk read the whole range; the rows of the range, counted
 *	  up to one past the budget by an index-only scan of the SKU index (the
 *	  heap only for pages not all-visible), tell the two apart.
 *	  Returns the rows collected so far.
 */
static int
run_sku_prefix(SearchRequest *r, SearchStats *st, SearchRow *rows, int have, int need,
			   MemoryContext cxt)
{
	int			want = need - have;
	double		f_all = st->f_status * st->f_category * st->f_price;
	double		fallback;
	int64		budget;
	int			v_fallback;
	const char *label;
	int			walked;

	switch (cheapest_bitmap(r, st, false, 0, 1.0, &fallback))
	{
		case BD_CATEGORY:
			v_fallback = V_SKU_PREFIX_CAT;
			label = "sku_prefix (category)";
			break;
		case BD_PRICE:
			v_fallback = V_SKU_PREFIX_PRICE;
			label = "sku_prefix (price range)";
			break;
		case BD_CATEGORY_PRICE:
			v_fallback = V_SKU_PREFIX_CATPRICE;
			label = "sku_prefix (category and price range)";
			break;
		default:
			v_fallback = -1;
			label = NULL;
			break;
	}

	/*
	 * Only the status to filter on, or filters whose scan would cost more
	 * than a walk of the whole table (a price range that holds nearly every
	 * row): the walk, unbounded, reads at most the range.
	 */
	if (v_fallback < 0 || fallback >= st->rows * COST_ORDERED_ROW)
	{
		r->values[PRM_LIMIT] = Int64GetDatum(PG_INT64_MAX);
		r->nulls[PRM_LIMIT] = ' ';
		run_variant(r, V_SKU_PREFIX, class_names[SC_SKU_PREFIX], want);
		return collect_rows(rows, have, need, SC_SKU_PREFIX, cxt);
	}

	if (ordered_wins(r, cost_ordered(want, f_all), fallback))
		budget = walk_budget(want, f_all, fallback);
	else
		budget = walk_budget(0, f_all, fallback);	/* half the fallback's cost */
	r->values[PRM_LIMIT] = Int64GetDatum(budget);
	r->nulls[PRM_LIMIT] = ' ';
	SEARCH_TRACE("search: class sku_prefix, walk budget " INT64_FORMAT ", fallback %s %.0f",
				 budget, label, fallback);

	run_variant(r, V_SKU_PREFIX, class_names[SC_SKU_PREFIX], want);
	walked = collect_rows(rows, have, need, SC_SKU_PREFIX, cxt);
	if (walked >= need)
		return walked;

	if (!walk_spent(r, V_SKU_PREFIX_SPAN, "sku_prefix (walked range)", budget))
		return walked;			/* the walk read the whole range: the page is exact */

	/* the budget ran out: the rows walked are a prefix of the scan's */
	SEARCH_TRACE("search: sku_prefix: walk budget spent, %s instead", label);
	run_variant(r, v_fallback, label, want);
	return collect_rows(rows, have, need, SC_SKU_PREFIX, cxt);
}

/*
 * run_relevance
 *	  The classes in order from the cursor's, each from its keyset, until
 *	  need rows are collected.  Per text class, the cheapest variant by the
 *	  cost model: an ordered walk of the primary key (newest first), or a
 *	  bitmap scan driven by the words, the words and the category, the
 *	  category alone, the price range, or the category and the price range
 *	  together, then a top-N sort.
 */
static int
run_relevance(SearchRequest *r, SearchStats *st, SearchRow *rows, int need, MemoryContext cxt)
{
	int			have = 0;
	int			first = r->has_cursor ? r->cur_class : SC_SKU_EXACT;

	for (int c = first; c < SC_COUNT && have < need; c++)
	{
		bool		from_cursor = r->has_cursor && c == r->cur_class;
		int			want = need - have;
		double		f,
					fd,
					f_all,
					best;
		int			bitmap;

		if (!class_possible(r, c))
			continue;
		if (c == SC_SKU_EXACT && from_cursor)
			continue;			/* at most one row, already returned */
		set_keyset(r, from_cursor);
		if (c == SC_SKU_EXACT)
		{
			run_variant(r, V_SKU_EXACT, class_names[c], want);
			have = collect_rows(rows, have, need, c, cxt);
			continue;
		}
		if (c == SC_SKU_PREFIX)
		{
			have = run_sku_prefix(r, st, rows, have, need, cxt);
			continue;
		}

		if (c == SC_TYPO)
			estimate(r, st);	/* now that the corrections are known */
		f = class_freq(st, c);
		fd = class_driver_freq(st, c);
		f_all = f * st->f_status * st->f_category * st->f_price;

		/* the cheapest bitmap variant, the fallback of an ordered walk */
		switch (cheapest_bitmap(r, st, true, fd, f, &best))
		{
			case BD_TEXT_CATEGORY:
				bitmap = TIER_BITMAP_CAT;
				break;
			case BD_CATEGORY:
				bitmap = TIER_BITMAP_CATONLY;
				break;
			case BD_CATEGORY_PRICE:
				bitmap = TIER_BITMAP_CATPRICE;
				break;
			case BD_PRICE:
				bitmap = TIER_BITMAP_PRICE;
				break;
			default:
				bitmap = TIER_BITMAP;
				break;
		}
		SEARCH_TRACE("search: class %s, f %g, ordered %.0f, bitmap %d %.0f",
			 class_names[c], f, cost_ordered(want, f_all), bitmap, best);
		if (ordered_wins(r, cost_ordered(want, f_all), best) &&
			run_ordered(r, V_TIER(c, TIER_ORDERED), class_names[c], want, f_all, best))
		{
			have = collect_rows(rows, have, need, c, cxt);
			continue;
		}
		run_variant(r, V_TIER(c, bitmap), class_names[c], want);
		have = collect_rows(rows, have, need, c, cxt);
	}
	return have;
}

/*
 * run_sorted_status
 *	  A sort with filters only, none but the status: the walk of the sort's
 *	  index, bounded, and when it spends its budget, the status's own rows
 *	  (SP_BITMAP_STATUS), sorted.  A short page from the walk is usually the
 *	  end of the index (the last page of a browse), which the walk answers
 *	  exactly and the status's rows (every published product) would answer
 *	  at the cost of all of them: so a short walk is kept when it did not
 *	  spend its budget.  The name sort's walk filters the status in the
 *	  index scan, so its budget counts matching rows only and is never spent
 *	  by a short page (it is at least 400); the other sorts count the walk's
 *	  entries past the keyset, capped one past the budget, from their index
 *	  alone.
 */
static int
run_sorted_status(SearchRequest *r, SearchRow *rows, int need, double f_walk, double ordered,
				  double best, MemoryContext cxt)
{
	int64		budget;
	int			have;

	if (ordered_wins(r, ordered, best))
	{
		budget = walk_budget(need, f_walk, best);
		r->values[PRM_LIMIT] = Int64GetDatum(budget);
		r->nulls[PRM_LIMIT] = ' ';
		run_variant(r, V_SORT(r->sort, SP_GLOBAL), sort_names[r->sort], need);
		have = collect_rows(rows, 0, need, -1, cxt);
		if (have >= need || r->sort == SS_NAME)
			return have;
		if (!walk_spent(r, V_SORT_SPAN(r->sort), "walked entries", budget))
			return have;		/* the walk read every entry: the page is exact */
		SEARCH_TRACE("search: %s: walk budget spent, the status's rows instead", sort_names[r->sort]);
	}
	run_variant(r, V_SORT(r->sort, SP_BITMAP_STATUS), sort_names[r->sort], need);
	return collect_rows(rows, 0, need, -1, cxt);
}

/*
 * run_sorted
 *	  One variant for price, newest and name: an ordered walk of the sort's
 *	  index (or of its per-category index), or, when that is dearer or its
 *	  walk budget runs out, the cheapest bitmap scan (text, category, both,
 *	  or price range) and a sort.
 */
static int
run_sorted(SearchRequest *r, SearchStats *st, SearchRow *rows, int need, MemoryContext cxt)
{
	double		f_text = 1.0;
	double		f_driver = 0;
	double		f_walk;
	double		ordered;
	double		best = 1e300;
	double		cost;
	SortPath	ordered_path = SP_GLOBAL;
	SortPath	path = SP_COUNT;
	bool		price_sort = (r->sort == SS_PRICE_ASC || r->sort == SS_PRICE_DESC);

	if (r->has_text)
	{
		compute_typo(r);
		estimate(r, st);
		f_text = Max(Max(st->f_words, st->f_substring), st->f_typo);
		if (r->nulls[PRM_SKU] == ' ')
			f_text = Max(f_text, 1.0 / st->rows);
		f_driver = st->f_gin + 3 * st->f_substring + 3 * st->f_typo;
	}
	set_keyset(r, r->has_cursor);

	/* ordered over the catalog (for the price sorts the range bounds the walk) */
	f_walk = st->f_status * st->f_category * f_text * (price_sort ? 1.0 : st->f_price);
	ordered = cost_ordered(need, f_walk);
	if (r->ncategories == 1 && r->sort != SS_NAME)
	{
		double		f_cat_walk = st->f_status * f_text * (r->sort == SS_NEWEST ? st->f_price : 1.0);

		cost = cost_ordered(need, f_cat_walk);
		if (cost < ordered)
		{
			ordered = cost;
			ordered_path = SP_CATEGORY;
			f_walk = f_cat_walk;
		}
	}

	/* the cheapest bitmap variant */
	switch (cheapest_bitmap(r, st, r->has_text, f_driver, f_text, &best))
	{
		case BD_TEXT:
			path = SP_BITMAP_TEXT;
			break;
		case BD_TEXT_CATEGORY:
			path = SP_BITMAP_TEXT_CATEGORY;
			break;
		case BD_CATEGORY:
			path = SP_BITMAP_CATEGORY;
			break;
		case BD_CATEGORY_PRICE:
			path = SP_BITMAP_CATEGORY_PRICE;
			break;
		case BD_PRICE:
			path = SP_BITMAP_PRICE;
			break;
		case BD_NONE:

			/*
			 * Filters only, none but the status: a status that holds few
			 * rows (an editor's "archived", or one that holds none) would
			 * make the walk read the whole table, so its rows are the
			 * bitmap variant.
			 */
			path = SP_BITMAP_STATUS;
			best = cost_bitmap(st->rows, st->f_status, st->f_status);
			break;
	}
	SEARCH_TRACE("search: sort %s, rows %.0f, f_status %g, f_category %g, f_price %g, f_text %g:"
		 " ordered %d %.0f, bitmap %d %.0f",
		 sort_names[r->sort], st->rows, st->f_status, st->f_category, st->f_price, f_text,
		 (int) ordered_path, ordered, (int) path, best);

	if (path == SP_BITMAP_STATUS)
		return run_sorted_status(r, rows, need, f_walk, ordered, best, cxt);
	if (ordered_wins(r, ordered, best) &&
		run_ordered(r, V_SORT(r->sort, ordered_path), sort_names[r->sort], need, f_walk, best))
		return collect_rows(rows, 0, need, -1, cxt);
	run_variant(r, V_SORT(r->sort, path), sort_names[r->sort], need);
	return collect_rows(rows, 0, need, -1, cxt);
}

/* ------------------------------------------------------------------------
 * Highlight
 * ------------------------------------------------------------------------
 */

typedef struct HlRange
{
	int			start;
	int			end;
} HlRange;

static int
hl_range_cmp(const void *a, const void *b)
{
	const HlRange *x = a,
			   *y = b;

	return x->start != y->start ? (x->start < y->start ? -1 : 1) : (x->end - y->end);
}

/*
 * word_char
 *	  Whether c (folded, as find_needle sees it) is a letter or digit the
 *	  way the text search parser decides it for this database, so that a
 *	  highlight starts and ends where the parser's words do: iswalnum in a
 *	  multibyte database with a real locale, the locale's isalnum in a
 *	  single-byte one, and under the C locale ASCII letters and digits plus
 *	  every non-ASCII character (the parser's own rule there).
 */
static bool
word_char(pg_wchar c, FoldMode mode)
{
	switch (mode)
	{
		case FOLD_WIDE:
			return iswalnum((wint_t) c) != 0;
		case FOLD_BYTE:
			return c >= 256 || isalnum((int) c);
		case FOLD_ASCII:
			break;
	}
	return c >= 0x80 || isalnum((int) c);
}

/*
 * zero_width
 *	  Whether c is a character of no display width (a combining mark),
 *	  which the text search parser takes as part of the word it is in,
 *	  though it starts none (p_isspecial of wparser_def.c): so "Wool"
 *	  followed by U+0303 is one word, and a query word "wool" that is not
 *	  the last must not be highlighted in it.  Only a UTF-8 database
 *	  decodes names to code points here.
 */
static bool
zero_width(pg_wchar c, FoldMode mode)
{
	unsigned char buf[8];

	if (mode != FOLD_WIDE || c < 0x80 || GetDatabaseEncoding() != PG_UTF8)
		return false;
	unicode_to_utf8(c, buf);
	return pg_encoding_dsplen(PG_UTF8, (const char *) buf) == 0;
}

/* Whether the parser's word goes on through c (a word character or a mark). */
static bool
word_goes_on(pg_wchar c, FoldMode mode)
{
	return word_char(c, mode) || zero_width(c, mode);
}

/* Whether name[i] is inside a word: marks before it belong to the word before them. */
static bool
in_word_before(const pg_wchar *name, int i, FoldMode mode)
{
	int			j = i - 1;

	while (j >= 0 && zero_width(name[j], mode))
		j--;
	return j >= 0 && word_char(name[j], mode);
}

/*
 * Occurrences of needle (len bytes) in name (nlen characters, folded):
 * anywhere (a substring match), or as the parser's words: starting at a
 * word boundary and, unless prefix (the last query word), ending at one.
 * A needle that itself starts or ends with a character that is no letter
 * or digit (the parser's "-10" of "merino-10") needs no boundary on that
 * side.  Ranges are in characters.
 */
static int
find_needle(const pg_wchar *name, int nlen, const char *needle, int len, bool anywhere,
			bool prefix, FoldMode mode, HlRange *out, int have, int max)
{
	int			wn;
	pg_wchar   *w;
	bool		open_start;
	bool		open_end;

	if (len == 0)
		return have;
	w = wide_chars(needle, len, &wn);
	fold_chars(w, wn, mode);
	if (wn == 0)
	{
		pfree(w);
		return have;
	}
	open_start = anywhere || !word_char(w[0], mode);
	open_end = anywhere || prefix || !word_goes_on(w[wn - 1], mode);
	for (int i = 0; i + wn <= nlen && have < max; i++)
	{
		if (!open_start && i > 0 && in_word_before(name, i, mode))
			continue;
		if (!open_end && i + wn < nlen && word_goes_on(name[i + wn], mode))
			continue;
		if (memcmp(name + i, w, wn * sizeof(pg_wchar)) == 0)
		{
			int			s = i;
			int			e = i + wn;

			/*
			 * Never split a character from its combining marks: a range
			 * that ends before marks (a prefix or substring match of
			 * "Boxx" followed by U+0302) takes them, and one that starts
			 * on a mark (a substring) starts at its base character.
			 */
			while (e < nlen && zero_width(name[e], mode))
				e++;
			while (s > 0 && zero_width(name[s], mode))
				s--;
			out[have].start = s;
			out[have].end = e;
			have++;
			i = e - 1;
		}
	}
	pfree(w);
	return have;
}

/*
 * collect_ranges
 *	  The ranges of the query in name (see push_highlight), at most max;
 *	  with first_only, each query word's first occurrence only (or, for a
 *	  typo match, the first of the word or else of one of its corrections).
 */
static int
collect_ranges(const pg_wchar *name, int nlen, const SearchRequest *r, const SearchRow *row,
			   FoldMode mode, bool first_only, HlRange *rg, int max)
{
	int			n = 0;

	if (row->klass == SC_SUBSTRING)
		return find_needle(name, nlen, r->q, r->qlen, true, false, mode, rg, 0,
						   first_only ? 1 : max);
	if (row->klass == SC_SKU_EXACT || row->klass == SC_SKU_PREFIX)
		return 0;
	for (int i = 0; i < r->nwords && n < max; i++)
	{
		int			before = n;

		/* the last word is a prefix (autocomplete), the others words */
		n = find_needle(name, nlen, r->words[i], r->wordlen[i], false,
						i == r->nwords - 1, mode, rg, n, first_only ? n + 1 : max);
		if (row->klass == SC_TYPO)
			for (int c = 0; c < r->ntypo[i] && n < max && (!first_only || n == before); c++)
				n = find_needle(name, nlen, r->typo_words[i][c],
								strlen(r->typo_words[i][c]), false, false,
								mode, rg, n, first_only ? n + 1 : max);
	}
	return n;
}

/*
 * push_highlight
 *	  "highlight": [{"start", "length"}...] in code points of the name: the
 *	  query words (or their corrections, or q itself for a substring
 *	  match), case-insensitively as the lexemes are lowercased (fold_mode).
 *	  At most SEARCH_MAX_HIGHLIGHTS ranges: each query word's first
 *	  occurrence, then the others in name order (a word repeated in the
 *	  name took every slot, and a later query word went unmarked).
 */
static void
push_highlight(JsonbParseState **st, const SearchRequest *r, const SearchRow *row)
{
	HlRange		first[SEARCH_MAX_HIGHLIGHTS * 4];
	HlRange		all[SEARCH_MAX_HIGHLIGHTS * 4];
	HlRange		rg[SEARCH_MAX_HIGHLIGHTS];
	int			nfirst;
	int			nall;
	int			n = 0;
	FoldMode	mode = fold_mode();
	int			nlen;
	pg_wchar   *name = wide_chars(row->name, strlen(row->name), &nlen);

	fold_chars(name, nlen, mode);
	nfirst = collect_ranges(name, nlen, r, row, mode, true, first, lengthof(first));
	nall = collect_ranges(name, nlen, r, row, mode, false, all, lengthof(all));
	pfree(name);
	qsort(all, nall, sizeof(HlRange), hl_range_cmp);
	for (int i = 0; i < nfirst && n < SEARCH_MAX_HIGHLIGHTS; i++)
		rg[n++] = first[i];
	for (int i = 0; i < nall && n < SEARCH_MAX_HIGHLIGHTS; i++)
	{
		bool		taken = false;

		for (int j = 0; j < n && !taken; j++)
			taken = rg[j].start == all[i].start && rg[j].end == all[i].end;
		if (!taken)
			rg[n++] = all[i];
	}
	qsort(rg, n, sizeof(HlRange), hl_range_cmp);

	DocPushKey(st, "highlight");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	{
		int			out = 0;

		for (int i = 0; i < n && out < SEARCH_MAX_HIGHLIGHTS; i++)
		{
			int			s = rg[i].start,
						e = rg[i].end;

			/* (Max is a macro: an increment inside it ran twice) */
			while (i + 1 < n && rg[i + 1].start <= e)
			{
				i++;
				e = Max(e, rg[i].end);
			}
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			DocPushInt(st, "start", s);
			DocPushInt(st, "length", e - s);
			pushJsonbValue(st, WJB_END_OBJECT, NULL);
			out++;
		}
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

static void
push_item(JsonbParseState **st, const SearchRequest *r, const SearchRow *row)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(st, "id", row->id);
	DocPushText(st, "sku", DocCString(row->sku));
	DocPushText(st, "name", DocCString(row->name));
	DocPushNumeric(st, "price", row->price);
	DocPushText(st, "currency", DocCString(row->currency));
	DocPushText(st, "status", DocCString(row->status));
	DocPushKey(st, "category");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(st, "id", row->category_id);
	DocPushText(st, "name", DocCString(row->category_name));
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
	DocPushText(st, "match", DocCString(row->klass >= 0 ? class_names[row->klass] : NULL));
	push_highlight(st, r, row);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* ------------------------------------------------------------------------
 * search_products
 * ------------------------------------------------------------------------
 */

/*
 * raise_out_of_range
 *	  A search option out of its range: 22023 (the search contract: an
 *	  invalid option, like an unknown sort), with the bounds in DETAIL.
 */
static void
raise_out_of_range(const char *field, int min, int max)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be between %d and %d", field, min, max),
			 ApiErrDetail("{\"field\": \"%s\", \"reason\": \"out_of_range\", \"min\": %d, \"max\": %d}",
					   field, min, max)));
}

static Jsonb *
search_products(FunctionCallInfo fcinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	SearchRequest r;
	SearchStats st;
	SearchRow  *rows;
	int			need;
	int			have;
	List	   *keys = NIL;
	char	   *next = NULL;
	JsonbParseState *js = NULL;
	JsonbValue *res;

	parse_request(fcinfo, &r);

	/* sort */
	if (PG_ARGISNULL(5))
		r.sort = r.has_text ? SS_RELEVANCE : SS_NEWEST;
	else
	{
		char	   *s;
		int			i;

		if (toast_raw_datum_size(PG_GETARG_DATUM(5)) > VARHDRSZ + 16)
			ValidateRaiseReason("sort", "unknown_value");
		s = text_to_cstring(PG_GETARG_TEXT_PP(5));

		for (i = 0; i < SS_COUNT; i++)
			if (strcmp(s, sort_names[i]) == 0)
				break;
		if (i == SS_COUNT)
			ValidateRaiseReason("sort", "unknown_value");
		r.sort = i;
		if (r.sort == SS_RELEVANCE && !r.has_text)
			r.sort = SS_NEWEST;
	}

	/* page_size */
	r.page_size = PG_ARGISNULL(6) ? 20 : PG_GETARG_INT32(6);
	if (r.page_size < 1 || r.page_size > SEARCH_PAGE_MAX)
		raise_out_of_range("page_size", 1, SEARCH_PAGE_MAX);

	if (!PG_ARGISNULL(7))
	{
		if (toast_raw_datum_size(PG_GETARG_DATUM(7)) > VARHDRSZ + SEARCH_CURSOR_MAX)
			bad_cursor();
		read_cursor(&r, PG_GETARG_TEXT_PP(7));
	}

	need = r.page_size + 1;
	rows = palloc0(sizeof(SearchRow) * need);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	resolve_categories(&r, cxt);
	sku_mode_exact(&r);
	estimate(&r, &st);
	if (r.sort == SS_RELEVANCE)
		have = run_relevance(&r, &st, rows, need, cxt);
	else
		have = run_sorted(&r, &st, rows, need, cxt);
	SPI_finish();

	if (have > r.page_size)
	{
		have = r.page_size;
		if (keys == NIL)
			keys = SigningKeysLoad("cursor");
		next = encode_cursor(&r, keys, &rows[have - 1]);
	}
	SigningKeysWipe(keys);

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	DocPushKey(&js, "items");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < have; i++)
		push_item(&js, &r, &rows[i]);
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	DocPushText(&js, "next_cursor", next ? DocCString(next) : (DocText) {NULL, 0});
	DocPushText(&js, "sort", DocCString(sort_names[r.sort]));
	DocPushInt(&js, "page_size", r.page_size);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * The planner methods the statements' plans use besides the scans and the
 * sort (which the functions' SET clauses pin): a session, its role or its
 * database may have turned one off, and a plan built then is kept for the
 * backend's life.  Without incremental sort, for one, the name sort's walk
 * of (name, status) becomes a sort of every row past the cursor.
 */
static const char *const pinned_planner_methods[] = {
	"enable_incremental_sort", "enable_indexonlyscan", "enable_nestloop",
	"enable_hashjoin", "enable_mergejoin", "enable_material",
	"enable_memoize", "enable_hashagg"
};

/*
 * pin_planner_methods
 *	  Turn the planner methods above on in a new GUC nest level (as fmgr
 *	  applies a SET clause; an error unwinds it with the (sub)transaction)
 *	  and return the level, for AtEOXact_GUC(true, level).  Every entry
 *	  point that plans or runs the kept plans calls it first.
 */
static int
pin_planner_methods(void)
{
	int			nest = NewGUCNestLevel();

	for (size_t i = 0; i < lengthof(pinned_planner_methods); i++)
		(void) set_config_option(pinned_planner_methods[i], "on", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * run_timed
 *	  Run fn under the per-call timer (catalog.search_timeout), with the
 *	  planner methods pinned.
 */
static Jsonb *
run_timed(Jsonb *(*fn) (FunctionCallInfo), FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *result = NULL;
	int			nest = pin_planner_methods();

	search_timer_start();
	PG_TRY();
	{
		result = fn(fcinfo);
	}
	PG_CATCH();
	{
		search_timer_rethrow(cxt, name);
	}
	PG_END_TRY();
	search_timer_stop();
	search_timer_forget();
	AtEOXact_GUC(true, nest);
	return result;
}

Datum
catalog_search_products(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_SEARCH_PRODUCTS);
	PG_RETURN_JSONB_P(run_timed(search_products, fcinfo, "search_products"));
}

/*
 * catalog.search_explain: the search, plus for every statement it ran the
 * kept plan in EXPLAIN (FORMAT JSON).  Superuser only (no grant).
 */
Datum
catalog_search_explain(PG_FUNCTION_ARGS)
{
	Jsonb	   *result;
	JsonbValue *res;
	JsonbValue	jv;

	int			nest = pin_planner_methods();

	explaining = true;
	explain_state = NULL;
	explain_cxt = CurrentMemoryContext;
	PG_TRY();
	{
		pushJsonbValue(&explain_state, WJB_BEGIN_OBJECT, NULL);
		DocPushKey(&explain_state, "queries");
		pushJsonbValue(&explain_state, WJB_BEGIN_ARRAY, NULL);
		/* under the per-call timer, as every search (README, Safety) */
		result = run_timed(search_products, fcinfo, "search_explain");
		pushJsonbValue(&explain_state, WJB_END_ARRAY, NULL);
		DocPushKey(&explain_state, "result");
		jv.type = jbvBinary;
		jv.val.binary.data = &result->root;
		jv.val.binary.len = VARSIZE(result) - VARHDRSZ;
		pushJsonbValue(&explain_state, WJB_VALUE, &jv);
		res = pushJsonbValue(&explain_state, WJB_END_OBJECT, NULL);
		result = JsonbValueToJsonb(res);
	}
	PG_FINALLY();
	{
		explaining = false;
		explain_state = NULL;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	PG_RETURN_JSONB_P(result);
}

/* ------------------------------------------------------------------------
 * product_facets
 * ------------------------------------------------------------------------
 */

typedef struct FacetCategory
{
	int64		id;
	int64		parent_id;		/* 0: root */
	char	   *name;
	int64		count;
} FacetCategory;

static int
facet_id_cmp(const void *a, const void *b)
{
	const FacetCategory *x = a,
			   *y = b;

	return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

static int
facet_count_cmp(const void *a, const void *b)
{
	const FacetCategory *x = *(FacetCategory *const *) a,
			   *y = *(FacetCategory *const *) b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

static FacetCategory *
facet_find(FacetCategory *cats, int n, int64 id)
{
	FacetCategory key;

	key.id = id;
	return bsearch(&key, cats, n, sizeof(FacetCategory), facet_id_cmp);
}

static Jsonb *
product_facets(FunctionCallInfo fcinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	SearchRequest r;
	FacetCategory *cats;
	int			ncats;
	int64		status_counts[3] = {0, 0, 0};
	static const char *const statuses[3] = {"published", "draft", "archived"};
	int64		buckets[PRICE_BUCKETS] = {0};
	int64		total = 0;
	JsonbParseState *js = NULL;
	JsonbValue *res;
	FacetCategory **top;
	int			ntop = 0;
	int			v;

	parse_request(fcinfo, &r);
	r.top = PG_ARGISNULL(5) ? 10 : PG_GETARG_INT32(5);
	if (r.top < 1 || r.top > FACET_TOP_MAX)
		raise_out_of_range("top", 1, FACET_TOP_MAX);

	/* the statuses the caller may count */
	{
		Datum		sv[3];
		int			ns = 0;

		sv[ns++] = status_datum(&r, "published");
		if (ApiCallerSeesDrafts())
		{
			sv[ns++] = status_datum(&r, "draft");
			sv[ns++] = status_datum(&r, "archived");
		}
		r.values[PRM_STATUSES] = PointerGetDatum(construct_array(sv, ns, r.status_type, 4, true,
																 TYPALIGN_INT));
		r.nulls[PRM_STATUSES] = ' ';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	resolve_categories(&r, cxt);
	sku_mode_exact(&r);
	if (r.has_text)
		compute_typo(&r);

	/* the category tree */
	if (SPI_execute_plan(get_plan(&r, V_CATEGORIES), NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "category list failed");
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ncats = (int) SPI_processed;
		cats = palloc0(sizeof(FacetCategory) * Max(ncats, 1));
		for (int i = 0; i < ncats; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;
			Datum		d;

			cats[i].id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
			cats[i].parent_id = isnull ? 0 : DatumGetInt64(d);
			cats[i].name = spi_text(tup, SPI_tuptable->tupdesc, 3);
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
		qsort(cats, ncats, sizeof(FacetCategory), facet_id_cmp);
	}

	/*
	 * The variant: text or a category drive it when there is one; else the
	 * statuses (an index-only scan of every row they hold) or a price range
	 * that holds few rows (visited in the heap), the cheaper.
	 */
	if (r.has_text || r.ncategories > 0)
		v = V_FACETS(r.has_text ? 1 : 0, r.ncategories > 0 ? 1 : 0);
	else
	{
		SearchStats st;
		double		f_statuses;

		estimate(&r, &st);
		f_statuses = ApiCallerSeesDrafts() ? 1.0 : st.f_status;
		if (!r.price_filtered)
			v = V_FACETS_ALL;
		else if (cost_bitmap(st.rows, st.f_price, st.f_price) <
				 st.rows * f_statuses * COST_INDEX_ONLY_ENTRY)
			v = V_FACETS_PRICE;
		else
			v = V_FACETS(0, 0);
	}
	run_variant(&r, v, "facets", 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *status = spi_text(tup, desc, 1);
		int64		n = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));

		for (int s = 0; s < 3; s++)
			if (strcmp(status, statuses[s]) == 0)
				status_counts[s] += n;
		if (strcmp(status, r.status) == 0)
		{
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			FacetCategory *c = facet_find(cats, ncats, id);
			int64		below = 0;

			total += n;

			/* column 4 + k: rows below bucket k's upper bound */
			for (int b = 0; b < PRICE_BUCKETS; b++)
			{
				int64		upto = b + 1 < PRICE_BUCKETS ?
					DatumGetInt64(SPI_getbinval(tup, desc, 4 + b, &isnull)) : n;

				buckets[b] += upto - below;
				below = upto;
			}

			/*
			 * Roll up to the facet's level: the children of the filter
			 * category (or the roots), or the filter category itself for
			 * its own products.  The walk is bounded: the tree is at most
			 * 32 deep (category_tree_guard).
			 */
			for (int depth = 0; c != NULL && depth < 64; depth++)
			{
				if (r.category_id > 0 ? (c->id == r.category_id || c->parent_id == r.category_id)
					: c->parent_id == 0)
				{
					c->count += n;
					break;
				}
				c = c->parent_id == 0 ? NULL : facet_find(cats, ncats, c->parent_id);
			}
		}
	}
	SPI_freetuptable(SPI_tuptable);
	SPI_finish();

	top = palloc(sizeof(FacetCategory *) * Max(ncats, 1));
	for (int i = 0; i < ncats; i++)
		if (cats[i].count > 0)
			top[ntop++] = &cats[i];
	qsort(top, ntop, sizeof(FacetCategory *), facet_count_cmp);

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(&js, "total", total);
	DocPushKey(&js, "categories");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < ntop && i < r.top; i++)
	{
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		DocPushInt(&js, "id", top[i]->id);
		DocPushText(&js, "name", DocCString(top[i]->name));
		DocPushInt(&js, "count", top[i]->count);
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	DocPushKey(&js, "status");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int s = 0; s < 3; s++)
	{
		if (status_counts[s] == 0)
			continue;
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		DocPushText(&js, "status", DocCString(statuses[s]));
		DocPushInt(&js, "count", status_counts[s]);
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	DocPushKey(&js, "price");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int b = 0; b < PRICE_BUCKETS; b++)
	{
		if (buckets[b] == 0)
			continue;
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		DocPushInt(&js, "min", price_bucket_bounds[b]);
		if (price_bucket_bounds[b + 1] < 0)
			DocPushText(&js, "max", DocCString(NULL));
		else
			DocPushInt(&js, "max", price_bucket_bounds[b + 1]);
		DocPushInt(&js, "count", buckets[b]);
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

Datum
catalog_product_facets(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_PRODUCT_FACETS);
	PG_RETURN_JSONB_P(run_timed(product_facets, fcinfo, "product_facets"));
}

/* ------------------------------------------------------------------------
 * Typo dictionary
 * ------------------------------------------------------------------------
 */

static SPIPlanPtr insert_terms_plan = NULL;

/*
 * dictionary_word
 *	  Is a lexeme of weight A a dictionary word: 5 to 64 code points, no
 *	  digit, no hyphen?  The one rule, for the trigger and the refresh.
 */
static bool
dictionary_word(const char *w, int len)
{
	int			n = code_points(w, len);

	if (n < SEARCH_TERM_MIN || n > SEARCH_TERM_MAX)
		return false;
	for (int i = 0; i < len; i++)
		if ((w[i] >= '0' && w[i] <= '9') || w[i] == '-')
			return false;
	return true;
}

static bool
lexeme_has_weight_a(TSVector tsv, WordEntry *we)
{
	WordEntryPos *pos;
	int			npos;

	if (!we->haspos)
		return false;
	pos = POSDATAPTR(tsv, we);
	npos = POSDATALEN(tsv, we);
	for (int i = 0; i < npos; i++)
		if (WEP_GETWEIGHT(pos[i]) == 3)	/* 'A' */
			return true;
	return false;
}

/* The btree index on catalog.search_term (term). */
static Relation
open_term_index(Relation heap)
{
	List	   *indexes = RelationGetIndexList(heap);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);

		if (index->rd_rel->relam == BTREE_AM_OID &&
			IndexRelationGetNumberOfKeyAttributes(index) == 1 &&
			index->rd_index->indkey.values[0] == 1 &&
			RelationGetIndexExpressions(index) == NIL && RelationGetIndexPredicate(index) == NIL &&
			TupleDescAttr(RelationGetDescr(heap), 0)->atttypid == TEXTOID)
			return index;
		index_close(index, AccessShareLock);
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("catalog.search_term has no btree index on term"),
			 errhint("The catalog extension's tables were altered; reinstall the extension.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * A TermCollector gathers the distinct dictionary entries of some search
 * documents that catalog.search_term lacks, and inserts them in one
 * statement.  An entry is a word and the status of the product it came
 * from: a search corrects a word only against the words of the statuses it
 * searches, so the words of drafts never change what an anonymous search
 * finds (nor tell it that a draft with such a word exists).  With probe,
 * each new entry is looked up in the term index in C (no SQL, no planner)
 * under the latest snapshot; without (the refresh, which has just emptied
 * the table), every distinct entry is new.
 */
typedef struct TermCollector
{
	bool		probe;
	HTAB	   *seen;
	Relation	heap;
	Relation	index;			/* opened at the first probe */
	TupleTableSlot *slot;
	Snapshot	snapshot;		/* what the probe reads */
	bool		registered;		/* snapshot is ours to unregister */
	bool		use_cache;		/* the known-word cache may answer */
	AttrNumber	status_att;		/* of the dictionary (probe) */
	Datum	   *missing;		/* words (text) */
	Oid		   *missing_status; /* and their statuses (enum values) */
	int			nmissing;
	int			maxmissing;
} TermCollector;

/*
 * The key of an entry: the status's enum value in hexadecimal, ":" and the
 * word (64 code points of up to 4 bytes), NUL-terminated.
 */
#define TERM_TAG_SIZE	9
#define TERM_KEY_SIZE	(TERM_TAG_SIZE + NAMEDATALEN * 4 + 1)

/*
 * Known words: a backend cache of words the probe found in
 * catalog.search_term, inserted by a transaction other than the current
 * one (so committed: the probe's snapshot sees them) and with no deleter
 * that may still commit (term_row_settled), so that the words of an
 * ordinary product name cost a hash lookup, not an index scan, per write.
 * Only the presence of an entry (a word and a status, by its key) is
 * cached, and only a deletion can make it
 * wrong: the statement trigger search_term_changed
 * (catalog.cache_changed) invalidates the table's relcache entry on every
 * UPDATE, DELETE and TRUNCATE, and the whole cache is dropped before its
 * next use (DocTableCacheValid).  Every UPDATE or DELETE of the dictionary
 * (the refresh's, or one by hand) first takes a SHARE lock on
 * catalog.product (the statement trigger search_term_lock) and holds it
 * until its commit, and its invalidation is sent before that lock is
 * released; TRUNCATE holds the dictionary itself.  A writer's next insert
 * into catalog.product waits for the lock and takes in the invalidation
 * when it gets it, before this trigger runs.  So a word is never taken as
 * known after a deletion removed it, the same guarantee as the probe's
 * own snapshot gives.  A word the current transaction inserted
 * is not cached: the transaction may still roll back.  Entries are keyed
 * by a 64-bit hash of the word and hold the word itself, so a collision
 * is a miss, never a wrong answer; the cache is emptied when it reaches
 * KNOWN_TERMS_MAX words (a few hundred kilobytes for words of usual
 * length, at most about 4.6 MB for words of 64 four-byte characters, whose
 * copies take 512-byte allocation chunks, with the hash table).  It is
 * used at every isolation level: the probe reads the latest committed
 * state under any of them (terms_begin).
 */
#define KNOWN_TERMS_MAX	8192

typedef struct KnownTerm
{
	uint64		hash;			/* hash key, must be first */
	char	   *word;
} KnownTerm;

static DocTableCache known_terms_cache = {.table = "search_term"};
static MemoryContext known_terms_cxt = NULL;
static HTAB *known_terms = NULL;

/* An empty known-word cache. */
static void
known_terms_reset(void)
{
	HASHCTL		ctl;

	/*
	 * Forget the table first: if hash_create below runs out of memory, the
	 * next use finds no cache and builds one, never a pointer into the
	 * reset context.
	 */
	known_terms = NULL;
	if (known_terms_cxt == NULL)
		known_terms_cxt = AllocSetContextCreate(TopMemoryContext, "catalog known search terms",
												ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(known_terms_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(KnownTerm);
	ctl.hcxt = known_terms_cxt;
	known_terms = hash_create("catalog known search terms", 256, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static uint64
known_term_hash(const char *w, int len)
{
	return DatumGetUInt64(hash_any_extended((const unsigned char *) w, len, 0));
}

/* Is the word (len bytes) in the known-word cache? */
static bool
known_term_lookup(const char *w, int len)
{
	uint64		h = known_term_hash(w, len);
	KnownTerm  *e = hash_search(known_terms, &h, HASH_FIND, NULL);

	return e != NULL && strncmp(e->word, w, len) == 0 && e->word[len] == '\0';
}

/* Remember the word (len bytes) as known. */
static void
known_term_add(const char *w, int len)
{
	uint64		h = known_term_hash(w, len);
	KnownTerm  *e;
	char	   *copy;
	bool		found;

	if (hash_get_num_entries(known_terms) >= KNOWN_TERMS_MAX)
		known_terms_reset();
	/* the copy first: an entry must never exist without its word */
	copy = MemoryContextAlloc(known_terms_cxt, len + 1);
	memcpy(copy, w, len);
	copy[len] = '\0';
	e = hash_search(known_terms, &h, HASH_ENTER, &found);
	if (found)
		pfree(copy);			/* known, or a collision: the first word stays */
	else
		e->word = copy;
}

static void
terms_begin(TermCollector *tc, bool probe)
{
	HASHCTL		ctl;

	memset(tc, 0, sizeof(TermCollector));
	tc->probe = probe;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = TERM_KEY_SIZE;
	ctl.entrysize = TERM_KEY_SIZE;
	ctl.hcxt = CurrentMemoryContext;
	tc->seen = hash_create("search terms", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	if (probe)
	{
		/*
		 * Opening the table (DocTableCacheOpen: it registers the cache and
		 * takes the lock) and then DocTableCacheValid take in the
		 * invalidations that came before; a stale cache starts empty.
		 */
		tc->heap = DocTableCacheOpen(&known_terms_cache);
		if (known_terms == NULL || !DocTableCacheValid(&known_terms_cache))
		{
			known_terms_reset();
			DocTableCacheBuilt(&known_terms_cache);
		}
		tc->index = NULL;
		tc->slot = table_slot_create(tc->heap, NULL);

		/*
		 * The probe reads the latest committed state, not the statement's
		 * snapshot: a REPEATABLE READ or SERIALIZABLE transaction, or a
		 * COPY, takes its snapshot before it waits for its lock on
		 * catalog.product, so that snapshot may predate a refresh that
		 * deleted the word, which would then be missing after commit.  The
		 * statement holds that lock by now: a deletion has either
		 * committed, and its invalidation was taken in with the lock, or
		 * it waits for this transaction.  Whatever the isolation level:
		 * SERIALIZABLE once kept the transaction snapshot, on the ground
		 * that the serializable checks follow its reads, but they only
		 * follow other SERIALIZABLE transactions, and the refresh never is
		 * one (the API refuses it), so a word it deleted was lost.
		 */
		tc->snapshot = RegisterSnapshot(GetLatestSnapshot());
		tc->registered = true;
		tc->use_cache = true;
	}
}

/*
 * term_row_settled
 *	  Whether the dictionary row the probe just returned in slot may be
 *	  remembered: inserted by another transaction (so committed, since the
 *	  probe's snapshot sees it) and with no deleter that may still commit.
 *	  A row deleted by a committed transaction is not visible to the
 *	  latest snapshot; the raw xmax of a visible row is a deleter in
 *	  progress (not settled), an aborted one (settled: its xmax stays until
 *	  the row is frozen, but the visibility check marks it invalid) or a
 *	  locker.  The header is read under a share lock on the buffer.
 */
static bool
term_row_settled(TupleTableSlot *slot)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
	HeapTupleHeader th;
	TransactionId xmin;
	TransactionId xmax;
	uint16		infomask;

	if (!TTS_IS_BUFFERTUPLE(slot) || !BufferIsValid(bslot->buffer) || bslot->base.tuple == NULL)
		return false;
	LockBuffer(bslot->buffer, BUFFER_LOCK_SHARE);
	th = bslot->base.tuple->t_data;
	xmin = HeapTupleHeaderGetXmin(th);
	xmax = HeapTupleHeaderGetRawXmax(th);
	infomask = th->t_infomask;
	LockBuffer(bslot->buffer, BUFFER_LOCK_UNLOCK);

	if (TransactionIdIsCurrentTransactionId(xmin))
		return false;
	return !TransactionIdIsValid(xmax) || (infomask & HEAP_XMAX_INVALID) != 0 ||
		HEAP_XMAX_IS_LOCKED_ONLY(infomask);
}

/*
 * Is the entry (word w of len bytes, status; tkey its key of tlen bytes)
 * in catalog.search_term (visible to the probe's snapshot)?  The index is
 * on the word; a word has a row per status at most (and the few duplicates
 * of concurrent inserts), so the rows of the word are read for the status.
 */
static bool
term_known(TermCollector *tc, const char *tkey, int tlen, const char *w, int len, Oid status)
{
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found = false;

	if (tc->use_cache && known_term_lookup(tkey, tlen))
		return true;
	if (tc->index == NULL)
	{
		tc->index = open_term_index(tc->heap);
		tc->status_att = DocColumnAttnum(tc->heap, "status", status_type_oid());
	}
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(cstring_to_text_with_len(w, len)));
	key.sk_collation = DEFAULT_COLLATION_OID;
	scan = index_beginscan(tc->heap, tc->index, tc->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, tc->slot))
	{
		bool		isnull;
		Datum		st = slot_getattr(tc->slot, tc->status_att, &isnull);

		if (isnull || DatumGetObjectId(st) != status)
			continue;
		found = true;
		if (tc->use_cache && term_row_settled(tc->slot))
			known_term_add(tkey, tlen);
		break;
	}
	index_endscan(scan);
	return found;
}

/*
 * Add the dictionary entries of one search document of a product whose
 * status is the enum value status (a detoasted copy is freed).
 */
static void
terms_add(TermCollector *tc, Datum doc, Oid status)
{
	TSVector	tsv = DatumGetTSVector(doc);
	WordEntry  *we = ARRPTR(tsv);
	char		key[TERM_KEY_SIZE];

	/* the tag: the enum value in 8 hexadecimal digits and ":" */
	for (int d = 0; d < 8; d++)
		key[d] = "0123456789abcdef"[(status >> (28 - 4 * d)) & 0xF];
	key[8] = ':';
	for (int i = 0; i < tsv->size; i++, we++)
	{
		const char *w = STRPTR(tsv) + we->pos;
		bool		found;

		if (we->len >= sizeof(key) - TERM_TAG_SIZE || !lexeme_has_weight_a(tsv, we) ||
			!dictionary_word(w, we->len))
			continue;
		memset(key + TERM_TAG_SIZE, 0, sizeof(key) - TERM_TAG_SIZE);
		memcpy(key + TERM_TAG_SIZE, w, we->len);
		(void) hash_search(tc->seen, key, HASH_ENTER, &found);
		if (found ||
			(tc->probe && term_known(tc, key, TERM_TAG_SIZE + we->len, w, we->len, status)))
			continue;
		if (tc->nmissing == tc->maxmissing)
		{
			tc->maxmissing = tc->maxmissing == 0 ? 16 : tc->maxmissing * 2;
			tc->missing = tc->missing == NULL ? palloc(sizeof(Datum) * tc->maxmissing)
				: repalloc(tc->missing, sizeof(Datum) * tc->maxmissing);
			tc->missing_status = tc->missing_status == NULL ? palloc(sizeof(Oid) * tc->maxmissing)
				: repalloc(tc->missing_status, sizeof(Oid) * tc->maxmissing);
		}
		tc->missing_status[tc->nmissing] = status;
		tc->missing[tc->nmissing++] = PointerGetDatum(cstring_to_text_with_len(w, we->len));
	}
	/* a bulk statement must not keep one copy per row */
	if ((Pointer) tsv != DatumGetPointer(doc))
		pfree(tsv);
}

/* Close the collector and insert the missing words; returns how many. */
static int64
terms_end(TermCollector *tc)
{
	if (tc->probe)
	{
		ExecDropSingleTupleTableSlot(tc->slot);
		if (tc->index != NULL)
			index_close(tc->index, NoLock);
		table_close(tc->heap, NoLock);
		if (tc->registered)
			UnregisterSnapshot(tc->snapshot);
	}
	hash_destroy(tc->seen);
	if (tc->nmissing > 0)
	{
		Datum		args[2];
		Datum	   *labels = palloc(sizeof(Datum) * tc->nmissing);
		int			rc;

		/*
		 * The statuses go as their labels, cast in the statement: a kept
		 * plan with the enum's type would outlive a DROP and CREATE
		 * EXTENSION in the same session.
		 */
		for (int i = 0; i < tc->nmissing; i++)
			labels[i] = DirectFunctionCall1(textin, DirectFunctionCall1(enum_out,
																		ObjectIdGetDatum(tc->missing_status[i])));
		args[0] = PointerGetDatum(construct_array(tc->missing, tc->nmissing, TEXTOID, -1,
												  false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(labels, tc->nmissing, TEXTOID, -1,
												  false, TYPALIGN_INT));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (insert_terms_plan == NULL)
		{
			Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
			SPIPlanPtr	plan = SPI_prepare("INSERT INTO catalog.search_term (term, status)"
										   " SELECT u.term, u.status::catalog.product_status"
										   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))"
										   " AS u (term, status)", 2, argtypes);

			if (plan == NULL)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "SPI_keepplan failed");
			insert_terms_plan = plan;
		}
		rc = SPI_execute_plan(insert_terms_plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "search term insert failed: %s", SPI_result_code_string(rc));
		SPI_finish();
	}
	return tc->nmissing;
}

/*
 * catalog_search_terms_collect
 *	  AFTER INSERT / UPDATE statement trigger on catalog.product: add the
 *	  name words of the new rows that the dictionary lacks.
 *
 * The words are the weight-A lexemes of search_doc (name and SKU) that are
 * dictionary words; none is inserted in the usual case (a product named
 * with known words).  There is no unique index, so no writer ever waits for
 * another here; two transactions adding the same new word may both insert
 * it (readers use DISTINCT; refresh_search_terms compacts).
 */
Datum
catalog_search_terms_collect(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Tuplestorestate *ts;
	TupleTableSlot *rowslot;
	AttrNumber	doc_att;
	AttrNumber	st_att;
	int			readptr;
	TermCollector tc;
	bool		pushed = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) || trigdata->tg_newtable == NULL)
		elog(ERROR, "catalog.search_terms_collect must be an AFTER statement trigger with a NEW TABLE");

	/* a statement that changed no row (an UPDATE matching nothing) */
	ts = trigdata->tg_newtable;
	if (tuplestore_tuple_count(ts) == 0)
		return PointerGetDatum(NULL);
	doc_att = DocColumnAttnum(trigdata->tg_relation, "search_doc", TSVECTOROID);
	st_att = DocColumnAttnum(trigdata->tg_relation, "status", status_type_oid());

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	terms_begin(&tc, true);

	/* our own read pointer: other triggers may read the same transition table */
	readptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, readptr);
	tuplestore_rescan(ts);
	rowslot = MakeSingleTupleTableSlot(RelationGetDescr(trigdata->tg_relation), &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(ts, true, false, rowslot))
	{
		bool		isnull;
		bool		st_null;
		Datum		d = slot_getattr(rowslot, doc_att, &isnull);
		Datum		st = slot_getattr(rowslot, st_att, &st_null);

		if (!isnull && !st_null)
			terms_add(&tc, d, DatumGetObjectId(st));
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(rowslot);
	if (tc.nmissing == 0)
		(void) terms_end(&tc);
	else
	{
		/*
		 * The insert of the new words, the trigger's one SQL, runs as the
		 * function's owner (see the function's definition).
		 */
		ApiOwnerState owner;

		ApiOwnerBegin(fcinfo->flinfo->fn_oid, &owner);
		(void) terms_end(&tc);
		ApiOwnerEnd(&owner);
	}
	if (pushed)
		PopActiveSnapshot();
	return PointerGetDatum(NULL);
}

/*
 * catalog_search_term_lock
 *	  BEFORE UPDATE OR DELETE statement trigger on catalog.search_term (and
 *	  a row trigger, for a logical replication apply, which fires row
 *	  triggers only):
 *	  take the SHARE lock on catalog.product that refresh_search_terms
 *	  takes, so that every deletion of words, not only the refresh's, holds
 *	  the writers of products until it commits and its invalidation has
 *	  gone out (see the known-word cache above).  Without it a writer
 *	  could take a word for known in the moment between a deleter's commit
 *	  and its invalidation, and leave it missing.  No deadlock with the
 *	  writers: the deleter already holds RowExclusiveLock on search_term,
 *	  which conflicts with nothing a writer takes there (AccessShareLock to
 *	  probe, RowExclusiveLock to insert), so only the deleter waits.
 *	  TRUNCATE needs no trigger: its AccessExclusiveLock holds the writers'
 *	  probes until it commits.
 */
Datum
catalog_search_term_lock(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	product;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.search_term_lock() must be a BEFORE trigger")));
	product = DocOpenTable("product");
	LockRelationOid(RelationGetRelid(product), ShareLock);
	table_close(product, NoLock);
	/* the row version (a logical replication apply): the row goes on */
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);
	return PointerGetDatum(NULL);
}

/*
 * refresh_search_terms
 *	  Rebuild the dictionary from the current products.  It first takes a
 *	  SHARE lock on catalog.product: that waits for writers in flight and
 *	  holds new ones until commit, so no writer can rely on a word ("it is
 *	  known, I add nothing") that the refresh then deletes and does not see
 *	  again.  Lock order: product, then search_term, as writers take them.
 */
static Datum
refresh_search_terms(PG_FUNCTION_ARGS)
{
	Relation	product;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snap;
	AttrNumber	doc_att;
	AttrNumber	st_att;
	TermCollector tc;
	int64		n;
	int			rc;

	product = DocOpenTable("product");
	LockRelationOid(RelationGetRelid(product), ShareLock);
	doc_att = DocColumnAttnum(product, "search_doc", TSVECTOROID);
	st_att = DocColumnAttnum(product, "status", status_type_oid());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute("DELETE FROM catalog.search_term", false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "search term refresh failed: %s", SPI_result_code_string(rc));
	SPI_finish();

	/* every product committed before the lock was granted */
	snap = RegisterSnapshot(GetLatestSnapshot());
	terms_begin(&tc, false);
	slot = table_slot_create(product, NULL);
	scan = table_beginscan(product, snap, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		bool		st_null;
		Datum		d = slot_getattr(slot, doc_att, &isnull);
		Datum		st = slot_getattr(slot, st_att, &st_null);

		if (!isnull && !st_null)
			terms_add(&tc, d, DatumGetObjectId(st));
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	table_close(product, NoLock);
	n = terms_end(&tc);
	PG_RETURN_INT64(n);
}

Datum
catalog_refresh_search_terms(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_REFRESH_SEARCH_TERMS);
	return ApiRunWrite(refresh_search_terms, fcinfo);
}
