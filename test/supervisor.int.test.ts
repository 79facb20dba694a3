import { execFileSync } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RunningExApp, startExApp } from '../src/exapp.js'
import { silentLogger } from '../src/log.js'
import { readState } from '../src/state.js'
import { tempDir, testConfig } from './config.js'
import {
  createFakeNextcloud,
  type FakeNextcloud,
  fixtureDirectory,
} from './fake-nextcloud/index.js'

const HTTP_PORT = 28180
const MANAGEMENT_PORT = 29180

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function heartbeat(exapp: RunningExApp): Promise<{ keycloak: string }> {
  return (await (await fetch(`${exapp.url}/heartbeat`)).json()) as { keycloak: string }
}

/** Pids of Java processes whose command line mentions `mark`. */
function javaPids(mark: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `java.*${mark}`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

async function startEmbedded(nc: FakeNextcloud, env: Record<string, string>) {
  const home = process.env.KEYCLOAK_HOME
  if (!home) {
    throw new Error('KEYCLOAK_HOME is not set: run with vitest.int.config.ts')
  }
  const storage = await tempDir('embedded')
  const config = testConfig({
    NEXTCLOUD_URL: nc.url,
    KEYCLOAK_HOME: home,
    JAVA_HOME: process.env.TEST_JAVA_HOME ?? '',
    APP_PERSISTENT_STORAGE: storage,
    KEYCLOAK_HTTP_PORT: String(HTTP_PORT),
    KEYCLOAK_MANAGEMENT_PORT: String(MANAGEMENT_PORT),
    ...env,
  })
  const exapp = await startExApp(config, silentLogger(), { port: 0 })
  nc.registerExApp({
    appId: config.app.id,
    secret: config.app.secret,
    version: config.app.version,
    url: exapp.url,
    enabled: false,
    init: 0,
  })
  return { exapp, storage }
}

describe('the bundled Keycloak under the supervisor', () => {
  let nc: FakeNextcloud
  let exapp: RunningExApp
  let storage: string

  beforeAll(async () => {
    nc = await createFakeNextcloud(fixtureDirectory())
    ;({ exapp, storage } = await startEmbedded(nc, {}))
  })
  afterAll(async () => {
    await exapp?.close()
    await nc?.close()
    if (storage) {
      await rm(storage, { recursive: true, force: true })
    }
  })

  it('is started by init, which reaches 100 once Keycloak is ready and the realm synced', async () => {
    const result = await nc.install(exapp.config.app.id, { timeoutMs: 240_000 })
    expect(result).toMatchObject({ init: 100, error: '', enabled: true })
    expect(await heartbeat(exapp)).toMatchObject({ keycloak: 'ready' })
    expect(await portOpen(HTTP_PORT)).toBe(true)
  })

  it('restarts Keycloak after kill -9 and reports ready again', async () => {
    const [pid] = javaPids(storage)
    expect(pid, 'a Java process using this storage').toBeDefined()
    process.kill(pid as number, 'SIGKILL')
    await vi.waitFor(
      async () => expect((await heartbeat(exapp)).keycloak, 'the crash noticed').not.toBe('ready'),
      { timeout: 30_000, interval: 250 },
    )
    await vi.waitFor(
      async () => expect((await heartbeat(exapp)).keycloak, 'Keycloak ready again').toBe('ready'),
      { timeout: 180_000, interval: 250 },
    )
    expect(exapp.keycloak.restarts()).toBe(1)
    expect(javaPids(storage)).toHaveLength(1)
  })

  it('stops Keycloak on enabled=0 (its port closes) and starts it on enabled=1', async () => {
    expect(nc.ui(exapp.config.app.id).topMenus).toHaveLength(1)
    expect(await nc.disable(exapp.config.app.id)).toEqual({ error: '' })
    expect(nc.ui(exapp.config.app.id).topMenus).toEqual([])
    expect(await heartbeat(exapp)).toMatchObject({ keycloak: 'stopped' })
    expect(await portOpen(HTTP_PORT)).toBe(false)
    expect(await portOpen(MANAGEMENT_PORT)).toBe(false)
    expect(javaPids(storage)).toEqual([])

    expect(await nc.enable(exapp.config.app.id)).toEqual({ error: '' })
    await vi.waitFor(
      async () => expect((await heartbeat(exapp)).keycloak, 'Keycloak ready again').toBe('ready'),
      { timeout: 180_000, interval: 250 },
    )
    expect(await portOpen(HTTP_PORT)).toBe(true)
  })

  it('after a clean stop with the realm asserted, the next start mints without waiting for it', async () => {
    await exapp.bootstrap()
    // the same app again: its secrets, and its port (the realm's back-channel URL names it)
    const { config } = exapp
    const port = Number(new URL(exapp.url).port)
    await exapp.close()
    const mark = (await readState(storage))?.realmAsserted
    expect(mark, 'the clean stop left the realm mark').toMatch(/^[\w-]{43}$/)

    const lines: { msg?: string }[] = []
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) })
    exapp = await startExApp(config, log, { port })
    expect((await readState(storage))?.realmAsserted, 'taken by this start').toBeUndefined()
    await vi.waitFor(
      async () => expect((await heartbeat(exapp)).keycloak, 'Keycloak ready again').toBe('ready'),
      { timeout: 180_000, interval: 100 },
    )
    const res = await fetch(`${exapp.url}/api/token?client_id=opentalk`, {
      method: 'POST',
      headers: { 'X-API-SECRET': exapp.config.consumers[0]?.secret ?? '', 'X-NC-USER-ID': 'alice' },
    })
    expect(res.status, await res.clone().text()).toBe(200)
    expect(lines.map((l) => l.msg)).toContain('realm.trusted')
    // re-asserted all the same
    await vi.waitFor(() => expect(lines.map((l) => l.msg)).toContain('realm.bootstrapped'), {
      timeout: 60_000,
      interval: 100,
    })
  })

  it('binds Keycloak to 127.0.0.1 only', () => {
    const listening = execFileSync('ss', ['-ltnH'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`:${HTTP_PORT} `) || line.includes(`:${MANAGEMENT_PORT} `))
    expect(listening.length).toBeGreaterThan(0)
    for (const line of listening) {
      expect(line).toMatch(/(^|\s|\[::ffff:)127\.0\.0\.1\]?:/)
    }
  })
})

describe('a Keycloak that cannot start', () => {
  it('makes init report an error within its deadline instead of hanging', async () => {
    const nc = await createFakeNextcloud(fixtureDirectory())
    const { exapp, storage } = await startEmbedded(nc, {
      // A heap the JVM refuses: Keycloak exits at once, every time.
      KEYCLOAK_HEAP: '-Xms64m -Xmx1m',
      KEYCLOAK_START_TIMEOUT_MS: '60000',
    })
    try {
      const started = Date.now()
      const result = await nc.install(exapp.config.app.id, { timeoutMs: 120_000 })
      expect(result.timedOut).toBe(false)
      expect(result.init).toBeLessThan(100)
      expect(result.error).toMatch(/^keycloak: /)
      expect(Date.now() - started).toBeLessThan(120_000)
    } finally {
      await exapp.close()
      await nc.close()
      await rm(storage, { recursive: true, force: true })
    }
  })
})
