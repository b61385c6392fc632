/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trigger: one masked, hashed catalog.audit_log row per
 *	  inserted, updated or deleted row of an audited table, written in the
 *	  writer's own transaction.  Also the guard that keeps audit rows
 *	  append-only, and the canonical hash of an audit row.
 *
 * Design notes.
 *	- AFTER ROW, so a row is recorded only once the write has passed every
 *	  constraint; in the same transaction, so a rollback (or a rolled-back
 *	  savepoint) removes the record with the write, and a committed write
 *	  always has its record.  Nothing is logged outside tables: a crash
 *	  cannot lose a record of a committed write (unlike log-based audit).
 *	- Who: the JWT subject, else catalog.actor, else session_user
 *	  (ApiActor); the role in effect is the outer user (PostgREST's SET
 *	  ROLE role), never the SECURITY DEFINER owner.  How: "<method> <path>"
 *	  under PostgREST, else "sql".  The correlation id (ApiRequestId).
 *	  Request headers are never stored, so the authorization header cannot
 *	  reach a table.
 *	- What: the row image for INSERT and DELETE; for UPDATE only the
 *	  columns whose stored image changed.  Bookkeeping columns (version,
 *	  updated_at, updated_by) do not make a change on their own: an UPDATE
 *	  that changes nothing else writes nothing.  Generated columns are left
 *	  out (product.search_doc repeats other columns, and would leak masked
 *	  values).  Every value is masked (audit_mask.c) before the row exists.
 *	- The insert goes straight into the month's partition, the way
 *	  ExecSimpleRelationInsert (the executor's insert without a plan that
 *	  logical replication's apply worker uses) does it: constraints, heap,
 *	  indexes; no planner, no partition routing set up per row.  The row's
 *	  time is checked against the partition's attached bounds, read from
 *	  the catalog once per month, instead of the partition constraint
 *	  expression the executor would compile for every row.
 *	  That is most of the trigger's cost saved (measured: the SPI INSERT into
 *	  the partitioned parent cost as much as the rest of create_product).
 *	  When the month has no partition (rows go to the default partition),
 *	  or the partition carries insert triggers, the row takes the ordinary
 *	  path instead: a kept SPI INSERT into catalog.audit_log.  audit_log has
 *	  no CHECK constraints for that reason: this file is the one writer and
 *	  builds every column itself.
 *	- Both paths run as catalog_audit_owner, switched around the insert
 *	  exactly as core's foreign-key triggers switch to the table owner, so
 *	  a writer needs no privilege on the audit tables and catalog_owner (the
 *	  API) has none.  SECURITY_RESTRICTED_OPERATION forbids anything but the
 *	  insert while switched; SECURITY_NOFORCE_RLS lets the owner insert
 *	  whatever row_security says (pg_dump's scripts turn it off, and a
 *	  forced policy would then make the insert an error).
 *	- No lock beyond the row insert: ids come from a sequence (CACHE 1, so
 *	  they follow the order of the writes), the hash chain is built later by
 *	  the sealer (audit_chain.c).  Writers never wait for each other here.
 *
 * Internal writes.  The guard refuses UPDATE, DELETE and TRUNCATE of audit
 * rows to everyone; the sealer and the partition maintenance (both C in
 * this extension) pass it by setting a backend-local flag around their own
 * statements (AuditSetInternalWrite).  The flag is also cleared at the end
 * of every transaction, so an error can never leave it set.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
#include "utils/syscache.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "api.h"
#include "audit.h"
#include "document.h"
#include "keys.h"

PG_FUNCTION_INFO_V1(catalog_audit_trigger);
PG_FUNCTION_INFO_V1(catalog_audit_guard);
PG_FUNCTION_INFO_V1(catalog_audit_row_hash);

/* Set only by this extension's C code around its own writes. */
static bool audit_internal_write = false;
static bool audit_callback_registered = false;

static ApiPlan insert_plan = {
	"INSERT INTO catalog.audit_log (id, occurred_at, xact_at, txid, actor, role_name, via,"
	" request_id, table_name, row_id, action, old_values, new_values, row_hash)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
	14,
	{INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, JSONBOID, BYTEAOID},
	NULL
};

static void
audit_xact_callback(XactEvent event, void *arg)
{
	audit_internal_write = false;
}

/*
 * AuditSetInternalWrite
 *	  Let (or stop letting) this backend's own C code update or delete
 *	  audit rows; returns the previous state.  Callers restore it in a
 *	  PG_FINALLY block; the end of the transaction clears it regardless.
 */
bool
AuditSetInternalWrite(bool on)
{
	bool		prev = audit_internal_write;

	if (!audit_callback_registered)
	{
		RegisterXactCallback(audit_xact_callback, NULL);
		audit_callback_registered = true;
	}
	audit_internal_write = on;
	return prev;
}

/* ---- canonical hash ---- */

/*
 * The canonical content (audit.h) is laid out in one buffer and hashed
 * with a single update: per field, an update through core's cryptohash
 * and OpenSSL's EVP layer cost more than the bytes themselves.  The jsonb
 * text is written straight into the buffer (JsonbToCString appends), and
 * its length prefix filled in afterwards.
 */
static void
put_u32(StringInfo buf, uint32 v)
{
	uint8		b[4];

	b[0] = (uint8) (v >> 24);
	b[1] = (uint8) (v >> 16);
	b[2] = (uint8) (v >> 8);
	b[3] = (uint8) v;
	appendBinaryStringInfo(buf, (const char *) b, 4);
}

/*
 * AuditPutU64 / AuditPutText
 *	  Append v as 8 bytes big-endian / s as its 4-byte big-endian byte
 *	  length and its bytes: the fields of the canonical encodings (audit.h),
 *	  the row's here and the chain's in audit_chain.c.
 */
void
AuditPutU64(StringInfo buf, uint64 v)
{
	uint8		b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8) (v >> (56 - 8 * i));
	appendBinaryStringInfo(buf, (const char *) b, 8);
}

void
AuditPutText(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);

	put_u32(buf, (uint32) len);
	appendBinaryStringInfo(buf, s, (int) len);
}

static void
put_jsonb(StringInfo buf, Jsonb *j)
{
	int			at;
	uint32		len;

	if (j == NULL)
	{
		put_u32(buf, 0xFFFFFFFF);
		return;
	}
	at = buf->len;
	put_u32(buf, 0);
	(void) JsonbToCString(buf, &j->root, VARSIZE(j));
	len = (uint32) (buf->len - at - 4);
	buf->data[at] = (char) (len >> 24);
	buf->data[at + 1] = (char) (len >> 16);
	buf->data[at + 2] = (char) (len >> 8);
	buf->data[at + 3] = (char) len;
}

/*
 * AuditRowHash
 *	  SHA-256 of the canonical content of row (encoding: audit.h) into out
 *	  (AUDIT_HASH_LEN bytes).
 */
void
AuditRowHash(const AuditRow *row, uint8 *out)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "catalog.audit.v1", 16);
	AuditPutU64(&buf, (uint64) row->id);
	AuditPutU64(&buf, (uint64) row->occurred_at);
	AuditPutU64(&buf, (uint64) row->xact_at);
	AuditPutU64(&buf, U64FromFullTransactionId(row->txid));
	AuditPutText(&buf, row->actor);
	AuditPutText(&buf, row->role_name);
	AuditPutText(&buf, row->via);
	AuditPutText(&buf, row->request_id);
	AuditPutText(&buf, row->table_name);
	AuditPutU64(&buf, (uint64) row->row_id);
	AuditPutText(&buf, row->action);
	put_jsonb(&buf, row->old_values);
	put_jsonb(&buf, row->new_values);

	StaticAssertStmt(AUDIT_HASH_LEN == PG_SHA256_DIGEST_LENGTH, "an audit hash is a SHA-256");
	ctx = Sha256Begin();
	Sha256Update(ctx, buf.data, buf.len);
	Sha256End(ctx, out);
	pfree(buf.data);
}

/*
 * record_attr / record_text / record_jsonb / record_int64
 *	  A column of an audit_log composite, by name; NULL stays NULL for
 *	  jsonb and is an error for the NOT NULL columns.
 */
static Datum
record_attr(HeapTupleHeader rec, const char *name, bool *isnull)
{
	return GetAttributeByName(rec, name, isnull);
}

/* 22004: a NOT NULL column of the row passed to audit_row_hash is NULL */
static void
null_column(const char *name) pg_attribute_noreturn();

static void
null_column(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("audit row has a NULL %s", name)));
}

static const char *
record_text(HeapTupleHeader rec, const char *name)
{
	bool		isnull;
	Datum		d = record_attr(rec, name, &isnull);

	if (isnull)
		null_column(name);
	return TextDatumGetCString(d);
}

static Jsonb *
record_jsonb(HeapTupleHeader rec, const char *name)
{
	bool		isnull;
	Datum		d = record_attr(rec, name, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

static int64
record_int64(HeapTupleHeader rec, const char *name)
{
	bool		isnull;
	Datum		d = record_attr(rec, name, &isnull);

	if (isnull)
		null_column(name);
	return DatumGetInt64(d);
}

/*
 * catalog.audit_row_hash(catalog.audit_log) -> bytea
 *	  The hash AuditRowHash computes for the row, from its stored columns
 *	  (row_hash itself excluded).
 */
Datum
catalog_audit_row_hash(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	AuditRow	row;
	bool		isnull;
	bytea	   *out = palloc(VARHDRSZ + AUDIT_HASH_LEN);

	row.id = record_int64(rec, "id");
	row.occurred_at = DatumGetTimestampTz(record_attr(rec, "occurred_at", &isnull));
	if (isnull)
		null_column("occurred_at");
	row.xact_at = DatumGetTimestampTz(record_attr(rec, "xact_at", &isnull));
	if (isnull)
		null_column("xact_at");
	row.txid = DatumGetFullTransactionId(record_attr(rec, "txid", &isnull));
	if (isnull)
		null_column("txid");
	row.actor = record_text(rec, "actor");
	row.role_name = record_text(rec, "role_name");
	row.via = record_text(rec, "via");
	row.request_id = record_text(rec, "request_id");
	row.table_name = record_text(rec, "table_name");
	row.row_id = record_int64(rec, "row_id");
	row.action = record_text(rec, "action");
	row.old_values = record_jsonb(rec, "old_values");
	row.new_values = record_jsonb(rec, "new_values");

	SET_VARSIZE(out, VARHDRSZ + AUDIT_HASH_LEN);
	AuditRowHash(&row, (uint8 *) VARDATA(out));
	PG_RETURN_BYTEA_P(out);
}

/* ---- the trigger ---- */

/* Columns that change with every write and mean nothing on their own. */
static bool
is_bookkeeping(const char *name)
{
	return strcmp(name, "version") == 0 ||
		strcmp(name, "updated_at") == 0 ||
		strcmp(name, "updated_by") == 0;
}

/*
 * row_key
 *	  The bigint "id" column of a row of an audited table.
 */
static int64
row_key(HeapTuple tuple, TupleDesc desc, const char *relname)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		d;

		if (att->attisdropped || strcmp(NameStr(att->attname), "id") != 0)
			continue;
		if (att->atttypid != INT8OID)
			break;
		d = heap_getattr(tuple, i + 1, desc, &isnull);
		if (isnull)
			break;
		return DatumGetInt64(d);
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("audited table \"%s\" has no non-null bigint column \"id\"", relname)));
	return 0;					/* keep compiler quiet */
}

/*
 * push_column
 *	  Push key and (masked) value of attribute i of tuple.
 */
static void
push_column(JsonbParseState **st, AuditMaskPolicy *policy, Form_pg_attribute att,
			HeapTuple tuple, TupleDesc desc, int i)
{
	const char *name = NameStr(att->attname);
	bool		isnull;
	Datum		d = heap_getattr(tuple, i + 1, desc, &isnull);

	DocPushKey(st, name);
	if (isnull)
	{
		JsonbValue	null;

		null.type = jbvNull;
		pushJsonbValue(st, WJB_VALUE, &null);
		return;
	}
	AuditMaskPush(policy, st, name, att->atttypid, d);
}

/*
 * same_image
 *	  Whether two stored values of att are the same bytes.  An unchanged
 *	  out-of-line value keeps its TOAST pointer through an UPDATE, so two
 *	  on-disk pointers to the same value id in the same TOAST table are
 *	  equal without fetching either (datum_image_eq would fetch and
 *	  decompress both).
 */
static bool
same_image(Datum d1, Datum d2, Form_pg_attribute att)
{
	if (att->attlen == -1 &&
		VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d1)) &&
		VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d2)))
	{
		struct varatt_external e1;
		struct varatt_external e2;

		VARATT_EXTERNAL_GET_POINTER(e1, DatumGetPointer(d1));
		VARATT_EXTERNAL_GET_POINTER(e2, DatumGetPointer(d2));
		if (e1.va_valueid == e2.va_valueid && e1.va_toastrelid == e2.va_toastrelid)
			return true;
	}
	return datum_image_eq(d1, d2, att->attbyval, att->attlen);
}

/*
 * build_images
 *	  The old and new values of one row change.  Returns false for an
 *	  update that changed nothing but bookkeeping columns.
 */
static bool
build_images(AuditMaskPolicy *policy, TupleDesc desc, HeapTuple oldtup, HeapTuple newtup,
			 Jsonb **old_values, Jsonb **new_values)
{
	JsonbParseState *ost = NULL;
	JsonbParseState *nst = NULL;
	JsonbValue *ores = NULL;
	JsonbValue *nres = NULL;
	bool	   *changed = palloc0(sizeof(bool) * desc->natts);
	bool		any = false;

	/* an update records only what changed */
	if (oldtup != NULL && newtup != NULL)
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			bool		n1,
						n2;
			Datum		d1,
						d2;

			if (att->attisdropped || att->attgenerated)
				continue;
			d1 = heap_getattr(oldtup, i + 1, desc, &n1);
			d2 = heap_getattr(newtup, i + 1, desc, &n2);
			if (n1 != n2 ||
				(!n1 && !same_image(d1, d2, att)))
			{
				changed[i] = true;
				if (!is_bookkeeping(NameStr(att->attname)))
					any = true;
			}
		}
		if (!any)
			return false;
	}

	if (oldtup != NULL)
		ores = pushJsonbValue(&ost, WJB_BEGIN_OBJECT, NULL);
	if (newtup != NULL)
		nres = pushJsonbValue(&nst, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		if (oldtup != NULL && newtup != NULL && !changed[i])
			continue;
		if (oldtup != NULL)
			push_column(&ost, policy, att, oldtup, desc, i);
		if (newtup != NULL)
			push_column(&nst, policy, att, newtup, desc, i);
	}
	if (oldtup != NULL)
		ores = pushJsonbValue(&ost, WJB_END_OBJECT, NULL);
	if (newtup != NULL)
		nres = pushJsonbValue(&nst, WJB_END_OBJECT, NULL);
	*old_values = ores ? JsonbValueToJsonb(ores) : NULL;
	*new_values = nres ? JsonbValueToJsonb(nres) : NULL;
	pfree(changed);
	return true;
}

/*
 * audit_owner
 *	  OID of catalog_audit_owner (a syscache lookup; roles can be dropped
 *	  and recreated, so it is not cached across calls).
 */
static Oid
audit_owner(void)
{
	Oid			owner = get_role_oid(AUDIT_OWNER_ROLE, true);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" does not exist", AUDIT_OWNER_ROLE),
				 errhint("Reinstall the catalog extension: it creates the role.")));
	return owner;
}

/*
 * audit_sequence
 *	  OID of catalog.audit_log_id_seq.
 */
static Oid
audit_sequence(void)
{
	Oid			nsp = get_namespace_oid("catalog", false);
	Oid			seq = get_relname_relid("audit_log_id_seq", nsp);

	if (!OidIsValid(seq))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sequence \"catalog.audit_log_id_seq\" does not exist"),
				 errhint("Reinstall the catalog extension.")));
	return seq;
}

/* Column names of catalog.audit_log, in the order of values[] below. */
#define AUDIT_NCOLUMNS 14
static const char *const audit_columns[AUDIT_NCOLUMNS] = {
	"id", "occurred_at", "xact_at", "txid", "actor", "role_name", "via",
	"request_id", "table_name", "row_id", "action", "old_values", "new_values",
	"row_hash"
};
/* their types, in that order: a partition whose column differs in type or
 * carries a type modifier takes the ordinary path, which converts or
 * refuses (a datum of the wrong type written straight into the heap would
 * be misread by every later reader) */
static const Oid audit_column_types[AUDIT_NCOLUMNS] = {
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, JSONBOID,
	BYTEAOID
};

/*
 * The partition of the month last written, per backend.  part_relid is the
 * table named for the month (a lookup by name, or InvalidOid when there is
 * none); part_valid says that, checked under its lock, it is a partition of
 * catalog.audit_log with the month's bounds (part_lo, part_hi) and exactly
 * the audit columns, so a row can go straight in.  Any relcache
 * invalidation of that table or of catalog.audit_log (a drop, an attach or
 * detach, an ALTER), and a global one, forgets everything, so a check made
 * before the invalidation is never trusted after it.
 */
static bool part_callback_registered = false;
static Oid	part_relid = InvalidOid;
static Oid	part_parent = InvalidOid;
static int	part_month = -1;
static bool part_valid = false;
static TimestampTz part_lo;
static TimestampTz part_hi;
static int	part_map[AUDIT_NCOLUMNS];	/* attribute index of each column */

static void
part_inval_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == part_relid || relid == part_parent)
	{
		part_relid = InvalidOid;
		part_month = -1;
		part_valid = false;
	}
}

/*
 * bound_value
 *	  The timestamptz of a one-column range bound, or false.
 */
static bool
bound_value(List *datums, TimestampTz *out)
{
	PartitionRangeDatum *d;
	Const	   *c;

	if (list_length(datums) != 1)
		return false;
	d = (PartitionRangeDatum *) linitial(datums);
	if (!IsA(d, PartitionRangeDatum) || d->kind != PARTITION_RANGE_DATUM_VALUE ||
		d->value == NULL || !IsA(d->value, Const))
		return false;
	c = (Const *) d->value;
	if (c->constisnull || c->consttype != TIMESTAMPTZOID)
		return false;
	*out = DatumGetTimestampTz(c->constvalue);
	return true;
}

/*
 * partition_bounds
 *	  The range bounds relid was attached with, when it is a range
 *	  partition of one timestamptz column.
 */
static bool
partition_bounds(Oid relid, TimestampTz *lo, TimestampTz *hi)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Datum		d;
	bool		isnull;
	Node	   *node;
	bool		ok = false;

	if (!HeapTupleIsValid(tuple))
		return false;
	d = SysCacheGetAttr(RELOID, tuple, Anum_pg_class_relpartbound, &isnull);
	if (!isnull)
	{
		node = stringToNode(TextDatumGetCString(d));
		if (IsA(node, PartitionBoundSpec))
		{
			PartitionBoundSpec *spec = (PartitionBoundSpec *) node;

			ok = spec->strategy == PARTITION_STRATEGY_RANGE && !spec->is_default &&
				bound_value(spec->lowerdatums, lo) && bound_value(spec->upperdatums, hi);
		}
	}
	ReleaseSysCache(tuple);
	return ok;
}

/*
 * month_partition
 *	  OID of the table named catalog.audit_log_pYYYYMM for the UTC month of
 *	  ts, or InvalidOid.  Only a name lookup: insert_direct checks the
 *	  table once it holds its lock.
 */
static Oid
month_partition(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			month;
	char		name[NAMEDATALEN];
	Oid			nsp;

	if (!part_callback_registered)
	{
		CacheRegisterRelcacheCallback(part_inval_callback, (Datum) 0);
		part_callback_registered = true;
	}
	/* no time zone: the fields are UTC, like the partition bounds */
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return InvalidOid;
	month = tm.tm_year * 100 + tm.tm_mon;
	if (month == part_month)
		return part_relid;

	snprintf(name, sizeof(name), "audit_log_p%04d%02d", tm.tm_year, tm.tm_mon);
	nsp = get_namespace_oid("catalog", false);
	part_parent = get_relname_relid("audit_log", nsp);
	part_relid = get_relname_relid(name, nsp);
	part_month = month;
	part_valid = false;
	return part_relid;
}

/*
 * partition_fit
 *	  Check rel (locked) as the target of direct inserts: a plain table
 *	  that is a partition of catalog.audit_log, with one-column range
 *	  bounds, no insert trigger, no generated column, and exactly the
 *	  audit columns, of their types (a column added later, with a default,
 *	  or a changed type takes the ordinary path, which applies defaults and
 *	  converts).  Fills part_lo, part_hi and
 *	  part_map.  Under the lock no DETACH or DROP can complete, so what is
 *	  checked stays true until the insert.
 */
static bool
partition_fit(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			found = 0;

	if (!rel->rd_rel->relispartition || rel->rd_rel->relkind != RELKIND_RELATION ||
		get_partition_parent(RelationGetRelid(rel), true) != part_parent ||
		!partition_bounds(RelationGetRelid(rel), &part_lo, &part_hi))
		return false;
	if (rel->trigdesc != NULL &&
		(rel->trigdesc->trig_insert_before_row || rel->trigdesc->trig_insert_after_row ||
		 rel->trigdesc->trig_insert_instead_row || rel->trigdesc->trig_insert_new_table ||
		 rel->trigdesc->trig_insert_before_statement || rel->trigdesc->trig_insert_after_statement))
		return false;
	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < AUDIT_NCOLUMNS; c++)
			if (strcmp(NameStr(att->attname), audit_columns[c]) == 0)
				break;
		if (c == AUDIT_NCOLUMNS || att->atttypid != audit_column_types[c] ||
			att->atttypmod != -1)
			return false;
		part_map[c] = i;
		found++;
	}
	return found == AUDIT_NCOLUMNS;
}

/*
 * insert_direct
 *	  Insert the row into partition relid without a plan.  Returns false,
 *	  having written nothing, when the table is not fit for it (see
 *	  partition_fit) or its bounds do not hold the row; the caller then
 *	  takes the ordinary path.
 */
static bool
insert_direct(Oid relid, TimestampTz occurred_at, Datum *values, const char *nulls)
{
	Relation	rel = try_relation_open(relid, RowExclusiveLock);
	TupleDesc	desc;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	/* dropped since it was looked up */
	if (rel == NULL)
		return false;

	/*
	 * Opening took the lock and processed the invalidations that came
	 * before it: the table is what it is until the end of the transaction.
	 * Check it unless it was checked since the last invalidation.
	 */
	if (relid != part_relid || !part_valid)
	{
		part_valid = (relid == part_relid) && partition_fit(rel);
		if (!part_valid)
		{
			relation_close(rel, RowExclusiveLock);
			return false;
		}
	}
	if (occurred_at < part_lo || occurred_at >= part_hi)
	{
		relation_close(rel, RowExclusiveLock);
		return false;
	}
	desc = RelationGetDescr(rel);

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	{
		List	   *perminfos = NIL;

		/* as logical replication's apply worker: an error detail needs it */
		addRTEPermissionInfo(&perminfos, rte);
		ExecInitRangeTable(estate, list_make1(rte), perminfos);
	}
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(rri, false);

	slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	for (int i = 0; i < desc->natts; i++)
	{
		slot->tts_values[i] = (Datum) 0;
		slot->tts_isnull[i] = true;
	}
	for (int c = 0; c < AUDIT_NCOLUMNS; c++)
	{
		slot->tts_values[part_map[c]] = values[c];
		slot->tts_isnull[part_map[c]] = (nulls[c] == 'n');
	}
	ExecStoreVirtualTuple(slot);

	/*
	 * What ExecSimpleRelationInsert does, minus the partition constraint,
	 * which the bounds check above replaces: NOT NULL (and any constraint
	 * added later), heap, indexes.
	 */
	if (rel->rd_att->constr != NULL)
		ExecConstraints(rri, slot, estate);
	table_tuple_insert(rel, slot, estate->es_output_cid, 0, NULL);
	if (rri->ri_NumIndices > 0)
	{
		List	   *recheck;

#if PG_VERSION_NUM >= 160000
		recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false);
#else
		recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
		list_free(recheck);
	}

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	relation_close(rel, NoLock);
	return true;
}

/*
 * The request context of the current statement: who, as which role, how,
 * under which correlation id.  It cannot change between the rows of one
 * statement (the settings it reads are changed by statements, and the
 * trigger runs inside one), so it is computed once per (transaction,
 * command, outer user); the four strings are kept in their own small
 * context under TopTransactionContext, reset at each refresh, so a
 * transaction of many statements holds one copy, not one per statement.
 * The transaction key means a pointer from an earlier transaction (whose
 * context is gone) is never followed.  Everything the computation itself
 * allocates (parsed claims and headers) goes to the caller's per-row
 * context.
 */
typedef struct RequestContext
{
	LocalTransactionId lxid;
	CommandId	cid;
	Oid			outer_user;
	MemoryContext cxt;
	char	   *actor;
	char	   *role_name;
	char	   *via;
	char	   *request_id;
} RequestContext;

static RequestContext request_cache = {InvalidLocalTransactionId, 0, InvalidOid, NULL, NULL, NULL, NULL, NULL};

static void
request_context(AuditRow *row)
{
	LocalTransactionId lxid = ApiCurrentLxid();
	CommandId	cid = GetCurrentCommandId(false);
	Oid			outer_user = GetOuterUserId();

	if (request_cache.lxid != lxid || request_cache.cid != cid ||
		request_cache.outer_user != outer_user || request_cache.actor == NULL)
	{
		char	   *actor = AuditMaskActor(ApiActor());
		/* a role may be named by an address too (cloud IAM roles are) */
		char	   *role_name = AuditMaskActor(GetUserNameFromId(outer_user, false));
		char	   *via = AuditMaskVia(ApiVia(), GetConfigOption("request.path", true, false));
		const char *raw_request_id;
		const char *request_id = ApiRequestId(&raw_request_id);
		MemoryContext old;

		request_id = AuditMaskRequestId(request_id, raw_request_id);

		/* a new transaction: the previous context went with the old one */
		if (request_cache.lxid != lxid || request_cache.cxt == NULL)
			request_cache.cxt = AllocSetContextCreate(TopTransactionContext,
													  "catalog audit request context",
													  ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(request_cache.cxt);
		old = MemoryContextSwitchTo(request_cache.cxt);
		request_cache.actor = pstrdup(actor);
		request_cache.role_name = pstrdup(role_name);
		request_cache.via = pstrdup(via);
		request_cache.request_id = pstrdup(request_id);
		MemoryContextSwitchTo(old);
		request_cache.lxid = lxid;
		request_cache.cid = cid;
		request_cache.outer_user = outer_user;
	}
	row->actor = request_cache.actor;
	row->role_name = request_cache.role_name;
	row->via = request_cache.via;
	row->request_id = request_cache.request_id;
}

/*
 * catalog.audit_trigger()
 *	  AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW.
 */
Datum
catalog_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup = NULL;
	AuditRow	row;
	AuditMaskPolicy *policy;
	uint8		hash[AUDIT_HASH_LEN];
	bytea	   *hash_datum;
	Datum		values[AUDIT_NCOLUMNS];
	char		nulls[AUDIT_NCOLUMNS];
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.audit_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.audit_trigger() must be an AFTER ... FOR EACH ROW trigger")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtup = trigdata->tg_trigtuple;
		row.action = "insert";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
		row.action = "update";
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		row.action = "delete";
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.audit_trigger() handles INSERT, UPDATE and DELETE only")));

	/*
	 * A copy: the relcache entry's name is freed when the entry is rebuilt
	 * while open, and invalidations are accepted below (the mask policy's
	 * cache check, nextval's lock), for example after an ANALYZE of the
	 * table committed by another session.
	 */
	row.table_name = pstrdup(RelationGetRelationName(rel));
	row.row_id = row_key(newtup != NULL ? newtup : oldtup, desc, row.table_name);

	/* masking happens while the images are built: nothing unmasked is kept */
	policy = AuditMaskPolicyFor(row.table_name);
	if (!build_images(policy, desc, oldtup, newtup, &row.old_values, &row.new_values))
		return PointerGetDatum(NULL);

	row.occurred_at = GetCurrentTimestamp();
	row.xact_at = GetCurrentTransactionStartTimestamp();
	row.txid = GetTopFullTransactionId();
	request_context(&row);

	/* everything below runs as the audit tables' owner, and nothing else */
	owner = audit_owner();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);

	row.id = DatumGetInt64(DirectFunctionCall1(nextval_oid,
											   ObjectIdGetDatum(audit_sequence())));
	AuditRowHash(&row, hash);
	hash_datum = palloc(VARHDRSZ + AUDIT_HASH_LEN);
	SET_VARSIZE(hash_datum, VARHDRSZ + AUDIT_HASH_LEN);
	memcpy(VARDATA(hash_datum), hash, AUDIT_HASH_LEN);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row.id);
	values[1] = TimestampTzGetDatum(row.occurred_at);
	values[2] = TimestampTzGetDatum(row.xact_at);
	values[3] = FullTransactionIdGetDatum(row.txid);
	values[4] = CStringGetTextDatum(row.actor);
	values[5] = CStringGetTextDatum(row.role_name);
	values[6] = CStringGetTextDatum(row.via);
	values[7] = CStringGetTextDatum(row.request_id);
	values[8] = CStringGetTextDatum(row.table_name);
	values[9] = Int64GetDatum(row.row_id);
	values[10] = CStringGetTextDatum(row.action);
	values[11] = row.old_values ? JsonbPGetDatum(row.old_values) : (Datum) 0;
	nulls[11] = row.old_values ? ' ' : 'n';
	values[12] = row.new_values ? JsonbPGetDatum(row.new_values) : (Datum) 0;
	nulls[12] = row.new_values ? ' ' : 'n';
	values[13] = PointerGetDatum(hash_datum);

	{
		Oid			part = month_partition(row.occurred_at);

		if (!OidIsValid(part) || !insert_direct(part, row.occurred_at, values, nulls))
		{
			/*
			 * The one SQL the trigger runs: search_path pinned around it
			 * (the function has no SET clause, which would cost every row
			 * two settings changes for a path few rows take).
			 */
			int			nest = NewGUCNestLevel();

			(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (ApiExecute(&insert_plan, values, nulls, false, 0) != 1)
				elog(ERROR, "audit row insert did not insert one row");
			SPI_finish();
			AtEOXact_GUC(true, nest);
		}
	}

	/* an error above aborts the (sub)transaction, which restores the user */
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return PointerGetDatum(NULL);
}

/*
 * catalog.audit_guard()
 *	  BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE (statement) on the
 *	  audit tables, BEFORE TRUNCATE on the audited tables.  Refuses, unless
 *	  this extension's own code is writing (AuditSetInternalWrite) and the
 *	  table is an audit table.
 */
Datum
catalog_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *relname;
	bool		audited;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalog.audit_guard() must be called as a trigger")));
	relname = RelationGetRelationName(trigdata->tg_relation);
	audited = strcmp(relname, "product") == 0 || strcmp(relname, "category") == 0;

	if (audited)
	{
		if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("TRUNCATE of audited table \"catalog.%s\" is not allowed", relname),
					 errdetail("TRUNCATE removes rows without an audit record."),
					 errhint("Delete the rows with DELETE, which records each one.")));
		return PointerGetDatum(NULL);
	}

	if (!audit_internal_write || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("audit rows are append-only"),
				 errdetail("UPDATE, DELETE and TRUNCATE of \"catalog.%s\" are refused.", relname),
				 errhint("Retention drops whole partitions: catalog_api.audit_drop_partitions().")));

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);
	return PointerGetDatum(NULL);
}
