import { randomUUID } from 'node:crypto'
import KcAdminClient from '@keycloak/keycloak-admin-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifiedClaims } from '../../test/jwt.js'
import { isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { generateSigningKey, type SigningKey, signAssertion } from './assertion-signing.js'
import { grantRejection } from './grant-errors.js'
import {
  ASSERTION_TTL_SECONDS,
  clientGrantAttributes,
  federatedIdentityRep,
  identityProviderRep,
  JWT_GRANT_IDP_ALIAS,
  JWT_GRANT_ISSUER,
} from './jwt-grant.js'
import { createTokenClient, type TokenClient } from './token-client.js'

// The shared global setup provides a running Keycloak; without one this suite must fail, not skip.
const KEYCLOAK_URL = process.env.TEST_KEYCLOAK_URL
const ADMIN = process.env.TEST_KEYCLOAK_ADMIN
const ADMIN_PASSWORD = process.env.TEST_KEYCLOAK_ADMIN_PASSWORD

const realm = `jwt-grant-${randomUUID().slice(0, 8)}`
const client = { clientId: 'consumer', clientSecret: `secret-${randomUUID()}` }

let baseUrl: string
let admin: KcAdminClient
let tokens: TokenClient
/** The keys the IdP trusts here: `current` signs; `previous` stays trusted during a rotation. */
type SigningKeySet = { current: SigningKey; previous?: SigningKey }

let keys: SigningKeySet

function publicJwks(set: SigningKeySet) {
  return { keys: [set.current, ...(set.previous ? [set.previous] : [])].map((k) => k.publicJwk) }
}

async function putIdentityProvider(set: SigningKeySet) {
  const rep = identityProviderRep({
    alias: JWT_GRANT_IDP_ALIAS,
    issuer: JWT_GRANT_ISSUER,
    publicJwks: publicJwks(set),
  })
  await admin.identityProviders.update({ realm, alias: JWT_GRANT_IDP_ALIAS }, rep)
}

async function aLinkedUser(uid: string, extra: { password?: string } = {}) {
  const { id } = await admin.users.create({
    realm,
    username: uid,
    enabled: true,
    firstName: 'Test',
    lastName: uid,
    email: `${uid}@example.org`,
    emailVerified: true,
  })
  await admin.users.addToFederatedIdentity({
    realm,
    id,
    federatedIdentityId: JWT_GRANT_IDP_ALIAS,
    federatedIdentity: federatedIdentityRep(uid),
  })
  if (extra.password) {
    await admin.users.resetPassword({
      realm,
      id,
      credential: { type: 'password', value: extra.password, temporary: false },
    })
  }
  return id
}

async function assertionFor(uid: string, key: SigningKey = keys.current) {
  return signAssertion(key, {
    issuer: JWT_GRANT_ISSUER,
    subject: uid,
    audience: await tokens.issuer(),
    ttlSeconds: ASSERTION_TTL_SECONDS,
  })
}

async function mint(uid: string, opts: { key?: SigningKey; scope?: string } = {}) {
  return tokens.jwtGrant({
    ...client,
    scope: opts.scope,
    assertion: await assertionFor(uid, opts.key),
  })
}

/** The access token's claims, its signature checked with the realm's JWKS. */
function claimsOf(jwt: string): Promise<Record<string, unknown>> {
  return verifiedClaims(jwt, () =>
    fetch(`${baseUrl}/realms/${realm}/protocol/openid-connect/certs`),
  )
}

async function rejectionOf(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  return { err, rejection: grantRejection(err) }
}

beforeAll(async () => {
  if (!KEYCLOAK_URL || !ADMIN || !ADMIN_PASSWORD) {
    throw new Error(
      'TEST_KEYCLOAK_URL, TEST_KEYCLOAK_ADMIN and TEST_KEYCLOAK_ADMIN_PASSWORD must point at a running Keycloak',
    )
  }
  baseUrl = KEYCLOAK_URL.replace(/\/+$/, '')
  admin = new KcAdminClient({ baseUrl, realmName: 'master' })
  await admin.auth({
    grantType: 'password',
    clientId: 'admin-cli',
    username: ADMIN,
    password: ADMIN_PASSWORD,
  })
  await admin.realms.create({ realm, enabled: true })
  keys = { current: await generateSigningKey() }
  // The IdP must exist before users are linked: a link to a missing alias is silently dropped.
  await admin.identityProviders.create({
    ...identityProviderRep({
      alias: JWT_GRANT_IDP_ALIAS,
      issuer: JWT_GRANT_ISSUER,
      publicJwks: publicJwks(keys),
    }),
    realm,
  })
  await admin.clients.create({
    realm,
    clientId: client.clientId,
    publicClient: false,
    secret: client.clientSecret,
    standardFlowEnabled: false,
    directAccessGrantsEnabled: true,
    attributes: clientGrantAttributes({ idpAlias: JWT_GRANT_IDP_ALIAS }),
  })
  tokens = createTokenClient({ backchannelUrl: baseUrl, realm, log: silentLogger() })
})

afterAll(async () => {
  if (admin && KEYCLOAK_URL) {
    await admin.realms.del({ realm }).catch(() => undefined)
  }
})

describe('JWT Authorization Grant against Keycloak', () => {
  it('stores the identity provider as built, so a read-compare finds no difference', async () => {
    const stored = await admin.identityProviders.findOne({ realm, alias: JWT_GRANT_IDP_ALIAS })
    const desired = identityProviderRep({
      alias: JWT_GRANT_IDP_ALIAS,
      issuer: JWT_GRANT_ISSUER,
      publicJwks: publicJwks(keys),
    })
    expect(stored).toMatchObject(desired)
  })

  it('mints a token for a linked user that verifies against the realm JWKS and works at userinfo', async () => {
    const id = await aLinkedUser('alice')
    const set = await mint('alice', { scope: 'openid' })

    expect(set).toMatchObject({ refresh_token: '', refresh_expires_in: 0, token_type: 'Bearer' })
    expect(set.expires_in).toBeGreaterThan(0)
    expect(set.id_token).not.toBe('')

    const claims = await claimsOf(set.access_token)
    expect(claims).toMatchObject({
      iss: await tokens.issuer(),
      sub: id,
      azp: client.clientId,
      preferred_username: 'alice',
    })

    const userinfo = await fetch(`${baseUrl}/realms/${realm}/protocol/openid-connect/userinfo`, {
      headers: { authorization: `Bearer ${set.access_token}` },
    })
    expect(userinfo.status).toBe(200)
    expect(await userinfo.json()).toMatchObject({ sub: id, preferred_username: 'alice' })
  })

  it('returns no ID token without the openid scope', async () => {
    await aLinkedUser('bob')
    expect((await mint('bob')).id_token).toBe('')
  })

  it('refuses a disabled user with FORBIDDEN', async () => {
    const id = await aLinkedUser('carol')
    const user = await admin.users.findOne({ realm, id })
    await admin.users.update({ realm, id }, { ...user, enabled: false })

    const { err, rejection } = await rejectionOf(mint('carol'))
    expect(isAppError(err, 'FORBIDDEN'), String(err)).toBe(true)
    expect(rejection).toBe('user_disabled')
  })

  it('refuses a user whose link was removed, and an unknown uid, with FORBIDDEN', async () => {
    const id = await aLinkedUser('dave')
    await mint('dave')
    await admin.users.delFromFederatedIdentity({
      realm,
      id,
      federatedIdentityId: JWT_GRANT_IDP_ALIAS,
    })

    for (const uid of ['dave', 'nobody']) {
      const { err, rejection } = await rejectionOf(mint(uid))
      expect(isAppError(err, 'FORBIDDEN'), String(err)).toBe(true)
      expect(rejection).toBe('user_not_found')
    }
  })

  it('accepts each assertion once', async () => {
    await aLinkedUser('erin')
    const assertion = await assertionFor('erin')
    await tokens.jwtGrant({ ...client, assertion })

    const { err, rejection } = await rejectionOf(tokens.jwtGrant({ ...client, assertion }))
    expect(rejection).toBe('assertion_rejected')
    expect(String(err)).toContain('Token reuse detected')
  })

  it('refuses an assertion signed by a key the IdP does not know', async () => {
    await aLinkedUser('frank')
    const stranger = await generateSigningKey()
    const { err, rejection } = await rejectionOf(mint('frank', { key: stranger }))
    expect(isAppError(err, 'INTERNAL'), String(err)).toBe(true)
    expect(rejection).toBe('assertion_rejected')
  })

  it('keeps accepting the previous key during a rotation and stops once it is retired', async () => {
    await aLinkedUser('gina')
    const old = keys.current
    keys = { current: await generateSigningKey(), previous: keys.current }
    await putIdentityProvider(keys)

    await mint('gina', { key: keys.current })
    await mint('gina', { key: old })

    keys = { current: keys.current }
    await putIdentityProvider(keys)
    await mint('gina')
    expect((await rejectionOf(mint('gina', { key: old }))).rejection).toBe('assertion_rejected')
  })
})

describe('password grant fallback against Keycloak', () => {
  it('logs a complete user in and refreshes the session', async () => {
    await aLinkedUser('henry', { password: 'Henry-pw-1234' })
    const login = await tokens.passwordGrant({
      ...client,
      username: 'henry',
      password: 'Henry-pw-1234',
      scope: 'openid',
    })
    expect(login.refresh_token).not.toBe('')
    expect(login.id_token).not.toBe('')
    expect(login.refresh_expires_in).toBeGreaterThan(0)

    const refreshed = await tokens.refreshGrant({ ...client, refreshToken: login.refresh_token })
    expect((await claimsOf(refreshed.access_token)).preferred_username).toBe('henry')

    const { err, rejection } = await rejectionOf(
      tokens.passwordGrant({ ...client, username: 'henry', password: 'wrong-password' }),
    )
    expect(isAppError(err, 'FORBIDDEN'), String(err)).toBe(true)
    expect(rejection).toBe('invalid_credentials')
  })
})
