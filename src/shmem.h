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

typedef struct CatalogSharedState
{
	LWLock	   *lock;			/* tranche "catalog"; protects non-atomic fields */
	TimestampTz started_at;		/* set once at initialisation */
	pg_atomic_uint64 api_calls; /* API function calls since start */
} CatalogSharedState;

extern void ShmemInstallHooks(void);
extern CatalogSharedState *ShmemState(void);
extern void ShmemCountCall(void);

#endif							/* CATALOG_SHMEM_H */
