import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { errorMessage } from '../src/errors.js'
import { statFields } from '../src/keycloak/process-group.js'
import { ROOT } from '../test/keycloak.js'

const t0 = Date.now()

/** A progress line on stderr, with the seconds since the bench started. */
export function progress(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(7)
  process.stderr.write(`[bench ${s}s] ${msg}\n`)
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(', ')
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now()
  const value = await fn()
  return { ms: performance.now() - started, value }
}

export interface LoadResult {
  requests: number
  failed: number
  /** first failure message, if any */
  firstError?: string
  ms: number
  rps: number
  p50: number
  p99: number
  /** every answered call's latency, sorted (for combined(); not a figure of its own) */
  latencies: number[]
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) {
    return Number.NaN
  }
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, i)] as number
}

/** The figures of `requests` calls that took `ms` in all, from the answered ones' latencies. */
function summary(
  requests: number,
  ms: number,
  latencies: number[],
  failed: number,
  firstError: string | undefined,
): LoadResult {
  latencies.sort((a, b) => a - b)
  return {
    requests,
    failed,
    ...(firstError ? { firstError } : {}),
    ms,
    rps: (requests - failed) / (ms / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    latencies,
  }
}

/** Loads run one after the other, as one: their requests over their summed time. */
export function combined(parts: readonly LoadResult[]): LoadResult {
  return summary(
    parts.reduce((n, p) => n + p.requests, 0),
    parts.reduce((n, p) => n + p.ms, 0),
    parts.flatMap((p) => p.latencies),
    parts.reduce((n, p) => n + p.failed, 0),
    parts.find((p) => p.firstError)?.firstError,
  )
}

/** Runs `fn` once per item with `concurrency` workers; latency per call, throughput overall. */
export async function load<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = []
  let failed = 0
  let firstError: string | undefined
  let next = 0
  const started = performance.now()
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T
      const at = performance.now()
      try {
        await fn(item)
        latencies.push(performance.now() - at)
      } catch (err) {
        failed++
        firstError ??= errorMessage(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return summary(items.length, performance.now() - started, latencies, failed, firstError)
}

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM), or undefined once the process is gone. */
export async function procStatusBytes(pid: number, field: string): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** The JVM under `pid` (kc.sh forks java rather than exec-ing it): `pid` itself or a descendant. */
export async function javaPid(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) {
    return undefined
  }
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')
  if (comm.trim() === 'java') {
    return pid
  }
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  for (const child of children.split(' ').filter(Boolean)) {
    const found = await javaPid(Number(child))
    if (found !== undefined) {
      return found
    }
  }
  return undefined
}

/** USER_HZ, the unit of /proc/<pid>/stat's times: 100 on Linux everywhere it runs */
const CLOCK_TICKS = 100

/** CPU time (user + system) `pid` has used, in milliseconds; undefined once it is gone. */
export async function cpuMs(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  if (stat === undefined) {
    return undefined
  }
  const fields = statFields(stat)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
}

/**
 * Waits until `pid` uses under `share` of one core over a second (its collector and compiler
 * done with what the last workload left), at most `maxMs`; answers how long it waited.
 */
export async function quiet(pid: number, share = 0.1, maxMs = 30_000): Promise<number> {
  const started = performance.now()
  let before = await cpuMs(pid)
  while (before !== undefined && performance.now() - started < maxMs) {
    await sleep(1000)
    const after = await cpuMs(pid)
    if (after === undefined || after - before < share * 1000) {
      break
    }
    before = after
  }
  return performance.now() - started
}

/** Samples this process's RSS (and optionally another pid's VmRSS) every `everyMs`. */
export function rssSampler(otherPid?: number, everyMs = 100) {
  let self = process.memoryUsage().rss
  let other = 0
  const sample = () => {
    self = Math.max(self, process.memoryUsage().rss)
    if (otherPid !== undefined) {
      void procStatusBytes(otherPid, 'VmRSS').then((b) => {
        other = Math.max(other, b ?? 0)
      })
    }
  }
  sample()
  const timer = setInterval(sample, everyMs)
  return {
    stop(): { selfPeak: number; otherPeak: number } {
      clearInterval(timer)
      sample()
      return { selfPeak: self, otherPeak: other }
    },
  }
}

export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
export const ratio = (a: number, b: number) =>
  Number.isFinite(a / b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a'

/**
 * GETs `url` every `everyMs` from a thread of its own, so what it measures is how long the server
 * (busy in this process) takes to answer, not how long this thread waits to send. Plain JS:
 * workers get no TypeScript loader.
 */
const LATENCY_POLLER = `
const { parentPort, workerData } = require('node:worker_threads')
const { url, everyMs } = workerData
const latencies = []
let failed = 0
let stopped = false
parentPort.on('message', () => { stopped = true })
;(async () => {
  while (!stopped) {
    const started = performance.now()
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status >= 500 && res.status !== 503) failed++
      latencies.push(performance.now() - started)
    } catch {
      failed++
    }
    await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (performance.now() - started))))
  }
  parentPort.postMessage({ latencies, failed })
})()
`

export interface PollResult {
  polls: number
  failed: number
  p50: number
  p99: number
  max: number
}

export function latencyPoller(url: string, everyMs = 20): { stop(): Promise<PollResult> } {
  const worker = new Worker(LATENCY_POLLER, { eval: true, workerData: { url, everyMs } })
  const done = new Promise<{ latencies: number[]; failed: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    async stop() {
      worker.postMessage('stop')
      const { latencies, failed } = await done
      await worker.terminate()
      latencies.sort((a, b) => a - b)
      return {
        polls: latencies.length,
        failed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? Number.NaN,
      }
    },
  }
}

/** One HTTP request of a load; the body is read, a status other than `expect` is a failure. */
export interface HttpRequestSpec {
  url: string
  method: string
  headers: Record<string, string>
}

/**
 * The load generator's thread. Each of `concurrency` loops keeps one HTTP/1.1 connection alive
 * and sends its requests on it one after the other, parsing just the status line, the headers and
 * a Content-Length or chunked body. Not fetch: undici's fetch spends more CPU per request than the server it
 * measures (a bare Hono handler answered 3–7 times more requests a second to this client than to
 * fetch on the same two cores), so a fetch-driven load measured the client.
 */
const HTTP_LOAD = `
const { parentPort } = require('node:worker_threads')
const net = require('node:net')
const CRLF2 = Buffer.from('\\r\\n\\r\\n')

function connection(host, port) {
  let socket
  let pending
  const settle = (err, value) => {
    const p = pending
    pending = undefined
    if (p) err ? p.reject(err) : p.resolve(value)
  }
  const open = () => {
    const s = net.connect(port, host)
    socket = s
    s.setNoDelay(true)
    let buffer = Buffer.alloc(0)
    // Only the current socket answers the pending request; a socket given up is just destroyed.
    const fail = (err) => {
      s.destroy()
      if (socket !== s) return
      socket = undefined
      settle(err)
    }
    s.on('data', (chunk) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      const end = buffer.indexOf(CRLF2)
      if (end < 0) return
      const head = buffer.subarray(0, end).toString('latin1')
      const length = /\\r\\ncontent-length: *(\\d+)/i.exec(head)
      let body
      let bodyEnd
      if (length) {
        bodyEnd = end + 4 + Number(length[1])
        if (buffer.length < bodyEnd) return
        body = buffer.subarray(end + 4, bodyEnd).toString()
      } else if (/\\r\\ntransfer-encoding: *chunked/i.test(head)) {
        const chunks = []
        let at = end + 4
        for (;;) {
          const line = buffer.indexOf('\\r\\n', at)
          if (line < 0) return
          const size = Number.parseInt(buffer.subarray(at, line).toString('latin1'), 16)
          if (buffer.length < line + 2 + size + 2) return
          if (size === 0) {
            bodyEnd = line + 4
            break
          }
          chunks.push(buffer.subarray(line + 2, line + 2 + size))
          at = line + 2 + size + 2
        }
        body = Buffer.concat(chunks).toString()
      } else {
        fail(new Error('response without Content-Length or chunks: ' + head.split('\\r\\n')[0]))
        return
      }
      const status = Number(head.slice(9, 12))
      buffer = buffer.subarray(bodyEnd)
      if (/\\r\\nconnection: *close/i.test(head)) {
        socket = undefined
        s.destroy()
      }
      settle(undefined, { status, body })
    })
    s.on('error', fail)
    s.on('close', () => fail(new Error('connection closed before the response')))
  }
  return {
    send(raw) {
      if (!socket) open()
      return new Promise((resolve, reject) => {
        pending = { resolve, reject }
        socket.write(raw)
      })
    },
    close() {
      const s = socket
      socket = undefined
      s?.destroy()
    },
  }
}

const rawRequest = (r) => {
  const url = new URL(r.url)
  const headers = Object.entries(r.headers).map(([k, v]) => k + ': ' + v + '\\r\\n').join('')
  return r.method + ' ' + url.pathname + url.search + ' HTTP/1.1\\r\\nHost: ' + url.host + '\\r\\n' +
    headers + 'Content-Length: 0\\r\\n\\r\\n'
}

async function run({ requests, concurrency, expect }) {
  const latencies = []
  let failed = 0
  let firstError
  let next = 0
  const started = performance.now()
  const worker = async () => {
    const target = new URL(requests[0].url)
    const conn = connection(target.hostname, Number(target.port))
    while (next < requests.length) {
      const r = requests[next++]
      const raw = rawRequest(r)
      const at = performance.now()
      try {
        const res = await conn.send(raw)
        if (res.status !== expect) {
          throw new Error('HTTP ' + res.status + ' ' + res.body.slice(0, 200))
        }
        latencies.push(performance.now() - at)
      } catch (err) {
        failed++
        firstError ??= String(err && err.message ? err.message : err)
      }
    }
    conn.close()
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker))
  return { latencies, failed, firstError, ms: performance.now() - started }
}

parentPort.on('message', (job) => run(job).then((out) => parentPort.postMessage(out)))
`

let loadThread: Worker | undefined

/**
 * The load's thread, started once and kept: like a consumer that has been running for a while, its
 * code is compiled by the time a measured load starts, and no load pays for starting a thread.
 * It does not keep the process alive between loads.
 */
function loadWorker(): Worker {
  if (!loadThread) {
    const thread = new Worker(HTTP_LOAD, { eval: true })
    thread.unref()
    thread.once('exit', () => {
      loadThread = undefined
    })
    loadThread = thread
  }
  return loadThread
}

/**
 * Sends `requests` with `concurrency` at a time from a thread of its own: the server under test
 * runs in this thread, and a load generator sharing its event loop would be measured with it.
 */
export async function httpLoad(
  requests: readonly HttpRequestSpec[],
  concurrency: number,
  expect = 200,
): Promise<LoadResult> {
  const worker = loadWorker()
  worker.ref()
  try {
    const out = await new Promise<{
      latencies: number[]
      failed: number
      firstError?: string
      ms: number
    }>((resolve, reject) => {
      const done = (out: Parameters<typeof resolve>[0]) => {
        worker.off('error', failed).off('exit', failed)
        resolve(out)
      }
      const failed = (err: unknown) => {
        worker.off('message', done).off('error', failed).off('exit', failed)
        reject(err instanceof Error ? err : new Error(`the load's thread exited (${String(err)})`))
      }
      worker.once('message', done).once('error', failed).once('exit', failed)
      worker.postMessage({ requests, concurrency, expect })
    })
    return summary(requests.length, out.ms, out.latencies, out.failed, out.firstError)
  } finally {
    worker.unref()
  }
}

/** Stops a child process: SIGTERM, then SIGKILL if it is still there a minute later. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await Promise.race([gone, sleep(60_000)])
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await gone
  }
}

/** The Dockerfile's variables that shape the app's memory (malloc, V8), given to a measured sidecar. */
export const MEMORY_IMAGE_VARS = [
  'MALLOC_ARENA_MAX',
  'MALLOC_MMAP_THRESHOLD_',
  'MALLOC_TRIM_THRESHOLD_',
  'NODE_OPTIONS',
]

/** Values the Dockerfile's ENV lines give the named variables. */
export function imageEnv(names: string[]): Record<string, string> {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  const out: Record<string, string> = {}
  for (const name of names) {
    // NAME=value, or NAME="a value with spaces"
    const m = new RegExp(`\\b${name}=(?:"([^"]*)"|(\\S+))`).exec(text)
    const value = m?.[1] ?? m?.[2]
    if (value) {
      out[name] = value
    }
  }
  return out
}

export interface SidecarEnvSpec {
  appPort: number
  appVersion: string
  appSecret: string
  apiSecret: string
  storage: string
  nextcloudUrl: string
  /** variables whose values the run takes from the Dockerfile, as the image sets them */
  imageVars: string[]
  /** the run's own settings (where Keycloak is, …); these win over the Dockerfile's values */
  extra: Record<string, string>
}

/**
 * The environment a bench gives `node dist/main.js`: only what the image would set (no inherited
 * variables beyond PATH and HOME), so a developer's shell cannot change what is measured.
 */
export function sidecarEnv(spec: SidecarEnvSpec): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    APP_ID: 'keycloak',
    APP_VERSION: spec.appVersion,
    APP_SECRET: spec.appSecret,
    APP_HOST: '127.0.0.1',
    APP_PORT: String(spec.appPort),
    APP_PERSISTENT_STORAGE: spec.storage,
    NEXTCLOUD_URL: spec.nextcloudUrl,
    KEYCLOAK_API_SECRET: spec.apiSecret,
    SYNC_INTERVAL: '0',
    ...imageEnv(spec.imageVars),
    ...spec.extra,
  }
}
