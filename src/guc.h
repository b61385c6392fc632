/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  Settings of the catalog extension (catalog.*).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_GUC_H
#define CATALOG_GUC_H

extern char *catalog_actor;
extern char *catalog_request_id;
extern int	catalog_idempotency_ttl;
extern int	catalog_search_timeout;

/* catalog.audit_mask_method: how built-in patterns are masked */
typedef enum AuditMaskMethod
{
	AUDIT_MASK_HASH,
	AUDIT_MASK_REDACT
} AuditMaskMethod;

extern int	catalog_audit_mask_method;
extern int	catalog_audit_seal_interval;
extern char *catalog_audit_seal_database;
extern int	catalog_audit_seal_batch;
extern int	catalog_audit_months_ahead;
extern int	catalog_audit_lock_timeout;

extern bool catalog_rate_limit;
extern double catalog_rate_limit_read_rate;
extern int	catalog_rate_limit_read_burst;
extern double catalog_rate_limit_write_rate;
extern int	catalog_rate_limit_write_burst;
extern int	catalog_rate_limit_keys;
extern int	catalog_rate_limit_trusted_proxies;
extern int	catalog_debug_rate_limit_hold;
extern char *catalog_csrf_session_cookie;
extern char *catalog_csrf_cookie;
extern char *catalog_csrf_header;
extern bool catalog_allow_table_changes;

extern void CatalogDefineGucs(void);

#endif							/* CATALOG_GUC_H */
