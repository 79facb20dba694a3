import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { aUser, type UserRecord } from '../../test/builders.js'
import { verifiedClaims } from '../../test/jwt.js'
import type { Config } from '../config/config.js'
import { type Database, openDatabase } from '../db/client.js'
import { createSecretBox } from '../db/crypto.js'
import { createStore, type Store } from '../db/store.js'
import { AppError, isAppError } from '../errors.js'
import { createKeycloakAdmin, type KcAdmin } from '../keycloak/admin.js'
import { bootstrapRealm } from '../keycloak/bootstrap.js'
import {
  clientGrantAttributes,
  identityProviderRep,
  JWT_GRANT_IDP_ALIAS,
  JWT_GRANT_ISSUER,
} from '../keycloak/jwt-grant.js'
import { createTokenClient, type TokenClient } from '../keycloak/token-client.js'
import { silentLogger } from '../log.js'
import { SyncEngine, type SyncSource } from '../sync/engine.js'
import { KeycloakTarget } from '../sync/keycloak-target.js'
import { MANAGED_ATTRIBUTE, NEXTCLOUD_UID_PATTERN, UID_ATTRIBUTE } from '../sync/model.js'
import { createTokenService, type TokenService, type TokenServiceDeps } from './service.js'
import type { Jwks } from './signing-key-store.js'

// The shared global setup provides a running Keycloak; without one this suite must fail, not skip.
const KEYCLOAK_URL = process.env.TEST_KEYCLOAK_URL
const ADMIN = process.env.TEST_KEYCLOAK_ADMIN
const ADMIN_PASSWORD = process.env.TEST_KEYCLOAK_ADMIN_PASSWORD

const log = silentLogger()
const realm = `tokens-${randomUUID().slice(0, 8)}`
const CLIENT = 'opentalk'
const consumer = { name: 'int-test', clients: [CLIENT] }
const LOAD_USERS = 100

const policy: Config['sync'] = {
  intervalSeconds: 0,
  deletePolicy: 'disable',
  guardPercent: 100,
  gateGroups: [],
  roleMappings: [],
  profileFields: [],
  pageSize: 500,
  concurrency: 6,
}

let baseUrl: string
let admin: KcAdmin
let storageDir: string
let database: Database
let store: Store
let engine: SyncEngine
/** Nextcloud as the sync sees it */
const directory = new Map<string, UserRecord>()
/** every service a test built: the sync tells all of them about revoked users */
const services: TokenService[] = []

const source: SyncSource = {
  readAll: async () => ({ users: [...directory.values()], groups: [] }),
  readUser: async (uid) => ({ user: directory.get(uid) ?? null, groups: [] }),
}

/** Counts what reaches Keycloak's token endpoint, by grant type and by user. */
function countingTokenClient() {
  const grants: string[] = []
  let requests = 0
  const countingFetch: typeof fetch = async (input, init) => {
    requests++
    const body = init?.body
    if (body instanceof URLSearchParams && body.has('grant_type')) {
      grants.push(body.get('grant_type') ?? '')
    }
    return fetch(input, init)
  }
  const client = createTokenClient({ backchannelUrl: baseUrl, realm, log, fetch: countingFetch })
  return {
    client,
    grants,
    requests: () => requests,
    reset: () => {
      grants.length = 0
      requests = 0
    },
  }
}

async function updateIdentityProvider(jwks: Jwks): Promise<void> {
  await admin.identityProviders.update(
    { realm, alias: JWT_GRANT_IDP_ALIAS },
    identityProviderRep({ alias: JWT_GRANT_IDP_ALIAS, issuer: JWT_GRANT_ISSUER, publicJwks: jwks }),
  )
}

/** What the lead implements with the admin API: the managed user's password, never temporary. */
async function setPassword(uid: string, password: string): Promise<void> {
  const [user] = await admin.users.find({ realm, username: uid.toLowerCase(), exact: true })
  if (!user?.id || user.attributes?.[UID_ATTRIBUTE]?.[0] !== uid) {
    throw new AppError('NOT_FOUND', `no managed Keycloak user for "${uid}"`)
  }
  await admin.users.resetPassword({
    realm,
    id: user.id,
    credential: { type: 'password', value: password, temporary: false },
  })
}

function service(
  mode: 'jwt' | 'password',
  tokenClient: TokenClient,
  extra: Partial<TokenServiceDeps> = {},
): TokenService {
  const built = createTokenService({
    config: { realm, clients: [CLIENT], tokenMode: mode },
    store,
    tokenClient,
    engine,
    findUser: async (uid) =>
      [...directory.values()].find((u) => u.id.toLowerCase() === uid.toLowerCase()) ?? null,
    groupMembers: async (gid) =>
      [...directory.values()].filter((u) => u.groups?.includes(gid)).map((u) => u.id),
    clientSecret: async (clientId) =>
      store.getOrCreateSecret(`client-secret:${clientId}`, () => randomUUID()),
    setPassword,
    onKeysChanged: updateIdentityProvider,
    log,
    ...extra,
  })
  services.push(built)
  return built
}

function addToNextcloud(uid: string, enabled = true): void {
  directory.set(uid, aUser({ id: uid, displayname: `Test ${uid}`, enabled }))
}

/** The access token's claims, its signature checked with the realm's JWKS. */
function claimsOf(jwt: string): Promise<Record<string, unknown>> {
  return verifiedClaims(jwt, () =>
    fetch(`${baseUrl}/realms/${realm}/protocol/openid-connect/certs`),
  )
}

async function userinfoStatus(accessToken: string): Promise<number> {
  const res = await fetch(`${baseUrl}/realms/${realm}/protocol/openid-connect/userinfo`, {
    headers: { authorization: `Bearer ${accessToken}` },
  })
  await res.body?.cancel()
  return res.status
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  )
}

/** 200 requests for 100 users, shuffled, all at once. */
async function burst(tokens: TokenService, prefix: string) {
  const users = Array.from({ length: LOAD_USERS }, (_, i) => `${prefix}${i}`)
  const requests = [...users, ...users].sort(() => Math.random() - 0.5)
  const results = await Promise.allSettled(
    requests.map((userId) => tokens.issue({ consumer, userId, clientId: CLIENT })),
  )
  return { users, requests, results }
}

function subjectOfGrants(spy: {
  mock: { calls: Array<[{ assertion?: string; username?: string }]> }
}) {
  return spy.mock.calls.map(([req]) =>
    req.assertion
      ? JSON.parse(Buffer.from(req.assertion.split('.')[1] ?? '', 'base64url').toString()).sub
      : req.username,
  )
}

beforeAll(async () => {
  if (!KEYCLOAK_URL || !ADMIN || !ADMIN_PASSWORD) {
    throw new Error(
      'TEST_KEYCLOAK_URL, TEST_KEYCLOAK_ADMIN and TEST_KEYCLOAK_ADMIN_PASSWORD must point at a running Keycloak',
    )
  }
  baseUrl = KEYCLOAK_URL.replace(/\/+$/, '')
  admin = createKeycloakAdmin({ baseUrl, username: ADMIN, password: ADMIN_PASSWORD, realm, log })
  storageDir = await mkdtemp(join(tmpdir(), 'keycloak-exapp-tokens-'))
  database = await openDatabase({ storageDir, log })
  store = createStore(database, createSecretBox('tokens-int-test-key-0123456789abcdef'))
  engine = new SyncEngine({
    realm,
    source,
    target: () =>
      new KeycloakTarget({
        admin,
        realm,
        managedRoles: [],
        profileAttributes: [],
        idpAlias: JWT_GRANT_IDP_ALIAS,
      }),
    store,
    lock: (key) => database.lock(key),
    policy,
    log,
    onUserRevoked: (uid) => {
      for (const s of services) {
        s.revokeUser(uid)
      }
    },
  })

  // What the lead's bootstrap does: the IdP trusts publicJwks() before any grant or user link.
  const keysOwner = service('jwt', createTokenClient({ backchannelUrl: baseUrl, realm, log }))
  await bootstrapRealm(
    admin,
    {
      realm,
      profile: {
        markerAttributes: [MANAGED_ATTRIBUTE, UID_ATTRIBUTE],
        profileAttributes: [],
        usernamePattern: NEXTCLOUD_UID_PATTERN,
      },
      clients: [
        {
          clientId: CLIENT,
          secret: await store.getOrCreateSecret(`client-secret:${CLIENT}`, () => randomUUID()),
          // both modes share this realm
          directAccessGrants: true,
          attributes: clientGrantAttributes({ idpAlias: JWT_GRANT_IDP_ALIAS }),
        },
      ],
      roles: [],
      identityProvider: identityProviderRep({
        alias: JWT_GRANT_IDP_ALIAS,
        issuer: JWT_GRANT_ISSUER,
        publicJwks: await keysOwner.publicJwks(),
      }),
    },
    log,
  )
  for (const uid of [
    'alice',
    'bob',
    'carol',
    'erin',
    'frank',
    'gina',
    'pw-alice',
    'pw-bob',
    'pw-erin',
    'pw-frank',
  ]) {
    addToNextcloud(uid)
  }
  for (let i = 0; i < LOAD_USERS; i++) {
    addToNextcloud(`jwt-load${i}`)
    addToNextcloud(`pw-load${i}`)
  }
  const run = await engine.runFull({ trigger: 'init' })
  expect(run.status, run.message).toBe('succeeded')
}, 600_000)

afterAll(async () => {
  for (const s of services) {
    await s.stop()
  }
  if (admin) {
    await admin.realms.del({ realm }).catch(() => undefined)
  }
  await database?.close()
  if (storageDir) {
    await rm(storageDir, { recursive: true, force: true })
  }
})

describe('tokens against Keycloak, JWT mode', () => {
  it('mints a token that verifies against the realm JWKS and works at userinfo', async () => {
    const tokens = service('jwt', countingTokenClient().client)
    const set = await tokens.issue({ consumer, userId: 'alice', clientId: CLIENT })

    expect(set).toMatchObject({ refresh_token: '', token_type: 'Bearer' })
    expect(set.id_token).not.toBe('')
    expect(set.expires_in).toBeGreaterThan(0)
    expect(await claimsOf(set.access_token)).toMatchObject({
      azp: CLIENT,
      preferred_username: 'alice',
    })
    expect(await userinfoStatus(set.access_token)).toBe(200)
    // The issuance record is queued off the request path; a clean stop writes it.
    await tokens.stop()
    expect(await store.countIssuances({ userId: 'alice', outcome: 'issued' })).toBe(1)
  })

  it('serves a cached token without calling Keycloak', async () => {
    const counted = countingTokenClient()
    const tokens = service('jwt', counted.client)
    const first = await tokens.issue({ consumer, userId: 'bob', clientId: CLIENT })
    counted.reset()

    const second = await tokens.issue({ consumer, userId: 'bob', clientId: CLIENT })
    expect(counted.requests()).toBe(0)
    expect(second.access_token).toBe(first.access_token)
  })

  it('refuses a user disabled in Nextcloud with FORBIDDEN and hands out no cached token', async () => {
    const counted = countingTokenClient()
    const tokens = service('jwt', counted.client)
    await tokens.issue({ consumer, userId: 'carol', clientId: CLIENT })

    addToNextcloud('carol', false)
    const sync = await engine.runUser('carol', 'user')
    expect(sync.synced).toBe(true)
    counted.reset()

    const err = await errorOf(tokens.issue({ consumer, userId: 'carol', clientId: CLIENT }))
    expect(isAppError(err, 'FORBIDDEN'), String(err)).toBe(true)
    expect(counted.grants).toEqual(['urn:ietf:params:oauth:grant-type:jwt-bearer'])
  })

  it('provisions a Nextcloud user Keycloak does not know yet on its first request', async () => {
    addToNextcloud('dave')
    const tokens = service('jwt', countingTokenClient().client)
    const set = await tokens.issue({ consumer, userId: 'dave', clientId: CLIENT })
    expect((await claimsOf(set.access_token)).preferred_username).toBe('dave')
  })

  it('gives a uid asked in another case the token of the Nextcloud user it names', async () => {
    addToNextcloud('Erika.Musterfrau')
    await engine.runUser('Erika.Musterfrau', 'user')
    const counted = countingTokenClient()
    const tokens = service('jwt', counted.client)
    const set = await tokens.issue({ consumer, userId: 'erika.musterfrau', clientId: CLIENT })
    expect((await claimsOf(set.access_token)).preferred_username).toBe('erika.musterfrau')
    const exact = await tokens.issue({ consumer, userId: 'Erika.Musterfrau', clientId: CLIENT })
    expect(exact.access_token).toBe(set.access_token)
  })

  it('answers NOT_FOUND for a uid Nextcloud does not have', async () => {
    const tokens = service('jwt', countingTokenClient().client)
    const err = await errorOf(tokens.issue({ consumer, userId: 'nobody', clientId: CLIENT }))
    expect(isAppError(err, 'NOT_FOUND'), String(err)).toBe(true)
  })

  it('answers 200 concurrent requests for 100 users with exactly one grant per user', async () => {
    const counted = countingTokenClient()
    const jwtGrant = vi.spyOn(counted.client, 'jwtGrant')
    const tokens = service('jwt', counted.client)
    const { users, results } = await burst(tokens, 'jwt-load')

    const failed = results.filter((r) => r.status === 'rejected')
    expect(failed, String(failed[0] && (failed[0] as PromiseRejectedResult).reason)).toEqual([])
    expect(counted.grants).toHaveLength(LOAD_USERS)
    expect(subjectOfGrants(jwtGrant).sort()).toEqual([...users].sort())
  })

  it('keeps minting after a restart without touching the key or the identity provider', async () => {
    const before = await admin.identityProviders.findOne({ realm, alias: JWT_GRANT_IDP_ALIAS })
    const first = service('jwt', countingTokenClient().client)
    await first.issue({ consumer, userId: 'erin', clientId: CLIENT })

    const onKeysChanged = vi.fn(updateIdentityProvider)
    const restarted = service('jwt', countingTokenClient().client, { onKeysChanged })
    expect(await restarted.publicJwks()).toEqual(await first.publicJwks())
    const set = await restarted.issue({ consumer, userId: 'erin', clientId: CLIENT })

    expect(await userinfoStatus(set.access_token)).toBe(200)
    expect(onKeysChanged).not.toHaveBeenCalled()
    const after = await admin.identityProviders.findOne({ realm, alias: JWT_GRANT_IDP_ALIAS })
    expect(after?.config).toEqual(before?.config)
  })

  it('rotates the key: both are trusted for the grace period, then a stale replica reloads', async () => {
    const rotating = service('jwt', countingTokenClient().client, { keyGraceMs: 1500 })
    const replica = service('jwt', countingTokenClient().client)
    await replica.issue({ consumer, userId: 'frank', clientId: CLIENT })

    const { kid, previousKid } = await rotating.rotateSigningKey()
    const idp = await admin.identityProviders.findOne({ realm, alias: JWT_GRANT_IDP_ALIAS })
    const trusted = JSON.parse(idp?.config?.publicKeySignatureVerifier ?? '{}') as Jwks
    expect(trusted.keys.map((k) => k.kid)).toEqual([kid, previousKid])

    await rotating.issue({ consumer, userId: 'gina', clientId: CLIENT })
    // the replica still signs with the previous key, which is trusted during the grace period
    replica.revokeUser('frank')
    await replica.issue({ consumer, userId: 'frank', clientId: CLIENT })

    await vi.waitFor(
      async () => {
        const now = await admin.identityProviders.findOne({ realm, alias: JWT_GRANT_IDP_ALIAS })
        const keys = JSON.parse(now?.config?.publicKeySignatureVerifier ?? '{}') as Jwks
        expect(keys.keys.map((k) => k.kid)).toEqual([kid])
      },
      { timeout: 10_000, interval: 250 },
    )
    replica.revokeUser('frank')
    const set = await replica.issue({ consumer, userId: 'frank', clientId: CLIENT })
    expect(await userinfoStatus(set.access_token)).toBe(200)
    expect((await replica.publicJwks()).keys[0]?.kid).toBe(kid)
  })
})

describe('tokens against Keycloak, password mode', () => {
  it('sets a password once and mints a token that verifies and works at userinfo', async () => {
    const spy = vi.fn(setPassword)
    const tokens = service('password', countingTokenClient().client, { setPassword: spy })
    const set = await tokens.issue({ consumer, userId: 'pw-alice', clientId: CLIENT })

    expect(set.refresh_token).not.toBe('')
    expect(set.id_token).not.toBe('')
    expect((await claimsOf(set.access_token)).preferred_username).toBe('pw-alice')
    expect(await userinfoStatus(set.access_token)).toBe(200)
    expect(spy).toHaveBeenCalledTimes(1)
    expect(await store.getUserPassword(realm, 'pw-alice')).toBeDefined()
  })

  it('serves the cache without calls, then refreshes instead of logging in again', async () => {
    let now = Date.now()
    const counted = countingTokenClient()
    const tokens = service('password', counted.client, { now: () => now })
    await tokens.issue({ consumer, userId: 'pw-bob', clientId: CLIENT })
    counted.reset()

    await tokens.issue({ consumer, userId: 'pw-bob', clientId: CLIENT })
    expect(counted.requests()).toBe(0)

    now += 290_000
    const refreshed = await tokens.issue({ consumer, userId: 'pw-bob', clientId: CLIENT })
    expect(counted.grants).toEqual(['refresh_token'])
    expect(await userinfoStatus(refreshed.access_token)).toBe(200)
  })

  it('refuses a user disabled in Nextcloud with FORBIDDEN', async () => {
    addToNextcloud('pw-carol')
    const tokens = service('password', countingTokenClient().client)
    await tokens.issue({ consumer, userId: 'pw-carol', clientId: CLIENT })
    addToNextcloud('pw-carol', false)
    await engine.runUser('pw-carol', 'user')

    const err = await errorOf(tokens.issue({ consumer, userId: 'pw-carol', clientId: CLIENT }))
    expect(isAppError(err, 'FORBIDDEN'), String(err)).toBe(true)
  })

  it('answers 200 concurrent requests for 100 users with one login per user', async () => {
    const counted = countingTokenClient()
    const passwordGrant = vi.spyOn(counted.client, 'passwordGrant')
    const tokens = service('password', counted.client)
    const { users, results } = await burst(tokens, 'pw-load')

    const failed = results.filter((r) => r.status === 'rejected')
    expect(failed, String(failed[0] && (failed[0] as PromiseRejectedResult).reason)).toEqual([])
    expect(counted.grants).toHaveLength(LOAD_USERS)
    expect(subjectOfGrants(passwordGrant).sort()).toEqual([...users].sort())
  })

  it('keeps logging in after a restart without resetting any password', async () => {
    await service('password', countingTokenClient().client).issue({
      consumer,
      userId: 'pw-erin',
      clientId: CLIENT,
    })
    const spy = vi.fn(setPassword)
    const restarted = service('password', countingTokenClient().client, { setPassword: spy })
    const set = await restarted.issue({ consumer, userId: 'pw-erin', clientId: CLIENT })
    expect(await userinfoStatus(set.access_token)).toBe(200)
    expect(spy).not.toHaveBeenCalled()
  })

  it('recovers once from a password an admin changed in Keycloak', async () => {
    const spy = vi.fn(setPassword)
    const tokens = service('password', countingTokenClient().client, { setPassword: spy })
    await tokens.issue({ consumer, userId: 'pw-frank', clientId: CLIENT })
    await setPassword('pw-frank', 'Changed-by-an-admin-1')
    tokens.revokeUser('pw-frank')
    // the old session still refreshes; only a new login needs the password
    await admin.users.logout({
      realm,
      id: (await admin.users.find({ realm, username: 'pw-frank', exact: true }))[0]?.id ?? '',
    })

    const set = await tokens.issue({ consumer, userId: 'pw-frank', clientId: CLIENT })
    expect(await userinfoStatus(set.access_token)).toBe(200)
    expect(spy).toHaveBeenCalledTimes(2)
  })
})
