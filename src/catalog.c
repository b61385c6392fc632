/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Module entry point of the catalog extension: module magic and
 *	  _PG_init, which only defines settings, installs hooks and registers
 *	  the audit sealer's background worker.
 *
 * Everything else lives in one file per concern (see README.md).  When
 * the library is loaded without shared_preload_libraries, the data
 * functions still work; functions that need shared memory raise 55000
 * (see shmem.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "audit.h"
#include "ddlguard.h"
#include "guc.h"
#include "shmem.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init
 *	  Define the extension's settings and install the guard of its tables'
 *	  columns (ddlguard.c); when preloaded, also request shared memory and
 *	  install the hooks that initialise it.
 */
void
_PG_init(void)
{
	CatalogDefineGucs();
	DdlGuardInstall();

	if (process_shared_preload_libraries_in_progress)
	{
		ShmemInstallHooks();
		AuditRegisterWorker();
	}
}
