/*-------------------------------------------------------------------------
 *
 * category.c
 *	  The category tree: create, update (rename, move), list, and the
 *	  trigger that makes cycles impossible.
 *
 * Cycle prevention.  Every insert with a parent and every move (a change
 * of parent_id) is checked by the BEFORE trigger
 * catalog.category_tree_guard, whatever path it comes from.  Two changes
 * that are each fine alone can break the tree together (A under B while B
 * goes under A; a child added under a subtree that is being moved deeper),
 * so every structural change is serialised by the row lock of the single
 * row of catalog.category_tree_lock, taken with an UPDATE.  A table row
 * rather than an advisory lock: only catalog_owner can lock it, whereas
 * any login can take (and hold) any advisory lock.
 *	- Under READ COMMITTED, once the lock is held no other structural change
 *	  is in progress and every later statement sees the committed tree, so
 *	  the walk of the new parent's ancestors and the subtree height are
 *	  exact without locking the rows walked.
 *	- Under REPEATABLE READ, the UPDATE of the lock row fails with a
 *	  serialization failure when another structural change committed after
 *	  the snapshot was taken, which ApiRunWrite reports as PT409: a stale
 *	  snapshot can never pass the check.
 * The API functions take the lock first, before any category row lock, so
 * their lock order is always: tree lock, then rows.  The trigger takes it
 * again (the same transaction already holds it) for statements that do not
 * come through the API: every write statement on the table, renames and
 * deletes included, so that a plain transaction never holds a category row
 * without the tree lock.
 * The tree is at most CATEGORY_MAX_DEPTH levels deep, so every walk is
 * bounded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "api.h"
#include "validate_sql.h"
#include "ratelimit.h"

#define CATEGORY_MAX_DEPTH		32

#define CATEGORY_DOC \
	"pg_catalog.jsonb_build_object('id', c.id, 'parent_id', c.parent_id," \
	" 'slug', c.slug, 'name', c.name, 'version', c.version)"

static ApiPlan plan_insert = {
	"INSERT INTO catalog.category AS c (parent_id, slug, name, created_by, updated_by)"
	" VALUES ($1, $2, $3, $4, $4)"
	" RETURNING " CATEGORY_DOC,
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID},
	NULL
};

static ApiPlan plan_exists = {
	"SELECT 1 FROM catalog.category WHERE id = $1",
	1, {INT8OID},
	NULL
};

static ApiPlan plan_update = {
	"UPDATE catalog.category AS c SET"
	" name = COALESCE($3, c.name), slug = COALESCE($4, c.slug),"
	" parent_id = CASE WHEN $5 THEN $6 ELSE c.parent_id END,"
	" updated_at = pg_catalog.now(), updated_by = $7, version = c.version + 1"
	" WHERE c.id = $1 AND c.version = $2"
	" AND (c.name, c.slug, c.parent_id) IS DISTINCT FROM"
	"     (COALESCE($3, c.name), COALESCE($4, c.slug),"
	"      CASE WHEN $5 THEN $6 ELSE c.parent_id END)"
	" RETURNING " CATEGORY_DOC,
	7, {INT8OID, INT4OID, TEXTOID, TEXTOID, BOOLOID, INT8OID, TEXTOID},
	NULL
};

static ApiPlan plan_get = {
	"SELECT c.version, " CATEGORY_DOC " FROM catalog.category c WHERE c.id = $1",
	1, {INT8OID},
	NULL
};

static ApiPlan plan_list = {
	"WITH RECURSIVE t AS ("
	" SELECT c.id, c.parent_id, c.slug, c.name, c.version, 1 AS depth,"
	"        ARRAY[c.id] AS path"
	" FROM catalog.category c WHERE c.parent_id IS NULL"
	" UNION ALL"
	" SELECT c.id, c.parent_id, c.slug, c.name, c.version, t.depth + 1, t.path || c.id"
	" FROM catalog.category c JOIN t ON c.parent_id = t.id"
	" WHERE t.depth < " CppAsString2(CATEGORY_MAX_DEPTH) ")"
	" SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"   'id', c.id, 'parent_id', c.parent_id, 'slug', c.slug, 'name', c.name,"
	"   'version', c.version, 'depth', c.depth) ORDER BY c.path), '[]')"
	" FROM t AS c",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_lock_tree_row = {
	"SELECT xmin FROM catalog.category_tree_lock FOR NO KEY UPDATE",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_lock_tree = {
	"UPDATE catalog.category_tree_lock SET changes = changes + 1",
	0, {InvalidOid},
	NULL
};

static ApiPlan plan_parent = {
	"SELECT parent_id FROM catalog.category WHERE id = $1",
	1, {INT8OID},
	NULL
};

static ApiPlan plan_height = {
	"WITH RECURSIVE sub AS ("
	" SELECT id, 1 AS h FROM catalog.category WHERE parent_id = $1"
	" UNION ALL"
	" SELECT c.id, sub.h + 1 FROM catalog.category c JOIN sub ON c.parent_id = sub.id"
	" WHERE sub.h <= " CppAsString2(CATEGORY_MAX_DEPTH) ")"
	" SELECT COALESCE(pg_catalog.max(h), 0) FROM sub",
	1, {INT8OID},
	NULL
};

/*
 * lock_tree
 *	  Take the row lock that serialises structural changes of the tree
 *	  (held to the end of the transaction).  Must be called inside SPI.
 */
static void
lock_tree(void)
{
	bool		isnull;
	TransactionId xmin;

	/*
	 * Lock the row; if this transaction already wrote it, the lock is held
	 * and nothing more is needed.  Otherwise write a new version once, so
	 * that a REPEATABLE READ transaction whose snapshot predates this one
	 * fails on the row (a bare lock would leave no trace of the change).
	 * One row version per transaction, not per trigger call.
	 */
	if (ApiExecute(&plan_lock_tree_row, NULL, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the row of catalog.category_tree_lock is missing"),
				 errhint("Restore it with INSERT INTO catalog.category_tree_lock DEFAULT VALUES.")));
	xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	if (TransactionIdIsCurrentTransactionId(xmin))
		return;
	if (ApiExecute(&plan_lock_tree, NULL, NULL, false, 0) != 1)
		elog(ERROR, "could not update the row of catalog.category_tree_lock");
}

/*
 * check_parent
 *	  Refuse parent (none when !has_parent: a root) as the parent of node: a cycle,
 *	  a missing parent or a tree deeper than CATEGORY_MAX_DEPTH.  The caller
 *	  holds the tree lock (see the file header).  Must be called inside SPI.
 */
static void
check_parent(int64 node, bool has_parent, int64 parent, bool is_move)
{
	int64		cur = parent;
	int			depth = 0;		/* levels from the root to parent */
	int			height = 0;		/* levels below node */
	bool		isnull = !has_parent;

	while (!isnull)
	{
		Datum		arg = Int64GetDatum(cur);
		Datum		up;

		if (cur == node)
			ValidateRaiseReason("parent_id", "cycle");
		if (++depth >= CATEGORY_MAX_DEPTH)
		{
			ValidateError err = {"too_deep", CATEGORY_MAX_DEPTH, -1};

			ValidateRaise("parent_id", &err);
		}
		if (ApiExecute(&plan_parent, &arg, NULL, false, 1) != 1)
		{
			/*
			 * A new row cannot close a cycle, and an ancestor of it may
			 * legitimately be missing for now: a restore loads the whole
			 * table with one COPY in physical order, children before a
			 * parent that was updated later.  The ancestor's own insert,
			 * later in the same statement, measures the subtree that
			 * includes this row, and the foreign key (checked at the end
			 * of the statement) refuses a parent that is still missing.
			 * The API checks the parent itself before inserting.
			 */
			if (!is_move)
				return;
			ValidateRaiseReason("parent_id", "not_found");
		}
		up = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			cur = DatumGetInt64(up);
	}

	/*
	 * The subtree below node: for a move, the node's descendants; for an
	 * insert, rows inserted earlier in the same statement (or COPY) that
	 * name the new id as their parent.
	 */
	{
		Datum		arg = Int64GetDatum(node);

		if (ApiExecute(&plan_height, &arg, NULL, false, 1) != 1)
			elog(ERROR, "could not measure the category subtree");
		height = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	/* node sits at depth + 1; its deepest descendant at depth + 1 + height */
	if (depth + 1 + height > CATEGORY_MAX_DEPTH)
	{
		ValidateError err = {"too_deep", CATEGORY_MAX_DEPTH, -1};

		ValidateRaise("parent_id", &err);
	}
}

PG_FUNCTION_INFO_V1(catalog_category_tree_guard);
/*
 * catalog_category_tree_guard
 *	  BEFORE trigger on catalog.category: for each INSERT, UPDATE or
 *	  DELETE statement, the tree lock (so plain SQL takes it before any
 *	  category row, as the API does); for each row inserted or whose
 *	  parent_id is updated, the checks (its lock_tree finds the lock
 *	  already held).  Both run as the function's owner, catalog_owner
 *	  (ApiOwnerBegin): only its policy shows the lock row, and an invoker
 *	  given a privilege on catalog.category by mistake must meet the
 *	  table's own policies, not a "missing lock row" error.
 */
Datum
catalog_category_tree_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	newtup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int64		node;
	int64		parent;
	bool		has_parent;
	bool		is_move;
	ApiOwnerState owner;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "category_tree_guard must be a BEFORE trigger");

	/*
	 * The statement trigger takes the tree lock before the statement locks
	 * any category row, the order the API functions use (tree, then rows).
	 * Taken only in the row trigger, a plain UPDATE would hold a row while
	 * waiting for the tree, and deadlock with an API call holding the tree
	 * and wanting that row.
	 */
	if (TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
	{
		ApiOwnerBegin(fcinfo->flinfo->fn_oid, &owner);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		lock_tree();
		SPI_finish();
		ApiOwnerEnd(&owner);
		return PointerGetDatum(NULL);
	}

	is_move = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	newtup = is_move ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = trigdata->tg_relation->rd_att;

	d = heap_getattr(newtup, SPI_fnumber(desc, "parent_id"), desc, &isnull);
	/* a move to the root shortens paths: nothing to check */
	if (isnull && is_move)
		return PointerGetDatum(newtup);
	has_parent = !isnull;
	parent = has_parent ? DatumGetInt64(d) : 0;

	if (is_move)
	{
		bool		oldnull;
		Datum		old = heap_getattr(trigdata->tg_trigtuple,
									   SPI_fnumber(desc, "parent_id"), desc, &oldnull);

		if (!oldnull && DatumGetInt64(old) == parent)
			return PointerGetDatum(newtup);
	}

	d = heap_getattr(newtup, SPI_fnumber(desc, "id"), desc, &isnull);
	node = isnull ? 0 : DatumGetInt64(d);

	ApiOwnerBegin(fcinfo->flinfo->fn_oid, &owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lock_tree();
	check_parent(node, has_parent, parent, is_move);
	SPI_finish();
	ApiOwnerEnd(&owner);
	return PointerGetDatum(newtup);
}

PG_FUNCTION_INFO_V1(catalog_id_immutable);
/*
 * catalog_id_immutable
 *	  BEFORE UPDATE OF id trigger on catalog.category and catalog.product,
 *	  for each row: an id never changes (22023 {"field": "id", "reason":
 *	  "immutable"}).  The tree guard fires on parent_id only, and a
 *	  statement that renumbers categories could otherwise rewire the tree
 *	  past it: the foreign key's NO ACTION check passes when another row
 *	  takes a vanished id in the same statement, so swapping the ids of a
 *	  root and a grandchild made a cycle.  A product's id is its audit
 *	  trail's row key and its idempotent replies' subject.  Setting an id
 *	  to its own value is allowed (a generic UPDATE that lists every column).
 */
Datum
catalog_id_immutable(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			attno;
	bool		oldnull;
	bool		newnull;
	Datum		oldid;
	Datum		newid;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "id_immutable must be a BEFORE UPDATE row trigger");

	desc = trigdata->tg_relation->rd_att;
	attno = SPI_fnumber(desc, "id");
	if (attno <= 0 || TupleDescAttr(desc, attno - 1)->atttypid != INT8OID)
		elog(ERROR, "id_immutable: table \"%s\" has no bigint column \"id\"",
			 RelationGetRelationName(trigdata->tg_relation));
	oldid = heap_getattr(trigdata->tg_trigtuple, attno, desc, &oldnull);
	newid = heap_getattr(trigdata->tg_newtuple, attno, desc, &newnull);
	if (oldnull != newnull || (!oldnull && DatumGetInt64(oldid) != DatumGetInt64(newid)))
		ValidateRaiseReason("id", "immutable");
	return PointerGetDatum(trigdata->tg_newtuple);
}

/*
 * create_category_impl
 *	  The body of create_category, run by ApiRunWrite.
 */
static Datum
create_category_impl(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *slug;
	char	   *actor;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Datum		result;
	bool		isnull;

	ApiRequireArg(fcinfo, 0, "name");
	ApiRequireArg(fcinfo, 1, "slug");
	name = ValidateTextArg("name", CATALOG_GETARG_RAW_TEXT(0), VT_PLAIN, 1,
						   CATALOG_CATEGORY_NAME_MAX);
	slug = ValidateTextArg("slug", CATALOG_GETARG_RAW_TEXT(1), VT_SLUG, 1,
						   CATALOG_SLUG_MAX);
	actor = ApiActor();

	values[0] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[0] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[1] = CStringGetTextDatum(slug);
	values[2] = CStringGetTextDatum(name);
	values[3] = CStringGetTextDatum(actor);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* Lock order: the tree lock first, then rows (see the file header). */
	lock_tree();
	if (!PG_ARGISNULL(2) &&
		ApiExecute(&plan_exists, values, NULL, false, 1) != 1)
		ValidateRaiseReason("parent_id", "not_found");
	if (ApiExecute(&plan_insert, values, nulls, false, 0) != 1)
		elog(ERROR, "category insert returned no row");
	result = ApiResultDatum(0, 1, &isnull);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(catalog_create_category);
/*
 * catalog_create_category
 *	  SQL: catalog_api.create_category(name, slug, parent_id) -> jsonb
 */
Datum
catalog_create_category(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_CREATE_CATEGORY);
	return ApiRunWrite(create_category_impl, fcinfo);
}

/*
 * update_category_impl
 *	  The body of update_category, run by ApiRunWrite.
 */
static Datum
update_category_impl(PG_FUNCTION_ARGS)
{
	int64		id;
	int32		expected;
	char	   *name = NULL;
	char	   *slug = NULL;
	bool		move;
	bool		to_root = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		result;
	bool		isnull;

	ApiRequireArg(fcinfo, 0, "id");
	ApiRequireArg(fcinfo, 1, "expected_version");
	id = PG_GETARG_INT64(0);
	expected = PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(2))
		name = ValidateTextArg("name", CATALOG_GETARG_RAW_TEXT(2), VT_PLAIN, 1,
							   CATALOG_CATEGORY_NAME_MAX);
	if (!PG_ARGISNULL(3))
		slug = ValidateTextArg("slug", CATALOG_GETARG_RAW_TEXT(3), VT_SLUG, 1,
							   CATALOG_SLUG_MAX);
	if (to_root && !PG_ARGISNULL(4))
		ValidateRaiseReason("to_root", "conflicts_with_parent_id");
	move = to_root || !PG_ARGISNULL(4);

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(expected);
	values[2] = name ? CStringGetTextDatum(name) : (Datum) 0;
	nulls[2] = name ? ' ' : 'n';
	values[3] = slug ? CStringGetTextDatum(slug) : (Datum) 0;
	nulls[3] = slug ? ' ' : 'n';
	values[4] = BoolGetDatum(move);
	values[5] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[5] = PG_ARGISNULL(4) ? 'n' : ' ';
	values[6] = CStringGetTextDatum(ApiActor());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * Lock order: the tree lock first, then rows (see the file header).
	 * Renames take it too, so that category writes are totally ordered and
	 * cannot deadlock with moves.
	 */
	lock_tree();
	if (ApiExecute(&plan_update, values, nulls, false, 0) != 1)
	{
		int32		current;

		if (ApiExecute(&plan_get, values, NULL, false, 1) != 1)
			ApiRaiseNotFound("category", id);
		current = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		if (current != expected)
			ApiRaiseStale("category", id, expected, current);
		/* Nothing to change: answer the current document. */
		result = ApiResultDatum(0, 2, &isnull);
	}
	else
		result = ApiResultDatum(0, 1, &isnull);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(catalog_update_category);
/*
 * catalog_update_category
 *	  SQL: catalog_api.update_category(id, expected_version, name, slug,
 *	  parent_id, to_root) -> jsonb
 */
Datum
catalog_update_category(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_UPDATE_CATEGORY);
	return ApiRunWrite(update_category_impl, fcinfo);
}

PG_FUNCTION_INFO_V1(catalog_list_categories);
/*
 * catalog_list_categories
 *	  SQL: catalog_api.list_categories() -> jsonb array, parents before
 *	  children, each with its depth (1 for a root).
 */
Datum
catalog_list_categories(PG_FUNCTION_ARGS)
{
	Datum		result;
	bool		isnull;
	int			nest;

	RateLimitEnter(RLF_LIST_CATEGORIES);
	nest = ApiRowSecurityBegin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ApiExecute(&plan_list, NULL, NULL, true, 1) != 1)
		elog(ERROR, "category listing returned no row");
	result = ApiResultDatum(0, 1, &isnull);
	SPI_finish();
	ApiRowSecurityEnd(nest);
	PG_RETURN_DATUM(result);
}
