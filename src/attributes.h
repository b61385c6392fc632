/*-------------------------------------------------------------------------
 *
 * attributes.h
 *	  Validation and canonicalisation of product attributes (jsonb).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_ATTRIBUTES_H
#define CATALOG_ATTRIBUTES_H

#include "utils/jsonb.h"

#define ATTRIBUTES_MAX_BYTES		8192	/* canonical jsonb, bytes */
#define ATTRIBUTES_MAX_INPUT_BYTES	65536	/* refused before any work */
#define ATTRIBUTES_MAX_DEPTH		3	/* the root object is level 1 */
#define ATTRIBUTES_MAX_KEYS			64	/* keys at all levels together */
#define ATTRIBUTES_MAX_ELEMENTS		64	/* elements of one array */
#define ATTRIBUTES_MAX_KEY_LEN		64	/* bytes */
#define ATTRIBUTES_MAX_STRING_LEN	500 /* code points of a string value */
#define ATTRIBUTES_MAX_NUMBER_DIGITS 15 /* digits before the point: |n| < 1e15 */
#define ATTRIBUTES_MAX_NUMBER_SCALE	15	/* digits after the point */

extern Jsonb *AttributesCanonical(Datum value);
extern void AttributesCheckKey(const char *field, const char *key, int len);

#endif							/* CATALOG_ATTRIBUTES_H */
