/*-------------------------------------------------------------------------
 *
 * audit_scan.h
 *	  The scanners of audit masking: sensitive keys and the byte ranges of
 *	  sensitive values (e-mail addresses, payment card numbers, phone
 *	  numbers) in a string.  Pure functions.
 *
 * Everything declared here is free of server state: no catalog access, no
 * GUCs, no ereport, and the database encoding comes in as an argument
 * (utf8: true in a UTF-8 database).  So the same code runs inside the
 * server (src/audit_mask.c masks what it finds) and outside it, built with
 * -DFRONTEND against libpgcommon for fuzzing.  Memory is allocated with
 * palloc (backend: current memory context; frontend: libpgcommon's
 * pg_malloc-backed palloc).  The patterns are described in audit_scan.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_AUDIT_SCAN_H
#define CATALOG_AUDIT_SCAN_H

/* A byte range [start, end) of a scanned string. */
typedef struct AuditScanSpan
{
	int			start;
	int			end;
} AuditScanSpan;

/* A list of spans; starts empty as {NULL, 0, 0}; s is palloc'd. */
typedef struct AuditScanSpans
{
	AuditScanSpan *s;
	int			n;
	int			cap;
} AuditScanSpans;

/*
 * AuditScanMayMatch
 *	  A cheap test on the bytes of s: false when no value pattern can match
 *	  (no "@" and fewer than 10 digits), true when one might.  On input
 *	  valid in its encoding, false implies that AuditScanFind finds nothing
 *	  and AuditScanHasEmail is false, so callers test this first to skip
 *	  decoding most values.
 */
extern bool AuditScanMayMatch(const char *s, int len);

/*
 * AuditScanFind
 *	  Append to out (which must be empty) the byte ranges of every match of
 *	  a value pattern in len bytes of s: in increasing order, disjoint,
 *	  overlapping matches of different patterns joined into one.
 */
extern void AuditScanFind(const char *s, int len, bool utf8, AuditScanSpans *out);

/*
 * AuditScanHasEmail
 *	  True when len bytes of s hold an e-mail address.
 */
extern bool AuditScanHasEmail(const char *s, int len, bool utf8);

/*
 * AuditScanKeyIsSensitive
 *	  True when the key or column name (len bytes) matches a built-in key
 *	  pattern.
 */
extern bool AuditScanKeyIsSensitive(const char *key, int len, bool utf8);

/*
 * AuditScanKeyPattern, AuditScanValuePattern
 *	  The i-th (from 0) built-in key pattern and the name of the i-th
 *	  built-in value pattern, as catalog_api.audit_masks() lists them; NULL
 *	  past the last one.
 */
extern const char *AuditScanKeyPattern(int i);
extern const char *AuditScanValuePattern(int i);

#endif							/* CATALOG_AUDIT_SCAN_H */
