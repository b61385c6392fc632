/*-------------------------------------------------------------------------
 *
 * audit_read.c
 *	  Reading the audit log: catalog_api.product_history, category_history,
 *	  audit_by_actor and audit_by_request.
 *
 * Every function returns one page {"items": [...], "next_cursor": ...},
 * newest first (audit id descending).  Paging is keyset: the cursor is the
 * audit id of the last entry the previous page read (its last item, or a
 * seal whose row retention dropped, see PAGE_QUERY) and the next page holds
 * the rows with a lower id, so a page costs the same at any depth and rows
 * written meanwhile never shift it.  Ids are taken when a row is written,
 * not when it commits: a transaction still open while a page is read can
 * commit a row with a lower id later, which pages already read do not show
 * (sealed history, older than every open transaction, is complete).  next_cursor
 * is null when the page is the last one: each query fetches one row more
 * than the page to know.
 *
 * Index use.  The writers maintain only two indexes on catalog.audit_log
 * (the primary key (id, occurred_at) and txid); the lookup keys are copied
 * to audit_seal by the sealer and indexed there ((table_name, row_id,
 * audit_id), (actor, audit_id), (request_id, audit_id)).  So a page is the
 * sealed rows of the key, read backwards on audit_seal's index from the
 * cursor, merged with the rows the sealer has not reached yet, found the
 * way the sealer finds them (above its last_id, or written by a
 * transaction pending at its last pass); see PAGE_QUERY.  Each query is
 * fixed text with typed parameters, prepared once per backend and kept,
 * and runs with sequential and bitmap scans disabled, so the planner
 * cannot trade the ordered index scans that stop after page_size + 1 rows
 * for a scan of a whole partition, whatever the statistics of a young
 * partition say.  The unsealed rows are the last second's with the
 * background worker; with sealing switched off they are every row since
 * the last seal, and the second branch reads them all.
 *
 * Access.  The functions are SECURITY DEFINER, owned by
 * catalog_audit_owner, whose row-level security policy is the only one on
 * the audit tables; which API role may call which function is the grant.
 *
 * An item: {"audit_id", "occurred_at" (ISO 8601, UTC), "txid" (the
 * top-level transaction id, as text), "action", "actor", "role", "via",
 * "request_id", "table", "row_id", "old", "new", "seq" (position in the
 * hash chain, null while the row is not sealed yet)}.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "api.h"
#include "audit.h"
#include "audit_part.h"
#include "document.h"
#include "validate_sql.h"
#include "ratelimit.h"

PG_FUNCTION_INFO_V1(catalog_product_history);
PG_FUNCTION_INFO_V1(catalog_category_history);
PG_FUNCTION_INFO_V1(catalog_audit_by_actor);
PG_FUNCTION_INFO_V1(catalog_audit_by_request);

#define AUDIT_PAGE_DEFAULT		20
#define AUDIT_PAGE_MAX			100

/* What a page is read by. */
typedef enum AuditReadKind
{
	AR_ROW,						/* table_name, row_id */
	AR_ACTOR,					/* actor */
	AR_REQUEST,					/* request_id */
	AR_NKINDS
} AuditReadKind;

/*
 * The query of a page.  The keys of the page's rows come from three
 * branches:
 *	 sealed:	audit_seal's index on (key..., audit_id), in id order, cut
 *				to the limit;
 *	 unsealed, above the sealer's last_id: the primary keys of audit_log
 *				(id leads), rows of this key not sealed, in id order, cut
 *				to the limit;
 *	 unsealed, of a transaction pending at the sealer's last pass: the txid
 *				index, rows at or below last_id not sealed (the writes
 *				that were in flight at that pass: a handful).
 * Prune links (negative audit_id, no row of their own) are never entries.
 * A seal whose row retention dropped (a prune) still counts towards the
 * limit, so a page reads at most L seals however many were pruned, and
 * comes back from the LEFT JOIN without its row (action NULL): read_page
 * leaves it out of the items but pages on past it.  A page can so hold
 * fewer items than page_size, even none, with a next_cursor; an inner
 * join would end the history there instead (pruned ids can lie above live
 * ones: a kept older partition, ids drawn across a month change), and
 * skipping pruned seals before the limit would read every pruned seal of
 * a key on its last page.
 * The sealer's bookkeeping (audit_chain) and its seals are read under the
 * same snapshot, so every visible row is in exactly one branch.  The rows
 * themselves are then read by primary key (id, occurred_at), which prunes
 * the partitions at run time.  Pruning follows the partitions as they are
 * when the plan locks them, the rows the snapshot, which can be older: a
 * reader that queued behind audit_maintain (or, under REPEATABLE READ, any
 * reader whose snapshot predates a maintenance pass) sees a moved row's
 * old copy in the default partition, and pruning sends the lookup to the
 * month's new partition, where the copy is not visible yet.  So a key
 * whose row the join missed is looked up again by id in the default
 * partition (plan_row_by_id), the only one maintenance moves rows out
 * of, before it counts as pruned: one index probe, where a lookup through
 * the parent by id alone would probe every partition for each row that
 * retention dropped.  A miss is a rare path (retention's prunes, and
 * this), the common one keeps its pruning.  SEAL and LOG are the key conditions on
 * audit_seal (alias s) and audit_log (alias u); L the limit parameter;
 * CS and CU the cursor conditions ("" without a cursor).
 */
#define PAGE_QUERY(SEAL, SEAL_ORDER, LOG, L, CS, CU) \
	"SELECT k.id, a.occurred_at, a.txid::pg_catalog.text, a.action, a.actor," \
	" a.role_name, a.via, a.request_id, a.table_name, a.row_id," \
	" a.old_values, a.new_values, k.seq" \
	" FROM ((SELECT s.audit_id, s.occurred_at, s.seq FROM catalog.audit_seal s" \
	"        WHERE " SEAL CS " AND s.audit_id > 0 ORDER BY " SEAL_ORDER " LIMIT " L ")" \
	"       UNION ALL" \
	"       (SELECT u.id, u.occurred_at, NULL::pg_catalog.int8 FROM catalog.audit_log u" \
	"        WHERE " LOG CU \
	"          AND u.id > COALESCE((SELECT c.last_id FROM catalog.audit_chain c WHERE c.id), 0)" \
	"          AND NOT EXISTS (SELECT FROM catalog.audit_seal x WHERE x.audit_id = u.id)" \
	"        ORDER BY u.id DESC LIMIT " L ")" \
	"       UNION ALL" \
	"       (SELECT u.id, u.occurred_at, NULL::pg_catalog.int8 FROM catalog.audit_log u" \
	"        WHERE " LOG CU \
	"          AND u.txid = ANY ((SELECT c.pending FROM catalog.audit_chain c WHERE c.id)::pg_catalog.xid8[])" \
	"          AND u.id <= COALESCE((SELECT c.last_id FROM catalog.audit_chain c WHERE c.id), 0)" \
	"          AND NOT EXISTS (SELECT FROM catalog.audit_seal x WHERE x.audit_id = u.id))" \
	"      ) k (id, occurred_at, seq)" \
	" LEFT JOIN catalog.audit_log a ON a.id = k.id AND a.occurred_at = k.occurred_at" \
	" ORDER BY k.id DESC LIMIT " L

/*
 * The sealed branch must read the key's own index of audit_seal backwards,
 * whatever the planner estimates for a generic plan (which knows nothing
 * of the key: with a few frequent actors it would rather read the whole
 * audit_id index backwards and filter, which never ends for a rare one).
 * So the leading text key is compared with ">= $1 AND <= $1" (the same as
 * "= $1" under a deterministic collation, but not a constant to the
 * planner) and the order is the index's own order: no other path gives it
 * without sorting every row of the key.
 */
#define ROW_SEAL	"s.table_name >= $1 AND s.table_name <= $1 AND s.row_id = $2"
#define ROW_ORDER	"s.table_name DESC, s.row_id DESC, s.audit_id DESC"
#define ROW_LOG		"u.table_name = $1 AND u.row_id = $2"
#define ACTOR_SEAL	"s.actor >= $1 AND s.actor <= $1"
#define ACTOR_ORDER	"s.actor DESC, s.audit_id DESC"
#define ACTOR_LOG	"u.actor = $1"
#define REQ_SEAL	"s.request_id >= $1 AND s.request_id <= $1"
#define REQ_ORDER	"s.request_id DESC, s.audit_id DESC"
#define REQ_LOG		"u.request_id = $1"

/*
 * The queries, [kind][cursor given].  Parameters: the key ($1, or $1 and
 * $2 for a row), then the row limit, then the cursor.
 */
static ApiPlan read_plans[AR_NKINDS][2] = {
	{
		{PAGE_QUERY(ROW_SEAL, ROW_ORDER, ROW_LOG, "$3", "", ""),
		3, {TEXTOID, INT8OID, INT8OID}, NULL},
		{PAGE_QUERY(ROW_SEAL, ROW_ORDER, ROW_LOG, "$3", " AND s.audit_id < $4", " AND u.id < $4"),
		4, {TEXTOID, INT8OID, INT8OID, INT8OID}, NULL},
	},
	{
		{PAGE_QUERY(ACTOR_SEAL, ACTOR_ORDER, ACTOR_LOG, "$2", "", ""),
		2, {TEXTOID, INT8OID}, NULL},
		{PAGE_QUERY(ACTOR_SEAL, ACTOR_ORDER, ACTOR_LOG, "$2", " AND s.audit_id < $3", " AND u.id < $3"),
		3, {TEXTOID, INT8OID, INT8OID}, NULL},
	},
	{
		{PAGE_QUERY(REQ_SEAL, REQ_ORDER, REQ_LOG, "$2", "", ""),
		2, {TEXTOID, INT8OID}, NULL},
		{PAGE_QUERY(REQ_SEAL, REQ_ORDER, REQ_LOG, "$2", " AND s.audit_id < $3", " AND u.id < $3"),
		3, {TEXTOID, INT8OID, INT8OID}, NULL},
	},
};

/*
 * A row of the page the join missed, by id in the default partition (see
 * PAGE_QUERY): the same columns as a page row, the seal's seq passed
 * through.
 */
static ApiPlan plan_row_by_id = {
	"SELECT a.id, a.occurred_at, a.txid::pg_catalog.text, a.action, a.actor,"
	" a.role_name, a.via, a.request_id, a.table_name, a.row_id,"
	" a.old_values, a.new_values, $2"
	" FROM catalog.audit_log_default a WHERE a.id = $1",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * push_iso_time
 *	  Push key: a timestamptz in ISO 8601, in UTC (as audit row images
 *	  show them).
 */
static void
push_iso_time(JsonbParseState **st, const char *key, Datum ts)
{
	const int	utc = 0;

	DocPushText(st, key, DocCString(JsonEncodeDateTime(NULL, ts, TIMESTAMPTZOID, &utc)));
}

/*
 * push_jsonb_column
 *	  Push key: the jsonb value, or null.  The value is detoasted into the
 *	  current context.
 */
static void
push_jsonb_column(JsonbParseState **st, const char *key, Datum d, bool isnull)
{
	JsonbValue	v;

	if (isnull)
		v.type = jbvNull;
	else
	{
		Jsonb	   *jb = DatumGetJsonbP(d);

		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	DocPushValue(st, key, &v);
}

/*
 * push_item
 *	  Push tup, a row of PAGE_QUERY's or plan_row_by_id's columns, as an
 *	  item.
 */
static void
push_item(JsonbParseState **st, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d;

#define TEXT_COL(key, col) \
	DocPushText(st, key, DocCString(TextDatumGetCString(SPI_getbinval(tup, desc, col, &isnull))))

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(st, "audit_id", DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));
	push_iso_time(st, "occurred_at", SPI_getbinval(tup, desc, 2, &isnull));
	TEXT_COL("txid", 3);
	TEXT_COL("action", 4);
	TEXT_COL("actor", 5);
	TEXT_COL("role", 6);
	TEXT_COL("via", 7);
	TEXT_COL("request_id", 8);
	TEXT_COL("table", 9);
	DocPushInt(st, "row_id", DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull)));
	d = SPI_getbinval(tup, desc, 11, &isnull);
	push_jsonb_column(st, "old", d, isnull);
	d = SPI_getbinval(tup, desc, 12, &isnull);
	push_jsonb_column(st, "new", d, isnull);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	if (isnull)
		DocPushText(st, "seq", DocCString(NULL));
	else
		DocPushInt(st, "seq", DatumGetInt64(d));
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
#undef TEXT_COL
}

/*
 * read_page
 *	  One page of kind for key (nkeys values), after cursor when given.
 *	  page_size and cursor are the raw arguments 1 and 2 of fcinfo.
 */
static Jsonb *
read_page(FunctionCallInfo fcinfo, AuditReadKind kind, Datum *key, int nkeys)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			page_size = PG_ARGISNULL(1) ? AUDIT_PAGE_DEFAULT : PG_GETARG_INT32(1);
	bool		has_cursor = !PG_ARGISNULL(2);
	Datum		values[4];
	int			nest;
	int			n;
	int			have;
	SPITupleTable *page;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	Jsonb	   *result;

	if (page_size < 1 || page_size > AUDIT_PAGE_MAX)
		AuditRaiseOutOfRange("page_size", 1, AUDIT_PAGE_MAX);
	if (has_cursor && PG_GETARG_INT64(2) < 1)
		AuditRaiseOutOfRange("cursor", 1, PG_INT64_MAX);

	for (int i = 0; i < nkeys; i++)
		values[i] = key[i];
	values[nkeys] = Int64GetDatum((int64) page_size + 1);
	if (has_cursor)
		values[nkeys + 1] = PG_GETARG_DATUM(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* ordered index scans only (see the file header); undone on error too */
	nest = NewGUCNestLevel();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	n = ApiExecute(&read_plans[kind][has_cursor ? 1 : 0], values, NULL, true, 0);
	/* kept until SPI_finish: the lookups below do not free it */
	page = SPI_tuptable;

	/* the document is built in the caller's context, before SPI_finish */
	MemoryContextSwitchTo(cxt);
	have = Min(n, page_size);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushKey(&st, "items");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < have; i++)
	{
		HeapTuple	tup = page->vals[i];
		bool		missed;
		bool		isnull;
		Datum		args[2];
		char		nulls[2] = {' ', ' '};

		(void) SPI_getbinval(tup, page->tupdesc, 4, &missed);
		if (!missed)
		{
			push_item(&st, tup, page->tupdesc);
			continue;
		}
		/*
		 * Not found in the partition its time prunes to: moved by
		 * maintenance after this snapshot, or dropped by retention (no
		 * item, but paged past).
		 */
		args[0] = SPI_getbinval(tup, page->tupdesc, 1, &isnull);
		args[1] = SPI_getbinval(tup, page->tupdesc, 13, &isnull);
		if (isnull)
			nulls[1] = 'n';
		if (ApiExecute(&plan_row_by_id, args, nulls, true, 1) == 1)
			push_item(&st, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	}
	AtEOXact_GUC(true, nest);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	if (n > page_size)
	{
		bool		isnull;

		DocPushInt(&st, "next_cursor",
				   DatumGetInt64(SPI_getbinval(page->vals[have - 1], page->tupdesc, 1, &isnull)));
	}
	else
		DocPushText(&st, "next_cursor", DocCString(NULL));
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);
	SPI_finish();
	return result;
}

/*
 * row_history
 *	  product_history and category_history: the rows of one table row.
 */
static Jsonb *
row_history(FunctionCallInfo fcinfo, const char *table)
{
	Datum		key[2];

	ApiRequireArg(fcinfo, 0, "id");
	key[0] = CStringGetTextDatum(table);
	key[1] = PG_GETARG_DATUM(0);
	return read_page(fcinfo, AR_ROW, key, 2);
}

/*
 * catalog_api.product_history(id, page_size, cursor) -> jsonb
 */
Datum
catalog_product_history(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_PRODUCT_HISTORY);
	PG_RETURN_JSONB_P(row_history(fcinfo, "product"));
}

/*
 * catalog_api.category_history(id, page_size, cursor) -> jsonb
 */
Datum
catalog_category_history(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_CATEGORY_HISTORY);
	PG_RETURN_JSONB_P(row_history(fcinfo, "category"));
}

/*
 * catalog_api.audit_by_actor(actor, page_size, cursor) -> jsonb
 *	  The actor is validated and canonicalised as a plain-text field (a
 *	  stored actor is always canonical: ApiActor refuses any other) and
 *	  masked as the trigger stores it (AuditMaskActor), so an actor stored
 *	  masked is found by its clear value.
 */
Datum
catalog_audit_by_actor(PG_FUNCTION_ARGS)
{
	char	   *actor;
	Datum		key[1];

	RateLimitEnter(RLF_AUDIT_BY_ACTOR);
	ApiRequireArg(fcinfo, 0, "actor");
	actor = ValidateTextArg("actor", CATALOG_GETARG_RAW_TEXT(0), VT_PLAIN, 1,
							CATALOG_ACTOR_MAX);
	actor = AuditMaskActor(actor);
	/* under redact every masked actor is stored alike: no lookup can tell them apart */
	if (strcmp(actor, "[redacted]") == 0)
		ValidateRaiseReason("actor", "masked_by_redact");
	key[0] = CStringGetTextDatum(actor);
	PG_RETURN_JSONB_P(read_page(fcinfo, AR_ACTOR, key, 1));
}

/*
 * catalog_api.audit_by_request(request_id, page_size, cursor) -> jsonb
 *	  The argument is sanitized and masked as the trigger stores a
 *	  correlation id (ApiSanitizeRequestId, AuditMaskRequestId), so the raw
 *	  header value finds its rows.
 */
Datum
catalog_audit_by_request(PG_FUNCTION_ARGS)
{
	char	   *raw;
	char	   *id;
	Datum		key[1];

	RateLimitEnter(RLF_AUDIT_BY_REQUEST);
	ApiRequireArg(fcinfo, 0, "request_id");
	raw = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (raw[0] == '\0')
		ValidateRaiseReason("request_id", "required");
	id = ApiSanitizeRequestId(raw);
	/*
	 * Nothing usable: the trigger stores no such id (it generates one), so
	 * no row can match.  The empty string is never stored ("_" is, from a
	 * header "_", so it must not stand in for garbage).
	 */
	if (id == NULL)
		id = pstrdup("");
	else
		id = AuditMaskRequestId(id, raw);
	/* under redact every masked id is stored alike: no lookup can tell them apart */
	if (strcmp(id, "[redacted]") == 0)
		ValidateRaiseReason("request_id", "masked_by_redact");
	key[0] = CStringGetTextDatum(id);
	PG_RETURN_JSONB_P(read_page(fcinfo, AR_REQUEST, key, 1));
}
