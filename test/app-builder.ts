import { Hono } from 'hono'
import { createApp } from '../src/app.js'
import type { Lifecycle } from '../src/appapi/lifecycle.js'
import type { Consumer } from '../src/config/config.js'
import type { Store } from '../src/db/store.js'
import { apiRoutes } from '../src/http/api.js'
import { FailureLimiter } from '../src/http/failure-limiter.js'
import type { AppEnv } from '../src/http/types.js'
import type { KeycloakRuntime } from '../src/keycloak/runtime.js'
import { silentLogger } from '../src/log.js'
import { Metrics, metricsRoutes } from '../src/metrics.js'
import { oidcProvider } from '../src/oidc/from-config.js'
import { oidcRoutes } from '../src/oidc/routes.js'
import type { RunSummary, SyncEngine } from '../src/sync/engine.js'
import { createTokenService } from '../src/tokens/service.js'
import { asset } from '../src/ui/assets.js'
import { proxiedPages } from '../src/ui/pages.js'
import { testConfig } from './config.js'
import { FakeKeycloak, fakeEngine, memoryStore } from './token-fakes.js'

export const TEST_APP_SECRET = 'app-secret-0123456789abcdef'
export const TEST_CONSUMER_SECRET = 'consumer-secret-0123456789'
export const TEST_METRICS_TOKEN = 'metrics-token-0123456789'

export interface TestAppOptions {
  consumers?: Consumer[]
  limiter?: FailureLimiter
  clients?: string[]
  /** the Nextcloud directory: uid → enabled and groups (default: admin, alice, bob) */
  users?: Record<string, { enabled: boolean; groups?: string[] }>
  /** the OpenID provider's clock (default: Date.now) */
  now?: () => number
  /** SYNC_GATE_GROUPS (default: none) */
  gateGroups?: string[]
}

const run: RunSummary = {
  runId: 1,
  trigger: 'api',
  status: 'succeeded',
  dryRun: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
  users: 0,
  groups: 0,
  counts: {},
  failed: 0,
  conflicts: [],
  errors: [],
  guard: null,
  message: '',
}

/**
 * The whole HTTP surface in-process, as `startExApp` assembles it (access table, /api, /metrics,
 * status page, Keycloak proxy), over fakes: a fake Keycloak for tokens and behind the proxy, a
 * fake Nextcloud directory (admins are members of `admin`), a memory store, a sync engine that
 * answers at once. `as(user)` gives AppAPI's headers for `user` ('' = the system / anonymous).
 */
export async function buildTestApp(opts: TestAppOptions = {}) {
  const clients = opts.clients ?? ['opentalk', 'files']
  const consumers = opts.consumers ?? [
    { name: 'default', secret: TEST_CONSUMER_SECRET, clients: ['opentalk'] },
  ]
  const config = testConfig({
    APP_SECRET: TEST_APP_SECRET,
    METRICS_TOKEN: TEST_METRICS_TOKEN,
    KEYCLOAK_CLIENTS: clients.join(','),
    KEYCLOAK_CONSUMERS: JSON.stringify(consumers),
    ...(opts.gateGroups ? { SYNC_GATE_GROUPS: opts.gateGroups.join(',') } : {}),
  })
  const keycloak = new FakeKeycloak()
  keycloak.clientSecrets.set('opentalk', 'opentalk-secret')
  keycloak.clientSecrets.set('files', 'files-secret')
  const users = opts.users ?? {
    admin: { enabled: true, groups: ['admin'] },
    alice: { enabled: true, groups: ['staff'] },
    bob: { enabled: true },
  }
  const nextcloud = new Map(Object.entries(users))
  for (const uid of nextcloud.keys()) {
    keycloak.addUser(uid)
  }
  const memory = memoryStore()
  const engine = fakeEngine(keycloak, nextcloud)
  const tokens = createTokenService({
    config: { realm: config.keycloak.realm, clients, tokenMode: 'jwt' },
    store: memory.store,
    tokenClient: keycloak,
    engine,
    findUser: engine.findUser,
    groupMembers: engine.groupMembers,
    clientSecret: async (id) => keycloak.clientSecrets.get(id) ?? '',
    log: silentLogger(),
    // Each issuance record reaches the memory store as it is made, so tests read it at once.
    issuanceLog: { batchSize: 1 },
  })
  keycloak.trust(await tokens.publicJwks())
  const store = {
    ...memory.store,
    listRuns: async () => [],
    getRun: async () => undefined,
  } as unknown as Store
  const sync = {
    runFull: async () => run,
    runUser: async (uid: string) => ({
      status: 'success',
      user_id: uid,
      synced: true,
      action: 'unchanged',
      run,
    }),
    progress: () => undefined,
    nextScheduledRun: () => undefined,
  } as unknown as SyncEngine
  const runtime = {
    mode: 'external',
    status: () => 'ready',
    restarts: () => 0,
  } as unknown as KeycloakRuntime
  const lifecycle = {
    initState: () => ({ kind: 'idle' }),
    startInit: () => undefined,
    setEnabled: async () => ({ error: '' }),
  } as unknown as Lifecycle
  const isAdmin = async (uid: string) => users[uid]?.groups?.includes('admin') ?? false
  const upstream: string[] = []
  // The OpenID provider asks Nextcloud for the user's details (name, email, enabled state).
  const oidc = oidcProvider({
    config,
    store: memory.store,
    findUser: async (uid) => {
      const user = nextcloud.get(uid)
      return user
        ? {
            id: uid,
            enabled: user.enabled,
            displayname: `${uid} display`,
            email: `${uid}@example.org`,
            groups: user.groups ?? [],
          }
        : null
    },
    ...(opts.now ? { now: opts.now } : {}),
  })
  const app = createApp({
    config,
    log: silentLogger(),
    keycloak: runtime,
    lifecycle,
    isAdmin,
    limiter: opts.limiter ?? new FailureLimiter(),
    api: apiRoutes({ config, keycloak: runtime, sync, store, tokens }),
    metrics: metricsRoutes(new Metrics(runtime)),
    ui: new Hono<AppEnv>().route('/', oidcRoutes(oidc)).route(
      '/',
      proxiedPages({
        config,
        isAdmin,
        files: new Map([
          ['index.html', asset('<!DOCTYPE html><title>status</title>', 'text/html')],
        ]),
        upstream: 'http://127.0.0.1:9',
        fetch: async (input) => {
          upstream.push(String(input instanceof Request ? input.url : input))
          return new Response('keycloak', {
            status: 200,
            headers: { 'content-type': 'text/plain' },
          })
        },
      }),
    ),
  })
  const as = (user: string, secret = config.app.secret, appId = config.app.id) => ({
    'EX-APP-ID': appId,
    'EX-APP-VERSION': '1.0.0',
    'AA-VERSION': '5.0.2',
    'AUTHORIZATION-APP-API': Buffer.from(`${user}:${secret}`).toString('base64'),
  })
  return { app, config, as, keycloak, nextcloud, engine, memory, tokens, upstream, oidc }
}
