/*-------------------------------------------------------------------------
 *
 * token.h
 *	  CSRF tokens: signed double-submit tokens bound to the session.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_TOKEN_H
#define CATALOG_TOKEN_H

extern void CsrfCheck(void);

#endif							/* CATALOG_TOKEN_H */
