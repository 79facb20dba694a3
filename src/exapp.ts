import { mkdir } from 'node:fs/promises'
import { createAdaptorServer } from '@hono/node-server'
import type { Hono } from 'hono'
import { createApp } from './app.js'
import { adminChecker } from './appapi/admin-checker.js'
import { createLifecycle, type InitStep, type Lifecycle } from './appapi/lifecycle.js'
import { createNextcloudClient, type NextcloudClient } from './appapi/nextcloud-client.js'
import type { Config } from './config/config.js'
import { randomSecret } from './config/secrets.js'
import { type Database, openDatabase } from './db/client.js'
import { createSecretBox } from './db/crypto.js'
import { checkEncryptionKey } from './db/key-check.js'
import { createStore, type Store } from './db/store.js'
import { errorMessage } from './errors.js'
import { realmSpecFor } from './exapp/realm-spec.js'
import { apiRoutes } from './http/api.js'
import { listen } from './http/listen.js'
import { proxiedPages } from './http/pages.js'
import type { AppEnv } from './http/types.js'
import { createKeycloakAdmin, type KcAdmin, kc } from './keycloak/admin.js'
import { type BootstrapReport, bootstrapRealm } from './keycloak/bootstrap.js'
import { createEmbeddedKeycloak, prepareBundledKeycloak } from './keycloak/embedded.js'
import { createExternalKeycloak } from './keycloak/external.js'
import { identityProviderRep, JWT_GRANT_IDP_ALIAS, JWT_GRANT_ISSUER } from './keycloak/jwt-grant.js'
import { createRealmGuard } from './keycloak/realm-guard.js'
import type { KeycloakRuntime } from './keycloak/runtime.js'
import { createTokenClient } from './keycloak/token-client.js'
import type { Logger } from './log.js'
import { Metrics, metricsRoutes } from './metrics.js'
import { singleFlight } from './single-flight.js'
import { readState, writeState } from './state.js'
import { SyncEngine, type SyncTarget } from './sync/engine.js'
import { KeycloakTarget } from './sync/keycloak-target.js'
import { managedRoles } from './sync/model.js'
import { NextcloudSource } from './sync/nextcloud-source.js'
import { createTokenService, type TokenService } from './tokens/service.js'
import { setUserPassword } from './tokens/user-password.js'
import { registerTopMenu, unregisterTopMenu } from './ui/top-menu.js'

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
  await mkdir(config.app.storageDir, { recursive: true })
  const database = await openDatabase({
    url: config.databaseUrl,
    storageDir: config.app.storageDir,
    log,
  })
  const box = createSecretBox(config.encryptionKey)
  const store = createStore(database, box)
  // A key that cannot open the stored secrets is logged once here and reported by /healthz.
  const secretsHealth = await checkEncryptionKey(database, box, log)
  const keycloak =
    overrides.keycloak ??
    (config.keycloak.mode === 'external'
      ? createExternalKeycloak(config.keycloak.url, log)
      : createEmbeddedKeycloak(prepareBundledKeycloak(config, log), log))
  const nextcloud =
    overrides.nextcloud ??
    createNextcloudClient({
      url: config.nextcloud.url,
      appId: config.app.id,
      appSecret: config.app.secret,
      appVersion: config.app.version,
      aaVersion: config.nextcloud.aaVersion,
      log,
    })
  const admin = createKeycloakAdmin({
    baseUrl: config.keycloak.url,
    username: config.keycloak.adminUser,
    password: config.keycloak.adminPassword,
    realm: config.keycloak.realm,
    log,
  })
  const source = new NextcloudSource({
    client: nextcloud,
    preferredAdmin: config.nextcloud.adminUser,
    pageSize: config.sync.pageSize,
  })
  const metrics = new Metrics(keycloak)
  const jwtMode = config.keycloak.tokenMode === 'jwt'
  const secrets = new Map<string, Promise<string>>()
  // Every grant needs the client secret; read it from the store once.
  const clientSecret = (clientId: string) => {
    let secret = secrets.get(clientId)
    if (!secret) {
      secret = store.getOrCreateSecret(`client-secret:${clientId}`, () => randomSecret())
      secret.catch(() => secrets.delete(clientId))
      secrets.set(clientId, secret)
    }
    return secret
  }
  const tokens = createTokenService({
    config: config.keycloak,
    store,
    tokenClient: createTokenClient({
      backchannelUrl: config.keycloak.url,
      realm: config.keycloak.realm,
      log,
    }),
    // The engine is built below; it is only called once requests arrive.
    engine: { runUser: (uid, trigger) => sync.runUser(uid, trigger) },
    findUser: async (uid) => nextcloud.userDetails(await source.admin(), uid),
    clientSecret,
    setPassword: (uid, password) => setUserPassword(admin, config.keycloak.realm, uid, password),
    onKeysChanged: async (jwks) => {
      const rep = identityProviderRep({
        alias: JWT_GRANT_IDP_ALIAS,
        issuer: JWT_GRANT_ISSUER,
        publicJwks: jwks,
      })
      await kc('update the trusted signing keys', () =>
        admin.identityProviders.update(
          { realm: config.keycloak.realm, alias: JWT_GRANT_IDP_ALIAS },
          rep,
        ),
      )
    },
    log,
  })

  // Init and the start-up resume may both bootstrap; concurrent callers share one run.
  const bootstrap = singleFlight(() =>
    realmSpecFor(config, clientSecret, jwtMode ? () => tokens.publicJwks() : undefined).then(
      (spec) => bootstrapRealm(admin, spec, log),
    ),
  )
  const sync = new SyncEngine({
    realm: config.keycloak.realm,
    source,
    target:
      overrides.syncTarget ??
      (() =>
        new KeycloakTarget({
          admin,
          realm: config.keycloak.realm,
          managedRoles: managedRoles(config.sync),
          profileAttributes: config.sync.profileFields.map((f) => f.attribute),
          idpAlias: jwtMode ? JWT_GRANT_IDP_ALIAS : undefined,
        })),
    store,
    lock: (key) => database.lock(key),
    tryLock: (key) => database.tryLock(key),
    policy: config.sync,
    log,
    onUserRevoked: (uid) => tokens.revokeUser(uid),
    onRunFinished: (run) => metrics.recordRun(run),
  })
  const readyTimeoutMs = config.keycloak.startTimeoutMs
  const steps: InitStep[] = [
    {
      name: 'keycloak',
      progress: 40,
      // The first start may download and build Keycloak before it starts it.
      timeoutMs: readyTimeoutMs + 10 * 60_000,
      run: async () => {
        keycloak.start()
        await keycloak.waitReady(readyTimeoutMs + 10 * 60_000)
      },
    },
    {
      name: 'realm',
      progress: 60,
      timeoutMs: 120_000,
      run: async () => {
        await bootstrap()
      },
    },
    {
      name: 'sync',
      progress: 90,
      timeoutMs: 30 * 60_000,
      run: async () => {
        const run = await sync.runFull({ trigger: 'init' })
        // A partial run (some writes failed) goes on: the next run retries them.
        if (run.status !== 'succeeded' && run.status !== 'partial') {
          throw new Error(run.message)
        }
      },
    },
    {
      name: 'ui',
      progress: 95,
      timeoutMs: 60_000,
      run: () => registerTopMenu(nextcloud),
    },
  ]

  const lifecycle = createLifecycle({
    steps,
    reporter: { report: (progress, error) => nextcloud.setInitProgress(progress, error) },
    log,
    onEnabled: async (enabled) => {
      await writeState(config.app.storageDir, { enabled })
      if (!enabled) {
        // Removal first, while Nextcloud still accepts our calls (it disables us afterwards).
        const removed = await unregisterTopMenu(nextcloud).then(
          () => '',
          (err: unknown) => `the top menu could not be removed: ${String(err)}`,
        )
        await sync.stop()
        await keycloak.stop()
        return removed
      }
      keycloak.start()
      try {
        // AppAPI waits 60 s for this answer; a slow start goes on and the heartbeat tells.
        await keycloak.waitReady(45_000)
      } catch (err) {
        if (keycloak.status() === 'crashed') {
          return errorMessage(err)
        }
      }
      sync.startSchedule()
      try {
        await registerTopMenu(nextcloud)
      } catch (err) {
        return `the top menu could not be registered: ${errorMessage(err)}`
      }
      return ''
    },
  })

  const isAdmin = adminChecker(nextcloud)
  // After every Keycloak (re)start the realm is re-asserted; tokens wait for that (or get 502).
  const realmGuard = createRealmGuard({ keycloak, bootstrap, log })
  const issue = metrics.timeTokens(async (req: Parameters<TokenService['issue']>[0]) => {
    await realmGuard.ready()
    return tokens.issue(req)
  })
  const api = apiRoutes({
    config,
    keycloak,
    sync,
    store,
    tokens: { issue, rotateSigningKey: () => tokens.rotateSigningKey() },
  })

  const app = createApp({
    config,
    log,
    keycloak,
    lifecycle,
    isAdmin,
    health: () => ({
      database: { ok: database.health().status === 'ok', status: database.health().status },
      secrets: { ok: secretsHealth.status === 'ok', status: secretsHealth.status },
    }),
    api,
    metrics: metricsRoutes(metrics),
    // The status page, the admin console and the realm's public endpoints, proxied to Keycloak.
    ui: proxiedPages({ config, isAdmin }),
  })
  // Runs a killed process left `running` are marked, so the status page does not wait on them.
  void sync
    .recoverInterruptedRuns()
    .catch((err: unknown) => log.warn({ err }, 'sync.recover_interrupted_failed'))
  const server = createAdaptorServer({ fetch: app.fetch })
  const url = await listen(server, config, overrides.port)
  log.info({ url, keycloak: keycloak.mode, realm: config.keycloak.realm }, 'exapp.listening')

  // Keycloak starts at once unless Nextcloud disabled the app: a first run installs it before
  // AppAPI calls /init, and a restarted container is back without AppAPI calling anything.
  const previous = await readState(config.app.storageDir)
  if (previous?.enabled !== false) {
    void resume(keycloak, bootstrap, previous?.enabled ? sync : undefined, readyTimeoutMs, log)
  }

  return {
    url,
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
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await sync.stop()
      tokens.stop()
      realmGuard.stop()
      await keycloak.stop()
      await database.close()
      log.info('exapp.stopped')
    },
  }
}

/** At start: Keycloak, realm and (for an app enabled before) the schedule, in the background. */
async function resume(
  keycloak: KeycloakRuntime,
  bootstrap: () => Promise<BootstrapReport>,
  sync: SyncEngine | undefined,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  try {
    keycloak.start()
    await keycloak.waitReady(timeoutMs + 10 * 60_000)
    await bootstrap()
    sync?.startSchedule()
  } catch (err) {
    log.error({ err }, 'exapp.resume_failed')
  }
}
