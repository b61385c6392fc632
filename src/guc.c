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

#include "utils/guc.h"

#include "guc.h"

char	   *catalog_actor = NULL;
char	   *catalog_request_id = NULL;
int			catalog_idempotency_ttl = 86400;
int			catalog_search_timeout = 1000;

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

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("catalog");
#else
	EmitWarningsOnPlaceholders("catalog");
#endif
}
