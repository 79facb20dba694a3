import { type ChildProcess, spawn } from 'node:child_process'
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
const LIMIT_MS = 100
const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Sample {
  path: string
  /** Date.now() when the request was sent */
  at: number
  ms: number
  status: number
  body: string
}

/**
 * Polls `paths` every `every` ms from a thread of its own, so the latency it sees is the ExApp's,
 * not the poller's own wait for a busy event loop. Plain JS: workers get no TypeScript loader.
 */
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads')
const { base, paths, every } = workerData
const samples = []
let stopped = false
parentPort.on('message', () => { stopped = true })
;(async () => {
  while (!stopped) {
    const tick = performance.now()
    await Promise.all(paths.map(async (path) => {
      const at = Date.now()
      const started = performance.now()
      try {
        const res = await fetch(base + path, { signal: AbortSignal.timeout(5000) })
        const body = await res.text()
        samples.push({ path, at, ms: performance.now() - started, status: res.status, body })
      } catch (err) {
        samples.push({ path, at, ms: performance.now() - started, status: 0, body: String(err) })
      }
    }))
    await new Promise((r) => setTimeout(r, Math.max(0, every - (performance.now() - tick))))
  }
  parentPort.postMessage(samples)
})()
`

function startPoller(base: string, paths: string[]): { stop(): Promise<Sample[]> } {
  const worker = new Worker(POLLER, {
    eval: true,
    workerData: { base, paths, every: POLL_EVERY_MS },
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

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
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
])('a 10 000-user sync on %s leaves the HTTP server responsive', (db, databaseUrl) => {
  let nc: FakeProcess
  let exapp: RunningExApp
  const memory = new MemoryDirectory()

  beforeAll(async () => {
    nc = await startFakeNextcloudProcess(DIRECTORY)
    const config = testConfig({
      NEXTCLOUD_URL: nc.url,
      // A loopback URL nothing listens on: the ExApp's Keycloak is simply not there.
      KEYCLOAK_URL: `http://127.0.0.1:${await freePort()}`,
      KEYCLOAK_REALM: uniqueRealm('responsive'),
      APP_PERSISTENT_STORAGE: await tempDir('exapp'),
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
  })

  it('answers /heartbeat and /healthz within 100 ms while the run applies 10 000 users', async () => {
    const phases: Progress['phase'][] = []
    const watch = setInterval(() => {
      const phase = exapp.sync.progress()?.phase
      if (phase && phases.at(-1) !== phase) {
        phases.push(phase)
      }
    }, 2)
    const poller = startPoller(exapp.url, ['/heartbeat', '/healthz'])
    // Let the poller start (its first requests set up the connections) before the run does.
    await new Promise((r) => setTimeout(r, 200))

    const runStart = Date.now()
    const res = await fetch(`${exapp.url}/api/sync-all`, {
      method: 'POST',
      // As the Nextcloud admin through AppAPI: the consumer secret opens only the token API.
      headers: {
        'EX-APP-ID': exapp.config.app.id,
        'EX-APP-VERSION': exapp.config.app.version,
        'AUTHORIZATION-APP-API': Buffer.from(`admin:${exapp.config.app.secret}`).toString('base64'),
      },
    })
    const runEnd = Date.now()
    const body = (await res.json()) as { runStatus: string; counts: Record<string, number> }
    const samples = await poller.stop()
    clearInterval(watch)

    expect(res.status, JSON.stringify(body).slice(0, 500)).toBe(200)
    expect(body.runStatus).toBe('succeeded')
    // 10 000 users plus the admin the sync acts as, all created in the in-memory realm.
    expect(body.counts['create-user']).toBe(USERS + 1)
    expect(memory.writes.createUser).toBe(USERS + 1)
    expect(memory.snapshot().users).toHaveLength(USERS + 1)
    expect(phases).toEqual(['reading', 'applying'])

    const during = samples.filter((s) => s.at >= runStart && s.at <= runEnd)
    const runMs = runEnd - runStart
    for (const path of ['/heartbeat', '/healthz']) {
      const mine = during.filter((s) => s.path === path)
      // At least half the polls the run's length allows.
      expect(mine.length, `${path}: ${mine.length} polls in a ${runMs} ms run`).toBeGreaterThan(
        runMs / POLL_EVERY_MS / 2,
      )
      const slow = mine.filter((s) => s.ms > LIMIT_MS)
      expect(
        slow.map((s) => `${s.ms.toFixed(0)} ms at +${s.at - runStart} ms`),
        `${path} answered slower than ${LIMIT_MS} ms`,
      ).toEqual([])
    }
    for (const s of during.filter((x) => x.path === '/heartbeat')) {
      expect(s.status, s.body).toBe(200)
      expect(JSON.parse(s.body)).toMatchObject({ status: 'ok' })
    }
    // Keycloak is not there, and the container health check says so, quickly.
    for (const s of during.filter((x) => x.path === '/healthz')) {
      expect(s.status, s.body).toBe(503)
      expect(JSON.parse(s.body)).toMatchObject({ status: 'unavailable' })
    }
    const beats = during.filter((s) => s.path === '/heartbeat').map((s) => s.ms)
    const health = during.filter((s) => s.path === '/healthz').map((s) => s.ms)
    const stats = (ms: number[]) =>
      `n=${ms.length} p50=${percentile(ms, 50).toFixed(1)} ms max=${Math.max(...ms).toFixed(1)} ms`
    console.log(
      `10 000-user run on ${db}: ${runMs} ms; /heartbeat ${stats(beats)}; /healthz ${stats(health)}`,
    )
  })
})
