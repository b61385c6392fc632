-- pgTAP: canonicalisation and validation of untrusted input (src/validate.c),
-- through catalog.canonical_text(kind, value, min_len, max_len) and
-- catalog.check_price(value).  For every rule: an accepted value with its
-- exact canonical form, and a refused one with its exact SQLSTATE; the
-- JSON DETAIL is checked for a representative set.
-- Assumes the extensions pgtap and catalog exist.  Non-ASCII is written
-- with U&'' escapes.
BEGIN;
SELECT plan(334);

-- SQLSTATE and DETAIL of a refusal, or 'accepted'.
CREATE FUNCTION pg_temp.refusal(kind text, value text,
                                min_len integer DEFAULT 1,
                                max_len integer DEFAULT 255)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    det text;
BEGIN
    PERFORM catalog.canonical_text(kind, value, min_len, max_len);
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || ' ' || det;
END;
$$;

CREATE FUNCTION pg_temp.price_refusal(value numeric)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    det text;
BEGIN
    PERFORM catalog.check_price(value);
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || ' ' || det;
END;
$$;

-------------------------------------------------------------------------------
-- Input size and encoding
-------------------------------------------------------------------------------
SELECT is(catalog.canonical_text('plain', repeat('x', 255)), repeat('x', 255),
          'plain: 255 code points is the maximum');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', repeat('x', 256))$$,
                 '22001', NULL, 'plain: 256 code points is too long (22001)');
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'too_long DETAIL carries the maximum');
SELECT is(pg_temp.refusal('plain', repeat('<script>', 131072)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'a megabyte is too_long before any other check');
SELECT is(catalog.canonical_text('plain', repeat(' ', 1000) || 'x' || repeat(' ', 1000)), 'x',
          'white space beyond max_len still fits within the byte bound');
SELECT is(catalog.canonical_text('plain', repeat(' ', 4083) || 'x'), 'x',
          '12 * max_len + 1024 bytes (4084 for 255) is within the byte bound');
SELECT is(pg_temp.refusal('plain', repeat(' ', 4084) || 'x'),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'more than 12 * max_len + 1024 bytes is too_long even if mostly spaces');
-- Decomposed input (macOS sends Korean as jamo: 9 bytes a syllable) that
-- composes within the limit is accepted, at the limit too.
SELECT is(catalog.canonical_text('plain', repeat(U&'\1100\1161\11A8', 255)),
          repeat(U&'\AC01', 255),
          '255 decomposed Hangul syllables (2295 bytes) compose to 255 code points: accepted');
SELECT is(pg_temp.refusal('plain', repeat(U&'\1100\1161\11A8', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          '256 decomposed Hangul syllables are too_long, counted after composing');
SELECT is(length(catalog.canonical_text('plain', repeat(U&'\+020000', 255))), 255,
          'length counts code points, not bytes (255 four-byte CJK ideographs)');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', convert_from('\xc328'::bytea, 'UTF8'))$$,
                 '22021', NULL, 'invalid UTF-8 is refused with 22021 (by the server first)');

-------------------------------------------------------------------------------
-- Forbidden code points
-------------------------------------------------------------------------------
SELECT is(catalog.canonical_text('plain', 'plain text, 100% fine!'), 'plain text, 100% fine!',
          'printable ASCII is accepted unchanged');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', E'a\tb')$$,
                 '22023', NULL, 'plain: TAB is a control character');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', E'a\nb')$$,
                 '22023', NULL, 'plain: LF is a control character');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', E'a\rb')$$,
                 '22023', NULL, 'plain: CR is a control character');
SELECT is(pg_temp.refusal('plain', E'ab\x01'),
          '22023 {"field":"plain","reason":"control_character","position":3}',
          'C0 control: reason and 1-based position');
SELECT is(pg_temp.refusal('plain', U&'x\007F'),
          '22023 {"field":"plain","reason":"control_character","position":2}',
          'DEL is a control character');
SELECT is(pg_temp.refusal('plain', U&'x\0085'),
          '22023 {"field":"plain","reason":"control_character","position":2}',
          'C1 NEL is a control character');
SELECT is(pg_temp.refusal('plain', U&'\009Fx'),
          '22023 {"field":"plain","reason":"control_character","position":1}',
          'C1 U+009F is a control character');
SELECT is(pg_temp.refusal('plain', U&'a\2028b'),
          '22023 {"field":"plain","reason":"control_character","position":2}',
          'LINE SEPARATOR is a control character');
SELECT throws_ok($$SELECT catalog.canonical_text('longtext', U&'a\2029b')$$,
                 '22023', NULL, 'longtext: PARAGRAPH SEPARATOR is a control character');
SELECT throws_ok($$SELECT catalog.canonical_text('longtext', E'a\x0Bb')$$,
                 '22023', NULL, 'longtext: vertical tab is a control character');
SELECT is(pg_temp.refusal('longtext', E'a\x0Cb'),
          '22023 {"field":"longtext","reason":"control_character","position":2}',
          'longtext: form feed is a control character');

SELECT is(catalog.canonical_text('plain', U&'\05E9\05DC\05D5\05DD \0645\0631\062D\0628\0627'),
          U&'\05E9\05DC\05D5\05DD \0645\0631\062D\0628\0627',
          'right-to-left text without controls is accepted');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', U&'invoice\202Etxt.exe')$$,
                 '22023', NULL, 'RIGHT-TO-LEFT OVERRIDE is refused');
SELECT is(pg_temp.refusal('plain', U&'invoice\202Etxt.exe'),
          '22023 {"field":"plain","reason":"bidi_control","position":8}',
          'bidi override: reason and position');
SELECT is(pg_temp.refusal('plain', U&'a\202Ab'),
          '22023 {"field":"plain","reason":"bidi_control","position":2}',
          'LEFT-TO-RIGHT EMBEDDING is a bidi control');
SELECT is(pg_temp.refusal('plain', U&'a\2067b'),
          '22023 {"field":"plain","reason":"bidi_control","position":2}',
          'RIGHT-TO-LEFT ISOLATE is a bidi control');
SELECT is(pg_temp.refusal('plain', U&'a\200Fb'),
          '22023 {"field":"plain","reason":"bidi_control","position":2}',
          'RIGHT-TO-LEFT MARK is a bidi control');
SELECT is(pg_temp.refusal('plain', U&'a\061Cb'),
          '22023 {"field":"plain","reason":"bidi_control","position":2}',
          'ARABIC LETTER MARK is a bidi control');

SELECT is(catalog.canonical_text('plain', U&'A \2229\FE00 B'), U&'A \2229\FE00 B',
          'a standardized variation sequence (VS1) is accepted');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', U&'pay\200Bpal')$$,
                 '22023', NULL, 'ZERO WIDTH SPACE is refused');
SELECT is(pg_temp.refusal('plain', U&'pay\200Bpal'),
          '22023 {"field":"plain","reason":"zero_width","position":4}',
          'zero width space: reason and position');
SELECT is(pg_temp.refusal('plain', U&'a\200Cb'),
          '22023 {"field":"plain","reason":"zero_width","position":2}',
          'ZERO WIDTH NON-JOINER is refused');
SELECT is(pg_temp.refusal('plain', U&'a\200Db'),
          '22023 {"field":"plain","reason":"zero_width","position":2}',
          'ZERO WIDTH JOINER is refused');
SELECT is(pg_temp.refusal('plain', U&'\FEFFabc'),
          '22023 {"field":"plain","reason":"zero_width","position":1}',
          'BYTE ORDER MARK is refused');
SELECT is(pg_temp.refusal('plain', U&'soft\00ADhyphen'),
          '22023 {"field":"plain","reason":"zero_width","position":5}',
          'SOFT HYPHEN is refused');
SELECT is(pg_temp.refusal('plain', U&'a\2060b'),
          '22023 {"field":"plain","reason":"zero_width","position":2}',
          'WORD JOINER is refused');
SELECT is(pg_temp.refusal('plain', U&'a\2062b'),
          '22023 {"field":"plain","reason":"zero_width","position":2}',
          'INVISIBLE TIMES is refused');
SELECT is(pg_temp.refusal('plain', U&'a\180Eb'),
          '22023 {"field":"plain","reason":"zero_width","position":2}',
          'MONGOLIAN VOWEL SEPARATOR is refused');
SELECT is(pg_temp.refusal('plain', U&'\3164'),
          '22023 {"field":"plain","reason":"zero_width","position":1}',
          'HANGUL FILLER (a blank-looking name) is refused');
SELECT is(pg_temp.refusal('plain', U&'ab\+0E0041'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'tag characters are refused');
SELECT is(pg_temp.refusal('plain', U&'ab\+0E0FFF'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'the rest of the default-ignorable tag block is refused');
SELECT is(pg_temp.refusal('plain', U&'ab\FFF0'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'reserved default-ignorable U+FFF0 is refused');
-- Variation selectors: one directly after a character, never first, never
-- in a run, never after a space (a run of them draws as nothing).
SELECT is(catalog.canonical_text('plain', U&'Route \8FBB\FE00'), U&'Route \8FBB\FE00',
          'one variation selector after an ideograph (a standardized variation sequence) is accepted');
SELECT is(catalog.canonical_text('plain', U&'\845B\+0E0100 ware'), U&'\845B\+0E0100 ware',
          'an ideographic variation selector after an ideograph is accepted');
SELECT is(pg_temp.refusal('plain', U&'\845B\+0E0100\+0E0101 ware'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'a run of variation selectors is refused at the second');
SELECT is(pg_temp.refusal('plain', U&'\FE0Fab'),
          '22023 {"field":"plain","reason":"zero_width","position":1}',
          'a variation selector first is refused');
SELECT is(pg_temp.refusal('plain', U&'a \FE0Fb'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'a variation selector after a space is refused');
SELECT is(pg_temp.refusal('plain', U&'\1820\180B\180C'),
          '22023 {"field":"plain","reason":"zero_width","position":3}',
          'two Mongolian free variation selectors in a row are refused');
-- ... and only directly after a character that can take one (never after
-- a letter of a script without variation sequences, where it draws as
-- nothing and makes a look-alike, nor after a mark), judged on the canonical value (after NFC
-- and white space), so that the value passes again as it is.
SELECT is(catalog.canonical_text('plain', v), v, d)
FROM (VALUES
    (U&'Size 0\FE00', 'the slashed zero (U+0030 U+FE00) is accepted'),
    (U&'Key #\FE0F\20E3 and 1\FE0E', 'an emoji or text presentation selector after a keycap base is accepted'),
    (U&'\1820\180B', 'a Mongolian free variation selector after a Mongolian letter is accepted'),
    (U&'\FA11\+0E0100', 'an ideographic selector after a unified ideograph of the compatibility block is accepted'),
    (U&'\00A9\FE0F 2026 Acme', 'an emoji selector after the copyright sign is accepted'),
    (U&'\1000\FE00', 'a standardized selector after a Myanmar letter is accepted'),
    (U&'\A856\FE00', 'a standardized selector after a Phags-pa letter is accepted'),
    (U&'\+01D49C\FE00 scale', 'a standardized selector after a mathematical script capital is accepted'),
    (U&'Globe \+01F30D\FE0F', 'an emoji selector after an emoji is accepted'),
    (U&'\6F22\3001\FE00', 'a standardized selector after an ideographic comma is accepted')
) AS t(v, d);
SELECT is(pg_temp.refusal(k, v), format('22023 {"field":"%s","reason":"zero_width","position":%s}', k, p),
          'a variation selector is refused: ' || d)
FROM (VALUES
    ('plain', U&'W\FE00idget', 2, 'after an ASCII letter'),
    ('plain', U&'Caf\00E9\FE0F', 5, 'after a Latin-1 letter'),
    ('plain', U&'Lamp Ma\1EF9\FE0E', 9, 'a presentation selector after a Latin letter'),
    ('plain', U&'Size 1\FE00', 7, 'U+FE00 after a digit other than 0'),
    ('plain', U&'Socks\+0E0100', 6, 'an ideographic selector after a Latin letter'),
    ('plain', U&'wo\180Bl', 3, 'a Mongolian free variation selector after a Latin letter'),
    ('plain', U&'\1810\180B', 2, 'a Mongolian free variation selector after a Mongolian digit'),
    ('plain', U&'\1802\180B', 2, 'a Mongolian free variation selector after Mongolian punctuation'),
    ('plain', U&'Lamp \0261\FE00', 7, 'after an IPA letter (script g)'),
    ('plain', U&'\041C\FE00\043E\043B', 2, 'after a Cyrillic letter'),
    ('plain', U&'\03B1\FE0F', 2, 'after a Greek letter'),
    ('plain', U&'\FB01\FE00', 2, 'after a Latin ligature'),
    ('plain', U&'Set \2162\FE00', 6, 'after a Roman numeral'),
    ('plain', U&'Cafe\0301\FE0F', 5, 'after a letter and an accent that compose (position in the canonical value)'),
    ('plain', U&'\212A\FE0F', 2, 'after the Kelvin sign, whose NFC form is K'),
    ('plain', U&'Ka\0331\FE0F', 4, 'after a combining mark'),
    ('plain', U&'x\00A0\0301\FE0F', 4, 'after a mark on a no-break space, a space once canonical'),
    ('longtext', U&'abc\000A\00A0\0301\FE0F', 6, 'after a mark on a no-break space that step 4 drops at a line start'),
    ('plain', U&' \0301\FE0F', 2, 'after a mark that step 4 leaves first'),
    ('plain', U&'1\FE0F\20E3\FE0F', 4, 'a second selector after the enclosing keycap (combining class 0)'),
    ('plain', U&'\0628\FE00\064A\062A', 2, 'after an Arabic letter'),
    ('plain', U&'\05D0\FE0F', 2, 'after a Hebrew letter'),
    ('plain', U&'\0531\FE00', 2, 'after an Armenian letter'),
    ('plain', U&'\0915\FE00', 2, 'after a Devanagari letter'),
    ('plain', U&'\0E01\FE0E', 2, 'after a Thai letter'),
    ('plain', U&'\AC00\FE00', 2, 'after a Hangul syllable'),
    ('plain', U&'\3042\FE00', 2, 'after a kana'),
    ('plain', U&'\3005\FE00', 2, 'after the ideographic iteration mark'),
    ('plain', U&'20\00B0\FE00', 4, 'after a Latin-1 sign that starts no sequence'),
    ('plain', U&'\FF11\FE00', 2, 'after a fullwidth digit other than zero'),
    ('plain', U&'\2132\FE00', 2, 'after a Latin letter of the letterlike block (turned capital F)'),
    ('plain', U&'\+013000\+013430\FE00', 3, 'after an Egyptian hieroglyph format control')
) AS t(k, v, p, d);

SELECT is(catalog.canonical_text('plain', U&'\FDF0'), U&'\FDF0',
          'an Arabic ligature next to the noncharacter block is accepted');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', U&'x\FDD0')$$,
                 '22023', NULL, 'U+FDD0 noncharacter is refused');
SELECT is(pg_temp.refusal('plain', U&'x\FDEF'),
          '22023 {"field":"plain","reason":"noncharacter","position":2}',
          'U+FDEF is a noncharacter');
SELECT is(pg_temp.refusal('plain', U&'\FFFE'),
          '22023 {"field":"plain","reason":"noncharacter","position":1}',
          'U+FFFE is a noncharacter');
SELECT is(pg_temp.refusal('plain', U&'\+02FFFF'),
          '22023 {"field":"plain","reason":"noncharacter","position":1}',
          'U+2FFFF is a noncharacter');
SELECT is(pg_temp.refusal('plain', U&'\+10FFFF'),
          '22023 {"field":"plain","reason":"noncharacter","position":1}',
          'U+10FFFF is a noncharacter, not private use');

SELECT is(catalog.canonical_text('plain', U&'\F900'), U&'\8C48',
          'U+F900 (just past private use) is accepted and NFC maps it to U+8C48');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', U&'\E000')$$,
                 '22023', NULL, 'U+E000 private use is refused');
SELECT is(pg_temp.refusal('plain', U&'ab\F8FF'),
          '22023 {"field":"plain","reason":"private_use","position":3}',
          'U+F8FF is private use');
SELECT is(pg_temp.refusal('plain', U&'\+0F0000'),
          '22023 {"field":"plain","reason":"private_use","position":1}',
          'plane 15 is private use');
SELECT is(pg_temp.refusal('plain', U&'\+10FFFD'),
          '22023 {"field":"plain","reason":"private_use","position":1}',
          'plane 16 is private use');

SELECT is(catalog.canonical_text('plain', 'a' || repeat(U&'\0301', 30)),
          U&'\00E1' || repeat(U&'\0301', 29),
          '30 combining marks in a row are accepted');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', 'a' || repeat(U&'\0301', 31))$$,
                 '22023', NULL, '31 combining marks in a row are refused');
SELECT is(pg_temp.refusal('longtext', 'x' || repeat(U&'\0301\0316', 2500), 1, 5000),
          '22023 {"field":"longtext","reason":"combining_marks","max":30,"position":32}',
          'combining_marks: limit and position (bounds the work of NFC)');
SELECT is(pg_temp.refusal('plain', 'x' || repeat(U&'\0F73', 16)),
          '22023 {"field":"plain","reason":"combining_marks","max":30,"position":17}',
          'combining marks are counted after decomposition (U+0F73 is two)');

-------------------------------------------------------------------------------
-- NFC and white space
-------------------------------------------------------------------------------
SELECT is(catalog.canonical_text('plain', U&'Cafe\0301'), U&'Caf\00E9',
          'NFC: e + COMBINING ACUTE becomes U+00E9');
SELECT is(catalog.canonical_text('plain', U&'e\0302\0301', 1, 1), U&'\1EBF',
          'NFC: three code points become one, and length is counted after NFC');
SELECT is(catalog.canonical_text('plain', U&'\212B'), U&'\00C5',
          'NFC: ANGSTROM SIGN becomes U+00C5');
SELECT is(catalog.canonical_text('plain', U&'\1100\1161\11A8'), U&'\AC01',
          'NFC: Hangul jamo compose');
SELECT is(catalog.canonical_text('plain', U&'a\0301\0316'), U&'\00E1\0316',
          'NFC: canonical reordering, then composition');
SELECT is(catalog.canonical_text('plain', U&'\FF21\FF22'), U&'\FF21\FF22',
          'NFC is not NFKC: fullwidth letters stay');
SELECT is(catalog.canonical_text('plain', '  Hello    World  '), 'Hello World',
          'spaces trimmed and collapsed');
SELECT is(catalog.canonical_text('plain', U&'a\00A0b\2003c\3000d\202Fe\205Ff\1680g\2000h\200Ai'),
          'a b c d e f g h i', 'every Unicode space separator becomes U+0020');
SELECT is(catalog.canonical_text('plain', U&'\00A0 x \3000'), 'x',
          'Unicode spaces are trimmed at both ends');
SELECT is(catalog.canonical_text('plain', '', 0), '',
          'empty value accepted when min_len is 0');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', '   ')$$,
                 '22023', NULL, 'only spaces is empty');
SELECT is(pg_temp.refusal('plain', U&' \00A0 '),
          '22023 {"field":"plain","reason":"empty","min":1}', 'empty: reason and minimum');
SELECT is(catalog.canonical_text('plain', 'abc', 3), 'abc', 'min_len 3 accepts three');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', 'ab', 3)$$,
                 '22023', NULL, 'shorter than min_len is refused');
SELECT is(pg_temp.refusal('plain', ' a  b ', 4),
          '22023 {"field":"plain","reason":"too_short","min":4}',
          'too_short is measured after collapsing');

SELECT is(catalog.canonical_text('longtext', E'line one\nline two'), E'line one\nline two',
          'longtext: LF is kept');
SELECT is(catalog.canonical_text('longtext', E'a\tb'), 'a b',
          'longtext: TAB becomes a space');
SELECT is(catalog.canonical_text('longtext', E'a\r\nb\rc'), E'a\nb\nc',
          'longtext: CR LF and lone CR become LF');
SELECT is(catalog.canonical_text('longtext', E'a\n\n\n\nb'), E'a\n\nb',
          'longtext: at most one blank line');
SELECT is(catalog.canonical_text('longtext', E'\n\n  a  \t\n  b  \n\n'), E'a\nb',
          'longtext: lines trimmed, blank lines at the ends removed');
SELECT is(catalog.canonical_text('longtext', E'a \n \n \n b'), E'a\n\nb',
          'longtext: lines of spaces count as blank');

-------------------------------------------------------------------------------
-- Forbidden characters written as references: a page that shows the value
-- unescaped would show the real character, so the decoded view of step 6
-- is held to step 2's rules (position: the "&" or "%" of the reference)
-------------------------------------------------------------------------------
SELECT is(pg_temp.refusal(kind, v, 0, 5000),
          format('22023 {"field":"%s","reason":"%s","position":%s}', kind, reason, pos), label)
FROM (VALUES
    ('plain', 'Invoice &#x202E;fdp.exe', 'bidi_control', 9, 'an encoded right-to-left override is bidi_control'),
    ('plain', 'a&#x2066;b', 'bidi_control', 2, 'an encoded bidi isolate is bidi_control'),
    ('plain', 'x&#8203;y', 'zero_width', 2, 'an encoded zero-width space is zero_width'),
    ('plain', '&#xFEFF;bom', 'zero_width', 1, 'an encoded byte order mark is zero_width'),
    ('plain', 'bell&#7;', 'control_character', 5, 'an encoded control character is control_character'),
    ('plain', 'line%0Abreak', 'control_character', 5, 'a percent-encoded line feed in plain text is control_character'),
    ('plain', 'pua&#xE000;', 'private_use', 4, 'an encoded private-use character is private_use'),
    ('plain', 'x&amp;#x202E;y', 'bidi_control', 2, 'a doubly encoded override is decoded and refused'),
    ('longtext', 'rlo&#x202e;x', 'bidi_control', 4, 'longtext: an encoded override is refused too'),
    ('token', 'key&#x202E;1', 'bidi_control', 4, 'token: an encoded override is refused too'),
    ('plain', 'abc&rlm;def', 'bidi_control', 4, 'a named right-to-left mark (&rlm;) is bidi_control'),
    ('token', 'key&lrm;1', 'bidi_control', 4, 'token: a named left-to-right mark (&lrm;) is bidi_control'),
    ('plain', 'ab&zwj;c', 'zero_width', 3, 'a named zero-width joiner (&zwj;) is zero_width'),
    ('plain', 'ab&zwnj;c', 'zero_width', 3, 'a named zero-width non-joiner (&zwnj;) is zero_width'),
    ('plain', 'ab&ZeroWidthSpace;c', 'zero_width', 3, '&ZeroWidthSpace; is zero_width'),
    ('plain', 'ab&NegativeThinSpace;c', 'zero_width', 3, '&NegativeThinSpace; (a zero-width space) is zero_width'),
    ('plain', 'ab&NoBreak;c', 'zero_width', 3, '&NoBreak; (the word joiner) is zero_width'),
    ('plain', 'x&it;y', 'zero_width', 2, '&it; (invisible times) is zero_width'),
    ('longtext', 'ab&shyc', 'zero_width', 3, 'the legacy &shy, without its semicolon as HTML reads it, is zero_width'),
    ('plain', 'a&#xFE0F;', 'zero_width', 2, 'a decoded variation selector after a Latin letter is zero_width'),
    ('plain', '&#xFE0F;x', 'zero_width', 1, 'a decoded variation selector first is zero_width'),
    ('plain', U&'\2764&#xFE0F;&#xFE0F;', 'zero_width', 10, 'a second decoded variation selector in a row is zero_width'))
    AS t(kind, v, reason, pos, label);
SELECT is(pg_temp.refusal('plain', 'a' || repeat('&#x301;', 40), 0, 5000),
          '22023 {"field":"plain","reason":"combining_marks","max":30,"position":212}',
          'decoded combining marks count in their run: the 31st is refused, at its reference');
SELECT is(pg_temp.refusal('longtext', 'a' || repeat('&tdot;', 35), 0, 5000),
          '22023 {"field":"longtext","reason":"combining_marks","max":30,"position":182}',
          'combining marks written as named references (&tdot;) count in their run too');
SELECT is(pg_temp.refusal('plain', 'a' || repeat(U&'\0301', 20) || repeat('&#x301;', 11), 0, 5000),
          '22023 {"field":"plain","reason":"combining_marks","max":30,"position":91}',
          'written and decoded combining marks count in one run (position in the canonical value, where a + U+0301 is one character)');
SELECT is(catalog.canonical_text('plain', v), v, label)
FROM (VALUES
    ('AT&italic', 'a short name that needs its semicolon is no reference without one ("AT&italic")'),
    ('Rock&it', '"&it" at the end without a semicolon is no reference'),
    (U&'\2764&#xFE0F;', 'a decoded emoji variation selector after a heart is accepted'),
    ('a' || repeat('&#x301;', 30), '30 decoded combining marks are accepted'))
    AS t(v, label);
SELECT is(catalog.canonical_text('longtext', 'tab&Tab;and&#10;line%0D%0Afeed'), 'tab&Tab;and&#10;line%0D%0Afeed',
          'longtext: encoded tab, line feed and carriage return are allowed, as written ones are, and stored as sent');
SELECT is(catalog.canonical_text('plain', U&'caf&#233; &amp; cr\00E8me&#160;br&#xFBB2;'),
          U&'caf&#233; &amp; cr\00E8me&#160;br&#xFBB2;',
          'encoded letters, ampersands and spaces are accepted and stored as sent');

-------------------------------------------------------------------------------
-- Markup
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT catalog.canonical_text('plain', '<script>alert(1)</script>')$$,
                 '22023', NULL, 'a script tag is markup');
SELECT is(pg_temp.refusal('plain', 'Hi <b>there</b>'),
          '22023 {"field":"plain","reason":"markup","position":4}', 'markup: reason and position');
SELECT is(pg_temp.refusal('plain', 'x</p>'),
          '22023 {"field":"plain","reason":"markup","position":2}', 'an end tag is markup');
SELECT is(pg_temp.refusal('plain', '<!-- c -->'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'a comment is markup');
SELECT is(pg_temp.refusal('plain', '<!DOCTYPE html>'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'a doctype is markup');
SELECT is(pg_temp.refusal('plain', '<?php echo 1 ?>'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'a processing instruction is markup');
SELECT is(pg_temp.refusal('plain', 'if a<b then'),
          '22023 {"field":"plain","reason":"markup","position":5}', '"a<b" is a tag start (documented false positive)');
SELECT throws_ok($$SELECT catalog.canonical_text('longtext', E'ok\n<iframe src=x>')$$,
                 '22023', NULL, 'longtext: markup is refused');
SELECT is(pg_temp.refusal('plain', '&lt;img src=x'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&lt; + letter is markup');
SELECT is(pg_temp.refusal('plain', '&LT;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&LT; + letter is markup');
SELECT is(pg_temp.refusal('plain', '&ltimg'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&lt without semicolon is markup');
SELECT is(pg_temp.refusal('plain', '&#60;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&#60; is markup');
SELECT is(pg_temp.refusal('plain', '&#060;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&#060; is markup');
SELECT is(pg_temp.refusal('plain', '&#0000060img'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'zero-padded &#60 without semicolon is markup');
SELECT is(pg_temp.refusal('plain', '&#x3c;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&#x3c; is markup');
SELECT is(pg_temp.refusal('plain', '&#X3C;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', '&#X3C; is markup');
SELECT is(pg_temp.refusal('plain', 'a %3cimg'),
          '22023 {"field":"plain","reason":"markup","position":3}', '%3c is markup');
SELECT is(pg_temp.refusal('plain', '%3Cimg'),
          '22023 {"field":"plain","reason":"markup","position":1}', '%3C is markup');
SELECT is(pg_temp.refusal('plain', '&amp;lt;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'double-encoded &amp;lt; is markup');
SELECT is(pg_temp.refusal('plain', '%26lt;img'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'percent-encoded &lt; is markup');
SELECT is(pg_temp.refusal('plain', '<&#115;cript'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'an encoded tag letter is markup');
SELECT is(pg_temp.refusal('plain', '&lt;/p'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'an encoded end tag is markup');
SELECT is(pg_temp.refusal('plain', '&lt;&sol;p'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'an encoded < and / is markup');
SELECT is(pg_temp.refusal('plain', U&'\FF1Cscript'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'FULLWIDTH LESS-THAN + letter is markup');
SELECT is(pg_temp.refusal('plain', U&'\FE64script'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'SMALL LESS-THAN + letter is markup');
SELECT is(pg_temp.refusal('plain', U&'\FF1C\FF53cript'),
          '22023 {"field":"plain","reason":"markup","position":1}', 'fullwidth < + fullwidth letter is markup');

SELECT is(catalog.canonical_text('plain', 'Salt & Pepper'), 'Salt & Pepper', 'accepted: Salt & Pepper');
SELECT is(catalog.canonical_text('plain', 'Size < 10'), 'Size < 10', 'accepted: Size < 10');
SELECT is(catalog.canonical_text('plain', 'I <3 cats'), 'I <3 cats', 'accepted: I <3 cats');
SELECT is(catalog.canonical_text('plain', 'Salon = stylish'), 'Salon = stylish', 'accepted: Salon = stylish');
SELECT is(catalog.canonical_text('plain', '5 > 3'), '5 > 3', 'accepted: 5 > 3');
SELECT is(catalog.canonical_text('plain', 'AT&T'), 'AT&T', 'accepted: AT&T');
SELECT is(catalog.canonical_text('plain', '100% cotton'), '100% cotton', 'accepted: 100% cotton');
SELECT is(catalog.canonical_text('plain', 'C++ <=> D'), 'C++ <=> D', 'accepted: C++ <=> D');
SELECT is(catalog.canonical_text('plain', 'x < y and y > z'), 'x < y and y > z', 'accepted: spaced comparisons');
SELECT is(catalog.canonical_text('plain', 'Fish &amp; Chips'), 'Fish &amp; Chips', 'accepted (and not decoded): &amp;');
SELECT is(catalog.canonical_text('plain', '&lt;3 and &lt; 10'), '&lt;3 and &lt; 10', 'accepted: &lt; before a digit or space');
SELECT is(catalog.canonical_text('plain', U&'\FF1C3 \FF1C 5'), U&'\FF1C3 \FF1C 5', 'accepted: fullwidth < before a digit or space');
SELECT is(catalog.canonical_text('plain', 'Q&A: 50%-off'), 'Q&A: 50%-off', 'accepted: Q&A: 50%-off');
SELECT is(catalog.canonical_text('plain', '<'), '<', 'accepted: a lone <');
SELECT is(catalog.canonical_text('plain', 'x <= y'), 'x <= y', 'accepted: <=');

-------------------------------------------------------------------------------
-- Active content
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT catalog.canonical_text('plain', 'javascript:alert(1)')$$,
                 '22023', NULL, 'javascript: is active content');
SELECT is(pg_temp.refusal('plain', 'see javascript:alert(1)'),
          '22023 {"field":"plain","reason":"active_content","position":5}', 'active_content: reason and position');
SELECT is(pg_temp.refusal('plain', 'JaVaScRiPt:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'schemes are case-insensitive');
SELECT is(pg_temp.refusal('plain', 'java script:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'a space inside the scheme is ignored');
SELECT is(pg_temp.refusal('plain', 'javascript :x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'a space before the colon is ignored');
SELECT is(pg_temp.refusal('plain', 'jav&#x09;ascript:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'an encoded TAB inside the scheme is ignored');
SELECT is(pg_temp.refusal('plain', 'jav&Tab;ascript:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', '&Tab; inside the scheme is ignored');
SELECT is(pg_temp.refusal('plain', 'java&#10;script:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'an encoded LF inside the scheme is ignored');
SELECT is(pg_temp.refusal('plain', 'java%0Ascript:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'a percent-encoded LF inside the scheme is ignored');
SELECT is(pg_temp.refusal('plain', 'java&#8203;script:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'an encoded zero width space is ignored');
SELECT is(pg_temp.refusal('plain', '&#106;avascript:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'an encoded first letter');
SELECT is(pg_temp.refusal('plain', '&#x6A;&#x61;&#x76;&#x61;script:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'several encoded letters');
SELECT is(pg_temp.refusal('plain', 'javascript&colon;x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', '&colon; as the colon');
SELECT is(pg_temp.refusal('plain', 'javascript&#58;x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', '&#58; as the colon');
SELECT is(pg_temp.refusal('plain', 'javascript%3Ax'),
          '22023 {"field":"plain","reason":"active_content","position":1}', '%3A as the colon');
SELECT is(pg_temp.refusal('plain', U&'javascript\FF1Ax'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'FULLWIDTH COLON as the colon');
SELECT is(pg_temp.refusal('plain', '[x](javascript:x)'),
          '22023 {"field":"plain","reason":"active_content","position":5}', 'a markdown link target');
SELECT is(pg_temp.refusal('plain', 'vbscript:msgbox'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'vbscript: is active content');
SELECT is(pg_temp.refusal('plain', 'LiveScript:x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'livescript: is active content');
SELECT is(pg_temp.refusal('plain', 'data:text/html,x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data: with a MIME type is active content');
SELECT is(pg_temp.refusal('plain', 'DATA: image/svg+xml;base64,x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data: with a space before the MIME type');
SELECT is(pg_temp.refusal('plain', 'data:te&Tab;xt/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data: with an encoded tab inside the MIME type (a URL parser drops it)');
SELECT is(pg_temp.refusal('longtext', E'data:text\n/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='),
          '22023 {"field":"longtext","reason":"active_content","position":1}', 'longtext: data: with a newline inside the MIME type');
SELECT is(catalog.canonical_text('plain', 'Backup data: read more/less'), 'Backup data: read more/less',
          'accepted: data: followed by words with a space before a /');
SELECT is(catalog.canonical_text('longtext', E'Tech data: width\ncm/inch'), E'Tech data: width\ncm/inch',
          'accepted: data: then a word, a newline and a type-like word, with no comma after (no data: URL)');
SELECT is(catalog.canonical_text('plain', 'data:text/html'), 'data:text/html',
          'accepted: data: with a MIME type but no comma (no data: URL, the fetch standard fails it)');
SELECT is(pg_temp.refusal('plain', 'data:,x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data:, is active content');
SELECT is(pg_temp.refusal('plain', 'data:;base64,x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data:; is active content');
SELECT is(pg_temp.refusal('plain', 'data:text/html;base64&comma;PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data: with &comma; as its comma');
SELECT is(pg_temp.refusal('plain', 'data:&semi;base64,x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'data: with &semi; after the colon');
SELECT throws_ok($$SELECT catalog.canonical_text('plain', '" onerror="alert(1)')$$,
                 '22023', NULL, 'an event handler attribute is active content');
SELECT is(pg_temp.refusal('plain', 'x onerror=y'),
          '22023 {"field":"plain","reason":"active_content","position":3}', 'onerror=');
SELECT is(pg_temp.refusal('plain', 'ONLOAD =x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'ONLOAD = (case and space)');
SELECT is(pg_temp.refusal('plain', 'x/onmouseover=y'),
          '22023 {"field":"plain","reason":"active_content","position":3}', 'handler after /');
SELECT is(pg_temp.refusal('plain', 'on&#101;rror=x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'handler with an encoded letter');
SELECT is(pg_temp.refusal('plain', 'onclick&equals;x'),
          '22023 {"field":"plain","reason":"active_content","position":1}', 'handler with an encoded =');
SELECT is(pg_temp.refusal('longtext', E'a\nonfocus\n=x'),
          '22023 {"field":"longtext","reason":"active_content","position":3}', 'longtext: handler with = on the next line');

SELECT is(catalog.canonical_text('plain', 'metadata: none'), 'metadata: none', 'accepted: metadata: (no word start)');
SELECT is(catalog.canonical_text('plain', 'Product data: see sheet'), 'Product data: see sheet', 'accepted: data: followed by words');
SELECT is(catalog.canonical_text('plain', 'Big data: 10/20 GB'), 'Big data: 10/20 GB', 'accepted: data: followed by digits and /');
SELECT is(catalog.canonical_text('plain', 'nojavascript: here'), 'nojavascript: here', 'accepted: scheme inside a word');
SELECT is(catalog.canonical_text('plain', 'Java and JavaScript books'), 'Java and JavaScript books', 'accepted: JavaScript without a colon');
SELECT is(catalog.canonical_text('plain', 'on = off'), 'on = off', 'accepted: on =');
SELECT is(catalog.canonical_text('plain', 'ona=1'), 'ona=1', 'accepted: on + one letter');
SELECT is(pg_temp.refusal('plain', 'x onab=y'), '22023 {"field":"plain","reason":"active_content","position":3}',
          'refused: on + two letters + = is an event handler');
SELECT is(catalog.canonical_text('plain', 'Lemon=yellow'), 'Lemon=yellow', 'accepted: on inside a word');
SELECT is(catalog.canonical_text('plain', 'Turn on the light'), 'Turn on the light', 'accepted: on as a word');

-------------------------------------------------------------------------------
-- Kinds: SKU, slug, currency, token
-------------------------------------------------------------------------------
SELECT is(catalog.canonical_text('sku', '  ab-12.x_9  '), 'AB-12.X_9', 'sku: trimmed and upper-cased');
SELECT is(catalog.canonical_text('sku', '0A'), '0A', 'sku: may start with a digit');
SELECT throws_ok($$SELECT catalog.canonical_text('sku', '-AB')$$,
                 '22023', NULL, 'sku: may not start with -');
SELECT is(pg_temp.refusal('sku', 'AB 12'),
          '22023 {"field":"sku","reason":"invalid_format","position":3}', 'sku: no space inside');
SELECT is(pg_temp.refusal('sku', '.AB'),
          '22023 {"field":"sku","reason":"invalid_format","position":1}', 'sku: may not start with .');
SELECT is(pg_temp.refusal('sku', U&'AB\00C9'),
          '22023 {"field":"sku","reason":"invalid_format","position":3}', 'sku: ASCII only');
SELECT is(pg_temp.refusal('sku', 'AB/1'),
          '22023 {"field":"sku","reason":"invalid_format","position":3}', 'sku: no /');

SELECT is(catalog.canonical_text('slug', ' Summer-Sale-2024 '), 'summer-sale-2024', 'slug: trimmed and lower-cased');
SELECT is(catalog.canonical_text('slug', 'a'), 'a', 'slug: one character');
SELECT throws_ok($$SELECT catalog.canonical_text('slug', 'two words')$$,
                 '22023', NULL, 'slug: no space');
SELECT is(pg_temp.refusal('slug', '-start'),
          '22023 {"field":"slug","reason":"invalid_format","position":1}', 'slug: no leading hyphen');
SELECT is(pg_temp.refusal('slug', 'end-'),
          '22023 {"field":"slug","reason":"invalid_format","position":4}', 'slug: no trailing hyphen');
SELECT is(pg_temp.refusal('slug', 'a--b'),
          '22023 {"field":"slug","reason":"invalid_format","position":3}', 'slug: no double hyphen');
SELECT is(pg_temp.refusal('slug', 'snake_case'),
          '22023 {"field":"slug","reason":"invalid_format","position":6}', 'slug: no underscore');

SELECT is(catalog.canonical_text('currency', ' eur '), 'EUR', 'currency: trimmed and upper-cased');
SELECT is(catalog.canonical_text('currency', 'jpy'), 'JPY', 'currency: JPY');
SELECT is(catalog.canonical_text('currency', 'XCG'), 'XCG', 'currency: XCG (2025) is active');
SELECT is(catalog.canonical_text('currency', 'ZWG'), 'ZWG', 'currency: ZWG (2024) is active');
SELECT is(catalog.canonical_text('currency', 'XOF'), 'XOF', 'currency: XOF is a real currency');
SELECT throws_ok($$SELECT catalog.canonical_text('currency', 'EURO')$$,
                 '22023', NULL, 'currency: four letters');
SELECT is(pg_temp.refusal('currency', 'EURO'),
          '22023 {"field":"currency","reason":"invalid_format"}', 'currency: wrong length');
SELECT is(pg_temp.refusal('currency', 'E1R'),
          '22023 {"field":"currency","reason":"invalid_format","position":2}', 'currency: letters only');
SELECT is(pg_temp.refusal('currency', 'QQQ'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: not a code');
SELECT is(pg_temp.refusal('currency', 'XAU'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: gold is not a currency');
SELECT is(pg_temp.refusal('currency', 'XXX'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: XXX (no currency)');
SELECT is(pg_temp.refusal('currency', 'XTS'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: XTS (testing)');
SELECT is(pg_temp.refusal('currency', 'CHE'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: fund code');
SELECT is(pg_temp.refusal('currency', 'HRK'),
          '22023 {"field":"currency","reason":"unknown_currency"}', 'currency: withdrawn HRK');

SELECT is(catalog.canonical_text('token', '  Idem-Key_01:abc/DEF=  '), 'Idem-Key_01:abc/DEF=', 'token: trimmed, case kept');
SELECT is(catalog.canonical_text('token', '!~'), '!~', 'token: printable ASCII edges');
SELECT throws_ok($$SELECT catalog.canonical_text('token', 'two words')$$,
                 '22023', NULL, 'token: no space inside');
SELECT is(pg_temp.refusal('token', U&'caf\00E9'),
          '22023 {"field":"token","reason":"invalid_format","position":4}', 'token: ASCII only');
SELECT is((pg_temp.refusal('token', '<script>alert(1)</script>') LIKE '22023 {"field":"token","reason":"markup"%'),
          true, 'token: a tag is refused like in a name (an idempotency key is stored)');
SELECT is((pg_temp.refusal('token', 'javascript:alert(1)') LIKE '22023 {"field":"token","reason":"active_content"%'),
          true, 'token: a script URL is refused');
SELECT is(catalog.canonical_text('token', 'a<3:b=c'), 'a<3:b=c', 'token: "<" not starting a tag and ":" / "=" elsewhere stay allowed');
SELECT is(pg_temp.refusal('token', 'x%20onclick=y'),
          '22023 {"field":"token","reason":"active_content","position":5}',
          'token: a handler after an encoded space is refused (a consumer that decodes once would write an attribute)');
SELECT is(catalog.canonical_text('token', 'Zm9vYmFyb25Rej0-onQz_onLoad'), 'Zm9vYmFyb25Rej0-onQz_onLoad',
          'token: unpadded base64url with "on" after - or _ is a key (no "=")');
SELECT is(pg_temp.refusal('token', E'a\tb'),
          '22023 {"field":"token","reason":"control_character","position":2}', 'token: TAB is a control character');

SELECT throws_ok($$SELECT catalog.canonical_text('html', 'x')$$,
                 '22023', NULL, 'unknown kind is refused');
SELECT is(pg_temp.refusal('PLAIN', 'x'),
          '22023 {"field":"kind","reason":"unknown_kind"}', 'kind names are exact and lower case');

-------------------------------------------------------------------------------
-- Price
-------------------------------------------------------------------------------
SELECT is(catalog.check_price(19.99), 19.99, 'price: 19.99');
SELECT is(catalog.check_price(0), 0::numeric, 'price: zero');
SELECT is(catalog.check_price(-0.00), 0::numeric, 'price: minus zero is zero');
SELECT is(catalog.check_price(1.500), 1.5, 'price: trailing zeros beyond the scale are fine');
SELECT is(catalog.check_price(9999999999.99), 9999999999.99, 'price: largest');
SELECT is(catalog.check_price(1234567890), 1234567890::numeric, 'price: ten integer digits');
SELECT throws_ok($$SELECT catalog.check_price(-0.01)$$, '22003', NULL, 'price: negative (22003)');
SELECT is(pg_temp.price_refusal(-5), '22003 {"field":"price","reason":"negative"}', 'price: negative DETAIL');
SELECT throws_ok($$SELECT catalog.check_price(1.005)$$, '22003', NULL, 'price: three decimals (22003)');
SELECT is(pg_temp.price_refusal(0.001),
          '22003 {"field":"price","reason":"too_many_decimals","max":2}', 'price: too_many_decimals DETAIL');
SELECT throws_ok($$SELECT catalog.check_price(10000000000)$$, '22003', NULL, 'price: 11 integer digits (22003)');
SELECT is(pg_temp.price_refusal(10000000000.00),
          '22003 {"field":"price","reason":"out_of_range","max":10}', 'price: out_of_range DETAIL');
SELECT throws_ok($$SELECT catalog.check_price('NaN')$$, '22003', NULL, 'price: NaN (22003)');
SELECT is(pg_temp.price_refusal('Infinity'),
          '22003 {"field":"price","reason":"not_a_number"}', 'price: Infinity');
SELECT is(pg_temp.price_refusal('-Infinity'),
          '22003 {"field":"price","reason":"not_a_number"}', 'price: -Infinity');
-- The price is compared, never printed (1e131071 would print 131,072
-- digits); the reasons keep their order: negative, then range, then scale.
SELECT is(pg_temp.price_refusal('1e131071'),
          '22003 {"field":"price","reason":"out_of_range","max":10}', 'price: 1e131071 is out_of_range');
SELECT is(pg_temp.price_refusal('-1e131071'),
          '22003 {"field":"price","reason":"negative"}', 'price: -1e131071 is negative');
SELECT is(pg_temp.price_refusal(-0.001),
          '22003 {"field":"price","reason":"negative"}', 'price: negative is refused before too many decimals');
SELECT is(pg_temp.price_refusal(10000000000.001),
          '22003 {"field":"price","reason":"out_of_range","max":10}', 'price: out_of_range is refused before too many decimals');
SELECT is(pg_temp.price_refusal(9999999999.999),
          '22003 {"field":"price","reason":"too_many_decimals","max":2}', 'price: 9999999999.999 has too many decimals');
SELECT is(pg_temp.price_refusal(9999999999.990000), 'accepted', 'price: trailing zeros after the largest price');
SELECT is(pg_temp.price_refusal('1e-16383'),
          '22003 {"field":"price","reason":"too_many_decimals","max":2}', 'price: 1e-16383 has too many decimals');
SELECT is(pg_temp.price_refusal('0.000000000000000000000'), 'accepted', 'price: zero with many decimal zeros');
SELECT is(pg_temp.price_refusal('1.1e-1'), 'accepted', 'price: 1.1e-1 is 0.11, two decimals');
SELECT is(pg_temp.price_refusal('1.11e-1'), '22003 {"field":"price","reason":"too_many_decimals","max":2}',
          'price: 1.11e-1 is 0.111, three decimals');

-------------------------------------------------------------------------------
-- The caller's correlation id in every JSON DETAIL (DESIGN.md): the
-- x-request-id header (the last of duplicates, sanitized as in audit rows),
-- else catalog.request_id; a generated one is not added.
-------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.sql_refusal(q text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    det text;
BEGIN
    EXECUTE q;
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || ' ' || det;
END;
$$;
SELECT set_config('request.headers', '{"x-request-id":"req-42"}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"req-42"}',
          'request id: the x-request-id header is the last key of a validation DETAIL');
SELECT is(pg_temp.sql_refusal('SELECT catalog_api.get_product(id => 2000000000)'),
          'PT404 {"reason":"not_found","id":2000000000,"request_id":"req-42"}',
          'request id: in the DETAIL of PT404');
SELECT set_config('request.headers', '{"x-request-id":"first","x-request-id":"a b<c>"}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"a_b_c_"}',
          'request id: the last of duplicate headers, sanitized as in audit rows');
SELECT set_config('request.headers', '{"a":"\u20ac \ud835\udc00","x-request-id":"req-\u0065"}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"req-e"}',
          'request id: escapes in the headers are decoded, the id''s too');
SELECT set_config('request.headers', '{"x-request-id":"jane.doe@example.com"}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'request id: one holding an e-mail address (masked in audit rows) is not echoed');
SELECT set_config('request.headers', U&'{"x-request-id":"j\00f6rg@m\00fcller.de"}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'request id: nor one holding a non-ASCII address (sanitized to underscores)');
SELECT set_config('catalog.request_id', 'sql-7', true);
SELECT set_config('request.headers', '{"h":{"x-request-id":"inner"},"x-request-id":"x","x-request-id":{"a":1}}', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"sql-7"}',
          'request id: a nested header, or a last one that is not a string, is none; catalog.request_id is next');
-- Headers that are not valid JSON, or whose id jsonb would refuse, are
-- none: the real refusal still reaches the caller, with catalog.request_id.
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"sql-7"}',
          'request id: headers ' || h || ' count as none (' || d || ')')
FROM (VALUES ('{"x-request-id":"a', 'cut short'),
             ('{"x-request-id":"\u0000"}', 'a NUL escape'),
             ('{"x-request-id":"\ud800"}', 'a lone surrogate'),
             ('{"x-request-id":["a"]}', 'an array'),
             ('{"x-request-id":"ok","x-request-id":"\ud800"}', 'a last duplicate with a lone surrogate'),
             ('[1]', 'not an object'),
             ('"x"', 'a string'),
             ('{"x-request-id":"a"} junk', 'text after the object')) AS v(h, d),
     LATERAL (SELECT set_config('request.headers', h, true)) AS s;
-- A header that no text can hold (\u0000, a lone surrogate) but that is not
-- x-request-id does not hide the id: the other headers are still read.
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255,"request_id":"rid-' || n || '"}',
          'request id: read beside a header ' || d)
FROM (VALUES (1, '{"user-agent":"a\u0000b","x-request-id":"rid-1"}', 'holding \u0000'),
             (2, '{"x-request-id":"rid-2","x-note":["\udc00"]}', 'holding a lone surrogate in an array'),
             (3, '{"x-\u0000":"v","x-request-id":"rid-3"}', 'whose name holds \u0000')) AS v(n, h, d),
     LATERAL (SELECT set_config('request.headers', h, true)) AS s;
SELECT set_config('request.headers', '', true);
SELECT set_config('catalog.request_id', 'ops@example.com', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'request id: a catalog.request_id holding an e-mail address is not echoed either');
SELECT set_config('catalog.request_id', 'sql-7', true);
SELECT is(pg_temp.sql_refusal($$SELECT catalog_api.search_products(sort => 'cheapest')$$),
          '22023 {"field":"sort","reason":"unknown_value","request_id":"sql-7"}',
          'request id: catalog.request_id in the DETAIL of a search refusal');
SELECT set_config('catalog.request_id', '!!! ###', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'request id: one with no usable byte is none (not kept as underscores)');
SELECT set_config('catalog.request_id', '', true);
SELECT is(pg_temp.refusal('plain', repeat('x', 256)),
          '22001 {"field":"plain","reason":"too_long","max":255}',
          'request id: none given, none added (a generated id correlates with nothing)');

SELECT * FROM finish();
ROLLBACK;
