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
 * to it with 0A000, ALTER COLUMN ... DROP NOT NULL (the C code reads a NOT
 * NULL column's datum without a null test: a NULL stored afterwards would
 * be dereferenced), and the changes that would reach a column later
 * (renaming the column or the table, moving the table to another schema,
 * INHERIT, OF, ATTACH and DETACH PARTITION: see check_statement), except
 *	  - in the extension's own scripts (CREATE / ALTER EXTENSION catalog
 *		UPDATE), which ship the C code that reads the new types, and in
 *		pg_upgrade's binary-upgrade restore;
 *	  - with catalog.allow_table_changes on (superuser only), an emergency
 *		repair switch in the manner of allow_system_table_mods: the caller
 *		takes the risk that sessions already running misread the new
 *		type until they reconnect.
 * Other changes (ADD COLUMN, indexes, triggers) pass through.  The monthly
 * audit partitions do not belong to the extension, but core refuses a
 * type change or drop of a partition's inherited columns.
 * The hook is installed when the library is loaded: with
 * shared_preload_libraries (the supported set-up) in every session; a
 * session that has not loaded the library is not guarded.  It guards
 * against mistakes, not against a superuser set on harm (who can
 * disable it, or load other code).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "ddlguard.h"
#include "guc.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Why a change is refused: what the DETAIL says. */
typedef enum GuardWhy
{
	GUARD_TYPE,					/* columns are read as their types */
	GUARD_NAME,					/* objects are named in the SQL */
	GUARD_NULL,					/* NOT NULL columns are read without a test */
	GUARD_TREE,					/* a partition tree's ALTER recurses into it */
	GUARD_EXPR,					/* a generated column is read as generated */
	GUARD_TREE_CHILD			/* a child's rows show in the parent's scans */
} GuardWhy;

/*
 * member_table
 *	  The table rv names, when it belongs to the extension; else InvalidOid
 *	  (also when the extension is not installed in this database or rv
 *	  names nothing: core then decides).
 */
static Oid
member_table(RangeVar *rv)
{
	Oid			extoid;
	Oid			relid;

	if (rv == NULL)
		return InvalidOid;
	extoid = get_extension_oid("catalog", true);
	if (!OidIsValid(extoid))
		return InvalidOid;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) ||
		getExtensionOfObject(RelationRelationId, relid) != extoid)
		return InvalidOid;
	return relid;
}

/*
 * member_object
 *	  The address of the object a RenameStmt or AlterObjectSchemaStmt names
 *	  (not a relation: member_table judges those), when it belongs to the
 *	  extension (its enum type, its functions: objects its SQL and C code
 *	  name); else an invalid address (also when it does not exist: core
 *	  reports that).
 */
static ObjectAddress
member_object(ObjectType type, Node *object)
{
	Oid			extoid;
	ObjectAddress addr = InvalidObjectAddress;

	if (object == NULL)
		return addr;
	extoid = get_extension_oid("catalog", true);
	if (!OidIsValid(extoid))
		return addr;

	/*
	 * Looked up without a lock (get_object_address would take one): only
	 * membership is judged, and core looks the name up again and locks the
	 * object itself; a lock taken here and upgraded there made two
	 * concurrent renames of any function deadlock.
	 */
	switch (type)
	{
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			/* these statements name a type by a list of names */
			addr.classId = TypeRelationId;
			addr.objectId = LookupTypeNameOid(NULL, IsA(object, List) ?
											  makeTypeNameFromNameList((List *) object) :
											  castNode(TypeName, object), true);
			break;
		case OBJECT_FUNCTION:
		case OBJECT_PROCEDURE:
		case OBJECT_ROUTINE:
		case OBJECT_AGGREGATE:
			addr.classId = ProcedureRelationId;
			addr.objectId = LookupFuncWithArgs(type, castNode(ObjectWithArgs, object), true);
			break;
		default:
			/* the extension has no other kind of object a name is kept of */
			return addr;
	}
	if (!OidIsValid(addr.objectId) ||
		getExtensionOfObject(addr.classId, addr.objectId) != extoid)
		return InvalidObjectAddress;
	return addr;
}

/* The hint of every refusal. */
#define GUARD_HINT "Change the extension's tables through its upgrade scripts (ALTER EXTENSION catalog UPDATE)."

/* What relid is, in a message: a member may be a table, sequence, view or index. */
static const char *
relkind_noun(Oid relid)
{
	switch (get_rel_relkind(relid))
	{
		case RELKIND_SEQUENCE:
			return "sequence";
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			return "index";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		case RELKIND_COMPOSITE_TYPE:
			return "type";
		default:
			return "table";
	}
}

/*
 * Raise 0A000: what would happen to relation relid (column col, or NULL);
 * why says what it would break (the DETAIL): a column's type, a name (the
 * column's, or the relation's name or schema), or a column's NOT NULL.
 */
static void
refuse(const char *what, const char *col, Oid relid, GuardWhy why)
{
	if (col != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s column \"%s\" of %s \"%s\", which belongs to extension \"catalog\"",
						what, col, relkind_noun(relid), get_rel_name(relid)),
				 why == GUARD_NAME ? errdetail("The extension's functions refer to its columns by name.") :
				 why == GUARD_NULL ? errdetail("The extension's functions read its NOT NULL columns without a null test.") :
				 why == GUARD_EXPR ? errdetail("The extension's search and audit read the generated column as generated from the row.") :
				 errdetail("The extension's functions read its columns as the types they were written for."),
				 errhint(GUARD_HINT)));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s %s \"%s\", which belongs to extension \"catalog\"",
					what, relkind_noun(relid), get_rel_name(relid)),
			 why == GUARD_NAME ? errdetail("The extension's functions refer to it by its schema and name.") :
			 why == GUARD_TREE ? errdetail("An ALTER of a partitioned table reaches its partitions, and the audit trigger writes into the extension's default partition.") :
			 why == GUARD_TREE_CHILD ? errdetail("A child table's rows would show in the extension's scans of the table, but not in its lookups by key.") :
			 errdetail("The extension's functions read its columns as the types they were written for."),
			 errhint(GUARD_HINT)));
}

/* Raise 0A000 for a member object that is not a relation (member_object). */
static void
refuse_object(const char *what, ObjectAddress addr)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s %s, which belongs to extension \"catalog\"",
					what, getObjectDescription(&addr, false)),
			 errdetail("The extension's functions refer to it by its schema, name and labels."),
			 errhint(GUARD_HINT)));
}

/*
 * check_statement
 *	  Raise 0A000 when parsetree would change what a column of one of the
 *	  extension's tables is, directly or later through another object:
 *	  ALTER COLUMN ... TYPE, DROP COLUMN and DROP NOT NULL; DROP (or, from
 *	  PostgreSQL 17, SET) EXPRESSION of a generated column (search_doc: a
 *	  plain column would leave new products unsearchable and be audited as
 *	  data); renaming a column (a rename
 *	  and an added column of the old name give a kept plan another type)
 *	  or the table, or moving it to another schema (a new table could
 *	  take its name); INHERIT and OF (an ALTER of the parent table or of
 *	  the type would then change the column).  Also renaming a constraint
 *	  of such a table (the API tells a duplicate SKU by its unique
 *	  constraint's name), CREATE TABLE ... INHERITS one (the child's rows
 *	  would show in searches of the parent, which get_product, reading the
 *	  table alone, cannot find), and renaming or moving any other object of
 *	  the extension, or renaming a label of its enum type (the code names
 *	  catalog.product_status and compares its labels: renaming 'draft' to
 *	  'published' would show drafts to anonymous callers).
 */
static void
check_statement(Node *parsetree)
{
	Oid			relid;

	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		AlterTableCmd *bad = NULL;
		ListCell   *lc;

		/*
		 * INHERIT names the parent in the command: a table (or foreign
		 * table) of anyone's made a child of one of the extension's tables
		 * is refused as CREATE TABLE ... INHERITS is.
		 */
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype == AT_AddInherit && cmd->def != NULL && IsA(cmd->def, RangeVar) &&
				OidIsValid(relid = member_table((RangeVar *) cmd->def)))
				refuse("inherit from", NULL, relid, GUARD_TREE_CHILD);
		}
		if (stmt->objtype != OBJECT_TABLE)
			return;
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			/*
			 * ATTACH and DETACH name the partition in the command, not in
			 * the statement: judge the partition.  The monthly audit
			 * partitions that audit_maintain attaches do not belong to
			 * the extension.
			 */
			if ((cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition ||
				 cmd->subtype == AT_DetachPartitionFinalize) &&
				cmd->def != NULL && IsA(cmd->def, PartitionCmd) &&
				OidIsValid(relid = member_table(((PartitionCmd *) cmd->def)->name)))
				refuse(cmd->subtype == AT_AttachPartition ? "attach" : "detach",
					   NULL, relid, GUARD_TREE);
			if (cmd->subtype == AT_AlterColumnType || cmd->subtype == AT_DropColumn ||
				cmd->subtype == AT_DropNotNull || cmd->subtype == AT_DropExpression ||
#if PG_VERSION_NUM >= 170000
				cmd->subtype == AT_SetExpression ||
#endif
				cmd->subtype == AT_AddInherit || cmd->subtype == AT_AddOf)
			{
				bad = cmd;
				break;
			}
		}
		if (bad == NULL || !OidIsValid(relid = member_table(stmt->relation)))
			return;
		switch (bad->subtype)
		{
			case AT_AlterColumnType:
				refuse("change the type of", bad->name, relid, GUARD_TYPE);
				break;
			case AT_DropColumn:
				refuse("drop", bad->name, relid, GUARD_TYPE);
				break;
			case AT_DropNotNull:
				refuse("drop NOT NULL of", bad->name, relid, GUARD_NULL);
				break;
			case AT_DropExpression:
#if PG_VERSION_NUM >= 170000
			case AT_SetExpression:
#endif
				refuse("change the expression of", bad->name, relid, GUARD_EXPR);
				break;
			case AT_AddInherit:
				refuse("make a parent of", NULL, relid, GUARD_TYPE);
				break;
			default:
				refuse("make a typed table of", NULL, relid, GUARD_TYPE);
				break;
		}
	}
	else if (IsA(parsetree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		/*
		 * Core renames a relation, or its column, whatever kind the
		 * statement names (ALTER INDEX catalog.product RENAME TO ..., ALTER
		 * VIEW catalog.product RENAME COLUMN ...): judge the relation.
		 */
		switch (stmt->renameType)
		{
			case OBJECT_COLUMN:
			case OBJECT_ATTRIBUTE:
				if (OidIsValid(relid = member_table(stmt->relation)))
					refuse("rename", stmt->subname, relid, GUARD_NAME);
				break;
			case OBJECT_TABLE:
			case OBJECT_INDEX:
			case OBJECT_VIEW:
			case OBJECT_MATVIEW:
			case OBJECT_FOREIGN_TABLE:
			case OBJECT_SEQUENCE:
				if (OidIsValid(relid = member_table(stmt->relation)))
					refuse("rename", NULL, relid, GUARD_NAME);
				break;
			case OBJECT_TABCONSTRAINT:
				if (OidIsValid(relid = member_table(stmt->relation)))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot rename constraint \"%s\" of table \"%s\", which belongs to extension \"catalog\"",
									stmt->subname, get_rel_name(relid)),
							 errdetail("The extension's functions tell a constraint's violation by its name."),
							 errhint(GUARD_HINT)));
				break;
			case OBJECT_SCHEMA:
				{
					Oid			extoid = get_extension_oid("catalog", true);

					/* the schemas the install script creates and names */
					if (OidIsValid(extoid) && stmt->subname != NULL &&
						(strcmp(stmt->subname, "catalog") == 0 ||
						 strcmp(stmt->subname, "catalog_api") == 0))
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot rename schema \"%s\", which belongs to extension \"catalog\"",
										stmt->subname),
								 errdetail("The extension's functions name their tables and functions by schema."),
								 errhint(GUARD_HINT)));
					break;
				}
			default:
				{
					ObjectAddress addr;

					/* a type, a function, ...: named by stmt->object */
					if (stmt->relation == NULL &&
						OidIsValid((addr = member_object(stmt->renameType, stmt->object)).objectId))
						refuse_object("rename", addr);
					break;
				}
		}
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt))
	{
		AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;
		ObjectAddress addr;

		if (stmt->relation != NULL)
		{
			if (OidIsValid(relid = member_table(stmt->relation)))
				refuse("move", NULL, relid, GUARD_NAME);
		}
		else if (OidIsValid((addr = member_object(stmt->objectType, stmt->object)).objectId))
			refuse_object("move", addr);
	}
	else if (IsA(parsetree, AlterEnumStmt))
	{
		AlterEnumStmt *stmt = (AlterEnumStmt *) parsetree;
		ObjectAddress addr;

		/* RENAME VALUE; ADD VALUE passes (no label the code knows changes) */
		if (stmt->oldVal != NULL &&
			OidIsValid((addr = member_object(OBJECT_TYPE, (Node *) stmt->typeName)).objectId))
			refuse_object("rename a label of", addr);
	}
	else if (IsA(parsetree, CreateStmt) || IsA(parsetree, CreateForeignTableStmt))
	{
		/* a foreign table's statement starts with a CreateStmt */
		CreateStmt *stmt = IsA(parsetree, CreateStmt) ? (CreateStmt *) parsetree :
			&((CreateForeignTableStmt *) parsetree)->base;
		ListCell   *lc;

		/* PARTITION OF names its parent here too: audit_maintain's partitions */
		if (stmt->partbound != NULL)
			return;
		foreach(lc, stmt->inhRelations)
		{
			RangeVar   *parent = lfirst_node(RangeVar, lc);

			if (OidIsValid(relid = member_table(parent)))
				refuse("inherit from", NULL, relid, GUARD_TREE_CHILD);
		}
	}
}

/*
 * in_own_script
 *	  Whether this is the extension's own CREATE or ALTER EXTENSION UPDATE
 *	  script (another extension's script is not).
 */
static bool
in_own_script(void)
{
	return creating_extension &&
		CurrentExtensionObject == get_extension_oid("catalog", true);
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

	if (parsetree != NULL &&
		(IsA(parsetree, AlterTableStmt) || IsA(parsetree, RenameStmt) ||
		 IsA(parsetree, AlterObjectSchemaStmt) || IsA(parsetree, AlterEnumStmt) ||
		 IsA(parsetree, CreateStmt) || IsA(parsetree, CreateForeignTableStmt)) &&
		!IsBinaryUpgrade && !catalog_allow_table_changes && !in_own_script())
		check_statement(parsetree);

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
