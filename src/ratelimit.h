/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *	  Rate limiter: GCRA buckets in shared memory, one per key and scope.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_RATELIMIT_H
#define CATALOG_RATELIMIT_H

#include "storage/lwlock.h"
#include "utils/jsonb.h"

/* Lock partitions of the limiter's table (LWLocks of tranche "catalog"). */
#define RATELIMIT_PARTITIONS	32

/*
 * The API functions the limiter knows.  Every function of catalog_api is
 * listed here with its action class (read or write), or is exempt
 * (health, pre_request); catalog.rate_limit_functions() shows the table
 * and the privilege suite checks that no catalog_api function is missing.
 */
typedef enum RateLimitFunction
{
	RLF_GET_PRODUCT,
	RLF_SEARCH_PRODUCTS,
	RLF_PRODUCT_FACETS,
	RLF_LIST_CATEGORIES,
	RLF_CSRF_TOKEN,
	RLF_PRODUCT_HISTORY,
	RLF_CATEGORY_HISTORY,
	RLF_AUDIT_BY_ACTOR,
	RLF_AUDIT_BY_REQUEST,
	RLF_AUDIT_VERIFY,
	RLF_AUDIT_HEAD,
	RLF_AUDIT_MASKS,
	RLF_RATE_LIMITS,
	RLF_CREATE_PRODUCT,
	RLF_UPDATE_PRODUCT,
	RLF_ARCHIVE_PRODUCT,
	RLF_CREATE_CATEGORY,
	RLF_UPDATE_CATEGORY,
	RLF_PURGE_IDEMPOTENCY,
	RLF_REFRESH_SEARCH_TERMS,
	RLF_AUDIT_SEAL,
	RLF_AUDIT_MAINTAIN,
	RLF_AUDIT_DROP_PARTITIONS,
	RLF_AUDIT_MASK_SET,
	RLF_AUDIT_MASK_DROP,
	RLF_RATE_LIMIT_SET,
	RLF_RATE_LIMIT_DROP,
	RLF_COUNT
} RateLimitFunction;

extern Size RateLimitShmemSize(void);
extern void RateLimitShmemInit(LWLockPadded *locks, bool found);
extern bool RateLimitAvailable(void);
extern void RateLimitEnter(RateLimitFunction fn);
extern void RateLimitPreRequest(void);
extern bool RateLimitPathIs(const char *path, RateLimitFunction fn);
extern void RateLimitPushHealth(JsonbParseState **state);

#endif							/* CATALOG_RATELIMIT_H */
