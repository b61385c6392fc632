/*-------------------------------------------------------------------------
 *
 * document.c
 *	  Product documents built in C, and direct primary-key reads of the
 *	  catalog tables for the hot read path.
 *
 * get_product is the most frequent call of the API.  Going through SPI
 * and jsonb_build_object() costs several times the work of the lookup
 * itself (executor start-up, plan-cache revalidation, per-call type
 * categorisation of every argument), so this file reads the two rows with
 * plain index scans on the primary keys, as core reads its own catalogs,
 * and builds the document with pushJsonbValue.
 *
 * Access control: the relations are opened without ACL or row-level
 * security checks, so the caller must decide visibility itself
 * (ProductFetch's see_drafts).  The SQL functions that use this file are
 * granted per role like every API function.
 *
 * Nothing is cached across calls: each call looks the tables up by name
 * under their lock (DocOpenTable), takes the primary key from the
 * relcache and checks every column's number and type, which costs a few
 * syscache probes and stays right through ALTER, REINDEX CONCURRENTLY and
 * DROP/CREATE EXTENSION in other sessions.
 *
 * Snapshots: the scans use the active snapshot (the calling query's, for a
 * STABLE function), so they see what an SQL SELECT in the same place
 * would see, on a primary or a hot standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "storage/lmgr.h"
#include "storage/sinval.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "document.h"

/* Product columns read by ProductFetch, in this order. */
enum
{
	PC_ID,
	PC_SKU,
	PC_NAME,
	PC_DESCRIPTION,
	PC_STATUS,
	PC_CATEGORY_ID,
	PC_PRICE,
	PC_CURRENCY,
	PC_ATTRIBUTES,
	PC_VERSION,
	PC_CREATED_AT,
	PC_UPDATED_AT,
	PC_NCOLS
};

static const char *const product_columns[PC_NCOLS] = {
	"id", "sku", "name", "description", "status", "category_id", "price",
	"currency", "attributes", "version", "created_at", "updated_at"
};

/* Expected types of the columns, checked on every use (a type change by
 * ALTER TABLE must be an error, not a misread datum). */
static const Oid product_types[PC_NCOLS] = {
	INT8OID, TEXTOID, TEXTOID, TEXTOID, InvalidOid /* enum */ , INT8OID,
	NUMERICOID, TEXTOID, JSONBOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID
};

/*
 * attnum_of
 *	  Attribute number of a column of the (locked) relation, checked to be
 *	  of the expected type (InvalidOid: any enum); an error naming the
 *	  broken install otherwise.
 */
static AttrNumber
attnum_of(Relation rel, const char *column, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), column) != 0)
			continue;
		if (OidIsValid(type) ? att->atttypid != type :
			get_typtype(att->atttypid) != TYPTYPE_ENUM)
			break;
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("column \"%s\" of catalog.%s is missing or has another type",
					column, RelationGetRelationName(rel)),
			 errhint("The catalog extension's tables were altered; reinstall the extension.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * DocOpenTable
 *	  Open catalog.<name> with AccessShareLock.  The name is looked up
 *	  again after the lock is taken until no invalidation arrived in
 *	  between (the loop of RangeVarGetRelidExtended, without its schema
 *	  ACL check: API roles have no privilege on schema catalog), so a
 *	  concurrent DROP, REINDEX CONCURRENTLY or DROP EXTENSION can never
 *	  leave a stale OID in use.  Nothing is cached across calls.
 */
Relation
DocOpenTable(const char *name)
{
	Oid			nsp = get_namespace_oid("catalog", false);
	Oid			relid = InvalidOid;
	Oid			oldrelid = InvalidOid;
	bool		retry = false;

	for (;;)
	{
		uint64		inval_count = SharedInvalidMessageCounter;

		relid = get_relname_relid(name, nsp);
		if (retry && relid == oldrelid)
			break;
		if (OidIsValid(oldrelid))
			UnlockRelationOid(oldrelid, AccessShareLock);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("relation catalog.%s does not exist", name),
					 errhint("Run CREATE EXTENSION catalog in this database.")));
		LockRelationOid(relid, AccessShareLock);
		if (inval_count == SharedInvalidMessageCounter)
			break;
		retry = true;
		oldrelid = relid;
		/* the namespace may have been dropped and recreated too */
		nsp = get_namespace_oid("catalog", false);
	}
	return table_open(relid, NoLock);
}

/*
 * Table caches: one relcache callback for all of them (core has ten slots
 * for every loaded library together).  A cache is stale after an
 * invalidation of its table, or of every relation (a reset).  The
 * generation lets a build that read the table while an invalidation came
 * in read it again.
 */
static DocTableCache *table_caches = NULL;
static bool table_callback_registered = false;

static void
table_caches_invalidate(Datum arg, Oid relid)
{
	for (DocTableCache *c = table_caches; c != NULL; c = c->next)
		if (!OidIsValid(relid) || relid == c->relid)
		{
			c->valid = false;
			c->generation++;
		}
}

/*
 * DocTableCacheValid
 *	  Whether the cache can be used.  Takes in the invalidations that
 *	  arrived first: a transaction holding its locks takes in none by
 *	  itself, and a change committed by another session must apply to this
 *	  session's next call, not its next transaction.
 */
bool
DocTableCacheValid(DocTableCache *cache)
{
	AcceptInvalidationMessages();
	return cache->valid;
}

/*
 * DocTableCacheOpen
 *	  Open the cache's table for a build (DocOpenTable), listening to its
 *	  invalidations from here on.  The caller reads it (again while the
 *	  generation moves), closes it and calls DocTableCacheBuilt.
 */
Relation
DocTableCacheOpen(DocTableCache *cache)
{
	Relation	rel;

	if (!table_callback_registered)
	{
		CacheRegisterRelcacheCallback(table_caches_invalidate, (Datum) 0);
		table_callback_registered = true;
	}
	if (!cache->registered)
	{
		cache->next = table_caches;
		table_caches = cache;
		cache->registered = true;
	}
	rel = DocOpenTable(cache->table);
	cache->relid = RelationGetRelid(rel);
	return rel;
}

/* DocTableCacheBuilt: the build is complete. */
void
DocTableCacheBuilt(DocTableCache *cache)
{
	cache->valid = true;
}

/*
 * open_primary_key
 *	  The primary key index of a locked table, opened with AccessShareLock,
 *	  checked to be the index on the bigint column "id" that the lookups
 *	  below assume (like the columns, it could have been altered).
 */
static Relation
open_primary_key(Relation heap)
{
	Oid			indexid = RelationGetPrimaryKeyIndex(heap);
	Relation	index;

	if (!OidIsValid(indexid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("catalog.%s has no primary key", RelationGetRelationName(heap))));
	index = index_open(indexid, AccessShareLock);
	if (IndexRelationGetNumberOfKeyAttributes(index) != 1 ||
		index->rd_index->indkey.values[0] != attnum_of(heap, "id", INT8OID))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the primary key of catalog.%s is not (id)", RelationGetRelationName(heap)),
				 errhint("The catalog extension's tables were altered; reinstall the extension.")));
	return index;
}

/*
 * fetch_by_pkey
 *	  Look up the row with primary key id through index; true and the row
 *	  in slot (all attributes deformed) when a visible row exists.
 */
static bool
fetch_by_pkey(Relation heap, Relation index, int64 id, TupleTableSlot *slot)
{
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	scan = index_beginscan(heap, index, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		slot_getallattrs(slot);
	index_endscan(scan);
	return found;
}

/*
 * text_of
 *	  A text datum as a DocText (detoasted into the current context).
 */
static DocText
text_of(Datum d, bool isnull)
{
	DocText		t = {NULL, 0};

	if (!isnull)
	{
		text	   *v = DatumGetTextPP(d);

		t.p = VARDATA_ANY(v);
		t.len = VARSIZE_ANY_EXHDR(v);
	}
	return t;
}

/*
 * text_copy
 *	  A non-null text datum of a buffer-pinned tuple, copied (and
 *	  detoasted) into the current memory context.
 */
static DocText
text_copy(Datum d)
{
	text	   *v = DatumGetTextPCopy(d);
	DocText		t;

	t.p = VARDATA(v);
	t.len = VARSIZE(v) - VARHDRSZ;
	return t;
}

/*
 * enum_label
 *	  The label of a product_status value.
 */
static DocText
enum_label(Oid value)
{
	HeapTuple	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	DocText		t;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for enum value %u", value);
	t = DocCString(pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel)));
	ReleaseSysCache(tup);
	return t;
}

/*
 * DocCString
 *	  A NUL-terminated string (or NULL) as a DocText.
 */
DocText
DocCString(const char *s)
{
	DocText		t;

	t.p = s;
	t.len = (s == NULL) ? 0 : (int) strlen(s);
	return t;
}

/*
 * CategoryFetchName
 *	  The name of category id, copied into the current memory context;
 *	  false when there is no visible category with that id.
 */
bool
CategoryFetchName(int64 id, DocText *name)
{
	Relation	heap = DocOpenTable("category");
	Relation	index = open_primary_key(heap);
	AttrNumber	name_att = attnum_of(heap, "name", TEXTOID);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	bool		found = fetch_by_pkey(heap, index, id, slot);

	if (found)
	{
		DocText		t = text_of(slot->tts_values[name_att - 1],
								slot->tts_isnull[name_att - 1]);

		name->p = pnstrdup(t.p, t.len);
		name->len = t.len;
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return found;
}

/*
 * ProductFetch
 *	  Read product id and its category's name into row (values copied into
 *	  the current memory context).  Returns false when the product does not
 *	  exist or, unless see_drafts, is not published.
 */
bool
ProductFetch(int64 id, bool see_drafts, ProductRow *row)
{
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
	AttrNumber	a[PC_NCOLS];
	bool		found;
	bool		pushed = false;

	/* a caller outside a query (C, background worker) may have none */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	heap = DocOpenTable("product");
	index = open_primary_key(heap);
	for (int i = 0; i < PC_NCOLS; i++)
		a[i] = attnum_of(heap, product_columns[i], product_types[i]);
	slot = table_slot_create(heap, NULL);
	found = fetch_by_pkey(heap, index, id, slot);

	if (found)
	{
		Datum	   *v = slot->tts_values;
		bool	   *n = slot->tts_isnull;

#define COL(c) (a[c] - 1)
		row->status = enum_label(DatumGetObjectId(v[COL(PC_STATUS)]));
		/*
		 * The rule of the row-level security policy product_read_published
		 * (catalog--1.0.sql), applied here because these reads bypass RLS;
		 * search.c applies it through its status check.  Change them together.
		 */
		if (!see_drafts && strcmp(row->status.p, "published") != 0)
			found = false;
		else
		{
			/* detoasting copies; plain by-reference values are copied here */
			row->id = DatumGetInt64(v[COL(PC_ID)]);
			row->sku = text_copy(v[COL(PC_SKU)]);
			row->name = text_copy(v[COL(PC_NAME)]);
			row->description = n[COL(PC_DESCRIPTION)] ? DocCString(NULL) :
				text_copy(v[COL(PC_DESCRIPTION)]);
			row->category_id = DatumGetInt64(v[COL(PC_CATEGORY_ID)]);
			row->price = DatumGetNumericCopy(v[COL(PC_PRICE)]);
			row->currency = text_copy(v[COL(PC_CURRENCY)]);
			row->attributes = DatumGetJsonbPCopy(v[COL(PC_ATTRIBUTES)]);
			row->version = DatumGetInt32(v[COL(PC_VERSION)]);
			row->created_at = DatumGetTimestampTz(v[COL(PC_CREATED_AT)]);
			row->updated_at = DatumGetTimestampTz(v[COL(PC_UPDATED_AT)]);
		}
#undef COL
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(heap, NoLock);

	if (found && !CategoryFetchName(row->category_id, &row->category_name))
		elog(ERROR, "category " INT64_FORMAT " of product " INT64_FORMAT " is missing",
			 row->category_id, id);
	if (pushed)
		PopActiveSnapshot();
	return found;
}

/*
 * DocPushKey
 *	  Push an object key (a string that outlives the parse state).
 */
void
DocPushKey(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

/*
 * DocPushElem
 *	  Push a string element into the open array (a string that outlives
 *	  the parse state).
 */
void
DocPushElem(JsonbParseState **st, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, WJB_ELEM, &v);
}

/*
 * DocPushValue
 *	  Push key: value (the pair every DocPush* writes).
 */
void
DocPushValue(JsonbParseState **st, const char *key, JsonbValue *v)
{
	DocPushKey(st, key);
	pushJsonbValue(st, WJB_VALUE, v);
}

/*
 * DocPushText
 *	  Push key: string, or key: null when t.p is NULL.
 */
void
DocPushText(JsonbParseState **st, const char *key, DocText t)
{
	JsonbValue	v;

	if (t.p == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) t.p;
		v.val.string.len = t.len;
	}
	DocPushValue(st, key, &v);
}

/*
 * DocPushNumeric
 *	  Push key: number.
 */
void
DocPushNumeric(JsonbParseState **st, const char *key, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	DocPushValue(st, key, &v);
}

/*
 * DocPushInt
 *	  Push key: integer.
 */
void
DocPushInt(JsonbParseState **st, const char *key, int64 n)
{
	DocPushNumeric(st, key, int64_to_numeric(n));
}

/*
 * DocPushBool
 *	  Push key: boolean.
 */
void
DocPushBool(JsonbParseState **st, const char *key, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	DocPushValue(st, key, &v);
}

/*
 * DocPushTimestamptz
 *	  A timestamptz as to_jsonb writes it: ISO 8601 in the session's time
 *	  zone, whatever DateStyle is.
 */
void
DocPushTimestamptz(JsonbParseState **st, const char *key, TimestampTz ts)
{
	DocPushText(st, key, DocCString(JsonEncodeDateTime(NULL, TimestampTzGetDatum(ts),
													 TIMESTAMPTZOID, NULL)));
}

/*
 * ProductDocument
 *	  The product document of DESIGN.md, identical to what
 *	  jsonb_build_object over the same columns gives (timestamps in the
 *	  to_jsonb format).
 */
Jsonb *
ProductDocument(const ProductRow *row)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res;

	/*
	 * Keys are pushed in jsonb's own order (shorter first, then bytewise),
	 * so the sort that closes each object finds them already sorted.
	 */
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(&st, "id", row->id);
	DocPushText(&st, "sku", row->sku);
	DocPushText(&st, "name", row->name);
	DocPushNumeric(&st, "price", row->price);
	DocPushText(&st, "status", row->status);
	DocPushInt(&st, "version", row->version);
	DocPushKey(&st, "category");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(&st, "id", row->category_id);
	DocPushText(&st, "name", row->category_name);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	DocPushText(&st, "currency", row->currency);
	v.type = jbvBinary;
	v.val.binary.data = &row->attributes->root;
	v.val.binary.len = VARSIZE(row->attributes) - VARHDRSZ;
	DocPushValue(&st, "attributes", &v);
	DocPushTimestamptz(&st, "created_at", row->created_at);
	DocPushTimestamptz(&st, "updated_at", row->updated_at);
	DocPushText(&st, "description", row->description);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * DocColumnAttnum
 *	  The attribute number of column name, of type typid, in rel (a table of
 *	  schema catalog); 55000 when the table does not have it (an altered
 *	  installation).
 */
AttrNumber
DocColumnAttnum(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && att->atttypid == typid &&
			strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("catalog.%s does not have the expected columns", RelationGetRelationName(rel)),
			 errhint("The catalog extension's tables were altered; reinstall the extension.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

PG_FUNCTION_INFO_V1(catalog_cache_changed);
/*
 * catalog.cache_changed()
 *	  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT on a
 *	  table that backends cache (catalog.rate_limit, catalog.audit_mask,
 *	  catalog.search_term), and FOR EACH ROW (REPLICA: a logical
 *	  replication apply fires row triggers only):
 *	  invalidate its relcache entry, which each cache's relcache callback
 *	  listens to (this backend at its next command, the others, and hot
 *	  standbys, when the transaction commits).
 */
Datum
catalog_cache_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.cache_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
