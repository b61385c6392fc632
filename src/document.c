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
 * Relation and attribute numbers are cached per backend and forgotten on
 * any relcache invalidation of the cached relations (ALTER, DROP, DROP
 * EXTENSION), through a relcache callback registered once.
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
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
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

typedef struct CatalogRels
{
	bool		valid;
	Oid			product;
	Oid			product_pkey;
	Oid			category;
	Oid			category_pkey;
	AttrNumber	product_att[PC_NCOLS];
	AttrNumber	category_name_att;
} CatalogRels;

static CatalogRels rels;
static bool rels_callback_registered = false;

/*
 * rels_invalidate
 *	  Relcache callback: forget the cache when one of its relations (or
 *	  everything, relid InvalidOid) is invalidated.
 */
static void
rels_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == rels.product || relid == rels.product_pkey ||
		relid == rels.category || relid == rels.category_pkey)
		rels.valid = false;
}

/*
 * attnum_of
 *	  Attribute number of a column, or an error naming the broken install.
 */
static AttrNumber
attnum_of(Relation rel, const char *column)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), column) == 0)
			return att->attnum;
	}
	elog(ERROR, "column \"%s\" of \"%s\" is missing",
		 column, RelationGetRelationName(rel));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * relid_of
 *	  OID of catalog.<name>; an error when the extension is not installed.
 */
static Oid
relid_of(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation catalog.%s does not exist", name),
				 errhint("Run CREATE EXTENSION catalog in this database.")));
	return relid;
}

/*
 * catalog_rels
 *	  The cached relation OIDs and attribute numbers, (re)loaded when
 *	  needed.  Takes AccessShareLock on the tables while resolving columns;
 *	  the callers lock them anyway.
 */
static const CatalogRels *
catalog_rels(void)
{
	Oid			nsp;
	Relation	rel;
	CatalogRels fresh;

	if (!rels_callback_registered)
	{
		CacheRegisterRelcacheCallback(rels_invalidate, (Datum) 0);
		rels_callback_registered = true;
	}
	if (rels.valid)
		return &rels;

	memset(&fresh, 0, sizeof(fresh));
	nsp = get_namespace_oid("catalog", false);
	fresh.product = relid_of(nsp, "product");
	fresh.product_pkey = relid_of(nsp, "product_pkey");
	fresh.category = relid_of(nsp, "category");
	fresh.category_pkey = relid_of(nsp, "category_pkey");

	rel = table_open(fresh.product, AccessShareLock);
	for (int i = 0; i < PC_NCOLS; i++)
		fresh.product_att[i] = attnum_of(rel, product_columns[i]);
	table_close(rel, NoLock);
	rel = table_open(fresh.category, AccessShareLock);
	fresh.category_name_att = attnum_of(rel, "name");
	table_close(rel, NoLock);

	/*
	 * Publish only now: an invalidation processed while locking above
	 * found rels.valid false and changed nothing, and a later one will
	 * clear this copy.
	 */
	fresh.valid = true;
	rels = fresh;
	return &rels;
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
	Snapshot	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() :
		GetTransactionSnapshot();

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	scan = index_beginscan(heap, index, snapshot, 1, 0);
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
	const CatalogRels *r = catalog_rels();
	Relation	heap = table_open(r->category, AccessShareLock);
	Relation	index = index_open(r->category_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	bool		found = fetch_by_pkey(heap, index, id, slot);

	if (found)
	{
		DocText		t = text_of(slot->tts_values[r->category_name_att - 1],
								slot->tts_isnull[r->category_name_att - 1]);

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
	const CatalogRels *r = catalog_rels();
	Relation	heap = table_open(r->product, AccessShareLock);
	Relation	index = index_open(r->product_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	bool		found = fetch_by_pkey(heap, index, id, slot);

	if (found)
	{
		Datum	   *v = slot->tts_values;
		bool	   *n = slot->tts_isnull;
		const AttrNumber *a = r->product_att;

#define COL(c) (a[c] - 1)
		row->status = enum_label(DatumGetObjectId(v[COL(PC_STATUS)]));
		if (!see_drafts && strcmp(row->status.p, "published") != 0)
			found = false;
		else
		{
			/* detoasting copies; plain by-reference values are copied here */
			row->id = DatumGetInt64(v[COL(PC_ID)]);
			row->sku = text_of(datumCopy(v[COL(PC_SKU)], false, -1), false);
			row->name = text_of(datumCopy(v[COL(PC_NAME)], false, -1), false);
			row->description = n[COL(PC_DESCRIPTION)] ? DocCString(NULL) :
				text_of(datumCopy(v[COL(PC_DESCRIPTION)], false, -1), false);
			row->category_id = DatumGetInt64(v[COL(PC_CATEGORY_ID)]);
			row->price = DatumGetNumericCopy(v[COL(PC_PRICE)]);
			row->currency = text_of(datumCopy(v[COL(PC_CURRENCY)], false, -1), false);
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
	return found;
}

/*
 * push_key
 *	  Push an object key (a static string).
 */
static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
push_text(JsonbParseState **st, const char *key, DocText t)
{
	JsonbValue	v;

	push_key(st, key);
	if (t.p == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) t.p;
		v.val.string.len = t.len;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
push_int(JsonbParseState **st, const char *key, int64 n)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
push_timestamptz(JsonbParseState **st, const char *key, TimestampTz ts)
{
	push_text(st, key, DocCString(JsonEncodeDateTime(NULL, TimestampTzGetDatum(ts),
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
	push_int(&st, "id", row->id);
	push_text(&st, "sku", row->sku);
	push_text(&st, "name", row->name);
	push_key(&st, "price");
	v.type = jbvNumeric;
	v.val.numeric = row->price;
	pushJsonbValue(&st, WJB_VALUE, &v);
	push_text(&st, "status", row->status);
	push_int(&st, "version", row->version);
	push_key(&st, "category");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_int(&st, "id", row->category_id);
	push_text(&st, "name", row->category_name);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	push_text(&st, "currency", row->currency);
	push_key(&st, "attributes");
	v.type = jbvBinary;
	v.val.binary.data = &row->attributes->root;
	v.val.binary.len = VARSIZE(row->attributes) - VARHDRSZ;
	pushJsonbValue(&st, WJB_VALUE, &v);
	push_timestamptz(&st, "created_at", row->created_at);
	push_timestamptz(&st, "updated_at", row->updated_at);
	push_text(&st, "description", row->description);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
