/*-------------------------------------------------------------------------
 *
 * audit_part.h
 *	  The monthly partitions of catalog.audit_log (audit_part.c): what the
 *	  hash chain (audit_chain.c) needs from them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_AUDIT_PART_H
#define CATALOG_AUDIT_PART_H

#include "datatype/timestamp.h"
#include "storage/lockdefs.h"
#include "utils/jsonb.h"

/* One partition of catalog.audit_log and its range (UTC instants). */
typedef struct AuditPartition
{
	Oid			relid;
	char	   *name;			/* relname, in schema catalog */
	bool		is_default;
	bool		lower_inf;		/* FROM (MINVALUE) */
	bool		upper_inf;		/* TO (MAXVALUE) */
	TimestampTz lower;			/* inclusive */
	TimestampTz upper;			/* exclusive */
} AuditPartition;

/* The partitions, sorted by lower bound (the default partition last). */
typedef struct AuditPartitionList
{
	Oid			parent;
	int			n;
	AuditPartition *items;
} AuditPartitionList;

extern AuditPartitionList *AuditPartitionsLoad(LOCKMODE parent_lock);
extern Jsonb *AuditMaintain(int months_ahead);
extern int	AuditGucBegin(bool ddl);
extern void AuditGucEnd(int nest);

extern bool AuditIsMonth(TimestampTz start, TimestampTz end);

/* audit_chain.c: argument and transaction checks of the audit functions */
extern void AuditRaiseOutOfRange(const char *field, int64 min, int64 max) pg_attribute_noreturn();
extern int32 AuditIntArg(FunctionCallInfo fcinfo, int argno, const char *field,
						 int32 min, int32 max);
extern void AuditCheckWritable(const char *function, bool fresh_snapshots);

#endif							/* CATALOG_AUDIT_PART_H */
