/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared memory of the catalog extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_SHMEM_H
#define CATALOG_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/*
 * API calls since start, striped: every call of every backend adds one, and
 * a single counter would be one cache line bounced between all CPUs on
 * every call; a backend adds to the stripe of its process number and a
 * reader sums them.
 */
#define CATALOG_CALL_STRIPES	16

typedef union CatalogCallStripe
{
	pg_atomic_uint64 calls;
	char		pad[PG_CACHE_LINE_SIZE];
} CatalogCallStripe;

typedef struct CatalogSharedState
{
	LWLock	   *lock;			/* tranche "catalog"; protects non-atomic fields */
	TimestampTz started_at;		/* set once at initialisation */
	CatalogCallStripe api_calls[CATALOG_CALL_STRIPES];
} CatalogSharedState;

extern void ShmemInstallHooks(void);
extern CatalogSharedState *ShmemState(void);
extern void ShmemCountCall(void);
extern uint64 ShmemApiCalls(void);

#endif							/* CATALOG_SHMEM_H */
