/*-------------------------------------------------------------------------
 *
 * health.c
 *	  catalog_api.health(): readiness for load balancers.
 *
 * The answer is built from state that needs no table write, so it works
 * in read-only transactions and on hot standbys:
 *	status			"ok", or "degraded" when shared memory is missing or the
 *					installed extension version differs from the library's
 *	version			the installed extension version (pg_extension)
 *	library_version	the version compiled into the loaded library
 *	in_recovery		true on a hot standby
 *	shared_memory	whether the preloaded shared state is available
 *	server_version	server_version_num (catalog_admin only)
 *	api_calls		API calls since server start (catalog_admin only; null
 *					without shared memory)
 *	rate_limiter	the limiter's state (catalog_admin only): "ok", "full"
 *					(a request was refused for lack of an entry within the
 *					last minute) or "unavailable", capacity, use, counters
 * The last two are left out for other callers: an anonymous probe learns
 * nothing about the server's version or traffic.
 * Under PostgREST (request.method set), a degraded answer also sets
 * response.status to 503 so a load balancer takes the node out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "api.h"
#include "document.h"
#include "ratelimit.h"
#include "shmem.h"

/*
 * The version this library was built as: default_version of catalog.control,
 * passed by the Makefile, so that the library and the extension scripts
 * carry one version, written once.
 */
#ifndef CATALOG_LIBRARY_VERSION
#error "CATALOG_LIBRARY_VERSION must be defined (the Makefile passes catalog.control's default_version)"
#endif

static ApiPlan plan_version = {
	"SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'catalog'",
	0, {InvalidOid},
	NULL
};

PG_FUNCTION_INFO_V1(catalog_health);
/*
 * catalog_health
 *	  SQL: catalog_api.health() -> jsonb
 */
Datum
catalog_health(PG_FUNCTION_ARGS)
{
	CatalogSharedState *shared = ShmemState();
	JsonbParseState *state = NULL;
	JsonbValue *res;
	char	   *version = NULL;
	bool		degraded;
	const char *method;

	ShmemCountCall();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ApiExecute(&plan_version, NULL, NULL, true, 1) == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		version = SPI_palloc(strlen(v) + 1);
		strcpy(version, v);
	}
	SPI_finish();

	degraded = (shared == NULL) || version == NULL ||
		strcmp(version, CATALOG_LIBRARY_VERSION) != 0;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	DocPushText(&state, "status", DocCString(degraded ? "degraded" : "ok"));
	DocPushText(&state, "version", DocCString(version));
	DocPushText(&state, "library_version", DocCString(CATALOG_LIBRARY_VERSION));
	DocPushBool(&state, "in_recovery", RecoveryInProgress());
	DocPushBool(&state, "shared_memory", shared != NULL);
	if (ApiCallerHasRole("catalog_admin"))
	{
		DocPushInt(&state, "server_version", PG_VERSION_NUM);
		if (shared != NULL)
			DocPushInt(&state, "api_calls", (int64) ShmemApiCalls());
		else
			DocPushText(&state, "api_calls", DocCString(NULL));
		RateLimitPushHealth(&state);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	method = GetConfigOption("request.method", true, false);
	if (degraded && method != NULL && method[0] != '\0')
		(void) set_config_option("response.status", "503",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);

	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
