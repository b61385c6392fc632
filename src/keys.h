/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Server-side secrets of catalog.signing_key, by purpose.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_KEYS_H
#define CATALOG_KEYS_H

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "nodes/pg_list.h"

/* Length of SigningKeyHmac's output: a full HMAC-SHA256. */
#define SIGNING_MAC_LEN		PG_SHA256_DIGEST_LENGTH

/* One row of catalog.signing_key. */
typedef struct SigningKey
{
	int			kid;
	bytea	   *secret;
} SigningKey;

extern List *SigningKeysLoad(const char *purpose);
extern SigningKey *SigningKeyFind(List *keys, int kid);
extern void SigningKeysWipe(List *keys);
extern void SigningKeyHmac(const SigningKey *key, const void *data, size_t len,
						   uint8 *mac);

/*
 * SHA-256 through core's cryptohash (the audit row and chain hashes, the
 * idempotency fingerprint, long rate limiter keys); every failure raises an
 * error.  Sha256End writes PG_SHA256_DIGEST_LENGTH bytes and frees ctx.
 */
extern pg_cryptohash_ctx *Sha256Begin(void);
extern void Sha256Update(pg_cryptohash_ctx *ctx, const void *data, size_t len);
extern void Sha256End(pg_cryptohash_ctx *ctx, uint8 *out);

#endif							/* CATALOG_KEYS_H */
