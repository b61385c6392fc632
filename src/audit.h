/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  The audit log: what the trigger (audit.c), the masking (audit_mask.c)
 *	  and the hash chain (audit_chain.c) share.
 *
 * Canonical content of an audit row (AuditRowHash).  SHA-256 over:
 *	  the 16 ASCII bytes "catalog.audit.v1";
 *	  id, occurred_at, xact_at (microseconds since 2000-01-01 UTC, the
 *	  server's own representation), txid (uint64), as 8 bytes big-endian;
 *	  actor, role_name, via, request_id, table_name, each as a 4-byte
 *	  big-endian byte length and the UTF-8 bytes;
 *	  row_id, 8 bytes big-endian;
 *	  action, length and bytes;
 *	  old_values, new_values: length and bytes of the jsonb's text form
 *	  (jsonb's text output is canonical: keys sorted, one spelling per
 *	  number), or the length 0xFFFFFFFF alone for NULL.
 * Length prefixes make the encoding injective: no two different rows hash
 * the same bytes.
 *
 * Chain (AuditChainHash): chain_hash(seq) = SHA-256 over the 16 ASCII
 * bytes "catalog.chain.v2"; seq, 8 bytes big-endian; chain_hash(seq - 1)
 * (32 zero bytes for seq 1); the seal's row_hash (32 bytes); its audit_id,
 * occurred_at and sealed_at, 8 bytes big-endian each (audit_id as two's
 * complement); table_name as length and bytes; row_id, 8 bytes; actor and
 * request_id, each as length and bytes.  Every column of the seal is in its
 * link, so no seal can be altered (its time moved so that its row looks
 * pruned, its lookup keys changed) without breaking the chain from there.
 *
 * Prune link: audit_drop_partitions appends one seal per month it drops,
 * in the same transaction as the DROP: audit_id = -seq, occurred_at = the
 * month's start, row_id = its end (microseconds since 2000-01-01 UTC),
 * table_name "audit_retention", actor and request_id empty, sealed_at the
 * time of the drop, and row_hash = SHA-256 over the 16 ASCII bytes
 * "catalog.prune.v1", the month's start and end (8 bytes big-endian each).
 * A sealed row whose audit row is gone counts as pruned only when a later
 * valid prune link covers its occurred_at (audit_chain.c, verification).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_AUDIT_H
#define CATALOG_AUDIT_H

#include "access/transam.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#define AUDIT_OWNER_ROLE		"catalog_audit_owner"
#define AUDIT_HASH_LEN			32

/* One audit row, as written and as hashed. */
typedef struct AuditRow
{
	int64		id;
	TimestampTz occurred_at;
	TimestampTz xact_at;
	FullTransactionId txid;
	const char *actor;
	const char *role_name;
	const char *via;
	const char *request_id;
	const char *table_name;
	int64		row_id;
	const char *action;			/* "insert", "update" or "delete" */
	Jsonb	   *old_values;		/* NULL for an insert */
	Jsonb	   *new_values;		/* NULL for a delete */
} AuditRow;

/* One seal: a link of the chain (catalog.audit_seal). */
typedef struct AuditSeal
{
	int64		seq;
	int64		audit_id;		/* -seq for a prune link */
	TimestampTz occurred_at;
	TimestampTz sealed_at;
	const uint8 *row_hash;		/* AUDIT_HASH_LEN bytes */
	const char *table_name;
	int64		row_id;
	const char *actor;
	const char *request_id;
} AuditSeal;

#define AUDIT_PRUNE_TABLE		"audit_retention"

/* audit.c */
extern void AuditRowHash(const AuditRow *row, uint8 *out);
extern void AuditPutU64(StringInfo buf, uint64 v);
extern void AuditPutText(StringInfo buf, const char *s);
extern bool AuditSetInternalWrite(bool on);

/* audit_mask.c */
typedef struct AuditMaskPolicy AuditMaskPolicy;
extern AuditMaskPolicy *AuditMaskPolicyFor(const char *table_name);
extern void AuditMaskPush(AuditMaskPolicy *policy, JsonbParseState **state,
						  const char *column, Oid typid, Datum value);
extern char *AuditMaskActor(const char *actor);
extern char *AuditMaskRequestId(const char *id, const char *raw);
extern char *AuditMaskVia(const char *via, const char *raw_path);

/* audit_chain.c */
extern void AuditChainHash(const AuditSeal *seal, const uint8 *prev, uint8 *out);
extern void AuditChainLock(void);
extern void AuditChainPrune(TimestampTz month_start, TimestampTz month_end,
							TimestampTz dropped_at);
extern void AuditRegisterWorker(void);

#endif							/* CATALOG_AUDIT_H */
