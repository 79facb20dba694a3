import { createPublicKey, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import {
  exportSigningKey,
  generateSigningKey,
  importSigningKey,
  jwkThumbprint,
  loadOrCreateSigningKey,
  type PublicJwk,
  type StoredSigningKey,
  signAssertion,
} from './assertion-signing.js'

// RFC 7515 appendix A.3 (the ES256 example key); its thumbprint comes from an independent
// implementation (jose's calculateJwkThumbprint).
const RFC_KEY = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI',
} as const
const RFC_KID = 'oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U'

function aStoredKey(overrides: Partial<StoredSigningKey> = {}): StoredSigningKey {
  return {
    v: 1,
    kid: RFC_KID,
    createdAt: '2026-01-01T00:00:00.000Z',
    privateJwk: { ...RFC_KEY },
    ...overrides,
  }
}

function decode(jws: string) {
  const [header, payload, signature] = jws.split('.')
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()),
    signingInput: `${header}.${payload}`,
    signature: Buffer.from(signature ?? '', 'base64url'),
  }
}

/** Verifies with node:crypto, independently of the jose code under test. */
function verifiesWith(jwk: PublicJwk, jws: string): boolean {
  const { signingInput, signature } = decode(jws)
  const key = createPublicKey({
    key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    format: 'jwk',
  })
  return verify('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }, signature)
}

const claims = {
  issuer: 'https://keycloak-exapp.invalid/nextcloud-sidecar',
  subject: 'alice',
  audience: 'https://nc.example/realms/commonground',
  ttlSeconds: 60,
}

describe('jwkThumbprint', () => {
  it('matches an independent RFC 7638 implementation', async () => {
    expect(await jwkThumbprint(RFC_KEY)).toBe(RFC_KID)
  })
})

describe('generateSigningKey', () => {
  it('makes a P-256 key whose kid is its thumbprint and whose public JWK Keycloak accepts', async () => {
    const key = await generateSigningKey(new Date('2026-03-01T00:00:00Z'))
    expect(key.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
    expect(key.kid).toBe(await jwkThumbprint(key.publicJwk))
    expect(key.publicJwk.kid).toBe(key.kid)
    expect(key.publicJwk).not.toHaveProperty('d')
    expect(key.createdAt.toISOString()).toBe('2026-03-01T00:00:00.000Z')
  })

  it('makes a different key each time', async () => {
    const [a, b] = await Promise.all([generateSigningKey(), generateSigningKey()])
    expect(a.kid).not.toBe(b.kid)
  })
})

describe('exportSigningKey / importSigningKey', () => {
  it('round-trips through JSON and still signs for the same public key', async () => {
    const key = await generateSigningKey()
    const stored = JSON.parse(JSON.stringify(await exportSigningKey(key))) as StoredSigningKey
    expect(stored).toMatchObject({ v: 1, kid: key.kid, createdAt: key.createdAt.toISOString() })
    expect(stored.privateJwk.d).toBeTypeOf('string')

    const again = await importSigningKey(stored)
    expect(again.kid).toBe(key.kid)
    expect(again.publicJwk).toEqual(key.publicJwk)
    expect(verifiesWith(key.publicJwk, await signAssertion(again, claims))).toBe(true)
  })

  it('imports a known key with its known kid', async () => {
    const key = await importSigningKey(aStoredKey())
    expect(key.kid).toBe(RFC_KID)
    expect(verifiesWith(key.publicJwk, await signAssertion(key, claims))).toBe(true)
  })

  it.each([
    ['an unknown format version', { v: 2 as 1 }],
    ['a kid that is not the key thumbprint', { kid: 'not-the-thumbprint' }],
    ['an invalid creation date', { createdAt: 'yesterday' }],
    ['a public key only', { privateJwk: { ...RFC_KEY, d: '' } }],
    [
      'a private part that does not match the public point',
      { privateJwk: { ...RFC_KEY, d: 'jpsQnnGQmL-YBIffH1136cLyQ9qKC9xA0A3sbS0Rcrk' } },
    ],
    ['another curve', { privateJwk: { ...RFC_KEY, crv: 'P-384' as 'P-256' } }],
  ])('refuses %s', async (_name, overrides) => {
    const err = await importSigningKey(aStoredKey(overrides)).catch((e: unknown) => e)
    expect(isAppError(err, 'INTERNAL'), String(err)).toBe(true)
  })
})

describe('loadOrCreateSigningKey', () => {
  /** An in-memory secret store that, like the real one, generates a secret only once. */
  function secrets(initial: Record<string, string> = {}) {
    const values = new Map(Object.entries(initial))
    let generated = 0
    return {
      values,
      generated: () => generated,
      async getOrCreateSecret(name: string, generate: () => string | Promise<string>) {
        if (!values.has(name)) {
          generated++
          values.set(name, await generate())
        }
        return values.get(name) as string
      },
    }
  }

  it('generates the key once, dated by `now`, and reads the same key back afterwards', async () => {
    const store = secrets()
    const now = new Date('2026-05-01T12:00:00.000Z')
    const first = await loadOrCreateSigningKey(store, 'k', () => now)
    const again = await loadOrCreateSigningKey(store, 'k', () => new Date())
    expect(store.generated()).toBe(1)
    expect(again.kid).toBe(first.kid)
    expect(again.createdAt).toEqual(now)
    expect(JSON.parse(store.values.get('k') as string).kid).toBe(first.kid)
    expect(verifiesWith(first.publicJwk, await signAssertion(again, claims))).toBe(true)
  })

  it('keeps keys of different names apart', async () => {
    const store = secrets()
    const a = await loadOrCreateSigningKey(store, 'a')
    const b = await loadOrCreateSigningKey(store, 'b')
    expect(a.kid).not.toBe(b.kid)
  })

  it('reads a stored key as it is and refuses a record that is not JSON', async () => {
    const known = await loadOrCreateSigningKey(secrets({ k: JSON.stringify(aStoredKey()) }), 'k')
    expect(known.kid).toBe(RFC_KID)
    const err = await loadOrCreateSigningKey(secrets({ k: '{not json' }), 'k').catch(
      (e: unknown) => e,
    )
    expect(isAppError(err, 'INTERNAL'), String(err)).toBe(true)
  })
})

describe('signAssertion', () => {
  it('signs an ES256 JWT with kid, the given claims, iat/exp from now and a jti', async () => {
    const key = await generateSigningKey()
    const now = new Date('2026-05-01T12:00:00.900Z')
    const jws = await signAssertion(key, { ...claims, now })
    const { header, payload } = decode(jws)

    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid })
    expect(payload).toEqual({
      iss: claims.issuer,
      sub: 'alice',
      aud: claims.audience,
      iat: 1777636800,
      exp: 1777636860,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    })
    expect(verifiesWith(key.publicJwk, jws)).toBe(true)
  })

  it('never repeats a jti, since Keycloak accepts each one once', async () => {
    const key = await generateSigningKey()
    const jtis = new Set<string>()
    for (let i = 0; i < 50; i++) {
      jtis.add(decode(await signAssertion(key, claims)).payload.jti)
    }
    expect(jtis.size).toBe(50)
  })

  it.each([0, -5, 1.5])('refuses a lifetime of %s seconds', async (ttlSeconds) => {
    const key = await generateSigningKey()
    const err = await signAssertion(key, { ...claims, ttlSeconds }).catch((e: unknown) => e)
    expect(isAppError(err, 'INVALID_INPUT')).toBe(true)
  })
})
