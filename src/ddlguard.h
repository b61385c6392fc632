/*-------------------------------------------------------------------------
 *
 * ddlguard.h
 *	  The guard against column changes of the extension's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_DDLGUARD_H
#define CATALOG_DDLGUARD_H

extern void DdlGuardInstall(void);

#endif							/* CATALOG_DDLGUARD_H */
