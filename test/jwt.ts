import { createPublicKey, type JsonWebKey as NodeJwk, verify } from 'node:crypto'
import { expect } from 'vitest'

/**
 * Verifies an RS256 access token with node:crypto against the JWKS that `certs` answers (the
 * realm's `…/protocol/openid-connect/certs`, directly or through a proxy) and returns its claims.
 */
export async function verifiedClaims(
  jwt: string,
  certs: () => Promise<Response>,
): Promise<Record<string, unknown>> {
  const [header = '', payload = '', signature = ''] = jwt.split('.')
  const { kid, alg } = JSON.parse(Buffer.from(header, 'base64url').toString())
  expect(alg).toBe('RS256')
  const res = await certs()
  expect(res.status, 'the realm JWKS').toBe(200)
  const { keys } = (await res.json()) as { keys: Array<{ kid: string } & NodeJwk> }
  const jwk = keys.find((k) => k.kid === kid)
  expect(jwk, `kid ${kid} in the realm JWKS`).toBeDefined()
  const valid = verify(
    'sha256',
    Buffer.from(`${header}.${payload}`),
    createPublicKey({ key: jwk as NodeJwk, format: 'jwk' }),
    Buffer.from(signature, 'base64url'),
  )
  expect(valid, 'access token signature').toBe(true)
  return JSON.parse(Buffer.from(payload, 'base64url').toString())
}
