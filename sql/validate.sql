--
-- validate: canonicalisation and validation of untrusted input (src/validate.c)
-- through the test hooks catalog.canonical_text(kind, value, min_len, max_len)
-- and catalog.check_price(value).  Refusals print SQLSTATE, message and the
-- JSON DETAIL.  Non-ASCII input is written with U&'' escapes and non-ASCII
-- output is shown as UTF-8 hex, so this file stays ASCII.
--
\set VERBOSITY default
\pset null '(null)'

-- A refusal as one row: SQLSTATE and DETAIL.  Used where many cases are
-- listed; single cases below let psql print the full error instead.
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

-- ASCII rendering of a value: every code point outside U+0020-U+007E is
-- shown as {U+XXXX}, so control and bidi characters never reach the output.
CREATE FUNCTION pg_temp.show(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(CASE WHEN ascii(c) BETWEEN 32 AND 126 THEN c
                           ELSE format('{U+%s}', upper(lpad(h, greatest(4, length(h)), '0')))
                      END, '' ORDER BY n)
    FROM regexp_split_to_table(v, '') WITH ORDINALITY AS t(c, n),
         LATERAL to_hex(ascii(c)) AS h
$$;

--
-- White space: trimmed, runs collapsed, every Unicode space separator
-- becomes U+0020.
--
SELECT catalog.canonical_text('plain', '  Hello    World  ') AS collapsed;
SELECT catalog.canonical_text('plain',
    U&'a\00A0b\2003c\3000d\202Fe\205Ff\1680g') AS spaces;
-- only spaces: nothing left
SELECT catalog.canonical_text('plain', U&'  \00A0  ');
SELECT catalog.canonical_text('plain', '', 0) = '' AS empty_allowed_with_min_0;

--
-- NFC: "e" + COMBINING ACUTE becomes U+00E9; ANGSTROM SIGN becomes U+00C5;
-- Hangul jamo compose into a syllable.
--
SELECT encode(convert_to(catalog.canonical_text('plain', U&'Cafe\0301'), 'UTF8'), 'hex') AS cafe,
       length(catalog.canonical_text('plain', U&'Cafe\0301')) AS code_points;
SELECT encode(convert_to(catalog.canonical_text('plain', U&'\212B'), 'UTF8'), 'hex') AS angstrom;
SELECT encode(convert_to(catalog.canonical_text('plain', U&'\1100\1161\11A8'), 'UTF8'), 'hex') AS hangul;
-- already composed input is unchanged
SELECT catalog.canonical_text('plain', U&'caf\00E9') = U&'caf\00E9' AS stable;
-- length is counted in code points after NFC: 3 code points in, 1 out
SELECT encode(convert_to(catalog.canonical_text('plain', U&'e\0302\0301', 1, 1), 'UTF8'), 'hex') AS one;
-- marks that have no precomposed form stay separate
SELECT length(catalog.canonical_text('plain', U&'e\0301\0302')) AS two;

--
-- Long text: TAB is a space, CR LF and CR become LF, lines are trimmed,
-- at most one blank line, no blank lines at either end.
--
SELECT catalog.canonical_text('longtext',
    E'\n\n  First  line \t\r\nsecond\rthird\n\n\n\n  fourth\t\n\n') AS longtext;
SELECT catalog.canonical_text('longtext', E'a\r\n\r\nb') = E'a\n\nb' AS crlf_blank_line;

--
-- Length, in code points after canonicalisation.
--
SELECT catalog.canonical_text('plain', repeat('x', 255)) = repeat('x', 255) AS max_ok;
SELECT catalog.canonical_text('plain', repeat('x', 256));
SELECT catalog.canonical_text('plain', 'ab', 3);
SELECT catalog.canonical_text('plain', '   ');
-- 255 multi-byte characters fit
SELECT length(catalog.canonical_text('plain', repeat(U&'\00E9', 255))) AS multibyte_ok;
-- a megabyte is refused before it is looked at
SELECT catalog.canonical_text('plain', repeat('<script>', 131072));

--
-- Forbidden characters, with the 1-based position in the input.
--
SELECT catalog.canonical_text('plain', E'a\tb');
SELECT catalog.canonical_text('plain', E'line\nbreak');
SELECT catalog.canonical_text('plain', U&'abc\0085');
SELECT catalog.canonical_text('plain', U&'a\2028b');
SELECT catalog.canonical_text('longtext', E'bell\x07');
SELECT catalog.canonical_text('plain', U&'evil\202Etxt.exe');
SELECT catalog.canonical_text('plain', U&'pay\200Bpal');
SELECT catalog.canonical_text('plain', U&'\FEFFbom');
SELECT catalog.canonical_text('plain', U&'x\FDD0');
SELECT catalog.canonical_text('plain', U&'x\+10FFFF');
SELECT catalog.canonical_text('plain', U&'x\E000');
SELECT catalog.canonical_text('plain', U&'x\+0F0000');
SELECT catalog.canonical_text('plain', 'x' || repeat(U&'\0301', 31));
SELECT pg_temp.show(v) AS "input", pg_temp.refusal('plain', v) AS refusal
FROM (VALUES (U&'a\001Fb'), (U&'\007F'), (U&'\0080'), (U&'\009F'),
             (U&'\2029'), (U&'\061C'), (U&'\200E'), (U&'\200F'), (U&'\202A'),
             (U&'\2066'), (U&'\2069'), (U&'\200C'), (U&'\200D'), (U&'\2060'),
             (U&'\2064'), (U&'\180E'), (U&'\00AD'), (U&'\FFFE'), (U&'\+01FFFF'),
             (U&'\F8FF'), (U&'\+100000')) AS t(v)
ORDER BY v COLLATE "C";
-- variation selectors and ordinary non-Latin text are fine
SELECT encode(convert_to(catalog.canonical_text('plain', U&'\2229\FE00'), 'UTF8'), 'hex') AS vs1;
SELECT length(catalog.canonical_text('plain', U&'\05E9\05DC\05D5\05DD \0645\0631\062D\0628\0627')) AS rtl_text;

--
-- Markup: "<" directly followed by a letter, "/", "!" or "?", also when
-- encoded as a character reference or percent escape, or written with the
-- fullwidth or small less-than sign.
--
SELECT catalog.canonical_text('plain', '<script>alert(1)</script>');
SELECT catalog.canonical_text('plain', 'Nice &lt;b&gt;bold');
SELECT pg_temp.show(v) AS "input", pg_temp.refusal('plain', v) AS refusal
FROM (VALUES ('<b>'), ('x</p>'), ('<!-- c -->'), ('<?xml'), ('a<b'),
             ('&lt;img'), ('&LT;img'), ('&ltimg'), ('&#60;img'), ('&#060;img'),
             ('&#x3c;img'), ('&#X3C;img'), ('&#x003C;img'), ('%3cimg'), ('%3Cimg'),
             ('&amp;lt;img'), ('%26lt;img'), ('<&#115;cript'),
             (U&'\FF1Cscript'), (U&'\FE64script'), (U&'\FF1C\FF53cript')) AS t(v)
ORDER BY v COLLATE "C";

--
-- Active content: script URL schemes (ignoring white space, controls and
-- encodings between the letters) and event-handler attributes.
--
SELECT catalog.canonical_text('plain', 'click javascript:alert(1)');
SELECT catalog.canonical_text('plain', '" onerror="alert(1)');
SELECT pg_temp.show(v) AS "input", pg_temp.refusal('plain', v) AS refusal
FROM (VALUES ('javascript:x'), ('JaVaScRiPt:x'), ('java script:x'),
             ('jav&#x09;ascript:x'), ('jav&Tab;ascript:x'), ('&#106;avascript:x'),
             ('javascript&colon;x'), ('javascript&#58;x'), ('javascript%3ax'),
             ('vbscript:x'), ('livescript:x'), ('data:text/html,x'),
             ('data: image/svg+xml;base64,x'), ('data:,x'), ('onerror=x'),
             ('ONLOAD =x'), ('x onmouseover= y'), ('on&#101;rror=x'),
             ('onclick&equals;x')) AS t(v)
ORDER BY v COLLATE "C";
-- long text is checked too
SELECT catalog.canonical_text('longtext', E'fine\n<iframe src=x>');

--
-- Plain text that looks a little like markup is accepted unchanged.
--
SELECT v AS "input", catalog.canonical_text('plain', v) = v AS unchanged
FROM (VALUES ('Salt & Pepper'), ('Size < 10'), ('I <3 cats'), ('Salon = stylish'),
             ('5 > 3'), ('AT&T'), ('100% cotton'), ('C++ <=> D'), ('a < b'),
             ('Fish &amp; Chips'), ('metadata: none'), ('Product data: see sheet'),
             ('Big data: 10/20 GB'), ('nojavascript: here'), ('on = off'),
             ('Rock&Roll'), ('Q&A: 50%3 off'), ('2 <= 3'), ('<3'), ('<')) AS t(v)
ORDER BY v COLLATE "C";

--
-- SKU: trimmed, upper-cased, [A-Z0-9] then [A-Z0-9._-].
--
SELECT catalog.canonical_text('sku', '  ab-12.x_9  ') AS sku;
SELECT catalog.canonical_text('sku', '-AB');
SELECT catalog.canonical_text('sku', 'AB 12');
SELECT catalog.canonical_text('sku', U&'AB\00C9');

--
-- Slug: lower-cased, [a-z0-9] runs joined by single hyphens.
--
SELECT catalog.canonical_text('slug', ' Summer-Sale-2024 ') AS slug;
SELECT pg_temp.show(v) AS "input", pg_temp.refusal('slug', v) AS refusal
FROM (VALUES ('-start'), ('end-'), ('double--hyphen'), ('under_score'), ('two words')) AS t(v)
ORDER BY v COLLATE "C";

--
-- Currency: upper-cased, an active ISO 4217 code; fund, metal and testing
-- codes and withdrawn currencies are refused.
--
SELECT catalog.canonical_text('currency', ' eur ') AS eur,
       catalog.canonical_text('currency', 'usd') AS usd,
       catalog.canonical_text('currency', 'XCG') AS xcg,
       catalog.canonical_text('currency', 'zwg') AS zwg;
SELECT catalog.canonical_text('currency', 'EURO');
SELECT catalog.canonical_text('currency', 'E1R');
SELECT pg_temp.show(v) AS "input", pg_temp.refusal('currency', v) AS refusal
FROM (VALUES ('XAU'), ('XXX'), ('XTS'), ('XDR'), ('HRK'), ('ANG'), ('ZWL'), ('QQQ')) AS t(v)
ORDER BY v COLLATE "C";

--
-- Token: printable ASCII without white space inside; case is kept.
--
SELECT catalog.canonical_text('token', '  Idem-Key_01:abc/DEF=  ') AS token;
SELECT catalog.canonical_text('token', 'two words');
SELECT catalog.canonical_text('token', U&'caf\00E9');

--
-- Unknown kind, and the field name is the kind.
--
SELECT catalog.canonical_text('html', 'x');
SELECT catalog.canonical_text('plain', 'x', 5, 2);
SELECT catalog.canonical_text('plain', 'x', -1);
SELECT catalog.canonical_text('plain', 'x', 1, 2000000);

--
-- Price: non-negative, finite, at most 10 integer digits and 2 decimals
-- (trailing zeros do not count).
--
SELECT catalog.check_price(0) AS zero,
       catalog.check_price(19.99) AS price,
       catalog.check_price(1.500) AS trailing_zeros,
       catalog.check_price(9999999999.99) AS largest,
       catalog.check_price(-0.00) AS minus_zero;
SELECT catalog.check_price(-1);
SELECT catalog.check_price(1.005);
SELECT catalog.check_price(10000000000);
SELECT catalog.check_price('NaN');
SELECT catalog.check_price('Infinity');
SELECT catalog.check_price('-Infinity');
SELECT catalog.check_price(NULL) AS strict_null;
