import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { createApp } from './app.js'
import { adminChecker } from './appapi/admin-checker.js'
import { createLifecycle, type Lifecycle } from './appapi/lifecycle.js'
import type { NextcloudClient } from './appapi/nextcloud-client.js'
import type { Config } from './config/config.js'
import type { Database } from './db/client.js'
import { openStorage } from './db/storage.js'
import type { Store } from './db/store.js'
import { resume, setEnabled } from './exapp/enabled.js'
import { initSteps, progressToNextcloud } from './exapp/init-steps.js'
import { listenAll } from './exapp/listening.js'
import {
  brokerSecrets,
  consoleAdminsFor,
  each,
  keycloakTargetFor,
  later,
  nextcloudClientFor,
} from './exapp/parts.js'
import { realmMark } from './exapp/realm-mark.js'
import { realmSpecFor } from './exapp/realm-spec.js'
import { heapCollector } from './heap.js'
import { apiRoutes } from './http/api.js'
import type { AppEnv } from './http/types.js'
import type { KcAdmin } from './keycloak/admin.js'
import { type BootstrapReport, realmBootstrapper, specFingerprint } from './keycloak/bootstrap.js'
import { keycloakAdmin, keycloakRuntime } from './keycloak/from-config.js'
import { createRealmGuard } from './keycloak/realm-guard.js'
import type { KeycloakRuntime } from './keycloak/runtime.js'
import { createTokenClient } from './keycloak/token-client.js'
import { pushTrustedKeys } from './keycloak/trusted-keys.js'
import type { Logger } from './log.js'
import { Metrics, metricsRoutes } from './metrics.js'
import { loopbackUrl, oidcProvider } from './oidc/from-config.js'
import { oidcRoutes } from './oidc/routes.js'
import { readState } from './state.js'
import type { ConsoleAdmins } from './sync/console-admins.js'
import { SyncEngine, type SyncTarget } from './sync/engine.js'
import { NextcloudSource } from './sync/nextcloud-source.js'
import { DirectoryPoller, pollEngine, withPoll } from './sync/poller.js'
import { UserRevocations } from './sync/revocations.js'
import { clientSecrets } from './tokens/client-secrets.js'
import { createTokenService, type TokenService } from './tokens/service.js'
import { setUserPassword } from './tokens/user-password.js'
import { proxiedPages } from './ui/pages.js'

/** Parts a test (or another composition) may replace. */
export interface ExAppOverrides {
  keycloak?: KeycloakRuntime
  nextcloud?: NextcloudClient
  /** listen on this port instead of config.app.port (0 = any free port) */
  port?: number
  /** the Keycloak side of the sync (e.g. an in-memory realm for load tests) */
  syncTarget?: () => SyncTarget
}

export interface RunningExApp {
  /** where the HTTP server listens (a URL, or the unix socket path under HaRP) */
  url: string
  app: Hono<AppEnv>
  config: Config
  database: Database
  store: Store
  keycloak: KeycloakRuntime
  admin: KcAdmin
  sync: SyncEngine
  tokens: TokenService
  lifecycle: Lifecycle
  nextcloud: NextcloudClient
  /** bootstraps the realm (idempotent); init and boot call it */
  bootstrap(): Promise<BootstrapReport>
  /** the Nextcloud admins' console identities (none with another sync target) */
  consoleAdmins: ConsoleAdmins | undefined
  /** stops HTTP, the schedule, Keycloak, then the database */
  close(): Promise<void>
}

/**
 * Builds every part from `config`, starts listening, and starts Keycloak if the app was enabled
 * when it last ran (AppAPI does not call /init or /enabled again after a container restart).
 */
export async function startExApp(
  config: Config,
  log: Logger,
  overrides: ExAppOverrides = {},
): Promise<RunningExApp> {
  const { realm, startTimeoutMs } = config.keycloak
  const storageDir = config.app.storageDir
  const keycloak = overrides.keycloak ?? keycloakRuntime(config, log)
  // Keycloak takes longest to boot, so it starts before the rest is built (unless Nextcloud
  // disabled the app; `resume` below reads the same flag and starts it the same way).
  if ((await readState(storageDir))?.enabled !== false) {
    keycloak.start()
  }
  const storage = await openStorage(config, log).catch(async (err: unknown) => {
    await keycloak.stop()
    throw err
  })
  const { database, store } = storage
  const nextcloud = overrides.nextcloud ?? nextcloudClientFor(config, log)
  const admin = keycloakAdmin(config.keycloak, log)
  const source = new NextcloudSource({
    client: nextcloud,
    preferredAdmin: config.nextcloud.adminUser,
    pageSize: config.sync.pageSize,
    userFields: config.sync.profileFields.map((f) => f.field),
  })
  const metrics = new Metrics(keycloak)
  const jwtMode = config.keycloak.tokenMode === 'jwt'
  const clientSecret = clientSecrets(store)
  const findUser = async (uid: string) => nextcloud.userDetails(await source.admin(), uid)
  // The sync announces the users it changed; tokens (built after it) drop what they cached.
  const revocations = new UserRevocations()
  const consoleAdmins = consoleAdminsFor({ config, admin, nextcloud, source, log, overrides })
  const collect = heapCollector()
  const sync = new SyncEngine({
    realm,
    source,
    target: overrides.syncTarget ?? (() => keycloakTargetFor(config, admin)),
    store,
    lock: (key) => database.lock(key),
    tryLock: (key) => database.tryLock(key),
    policy: config.sync,
    log,
    onUserRevoked: revocations.publish,
    onRunFinished: each((run) => metrics.recordRun(run), consoleAdmins?.afterRun),
    collectGarbage: () => {
      const collection = collect()
      if (collection) {
        log.debug(
          {
            before: collection.usedBefore,
            after: collection.usedAfter,
            ms: Math.round(collection.ms),
          },
          'heap.collected',
        )
      }
    },
  })
  // Cheap polls of Nextcloud between full runs; they start and stop with the schedule.
  const poller = new DirectoryPoller({
    source,
    engine: pollEngine(sync),
    intervalSeconds: config.sync.pollSeconds ?? 0,
    pageSize: config.sync.pageSize,
    log,
  })
  const scheduled = withPoll(sync, poller)
  const tokenClient = createTokenClient({ backchannelUrl: config.keycloak.url, realm, log })
  // The first token after a start needs the realm's discovery document: read it as soon as
  // Keycloak is ready rather than in front of that token (a realm not made yet is read later).
  const stopDiscovery = keycloak.onStatusChange?.((status) => {
    if (status === 'ready') {
      tokenClient.issuer().catch(() => undefined)
    }
  })
  const tokens = createTokenService({
    config: config.keycloak,
    store,
    tokenClient,
    engine: sync,
    findUser,
    groupMembers: async (gid) => nextcloud.groupMemberIds(await source.admin(), gid),
    clientSecret,
    setPassword: (uid, password) => setUserPassword(admin, realm, uid, password),
    onKeysChanged: (jwks) => pushTrustedKeys(admin, realm, jwks),
    onIssuancesDropped: (count) => metrics.issuancesDropped(count),
    log,
  })
  revocations.subscribe((uid) => tokens.revokeUser(uid))
  // Keycloak calls the OpenID provider's token and keys endpoints at the app's own address, known
  // once the app listens: a bootstrap asked for before then waits for it.
  const address = later<string>()
  const secrets = brokerSecrets(store, config)
  const realmSpec = () =>
    realmSpecFor(config, clientSecret, jwtMode ? () => tokens.publicJwks() : undefined, {
      backchannelUrl: async () => loopbackUrl(await address.value),
      ...secrets,
    })
  // A clean restart leaves the realm as it was: tokens need not wait for its re-assertion.
  const mark = realmMark(storageDir, keycloak)
  const leftMark = mark.take()
  const bootstrap = realmBootstrapper(admin, realmSpec, log, mark.asserted)

  const lifecycle = createLifecycle({
    steps: initSteps({ keycloak, startTimeoutMs, bootstrap, sync, nextcloud }),
    reporter: progressToNextcloud(nextcloud),
    log,
    onEnabled: setEnabled({ storageDir, keycloak, sync: scheduled, nextcloud }),
  })
  const isAdmin = adminChecker(nextcloud)
  const oidc = oidcProvider({ config, store, findUser })
  // After every Keycloak (re)start the realm is re-asserted; tokens wait for that (or get 502).
  const realmGuard = createRealmGuard({
    keycloak,
    bootstrap,
    log,
    trustedAtFirstReady: async () => (await leftMark) === specFingerprint(await realmSpec()),
  })
  const app = createApp({
    config,
    log,
    keycloak,
    lifecycle,
    isAdmin,
    health: storage.health,
    api: apiRoutes({
      config,
      keycloak,
      sync,
      store,
      tokens,
      realmReady: () => realmGuard.ready(),
      timeTokens: (issue) => metrics.timeTokens(issue),
    }),
    metrics: metricsRoutes(metrics),
    // The OpenID provider; the status page, the console and the realm, proxied to Keycloak.
    ui: new Hono<AppEnv>()
      .route('/', oidcRoutes(oidc))
      .route('/', proxiedPages({ config, isAdmin })),
  })
  // Runs a killed process left `running` are marked, so the status page does not wait on them.
  void sync
    .recoverInterruptedRuns()
    .catch((err: unknown) => log.warn({ err }, 'sync.recover_interrupted_failed'))
  const server = createAdaptorServer({ fetch: app.fetch })
  const listening = await listenAll(server, config, overrides.port, oidc, log)
  address.set(listening.keycloakUrl)
  log.info({ url: listening.url, keycloak: keycloak.mode, realm }, 'exapp.listening')
  let closing = false
  await resume({
    storageDir,
    keycloak,
    startTimeoutMs,
    bootstrap,
    sync: scheduled,
    log,
    stopping: () => closing,
  })

  return {
    url: listening.url,
    app,
    config,
    database,
    store,
    keycloak,
    admin,
    sync,
    tokens,
    lifecycle,
    nextcloud,
    bootstrap,
    consoleAdmins,
    async close() {
      closing = true
      await listening.close()
      await poller.close()
      await sync.stop()
      await consoleAdmins?.settled()
      // Before the database closes: the queued issuance records are written.
      await tokens.stop()
      realmGuard.stop()
      stopDiscovery?.()
      await keycloak.stop()
      await mark.leave()
      await database.close()
      log.info('exapp.stopped')
    },
  }
}
