import { rm } from 'node:fs/promises'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Config } from '../src/config/config.js'
import { type RunningExApp, startExApp } from '../src/exapp.js'
import { adminClient, clientLogin, type KcAdmin } from '../src/keycloak/admin.js'
import { TEMPORARY_ADMIN_ATTRIBUTE } from '../src/keycloak/service-account.js'
import type { Logger } from '../src/log.js'
import { tempDir, testConfig } from './config.js'
import { bootstrapped, startTestExApp, type TestExApp, uniqueRealm } from './exapp-harness.js'
import {
  createFakeNextcloud,
  type FakeNextcloud,
  fixtureDirectory,
} from './fake-nextcloud/index.js'
import { SHARED_KEYCLOAK_PORT } from './global-setup.js'

const WRONG_PASSWORD = 'not-the-bootstrap-admins-password'

/** The app's own service account as an admin client of master: what the app logs in as. */
function serviceAccountAdmin(config: Config): KcAdmin {
  const { url, serviceAccount } = config.keycloak
  return adminClient(
    url,
    'master',
    clientLogin(
      url,
      serviceAccount.clientId,
      serviceAccount.secret,
      'KEYCLOAK_ADMIN_CLIENT_SECRET',
    ),
  )
}

async function tokenStatus(url: string, config: Config, uid: string): Promise<number> {
  const res = await fetch(`${url}/api/token?client_id=opentalk`, {
    method: 'POST',
    headers: { 'X-API-SECRET': config.consumers[0]?.secret ?? '', 'X-NC-USER-ID': uid },
  })
  return res.status
}

async function expectServiceAccountIsMasterAdmin(admin: KcAdmin, clientId: string) {
  const [client] = await admin.clients.find({ realm: 'master', clientId })
  expect(client).toMatchObject({
    publicClient: false,
    serviceAccountsEnabled: true,
    standardFlowEnabled: false,
    directAccessGrantsEnabled: false,
    attributes: expect.objectContaining({ 'nextcloud.managed': 'true' }),
  })
  const user = await admin.clients.getServiceAccountUser({ realm: 'master', id: client?.id ?? '' })
  const roles = await admin.users.listRealmRoleMappings({ realm: 'master', id: user.id ?? '' })
  expect(roles.map((r) => r.name)).toContain('admin')
}

describe('against a Keycloak of someone else (KEYCLOAK_URL): the shared one', () => {
  let first: TestExApp

  beforeAll(async () => {
    first = await startTestExApp({ directory: fixtureDirectory(), enabled: true })
    await bootstrapped(first)
  })
  afterAll(async () => {
    await first?.close()
  })

  it('creates its service account, syncs and mints as it, and never deletes the given admin', async () => {
    const config = first.exapp.config
    await expectServiceAccountIsMasterAdmin(first.admin, config.keycloak.serviceAccount.clientId)
    const run = await first.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
    expect(await tokenStatus(first.exapp.url, config, 'alice')).toBe(200)
    // The shared Keycloak's bootstrap admin is temporary, but not the app's to delete.
    const [given] = await first.admin.users.find({
      realm: 'master',
      username: config.keycloak.adminUser,
      exact: true,
    })
    expect(given?.attributes?.[TEMPORARY_ADMIN_ATTRIBUTE]).toEqual(['true'])
  })

  it('a second start with the same secret needs no bootstrap admin password', async () => {
    const config = first.exapp.config
    const again = await startTestExApp({
      realm: first.realm,
      directory: fixtureDirectory(),
      enabled: true,
      env: {
        APP_PERSISTENT_STORAGE: config.app.storageDir,
        KEYCLOAK_ADMIN_CLIENT_SECRET: config.keycloak.serviceAccount.secret,
        ENCRYPTION_KEY: config.encryptionKey,
        KC_BOOTSTRAP_ADMIN_PASSWORD: WRONG_PASSWORD,
      },
    })
    try {
      await bootstrapped(again)
      const run = await again.exapp.sync.runFull({ trigger: 'api', full: true })
      expect(run.status, run.message).toBe('succeeded')
      expect(await tokenStatus(again.exapp.url, again.exapp.config, 'bob')).toBe(200)
    } finally {
      await again.exapp.close()
      await again.nc.close()
    }
  })
})

/** A logger that keeps every line's message, to tell what the app did. */
function recordingLogger(): { log: Logger; messages: string[] } {
  const messages: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        messages.push((JSON.parse(line) as { msg: string }).msg)
      }
      done()
    },
  })
  return { log: pino({ level: 'info' }, sink) as Logger, messages }
}

describe('the bundled Keycloak (embedded mode)', () => {
  let nc: FakeNextcloud
  let config: Config
  let running: RunningExApp | undefined
  const port = SHARED_KEYCLOAK_PORT + 57

  const start = async () => {
    const { log, messages } = recordingLogger()
    const exapp = await startExApp(config, log, { port: 0 })
    running = exapp
    nc.registerExApp({
      appId: config.app.id,
      secret: config.app.secret,
      version: config.app.version,
      url: exapp.url,
      enabled: true,
      init: 0,
    })
    await exapp.keycloak.waitReady(config.keycloak.startTimeoutMs)
    await exapp.bootstrap()
    return { exapp, messages }
  }

  beforeAll(async () => {
    nc = await createFakeNextcloud(fixtureDirectory())
    config = testConfig({
      NEXTCLOUD_URL: nc.url,
      KEYCLOAK_REALM: uniqueRealm(),
      KEYCLOAK_HOME: process.env.KEYCLOAK_HOME,
      JAVA_HOME: process.env.TEST_JAVA_HOME,
      KEYCLOAK_HTTP_PORT: String(port),
      KEYCLOAK_MANAGEMENT_PORT: String(port + 1000),
      // a first start on a busy machine (it creates the database) may take longer than the default
      KEYCLOAK_START_TIMEOUT_MS: '540000',
      APP_PERSISTENT_STORAGE: await tempDir('exapp-embedded'),
    })
  })
  afterAll(async () => {
    // A failed test must not leave its Keycloak running.
    await running?.close()
    await nc?.close()
    if (config) {
      await rm(config.app.storageDir, { recursive: true, force: true })
    }
  })

  it('removes the temporary admin once its service account works, and works on after a restart', async () => {
    const first = await start()
    try {
      expect(first.messages).toContain('keycloak.service_account_repair')
      expect(first.messages).toContain('keycloak.temporary_admin_removed')
      const admin = serviceAccountAdmin(config)
      const masterUsers = await admin.users.find({ realm: 'master', briefRepresentation: false })
      expect(masterUsers.map((u) => u.username)).not.toContain(config.keycloak.adminUser)
      expect(masterUsers.filter((u) => u.attributes?.[TEMPORARY_ADMIN_ATTRIBUTE])).toEqual([])
      await expectServiceAccountIsMasterAdmin(admin, config.keycloak.serviceAccount.clientId)
      const run = await first.exapp.sync.runFull({ trigger: 'api' })
      expect(run.status, run.message).toBe('succeeded')
      expect(await tokenStatus(first.exapp.url, config, 'alice')).toBe(200)
    } finally {
      await first.exapp.close()
      running = undefined
    }

    // Keycloak starts again with KC_BOOTSTRAP_ADMIN_* still passed; the app logs in as its
    // service account straight away.
    const second = await start()
    try {
      expect(second.messages).not.toContain('keycloak.service_account_repair')
      // Keycloak made no new temporary admin: had it, the app would have removed it again.
      expect(second.messages).not.toContain('keycloak.temporary_admin_removed')
      const masterUsers = await serviceAccountAdmin(config).users.find({
        realm: 'master',
        briefRepresentation: false,
      })
      expect(masterUsers.filter((u) => u.attributes?.[TEMPORARY_ADMIN_ATTRIBUTE])).toEqual([])
      const run = await second.exapp.sync.runFull({ trigger: 'api', full: true })
      expect(run.status, run.message).toBe('succeeded')
      expect(await tokenStatus(second.exapp.url, config, 'bob')).toBe(200)
    } finally {
      await second.exapp.close()
      running = undefined
    }
    // Two starts of a Keycloak of its own, the first creating its database.
  }, 600_000)
})
