import { execFileSync, spawn } from 'node:child_process'
import { closeSync, cpSync, mkdirSync, openSync, rmSync, symlinkSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomSecret } from '../src/config/secrets.js'
import { errorMessage } from '../src/errors.js'
import type { Directory } from '../test/builders.js'
import { createFakeNextcloud } from '../test/fake-nextcloud/index.js'
import { ROOT } from '../test/keycloak.js'
import {
  type LoadResult,
  load,
  MEMORY_IMAGE_VARS,
  procStatusBytes,
  progress,
  sidecarEnv,
  sleep,
  stopChild,
} from './lib.js'

/** Memory of the sidecar, run as its own process the way the image runs it. */
export interface SidecarMemory {
  /** how the sidecar ran: `node dist/main.js`, embedded store */
  command: string
  /** largest VmRSS sampled (every 100 ms) while the cold sync ran */
  syncPeakRss: number
  /** largest VmRSS sampled while the token load ran */
  tokensPeakRss: number
  /** the larger of the two: the figure the issue's limit applies to */
  sidecarPeakRss: number
  /** VmHWM at the end: the peak over the whole life, the first start's database setup included */
  lifetimeHwm: number
  /** VmRSS once started and idle, before any work */
  idleRss: number
  /** the app's own view of its memory once the token load is done (its /metrics, in bytes) */
  afterTokens: Record<string, number>
  /** where the resident memory was at the larger peak (smaps: see rssBreakdown) */
  breakdown: Record<string, number>
  /** the same, idle before the cold sync */
  idleBreakdown: Record<string, number>
  syncMs: number
  tokens: LoadResult
  /** largest VmRSS sampled while a scheduled run went over the unchanged directory, after the tokens */
  scheduledPeakRss: number
  /** where the resident memory was at that peak */
  scheduledBreakdown: Record<string, number>
  scheduledMs: number
}

const APP_PORT = 28796
const APP_VERSION = '0.0.0-bench'

/**
 * Builds the app as the Dockerfile's build stage does (`npm run build` over a copy of src/ and the
 * package files, then the migrations next to dist/db) into a bench folder.
 */
export function buildDist(): string {
  // dist/ beside a package.json, as in the image (the app reads its version from ../package.json)
  const app = join(ROOT, '.test-artifacts', 'bench-app')
  rmSync(app, { recursive: true, force: true })
  mkdirSync(app, { recursive: true })
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(join(ROOT, file), join(app, file))
  }
  cpSync(join(ROOT, 'src'), join(app, 'src'), { recursive: true })
  // the build's tools (tsc, esbuild) from the repository's node_modules, as npm ci would give them
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'))
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: app, stdio: 'inherit' })
  const out = join(app, 'dist')
  cpSync(join(app, 'src/db/migrations'), join(out, 'db/migrations'), { recursive: true })
  return out
}

/**
 * Where a process's resident memory is, from /proc/<pid>/smaps:
 * - wasmMemory: WebAssembly memories (a read-write mapping right before the several-GiB guard
 *   region V8 reserves behind each; only touched pages are resident)
 * - v8Heaps: the JavaScript heaps of all threads (V8 maps its pages at random addresses below
 *   0x400000000000, where glibc maps only its main heap, [heap], counted as native)
 * - machineCode: code V8 generated (JIT, WebAssembly), anonymous executable mappings
 * - files: the node binary and the shared libraries mapped in (shared with other processes, but
 *   counted in VmRSS)
 * - native: the rest: malloc (Node's and libraries' C++ objects, ArrayBuffer contents, thread stacks)
 */
export async function rssBreakdown(pid: number): Promise<Record<string, number>> {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '')
  const maps: {
    start: number
    end: number
    perms: string
    file: boolean
    heap: boolean
    rss: number
  }[] = []
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line)
    if (head) {
      maps.push({
        start: Number.parseInt(head[1] as string, 16),
        end: Number.parseInt(head[2] as string, 16),
        perms: head[3] as string,
        file: (head[4] as string) !== '0' && (head[5] ?? '').startsWith('/'),
        heap: head[5] === '[heap]',
        rss: 0,
      })
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    const last = maps[maps.length - 1]
    if (rss && last) {
      last.rss = Number(rss[1]) * 1024
    }
  }
  const out = { wasmMemory: 0, v8Heaps: 0, machineCode: 0, files: 0, native: 0 }
  maps.forEach((m, i) => {
    const next = maps[i + 1]
    if (m.file) {
      out.files += m.rss
    } else if (m.perms.includes('x')) {
      out.machineCode += m.rss
    } else if (
      m.perms.startsWith('rw') &&
      next?.start === m.end &&
      next.perms === '---p' &&
      next.end - next.start >= 2 ** 32
    ) {
      out.wasmMemory += m.rss
    } else if (m.start < 0x400000000000 && !m.heap) {
      out.v8Heaps += m.rss
    } else {
      out.native += m.rss
    }
  })
  return out
}

/** Samples VmRSS every `everyMs`; at each new peak (1 MiB above the last one) reads where it is. */
function sampler(pid: number, everyMs = 100) {
  let peak = 0
  let breakdown: Record<string, number> = {}
  let reading = false
  const timer = setInterval(() => {
    void procStatusBytes(pid, 'VmRSS').then(async (b) => {
      if ((b ?? 0) > peak + 1048576 && !reading) {
        reading = true
        breakdown = { rss: b ?? 0, ...(await rssBreakdown(pid)) }
        reading = false
      }
      peak = Math.max(peak, b ?? 0)
    })
  }, everyMs)
  return {
    async stop(): Promise<{ peak: number; breakdown: Record<string, number> }> {
      clearInterval(timer)
      peak = Math.max(peak, (await procStatusBytes(pid, 'VmRSS')) ?? 0)
      return { peak, breakdown }
    },
  }
}

/** Memory figures of the app's /metrics: V8 heap, external and resident bytes. */
async function processFigures(base: string, token: string): Promise<Record<string, number>> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.text()
  const out: Record<string, number> = {}
  for (const name of [
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_size_total_bytes',
    'nodejs_external_memory_bytes',
  ]) {
    const m = new RegExp(`^keycloak_exapp_${name} (\\S+)`, 'm').exec(text)
    if (m?.[1]) {
      out[name] = Number(m[1])
    }
  }
  return out
}

/** An error that ends a wait at once. */
class Fatal extends Error {}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    let value: T | undefined
    try {
      value = await probe()
    } catch (err) {
      if (err instanceof Fatal) {
        throw err
      }
      last = errorMessage(err)
    }
    if (value !== undefined) {
      return value
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: gave up after ${timeoutMs} ms ${last}`)
    }
    await sleep(200)
  }
}

/**
 * The sidecar as its own process (`node dist/main.js`, embedded database in a fresh folder, the
 * bench's Keycloak as an external one, a fake Nextcloud serving `directory`): a cold sync of the
 * whole directory, then `tokenCount` token requests over `tokenUsers` at `concurrency`, with
 * the process's VmRSS sampled throughout.
 */
export async function sidecarMemory(opts: {
  keycloak: { url: string; admin: string; password: string }
  directory: Directory
  tokenUsers: readonly string[]
  tokenCount: number
  concurrency: number
}): Promise<SidecarMemory> {
  progress('memory: compiling the app as the image does')
  const dist = buildDist()
  const secrets = { app: randomSecret(), api: randomSecret(), metrics: randomSecret() }
  const nc = await createFakeNextcloud(opts.directory)
  nc.registerExApp({
    appId: 'keycloak',
    secret: secrets.app,
    version: APP_VERSION,
    url: `http://127.0.0.1:${APP_PORT}`,
    enabled: true,
    init: 0,
  })
  const storage = join(ROOT, '.test-artifacts', `bench-memory-${APP_PORT}`)
  rmSync(storage, { recursive: true, force: true })
  const realm = `benchmem${Date.now().toString(36)}`
  const env = sidecarEnv({
    appPort: APP_PORT,
    appVersion: APP_VERSION,
    appSecret: secrets.app,
    apiSecret: secrets.api,
    storage,
    nextcloudUrl: nc.url,
    imageVars: MEMORY_IMAGE_VARS,
    extra: {
      KEYCLOAK_URL: opts.keycloak.url,
      KC_BOOTSTRAP_ADMIN_USERNAME: opts.keycloak.admin,
      KC_BOOTSTRAP_ADMIN_PASSWORD: opts.keycloak.password,
      KEYCLOAK_REALM: realm,
      METRICS_TOKEN: secrets.metrics,
      // to compare other settings: BENCH_SIDECAR_NODE_OPTIONS replaces the image's NODE_OPTIONS
      ...(process.env.BENCH_SIDECAR_NODE_OPTIONS !== undefined
        ? { NODE_OPTIONS: process.env.BENCH_SIDECAR_NODE_OPTIONS }
        : {}),
    },
  })
  const command = `node dist/main.js (${MEMORY_IMAGE_VARS.map((k) => `${k}=${env[k] ?? ''}`).join(' ')}, as the image sets them)`
  // The sidecar's log (warnings and errors at the bench's level) is kept for a failure's cause.
  const logFile = join(ROOT, '.test-artifacts', 'bench-sidecar.log')
  const logFd = openSync(logFile, 'w')
  const child = spawn(process.execPath, [join(dist, 'main.js')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', logFd, 'inherit'],
  })
  closeSync(logFd)
  progress(`memory: the sidecar logs to ${logFile}`)
  const pid = child.pid
  if (pid === undefined) {
    throw new Error('the sidecar did not start')
  }
  const base = `http://127.0.0.1:${APP_PORT}`
  const asAdmin = {
    'EX-APP-ID': 'keycloak',
    'EX-APP-VERSION': APP_VERSION,
    'AA-VERSION': '5.0.2',
    'AUTHORIZATION-APP-API': Buffer.from(`admin:${secrets.app}`).toString('base64'),
  }
  try {
    await waitFor('sidecar ready', 300_000, async () => {
      if (child.exitCode !== null) {
        throw new Fatal(`the sidecar exited with ${child.exitCode}`)
      }
      const res = await fetch(`${base}/heartbeat`)
      const body = (await res.json()) as { keycloak?: string }
      return res.ok && body.keycloak === 'ready' ? true : undefined
    })
    await sleep(2_000)
    const idleRss = (await procStatusBytes(pid, 'VmRSS')) ?? 0
    const idleBreakdown = await rssBreakdown(pid)
    progress(
      `memory: sidecar idle at ${(idleRss / 1048576).toFixed(0)} MiB; /init (realm, cold sync)`,
    )

    // AppAPI's /init, as Nextcloud sends it once the app is deployed: the realm is set up, the
    // first (cold) sync of the whole directory runs, and the progress goes back to Nextcloud.
    const syncSampler = sampler(pid)
    const syncStarted = performance.now()
    const asSystem = {
      ...asAdmin,
      'AUTHORIZATION-APP-API': Buffer.from(`:${secrets.app}`).toString('base64'),
    }
    const init = await fetch(`${base}/init`, { method: 'POST', headers: asSystem })
    if (!init.ok) {
      throw new Error(`/init: HTTP ${init.status} ${(await init.text()).slice(0, 300)}`)
    }
    await waitFor('init 100', 1_800_000, async () => {
      const status = nc.exApp('keycloak').status
      if (status.error) {
        throw new Fatal(`init failed: ${status.error}`)
      }
      return status.init === 100 ? true : undefined
    })
    const syncMs = performance.now() - syncStarted
    const syncPeak = await syncSampler.stop()
    const syncPeakRss = syncPeak.peak
    const runs = await fetch(`${base}/api/sync-runs?limit=1`, { headers: asAdmin })
    const runText = await runs.text()
    if (!runs.ok || !runText.includes('"succeeded"')) {
      throw new Error(
        `the first sync did not succeed: HTTP ${runs.status} ${runText.slice(0, 300)}`,
      )
    }
    progress(`memory: realm and cold sync ${(syncMs / 1000).toFixed(1)} s; token load`)

    const tokenSampler = sampler(pid)
    const items = Array.from(
      { length: opts.tokenCount },
      (_, i) => opts.tokenUsers[i % opts.tokenUsers.length] as string,
    )
    const tokens = await load(items, opts.concurrency, async (uid) => {
      const r = await fetch(`${base}/api/token?client_id=opentalk`, {
        method: 'POST',
        headers: { 'X-API-SECRET': secrets.api, 'X-NC-USER-ID': uid },
      })
      const body = await r.text()
      if (r.status !== 200) {
        throw new Error(`token for ${uid}: HTTP ${r.status} ${body.slice(0, 200)}`)
      }
    })
    const tokensPeak = await tokenSampler.stop()
    const tokensPeakRss = tokensPeak.peak
    // The run the schedule makes every SYNC_INTERVAL (POST /api/sync-all, as an admin asks for
    // it): the whole directory read from Nextcloud and planned against the stored state, with
    // nothing to change. Not part of the issue's limit, shown beside it.
    progress('memory: a scheduled run over the unchanged directory')
    const scheduledSampler = sampler(pid)
    const scheduledStarted = performance.now()
    const scheduled = await fetch(`${base}/api/sync-all`, { method: 'POST', headers: asAdmin })
    const scheduledText = await scheduled.text()
    if (!scheduled.ok || !scheduledText.includes('"synced":0')) {
      throw new Error(`the scheduled run: HTTP ${scheduled.status} ${scheduledText.slice(0, 300)}`)
    }
    const scheduledMs = performance.now() - scheduledStarted
    const scheduledPeak = await scheduledSampler.stop()
    const afterTokens = await processFigures(base, secrets.metrics)
    const lifetimeHwm = (await procStatusBytes(pid, 'VmHWM')) ?? 0
    return {
      command,
      syncPeakRss,
      tokensPeakRss,
      sidecarPeakRss: Math.max(syncPeakRss, tokensPeakRss),
      lifetimeHwm,
      idleRss,
      afterTokens,
      breakdown: syncPeakRss > tokensPeakRss ? syncPeak.breakdown : tokensPeak.breakdown,
      idleBreakdown,
      syncMs,
      tokens,
      scheduledPeakRss: scheduledPeak.peak,
      scheduledBreakdown: scheduledPeak.breakdown,
      scheduledMs,
    }
  } finally {
    await stopChild(child)
    await nc.close()
  }
}
