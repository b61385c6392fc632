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
 *	- The insert goes straight into the month's partition through
 *	  ExecSimpleRelationInsert, the executor's insert without a plan that
 *	  logical replication's apply worker uses: heap, indexes, the partition
 *	  constraint checked, no planner, no partition routing set up per row.
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
 *	  insert while switched.
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

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "api.h"
#include "audit.h"

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

static void
hash_update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		elog(ERROR, "could not update SHA-256 context: %s", pg_cryptohash_error(ctx));
}

static void
hash_u64(pg_cryptohash_ctx *ctx, uint64 v)
{
	uint8		b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8) (v >> (56 - 8 * i));
	hash_update(ctx, b, 8);
}

static void
hash_bytes(pg_cryptohash_ctx *ctx, const char *data, uint32 len)
{
	uint8		b[4];

	b[0] = (uint8) (len >> 24);
	b[1] = (uint8) (len >> 16);
	b[2] = (uint8) (len >> 8);
	b[3] = (uint8) len;
	hash_update(ctx, b, 4);
	if (len > 0 && len != 0xFFFFFFFF)
		hash_update(ctx, data, len);
}

static void
hash_text(pg_cryptohash_ctx *ctx, const char *s)
{
	hash_bytes(ctx, s, (uint32) strlen(s));
}

static void
hash_jsonb(pg_cryptohash_ctx *ctx, Jsonb *j)
{
	char	   *s;

	if (j == NULL)
	{
		hash_bytes(ctx, NULL, 0xFFFFFFFF);
		return;
	}
	s = JsonbToCString(NULL, &j->root, VARSIZE(j));
	hash_bytes(ctx, s, (uint32) strlen(s));
	pfree(s);
}

/*
 * AuditRowHash
 *	  SHA-256 of the canonical content of row (encoding: audit.h) into out
 *	  (AUDIT_HASH_LEN bytes).
 */
void
AuditRowHash(const AuditRow *row, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialise SHA-256 context: %s", pg_cryptohash_error(ctx));
	hash_update(ctx, "catalog.audit.v1", 16);
	hash_u64(ctx, (uint64) row->id);
	hash_u64(ctx, (uint64) row->occurred_at);
	hash_u64(ctx, (uint64) row->xact_at);
	hash_u64(ctx, U64FromFullTransactionId(row->txid));
	hash_text(ctx, row->actor);
	hash_text(ctx, row->role_name);
	hash_text(ctx, row->via);
	hash_text(ctx, row->request_id);
	hash_text(ctx, row->table_name);
	hash_u64(ctx, (uint64) row->row_id);
	hash_text(ctx, row->action);
	hash_jsonb(ctx, row->old_values);
	hash_jsonb(ctx, row->new_values);
	if (pg_cryptohash_final(ctx, out, AUDIT_HASH_LEN) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
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

static const char *
record_text(HeapTupleHeader rec, const char *name)
{
	bool		isnull;
	Datum		d = record_attr(rec, name, &isnull);

	if (isnull)
		elog(ERROR, "audit row has a NULL %s", name);
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
		elog(ERROR, "audit row has a NULL %s", name);
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
		elog(ERROR, "audit row has a NULL occurred_at");
	row.xact_at = DatumGetTimestampTz(record_attr(rec, "xact_at", &isnull));
	if (isnull)
		elog(ERROR, "audit row has a NULL xact_at");
	row.txid = DatumGetFullTransactionId(record_attr(rec, "txid", &isnull));
	if (isnull)
		elog(ERROR, "audit row has a NULL txid");
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
	JsonbValue	key;

	key.type = jbvString;
	key.val.string.val = (char *) name;
	key.val.string.len = strlen(name);
	pushJsonbValue(st, WJB_KEY, &key);
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
				(!n1 && !datum_image_eq(d1, d2, att->attbyval, att->attlen)))
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

/*
 * The partition of the month last written, per backend (or InvalidOid when
 * that month has none).  Reset by any relcache invalidation of that
 * partition or of catalog.audit_log (a drop, an attach or detach, an ALTER),
 * and by a global one, so a stale OID is never used: part_generation also tells
 * a lookup that raced with an invalidation to go the ordinary way.
 */
static bool part_callback_registered = false;
static Oid	part_relid = InvalidOid;
static Oid	part_parent = InvalidOid;
static int	part_month = -1;
static uint64 part_generation = 0;

static void
part_inval_callback(Datum arg, Oid relid)
{
	/* an ATTACH or DETACH invalidates the parent */
	if (!OidIsValid(relid) || relid == part_relid || relid == part_parent)
	{
		part_relid = InvalidOid;
		part_month = -1;
		part_generation++;
	}
}

/*
 * month_partition
 *	  OID of catalog.audit_log_pYYYYMM for the UTC month of ts when it is a
 *	  partition of catalog.audit_log, else InvalidOid.
 */
static Oid
month_partition(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			month;
	char		name[NAMEDATALEN];
	Oid			nsp;
	Oid			parent;
	Oid			relid;

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
	parent = get_relname_relid("audit_log", nsp);
	relid = get_relname_relid(name, nsp);
	if (OidIsValid(relid) &&
		(!get_rel_relispartition(relid) || get_partition_parent(relid, true) != parent))
		relid = InvalidOid;
	part_relid = relid;
	part_parent = parent;
	part_month = month;
	return relid;
}

/*
 * insert_direct
 *	  Insert the row into partition relid without a plan.  Returns false,
 *	  having written nothing, when the partition is not fit for it (it
 *	  changed meanwhile, or has insert triggers); the caller then takes the
 *	  ordinary path.  The executor checks the partition constraint, so a
 *	  partition whose bounds do not hold the row is an error, never a row in
 *	  the wrong place.
 */
static bool
insert_direct(Oid relid, uint64 generation, Datum *values, const char *nulls)
{
	Relation	rel = try_relation_open(relid, RowExclusiveLock);
	TupleDesc	desc;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			found = 0;

	/* dropped since it was looked up */
	if (rel == NULL)
		return false;
	desc = RelationGetDescr(rel);
	/* opening took a lock, and processed any invalidation that came first */
	if (generation != part_generation || !rel->rd_rel->relispartition ||
		rel->rd_rel->relkind != RELKIND_RELATION ||
		(rel->trigdesc != NULL &&
		 (rel->trigdesc->trig_insert_before_row || rel->trigdesc->trig_insert_after_row ||
		  rel->trigdesc->trig_insert_instead_row || rel->trigdesc->trig_insert_new_table)))
	{
		relation_close(rel, RowExclusiveLock);
		return false;
	}

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), NIL);
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
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			c;

		slot->tts_values[i] = (Datum) 0;
		slot->tts_isnull[i] = true;
		if (att->attisdropped)
			continue;
		for (c = 0; c < AUDIT_NCOLUMNS; c++)
			if (strcmp(NameStr(att->attname), audit_columns[c]) == 0)
				break;
		if (c == AUDIT_NCOLUMNS)
			continue;			/* a column added later: its default is NULL here */
		slot->tts_values[i] = values[c];
		slot->tts_isnull[i] = (nulls[c] == 'n');
		found++;
	}
	if (found != AUDIT_NCOLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit partition \"%s\" does not have the audit columns",
						RelationGetRelationName(rel)),
				 errhint("Reinstall the catalog extension or recreate the partition with catalog_api.audit_maintain().")));
	ExecStoreVirtualTuple(slot);

	ExecSimpleRelationInsert(rri, estate, slot);

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	relation_close(rel, NoLock);
	return true;
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

	row.table_name = RelationGetRelationName(rel);
	row.row_id = row_key(newtup != NULL ? newtup : oldtup, desc, row.table_name);

	/* masking happens while the images are built: nothing unmasked is kept */
	policy = AuditMaskPolicyFor(row.table_name);
	if (!build_images(policy, desc, oldtup, newtup, &row.old_values, &row.new_values))
		return PointerGetDatum(NULL);

	row.occurred_at = GetCurrentTimestamp();
	row.xact_at = GetCurrentTransactionStartTimestamp();
	row.txid = GetTopFullTransactionId();
	row.actor = AuditMaskActor(ApiActor());
	row.role_name = GetUserNameFromId(GetOuterUserId(), false);
	row.via = ApiVia();
	row.request_id = ApiRequestId();

	/* everything below runs as the audit tables' owner, and nothing else */
	owner = audit_owner();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

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
		uint64		generation = part_generation;

		if (!OidIsValid(part) || !insert_direct(part, generation, values, nulls))
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (ApiExecute(&insert_plan, values, nulls, false, 0) != 1)
				elog(ERROR, "audit row insert did not insert one row");
			SPI_finish();
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
