/*-------------------------------------------------------------------------
 *
 * api.h
 *	  Helpers shared by the API functions: caller identity, error
 *	  reporting, cached SPI plans and the write wrapper.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_API_H
#define CATALOG_API_H

#include "common/jsonapi.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/proc.h"

/* SQLSTATEs of the error contract (DESIGN.md) that core does not define. */
#define ERRCODE_CATALOG_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')
#define ERRCODE_CATALOG_CONFLICT		MAKE_SQLSTATE('P','T','4','0','9')
#define ERRCODE_CATALOG_IDEMPOTENCY		MAKE_SQLSTATE('P','T','4','2','2')

/* Maximum length of an actor in code points. */
#define CATALOG_ACTOR_MAX		255
/* Maximum length of a correlation id, and of "<method> <path>". */
#define CATALOG_REQUEST_ID_MAX	128
#define CATALOG_VIA_MAX			300

/* A statement prepared once per backend and kept (SPI_keepplan). */
typedef struct ApiPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	SPIPlanPtr	plan;
} ApiPlan;

extern char *ApiClaim(const char *key);
extern JsonLexContext *ApiJsonLexer(const char *json, int len, bool need_escapes);
extern void ApiJsonLexerFree(JsonLexContext *lex);
extern char *ApiJsonStringText(const char *start, int len);
extern char *ApiJsonSetting(const char *name, const char *key);
extern char *ApiActor(void);

/* Where the actor came from (ApiActorSource; catalog.idempotency.actor_source). */
#define ACTOR_FROM_JWT			'j'
#define ACTOR_FROM_JWT_NUMBER	'n'
#define ACTOR_FROM_SETTING		's'
#define ACTOR_FROM_LOGIN		'l'
extern char *ApiActorSource(char *source);
extern const char *ApiRequestId(const char **raw);
extern char *ApiSanitizeRequestId(const char *s);
extern char *ApiDetailJson(const char *json);
extern int	ApiErrDetail(const char *fmt,...) pg_attribute_printf(1, 2);
extern char *ApiVia(void);
extern bool ApiCallerHasRole(const char *role);
extern bool ApiCallerSeesDrafts(void);
extern SPIPlanPtr ApiGetPlan(ApiPlan *p);
extern int	ApiExecute(ApiPlan *p, Datum *values, const char *nulls,
					   bool read_only, long count);
extern Datum ApiResultDatum(int row, int col, bool *isnull);
extern int64 ApiMonotonicNs(void);
extern int	ApiRowSecurityBegin(void);
extern void ApiRowSecurityEnd(int nest);
extern Datum ApiRunWrite(PGFunction fn, FunctionCallInfo fcinfo);

/* What ApiOwnerBegin saved, for ApiOwnerEnd. */
typedef struct ApiOwnerState
{
	Oid			save_userid;
	int			save_sec_context;
	int			nest;
} ApiOwnerState;

extern void ApiOwnerBegin(Oid fn_oid, ApiOwnerState *st);
extern void ApiOwnerEnd(ApiOwnerState *st);
extern void ApiRaiseNotFound(const char *what, int64 id) pg_attribute_noreturn();
extern void ApiRaiseStale(const char *what, int64 id, int32 expected,
						  int32 current) pg_attribute_noreturn();
extern void ApiRequireArg(FunctionCallInfo fcinfo, int argno, const char *field);

/*
 * The local id of the current transaction (the key of the per-transaction
 * caches): MyProc->lxid, which PostgreSQL 17 moved into MyProc->vxid.
 */
static inline LocalTransactionId
ApiCurrentLxid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

#endif							/* CATALOG_API_H */
