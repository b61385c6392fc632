/*-------------------------------------------------------------------------
 *
 * audit_chain.c
 *	  The audit hash chain: sealing committed audit rows into it
 *	  (catalog_audit_seal, and the background worker "catalog audit
 *	  sealer"), verifying it (catalog_audit_verify) and reading its head
 *	  (catalog_audit_head).
 *
 * catalog.audit_seal holds one row per sealed audit row, in sealing order:
 * seq 1, 2, ..., the audit row's id and occurred_at (its key), its row_hash,
 * its lookup keys and the time it was sealed, and chain_hash =
 * AuditChainHash(the seal, chain_hash(seq - 1)) over all of them (audit.h);
 * and one prune link per month retention dropped.
 * Writers never touch the chain: a pass of the sealer appends the audit
 * rows committed since the previous pass.
 *
 * A pass (seal_pass), one at a time:
 *	 a. lock the one row of catalog.audit_chain (FOR UPDATE): passes
 *		serialise there, and each sees every seal of the one before;
 *	 b. take one snapshot S after the lock, and under it read the head and
 *		the candidates: rows with id > last_id or written by a transaction
 *		in pending, without a seal, in id order, at most max_rows;
 *	 c. append them to the chain;
 *	 d. record last_id and pending (below) for the next pass.
 * Why no committed row is ever skipped: ids come from a CACHE 1 sequence
 * that the trigger calls after its transaction has an xid.  A row R not
 * visible in S belongs to a transaction T that is not committed for S.
 * Either T's xid was assigned before S was taken: then it is below the
 * next xid N read just after S, and it is either in S's xip (below S's
 * xmax) or in [xmax, N), since xmax is one past the latest completed xid
 * (core leaves running xids at or above xmax out of xip); pending keeps
 * both sets.  Or T got its xid after S: then R's id was drawn after S,
 * above the id of every row visible in S.  So after a pass, every row
 * with id <= last_id is sealed or belongs to a pending transaction.
 * last_id: when the candidates were not cut at max_rows, the greatest of
 * last_id and the highest candidate id; when they were, the highest sealed
 * id if that is not below last_id (the candidates above it stay above
 * last_id), else last_id unchanged: it never moves back.  pending: S's
 * in-progress transactions as above.  An old pending transaction that is
 * no longer running is visible in S, so its rows up to the new last_id
 * were candidates and are sealed now: it need not be kept, except after a
 * pass cut below last_id, whose unsealed candidates are rows of old
 * pending transactions above the highest sealed id: the old pending
 * transactions are kept with S's then.
 * Why no row is sealed twice: passes serialise on the row lock, the
 * snapshot is taken after it (the previous pass is committed and visible),
 * candidates are DISTINCT ON id and exclude sealed ids; the unique index
 * on audit_seal.audit_id backs it up.  Writers never wait: they do not
 * touch audit_chain or audit_seal, and reads do not block inserts.
 * READ COMMITTED only: a transaction snapshot from before the lock would
 * not see the previous pass.
 *
 * Verification walks the seals in seq order (a cursor, one memory context
 * reset per batch) and recomputes every row hash and chain link; then it
 * looks for audit rows that appeared inside the sealed history (id at or
 * below last_id, not pending, no seal; or a second row with a sealed id).
 * A seal whose row is gone is "pruned" when a later valid prune link
 * covers its time (retention dropped the month: audit_part.c appends the
 * link in the transaction of the DROP; load_prunes says which are valid),
 * else the row was deleted: "missing_row".
 *
 * The worker seals every catalog.audit_seal_interval in
 * catalog.audit_seal_database, as the owner of the audit tables, at once
 * again while a pass is full, and runs the partition maintenance when it
 * starts and hourly (also with the interval at 0, which only stops the
 * sealing).  Each in its own transaction.  An error in either is logged
 * and its transaction aborted, and the worker goes on (worker_job): a
 * failed seal pass is tried again after 10 s, a failed maintenance after a
 * minute, and sealing never waits for the maintenance.  A pass that would
 * wait for the chain's lock (a session's own audit_seal() or retention
 * holding it) is skipped until the next tick.  FATAL (SIGTERM) ends it and
 * the postmaster starts it again (after 10 s).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "utils/xid8.h"

#include "api.h"
#include "audit.h"
#include "audit_part.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "validate_sql.h"
#include "ratelimit.h"

/* Nanoseconds per millisecond (ApiMonotonicNs). */
#define NS_PER_MS				INT64CONST(1000000)

/* Rows per INSERT while sealing, and per fetch while verifying. */
#define SEAL_BATCH				1000
#define VERIFY_BATCH			1000

/* Most in-progress transactions one pass records (see snapshot_pending). */
#define PENDING_MAX				1000000

/*
 * The worker: maintenance period, its wake-up when sealing is off, and how
 * long it waits after a failed job before that job runs again (a failed
 * seal pass: as long as the postmaster waited to restart the worker when
 * any error ended it).
 */
#define WORKER_MAINTAIN_MS		(3600 * 1000)
#define WORKER_IDLE_MS			(60 * 1000)
#define WORKER_MAINTAIN_RETRY_MS (60 * 1000)
#define WORKER_SEAL_RETRY_MS	(10 * 1000)

static const uint8 zero_hash[AUDIT_HASH_LEN];

static ApiPlan plan_chain_lock = {
	"SELECT last_id, pending FROM catalog.audit_chain FOR UPDATE",
	0, {InvalidOid},
	NULL
};

/*
 * The worker's form: a pass that would wait (another session's
 * audit_seal() or audit_drop_partitions() holds the lock, perhaps idle in
 * its transaction) is skipped instead, and tried again at the next tick.
 */
static ApiPlan plan_chain_lock_skip = {
	"SELECT last_id, pending FROM catalog.audit_chain FOR UPDATE SKIP LOCKED",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_chain_exists = {
	"SELECT 1 FROM catalog.audit_chain",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_head = {
	"SELECT seq, chain_hash, audit_id, sealed_at FROM catalog.audit_seal"
	" ORDER BY seq DESC LIMIT 1",
	0, {InvalidOid},
	NULL
};

/*
 * Prepared with CURSOR_OPT_CUSTOM_PLAN: planned for the actual last_id.
 * Two branches, each with its own indexable condition (the pkey for the
 * rows above last_id, the txid index for the pending transactions' rows):
 * one OR would leave the planner a full index scan with the OR as a
 * filter, the whole log at every pass.  The first branch is cut at
 * max_rows only after the sealed rows are excluded, so rows sealed
 * already (after a restore, last_id starts at 0) cannot fill it.
 */
static ApiPlan plan_candidates = {
	"SELECT DISTINCT ON (c.id) c.id, c.occurred_at, c.row_hash,"
	"       c.table_name, c.row_id, c.actor, c.request_id"
	"  FROM ((SELECT a.id, a.occurred_at, a.row_hash,"
	"                a.table_name, a.row_id, a.actor, a.request_id"
	"           FROM catalog.audit_log a"
	"          WHERE a.id > $1 AND a.id > 0 AND a.txid IS DISTINCT FROM $4"
	"            AND NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id)"
	"          ORDER BY a.id LIMIT $3)"
	"        UNION ALL"
	"        (SELECT a.id, a.occurred_at, a.row_hash,"
	"                a.table_name, a.row_id, a.actor, a.request_id"
	"           FROM catalog.audit_log a"
	"          WHERE a.txid = ANY ($2) AND a.id > 0 AND a.txid IS DISTINCT FROM $4"
	"            AND NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id))) c"
	" ORDER BY c.id, c.occurred_at"
	" LIMIT $3",
	4, {INT8OID, XID8ARRAYOID, INT8OID, XID8OID},
	NULL
};

/*
 * The seal row also carries the audit row's lookup keys (table_name,
 * row_id, actor, request_id), whose indexes live on audit_seal so that the
 * writers maintain none of them.  They are copied from the candidate row
 * itself, read under the pass's snapshot with its row_hash: no second
 * lookup of the audit row per seal (that join was a fifth of a pass's
 * cost), and the same values, since an audit row never changes.
 */
static ApiPlan plan_seal_insert = {
	"INSERT INTO catalog.audit_seal (seq, audit_id, occurred_at, row_hash, chain_hash,"
	"                                table_name, row_id, actor, request_id, sealed_at)"
	" SELECT *, $10 FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
	"   pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
	"   pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8),"
	"   pg_catalog.unnest($9))",
	10, {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID},
	NULL
};

static ApiPlan plan_chain_update = {
	"UPDATE catalog.audit_chain SET last_id = $1, pending = $2, sealed_at = pg_catalog.now()",
	2, {INT8OID, XID8ARRAYOID},
	NULL
};

/* Column numbers of plan_walk. */
enum
{
	W_SEQ = 1, W_AUDIT_ID, W_S_OCCURRED_AT, W_S_ROW_HASH, W_CHAIN_HASH,
	W_ID, W_OCCURRED_AT, W_XACT_AT, W_TXID, W_ACTOR, W_ROLE_NAME, W_VIA,
	W_REQUEST_ID, W_TABLE_NAME, W_ROW_ID, W_ACTION, W_OLD_VALUES,
	W_NEW_VALUES, W_ROW_HASH, W_KEYS_MATCH, W_S_SEALED_AT, W_S_TABLE_NAME,
	W_S_ROW_ID, W_S_ACTOR, W_S_REQUEST_ID
};

static ApiPlan plan_walk = {
	"SELECT s.seq, s.audit_id, s.occurred_at, s.row_hash, s.chain_hash,"
	"       a.id, a.occurred_at, a.xact_at, a.txid, a.actor, a.role_name, a.via,"
	"       a.request_id, a.table_name, a.row_id, a.action, a.old_values,"
	"       a.new_values, a.row_hash,"
	"       (s.table_name = a.table_name AND s.row_id = a.row_id"
	"        AND s.actor = a.actor AND s.request_id = a.request_id),"
	"       s.sealed_at, s.table_name, s.row_id, s.actor, s.request_id"
	"  FROM catalog.audit_seal s"
	"  LEFT JOIN catalog.audit_log a ON a.id = s.audit_id AND a.occurred_at = s.occurred_at"
	"                              AND s.audit_id > 0"
	" ORDER BY s.seq",
	0, {InvalidOid},
	NULL
};

/* The prune links (audit.h), in seq order. */
static ApiPlan plan_prunes = {
	"SELECT seq, audit_id, occurred_at, row_id, sealed_at, table_name, actor,"
	"       request_id, row_hash"
	"  FROM catalog.audit_seal WHERE audit_id < 0 ORDER BY seq",
	0, {InvalidOid},
	NULL
};

/*
 * The partitions of catalog.audit_log, as a list of OIDs in text: compared
 * under two snapshots by verify_snapshot.  By name, not by a regclass
 * constant, which a kept plan would keep after the extension is dropped
 * and created again.
 */
static ApiPlan plan_partitions = {
	"SELECT pg_catalog.array_agg(i.inhrelid ORDER BY i.inhrelid)::pg_catalog.text"
	"  FROM pg_catalog.pg_inherits i"
	"  JOIN pg_catalog.pg_class c ON c.oid = i.inhparent"
	"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relname = 'audit_log' AND n.nspname = 'catalog'",
	0, {InvalidOid},
	NULL
};

/*
 * Whether a row of the month [$1, $2) sealed before the prune link $3
 * still exists: then the month was not dropped, some of its rows were
 * deleted.  Read from audit_log, whose partitions the range prunes (a
 * dropped month has none, or one for rows that came late, sealed after
 * the link), so a valid link costs next to nothing.
 */
static ApiPlan plan_prune_rows = {
	"SELECT EXISTS (SELECT 1 FROM catalog.audit_log a"
	"                WHERE a.occurred_at >= $1 AND a.occurred_at < $2"
	"                  AND EXISTS (SELECT 1 FROM catalog.audit_seal s"
	"                               WHERE s.audit_id = a.id AND s.occurred_at = a.occurred_at"
	"                                 AND s.audit_id > 0 AND s.seq < $3))",
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID},
	NULL
};

/*
 * How far in the future a prune link's stamp may be when verified: the
 * clocks of the primary that sealed and of the server that verifies may
 * differ a little.
 */
#define PRUNE_CLOCK_SKEW		(60 * USECS_PER_SEC)

/*
 * Audit rows without the seal of that very row: how many, and the lowest
 * id of those that appeared inside the sealed history (their id is sealed
 * already, or at most last_id while their transaction is not pending, or
 * not positive: the sequence never gives one, and a row keyed like a prune
 * link (-seq) would otherwise pass for that link's).
 * Without the bookkeeping row (deleted by hand) every unsealed row counts
 * as inside: a cross join would find no row at all and report nothing.
 */
static ApiPlan plan_unsealed = {
	"SELECT count(*),"
	"       min(a.id) FILTER (WHERE EXISTS (SELECT 1 FROM catalog.audit_seal d"
	"                                        WHERE d.audit_id = a.id)"
	"                            OR a.id <= 0 OR c.last_id IS NULL"
	"                            OR (a.id <= c.last_id AND a.txid <> ALL (c.pending)))"
	"  FROM catalog.audit_log a LEFT JOIN catalog.audit_chain c ON true"
	" WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s"
	"                    WHERE s.audit_id = a.id AND s.occurred_at = a.occurred_at"
	"                      AND s.audit_id > 0)",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_first_seal_after = {
	"SELECT seq FROM catalog.audit_seal WHERE audit_id > $1 ORDER BY seq LIMIT 1",
	1, {INT8OID},
	NULL
};

/* Outcome of one sealing pass. */
typedef struct SealResult
{
	bool		busy;			/* skipped: another pass holds the lock */
	int64		sealed;
	int64		seq;			/* head after the pass (0: empty chain) */
	uint8		head[AUDIT_HASH_LEN];
} SealResult;

/* Where and why verification stopped. */
typedef struct VerifyBreak
{
	int64		seq;
	bool		seq_null;
	int64		audit_id;
	bool		audit_id_null;
	const char *reason;
} VerifyBreak;

PGDLLEXPORT void catalog_audit_sealer_main(Datum main_arg);


/* ---------------------------------------------------------------------
 * Shared checks and small helpers
 * ---------------------------------------------------------------------
 */

/*
 * AuditRaiseOutOfRange
 *	  22023 for an integer argument outside [min, max], with the bounds in
 *	  a field-level DETAIL.
 */
void
AuditRaiseOutOfRange(const char *field, int64 min, int64 max)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be between " INT64_FORMAT " and " INT64_FORMAT, field, min, max),
			 ApiErrDetail("{\"field\": \"%s\", \"reason\": \"out_of_range\", \"min\": "
								INT64_FORMAT ", \"max\": " INT64_FORMAT "}", field, min, max)));
}

/*
 * AuditIntArg
 *	  Integer argument argno, required (22023 "required" when NULL) and in
 *	  [min, max] (AuditRaiseOutOfRange).
 */
int32
AuditIntArg(FunctionCallInfo fcinfo, int argno, const char *field, int32 min, int32 max)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		ValidateRaiseReason(field, "required");
	v = PG_GETARG_INT32(argno);
	if (v < min || v > max)
		AuditRaiseOutOfRange(field, min, max);
	return v;
}

/*
 * AuditCheckWritable
 *	  Refuse a writing audit function in a read-only transaction or on a
 *	  standby (25006) and, when it needs a fresh snapshot per statement,
 *	  under REPEATABLE READ or SERIALIZABLE (0A000).
 */
void
AuditCheckWritable(const char *function, bool fresh_snapshots)
{
	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run in a read-only transaction", function),
				 errhint("It writes: call it on the primary server (with POST under PostgREST).")));
	if (fresh_snapshots && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s requires the READ COMMITTED isolation level", function),
				 errdetail("It must see every row committed before it took its lock; a transaction snapshot taken earlier would not."),
				 errhint("Call it in a READ COMMITTED transaction (the default).")));
}

/*
 * AuditChainHash
 *	  out = the link of seal after prev (encoding: audit.h); prev NULL
 *	  means 32 zero bytes (before seq 1).  One buffer, one SHA-256 update.
 */
void
AuditChainHash(const AuditSeal *seal, const uint8 *prev, uint8 *out)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "catalog.chain.v2", 16);
	AuditPutU64(&buf, (uint64) seal->seq);
	appendBinaryStringInfo(&buf, (const char *) (prev ? prev : zero_hash), AUDIT_HASH_LEN);
	appendBinaryStringInfo(&buf, (const char *) seal->row_hash, AUDIT_HASH_LEN);
	AuditPutU64(&buf, (uint64) seal->audit_id);
	AuditPutU64(&buf, (uint64) seal->occurred_at);
	AuditPutU64(&buf, (uint64) seal->sealed_at);
	AuditPutText(&buf, seal->table_name);
	AuditPutU64(&buf, (uint64) seal->row_id);
	AuditPutText(&buf, seal->actor);
	AuditPutText(&buf, seal->request_id);
	ctx = Sha256Begin();
	Sha256Update(ctx, buf.data, buf.len);
	Sha256End(ctx, out);
	pfree(buf.data);
}

/*
 * prune_row_hash
 *	  The row_hash of the prune link of the month [start, end) (audit.h).
 */
static void
prune_row_hash(TimestampTz start, TimestampTz end, uint8 *out)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "catalog.prune.v1", 16);
	AuditPutU64(&buf, (uint64) start);
	AuditPutU64(&buf, (uint64) end);
	ctx = Sha256Begin();
	Sha256Update(ctx, buf.data, buf.len);
	Sha256End(ctx, out);
	pfree(buf.data);
}

/*
 * hash_hex
 *	  32 bytes as 64 lower-case hex digits, palloc'd.
 */
static char *
hash_hex(const uint8 *h)
{
	char	   *s = palloc(AUDIT_HASH_LEN * 2 + 1);

	s[hex_encode((const char *) h, AUDIT_HASH_LEN, s)] = '\0';
	return s;
}

/* The value of one hex digit, or -1. */
static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * hash_of
 *	  A bytea column of the current SPI row as a 32-byte hash: false when it
 *	  is NULL or of another length.  Points into the (detoasted) value.
 */
static bool
hash_of(HeapTuple tup, TupleDesc desc, int col, const uint8 **out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != AUDIT_HASH_LEN)
		return false;
	*out = (const uint8 *) VARDATA_ANY(b);
	return true;
}

/*
 * hash_datum
 *	  A palloc'd bytea holding h.
 */
static Datum
hash_datum(const uint8 *h)
{
	bytea	   *b = palloc(VARHDRSZ + AUDIT_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + AUDIT_HASH_LEN);
	memcpy(VARDATA(b), h, AUDIT_HASH_LEN);
	return PointerGetDatum(b);
}

/*
 * custom_plan
 *	  Like ApiGetPlan, but always planned for the actual parameter values
 *	  (a generic plan would not know how selective "id > last_id" is).
 */
static SPIPlanPtr
custom_plan(ApiPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes,
											  CURSOR_OPT_CUSTOM_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare_cursor failed for \"%s\": %s",
				 p->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		p->plan = plan;
	}
	return p->plan;
}

/*
 * read_head
 *	  The last seal (under the active snapshot when read_only): seq and
 *	  chain hash, plus audit_id and sealed_at when asked.  An empty chain
 *	  gives seq 0 and zeros, and false.  Connected to SPI.
 */
static bool
read_head(bool read_only, int64 *seq, uint8 *hash, int64 *audit_id, TimestampTz *sealed_at)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	const uint8 *h;

	*seq = 0;
	memset(hash, 0, AUDIT_HASH_LEN);
	if (ApiExecute(&plan_head, NULL, NULL, read_only, 1) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (!hash_of(tup, desc, 2, &h))
		elog(ERROR, "the last seal has a chain hash of the wrong length");
	memcpy(hash, h, AUDIT_HASH_LEN);
	if (audit_id)
		*audit_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	if (sealed_at)
		*sealed_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * push_head
 *	  Push key: {"seq": n, "hash": hex}.
 */
static void
push_head(JsonbParseState **st, const char *key, int64 seq, const uint8 *hash)
{
	DocPushKey(st, key);
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(st, "seq", seq);
	DocPushText(st, "hash", DocCString(hash_hex(hash)));
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* ---------------------------------------------------------------------
 * Sealing
 * ---------------------------------------------------------------------
 */

/*
 * widen_xid
 *	  The FullTransactionId of xid, a transaction id of a snapshot taken
 *	  before next was read (as xid8funcs.c's widen_snapshot_xid).
 */
static FullTransactionId
widen_xid(TransactionId xid, FullTransactionId next)
{
	uint32		epoch = EpochFromFullTransactionId(next);

	if (!TransactionIdIsNormal(xid))
		return FullTransactionIdFromEpochAndXid(0, xid);
	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/* qsort comparator for FullTransactionIds. */
static int
fxid_cmp(const void *a, const void *b)
{
	uint64		x = U64FromFullTransactionId(*(const FullTransactionId *) a);
	uint64		y = U64FromFullTransactionId(*(const FullTransactionId *) b);

	return (x > y) - (x < y);
}

/*
 * snapshot_pending
 *	  The top-level transactions that snap does not see as completed and
 *	  that may have drawn an audit id before snap was taken, as an xid8[]
 *	  datum (sorted): its xip, and every xid from its xmax up to the next
 *	  xid read now (see the file header), and own (when valid): the
 *	  caller's own transaction, which a snapshot leaves out of its xip
 *	  although it is in progress.  Every other id of the caller's own
 *	  transaction is left out: the chain's lock may have given it (and a
 *	  savepoint's subtransaction) an id in [xmax, next), and audit rows
 *	  carry the top-level id only, which own names when it drew any.  Call
 *	  right after taking snap.
 */
static Datum
snapshot_pending(Snapshot snap, FullTransactionId own)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint64		from = U64FromFullTransactionId(widen_xid(snap->xmax, next));
	uint64		to = U64FromFullTransactionId(next);
	uint64		span = to > from ? to - from : 0;
	FullTransactionId *ids;
	Datum	   *elems;
	int			n = 0;
	int			m = 0;
	int			i;
	uint64		u;

	if (span > PENDING_MAX || (uint64) snap->xcnt + span > PENDING_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many transactions in progress to seal the audit log"),
				 errdetail("%u in progress and " UINT64_FORMAT " more not yet completed; the limit is %d.",
						   snap->xcnt, span, PENDING_MAX),
				 errhint("Retry when fewer transactions are open.")));

	ids = palloc(sizeof(FullTransactionId) * (snap->xcnt + span + 1));
	if (FullTransactionIdIsValid(own))
		ids[n++] = own;
	for (i = 0; i < (int) snap->xcnt; i++)
		if (TransactionIdIsNormal(snap->xip[i]))
			ids[n++] = widen_xid(snap->xip[i], next);
	for (u = from; u < to; u++)
	{
		FullTransactionId f = FullTransactionIdFromU64(u);

		if (TransactionIdIsNormal(XidFromFullTransactionId(f)) &&
			!TransactionIdIsCurrentTransactionId(XidFromFullTransactionId(f)))
			ids[n++] = f;
	}
	qsort(ids, n, sizeof(FullTransactionId), fxid_cmp);

	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (i == 0 || !FullTransactionIdEquals(ids[i], ids[i - 1]))
			elems[m++] = FullTransactionIdGetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, m, XID8OID, sizeof(FullTransactionId),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * merge_pending
 *	  The union of two sorted xid8[] datums, sorted, without duplicates
 *	  (at most PENDING_MAX, as snapshot_pending).
 */
static Datum
merge_pending(Datum a, Datum b)
{
	Datum	   *ea;
	Datum	   *eb;
	bool	   *na;
	bool	   *nb;
	int			ca;
	int			cb;
	int			i = 0;
	int			j = 0;
	int			m = 0;
	Datum	   *out;

	deconstruct_array(DatumGetArrayTypeP(a), XID8OID, sizeof(FullTransactionId),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ea, &na, &ca);
	deconstruct_array(DatumGetArrayTypeP(b), XID8OID, sizeof(FullTransactionId),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &eb, &nb, &cb);
	out = palloc(sizeof(Datum) * Max(ca + cb, 1));
	while (i < ca || j < cb)
	{
		Datum		next;

		if (j >= cb || (i < ca &&
						U64FromFullTransactionId(DatumGetFullTransactionId(ea[i])) <=
						U64FromFullTransactionId(DatumGetFullTransactionId(eb[j]))))
			next = ea[i++];
		else
			next = eb[j++];
		if (m == 0 || !FullTransactionIdEquals(DatumGetFullTransactionId(out[m - 1]),
											   DatumGetFullTransactionId(next)))
			out[m++] = next;
	}
	if (m > PENDING_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many transactions in progress to seal the audit log"),
				 errdetail("%d transactions to follow; the limit is %d.", m, PENDING_MAX),
				 errhint("Retry when fewer transactions are open.")));
	return PointerGetDatum(construct_array(out, m, XID8OID, sizeof(FullTransactionId),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * key_col
 *	  Column col of a candidate row (a lookup key, NOT NULL in audit_log),
 *	  or an error when it is NULL.  Points into the tuple: the caller copies
 *	  what it keeps past SPI_freetuptable.
 */
static Datum
key_col(HeapTuple tup, TupleDesc desc, int col, int64 id)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	if (isnull)
		elog(ERROR, "audit row %lld has a NULL %s", (long long) id,
			 NameStr(TupleDescAttr(desc, col - 1)->attname));
	return d;
}

/*
 * insert_seals
 *	  Chain seals[0..n-1] (seq, audit_id, the keys and row_hash set) after
 *	  prev, all sealed at sealed_at, and insert them.  Advances prev to the
 *	  last link.  Allocates in the current memory context.
 */
static void
insert_seals(AuditSeal *seals, int n, TimestampTz sealed_at, uint8 *prev)
{
	Datum	   *cols[9];
	Datum		args[10];
	int			c;

	for (c = 0; c < 9; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		AuditSeal  *s = &seals[i];
		uint8		chain[AUDIT_HASH_LEN];

		s->sealed_at = sealed_at;
		AuditChainHash(s, prev, chain);
		memcpy(prev, chain, AUDIT_HASH_LEN);

		cols[0][i] = Int64GetDatum(s->seq);
		cols[1][i] = Int64GetDatum(s->audit_id);
		cols[2][i] = TimestampTzGetDatum(s->occurred_at);
		cols[3][i] = hash_datum(s->row_hash);
		cols[4][i] = hash_datum(chain);
		cols[5][i] = CStringGetTextDatum(s->table_name);
		cols[6][i] = Int64GetDatum(s->row_id);
		cols[7][i] = CStringGetTextDatum(s->actor);
		cols[8][i] = CStringGetTextDatum(s->request_id);
	}
	args[0] = PointerGetDatum(construct_array(cols[0], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(cols[1], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(cols[2], n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(cols[3], n, BYTEAOID, -1, false, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_array(cols[4], n, BYTEAOID, -1, false, TYPALIGN_INT));
	args[5] = PointerGetDatum(construct_array(cols[5], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[6] = PointerGetDatum(construct_array(cols[6], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[7] = PointerGetDatum(construct_array(cols[7], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[8] = PointerGetDatum(construct_array(cols[8], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[9] = TimestampTzGetDatum(sealed_at);
	if (ApiExecute(&plan_seal_insert, args, NULL, false, 0) != n)
		elog(ERROR, "sealing inserted fewer rows than it chained");
}

/*
 * seal_batch
 *	  Chain and insert the rows of the current SPI tuptable (candidates in
 *	  id order), from *seq + 1 on after prev.  Advances *seq and prev, and
 *	  *max_id.  Allocates in the current memory context (the caller resets
 *	  it per batch).  The seals are stamped with the transaction's start
 *	  (now(), as before the stamp was part of the link).
 */
static void
seal_batch(int64 *seq, uint8 *prev, int64 *max_id)
{
	uint64		n = SPI_processed;
	TupleDesc	desc = SPI_tuptable->tupdesc;
	AuditSeal  *seals = palloc(sizeof(AuditSeal) * n);
	uint64		i;

	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		AuditSeal  *s = &seals[i];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		const uint8 *row_hash;
		uint8	   *copy;

		if (!hash_of(tup, desc, 3, &row_hash))
			elog(ERROR, "audit row %lld has a row hash of the wrong length", (long long) id);
		/* the tuptable is freed before the insert */
		copy = palloc(AUDIT_HASH_LEN);
		memcpy(copy, row_hash, AUDIT_HASH_LEN);
		s->seq = ++(*seq);
		s->audit_id = id;
		s->occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		s->row_hash = copy;
		/* TextDatumGetCString copies: the tuptable is freed before the insert */
		s->table_name = TextDatumGetCString(key_col(tup, desc, 4, id));
		s->row_id = DatumGetInt64(key_col(tup, desc, 5, id));
		s->actor = TextDatumGetCString(key_col(tup, desc, 6, id));
		s->request_id = TextDatumGetCString(key_col(tup, desc, 7, id));
		*max_id = Max(*max_id, id);
	}
	SPI_freetuptable(SPI_tuptable);
	/*
	 * The time of this batch, not of the transaction's start: a session's
	 * audit_seal() late in a long transaction would otherwise stamp seals
	 * before the rows they seal were written.
	 */
	insert_seals(seals, (int) n, GetCurrentTimestamp(), prev);
}

/*
 * AuditChainLock
 *	  Take the sealer's lock (the row of catalog.audit_chain, FOR UPDATE):
 *	  no sealing pass runs until the caller's transaction ends.  Connected
 *	  to SPI.  Taken first, before any lock on the audit tables, as a pass
 *	  takes it.
 */
void
AuditChainLock(void)
{
	if (ApiExecute(&plan_chain_lock, NULL, NULL, false, 0) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the bookkeeping row of catalog.audit_chain is missing"),
				 errhint("Restore it: INSERT INTO catalog.audit_chain DEFAULT VALUES (the next pass then looks at every unsealed row).")));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * AuditChainPrune
 *	  Append the prune link of the month [month_start, month_end), dropped
 *	  at dropped_at (audit.h).  The caller holds AuditChainLock and drops
 *	  the month's partition in the same transaction; connected to SPI.
 */
void
AuditChainPrune(TimestampTz month_start, TimestampTz month_end, TimestampTz dropped_at)
{
	AuditSeal	s;
	uint8		prev[AUDIT_HASH_LEN];
	uint8		row_hash[AUDIT_HASH_LEN];
	int64		seq;

	/* a fresh snapshot (not read-only): the head as the lock holder sees it */
	read_head(false, &seq, prev, NULL, NULL);
	prune_row_hash(month_start, month_end, row_hash);
	s.seq = seq + 1;
	s.audit_id = -s.seq;
	s.occurred_at = month_start;
	s.row_hash = row_hash;
	s.table_name = AUDIT_PRUNE_TABLE;
	s.row_id = (int64) month_end;
	s.actor = "";
	s.request_id = "";
	insert_seals(&s, 1, dropped_at, prev);
}

/*
 * seal_plan_settings
 *	  Inside the pass's GUC level: no sequential scan, hash join or merge
 *	  join.  A pass reads only the rows above last_id and those of a few
 *	  pending transactions, and probes audit_seal once per candidate: index
 *	  work, proportional to the rows it seals.  The planner would pick a
 *	  scan of both whole tables (a hash anti join) whenever it has no
 *	  statistics for the month's partition (a new month's partition before
 *	  its first ANALYZE, or autovacuum off): it then takes a third of the
 *	  table for "id > last_id".  That made every pass cost the size of the
 *	  log, the sealer the main cost of auditing.  The settings only raise
 *	  the cost of those paths, so a pass still has a plan without the
 *	  indexes (it is then slow, not wrong).  The candidates are planned at
 *	  every pass (custom plan).  The other plans a pass runs (the chain
 *	  lock, the head, the seal insert's join to audit_log by key, the
 *	  bookkeeping update) are kept, and one first planned inside a pass
 *	  keeps these settings: each is a single-row or key lookup, whose plan
 *	  they do not change.  No parallel workers and no
 *	  JIT either: a pass is many short index probes, where starting workers
 *	  or compiling expressions costs more than the work (the cost estimates
 *	  without statistics crossed both thresholds).
 */
static void
seal_plan_settings(void)
{
	static const char *const settings[][2] = {
		{"enable_seqscan", "off"},
		{"enable_hashjoin", "off"},
		{"enable_mergejoin", "off"},
		{"max_parallel_workers_per_gather", "0"},
		{"jit", "off"},
	};

	for (int i = 0; i < (int) lengthof(settings); i++)
		(void) set_config_option(settings[i][0], settings[i][1], PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * seal_pass
 *	  One pass of the sealer (see the file header): seal up to max_rows
 *	  committed, unsealed audit rows.  The caller has checked that the
 *	  transaction is read-write and READ COMMITTED, and runs as the owner
 *	  of the audit tables.
 *
 *	  The pass's snapshot shows the caller's own transaction's rows (a
 *	  plain SQL session that wrote, then called audit_seal() before its
 *	  COMMIT): they are not committed, so they are left out and the
 *	  transaction is recorded as pending, like any other in progress.
 *	  Sealed then, they were chained ahead of rows that committed before
 *	  them, with a sealed_at before their own commit.
 */
static void
seal_pass(int max_rows, bool skip_locked, SealResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext batch_cxt;
	int64		last_id;
	int64		max_id = 0;
	Datum		old_pending;
	Datum		new_pending;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	bool		isnull;
	Portal		portal;
	bool		prev_internal;
	volatile int updated = 0;

	/*
	 * The worker's pass (skip_locked) waits at most catalog.audit_lock_timeout
	 * for the audit tables: a session holding one of them (an admin's
	 * audit_maintain() left open, a LOCK TABLE) would otherwise hold the
	 * pass, with the chain's lock and a snapshot, for as long, and stop
	 * sealing and maintenance alike.  Its pass then fails with 55P03 and is
	 * tried again after WORKER_SEAL_RETRY_MS.  A session's own audit_seal()
	 * waits as any statement does (its own lock_timeout).
	 */
	int			nest = AuditGucBegin(skip_locked);

	seal_plan_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* a. one pass at a time */
	res->busy = false;
	if (!skip_locked)
		(void) ApiExecute(&plan_chain_lock, NULL, NULL, false, 0);
	else if (ApiExecute(&plan_chain_lock_skip, NULL, NULL, false, 0) == 0)
	{
		bool		exists;

		SPI_freetuptable(SPI_tuptable);
		exists = ApiExecute(&plan_chain_exists, NULL, NULL, false, 0) == 1;
		if (exists)
		{
			/* there, and locked: another pass or a retention drop runs */
			SPI_freetuptable(SPI_tuptable);
			SPI_finish();
			AuditGucEnd(nest);
			res->busy = true;
			res->sealed = 0;
			res->seq = 0;
			memset(res->head, 0, AUDIT_HASH_LEN);
			return;
		}
		/* missing: SPI_processed is 0, refused below */
	}
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the bookkeeping row of catalog.audit_chain is missing"),
				 errhint("Restore it: INSERT INTO catalog.audit_chain DEFAULT VALUES (the next pass then looks at every unsealed row).")));
	last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull));
	old_pending = ApiResultDatum(0, 2, &isnull);
	if (isnull)
		old_pending = PointerGetDatum(construct_empty_array(XID8OID));
	SPI_freetuptable(SPI_tuptable);

	/*
	 * b. one snapshot, taken after the lock, for every read of the pass.
	 * The lock gave this transaction its id if it had none (and a
	 * savepoint's subtransaction one of its own): then it drew no audit id
	 * before the pass (an audit row needs a transaction id), and every row
	 * it writes after the pass draws an id above every id the pass saw, so
	 * above last_id: it is no pending transaction.  Those ids lie in
	 * [xmax, next) of the snapshot, and left in, every pass recorded
	 * itself as pending: a row forged with an id at or below last_id and
	 * that pass's txid was then neither refused by verify
	 * (unsealed_in_sealed_range) nor kept from the next pass.
	 * snapshot_pending keeps own, and only own, of this transaction's ids.
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	new_pending = snapshot_pending(GetActiveSnapshot(), own);
	read_head(true, &res->seq, res->head, NULL, NULL);

	/* c. append the candidates, a batch at a time */
	res->sealed = 0;
	batch_cxt = AllocSetContextCreate(cxt, "audit seal batch", ALLOCSET_DEFAULT_SIZES);
	args[0] = Int64GetDatum(last_id);
	args[1] = old_pending;
	args[2] = Int64GetDatum((int64) max_rows);
	args[3] = FullTransactionIdGetDatum(own);
	nulls[3] = FullTransactionIdIsValid(own) ? ' ' : 'n';
	portal = SPI_cursor_open(NULL, custom_plan(&plan_candidates), args, nulls, true);
	for (;;)
	{
		MemoryContext old;
		uint64		n;

		SPI_cursor_fetch(portal, true, SEAL_BATCH);
		n = SPI_processed;
		if (n == 0)
		{
			SPI_freetuptable(SPI_tuptable);
			break;
		}
		MemoryContextReset(batch_cxt);
		old = MemoryContextSwitchTo(batch_cxt);
		seal_batch(&res->seq, res->head, &max_id);
		MemoryContextSwitchTo(old);
		res->sealed += n;
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);

	/*
	 * d. what the next pass looks at.  A pass cut at max_rows leaves the
	 * candidates above max_id.  When max_id is at or above last_id, they
	 * are all above max_id, which becomes last_id.  When it is below (the
	 * pass sealed only rows of pending transactions, below last_id),
	 * last_id stays, never moving back (verify's check for rows forged in
	 * the sealed range reads it), and the old pending transactions stay
	 * pending, so that their rows left above max_id remain candidates.
	 */
	if (res->sealed < max_rows)
		last_id = Max(last_id, max_id);
	else if (max_id >= last_id)
		last_id = max_id;
	else
		new_pending = merge_pending(old_pending, new_pending);
	args[0] = Int64GetDatum(last_id);
	args[1] = new_pending;
	prev_internal = AuditSetInternalWrite(true);
	PG_TRY();
	{
		updated = ApiExecute(&plan_chain_update, args, NULL, false, 0);
	}
	PG_CATCH();
	{
		AuditSetInternalWrite(prev_internal);
		PG_RE_THROW();
	}
	PG_END_TRY();
	AuditSetInternalWrite(prev_internal);
	if (updated != 1)
		elog(ERROR, "catalog.audit_chain was not updated");

	PopActiveSnapshot();
	SPI_finish();
	AuditGucEnd(nest);
}

/*
 * seal_result_jsonb
 *	  {"sealed": n, "seq": head seq, "head": hex}.
 */
static Jsonb *
seal_result_jsonb(const SealResult *res)
{
	JsonbParseState *st = NULL;
	JsonbValue *v;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(&st, "sealed", res->sealed);
	DocPushInt(&st, "seq", res->seq);
	DocPushText(&st, "head", DocCString(hash_hex(res->head)));
	v = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(v);
}

/*
 * catalog_audit_seal
 *	  SQL: catalog_api.audit_seal(max_rows integer DEFAULT 10000) -> jsonb.
 *	  Seals up to max_rows (1 to 1,000,000) committed audit rows; returns
 *	  {"sealed": n, "seq": head seq, "head": head hash as hex}.
 */
PG_FUNCTION_INFO_V1(catalog_audit_seal);
Datum
catalog_audit_seal(PG_FUNCTION_ARGS)
{
	SealResult	res;
	int32		max_rows;

	RateLimitEnter(RLF_AUDIT_SEAL);
	max_rows = AuditIntArg(fcinfo, 0, "max_rows", 1, 1000000);
	AuditCheckWritable("audit_seal", true);

	seal_pass(max_rows, false, &res);
	PG_RETURN_JSONB_P(seal_result_jsonb(&res));
}

/* ---------------------------------------------------------------------
 * Verification
 * ---------------------------------------------------------------------
 */

/*
 * text_col
 *	  A text column of an SPI row as a C string (NULL for SQL NULL).
 */
static char *
text_col(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * jsonb_col
 *	  A jsonb column of an SPI row, detoasted (NULL for SQL NULL).
 */
static Jsonb *
jsonb_col(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/*
 * walk_row_hash
 *	  AuditRowHash of the audit row in the columns of a plan_walk row.
 *	  false when a NOT NULL column is NULL (cannot match any seal then).
 */
static bool
walk_row_hash(HeapTuple tup, TupleDesc desc, uint8 *out)
{
	AuditRow	r;
	bool		n1,
				n2,
				n3,
				n4,
				n5;

	r.id = DatumGetInt64(SPI_getbinval(tup, desc, W_ID, &n1));
	r.occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, W_OCCURRED_AT, &n2));
	r.xact_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, W_XACT_AT, &n3));
	r.txid = DatumGetFullTransactionId(SPI_getbinval(tup, desc, W_TXID, &n4));
	r.row_id = DatumGetInt64(SPI_getbinval(tup, desc, W_ROW_ID, &n5));
	r.actor = text_col(tup, desc, W_ACTOR);
	r.role_name = text_col(tup, desc, W_ROLE_NAME);
	r.via = text_col(tup, desc, W_VIA);
	r.request_id = text_col(tup, desc, W_REQUEST_ID);
	r.table_name = text_col(tup, desc, W_TABLE_NAME);
	r.action = text_col(tup, desc, W_ACTION);
	r.old_values = jsonb_col(tup, desc, W_OLD_VALUES);
	r.new_values = jsonb_col(tup, desc, W_NEW_VALUES);
	if (n1 || n2 || n3 || n4 || n5 || r.actor == NULL || r.role_name == NULL ||
		r.via == NULL || r.request_id == NULL || r.table_name == NULL || r.action == NULL)
		return false;
	AuditRowHash(&r, out);
	return true;
}

/* State of a walk over the seals. */
/* A prune link, as verification sees it. */
typedef struct VerifyPrune
{
	int64		seq;
	TimestampTz start;			/* the month [start, end) */
	TimestampTz end;
	bool		valid;			/* well formed, and no row of its month is left */
} VerifyPrune;

typedef struct VerifyWalk
{
	VerifyPrune *prunes;		/* in seq order */
	int			nprunes;
	int64		expect;			/* next seq */
	uint8		prev[AUDIT_HASH_LEN];
	int64		checked;
	int64		pruned;
	bool		has_anchor;
	int64		anchor_seq;
	uint8		anchor[AUDIT_HASH_LEN];
	VerifyBreak brk;			/* reason NULL while intact */
} VerifyWalk;

/*
 * load_prunes
 *	  Read the prune links into w and decide which are valid: well formed
 *	  (audit.h: audit_id = -seq, the retention table's name, empty actor
 *	  and request id, the row_hash of its month), naming exactly one UTC
 *	  calendar month (a partition's span: a link over a microsecond would
 *	  prune one row), stamped after that month ended and not in the future,
 *	  and no row of its month sealed before it is left.  Whether a link is
 *	  also in the chain is checked when the walk reaches it.  Allocates in
 *	  the current memory context; connected to SPI.
 */
static void
load_prunes(VerifyWalk *w)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		n;

	if (ApiExecute(&plan_prunes, NULL, NULL, true, 0) < 0)
		elog(ERROR, "prune links could not be read");
	n = SPI_processed;
	w->prunes = palloc0(sizeof(VerifyPrune) * Max(n, 1));
	w->nprunes = (int) n;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		VerifyPrune *p = &w->prunes[i];
		bool		n1,
					n2,
					n3,
					n4,
					n5;
		int64		audit_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &n1));
		TimestampTz sealed_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &n2));
		char	   *table_name = text_col(tup, desc, 6);
		char	   *actor = text_col(tup, desc, 7);
		char	   *request_id = text_col(tup, desc, 8);
		const uint8 *row_hash;
		uint8		expect[AUDIT_HASH_LEN];

		p->seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &n3));
		p->start = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &n4));
		p->end = (TimestampTz) DatumGetInt64(SPI_getbinval(tup, desc, 4, &n5));
		p->valid = !(n1 || n2 || n3 || n4 || n5) &&
			table_name != NULL && actor != NULL && request_id != NULL &&
			audit_id == -p->seq &&
			strcmp(table_name, AUDIT_PRUNE_TABLE) == 0 &&
			actor[0] == '\0' && request_id[0] == '\0' &&
			AuditIsMonth(p->start, p->end) && p->end <= sealed_at &&
			sealed_at <= now + PRUNE_CLOCK_SKEW &&
			hash_of(tup, desc, 9, &row_hash);
		if (p->valid)
		{
			prune_row_hash(p->start, p->end, expect);
			p->valid = memcmp(expect, row_hash, AUDIT_HASH_LEN) == 0;
		}
	}
	SPI_freetuptable(SPI_tuptable);

	for (int i = 0; i < w->nprunes; i++)
	{
		VerifyPrune *p = &w->prunes[i];
		Datum		args[3];
		bool		isnull;

		if (!p->valid)
			continue;
		args[0] = TimestampTzGetDatum(p->start);
		args[1] = TimestampTzGetDatum(p->end);
		args[2] = Int64GetDatum(p->seq);
		if (ApiExecute(&plan_prune_rows, args, NULL, true, 1) != 1)
			elog(ERROR, "EXISTS returned no row");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			p->valid = false;
		SPI_freetuptable(SPI_tuptable);
	}
}

/*
 * pruned_by
 *	  Whether a valid prune link after seq covers ts: the audit row sealed
 *	  at seq went with its month's partition.
 */
static bool
pruned_by(const VerifyWalk *w, int64 seq, TimestampTz ts)
{
	for (int i = w->nprunes - 1; i >= 0 && w->prunes[i].seq > seq; i--)
	{
		const VerifyPrune *p = &w->prunes[i];

		if (p->valid && p->start <= ts && ts < p->end)
			return true;
	}
	return false;
}

/*
 * prune_valid
 *	  Whether the prune link at seq was found valid by load_prunes.
 */
static bool
prune_valid(const VerifyWalk *w, int64 seq)
{
	int			lo = 0,
				hi = w->nprunes - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (w->prunes[mid].seq == seq)
			return w->prunes[mid].valid;
		if (w->prunes[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/*
 * walk_seal
 *	  The seal's own columns of a plan_walk row into s; false when one is
 *	  NULL or a hash has the wrong length (no such seal can be in the chain).
 */
static bool
walk_seal(HeapTuple tup, TupleDesc desc, AuditSeal *s)
{
	bool		n1,
				n2,
				n3,
				n4,
				n5;

	s->seq = DatumGetInt64(SPI_getbinval(tup, desc, W_SEQ, &n1));
	s->audit_id = DatumGetInt64(SPI_getbinval(tup, desc, W_AUDIT_ID, &n2));
	s->occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, W_S_OCCURRED_AT, &n3));
	s->sealed_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, W_S_SEALED_AT, &n4));
	s->row_id = DatumGetInt64(SPI_getbinval(tup, desc, W_S_ROW_ID, &n5));
	s->table_name = text_col(tup, desc, W_S_TABLE_NAME);
	s->actor = text_col(tup, desc, W_S_ACTOR);
	s->request_id = text_col(tup, desc, W_S_REQUEST_ID);
	return !(n1 || n2 || n3 || n4 || n5) && s->table_name != NULL &&
		s->actor != NULL && s->request_id != NULL &&
		hash_of(tup, desc, W_S_ROW_HASH, &s->row_hash);
}

/*
 * verify_one
 *	  Check one seal (a plan_walk row) against its predecessor and its
 *	  audit row, or, for a prune link, against load_prunes' verdict; on a
 *	  break fill w->brk and return false.
 */
static bool
verify_one(VerifyWalk *w, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	int64		seq = DatumGetInt64(SPI_getbinval(tup, desc, W_SEQ, &isnull));
	int64		audit_id = DatumGetInt64(SPI_getbinval(tup, desc, W_AUDIT_ID, &isnull));
	AuditSeal	seal;
	const uint8 *seal_chain_hash;
	uint8		chain[AUDIT_HASH_LEN];
	const char *reason = NULL;

	if (seq != w->expect)
		reason = "sequence";
	else if (!walk_seal(tup, desc, &seal) ||
			 !hash_of(tup, desc, W_CHAIN_HASH, &seal_chain_hash))
		reason = "chain_mismatch";
	else if (audit_id < 0)
	{
		if (!prune_valid(w, seq))
			reason = "invalid_prune";
	}
	else
	{
		(void) SPI_getbinval(tup, desc, W_ID, &isnull);
		if (isnull)
		{
			if (pruned_by(w, seq, seal.occurred_at))
				w->pruned++;
			else
				reason = "missing_row";
		}
		else
		{
			uint8		row_hash[AUDIT_HASH_LEN];
			const uint8 *stored;

			if (!walk_row_hash(tup, desc, row_hash) ||
				memcmp(row_hash, seal.row_hash, AUDIT_HASH_LEN) != 0)
				reason = "row_modified";
			else if (!hash_of(tup, desc, W_ROW_HASH, &stored) ||
					 memcmp(stored, row_hash, AUDIT_HASH_LEN) != 0)
				reason = "row_hash_mismatch";
			else
			{
				/* the seal's copy of the lookup keys (history, by actor) */
				Datum		keys = SPI_getbinval(tup, desc, W_KEYS_MATCH, &isnull);

				if (isnull || !DatumGetBool(keys))
					reason = "lookup_mismatch";
			}
		}
	}
	if (reason == NULL)
	{
		AuditChainHash(&seal, w->prev, chain);
		if (memcmp(chain, seal_chain_hash, AUDIT_HASH_LEN) != 0)
			reason = "chain_mismatch";
		else if (w->has_anchor && seq == w->anchor_seq &&
				 memcmp(seal_chain_hash, w->anchor, AUDIT_HASH_LEN) != 0)
			reason = "anchor_mismatch";
	}

	if (reason != NULL)
	{
		w->brk.seq = seq;
		w->brk.audit_id = audit_id;
		/* a prune link stands for no audit row */
		w->brk.audit_id_null = audit_id < 0;
		w->brk.reason = reason;
		return false;
	}
	memcpy(w->prev, seal_chain_hash, AUDIT_HASH_LEN);
	w->expect++;
	w->checked++;
	return true;
}

/*
 * parse_anchor
 *	  Read the optional anchor arguments into w: both or neither (22023
 *	  "required" for the missing one), seq >= 0, hash 64 hex digits.
 */
static void
parse_anchor(FunctionCallInfo fcinfo, VerifyWalk *w)
{
	text	   *t;
	const char *p;
	int			i;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		return;
	if (PG_ARGISNULL(1))
		ValidateRaiseReason("anchor_hash", "required");
	if (PG_ARGISNULL(0))
		ValidateRaiseReason("anchor_seq", "required");
	w->anchor_seq = PG_GETARG_INT64(0);
	if (w->anchor_seq < 0)
		AuditRaiseOutOfRange("anchor_seq", 0, PG_INT64_MAX);
	t = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(t) != AUDIT_HASH_LEN * 2)
		ValidateRaiseReason("anchor_hash", "invalid_format");
	p = VARDATA_ANY(t);
	for (i = 0; i < AUDIT_HASH_LEN; i++)
	{
		int			hi = hex_digit(p[2 * i]);
		int			lo = hex_digit(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			ValidateRaiseReason("anchor_hash", "invalid_format");
		w->anchor[i] = (uint8) (hi << 4 | lo);
	}
	w->has_anchor = true;
}

/*
 * find_forged
 *	  Count the audit rows without their seal (*unsealed) and, among them,
 *	  find the lowest id that appeared inside the sealed history; fills brk
 *	  and returns true if there is one.
 */
static bool
find_forged(int64 *unsealed, VerifyBreak *brk)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		id;
	Datum		arg;

	if (ApiExecute(&plan_unsealed, NULL, NULL, true, 1) != 1)
		elog(ERROR, "count returned no row");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*unsealed = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (isnull)
		return false;

	brk->reason = "unsealed_in_sealed_range";
	brk->audit_id = id;
	brk->audit_id_null = false;
	brk->seq = 0;
	brk->seq_null = true;
	arg = Int64GetDatum(id);
	/* a forged id of 0 or below comes before no seal in particular */
	if (id > 0 && ApiExecute(&plan_first_seal_after, &arg, NULL, true, 1) == 1)
	{
		brk->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		brk->seq_null = false;
	}
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * verify_snapshot
 *	  Lock catalog.audit_log against retention and push the snapshot verify
 *	  reads under.  Connected to SPI.
 *
 *	  Retention drops a month's partition and chains its prune link in one
 *	  transaction, holding ACCESS EXCLUSIVE on catalog.audit_log (core locks
 *	  the parent of a dropped partition) until it commits.  A snapshot taken
 *	  before such a commit does not see the link, yet the log read after it
 *	  has lost the month: every sealed row of the month would look deleted
 *	  ("missing_row"), a false alarm of tampering.  So the log is locked
 *	  first (no drop can commit while the lock is held) and the snapshot is
 *	  taken after: a drop that committed before it is seen with its link.
 *	  Under REPEATABLE READ or SERIALIZABLE the transaction's snapshot may
 *	  predate the lock and cannot be replaced: if a prune link committed
 *	  since (the latest snapshot sees links the transaction's does not), the
 *	  answer would be wrong, so the call fails with PT409 and can be retried
 *	  (not 40001, which PostgREST would retry without limit).  Likewise
 *	  when the log's partitions changed since the snapshot: maintenance
 *	  that created a month's partition moved the month's rows out of the
 *	  default partition, and the walk's plan, made from the catalog as it
 *	  is now, may look for them (run-time pruning on occurred_at) only in
 *	  the new partition, where the old snapshot sees none of them.
 *	  The walk's partitions are locked again by its plan, the same mode.
 */
static char *
partition_set(void)
{
	bool		isnull;
	Datum		d;

	if (ApiExecute(&plan_partitions, NULL, NULL, true, 0) != 1)
		elog(ERROR, "the partitions of catalog.audit_log could not be read");
	d = ApiResultDatum(0, 1, &isnull);
	return isnull ? pstrdup("") : TextDatumGetCString(d);
}

static void
verify_snapshot(void)
{
	uint64		mine;
	uint64		latest;
	char	   *parts_mine;
	char	   *parts_latest;

	(void) RangeVarGetRelid(makeRangeVar("catalog", "audit_log", -1), AccessShareLock, false);
	if (!IsolationUsesXactSnapshot())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		return;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	if (ApiExecute(&plan_prunes, NULL, NULL, true, 0) < 0)
		elog(ERROR, "prune links could not be read");
	mine = SPI_processed;
	SPI_freetuptable(SPI_tuptable);
	parts_mine = partition_set();
	PushActiveSnapshot(GetLatestSnapshot());
	if (ApiExecute(&plan_prunes, NULL, NULL, true, 0) < 0)
		elog(ERROR, "prune links could not be read");
	latest = SPI_processed;
	SPI_freetuptable(SPI_tuptable);
	parts_latest = partition_set();
	PopActiveSnapshot();
	if (latest != mine || strcmp(parts_mine, parts_latest) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CATALOG_CONFLICT),
				 errmsg("could not verify the audit chain under this transaction's snapshot"),
				 latest != mine ?
				 errdetail("Retention dropped a month of the audit log after the snapshot was taken: its rows would look deleted.") :
				 errdetail("Maintenance changed the partitions of the audit log after the snapshot was taken: rows it moved would look deleted."),
				 errhint("Retry the transaction, or call audit_verify in a READ COMMITTED transaction.")));
	pfree(parts_mine);
	pfree(parts_latest);
}

/*
 * catalog_audit_verify
 *	  SQL: catalog_api.audit_verify(anchor_seq bigint DEFAULT NULL,
 *	  anchor_hash text DEFAULT NULL) -> jsonb.  Walks the chain and stops at
 *	  the first broken link; see the file header.  Returns {"ok", "checked"
 *	  (seals walked without a break, pruned ones included), "pruned",
 *	  "unsealed", "first_broken": {"seq", "audit_id", "reason"} or null,
 *	  "head": {"seq", "hash"}}.  Reasons: sequence, missing_row,
 *	  row_modified, row_hash_mismatch, lookup_mismatch, chain_mismatch,
 *	  invalid_prune (audit_id null), anchor_mismatch,
 *	  truncated (seq: the first missing one, audit_id null),
 *	  unsealed_in_sealed_range (seq: the first seal of a higher audit id,
 *	  null if none).
 *	  Everything is read under one snapshot taken after the log is locked
 *	  against retention (verify_snapshot).
 */
PG_FUNCTION_INFO_V1(catalog_audit_verify);
Datum
catalog_audit_verify(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext batch_cxt;
	VerifyWalk	w;
	Portal		portal;
	bool		intact = true;
	int64		unsealed = 0;
	int64		head_seq;
	uint8		head[AUDIT_HASH_LEN];
	JsonbParseState *st = NULL;
	JsonbValue *v;
	int			nest;

	RateLimitEnter(RLF_AUDIT_VERIFY);
	memset(&w, 0, sizeof(w));
	parse_anchor(fcinfo, &w);
	w.expect = 1;

	nest = AuditGucBegin(false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	verify_snapshot();
	load_prunes(&w);

	/* seq 0 is the empty chain, whose hash is all zeros */
	if (w.has_anchor && w.anchor_seq == 0 &&
		memcmp(w.anchor, zero_hash, AUDIT_HASH_LEN) != 0)
	{
		w.brk.seq = 0;
		w.brk.audit_id_null = true;
		w.brk.reason = "anchor_mismatch";
		intact = false;
	}

	batch_cxt = AllocSetContextCreate(cxt, "audit verify batch", ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open(NULL, ApiGetPlan(&plan_walk), NULL, NULL, true);
	while (intact)
	{
		MemoryContext old;
		SPITupleTable *batch;
		uint64		n;
		uint64		i;

		/* kept apart from the batch context it is freed in */
		SPI_cursor_fetch(portal, true, VERIFY_BATCH);
		batch = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
		{
			SPI_freetuptable(batch);
			break;
		}
		MemoryContextReset(batch_cxt);
		old = MemoryContextSwitchTo(batch_cxt);
		for (i = 0; i < n && intact; i++)
			intact = verify_one(&w, batch->vals[i], batch->tupdesc);
		MemoryContextSwitchTo(old);
		SPI_freetuptable(batch);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);

	if (intact && w.has_anchor && w.anchor_seq >= w.expect)
	{
		w.brk.seq = w.expect;
		w.brk.audit_id_null = true;
		w.brk.reason = "truncated";
		intact = false;
	}
	{
		VerifyBreak forged;

		if (find_forged(&unsealed, &forged) && intact)
		{
			w.brk = forged;
			intact = false;
		}
	}
	read_head(true, &head_seq, head, NULL, NULL);
	PopActiveSnapshot();
	SPI_finish();
	AuditGucEnd(nest);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushBool(&st, "ok", intact);
	DocPushInt(&st, "checked", w.checked);
	DocPushInt(&st, "pruned", w.pruned);
	DocPushInt(&st, "unsealed", unsealed);
	DocPushKey(&st, "first_broken");
	if (intact)
	{
		JsonbValue	null;

		null.type = jbvNull;
		pushJsonbValue(&st, WJB_VALUE, &null);
	}
	else
	{
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		if (w.brk.seq_null)
			DocPushText(&st, "seq", DocCString(NULL));
		else
			DocPushInt(&st, "seq", w.brk.seq);
		if (w.brk.audit_id_null)
			DocPushText(&st, "audit_id", DocCString(NULL));
		else
			DocPushInt(&st, "audit_id", w.brk.audit_id);
		DocPushText(&st, "reason", DocCString(w.brk.reason));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	push_head(&st, "head", head_seq, head);
	v = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(v));
}

/*
 * catalog_audit_head
 *	  SQL: catalog_api.audit_head() -> jsonb.  {"seq", "hash" (hex),
 *	  "audit_id", "sealed_at"} of the last seal; seq 0, 64 zeros and nulls
 *	  for an empty chain.
 */
PG_FUNCTION_INFO_V1(catalog_audit_head);
Datum
catalog_audit_head(PG_FUNCTION_ARGS)
{
	int64		seq;
	uint8		hash[AUDIT_HASH_LEN];
	int64		audit_id = 0;
	TimestampTz sealed_at = 0;
	bool		found;
	int			nest;
	JsonbParseState *st = NULL;
	JsonbValue *v;

	RateLimitEnter(RLF_AUDIT_HEAD);
	nest = AuditGucBegin(false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	found = read_head(true, &seq, hash, &audit_id, &sealed_at);
	SPI_finish();
	AuditGucEnd(nest);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushInt(&st, "seq", seq);
	DocPushText(&st, "hash", DocCString(hash_hex(hash)));
	if (found)
	{
		int			utc = 0;

		if (audit_id < 0)
			DocPushText(&st, "audit_id", DocCString(NULL));	/* a prune link */
		else
			DocPushInt(&st, "audit_id", audit_id);
		DocPushText(&st, "sealed_at",
					DocCString(JsonEncodeDateTime(NULL, TimestampTzGetDatum(sealed_at),
												  TIMESTAMPTZOID, &utc)));
	}
	else
	{
		DocPushText(&st, "audit_id", DocCString(NULL));
		DocPushText(&st, "sealed_at", DocCString(NULL));
	}
	v = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(v));
}

/* ---------------------------------------------------------------------
 * Background worker
 * ---------------------------------------------------------------------
 */

/*
 * AuditRegisterWorker
 *	  Register the sealer; called from _PG_init while preloading.  It
 *	  starts once recovery is over, so never on a hot standby.
 */
void
AuditRegisterWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "catalog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "catalog_audit_sealer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "catalog audit sealer");
	snprintf(worker.bgw_type, BGW_MAXLEN, "catalog audit sealer");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * elapsed
 *	  Whether ms milliseconds have passed since since_ns (ApiMonotonicNs:
 *	  the worker's periods and retries must not stall, nor fire at once,
 *	  when the wall clock is stepped).
 */
static bool
elapsed(int64 since_ns, int ms)
{
	return ApiMonotonicNs() - since_ns >= (int64) ms * NS_PER_MS;
}

/*
 * note_busy
 *	  The worker skips a pass while another session holds the chain's lock
 *	  (SKIP LOCKED); say so in the log once that has lasted a minute (an
 *	  audit_seal() or retention call left idle in its transaction stops
 *	  the sealing), and again when sealing resumes.
 */
static void
note_busy(bool busy)
{
	static int64 busy_since = 0;
	static bool said = false;

	if (!busy)
	{
		if (said)
			ereport(LOG,
					(errmsg("catalog audit sealer: the chain's lock is free again, sealing resumes")));
		busy_since = 0;
		said = false;
		return;
	}
	if (busy_since == 0)
		busy_since = ApiMonotonicNs();
	else if (!said && elapsed(busy_since, 60 * 1000))
	{
		ereport(LOG,
				(errmsg("catalog audit sealer: another session has held the chain's lock for a minute; no row is sealed until it ends"),
				 errhint("Look for a session idle in transaction after catalog_api.audit_seal() or audit_drop_partitions() in pg_stat_activity.")));
		said = true;
	}
}

/*
 * worker_pass
 *	  One transaction of the worker, as the owner of the audit tables: a
 *	  seal pass, or the partition maintenance when maintain.  Returns
 *	  whether the seal pass was full (more rows may be waiting); *ext is
 *	  the OID of the extension, InvalidOid when it is not there (then it
 *	  says so once at LOG and does nothing).  Errors propagate to
 *	  worker_job.
 */
static bool
worker_pass(bool maintain, Oid *ext)
{
	static bool said_missing = false;
	bool		full = false;
	Oid			owner;
	Oid			save_user;
	int			save_sec;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING,
						   maintain ? "catalog audit partition maintenance" : "catalog audit seal");

	owner = get_role_oid(AUDIT_OWNER_ROLE, true);
	*ext = OidIsValid(owner) ? get_extension_oid("catalog", true) : InvalidOid;
	if (!OidIsValid(*ext))
	{
		if (!said_missing)
			ereport(LOG,
					(errmsg("catalog audit sealer: extension \"catalog\" is not installed in database \"%s\"; nothing to seal",
							get_database_name(MyDatabaseId)),
					 errhint("Run CREATE EXTENSION catalog there, or set catalog.audit_seal_database.")));
		said_missing = true;
	}
	else
	{
		said_missing = false;
		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		if (maintain)
			(void) AuditMaintain(catalog_audit_months_ahead);
		else
		{
			SealResult	res;

			seal_pass(catalog_audit_seal_batch, true, &res);
			full = (res.sealed >= catalog_audit_seal_batch);
			note_busy(res.busy);
			if (res.sealed > 0)
				elog(DEBUG1, "catalog audit sealer: sealed " INT64_FORMAT " rows, head " INT64_FORMAT,
					 res.sealed, res.seq);
		}
		SetUserIdAndSecContext(save_user, save_sec);
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return full;
}

/*
 * worker_job
 *	  worker_pass in a PG_TRY: an error is written to the server log, its
 *	  transaction aborted and the worker goes on, as autovacuum's workers
 *	  and pg_cron's do.  Before, any error ended the worker: a maintenance
 *	  that kept failing (a lock it could not get within its lock_timeout
 *	  while a pg_dump ran, a stray table with a partition's name) restarted
 *	  it every 10 s and sealed one pass per restart.  FATAL (SIGTERM) still
 *	  ends it.  Returns false when the job failed.
 */
static bool
worker_job(bool maintain, Oid *ext, bool *full)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	*ext = InvalidOid;
	*full = false;
	PG_TRY();
	{
		*full = worker_pass(maintain, ext);
	}
	PG_CATCH();
	{
		/* as PostgresMain recovers from an error, for one transaction */
		HOLD_INTERRUPTS();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * worker_extension_oid
 *	  The OID of the extension in the worker's database, InvalidOid when it
 *	  is not there, read in a transaction of its own.  For a worker that
 *	  does not seal (catalog.audit_seal_interval = 0), whose seal passes
 *	  would otherwise be the ones to notice a new extension.  Catalog reads
 *	  only; an error (out of memory) ends the worker, to be restarted.
 */
static Oid
worker_extension_oid(void)
{
	Oid			ext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ext = get_extension_oid("catalog", true);
	CommitTransactionCommand();
	return ext;
}

/*
 * retry_due
 *	  Whether a job runs now: it did not fail last time, or it failed at
 *	  failed_at (ApiMonotonicNs) and wait_ms have passed since.
 */
static bool
retry_due(bool failing, int64 failed_at, int wait_ms)
{
	return !failing || elapsed(failed_at, wait_ms);
}

/*
 * catalog_audit_sealer_main
 *	  Entry point of the worker.  SIGTERM (die) ends it through
 *	  CHECK_FOR_INTERRUPTS; SIGHUP rereads the configuration, and a change
 *	  of catalog.audit_seal_database makes it exit with 1 so that the
 *	  postmaster starts it again, connected to the new database.
 */
void
catalog_audit_sealer_main(Datum main_arg)
{
	char	   *dbname;
	int64		last_maintain = 0;
	int64		maintain_failed = 0;
	int64		seal_failed = 0;
	bool		maintained = false;
	Oid			maintained_ext = InvalidOid;
	bool		maintain_failing = false;
	bool		seal_failing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	dbname = MemoryContextStrdup(TopMemoryContext,
								 catalog_audit_seal_database ? catalog_audit_seal_database : "postgres");
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);

	/*
	 * Whatever the server's defaults: fully qualified names only, and a
	 * read-write READ COMMITTED transaction per pass (seal_pass needs it).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("catalog audit sealer");

	for (;;)
	{
		bool		full = false;
		Oid			ext;

		/*
		 * A cancel (pg_cancel_backend) that arrives between jobs has
		 * nothing to cancel; left pending, CHECK_FOR_INTERRUPTS would raise
		 * it here, outside worker_job's error handling, and end the worker.
		 * One that arrives during a job cancels that job (worker_job logs
		 * it, and the pass is retried).  Termination (SIGTERM) is
		 * ProcDiePending, untouched.  Cancels are held while the other
		 * interrupts are processed and the flag is cleared: a cancel that
		 * arrived between the clearing and CHECK_FOR_INTERRUPTS would
		 * otherwise still be raised here.
		 */
		HOLD_CANCEL_INTERRUPTS();
		CHECK_FOR_INTERRUPTS();
		QueryCancelPending = false;
		RESUME_CANCEL_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (catalog_audit_seal_database == NULL ||
				strcmp(catalog_audit_seal_database, dbname) != 0)
			{
				ereport(LOG,
						(errmsg("catalog audit sealer: catalog.audit_seal_database changed, restarting")));
				proc_exit(1);
			}
		}

		if (catalog_audit_seal_interval > 0 &&
			retry_due(seal_failing, seal_failed, WORKER_SEAL_RETRY_MS))
		{
			seal_failing = !worker_job(false, &ext, &full);
			if (seal_failing)
				seal_failed = ApiMonotonicNs();
			/*
			 * The extension dropped, or dropped and created again (a new
			 * OID; within one transaction no pass sees it missing): its
			 * partitions went with it, so maintain now, not at the hour.
			 */
			else if (ext != maintained_ext)
				maintained = false;
		}
		else if (catalog_audit_seal_interval <= 0 && maintained &&
				 worker_extension_oid() != maintained_ext)
			maintained = false;
		if (maintained ?
			elapsed(last_maintain, WORKER_MAINTAIN_MS) :
			retry_due(maintain_failing, maintain_failed, WORKER_MAINTAIN_RETRY_MS))
		{
			bool		ignored;

			maintain_failing = !worker_job(true, &ext, &ignored);
			if (maintain_failing)
			{
				maintained = false;
				maintain_failed = ApiMonotonicNs();
			}
			else if (OidIsValid(ext))
			{
				maintained = true;
				maintained_ext = ext;
				last_maintain = ApiMonotonicNs();
			}
			else
				maintained = false;
		}
		if (full)
			continue;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 catalog_audit_seal_interval > 0 ? catalog_audit_seal_interval : WORKER_IDLE_MS,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
