import { type ChildProcess, spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningExApp, startExApp } from '../src/exapp.js'
import { silentLogger } from '../src/log.js'
import type { Progress } from '../src/sync/engine.js'
import type { DirectorySpec } from './builders.js'
import { tempDir, testConfig } from './config.js'
import { uniqueRealm } from './exapp-harness.js'
import { MemoryDirectory } from './memory-directory.js'
import { freePort } from './net.js'

const USERS = 10_000
const DIRECTORY: DirectorySpec = { users: USERS, groups: 100, membershipsPerUser: 3, seed: 42 }
const POLL_EVERY_MS = 20
const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Sample {
  path: string
  /** the order in which answers arrived, over every path */
  seq: number
  status: number
  body: string
}

/**
 * Asks for `paths` one round after another, from a thread of its own (so its requests do not
 * wait for the ExApp's busy event loop to be sent), and numbers the answers in the order they
 * arrive. Plain JS: workers get no TypeScript loader.
 */
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads')
const { base, paths, every, headers } = workerData
const samples = []
let seq = 0
let stopped = false
parentPort.on('message', () => { stopped = true })
;(async () => {
  while (!stopped) {
    const tick = performance.now()
    await Promise.all(paths.map(async (path) => {
      try {
        const res = await fetch(base + path, { headers: headers[path] ?? {} })
        const body = await res.text()
        samples.push({ path, seq: seq++, status: res.status, body })
      } catch (err) {
        samples.push({ path, seq: seq++, status: 0, body: String(err) })
      }
    }))
    await new Promise((r) => setTimeout(r, Math.max(0, every - (performance.now() - tick))))
  }
  parentPort.postMessage(samples)
})()
`

function startPoller(
  base: string,
  paths: string[],
  headers: Record<string, Record<string, string>>,
): { stop(): Promise<Sample[]> } {
  const worker = new Worker(POLLER, {
    eval: true,
    workerData: { base, paths, every: POLL_EVERY_MS, headers },
  })
  const done = new Promise<Sample[]>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    async stop() {
      worker.postMessage('stop')
      const samples = await done
      await worker.terminate()
      return samples
    },
  }
}

/**
 * The fake Nextcloud in a process of its own, as a real one is: serving 10 000 users costs the
 * fake as much CPU as reading them costs the ExApp, and in one thread the two would add up.
 */
const FAKE_NEXTCLOUD = `
import { aDirectory } from './test/builders.ts'
import { createFakeNextcloud } from './test/fake-nextcloud/index.ts'
const nc = await createFakeNextcloud(aDirectory(JSON.parse(process.env.FAKE_DIRECTORY)))
process.on('message', (registration) => {
  nc.registerExApp(registration)
  process.send({ registered: registration.appId })
})
process.on('disconnect', () => nc.close().then(() => process.exit(0)))
process.send({ url: nc.url })
`

interface FakeProcess {
  url: string
  register(reg: { appId: string; secret: string; version: string; url: string }): Promise<void>
  close(): void
}

async function startFakeNextcloudProcess(spec: DirectorySpec): Promise<FakeProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', FAKE_NEXTCLOUD],
    {
      cwd: ROOT,
      env: { ...process.env, FAKE_DIRECTORY: JSON.stringify(spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  )
  const next = () =>
    new Promise<Record<string, string>>((resolve, reject) => {
      child.once('message', (msg) => resolve(msg as Record<string, string>))
      child.once('exit', (code) => reject(new Error(`fake Nextcloud exited with ${code}`)))
    })
  const { url } = await next()
  return {
    url: url ?? '',
    async register(reg) {
      const answer = next()
      child.send({ ...reg, enabled: true, init: 100 })
      await answer
    },
    close() {
      child.disconnect()
    },
  }
}

// On PostgreSQL, as a 10 000-user installation would run, and on the embedded PGlite, which works
// in this thread: it stores the run's 50 000-entry changelog a chunk at a time.
describe.each([
  [
    'PostgreSQL',
    () => {
      const url = process.env.TEST_DATABASE_URL
      if (!url) {
        throw new Error('TEST_DATABASE_URL unset: run with vitest.int.config.ts')
      }
      return url
    },
  ],
  ['PGlite', () => ''],
])('a 10 000-user sync on %s leaves the HTTP server responsive', (_db, databaseUrl) => {
  let nc: FakeProcess
  let exapp: RunningExApp
  let storage: string | undefined
  const memory = new MemoryDirectory()

  beforeAll(async () => {
    nc = await startFakeNextcloudProcess(DIRECTORY)
    storage = await tempDir('exapp')
    const config = testConfig({
      NEXTCLOUD_URL: nc.url,
      // A loopback URL nothing listens on: the ExApp's Keycloak is simply not there.
      KEYCLOAK_URL: `http://127.0.0.1:${await freePort()}`,
      KEYCLOAK_REALM: uniqueRealm('responsive'),
      APP_PERSISTENT_STORAGE: storage,
      DATABASE_URL: databaseUrl(),
    })
    exapp = await startExApp(config, silentLogger(), {
      port: 0,
      // One in-memory realm for every run: a large run, and no Keycloak write at all.
      syncTarget: () => memory,
    })
    await nc.register({
      appId: config.app.id,
      secret: config.app.secret,
      version: config.app.version,
      url: exapp.url,
    })
  })
  afterAll(async () => {
    await exapp?.close()
    nc?.close()
    if (storage) {
      await rm(storage, { recursive: true, force: true })
    }
  })

  // How fast it answers meanwhile is the bench's business (npm run bench: heartbeat during
  // sync-cold); this proves it answers between the run's steps rather than after the run.
  it('answers /heartbeat, /healthz and the run progress between the steps of a 10 000-user run', async () => {
    const admin = {
      'EX-APP-ID': exapp.config.app.id,
      'EX-APP-VERSION': exapp.config.app.version,
      'AUTHORIZATION-APP-API': Buffer.from(`admin:${exapp.config.app.secret}`).toString('base64'),
    }
    const poller = startPoller(exapp.url, ['/heartbeat', '/healthz', '/api/sync-status'], {
      '/api/sync-status': admin,
    })
    // Let the poller start (its first requests set up the connections) before the run does.
    await new Promise((r) => setTimeout(r, 200))

    // As the Nextcloud admin through AppAPI: the consumer secret opens only the token API.
    const res = await fetch(`${exapp.url}/api/sync-all`, { method: 'POST', headers: admin })
    const body = (await res.json()) as { runStatus: string; counts: Record<string, number> }
    const samples = await poller.stop()

    expect(res.status, JSON.stringify(body).slice(0, 500)).toBe(200)
    expect(body.runStatus).toBe('succeeded')
    // 10 000 users plus the admin the sync acts as, all created in the in-memory realm.
    expect(body.counts['create-user']).toBe(USERS + 1)
    expect(memory.writes.createUser).toBe(USERS + 1)
    expect(memory.snapshot().users).toHaveLength(USERS + 1)

    for (const s of samples) {
      expect(s.status, `${s.path}: ${s.body.slice(0, 200)}`).not.toBe(0)
    }
    // The progress the server reported while the run applied its changes, in answer order.
    const applying = samples
      .filter((s) => s.path === '/api/sync-status' && s.status === 200)
      .map((s) => ({ seq: s.seq, running: JSON.parse(s.body).running as Progress | null }))
      .filter((s) => s.running?.phase === 'applying')
    const done = applying.map((s) => (s.running?.phase === 'applying' ? s.running.done : -1))
    const total = applying.map((s) => (s.running?.phase === 'applying' ? s.running.total : -1))
    // Answered at several points of the apply, in step with it: a run that held the event loop
    // until it finished would leave one value at most.
    expect(new Set(done).size, `progress seen: ${done.join(', ')}`).toBeGreaterThanOrEqual(3)
    expect(done).toEqual([...done].sort((a, b) => a - b))
    // … the first of them well before the end.
    expect(done[0]).toBeLessThan(total[0] ?? 0)
    const first = applying[0]?.seq ?? Number.POSITIVE_INFINITY
    const last = applying.at(-1)?.seq ?? Number.NEGATIVE_INFINITY
    for (const path of ['/heartbeat', '/healthz']) {
      // Answered between two progress answers of the same run, so while it ran.
      const meanwhile = samples.filter((s) => s.path === path && s.seq > first && s.seq < last)
      expect(meanwhile.length, `${path} answered while the run applied`).toBeGreaterThan(0)
      for (const s of meanwhile) {
        if (path === '/heartbeat') {
          expect(s.status, s.body).toBe(200)
          expect(JSON.parse(s.body)).toMatchObject({ status: 'ok' })
        } else {
          // Keycloak is not there, and the container health check says so.
          expect(s.status, s.body).toBe(503)
          expect(JSON.parse(s.body)).toMatchObject({ status: 'unavailable' })
        }
      }
    }
  })
})
