/*-------------------------------------------------------------------------
 *
 * validate_sql.h
 *	  Server-side wrappers that apply validate.c to SQL arguments and turn
 *	  a refusal into an ereport with a field-level JSON DETAIL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_VALIDATE_SQL_H
#define CATALOG_VALIDATE_SQL_H

#include "utils/numeric.h"
#include "validate.h"

/* Bounds shared by every writer of a field (code points unless noted). */
#define CATALOG_NAME_MAX			255
#define CATALOG_DESCRIPTION_MAX		5000
#define CATALOG_SKU_MAX				64
#define CATALOG_SLUG_MAX			100
#define CATALOG_CATEGORY_NAME_MAX	100
#define CATALOG_TOKEN_MAX			255
#define CATALOG_PRICE_INT_DIGITS	10
#define CATALOG_PRICE_SCALE			2

/*
 * Raise the error described by err for the named field.  SQLSTATE:
 * 22001 for "too_long", 22003 for numeric range reasons ("out_of_range",
 * "too_many_digits", "too_many_decimals", "negative", "not_a_number"),
 * 22021 for "invalid_utf8", 22023 otherwise.  DETAIL is
 * {"field": ..., "reason": ..., "max": limit (when >= 0; the key is "min"
 * for "too_short" and "empty"), "position": pos (when >= 1)}.
 */
extern void ValidateRaise(const char *field, const ValidateError *err) pg_attribute_noreturn();

/*
 * A text argument as it was passed, possibly still toasted, so that
 * ValidateTextArg can refuse an oversized value before detoasting it.
 */
#define CATALOG_GETARG_RAW_TEXT(n) ((text *) PG_GETARG_RAW_VARLENA_P(n))

/* Canonicalise a text argument or raise; returns a palloc'd C string. */
extern char *ValidateTextArg(const char *field, text *value, ValidateTextKind kind,
							 int min_len, int max_len);

/*
 * The same, for identities and keys compared byte for byte: a value that
 * canonicalisation would change is refused with 22023 "not_canonical".
 */
extern char *ValidateExactText(const char *field, const char *raw, size_t rawlen,
							   ValidateTextKind kind, int min_len, int max_len);
extern char *ValidateExactTextArg(const char *field, text *value, ValidateTextKind kind,
								  int min_len, int max_len);

/*
 * One of nlabels labels (canonicalised as plain text first), or raise 22023
 * "invalid_value" whatever is wrong with the value.
 */
extern const char *ValidateLabelArg(const char *field, text *value,
									const char *const *labels, int nlabels);

/* Whether a finite numeric is below 10^digits in magnitude, without printing it. */
extern bool ValidateNumericBelowPow10(Numeric n, int digits);

/* Range- and scale-check a price, or raise. */
extern void ValidatePriceArg(const char *field, Numeric price);

/* Raise 22023 {"field": field, "reason": reason} without a limit. */
extern void ValidateRaiseReason(const char *field, const char *reason) pg_attribute_noreturn();

#endif							/* CATALOG_VALIDATE_SQL_H */
