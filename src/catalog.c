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
 *	  columns (ddlguard.c); when preloaded, also request shared memory,
 *	  install the hooks that initialise it and register the sealer.
 *
 *	  Not the sealer under pg_upgrade, which starts both clusters with
 *	  postmaster -b (IsBinaryUpgrade, set before the preloaded libraries
 *	  are loaded), as pg_cron does: in the new cluster the worker would
 *	  hold a connection to the database it names (postgres by default)
 *	  while pg_restore drops and re-creates that database, failing the
 *	  upgrade; in the old one it would seal, writing transactions after
 *	  pg_upgrade has read the cluster's next transaction id, so that the
 *	  new cluster would hand the same ids out again.
 */
void
_PG_init(void)
{
	CatalogDefineGucs();
	DdlGuardInstall();

	if (process_shared_preload_libraries_in_progress)
	{
		ShmemInstallHooks();
		if (!IsBinaryUpgrade)
			AuditRegisterWorker();
	}
}
