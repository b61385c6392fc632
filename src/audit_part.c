/*-------------------------------------------------------------------------
 *
 * audit_part.c
 *	  The monthly partitions of catalog.audit_log: creating them ahead and
 *	  moving rows out of the default partition (catalog_audit_maintain, also
 *	  run hourly by the sealer worker), and retention by whole partitions
 *	  (catalog_audit_drop_partitions).
 *
 * A partition is named catalog.audit_log_pYYYYMM and covers one calendar
 * month in UTC.  Its name and bounds are built from integers only, never
 * from input.  A partition is created standalone (LIKE the parent, with a
 * CHECK constraint equal to its range), given what the parent's own
 * partitions have (row-level security and its policy, no privilege for
 * PUBLIC, no UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER for the
 * owner, the TRUNCATE guard; row triggers are cloned by ATTACH), filled
 * with its month's rows from the default partition if any (deleted there
 * under AuditSetInternalWrite), then attached; the CHECK constraint spares
 * ATTACH the scan of the new partition.  The caller holds the parent in
 * ACCESS EXCLUSIVE meanwhile (below), which blocks readers and writers that
 * go through the parent, not the audit trigger's direct inserts into the
 * partitions that exist.
 *
 * Locks, always in this order, so these functions never deadlock with each
 * other nor with readers (which lock the parent, then the partitions):
 *	 1. catalog.audit_log in SHARE UPDATE EXCLUSIVE: one maintenance or
 *		retention call at a time; readers and writers are not blocked;
 *	 2. maintenance, only when a partition is to be created: the parent
 *		raised to ACCESS EXCLUSIVE (writers routed through the parent wait
 *		rather than fail the default partition's new constraint, and a
 *		transaction that read the log and then writes through the parent
 *		finishes first instead of deadlocking, see AuditMaintain), then the
 *		default partition in ACCESS EXCLUSIVE (ATTACH checks it); this
 *		blocks, from the moment it is queued, readers of audit_log and
 *		writers that go through the parent (the trigger's fallback path),
 *		never the audit trigger's direct inserts, which lock only their
 *		month's partition.  Taken whenever a partition is created: when
 *		rows are moved, and about once a month for a month ahead.  A
 *		transaction of the owner that reads audit_log_default directly and
 *		then the parent can deadlock with it (the detector ends one);
 *		retention: each candidate partition in SHARE ROW EXCLUSIVE, so no
 *		row can arrive while it is checked to be fully sealed;
 *	 3. retention: ACCESS EXCLUSIVE on catalog.audit_log, which DROP TABLE of
 *		a partition needs; taken only by the DROP statements at the end, so
 *		writers wait only for those.
 * Retention takes the sealer's lock (the row of catalog.audit_chain) before
 * all of these, as a sealing pass does before it reads the log, so that
 * each month it drops is chained (AuditChainPrune).  The worker's passes
 * skip a held lock instead of waiting.  A transaction of one's own that
 * first touches the audit tables (audit_maintain, a read) and then calls
 * audit_seal() or audit_drop_partitions() takes the two in the other order
 * and can deadlock with a concurrent retention call: the deadlock detector
 * ends one of them; call each in its own transaction.
 * Every wait is bounded by a local lock_timeout (catalog.audit_lock_timeout,
 * default 5 s, or the caller's own if shorter): a timeout, or a deadlock with a writer
 * that writes into an ended month, fails with 55P03 and a hint to retry,
 * so a maintenance call never holds writers in the lock queue for long.
 *
 * Partitions created while CREATE EXTENSION runs (should a script ever
 * call audit_maintain; the install script does not) would become members
 * of the extension, which cannot be dropped on their own; they are made
 * ordinary tables like the ones the worker creates later (dropping the
 * extension still drops them, with their parent).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "api.h"
#include "audit.h"
#include "audit_part.h"
#include "document.h"
#include "guc.h"
#include "validate_sql.h"
#include "ratelimit.h"

/* Months are partitioned only for years that print as four digits. */
#define AUDIT_YEAR_MIN			1
#define AUDIT_YEAR_MAX			9999

/* "audit_log_p" + YYYYMM, NUL */
#define AUDIT_PART_NAME_LEN		18

static ApiPlan plan_retention_insert = {
	"INSERT INTO catalog.audit_retention (month_start, month_end, partition, dropped_by)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT (month_start) DO NOTHING",
	4, {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID},
	NULL
};

/* The months (UTC) that have rows in the default partition. */
static ApiPlan plan_default_months = {
	"SELECT DISTINCT pg_catalog.date_trunc('month', occurred_at, 'UTC')"
	"  FROM catalog.audit_log_default"
	" WHERE occurred_at >= '0001-01-01 00:00:00+00'"
	"   AND occurred_at < '10000-01-01 00:00:00+00'",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_default_delete = {
	"DELETE FROM catalog.audit_log_default"
	" WHERE occurred_at >= $1 AND occurred_at < $2",
	2, {TIMESTAMPTZOID, TIMESTAMPTZOID},
	NULL
};

/* Rows of [$1, $2) without the seal of that very row. */
static ApiPlan plan_unsealed_in_range = {
	"SELECT count(*) FROM catalog.audit_log a"
	" WHERE a.occurred_at >= $1 AND a.occurred_at < $2"
	"   AND NOT EXISTS (SELECT 1 FROM catalog.audit_seal s"
	"                    WHERE s.audit_id = a.id AND s.occurred_at = a.occurred_at"
	"                      AND s.audit_id > 0)",
	2, {TIMESTAMPTZOID, TIMESTAMPTZOID},
	NULL
};

/*
 * range_datum
 *	  The instant of one range bound datum, or *inf for MINVALUE/MAXVALUE.
 */
static void
range_datum(Node *node, TimestampTz *ts, bool *inf)
{
	PartitionRangeDatum *d = castNode(PartitionRangeDatum, node);

	*inf = (d->kind != PARTITION_RANGE_DATUM_VALUE);
	*ts = 0;
	if (!*inf)
		*ts = DatumGetTimestampTz(castNode(Const, d->value)->constvalue);
}

/*
 * load_bound
 *	  Fill p with the name and range of partition relid (from
 *	  pg_class.relpartbound).  The caller holds a lock on the parent, so the
 *	  partition cannot be detached or dropped meanwhile.
 */
static void
load_bound(Oid relid, AuditPartition *p)
{
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	PartitionBoundSpec *spec;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	p->relid = relid;
	p->name = pstrdup(NameStr(((Form_pg_class) GETSTRUCT(tup))->relname));
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (isnull)
		elog(ERROR, "partition \"%s\" has no bound", p->name);
	spec = castNode(PartitionBoundSpec, stringToNode(TextDatumGetCString(d)));
	ReleaseSysCache(tup);

	if (spec->is_default)
	{
		p->is_default = true;
		return;
	}
	if (spec->strategy != PARTITION_STRATEGY_RANGE ||
		list_length(spec->lowerdatums) != 1 ||
		list_length(spec->upperdatums) != 1)
		elog(ERROR, "partition \"%s\" of catalog.audit_log is not a range on one column",
			 p->name);
	range_datum(linitial(spec->lowerdatums), &p->lower, &p->lower_inf);
	range_datum(linitial(spec->upperdatums), &p->upper, &p->upper_inf);
}

/* qsort comparator: by lower bound, the default partition last. */
static int
partition_cmp(const void *a, const void *b)
{
	const AuditPartition *x = a;
	const AuditPartition *y = b;

	if (x->is_default != y->is_default)
		return x->is_default ? 1 : -1;
	if (x->lower_inf != y->lower_inf)
		return x->lower_inf ? -1 : 1;
	if (x->lower != y->lower)
		return x->lower < y->lower ? -1 : 1;
	return 0;
}

/*
 * AuditPartitionsLoad
 *	  The partitions of catalog.audit_log, after locking it in parent_lock
 *	  (held to the end of the transaction).  Allocated in the current
 *	  memory context.
 */
AuditPartitionList *
AuditPartitionsLoad(LOCKMODE parent_lock)
{
	AuditPartitionList *list = palloc0(sizeof(AuditPartitionList));
	Relation	rel;
	PartitionDesc pd;
	int			i;

	list->parent = RangeVarGetRelid(makeRangeVar("catalog", "audit_log", -1),
									parent_lock, false);
	rel = table_open(list->parent, NoLock);
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		elog(ERROR, "catalog.audit_log is not a partitioned table");
	pd = RelationGetPartitionDesc(rel, true);
	list->n = pd->nparts;
	list->items = palloc0(sizeof(AuditPartition) * Max(pd->nparts, 1));
	for (i = 0; i < pd->nparts; i++)
		load_bound(pd->oids[i], &list->items[i]);
	table_close(rel, NoLock);
	qsort(list->items, list->n, sizeof(AuditPartition), partition_cmp);
	return list;
}

/*
 * partition_covering
 *	  The non-default partition whose range holds ts, or NULL.
 */
static AuditPartition *
partition_covering(AuditPartitionList *parts, TimestampTz ts)
{
	int			i;

	for (i = 0; i < parts->n; i++)
	{
		AuditPartition *p = &parts->items[i];

		if (p->is_default)
			continue;
		if ((p->lower_inf || ts >= p->lower) && (p->upper_inf || ts < p->upper))
			return p;
	}
	return NULL;
}

/*
 * month_name
 *	  The name of the partition of month m: audit_log_pYYYYMM, into name
 *	  (AUDIT_PART_NAME_LEN bytes).
 */
static void
month_name(int m, char *name)
{
	Assert(m / 12 >= AUDIT_YEAR_MIN && m / 12 <= AUDIT_YEAR_MAX);
	if (snprintf(name, AUDIT_PART_NAME_LEN, "audit_log_p%04d%02d", m / 12, m % 12 + 1) >=
		AUDIT_PART_NAME_LEN)
		elog(ERROR, "month %d has no partition name", m);
}

/*
 * month_start
 *	  The first instant (UTC) of month m (year * 12 + month - 1).
 */
static TimestampTz
month_start(int m)
{
	struct pg_tm tm;
	TimestampTz ts;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = m / 12;
	tm.tm_mon = m % 12 + 1;
	tm.tm_mday = 1;
	if (tm2timestamp(&tm, 0, NULL, &ts) != 0)
		elog(ERROR, "month %d out of range", m);
	return ts;
}

/*
 * month_of
 *	  The month (year * 12 + month - 1, UTC) of ts; false when ts is not
 *	  finite or its year is outside AUDIT_YEAR_MIN..AUDIT_YEAR_MAX.
 */
static bool
month_of(TimestampTz ts, int *m)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return false;
	if (tm.tm_year < AUDIT_YEAR_MIN || tm.tm_year > AUDIT_YEAR_MAX)
		return false;
	*m = tm.tm_year * 12 + tm.tm_mon - 1;
	return true;
}

/*
 * AuditIsMonth
 *	  Whether [start, end) is exactly one UTC calendar month (the span of a
 *	  monthly partition): a prune link must name one.
 */
bool
AuditIsMonth(TimestampTz start, TimestampTz end)
{
	int			m;

	return month_of(start, &m) && month_start(m) == start && month_start(m + 1) == end;
}

/*
 * AuditGucBegin
 *	  Open a GUC nest level for an audit function: row_security on (the
 *	  audit tables force row-level security on their owner, and with
 *	  row_security off, as pg_dump's output sets it, every query of theirs
 *	  would fail instead of passing the owner's policy); with ddl, also
 *	  lock_timeout at most catalog.audit_lock_timeout.  Returns the level
 *	  for AuditGucEnd; an error unwinds it with the transaction.
 */
int
AuditGucBegin(bool ddl)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("row_security", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (ddl && (LockTimeout == 0 || LockTimeout > catalog_audit_lock_timeout))
	{
		char		buf[16];

		snprintf(buf, sizeof(buf), "%d", catalog_audit_lock_timeout);
		(void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	return nest;
}

/*
 * AuditGucEnd
 *	  Close the level AuditGucBegin opened, restoring the settings.
 */
void
AuditGucEnd(int nest)
{
	AtEOXact_GUC(true, nest);
}

/*
 * rethrow_lock_error
 *	  In PG_CATCH: re-throw a lock timeout, or a deadlock (possible only
 *	  with a writer into an ended month), as 55P03 with a hint to retry;
 *	  any other error unchanged.  cxt: a context that outlives the error.
 */
static void
rethrow_lock_error(MemoryContext cxt, const char *what)
{
	ErrorData  *edata;
	int			code = geterrcode();

	if (code != ERRCODE_LOCK_NOT_AVAILABLE && code != ERRCODE_T_R_DEADLOCK_DETECTED)
		PG_RE_THROW();
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	edata->sqlerrcode = ERRCODE_LOCK_NOT_AVAILABLE;
	edata->detail = edata->message;
	edata->detail_log = NULL;
	edata->message = psprintf("%s could not lock the audit partitions in time", what);
	edata->hint = pstrdup("Another session holds a conflicting lock on catalog.audit_log "
						  "or one of its partitions (a long query, or another maintenance "
						  "call); retry later.");
	ReThrowError(edata);
}

/*
 * run_ddl
 *	  Run one statement built by this file from integers and fixed text.
 */
static void
run_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed for \"%s\": %s", sql, SPI_result_code_string(rc));
}

/*
 * delete_from_default
 *	  Delete the rows of [args[0], args[1]) from the default partition, as
 *	  the guard trigger allows only under AuditSetInternalWrite; returns how
 *	  many.
 */
static int64
delete_from_default(Datum *args)
{
	bool		prev = AuditSetInternalWrite(true);
	volatile int64 n = 0;

	PG_TRY();
	{
		n = ApiExecute(&plan_default_delete, args, NULL, false, 0);
	}
	PG_CATCH();
	{
		AuditSetInternalWrite(prev);
		PG_RE_THROW();
	}
	PG_END_TRY();
	AuditSetInternalWrite(prev);
	return n;
}

/*
 * create_partition
 *	  Create, fill from the default partition (when move) and attach the
 *	  partition of month m; returns how many rows were moved.  The caller
 *	  holds ACCESS EXCLUSIVE on the parent and on the default partition.
 *	  name receives the relname.
 */
static int64
create_partition(int m, bool move, char *name)
{
	int			year = m / 12;
	int			mon = m % 12 + 1;
	int			next_year = (m + 1) / 12;
	int			next_mon = (m + 1) % 12 + 1;
	char		lo[32];
	char		hi[32];
	char		sql[1024];
	Oid			nsp = get_namespace_oid("catalog", false);
	Oid			relid;
	int64		moved = 0;

	month_name(m, name);
	snprintf(lo, sizeof(lo), "%04d-%02d-01 00:00:00+00", year, mon);
	snprintf(hi, sizeof(hi), "%04d-%02d-01 00:00:00+00", next_year, next_mon);

	if (OidIsValid(get_relname_relid(name, nsp)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"catalog.%s\" exists but is not the partition of its month", name),
				 errdetail("No partition of catalog.audit_log covers %s to %s.", lo, hi),
				 errhint("Attach it to catalog.audit_log for that month, or rename or drop it; then retry.")));

	snprintf(sql, sizeof(sql),
			 "CREATE TABLE catalog.%s (LIKE catalog.audit_log INCLUDING DEFAULTS"
			 " INCLUDING CONSTRAINTS, CONSTRAINT %s_bound CHECK"
			 " (occurred_at >= '%s' AND occurred_at < '%s'))",
			 name, name, lo, hi);
	run_ddl(sql);
	relid = get_relname_relid(name, nsp);
	if (!OidIsValid(relid))
		elog(ERROR, "created table catalog.%s not found", name);
	if (creating_extension)
	{
		/* see the file header: not a member of the extension */
		deleteDependencyRecordsForClass(RelationRelationId, relid,
										ExtensionRelationId, DEPENDENCY_EXTENSION);
		CommandCounterIncrement();
	}

	snprintf(sql, sizeof(sql),
			 "ALTER TABLE catalog.%s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
			 name);
	run_ddl(sql);
	snprintf(sql, sizeof(sql),
			 "CREATE POLICY %s_owner ON catalog.%s FOR ALL TO " AUDIT_OWNER_ROLE
			 " USING (true) WITH CHECK (true)", name, name);
	run_ddl(sql);
	snprintf(sql, sizeof(sql),
			 "CREATE TRIGGER %s_no_truncate BEFORE TRUNCATE ON catalog.%s"
			 " FOR EACH STATEMENT EXECUTE FUNCTION catalog.audit_guard()", name, name);
	run_ddl(sql);

	if (move)
	{
		Datum		args[2];
		Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		int			rc;
		int64		deleted;

		args[0] = TimestampTzGetDatum(month_start(m));
		args[1] = TimestampTzGetDatum(month_start(m + 1));
		snprintf(sql, sizeof(sql),
				 "INSERT INTO catalog.%s SELECT * FROM catalog.audit_log_default"
				 " WHERE occurred_at >= $1 AND occurred_at < $2", name);
		rc = SPI_execute_with_args(sql, 2, types, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed for \"%s\": %s",
				 sql, SPI_result_code_string(rc));
		moved = (int64) SPI_processed;

		deleted = delete_from_default(args);
		if (deleted != moved)
			elog(ERROR, "moved %lld audit rows into catalog.%s but deleted %lld",
				 (long long) moved, name, (long long) deleted);
	}

	/*
	 * Each partition has its own indexes, not partitions of indexes on
	 * catalog.audit_log (see sql/catalog--1.0.sql: pg_dump could not restore
	 * those under a parent that belongs to the extension).  Built after the
	 * copy, before the ATTACH.
	 */
	snprintf(sql, sizeof(sql),
			 "ALTER TABLE catalog.%s ADD CONSTRAINT %s_pkey PRIMARY KEY (id)", name, name);
	run_ddl(sql);
	snprintf(sql, sizeof(sql), "CREATE INDEX %s_txid_idx ON catalog.%s (txid)", name, name);
	run_ddl(sql);

	snprintf(sql, sizeof(sql),
			 "ALTER TABLE catalog.audit_log ATTACH PARTITION catalog.%s"
			 " FOR VALUES FROM ('%s') TO ('%s')", name, lo, hi);
	run_ddl(sql);
	snprintf(sql, sizeof(sql), "ALTER TABLE catalog.%s DROP CONSTRAINT %s_bound", name, name);
	run_ddl(sql);

	/* last: ATTACH clones the parent's row triggers, which needs TRIGGER */
	snprintf(sql, sizeof(sql), "REVOKE ALL ON catalog.%s FROM PUBLIC", name);
	run_ddl(sql);
	snprintf(sql, sizeof(sql),
			 "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON catalog.%s FROM "
			 AUDIT_OWNER_ROLE, name);
	run_ddl(sql);
	return moved;
}

/* Month sets: small sorted arrays of ints. */
static int
int_cmp(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/*
 * default_months
 *	  Append to months the months with rows in the default partition;
 *	  returns the new count.  months has room for *cap entries (grown).
 */
static int
default_months(int **months, int n, int *cap)
{
	uint64		i;
	int			rows = ApiExecute(&plan_default_months, NULL, NULL, false, 0);

	for (i = 0; i < (uint64) rows; i++)
	{
		bool		isnull;
		TimestampTz ts = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		int			m;

		if (isnull || !month_of(ts, &m))
			continue;
		if (n == *cap)
		{
			*cap *= 2;
			*months = repalloc(*months, sizeof(int) * *cap);
		}
		(*months)[n++] = m;
	}
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/*
 * maintain_body
 *	  The work of AuditMaintain, connected to SPI.  Created names are
 *	  appended to *created, allocated in cxt.
 */
static void
maintain_body(int months_ahead, MemoryContext cxt, List **created, int64 *moved)
{
	AuditPartitionList *parts = AuditPartitionsLoad(ShareUpdateExclusiveLock);
	AuditPartition *def = NULL;
	int			cap = months_ahead + 16;
	int		   *months = palloc(sizeof(int) * cap);
	int		   *from_default;
	int			n = 0;
	int			n_ahead;
	int			cur;
	int			i;

	for (i = 0; i < parts->n; i++)
		if (parts->items[i].is_default)
			def = &parts->items[i];
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("catalog.audit_log has no default partition"),
				 errhint("Recreate it as the extension's script does: CREATE TABLE catalog.audit_log_default PARTITION OF catalog.audit_log DEFAULT, "
						 "its primary key (id) and an index on txid, row-level security enabled and forced with a policy FOR ALL TO catalog_audit_owner, "
						 "and owner catalog_audit_owner.")));

	if (!month_of(GetCurrentTimestamp(), &cur))
		elog(ERROR, "current time is out of range");
	/* months past AUDIT_YEAR_MAX have no audit_log_pYYYYMM name: none */
	for (i = 0; i <= months_ahead && (cur + i) / 12 <= AUDIT_YEAR_MAX; i++)
		if (partition_covering(parts, month_start(cur + i)) == NULL)
			months[n++] = cur + i;
	n_ahead = n;
	n = default_months(&months, n, &cap);
	if (n == 0)
		return;

	/*
	 * ATTACH will need the default partition in ACCESS EXCLUSIVE: take it
	 * now, then look again, so that no row of a month being created can
	 * arrive there between the copy and the ATTACH.  Before it, the parent
	 * catalog.audit_log in ACCESS EXCLUSIVE.  A writer that routes through
	 * the parent (the audit trigger's ordinary path) would otherwise have
	 * chosen the default partition when its statement started and, once
	 * let through after the ATTACH, fail the default partition's new
	 * constraint (23514); holding the parent makes it wait, then route to
	 * the new partition.  The mode must also conflict with the ACCESS
	 * SHARE of a reader: with SHARE ROW EXCLUSIVE, a transaction that had
	 * read the log (parent and default partition in ACCESS SHARE) and then
	 * wrote through the parent waited for this call, which waited for it
	 * on the default partition, and the deadlock detector could end the
	 * writer (40P01).  Now this call queues on the parent behind that
	 * reader, whose later ROW EXCLUSIVE is granted ahead of the queued
	 * request (PostgreSQL lets a holder pass a waiter that waits for it),
	 * and it goes on once the reader commits.  The audit trigger's direct
	 * insert into a month's partition does not lock the parent.
	 */
	LockRelationOid(get_relname_relid("audit_log", get_namespace_oid("catalog", false)),
					AccessExclusiveLock);
	LockRelationOid(def->relid, AccessExclusiveLock);
	n = default_months(&months, n_ahead, &cap);

	/* which months have rows to move: the ones found after the lock */
	from_default = palloc(sizeof(int) * Max(n - n_ahead, 1));
	memcpy(from_default, months + n_ahead, sizeof(int) * (n - n_ahead));
	qsort(from_default, n - n_ahead, sizeof(int), int_cmp);
	qsort(months, n, sizeof(int), int_cmp);

	for (i = 0; i < n; i++)
	{
		char		name[AUDIT_PART_NAME_LEN];
		bool		move;
		MemoryContext old;

		if (i > 0 && months[i] == months[i - 1])
			continue;
		/* a month with rows in the default partition has no partition */
		if (partition_covering(parts, month_start(months[i])) != NULL)
			continue;
		move = bsearch(&months[i], from_default, n - n_ahead, sizeof(int), int_cmp) != NULL;
		*moved += create_partition(months[i], move, name);
		old = MemoryContextSwitchTo(cxt);
		*created = lappend(*created, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
}

/*
 * AuditMaintain
 *	  Make sure catalog.audit_log has a partition for the current month
 *	  (UTC), for the next months_ahead months, and for every month with
 *	  rows in the default partition (which are moved into it).  Returns
 *	  {"created": [names], "moved": n} in the current memory context.  Runs
 *	  as the owner of the audit tables (the SQL function is SECURITY
 *	  DEFINER; the worker switches to it), in a read-write transaction.
 */
Jsonb *
AuditMaintain(int months_ahead)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			nest = AuditGucBegin(true);
	List	   *created = NIL;
	int64		moved = 0;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		maintain_body(months_ahead, cxt, &created, &moved);
	}
	PG_CATCH();
	{
		rethrow_lock_error(cxt, "audit_maintain");
	}
	PG_END_TRY();
	SPI_finish();
	AuditGucEnd(nest);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushKey(&st, "created");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, created)
		DocPushElem(&st, lfirst(lc));
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushInt(&st, "moved", moved);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * catalog_audit_maintain
 *	  SQL: catalog_api.audit_maintain(months_ahead integer DEFAULT 3)
 *	  -> jsonb.  See AuditMaintain.
 */
PG_FUNCTION_INFO_V1(catalog_audit_maintain);
Datum
catalog_audit_maintain(PG_FUNCTION_ARGS)
{
	int32		months_ahead;

	RateLimitEnter(RLF_AUDIT_MAINTAIN);
	months_ahead = AuditIntArg(fcinfo, 0, "months_ahead", 1, 36);
	AuditCheckWritable("audit_maintain", true);
	PG_RETURN_JSONB_P(AuditMaintain(months_ahead));
}

/*
 * is_monthly_name
 *	  Whether relname is audit_log_p followed by exactly six digits.
 */
static bool
is_monthly_name(const char *relname)
{
	int			i;

	if (strncmp(relname, "audit_log_p", 11) != 0 || strlen(relname) != 17)
		return false;
	for (i = 11; i < 17; i++)
		if (relname[i] < '0' || relname[i] > '9')
			return false;
	return true;
}

/*
 * named_for
 *	  Whether relname (a monthly name, is_monthly_name) is the name of the
 *	  month that begins at lower (UTC).
 */
static bool
named_for(const char *relname, TimestampTz lower)
{
	int			m;
	char		want[AUDIT_PART_NAME_LEN];

	if (!month_of(lower, &m))
		return false;
	month_name(m, want);
	return strcmp(relname, want) == 0;
}

/* A partition kept by retention, and why. */
typedef struct KeptPartition
{
	const char *name;
	const char *reason;
	int64		unsealed;		/* for "unsealed_rows" */
} KeptPartition;

/*
 * drop_body
 *	  The work of catalog_audit_drop_partitions, connected to SPI.  Names
 *	  (dropped) and KeptPartitions (kept) are appended to the lists,
 *	  allocated in cxt.
 */
static void
drop_body(TimestampTz older_than, MemoryContext cxt, List **dropped, List **kept)
{
	AuditPartitionList *parts;
	TimestampTz now = GetCurrentTimestamp();
	List	   *to_drop = NIL;
	ListCell   *lc;
	int			i;

	/*
	 * The sealer's lock first, as a sealing pass takes it before reading
	 * the log: each month dropped is a link of the chain (AuditChainPrune),
	 * appended at the head while no pass can move it, and no pass waits on
	 * a partition this transaction drops while holding the lock.
	 */
	AuditChainLock();
	parts = AuditPartitionsLoad(ShareUpdateExclusiveLock);
	for (i = 0; i < parts->n; i++)
	{
		AuditPartition *p = &parts->items[i];
		MemoryContext old;
		KeptPartition *k = NULL;

		if (p->is_default || p->upper_inf || p->lower_inf ||
			!is_monthly_name(p->name) || p->upper > older_than)
			continue;

		if (p->upper > now)
		{
			/* retention never drops the current month nor one ahead */
			old = MemoryContextSwitchTo(cxt);
			k = palloc0(sizeof(KeptPartition));
			k->reason = "not_ended";
		}
		else if (!AuditIsMonth(p->lower, p->upper) || !named_for(p->name, p->lower))
		{
			/*
			 * Attached by hand with other bounds: its drop would chain a
			 * prune link that names no month, which verify refuses for ever
			 * (a link must name exactly the month its partition held).
			 */
			old = MemoryContextSwitchTo(cxt);
			k = palloc0(sizeof(KeptPartition));
			k->reason = "not_a_month";
		}
		else
		{
			Datum		args[2];
			bool		isnull;
			int64		unsealed;

			/*
			 * No row can arrive while the partition is checked and until it
			 * is dropped; rows committed before the lock are seen by the
			 * statement's fresh snapshot (READ COMMITTED is required).
			 */
			LockRelationOid(p->relid, ShareRowExclusiveLock);
			/* renaming needs a lock we now conflict with: read the name again */
			p->name = get_rel_name(p->relid);
			if (p->name == NULL || !is_monthly_name(p->name))
				continue;
			args[0] = TimestampTzGetDatum(p->lower);
			args[1] = TimestampTzGetDatum(p->upper);
			if (ApiExecute(&plan_unsealed_in_range, args, NULL, false, 1) != 1)
				elog(ERROR, "count returned no row");
			unsealed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
			SPI_freetuptable(SPI_tuptable);
			if (unsealed == 0)
			{
				Datum		rargs[4];

				/* the readable record of the month dropped */
				rargs[0] = TimestampTzGetDatum(p->lower);
				rargs[1] = TimestampTzGetDatum(p->upper);
				rargs[2] = CStringGetTextDatum(p->name);
				rargs[3] = CStringGetTextDatum(AuditMaskActor(ApiActor()));
				/* a month dropped before (its partition came back for a late row) is recorded once */
				(void) ApiExecute(&plan_retention_insert, rargs, NULL, false, 0);
				/* and chained, every time: verify trusts the chain, not the record */
				AuditChainPrune(p->lower, p->upper, now);
			}
			/* what outlives SPI_finish goes to cxt, after every SPI call */
			old = MemoryContextSwitchTo(cxt);
			if (unsealed > 0)
			{
				k = palloc0(sizeof(KeptPartition));
				k->reason = "unsealed_rows";
				k->unsealed = unsealed;
			}
			else
				to_drop = lappend(to_drop, pstrdup(p->name));
		}
		if (k != NULL)
		{
			k->name = pstrdup(p->name);
			*kept = lappend(*kept, k);
		}
		MemoryContextSwitchTo(old);
	}

	/* The drops last: from the first one on, writers wait for us. */
	foreach(lc, to_drop)
	{
		char		sql[128];

		snprintf(sql, sizeof(sql), "DROP TABLE catalog.%s", quote_identifier(lfirst(lc)));
		run_ddl(sql);
	}
	*dropped = to_drop;
}

/*
 * catalog_audit_drop_partitions
 *	  SQL: catalog_api.audit_drop_partitions(older_than timestamptz) ->
 *	  jsonb.  Drops every monthly partition (audit_log_pYYYYMM) whose upper
 *	  bound is at or before older_than and before now, and all of whose
 *	  rows are sealed; never the default partition, never single rows.
 *	  Returns {"dropped": [names], "kept": [{"partition", "reason"}, ...]}
 *	  where reason is "unsealed_rows" (with "unsealed": n), "not_ended", or
 *	  "not_a_month" (attached by hand with bounds other than its month's).
 *	  READ COMMITTED only: the sealed check must see every row committed
 *	  before its lock.
 */
PG_FUNCTION_INFO_V1(catalog_audit_drop_partitions);
Datum
catalog_audit_drop_partitions(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz older_than;
	int			nest;
	List	   *dropped = NIL;
	List	   *kept = NIL;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	ListCell   *lc;

	RateLimitEnter(RLF_AUDIT_DROP_PARTITIONS);
	if (PG_ARGISNULL(0))
		ValidateRaiseReason("older_than", "required");
	older_than = PG_GETARG_TIMESTAMPTZ(0);
	AuditCheckWritable("audit_drop_partitions", true);

	nest = AuditGucBegin(true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		drop_body(older_than, cxt, &dropped, &kept);
	}
	PG_CATCH();
	{
		rethrow_lock_error(cxt, "audit_drop_partitions");
	}
	PG_END_TRY();
	SPI_finish();
	AuditGucEnd(nest);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushKey(&st, "dropped");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, dropped)
		DocPushElem(&st, lfirst(lc));
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushKey(&st, "kept");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, kept)
	{
		KeptPartition *k = lfirst(lc);

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		DocPushText(&st, "partition", DocCString(k->name));
		DocPushText(&st, "reason", DocCString(k->reason));
		if (strcmp(k->reason, "unsealed_rows") == 0)
			DocPushInt(&st, "unsealed", k->unsealed);
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
