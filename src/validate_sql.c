/*-------------------------------------------------------------------------
 *
 * validate_sql.c
 *	  Server-side wrappers around validate.c: apply it to SQL arguments and
 *	  turn a refusal into an ereport with a field-level JSON DETAIL.
 *
 * The error contract (DESIGN.md): the SQLSTATE follows the reason (22001
 * for "too_long"; 22003 for the numeric range reasons; 22021 for
 * "invalid_utf8"; 22023 otherwise), the primary message names the field
 * and says what is wrong in words, and DETAIL is compact JSON with no
 * spaces, keys in this order:
 *
 *	  {"field":"name","reason":"too_long","max":255}
 *	  {"field":"name","reason":"markup","position":7}
 *	  {"field":"sku","reason":"too_short","min":3}
 *
 * "max" carries the limit, except for "too_short" and "empty" where the
 * limit is the minimum length and the key is "min".  "position" (1-based code point) appears
 * when known.  The refused value itself is never echoed: it may be large,
 * and it may be exactly the markup the check exists to keep out of logs
 * and pages.  The field name is escaped with escape_json.
 *
 * Also the SQL-callable test hooks catalog.canonical_text(kind, value,
 * min_len, max_len) and catalog.check_price(value).
 *
 * validate.c works on UTF-8.  In a database with another server encoding
 * the value is converted to UTF-8 and the result back (the extension is
 * meant for UTF8 databases; this only keeps other encodings correct).  In
 * a SQL_ASCII database the bytes are taken as UTF-8 unconverted, so bytes
 * that are not UTF-8 get the usual "invalid_utf8" refusal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <string.h>

#include "access/detoast.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "api.h"
#include "validate.h"
#include "validate_sql.h"

/* Largest max_len that catalog.canonical_text accepts (code points). */
#define CANONICAL_TEXT_MAX_LEN	1000000

/* A kind name of catalog.canonical_text and its ValidateTextKind. */
typedef struct ValidateKindName
{
	const char *name;
	ValidateTextKind kind;
} ValidateKindName;

static const ValidateKindName kind_names[] = {
	{"plain", VT_PLAIN},
	{"longtext", VT_LONGTEXT},
	{"sku", VT_SKU},
	{"slug", VT_SLUG},
	{"currency", VT_CURRENCY},
	{"token", VT_TOKEN},
};

/*
 * reason_sqlstate
 *		The SQLSTATE for a reason, as documented in validate_sql.h.
 */
static int
reason_sqlstate(const char *reason)
{
	if (strcmp(reason, "too_long") == 0)
		return ERRCODE_STRING_DATA_RIGHT_TRUNCATION;
	if (strcmp(reason, "out_of_range") == 0 ||
		strcmp(reason, "too_many_digits") == 0 ||
		strcmp(reason, "too_many_decimals") == 0 ||
		strcmp(reason, "negative") == 0 ||
		strcmp(reason, "not_a_number") == 0)
		return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
	if (strcmp(reason, "invalid_utf8") == 0)
		return ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
	return ERRCODE_INVALID_PARAMETER_VALUE;
}

/*
 * reason_words
 *		Append to buf what is wrong, in words, for the primary message.
 */
static void
reason_words(StringInfo buf, const ValidateError *err)
{
	const char *r = err->reason;

	if (strcmp(r, "empty") == 0)
		appendStringInfoString(buf, "value is empty");
	else if (strcmp(r, "too_short") == 0)
		appendStringInfo(buf, "value is shorter than %d %s", err->limit,
						 err->limit == 1 ? "character" : "characters");
	else if (strcmp(r, "too_long") == 0)
		appendStringInfo(buf, "value is longer than %d %s", err->limit,
						 err->limit == 1 ? "character" : "characters");
	else if (strcmp(r, "invalid_utf8") == 0)
		appendStringInfoString(buf, "value is not valid UTF-8");
	else if (strcmp(r, "control_character") == 0)
		appendStringInfoString(buf, "value contains a control character");
	else if (strcmp(r, "bidi_control") == 0)
		appendStringInfoString(buf, "value contains a bidirectional control character");
	else if (strcmp(r, "zero_width") == 0)
		appendStringInfoString(buf, "value contains an invisible character");
	else if (strcmp(r, "noncharacter") == 0)
		appendStringInfoString(buf, "value contains a Unicode noncharacter");
	else if (strcmp(r, "private_use") == 0)
		appendStringInfoString(buf, "value contains a private-use character");
	else if (strcmp(r, "combining_marks") == 0)
		appendStringInfo(buf, "value has more than %d combining marks in a row", err->limit);
	else if (strcmp(r, "markup") == 0)
		appendStringInfoString(buf, "value contains markup");
	else if (strcmp(r, "active_content") == 0)
		appendStringInfoString(buf, "value contains active content");
	else if (strcmp(r, "invalid_format") == 0)
		appendStringInfoString(buf, "value has an invalid format");
	else if (strcmp(r, "unknown_currency") == 0)
		appendStringInfoString(buf, "value is not an active ISO 4217 currency code");
	else if (strcmp(r, "not_a_number") == 0)
		appendStringInfoString(buf, "value is not a finite number");
	else if (strcmp(r, "negative") == 0)
		appendStringInfoString(buf, "value is negative");
	else if (strcmp(r, "too_many_digits") == 0)
		appendStringInfo(buf, "value has more than %d %s before the decimal point", err->limit,
						 err->limit == 1 ? "digit" : "digits");
	else if (strcmp(r, "too_many_decimals") == 0)
		appendStringInfo(buf, "value has more than %d decimal %s", err->limit,
						 err->limit == 1 ? "place" : "places");
	else if (strcmp(r, "out_of_range") == 0)
		appendStringInfoString(buf, "value is out of range");
	else if (strcmp(r, "unknown_kind") == 0)
		appendStringInfoString(buf, "value is not a known kind");
	else if (strcmp(r, "required") == 0)
		appendStringInfoString(buf, "a value is required");
	else if (strcmp(r, "not_found") == 0)
		appendStringInfoString(buf, "no such row");
	else if (strcmp(r, "invalid_value") == 0)
		appendStringInfoString(buf, "value is not one of the allowed values");
	else if (strcmp(r, "cycle") == 0)
		appendStringInfoString(buf, "the move would make the category its own ancestor");
	else if (strcmp(r, "too_deep") == 0)
		appendStringInfo(buf, "nesting would be deeper than %d levels", err->limit);
	else if (strcmp(r, "immutable") == 0)
		appendStringInfoString(buf, "value cannot change once the row exists");
	else if (strcmp(r, "conflicts_with_parent_id") == 0)
		appendStringInfoString(buf, "cannot be combined with parent_id");
	else if (strcmp(r, "not_object") == 0)
		appendStringInfoString(buf, "value is not a JSON object");
	else if (strcmp(r, "not_string") == 0)
		appendStringInfoString(buf, "value is not a JSON string or number");
	else if (strcmp(r, "not_text") == 0)
		appendStringInfoString(buf, "value holds \\u0000 or a lone surrogate, which no text can hold");
	else if (strcmp(r, "not_canonical") == 0)
		appendStringInfoString(buf, "value is not in canonical form (white space, Unicode normalisation)");
	else if (strcmp(r, "invalid_key") == 0)
		appendStringInfoString(buf, "a key does not match [a-z][a-z0-9_]*");
	else if (strcmp(r, "key_too_long") == 0)
		appendStringInfo(buf, "a key is longer than %d bytes", err->limit);
	else if (strcmp(r, "too_many_keys") == 0)
		appendStringInfo(buf, "value has more than %d keys", err->limit);
	else if (strcmp(r, "too_many_elements") == 0)
		appendStringInfo(buf, "an array has more than %d elements", err->limit);
	else if (strcmp(r, "too_large") == 0)
		appendStringInfo(buf, "value is larger than %d bytes", err->limit);
	else
		appendStringInfo(buf, "value is not valid (%s)", r);

	if (err->position >= 1)
		appendStringInfo(buf, " at position %d", err->position);
}

/*
 * ValidateRaise
 *	  Raise the error described by err for the named field; see the file
 *	  header for the message and DETAIL format.
 */
void
ValidateRaise(const char *field, const ValidateError *err)
{
	StringInfoData msg;
	StringInfoData detail;

	initStringInfo(&msg);
	reason_words(&msg, err);

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"field\":");
	escape_json(&detail, field);
	appendStringInfoString(&detail, ",\"reason\":");
	escape_json(&detail, err->reason);
	if (err->limit >= 0)
		appendStringInfo(&detail, ",\"%s\":%d",
						 (strcmp(err->reason, "too_short") == 0 ||
						  strcmp(err->reason, "empty") == 0) ? "min" : "max",
						 err->limit);
	if (err->position >= 1)
		appendStringInfo(&detail, ",\"position\":%d", err->position);
	appendStringInfoChar(&detail, '}');

	ereport(ERROR,
			(errcode(reason_sqlstate(err->reason)),
			 errmsg("invalid value for field \"%s\": %s", field, msg.data),
			 errdetail_internal("%s", ApiDetailJson(detail.data))));
}

/*
 * ValidateRaiseReason
 *	  Raise {"field": field, "reason": reason} without limit or position.
 *	  The SQLSTATE follows the reason like ValidateRaise (22023 for any
 *	  reason not listed there).
 */
void
ValidateRaiseReason(const char *field, const char *reason)
{
	ValidateError err;

	err.reason = reason;
	err.limit = -1;
	err.position = -1;
	ValidateRaise(field, &err);
}

/*
 * text_arg
 *	  Canonicalise a text argument as a field of the given kind.  value may
 *	  be toasted: a value whose raw size is already over ValidateText's
 *	  input bound is refused before it is detoasted.  Returns false with
 *	  *err filled on a refusal, else true with *out a palloc'd C string in
 *	  the current memory context.
 */
static bool
text_arg(text *value, ValidateTextKind kind, int min_len, int max_len,
		 char **out, ValidateError *err)
{
	struct varlena *v = (struct varlena *) value;
	Size		raw = toast_raw_datum_size(PointerGetDatum(v)) - VARHDRSZ;
	const char *data;
	size_t		len;
	size_t		outlen;
	int			encoding = GetDatabaseEncoding();

	/* SQL_ASCII bytes go as they are: ValidateText checks them as UTF-8. */
	bool		convert = (encoding != PG_UTF8 && encoding != PG_SQL_ASCII);

	/* The same bound as step 1 of ValidateText, checked before detoasting. */
	if (raw > VALIDATE_INPUT_BOUND(max_len))
	{
		err->reason = "too_long";
		err->limit = max_len;
		err->position = -1;
		return false;
	}
	v = pg_detoast_datum_packed(v);
	data = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);

	if (convert)
	{
		char	   *utf8 = pg_server_to_any(data, (int) len, PG_UTF8);

		if (utf8 != data)
			len = strlen(utf8);
		data = utf8;
	}

	if (!ValidateText(data, len, kind, min_len, max_len, out, &outlen, err))
		return false;

	if (convert)
		*out = pg_any_to_server(*out, (int) outlen, PG_UTF8);
	return true;
}

/*
 * ValidateTextArg
 *	  Canonicalise a text argument as a field of the given kind, or raise
 *	  (text_arg).  Returns a palloc'd C string in the current memory
 *	  context.
 */
char *
ValidateTextArg(const char *field, text *value, ValidateTextKind kind,
				int min_len, int max_len)
{
	char	   *out;
	ValidateError err;

	if (!text_arg(value, kind, min_len, max_len, &out, &err))
		ValidateRaise(field, &err);
	return out;
}

/*
 * require_exact
 *	  Raise 22023 "not_canonical" when the canonical form of a value
 *	  differs from the value as given (rawlen bytes): for identities and
 *	  keys compared byte for byte, which must not be stored changed.
 */
static void
require_exact(const char *field, const char *canon, const char *raw, size_t rawlen)
{
	if (strlen(canon) != rawlen || memcmp(canon, raw, rawlen) != 0)
		ValidateRaiseReason(field, "not_canonical");
}

/*
 * ValidateExactText
 *	  Validate raw (rawlen bytes) as a field of the given kind, and require
 *	  it to be canonical already (require_exact).  Returns a palloc'd copy.
 */
char *
ValidateExactText(const char *field, const char *raw, size_t rawlen, ValidateTextKind kind,
				  int min_len, int max_len)
{
	char	   *out;
	size_t		outlen;
	ValidateError err;

	if (!ValidateText(raw, rawlen, kind, min_len, max_len, &out, &outlen, &err))
		ValidateRaise(field, &err);
	require_exact(field, out, raw, rawlen);
	return out;
}

/*
 * ValidateExactTextArg
 *	  ValidateTextArg (which bounds the size before detoasting), and
 *	  require the argument to be canonical already (require_exact).
 */
char *
ValidateExactTextArg(const char *field, text *value, ValidateTextKind kind,
					 int min_len, int max_len)
{
	char	   *out = ValidateTextArg(field, value, kind, min_len, max_len);
	text	   *t = pg_detoast_datum_packed(value);

	require_exact(field, out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	return out;
}

/*
 * ValidateLabelArg
 *	  A text argument that must be one of nlabels labels (an enum's), after
 *	  the plain-text canonicalisation, so surrounding white space is
 *	  forgiven as in every other field.  Returns the matching label.  Any
 *	  other value, whatever makes it wrong (too long, markup, controls, an
 *	  unknown word), is the one documented refusal: 22023 "invalid_value".
 */
const char *
ValidateLabelArg(const char *field, text *value, const char *const *labels, int nlabels)
{
	int			longest = 1;
	char	   *s;
	ValidateError err;

	for (int i = 0; i < nlabels; i++)
		longest = Max(longest, (int) strlen(labels[i]));
	if (text_arg(value, VT_PLAIN, 1, longest, &s, &err))
		for (int i = 0; i < nlabels; i++)
			if (strcmp(s, labels[i]) == 0)
				return labels[i];
	ValidateRaiseReason(field, "invalid_value");
}

/*
 * ValidateNumericBelowPow10
 *	  Whether |n| < 10^digits, for a finite n, decided without printing n:
 *	  a numeric of a few bytes (1e131071, as an argument or inside jsonb)
 *	  prints as 131,072 digits, and numeric_out would build all of them
 *	  before a length check refused them.  The comparison costs time in the
 *	  number of n's base-10000 digits, which its sender sent.  Every bound
 *	  on a caller's number is taken here: the price, attribute numbers,
 *	  numeric JWT claims.
 */
bool
ValidateNumericBelowPow10(Numeric n, int digits)
{
	char		text[16];
	Datum		bound;
	Datum		mag;

	Assert(!numeric_is_nan(n) && !numeric_is_inf(n));
	Assert(digits >= 0);
	snprintf(text, sizeof(text), "1e%d", digits);
	bound = DirectFunctionCall3(numeric_in, CStringGetDatum(text),
								ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	mag = DirectFunctionCall1(numeric_abs, NumericGetDatum(n));
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, mag, bound)) < 0;
}

/*
 * ValidatePriceArg
 *	  Range- and scale-check a price (CATALOG_PRICE_INT_DIGITS integer
 *	  digits, CATALOG_PRICE_SCALE decimals, not negative, finite) or raise.
 *	  Reasons, in this order: "not_a_number" (NaN, Infinity, -Infinity),
 *	  "negative" (below zero; numeric has no negative zero), "out_of_range"
 *	  (10^CATALOG_PRICE_INT_DIGITS or more; limit the digits),
 *	  "too_many_decimals" (more than CATALOG_PRICE_SCALE decimals, trailing
 *	  zeros not counted; limit the scale).  The price is compared, never
 *	  printed (ValidateNumericBelowPow10).
 */
void
ValidatePriceArg(const char *field, Numeric price)
{
	Datum		d = NumericGetDatum(price);
	ValidateError err = {NULL, -1, -1};

	if (numeric_is_nan(price) || numeric_is_inf(price))
		err.reason = "not_a_number";
	else if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, d,
											   NumericGetDatum(int64_to_numeric(0)))) < 0)
		err.reason = "negative";
	else if (!ValidateNumericBelowPow10(price, CATALOG_PRICE_INT_DIGITS))
	{
		err.reason = "out_of_range";
		err.limit = CATALOG_PRICE_INT_DIGITS;
	}
	else if (DatumGetInt32(DirectFunctionCall1(numeric_min_scale, d)) > CATALOG_PRICE_SCALE)
	{
		err.reason = "too_many_decimals";
		err.limit = CATALOG_PRICE_SCALE;
	}
	if (err.reason != NULL)
		ValidateRaise(field, &err);
}

/*
 * catalog.canonical_text(kind text, value text, min_len integer DEFAULT 1,
 *						  max_len integer DEFAULT 255) RETURNS text
 *	  The canonical form of value as a field of the given kind ('plain',
 *	  'longtext', 'sku', 'slug', 'currency', 'token'), or the error a writer
 *	  would raise; the field name in the error is the kind.  For tests and
 *	  for clients that want to check a value before sending it.  STRICT.
 */
PG_FUNCTION_INFO_V1(catalog_canonical_text);
Datum
catalog_canonical_text(PG_FUNCTION_ARGS)
{
	text	   *kind_text = PG_GETARG_TEXT_PP(0);
	text	   *value = (text *) PG_GETARG_POINTER(1);	/* detoasted later */
	int32		min_len = PG_GETARG_INT32(2);
	int32		max_len = PG_GETARG_INT32(3);
	const char *kind_data = VARDATA_ANY(kind_text);
	size_t		kind_len = VARSIZE_ANY_EXHDR(kind_text);
	const ValidateKindName *kn = NULL;
	size_t		i;
	char	   *out;

	/* Compare in place: the kind is never copied, whatever its size. */
	for (i = 0; i < lengthof(kind_names); i++)
	{
		if (strlen(kind_names[i].name) == kind_len &&
			memcmp(kind_data, kind_names[i].name, kind_len) == 0)
		{
			kn = &kind_names[i];
			break;
		}
	}
	if (kn == NULL)
		ValidateRaiseReason("kind", "unknown_kind");

	if (min_len < 0)
	{
		ValidateError err = {"out_of_range", -1, -1};

		ValidateRaise("min_len", &err);
	}
	if (max_len < min_len || max_len > CANONICAL_TEXT_MAX_LEN)
	{
		ValidateError err = {"out_of_range", -1, -1};

		if (max_len > CANONICAL_TEXT_MAX_LEN)
			err.limit = CANONICAL_TEXT_MAX_LEN;
		ValidateRaise("max_len", &err);
	}

	out = ValidateTextArg(kn->name, value, kn->kind, min_len, max_len);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * catalog.check_price(value numeric) RETURNS numeric
 *	  value unchanged when it is a valid price, else the error a writer
 *	  would raise for the field "price".  STRICT.
 */
PG_FUNCTION_INFO_V1(catalog_check_price);
Datum
catalog_check_price(PG_FUNCTION_ARGS)
{
	Numeric		price = PG_GETARG_NUMERIC(0);

	ValidatePriceArg("price", price);
	PG_RETURN_NUMERIC(price);
}
