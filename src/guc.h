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

extern void CatalogDefineGucs(void);

#endif							/* CATALOG_GUC_H */
