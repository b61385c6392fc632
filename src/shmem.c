/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of the catalog extension (PG 15 pattern).
 *
 * Shared memory is requested in shmem_request_hook (PG 15+; earlier
 * versions request it directly from _PG_init) and initialised in
 * shmem_startup_hook under AddinShmemInitLock.  Previous hooks are always
 * chained.  One LWLock tranche named "catalog".
 *
 * Locking protocol:
 *	- CatalogSharedState.lock (exclusive) protects fields that are not
 *	  atomics; started_at is written once at initialisation and read
 *	  without a lock afterwards.
 *	- Counters are pg_atomic_uint64 and updated without the lock.
 *
 * Without shared_preload_libraries the state pointer stays NULL:
 * ShmemState() returns NULL, health() reports it, and counters are not
 * kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "ratelimit.h"
#include "shmem.h"

static CatalogSharedState *catalog_state = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * shmem_size
 *	  Bytes needed by the extension's shared state.
 */
static Size
shmem_size(void)
{
	/* two structures, each cache-line aligned by ShmemInitStruct */
	return add_size(add_size(MAXALIGN(sizeof(CatalogSharedState)), RateLimitShmemSize()),
					2 * PG_CACHE_LINE_SIZE);
}

/*
 * catalog_shmem_request
 *	  Reserve shared memory and the LWLock tranche (postmaster, at start).
 */
static void
catalog_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(shmem_size());
	RequestNamedLWLockTranche("catalog", 1 + RATELIMIT_PARTITIONS);
}

/*
 * catalog_shmem_startup
 *	  Attach to (and, the first time, initialise) the shared state.
 */
static void
catalog_shmem_startup(void)
{
	bool		found;
	CatalogSharedState *state;
	LWLockPadded *locks;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	state = ShmemInitStruct("catalog", MAXALIGN(sizeof(CatalogSharedState)), &found);
	locks = GetNamedLWLockTranche("catalog");
	if (!found)
	{
		state->lock = &locks[0].lock;
		state->started_at = GetCurrentTimestamp();
		for (int i = 0; i < CATALOG_CALL_STRIPES; i++)
			pg_atomic_init_u64(&state->api_calls[i].calls, 0);
	}
	RateLimitShmemInit(locks + 1, found);
	LWLockRelease(AddinShmemInitLock);
	catalog_state = state;
}

/*
 * ShmemInstallHooks
 *	  Called from _PG_init while shared_preload_libraries is processed.
 */
void
ShmemInstallHooks(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = catalog_shmem_request;
#else
	catalog_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = catalog_shmem_startup;
}

/*
 * ShmemState
 *	  The shared state, or NULL when the library was not preloaded.
 */
CatalogSharedState *
ShmemState(void)
{
	return catalog_state;
}

/*
 * ShmemCountCall
 *	  Count one API call; a no-op without shared memory.
 */
void
ShmemCountCall(void)
{
	if (catalog_state != NULL)
		pg_atomic_fetch_add_u64(&catalog_state->api_calls[MyProcPid % CATALOG_CALL_STRIPES].calls, 1);
}

/*
 * ShmemApiCalls
 *	  API calls since start (the sum of the stripes); 0 without shared
 *	  memory.
 */
uint64
ShmemApiCalls(void)
{
	uint64		n = 0;

	if (catalog_state != NULL)
		for (int i = 0; i < CATALOG_CALL_STRIPES; i++)
			n += pg_atomic_read_u64(&catalog_state->api_calls[i].calls);
	return n;
}
