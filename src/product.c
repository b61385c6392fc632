/*-------------------------------------------------------------------------
 *
 * product.c
 *	  Products: create (idempotent), get, update (optimistic), archive;
 *	  purge of expired idempotency keys.
 *
 * Every argument is canonicalised by validate.c before it reaches SQL.
 * Statements are fixed, parameterised and kept per backend (api.c).
 *
 * Concurrency (READ COMMITTED, PostgREST's default):
 *	- create_product with an idempotency key first claims (actor, key) in
 *	  catalog.idempotency with INSERT ... ON CONFLICT DO UPDATE ... WHERE
 *	  expired.  A concurrent call with the same key waits on the claiming
 *	  transaction's row; once it commits, the claim finds a live row and
 *	  the call replays the stored response (same fingerprint) or fails
 *	  with PT422 (different fingerprint).  Exactly one product is created.
 *	- A duplicate SKU is left to the unique index, which waits for a racing
 *	  insert and raises 23505; ApiRunWrite rewrites it into the documented
 *	  23505 with a field-level DETAIL (one place for create and update).
 *	- update_product is one UPDATE with "version = expected_version" in its
 *	  WHERE clause; a concurrent committed update makes the re-check fail,
 *	  so the loser gets PT409 and no update is ever lost.  An update that
 *	  changes nothing writes nothing and keeps the version.
 * Locks are taken in one order: idempotency row, then product row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"

#include "api.h"
#include "attributes.h"
#include "audit_part.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "validate_sql.h"
#include "ratelimit.h"

/* Columns of a product row as row_from_spi() reads them, in this order. */
#define PRODUCT_COLS \
	"p.id, p.sku, p.name, p.description, p.status::text, p.category_id, p.price," \
	" p.currency, p.attributes, p.version, p.created_at, p.updated_at"

static ApiPlan plan_insert = {
	"INSERT INTO catalog.product AS p"
	" (sku, name, description, status, category_id, price, currency, attributes,"
	"  created_by, updated_by)"
	" VALUES ($1, $2, $3, $4::catalog.product_status, $5, $6, $7, $8, $9, $9)"
	" RETURNING p.id, p.version, p.created_at, p.updated_at",
	9, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, NUMERICOID, TEXTOID, JSONBOID, TEXTOID},
	NULL
};

/*
 * Expiry is judged at the statement (statement_timestamp), not at the start
 * of its transaction (now()): a key that expires while a long transaction
 * runs no longer matches in it.
 */
static ApiPlan plan_claim_key = {
	"INSERT INTO catalog.idempotency AS i"
	" (actor_source, actor, key, operation, fingerprint, expires_at)"
	" VALUES ($6, $1, $2, $3, $4, pg_catalog.statement_timestamp() + pg_catalog.make_interval(secs => $5))"
	" ON CONFLICT (actor_source, actor, key) DO UPDATE"
	" SET operation = EXCLUDED.operation, fingerprint = EXCLUDED.fingerprint,"
	"     response = NULL, created_at = pg_catalog.statement_timestamp(),"
	"     expires_at = EXCLUDED.expires_at"
	" WHERE i.expires_at <= pg_catalog.statement_timestamp()"
	" RETURNING 1",
	6, {TEXTOID, TEXTOID, TEXTOID, BYTEAOID, FLOAT8OID, CHAROID},
	NULL
};

static ApiPlan plan_read_key = {
	"SELECT operation, fingerprint, response FROM catalog.idempotency"
	" WHERE actor_source = $3 AND actor = $1 AND key = $2",
	3, {TEXTOID, TEXTOID, CHAROID},
	NULL
};

static ApiPlan plan_store_response = {
	"UPDATE catalog.idempotency SET response = $3"
	" WHERE actor_source = $4 AND actor = $1 AND key = $2",
	4, {TEXTOID, TEXTOID, JSONBOID, CHAROID},
	NULL
};

/*
 * Whether the request ($3..$11 of plan_update) would change row p: the one
 * test of plan_update's WHERE and plan_recheck's extra column.  Attributes
 * are compared by their text, not as jsonb values: numbers are stored as
 * sent, and jsonb equality holds 1.0 and 1.00 equal, so an update that only
 * rewrote a number's scale kept the old one and returned it (the audit and
 * the idempotency fingerprint both tell them apart).
 */
#define PRODUCT_WOULD_CHANGE \
	"((p.sku, p.name, p.description, p.status, p.price, p.currency," \
	"  p.category_id)" \
	" IS DISTINCT FROM" \
	" (COALESCE($3, p.sku), COALESCE($4, p.name)," \
	"  CASE WHEN $5 THEN $6 ELSE p.description END," \
	"  COALESCE($7::catalog.product_status, p.status), COALESCE($8, p.price)," \
	"  COALESCE($9, p.currency), COALESCE($10, p.category_id))" \
	" OR ($11 IS NOT NULL" \
	"     AND p.attributes::pg_catalog.text IS DISTINCT FROM $11::pg_catalog.text))"

static ApiPlan plan_update = {
	"UPDATE catalog.product p SET"
	"  sku = COALESCE($3, p.sku), name = COALESCE($4, p.name),"
	"  description = CASE WHEN $5 THEN $6 ELSE p.description END,"
	"  status = COALESCE($7::catalog.product_status, p.status),"
	"  price = COALESCE($8, p.price), currency = COALESCE($9, p.currency),"
	"  category_id = COALESCE($10, p.category_id),"
	"  attributes = COALESCE($11, p.attributes),"
	"  updated_at = pg_catalog.now(), updated_by = $12, version = p.version + 1"
	" WHERE p.id = $1 AND p.version = $2 AND " PRODUCT_WOULD_CHANGE
	" RETURNING " PRODUCT_COLS,
	12, {INT8OID, INT4OID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, NUMERICOID,
	TEXTOID, INT8OID, JSONBOID, TEXTOID},
	NULL
};

/*
 * The current row after an UPDATE that changed nothing, and whether the
 * request would change it (plan_update's test, with its parameters): the
 * column after PRODUCT_COLS.
 */
static ApiPlan plan_recheck = {
	"SELECT " PRODUCT_COLS ", " PRODUCT_WOULD_CHANGE
	" FROM catalog.product p WHERE p.id = $1",
	12, {INT8OID, INT4OID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, NUMERICOID,
	TEXTOID, INT8OID, JSONBOID, TEXTOID},
	NULL
};

/* The product's version, read with the latest snapshot (latest_version). */
static ApiPlan plan_latest_version = {
	"SELECT p.version FROM catalog.product p WHERE p.id = $1",
	1, {INT8OID},
	NULL
};

/*
 * latest_version
 *	  The product's latest committed version (or -1 when no row is visible
 *	  to the latest snapshot), whatever the transaction's snapshot: under
 *	  REPEATABLE READ, to tell a version committed since the snapshot from
 *	  one that never existed.  Connected to SPI; replaces SPI_tuptable.
 */
static int32
latest_version(int64 id)
{
	Datum		arg = Int64GetDatum(id);
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	int			rc;

	rc = SPI_execute_snapshot(ApiGetPlan(&plan_latest_version), &arg, NULL,
							  GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
	MemoryContextSwitchTo(caller);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		return -1;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The expired rows, oldest first, locked (SKIP LOCKED: a key a writer
 * holds stays for the next batch), then deleted by their row address: a
 * TID scan whatever the statistics say.  Joining the batch back on the key
 * let the generic plan (which assumes a tenth of the table for LIMIT $1)
 * hash the whole table for every batch.  The addresses are those of the
 * versions the lock returned, which nobody can replace before the DELETE.
 */
static ApiPlan plan_purge = {
	"DELETE FROM catalog.idempotency"
	" WHERE ctid = ANY (ARRAY("
	"  SELECT ctid FROM catalog.idempotency"
	"   WHERE expires_at <= pg_catalog.statement_timestamp()"
	"   ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))",
	1, {INT8OID},
	NULL
};

/* Canonical, validated product fields; NULL pointers mean "not given". */
typedef struct ProductInput
{
	char	   *sku;
	char	   *name;
	bool		description_given;
	char	   *description;	/* NULL when cleared */
	const char *status;
	Datum		price;			/* numeric(12,2); valid when price_given */
	bool		price_given;
	char	   *currency;
	int64		category_id;
	bool		category_given;
	Jsonb	   *attributes;
} ProductInput;

/*
 * canonical_status
 *	  The status argument as one of the enum labels, or raise 22023
 *	  "invalid_value" (too long or not a label alike).
 */
static const char *
canonical_status(text *arg)
{
	static const char *const labels[] = {"draft", "published", "archived"};

	return ValidateLabelArg("status", arg, labels, lengthof(labels));
}

/*
 * canonical_price
 *	  Range- and scale-check a price and coerce it to numeric(12,2).
 */
static Datum
canonical_price(Datum price)
{
	ValidatePriceArg("price", DatumGetNumeric(price));
	return DirectFunctionCall2(numeric, price,
							   Int32GetDatum(((12 << 16) | 2) + VARHDRSZ));
}

/*
 * read_input
 *	  Validate and canonicalise the product fields of fcinfo.  first is the
 *	  argument number of sku; the order is the one of update_product:
 *	  sku, name, description, status, price, currency, category_id,
 *	  attributes.  Absent (NULL) arguments stay "not given".
 */
static void
read_input(FunctionCallInfo fcinfo, const int *argno, ProductInput *in)
{
	memset(in, 0, sizeof(*in));

	if (!PG_ARGISNULL(argno[0]))
		in->sku = ValidateTextArg("sku", CATALOG_GETARG_RAW_TEXT(argno[0]), VT_SKU,
								  1, CATALOG_SKU_MAX);
	if (!PG_ARGISNULL(argno[1]))
		in->name = ValidateTextArg("name", CATALOG_GETARG_RAW_TEXT(argno[1]), VT_PLAIN,
								   1, CATALOG_NAME_MAX);
	if (!PG_ARGISNULL(argno[2]))
	{
		char	   *d = ValidateTextArg("description", CATALOG_GETARG_RAW_TEXT(argno[2]),
										VT_LONGTEXT, 0, CATALOG_DESCRIPTION_MAX);

		in->description_given = true;
		in->description = (d[0] == '\0') ? NULL : d;
	}
	if (!PG_ARGISNULL(argno[3]))
		in->status = canonical_status(CATALOG_GETARG_RAW_TEXT(argno[3]));
	if (!PG_ARGISNULL(argno[4]))
	{
		in->price = canonical_price(PG_GETARG_DATUM(argno[4]));
		in->price_given = true;
	}
	if (!PG_ARGISNULL(argno[5]))
		in->currency = ValidateTextArg("currency", CATALOG_GETARG_RAW_TEXT(argno[5]),
									   VT_CURRENCY, 3, 3);
	if (!PG_ARGISNULL(argno[6]))
	{
		in->category_id = PG_GETARG_INT64(argno[6]);
		in->category_given = true;
		if (in->category_id <= 0)
			ValidateRaiseReason("category_id", "not_found");
	}
	if (!PG_ARGISNULL(argno[7]))
		in->attributes = AttributesCanonical(PG_GETARG_DATUM(argno[7]));
}

/*
 * hash_field
 *	  Feed one field to the fingerprint: a tag byte, a 4-byte length (or
 *	  0xFFFFFFFF for NULL) and the bytes, so distinct payloads never
 *	  serialise alike.
 */
static void
hash_field(pg_cryptohash_ctx *ctx, char tag, const char *s)
{
	uint32		len = (s == NULL) ? 0xFFFFFFFF : (uint32) strlen(s);
	unsigned char hdr[5];

	hdr[0] = (unsigned char) tag;
	hdr[1] = (unsigned char) (len >> 24);
	hdr[2] = (unsigned char) (len >> 16);
	hdr[3] = (unsigned char) (len >> 8);
	hdr[4] = (unsigned char) len;
	Sha256Update(ctx, hdr, sizeof(hdr));
	if (s != NULL)
		Sha256Update(ctx, s, len);
}

/*
 * fingerprint
 *	  SHA-256 of the canonical create_product payload, as bytea.
 */
static bytea *
fingerprint(const ProductInput *in)
{
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pg_cryptohash_ctx *ctx = Sha256Begin();
	char		idbuf[32];

	hash_field(ctx, 'k', in->sku);
	hash_field(ctx, 'n', in->name);
	hash_field(ctx, 'd', in->description);
	hash_field(ctx, 's', in->status);
	hash_field(ctx, 'p', DatumGetCString(DirectFunctionCall1(numeric_out, in->price)));
	hash_field(ctx, 'c', in->currency);
	snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, in->category_id);
	hash_field(ctx, 'g', idbuf);
	hash_field(ctx, 'a', JsonbToCString(NULL, &in->attributes->root,
										VARSIZE(in->attributes)));
	Sha256End(ctx, (uint8 *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/*
 * text_or_null
 *	  Datum of a C string as text, and its null flag.
 */
static Datum
text_or_null(const char *s, char *null)
{
	*null = (s == NULL) ? 'n' : ' ';
	return (s == NULL) ? (Datum) 0 : CStringGetTextDatum(s);
}

/*
 * category_name
 *	  The name of category id, read with a fresh snapshot (what the next
 *	  SPI statement would see), or 22023 {"field": "category_id", "reason":
 *	  "not_found"}.  A primary-key read in C (document.c): a tenth of the
 *	  cost of an SPI query on the write path.
 */
static DocText
category_name(int64 id)
{
	DocText		name;
	bool		found;

	PushActiveSnapshot(GetTransactionSnapshot());
	found = CategoryFetchName(id, &name);
	PopActiveSnapshot();
	if (!found && IsolationUsesXactSnapshot())
	{
		/*
		 * A category committed since a REPEATABLE READ transaction began:
		 * it exists, so "not_found" would be wrong; the transaction cannot
		 * use it (a serialization failure, PT409: retry).
		 */
		PushActiveSnapshot(GetLatestSnapshot());
		found = CategoryFetchName(id, &name);
		PopActiveSnapshot();
		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
	}
	if (!found)
		ValidateRaiseReason("category_id", "not_found");
	return name;
}

/*
 * row_from_spi
 *	  Fill row from row 0 of the last SPI result, whose columns are
 *	  PRODUCT_COLS, and look up its category's name.
 */
static void
row_from_spi(ProductRow *row)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		d;

#define GET(col) SPI_getbinval(tup, desc, (col), &isnull)
	row->id = DatumGetInt64(GET(1));
	row->sku = DocCString(TextDatumGetCString(GET(2)));
	d = GET(3);
	row->name = DocCString(TextDatumGetCString(d));
	d = GET(4);
	row->description = isnull ? DocCString(NULL) : DocCString(TextDatumGetCString(d));
	row->status = DocCString(TextDatumGetCString(GET(5)));
	row->category_id = DatumGetInt64(GET(6));
	row->price = DatumGetNumericCopy(GET(7));
	row->currency = DocCString(TextDatumGetCString(GET(8)));
	row->attributes = DatumGetJsonbPCopy(GET(9));
	row->version = DatumGetInt32(GET(10));
	row->created_at = DatumGetTimestampTz(GET(11));
	row->updated_at = DatumGetTimestampTz(GET(12));
#undef GET
	row->category_name = category_name(row->category_id);
}

/*
 * document_out
 *	  The document of row as a Datum in the caller's (pre-SPI) context.
 */
static Datum
document_out(const ProductRow *row)
{
	return SPI_datumTransfer(JsonbPGetDatum(ProductDocument(row)), false, -1);
}

/*
 * create_product_impl
 *	  The body of create_product, run by ApiRunWrite.
 */
static Datum
create_product_impl(PG_FUNCTION_ARGS)
{
	static const int argno[8] = {0, 1, 4, 5, 2, 6, 3, 7};
	ProductInput in;
	char	   *actor;
	char		actor_source;
	char	   *key = NULL;
	bytea	   *fp = NULL;
	Datum		values[9];
	char		nulls[9];
	Datum		result = (Datum) 0;
	bool		isnull;
	ProductRow	row;

	ApiRequireArg(fcinfo, 0, "sku");
	ApiRequireArg(fcinfo, 1, "name");
	ApiRequireArg(fcinfo, 2, "price");
	ApiRequireArg(fcinfo, 3, "category_id");
	read_input(fcinfo, argno, &in);
	if (in.status == NULL)
		in.status = "draft";
	if (in.currency == NULL)
		in.currency = "USD";
	if (in.attributes == NULL)
		in.attributes = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	if (!PG_ARGISNULL(8))
		key = ValidateTextArg("idempotency_key", CATALOG_GETARG_RAW_TEXT(8), VT_TOKEN,
							  1, CATALOG_TOKEN_MAX);
	/* keys are scoped by the actor and where it came from (ApiActorSource) */
	actor = ApiActorSource(&actor_source);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (key != NULL)
	{
		fp = fingerprint(&in);
		values[0] = CStringGetTextDatum(actor);
		values[1] = CStringGetTextDatum(key);
		values[2] = CStringGetTextDatum("create_product");
		values[3] = PointerGetDatum(fp);
		values[4] = Float8GetDatum((float8) catalog_idempotency_ttl);
		values[5] = CharGetDatum(actor_source);
		if (ApiExecute(&plan_claim_key, values, NULL, false, 0) == 0)
		{
			/* A live key: replay or refuse. */
			char	   *op;
			bytea	   *stored;
			Datum		read[3];

			read[0] = values[0];
			read[1] = values[1];
			read[2] = CharGetDatum(actor_source);
			if (ApiExecute(&plan_read_key, read, NULL, false, 1) != 1)
				elog(ERROR, "idempotency key vanished while locked");
			op = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2, &isnull));
			if (strcmp(op, "create_product") != 0 ||
				VARSIZE_ANY_EXHDR(stored) != PG_SHA256_DIGEST_LENGTH ||
				memcmp(VARDATA_ANY(stored), VARDATA(fp), PG_SHA256_DIGEST_LENGTH) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_CATALOG_IDEMPOTENCY),
						 errmsg("the idempotency key was already used with a different request"),
						 ApiErrDetail("{\"field\":\"idempotency_key\",\"reason\":\"payload_mismatch\"}"),
						 errhint("Use a new idempotency key for a different request.")));
			result = ApiResultDatum(0, 3, &isnull);
			if (isnull)
				elog(ERROR, "idempotency key has no stored response");
			SPI_finish();
			PG_RETURN_DATUM(result);
		}
	}

	values[0] = CStringGetTextDatum(in.sku);
	values[1] = CStringGetTextDatum(in.name);
	values[2] = text_or_null(in.description, &nulls[2]);
	values[3] = CStringGetTextDatum(in.status);
	values[4] = Int64GetDatum(in.category_id);
	values[5] = in.price;
	values[6] = CStringGetTextDatum(in.currency);
	values[7] = JsonbPGetDatum(in.attributes);
	values[8] = CStringGetTextDatum(actor);
	memset(nulls, ' ', sizeof(nulls));
	nulls[2] = (in.description == NULL) ? 'n' : ' ';

	row.category_name = category_name(in.category_id);
	if (ApiExecute(&plan_insert, values, nulls, false, 0) != 1)
		elog(ERROR, "product insert returned no row");
	row.id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	row.version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	row.created_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	row.updated_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	row.sku = DocCString(in.sku);
	row.name = DocCString(in.name);
	row.description = DocCString(in.description);
	row.status = DocCString(in.status);
	row.price = DatumGetNumeric(in.price);
	row.currency = DocCString(in.currency);
	row.category_id = in.category_id;
	row.attributes = in.attributes;
	result = document_out(&row);

	if (key != NULL)
	{
		Datum		store[4];

		store[0] = CStringGetTextDatum(actor);
		store[1] = CStringGetTextDatum(key);
		store[2] = result;
		store[3] = CharGetDatum(actor_source);
		if (ApiExecute(&plan_store_response, store, NULL, false, 0) != 1)
			elog(ERROR, "could not store the idempotent response");
	}

	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(catalog_create_product);
/*
 * catalog_create_product
 *	  SQL: catalog_api.create_product(sku, name, price, category_id,
 *	  description, status, currency, attributes, idempotency_key) -> jsonb
 */
Datum
catalog_create_product(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_CREATE_PRODUCT);
	return ApiRunWrite(create_product_impl, fcinfo);
}

PG_FUNCTION_INFO_V1(catalog_get_product);
/*
 * catalog_get_product
 *	  SQL: catalog_api.get_product(id) -> jsonb; PT404 when missing or not
 *	  visible (drafts and archived products are hidden from anonymous
 *	  callers).
 */
Datum
catalog_get_product(PG_FUNCTION_ARGS)
{
	int64		id;
	ProductRow	row;

	/* not STRICT: a NULL id is a call too (counted, limited, refused) */
	RateLimitEnter(RLF_GET_PRODUCT);
	ApiRequireArg(fcinfo, 0, "id");
	id = PG_GETARG_INT64(0);
	if (!ProductFetch(id, ApiCallerSeesDrafts(), &row))
		ApiRaiseNotFound("product", id);
	PG_RETURN_JSONB_P(ProductDocument(&row));
}

/*
 * update_product_common
 *	  Apply in to product id if its version is expected_version.  On no
 *	  change, returns the current document without writing.
 */
static Datum
update_product_common(int64 id, int32 expected_version, const ProductInput *in)
{
	Datum		values[12];
	char		nulls[12];
	Datum		result;
	ProductRow	row;
	char	   *actor = ApiActor();

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(expected_version);
	values[2] = text_or_null(in->sku, &nulls[2]);
	values[3] = text_or_null(in->name, &nulls[3]);
	values[4] = BoolGetDatum(in->description_given);
	values[5] = text_or_null(in->description, &nulls[5]);
	values[6] = text_or_null(in->status, &nulls[6]);
	values[7] = in->price;
	nulls[7] = in->price_given ? ' ' : 'n';
	values[8] = text_or_null(in->currency, &nulls[8]);
	values[9] = Int64GetDatum(in->category_id);
	nulls[9] = in->category_given ? ' ' : 'n';
	values[10] = PointerGetDatum(in->attributes);
	nulls[10] = (in->attributes != NULL) ? ' ' : 'n';
	values[11] = CStringGetTextDatum(actor);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (in->category_given)
		(void) category_name(in->category_id);

	for (int attempt = 1;; attempt++)
	{
		bool		would_change;
		bool		isnull;

		if (ApiExecute(&plan_update, values, nulls, false, 0) == 1)
		{
			row_from_spi(&row);
			break;
		}

		/*
		 * Not updated: missing, stale, or nothing to change.  Read the
		 * current row with a fresh snapshot to tell which.
		 */
		if (ApiExecute(&plan_recheck, values, nulls, false, 1) != 1)
		{
			/*
			 * Under a transaction snapshot, a product committed since the
			 * transaction began is invisible to it but exists: a
			 * serialization failure (retry in a new transaction), not
			 * PT404, which says a retry is useless.
			 */
			if (IsolationUsesXactSnapshot() && latest_version(id) >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			ApiRaiseNotFound("product", id);
		}
		/* before row_from_spi, whose category lookup replaces SPI_tuptable */
		would_change = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												  SPI_tuptable->tupdesc->natts, &isnull)) &&
			!isnull;
		row_from_spi(&row);

		/*
		 * Under a transaction snapshot (REPEATABLE READ) the recheck sees
		 * the version of the transaction's start.  A caller that expects a
		 * later one may have read a version committed since, which this
		 * transaction cannot update: a serialization failure (PT409
		 * concurrent_update: retry in a new transaction), not a stale
		 * version with the snapshot's number as the current one.  Only
		 * when that version exists: one that was never committed is
		 * stale, as under READ COMMITTED, with the latest version as the
		 * current one (a retry in a new transaction would fail again).
		 */
		if (row.version < expected_version && IsolationUsesXactSnapshot())
		{
			int32		latest = latest_version(id);

			if (latest >= expected_version)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			if (latest >= 0)
				ApiRaiseStale("product", id, expected_version, latest);
		}
		if (row.version != expected_version)
			ApiRaiseStale("product", id, expected_version, row.version);

		/*
		 * At the expected version now, but maybe not when the UPDATE took
		 * its snapshot: a caller handed the version returned by a
		 * transaction still in flight saw the UPDATE skip the older row
		 * (its version did not match, so it did not wait), and that
		 * transaction committed before the read above.  If the request
		 * would change this row, answering "nothing to change" would drop
		 * the caller's change: under READ COMMITTED the UPDATE runs once
		 * more, under a snapshot that sees this version (a later change
		 * makes it stale, as above).  A request for what is stored needs
		 * no second try, nor does a transaction snapshot (REPEATABLE READ:
		 * both statements saw the same version).
		 */
		if (!would_change || attempt == 2 || IsolationUsesXactSnapshot())
			break;
	}
	result = document_out(&row);
	SPI_finish();
	return result;
}

/*
 * update_product_impl
 *	  The body of update_product, run by ApiRunWrite.
 */
static Datum
update_product_impl(PG_FUNCTION_ARGS)
{
	static const int argno[8] = {2, 3, 4, 5, 6, 7, 8, 9};
	ProductInput in;

	ApiRequireArg(fcinfo, 0, "id");
	ApiRequireArg(fcinfo, 1, "expected_version");
	read_input(fcinfo, argno, &in);
	PG_RETURN_DATUM(update_product_common(PG_GETARG_INT64(0), PG_GETARG_INT32(1), &in));
}

PG_FUNCTION_INFO_V1(catalog_update_product);
/*
 * catalog_update_product
 *	  SQL: catalog_api.update_product(id, expected_version, sku, name,
 *	  description, status, price, currency, category_id, attributes)
 */
Datum
catalog_update_product(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_UPDATE_PRODUCT);
	return ApiRunWrite(update_product_impl, fcinfo);
}

/*
 * archive_product_impl
 *	  The body of archive_product, run by ApiRunWrite.
 */
static Datum
archive_product_impl(PG_FUNCTION_ARGS)
{
	ProductInput in;

	ApiRequireArg(fcinfo, 0, "id");
	ApiRequireArg(fcinfo, 1, "expected_version");
	memset(&in, 0, sizeof(in));
	in.status = "archived";
	PG_RETURN_DATUM(update_product_common(PG_GETARG_INT64(0), PG_GETARG_INT32(1), &in));
}

PG_FUNCTION_INFO_V1(catalog_archive_product);
/*
 * catalog_archive_product
 *	  SQL: catalog_api.archive_product(id, expected_version)
 */
Datum
catalog_archive_product(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_ARCHIVE_PRODUCT);
	return ApiRunWrite(archive_product_impl, fcinfo);
}

/*
 * purge_idempotency_impl
 *	  The body of purge_idempotency, run by ApiRunWrite.
 */
static Datum
purge_idempotency_impl(PG_FUNCTION_ARGS)
{
	int32		batch = PG_ARGISNULL(0) ? 1000 : PG_GETARG_INT32(0);
	Datum		arg;
	int64		n;

	/* a bound of the call, as page_size or max_rows: 22023 with min and max */
	if (batch < 1 || batch > 100000)
		AuditRaiseOutOfRange("batch_size", 1, 100000);
	arg = Int64GetDatum((int64) batch);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = ApiExecute(&plan_purge, &arg, NULL, false, 0);
	SPI_finish();
	PG_RETURN_INT64(n);
}

PG_FUNCTION_INFO_V1(catalog_purge_idempotency);
/*
 * catalog_purge_idempotency
 *	  SQL: catalog_api.purge_idempotency(batch_size) -> bigint.  Deletes up
 *	  to batch_size expired keys, skipping rows that writers hold.
 */
Datum
catalog_purge_idempotency(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_PURGE_IDEMPOTENCY);
	return ApiRunWrite(purge_idempotency_impl, fcinfo);
}
