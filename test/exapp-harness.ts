import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { createNextcloudClient } from '../src/appapi/nextcloud-client.js'
import type { Config } from '../src/config/config.js'
import { type ExAppOverrides, type RunningExApp, startExApp } from '../src/exapp.js'
import { createKeycloakAdmin, type KcAdmin } from '../src/keycloak/admin.js'
import { createLogger, type Logger, silentLogger } from '../src/log.js'
import type { Directory } from './builders.js'
import { sharedKeycloak, tempDir, testConfig } from './config.js'
import { createFakeNextcloud, type FakeNextcloud } from './fake-nextcloud/index.js'

export interface TestExApp {
  exapp: RunningExApp
  nc: FakeNextcloud
  realm: string
  /** an admin client on the Keycloak, for checking the realm from outside */
  admin: KcAdmin
  close(): Promise<void>
}

/** A realm name no other test uses. */
export function uniqueRealm(prefix = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

export interface TestExAppOptions {
  directory?: Partial<Directory>
  /** env on top of the harness's; `KEYCLOAK_URL` may point at a proxy in front of the shared one */
  env?: Record<string, string>
  realm?: string
  /** per-call timeout of the ExApp's Nextcloud client (default: the client's 30 s) */
  nextcloudTimeoutMs?: number
  /** the Keycloak side of the sync, e.g. an in-memory realm */
  syncTarget?: ExAppOverrides['syncTarget']
  /**
   * register the ExApp with the fake as enabled, as after an install, so AppAPI accepts its calls
   * (a disabled ExApp gets 401); the ExApp's `/enabled` is not called. Default false.
   */
  enabled?: boolean
  /** a Keycloak other than the shared one (e.g. one behind the Nextcloud proxies) */
  keycloak?: { url: string; admin: string; password: string }
  /** the ExApp's logger (default: silent, or TEST_LOG_LEVEL to stdout) */
  log?: Logger
  /** the ExApp's TCP port (default: any free one) */
  port?: number
  /** changes to the built config before the ExApp starts (e.g. its public URL) */
  configure?: (config: Config) => void
}

/**
 * The whole ExApp in-process against the shared Keycloak (external mode) and a fake Nextcloud
 * seeded with `directory`, registered with the fake like `occ app_api:app:register` would.
 */
export async function startTestExApp(opts: TestExAppOptions = {}): Promise<TestExApp> {
  const shared = opts.keycloak ?? sharedKeycloak()
  const realm = opts.realm ?? uniqueRealm()
  const nc = await createFakeNextcloud({
    users: opts.directory?.users ?? [],
    groups: opts.directory?.groups ?? [],
  })
  // A folder of its own unless the test gives one (to start again on another's state): removed
  // on close, so a run of the suite leaves no ~40 MB database per ExApp in the temp folder.
  const ownStorage = opts.env?.APP_PERSISTENT_STORAGE ? undefined : await tempDir('exapp')
  const config = testConfig({
    NEXTCLOUD_URL: nc.url,
    KEYCLOAK_URL: shared.url,
    KC_BOOTSTRAP_ADMIN_USERNAME: shared.admin,
    KC_BOOTSTRAP_ADMIN_PASSWORD: shared.password,
    KEYCLOAK_REALM: realm,
    ...(ownStorage ? { APP_PERSISTENT_STORAGE: ownStorage } : {}),
    ...opts.env,
  })
  opts.configure?.(config)
  const log =
    opts.log ??
    (process.env.TEST_LOG_LEVEL
      ? createLogger({ level: process.env.TEST_LOG_LEVEL })
      : silentLogger())
  const nextcloud =
    opts.nextcloudTimeoutMs === undefined
      ? undefined
      : createNextcloudClient({
          url: config.nextcloud.url,
          appId: config.app.id,
          appSecret: config.app.secret,
          appVersion: config.app.version,
          aaVersion: config.nextcloud.aaVersion,
          timeoutMs: opts.nextcloudTimeoutMs,
          log,
        })
  const exapp = await startExApp(config, log, {
    port: opts.port ?? 0,
    ...(nextcloud ? { nextcloud } : {}),
    ...(opts.syncTarget ? { syncTarget: opts.syncTarget } : {}),
  })
  nc.registerExApp({
    appId: config.app.id,
    secret: config.app.secret,
    version: config.app.version,
    url: exapp.url,
    enabled: opts.enabled ?? false,
    init: 0,
  })
  const admin = createKeycloakAdmin({
    baseUrl: shared.url,
    username: shared.admin,
    password: shared.password,
    realm,
    log: silentLogger(),
  })
  return {
    exapp,
    nc,
    realm,
    admin,
    async close() {
      await exapp.close()
      await nc.close()
      if (ownStorage) {
        await rm(ownStorage, { recursive: true, force: true })
      }
      await admin.realms.del({ realm }).catch(() => undefined)
      // The app's service account lives in master, beside every other test's.
      const { clientId } = config.keycloak.serviceAccount
      const [client] = await admin.clients.find({ realm: 'master', clientId }).catch(() => [])
      if (client?.id) {
        await admin.clients.del({ realm: 'master', id: client.id }).catch(() => undefined)
      }
    },
  }
}

/**
 * Waits until the ExApp sees its Keycloak, then joins the realm bootstrap it starts by itself
 * (single-flight), so that bootstrap cannot run again later in the middle of a counted run.
 */
export async function bootstrapped(t: TestExApp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (t.exapp.keycloak.status() !== 'ready') {
    if (Date.now() > deadline) {
      throw new Error(`Keycloak never became ready for the ExApp: ${t.exapp.keycloak.status()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await t.exapp.bootstrap()
}
