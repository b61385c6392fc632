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
