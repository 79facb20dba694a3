import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { expect } from 'vitest'

/**
 * Verifies an RS256 access token with jose against the JWKS that `certs` answers (the realm's
 * `…/protocol/openid-connect/certs`, directly or through a proxy) and returns its claims.
 */
export async function verifiedClaims(
  jwt: string,
  certs: () => Promise<Response>,
): Promise<Record<string, unknown>> {
  const { kid, alg } = decodeProtectedHeader(jwt)
  expect(alg).toBe('RS256')
  const res = await certs()
  expect(res.status, 'the realm JWKS').toBe(200)
  const jwks = (await res.json()) as JSONWebKeySet
  expect(
    jwks.keys.find((k) => k.kid === kid),
    `kid ${kid} in the realm JWKS`,
  ).toBeDefined()
  const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks), { algorithms: ['RS256'] })
  return payload
}
