/*-------------------------------------------------------------------------
 *
 * api.c
 *	  Helpers shared by the API functions.
 *
 * Caller identity.  The API functions are SECURITY DEFINER (owned by
 * catalog_owner), so current_user is the owner inside them.  The actor
 * recorded in rows is the JWT "sub" claim (PostgREST), else the setting
 * catalog.actor, else session_user; never current_user.  Visibility of
 * drafts depends on the role the request runs as: the SET ROLE role when
 * one is set (PostgREST sets it per request), else the session user.
 *
 * SPI.  Statements are fixed text with typed parameters, prepared once
 * per backend and kept (SPI_keepplan); the plan cache revalidates them
 * after DDL.  No SQL text is ever built from input.
 *
 * Serialization failures.  Under READ COMMITTED (PostgREST's default) the
 * write paths do not raise 40001: conflicts are detected with version
 * predicates and ON CONFLICT.  Under REPEATABLE READ PostgreSQL itself may
 * raise 40001 on a concurrent update, and a deadlock (40P01) can arise
 * between a caller's own multi-statement transactions; PostgREST would
 * retry these, so ApiRunWrite rewrites them as PT409.  SERIALIZABLE is
 * refused for writes (a failure at COMMIT cannot be rewritten).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "common/jsonapi.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "api.h"
#include "audit_scan.h"
#include "guc.h"
#include "validate_sql.h"

/*
 * The last parsed value of each JSON request setting (request.jwt.claims,
 * request.headers, request.cookies), kept in TopMemoryContext: one request
 * reads them several times (rate limiter, CSRF check, actor, correlation
 * id), and parsing the same text again each time is most of their cost.
 * A cached value is used only when the setting's text is byte for byte the
 * text it was parsed from, so a new request (or a set_config) is parsed
 * afresh.  The cache lives for one transaction: PostgREST sets the
 * settings per transaction, and through a pool the next transaction may be
 * another client's, so the headers and cookies of a request (session
 * cookie, CSRF token, possibly an authorization header) are zeroed and
 * freed at its end instead of staying in the backend's memory.
 */
typedef struct ParsedSetting
{
	const char *name;
	char	   *text;
	Jsonb	   *value;
} ParsedSetting;

static ParsedSetting parsed_settings[] = {
	{"request.jwt.claims", NULL, NULL},
	{"request.headers", NULL, NULL},
	{"request.cookies", NULL, NULL},
};

static bool parsed_callback_registered = false;

/*
 * forget_setting
 *	  Zero and free one cached pair.
 */
static void
forget_setting(ParsedSetting *ps)
{
	if (ps->text != NULL)
	{
		explicit_bzero(ps->text, strlen(ps->text));
		pfree(ps->text);
		ps->text = NULL;
	}
	if (ps->value != NULL)
	{
		explicit_bzero(ps->value, VARSIZE(ps->value));
		pfree(ps->value);
		ps->value = NULL;
	}
}

/*
 * parsed_xact_callback
 *	  At the end of every transaction, forget the parsed settings (see
 *	  above).  Frees and zeroes memory only: cannot fail.
 */
static void
parsed_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	for (size_t i = 0; i < lengthof(parsed_settings); i++)
		forget_setting(&parsed_settings[i]);
}

/*
 * What json_text_only puts in place of a string value that cannot be a
 * text.  Its key starts with U+0001, which a JSON text can only write as
 * this escape; a client that sends the same object as a sub is answered
 * "not_text" instead of "not_string", refused either way.
 */
#define NOT_TEXT_KEY	"\001not_text"
#define NOT_TEXT_VALUE	"{\"\\u0001not_text\":true}"

/*
 * ApiJsonLexer
 *	  A lexer of core's JSON parser over len bytes of json, in the current
 *	  memory context, the same way on every server version (17 takes a
 *	  const text and an optional buffer).  need_escapes: de-escape strings
 *	  (into lex->strval), refusing \u0000 and lone surrogates as jsonb_in
 *	  does.  Free it with ApiJsonLexerFree.
 */
JsonLexContext *
ApiJsonLexer(const char *json, int len, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), need_escapes);
#else
	return makeJsonLexContextCstringLen(unconstify(char *, json), len, GetDatabaseEncoding(),
										need_escapes);
#endif
}

/* Free a lexer of ApiJsonLexer, with its string buffer. */
void
ApiJsonLexerFree(JsonLexContext *lex)
{
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	if (lex->strval != NULL)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
#endif
}

/*
 * ApiJsonStringText
 *	  The de-escaped text of the json string token [start, start + len)
 *	  (quotes included), through core's lexer alone, in the current memory
 *	  context; NULL when it cannot be a text (it escapes \u0000 or holds a
 *	  lone surrogate, as jsonb_in refuses) or is no string token.  The
 *	  lexer is freed at once: a text may hold a string every few bytes.
 *	  Never raises an error but out of memory.
 */
char *
ApiJsonStringText(const char *start, int len)
{
	JsonLexContext *lex = ApiJsonLexer(start, len, true);
	char	   *out = NULL;

	if (json_lex(lex) == JSON_SUCCESS && lex->token_type == JSON_TOKEN_STRING && lex->strval != NULL)
		out = pstrdup(lex->strval->data);
	ApiJsonLexerFree(lex);
	return out;
}

/* Whether a json string token can be a text (ApiJsonStringText). */
static bool
string_is_text(const char *start, int len)
{
	char	   *t = ApiJsonStringText(start, len);

	if (t == NULL)
		return false;
	pfree(t);
	return true;
}

/*
 * json_text_only
 *	  json as it is when every string in it can be a text; else a copy in
 *	  which every string that cannot (it escapes \u0000, or holds a lone
 *	  surrogate: valid JSON that jsonb, and so PostgreSQL's text, cannot
 *	  hold) is replaced: a key by "", a value by NOT_TEXT_VALUE.  NULL when
 *	  json is not valid JSON.  Never raises an error but out of memory and
 *	  stack depth (it runs while an error is reported, see
 *	  request_id_given).
 *
 *	  Such a string is valid JSON (the json type accepts it), and a signed
 *	  JWT may carry one in a claim the extension never reads (a display
 *	  name): failing every request of that token would deny it service for
 *	  nothing.  Dropping the string instead would be wrong the other way: a
 *	  sub of "a\u0000" must not read as no sub (the caller would become
 *	  the login role, sharing its idempotency keys).  As NOT_TEXT_VALUE,
 *	  an object, it is a value that is not a string: a sub is refused
 *	  (22023 "not_text": claim_value recognises the object's key, so a sub
 *	  that really is an object is still "not_string"), a sid, header or
 *	  cookie counts as absent.  A key becomes "", which no reader looks up.
 *	  The check costs one strstr for texts with no \u escape.
 */
static char *
json_text_only(const char *json)
{
	size_t		len = strlen(json);
	JsonLexContext *lex;
	StringInfoData out;
	const char *copied = json;
	const char *held_start = NULL;
	const char *held_end = NULL;
	bool		changed = false;

	if (len > INT_MAX)
		return NULL;
	if (strstr(json, "\\u") == NULL)
		return unconstify(char *, json);

	/* the grammar first (the token walk below only splits tokens) */
	lex = ApiJsonLexer(json, (int) len, false);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
	{
		ApiJsonLexerFree(lex);
		return NULL;
	}
	ApiJsonLexerFree(lex);
	lex = ApiJsonLexer(json, (int) len, false);
	initStringInfo(&out);
	for (;;)
	{
		if (json_lex(lex) != JSON_SUCCESS)
		{
			/* not expected: the text parsed above */
			explicit_bzero(out.data, out.len);
			pfree(out.data);
			ApiJsonLexerFree(lex);
			return NULL;
		}
		/* a held string is a key when a colon follows it */
		if (held_start != NULL)
		{
			appendBinaryStringInfo(&out, copied, (int) (held_start - copied));
			appendStringInfoString(&out, lex->token_type == JSON_TOKEN_COLON ? "\"\"" : NOT_TEXT_VALUE);
			copied = held_end;
			held_start = NULL;
			changed = true;
		}
		if (lex->token_type == JSON_TOKEN_END)
			break;
		if (lex->token_type == JSON_TOKEN_STRING &&
			memchr(lex->token_start, '\\', lex->token_terminator - lex->token_start) != NULL &&
			!string_is_text(lex->token_start, (int) (lex->token_terminator - lex->token_start)))
		{
			held_start = lex->token_start;
			held_end = lex->token_terminator;
		}
	}
	ApiJsonLexerFree(lex);
	if (!changed)
	{
		pfree(out.data);
		return unconstify(char *, json);
	}
	appendStringInfoString(&out, copied);
	return out.data;
}

/*
 * parse_json_setting
 *	  text as jsonb, or 22P02 naming the setting when it is not JSON.  The
 *	  error of jsonb_in itself is not let through: its DETAIL and CONTEXT
 *	  quote the text, and request.headers may hold an authorization header
 *	  that must reach no log.  Other errors (out of memory, stack depth)
 *	  pass unchanged.
 */
static Jsonb *
parse_json_setting(const char *name, const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile jb = NULL;
	char	   *volatile clean = json_text_only(text);

	PG_TRY();
	{
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												CStringGetDatum(clean != NULL ? clean : text)));
	}
	PG_CATCH();
	{
		/* no copy of the error: its detail and context quote the text */
		if (ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		MemoryContextSwitchTo(cxt);
		/* the transaction aborts with the error below: nothing to unwind */
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("setting \"%s\" is not valid JSON", name),
				 errhint("PostgREST sets it to JSON; a client that sets it itself must too.")));
	}
	PG_END_TRY();
	/* a cleaned copy of the headers may hold an authorization header */
	if (clean != NULL && clean != text)
	{
		explicit_bzero(clean, strlen(clean));
		pfree(clean);
	}
	return jb;
}

/*
 * parsed_setting
 *	  text (the current value of setting name) as jsonb: the cached value
 *	  when text is unchanged, else parsed (22P02 when it is not JSON).  The
 *	  result must not be modified.
 */
static Jsonb *
parsed_setting(const char *name, const char *text)
{
	ParsedSetting *ps = NULL;
	Jsonb	   *jb;
	char	   *t;
	void	   *v;

	for (size_t i = 0; i < lengthof(parsed_settings); i++)
		if (strcmp(parsed_settings[i].name, name) == 0)
			ps = &parsed_settings[i];
	if (ps != NULL && ps->text != NULL && strcmp(ps->text, text) == 0)
		return ps->value;
	jb = parse_json_setting(name, text);
	if (ps == NULL)
		return jb;
	if (!parsed_callback_registered)
	{
		RegisterXactCallback(parsed_xact_callback, NULL);
		parsed_callback_registered = true;
	}
	/*
	 * Replace the cached pair only once both copies exist; short of memory,
	 * keep the old pair and answer from this call's value.
	 */
	t = MemoryContextAllocExtended(TopMemoryContext, strlen(text) + 1, MCXT_ALLOC_NO_OOM);
	v = MemoryContextAllocExtended(TopMemoryContext, VARSIZE(jb), MCXT_ALLOC_NO_OOM);
	if (t == NULL || v == NULL)
	{
		if (t)
			pfree(t);
		if (v)
			pfree(v);
		return jb;
	}
	strcpy(t, text);
	memcpy(v, jb, VARSIZE(jb));
	forget_setting(ps);
	ps->text = t;
	ps->value = (Jsonb *) v;
	return ps->value;
}

/*
 * numeric_fits
 *	  Whether a JSON number prints in at most about 2 * max_len characters
 *	  (|n| < 10^max_len, at most max_len decimals), decided without
 *	  printing it (see ValidateNumericBelowPow10).
 */
static bool
numeric_fits(Numeric n, int max_len)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		return true;			/* jsonb holds neither; they print short */
	return DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) <= max_len &&
		ValidateNumericBelowPow10(n, max_len);
}

/*
 * claim_value
 *	  The claim key of request.jwt.claims as text (a string, or a number
 *	  printed), or NULL when the setting is empty or has no such claim.
 *	  *other is set when the claim is there but is a boolean, an object or
 *	  an array (a JSON null counts as absent, as ->> reads it); *not_text
 *	  when it is a string that cannot be a text (\u0000 or a lone
 *	  surrogate: json_text_only's NOT_TEXT_VALUE; *other is then set
 *	  too); *too_long
 *	  when it is a number too long for any claim the extension reads (more
 *	  than CATALOG_ACTOR_MAX digits before or after the point), which is
 *	  not printed.
 */
static char *
claim_value(const char *key, bool *other, bool *not_text, bool *too_long, bool *numeric)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	Jsonb	   *jb;
	JsonbValue *v;

	*other = false;
	*not_text = false;
	*too_long = false;
	*numeric = false;
	if (claims == NULL || claims[0] == '\0')
		return NULL;

	/* Invalid JSON here is a deployment error: jsonb_in raises 22P02. */
	jb = parsed_setting("request.jwt.claims", claims);
	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
	{
		if (!numeric_fits(v->val.numeric, CATALOG_ACTOR_MAX))
		{
			*too_long = true;
			return NULL;
		}
		*numeric = true;
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	}
	*other = (v->type != jbvNull);
	*not_text = v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data) &&
		getKeyJsonValueFromContainer(v->val.binary.data, NOT_TEXT_KEY, strlen(NOT_TEXT_KEY),
									 NULL) != NULL;
	return NULL;
}

/*
 * ApiClaim
 *	  The claim key of request.jwt.claims as text (a string, or a number
 *	  printed), or NULL when the setting is empty or has no such claim (or
 *	  one of another JSON type, or a number too long to print).
 */
char *
ApiClaim(const char *key)
{
	bool		other;
	bool		not_text;
	bool		too_long;
	bool		numeric;

	return claim_value(key, &other, &not_text, &too_long, &numeric);
}

/*
 * ApiActor
 *	  Who is calling: JWT sub, else catalog.actor, else session_user.  The
 *	  value is validated like a plain-text input (it is stored in rows)
 *	  and must already be in canonical form (below).
 *	  A sub that is a boolean, an object or an array is refused (RFC 7519
 *	  makes it a string), and so is an empty one (22023 "empty", as one of
 *	  spaces is): taken as absent, every holder of such a token would be
 *	  recorded as the login role and share its idempotency keys, so one
 *	  could replay another's stored response.  Only a missing sub (or a
 *	  JSON null, as ->> reads it) falls back.  An identity is compared
 *	  exactly: one that canonicalisation would change (spaces doubled or
 *	  at an end, another Unicode normal form, a no-break space) is refused
 *	  with 22023 "not_canonical" rather than stored changed, since "a  b"
 *	  and "a b" would otherwise be one actor, sharing idempotency keys.
 */
char *
ApiActor(void)
{
	char		source;

	return ApiActorSource(&source);
}

/*
 * ApiActorSource
 *	  ApiActor, and in *source where it came from: ACTOR_FROM_JWT (a sub
 *	  that is a string), ACTOR_FROM_JWT_NUMBER (a sub that is a number,
 *	  printed), ACTOR_FROM_SETTING (catalog.actor) or ACTOR_FROM_LOGIN
 *	  (session_user).  The text alone does not tell them apart: a token
 *	  whose sub is "authenticator" names the same text as every token
 *	  without a sub under that login, and a sub of 1e2 the same as one of
 *	  "100".  Whatever an identity scopes (idempotency keys) takes the
 *	  source too.
 */
char *
ApiActorSource(char *source)
{
	bool		other;
	bool		not_text;
	bool		too_long;
	bool		numeric;
	char	   *raw = claim_value("sub", &other, &not_text, &too_long, &numeric);
	ValidateError err;

	if (not_text)
		ValidateRaiseReason("actor", "not_text");
	if (other)
		ValidateRaiseReason("actor", "not_string");
	if (too_long)
	{
		err.reason = "too_long";
		err.limit = CATALOG_ACTOR_MAX;
		err.position = -1;
		ValidateRaise("actor", &err);
	}
	if (raw != NULL)
		*source = numeric ? ACTOR_FROM_JWT_NUMBER : ACTOR_FROM_JWT;
	else if (catalog_actor != NULL && catalog_actor[0] != '\0')
	{
		raw = catalog_actor;
		*source = ACTOR_FROM_SETTING;
	}
	else
	{
		raw = GetUserNameFromId(GetSessionUserId(), false);
		*source = ACTOR_FROM_LOGIN;
	}
	return ValidateExactText("actor", raw, strlen(raw), VT_PLAIN, 1, CATALOG_ACTOR_MAX);
}

/*
 * ApiJsonSetting
 *	  The string value of key in the JSON object setting name (such as
 *	  request.headers), or NULL.  A setting that is empty or does not start
 *	  with '{' is ignored; one that starts like an object but is not valid
 *	  JSON fails with 22P02 (PostgREST always sends valid JSON, so that is
 *	  a deployment error, reported like invalid JWT claims).
 */
char *
ApiJsonSetting(const char *name, const char *key)
{
	const char *json = GetConfigOption(name, true, false);
	Jsonb	   *jb;
	JsonbValue *v;

	if (json == NULL || json[0] != '{')
		return NULL;
	jb = parsed_setting(name, json);
	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * ApiSanitizeRequestId
 *	  s cut to CATALOG_REQUEST_ID_MAX bytes with every byte outside
 *	  [A-Za-z0-9._:@/+=-] replaced by '_' (a correlation id reaches logs and
 *	  audit rows: it must not carry control characters or markup).  NULL
 *	  when nothing usable remains.
 */
char *
ApiSanitizeRequestId(const char *s)
{
	size_t		len;
	char	   *out;
	bool		useful = false;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	if (len > CATALOG_REQUEST_ID_MAX)
		len = CATALOG_REQUEST_ID_MAX;
	out = palloc(len + 1);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			strchr("._:@/+=-", c) != NULL)
		{
			out[i] = (char) c;
			useful = true;
		}
		else
			out[i] = '_';
	}
	out[len] = '\0';
	return useful ? out : NULL;
}

/* The generated correlation id of the current transaction. */
static char generated_request_id[37];
static LocalTransactionId generated_for = InvalidLocalTransactionId;

/* The time field (48 bits of ms, 12 of sub-ms) of this backend's last one. */
static uint64 generated_last_time = 0;

/*
 * generate_request_id
 *	  A version 7 UUID (RFC 9562) into generated_request_id: 48 bits of
 *	  Unix time in milliseconds, then (the RFC's method 3) 12 bits of the
 *	  fraction of the millisecond, then 62 random bits.  Time-ordered, so
 *	  the ids a backend generates increase (the time field is bumped past
 *	  the last one when the clock has not moved or went back), and the
 *	  audit's index on correlation ids grows at its right edge as the
 *	  primary keys do, instead of splitting pages all over a random key
 *	  space.  A correlation id must be unique, not secret: 62 bits of the
 *	  backend's PRNG (seeded from the strong source at backend start) make
 *	  two ids of one 244-nanosecond tick equal with a chance of 2^-62, and
 *	  cost nothing next to a strong random read per transaction.
 */
static void
generate_request_id(void)
{
	static const char hexdigits[] = "0123456789abcdef";
	TimestampTz now = GetCurrentTimestamp();
	uint64		unix_us;
	uint64		t;
	uint64		r = pg_prng_uint64(&pg_global_prng_state);
	uint8		b[16];
	char	   *o = generated_request_id;

	/* microseconds since 1970 (a clock before 1970 counts as 1970) */
	if (now < -(TimestampTz) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY))
		unix_us = 0;
	else
		unix_us = (uint64) now + (uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	/* ms << 12 | the millisecond's fraction in 4096ths (0 .. 4091) */
	t = ((unix_us / 1000) << 12) | (((unix_us % 1000) << 12) / 1000);
	t &= (UINT64CONST(1) << 60) - 1;
	if (t <= generated_last_time && generated_last_time < (UINT64CONST(1) << 60) - 1)
		t = generated_last_time + 1;
	generated_last_time = t;

	/* unix_ts_ms (48), ver (4) = 7, rand_a (12), var (2) = 10, rand_b (62) */
	for (int i = 0; i < 6; i++)
		b[i] = (uint8) (t >> (12 + 8 * (5 - i)));
	b[6] = (uint8) (0x70 | ((t >> 8) & 0x0F));
	b[7] = (uint8) t;
	for (int i = 8; i < 16; i++)
		b[i] = (uint8) (r >> (8 * (15 - i)));
	b[8] = (b[8] & 0x3F) | 0x80;

	/* 8-4-4-4-12 hex digits (snprintf costs more than the rest) */
	for (int i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hexdigits[b[i] >> 4];
		*o++ = hexdigits[b[i] & 0x0F];
	}
	*o = '\0';
	StaticAssertStmt(sizeof(generated_request_id) == 37, "a UUID is 36 characters");
}

/*
 * ApiRequestId
 *	  The correlation id of the current request: the x-request-id header
 *	  (PostgREST), else catalog.request_id, else a version 7 UUID generated
 *	  once per transaction (generate_request_id).  Sanitized
 *	  (ApiSanitizeRequestId).  With raw not NULL, *raw is set to the value
 *	  it was made from, as given (NULL for a generated id): the audit's
 *	  masking looks at it too, since the sanitizing and the cut to 128
 *	  bytes can break up an e-mail address.
 */
const char *
ApiRequestId(const char **raw)
{
	char	   *header = ApiJsonSetting("request.headers", "x-request-id");
	char	   *id = ApiSanitizeRequestId(header);
	LocalTransactionId lxid = ApiCurrentLxid();

	if (raw != NULL)
		*raw = header;
	if (id == NULL)
	{
		id = ApiSanitizeRequestId(catalog_request_id);
		if (raw != NULL)
			*raw = catalog_request_id;
	}
	if (id != NULL)
		return id;
	if (raw != NULL)
		*raw = NULL;

	if (generated_for != lxid || generated_request_id[0] == '\0')
	{
		generate_request_id();
		generated_for = lxid;
	}
	return pstrdup(generated_request_id);
}

/*
 * The x-request-id member of request.headers, read by the JSON parser's
 * callbacks alone (request_id_given).  The last of duplicate members wins,
 * as in jsonb (ApiRequestId reads the header through jsonb).
 */
#if PG_VERSION_NUM >= 160000
#define JSON_CB_TYPE JsonParseErrorType
#define JSON_CB_DONE return JSON_SUCCESS
#else
#define JSON_CB_TYPE void
#define JSON_CB_DONE return
#endif

typedef struct HeaderScan
{
	int			depth;			/* objects and arrays open */
	bool		in_member;		/* inside the top-level x-request-id member */
	char	   *value;			/* its string value, last one seen */
} HeaderScan;

static JSON_CB_TYPE
scan_open(void *state)
{
	HeaderScan *hs = (HeaderScan *) state;

	/* an object or array as the member's value: not a string, no id */
	if (hs->in_member && hs->depth == 1)
		hs->value = NULL;
	hs->depth++;
	JSON_CB_DONE;
}

static JSON_CB_TYPE
scan_close(void *state)
{
	((HeaderScan *) state)->depth--;
	JSON_CB_DONE;
}

static JSON_CB_TYPE
scan_field_start(void *state, char *fname, bool isnull)
{
	HeaderScan *hs = (HeaderScan *) state;

	hs->in_member = hs->depth == 1 && strcmp(fname, "x-request-id") == 0;
	JSON_CB_DONE;
}

static JSON_CB_TYPE
scan_field_end(void *state, char *fname, bool isnull)
{
	HeaderScan *hs = (HeaderScan *) state;

	if (hs->depth == 1)
		hs->in_member = false;
	JSON_CB_DONE;
}

static JSON_CB_TYPE
scan_scalar(void *state, char *token, JsonTokenType tokentype)
{
	HeaderScan *hs = (HeaderScan *) state;

	if (hs->in_member && hs->depth == 1)
		hs->value = tokentype == JSON_TOKEN_STRING ? token : NULL;
	JSON_CB_DONE;
}

/*
 * request_id_given
 *	  The correlation id the caller gave (the x-request-id header, else
 *	  catalog.request_id), sanitized, or NULL: never a generated one, nor
 *	  one that holds an e-mail address.  It
 *	  runs while an error is being raised (ApiErrDetail), so it must not
 *	  raise one itself: the header is read by the JSON parser's callbacks,
 *	  which report a malformed text (a bad escape, \u0000 or a lone
 *	  surrogate included) as a return code (such headers count as none),
 *	  not through jsonb_in and ApiJsonSetting, whose 22P02 path flushes
 *	  the error state.  Two errors remain possible: a nesting deeper than
 *	  the stack allows (core's stack-depth check), and out of memory; the
 *	  caller then gets that error instead of its own.
 */
static const char *
request_id_given(void)
{
	const char *given = GetConfigOption("request.headers", true, false);
	const char *json = given;
	const char *raw = NULL;
	char	   *id = NULL;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	/*
	 * Only in a UTF-8 database (the only kind CREATE EXTENSION accepts):
	 * there the lexer turns every \u escape into bytes itself, where in
	 * another encoding it converts through pg_unicode_to_server, which
	 * raises an error for a character the encoding lacks.
	 */
	/* a header that cannot be a text counts as none, the others are read */
	if (utf8 && json != NULL && json[0] == '{')
		json = json_text_only(json);
	if (utf8 && json != NULL && json[0] == '{')
	{
		HeaderScan	hs = {0, false, NULL};
		JsonSemAction sem;
		JsonLexContext *lex;

		memset(&sem, 0, sizeof(sem));
		sem.semstate = &hs;
		sem.object_start = scan_open;
		sem.object_end = scan_close;
		sem.array_start = scan_open;
		sem.array_end = scan_close;
		sem.object_field_start = scan_field_start;
		sem.object_field_end = scan_field_end;
		sem.scalar = scan_scalar;
		lex = ApiJsonLexer(json, (int) strlen(json), true);
		if (pg_parse_json(lex, &sem) == JSON_SUCCESS)
		{
			raw = hs.value;
			id = ApiSanitizeRequestId(raw);
		}
		ApiJsonLexerFree(lex);
		/* a cleaned copy of the headers may hold an authorization header */
		if (json != given)
		{
			explicit_bzero(unconstify(char *, json), strlen(json));
			pfree(unconstify(char *, json));
		}
	}
	if (id == NULL)
	{
		raw = catalog_request_id;
		id = ApiSanitizeRequestId(raw);
	}
	/*
	 * An id that holds an e-mail address, as given or as sanitized, is
	 * masked in audit rows (AuditMaskRequestId): it is not echoed either,
	 * since a DETAIL also reaches the server log.
	 */
	if (id != NULL &&
		((AuditScanMayMatch(id, strlen(id)) && AuditScanHasEmail(id, strlen(id), utf8)) ||
		 (AuditScanMayMatch(raw, strlen(raw)) && AuditScanHasEmail(raw, strlen(raw), utf8))))
		return NULL;
	return id;
}

/*
 * ApiDetailJson
 *	  json (one JSON object, the DETAIL of an error) with "request_id" added
 *	  as its last key when the caller gave a correlation id (DESIGN.md: the
 *	  id appears in error details, so a client can quote it and an
 *	  operator find the request).  A generated id is not added: for a call
 *	  that failed nothing else records it (its audit rows rolled back), so
 *	  it would correlate with nothing, and the DETAIL of a call that sent
 *	  no id stays as documented.  Always a new string, in the current
 *	  memory context (the caller may free it, as FreeErrorData does).
 */
char *
ApiDetailJson(const char *json)
{
	const char *id;
	size_t		len = strlen(json);
	StringInfoData buf;

	if (len < 2 || json[0] != '{' || json[len - 1] != '}')
		return pstrdup(json);
	id = request_id_given();
	if (id == NULL)
		return pstrdup(json);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, json, (int) len - 1);
	/* "{}" has no key before the new one */
	if (strspn(json + 1, " ") < len - 2)
		appendStringInfoChar(&buf, ',');
	appendStringInfoString(&buf, "\"request_id\":");
	escape_json(&buf, id);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * ApiErrDetail
 *	  errdetail for an error's JSON DETAIL (fmt formats one JSON object),
 *	  with the caller's correlation id added (ApiDetailJson).  For use
 *	  inside ereport, as errdetail.
 */
int
ApiErrDetail(const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	return errdetail_internal("%s", ApiDetailJson(buf.data));
}

/*
 * ApiVia
 *	  How the request came: "<method> <path>" under PostgREST (request.method
 *	  set), else "sql".  The method keeps only A-Z, the path only printable
 *	  ASCII (other bytes become '?'), and the whole is cut to
 *	  CATALOG_VIA_MAX bytes.
 */
char *
ApiVia(void)
{
	const char *method = GetConfigOption("request.method", true, false);
	const char *path = GetConfigOption("request.path", true, false);
	StringInfoData buf;

	if (method == NULL || method[0] == '\0')
		return pstrdup("sql");
	initStringInfo(&buf);
	for (const char *m = method; *m && buf.len < 16; m++)
		appendStringInfoChar(&buf, (*m >= 'A' && *m <= 'Z') ? *m : '?');
	appendStringInfoChar(&buf, ' ');
	for (const char *p = path ? path : ""; *p && buf.len < CATALOG_VIA_MAX; p++)
	{
		unsigned char c = (unsigned char) *p;

		appendStringInfoChar(&buf, (c > 0x20 && c < 0x7F) ? (char) c : '?');
	}
	return buf.data;
}

/*
 * Role OIDs by name, looked up once per backend (every API call asks for
 * one or two) and forgotten when pg_authid changes (a role dropped and
 * created again has a new OID).
 */
typedef struct RoleOidCache
{
	const char *name;
	Oid			oid;
	bool		valid;
} RoleOidCache;

static RoleOidCache role_cache[] = {
	{"catalog_anon", InvalidOid, false},
	{"catalog_editor", InvalidOid, false},
	{"catalog_admin", InvalidOid, false},
};
static bool role_cache_callback = false;
static uint64 role_cache_generation = 0;

static void
role_cache_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	for (size_t i = 0; i < lengthof(role_cache); i++)
		role_cache[i].valid = false;
	role_cache_generation++;
}

static Oid
role_oid(const char *role)
{
	if (!role_cache_callback)
	{
		CacheRegisterSyscacheCallback(AUTHOID, role_cache_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHNAME, role_cache_invalidate, (Datum) 0);
		role_cache_callback = true;
	}
	for (size_t i = 0; i < lengthof(role_cache); i++)
	{
		if (strcmp(role_cache[i].name, role) != 0)
			continue;
		if (!role_cache[i].valid)
		{
			/*
			 * Kept only when no invalidation came during the lookup, and set
			 * only after it: a lookup that fails (a cancel while it reads
			 * pg_authid) leaves the entry invalid, not valid with an old OID.
			 */
			uint64		generation = role_cache_generation;
			Oid			oid = get_role_oid(role, true);

			if (generation == role_cache_generation)
			{
				role_cache[i].oid = oid;
				role_cache[i].valid = true;
			}
			return oid;
		}
		return role_cache[i].oid;
	}
	return get_role_oid(role, true);
}

/*
 * ApiCallerHasRole
 *	  True when the role the request runs as (the SET ROLE role, else the
 *	  session user) is a superuser or has the privileges of role.
 */
bool
ApiCallerHasRole(const char *role)
{
	Oid			caller = GetCurrentRoleId();
	Oid			target;

	if (!OidIsValid(caller))
		caller = GetSessionUserId();
	if (superuser_arg(caller))
		return true;
	target = role_oid(role);
	return OidIsValid(target) && has_privs_of_role(caller, target);
}

/*
 * ApiCallerSeesDrafts
 *	  True when the caller may see drafts and archived products: an editor
 *	  (or admin, or superuser).
 */
bool
ApiCallerSeesDrafts(void)
{
	return ApiCallerHasRole("catalog_editor");
}

/*
 * ApiGetPlan
 *	  The kept plan of p, preparing it on first use.  Must be called
 *	  between SPI_connect and SPI_finish.
 */
SPIPlanPtr
ApiGetPlan(ApiPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 p->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		p->plan = plan;
	}
	return p->plan;
}

/*
 * ApiExecute
 *	  Run a kept plan; returns SPI_processed.  Any SPI failure is an
 *	  internal error (user errors surface as ereports from the executor).
 *	  Returns in the memory context it was called in: SPI_execute_plan
 *	  itself always returns in the SPI procedure context (_SPI_end_call),
 *	  whatever was current before, so a caller that had switched to a
 *	  longer-lived context would go on allocating in one that SPI_finish
 *	  frees (found by valgrind in audit_drop_partitions).
 */
int
ApiExecute(ApiPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	MemoryContext caller = CurrentMemoryContext;
	int			rc = SPI_execute_plan(ApiGetPlan(p), values, nulls, read_only, count);

	MemoryContextSwitchTo(caller);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s",
			 p->sql, SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/*
 * ApiMonotonicNs
 *	  The system-wide monotonic clock in nanoseconds: the same in every
 *	  backend, and never stepped by NTP or an administrator.  For every
 *	  interval the extension waits or limits by (a wall clock stepped back
 *	  would hold a rate-limit bucket, or the sealer's retries, for the
 *	  length of the step).
 */
int64
ApiMonotonicNs(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not read the monotonic clock: %m")));
	return (int64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * ApiResultDatum
 *	  Column col (1-based) of row of the last SPI result, copied into the
 *	  memory context that was current before SPI_connect.
 */
Datum
ApiResultDatum(int row, int col, bool *isnull)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], desc, col, isnull);
	Form_pg_attribute att = TupleDescAttr(desc, col - 1);

	if (*isnull)
		return (Datum) 0;
	/* a varlena is detoasted into the copy: it must not point at TOAST rows */
	if (att->attlen == -1)
		return SPI_datumTransfer(PointerGetDatum(PG_DETOAST_DATUM(d)), false, -1);
	return SPI_datumTransfer(d, att->attbyval, att->attlen);
}

/*
 * translate_error
 *	  Rewrite, in place, an error that the contract says a client must never
 *	  see in its raw form: a serialization failure or deadlock (PostgREST
 *	  retries 40001 without limit) becomes PT409, and a unique violation of
 *	  the SKU or slug index becomes the documented 23505 with a
 *	  field-level DETAIL: the index is the one check of uniqueness, for
 *	  creates and updates alike, and it waits for a racing insert.  The
 *	  value itself is not repeated in the message (messages reach the log).  Returns false when the
 *	  error is left as it is.  Strings are allocated in the current context.
 */
static bool
translate_error(ErrorData *edata)
{
	const char *field = NULL;

	if (edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
	{
		edata->sqlerrcode = ERRCODE_CATALOG_CONFLICT;
		edata->message = pstrdup("concurrent update conflict");
		edata->detail = ApiDetailJson("{\"reason\":\"concurrent_update\"}");
		edata->hint = pstrdup("Retry the request in a new transaction; for an update, read the row again first.");
		edata->detail_log = NULL;
		edata->context = NULL;
		return true;
	}
	/*
	 * A category deleted (plain SQL: the API deletes none) while a write
	 * puts a product into it: the write's check of category_id read it
	 * without waiting, and the foreign key, which waits for the delete,
	 * fails.  Answer what a write after the delete gets.  Only the check
	 * of the referencing row (ri_ReportViolation's "insert or update"
	 * message, told by its untranslated format): a DELETE of a category
	 * still in use, run by something the write set off (a user's trigger),
	 * reports the same constraint and table, and is no missing category.
	 */
	if (edata->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION && edata->constraint_name != NULL &&
		edata->schema_name != NULL && strcmp(edata->schema_name, "catalog") == 0 &&
		edata->table_name != NULL && strcmp(edata->table_name, "product") == 0 &&
		strcmp(edata->constraint_name, "product_category_id_fkey") == 0 &&
		edata->message_id != NULL &&
		strcmp(edata->message_id, "insert or update on table \"%s\" violates foreign key constraint \"%s\"") == 0)
	{
		edata->sqlerrcode = ERRCODE_INVALID_PARAMETER_VALUE;
		edata->message = pstrdup("invalid value for field \"category_id\": no such row");
		edata->detail = ApiDetailJson("{\"field\":\"category_id\",\"reason\":\"not_found\"}");
		edata->detail_log = NULL;
		edata->hint = NULL;
		edata->context = NULL;
		edata->schema_name = NULL;
		edata->table_name = NULL;
		edata->constraint_name = NULL;
		return true;
	}
	if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION && edata->constraint_name != NULL &&
		edata->schema_name != NULL && strcmp(edata->schema_name, "catalog") == 0)
	{
		if (strcmp(edata->constraint_name, "product_sku_key") == 0)
			field = "sku";
		else if (strcmp(edata->constraint_name, "category_slug_key") == 0)
			field = "slug";
	}
	if (field == NULL)
		return false;
	edata->message = psprintf("a %s with this %s already exists",
							  strcmp(field, "sku") == 0 ? "product" : "category", field);
	edata->detail = ApiDetailJson(psprintf("{\"field\":\"%s\",\"reason\":\"duplicate\"}", field));
	edata->detail_log = NULL;
	edata->hint = NULL;
	edata->context = NULL;
	return true;
}

/*
 * ApiRowSecurityBegin
 *	  Turn row_security on for the rest of the calling function, when it
 *	  is off.  The extension's tables force row-level security on their
 *	  owner too, so with row_security off (pg_dump's scripts turn it off)
 *	  every query a SECURITY DEFINER function runs on them would fail with
 *	  42501, naming an internal table, instead of passing the owner's
 *	  policy.  Only when it is off: a SET clause on the function would
 *	  save and restore the setting on every call.  Returns the GUC nest
 *	  level for ApiRowSecurityEnd, 0 when nothing was set; an error unwinds
 *	  it with the transaction.
 */
int
ApiRowSecurityBegin(void)
{
	int			nest;

	if (row_security)
		return 0;
	nest = NewGUCNestLevel();
	(void) set_config_option("row_security", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* Close what ApiRowSecurityBegin opened. */
void
ApiRowSecurityEnd(int nest)
{
	if (nest > 0)
		AtEOXact_GUC(true, nest);
}

/*
 * ApiOwnerBegin
 *	  Run what follows as the owner of function fn_oid, with search_path
 *	  and row_security pinned, as a SECURITY DEFINER function with SET
 *	  clauses would run: for the SQL a trigger runs on tables its invoker
 *	  cannot see.  A caller's SECURITY_NOFORCE_RLS (a referential action's
 *	  context) is not passed on: the owner obeys the tables' policies.
 *	  ApiOwnerEnd restores both; an error unwinds both with the
 *	  (sub)transaction.
 */
void
ApiOwnerBegin(Oid fn_oid, ApiOwnerState *st)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);

	st->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("row_security", "on", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&st->save_userid, &st->save_sec_context);
	SetUserIdAndSecContext(owner, (st->save_sec_context & ~SECURITY_NOFORCE_RLS) |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/* Close what ApiOwnerBegin opened. */
void
ApiOwnerEnd(ApiOwnerState *st)
{
	SetUserIdAndSecContext(st->save_userid, st->save_sec_context);
	AtEOXact_GUC(true, st->nest);
}

/*
 * ApiRunWrite
 *	  Call fn(fcinfo) for a write function, with row_security on
 *	  (ApiRowSecurityBegin).
 *
 * Refused at once in a read-only transaction (25006) and under
 * SERIALIZABLE (0A000): an SSI failure can surface at COMMIT, after the
 * function has returned, as a 40001 that PostgREST would retry forever.
 * Errors are rewritten by translate_error and re-thrown; no
 * subtransaction is needed because the transaction is aborted either way.
 */
Datum
ApiRunWrite(PGFunction fn, FunctionCallInfo fcinfo)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	Datum		result = (Datum) 0;
	volatile int nest;		/* -Wclobbered: kept across PG_TRY */

	/*
	 * A write under GET (PostgREST runs GET read-only) or on a hot standby:
	 * say so plainly, before any work, rather than through whatever
	 * statement would fail first.
	 */
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run in a read-only transaction",
						get_func_name(fcinfo->flinfo->fn_oid)),
				 errhint("It writes: call it with POST, on the primary server.")));
	if (IsolationIsSerializable())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s does not support SERIALIZABLE transactions",
						get_func_name(fcinfo->flinfo->fn_oid)),
				 errdetail("A serialization failure at commit would reach the client as 40001."),
				 errhint("Use READ COMMITTED (the default) or REPEATABLE READ.")));

	nest = ApiRowSecurityBegin();
	PG_TRY();
	{
		result = fn(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			code = geterrcode();

		/* copy only an error that will be rewritten (not, say, out of memory) */
		if (code != ERRCODE_T_R_SERIALIZATION_FAILURE &&
			code != ERRCODE_T_R_DEADLOCK_DETECTED &&
			code != ERRCODE_UNIQUE_VIOLATION &&
			code != ERRCODE_FOREIGN_KEY_VIOLATION)
			PG_RE_THROW();
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		if (!translate_error(edata))
		{
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FlushErrorState();
		ReThrowError(edata);
	}
	PG_END_TRY();
	ApiRowSecurityEnd(nest);
	return result;
}

/*
 * ApiRaiseNotFound
 *	  PT404: missing, or not visible to the caller (the two are not told
 *	  apart, so hidden rows cannot be probed).
 */
void
ApiRaiseNotFound(const char *what, int64 id)
{
	ereport(ERROR,
			(errcode(ERRCODE_CATALOG_NOT_FOUND),
			 errmsg("%s %lld not found", what, (long long) id),
			 ApiErrDetail("{\"reason\":\"not_found\",\"id\":%lld}", (long long) id)));
}

/*
 * ApiRaiseStale
 *	  PT409: the row exists but its version is not the one expected.
 */
void
ApiRaiseStale(const char *what, int64 id, int32 expected, int32 current)
{
	ereport(ERROR,
			(errcode(ERRCODE_CATALOG_CONFLICT),
			 errmsg("%s %lld was modified concurrently", what, (long long) id),
			 ApiErrDetail("{\"reason\":\"stale_version\",\"expected_version\":%d,\"current_version\":%d}",
					   expected, current),
			 errhint("Read the %s again and retry with its current version.", what)));
}

/*
 * ApiRequireArg
 *	  Raise 22023 {"field": field, "reason": "required"} when argument argno
 *	  is NULL.
 */
void
ApiRequireArg(FunctionCallInfo fcinfo, int argno, const char *field)
{
	if (PG_ARGISNULL(argno))
		ValidateRaiseReason(field, "required");
}
