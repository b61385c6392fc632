/*-------------------------------------------------------------------------
 *
 * audit_mask.c
 *	  Masking of audit values: every value of an audit row image goes
 *	  through AuditMaskPush before the row exists, so nothing unmasked is
 *	  ever written.  Also the declared policy's API (audit_mask_set, _drop,
 *	  audit_masks) and its cache.
 *
 * Rules, in order, for one column value:
 *	1. The column is declared (catalog.audit_mask with attribute_key '') or
 *	   its name matches a built-in key pattern: the whole value becomes the
 *	   mask.
 *	2. jsonb: walked; the value of any object key, at any depth, that is
 *	   declared for this column or matches a built-in key pattern becomes
 *	   the mask (the whole sub-value, object and array included; JSON null
 *	   stays null, it carries nothing); every other string, and every
 *	   object key, is scanned for built-in value patterns (JSON numbers
 *	   are not: they are quantities and codes, not contact data; every
 *	   EAN-13 or UPC-A code would read as a phone number).  A masked key
 *	   is numbered under redact (see push_string).
 *	3. Text-like values (text, varchar, char, any type shown through its
 *	   output function): scanned for built-in value patterns; only the
 *	   matched parts are replaced.  Enum labels, numbers, booleans and
 *	   date/time values are not scanned (fixed vocabularies and formats),
 *	   nor the identifier columns sku, slug and currency (allow-listed
 *	   on input; a SKU of digits and dashes is not a phone number).
 * A declared mask uses its own method, the built-in patterns the setting
 * catalog.audit_mask_method.
 *
 * The built-in key and value patterns (e-mail addresses, payment card
 * numbers, phone numbers) are found by the pure scanners of audit_scan.c,
 * which describes them; a value pattern's match is replaced here by the
 * mask of the original bytes it spans (overlapping matches of different
 * patterns are joined into one).
 *
 * The mask: "[redacted]", or "[hmac:" + the first 16 bytes of
 * HMAC-SHA256(audit key, text) as 32 lowercase hex digits + "]", where the
 * audit key is the newest 'audit' kid of catalog.signing_key and text is
 * the matched text as written, or for a whole value its string (a JSON
 * string's content, unquoted) or, for any other value, its jsonb text form.
 * Equal values get equal masks, so masked values can still be joined.
 *
 * Policy cache.  The declared masks are read once per backend into a
 * memory context under TopMemoryContext ("catalog audit mask policy") and
 * kept until a relcache invalidation of catalog.audit_mask arrives: the
 * statement trigger audit_mask_changed (catalog.cache_changed()) sends one with every change
 * (delivered to every backend at commit, and to this one at once), so the
 * next write of any session uses the new policy.  Who reads it does not
 * matter: the trigger calls this file as the writer (not yet switched to
 * catalog_audit_owner, who owns the table under forced row-level
 * security), and the table is read with a heap scan below the privilege
 * system and row-level security, like the signing keys (it holds no
 * secret, and a writer must not need any privilege on it), under a
 * snapshot taken after the invalidations
 * received so far (GetLatestSnapshot): an invalidation is sent only once
 * its transaction is visible, so a cache read after it sees the change; an
 * invalidation that arrives while the cache is being read makes it read
 * again.  The callback only marks the cache stale: a stale generation is
 * moved under TopTransactionContext when the next one is built, so a
 * policy pointer stays valid until the end of the transaction that got it.
 *
 * The audit key is read (SigningKeysLoad) at most once per transaction and
 * only when a value is hashed; a rotated key applies from the next
 * transaction.  A copy read inside a subtransaction that rolls back is
 * forgotten with it: it may be a key inserted there, which never commits,
 * and committed rows masked with it could never be matched again.  Without
 * an 'audit' key, hashing fails (55000): values are never written
 * unmasked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "api.h"
#include "attributes.h"
#include "audit.h"
#include "audit_scan.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "validate_sql.h"
#include "ratelimit.h"

PG_FUNCTION_INFO_V1(catalog_audit_mask_set);
PG_FUNCTION_INFO_V1(catalog_audit_mask_drop);
PG_FUNCTION_INFO_V1(catalog_audit_masks);

#define MASK_REDACTED			"[redacted]"
#define MASK_HMAC_BYTES			16
#define MASK_ATTRIBUTE_KEY_MAX	128
#define MASK_NO_METHOD			(-1)

/* One declared mask. */
typedef struct MaskRule
{
	char	   *column;
	char	   *attribute_key;	/* "" for the whole column */
	int			method;			/* AUDIT_MASK_HASH or AUDIT_MASK_REDACT */
} MaskRule;

/* The declared masks of one table. */
struct AuditMaskPolicy
{
	char	   *table_name;
	int			nrules;
	MaskRule   *rules;
};

/* The cache: one policy per table that has declared masks. */
static MemoryContext policy_cxt = NULL;
static AuditMaskPolicy *policy_tables = NULL;
static int	policy_ntables = 0;
static DocTableCache policy_cache = {.table = "audit_mask"};

/* A table without declared masks: the built-in patterns only. */
static AuditMaskPolicy empty_policy = {NULL, 0, NULL};

/*
 * The audit key, read once per transaction (wiped at its end:
 * forget_audit_key), and the subtransaction that read it (the copy goes
 * with it if it rolls back: forget_audit_key_sub).
 */
static MemoryContext key_cxt = NULL;
static SigningKey *audit_key = NULL;
static SubTransactionId audit_key_subid = InvalidSubTransactionId;

/* ------------------------------------------------------------------------
 * The mask
 * ------------------------------------------------------------------------
 */

/* Wipe and drop the key copy, if any. */
static void
wipe_audit_key(void)
{
	if (audit_key != NULL)
		explicit_bzero(VARDATA_ANY(audit_key->secret), VARSIZE_ANY_EXHDR(audit_key->secret));
	audit_key = NULL;
	audit_key_subid = InvalidSubTransactionId;
	if (key_cxt != NULL)
		MemoryContextReset(key_cxt);
}

/*
 * forget_audit_key
 *	  Wipe the key copy at the end of its transaction: a secret is kept no
 *	  longer than it is used (a pooled backend lives on between clients).
 */
static void
forget_audit_key(XactEvent event, void *arg)
{
	if (audit_key == NULL ||
		(event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		 event != XACT_EVENT_PREPARE && event != XACT_EVENT_PARALLEL_COMMIT &&
		 event != XACT_EVENT_PARALLEL_ABORT))
		return;
	wipe_audit_key();
}

/*
 * forget_audit_key_sub
 *	  Wipe the key copy when the subtransaction that read it, or one that
 *	  encloses it, rolls back.  Subtransaction ids grow within a
 *	  transaction and subtransactions nest, so a copy read while mySubid was
 *	  open has an id >= mySubid; one read before it stays.
 */
static void
forget_audit_key_sub(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && audit_key != NULL &&
		audit_key_subid >= mySubid)
		wipe_audit_key();
}

/*
 * current_audit_key
 *	  The newest 'audit' key, read at most once per transaction into
 *	  key_cxt (the previous copy is wiped first, and at the end of the
 *	  transaction: forget_audit_key).
 */
static const SigningKey *
current_audit_key(void)
{
	List	   *keys;
	SigningKey *newest;
	MemoryContext old;

	if (audit_key != NULL)
		return audit_key;

	if (key_cxt == NULL)
	{
		key_cxt = AllocSetContextCreate(TopMemoryContext, "catalog audit key",
										ALLOCSET_SMALL_SIZES);
		RegisterXactCallback(forget_audit_key, NULL);
		RegisterSubXactCallback(forget_audit_key_sub, NULL);
	}
	wipe_audit_key();

	keys = SigningKeysLoad("audit");
	newest = SigningKeyFind(keys, -1);
	if (newest == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no audit key in catalog.signing_key"),
				 errdetail("Audit values are masked with a keyed hash before they are written."),
				 errhint("Insert a row with purpose 'audit' into catalog.signing_key, or set catalog.audit_mask_method to 'redact'.")));
	old = MemoryContextSwitchTo(key_cxt);
	audit_key = palloc(sizeof(SigningKey));
	audit_key->kid = newest->kid;
	audit_key->secret = (bytea *) palloc(VARSIZE_ANY(newest->secret));
	memcpy(audit_key->secret, newest->secret, VARSIZE_ANY(newest->secret));
	MemoryContextSwitchTo(old);
	audit_key_subid = GetCurrentSubTransactionId();

	/* wipe the loaded copies */
	SigningKeysWipe(keys);
	return audit_key;
}

/*
 * append_mask
 *	  Append to out the mask of len bytes of data under method.
 */
static void
append_mask(StringInfo out, int method, const char *data, size_t len)
{
	uint8		mac[SIGNING_MAC_LEN];
	char		hex[MASK_HMAC_BYTES * 2];

	if (method == AUDIT_MASK_REDACT)
	{
		appendStringInfoString(out, MASK_REDACTED);
		return;
	}
	SigningKeyHmac(current_audit_key(), data, len, mac);
	hex_encode((const char *) mac, MASK_HMAC_BYTES, hex);
	appendStringInfoString(out, "[hmac:");
	appendBinaryStringInfo(out, hex, sizeof(hex));
	appendStringInfoChar(out, ']');
}

/*
 * mask_string
 *	  The mask of len bytes of data as a palloc'd C string.
 */
static char *
mask_string(int method, const char *data, size_t len)
{
	StringInfoData out;

	initStringInfo(&out);
	append_mask(&out, method, data, len);
	return out.data;
}

/*
 * db_utf8
 *	  True when the database encoding is UTF-8 (the scanners' utf8).
 */
static inline bool
db_utf8(void)
{
	return GetDatabaseEncoding() == PG_UTF8;
}

/*
 * mask_values_in
 *	  s with every match of a value pattern replaced by its mask (by
 *	  method); NULL when nothing matched.  *outlen is the result's length.
 */
static char *
mask_values_in(const char *s, int len, int method, int *outlen)
{
	AuditScanSpans spans = {NULL, 0, 0};
	StringInfoData out;
	int			pos = 0;

	if (!AuditScanMayMatch(s, len))
		return NULL;
	AuditScanFind(s, len, db_utf8(), &spans);
	if (spans.n == 0)
		return NULL;

	initStringInfo(&out);
	for (int k = 0; k < spans.n; k++)
	{
		int			b0 = spans.s[k].start;
		int			b1 = spans.s[k].end;

		appendBinaryStringInfo(&out, s + pos, b0 - pos);
		append_mask(&out, method, s + b0, b1 - b0);
		pos = b1;
	}
	appendBinaryStringInfo(&out, s + pos, len - pos);
	pfree(spans.s);
	*outlen = out.len;
	return out.data;
}

/*
 * contains_value_pattern
 *	  True when s holds an e-mail address, a card number or a phone number.
 */
static bool
contains_value_pattern(const char *s, int len)
{
	AuditScanSpans spans = {NULL, 0, 0};
	bool		found;

	if (!AuditScanMayMatch(s, len))
		return false;
	AuditScanFind(s, len, db_utf8(), &spans);
	found = spans.n > 0;
	if (spans.s != NULL)
		pfree(spans.s);
	return found;
}

/* ------------------------------------------------------------------------
 * Declared masks
 * ------------------------------------------------------------------------
 */

/*
 * Whether a column name matches a built-in key pattern depends on the name
 * alone (and the database encoding, fixed for the backend), so the answer
 * is remembered for the column names the trigger meets: the audited
 * tables have a few dozen, and every row of every write asks for each of
 * them.  Names longer than a column name can be, or past the memo's
 * capacity (a table altered many times over), are checked every time.
 * What the answer leads to (the method) is not remembered: the setting
 * catalog.audit_mask_method can change at any time.
 */
#define KEY_MEMO_SIZE	128

typedef struct KeyMemo
{
	char		name[NAMEDATALEN];
	bool		sensitive;
} KeyMemo;

static KeyMemo key_memo[KEY_MEMO_SIZE];
static int	key_memo_n = 0;

static bool
column_name_sensitive(const char *column)
{
	size_t		len = strlen(column);
	bool		sensitive;

	if (len >= NAMEDATALEN)
		return AuditScanKeyIsSensitive(column, (int) len, db_utf8());
	for (int k = 0; k < key_memo_n; k++)
		if (strcmp(key_memo[k].name, column) == 0)
			return key_memo[k].sensitive;
	sensitive = AuditScanKeyIsSensitive(column, (int) len, db_utf8());
	if (key_memo_n < KEY_MEMO_SIZE)
	{
		memcpy(key_memo[key_memo_n].name, column, len + 1);
		key_memo[key_memo_n].sensitive = sensitive;
		key_memo_n++;
	}
	return sensitive;
}

/*
 * column_method
 *	  The method that masks the whole value of column, or MASK_NO_METHOD.
 */
static int
column_method(const AuditMaskPolicy *policy, const char *column)
{
	for (int k = 0; k < policy->nrules; k++)
		if (policy->rules[k].attribute_key[0] == '\0' &&
			strcmp(policy->rules[k].column, column) == 0)
			return policy->rules[k].method;
	if (column_name_sensitive(column))
		return catalog_audit_mask_method;
	return MASK_NO_METHOD;
}

/*
 * key_method
 *	  The method that masks the value of object key (len bytes) inside
 *	  jsonb column, or MASK_NO_METHOD.
 */
static int
key_method(const AuditMaskPolicy *policy, const char *column, const char *key, int len)
{
	for (int k = 0; k < policy->nrules; k++)
	{
		const MaskRule *r = &policy->rules[k];

		if (r->attribute_key[0] != '\0' && strcmp(r->column, column) == 0 &&
			strlen(r->attribute_key) == (size_t) len &&
			memcmp(r->attribute_key, key, len) == 0)
			return r->method;
	}
	if (AuditScanKeyIsSensitive(key, len, db_utf8()))
		return catalog_audit_mask_method;
	return MASK_NO_METHOD;
}

/* ------------------------------------------------------------------------
 * Pushing values
 * ------------------------------------------------------------------------
 */

/*
 * timestamp_text
 *	  A timestamptz in the ISO 8601 form of to_jsonb, in UTC.
 */
static char *
timestamp_text(Datum ts)
{
	const int	utc = 0;

	return JsonEncodeDateTime(NULL, ts, TIMESTAMPTZOID, &utc);
}

/*
 * is_identifier_column
 *	  Columns of the audited tables whose values are the catalog's own
 *	  identifiers, checked by an allow-list on input (src/validate.c): a
 *	  SKU such as "B-123456789-3" or "978-3-16-148410-0" is not a phone
 *	  number, and masking it would hide what the record is about.  They are
 *	  not scanned for value patterns (a declared mask still applies).
 */
static bool
is_identifier_column(const char *column)
{
	return strcmp(column, "sku") == 0 ||
		strcmp(column, "slug") == 0 ||
		strcmp(column, "currency") == 0;
}

/*
 * scalar_of
 *	  The jsonb scalar that stands for a non-jsonb value of type typid (a
 *	  base type); *scan is set when it is a string of free text, to be
 *	  scanned for value patterns.
 */
static void
scalar_of(Oid typid, Datum value, JsonbValue *jv, bool *scan)
{
	*scan = false;
	switch (typid)
	{
		case INT2OID:
			jv->type = jbvNumeric;
			jv->val.numeric = int64_to_numeric(DatumGetInt16(value));
			return;
		case INT4OID:
			jv->type = jbvNumeric;
			jv->val.numeric = int64_to_numeric(DatumGetInt32(value));
			return;
		case INT8OID:
			jv->type = jbvNumeric;
			jv->val.numeric = int64_to_numeric(DatumGetInt64(value));
			return;
		case NUMERICOID:
			{
				Numeric		n = DatumGetNumeric(value);

				if (!numeric_is_nan(n) && !numeric_is_inf(n))
				{
					jv->type = jbvNumeric;
					jv->val.numeric = n;
					return;
				}
				break;			/* NaN and infinities: their text */
			}
		case BOOLOID:
			jv->type = jbvBool;
			jv->val.boolean = DatumGetBool(value);
			return;
		case TIMESTAMPTZOID:
			jv->type = jbvString;
			jv->val.string.val = timestamp_text(value);
			jv->val.string.len = strlen(jv->val.string.val);
			return;
		case TIMESTAMPOID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
			jv->type = jbvString;
			jv->val.string.val = JsonEncodeDateTime(NULL, value, typid, NULL);
			jv->val.string.len = strlen(jv->val.string.val);
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				jv->type = jbvString;
				jv->val.string.val = VARDATA_ANY(t);
				jv->val.string.len = VARSIZE_ANY_EXHDR(t);
				*scan = true;
				return;
			}
		default:
			*scan = !type_is_enum(typid);
			break;
	}
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(typid, &out, &varlena);
		jv->type = jbvString;
		jv->val.string.val = OidOutputFunctionCall(out, value);
		jv->val.string.len = strlen(jv->val.string.val);
	}
}

/*
 * value_text
 *	  The text a whole-value mask hashes: a string's content, the jsonb
 *	  text form of anything else.
 */
static void
value_text(const JsonbValue *v, StringInfo out)
{
	switch (v->type)
	{
		case jbvString:
			appendBinaryStringInfo(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvNull:
			appendStringInfoString(out, "null");
			break;
		case jbvBinary:
			(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * push_masked
 *	  Push (as token tok) the mask of the whole value v; JSON null stays
 *	  null.
 */
static void
push_masked(JsonbParseState **st, JsonbIteratorToken tok, int method, const JsonbValue *v)
{
	JsonbValue	m;
	StringInfoData text;

	if (v->type == jbvNull)
	{
		pushJsonbValue(st, tok, (JsonbValue *) v);
		return;
	}
	initStringInfo(&text);
	value_text(v, &text);
	m.type = jbvString;
	m.val.string.val = mask_string(method, text.data, text.len);
	m.val.string.len = strlen(m.val.string.val);
	pfree(text.data);
	pushJsonbValue(st, tok, &m);
}

/*
 * push_string
 *	  Push (as token tok) a string with its value patterns masked.
 *
 *	  An object key masked under redact gets "#n" appended, n counting the
 *	  masked keys of its object (*nkeys): two keys redacted alike would
 *	  collapse into one, and jsonb would keep only the last pair, silently
 *	  dropping a value from the image.  (Masked keys were once hashed
 *	  whatever the method; with redact chosen because there is no audit key,
 *	  a write whose attribute key held a phone number then failed.)  Under
 *	  hash, equal keys stay equal and distinct ones distinct.
 */
static void
push_string(JsonbParseState **st, JsonbIteratorToken tok, const char *s, int len, int *nkeys)
{
	JsonbValue	v;
	int			outlen;
	char	   *masked = mask_values_in(s, len, catalog_audit_mask_method, &outlen);

	if (masked != NULL && tok == WJB_KEY && catalog_audit_mask_method == AUDIT_MASK_REDACT)
	{
		StringInfoData key;

		initStringInfo(&key);
		appendBinaryStringInfo(&key, masked, outlen);
		appendStringInfo(&key, "#%d", ++(*nkeys));
		pfree(masked);
		masked = key.data;
		outlen = key.len;
	}
	v.type = jbvString;
	v.val.string.val = masked ? masked : (char *) s;
	v.val.string.len = masked ? outlen : len;
	pushJsonbValue(st, tok, &v);
}

static void walk_container(const AuditMaskPolicy *policy, const char *column,
						   JsonbParseState **st, JsonbContainer *c);

/*
 * push_member
 *	  Push one value or element of a container (token tok), masked whole
 *	  when method says so, else walked or scanned.
 */
static void
push_member(const AuditMaskPolicy *policy, const char *column, JsonbParseState **st,
			JsonbIteratorToken tok, JsonbValue *v, int method)
{
	if (method != MASK_NO_METHOD)
		push_masked(st, tok, method, v);
	else if (v->type == jbvBinary)
		walk_container(policy, column, st, v->val.binary.data);
	else if (v->type == jbvString)
		push_string(st, tok, v->val.string.val, v->val.string.len, NULL);
	else
		pushJsonbValue(st, tok, v);
}

/*
 * walk_container
 *	  Push a (non-scalar) jsonb container token by token, masking as the
 *	  rules say.  Recursion follows the nesting of the value, which jsonb
 *	  input already bounds by the stack depth check.
 */
static void
walk_container(const AuditMaskPolicy *policy, const char *column,
			   JsonbParseState **st, JsonbContainer *c)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			pending = MASK_NO_METHOD;
	int			nkeys = 0;		/* keys of this object redacted so far */

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				pushJsonbValue(st, tok, NULL);
				break;
			case WJB_KEY:
				pending = key_method(policy, column, v.val.string.val, v.val.string.len);
				push_string(st, WJB_KEY, v.val.string.val, v.val.string.len, &nkeys);
				break;
			case WJB_VALUE:
				push_member(policy, column, st, tok, &v, pending);
				pending = MASK_NO_METHOD;
				break;
			case WJB_ELEM:
				push_member(policy, column, st, tok, &v, MASK_NO_METHOD);
				break;
			default:
				elog(ERROR, "unexpected jsonb iterator token %d", (int) tok);
		}
	}
}

/*
 * Keys of values that are not jsonb.  A json value, or an array of json or
 * jsonb (a column an administrator added), is stored as its text, so its
 * keys cannot be masked one by one: when one of them is a sensitive key (a
 * built-in pattern; keys can be declared for jsonb columns only), the
 * whole value is masked with catalog.audit_mask_method.
 */

static bool escaped_string_matches(const char *start, const char *end);

/*
 * json_key_method
 *	  The method of the first masked key of json text (len bytes), else
 *	  MASK_NO_METHOD.  Iterative: the lexer only (a string followed by a
 *	  colon is a key), without de-escaping the values, so that any value
 *	  the json type accepts (nested deeper than the trigger's stack would
 *	  allow a recursive parse, or holding \u0000) is read; a key with an
 *	  escape is de-escaped on its own.  A text the lexer refuses (a json
 *	  column holds only valid json, so this is not expected), or a key that
 *	  is no text, masks the value whole.  Everything allocated is freed
 *	  before returning, so an array of many json values costs no more.
 */
static int
json_key_method(const AuditMaskPolicy *policy, const char *column, const char *json, int len)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "audit json keys",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	JsonLexContext *lex;
	int			method = MASK_NO_METHOD;
	const char *prev_start = NULL;
	const char *prev_end = NULL;
	bool		prev_string = false;

	lex = ApiJsonLexer(json, len, false);
	for (;;)
	{
		if (json_lex(lex) != JSON_SUCCESS)
		{
			method = catalog_audit_mask_method;
			break;
		}
		if (lex->token_type == JSON_TOKEN_END)
			break;
		if (lex->token_type == JSON_TOKEN_STRING &&
			memchr(lex->token_start, '\\', lex->token_terminator - lex->token_start) != NULL &&
			escaped_string_matches(lex->token_start, lex->token_terminator))
		{
			/* the text scan would miss it: the whole value is masked */
			method = catalog_audit_mask_method;
			break;
		}
		if (lex->token_type == JSON_TOKEN_COLON && prev_string)
		{
			/* prev_start and prev_end take the quotes in */
			const char *k = prev_start + 1;
			int			klen = (int) (prev_end - prev_start) - 2;

			if (memchr(k, '\\', klen) != NULL)
			{
				k = ApiJsonStringText(prev_start, (int) (prev_end - prev_start));
				if (k == NULL)
				{
					method = catalog_audit_mask_method;
					break;
				}
				klen = strlen(k);
			}
			method = key_method(policy, column, k, klen);
			if (method != MASK_NO_METHOD)
				break;
		}
		prev_string = lex->token_type == JSON_TOKEN_STRING;
		prev_start = lex->token_start;
		prev_end = lex->token_terminator;
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return method;
}

/* The value of four hex digits (checked by the lexer). */
static pg_wchar
hex4(const char *p)
{
	pg_wchar	v = 0;

	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v = (v << 4) | (c >= '0' && c <= '9' ? c - '0' :
						c >= 'a' && c <= 'f' ? c - 'a' + 10 :
						c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0);
	}
	return v;
}

/*
 * escaped_string_matches
 *	  Whether the json string token [start, end) (quotes included), which
 *	  holds a backslash, holds a value pattern once de-escaped.  The raw
 *	  text scan cannot see through "\u0040" or a card number whose line
 *	  break is written "\n", and a quoted local part is cut by "\"".  The
 *	  text is decoded for the scan only: an escape that is no character
 *	  (\u0000, a lone surrogate), or one the database encoding cannot hold,
 *	  reads as a space, so such a string is scanned too, where core's
 *	  decoder would refuse it.
 */
static bool
escaped_string_matches(const char *start, const char *end)
{
	StringInfoData out;
	bool		utf8 = db_utf8();
	bool		found;

	initStringInfo(&out);
	for (const char *p = start + 1; p < end - 1; p++)
	{
		pg_wchar	cp;

		if (*p != '\\' || p + 1 >= end - 1)
		{
			appendStringInfoChar(&out, *p);
			continue;
		}
		p++;
		switch (*p)
		{
			case 'b':
				appendStringInfoChar(&out, '\b');
				continue;
			case 'f':
				appendStringInfoChar(&out, '\f');
				continue;
			case 'n':
				appendStringInfoChar(&out, '\n');
				continue;
			case 'r':
				appendStringInfoChar(&out, '\r');
				continue;
			case 't':
				appendStringInfoChar(&out, '\t');
				continue;
			case 'u':
				break;
			default:
				appendStringInfoChar(&out, *p);		/* " \ / */
				continue;
		}
		/* \uXXXX, maybe a surrogate pair; the lexer has checked the digits */
		if (end - 1 - p < 5)
			break;
		cp = hex4(p + 1);
		p += 4;
		if (cp >= 0xD800 && cp <= 0xDBFF && end - 1 - p >= 7 && p[1] == '\\' && p[2] == 'u')
		{
			pg_wchar	lo = hex4(p + 3);

			if (lo >= 0xDC00 && lo <= 0xDFFF)
			{
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
		}
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || (!utf8 && cp >= 0x80))
			appendStringInfoChar(&out, ' ');
		else if (cp < 0x80)
			appendStringInfoChar(&out, (char) cp);
		else
		{
			unsigned char buf[8];

			unicode_to_utf8(cp, buf);
			appendBinaryStringInfo(&out, (const char *) buf, pg_utf_mblen(buf));
		}
	}
	found = contains_value_pattern(out.data, out.len);
	pfree(out.data);
	return found;
}

/* Whether a string needs an escape in JSON text: a quote, a backslash, a control. */
static bool
needs_escape(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] == '"' || s[i] == '\\' || (unsigned char) s[i] < 0x20)
			return true;
	return false;
}

/* The method of the first masked key anywhere in a jsonb container. */
static int
jsonb_key_method(const AuditMaskPolicy *policy, const char *column, JsonbContainer *c)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		/*
		 * In the array's text form a string is escaped twice (by jsonb, then
		 * by the array): one that needs escaping and holds a value pattern
		 * could hide it from the text scan (a quoted local part), so the
		 * whole value is masked.
		 */
		if ((tok == WJB_KEY || tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString &&
			needs_escape(v.val.string.val, v.val.string.len) &&
			contains_value_pattern(v.val.string.val, v.val.string.len))
			return catalog_audit_mask_method;
		if (tok == WJB_KEY)
		{
			int			m = key_method(policy, column, v.val.string.val, v.val.string.len);

			if (m != MASK_NO_METHOD)
				return m;
		}
		CHECK_FOR_INTERRUPTS();
	}
	return MASK_NO_METHOD;
}

/*
 * json_array_elem_type
 *	  For an array type whose elements are json or jsonb, or a domain over
 *	  either: the element type, and its base type in *base_elem; else
 *	  InvalidOid.  getBaseType of an array of a domain is the array itself,
 *	  so the element has to be looked at.
 */
static Oid
json_array_elem_type(Oid array_type, Oid *base_elem)
{
	Oid			elem;

	if (array_type == JSONARRAYOID || array_type == JSONBARRAYOID)
	{
		*base_elem = (array_type == JSONARRAYOID) ? JSONOID : JSONBOID;
		return *base_elem;
	}
	/* a type of the initial catalog is no array of a domain: no lookup */
	if (array_type < FirstGenbkiObjectId)
		return InvalidOid;
	elem = get_element_type(array_type);
	if (!OidIsValid(elem) || elem < FirstGenbkiObjectId)
		return InvalidOid;
	*base_elem = getBaseType(elem);
	return (*base_elem == JSONOID || *base_elem == JSONBOID) ? elem : InvalidOid;
}

/*
 * nonjsonb_key_method
 *	  For a json value or an array of json or jsonb (base type base): the
 *	  method of its first masked key, else MASK_NO_METHOD.  Other types
 *	  carry no keys.
 */
static int
nonjsonb_key_method(const AuditMaskPolicy *policy, const char *column, Oid base, Datum value)
{
	Oid			elem_type;
	Oid			elem;

	if (base == JSONOID)
	{
		text	   *t = DatumGetTextPP(value);

		return json_key_method(policy, column, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	/* an array of json or jsonb, or of a domain over either */
	elem_type = json_array_elem_type(base, &elem);
	if (OidIsValid(elem_type))
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		/* json and jsonb (and domains over them): varlena, int-aligned */
		deconstruct_array(arr, elem_type, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			int			m;

			if (nulls[i])
				continue;
			if (elem == JSONOID)
			{
				text	   *t = DatumGetTextPP(elems[i]);

				m = json_key_method(policy, column, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			else
				m = jsonb_key_method(policy, column, &DatumGetJsonbP(elems[i])->root);
			if (m != MASK_NO_METHOD)
				return m;
		}
	}
	return MASK_NO_METHOD;
}

/*
 * AuditMaskPush
 *	  Push the value of column (not NULL, of type typid) of a row of the
 *	  policy's table as the value of the key the caller has just pushed,
 *	  masked.  Allocates in the current memory context; the pushed strings
 *	  must outlive the parse state, and do.
 */
void
AuditMaskPush(AuditMaskPolicy *policy, JsonbParseState **state,
			  const char *column, Oid typid, Datum value)
{
	/*
	 * Types of the initial catalog (OIDs below FirstGenbkiObjectId) are
	 * never domains: skip the catalog lookup for the common columns.
	 */
	Oid			base = (typid < FirstGenbkiObjectId) ? typid : getBaseType(typid);
	int			method;
	JsonbValue	v;
	bool		scan;

	if (policy == NULL)
		policy = &empty_policy;
	method = column_method(policy, column);

	if (base == JSONBOID)
	{
		Jsonb	   *jb = DatumGetJsonbP(value);

		if (JB_ROOT_IS_SCALAR(jb))
		{
			if (!JsonbExtractScalar(&jb->root, &v))
				elog(ERROR, "could not read a scalar jsonb value");
			scan = v.type == jbvString;
		}
		else
		{
			v.type = jbvBinary;
			v.val.binary.data = &jb->root;
			v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
			if (method == MASK_NO_METHOD)
			{
				walk_container(policy, column, state, &jb->root);
				return;
			}
			scan = false;
		}
	}
	else
	{
		Oid			elem;

		if (method == MASK_NO_METHOD &&
			(base == JSONOID || OidIsValid(json_array_elem_type(base, &elem))))
			method = nonjsonb_key_method(policy, column, base, value);
		scalar_of(base, value, &v, &scan);
	}

	/* identifiers of the catalog itself carry no contact data */
	if (scan && is_identifier_column(column))
		scan = false;

	if (method != MASK_NO_METHOD)
		push_masked(state, WJB_VALUE, method, &v);
	else if (scan)
		push_string(state, WJB_VALUE, v.val.string.val, v.val.string.len, NULL);
	else
		pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * AuditMaskActor
 *	  The actor as an audit row stores it: the whole value masked (method
 *	  catalog.audit_mask_method) when it contains a value pattern (an
 *	  e-mail address, a card or phone number), else unchanged; the same
 *	  value in created_by / updated_by is masked by the same scanners.  A
 *	  palloc'd copy either way.
 */
char *
AuditMaskActor(const char *actor)
{
	int			len = strlen(actor);

	if (contains_value_pattern(actor, len))
		return mask_string(catalog_audit_mask_method, actor, len);
	return pstrdup(actor);
}

/*
 * AuditMaskVia
 *	  How the request came (ApiVia: "sql", or "<method> <path>") as an audit
 *	  row stores it: the path masked whole when it, or raw_path, the
 *	  request.path it was made from (NULL: none), holds a value pattern (a
 *	  client or proxy that puts an address or a card number into the path;
 *	  PostgREST itself routes /rpc/<function> only); a palloc'd copy.
 *	  raw_path counts because reducing the path to printable ASCII breaks
 *	  up a non-ASCII address.
 */
char *
AuditMaskVia(const char *via, const char *raw_path)
{
	const char *path = strchr(via, ' ');

	if (path == NULL)
		return pstrdup(via);
	path++;
	if (!contains_value_pattern(path, strlen(path)) &&
		(raw_path == NULL || !contains_value_pattern(raw_path, strlen(raw_path))))
		return pstrdup(via);
	return psprintf("%.*s %s", (int) (path - 1 - via), via,
					mask_string(catalog_audit_mask_method, path, strlen(path)));
}

/*
 * AuditMaskRequestId
 *	  The correlation id (sanitized, ApiSanitizeRequestId) as an audit row
 *	  stores it: masked whole when it, or raw, the value it was made from
 *	  (NULL: none), holds an e-mail address (a proxy may put a user's
 *	  address in x-request-id), else unchanged; a palloc'd copy either way.
 *	  raw counts because sanitizing breaks up an address: "jörg@müller.de"
 *	  becomes "j__rg@m__ller.de", whose domain has no dot left between
 *	  label characters, and the cut to 128 bytes can leave "alice@exa".
 *	  The mask is of the sanitized id, so that a lookup by the clear value
 *	  (audit_by_request) finds it.  Only e-mail addresses: a random UUID
 *	  holds a run of 10 to 15 digits that reads as a phone number about
 *	  once in 200, and masking those would hide ordinary ids for nothing.
 */
char *
AuditMaskRequestId(const char *id, const char *raw)
{
	int			len = strlen(id);
	int			rawlen = raw ? strlen(raw) : 0;

	if ((AuditScanMayMatch(id, len) && AuditScanHasEmail(id, len, db_utf8())) ||
		(raw != NULL && AuditScanMayMatch(raw, rawlen) && AuditScanHasEmail(raw, rawlen, db_utf8())))
		return mask_string(catalog_audit_mask_method, id, len);
	return pstrdup(id);
}

/* ------------------------------------------------------------------------
 * Policy cache
 * ------------------------------------------------------------------------
 */

/*
 * policy_read
 *	  Read every row of catalog.audit_mask (rel) under snapshot into
 *	  policies allocated in cxt; returns the number of tables.
 */
static int
policy_read(Relation rel, Snapshot snapshot, MemoryContext cxt, AuditMaskPolicy **out)
{
	AttrNumber	a_table = DocColumnAttnum(rel, "table_name", TEXTOID);
	AttrNumber	a_column = DocColumnAttnum(rel, "column_name", TEXTOID);
	AttrNumber	a_key = DocColumnAttnum(rel, "attribute_key", TEXTOID);
	AttrNumber	a_method = DocColumnAttnum(rel, "method", TEXTOID);
	TupleDesc	desc = RelationGetDescr(rel);
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext old = MemoryContextSwitchTo(cxt);
	AuditMaskPolicy *tables = NULL;
	int			ntables = 0;
	int			captables = 0;

	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		n1,
					n2,
					n3,
					n4;
		Datum		d_table = heap_getattr(tup, a_table, desc, &n1);
		Datum		d_column = heap_getattr(tup, a_column, desc, &n2);
		Datum		d_key = heap_getattr(tup, a_key, desc, &n3);
		Datum		d_method = heap_getattr(tup, a_method, desc, &n4);
		char	   *table;
		char	   *column;
		char	   *key;
		char	   *method;
		AuditMaskPolicy *p = NULL;

		if (n1 || n2 || n3 || n4)
			continue;			/* NOT NULL columns */
		table = TextDatumGetCString(d_table);
		column = TextDatumGetCString(d_column);
		key = TextDatumGetCString(d_key);
		method = TextDatumGetCString(d_method);

		for (int k = 0; k < ntables; k++)
			if (strcmp(tables[k].table_name, table) == 0)
				p = &tables[k];
		if (p == NULL)
		{
			if (ntables == captables)
			{
				captables = captables == 0 ? 4 : captables * 2;
				tables = tables == NULL ? palloc(sizeof(AuditMaskPolicy) * captables) :
					repalloc(tables, sizeof(AuditMaskPolicy) * captables);
			}
			p = &tables[ntables++];
			p->table_name = table;
			p->nrules = 0;
			p->rules = NULL;
		}
		p->rules = p->rules == NULL ? palloc(sizeof(MaskRule)) :
			repalloc(p->rules, sizeof(MaskRule) * (p->nrules + 1));
		p->rules[p->nrules].column = column;
		p->rules[p->nrules].attribute_key = key;
		/* the CHECK constraint allows only these two; anything else: hash */
		p->rules[p->nrules].method = strcmp(method, "redact") == 0 ?
			AUDIT_MASK_REDACT : AUDIT_MASK_HASH;
		p->nrules++;
	}
	table_endscan(scan);
	MemoryContextSwitchTo(old);
	*out = tables;
	return ntables;
}

/*
 * policy_build
 *	  Read the declared masks into a new cache generation.  Built under
 *	  the caller's context and moved under TopMemoryContext only when
 *	  complete, so an error leaks nothing; the previous generation goes
 *	  under TopTransactionContext (pointers handed out in this transaction
 *	  stay valid until its end).
 */
static void
policy_build(void)
{
	MemoryContext cxt;
	Relation	rel;
	AuditMaskPolicy *tables;
	int			ntables;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "catalog audit mask policy",
								ALLOCSET_SMALL_SIZES);
	rel = DocTableCacheOpen(&policy_cache);
	for (;;)
	{
		uint64		generation;
		Snapshot	snapshot;

		generation = policy_cache.generation;
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		ntables = policy_read(rel, snapshot, cxt, &tables);
		UnregisterSnapshot(snapshot);
		if (generation == policy_cache.generation)
			break;
		MemoryContextReset(cxt);
	}
	table_close(rel, NoLock);

	if (policy_cxt != NULL)
		MemoryContextSetParent(policy_cxt, TopTransactionContext);
	MemoryContextSetParent(cxt, TopMemoryContext);
	policy_cxt = cxt;
	policy_tables = tables;
	policy_ntables = ntables;
	DocTableCacheBuilt(&policy_cache);
}

/*
 * AuditMaskPolicyFor
 *	  The masking policy of an audited table (never NULL: a table without
 *	  declared masks still has the built-in patterns).  Valid until the end
 *	  of the current transaction.
 */
AuditMaskPolicy *
AuditMaskPolicyFor(const char *table_name)
{
	if (!DocTableCacheValid(&policy_cache))
		policy_build();
	for (int k = 0; k < policy_ntables; k++)
		if (strcmp(policy_tables[k].table_name, table_name) == 0)
			return &policy_tables[k];
	return &empty_policy;
}

/* ------------------------------------------------------------------------
 * API: audit_mask_set, audit_mask_drop, audit_masks
 * ------------------------------------------------------------------------
 */

static ApiPlan upsert_plan = {
	"INSERT INTO catalog.audit_mask AS m"
	" (table_name, column_name, attribute_key, method, created_by)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (table_name, column_name, attribute_key) DO UPDATE"
	" SET method = EXCLUDED.method, created_at = pg_catalog.now(),"
	" created_by = EXCLUDED.created_by"
	" RETURNING m.table_name, m.column_name, m.attribute_key, m.method,"
	" m.created_at, m.created_by",
	5,
	{TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
	NULL
};

static ApiPlan delete_plan = {
	"DELETE FROM catalog.audit_mask"
	" WHERE table_name = $1 AND column_name = $2 AND attribute_key = $3",
	3,
	{TEXTOID, TEXTOID, TEXTOID},
	NULL
};

static ApiPlan list_plan = {
	"SELECT table_name, column_name, attribute_key, method, created_at, created_by"
	" FROM catalog.audit_mask ORDER BY table_name, column_name, attribute_key",
	0,
	{InvalidOid},
	NULL
};

/*
 * short_text_arg
 *	  Argument argno as a C string, or NULL when it is longer than max
 *	  bytes (checked before detoasting).  NULL arguments are the caller's.
 */
static char *
short_text_arg(FunctionCallInfo fcinfo, int argno, int max)
{
	if (toast_raw_datum_size(PG_GETARG_DATUM(argno)) > (Size) (VARHDRSZ + max))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * table_arg
 *	  The audited table named by argument 0: "product" or "category".
 */
static const char *
table_arg(FunctionCallInfo fcinfo)
{
	char	   *t;

	ApiRequireArg(fcinfo, 0, "table_name");
	t = short_text_arg(fcinfo, 0, NAMEDATALEN);
	if (t != NULL && strcmp(t, "product") == 0)
		return "product";
	if (t != NULL && strcmp(t, "category") == 0)
		return "category";
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("table_name must be \"product\" or \"category\""),
			 ApiErrDetail("{\"field\":\"table_name\",\"reason\":\"unknown_value\"}")));
	return NULL;				/* keep compiler quiet */
}

/*
 * column_arg
 *	  Argument 1, a column name of at most NAMEDATALEN - 1 bytes (the
 *	  syscache compares names in NAMEDATALEN bytes, so a longer one must
 *	  never reach it); NULL when it is longer or empty (no column has
 *	  such a name).
 */
static char *
column_arg(FunctionCallInfo fcinfo)
{
	char	   *c;

	ApiRequireArg(fcinfo, 1, "column_name");
	c = short_text_arg(fcinfo, 1, NAMEDATALEN - 1);
	return (c != NULL && c[0] != '\0') ? c : NULL;
}

/*
 * attribute_key_arg
 *	  Argument 2, checked like plain text, 1 to 128 characters; ""
 *	  (the whole column) when NULL.  Keys are matched byte for byte, so a
 *	  key that canonicalisation would change (white space trimmed or
 *	  collapsed, another Unicode form) is refused with not_canonical,
 *	  never stored changed: the key as written would go unmasked.
 */
static char *
attribute_key_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(2))
		return "";
	return ValidateExactTextArg("attribute_key", CATALOG_GETARG_RAW_TEXT(2), VT_PLAIN,
								1, MASK_ATTRIBUTE_KEY_MAX);
}

/*
 * push_mask_row
 *	  Push the mask in columns 1..6 of row of the last SPI result as an
 *	  object; returns what closing the object returned (the whole value
 *	  when the object is the outermost one).
 */
static JsonbValue *
push_mask_row(JsonbParseState **st, int row)
{
	HeapTuple	tup = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	char	   *key = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	Datum		created_at = SPI_getbinval(tup, desc, 5, &isnull);

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	DocPushText(st, "table_name",
				DocCString(TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull))));
	DocPushText(st, "column_name",
				DocCString(TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull))));
	DocPushText(st, "attribute_key", DocCString(key[0] == '\0' ? NULL : key));
	DocPushText(st, "method",
				DocCString(TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull))));
	DocPushText(st, "created_at", DocCString(timestamp_text(created_at)));
	DocPushText(st, "created_by",
				DocCString(TextDatumGetCString(SPI_getbinval(tup, desc, 6, &isnull))));
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * mask_set
 *	  catalog_api.audit_mask_set, under ApiRunWrite.
 */
static Datum
mask_set(PG_FUNCTION_ARGS)
{
	const char *table = table_arg(fcinfo);
	char	   *column = column_arg(fcinfo);
	char	   *key = attribute_key_arg(fcinfo);
	char	   *method;
	Oid			relid;
	AttrNumber	attnum = InvalidAttrNumber;
	Datum		values[5];
	MemoryContext cxt = CurrentMemoryContext;
	JsonbParseState *st = NULL;
	Jsonb	   *result;

	ApiRequireArg(fcinfo, 3, "method");
	method = short_text_arg(fcinfo, 3, 16);
	if (method == NULL || (strcmp(method, "hash") != 0 && strcmp(method, "redact") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method must be \"hash\" or \"redact\""),
				 ApiErrDetail("{\"field\":\"method\",\"reason\":\"unknown_value\"}")));

	/* the column, from the system catalog */
	relid = get_relname_relid(table, get_namespace_oid("catalog", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation catalog.%s does not exist", table),
				 errhint("Run CREATE EXTENSION catalog in this database.")));
	if (column != NULL)
		attnum = get_attnum(relid, column);
	if (attnum <= 0)			/* missing, dropped or a system column */
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column_name is not a column of catalog.%s", table),
				 ApiErrDetail("{\"field\":\"column_name\",\"reason\":\"unknown_column\"}")));
	if (strcmp(column, "id") == 0 || get_attgenerated(relid, attnum) != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" of catalog.%s cannot be masked", column, table),
				 ApiErrDetail("{\"field\":\"column_name\",\"reason\":\"not_maskable\"}"),
				 errhint("The row key is recorded apart from the values, and generated columns are not recorded at all.")));
	if (key[0] != '\0' && getBaseType(get_atttype(relid, attnum)) != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attribute_key applies only to a jsonb column"),
				 ApiErrDetail("{\"field\":\"attribute_key\",\"reason\":\"not_jsonb\"}"),
				 errhint("Omit attribute_key to mask the whole column.")));
	/*
	 * A key no attribute can have would be saved, listed and never applied:
	 * the keys of product.attributes follow AttributesCheckKey and match by
	 * bytes.  (A jsonb column an administrator added has no such rule;
	 * audit_mask_drop takes any key, so a mask saved before this check can
	 * still be dropped.)
	 */
	if (key[0] != '\0' && strcmp(table, "product") == 0 && strcmp(column, "attributes") == 0)
		AttributesCheckKey("attribute_key", key, strlen(key));

	values[0] = CStringGetTextDatum(table);
	values[1] = CStringGetTextDatum(column);
	values[2] = CStringGetTextDatum(key);
	values[3] = CStringGetTextDatum(method);
	values[4] = CStringGetTextDatum(AuditMaskActor(ApiActor()));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ApiExecute(&upsert_plan, values, NULL, false, 0) != 1)
		elog(ERROR, "audit mask upsert did not return one row");
	/* the document outlives SPI_finish */
	MemoryContextSwitchTo(cxt);
	result = JsonbValueToJsonb(push_mask_row(&st, 0));
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

Datum
catalog_audit_mask_set(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_AUDIT_MASK_SET);
	return ApiRunWrite(mask_set, fcinfo);
}

/*
 * mask_drop
 *	  catalog_api.audit_mask_drop, under ApiRunWrite.  The column need not
 *	  exist any more: a mask of a dropped column can be dropped too.
 */
static Datum
mask_drop(PG_FUNCTION_ARGS)
{
	const char *table = table_arg(fcinfo);
	char	   *column = column_arg(fcinfo);
	char	   *key = attribute_key_arg(fcinfo);
	Datum		values[3];
	int			n;

	if (column == NULL)
		PG_RETURN_BOOL(false);	/* no column has such a name */
	values[0] = CStringGetTextDatum(table);
	values[1] = CStringGetTextDatum(column);
	values[2] = CStringGetTextDatum(key);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = ApiExecute(&delete_plan, values, NULL, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

Datum
catalog_audit_mask_drop(PG_FUNCTION_ARGS)
{
	RateLimitEnter(RLF_AUDIT_MASK_DROP);
	return ApiRunWrite(mask_drop, fcinfo);
}

/*
 * catalog_api.audit_masks() -> jsonb
 *	  {"declared": [mask, ...] (by table, column, key), "builtin_keys":
 *	  [...], "builtin_values": [...], "method": the built-in patterns'
 *	  method}.
 */
Datum
catalog_audit_masks(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	Jsonb	   *result;
	const char *name;
	int			n;

	RateLimitEnter(RLF_AUDIT_MASKS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = ApiExecute(&list_plan, NULL, NULL, true, 0);
	MemoryContextSwitchTo(cxt);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushKey(&st, "declared");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		(void) push_mask_row(&st, i);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushKey(&st, "builtin_keys");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int k = 0; (name = AuditScanKeyPattern(k)) != NULL; k++)
		DocPushElem(&st, name);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushKey(&st, "builtin_values");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int k = 0; (name = AuditScanValuePattern(k)) != NULL; k++)
		DocPushElem(&st, name);
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	DocPushText(&st, "method",
				DocCString(catalog_audit_mask_method == AUDIT_MASK_REDACT ? "redact" : "hash"));
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
