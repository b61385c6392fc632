/*-------------------------------------------------------------------------
 *
 * fuzz_audit_scan.c
 *	  libFuzzer target for the value and key scanners of src/audit_scan.c.
 *
 * Built like fuzz_validate.c (`make fuzz`): src/audit_scan.c with
 * -DFRONTEND, clang -fsanitize=fuzzer,address,undefined, libpgcommon and
 * libpgport.
 *
 * Input layout: bit 0 of byte 0 is the utf8 argument (a UTF-8 database or
 * not), the rest is the string.
 *
 * Invariants checked (a violation aborts, which libFuzzer reports as a
 * crash and saves the input):
 *	- AuditScanFind's spans lie inside the string, are not empty, and are
 *	  in increasing order without overlap;
 *	- on input valid in its encoding (UTF-8 without NUL when utf8 is true,
 *	  no NUL otherwise), AuditScanMayMatch false implies no span and no
 *	  e-mail address, and AuditScanHasEmail true implies at least one span;
 *	- AuditScanKeyIsSensitive runs on the same bytes (sanitizers only).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb/pg_wchar.h"

#include "audit_scan.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * broken
 *		Report a violated invariant and abort, so libFuzzer keeps the input.
 */
static void
broken(const char *what, const AuditScanSpans *spans, int k)
{
	fprintf(stderr, "fuzz_audit_scan: invariant violated: %s", what);
	if (spans != NULL && k >= 0 && k < spans->n)
		fprintf(stderr, " (span %d of %d: [%d, %d))", k, spans->n,
				spans->s[k].start, spans->s[k].end);
	fprintf(stderr, "\n");
	abort();
}

/*
 * valid_in_encoding
 *		True when s[0..len) is what the server could pass: no NUL, and
 *		valid UTF-8 when utf8 is true.
 */
static bool
valid_in_encoding(const unsigned char *s, int len, bool utf8)
{
	int			i = 0;

	while (i < len)
	{
		int			l = 1;

		if (s[i] == 0)
			return false;
		if (utf8 && s[i] >= 0x80)
		{
			l = pg_utf_mblen(&s[i]);
			if (l > len - i || !pg_utf8_islegal(&s[i], l))
				return false;
		}
		i += l;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool		utf8;
	int			len;
	char	   *s;
	AuditScanSpans spans = {NULL, 0, 0};
	bool		may;
	bool		email;

	if (size == 0 || size > 1024 * 1024)
		return 0;
	utf8 = (data[0] & 1) != 0;
	len = (int) (size - 1);
	/* An exact-size copy, so that ASan sees a read past its end. */
	s = palloc(len > 0 ? len : 1);
	if (len > 0)
		memcpy(s, data + 1, len);

	may = AuditScanMayMatch(s, len);
	AuditScanFind(s, len, utf8, &spans);
	email = AuditScanHasEmail(s, len, utf8);
	(void) AuditScanKeyIsSensitive(s, len, utf8);

	for (int k = 0; k < spans.n; k++)
	{
		if (spans.s[k].start < 0 || spans.s[k].end > len)
			broken("span outside the string", &spans, k);
		if (spans.s[k].start >= spans.s[k].end)
			broken("empty or reversed span", &spans, k);
		if (k > 0 && spans.s[k].start < spans.s[k - 1].end)
			broken("spans out of order or overlapping", &spans, k);
	}
	if (valid_in_encoding((const unsigned char *) s, len, utf8))
	{
		if (!may && spans.n > 0)
			broken("AuditScanMayMatch false, but AuditScanFind found a span", &spans, 0);
		if (!may && email)
			broken("AuditScanMayMatch false, but AuditScanHasEmail true", NULL, -1);
		if (email && spans.n == 0)
			broken("AuditScanHasEmail true, but AuditScanFind found no span", NULL, -1);
	}

	if (spans.s != NULL)
		pfree(spans.s);
	pfree(s);
	return 0;
}
