/*-------------------------------------------------------------------------
 *
 * attributes.c
 *	  Validation and canonicalisation of product attributes (jsonb).
 *
 * Attributes are a JSON object of free-form product properties, bounded
 * so that a hostile document can cost neither storage nor CPU:
 *	- the input is refused above ATTRIBUTES_MAX_INPUT_BYTES before it is
 *	  walked, and the canonical result above ATTRIBUTES_MAX_BYTES;
 *	- the root must be an object; nesting at most ATTRIBUTES_MAX_DEPTH
 *	  levels; at most ATTRIBUTES_MAX_KEYS keys in all and
 *	  ATTRIBUTES_MAX_ELEMENTS elements per array;
 *	- every key matches [a-z][a-z0-9_]* (1 to 64 bytes);
 *	- every string value is canonicalised like a plain-text field (NFC,
 *	  white space, no control or invisible characters, no markup), at most
 *	  ATTRIBUTES_MAX_STRING_LEN code points;
 *	- every number has at most ATTRIBUTES_MAX_NUMBER_DIGITS digits before
 *	  the decimal point and ATTRIBUTES_MAX_NUMBER_SCALE after it.  The size
 *	  bounds measure the stored jsonb, where 1e131000 takes 10 bytes: its
 *	  text takes 131,001, and every read of the product (the document, the
 *	  search page, PostgREST's output) and the search vector would pay for
 *	  it.  Bounded, a number prints in at most 32 characters.
 * Numbers (within those bounds), booleans and null are kept as they are.
 * The walk is a single pass with JsonbIterator; the canonical document is
 * rebuilt with pushJsonbValue in the current memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "attributes.h"
#include "validate_sql.h"

/*
 * raise_limit
 *	  Raise 22023 for field "attributes" with a reason and its limit.
 */
static void
pg_attribute_noreturn()
raise_limit(const char *reason, int limit)
{
	ValidateError err;

	err.reason = reason;
	err.limit = limit;
	err.position = -1;
	ValidateRaise("attributes", &err);
}

/*
 * AttributesCheckKey
 *	  Raise 22023 for field ("invalid_key" or "key_too_long") unless key
 *	  (len bytes) is an attribute key: [a-z][a-z0-9_]*, at most
 *	  ATTRIBUTES_MAX_KEY_LEN bytes.  Also the rule of a masked attribute
 *	  key (audit_mask.c).
 */
void
AttributesCheckKey(const char *field, const char *key, int len)
{
	ValidateError err;

	if (!ValidateAttributeKey(key, len, ATTRIBUTES_MAX_KEY_LEN, &err))
	{
		err.reason = (strcmp(err.reason, "too_long") == 0) ? "key_too_long" : "invalid_key";
		ValidateRaise(field, &err);
	}
}

/*
 * check_number
 *	  Raise 22003 for field unless n has at most ATTRIBUTES_MAX_NUMBER_DIGITS
 *	  digits before the point and ATTRIBUTES_MAX_NUMBER_SCALE after it,
 *	  trailing zeros not counted (1.0000000000000000 is 1, as in the price
 *	  check; the value is stored as sent), but at most twice as many
 *	  decimal places written: jsonb keeps the display scale, and
 *	  "0e-16383" takes 12 bytes stored and 16,385 characters printed on
 *	  every read (the byte limits would let hundreds into one document).
 *	  No test prints the number: the scales and a comparison cost the
 *	  same whatever its exponent.
 */
static void
check_number(Numeric n, const char *field)
{
	ValidateError err;

	err.position = -1;
	/* jsonb holds no NaN or infinity; refused should one ever arrive */
	if (numeric_is_nan(n) || numeric_is_inf(n))
	{
		err.reason = "not_a_number";
		err.limit = -1;
		ValidateRaise(field, &err);
	}
	if (!ValidateNumericBelowPow10(n, ATTRIBUTES_MAX_NUMBER_DIGITS))
	{
		err.reason = "too_many_digits";
		err.limit = ATTRIBUTES_MAX_NUMBER_DIGITS;
		ValidateRaise(field, &err);
	}
	if (DatumGetInt32(DirectFunctionCall1(numeric_min_scale, NumericGetDatum(n))) >
		ATTRIBUTES_MAX_NUMBER_SCALE ||
		DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) >
		2 * ATTRIBUTES_MAX_NUMBER_SCALE)
	{
		err.reason = "too_many_decimals";
		err.limit = ATTRIBUTES_MAX_NUMBER_SCALE;
		ValidateRaise(field, &err);
	}
}

/*
 * AttributesCanonical
 *	  Validate a jsonb argument (possibly still toasted) and return its
 *	  canonical form, or raise 22xxx.
 */
Jsonb *
AttributesCanonical(Datum value)
{
	Jsonb	   *in;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbParseState *state = NULL;
	JsonbValue *res = NULL;
	Jsonb	   *out;
	int			depth = 0;
	int			nkeys = 0;
	int			elems[ATTRIBUTES_MAX_DEPTH + 1];
	bool		in_array[ATTRIBUTES_MAX_DEPTH + 1];
	/*
	 * The key a value at each depth is reported under: the object's key
	 * just read, or for an array's element the key the array (or the
	 * nearest enclosing object member) stands under.
	 */
	char		keys[ATTRIBUTES_MAX_DEPTH + 1][ATTRIBUTES_MAX_KEY_LEN + 1];
	char		field[sizeof("attributes.") + ATTRIBUTES_MAX_KEY_LEN + 2];

	/* refused before detoasting: an oversized document costs nothing */
	if (toast_raw_datum_size(value) > ATTRIBUTES_MAX_INPUT_BYTES)
		raise_limit("too_large", ATTRIBUTES_MAX_INPUT_BYTES);
	in = DatumGetJsonbP(value);
	if (!JB_ROOT_IS_OBJECT(in))
		ValidateRaiseReason("attributes", "not_object");

	keys[0][0] = '\0';
	it = JsonbIteratorInit(&in->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
				/*
				 * A container inside an array is one of its elements: the
				 * iterator returns WJB_ELEM for scalars only.
				 */
				if (depth > 0 && in_array[depth] &&
					++elems[depth] > ATTRIBUTES_MAX_ELEMENTS)
					raise_limit("too_many_elements", ATTRIBUTES_MAX_ELEMENTS);
				if (++depth > ATTRIBUTES_MAX_DEPTH)
					raise_limit("too_deep", ATTRIBUTES_MAX_DEPTH);
				memmove(keys[depth], keys[depth - 1], sizeof(keys[depth]));
				elems[depth] = 0;
				in_array[depth] = (tok == WJB_BEGIN_ARRAY);
				res = pushJsonbValue(&state, tok, NULL);
				break;
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				depth--;
				res = pushJsonbValue(&state, tok, NULL);
				break;
			case WJB_KEY:
				{
					if (++nkeys > ATTRIBUTES_MAX_KEYS)
						raise_limit("too_many_keys", ATTRIBUTES_MAX_KEYS);
					AttributesCheckKey("attributes", v.val.string.val, v.val.string.len);
					memcpy(keys[depth], v.val.string.val, v.val.string.len);
					keys[depth][v.val.string.len] = '\0';
					res = pushJsonbValue(&state, tok, &v);
					break;
				}
			case WJB_ELEM:
				if (++elems[depth] > ATTRIBUTES_MAX_ELEMENTS)
					raise_limit("too_many_elements", ATTRIBUTES_MAX_ELEMENTS);
				/* FALLTHROUGH */
			case WJB_VALUE:
				if (v.type == jbvString)
				{
					char	   *canon;
					size_t		canonlen;
					ValidateError err;

					if (!ValidateText(v.val.string.val, v.val.string.len, VT_PLAIN,
									  0, ATTRIBUTES_MAX_STRING_LEN,
									  &canon, &canonlen, &err))
					{
						snprintf(field, sizeof(field), "attributes.%s", keys[depth]);
						ValidateRaise(field, &err);
					}
					v.val.string.val = canon;
					v.val.string.len = (int) canonlen;
				}
				else if (v.type == jbvNumeric)
				{
					snprintf(field, sizeof(field), "attributes.%s", keys[depth]);
					check_number(v.val.numeric, field);
				}
				res = pushJsonbValue(&state, tok, &v);
				break;
			case WJB_DONE:
				break;
		}
	}

	out = JsonbValueToJsonb(res);
	if (VARSIZE(out) > ATTRIBUTES_MAX_BYTES)
		raise_limit("too_large", ATTRIBUTES_MAX_BYTES);
	return out;
}
