/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Rate limiter: GCRA (the generic cell rate algorithm) buckets in
 *	  shared memory, one per key and scope.
 *
 * What is counted.  Every call of a catalog_api function but the exempt
 * ones is one request of its action class (read or write, see
 * function_table).  catalog_api.pre_request(), PostgREST's db-pre-request,
 * counts the request the transaction serves (the function named by
 * request.path, percent-decoded) and marks the transaction with the scope
 * and caller class it charged; the next API call of the transaction
 * (PostgREST's main query) takes the mark instead of counting again when
 * its scope and class are the same, and counts itself otherwise.  The
 * mark is cleared at transaction end.  Without pre_request (plain SQL
 * clients), each API call counts itself.  So a request is counted exactly
 * once either way.
 *
 * Who is counted (the key).  The JWT claim "sub"; else, when
 * catalog.rate_limit_trusted_proxies is N > 0, the client address from
 * x-forwarded-for (the N-th entry from the right: the address the
 * outermost trusted proxy saw), else from x-real-ip; else the session
 * user.  IPv6 addresses are keyed by their /64 (one subscriber's usual
 * allocation).  A header that does not hold a valid address is ignored,
 * so the request falls back to the session user's bucket (which is
 * shared and therefore never more lenient).
 *
 * How much.  The limit is chosen by caller class (anonymous, editor,
 * admin: from the roles of the request's role) and scope: a row of
 * catalog.rate_limit for (class, function) when there is one, else for
 * (class, action class), else the defaults catalog.rate_limit_<action>_rate
 * and _burst.  A rate of NULL (row) or 0 (default) means no limit.  The
 * bucket is per (database, scope, caller class, key).
 *
 * GCRA.  A bucket is one number, its theoretical arrival time TAT, in
 * nanoseconds of the system's monotonic clock.  With
 * emission interval T = 1/rate and tolerance tau = burst * T, a request
 * at now is allowed when max(TAT, now) + T - tau <= now, and then sets
 * TAT = max(TAT, now) + T.  From rest, over a window D, exactly
 * floor(rate * D) + burst requests are allowed.  A bucket whose TAT is
 * not after now is at rest: it behaves exactly like a missing bucket.
 * A key's one bucket is judged by the limit each request carries, and a
 * TAT is never lowered: a request whose limit's tolerance the TAT already
 * exceeds (a key charged under two limits, as two logins whose default
 * limits differ; a limit just tightened) is refused, and writes nothing.
 * A TAT left beyond now + tau was once cut to now + tau, and each such cut
 * handed the other limit's spent burst back: alternating two logins gave
 * one client an unbounded rate.  (A bucket per limit avoided that too, but
 * a changed limit then left every active key's old entry taking room until
 * it came to rest, which for a slow limit is hours, and gave every key a
 * fresh burst.)  So a tightened limit makes a client that spent the old
 * burst wait out that debt: at most the old tau.
 *
 * The table.  RATELIMIT_PARTITIONS partitions, each with its own LWLock
 * (tranche "catalog"), a fixed array of entries, hash chains and a free
 * list; the key's hash (seeded per server start from the strong random
 * source, so nobody can aim keys at one partition) picks the partition.
 * Unrelated keys in different partitions never wait on each other; the
 * lock is held only for the lookup and the update of one bucket.
 * Capacity is fixed (catalog.rate_limit_keys).  A new key takes a free
 * entry, else an entry at rest (losing nothing, see above), the one that
 * came to rest first; when every entry of its partition is limited, the
 * request is refused (fail closed) and counted, and health() says so.
 * Finding an entry at rest is O(log n), never a scan of the partition: the
 * entries in use are kept in a binary min-heap by a TAT each had when it
 * was filed ("filed", a lower bound of its TAT, which only grows).  The
 * top is looked at: at rest, it is taken; its TAT moved on since it was
 * filed (its key made requests, under the shared lock, which cannot touch
 * the heap), it is filed again by its TAT and sifted down; else its TAT is
 * the earliest of the partition, and the request is refused.  Filing
 * again is lazy, as in a timer heap with lazy deletion: an entry is filed
 * again at most once per run of its key's requests since its last filing,
 * so the work is bounded by the requests made, O(log n) each.  (A scan of
 * the partition, as a clock hand does, cost up to n entries under the
 * exclusive lock for every new key while the table was full: at the
 * largest setting, milliseconds each, which a client that keeps some keys
 * coming to rest could make every new key pay.)  After a refusal the
 * partition remembers the earliest time an entry comes to rest, so a flood
 * of new keys is refused under the shared lock, O(1) each, until then.
 *
 * Keys are stored whole (scope, class, database, kind and identity, at most
 * RATELIMIT_KEY_MAX bytes; a longer identity is replaced by its SHA-256),
 * so two keys never share a bucket.
 *
 * Refusal.  SQLSTATE PGRST with PostgREST's JSON message and a DETAIL
 * giving status 429 and the headers Retry-After, RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset (seconds).  Nothing here writes
 * to a table, so it works in read-only transactions and on hot standbys.
 *
 * Without shared_preload_libraries, the API functions are not limited
 * (the data functions keep working, DESIGN.md), but pre_request() fails
 * with 55000: a PostgREST deployment fails closed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <math.h>

#include "access/heapam.h"
#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "api.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "ratelimit.h"
#include "shmem.h"
#include "validate_sql.h"

/* Longest key stored (scope, separator, kind and identity). */
#define RATELIMIT_KEY_MAX		120
/* A partition was full within this many seconds: health() says "full". */
#define RATELIMIT_FULL_RECENT	60
/* The longest Retry-After a refusal names, in seconds (a day). */
#define RATELIMIT_RETRY_AFTER_MAX	86400

#define ERRCODE_PGRST	MAKE_SQLSTATE('P','G','R','S','T')

typedef enum RateLimitAction
{
	RLA_READ,
	RLA_WRITE,
	RLA_EXEMPT
} RateLimitAction;

static const char *const action_names[] = {"read", "write", "exempt"};

/* Caller classes. */
#define RLC_ANONYMOUS	0
#define RLC_EDITOR		1
#define RLC_ADMIN		2
#define RLC_COUNT		3
static const char *const class_names[RLC_COUNT] = {"anonymous", "editor", "admin"};

typedef struct FunctionInfo
{
	const char *name;
	RateLimitAction action;
} FunctionInfo;

/*
 * Indexed by RateLimitFunction, then health and pre_request.  Exempt:
 * health (a load balancer's probe), pre_request (it is the counter) and
 * the functions that manage the limiter (an operator must be able to act
 * while the limiter is full or limits the operator).
 */
static const FunctionInfo function_table[] = {
	[RLF_GET_PRODUCT] = {"get_product", RLA_READ},
	[RLF_SEARCH_PRODUCTS] = {"search_products", RLA_READ},
	[RLF_PRODUCT_FACETS] = {"product_facets", RLA_READ},
	[RLF_LIST_CATEGORIES] = {"list_categories", RLA_READ},
	[RLF_CSRF_TOKEN] = {"csrf_token", RLA_READ},
	[RLF_PRODUCT_HISTORY] = {"product_history", RLA_READ},
	[RLF_CATEGORY_HISTORY] = {"category_history", RLA_READ},
	[RLF_AUDIT_BY_ACTOR] = {"audit_by_actor", RLA_READ},
	[RLF_AUDIT_BY_REQUEST] = {"audit_by_request", RLA_READ},
	[RLF_AUDIT_VERIFY] = {"audit_verify", RLA_READ},
	[RLF_AUDIT_HEAD] = {"audit_head", RLA_READ},
	[RLF_AUDIT_MASKS] = {"audit_masks", RLA_READ},
	[RLF_RATE_LIMITS] = {"rate_limits", RLA_EXEMPT},
	[RLF_CREATE_PRODUCT] = {"create_product", RLA_WRITE},
	[RLF_UPDATE_PRODUCT] = {"update_product", RLA_WRITE},
	[RLF_ARCHIVE_PRODUCT] = {"archive_product", RLA_WRITE},
	[RLF_CREATE_CATEGORY] = {"create_category", RLA_WRITE},
	[RLF_UPDATE_CATEGORY] = {"update_category", RLA_WRITE},
	[RLF_PURGE_IDEMPOTENCY] = {"purge_idempotency", RLA_WRITE},
	[RLF_REFRESH_SEARCH_TERMS] = {"refresh_search_terms", RLA_WRITE},
	[RLF_AUDIT_SEAL] = {"audit_seal", RLA_WRITE},
	[RLF_AUDIT_MAINTAIN] = {"audit_maintain", RLA_WRITE},
	[RLF_AUDIT_DROP_PARTITIONS] = {"audit_drop_partitions", RLA_WRITE},
	[RLF_AUDIT_MASK_SET] = {"audit_mask_set", RLA_WRITE},
	[RLF_AUDIT_MASK_DROP] = {"audit_mask_drop", RLA_WRITE},
	[RLF_RATE_LIMIT_SET] = {"rate_limit_set", RLA_EXEMPT},
	[RLF_RATE_LIMIT_DROP] = {"rate_limit_drop", RLA_EXEMPT},
	[RLF_COUNT] = {"health", RLA_EXEMPT},
	[RLF_COUNT + 1] = {"pre_request", RLA_EXEMPT},
};

#define FUNCTION_TABLE_LEN	(RLF_COUNT + 2)
StaticAssertDecl(lengthof(function_table) == FUNCTION_TABLE_LEN,
				 "function_table must list every RateLimitFunction");

/* Scopes: a function (0 .. RLF_COUNT - 1) or an action class. */
#define SCOPE_READ		RLF_COUNT
#define SCOPE_WRITE		(RLF_COUNT + 1)
#define SCOPE_COUNT		(RLF_COUNT + 2)

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */
typedef struct RateLimitEntry
{
	uint64		hash;			/* full hash of the key */
	pg_atomic_uint64 tat;		/* theoretical arrival time (ns, monotonic
								 * clock); <= now: at rest */
	int64		filed;			/* (x) its key in the heap: a TAT it had,
								 * so never above tat */
	int32		next;			/* next entry of the chain or free list, -1 */
	uint16		keylen;
	char		key[RATELIMIT_KEY_MAX];
} RateLimitEntry;

/*
 * Locking.  A bucket is found and charged under the partition's lock in
 * shared mode, its TAT updated by compare-and-swap (so requests of one
 * key, or of one partition, never queue behind a descheduled holder);
 * entries change hands (insert, eviction) only under the lock in
 * exclusive mode, which no shared holder overlaps.  Fields marked (x) are
 * read and written only under the exclusive lock; atomics anywhere.
 */
typedef struct RateLimitPartition
{
	LWLock	   *lock;
	int32		free_head;		/* (x) free list, -1 when empty */
	int32		used;			/* (x) entries ever used */
	int32		nheap;			/* (x) entries in the heap (in use) */
	pg_atomic_uint64 no_idle_before;	/* after a refusal for lack of an
										 * entry: none at rest before this
										 * time (ns) */
	pg_atomic_uint64 last_full; /* last refusal for lack of an entry (wall
								 * clock, reported), or 0 */
	pg_atomic_uint64 last_full_ns;	/* the same refusal's monotonic time,
									 * which says whether it is recent */
	pg_atomic_uint64 allowed;
	pg_atomic_uint64 refused_rate;
	pg_atomic_uint64 refused_full;
	uint64		evicted;		/* (x) */
} RateLimitPartition;

/* A partition on its own cache lines (its lock is hot). */
typedef union RateLimitPartitionPadded
{
	RateLimitPartition p;
	char		pad[2 * PG_CACHE_LINE_SIZE];
} RateLimitPartitionPadded;

StaticAssertDecl(sizeof(RateLimitPartition) <= 2 * PG_CACHE_LINE_SIZE,
				 "RateLimitPartition must fit its padding");

typedef struct RateLimitShared
{
	/* first: ShmemInitStruct aligns the start to a cache line */
	RateLimitPartitionPadded part[RATELIMIT_PARTITIONS];
	uint64		seed;			/* hash seed, from the strong random source */
	int32		per_partition;	/* entries per partition */
	int32		nbuckets;		/* chain heads per partition, a power of 2 */
	/* followed by int32 buckets[P * nbuckets], int32 heap[P * per] and the entries */
} RateLimitShared;

static RateLimitShared *rl_shared = NULL;
static int32 *rl_buckets = NULL;
static int32 *rl_heap = NULL;
static RateLimitEntry *rl_entries = NULL;

/* Entries per partition and chain heads per partition, from the setting. */
static void
table_geometry(int32 *per_partition, int32 *nbuckets)
{
	int32		per = (catalog_rate_limit_keys + RATELIMIT_PARTITIONS - 1) / RATELIMIT_PARTITIONS;
	int32		nb = 1;

	while (nb < per)
		nb <<= 1;
	*per_partition = per;
	*nbuckets = nb;
}

/*
 * RateLimitShmemSize
 *	  Bytes of the limiter's table.
 */
Size
RateLimitShmemSize(void)
{
	int32		per,
				nb;
	Size		size;

	table_geometry(&per, &nb);
	size = MAXALIGN(sizeof(RateLimitShared));
	size = add_size(size, MAXALIGN(mul_size(sizeof(int32), mul_size(RATELIMIT_PARTITIONS, nb))));
	size = add_size(size, MAXALIGN(mul_size(sizeof(int32), mul_size(RATELIMIT_PARTITIONS, per))));
	size = add_size(size, mul_size(sizeof(RateLimitEntry), mul_size(RATELIMIT_PARTITIONS, per)));
	return size;
}

/*
 * RateLimitShmemInit
 *	  Attach to the table (under AddinShmemInitLock); found: it was
 *	  already initialised.  locks: RATELIMIT_PARTITIONS LWLocks.
 */
void
RateLimitShmemInit(LWLockPadded *locks, bool found)
{
	bool		found_here;
	int32		per,
				nb;
	RateLimitShared *s;

	table_geometry(&per, &nb);
	s = ShmemInitStruct("catalog rate limiter", RateLimitShmemSize(), &found_here);
	rl_buckets = (int32 *) ((char *) s + MAXALIGN(sizeof(RateLimitShared)));
	rl_heap = (int32 *) ((char *) rl_buckets +
						 MAXALIGN(sizeof(int32) * (Size) RATELIMIT_PARTITIONS * nb));
	rl_entries = (RateLimitEntry *) ((char *) rl_heap +
									 MAXALIGN(sizeof(int32) * (Size) RATELIMIT_PARTITIONS * per));
	if (!found_here)
	{
		if (!pg_strong_random(&s->seed, sizeof(s->seed)))
			ereport(FATAL,
					(errmsg("could not generate the rate limiter's hash seed")));
		s->per_partition = per;
		s->nbuckets = nb;
		for (int p = 0; p < RATELIMIT_PARTITIONS; p++)
		{
			RateLimitPartition *part = &s->part[p].p;
			RateLimitEntry *e = rl_entries + (Size) p * per;

			memset(part, 0, sizeof(*part));
			part->lock = &locks[p].lock;
			pg_atomic_init_u64(&part->no_idle_before, 0);
			pg_atomic_init_u64(&part->last_full, 0);
			pg_atomic_init_u64(&part->last_full_ns, 0);
			pg_atomic_init_u64(&part->allowed, 0);
			pg_atomic_init_u64(&part->refused_rate, 0);
			pg_atomic_init_u64(&part->refused_full, 0);
			for (int i = 0; i < per; i++)
			{
				e[i].next = (i + 1 < per) ? i + 1 : -1;
				e[i].filed = 0;
				pg_atomic_init_u64(&e[i].tat, 0);
			}
			part->free_head = 0;
			part->used = 0;
			part->nheap = 0;
			for (int b = 0; b < nb; b++)
				rl_buckets[(Size) p * nb + b] = -1;
		}
	}
	rl_shared = s;
}

/*
 * RateLimitAvailable
 *	  Whether the limiter's shared memory exists (library preloaded).
 */
bool
RateLimitAvailable(void)
{
	return rl_shared != NULL;
}

/* ------------------------------------------------------------------------
 * The bucket
 * ------------------------------------------------------------------------
 */

typedef struct Verdict
{
	bool		allowed;
	bool		full;			/* refused: no entry could be had */
	int64		retry_ns;		/* refused: when a request would be allowed */
	int64		reset_ns;		/* when the bucket is at rest (full burst) */
	int64		remaining;		/* allowed: requests left in the burst */
} Verdict;

/* Unlink entry idx of partition p from its hash chain. */
static void
chain_unlink(int p, int32 idx)
{
	RateLimitEntry *base = rl_entries + (Size) p * rl_shared->per_partition;
	int32	   *head = &rl_buckets[(Size) p * rl_shared->nbuckets +
								   ((base[idx].hash >> 8) & (rl_shared->nbuckets - 1))];

	while (*head >= 0)
	{
		if (*head == idx)
		{
			*head = base[idx].next;
			return;
		}
		head = &base[*head].next;
	}
	elog(PANIC, "rate limiter entry %d is not in its chain", idx);
}

/*
 * The heap of partition p's entries in use (see the file header), by
 * "filed"; callers hold the partition's lock exclusively.  Indexes are
 * int64 in the arithmetic: a partition holds at most 2^19 entries, but
 * nothing here relies on it.
 */
static void
heap_sift_down(RateLimitEntry *base, int32 *heap, int32 n, int32 i)
{
	int32		idx = heap[i];
	int64		key = base[idx].filed;

	for (;;)
	{
		int64		c = 2 * (int64) i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && base[heap[c + 1]].filed < base[heap[c]].filed)
			c++;
		if (key <= base[heap[c]].filed)
			break;
		heap[i] = heap[c];
		i = (int32) c;
	}
	heap[i] = idx;
}

/* The entries and the heap of partition p. */
static inline RateLimitEntry *
part_entries(int p)
{
	return rl_entries + (Size) p * rl_shared->per_partition;
}

static inline int32 *
part_heap(int p)
{
	return rl_heap + (Size) p * rl_shared->per_partition;
}

/* File entry idx of partition p in its heap, by its TAT now; its place. */
static int32
heap_push(int p, int32 idx)
{
	RateLimitPartition *part = &rl_shared->part[p].p;
	RateLimitEntry *base = part_entries(p);
	int32	   *heap = part_heap(p);
	int32		i = part->nheap++;
	int64		key = (int64) pg_atomic_read_u64(&base[idx].tat);

	Assert(part->nheap <= rl_shared->per_partition);
	base[idx].filed = key;
	while (i > 0)
	{
		int32		parent = (i - 1) / 2;

		if (base[heap[parent]].filed <= key)
			break;
		heap[i] = heap[parent];
		i = parent;
	}
	heap[i] = idx;
	return i;
}

/*
 * take_entry
 *	  A free entry of partition p, else an entry at rest, the heap's top
 *	  (evicted, out of its chain and the heap), else -1 (and the
 *	  partition's no_idle_before set).  The caller holds the partition's
 *	  lock exclusively, and links the entry into its chain and files it in
 *	  the heap (heap_push) at once, before anything that could fail.
 */
static int32
take_entry(int p, int64 now)
{
	RateLimitPartition *part = &rl_shared->part[p].p;
	RateLimitEntry *base = part_entries(p);
	int32	   *heap = part_heap(p);

	if (part->free_head >= 0)
	{
		int32		idx = part->free_head;

		part->free_head = base[idx].next;
		part->used++;
		return idx;
	}
	if (now < (int64) pg_atomic_read_u64(&part->no_idle_before))
		return -1;
	while (part->nheap > 0)
	{
		int32		top = heap[0];
		int64		tat = (int64) pg_atomic_read_u64(&base[top].tat);

		if (tat <= now)
		{
			/* at rest: out of the heap (the last leaf takes its place) */
			if (--part->nheap > 0)
			{
				heap[0] = heap[part->nheap];
				heap_sift_down(base, heap, part->nheap, 0);
			}
			chain_unlink(p, top);
			part->evicted++;
			return top;
		}
		if (tat > base[top].filed)
		{
			/* its key made requests since it was filed: file it again */
			base[top].filed = tat;
			heap_sift_down(base, heap, part->nheap, 0);
			continue;
		}

		/*
		 * Filed by its TAT now, and no entry is filed lower: every other
		 * TAT is at least its filed value, so none comes to rest before
		 * this one.  TATs only grow and no entry changes hands meanwhile
		 * (that takes this lock exclusively): a valid bound.
		 */
		pg_atomic_write_u64(&part->no_idle_before, (uint64) tat);
		return -1;
	}
	return -1;					/* not reached: a partition holds an entry */
}

/*
 * emission_interval
 *	  Nanoseconds between requests at rate per second, the rate held to
 *	  [0.001, 1e6] (what the settings and the table allow): 1,000 ns to
 *	  1e12 ns, so tau = T * burst (burst <= 1e6) stays below 1e18 and the
 *	  clock (nanoseconds since boot) plus tau cannot overflow.  Rounding
 *	  to whole nanoseconds makes the rate exact to about one part in a
 *	  thousand at 1e6 per second, and far better below.
 */
static int64
emission_interval(double rate)
{
	double		t;

	if (!(rate >= 0.001))		/* also NaN */
		rate = 0.001;
	if (rate > 1000000.0)
		rate = 1000000.0;
	t = rint(1e9 / rate);
	return (int64) t;
}

/*
 * gcra
 *	  Charge one request to the bucket e (emission interval t, tolerance
 *	  tau), by compare-and-swap of its TAT: a lost race reads the winner's
 *	  TAT and decides again, so no update is lost.  The clock is read after
 *	  the TAT, on every try: a winner read its clock before its swap, which
 *	  came before our read of the TAT, so the swaps happen in the order of
 *	  the clocks read, as if the requests ran one at a time (a request that
 *	  read its clock earlier and lost the race would otherwise judge a TAT
 *	  set by a later clock).  A TAT beyond now + tau (set under a laxer
 *	  limit of the same key) refuses the request and is left as it is:
 *	  lowering it would hand the other limit's spent burst back.
 *	  Caller holds the partition's lock in either mode.
 */
static void
gcra(RateLimitPartition *part, RateLimitEntry *e, int64 t, int64 tau, Verdict *v)
{
	uint64		old = pg_atomic_read_u64(&e->tat);

	for (;;)
	{
		int64		now = ApiMonotonicNs();
		int64		tat = Max((int64) old, now);

		if (tat + t - tau > now)
		{
			pg_atomic_fetch_add_u64(&part->refused_rate, 1);
			v->retry_ns = tat + t - tau - now;
			v->reset_ns = tat - now;
			return;
		}
		if (pg_atomic_compare_exchange_u64(&e->tat, &old, (uint64) (tat + t)))
		{
			pg_atomic_fetch_add_u64(&part->allowed, 1);
			v->allowed = true;
			v->reset_ns = tat + t - now;
			v->remaining = (tau - (tat + t - now)) / t;
			return;
		}
		/* another request of this key won the race: old is its TAT */
	}
}

/* The entry of key in its chain, or -1. */
static int32
find_entry(RateLimitEntry *base, int32 head, uint64 h, const char *key, int len)
{
	for (int32 idx = head; idx >= 0; idx = base[idx].next)
		if (base[idx].hash == h && base[idx].keylen == len &&
			memcmp(base[idx].key, key, len) == 0)
			return idx;
	return -1;
}

/*
 * refuse_full
 *	  Refuse a new key of partition part for lack of an entry, at now:
 *	  count it and say when an entry comes to rest.  Under the partition's
 *	  lock in either mode (atomics only).
 */
static void
refuse_full(RateLimitPartition *part, int64 now, Verdict *v)
{
	pg_atomic_fetch_add_u64(&part->refused_full, 1);
	pg_atomic_write_u64(&part->last_full, (uint64) GetCurrentTimestamp());
	pg_atomic_write_u64(&part->last_full_ns, (uint64) now);
	/* the earliest an entry of this partition comes to rest */
	v->retry_ns = (int64) pg_atomic_read_u64(&part->no_idle_before) - now;
	v->full = true;
}

/*
 * consume
 *	  One request of key (len bytes) against rate/burst.
 */
static void
consume(const char *key, int len, double rate, int burst, Verdict *v)
{
	/* (burst is held to [1, 1e6] like the rate, see emission_interval) */
	uint64		h = hash_bytes_extended((const unsigned char *) key, len, rl_shared->seed);
	int			p = (int) (h & (RATELIMIT_PARTITIONS - 1));
	RateLimitPartition *part = &rl_shared->part[p].p;
	RateLimitEntry *base = rl_entries + (Size) p * rl_shared->per_partition;
	int32	   *head = &rl_buckets[(Size) p * rl_shared->nbuckets + ((h >> 8) & (rl_shared->nbuckets - 1))];
	int64		t = emission_interval(rate);
	int64		tau = t * (int64) Max(1, Min(burst, 1000000));
	/* developer option (superuser, at most 10 s): see below */
	bool		hold = catalog_debug_rate_limit_hold > 0;
	bool		exclusive = hold;
	int64		now;
	int32		idx;
	int32		pos = -1;		/* the heap place of a new entry */

	memset(v, 0, sizeof(*v));
	LWLockAcquire(part->lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
	now = ApiMonotonicNs();
	idx = find_entry(base, *head, h, key, len);
	if (idx < 0)
	{
		/*
		 * A new key: its entry is taken under the exclusive lock.  Not when
		 * the partition is known to have none before a later time (free_head
		 * and no_idle_before change only under the exclusive lock, which
		 * this shared holder excludes): a flood of new keys into a full
		 * partition is refused without ever taking the lock exclusively, so
		 * it does not hold back the partition's known keys.
		 */
		if (!exclusive && part->free_head < 0 &&
			now < (int64) pg_atomic_read_u64(&part->no_idle_before))
		{
			refuse_full(part, now, v);
			LWLockRelease(part->lock);
			return;
		}
		if (!exclusive)
		{
			LWLockRelease(part->lock);
			LWLockAcquire(part->lock, LW_EXCLUSIVE);
			exclusive = true;
			now = ApiMonotonicNs();
			idx = find_entry(base, *head, h, key, len);
		}
		if (idx < 0)
		{
			idx = take_entry(p, now);
			if (idx < 0)
			{
				refuse_full(part, now, v);
				LWLockRelease(part->lock);
				return;
			}
			base[idx].hash = h;
			pg_atomic_write_u64(&base[idx].tat, (uint64) now);
			base[idx].keylen = (uint16) len;
			memcpy(base[idx].key, key, len);
			base[idx].next = *head;
			*head = idx;
			/*
			 * Filed at once, by its TAT now (a lower bound of what gcra
			 * sets): an entry never stays in a chain outside the heap.
			 */
			pos = heap_push(p, idx);
		}
	}
	gcra(part, &base[idx], t, tau, v);

	/*
	 * Then by the TAT its first request set (a greater key: sifted down
	 * from its place, which nothing has moved meanwhile), so that a new
	 * entry is filed exactly: filed at "now", every entry of a table just
	 * filled would be stale at once, and the first new key after it would
	 * file them all again under the lock (115 ms for a partition of
	 * 524,288, test/bench/ratelimit_full.sh).
	 */
	if (pos >= 0)
	{
		base[idx].filed = (int64) pg_atomic_read_u64(&base[idx].tat);
		heap_sift_down(base, part_heap(p), part->nheap, pos);
	}

	/*
	 * The developer option holds the partition exclusively, to prove that
	 * keys of other partitions do not wait (test/t/ratelimit.pl).  It waits
	 * on the latch, not in pg_usleep, so that pg_stat_activity shows the
	 * wait (wait_event_type "Extension") only once the lock is held: the
	 * test starts the competing key then, not on a guess.
	 */
	if (hold)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														catalog_debug_rate_limit_hold);

		for (;;)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

			if (left <= 0)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	LWLockRelease(part->lock);
}

/* ------------------------------------------------------------------------
 * Configured limits: catalog.rate_limit, cached per backend
 * ------------------------------------------------------------------------
 */
typedef struct LimitRule
{
	bool		set;
	bool		unlimited;
	double		rate;
	int			burst;
} LimitRule;

static LimitRule rules[RLC_COUNT][SCOPE_COUNT];
static DocTableCache rules_cache = {.table = "rate_limit"};

/* The scope index of a name (a function or read/write), or -1. */
static int
scope_index(const char *name)
{
	if (strcmp(name, "read") == 0)
		return SCOPE_READ;
	if (strcmp(name, "write") == 0)
		return SCOPE_WRITE;
	for (int f = 0; f < RLF_COUNT; f++)
		if (function_table[f].action != RLA_EXEMPT &&
			strcmp(function_table[f].name, name) == 0)
			return f;
	return -1;
}

static const char *
scope_name(int scope)
{
	if (scope == SCOPE_READ)
		return "read";
	if (scope == SCOPE_WRITE)
		return "write";
	return function_table[scope].name;
}

static int
class_index(const char *name)
{
	for (int c = 0; c < RLC_COUNT; c++)
		if (strcmp(class_names[c], name) == 0)
			return c;
	return -1;
}

/*
 * rules_build
 *	  Read catalog.rate_limit into rules.  Read again when an invalidation
 *	  arrived during the scan (the generation moved).
 */
static void
rules_build(void)
{
	Relation	rel;

	rel = DocTableCacheOpen(&rules_cache);
	for (;;)
	{
		uint64		generation = rules_cache.generation;
		AttrNumber	a_class = DocColumnAttnum(rel, "caller_class", TEXTOID);
		AttrNumber	a_action = DocColumnAttnum(rel, "action", TEXTOID);
		AttrNumber	a_rate = DocColumnAttnum(rel, "rate", FLOAT8OID);
		AttrNumber	a_burst = DocColumnAttnum(rel, "burst", INT4OID);
		TupleDesc	desc = RelationGetDescr(rel);
		Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		HeapTuple	tup;

		memset(rules, 0, sizeof(rules));
		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			bool		n1,
						n2,
						n3,
						n4;
			Datum		d_class = heap_getattr(tup, a_class, desc, &n1);
			Datum		d_action = heap_getattr(tup, a_action, desc, &n2);
			Datum		d_rate = heap_getattr(tup, a_rate, desc, &n3);
			Datum		d_burst = heap_getattr(tup, a_burst, desc, &n4);
			int			c,
						s;
			LimitRule  *r;

			if (n1 || n2 || n4)
				continue;
			c = class_index(TextDatumGetCString(d_class));
			s = scope_index(TextDatumGetCString(d_action));
			if (c < 0 || s < 0)
				continue;		/* the CHECK constraints allow neither */
			r = &rules[c][s];
			r->set = true;
			r->unlimited = n3;
			r->rate = n3 ? 0 : DatumGetFloat8(d_rate);
			r->burst = DatumGetInt32(d_burst);
			if (!r->unlimited && (!(r->rate > 0) || r->burst < 1))
				r->unlimited = true;	/* likewise impossible */
		}
		table_endscan(scan);
		UnregisterSnapshot(snapshot);
		if (generation == rules_cache.generation)
			break;
	}
	table_close(rel, NoLock);
	DocTableCacheBuilt(&rules_cache);
}

/*
 * effective_limit
 *	  The limit of function fn (or, for fn < 0, of action class action) for
 *	  caller class c: fills rate and burst and returns the scope the
 *	  bucket belongs to, or -1 when there is no limit.
 */
static int
effective_limit(int c, int fn, RateLimitAction action, double *rate, int *burst)
{
	int			scope = action == RLA_READ ? SCOPE_READ : SCOPE_WRITE;
	LimitRule  *r = NULL;

	if (!DocTableCacheValid(&rules_cache))
		rules_build();
	if (fn >= 0 && rules[c][fn].set)
	{
		r = &rules[c][fn];
		scope = fn;
	}
	else if (rules[c][scope].set)
		r = &rules[c][scope];

	if (r != NULL)
	{
		if (r->unlimited)
			return -1;
		*rate = r->rate;
		*burst = r->burst;
		return scope;
	}
	*rate = action == RLA_READ ? catalog_rate_limit_read_rate : catalog_rate_limit_write_rate;
	*burst = action == RLA_READ ? catalog_rate_limit_read_burst : catalog_rate_limit_write_burst;
	return *rate > 0 ? scope : -1;
}

/* ------------------------------------------------------------------------
 * The key
 * ------------------------------------------------------------------------
 */

/*
 * parse_address
 *	  The canonical text of the address in s (len bytes): IPv4 (an optional
 *	  ":port" is dropped), or IPv6 (optionally "[...]" with a port) cut to
 *	  its /64; an IPv4-mapped IPv6 address is its IPv4 address.  False
 *	  when s is not an address.
 */
static bool
parse_address(const char *s, int len, char *out, size_t outlen)
{
	char		buf[64];
	unsigned char addr[16];

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len <= 0 || len >= (int) sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';

	if (buf[0] == '[')
	{
		char	   *close = strchr(buf, ']');

		if (close == NULL)
			return false;
		*close = '\0';
		memmove(buf, buf + 1, strlen(buf + 1) + 1);
	}
	else
	{
		char	   *colon = strchr(buf, ':');

		/* "a.b.c.d:port": exactly one colon, after a dotted quad */
		if (colon != NULL && strchr(colon + 1, ':') == NULL && memchr(buf, '.', colon - buf) != NULL)
			*colon = '\0';
	}

	if (inet_pton(AF_INET, buf, addr) == 1)
		return inet_ntop(AF_INET, addr, out, outlen) != NULL;
	if (inet_pton(AF_INET6, buf, addr) == 1)
	{
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(addr, mapped, 12) == 0)
			return inet_ntop(AF_INET, addr + 12, out, outlen) != NULL;
		memset(addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, addr, out, outlen) == NULL)
			return false;
		strlcat(out, "/64", outlen);
		return true;
	}
	return false;
}

/*
 * client_address
 *	  The client address from the headers set by trusted proxies, into out;
 *	  false when no proxy is trusted or no usable address is there.
 */
static bool
client_address(char *out, size_t outlen)
{
	int			hops = catalog_rate_limit_trusted_proxies;
	char	   *xff;
	char	   *real;

	if (hops <= 0)
		return false;
	xff = ApiJsonSetting("request.headers", "x-forwarded-for");
	if (xff != NULL)
	{
		int			n = 1;
		int			want;
		const char *start = xff;

		for (const char *c = xff; *c; c++)
			if (*c == ',')
				n++;
		/* the N-th entry from the right; the leftmost when there are fewer */
		want = n - hops < 0 ? 0 : n - hops;
		for (int i = 0; i < want; i++)
			start = strchr(start, ',') + 1;
		{
			const char *end = strchr(start, ',');

			return parse_address(start, end ? (int) (end - start) : (int) strlen(start),
								 out, outlen);
		}
	}
	real = ApiJsonSetting("request.headers", "x-real-ip");
	if (real != NULL)
		return parse_address(real, strlen(real), out, outlen);
	return false;
}

/*
 * compose_key
 *	  The bucket key of scope for caller class cls and identity ident
 *	  ("<kind>:<identity>") into key (RATELIMIT_KEY_MAX bytes); returns its
 *	  length.  Layout: "<scope>\x1f<class>\x1f<database oid>\x1f<ident>",
 *	  or "...\x1fh:<sha256 hex of ident>" when the whole would be longer.
 *	  The class is part of the key (a bucket is charged under one limit
 *	  only: two classes sharing a key could otherwise use each other's
 *	  debt), and so is the database (each has its own catalog.rate_limit;
 *	  the buckets are shared).
 */
/* "<scope>\x1f<class>\x1f<database oid>\x1f": at most 21 + 1 + 1 + 1 + 10 + 1 */
#define KEY_PREFIX_MAX	40
static char key_prefix[RLC_COUNT][SCOPE_COUNT][KEY_PREFIX_MAX];
static int	key_prefix_len[RLC_COUNT][SCOPE_COUNT];

static int
compose_key(int scope, int cls, const char *ident, int identlen, char *key)
{
	int			len;

	/* the prefix, formatted once per backend (MyDatabaseId never changes) */
	if (key_prefix_len[cls][scope] == 0)
		key_prefix_len[cls][scope] = snprintf(key_prefix[cls][scope], KEY_PREFIX_MAX,
											  "%s\x1f%d\x1f%u\x1f",
											  scope_name(scope), cls, MyDatabaseId);
	len = key_prefix_len[cls][scope];
	memcpy(key, key_prefix[cls][scope], len);

	/* the longest prefix (a 21-byte function name) leaves room for a hash */
	Assert(len + 2 + 2 * PG_SHA256_DIGEST_LENGTH <= RATELIMIT_KEY_MAX);
	if (len + identlen <= RATELIMIT_KEY_MAX)
	{
		memcpy(key + len, ident, identlen);
		return len + identlen;
	}
	else
	{
		uint8		digest[PG_SHA256_DIGEST_LENGTH];
		pg_cryptohash_ctx *ctx = Sha256Begin();

		Sha256Update(ctx, ident, identlen);
		Sha256End(ctx, digest);
		key[len++] = 'h';
		key[len++] = ':';
		len += (int) hex_encode((const char *) digest, sizeof(digest), key + len);
		return len;
	}
}

/*
 * caller_identity
 *	  "<kind>:<identity>" of the current caller (see the file header), in
 *	  buf unless it is a JWT subject (any length: palloc'd).
 */
static char *
caller_identity(char *buf, size_t buflen)
{
	char	   *sub = ApiClaim("sub");
	char		addr[INET6_ADDRSTRLEN + 8];

	if (sub != NULL && sub[0] != '\0')
		return psprintf("s:%s", sub);
	if (client_address(addr, sizeof(addr)))
		snprintf(buf, buflen, "a:%s", addr);
	else
		snprintf(buf, buflen, "u:%u", GetSessionUserId());
	return buf;
}

/* The caller class of the request's role. */
static int
caller_class(void)
{
	if (ApiCallerHasRole("catalog_admin"))
		return RLC_ADMIN;
	if (ApiCallerHasRole("catalog_editor"))
		return RLC_EDITOR;
	return RLC_ANONYMOUS;
}

/* ------------------------------------------------------------------------
 * Counting a request
 * ------------------------------------------------------------------------
 */

/*
 * The request pre_request() counted: its transaction, scope and caller
 * class.  The next API call of the same transaction, scope and class takes
 * it instead of counting again; any other call counts itself (so a path
 * that names one function while another runs is never a discount).
 * Cleared at every transaction end.
 */
static LocalTransactionId counted_lxid = InvalidLocalTransactionId;
static int	counted_scope = -1;
static int	counted_class = -1;
static bool xact_callback_registered = false;

static void
clear_mark(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			counted_lxid = InvalidLocalTransactionId;
			counted_scope = -1;
			counted_class = -1;
			break;
		default:
			break;
	}
}

/* Whole seconds, rounded up, of a positive number of nanoseconds. */
static int64
ceil_seconds(int64 ns)
{
	return ns <= 0 ? 0 : (ns + 999999999) / 1000000000;
}

/*
 * raise_refusal
 *	  The PGRST error PostgREST turns into 429 with headers.
 */
static void
raise_refusal(const Verdict *v, int burst)
{
	/*
	 * At least a second, at most a day: with a slow rate and a large burst
	 * the exact wait can be years, which no client should be told to sleep
	 * (it asks again after the day and is told again).
	 */
	int64		retry = Min(Max(ceil_seconds(v->retry_ns), 1), RATELIMIT_RETRY_AFTER_MAX);
	int64		reset = ceil_seconds(v->reset_ns);

	if (v->full)
		ereport(ERROR,
				(errcode(ERRCODE_PGRST),
				 errmsg_internal("{\"code\":\"PT429\",\"message\":\"rate limiter is full\","
								 "\"details\":\"limiter_full\","
								 "\"hint\":\"Retry after %lld seconds.\"}", (long long) retry),
				 errdetail_internal("{\"status\":429,\"status_text\":\"Too Many Requests\","
									"\"headers\":{\"Retry-After\":\"%lld\",\"RateLimit-Limit\":\"%d\","
									"\"RateLimit-Remaining\":\"0\",\"RateLimit-Reset\":\"%lld\"}}",
									(long long) retry, burst, (long long) retry),
				 errhidestmt(true)));
	ereport(ERROR,
			(errcode(ERRCODE_PGRST),
			 errmsg_internal("{\"code\":\"PT429\",\"message\":\"rate limit exceeded\","
							 "\"details\":\"rate_limited\","
							 "\"hint\":\"Retry after %lld seconds.\"}", (long long) retry),
			 errdetail_internal("{\"status\":429,\"status_text\":\"Too Many Requests\","
								"\"headers\":{\"Retry-After\":\"%lld\",\"RateLimit-Limit\":\"%d\","
								"\"RateLimit-Remaining\":\"0\",\"RateLimit-Reset\":\"%lld\"}}",
								(long long) retry, burst, (long long) reset),
			 errhidestmt(true)));
}

/*
 * charge_request
 *	  Count one request of the caller in scope (class cls) at rate/burst;
 *	  raise the refusal when it is limited.
 */
static void
charge_request(int scope, int cls, double rate, int burst)
{
	char		buf[INET6_ADDRSTRLEN + 16];
	char	   *ident = caller_identity(buf, sizeof(buf));
	char		key[RATELIMIT_KEY_MAX];
	int			len = compose_key(scope, cls, ident, strlen(ident), key);
	Verdict		v;

	consume(key, len, rate, burst, &v);
	if (!v.allowed)
		raise_refusal(&v, burst);
}

/*
 * RateLimitEnter
 *	  Called first by every API function: counts the call for health()
 *	  (ShmemCountCall), and charges it to the caller's bucket unless it is
 *	  exempt or pre_request() charged it (same transaction, scope and
 *	  class; the mark is taken once).
 */
void
RateLimitEnter(RateLimitFunction fn)
{
	double		rate;
	int			burst;
	int			scope;
	int			cls;

	/* health() counts the calls of every API function, exempt or not */
	ShmemCountCall();
	if (!catalog_rate_limit || rl_shared == NULL ||
		function_table[fn].action == RLA_EXEMPT)
		return;
	cls = caller_class();
	scope = effective_limit(cls, (int) fn, function_table[fn].action, &rate, &burst);
	if (scope < 0)
		return;
	if (counted_lxid == ApiCurrentLxid() && counted_scope == scope && counted_class == cls)
	{
		counted_lxid = InvalidLocalTransactionId;
		return;
	}
	charge_request(scope, cls, rate, burst);
}

/*
 * function_from_path
 *	  The API function named by request.path "/rpc/<name>" (percent-encoded
 *	  bytes decoded, as PostgREST routes), or -1.
 */
static int
function_from_path(const char *path)
{
	char		name[NAMEDATALEN];
	int			n = 0;

	if (path == NULL || strncmp(path, "/rpc/", 5) != 0)
		return -1;
	for (const char *c = path + 5; *c; c++)
	{
		char		ch = *c;

		if (ch == '%' && isxdigit((unsigned char) c[1]) && isxdigit((unsigned char) c[2]))
		{
			char		hex[3] = {c[1], c[2], '\0'};

			ch = (char) strtol(hex, NULL, 16);
			c += 2;
		}
		/* no function name holds a NUL (%00) or is this long */
		if (ch == '\0' || n >= NAMEDATALEN - 1)
			return -1;
		name[n++] = ch;
	}
	name[n] = '\0';
	for (int f = 0; f < FUNCTION_TABLE_LEN; f++)
		if (strcmp(name, function_table[f].name) == 0)
			return f;
	return -1;
}

/*
 * RateLimitPathIs
 *	  Whether request.path path routes to API function fn, decoded as
 *	  PostgREST decodes it (so "/rpc/csrf%5Ftoken" is csrf_token).
 */
bool
RateLimitPathIs(const char *path, RateLimitFunction fn)
{
	return function_from_path(path) == (int) fn;
}

/*
 * RateLimitPreRequest
 *	  pre_request()'s part: count the transaction's request (by the
 *	  function of request.path, else by method: GET and HEAD, or a
 *	  read-only transaction, read; anything else write) and mark the
 *	  transaction counted.  Fails with 55000 without shared memory.
 */
void
RateLimitPreRequest(void)
{
	const char *method = GetConfigOption("request.method", true, false);
	int			fn;
	RateLimitAction action;
	double		rate;
	int			burst;
	int			scope;
	int			cls;

	if (!catalog_rate_limit)
		return;
	fn = function_from_path(GetConfigOption("request.path", true, false));

	/*
	 * health() and the limiter's own management are never limited, so they
	 * need no shared memory either: a load balancer's probe of a server
	 * started without the library preloaded gets health()'s "degraded"
	 * and its 503, not this function's 55000 (HTTP 500).
	 */
	if (fn >= 0 && function_table[fn].action == RLA_EXEMPT)
		return;
	if (rl_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the catalog rate limiter needs shared memory"),
				 errhint("Add catalog to shared_preload_libraries and restart the server.")));
	if (!xact_callback_registered)
	{
		RegisterXactCallback(clear_mark, NULL);
		xact_callback_registered = true;
	}
	if (fn >= 0)
		action = function_table[fn].action;
	else if (XactReadOnly || (method != NULL &&
							  (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)))
		action = RLA_READ;
	else
		action = RLA_WRITE;
	cls = caller_class();
	scope = effective_limit(cls, fn, action, &rate, &burst);
	if (scope < 0)
		return;
	charge_request(scope, cls, rate, burst);
	counted_lxid = ApiCurrentLxid();
	counted_scope = scope;
	counted_class = cls;
}

/*
 * RateLimitPushHealth
 *	  health()'s "rate_limiter" object (for admins): whether it is on,
 *	  capacity, entries ever used and entries limited now, counters since
 *	  start, and "full" when a request was refused for lack of an entry in
 *	  the last RATELIMIT_FULL_RECENT seconds.
 */
void
RateLimitPushHealth(JsonbParseState **state)
{
	uint64		allowed = 0,
				refused_rate = 0,
				refused_full = 0,
				evicted = 0;
	int64		used = 0;
	int64		limited = 0;
	TimestampTz last_full = 0;
	int64		last_full_ns = 0;

	DocPushKey(state, "rate_limiter");
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	DocPushBool(state, "enabled", catalog_rate_limit && rl_shared != NULL);
	if (rl_shared != NULL)
	{
		int64		now = ApiMonotonicNs();

		for (int p = 0; p < RATELIMIT_PARTITIONS; p++)
		{
			RateLimitPartition *part = &rl_shared->part[p].p;
			RateLimitEntry *base = rl_entries + (Size) p * rl_shared->per_partition;

			/*
			 * The TATs are atomics, read without the lock: a walk of a large
			 * partition under it would hold back every new key of the
			 * partition (which needs it exclusively) for as long.  A count
			 * taken while keys come and go is approximate, as a gauge is.
			 */
			for (int32 i = 0; i < rl_shared->per_partition; i++)
				if ((int64) pg_atomic_read_u64(&base[i].tat) > now)
					limited++;
			CHECK_FOR_INTERRUPTS();
			LWLockAcquire(part->lock, LW_SHARED);
			used += part->used;
			allowed += pg_atomic_read_u64(&part->allowed);
			refused_rate += pg_atomic_read_u64(&part->refused_rate);
			refused_full += pg_atomic_read_u64(&part->refused_full);
			evicted += part->evicted;
			{
				TimestampTz lf = (TimestampTz) pg_atomic_read_u64(&part->last_full);
				int64		lf_ns = (int64) pg_atomic_read_u64(&part->last_full_ns);

				if (lf > last_full)
					last_full = lf;
				if (lf != 0 && lf_ns > last_full_ns)
					last_full_ns = lf_ns;
			}
			LWLockRelease(part->lock);
		}
		/* recent by the monotonic clock: a stepped wall clock moves neither way */
		DocPushText(state, "state",
					DocCString(last_full_ns != 0 &&
							   ApiMonotonicNs() - last_full_ns < (int64) RATELIMIT_FULL_RECENT * 1000000000
							   ? "full" : "ok"));
		DocPushInt(state, "capacity", (int64) rl_shared->per_partition * RATELIMIT_PARTITIONS);
		DocPushInt(state, "in_use", used);
		DocPushInt(state, "limited", limited);
		DocPushInt(state, "allowed", (int64) allowed);
		DocPushInt(state, "refused_rate", (int64) refused_rate);
		DocPushInt(state, "refused_full", (int64) refused_full);
		DocPushInt(state, "evicted", (int64) evicted);
		if (last_full != 0)
			DocPushTimestamptz(state, "last_full_at", last_full);
		else
			DocPushText(state, "last_full_at", DocCString(NULL));
	}
	else
		DocPushText(state, "state", DocCString("unavailable"));
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(catalog_rate_limit_functions);
PG_FUNCTION_INFO_V1(catalog_rate_limit_partition);
PG_FUNCTION_INFO_V1(catalog_rate_limit_set);
PG_FUNCTION_INFO_V1(catalog_rate_limit_drop);
PG_FUNCTION_INFO_V1(catalog_rate_limits);

/*
 * catalog.rate_limit_functions() -> setof (function_name, action)
 *	  The limiter's table of catalog_api functions and their action class
 *	  (read, write or exempt).
 */
Datum
catalog_rate_limit_functions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int f = 0; f < FUNCTION_TABLE_LEN; f++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(function_table[f].name);
		values[1] = CStringGetTextDatum(action_names[function_table[f].action]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * catalog.rate_limit_partition(scope text, sub text) -> integer
 *	  The lock partition of the bucket of JWT subject sub in scope (read,
 *	  write or a function name) for the caller's class: lets a test pick
 *	  keys that share, or do not share, a partition.  Superuser only
 *	  (REVOKEd from PUBLIC).
 */
Datum
catalog_rate_limit_partition(PG_FUNCTION_ARGS)
{
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *ident = psprintf("s:%s", text_to_cstring(PG_GETARG_TEXT_PP(1)));
	int			s = scope_index(scope);
	char		key[RATELIMIT_KEY_MAX];
	int			len;
	uint64		h;

	if (rl_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the catalog rate limiter needs shared memory"),
				 errhint("Add catalog to shared_preload_libraries and restart the server.")));
	if (s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rate limit scope")));
	len = compose_key(s, caller_class(), ident, strlen(ident), key);
	h = hash_bytes_extended((const unsigned char *) key, len, rl_shared->seed);
	PG_RETURN_INT32((int32) (h & (RATELIMIT_PARTITIONS - 1)));
}

static ApiPlan upsert_plan = {
	"INSERT INTO catalog.rate_limit AS r (caller_class, action, rate, burst, updated_by)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (caller_class, action) DO UPDATE"
	" SET rate = EXCLUDED.rate, burst = EXCLUDED.burst,"
	" updated_at = pg_catalog.now(), updated_by = EXCLUDED.updated_by"
	" RETURNING r.caller_class, r.action, r.rate, r.burst, r.updated_at, r.updated_by",
	5,
	{TEXTOID, TEXTOID, FLOAT8OID, INT4OID, TEXTOID},
	NULL
};

static ApiPlan delete_plan = {
	"DELETE FROM catalog.rate_limit WHERE caller_class = $1 AND action = $2",
	2,
	{TEXTOID, TEXTOID},
	NULL
};

static ApiPlan list_plan = {
	"SELECT caller_class, action, rate, burst, updated_at, updated_by"
	" FROM catalog.rate_limit ORDER BY caller_class, action",
	0,
	{InvalidOid},
	NULL
};

/* Argument argno as a short string (at most 64 bytes) or NULL. */
static char *
short_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno) ||
		toast_raw_datum_size(PG_GETARG_DATUM(argno)) > (Size) (VARHDRSZ + 64))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Validated caller_class (argument 0) and action (argument 1). */
static void
class_and_action_args(FunctionCallInfo fcinfo, char **cls, char **action)
{
	ApiRequireArg(fcinfo, 0, "caller_class");
	ApiRequireArg(fcinfo, 1, "action");
	*cls = short_arg(fcinfo, 0);
	if (*cls == NULL || class_index(*cls) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("caller_class must be \"anonymous\", \"editor\" or \"admin\""),
				 ApiErrDetail("{\"field\":\"caller_class\",\"reason\":\"unknown_value\"}")));
	*action = short_arg(fcinfo, 1);
	if (*action == NULL || scope_index(*action) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("action must be \"read\", \"write\" or the name of a limited catalog_api function"),
				 ApiErrDetail("{\"field\":\"action\",\"reason\":\"unknown_value\"}")));
}

/* Push row of the last SPI result (columns as list_plan) as an object. */
static JsonbValue *
push_rule_row(JsonbParseState **st, int row)
{
	HeapTuple	tup = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		rate;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushText(st, "caller_class", DocCString(SPI_getvalue(tup, desc, 1)));
	DocPushText(st, "action", DocCString(SPI_getvalue(tup, desc, 2)));
	rate = SPI_getbinval(tup, desc, 3, &isnull);
	if (isnull)
		DocPushText(st, "rate", DocCString(NULL));
	else
		DocPushNumeric(st, "rate",
					   DatumGetNumeric(DirectFunctionCall1(float8_numeric, rate)));
	DocPushInt(st, "burst", DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull)));
	DocPushTimestamptz(st, "updated_at",
					   DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull)));
	DocPushText(st, "updated_by", DocCString(SPI_getvalue(tup, desc, 6)));
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * rate_limit_set
 *	  catalog_api.rate_limit_set(caller_class, action, rate, burst) under
 *	  ApiRunWrite: rate in requests per second (NULL: no limit), burst the
 *	  requests allowed at once.
 */
static Datum
rate_limit_set(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *cls;
	char	   *action;
	double		rate = 0;
	int32		burst;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	JsonbParseState *st = NULL;
	Jsonb	   *result;

	RateLimitEnter(RLF_RATE_LIMIT_SET);
	class_and_action_args(fcinfo, &cls, &action);
	if (!PG_ARGISNULL(2))
	{
		rate = PG_GETARG_FLOAT8(2);
		if (!(rate >= 0.001 && rate <= 1000000.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rate must be between 0.001 and 1000000 requests per second, or null for no limit"),
					 ApiErrDetail("{\"field\":\"rate\",\"reason\":\"out_of_range\",\"min\":0.001,\"max\":1000000}")));
	}
	ApiRequireArg(fcinfo, 3, "burst");
	burst = PG_GETARG_INT32(3);
	if (burst < 1 || burst > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("burst must be between 1 and 1000000"),
				 ApiErrDetail("{\"field\":\"burst\",\"reason\":\"out_of_range\",\"min\":1,\"max\":1000000}")));

	values[0] = CStringGetTextDatum(cls);
	values[1] = CStringGetTextDatum(action);
	values[2] = Float8GetDatum(rate);
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';
	values[3] = Int32GetDatum(burst);
	values[4] = CStringGetTextDatum(ApiActor());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ApiExecute(&upsert_plan, values, nulls, false, 0) != 1)
		elog(ERROR, "rate limit upsert did not return one row");
	MemoryContextSwitchTo(cxt);
	result = JsonbValueToJsonb(push_rule_row(&st, 0));
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

Datum
catalog_rate_limit_set(PG_FUNCTION_ARGS)
{
	return ApiRunWrite(rate_limit_set, fcinfo);
}

/*
 * rate_limit_drop
 *	  catalog_api.rate_limit_drop(caller_class, action): back to the
 *	  defaults; true when a row was removed.
 */
static Datum
rate_limit_drop(PG_FUNCTION_ARGS)
{
	char	   *cls;
	char	   *action;
	Datum		values[2];
	int			n;

	RateLimitEnter(RLF_RATE_LIMIT_DROP);
	class_and_action_args(fcinfo, &cls, &action);
	values[0] = CStringGetTextDatum(cls);
	values[1] = CStringGetTextDatum(action);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = ApiExecute(&delete_plan, values, NULL, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

Datum
catalog_rate_limit_drop(PG_FUNCTION_ARGS)
{
	return ApiRunWrite(rate_limit_drop, fcinfo);
}

/* Push {"rate": r or null, "burst": b} for a default. */
static void
push_default(JsonbParseState **st, const char *name, double rate, int burst)
{
	DocPushKey(st, name);
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	if (rate > 0)
		DocPushNumeric(st, "rate",
					   DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(rate))));
	else
		DocPushText(st, "rate", DocCString(NULL));
	DocPushInt(st, "burst", burst);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * catalog_api.rate_limits() -> jsonb
 *	  {"enabled", "defaults": {"read": {rate, burst}, "write": ...},
 *	  "limits": [row, ...], "functions": {name: action, ...},
 *	  "trusted_proxies"}.
 */
Datum
catalog_rate_limits(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	Jsonb	   *result;
	int			n;
	int			nest;

	RateLimitEnter(RLF_RATE_LIMITS);
	nest = ApiRowSecurityBegin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = ApiExecute(&list_plan, NULL, NULL, true, 0);
	MemoryContextSwitchTo(cxt);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushBool(&st, "enabled", catalog_rate_limit && rl_shared != NULL);
	DocPushKey(&st, "defaults");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_default(&st, "read", catalog_rate_limit_read_rate, catalog_rate_limit_read_burst);
	push_default(&st, "write", catalog_rate_limit_write_rate, catalog_rate_limit_write_burst);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	DocPushKey(&st, "limits");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		(void) push_rule_row(&st, i);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushKey(&st, "functions");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int f = 0; f < FUNCTION_TABLE_LEN; f++)
		DocPushText(&st, function_table[f].name,
					DocCString(action_names[function_table[f].action]));
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	DocPushInt(&st, "trusted_proxies", catalog_rate_limit_trusted_proxies);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);
	SPI_finish();
	ApiRowSecurityEnd(nest);
	PG_RETURN_JSONB_P(result);
}
