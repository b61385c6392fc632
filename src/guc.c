/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Definition of the catalog.* settings.
 *
 * The "catalog" prefix is reserved (MarkGUCPrefixReserved, PG 15+), so a
 * misspelt catalog.* setting is an error rather than a silent placeholder.
 * catalog.actor and catalog.request_id are therefore real settings here:
 * plain SQL applications set them per transaction with
 * set_config('catalog.actor', 'user-42', true).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"

char	   *catalog_actor = NULL;
char	   *catalog_request_id = NULL;
int			catalog_idempotency_ttl = 86400;
int			catalog_search_timeout = 1000;
int			catalog_audit_mask_method = AUDIT_MASK_HASH;
int			catalog_audit_seal_interval = 1000;
char	   *catalog_audit_seal_database = NULL;
int			catalog_audit_seal_batch = 10000;
int			catalog_audit_months_ahead = 3;
int			catalog_audit_lock_timeout = 5000;
bool		catalog_rate_limit = true;
double		catalog_rate_limit_read_rate = 100;
int			catalog_rate_limit_read_burst = 200;
double		catalog_rate_limit_write_rate = 20;
int			catalog_rate_limit_write_burst = 40;
int			catalog_rate_limit_keys = 65536;
int			catalog_rate_limit_trusted_proxies = 0;
int			catalog_debug_rate_limit_hold = 0;
char	   *catalog_csrf_session_cookie = NULL;
char	   *catalog_csrf_cookie = NULL;
char	   *catalog_csrf_header = NULL;
bool		catalog_allow_table_changes = false;

/*
 * check_rate
 *	  A default rate is 0 (no limit) or 0.001 to 1e6 requests per second,
 *	  like a row of catalog.rate_limit: below 0.001 the emission interval
 *	  would leave the range the limiter's arithmetic is proven for.
 */
static bool
check_rate(double *newval, void **extra, GucSource source)
{
	if (*newval == 0 || (*newval >= 0.001 && *newval <= 1000000))
		return true;
	GUC_check_errdetail("A rate is 0 (no limit) or between 0.001 and 1000000 requests per second.");
	return false;
}

/*
 * http_token
 *	  Whether s is 1 to 64 characters of an HTTP token (RFC 9110 tchar:
 *	  ASCII letters, digits and !#$%&'*+-.^_`|~), in lower case when
 *	  lower.  A cookie or header name outside that set could never match
 *	  what PostgREST passes: the token's cookie or header never found
 *	  (every cookie session refused), or the session cookie never found
 *	  (the check never applied).  Refused when the setting is made; at
 *	  server start (or when a session first loads the library) PostgreSQL
 *	  only warns about a refused value of a custom setting and keeps the
 *	  default.  The empty-name checks of token.c stay as a second line.
 */
static bool
http_token(const char *s, bool lower)
{
	size_t		len = s == NULL ? 0 : strlen(s);

	if (len < 1 || len > 64)
		return false;
	for (const char *p = s; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			strchr("!#$%&'*+-.^_`|~", c) != NULL)
			continue;
		if (c >= 'A' && c <= 'Z' && !lower)
			continue;
		return false;
	}
	return true;
}

/* catalog.csrf_session_cookie, catalog.csrf_cookie: cookie names. */
static bool
check_cookie_name(char **newval, void **extra, GucSource source)
{
	if (http_token(*newval, false))
		return true;
	GUC_check_errdetail("A cookie name is 1 to 64 letters, digits or !#$%%&'*+-.^_`|~.");
	return false;
}

/* catalog.csrf_header: PostgREST passes header names in lower case. */
static bool
check_header_name(char **newval, void **extra, GucSource source)
{
	if (http_token(*newval, true))
		return true;
	GUC_check_errdetail("A header name is 1 to 64 lower-case letters, digits or !#$%%&'*+-.^_`|~.");
	GUC_check_errhint("PostgREST passes request headers with lower-case names.");
	return false;
}

/*
 * catalog.audit_seal_database: a database name (1 to NAMEDATALEN - 1
 * bytes).  An empty one made the worker fail to connect, and restart to
 * fail again, for as long as it stayed set.
 */
static bool
check_database_name(char **newval, void **extra, GucSource source)
{
	size_t		len = *newval == NULL ? 0 : strlen(*newval);

	if (len >= 1 && len < NAMEDATALEN)
		return true;
	GUC_check_errdetail("A database name is 1 to %d bytes.", NAMEDATALEN - 1);
	return false;
}

static const struct config_enum_entry audit_mask_method_options[] = {
	{"hash", AUDIT_MASK_HASH, false},
	{"redact", AUDIT_MASK_REDACT, false},
	{NULL, 0, false}
};

/*
 * CatalogDefineGucs
 *	  Register every catalog.* setting.  Called once from _PG_init.
 */
void
CatalogDefineGucs(void)
{
	DefineCustomStringVariable("catalog.actor",
							   "Identity of the caller when no PostgREST JWT subject is present.",
							   "Set per transaction by SQL applications; the JWT claim \"sub\" takes precedence.",
							   &catalog_actor,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("catalog.request_id",
							   "Correlation id of the current request when no x-request-id header is present.",
							   NULL,
							   &catalog_request_id,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.idempotency_ttl",
							"How long an idempotency key is remembered.",
							NULL,
							&catalog_idempotency_ttl,
							86400,
							60,
							30 * 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.search_timeout",
							"Longest a search_products or product_facets call may run.",
							"A longer call fails with SQLSTATE 57014.  Only a superuser may change it.",
							&catalog_search_timeout,
							1000,
							10,
							600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("catalog.audit_mask_method",
							 "How audit rows mask values that match a built-in pattern.",
							 "hash: a keyed HMAC-SHA256, so equal values stay equal; redact: \"[redacted]\".  "
							 "Declared masks (catalog_api.audit_mask_set) carry their own method.",
							 &catalog_audit_mask_method,
							 AUDIT_MASK_HASH,
							 audit_mask_method_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.audit_seal_interval",
							"How often the background worker seals audit rows into the hash chain.",
							"0 disables the worker's sealing (seal with catalog_api.audit_seal() instead).",
							&catalog_audit_seal_interval,
							1000,
							0,
							3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("catalog.audit_seal_database",
							   "Database whose audit rows the background worker seals.",
							   "The worker restarts itself to follow a change.",
							   &catalog_audit_seal_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   check_database_name, NULL, NULL);

	DefineCustomIntVariable("catalog.audit_seal_batch",
							"Most audit rows the background worker seals in one transaction.",
							NULL,
							&catalog_audit_seal_batch,
							10000,
							1,
							1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.audit_months_ahead",
							"How many monthly audit partitions the background worker keeps created ahead.",
							NULL,
							&catalog_audit_months_ahead,
							3,
							1,
							36,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.audit_lock_timeout",
							"Longest audit maintenance, retention or a worker's sealing pass waits for a lock on the audit tables.",
							"Past it the call fails with SQLSTATE 55P03, so writers never queue behind it for longer; "
							"a shorter lock_timeout of the session wins.  Only a superuser may change it.",
							&catalog_audit_lock_timeout,
							5000,
							1,
							3600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("catalog.allow_table_changes",
							 "Allows changing, dropping or renaming a column of the extension's tables, or renaming or moving one.",
							 "For emergency repairs only: sessions already running may misread the changed column "
							 "until they reconnect.  Only a superuser may change it.",
							 &catalog_allow_table_changes,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("catalog.rate_limit",
							 "Whether API requests are rate limited.",
							 "Only a superuser may change it (ALTER SYSTEM, ALTER ROLE ... SET).",
							 &catalog_rate_limit,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("catalog.rate_limit_read_rate",
							 "Default rate of read requests per key, in requests per second (0: no limit).",
							 "A row of catalog.rate_limit (catalog_api.rate_limit_set) overrides it per caller class.",
							 &catalog_rate_limit_read_rate,
							 100,
							 0,
							 1000000,
							 PGC_SUSET,
							 0,
							 check_rate, NULL, NULL);

	DefineCustomIntVariable("catalog.rate_limit_read_burst",
							"Default burst of read requests per key (requests allowed at once).",
							NULL,
							&catalog_rate_limit_read_burst,
							200,
							1,
							1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomRealVariable("catalog.rate_limit_write_rate",
							 "Default rate of write requests per key, in requests per second (0: no limit).",
							 "A row of catalog.rate_limit (catalog_api.rate_limit_set) overrides it per caller class.",
							 &catalog_rate_limit_write_rate,
							 20,
							 0,
							 1000000,
							 PGC_SUSET,
							 0,
							 check_rate, NULL, NULL);

	DefineCustomIntVariable("catalog.rate_limit_write_burst",
							"Default burst of write requests per key (requests allowed at once).",
							NULL,
							&catalog_rate_limit_write_burst,
							40,
							1,
							1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * A PGC_POSTMASTER setting can only be defined while the postmaster
	 * loads the library; a backend that loads it later (no preload) has no
	 * limiter anyway.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("catalog.rate_limit_keys",
								"Capacity of the rate limiter: keys held in shared memory.",
								"About 165 bytes each (the entry and its share of the hash chain heads and of the heap).  When every entry of a partition is limited, a new key is refused.",
								&catalog_rate_limit_keys,
								65536,
								64,
								16 * 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.rate_limit_trusted_proxies",
							"Number of reverse proxies in front of PostgREST whose x-forwarded-for entries are trusted.",
							"0: forwarded addresses are ignored and a request without JWT sub is keyed by session user.",
							&catalog_rate_limit_trusted_proxies,
							0,
							0,
							16,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("catalog.debug_rate_limit_hold",
							"Developer option: hold a rate limiter partition lock this long per request.",
							"For the test that proves unrelated keys never wait; never set it in production.",
							&catalog_debug_rate_limit_hold,
							0,
							0,
							10000,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("catalog.csrf_session_cookie",
							   "Cookie that carries the session of cookie-authenticated requests.",
							   "A state-changing request that carries it must present a CSRF token.",
							   &catalog_csrf_session_cookie,
							   "session",
							   PGC_SIGHUP,
							   0,
							   check_cookie_name, NULL, NULL);

	DefineCustomStringVariable("catalog.csrf_cookie",
							   "Cookie of the double-submitted CSRF token.",
							   NULL,
							   &catalog_csrf_cookie,
							   "__Host-csrf",
							   PGC_SIGHUP,
							   0,
							   check_cookie_name, NULL, NULL);

	DefineCustomStringVariable("catalog.csrf_header",
							   "Request header (lower case) of the double-submitted CSRF token.",
							   NULL,
							   &catalog_csrf_header,
							   "x-csrf-token",
							   PGC_SIGHUP,
							   0,
							   check_header_name, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("catalog");
#else
	EmitWarningsOnPlaceholders("catalog");
#endif
}
