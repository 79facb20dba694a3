import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type { UserProfileConfig } from '@keycloak/keycloak-admin-client/lib/defs/userProfileMetadata.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { Hono } from 'hono'
import { createApp } from '../src/app.js'
import { randomSecret } from '../src/config/secrets.js'
import { AppError } from '../src/errors.js'
import type { AppEnv } from '../src/http/types.js'
import { createKeycloakAdmin, type KcAdmin } from '../src/keycloak/admin.js'
import { signAssertion } from '../src/keycloak/assertion-signing.js'
import {
  ASSERTION_TTL_SECONDS,
  federatedIdentityRep,
  JWT_GRANT_IDP_ALIAS,
  JWT_GRANT_ISSUER,
} from '../src/keycloak/jwt-grant.js'
import { createTokenClient } from '../src/keycloak/token-client.js'
import { type Logger, silentLogger } from '../src/log.js'
import { Metrics, metricsRoutes } from '../src/metrics.js'
import type { RunSummary } from '../src/sync/engine.js'
import { groupMarkers, userMarkers } from '../src/sync/model.js'
import { SigningKeys } from '../src/tokens/signing-key-store.js'
import type { Directory, UserRecord } from '../test/builders.js'
import type { CountingProxy } from '../test/counting-proxy.js'
import type { TestExApp } from '../test/exapp-harness.js'
import { httpLoad, type LoadResult, load, progress, timed } from './lib.js'

export interface SyncResult {
  ms: number
  /** requests that changed the realm (admin logins excluded) */
  writes: number
  /** the admin client's token renewals during the run */
  logins: number
  requests: Record<string, number>
  /** time with a request to Keycloak in flight (the rest is the app's own, or waiting on Nextcloud) */
  keycloakBusyMs: number
  counts: Record<string, number>
  failed: number
  status: string
  /** what the run planned against (the stored state or a full read) and why */
  basis?: RunSummary['basis']
}

/** One full run through the ExApp's real sync engine, Keycloak requests counted by the proxy. */
/** One sync run through the engine; `full` reads the realm from Keycloak instead of the stored state. */
export async function syncRun(
  t: TestExApp,
  proxy: CountingProxy,
  name: string,
  opts: { full?: boolean } = {},
) {
  proxy.reset()
  const ticker = setInterval(() => {
    const p = t.exapp.sync.progress()
    progress(
      `${name}: ${p?.phase ?? 'starting'}${p?.phase === 'applying' ? ` ${p.done}/${p.total}` : ''}, Keycloak requests ${JSON.stringify(proxy.counts())}`,
    )
  }, 5000)
  try {
    const { ms, value } = await timed<RunSummary>(() =>
      t.exapp.sync.runFull({ trigger: 'api', ...opts }),
    )
    const result: SyncResult = {
      ms,
      writes: proxy.writes(),
      logins: proxy.logins(),
      requests: proxy.counts(),
      keycloakBusyMs: Math.round(proxy.busyMs()),
      counts: value.counts,
      failed: value.failed,
      status: value.status,
      ...(value.basis ? { basis: value.basis } : {}),
    }
    progress(`${name}: ${value.status} in ${(ms / 1000).toFixed(1)} s, ${JSON.stringify(result)}`)
    if (value.status !== 'succeeded') {
      throw new Error(`${name} did not succeed: ${value.message} ${value.errors.join('; ')}`)
    }
    return result
  } finally {
    clearInterval(ticker)
  }
}

const splitName = (displayname: string) => {
  const at = displayname.indexOf(' ')
  return at < 0
    ? { firstName: displayname, lastName: displayname }
    : { firstName: displayname.slice(0, at), lastName: displayname.slice(at + 1) }
}

/**
 * The baseline: Keycloak's own bulk path. A fresh realm, the groups in one partial import, then
 * the users (carrying their group paths) in batches of `batch`, `ifResourceExists: SKIP`.
 */
export async function partialImportBaseline(
  kcConn: { url: string; admin: string; password: string },
  directory: Directory,
  batch = 500,
  /**
   * plain: usernames, names, emails, enabled, group paths. app: the representations the sync
   * writes, which carry more per user: its marker attributes (unmanaged attributes enabled) and
   * the two identity links (the JWT grant's provider and the realm login's), to two providers
   * made first; groups with their marker attributes
   */
  like: 'plain' | 'app' = 'plain',
): Promise<{ ms: number; realmMs: number }> {
  const realm = `bench-import-${randomSecret()
    .slice(0, 8)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}`
  const kc = createKeycloakAdmin({
    baseUrl: kcConn.url,
    username: kcConn.admin,
    password: kcConn.password,
    realm,
    log: silentLogger(),
  })
  const realmMs = (await timed(() => kc.realms.create({ realm, enabled: true }))).ms
  try {
    const app = like === 'app'
    if (app) {
      const profile = await kc.users.getProfile({ realm })
      await kc.users.updateProfile({
        ...profile,
        realm,
        unmanagedAttributePolicy: 'ENABLED' as UserProfileConfig['unmanagedAttributePolicy'],
      })
      for (const alias of [JWT_GRANT_IDP_ALIAS, 'nextcloud']) {
        await kc.identityProviders.create({
          realm,
          alias,
          providerId: 'oidc',
          enabled: true,
          config: {
            issuer: `https://${alias}.invalid`,
            authorizationUrl: `https://${alias}.invalid/authorize`,
            tokenUrl: `https://${alias}.invalid/token`,
            clientId: 'bench',
            clientSecret: 'bench',
          },
        })
      }
    }
    const groups: GroupRepresentation[] = directory.groups.map((g) => ({
      name: g.id,
      path: `/${g.id}`,
      ...(app ? { attributes: groupMarkers({ gid: g.id, displayName: g.displayname }) } : {}),
    }))
    const users: UserRepresentation[] = directory.users.map((u: UserRecord) => ({
      username: u.id,
      enabled: u.enabled,
      ...(u.email ? { email: u.email, emailVerified: true } : {}),
      ...splitName(u.displayname),
      groups: u.groups.map((g) => `/${g}`),
      ...(app
        ? {
            attributes: userMarkers(u.id),
            requiredActions: [],
            federatedIdentities: [JWT_GRANT_IDP_ALIAS, 'nextcloud'].map((alias) =>
              federatedIdentityRep(u.id, alias),
            ),
          }
        : {}),
    }))
    const { ms } = await timed(async () => {
      await kc.realms.partialImport({ realm, rep: { ifResourceExists: 'SKIP', groups } })
      for (let i = 0; i < users.length; i += batch) {
        const slice = users.slice(i, i + batch)
        const res = await kc.realms.partialImport({
          realm,
          rep: { ifResourceExists: 'SKIP', users: slice },
        })
        if (res.added !== slice.length) {
          throw new Error(`partialImport added ${res.added} of ${slice.length} users`)
        }
        progress(`sync-cold baseline: partialImport ${i + slice.length}/${users.length} users`)
      }
    })
    return { ms, realmMs }
  } finally {
    await kc.realms.del({ realm }).catch(() => undefined)
  }
}

/** 1% of the users changed in the fake Nextcloud: names, emails, one group each; some disabled. */
export function applyDelta(t: TestExApp, directory: Directory, disabledCount: number): string[] {
  const candidates = directory.users.filter((u) => u.id !== 'admin')
  const step = 100
  const changed: string[] = []
  const gids = directory.groups.map((g) => g.id).filter((g) => g !== 'admin')
  for (let i = 0; i < candidates.length; i += step) {
    const user = candidates[i] as UserRecord
    const n = changed.length
    const swapped = gids[(gids.indexOf(user.groups[0] ?? '') + 1) % gids.length] as string
    const groups = [...new Set([swapped, ...user.groups.slice(1)])].sort()
    t.nc.updateUser(user.id, {
      displayname: `Changed ${user.displayname}`,
      'display-name': `Changed ${user.displayname}`,
      email: `changed.${user.id}@example.org`,
      groups,
      ...(n < disabledCount ? { enabled: false } : {}),
    })
    changed.push(user.id)
  }
  return changed
}

/**
 * `count` requests to `POST /api/token` at `concurrency`, for `users` round-robin, to the ExApp
 * or (`url`) to another server that takes the same request, such as the HTTP floor. The requests
 * go out from a thread of their own (httpLoad).
 */
export function tokenLoad(
  t: TestExApp,
  users: readonly string[],
  count: number,
  concurrency: number,
  url = t.exapp.url,
): Promise<LoadResult> {
  const secret = t.exapp.config.consumers[0]?.secret ?? ''
  const clientId = t.exapp.config.keycloak.clients[0] ?? 'opentalk'
  const requests = Array.from({ length: count }, (_, i) => ({
    url: `${url}/api/token?client_id=${clientId}`,
    method: 'POST',
    headers: { 'X-API-SECRET': secret, 'X-NC-USER-ID': users[i % users.length] as string },
  }))
  return httpLoad(requests, concurrency)
}

/**
 * Bare JWT grants against Keycloak's token endpoint, signed with the ExApp's stored key: one
 * client for every load it runs, so like the ExApp it reaches Keycloak over connections it keeps.
 */
export async function bareJwtGrants(
  t: TestExApp,
  kcUrl: string,
): Promise<(users: readonly string[], concurrency: number) => Promise<LoadResult>> {
  const clientId = t.exapp.config.keycloak.clients[0] ?? 'opentalk'
  const key = await new SigningKeys({ store: t.exapp.store, log: silentLogger() }).key()
  const clientSecret = await t.exapp.store.getOrCreateSecret(`client-secret:${clientId}`, () => {
    throw new Error('the ExApp has no client secret yet')
  })
  const client = createTokenClient({ backchannelUrl: kcUrl, realm: t.realm, log: silentLogger() })
  const audience = await client.issuer()
  return (users, concurrency) =>
    load(users, concurrency, async (uid) => {
      const assertion = await signAssertion(key, {
        issuer: JWT_GRANT_ISSUER,
        subject: uid,
        audience,
        ttlSeconds: ASSERTION_TTL_SECONDS,
      })
      await client.jwtGrant({ clientId, clientSecret, scope: 'openid', assertion })
    })
}

/**
 * Bare password grants: a confidential client with direct access grants of our own in the
 * ExApp's realm, and a password set (by the admin API) on each of `users`.
 */
export async function barePasswordLoad(
  kc: KcAdmin,
  kcUrl: string,
  realm: string,
  users: readonly string[],
  concurrency: number,
): Promise<LoadResult> {
  const clientId = 'bench-password'
  const clientSecret = randomSecret()
  await kc.clients.create({
    clientId,
    enabled: true,
    publicClient: false,
    secret: clientSecret,
    directAccessGrantsEnabled: true,
    standardFlowEnabled: false,
  })
  const password = randomSecret()
  await load(users, 8, async (username) => {
    const [user] = await kc.users.find({ username, exact: true })
    if (!user?.id) {
      throw new Error(`no user ${username} in the realm`)
    }
    await kc.users.resetPassword({
      id: user.id,
      credential: { type: 'password', value: password, temporary: false },
    })
  })
  progress(`token baseline: passwords set for ${users.length} users`)
  const client = createTokenClient({ backchannelUrl: kcUrl, realm, log: silentLogger() })
  return load(users, concurrency, async (username) => {
    await client.passwordGrant({ clientId, clientSecret, scope: 'openid', username, password })
  })
}

/** One token answer from the ExApp, as a consumer gets it: the floor serves a body this size. */
export async function aTokenBody(t: TestExApp, uid: string): Promise<Record<string, unknown>> {
  const clientId = t.exapp.config.keycloak.clients[0] ?? 'opentalk'
  const res = await fetch(`${t.exapp.url}/api/token?client_id=${clientId}`, {
    method: 'POST',
    headers: {
      'X-API-SECRET': t.exapp.config.consumers[0]?.secret ?? '',
      'X-NC-USER-ID': uid,
    },
  })
  if (res.status !== 200) {
    throw new Error(`token for ${uid}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`)
  }
  return (await res.json()) as Record<string, unknown>
}

/**
 * The token API's floor: the app's own HTTP stack (createApp: the access log, the access table
 * and its consumer-secret check, the token metrics) on a server of its own, with a
 * `POST /api/token` that answers `body` without doing anything else. What the real route costs
 * beyond this is the token path's own.
 */
export async function startHttpFloor(
  t: TestExApp,
  body: Record<string, unknown>,
  log: Logger,
): Promise<{ url: string; close(): Promise<void> }> {
  const metrics = new Metrics(t.exapp.keycloak)
  const answer = metrics.timeTokens(async () => body)
  const api = new Hono<AppEnv>().post('/token', async (c) => {
    if (c.get('caller')?.kind !== 'consumer') {
      throw new AppError('FORBIDDEN', 'the floor answers consumers only')
    }
    c.header('Cache-Control', 'no-store')
    c.header('Pragma', 'no-cache')
    return c.json(await answer(), 200)
  })
  const app = createApp({
    config: t.exapp.config,
    log,
    keycloak: t.exapp.keycloak,
    lifecycle: t.exapp.lifecycle,
    api,
    metrics: metricsRoutes(metrics),
  })
  const server = createAdaptorServer({ fetch: app.fetch })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
