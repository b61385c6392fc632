/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Canonicalisation and validation of untrusted input: pure functions.
 *
 * Everything declared here is free of server state: no catalog access, no
 * GUCs, no ereport.  Failures are returned in a ValidateError so the same
 * code can run inside the server (src/validate_sql.c turns the error into
 * an ereport with SQLSTATE 22023 and a JSON DETAIL) and outside it, built
 * with -DFRONTEND against libpgcommon for fuzzing.  Memory for results is
 * allocated with palloc (backend: current memory context; frontend:
 * libpgcommon's pg_malloc-backed palloc).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_VALIDATE_H
#define CATALOG_VALIDATE_H

/* Kinds of text field; each has its own canonicalisation and allow-list. */
typedef enum ValidateTextKind
{
	VT_PLAIN,					/* one line of plain text: names */
	VT_LONGTEXT,				/* plain free text: tab and newline allowed */
	VT_SKU,						/* [A-Z0-9] start, then [A-Z0-9._-], upper-cased */
	VT_SLUG,					/* [a-z0-9] runs joined by single '-', lower-cased */
	VT_CURRENCY,				/* active ISO 4217 alphabetic code, upper-cased */
	VT_TOKEN					/* printable ASCII token: idempotency keys, actors */
} ValidateTextKind;

/*
 * Why a value was refused.  "reason" is a static, machine-readable string
 * (for example "too_long", "control_character", "markup"); "limit" is the
 * bound that was exceeded, or -1; "position" is the 1-based code point
 * position of the offending character, or -1 when not applicable.
 */
typedef struct ValidateError
{
	const char *reason;
	int			limit;
	int			position;
} ValidateError;

/*
 * VALIDATE_INPUT_BOUND
 *	  The most bytes a field of max_len code points may take as received
 *	  (step 1 of ValidateText; validate_sql.c checks it before detoasting).
 *	  Decomposed (NFD) input composes back to one code point from up to
 *	  12 bytes (a Hangul syllable sent as three jamo takes 9, macOS sends
 *	  file and form text so; U+1D15E-U+1D1C0 take 12), so 12 bytes per code
 *	  point refuses no value that fits, plus 1 KiB of slack for the white
 *	  space that canonicalisation removes.
 */
#define VALIDATE_BYTES_PER_CODE_POINT 12
#define VALIDATE_INPUT_BOUND(max_len) \
	((size_t) ((max_len) > 0 ? (max_len) : 0) * VALIDATE_BYTES_PER_CODE_POINT + 1024)

/*
 * ValidateText
 *	  Canonicalise "in" (len bytes, valid UTF-8 without NUL is NOT assumed:
 *	  invalid UTF-8 is refused with reason "invalid_utf8") as a field of the
 *	  given kind, with a length between min_len and max_len code points
 *	  (measured after canonicalisation).
 *
 * On success returns true and sets *out (palloc'd, NUL-terminated) and
 * *outlen (bytes).  On failure returns false and fills *err; *out is left
 * untouched.
 */
extern bool ValidateText(const char *in, size_t len, ValidateTextKind kind,
						 int min_len, int max_len,
						 char **out, size_t *outlen, ValidateError *err);

/*
 * ValidateAttributeKey
 *	  An attribute key: [a-z][a-z0-9_]*, 1 to max_len bytes.
 */
extern bool ValidateAttributeKey(const char *key, size_t len, int max_len,
								 ValidateError *err);

#endif							/* CATALOG_VALIDATE_H */
