/*-------------------------------------------------------------------------
 *
 * document.h
 *	  Product documents built in C, and direct primary-key reads of the
 *	  catalog tables for the hot read path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_DOCUMENT_H
#define CATALOG_DOCUMENT_H

#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* A string that need not be NUL-terminated; p == NULL means SQL NULL. */
typedef struct DocText
{
	const char *p;
	int			len;
} DocText;

/* Every field of a product document (DESIGN.md). */
typedef struct ProductRow
{
	int64		id;
	DocText		sku;
	DocText		name;
	DocText		description;
	DocText		status;
	Numeric		price;
	DocText		currency;
	int64		category_id;
	DocText		category_name;
	Jsonb	   *attributes;
	int32		version;
	TimestampTz created_at;
	TimestampTz updated_at;
} ProductRow;

extern DocText DocCString(const char *s);
extern Jsonb *ProductDocument(const ProductRow *row);
extern void DocPushKey(JsonbParseState **st, const char *key);
extern void DocPushElem(JsonbParseState **st, const char *s);
extern void DocPushValue(JsonbParseState **st, const char *key, JsonbValue *v);
extern void DocPushNumeric(JsonbParseState **st, const char *key, Numeric n);
extern void DocPushText(JsonbParseState **st, const char *key, DocText t);
extern void DocPushInt(JsonbParseState **st, const char *key, int64 n);
extern void DocPushBool(JsonbParseState **st, const char *key, bool b);
extern void DocPushTimestamptz(JsonbParseState **st, const char *key, TimestampTz ts);
extern bool ProductFetch(int64 id, bool see_drafts, ProductRow *row);
extern bool CategoryFetchName(int64 id, DocText *name);
extern Relation DocOpenTable(const char *name);

/*
 * A backend cache of one catalog.<table> (rate limits, audit masks), made
 * stale by the table's relcache invalidation (see DocTableCacheOpen).
 * Static storage, zero-initialised but for the table name.
 */
typedef struct DocTableCache
{
	const char *table;
	Oid			relid;
	bool		valid;
	bool		registered;
	uint64		generation;
	struct DocTableCache *next;
} DocTableCache;

extern bool DocTableCacheValid(DocTableCache *cache);
extern Relation DocTableCacheOpen(DocTableCache *cache);
extern void DocTableCacheBuilt(DocTableCache *cache);
extern AttrNumber DocColumnAttnum(Relation rel, const char *name, Oid typid);

#endif							/* CATALOG_DOCUMENT_H */
