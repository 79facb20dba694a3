import { spawn } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { randomSecret } from '../src/config/secrets.js'
import { errorMessage } from '../src/errors.js'
import { aDirectory } from '../test/builders.js'
import { createFakeNextcloud } from '../test/fake-nextcloud/index.js'
import { ROOT, startOwnKeycloak } from '../test/keycloak.js'
import {
  MEMORY_IMAGE_VARS,
  procStatusBytes,
  progress,
  sidecarEnv,
  sleep,
  stopChild,
} from './lib.js'
import { buildDist } from './memory.js'

export interface StartupResult {
  /** how the sidecar ran: `node dist/main.js` built as the image does, with the image's env */
  command: string
  /** sidecar process start → heartbeat says Keycloak ready */
  exappReadyMs: number
  /** sidecar process start → first token issued */
  exappTokenMs: number
  /** peak RSS (VmHWM) of the sidecar process over its whole run */
  exappPeakRss?: number
  /** bare `kc.sh start --optimized` → /health/ready */
  bareMs: number
  /** the warm ExApp start, from its own log: ms after the process was spawned, per event */
  exappEvents?: Record<string, number>
  /** the bare start: ms after spawn at which Keycloak said it had started */
  bareEvents?: Record<string, number>
  /** both as one line, for the table */
  timeline?: string
}

/**
 * Log lines that mark the start-up's steps: the app's JSON lines by `msg`, and Keycloak's own
 * "started in" line, which the supervisor passes on.
 */
const MARKS: [string, (line: { msg?: string; state?: string }) => boolean][] = [
  ['starting', (l) => l.msg === 'exapp.starting'],
  ['kcSpawned', (l) => l.msg === 'keycloak.spawned'],
  ['dbOpened', (l) => l.msg === 'db.opened'],
  ['listening', (l) => l.msg === 'exapp.listening'],
  ['kcStarted', (l) => / started in \d/.test(l.msg ?? '')],
  ['kcReady', (l) => l.msg === 'keycloak.state' && l.state === 'ready'],
  ['bootstrapped', (l) => l.msg === 'realm.bootstrapped'],
]

/** Records, from JSON log lines, when (Date.now() − `since`) each of MARKS first appeared. */
function markRecorder(since: number) {
  const events: Record<string, number> = {}
  let rest = ''
  return {
    events,
    write(chunk: string) {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const text of lines) {
        let line: { msg?: string; state?: string; time?: number; durationMs?: number }
        try {
          line = JSON.parse(text)
        } catch {
          continue
        }
        for (const [name, matches] of MARKS) {
          if (events[name] === undefined && matches(line)) {
            events[name] = (line.time ?? Date.now()) - since
            if (name === 'bootstrapped' && line.durationMs !== undefined) {
              events.bootstrapMs = line.durationMs
            }
          }
        }
      }
    },
  }
}

const PORT = 28780
const APP_PORT = 28795
const APP_VERSION = '0.0.0-bench'

/**
 * One start of the whole ExApp as its own process, as the image runs it: `node <dist>/main.js`
 * with the image's NODE_ENV and MEMORY_IMAGE_VARS, logging at info as the image does
 * (its steps' lines are the timeline). With BENCH_STARTUP_LOG set, its output (JSON lines,
 * timestamped) also goes to that file, one file per start.
 */
async function exappOnce(
  dist: string,
  label: string,
  prepared: { home: string; javaHome: string },
  fresh: boolean,
  secrets: { app: string; api: string; admin: string },
  ncUrl: string,
): Promise<{
  readyMs: number
  tokenMs: number
  peakRss?: number
  events: Record<string, number>
}> {
  const storage = join(ROOT, '.test-artifacts', `bench-startup-exapp-${PORT}`)
  if (fresh) {
    await rm(storage, { recursive: true, force: true })
  }
  const env = sidecarEnv({
    appPort: APP_PORT,
    appVersion: APP_VERSION,
    appSecret: secrets.app,
    apiSecret: secrets.api,
    storage,
    nextcloudUrl: ncUrl,
    imageVars: ['NODE_ENV', ...MEMORY_IMAGE_VARS],
    extra: {
      KEYCLOAK_HOME: prepared.home,
      KEYCLOAK_CACHE_DIR: join(ROOT, '.keycloak'),
      KEYCLOAK_HTTP_PORT: String(PORT),
      KEYCLOAK_MANAGEMENT_PORT: String(PORT + 1000),
      KC_HOSTNAME: `http://127.0.0.1:${PORT}`,
      KC_BOOTSTRAP_ADMIN_PASSWORD: secrets.admin,
      JAVA_HOME: prepared.javaHome,
    },
  })
  // at info, as the image logs: the steps' lines give the timeline
  env.LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info'
  const logFile = process.env.BENCH_STARTUP_LOG
  const out = logFile ? openSync(`${logFile}.${label}.jsonl`, 'w') : undefined
  const started = performance.now()
  const marks = markRecorder(Date.now())
  const child = spawn(process.execPath, [join(dist, 'main.js')], {
    cwd: join(dist, '..'),
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    marks.write(chunk)
    if (out !== undefined) {
      writeSync(out, chunk)
    }
  })
  try {
    let readyMs: number | undefined
    let tokenMs: number | undefined
    let lastError = ''
    const deadline = Date.now() + 300_000
    while (tokenMs === undefined) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`the ExApp never issued a token (${lastError}), exit ${child.exitCode}`)
      }
      try {
        if (readyMs === undefined) {
          const hb = await fetch(`http://127.0.0.1:${APP_PORT}/heartbeat`)
          const body = (await hb.json()) as { keycloak?: string }
          if (hb.ok && body.keycloak === 'ready') {
            readyMs = performance.now() - started
          } else {
            lastError = `heartbeat ${JSON.stringify(body)}`
          }
        } else {
          const res = await fetch(`http://127.0.0.1:${APP_PORT}/api/token?client_id=opentalk`, {
            method: 'POST',
            headers: { 'X-API-SECRET': secrets.api, 'X-NC-USER-ID': 'u01' },
          })
          const text = await res.text()
          if (res.status === 200) {
            tokenMs = performance.now() - started
            break
          }
          lastError = `token HTTP ${res.status} ${text.slice(0, 200)}`
        }
      } catch (err) {
        lastError = errorMessage(err)
      }
      await sleep(50)
    }
    const peakRss = child.pid ? await procStatusBytes(child.pid, 'VmHWM') : undefined
    return {
      readyMs: readyMs ?? Number.NaN,
      tokenMs,
      ...(peakRss ? { peakRss } : {}),
      events: marks.events,
    }
  } finally {
    await stopChild(child)
    if (out !== undefined) {
      closeSync(out)
    }
  }
}

/**
 * One start of a bare Keycloak (storage of its own); resolves with start → ready and when
 * Keycloak said it had started.
 */
async function bareOnce(
  prepared: { home: string; javaHome: string },
  fresh: boolean,
  password: string,
): Promise<{ ms: number; events: Record<string, number> }> {
  const started = performance.now()
  const marks = markRecorder(Date.now())
  const log = pino({ level: 'info' }, { write: (chunk: string) => marks.write(chunk) })
  // bare: `kc.sh start --optimized` as it comes, without the AOT cache the ExApp trains
  const kc = await startOwnKeycloak(PORT, 'bench-startup-bare', prepared, {
    keep: !fresh,
    password,
    log,
    aot: false,
  })
  const ms = performance.now() - started
  await kc.stop()
  return { ms, events: marks.events }
}

/**
 * Startup, warm: each side is started once to create its storage (not measured), stopped, then
 * started again and measured. Same Keycloak home, own H2 storage each, ports 28780/29780.
 */
export async function startupWorkload(prepared: {
  home: string
  javaHome: string
}): Promise<StartupResult> {
  const secrets = { app: randomSecret(), api: randomSecret(), admin: randomSecret() }
  const nc = await createFakeNextcloud(
    aDirectory({ users: 10, groups: 2, membershipsPerUser: 1, seed: 3 }),
  )
  nc.registerExApp({
    appId: 'keycloak',
    secret: secrets.app,
    version: APP_VERSION,
    url: `http://127.0.0.1:${APP_PORT}`,
    enabled: true,
    init: 0,
  })
  try {
    const dist = buildDist()
    progress('startup: ExApp first start (creates its storage, not measured)')
    await exappOnce(dist, 'first', prepared, true, secrets, nc.url)
    progress('startup: ExApp warm start')
    const exapp = await exappOnce(dist, 'warm', prepared, false, secrets, nc.url)
    progress(`startup: ExApp token after ${(exapp.tokenMs / 1000).toFixed(1)} s`)
    const password = randomSecret()
    progress('startup: bare Keycloak first start (not measured)')
    await bareOnce(prepared, true, password)
    progress('startup: bare Keycloak warm start')
    const bare = await bareOnce(prepared, false, password)
    const bareMs = bare.ms
    progress(`startup: bare Keycloak ready after ${(bareMs / 1000).toFixed(1)} s`)
    const at = (events: Record<string, number>) =>
      Object.entries(events)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`)
        .join(', ')
    return {
      command: 'node dist/main.js',
      exappReadyMs: exapp.readyMs,
      exappTokenMs: exapp.tokenMs,
      ...(exapp.peakRss ? { exappPeakRss: exapp.peakRss } : {}),
      bareMs,
      exappEvents: exapp.events,
      bareEvents: bare.events,
      timeline: `ExApp (s after spawn): ${at(exapp.events)}, ready ${(exapp.readyMs / 1000).toFixed(2)}, token ${(exapp.tokenMs / 1000).toFixed(2)}; bare: ${at(bare.events)}, ready ${(bareMs / 1000).toFixed(2)}`,
    }
  } finally {
    await nc.close()
  }
}
