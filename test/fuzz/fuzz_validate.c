/*-------------------------------------------------------------------------
 *
 * fuzz_validate.c
 *	  libFuzzer target for the canonicaliser of src/validate.c.
 *
 * Built outside the server (`make fuzz`): src/validate.c with -DFRONTEND
 * and this file, by clang with -fsanitize=fuzzer,address,undefined,
 * against libpgcommon and libpgport (palloc from common/fe_memutils.h,
 * unicode_normalize, pg_utf8_islegal).
 *
 * Input layout: byte 0 chooses what is called, the rest is the value.
 *	- bits 0-2: ValidateText with VT_PLAIN, VT_LONGTEXT, VT_SKU, VT_SLUG,
 *	  VT_CURRENCY, VT_TOKEN (0 to 5), or ValidateAttributeKey (6, 7; the
 *	  price is checked as a numeric in validate_sql.c, not as text);
 *	- bits 3-4: the length bounds (limit_sets below).
 *
 * Invariants checked (a violation aborts, which libFuzzer reports as a
 * crash and saves the input):
 *	- an accepted value is NUL-terminated, has no NUL inside, is valid
 *	  UTF-8, is in NFC, is between min_len and max_len code points, and
 *	  canonicalising it again with the same arguments accepts it and gives
 *	  the same bytes (idempotence);
 *	- a refusal sets a reason (one of the known strings), a limit of -1 or
 *	  the bound, and a position of -1 or from 1 up.
 * The sanitizers catch the rest (out-of-bounds access, use after free,
 * leaks, undefined behaviour).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/unicode_norm.h"
#include "mb/pg_wchar.h"

#include "validate.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length bounds (min_len, max_len) selected by bits 3-4 of byte 0. */
static const int limit_sets[4][2] = {
	{1, 255},					/* names, slugs, SKUs */
	{0, 20000},					/* descriptions, search text */
	{1, 8},						/* short fields: the too_long path */
	{3, 3},						/* currency codes */
};

/* Every reason ValidateText and ValidateAttributeKey set. */
static const char *const known_reasons[] = {
	"invalid_utf8", "control_character", "bidi_control", "zero_width",
	"noncharacter", "private_use", "empty", "too_short", "too_long",
	"markup", "active_content", "invalid_format", "unknown_currency",
	"not_a_number", "negative", "too_many_decimals", "out_of_range",
	"out_of_memory", "combining_marks",
};

/*
 * broken
 *		Report a violated invariant with the value concerned and abort, so
 *		libFuzzer keeps the input as a crash reproducer.
 */
static void
broken(const char *what, const char *value, size_t len)
{
	size_t		i;

	fprintf(stderr, "fuzz_validate: invariant violated: %s\nvalue (%zu bytes):", what, len);
	for (i = 0; i < len && i < 256; i++)
		fprintf(stderr, " %02x", (unsigned char) value[i]);
	fprintf(stderr, "\n");
	abort();
}

/*
 * check_refusal
 *		A refusal must carry a known reason, a limit of -1 or one of the
 *		bounds passed, and a position of -1 or from 1 up.
 */
static void
check_refusal(const ValidateError *err, int min_len, int max_len,
			  const char *in, size_t len)
{
	size_t		k;

	if (err->reason == NULL)
		broken("refusal without a reason", in, len);
	for (k = 0; k < lengthof(known_reasons); k++)
	{
		if (strcmp(err->reason, known_reasons[k]) == 0)
			break;
	}
	if (k == lengthof(known_reasons))
		broken("refusal with an unknown reason", in, len);
	if (err->limit != -1 && err->limit != min_len && err->limit != max_len &&
		err->limit != 30)		/* combining_marks */
		broken("refusal with an unexpected limit", in, len);
	if (err->position != -1 && err->position < 1)
		broken("refusal with a position below 1", in, len);
}

/*
 * decode_utf8
 *		Decode out[0..len) into a palloc'd 0-terminated code point array;
 *		NULL when it is not valid UTF-8 or holds a NUL.  Sets *ncp.
 */
static pg_wchar *
decode_utf8(const char *out, size_t len, int *ncp)
{
	const unsigned char *s = (const unsigned char *) out;
	pg_wchar   *cps = palloc((len + 1) * sizeof(pg_wchar));
	size_t		i = 0;
	int			n = 0;

	while (i < len)
	{
		int			l = (s[i] < 0x80) ? 1 : pg_utf_mblen(&s[i]);

		if (s[i] == 0 || (size_t) l > len - i || !pg_utf8_islegal(&s[i], l))
		{
			pfree(cps);
			return NULL;
		}
		cps[n++] = utf8_to_unicode(&s[i]);
		i += l;
	}
	cps[n] = 0;
	*ncp = n;
	return cps;
}

/*
 * check_accepted
 *		The invariants of an accepted value out[0..outlen).
 */
static void
check_accepted(const char *out, size_t outlen, ValidateTextKind kind,
			   int min_len, int max_len)
{
	pg_wchar   *cps;
	pg_wchar   *nfc;
	int			n;
	int			k;
	char	   *again = NULL;
	size_t		againlen = 0;
	ValidateError err = {NULL, 0, 0};

	if (out[outlen] != '\0' || strlen(out) != outlen)
		broken("result is not NUL-terminated at outlen, or has a NUL inside", out, outlen);
	cps = decode_utf8(out, outlen, &n);
	if (cps == NULL)
		broken("result is not valid UTF-8", out, outlen);
	if (n < min_len || n > max_len)
		broken("result length outside [min_len, max_len]", out, outlen);

	nfc = unicode_normalize(UNICODE_NFC, cps);
	if (nfc == NULL)
		broken("unicode_normalize ran out of memory", out, outlen);
	for (k = 0; k <= n; k++)
	{
		if (nfc[k] != cps[k])
			broken("result is not in NFC", out, outlen);
	}
	free(nfc);
	pfree(cps);

	if (!ValidateText(out, outlen, kind, min_len, max_len, &again, &againlen, &err))
		broken("canonicalising the result again refuses it", out, outlen);
	if (againlen != outlen || memcmp(again, out, outlen) != 0)
		broken("canonicalising the result again changes it", out, outlen);
	pfree(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			mode;
	int			min_len;
	int			max_len;
	const char *in;
	size_t		len;
	ValidateError err = {NULL, 0, 0};

	if (size == 0)
		return 0;
	mode = data[0] & 7;
	min_len = limit_sets[(data[0] >> 3) & 3][0];
	max_len = limit_sets[(data[0] >> 3) & 3][1];
	len = size - 1;

	/* Copy the value so that ASan sees a read past its end. */
	in = len > 0 ? memcpy(palloc(len), data + 1, len) : NULL;

	if (mode <= VT_TOKEN)
	{
		ValidateTextKind kind = (ValidateTextKind) mode;
		char	   *out = NULL;
		size_t		outlen = 0;

		if (ValidateText(in != NULL ? in : "", len, kind, min_len, max_len,
						 &out, &outlen, &err))
		{
			check_accepted(out, outlen, kind, min_len, max_len);
			pfree(out);
		}
		else
			check_refusal(&err, min_len, max_len, in != NULL ? in : "", len);
	}
	else
	{
		if (!ValidateAttributeKey(in != NULL ? in : "", len, max_len > 63 ? 63 : max_len, &err))
			check_refusal(&err, min_len, max_len > 63 ? 63 : max_len,
						  in != NULL ? in : "", len);
	}

	if (in != NULL)
		pfree((void *) in);
	return 0;
}
