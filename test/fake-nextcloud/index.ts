import { Hono } from 'hono'
import type { UserRecord } from '../builders.js'
import { type AppApiDriver, createAppApiDriver, type ExAppCall } from './appapi-driver.js'
import { appApiRoutes } from './appapi-routes.js'
import { createDirectory, type Directory, type GroupInput } from './directory.js'
import {
  createExAppRegistry,
  type ExAppRegistration,
  type ExAppStatus,
  type TopMenuRecord,
  type UiResourceRecord,
} from './exapps.js'
import { listen } from './listen.js'
import type { FakeEnv } from './ocs.js'
import { provisioningRoutes } from './provisioning-routes.js'
import { createTraffic, type PathMatch, type RecordedRequest } from './traffic.js'

export type { ExAppCall, InstallResult } from './appapi-driver.js'
export type { ExAppStub, ExAppStubOptions, StubRequest } from './exapp-stub.js'
export { startExAppStub } from './exapp-stub.js'
export type { ExAppRegistration, ExAppStatus, TopMenuRecord, UiResourceRecord } from './exapps.js'
export { FIXTURE_APP, fixtureDirectory } from './fixture-directory.js'
export type { PathMatch, RecordedRequest } from './traffic.js'

export interface FakeNextcloudOptions {
  apps?: ExAppRegistration[]
  users?: UserRecord[]
  groups?: GroupInput[]
  /** default `5.0.2`, the AppAPI of the fixtures */
  aaVersion?: string
  /** default 20 ms (AppAPI: 1 s) */
  heartbeatIntervalMs?: number
  /** default 50 (AppAPI: 600) */
  enableHeartbeatAttempts?: number
  /** default 60 s, as AppAPI 5 */
  enabledTimeoutMs?: number
}

export interface FakeNextcloud
  extends Omit<Directory, 'searchUsers' | 'searchGroups' | 'members' | 'isAdmin'>,
    Omit<AppApiDriver, 'setInitProgress' | 'calls'> {
  url: string
  close(): Promise<void>
  /** adds groups, then users (with their memberships) */
  seed(directory: { users: UserRecord[]; groups?: GroupInput[] }): void
  registerExApp(reg: ExAppRegistration): void
  exApp(appId: string): {
    enabled: boolean
    version: string
    status: ExAppStatus
    lastEnabledError: string
  }
  ui(appId: string): {
    topMenus: TopMenuRecord[]
    scripts: UiResourceRecord[]
    styles: UiResourceRecord[]
  }
  /** failed AppAPI logins so far (Nextcloud's brute-force throttler counts these) */
  bruteForceAttempts(): number
  /** requests sent to ExApps (heartbeat, init, enabled), oldest first */
  exAppCalls(): readonly ExAppCall[]
  requests(): readonly RecordedRequest[]
  count(path: PathMatch, method?: string): number
  counters(): Record<string, number>
  /** the next `times` (default 1) matching requests get `status` (default 500) and `body` */
  failNext(
    path: PathMatch,
    opts?: {
      times?: number
      status?: number
      body?: string
      contentType?: string
      method?: string
    },
  ): void
  /** the next matching requests are answered normally, but only after `ms` */
  delayNext(path: PathMatch, opts: { ms: number; times?: number; method?: string }): void
  /** the next matching requests never get an answer (until `close()`), for timeout tests */
  hangNext(path: PathMatch, opts?: { times?: number; method?: string }): void
  /** the next matching list pages keep `keep` entries (default half), as if rows went missing */
  truncateNext(path: PathMatch, opts?: { times?: number; keep?: number }): void
}

/**
 * An in-process Nextcloud 31 + AppAPI 5.0.2 on a loopback port, answering like the captures in
 * fixtures/nextcloud: provisioning API, AppAPI's OCS endpoints and AppAPI's calls into the ExApp.
 *
 * @example
 * const nc = await createFakeNextcloud({ apps: [{ appId, secret, version, url }], ...fixtureDirectory() })
 * afterAll(() => nc.close())
 */
export async function createFakeNextcloud(opts: FakeNextcloudOptions = {}): Promise<FakeNextcloud> {
  const directory = createDirectory()
  const registry = createExAppRegistry()
  const traffic = createTraffic()
  const driver = createAppApiDriver(registry, {
    aaVersion: opts.aaVersion ?? '5.0.2',
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 20,
    enableHeartbeatAttempts: opts.enableHeartbeatAttempts ?? 50,
    enabledTimeoutMs: opts.enabledTimeoutMs ?? 60_000,
  })
  const deps = { directory, registry, driver }
  const app = new Hono<FakeEnv>().use('*', traffic.middleware)
  for (const v of [1, 2] as const) {
    app.route(`/ocs/v${v}.php`, provisioningRoutes(v, deps))
    app.route(`/ocs/v${v}.php`, appApiRoutes(v, deps))
  }
  const server = await listen(app)

  const seed = ({ users, groups = [] }: { users: UserRecord[]; groups?: GroupInput[] }) => {
    for (const group of groups) {
      directory.addGroup(group)
    }
    for (const user of users) {
      directory.addUser(user)
    }
  }
  seed({ users: opts.users ?? [], groups: opts.groups })
  for (const reg of opts.apps ?? []) {
    registry.register(reg)
  }

  return {
    url: server.url,
    async close() {
      traffic.releaseHangs()
      await server.close()
    },
    addUser: directory.addUser,
    updateUser: directory.updateUser,
    removeUser: directory.removeUser,
    addGroup: directory.addGroup,
    removeGroup: directory.removeGroup,
    setMembership: directory.setMembership,
    user: directory.user,
    findUser: directory.findUser,
    group: directory.group,
    seed,
    registerExApp: (reg) => void registry.register(reg),
    exApp(appId) {
      const a = registry.require(appId)
      return {
        enabled: a.enabled,
        version: a.version,
        status: { ...a.status },
        lastEnabledError: a.lastEnabledError,
      }
    },
    ui(appId) {
      const a = registry.require(appId)
      return {
        topMenus: [...a.topMenus.values()],
        scripts: [...a.scripts.values()],
        styles: [...a.styles.values()],
      }
    },
    bruteForceAttempts: () => registry.bruteForceAttempts,
    exAppCalls: () => driver.calls,
    install: driver.install,
    enable: driver.enable,
    disable: driver.disable,
    appApiHeaders: driver.appApiHeaders,
    requests: () => traffic.requests,
    count: traffic.count,
    counters: traffic.counters,
    failNext(path, { times = 1, status = 500, body = '', contentType = 'text/html', method } = {}) {
      traffic.inject(path, { kind: 'status', status, body, contentType }, times, method)
    },
    delayNext(path, { ms, times = 1, method }) {
      traffic.inject(path, { kind: 'delay', ms }, times, method)
    },
    hangNext(path, { times = 1, method } = {}) {
      traffic.inject(path, { kind: 'hang' }, times, method)
    },
    truncateNext(path, { times = 1, keep } = {}) {
      traffic.inject(path, { kind: 'truncate', keep }, times)
    },
  }
}
