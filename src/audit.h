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
 * Chain (AuditChainHash): chain_hash(seq) = SHA-256 of the 16 bytes
 * "catalog.chain.v1", seq as 8 bytes big-endian, chain_hash(seq - 1) (32
 * zero bytes for seq 1) and row_hash(seq).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_AUDIT_H
#define CATALOG_AUDIT_H

#include "access/transam.h"
#include "datatype/timestamp.h"
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

/* audit.c */
extern void AuditRowHash(const AuditRow *row, uint8 *out);
extern bool AuditSetInternalWrite(bool on);

/* audit_mask.c */
typedef struct AuditMaskPolicy AuditMaskPolicy;
extern AuditMaskPolicy *AuditMaskPolicyFor(const char *table_name);
extern void AuditMaskPush(AuditMaskPolicy *policy, JsonbParseState **state,
						  const char *column, Oid typid, Datum value);
extern char *AuditMaskActor(const char *actor);

/* audit_chain.c */
extern void AuditChainHash(int64 seq, const uint8 *prev, const uint8 *row_hash,
						   uint8 *out);
extern void AuditRegisterWorker(void);

#endif							/* CATALOG_AUDIT_H */
