/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Server-side secrets: the rows of catalog.signing_key of one purpose
 *	  ('cursor' signs search cursors, 'audit' keys the HMAC of masked audit
 *	  values), and the HMAC-SHA256 computed with them; and SHA-256 with
 *	  core's cryptohash, for every hash of the extension.
 *
 * Access.  No role but the superuser may read catalog.signing_key, not
 * even catalog_owner or catalog_audit_owner, so the table is read here
 * below the privilege system (a heap scan of the relation, opened and
 * locked by DocOpenTable), whoever the caller is.  Only C code of this
 * extension sees a secret; it never leaves the backend.
 *
 * Rotation.  The newest kid (SigningKeyFind with kid < 0) signs or keys,
 * any listed kid verifies.  Nothing is cached here: each call reads the
 * table under the active snapshot, so a key added or dropped by a
 * committed transaction is seen by the next statement under READ
 * COMMITTED, and at the next transaction under REPEATABLE READ or
 * SERIALIZABLE (one snapshot for the whole transaction).
 *
 * Every caller wipes the copies it loaded once done (SigningKeysWipe), so
 * no secret lingers in freed backend memory after a normal return; an
 * error on the way frees them with their context, unwiped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "document.h"
#include "keys.h"

/*
 * SigningKeysLoad
 *	  The keys of the given purpose, in the current memory context (secrets
 *	  copied and detoasted), in no particular order; NIL when there is
 *	  none.  Reads under the active snapshot, or the transaction snapshot
 *	  when none is active (a caller outside a query).
 */
List *
SigningKeysLoad(const char *purpose)
{
	Relation	rel;
	TupleDesc	desc;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *keys = NIL;
	int			a_purpose = -1,
				a_kid = -1,
				a_secret = -1;
	bool		pushed = false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	rel = DocOpenTable("signing_key");
	desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (strcmp(NameStr(att->attname), "purpose") == 0 && att->atttypid == TEXTOID)
			a_purpose = i + 1;
		else if (strcmp(NameStr(att->attname), "kid") == 0 && att->atttypid == INT4OID)
			a_kid = i + 1;
		else if (strcmp(NameStr(att->attname), "secret") == 0 && att->atttypid == BYTEAOID)
			a_secret = i + 1;
	}
	if (a_purpose < 0 || a_kid < 0 || a_secret < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("catalog.signing_key does not have the expected columns"),
				 errhint("The catalog extension's tables were altered; reinstall the extension.")));

	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		n1,
					n2,
					n3;
		Datum		p = heap_getattr(tup, a_purpose, desc, &n1);
		Datum		kid = heap_getattr(tup, a_kid, desc, &n2);
		Datum		secret = heap_getattr(tup, a_secret, desc, &n3);
		text	   *ptext;
		SigningKey *k;

		if (n1 || n2 || n3)
			continue;
		ptext = DatumGetTextPP(p);
		if (VARSIZE_ANY_EXHDR(ptext) != strlen(purpose) ||
			memcmp(VARDATA_ANY(ptext), purpose, VARSIZE_ANY_EXHDR(ptext)) != 0)
			continue;
		k = palloc(sizeof(SigningKey));
		k->kid = DatumGetInt32(kid);
		k->secret = DatumGetByteaPCopy(secret);
		keys = lappend(keys, k);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (pushed)
		PopActiveSnapshot();
	return keys;
}

/*
 * SigningKeysWipe
 *	  Zero and free the secrets SigningKeysLoad copied, and the list.
 */
void
SigningKeysWipe(List *keys)
{
	ListCell   *lc;

	foreach(lc, keys)
	{
		SigningKey *k = lfirst(lc);

		explicit_bzero(VARDATA_ANY(k->secret), VARSIZE_ANY_EXHDR(k->secret));
		pfree(k->secret);
		pfree(k);
	}
	list_free(keys);
}

/*
 * SigningKeyFind
 *	  The key with this kid, or with kid < 0 the newest (highest kid);
 *	  NULL when there is none.
 */
SigningKey *
SigningKeyFind(List *keys, int kid)
{
	ListCell   *lc;
	SigningKey *best = NULL;

	foreach(lc, keys)
	{
		SigningKey *k = lfirst(lc);

		if (kid < 0 ? (best == NULL || k->kid > best->kid) : k->kid == kid)
			best = k;
	}
	return best;
}

/*
 * SigningKeyHmac
 *	  HMAC-SHA256 of data under key into mac (SIGNING_MAC_LEN bytes).
 */
void
SigningKeyHmac(const SigningKey *key, const void *data, size_t len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, (uint8 *) VARDATA_ANY(key->secret), VARSIZE_ANY_EXHDR(key->secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, mac, SIGNING_MAC_LEN) < 0)
	{
		char	   *err = pstrdup(pg_hmac_error(ctx));

		pg_hmac_free(ctx);
		elog(ERROR, "HMAC failed: %s", err);
	}
	pg_hmac_free(ctx);
}

/* ------------------------------------------------------------------------
 * SHA-256
 * ------------------------------------------------------------------------
 */

/* Raise the cryptohash error of ctx (what failed: "initialise", ...). */
static void
pg_attribute_noreturn()
sha256_fail(pg_cryptohash_ctx *ctx, const char *what)
{
	/* the reason is core's or OpenSSL's static text; freed ctx or not */
	const char *reason = pg_cryptohash_error(ctx);

	pg_cryptohash_free(ctx);
	elog(ERROR, "could not %s SHA-256: %s", what, reason);
}

/* A SHA-256 context, initialised (registered with the resource owner). */
pg_cryptohash_ctx *
Sha256Begin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("A SHA-256 context could not be allocated.")));
	if (pg_cryptohash_init(ctx) < 0)
		sha256_fail(ctx, "initialise");
	return ctx;
}

void
Sha256Update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		sha256_fail(ctx, "update");
}

void
Sha256End(pg_cryptohash_ctx *ctx, uint8 *out)
{
	if (pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		sha256_fail(ctx, "finish");
	pg_cryptohash_free(ctx);
}
