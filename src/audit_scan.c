/*-------------------------------------------------------------------------
 *
 * audit_scan.c
 *	  The scanners of audit masking: which keys are sensitive and where the
 *	  sensitive values (e-mail addresses, payment card numbers, phone
 *	  numbers) are inside a string.  Pure functions.
 *
 * Nothing here touches server state (no catalog access, no GUCs, no
 * ereport, not even the database encoding, which the caller passes as
 * utf8), so the file also builds with -DFRONTEND against libpgcommon for
 * fuzzing, like validate.c.  All memory comes from palloc; in the backend
 * it is the caller's current memory context.  Every function frees what it
 * allocated before it returns, except the spans it hands back.
 * audit_mask.c decides what a match becomes (the mask) and where the
 * scanners run.
 *
 * Built-in key patterns: a key (or column name) reduced to its ASCII
 * letters and digits, lower-cased (fullwidth forms folded to ASCII), that
 * contains password, passwd, secret, token, apikey, authorization, email,
 * phone, cardnumber or creditcard.
 *
 * Built-in value patterns, found by hand-written scanners in linear time
 * (no regular expressions: a hostile value cannot make them backtrack):
 *	- e-mail address: a local part of letters, digits, "." and the other
 *	  characters RFC 5322 allows unquoted (!#$%&'*+-/=?^_`{|}~), or a quoted
 *	  one ("j.doe", "a@b", up to 64 code points without an unescaped
 *	  quote or a line break), "@", a domain of two or more labels of [A-Za-z0-9-] and
 *	  letters, the last one at least two characters with a letter (it
 *	  ends before trailing hyphens or dashes: "a@example.com-" is
 *	  "a@example.com" and a dash);
 *	- payment card number: 13 to 19 digits, in groups separated by a
 *	  space, a dash or a line break, or a space or dash then a line break
 *	  ("\r\n" is one), passing the Luhn check (any run of
 *	  whole groups of a longer sequence qualifies, longest first);
 *	- phone number: an optional "+" or "(", then 10 to 15 digits in groups
 *	  separated by runs of at most 3 of space, "-", ".", "/", "(", ")" and
 *	  line breaks, the whole
 *	  sequence neither preceded nor followed by a letter or a digit (but
 *	  an extension "x12" or "ext" may follow), nor followed by ":" and a
 *	  digit (a date and time, "2026-11-26 12:00").  In a longer sequence,
 *	  or one glued to a word at one end, every run of whole groups with 10
 *	  to 15 digits, a group of 3 or more that is not a year, and allowed
 *	  ends qualifies (see scan_phones).
 * Before scanning, a string is decoded into code points: fullwidth forms
 * (U+FF01..U+FF5E) and the ideographic space fold to ASCII, the decimal
 * digits of every script (Arabic-Indic, Devanagari, mathematical, ...) to
 * ASCII digits, the small commercial at to "@", the ideographic full stops
 * to ".", the Unicode hyphens and minus to "-", the other spaces to " ";
 * invisible format characters (zero-width spaces and joiners,
 * bidirectional controls, soft hyphen, BOM, tags) are skipped, and a
 * non-spacing or enclosing mark (a combining underline, a variation
 * selector) joins the character before it, so none of them hides a match
 * ("555-123-4567" followed by U+FE0E, or with every digit underlined, is
 * still a phone number); a match
 * covers the original bytes it spans (overlapping matches of different
 * patterns are joined into one).  "Letter" means an ASCII letter or
 * any code point from U+00C0 up that is not in a punctuation, symbol or
 * space block.  In a database that is not UTF-8 (utf8 false) every byte
 * from 0x80 up stands for a non-letter, so only ASCII matches there.
 *
 * The input is expected to be valid in its encoding (the server checks
 * every text value); on any other input the scanners still read nothing
 * outside it.  A string may be up to 1 GB long: the code point arrays are
 * huge allocations.
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <string.h>

#include "common/unicode_norm.h"
#include "mb/pg_wchar.h"
#ifndef FRONTEND
#include "miscadmin.h"
#endif

/*
 * The non-spacing and enclosing marks (Mn, Me: combining diacritics,
 * variation selectors, the keycap), in a table of the extension's own, so
 * that what joins the character before it does not change with the
 * server's version (core's table was renamed, and widened to Cf, in 16).
 */
#include "audit_marks.h"

#include "audit_scan.h"

#ifdef FRONTEND
/* libpgcommon's frontend allocator has no 1 GB limit to lift. */
#define repalloc_huge(p, size)	repalloc((p), (size))
#endif

/* Built-in key patterns (normalised: lower-case ASCII letters and digits). */
static const char *const builtin_keys[] = {
	"password", "passwd", "secret", "token", "apikey", "authorization",
	"email", "phone", "cardnumber", "creditcard"
};

/* Names of the built-in value patterns, as audit_masks() lists them. */
static const char *const builtin_values[] = {"email", "card_number", "phone"};

/* ------------------------------------------------------------------------
 * Code points
 * ------------------------------------------------------------------------
 */

/* A string decoded for the scanners: n folded code points and their bytes. */
typedef struct Decoded
{
	int			n;
	pg_wchar   *c;				/* folded code point */
	int		   *start;			/* first byte */
	int		   *end;			/* one past the last byte */
} Decoded;

/* Code points that are not letters: punctuation, symbols, spaces. */
static bool
is_letter(pg_wchar c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	if (c < 0xC0 || c == 0xD7 || c == 0xF7)
		return false;
	if ((c >= 0x2000 && c <= 0x2BFF) ||	/* punctuation, symbols, arrows */
		(c >= 0x3000 && c <= 0x303F) ||	/* CJK symbols and punctuation */
		(c >= 0xFE10 && c <= 0xFE1F) ||	/* vertical forms */
		(c >= 0xFE30 && c <= 0xFE6F) ||	/* CJK compatibility, small forms */
		(c >= 0xFF00 && c <= 0xFF20) ||	/* fullwidth punctuation */
		(c >= 0xFF3B && c <= 0xFF40) ||
		(c >= 0xFF5B && c <= 0xFF65) ||
		(c >= 0xFFF0 && c <= 0xFFFF) ||	/* specials */
		(c >= 0x1F000 && c <= 0x1FAFF) ||	/* symbols and pictographs */
		(c >= 0xE0000 && c <= 0xE007F))	/* tags */
		return false;
	return true;
}

static inline bool
is_digit(pg_wchar c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_word(pg_wchar c)
{
	return is_digit(c) || is_letter(c);
}

/* Invisible format characters, skipped by the scanners. */
static bool
is_invisible(pg_wchar c)
{
	return c == 0xAD ||			/* soft hyphen */
		(c >= 0x200B && c <= 0x200F) ||	/* zero-width, LRM, RLM */
		(c >= 0x202A && c <= 0x202E) ||	/* bidirectional embeddings */
		(c >= 0x2060 && c <= 0x2064) ||	/* word joiner, invisible operators */
		(c >= 0x2066 && c <= 0x2069) ||	/* bidirectional isolates */
		c == 0xFEFF ||			/* BOM, zero-width no-break space */
		(c >= 0xE0000 && c <= 0xE0FFF);	/* tags, unassigned ignorables */
}

/* A non-spacing or enclosing mark (audit_marks.h). */
static bool
is_mark(pg_wchar c)
{
	int			lo = 0;
	int			hi = lengthof(audit_marks) - 1;

	if (c < audit_marks[0].first || c > audit_marks[hi].last)
		return false;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (c > audit_marks[mid].last)
			lo = mid + 1;
		else if (c < audit_marks[mid].first)
			hi = mid - 1;
		else
			return true;
	}
	return false;
}

/*
 * The first code point of each run of ten decimal digits (general category
 * Nd, Unicode 14) beyond ASCII and the fullwidth forms, sorted.
 */
static const pg_wchar digit_zeros[] = {
	0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6,
	0x0C66, 0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090,
	0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40,
	0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0x104A0,
	0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
	0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0,
	0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
	0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0
};

/* The ASCII digit c stands for when it is a decimal digit of another script, else -1. */
static int
other_digit(pg_wchar c)
{
	int			lo = 0;
	int			hi = lengthof(digit_zeros) - 1;
	int			found = -1;

	if (c < digit_zeros[0] || c > digit_zeros[hi] + 9)
		return -1;
	/* the last zero at or below c */
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (digit_zeros[mid] <= c)
		{
			found = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	if (found >= 0 && c - digit_zeros[found] < 10)
		return '0' + (int) (c - digit_zeros[found]);
	return -1;
}

/* Fold look-alikes of the characters the scanners look for to ASCII. */
static pg_wchar
fold(pg_wchar c)
{
	if (c < 0x80)
		return c;
	if (c >= 0xFF01 && c <= 0xFF5E)	/* fullwidth ASCII */
		return c - 0xFEE0;
	if (c == 0xFE6B)			/* small commercial at */
		return '@';
	if (c == 0x3002 || c == 0xFF61 || c == 0xFE52)	/* ideographic, halfwidth, small full stop */
		return '.';
	if (other_digit(c) >= 0)
		return (pg_wchar) other_digit(c);
	if (c == 0x3000 || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) ||
		c == 0x202F || c == 0x205F)
		return ' ';
	if ((c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0xFE63)
		return '-';
	return c;
}

/*
 * decode_utf8_at
 *	  The code point at s[i] (valid UTF-8 is expected: the server checked
 *	  it; a truncated sequence is taken as one non-letter byte) and its
 *	  length in *l.
 */
static pg_wchar
decode_utf8_at(const unsigned char *s, int len, int i, int *l)
{
	unsigned char b = s[i];
	int			need;
	pg_wchar	c;

	if (b < 0x80)
	{
		*l = 1;
		return b;
	}
	if ((b & 0xE0) == 0xC0)
	{
		need = 2;
		c = b & 0x1F;
	}
	else if ((b & 0xF0) == 0xE0)
	{
		need = 3;
		c = b & 0x0F;
	}
	else if ((b & 0xF8) == 0xF0)
	{
		need = 4;
		c = b & 0x07;
	}
	else
	{
		*l = 1;
		return 0x80;
	}
	if (need > len - i)
	{
		*l = 1;
		return 0x80;
	}
	for (int k = 1; k < need; k++)
		c = (c << 6) | (s[i + k] & 0x3F);
	*l = need;
	return c;
}

/*
 * decode
 *	  Decode len bytes of s for the scanners.  When utf8 is false (a
 *	  database that is not UTF-8) every byte from 0x80 up stands for a
 *	  non-letter (the scanners match ASCII only there).
 */
static void
decode(const char *s, int len, bool utf8, Decoded *d)
{
	const unsigned char *u = (const unsigned char *) s;
	int			i = 0;

	d->n = 0;
	d->c = palloc_extended(sizeof(pg_wchar) * ((Size) len + 1), MCXT_ALLOC_HUGE);
	d->start = palloc_extended(sizeof(int) * ((Size) len + 1), MCXT_ALLOC_HUGE);
	d->end = palloc_extended(sizeof(int) * ((Size) len + 1), MCXT_ALLOC_HUGE);
	while (i < len)
	{
		int			l = 1;
		pg_wchar	c = utf8 ? decode_utf8_at(u, len, i, &l) : (u[i] < 0x80 ? u[i] : 0x80);

		if (is_invisible(c))
			;					/* skipped */
		else if (c >= 0x300 && is_mark(c))
		{
			/* joins the character before it (skipped at the start) */
			if (d->n > 0)
				d->end[d->n - 1] = i + l;
		}
		else
		{
			d->c[d->n] = fold(c);
			d->start[d->n] = i;
			d->end[d->n] = i + l;
			d->n++;
		}
		i += l;
	}
}

/*
 * AuditScanMayMatch
 *	  A cheap test on the bytes: false when no value pattern can match (no
 *	  "@", fullwidth or small, and fewer than 10 digits of any script),
 *	  which is the case of most values, so they are not decoded at all.
 *	  Multibyte sequences are read as UTF-8 whatever the encoding: in
 *	  another one this can only say "may match" more often.
 */
bool
AuditScanMayMatch(const char *s, int len)
{
	const unsigned char *u = (const unsigned char *) s;
	int			digits = 0;

	for (int i = 0; i < len; i++)
	{
		unsigned char b = u[i];

		if (b == '@')
			return true;
		if (b >= '0' && b <= '9')
			digits++;
		else if (b >= 0xC0)
		{
			int			l;
			pg_wchar	c = decode_utf8_at(u, len, i, &l);

			(void) l;
			if (c == 0xFF20 || c == 0xFE6B)
				return true;	/* fullwidth or small commercial at */
			if ((c >= 0xFF10 && c <= 0xFF19) || other_digit(c) >= 0)
				digits++;
			/*
			 * The next bytes are read on their own too (no skip): in a
			 * malformed sequence decode() may swallow ASCII digits, and
			 * counting them here as well can only say "may match".
			 */
		}
		if (digits >= 10)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Value scanners.  Each appends the code point ranges [start, end) it
 * finds, in increasing order and without overlap, to an AuditScanSpans
 * (AuditScanFind turns them into byte ranges at the end).
 * ------------------------------------------------------------------------
 */

static void
span_add(AuditScanSpans *l, int start, int end)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap == 0 ? 8 : l->cap * 2;
		l->s = l->s == NULL ? palloc(sizeof(AuditScanSpan) * l->cap) :
			repalloc_huge(l->s, sizeof(AuditScanSpan) * l->cap);
	}
	l->s[l->n].start = start;
	l->s[l->n].end = end;
	l->n++;
}

/* The atext of RFC 5322 (letters, digits, !#$%&'*+-/=?^_`{|}~) and ".". */
static inline bool
is_local_char(pg_wchar c)
{
	return is_digit(c) || is_letter(c) ||
		(c < 0x80 && c != 0 && strchr(".!#$%&'*+-/=?^_`{|}~", (int) c) != NULL);
}

/* The longest quoted local part read, in code points (RFC 5321: 64 octets). */
#define QUOTED_LOCAL_MAX	64

static inline bool
is_label_char(pg_wchar c)
{
	return is_digit(c) || is_letter(c) || c == '-';
}

/*
 * scan_emails
 *	  E-mail addresses.  Linear: from each "@" the local part is read
 *	  leftwards and the domain rightwards, and neither crosses an "@", so
 *	  every code point is read at most twice.
 */
static void
scan_emails(const Decoded *d, AuditScanSpans *out)
{
	const pg_wchar *c = d->c;
	int			n = d->n;
	int			floor = 0;

	for (int at = 0; at < n; at++)
	{
		int			ls,
					j,
					end = -1;
		int			labels = 0;

		if (c[at] != '@')
			continue;
		ls = at;
		if (at - 1 >= floor && c[at - 1] == '"')
		{
			/*
			 * A quoted local part, "j.doe"@example.com, "a@b"@example.com:
			 * back to the opening quote, over anything but a line break
			 * (an "@" included; a quote after a backslash is content, as
			 * in "a\"b"), for at most QUOTED_LOCAL_MAX code points, so
			 * each "@" reads a bounded number of code points.
			 */
			int			q = at - 2;

			while (q >= floor && at - 2 - q < QUOTED_LOCAL_MAX &&
				   c[q] != '\n' && c[q] != '\r' &&
				   (c[q] != '"' || (q - 1 >= floor && c[q - 1] == '\\')))
				q--;
			if (q >= floor && q < at - 2 && c[q] == '"')
				ls = q;
		}
		else
		{
			while (ls > floor && is_local_char(c[ls - 1]))
				ls--;
			while (ls < at && c[ls] == '.')
				ls++;
		}
		if (ls == at)
			continue;

		j = at + 1;
		for (;;)
		{
			int			lstart = j;
			int			le;
			bool		letter = false;

			while (j < n && is_label_char(c[j]))
			{
				letter |= is_letter(c[j]);
				j++;
			}
			if (j == lstart)
				break;

			/*
			 * The address may end at a label without its trailing hyphens:
			 * in "a@example.com-" or "a@example.com\u2014" (dashes fold to
			 * '-') the dash follows the address, which ends at "com".  The
			 * domain still goes on over a "." ("a@b-.example.com" is masked
			 * whole, as before): masking more is the safe side.
			 */
			le = j;
			while (le > lstart && c[le - 1] == '-')
				le--;
			labels++;
			if (labels >= 2 && le - lstart >= 2 && letter && c[lstart] != '-')
				end = le;
			if (j + 1 < n && c[j] == '.' && is_label_char(c[j + 1]))
				j++;
			else
				break;
		}
		if (end < 0)
			continue;
		span_add(out, ls, end);
		floor = end;
		at = end - 1;
	}
}

/* A digit's contribution to the Luhn sum when it is doubled. */
static inline int
luhn_doubled(int v)
{
	return v < 5 ? 2 * v : 2 * v - 9;
}

/*
 * The digit groups of one sequence, as [start, end) code point ranges,
 * grown as the sequence is read (scan_cards, scan_phones); reused from one
 * sequence to the next, freed by groups_free.
 */
typedef struct DigitGroups
{
	int			n;
	int			cap;
	int		   *start;
	int		   *end;
} DigitGroups;

static void
groups_push(DigitGroups *g, int start, int end)
{
	if (g->n == g->cap)
	{
		g->cap = g->cap == 0 ? 16 : g->cap * 2;
		g->start = g->start == NULL ? palloc(sizeof(int) * g->cap) :
			repalloc_huge(g->start, sizeof(int) * g->cap);
		g->end = g->end == NULL ? palloc(sizeof(int) * g->cap) :
			repalloc_huge(g->end, sizeof(int) * g->cap);
	}
	g->start[g->n] = start;
	g->end[g->n] = end;
	g->n++;
}

static void
groups_free(DigitGroups *g)
{
	if (g->start != NULL)
	{
		pfree(g->start);
		pfree(g->end);
	}
}

/*
 * card_sep_len
 *	  Length of the separator between two digit groups of a card number at
 *	  c[j], or 0: a space or a dash, a line break ("\n", "\r" or "\r\n"),
 *	  or a space or a dash and then a line break ("4111-1111-" wrapped, a
 *	  textarea's "\r\n").  Never longer than 3, so a sequence stays linear.
 */
static inline int
card_sep_len(const pg_wchar *c, int j, int n)
{
	int			k = j;

	if (k < n && (c[k] == ' ' || c[k] == '-'))
		k++;
	if (k < n && c[k] == '\r')
		k++;
	if (k < n && c[k] == '\n')
		k++;
	return k - j;
}

/*
 * scan_cards
 *	  Payment card numbers.  A sequence is a maximal run of digit groups
 *	  joined by separators (card_sep_len); inside it, from the leftmost group,
 *	  the longest run of whole groups with 13 to 19 digits that passes the
 *	  Luhn check is a card, and the search goes on after it.  Linear: the
 *	  Luhn sums of the runs from one group are kept as the run grows, so
 *	  at most 19 digits are read per group.
 */
static void
scan_cards(const Decoded *d, AuditScanSpans *out)
{
	const pg_wchar *c = d->c;
	int			n = d->n;
	int			i = 0;
	DigitGroups g = {0, 0, NULL, NULL};

	while (i < n)
	{
		int			j = i;
		int			ng;
		int			sep;
		const int  *gs;
		const int  *ge;

		if (!is_digit(c[i]))
		{
			i++;
			continue;
		}
		g.n = 0;
		for (;;)
		{
			int			s = j;

			while (j < n && is_digit(c[j]))
				j++;
			groups_push(&g, s, j);
			sep = card_sep_len(c, j, n);
			if (sep > 0 && j + sep < n && is_digit(c[j + sep]))
				j += sep;
			else
				break;
		}
		ng = g.n;
		gs = g.start;
		ge = g.end;

		for (int a = 0; a < ng;)
		{
			int			digits = 0;
			int			best = -1;

			/*
			 * The Luhn sum of the run a..b, kept for both parities of its
			 * last digit while b grows: sum_even is right when the last
			 * digit has an even index in the run (the digits of even index
			 * are then the undoubled ones), sum_odd otherwise.
			 */
			int			sum_even = 0;
			int			sum_odd = 0;

			for (int b = a; b < ng; b++)
			{
				if (digits + ge[b] - gs[b] > 19)
					break;
				for (int k = gs[b]; k < ge[b]; k++, digits++)
				{
					int			v = c[k] - '0';

					if (digits % 2 == 0)
					{
						sum_even += v;
						sum_odd += luhn_doubled(v);
					}
					else
					{
						sum_even += luhn_doubled(v);
						sum_odd += v;
					}
				}
				if (digits >= 13 && ((digits - 1) % 2 == 0 ? sum_even : sum_odd) % 10 == 0)
					best = b;
			}
			if (best >= 0)
			{
				span_add(out, gs[a], ge[best]);
				a = best + 1;
			}
			else
				a++;
		}
		i = j;
	}
	groups_free(&g);
}

static inline bool
is_phone_sep(pg_wchar c)
{
	/* a line break too: long text keeps them, and a number may wrap */
	return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')' ||
		c == '\n' || c == '\r';
}

/*
 * phone_end_ok
 *	  Whether a phone number may end at e: the end of the string, or
 *	  neither a letter nor a digit (an extension "x12" or "ext" may follow),
 *	  nor ":" and a digit (a date and time, "2026-11-26 12:00").
 */
static bool
phone_end_ok(const pg_wchar *c, int n, int e)
{
	if (e == n)
		return true;
	if (c[e] == ':')
		return !(e + 1 < n && is_digit(c[e + 1]));
	if (!is_word(c[e]))
		return true;
	if ((c[e] == 'x' || c[e] == 'X') && e + 1 < n && is_digit(c[e + 1]))
		return true;
	return e + 3 <= n && (c[e] | 0x20) == 'e' && (c[e + 1] | 0x20) == 'x' &&
		(c[e + 2] | 0x20) == 't' && (e + 3 == n || !is_letter(c[e + 3]));
}

/*
 * phone_group
 *	  Whether the digit group [s, e) is one a phone number has and a list of
 *	  small numbers or of years lacks: 3 digits or more, but not a year
 *	  (1900 to 2099).
 */
static bool
phone_group(const pg_wchar *c, int s, int e)
{
	if (e - s < 3)
		return false;
	return !(e - s == 4 && ((c[s] == '1' && c[s + 1] == '9') || (c[s] == '2' && c[s + 1] == '0')));
}

/*
 * scan_phones
 *	  Phone numbers.  A sequence is a maximal run of digit groups joined by
 *	  runs of at most 3 separators.  The whole sequence is a phone number
 *	  when it has 10 to 15 digits and may start and end where it does.
 *	  Otherwise (too many digits, or glued to a word at one end: "Apt B2
 *	  555-123-4567", a date before the number) every run of whole groups
 *	  inside it with 10 to 15 digits, a phone_group among them, and an
 *	  allowed start and end is masked: the union of the longest such run
 *	  from each group (a run that starts inside the part already masked
 *	  needs no phone_group), so no tail of a number stays clear
 *	  ("2024-05-01 555-123-4567" is masked whole).  phone_group keeps lists
 *	  of small numbers ("sizes 38 39 ... 46"), of years and date ranges
 *	  clear; so a number written in groups of two inside a longer sequence
 *	  is not found (alone, it is).  Linear: a run from one group reads at
 *	  most 15 digits.
 */
static void
scan_phones(const Decoded *d, AuditScanSpans *out)
{
	const pg_wchar *c = d->c;
	int			n = d->n;
	int			i = 0;
	DigitGroups g = {0, 0, NULL, NULL};

	while (i < n)
	{
		int			start = -1;
		int			j;
		int			digits = 0;
		int			ng;
		const int  *gs;
		const int  *ge;
		int			last_end;
		bool		start_ok;

		if (is_digit(c[i]))
			start = i;
		else if ((c[i] == '+' || c[i] == '(') && i + 1 < n && is_digit(c[i + 1]))
			start = i;
		else if (c[i] == '+' && i + 2 < n && c[i + 1] == '(' && is_digit(c[i + 2]))
			start = i;
		if (start < 0)
		{
			i++;
			continue;
		}
		j = start;
		while (!is_digit(c[j]))
			j++;
		g.n = 0;
		for (;;)
		{
			int			k;
			int			s = j;

			while (j < n && is_digit(c[j]))
			{
				digits++;
				j++;
			}
			groups_push(&g, s, j);
			last_end = j;
			k = j;
			while (k < n && k - j < 3 && is_phone_sep(c[k]))
				k++;
			if (k > j && k < n && is_digit(c[k]))
				j = k;
			else
				break;
		}
		ng = g.n;
		gs = g.start;
		ge = g.end;
		start_ok = (start == 0 || !is_word(c[start - 1]));
		if (digits >= 10 && digits <= 15 && start_ok && phone_end_ok(c, n, last_end))
			span_add(out, start, last_end);
		else if (digits > 10)
		{
			/* runs of whole groups inside the sequence */
			int			covered = -1;	/* masked up to here */

			for (int a = 0; a < ng; a++)
			{
				int			sum = 0;
				int			best = -1;
				bool		has3 = false;

				if (a == 0 && !start_ok)
					continue;
				for (int b = a; b < ng; b++)
				{
					sum += ge[b] - gs[b];
					if (sum > 15)
						break;
					has3 |= phone_group(c, gs[b], ge[b]);
					if (sum >= 10 && (has3 || gs[a] < covered) &&
						(b < ng - 1 || phone_end_ok(c, n, last_end)))
						best = b;
				}
				if (best >= 0 && ge[best] > covered)
				{
					int			from = (a == 0) ? start : gs[a];

					/* one span for runs that overlap (find_spans joins no touching ones) */
					if (covered >= 0 && from <= covered)
						out->s[out->n - 1].end = ge[best];
					else
						span_add(out, from, ge[best]);
					covered = ge[best];
				}
			}
		}
		i = last_end;
	}
	groups_free(&g);
}

/*
 * find_spans
 *	  Every match of a value pattern in d, merged: sorted by start, the
 *	  overlapping ones joined.
 */
static void
find_spans(const Decoded *d, AuditScanSpans *merged)
{
	AuditScanSpans l[3] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}};
	int			pos[3] = {0, 0, 0};

	scan_emails(d, &l[0]);
	scan_cards(d, &l[1]);
	scan_phones(d, &l[2]);

	for (;;)
	{
		int			pick = -1;
		AuditScanSpan s;

		for (int k = 0; k < 3; k++)
			if (pos[k] < l[k].n &&
				(pick < 0 || l[k].s[pos[k]].start < l[pick].s[pos[pick]].start))
				pick = k;
		if (pick < 0)
			break;
		s = l[pick].s[pos[pick]++];
		if (merged->n > 0 && s.start < merged->s[merged->n - 1].end)
		{
			if (s.end > merged->s[merged->n - 1].end)
				merged->s[merged->n - 1].end = s.end;
		}
		else
			span_add(merged, s.start, s.end);
	}
	for (int k = 0; k < 3; k++)
		if (l[k].s != NULL)
			pfree(l[k].s);
}

/*
 * free_decoded
 *	  Release the arrays of d.
 */
static void
free_decoded(Decoded *d)
{
	pfree(d->c);
	pfree(d->start);
	pfree(d->end);
}

/*
 * AuditScanFind
 *	  Append to out, which must be empty, the byte ranges of every match of
 *	  a value pattern in len bytes of s, sorted and disjoint (overlapping
 *	  matches joined).  A range runs from the first byte of the match's
 *	  first code point to the last byte of its last one.
 */
void
AuditScanFind(const char *s, int len, bool utf8, AuditScanSpans *out)
{
	Decoded		d;

	Assert(out->n == 0);
	decode(s, len, utf8, &d);
	find_spans(&d, out);
	for (int k = 0; k < out->n; k++)
	{
		out->s[k].start = d.start[out->s[k].start];
		out->s[k].end = d.end[out->s[k].end - 1];
	}
	free_decoded(&d);
}

/*
 * AuditScanHasEmail
 *	  True when len bytes of s hold an e-mail address.
 */
bool
AuditScanHasEmail(const char *s, int len, bool utf8)
{
	Decoded		d;
	AuditScanSpans spans = {NULL, 0, 0};
	bool		found;

	decode(s, len, utf8, &d);
	scan_emails(&d, &spans);
	found = spans.n > 0;
	if (spans.s != NULL)
		pfree(spans.s);
	free_decoded(&d);
	return found;
}

/* ------------------------------------------------------------------------
 * Key patterns
 * ------------------------------------------------------------------------
 */

/*
 * key_push
 *	  Append the ASCII letters (lowered) and digits of c, after fold, to
 *	  *norm (*n used of *cap bytes, grown as needed); anything else adds
 *	  nothing.
 */
static void
key_push(char **norm, Size *n, Size *cap, bool *own, pg_wchar c)
{
	char		out;

	c = fold(c);
	if (c >= 'A' && c <= 'Z')
		out = (char) (c - 'A' + 'a');
	else if ((c >= 'a' && c <= 'z') || is_digit(c))
		out = (char) c;
	else if (c == 0x0131)		/* dotless i: the lower case of Turkish I */
		out = 'i';
	else
		return;
	if (*n + 1 >= *cap)
	{
		Size		newcap = *cap * 2;

		if (*own)
			*norm = repalloc_huge(*norm, newcap);
		else
		{
			char	   *grown = palloc_extended(newcap, MCXT_ALLOC_HUGE);

			memcpy(grown, *norm, *n);
			*norm = grown;
			*own = true;
		}
		*cap = newcap;
	}
	(*norm)[(*n)++] = out;
}

/*
 * key_push_decomposed
 *	  key_push for each code point of c's compatibility decomposition
 *	  (NFKD of c alone): a letter with diacritics gives its base letter and
 *	  marks, which key_push drops (U+0130, Turkish capital dotted I, gives
 *	  "i"), a ligature its letters, and the compatibility forms (long s,
 *	  Kelvin sign, mathematical and circled letters, superscripts) the
 *	  letters they stand for.  Marks do not reorder anything key_push keeps,
 *	  so decomposing one code point at a time equals decomposing the key.
 */
static void
key_push_decomposed(char **norm, Size *n, Size *cap, bool *own, pg_wchar c)
{
	pg_wchar	one[2];
	pg_wchar   *d;

	if (c < 0x80 || fold(c) != c || c == 0x0131)
	{
		key_push(norm, n, cap, own, c);
		return;
	}
	one[0] = c;
	one[1] = 0;
	d = unicode_normalize(UNICODE_NFKD, one);
	if (d == NULL)				/* out of memory: frontend only */
	{
		key_push(norm, n, cap, own, c);
		return;
	}
	for (int k = 0; d[k] != 0; k++)
		key_push(norm, n, cap, own, d[k]);
#ifdef FRONTEND
	free(d);					/* the frontend unicode_normalize mallocs */
#else
	pfree(d);
#endif
}

/*
 * AuditScanKeyIsSensitive
 *	  True when the key (len bytes), reduced to its ASCII letters and
 *	  digits in lower case, contains a built-in key pattern.  In a UTF-8
 *	  database a non-ASCII character counts by its compatibility
 *	  decomposition (key_push_decomposed: "E-MA\u0130L", "pa\u017F\u017Fword",
 *	  fullwidth "\uFF45mail" and "\uFB01le" for "file" all reduce to their
 *	  ASCII letters); other non-ASCII characters add nothing.
 */
bool
AuditScanKeyIsSensitive(const char *key, int len, bool utf8)
{
	char		local[128];
	char	   *norm = local;
	Size		cap = sizeof(local);
	bool		own = false;
	const unsigned char *u = (const unsigned char *) key;
	Size		n = 0;
	bool		found = false;

	for (int i = 0; i < len;)
	{
		int			l = 1;

		if (u[i] < 0x80)
			key_push(&norm, &n, &cap, &own, u[i]);
		else if (utf8)
		{
			key_push_decomposed(&norm, &n, &cap, &own, decode_utf8_at(u, len, i, &l));
#ifndef FRONTEND
			if ((i & 0xFFFF) < l)
				CHECK_FOR_INTERRUPTS();
#endif
		}
		i += l;
	}
	norm[n] = '\0';
	for (int k = 0; k < (int) lengthof(builtin_keys) && !found; k++)
		found = strstr(norm, builtin_keys[k]) != NULL;
	if (own)
		pfree(norm);
	return found;
}

/*
 * AuditScanKeyPattern
 *	  The i-th built-in key pattern (from 0), or NULL past the last one.
 */
const char *
AuditScanKeyPattern(int i)
{
	return i >= 0 && i < (int) lengthof(builtin_keys) ? builtin_keys[i] : NULL;
}

/*
 * AuditScanValuePattern
 *	  The name of the i-th built-in value pattern (from 0), or NULL past
 *	  the last one.
 */
const char *
AuditScanValuePattern(int i)
{
	return i >= 0 && i < (int) lengthof(builtin_values) ? builtin_values[i] : NULL;
}
