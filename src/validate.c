/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Canonicalisation and validation of untrusted input: pure functions.
 *
 * Nothing here touches server state (no catalog access, no GUCs, no
 * ereport), so the file also builds with -DFRONTEND against libpgcommon
 * for fuzzing.  A refusal is returned in a ValidateError; validate_sql.c
 * turns it into an ereport.  All memory comes from palloc; in the backend
 * it is the caller's current memory context.
 *
 * ValidateText runs these steps, in this order, and stops at the first
 * refusal.  "Position" is the 1-based code point position: in the input
 * for steps 1 and 2, in the canonical value for steps 6 and 7 and for a
 * variation selector whose base cannot take it (checked after step 4).
 *
 * 1. Size bound.  More than VALIDATE_INPUT_BOUND(max_len) = 12 * max_len
 *	  + 1024 bytes (and in any case more than 16 MiB) is "too_long" (limit
 *	  max_len) before anything else is looked at, so a hostile megabyte
 *	  costs nothing; 12 bytes is the most a code point of the canonical
 *	  value can take decomposed (validate.h), so no value that fits is
 *	  refused here.  Then the whole input
 *	  must be valid UTF-8 (pg_utf8_islegal: no overlong forms, no
 *	  surrogates, nothing above U+10FFFF) without NUL bytes, else
 *	  "invalid_utf8".
 *
 * 2. Forbidden code points, checked on the input as decoded:
 *	  - "control_character": C0 controls U+0000-U+001F, DEL U+007F, C1
 *		controls U+0080-U+009F, LINE SEPARATOR U+2028 and PARAGRAPH
 *		SEPARATOR U+2029.  Exception for VT_LONGTEXT only: TAB U+0009 and
 *		LF U+000A are allowed, and CR U+000D is allowed and becomes LF (CR LF
 *		becomes one LF, a lone CR becomes LF).
 *	  - "bidi_control": U+061C, U+200E, U+200F, U+202A-U+202E,
 *		U+2066-U+2069 (marks, embeddings, overrides, isolates).
 *	  - "zero_width": invisible characters that let two values look the
 *		same: U+00AD soft hyphen, U+034F combining grapheme joiner,
 *		U+115F/U+1160/U+3164/U+FFA0 Hangul fillers, U+17B4/U+17B5, U+180E,
 *		U+200B-U+200D (zero width space, non-joiner, joiner), U+2060-U+2065
 *		(word joiner, invisible operators), U+206A-U+206F (deprecated
 *		format characters), U+FEFF, U+FFF9-U+FFFB (interlinear annotation),
 *		U+1BCA0-U+1BCA3, U+1D173-U+1D17A, U+FFF0-U+FFF8 (reserved,
 *		default ignorable), and the tag characters and the rest of their
 *		default-ignorable block U+E0000-U+E00FF and U+E01F0-U+E0FFF.
 *		Variation selectors (U+FE00-U+FE0F, U+E0100-U+E01EF, U+180B-U+180D,
 *		U+180F) are allowed one at a time directly after a character that
 *		can take one (emoji need U+FE0F; see vs_fits): first, two in a row
 *		or after white space (here), or, in the canonical value, after a
 *		character that no variation sequence of Unicode starts with (a
 *		letter of any script but CJK, Mongolian, Myanmar, Phags-pa,
 *		Manichaean and Egyptian hieroglyphs), where one would only make two
 *		equal-looking values differ (after step 4), they are "zero_width".
 *		Note that refusing U+200D also refuses emoji ZWJ sequences, and
 *		refusing tags refuses the three subdivision flags.
 *	  - "noncharacter": U+FDD0-U+FDEF and every U+xFFFE and U+xFFFF.
 *	  - "private_use": U+E000-U+F8FF and planes 15 and 16.
 *	  - "invalid_utf8": surrogates U+D800-U+DFFF (cannot come out of step 1;
 *		checked anyway).
 *	  - "combining_marks" (limit 30): more than 30 non-starters (combining
 *		marks, after canonical decomposition) in a row, which no real text
 *		needs (UAX #15 "stream-safe text format").  This bounds the work of
 *		step 3, whose canonical reordering is quadratic in the length of a
 *		run: without it 20 kB of alternating marks cost most of a second.
 *
 * 3. NFC normalisation with core's unicode_normalize().  A value whose
 *	  code points are all below U+0300 is already in NFC and is not copied.
 *
 * 4. White space.  Every space separator (U+0020, U+00A0, U+1680,
 *	  U+2000-U+200A, U+202F, U+205F, U+3000) becomes U+0020, and:
 *	  - all kinds but VT_LONGTEXT: leading and trailing spaces are removed
 *		and every run of spaces becomes one space.
 *	  - VT_LONGTEXT: TAB counts as a space; each line (text between LFs) is
 *		trimmed and collapsed as above, so indentation and trailing blanks
 *		go; runs of three or more LFs become two (at most one blank line);
 *		leading and trailing blank lines are removed.
 *	  Then per kind: VT_SKU and VT_CURRENCY upper-case ASCII letters,
 *	  VT_SLUG lower-cases them; other kinds keep case.
 *
 * 5. Length in code points of the canonical value: fewer than min_len is
 *	  "empty" when the value is empty, else "too_short" (limit min_len);
 *	  more than max_len is "too_long" (limit max_len).
 *
 * 6. VT_PLAIN, VT_LONGTEXT and (after its allow-list, step 7) VT_TOKEN:
 *	  markup and active content.  The checks
 *	  run on a decoded view of the canonical value (the stored value itself
 *	  is never decoded or escaped).  The view decodes, repeatedly up to four
 *	  levels deep so that "&amp;lt;" is seen as "<":
 *	  - numeric character references &#NNN and &#xHHH (either case of x,
 *		any number of leading zeros, semicolon optional, as HTML parsers
 *		accept them; 0, surrogates and values above U+10FFFF become U+FFFD);
 *	  - the named references that can build one of the patterns below,
 *		case-sensitive as in HTML, semicolon optional: &lt; &LT; &amp;
 *		&AMP; &sol; &excl; &quest; &colon; &comma; &semi; &equals; &Tab;
 *		&NewLine; &num; &percnt;  (so "&lt" without semicolon, and
 *		"&ltimes;", read as "<");
 *	  - the named references of characters step 2 refuses, with their
 *		semicolon (&shy also without): &shy; &lrm; &rlm; &zwj; &zwnj;
 *		&ZeroWidthSpace; the four &Negative...Space; &NoBreak; &af; &it;
 *		&ic; &ApplyFunction; &InvisibleTimes; &InvisibleComma; and of
 *		the combining marks HTML names: &DownBreve; &tdot; &TripleDot;
 *		&DotDot;
 *	  - percent-encoded ASCII, %00-%7F, either case of hex digit (ASCII
 *		only: percent-encoded UTF-8 such as "%E2%80%AE" is not decoded).
 *	  Fullwidth ASCII U+FF01-U+FF5E and the small forms U+FE64 "<", U+FE55
 *	  ":" and U+FE66 "=" are matched as the ASCII character they look like.
 *	  The rules (position: the "<", or the first letter of the word, or the
 *	  "&" or "%" that starts its encoded form):
 *	  - "markup": "<" followed directly by an ASCII letter, "/", "!" or "?"
 *		(start tag, end tag, comment or doctype, processing instruction: the
 *		only cases in which an HTML tokenizer leaves the data state).  So
 *		"Size < 10", "I <3 cats", "C++ <=> D" and "5 > 3" are accepted, and
 *		"a<b" is refused.
 *	  - "active_content", URL schemes: javascript, vbscript, livescript and
 *		data, matched case-insensitively, starting at a word start (the
 *		character before is not an ASCII letter or digit, so "metadata:" is
 *		not "data:"), with any space, control character or invisible
 *		character of step 2 (the last two can only come from decoding)
 *		allowed between the letters and before the colon: "java script:",
 *		"jav&#x09;ascript:", "&#106;avascript:", "javascript&colon;" are
 *		all refused.  "data:" counts only when what follows the colon
 *		(after spaces) is "," or ";" or a MIME type (ASCII letters, then
 *		"/"): "Product data: see sheet" and "Big data: 10/20 GB" are
 *		accepted, "data: text/html,..." is refused.  Known false positive,
 *		kept on purpose because names must never carry a script URL: the
 *		book title "JavaScript: The Good Parts" is refused.
 *	  - "active_content", event handlers: "on" at a word start followed by
 *		two or more ASCII letters, optional white space, then "="
 *		("onerror=", "ONLOAD =").  "Salon = stylish" is accepted (no word
 *		start), "online=yes" is refused.
 *	  - the forbidden characters of step 2, when decoding produced them
 *		("&#x202E;", "&#8203;", "%07", "&amp;#x202E;"), with step 2's
 *		reason and the position of the reference's "&" or "%"; VT_LONGTEXT
 *		allows an encoded TAB, LF and CR as it allows written ones.
 *	  CSS "expression(" and "url(" are not checked: expression() only ran in
 *	  Internet Explorer 7 and older, and url() is dangerous only with a
 *	  javascript: or data: URL, which the scheme rule refuses already.
 *
 * 7. Allow-lists for the other kinds ("invalid_format", with the position
 *	  of the first offending character, or -1 when the length is wrong):
 *	  - VT_SKU: [A-Z0-9] then [A-Z0-9._-]*.
 *	  - VT_SLUG: ^[a-z0-9]+(-[a-z0-9]+)*$.
 *	  - VT_CURRENCY: exactly three ASCII letters, else "invalid_format";
 *		not an active ISO 4217 currency code (table below) is
 *		"unknown_currency".
 *	  - VT_TOKEN: printable ASCII U+0021-U+007E only (no white space
 *		inside; the ends are trimmed by step 4), then the markup rules of
 *		step 6: a token is stored (idempotency keys) and may be shown back,
 *		so "<script>" or "javascript:" is no more a key than a name, and
 *		no stored key matches the event-handler rule either.  Padded
 *		base64 can ("Zm9v+onQz==": a word start after "+", letters, "="),
 *		about one random 16-byte key in 10,000; unpadded base64url, hex
 *		and UUID keys never can (no "=", or no "o" and "n"), which is
 *		what the README recommends.  Exempting tokens without a quote was
 *		tried and withdrawn: a consumer that decodes once ("%20", "&#32;")
 *		and writes the key into an unquoted attribute gets a handler.
 *
 * The input is bounded by step 1, so every array below holds at most 16 Mi
 * code points and no size computation can overflow.
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <stdlib.h>
#include <string.h>

#include "common/unicode_norm.h"
#include "mb/pg_wchar.h"

/*
 * The decomposition table core's frontend normaliser uses (a private copy:
 * the header is made to be included once per user), for combining classes
 * in the stream-safe check of step 2.
 */
#include "common/unicode_norm_table.h"

#include "validate.h"

/* Absolute cap on the input, whatever max_len says. */
#define VALIDATE_MAX_INPUT_BYTES	((size_t) 16 * 1024 * 1024)

/* Nesting depth of character references that the markup checks decode. */
#define VALIDATE_DECODE_PASSES		4

/* UAX #15 stream-safe text: at most this many non-starters in a row. */
#define VALIDATE_MAX_NONSTARTERS	30

/* Room for one canonical decomposition (Unicode's longest is 4). */
#define VALIDATE_DECOMP_MAX			18

/* Reasons; static strings, compared by validate_sql.c with strcmp. */
#define R_INVALID_UTF8		"invalid_utf8"
#define R_CONTROL			"control_character"
#define R_BIDI				"bidi_control"
#define R_ZERO_WIDTH		"zero_width"
#define R_NONCHARACTER		"noncharacter"
#define R_PRIVATE_USE		"private_use"
#define R_EMPTY				"empty"
#define R_TOO_SHORT			"too_short"
#define R_TOO_LONG			"too_long"
#define R_MARKUP			"markup"
#define R_ACTIVE_CONTENT	"active_content"
#define R_INVALID_FORMAT	"invalid_format"
#define R_UNKNOWN_CURRENCY	"unknown_currency"
#define R_OUT_OF_MEMORY		"out_of_memory"
#define R_COMBINING_MARKS	"combining_marks"

/* Why a code point is refused in step 2. */
typedef enum ValidateCodeClass
{
	CC_ALLOWED,
	CC_CONTROL,
	CC_BIDI,
	CC_ZERO_WIDTH,
	CC_NONCHARACTER,
	CC_PRIVATE_USE,
	CC_INVALID
} ValidateCodeClass;

/* A range of forbidden code points and why. */
typedef struct ValidateCodeRange
{
	pg_wchar	lo;
	pg_wchar	hi;
	ValidateCodeClass cls;
} ValidateCodeRange;

/*
 * Forbidden code points (step 2), sorted and not overlapping.  TAB, LF and
 * CR are handled before this table is consulted; noncharacters outside
 * U+FDD0-U+FDEF are caught by a bit test first.
 */
static const ValidateCodeRange forbidden_ranges[] = {
	{0x0000, 0x001F, CC_CONTROL},
	{0x007F, 0x009F, CC_CONTROL},
	{0x00AD, 0x00AD, CC_ZERO_WIDTH},
	{0x034F, 0x034F, CC_ZERO_WIDTH},
	{0x061C, 0x061C, CC_BIDI},
	{0x115F, 0x1160, CC_ZERO_WIDTH},
	{0x17B4, 0x17B5, CC_ZERO_WIDTH},
	{0x180E, 0x180E, CC_ZERO_WIDTH},
	{0x200B, 0x200D, CC_ZERO_WIDTH},
	{0x200E, 0x200F, CC_BIDI},
	{0x2028, 0x2029, CC_CONTROL},
	{0x202A, 0x202E, CC_BIDI},
	{0x2060, 0x2065, CC_ZERO_WIDTH},
	{0x2066, 0x2069, CC_BIDI},
	{0x206A, 0x206F, CC_ZERO_WIDTH},
	{0x3164, 0x3164, CC_ZERO_WIDTH},
	{0xD800, 0xDFFF, CC_INVALID},
	{0xE000, 0xF8FF, CC_PRIVATE_USE},
	{0xFDD0, 0xFDEF, CC_NONCHARACTER},
	{0xFEFF, 0xFEFF, CC_ZERO_WIDTH},
	{0xFFA0, 0xFFA0, CC_ZERO_WIDTH},
	{0xFFF0, 0xFFFB, CC_ZERO_WIDTH},
	{0x1BCA0, 0x1BCA3, CC_ZERO_WIDTH},
	{0x1D173, 0x1D17A, CC_ZERO_WIDTH},
	{0xE0000, 0xE00FF, CC_ZERO_WIDTH},
	{0xE01F0, 0xE0FFF, CC_ZERO_WIDTH},
	{0xF0000, 0x10FFFF, CC_PRIVATE_USE},
};

/* Reason string of each ValidateCodeClass, in enum order. */
static const char *const code_class_reasons[] = {
	NULL,
	R_CONTROL,
	R_BIDI,
	R_ZERO_WIDTH,
	R_NONCHARACTER,
	R_PRIVATE_USE,
	R_INVALID_UTF8,
};

/*
 * A named character reference that the markup checks decode; semi: only
 * with its semicolon (HTML decodes a few legacy names without one).
 */
typedef struct ValidateNamedRef
{
	const char *name;
	pg_wchar	cp;
	bool		semi;
} ValidateNamedRef;

/*
 * The names that can build one of the patterns of step 6, those of the
 * characters step 2 refuses (invisible and bidi characters) and those of
 * the combining marks that HTML names alone (their runs count), which a page
 * that shows the value unescaped would turn into the real character.  The
 * latter need their semicolon, as in HTML, but for the legacy "&shy":
 * short names such as "it" and "af" would otherwise refuse "AT&italic".
 * No name is a prefix of another, so the first match is the only one.
 */
static const ValidateNamedRef named_refs[] = {
	{"AMP", '&', false},
	{"ApplyFunction", 0x2061, true},
	{"DotDot", 0x20DC, true},
	{"DownBreve", 0x0311, true},
	{"InvisibleComma", 0x2063, true},
	{"InvisibleTimes", 0x2062, true},
	{"LT", '<', false},
	{"NegativeMediumSpace", 0x200B, true},
	{"NegativeThickSpace", 0x200B, true},
	{"NegativeThinSpace", 0x200B, true},
	{"NegativeVeryThinSpace", 0x200B, true},
	{"NewLine", '\n', false},
	{"NoBreak", 0x2060, true},
	{"Tab", '\t', false},
	{"TripleDot", 0x20DB, true},
	{"ZeroWidthSpace", 0x200B, true},
	{"af", 0x2061, true},
	{"amp", '&', false},
	{"colon", ':', false},
	{"comma", ',', false},
	{"equals", '=', false},
	{"excl", '!', false},
	{"ic", 0x2063, true},
	{"it", 0x2062, true},
	{"lrm", 0x200E, true},
	{"lt", '<', false},
	{"num", '#', false},
	{"percnt", '%', false},
	{"quest", '?', false},
	{"rlm", 0x200F, true},
	{"semi", ';', false},
	{"shy", 0x00AD, false},
	{"sol", '/', false},
	{"tdot", 0x20DB, true},
	{"zwj", 0x200D, true},
	{"zwnj", 0x200C, true},
};

/* URL schemes refused as active content (lower case). */
static const char *const active_schemes[] = {
	"javascript",
	"vbscript",
	"livescript",
	"data",
};

/*
 * Active ISO 4217 alphabetic currency codes, sorted for bsearch: list one
 * as amended up to amendment 178 (2025: XCG added, ANG, CUC, HRK, SLL and
 * ZWL withdrawn, ZWG added), without fund codes (BOV, CHE, CHW, CLF, COU,
 * MXV, USN, UYI, UYW), precious metals (XAG, XAU, XPD, XPT), units of
 * account and bond-market units (XBA, XBB, XBC, XBD, XDR, XSU, XUA) and
 * the testing and "no currency" codes (XTS, XXX).
 */
static const char iso4217_codes[][4] = {
	"AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM",
	"BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD",
	"BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP",
	"CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
	"ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF",
	"GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
	"IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW",
	"KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
	"MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
	"MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
	"OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
	"RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
	"SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
	"TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD",
	"UYU", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG",
	"XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
};


/*
 * fail
 *		Fill *err and return false, so callers can "return fail(...)".
 */
static bool
fail(ValidateError *err, const char *reason, int limit, int position)
{
	err->reason = reason;
	err->limit = limit;
	err->position = position;
	return false;
}

static inline bool
is_ascii_upper(pg_wchar c)
{
	return c >= 'A' && c <= 'Z';
}

static inline bool
is_ascii_lower(pg_wchar c)
{
	return c >= 'a' && c <= 'z';
}

static inline bool
is_ascii_alpha(pg_wchar c)
{
	return is_ascii_upper(c) || is_ascii_lower(c);
}

static inline bool
is_ascii_digit(pg_wchar c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_ascii_alnum(pg_wchar c)
{
	return is_ascii_alpha(c) || is_ascii_digit(c);
}

/* Value of an ASCII hex digit, or -1. */
static inline int
hex_value(pg_wchar c)
{
	if (is_ascii_digit(c))
		return (int) (c - '0');
	if (c >= 'a' && c <= 'f')
		return (int) (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int) (c - 'A' + 10);
	return -1;
}

/* Unicode space separators (general category Zs); step 4. */
static inline bool
is_space_separator(pg_wchar c)
{
	return c == 0x0020 || c == 0x00A0 || c == 0x1680 ||
		(c >= 0x2000 && c <= 0x200A) ||
		c == 0x202F || c == 0x205F || c == 0x3000;
}

/*
 * code_class
 *		Step 2: why code point c is refused, or CC_ALLOWED.  TAB, LF and CR
 *		must have been dealt with by the caller.
 */
static ValidateCodeClass
code_class(pg_wchar c)
{
	int			lo = 0;
	int			hi = lengthof(forbidden_ranges) - 1;

	/* Printable ASCII: the common case. */
	if (c >= 0x20 && c < 0x7F)
		return CC_ALLOWED;
	if (c > 0x10FFFF)
		return CC_INVALID;
	/* U+xFFFE and U+xFFFF in every plane, before the private-use planes. */
	if ((c & 0xFFFE) == 0xFFFE)
		return CC_NONCHARACTER;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (c < forbidden_ranges[mid].lo)
			hi = mid - 1;
		else if (c > forbidden_ranges[mid].hi)
			lo = mid + 1;
		else
			return forbidden_ranges[mid].cls;
	}
	return CC_ALLOWED;
}

/*
 * is_variation_selector
 *		U+FE00-U+FE0F, U+E0100-U+E01EF and the Mongolian free variation
 *		selectors U+180B-U+180D, U+180F: invisible, but they choose how the
 *		character before them is drawn (U+FE0F after a symbol asks for its
 *		emoji form), so step 2 allows one directly after any other
 *		character and refuses the rest ("zero_width").
 */
static bool
is_variation_selector(pg_wchar c)
{
	return (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xE0100 && c <= 0xE01EF) ||
		(c >= 0x180B && c <= 0x180D) || c == 0x180F;
}

static int	combining_class(pg_wchar c);

/*
 * vs_block
 *		Whether c lies where Unicode has variation sequences with U+FE00-
 *		U+FE0F outside Basic Latin and the CJK ideographs (see vs_fits).
 */
static bool
vs_block(pg_wchar c)
{
	/*
	 * Whole blocks (or the symbol part of one), not a list of today's
	 * bases, so that a later version's new sequences in them pass: checked
	 * against Unicode 15.0's StandardizedVariants.txt and
	 * emoji-variation-sequences.txt, every base of U+FE00-U+FE0F outside
	 * Basic Latin and the CJK unified ideographs lies in one of these.
	 * Within a block, letters of scripts without sequences, digits and
	 * format characters are left out (Roman numerals, the superscript
	 * letters, U+2132 and U+214E, fullwidth letters, the kana iteration
	 * marks, the hieroglyph format controls).  Inside the Myanmar,
	 * Phags-pa, Manichaean and Egyptian blocks every letter stays allowed:
	 * their scripts have sequences.
	 */
	static const pg_wchar ranges[][2] = {
		{0x00A9, 0x00A9},		/* copyright sign */
		{0x00AE, 0x00AE},		/* registered sign */
		{0x1000, 0x109F},		/* Myanmar */
		{0x2010, 0x2027},		/* general punctuation, without the spaces */
		{0x2030, 0x205E},		/* ... and format characters */
		{0x2100, 0x2131},		/* letterlike symbols (script capitals), */
		{0x2133, 0x214D},		/* without the Latin letters U+2132 and */
		{0x214F, 0x214F},		/* U+214E */
		{0x2190, 0x2BFF},		/* arrows, mathematical operators, technical,
								 * enclosed alphanumerics, geometric shapes,
								 * symbols, dingbats */
		{0x3001, 0x3004},		/* CJK symbols and punctuation */
		{0x3008, 0x3020},
		{0x3030, 0x3030},
		{0x3036, 0x303F},
		{0x3200, 0x32FF},		/* enclosed CJK letters and months */
		{0xA840, 0xA877},		/* Phags-pa */
		{0xA9E0, 0xA9FF},		/* Myanmar Extended-B */
		{0xAA60, 0xAA7F},		/* Myanmar Extended-A */
		{0xFF01, 0xFF10},		/* fullwidth punctuation and zero */
		{0xFF1A, 0xFF20},
		{0x10AC0, 0x10AFF},		/* Manichaean */
		{0x13000, 0x1342F},		/* Egyptian hieroglyphs, without their */
		{0x13440, 0x1345F},		/* format controls U+13430-1343F */
		{0x1D400, 0x1D7FF},		/* mathematical alphanumeric symbols */
		{0x1F000, 0x1FBFF},		/* emoji and symbol blocks */
	};

	for (size_t i = 0; i < lengthof(ranges); i++)
		if (c >= ranges[i][0] && c <= ranges[i][1])
			return true;
	return false;
}

/* A CJK unified ideograph: a base of the Ideographic Variation Database. */
static bool
unified_ideograph(pg_wchar c)
{
	/* the twelve unified ideographs of the compatibility block */
	static const pg_wchar compat[] = {
		0xFA0E, 0xFA0F, 0xFA11, 0xFA13, 0xFA14, 0xFA1F,
		0xFA21, 0xFA23, 0xFA24, 0xFA27, 0xFA28, 0xFA29
	};

	if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
		(c >= 0x20000 && c <= 0x3FFFF))
		return true;
	for (size_t i = 0; i < lengthof(compat); i++)
		if (c == compat[i])
			return true;
	return false;
}

/*
 * vs_fits
 *		Whether variation selector vs may directly follow base (a character
 *		other than a variation selector), by the kinds of variation
 *		sequence Unicode defines (a base character directly followed by the
 *		selector):
 *		  - the Mongolian free variation selectors select forms of
 *			Mongolian letters (U+1820-U+1878, U+1880-U+18AA);
 *		  - the ideographic ones (U+E0100-U+E01EF, the Ideographic Variation
 *			Database) follow a CJK unified ideograph;
 *		  - in Basic Latin, only U+0030 U+FE00 (the slashed zero of
 *			StandardizedVariants.txt) and U+FE0E/U+FE0F after the emoji
 *			keycap bases 0-9, # and * (UTS #51) exist;
 *		  - U+FE00-U+FE0F after anything else only where Unicode has such
 *			sequences (vs_block): an allow-list of the blocks that hold the
 *			bases of StandardizedVariants.txt and
 *			emoji-variation-sequences.txt, so that the next Unicode
 *			version's emoji and symbols pass, while a selector after a letter
 *			of any other script (Latin, Greek, Cyrillic, Arabic, Hebrew,
 *			Hangul, kana, Indic...), where it draws as nothing and only makes
 *			two equal-looking values differ, does not;
 *		  - never after white space or a combining mark: one of non-zero
 *			combining class, or of the block U+20D0-U+20FF (the enclosing
 *			keycap U+20E3 has class 0; its selector comes before it).
 */
static bool
vs_fits(pg_wchar base, pg_wchar vs)
{
	if (is_space_separator(base) || base == '\t' || base == '\n' ||
		(base >= 0x20D0 && base <= 0x20FF) || combining_class(base) != 0)
		return false;
	if (vs >= 0x180B && vs <= 0x180F)
		/* the Mongolian letters, not its digits and punctuation */
		return (base >= 0x1820 && base <= 0x1878) || (base >= 0x1880 && base <= 0x18AA);
	if (vs >= 0xE0100)
		return unified_ideograph(base);
	if (base < 0x80)
		return (vs == 0xFE00 && base == '0') ||
			((vs == 0xFE0E || vs == 0xFE0F) &&
			 ((base >= '0' && base <= '9') || base == '#' || base == '*'));
	/* the standardized variants of the CJK compatibility ideographs */
	return vs_block(base) || unified_ideograph(base);
}

/*
 * is_invisible
 *		True for the control, bidi and zero-width characters of step 2, and
 *		for variation selectors.  The scheme rule skips them between
 *		letters.
 */
static bool
is_invisible(pg_wchar c)
{
	ValidateCodeClass cls = code_class(c);

	return cls == CC_CONTROL || cls == CC_BIDI || cls == CC_ZERO_WIDTH ||
		is_variation_selector(c);
}

/*
 * fold_ascii
 *		The ASCII character that c stands for in the markup checks: c
 *		itself, or the ASCII form of a fullwidth character (U+FF01-U+FF5E)
 *		or of the small forms U+FE64 "<", U+FE55 ":" and U+FE66 "=".
 *		Letters are lower-cased.
 */
static pg_wchar
fold_ascii(pg_wchar c)
{
	if (c >= 0xFF01 && c <= 0xFF5E)
		c -= 0xFEE0;
	else if (c == 0xFE64)
		c = '<';
	else if (c == 0xFE55)
		c = ':';
	else if (c == 0xFE66)
		c = '=';
	if (is_ascii_upper(c))
		c += 'a' - 'A';
	return c;
}

/* Characters the scheme rule skips: ASCII white space and invisibles. */
static inline bool
is_scheme_ignorable(pg_wchar c)
{
	return c == ' ' || is_invisible(c);
}

/* True when position i of s starts a word: s[i - 1] is no letter or digit. */
static inline bool
is_word_start(const pg_wchar *s, int i)
{
	return i == 0 || !is_ascii_alnum(fold_ascii(s[i - 1]));
}

/*
 * utf8_length
 *		Bytes that unicode_to_utf8() writes for code point c.
 */
static inline int
utf8_length(pg_wchar c)
{
	if (c < 0x80)
		return 1;
	if (c < 0x800)
		return 2;
	if (c < 0x10000)
		return 3;
	return 4;
}

/* bsearch comparator for UnicodeDecompMain. */
static int
decomp_cmp(const void *key, const void *entry)
{
	pg_wchar	c = *(const pg_wchar *) key;
	pg_wchar	e = ((const pg_unicode_decomposition *) entry)->codepoint;

	return c < e ? -1 : (c > e ? 1 : 0);
}

/* The table entry of c: it has a decomposition or a combining class. */
static const pg_unicode_decomposition *
decomp_entry(pg_wchar c)
{
	return (const pg_unicode_decomposition *)
		bsearch(&c, UnicodeDecompMain, lengthof(UnicodeDecompMain),
				sizeof(UnicodeDecompMain[0]), decomp_cmp);
}

/* Canonical combining class of c; 0 for a starter. */
static int
combining_class(pg_wchar c)
{
	const pg_unicode_decomposition *e;

	if (c < 0x0300)
		return 0;
	e = decomp_entry(c);
	return e != NULL ? e->comb_class : 0;
}

/*
 * canonical_decompose
 *		Full canonical decomposition of c into buf (room elements, extra
 *		elements are dropped).  Hangul syllables are left whole: they
 *		decompose into starters only, which is all the caller asks about.
 *		Returns the number of elements stored.
 */
static int
canonical_decompose(pg_wchar c, pg_wchar *buf, int room)
{
	const pg_unicode_decomposition *e;
	int			n = 0;
	int			k;

	if (room <= 0)
		return 0;
	e = decomp_entry(c);
	if (e == NULL || DECOMPOSITION_SIZE(e) == 0 || DECOMPOSITION_IS_COMPAT(e))
	{
		buf[0] = c;
		return 1;
	}
	if (DECOMPOSITION_IS_INLINE(e))
		return canonical_decompose((pg_wchar) e->dec_index, buf, room);
	for (k = 0; k < DECOMPOSITION_SIZE(e); k++)
		n += canonical_decompose(UnicodeDecomp_codepoints[e->dec_index + k],
								 buf + n, room - n);
	return n;
}

/*
 * check_vs_bases
 *		On the canonical value s[0..n) (after steps 3 and 4): each variation
 *		selector must directly follow a character that can take it
 *		(vs_fits).  Checked on the value that is stored, not on the input:
 *		normalisation changes that character (e + U+0301 composes into a
 *		Latin letter, U+212A is K) and so does step 4 (U+00A0 becomes a
 *		space, a leading one goes), and a canonical value must pass again
 *		as it is.  The position counts characters of the canonical value,
 *		as the markup rules' do.
 */
static bool
check_vs_bases(const pg_wchar *s, int n, ValidateError *err)
{
	for (int i = 0; i < n; i++)
	{
		/* a selector first: step 4 dropped what came before it */
		if (is_variation_selector(s[i]) &&
			(i == 0 || !vs_fits(s[i - 1], s[i])))
			return fail(err, R_ZERO_WIDTH, -1, i + 1);
	}
	return true;
}

/*
 * nonstarter_run
 *		UAX #15 stream-safe counting: the number of non-starters in a row
 *		that end with code point c, given the count "run" before it.
 *		Decomposition matters: U+0F73 is a starter but decomposes into two
 *		non-starters.  Sets *over when the run grew past the limit inside c.
 */
static int
nonstarter_run(pg_wchar c, int run, bool *over)
{
	pg_wchar	buf[VALIDATE_DECOMP_MAX];
	int			len;
	int			lead = 0;
	int			trail = 0;

	*over = false;
	/* Below U+00C0 nothing decomposes canonically or combines. */
	if (c < 0x00C0)
		return 0;
	len = canonical_decompose(c, buf, VALIDATE_DECOMP_MAX);
	while (lead < len && combining_class(buf[lead]) != 0)
		lead++;
	if (lead == len)
		run += len;
	else
	{
		run += lead;
		if (run > VALIDATE_MAX_NONSTARTERS)
			*over = true;
		while (trail < len && combining_class(buf[len - 1 - trail]) != 0)
			trail++;
		run = trail;
	}
	if (run > VALIDATE_MAX_NONSTARTERS)
		*over = true;
	return run;
}

/*
 * check_utf8
 *		Step 1: in[0..len) must be valid UTF-8 without NUL.  On success
 *		returns true and sets *ncp to the number of code points.
 */
static bool
check_utf8(const unsigned char *in, size_t len, int *ncp, ValidateError *err)
{
	size_t		i = 0;
	int			n = 0;

	while (i < len)
	{
		int			l;

		if (in[i] == '\0')
			return fail(err, R_INVALID_UTF8, -1, n + 1);
		if (in[i] < 0x80)
			l = 1;
		else
		{
			l = pg_utf_mblen(&in[i]);
			if ((size_t) l > len - i || !pg_utf8_islegal(&in[i], l))
				return fail(err, R_INVALID_UTF8, -1, n + 1);
		}
		i += l;
		n++;
	}
	*ncp = n;
	return true;
}

/*
 * decode_and_screen
 *		Step 2: decode valid UTF-8 in[0..len) into cps (room for ncp + 1
 *		code points, 0-terminated on return) and refuse forbidden code
 *		points.  For VT_LONGTEXT, TAB and LF pass, CR LF becomes LF and a
 *		lone CR becomes LF.  Sets *outn to the number of code points
 *		stored and *maxcp to the largest one.
 */
static bool
decode_and_screen(const unsigned char *in, size_t len, ValidateTextKind kind,
				  pg_wchar *cps, int *outn, pg_wchar *maxcp,
				  ValidateError *err)
{
	size_t		i = 0;
	int			pos = 0;		/* 1-based position of the current one */
	int			n = 0;
	pg_wchar	maxc = 0;
	bool		longtext = (kind == VT_LONGTEXT);
	int			run = 0;		/* non-starters in a row so far */
	bool		over;
	bool		prev_base = false;	/* the last one can carry a variation selector */

	while (i < len)
	{
		pg_wchar	c;
		int			l;
		ValidateCodeClass cls;

		if (in[i] < 0x80)
		{
			c = in[i];
			l = 1;
		}
		else
		{
			c = utf8_to_unicode(&in[i]);
			l = pg_utf_mblen(&in[i]);
		}
		i += l;
		pos++;

		if (longtext && (c == '\t' || c == '\n'))
			cls = CC_ALLOWED;
		else if (longtext && c == '\r')
		{
			/* CR LF: drop the CR, the LF follows.  Lone CR: LF. */
			if (i < len && in[i] == '\n')
				continue;
			c = '\n';
			cls = CC_ALLOWED;
		}
		else
			cls = code_class(c);

		if (cls != CC_ALLOWED)
			return fail(err, code_class_reasons[cls], -1, pos);

		/*
		 * One variation selector directly after a character that is neither
		 * white space nor a variation selector: never first, never two in a
		 * row (a run of them draws as nothing and could carry data, or make
		 * two values that look alike differ), never after a space (which
		 * step 4 may drop, leaving it first).  Whether that character can
		 * take it is checked on the canonical value (check_vs_bases).
		 */
		if (is_variation_selector(c))
		{
			if (!prev_base)
				return fail(err, R_ZERO_WIDTH, -1, pos);
			prev_base = false;
		}
		else
			prev_base = !(is_space_separator(c) || c == '\t' || c == '\n');

		run = nonstarter_run(c, run, &over);
		if (over)
			return fail(err, R_COMBINING_MARKS, VALIDATE_MAX_NONSTARTERS, pos);

		cps[n++] = c;
		if (c > maxc)
			maxc = c;
	}
	cps[n] = 0;
	*outn = n;
	*maxcp = maxc;
	return true;
}

/*
 * canonical_spaces
 *		Step 4, white space, from src (0-terminated) into dst (room for as
 *		many code points as src has).  Returns the number stored.
 */
static int
canonical_spaces(const pg_wchar *src, pg_wchar *dst, bool longtext)
{
	int			n = 0;
	bool		pending_space = false;
	int			pending_lf = 0;
	bool		line_has_text = false;
	const pg_wchar *p;

	for (p = src; *p != 0; p++)
	{
		pg_wchar	c = *p;

		if (longtext && c == '\n')
		{
			/* Drop the spaces before it; count it only after some text. */
			pending_space = false;
			line_has_text = false;
			if (n > 0)
				pending_lf++;
			continue;
		}
		if (is_space_separator(c) || (longtext && c == '\t'))
		{
			/* Spaces count only between two non-space characters. */
			if (line_has_text)
				pending_space = true;
			continue;
		}
		if (pending_lf > 0)
		{
			dst[n++] = '\n';
			if (pending_lf > 1)
				dst[n++] = '\n';
			pending_lf = 0;
		}
		if (pending_space)
		{
			dst[n++] = ' ';
			pending_space = false;
		}
		dst[n++] = c;
		line_has_text = true;
	}
	return n;
}

/*
 * decode_references
 *		One decoding pass for step 6: copy in[0..n) to out, replacing
 *		numeric and named character references and %XX escapes of ASCII by
 *		the character they stand for.  src maps each element of in to its
 *		index in the canonical value; out_src gets the same for out (a
 *		decoded character maps to the start of its reference).  Returns the
 *		length of out (never more than n) and sets *changed.
 */
static int
decode_references(const pg_wchar *in, const int *src, int n,
				  pg_wchar *out, int *out_src, bool *changed)
{
	int			i = 0;
	int			m = 0;

	*changed = false;
	while (i < n)
	{
		pg_wchar	c = in[i];
		int			next = i + 1;	/* first element after what is decoded */
		pg_wchar	decoded = c;

		if (c == '&' && i + 1 < n && in[i + 1] == '#')
		{
			int			j = i + 2;
			bool		hex = false;
			int			start;
			pg_wchar	value = 0;

			if (j < n && (in[j] == 'x' || in[j] == 'X'))
			{
				hex = true;
				j++;
			}
			start = j;
			while (j < n && (hex ? hex_value(in[j]) >= 0 : is_ascii_digit(in[j])))
			{
				/* Saturate: anything past U+10FFFF is U+FFFD anyway. */
				if (value <= 0x10FFFF)
					value = value * (hex ? 16 : 10) + hex_value(in[j]);
				j++;
			}
			if (j > start)
			{
				if (j < n && in[j] == ';')
					j++;
				if (value == 0 || value > 0x10FFFF ||
					(value >= 0xD800 && value <= 0xDFFF))
					value = 0xFFFD;
				decoded = value;
				next = j;
			}
		}
		else if (c == '&')
		{
			size_t		k;

			for (k = 0; k < lengthof(named_refs); k++)
			{
				const char *name = named_refs[k].name;
				int			j = i + 1;

				while (*name != '\0' && j < n && in[j] == (pg_wchar) (unsigned char) *name)
				{
					name++;
					j++;
				}
				if (*name == '\0')
				{
					if (j < n && in[j] == ';')
						j++;
					else if (named_refs[k].semi)
						break;	/* not a reference; no other name matches */
					decoded = named_refs[k].cp;
					next = j;
					break;
				}
			}
		}
		else if (c == '%' && i + 2 < n &&
				 hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0)
		{
			int			v = hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]);

			if (v < 0x80)
			{
				decoded = (pg_wchar) v;
				next = i + 3;
			}
		}

		if (next != i + 1)
			*changed = true;
		out[m] = decoded;
		out_src[m] = src[i];
		m++;
		i = next;
	}
	return m;
}

/*
 * find_markup
 *		Step 6, markup rule, on s[0..n).  Returns the index of the "<" or -1.
 */
static int
find_markup(const pg_wchar *s, int n)
{
	int			i;

	for (i = 0; i + 1 < n; i++)
	{
		pg_wchar	f;

		if (fold_ascii(s[i]) != '<')
			continue;
		f = fold_ascii(s[i + 1]);
		if (is_ascii_lower(f) || f == '/' || f == '!' || f == '?')
			return i;
	}
	return -1;
}

/*
 * match_scheme
 *		Does s[i..n) start with scheme (lower case) and a colon, with
 *		ignorable characters allowed after each letter?  s[i] itself must
 *		be the first letter.  For "data", the colon must be followed by
 *		",", or by ";" or a MIME type "type/" with a comma somewhere after
 *		(last_comma: the index of the last comma of s, -1 for none).  A
 *		data: URL without one is no URL at all (the fetch standard fails
 *		it), so "data:" and a type in prose, such as "Tech data: width" and
 *		"cm/inch" on the next line, is text.
 */
static bool
match_scheme(const pg_wchar *s, int n, int i, const char *scheme, int last_comma)
{
	int			j = i;
	const char *p;

	for (p = scheme; *p != '\0'; p++)
	{
		if (p != scheme)
		{
			while (j < n && is_scheme_ignorable(s[j]))
				j++;
		}
		if (j >= n || fold_ascii(s[j]) != (pg_wchar) (unsigned char) *p)
			return false;
		j++;
	}
	while (j < n && is_scheme_ignorable(s[j]))
		j++;
	if (j >= n || fold_ascii(s[j]) != ':')
		return false;
	j++;

	if (strcmp(scheme, "data") == 0)
	{
		int			start;

		while (j < n && is_scheme_ignorable(s[j]))
			j++;
		if (j >= n)
			return false;
		if (s[j] == ',')
			return true;
		if (s[j] == ';')
			return last_comma > j;
		/*
		 * A MIME type: every top-level type name is ASCII letters.  The
		 * characters a URL parser drops (tab and newlines) may split it, as
		 * they may split the scheme: "data:te<TAB>xt/html" is read as
		 * "data:text/html"; so may the invisible ones.  A space does not
		 * (a browser keeps it there), so "data: read more/less" is text.
		 */
		start = j;
		for (;;)
		{
			while (j < n && is_invisible(s[j]))
				j++;
			if (j >= n || !is_ascii_alpha(s[j]))
				break;
			while (j < n && is_ascii_alpha(s[j]))
				j++;
		}
		return j > start && j < n && s[j] == '/' && is_ascii_alpha(s[start]) &&
			last_comma > j;
	}
	return true;
}

/*
 * find_active_content
 *		Step 6, scheme and event-handler rules, on s[0..n).  Returns the
 *		index where the offending word starts, or -1.
 */
static int
find_active_content(const pg_wchar *s, int n)
{
	int			i;
	int			last_comma = -1;

	/* once, so that many "data:" in one value cost one scan, not one each */
	for (i = n - 1; i >= 0; i--)
	{
		if (fold_ascii(s[i]) == ',')
		{
			last_comma = i;
			break;
		}
	}

	for (i = 0; i < n; i++)
	{
		pg_wchar	c = fold_ascii(s[i]);
		size_t		k;

		if (!is_ascii_lower(c) || !is_word_start(s, i))
			continue;

		for (k = 0; k < lengthof(active_schemes); k++)
		{
			if (c == (pg_wchar) (unsigned char) active_schemes[k][0] &&
				match_scheme(s, n, i, active_schemes[k], last_comma))
				return i;
		}

		/* on[a-z]{2,}\s*= */
		if (c == 'o' && i + 1 < n && fold_ascii(s[i + 1]) == 'n')
		{
			int			j = i + 2;

			while (j < n && is_ascii_lower(fold_ascii(s[j])))
				j++;
			if (j - (i + 2) >= 2)
			{
				while (j < n && is_scheme_ignorable(s[j]))
					j++;
				if (j < n && fold_ascii(s[j]) == '=')
					return i;
			}
		}
	}
	return -1;
}

/*
 * check_markup
 *		Step 6 on the canonical value s[0..n) (longtext: VT_LONGTEXT).
 */
static bool
check_markup(const pg_wchar *s, int n, bool longtext, ValidateError *err)
{
	pg_wchar   *cur;
	pg_wchar   *next;
	int		   *cur_src;
	int		   *next_src;
	int			m = n;
	int			pass;
	int			at;
	bool		ok = true;

	/* Room for at least one element, so that n == 0 needs no case. */
	cur = (pg_wchar *) palloc((n + 1) * sizeof(pg_wchar));
	next = (pg_wchar *) palloc((n + 1) * sizeof(pg_wchar));
	cur_src = (int *) palloc((n + 1) * sizeof(int));
	next_src = (int *) palloc((n + 1) * sizeof(int));

	memcpy(cur, s, n * sizeof(pg_wchar));
	for (at = 0; at < n; at++)
		cur_src[at] = at;

	for (pass = 0; pass < VALIDATE_DECODE_PASSES; pass++)
	{
		bool		changed;
		pg_wchar   *tmp;
		int		   *tmp_src;

		m = decode_references(cur, cur_src, m, next, next_src, &changed);
		tmp = cur;
		cur = next;
		next = tmp;
		tmp_src = cur_src;
		cur_src = next_src;
		next_src = tmp_src;
		if (!changed)
			break;
	}

	if ((at = find_markup(cur, m)) >= 0)
		ok = fail(err, R_MARKUP, -1, cur_src[at] + 1);
	else if ((at = find_active_content(cur, m)) >= 0)
		ok = fail(err, R_ACTIVE_CONTENT, -1, cur_src[at] + 1);
	else
	{
		/*
		 * A character that only decoding produced ("&#x202E;", "&#8203;",
		 * "%07") is held to step 2's rules too: a page that shows the value
		 * without escaping it, the case this step is for, would show the
		 * real override, invisible or control character.  A decoded
		 * character differs from the one at its source position (the "&"
		 * or "%" that starts its reference), except "&" from "&amp;".
		 */
		int			run = 0;

		for (at = 0; at < m && ok; at++)
		{
			pg_wchar	c = cur[at];
			ValidateCodeClass cls;
			bool		over;

			/*
			 * The rules of step 2 that depend on position too: decoded
			 * combining marks count in their run ("a" and 40 "&#x301;"
			 * draw as the stack the raw limit refuses; a run of the raw
			 * value alone never goes over, it passed step 2), and a decoded
			 * variation selector must follow a character that can take it.
			 */
			run = nonstarter_run(c, run, &over);
			if (over)
			{
				ok = fail(err, R_COMBINING_MARKS, VALIDATE_MAX_NONSTARTERS, cur_src[at] + 1);
				break;
			}
			if (c == s[cur_src[at]])
				continue;
			if (longtext && (c == '\t' || c == '\n' || c == '\r'))
				continue;
			cls = code_class(c);
			if (cls != CC_ALLOWED)
				ok = fail(err, code_class_reasons[cls], -1, cur_src[at] + 1);
			else if (is_variation_selector(c) &&
					 (at == 0 || is_variation_selector(cur[at - 1]) || !vs_fits(cur[at - 1], c)))
				ok = fail(err, R_ZERO_WIDTH, -1, cur_src[at] + 1);
		}
	}

	pfree(cur);
	pfree(next);
	pfree(cur_src);
	pfree(next_src);
	return ok;
}

/* bsearch comparator for iso4217_codes. */
static int
currency_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 3);
}

/*
 * check_format
 *		Step 7: the allow-list of VT_SKU, VT_SLUG, VT_CURRENCY and VT_TOKEN
 *		on the canonical (already case-mapped) value s[0..n).
 */
static bool
check_format(const pg_wchar *s, int n, ValidateTextKind kind,
			 ValidateError *err)
{
	int			i;

	switch (kind)
	{
		case VT_SKU:
			for (i = 0; i < n; i++)
			{
				pg_wchar	c = s[i];

				if (is_ascii_upper(c) || is_ascii_digit(c))
					continue;
				if (i > 0 && (c == '.' || c == '_' || c == '-'))
					continue;
				return fail(err, R_INVALID_FORMAT, -1, i + 1);
			}
			break;

		case VT_SLUG:
			for (i = 0; i < n; i++)
			{
				pg_wchar	c = s[i];

				if (is_ascii_lower(c) || is_ascii_digit(c))
					continue;
				/* A hyphen only between two [a-z0-9]. */
				if (c == '-' && i > 0 && s[i - 1] != '-' && i + 1 < n)
					continue;
				return fail(err, R_INVALID_FORMAT, -1, i + 1);
			}
			break;

		case VT_CURRENCY:
			{
				char		code[4];

				for (i = 0; i < n; i++)
				{
					if (!is_ascii_upper(s[i]))
						return fail(err, R_INVALID_FORMAT, -1, i + 1);
				}
				if (n != 3)
					return fail(err, R_INVALID_FORMAT, -1, -1);
				code[0] = (char) s[0];
				code[1] = (char) s[1];
				code[2] = (char) s[2];
				code[3] = '\0';
				if (bsearch(code, iso4217_codes, lengthof(iso4217_codes),
							sizeof(iso4217_codes[0]), currency_cmp) == NULL)
					return fail(err, R_UNKNOWN_CURRENCY, -1, -1);
			}
			break;

		case VT_TOKEN:
			for (i = 0; i < n; i++)
			{
				if (s[i] < 0x21 || s[i] > 0x7E)
					return fail(err, R_INVALID_FORMAT, -1, i + 1);
			}
			break;

		case VT_PLAIN:
		case VT_LONGTEXT:
			break;
	}
	return true;
}

/*
 * ValidateText
 *	  See validate.h and the file header.  The caller's memory context gets
 *	  the result; scratch arrays are freed before returning.
 */
bool
ValidateText(const char *in, size_t len, ValidateTextKind kind,
			 int min_len, int max_len,
			 char **out, size_t *outlen, ValidateError *err)
{
	const unsigned char *bytes = (const unsigned char *) in;
	size_t		bound;
	int			ncp;
	int			n;
	pg_wchar	maxcp;
	pg_wchar   *cps;
	pg_wchar   *nfc;
	pg_wchar   *canon;
	char	   *result;
	unsigned char *w;
	int			i;
	bool		ok = true;

	/* Step 1: size bound first, then UTF-8. */
	bound = VALIDATE_INPUT_BOUND(max_len);
	if (bound > VALIDATE_MAX_INPUT_BYTES)
		bound = VALIDATE_MAX_INPUT_BYTES;
	if (len > bound)
		return fail(err, R_TOO_LONG, max_len, -1);
	if (!check_utf8(bytes, len, &ncp, err))
		return false;

	/* Step 2. */
	cps = (pg_wchar *) palloc((ncp + 1) * sizeof(pg_wchar));
	if (!decode_and_screen(bytes, len, kind, cps, &n, &maxcp, err))
	{
		pfree(cps);
		return false;
	}

	/* Step 3: below U+0300 every string is already NFC. */
	nfc = cps;
	if (maxcp >= 0x0300)
	{
		pg_wchar   *normalized = unicode_normalize(UNICODE_NFC, cps);

		pfree(cps);
		if (normalized == NULL)
			return fail(err, R_OUT_OF_MEMORY, -1, -1);	/* frontend only */
#ifdef FRONTEND
		/* The frontend unicode_normalize uses malloc; copy to palloc. */
		for (n = 0; normalized[n] != 0; n++)
			;
		nfc = (pg_wchar *) palloc((n + 1) * sizeof(pg_wchar));
		memcpy(nfc, normalized, (n + 1) * sizeof(pg_wchar));
		free(normalized);
#else
		nfc = normalized;
		for (n = 0; nfc[n] != 0; n++)
			;
#endif
	}

	/* Step 4: white space, then case. */
	canon = (pg_wchar *) palloc((n + 1) * sizeof(pg_wchar));
	n = canonical_spaces(nfc, canon, kind == VT_LONGTEXT);
	pfree(nfc);
	for (i = 0; i < n; i++)
	{
		if ((kind == VT_SKU || kind == VT_CURRENCY) && is_ascii_lower(canon[i]))
			canon[i] -= 'a' - 'A';
		else if (kind == VT_SLUG && is_ascii_upper(canon[i]))
			canon[i] += 'a' - 'A';
	}

	/* Variation selectors (U+180B is the lowest), then step 5: length. */
	if (maxcp >= 0x180B && !check_vs_bases(canon, n, err))
		ok = false;
	else if (n < min_len)
		ok = fail(err, n == 0 ? R_EMPTY : R_TOO_SHORT, min_len, -1);
	else if (n > max_len)
		ok = fail(err, R_TOO_LONG, max_len, -1);
	/* Steps 6 and 7. */
	else if (kind == VT_PLAIN || kind == VT_LONGTEXT)
		ok = check_markup(canon, n, kind == VT_LONGTEXT, err);
	else
	{
		ok = check_format(canon, n, kind, err);
		/* a token is free printable ASCII: it gets the markup rules too */
		if (ok && kind == VT_TOKEN)
			ok = check_markup(canon, n, false, err);
	}

	if (!ok)
	{
		pfree(canon);
		return false;
	}

	result = (char *) palloc((size_t) n * 4 + 1);
	w = (unsigned char *) result;
	for (i = 0; i < n; i++)
	{
		unicode_to_utf8(canon[i], w);
		w += utf8_length(canon[i]);
	}
	*w = '\0';
	pfree(canon);

	*out = result;
	*outlen = (size_t) ((char *) w - result);
	return true;
}

/*
 * ValidateAttributeKey
 *	  See validate.h.  Reasons: "empty", "too_long" (limit max_len, in
 *	  bytes) and "invalid_format" with the code point position of the first
 *	  byte that breaks ^[a-z][a-z0-9_]*$.
 */
bool
ValidateAttributeKey(const char *key, size_t len, int max_len,
					 ValidateError *err)
{
	const unsigned char *k = (const unsigned char *) key;
	size_t		i;
	int			pos = 0;

	if (len == 0)
		return fail(err, R_EMPTY, -1, -1);
	if (len > (size_t) (max_len > 0 ? max_len : 0))
		return fail(err, R_TOO_LONG, max_len, -1);

	for (i = 0; i < len; i++)
	{
		unsigned char c = k[i];

		/* Count code points: every byte that is not a continuation. */
		if ((c & 0xC0) != 0x80)
			pos++;
		if (is_ascii_lower(c) || (i > 0 && (is_ascii_digit(c) || c == '_')))
			continue;
		return fail(err, R_INVALID_FORMAT, -1, pos > 0 ? pos : 1);
	}
	return true;
}
