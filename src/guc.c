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
int			catalog_audit_mask_method = AUDIT_MASK_HASH;
int			catalog_audit_seal_interval = 1000;
char	   *catalog_audit_seal_database = NULL;
int			catalog_audit_seal_batch = 10000;
int			catalog_audit_months_ahead = 3;

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
							   NULL, NULL, NULL);

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

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("catalog");
#else
	EmitWarningsOnPlaceholders("catalog");
#endif
}
