import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose'
import { AppError } from '../errors.js'

/**
 * The sidecar's assertion signing key (EC P-256, ES256) for Keycloak's JWT Authorization Grant;
 * jose signs and computes the key id.
 */

/** A public key as the identity provider's JWKS carries it. */
export interface PublicJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
  kid: string
  alg: 'ES256'
  /** Keycloak 26.7.3 skips JWKS entries without `use: "sig"`: the grant then fails with "Invalid signature" */
  use: 'sig'
}

export interface SigningKey {
  /** RFC 7638 JWK thumbprint of the public key */
  kid: string
  privateKey: CryptoKey
  publicJwk: PublicJwk
  createdAt: Date
}

/** The JSON-safe form the caller stores (encrypted: it holds the private key). */
export interface StoredSigningKey {
  v: 1
  kid: string
  createdAt: string
  privateJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string }
}

export interface AssertionClaims {
  /** `iss`: the identity provider's configured issuer */
  issuer: string
  /** `sub`: the federated identity's userId (the Nextcloud uid) */
  subject: string
  /** `aud`: the realm's issuer URL exactly as discovery reports it */
  audience: string
  /** lifetime from `now`; Keycloak also bounds it by the IdP's max assertion age */
  ttlSeconds: number
  now?: Date
}

const ALG = 'ES256'

/** Generates a fresh P-256 key pair. */
export async function generateSigningKey(now: Date = new Date()): Promise<SigningKey> {
  const pair = await generateKeyPair(ALG, { extractable: true })
  return fromPrivateJwk(checkPrivateJwk(await exportJWK(pair.privateKey)), now)
}

/** The storable form of `key`, private part included. */
export async function exportSigningKey(key: SigningKey): Promise<StoredSigningKey> {
  const privateJwk = checkPrivateJwk(await exportJWK(key.privateKey))
  return { v: 1, kid: key.kid, createdAt: key.createdAt.toISOString(), privateJwk }
}

/** Rebuilds a key from its stored form; a corrupted or foreign record is an INTERNAL error. */
export async function importSigningKey(stored: StoredSigningKey): Promise<SigningKey> {
  if (stored?.v !== 1) {
    throw new AppError('INTERNAL', 'stored signing key has an unknown format')
  }
  const createdAt = new Date(stored.createdAt)
  if (Number.isNaN(createdAt.getTime())) {
    throw new AppError('INTERNAL', 'stored signing key has an invalid creation date')
  }
  const key = await fromPrivateJwk(checkPrivateJwk(stored.privateJwk), createdAt)
  if (key.kid !== stored.kid) {
    throw new AppError('INTERNAL', 'stored signing key does not match its key id')
  }
  return key
}

/** What a stored key needs of the store: a secret made once, then the same for every replica. */
export interface SigningKeySecrets {
  getOrCreateSecret(name: string, generate: () => string | Promise<string>): Promise<string>
}

/**
 * The signing key kept (sealed, as the store keeps secrets) under `name`: generated the first
 * time, with `now` as its creation date, then read back on every call. A record that is not JSON
 * or not a key is an INTERNAL error.
 */
export async function loadOrCreateSigningKey(
  store: SigningKeySecrets,
  name: string,
  now: () => Date = () => new Date(),
): Promise<SigningKey> {
  const raw = await store.getOrCreateSecret(name, async () =>
    JSON.stringify(await exportSigningKey(await generateSigningKey(now()))),
  )
  let stored: StoredSigningKey
  try {
    stored = JSON.parse(raw) as StoredSigningKey
  } catch (cause) {
    throw new AppError('INTERNAL', 'stored signing key is not valid JSON', { cause })
  }
  return importSigningKey(stored)
}

/** RFC 7638 thumbprint (SHA-256) of the public key: the key id Keycloak matches. */
export function jwkThumbprint(jwk: { crv: string; kty: string; x: string; y: string }) {
  return calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, 'sha256')
}

/**
 * Signs a JWT Authorization Grant assertion (compact JWS, ES256) with a fresh random `jti`:
 * Keycloak refuses a `jti` it has seen before unless the IdP allows reuse, which ours does not.
 *
 * @example
 * const assertion = await signAssertion(keys.current, {
 *   issuer: JWT_GRANT_ISSUER, subject: 'alice', audience: await tokens.issuer(), ttlSeconds: 60,
 * })
 */
export async function signAssertion(key: SigningKey, claims: AssertionClaims): Promise<string> {
  if (!Number.isInteger(claims.ttlSeconds) || claims.ttlSeconds <= 0) {
    throw new AppError(
      'INVALID_INPUT',
      'assertion lifetime must be a positive whole number of seconds',
    )
  }
  const iat = Math.floor((claims.now ?? new Date()).getTime() / 1000)
  return new SignJWT({
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.audience,
    iat,
    exp: iat + claims.ttlSeconds,
    jti: crypto.randomUUID(),
  })
    .setProtectedHeader({ alg: ALG, typ: 'JWT', kid: key.kid })
    .sign(key.privateKey)
}

type PrivateJwk = StoredSigningKey['privateJwk']

function checkPrivateJwk(jwk: JsonWebKey | undefined): PrivateJwk {
  const { kty, crv, x, y, d } = jwk ?? {}
  if (kty !== 'EC' || crv !== 'P-256' || !x || !y || !d) {
    throw new AppError('INTERNAL', 'signing key is not an EC P-256 private key')
  }
  return { kty, crv, x, y, d }
}

async function fromPrivateJwk(jwk: PrivateJwk, createdAt: Date): Promise<SigningKey> {
  let privateKey: CryptoKey
  try {
    // Extractable so exportSigningKey can hand it to the encrypted store; nothing else exports it.
    privateKey = await importJWK(jwk, ALG, { extractable: true })
  } catch (cause) {
    throw new AppError('INTERNAL', 'signing key cannot be imported', { cause })
  }
  const kid = await jwkThumbprint(jwk)
  const publicJwk: PublicJwk = {
    kty: 'EC',
    crv: 'P-256',
    x: jwk.x,
    y: jwk.y,
    kid,
    alg: 'ES256',
    use: 'sig',
  }
  return { kid, privateKey, publicJwk, createdAt }
}
