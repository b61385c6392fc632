/*-------------------------------------------------------------------------
 *
 * ddlguard.c
 *	  Refuse column type changes and column drops on the extension's own
 *	  tables (a ProcessUtility hook).
 *
 * The API functions keep their SPI plans for the life of a backend and
 * read each result column as the type it was written for
 * (DatumGetNumeric, DatumGetJsonbP, ...).  A kept plan is re-planned after
 * an ALTER TABLE, and its result then carries the column's new type: after
 * ALTER COLUMN price TYPE float8, a by-value float8 would be read as a
 * numeric's pointer, and a dropped column shifts every column after it in
 * a "RETURNING *".  That is a crash of the server, not an error.  So,
 * like TimescaleDB for its internal tables, the extension refuses ALTER
 * TABLE ... ALTER COLUMN ... TYPE and DROP COLUMN on a table that belongs
 * to it with 0A000, except
 *	  - in the extension's own scripts (CREATE / ALTER EXTENSION UPDATE:
 *		creating_extension), which ship the C code that reads the new
 *		types, and in pg_upgrade's binary-upgrade restore;
 *	  - with catalog.allow_table_changes on (superuser only), an emergency
 *		repair switch in the manner of allow_system_table_mods: the caller
 *		takes the risk that sessions already running misread the new
 *		type until they reconnect.
 * Other changes (ADD COLUMN, indexes, triggers, renames: a kept plan that
 * names a renamed column fails to re-plan with an error) pass through.
 * The monthly audit partitions do not belong to the extension, but core
 * refuses both changes on a partition's inherited columns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "ddlguard.h"
#include "guc.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * check_alter_table
 *	  Raise 0A000 when stmt changes the type of, or drops, a column of a
 *	  table that belongs to the extension.
 */
static void
check_alter_table(AlterTableStmt *stmt)
{
	AlterTableCmd *bad = NULL;
	ListCell   *lc;
	Oid			extoid;
	Oid			relid;

	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL)
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_AlterColumnType || cmd->subtype == AT_DropColumn)
		{
			bad = cmd;
			break;
		}
	}
	if (bad == NULL)
		return;

	/* not installed in this database, or no such table: core decides */
	extoid = get_extension_oid("catalog", true);
	if (!OidIsValid(extoid))
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) ||
		getExtensionOfObject(RelationRelationId, relid) != extoid)
		return;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s column \"%s\" of table \"%s\", which belongs to extension \"catalog\"",
					bad->subtype == AT_DropColumn ? "drop" : "change the type of",
					bad->name ? bad->name : "?", get_rel_name(relid)),
			 errdetail("The extension's functions read its columns as the types they were written for."),
			 errhint("Change the extension's tables through its upgrade scripts (ALTER EXTENSION catalog UPDATE).")));
}

/*
 * catalog_process_utility
 *	  The hook: check, then run the statement as it would have run.
 */
static void
catalog_process_utility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (parsetree != NULL && IsA(parsetree, AlterTableStmt) &&
		!creating_extension && !IsBinaryUpgrade && !catalog_allow_table_changes)
		check_alter_table((AlterTableStmt *) parsetree);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * DdlGuardInstall
 *	  Install the hook (from _PG_init, once per backend).
 */
void
DdlGuardInstall(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = catalog_process_utility;
}
