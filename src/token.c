/*-------------------------------------------------------------------------
 *
 * token.c
 *	  CSRF protection: HMAC-signed double-submit tokens bound to the
 *	  session (the OWASP "signed double-submit cookie" pattern), and
 *	  catalog_api.pre_request(), PostgREST's db-pre-request.
 *
 * The session.  The JWT claim "sid" when present, else the value of the
 * session cookie (catalog.csrf_session_cookie, default "session").  A
 * token is valid only for the session it was issued to: a new session
 * (after expiry or a new login) or another user's session needs a new
 * token.
 *
 * The token.  "v1.<kid>.<nonce>.<mac>": kid the catalog.signing_key row
 * (purpose 'csrf') that signed it, nonce 16 random bytes in hex, mac the
 * HMAC-SHA256, in hex, of "catalog-csrf-v1" NUL kid NUL nonce NUL
 * session.  Keys rotate like the other signing keys: the newest kid
 * signs, every kid still in the table verifies, and a token of a dropped
 * kid is refused.  catalog_api.csrf_token() issues one, returns it and,
 * under PostgREST, sets it as a cookie (catalog.csrf_cookie, default
 * "__Host-csrf"; Secure, HttpOnly, SameSite=Strict, Path=/).
 *
 * The check (pre_request).  A request that can change state (any method
 * but GET, HEAD and OPTIONS, in a read-write transaction) and that
 * carries the session cookie must carry the token twice: in the header
 * catalog.csrf_header (default "x-csrf-token") and in the token cookie.
 * The two must be equal, well formed, signed by a current key and bound
 * to this session.  Comparisons of secret-derived bytes run in constant
 * time.  A request without the session cookie authenticates by bearer
 * token, which a browser never attaches on its own, and is exempt, as
 * OWASP allows.  A refusal is PT403; neither the token nor the session
 * ever appears in a message, a log line or an audit row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"

#include "api.h"
#include "document.h"
#include "guc.h"
#include "keys.h"
#include "ratelimit.h"
#include "token.h"

#define ERRCODE_CATALOG_CSRF	MAKE_SQLSTATE('P','T','4','0','3')

#define CSRF_NONCE_LEN		16
#define CSRF_PREFIX			"v1."
/* "v1." + at most 5 kid digits + "." + 32 + "." + 64 */
#define CSRF_TOKEN_MAX		(3 + 5 + 1 + 2 * CSRF_NONCE_LEN + 1 + 2 * SIGNING_MAC_LEN)

/*
 * session_id
 *	  "j:<sid>" or "c:<session cookie>", or NULL when the request has no
 *	  session.
 */
static char *
session_id(void)
{
	char	   *sid = ApiClaim("sid");
	char	   *cookie;

	if (sid != NULL && sid[0] != '\0')
		return psprintf("j:%s", sid);
	if (catalog_csrf_session_cookie == NULL || catalog_csrf_session_cookie[0] == '\0')
		return NULL;
	cookie = ApiJsonSetting("request.cookies", catalog_csrf_session_cookie);
	if (cookie != NULL && cookie[0] != '\0')
		return psprintf("c:%s", cookie);
	return NULL;
}

/* HMAC of a token's content under key into mac. */
static void
token_mac(const SigningKey *key, const uint8 *nonce, const char *session, uint8 *mac)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "catalog-csrf-v1");
	appendStringInfoChar(&buf, '\0');
	appendStringInfo(&buf, "%d", key->kid);
	appendStringInfoChar(&buf, '\0');
	appendBinaryStringInfo(&buf, (const char *) nonce, CSRF_NONCE_LEN);
	appendStringInfoChar(&buf, '\0');
	appendStringInfoString(&buf, session);
	SigningKeyHmac(key, buf.data, buf.len, mac);
	pfree(buf.data);
}

/* len bytes as 2 * len lower-case hex digits and a NUL (core's encoder). */
static void
hex_encode_lower(const uint8 *in, int len, char *out)
{
	out[hex_encode((const char *) in, len, out)] = '\0';
}

/*
 * Decode exactly 2 * len lower-case hex digits; false on anything else.
 * Not core's hex_decode: that one also takes upper case and white space,
 * and raises an error where a token is simply not valid.
 */
static bool
hex_decode_lower(const char *in, int len, uint8 *out)
{
	for (int i = 0; i < 2 * len; i++)
	{
		char		c = in[i];
		int			v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8) (v << 4);
		else
			out[i / 2] |= (uint8) v;
	}
	return true;
}

/* Constant-time equality of len bytes. */
static bool
equal_ct(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/*
 * token_kid
 *	  The key id of a token: "v1." then 1 to 5 decimal digits without a
 *	  leading zero, 1..65535, then ".".  Returns -1 when the token does not
 *	  start that way, or is longer than any token; otherwise *rest (when
 *	  rest is not NULL) points after the dot.  The only parser of a
 *	  token's key id (no atoi: what a cookie carries is hostile).
 */
static int
token_kid(const char *token, const char **rest)
{
	const char *p;
	int			kid = 0;
	int			digits = 0;

	if (strlen(token) > CSRF_TOKEN_MAX || strncmp(token, CSRF_PREFIX, 3) != 0)
		return -1;
	p = token + 3;
	while (*p >= '0' && *p <= '9' && digits < 5)
	{
		kid = kid * 10 + (*p - '0');
		p++, digits++;
	}
	if (digits == 0 || (digits > 1 && token[3] == '0') || kid < 1 || kid > 65535 || *p != '.')
		return -1;
	if (rest != NULL)
		*rest = p + 1;
	return kid;
}

/*
 * token_valid
 *	  Whether token is well formed, signed by a current 'csrf' key and
 *	  bound to session.
 */
static bool
token_valid(const char *token, const char *session)
{
	const char *p;
	int			kid;
	uint8		nonce[CSRF_NONCE_LEN];
	uint8		mac[SIGNING_MAC_LEN];
	uint8		expected[SIGNING_MAC_LEN];
	List	   *keys;
	SigningKey *key;
	bool		found;

	if ((kid = token_kid(token, &p)) < 0)
		return false;
	if (strlen(p) != 2 * CSRF_NONCE_LEN + 1 + 2 * SIGNING_MAC_LEN ||
		p[2 * CSRF_NONCE_LEN] != '.' ||
		!hex_decode_lower(p, CSRF_NONCE_LEN, nonce) ||
		!hex_decode_lower(p + 2 * CSRF_NONCE_LEN + 1, SIGNING_MAC_LEN, mac))
		return false;
	keys = SigningKeysLoad("csrf");
	key = SigningKeyFind(keys, kid);
	found = key != NULL;
	if (found)
		token_mac(key, nonce, session, expected);
	SigningKeysWipe(keys);
	return found && equal_ct(mac, expected, SIGNING_MAC_LEN);
}

static void
refuse(const char *reason) pg_attribute_noreturn();

static void
refuse(const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_CATALOG_CSRF),
			 errmsg("CSRF token missing or invalid"),
			 ApiErrDetail("{\"reason\":\"%s\"}", reason),
			 errhint("Call catalog_api.csrf_token() and send the token in the %s header and the %s cookie.",
					 catalog_csrf_header, catalog_csrf_cookie)));
}

/*
 * CsrfCheck
 *	  The pre-request check (see the file header).
 */
void
CsrfCheck(void)
{
	const char *method = GetConfigOption("request.method", true, false);
	const char *path = GetConfigOption("request.path", true, false);
	char	   *session;
	char	   *in_header;
	char	   *in_cookie;
	size_t		len;

	/* not PostgREST: a plain SQL client has no cookies */
	if (method == NULL || method[0] == '\0')
		return;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
		strcmp(method, "OPTIONS") == 0 || XactReadOnly)
		return;
	/* issuing a token must not need one (the path decoded as PostgREST routes it) */
	if (RateLimitPathIs(path, RLF_CSRF_TOKEN))
		return;
	/* authenticated by bearer token (or not at all): exempt */
	if (catalog_csrf_session_cookie == NULL || catalog_csrf_session_cookie[0] == '\0')
		return;
	/*
	 * Present, even empty, is a cookie session.  A request can carry the
	 * cookie twice, the real one first and an empty one planted by a
	 * sibling subdomain last: request.cookies keeps the last, while a proxy
	 * that turns the session cookie into Authorization may take the first.
	 * An empty session cookie therefore needs a token like any other, and
	 * cannot get one (csrf_token has no session to bind it to).
	 */
	in_cookie = ApiJsonSetting("request.cookies", catalog_csrf_session_cookie);
	if (in_cookie == NULL)
		return;

	session = session_id();
	in_header = ApiJsonSetting("request.headers", catalog_csrf_header);
	in_cookie = ApiJsonSetting("request.cookies", catalog_csrf_cookie);
	if (in_header == NULL || in_header[0] == '\0' || in_cookie == NULL || in_cookie[0] == '\0')
		refuse("csrf_missing");
	len = strlen(in_header);
	if (len > CSRF_TOKEN_MAX)
		refuse("csrf_invalid");
	if (len != strlen(in_cookie) || !equal_ct(in_header, in_cookie, len))
		refuse("csrf_mismatch");
	if (session == NULL || !token_valid(in_header, session))
		refuse("csrf_invalid");
}

PG_FUNCTION_INFO_V1(catalog_csrf_token);
PG_FUNCTION_INFO_V1(catalog_pre_request);

/*
 * The Set-Cookie entries csrf_token added to response.headers in this
 * transaction, one per open subtransaction level that called it, innermost
 * last (TopMemoryContext; wiped when the transaction ends: cookie_xact).  A second
 * call replaces the entry the header holds instead of adding one more: each
 * call mints a token, and a list of conflicting cookies grew by one entry
 * per call, each call copying all the earlier ones (a loop of 20,000 calls
 * took 12 s and 3.5 MB of header).  response.headers is a transaction-local
 * setting, which a rolled-back subtransaction restores: the entry the
 * header holds is therefore the one of the innermost level still open or
 * committed into it, which the subtransaction callback keeps on top (a
 * single remembered entry went stale after ROLLBACK TO SAVEPOINT, and the
 * next call added a second cookie).
 */
typedef struct CookieEntry
{
	char	   *entry;
	SubTransactionId subid;
} CookieEntry;

static CookieEntry *cookie_stack = NULL;
static int	cookie_depth = 0;
static int	cookie_alloc = 0;
static bool cookie_callback = false;

/* Wipe and free one remembered entry (it holds a token). */
static void
wipe_entry(char *entry)
{
	explicit_bzero(entry, strlen(entry));
	pfree(entry);
}

static void
forget_cookies(void)
{
	while (cookie_depth > 0)
		wipe_entry(cookie_stack[--cookie_depth].entry);
}

/*
 * At the end of the transaction the entries (they hold tokens) are wiped,
 * so the stack only ever holds the current transaction's (registered with
 * the first entry).
 */
static void
cookie_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		forget_cookies();
}

/*
 * cookie_subxact
 *	  A subtransaction that aborts takes its entry with it (the header is
 *	  restored to its parent's); one that commits hands its entry to its
 *	  parent, whose own entry it replaced in the header.
 */
static void
cookie_subxact(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (cookie_depth == 0 || cookie_stack[cookie_depth - 1].subid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		wipe_entry(cookie_stack[--cookie_depth].entry);
		return;
	}
	if (cookie_depth >= 2 && cookie_stack[cookie_depth - 2].subid == parentSubid)
	{
		wipe_entry(cookie_stack[cookie_depth - 2].entry);
		cookie_stack[cookie_depth - 2].entry = cookie_stack[cookie_depth - 1].entry;
		cookie_depth--;
	}
	cookie_stack[cookie_depth - 1].subid = parentSubid;
}

static void
remember_cookie(const char *entry)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	char	   *copy;

	if (!cookie_callback)
	{
		RegisterSubXactCallback(cookie_subxact, NULL);
		RegisterXactCallback(cookie_xact, NULL);
		cookie_callback = true;
	}
	/* allocate everything first: an error leaves the stack as it was */
	if (cookie_depth == cookie_alloc)
	{
		int			n = cookie_alloc == 0 ? 4 : cookie_alloc * 2;

		cookie_stack = cookie_stack == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(CookieEntry))
			: repalloc(cookie_stack, n * sizeof(CookieEntry));
		cookie_alloc = n;
	}
	copy = MemoryContextStrdup(TopMemoryContext, entry);
	if (cookie_depth > 0 && cookie_stack[cookie_depth - 1].subid == subid)
	{
		wipe_entry(cookie_stack[cookie_depth - 1].entry);
		cookie_stack[cookie_depth - 1].entry = copy;
	}
	else
	{
		Assert(cookie_depth == 0 || cookie_stack[cookie_depth - 1].subid < subid);
		cookie_stack[cookie_depth].entry = copy;
		cookie_stack[cookie_depth].subid = subid;
		cookie_depth++;
	}
}

/*
 * without_earlier_cookie
 *	  headers (the text of response.headers) without the entry the latest
 *	  csrf_token call it holds added, with the comma that
 *	  joined it; headers itself when there is none (or the caller removed
 *	  it).  The entry holds a fresh random nonce and MAC, so no other text
 *	  can contain it.
 */
static const char *
without_earlier_cookie(const char *headers)
{
	const char *at;
	const char *from;
	const char *to;
	const char *entry;
	StringInfoData out;

	if (headers == NULL || cookie_depth == 0)
		return headers;
	entry = cookie_stack[cookie_depth - 1].entry;
	at = strstr(headers, entry);
	if (at == NULL)
		return headers;
	from = at;
	to = at + strlen(entry);
	/* the comma before it, else the one after it */
	while (from > headers && isspace((unsigned char) from[-1]))
		from--;
	if (from > headers && from[-1] == ',')
		from--;
	else
	{
		from = at;
		while (isspace((unsigned char) *to))
			to++;
		if (*to == ',')
			to++;
	}
	initStringInfo(&out);
	appendBinaryStringInfo(&out, headers, (int) (from - headers));
	appendStringInfoString(&out, to);
	return out.data;
}

/*
 * catalog_api.csrf_token() -> jsonb
 *	  {"token", "header", "cookie"}: a new token for the request's
 *	  session; under PostgREST the token cookie is set too (replacing the
 *	  one an earlier call of the same transaction set).
 */
Datum
catalog_csrf_token(PG_FUNCTION_ARGS)
{
	char	   *session;
	List	   *keys;
	SigningKey *key;
	uint8		nonce[CSRF_NONCE_LEN];
	uint8		mac[SIGNING_MAC_LEN];
	char		nonce_hex[2 * CSRF_NONCE_LEN + 1];
	char		mac_hex[2 * SIGNING_MAC_LEN + 1];
	char	   *token;
	char	   *current;
	const char *method;
	JsonbParseState *st = NULL;
	JsonbValue *res;

	RateLimitEnter(RLF_CSRF_TOKEN);
	session = session_id();
	if (session == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request has no session to bind a CSRF token to"),
				 ApiErrDetail("{\"field\":\"session\",\"reason\":\"missing\"}"),
				 errhint("A CSRF token is needed only by cookie sessions: a JWT claim \"sid\" or the %s cookie.",
						 catalog_csrf_session_cookie)));
	keys = SigningKeysLoad("csrf");
	key = SigningKeyFind(keys, -1);
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no CSRF signing key"),
				 errhint("A superuser adds one to catalog.signing_key with purpose 'csrf'.")));
	/*
	 * One token per session: the token cookie the request carries, when it
	 * is valid for this session and signed by the newest key, is returned
	 * again, so a second tab asking for a token does not invalidate the
	 * first tab's (the check wants header and cookie equal).
	 */
	current = ApiJsonSetting("request.cookies", catalog_csrf_cookie);
	if (current != NULL && token_kid(current, NULL) == key->kid &&
		token_valid(current, session))
		token = current;
	else
	{
		if (!pg_strong_random(nonce, sizeof(nonce)))
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not generate random bytes for a CSRF token")));
		token_mac(key, nonce, session, mac);
		hex_encode_lower(nonce, CSRF_NONCE_LEN, nonce_hex);
		hex_encode_lower(mac, SIGNING_MAC_LEN, mac_hex);
		token = psprintf(CSRF_PREFIX "%d.%s.%s", key->kid, nonce_hex, mac_hex);
	}
	SigningKeysWipe(keys);

	method = GetConfigOption("request.method", true, false);
	if (method != NULL && method[0] != '\0')
	{
		/* the cookie name comes from a superuser's setting: quote it as JSON */
		StringInfoData hdr;
		StringInfoData cookie;
		StringInfoData entry;
		const char *prior;
		size_t		plen;

		initStringInfo(&cookie);
		appendStringInfo(&cookie, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
						 catalog_csrf_cookie, token);
		initStringInfo(&entry);
		appendStringInfoString(&entry, "{\"Set-Cookie\":");
		escape_json(&entry, cookie.data);
		appendStringInfoChar(&entry, '}');
		/* appended to the headers set earlier in the transaction, if any */
		initStringInfo(&hdr);
		prior = without_earlier_cookie(GetConfigOption("response.headers", true, false));
		plen = prior ? strlen(prior) : 0;
		while (plen > 0 && isspace((unsigned char) prior[plen - 1]))
			plen--;
		if (plen >= 2 && prior[0] == '[' && prior[plen - 1] == ']')
		{
			appendBinaryStringInfo(&hdr, prior, plen - 1);
			/* "[]" or "[ ]" takes no comma */
			for (size_t i = 1; i < plen - 1; i++)
				if (!isspace((unsigned char) prior[i]))
				{
					appendStringInfoChar(&hdr, ',');
					break;
				}
		}
		else
			appendStringInfoChar(&hdr, '[');
		appendStringInfoString(&hdr, entry.data);
		appendStringInfoChar(&hdr, ']');
		(void) set_config_option("response.headers", hdr.data,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		remember_cookie(entry.data);
	}

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	DocPushText(&st, "token", DocCString(token));
	DocPushText(&st, "header", DocCString(catalog_csrf_header));
	DocPushText(&st, "cookie", DocCString(catalog_csrf_cookie));
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * catalog_api.pre_request() -> void
 *	  PostgREST's db-pre-request: count the request against its rate limit
 *	  (ratelimit.c), then check the CSRF token.  The limit comes first, so
 *	  forged requests are limited too.
 */
Datum
catalog_pre_request(PG_FUNCTION_ARGS)
{
	RateLimitPreRequest();
	CsrfCheck();
	PG_RETURN_VOID();
}
