import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { REDACT_PATHS } from '../src/log.js'
import { aDirectory, type Directory } from '../test/builders.js'
import { startCountingProxy } from '../test/counting-proxy.js'
import { bootstrapped, startTestExApp, type TestExApp } from '../test/exapp-harness.js'
import { prepareKeycloak, startOwnKeycloak } from '../test/keycloak.js'
import { benchJson, type Measured } from './figures.js'
import {
  combined,
  cpuMs,
  javaPid,
  type LoadResult,
  latencyPoller,
  loadAverage,
  mib,
  procStatusBytes,
  progress,
  quiet,
  ratio,
  rssSampler,
  secs,
} from './lib.js'
import { sidecarMemory } from './memory.js'
import { pollCost } from './poll.js'
import { type StartupResult, startupWorkload } from './startup.js'
import {
  applyDelta,
  aTokenBody,
  bareJwtGrants,
  barePasswordLoad,
  partialImportBaseline,
  startHttpFloor,
  syncRun,
  tokenLoad,
} from './workloads.js'

const USAGE = `npm run bench -- [--scale 0.1] [--json out.json] [--skip startup,tokens,memory]
                     [--only memory,startup]

Runs every workload against a Keycloak of its own (ports 28680/29680, storage
.test-artifacts/bench-28680) and the fake Nextcloud, prints one markdown table on stdout and,
with --json, writes the figures there. Progress goes to stderr. --only runs the named workloads
alone (sync, tokens, memory, startup); memory and startup need no sync run before them.`

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    json: { type: 'string' },
    skip: { type: 'string', default: '' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const scale = Number(values.scale)
if (!(scale > 0 && scale <= 10)) {
  console.error(`--scale must be a number in (0, 10], got ${values.scale}`)
  process.exit(2)
}
const skip = new Set(values.skip.split(',').filter(Boolean))
const only = values.only === undefined ? undefined : new Set(values.only.split(',').filter(Boolean))
/** Whether a workload (sync, tokens, memory, startup) runs: --only names them, --skip leaves some out. */
const runs = (workload: string) => (only ? only.has(workload) : !skip.has(workload))
const scaled = (n: number, min = 1) => Math.max(min, Math.round(n * scale))

const sizes = {
  users: scaled(10_000, 10),
  groups: 100,
  membershipsPerUser: 3,
  tokenUsers: scaled(1000, 10),
  warmRounds: 5,
  passwordUsers: scaled(300, 10),
  concurrency: 50,
  importBatch: 500,
  deltaDisabled: scaled(10),
}

/** Cached-token requests that bring the ExApp's request path to its compiled state. */
const APP_WARMUP_REQUESTS = 8000

/** The directory every workload syncs: the same seed, so the same users and groups each time. */
const benchDirectory = () =>
  aDirectory({
    users: sizes.users,
    groups: sizes.groups,
    membershipsPerUser: sizes.membershipsPerUser,
    seed: 7,
  })

interface Row {
  workload: string
  measured: string
  baseline: string
  ratio: string
  notes: string
}

const rows: Row[] = []
const figures: Measured = {}
const loadAt: Record<string, string> = {}

// The ExApp and the HTTP floor log as in production (info, secrets redacted), to /dev/null.
const log = pino(
  { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
  pino.destination('/dev/null'),
)

const lat = (r: LoadResult) =>
  `${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms${r.failed ? `, ${r.failed} failed` : ''}`

function checkLoad(name: string, r: LoadResult): void {
  if (r.failed > 0) {
    progress(`${name}: ${r.failed}/${r.requests} failed, first: ${r.firstError}`)
  }
}

async function main(): Promise<void> {
  if (only && !only.has('sync') && !only.has('tokens')) {
    return memoryAndStartupOnly()
  }
  const startedAt = new Date().toISOString()
  progress(`sizes ${JSON.stringify(sizes)}; load average ${loadAverage()}`)
  loadAt.start = loadAverage()
  const prepared = await prepareKeycloak()
  progress('starting the bench Keycloak on 28680/29680')
  const kc = await startOwnKeycloak(28680, 'bench', prepared)
  const kcPid = await javaPid(kc.supervisor.pid)
  process.env.TEST_KEYCLOAK_URL = kc.url
  process.env.TEST_KEYCLOAK_ADMIN = kc.admin
  process.env.TEST_KEYCLOAK_ADMIN_PASSWORD = kc.password
  let t: TestExApp | undefined
  const proxy = await startCountingProxy(kc.url)
  try {
    const directory = benchDirectory()
    const memberships = directory.users.reduce((n, u) => n + u.groups.length, 0)
    progress(
      `directory: ${directory.users.length} users, ${directory.groups.length} groups, ${memberships} memberships`,
    )

    // Baseline first, so the sync's realm does not sit in Keycloak's caches while it runs.
    progress('sync-cold baseline: partialImport into a fresh realm')
    const baseline = await partialImportBaseline(kc, directory, sizes.importBatch)
    progress(`sync-cold baseline: ${secs(baseline.ms)}`)
    progress("sync-cold baseline: partialImport of the sync's own representations")
    const baselineLikeApp = await partialImportBaseline(kc, directory, sizes.importBatch, 'app')
    progress(`sync-cold baseline, the sync's representations: ${secs(baselineLikeApp.ms)}`)

    t = await startTestExApp({
      directory,
      enabled: true,
      env: { KEYCLOAK_URL: proxy.url },
      log,
    })
    // The bench runs on a loaded machine: twice the tests' patience.
    await bootstrapped(t, 120_000)
    const kcRssBefore = kcPid ? await procStatusBytes(kcPid, 'VmRSS') : undefined
    const rssBefore = process.memoryUsage().rss
    const sampler = rssSampler(kcPid)
    loadAt['sync-cold'] = loadAverage()
    const beats = latencyPoller(`${t.exapp.url}/heartbeat`)
    const cold = await syncRun(t, proxy, 'sync-cold')
    const heartbeat = await beats.stop()
    const peaks = sampler.stop()
    rows.push({
      workload: `sync-cold (${directory.users.length} users, ${directory.groups.length} groups, ${memberships} memberships)`,
      measured: secs(cold.ms),
      baseline: `${secs(baseline.ms)} partialImport`,
      ratio: ratio(cold.ms, baseline.ms),
      notes: `${ratio(cold.ms, baselineLikeApp.ms)} a partialImport of the same users as the sync writes them (marker attributes, two identity links each: ${secs(baselineLikeApp.ms)}); ${cold.writes} Keycloak writes, ${cold.requests.GET ?? 0} reads; Keycloak busy ${secs(cold.keycloakBusyMs)} of it (a request in flight), the rest the app's own and the fake Nextcloud's`,
    })

    rows.push({
      workload: '/heartbeat during sync-cold (polled every 20 ms from a thread of its own)',
      measured: `p50 ${heartbeat.p50.toFixed(0)} ms, p99 ${heartbeat.p99.toFixed(0)} ms, max ${heartbeat.max.toFixed(0)} ms`,
      baseline: '100 ms',
      ratio: ratio(heartbeat.p99, 100),
      notes: `${heartbeat.polls} answers, ${heartbeat.failed} failed; AppAPI's heartbeat must not wait for a run`,
    })

    loadAt['sync-noop'] = loadAverage()
    const noop = await syncRun(t, proxy, 'sync-noop')
    rows.push({
      workload: 'sync-noop',
      measured: secs(noop.ms),
      baseline: `${secs(cold.ms)} sync-cold`,
      ratio: ratio(noop.ms, cold.ms),
      notes: `${noop.writes} writes, ${noop.logins} admin token renewals (${JSON.stringify(noop.requests)})`,
    })

    loadAt['sync-full'] = loadAverage()
    const fullRun = await syncRun(t, proxy, 'sync-full', { full: true })
    rows.push({
      workload: 'sync-full (no-op, the realm read from Keycloak)',
      measured: secs(fullRun.ms),
      baseline: `${secs(cold.ms)} sync-cold`,
      ratio: ratio(fullRun.ms, cold.ms),
      notes: `${fullRun.writes} writes (${JSON.stringify(fullRun.requests)})`,
    })

    const changed = applyDelta(t, directory, sizes.deltaDisabled)
    loadAt['sync-delta'] = loadAverage()
    const delta = await syncRun(t, proxy, 'sync-delta')
    rows.push({
      workload: `sync-delta (${changed.length} users changed, ${Math.min(sizes.deltaDisabled, changed.length)} disabled)`,
      measured: secs(delta.ms),
      baseline: `${secs(noop.ms)} sync-noop`,
      ratio: ratio(delta.ms, noop.ms),
      notes: `${delta.writes} writes ${JSON.stringify(delta.counts)}`,
    })

    rows.push({
      workload: 'memory: peak RSS during sync-cold',
      measured: `${mib(peaks.selfPeak)} bench process (ExApp + fake Nextcloud in-process)`,
      baseline: `${mib(rssBefore)} same process before`,
      ratio: ratio(peaks.selfPeak, rssBefore),
      notes: `Keycloak JVM (apart, pid ${kcPid ?? '?'}) VmRSS ${kcRssBefore ? mib(kcRssBefore) : '?'} before, peak ${mib(peaks.otherPeak)}`,
    })
    figures.sync = {
      partialImport: baseline,
      partialImportLikeApp: baselineLikeApp,
      cold,
      noop,
      full: fullRun,
      delta,
      changed: changed.length,
      heartbeatDuringCold: heartbeat,
    }
    figures.memory = {
      benchRssBefore: rssBefore,
      benchRssPeak: peaks.selfPeak,
      keycloakRssBefore: kcRssBefore,
      keycloakRssPeak: peaks.otherPeak,
      note: 'the ExApp and the fake Nextcloud run inside the bench process, sampled every 100 ms',
    }

    // The Nextcloud side of the periodic poll, at 10 000 users whatever the scale: only the fake
    // Nextcloud's traffic recorder is involved.
    loadAt['nc-poll'] = loadAverage()
    const poll = await pollCost(10_000)
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`
    rows.push({
      workload: `nc-poll (${poll.users - 1} users)`,
      measured: `${poll.idle.requests} requests, ${kib(poll.idle.bytes)} (idle poll)`,
      baseline: `full read: ${poll.fullRead.requests} requests, ${kib(poll.fullRead.bytes)}`,
      ratio: `${ratio(poll.idle.requests, poll.fullRead.requests)} requests, ${ratio(poll.idle.bytes, poll.fullRead.bytes)} bytes`,
      notes: `after 4 changes (created, disabled, deleted, moved): ${poll.changed.requests} requests, ${kib(poll.changed.bytes)}, ${poll.changed.outcome} ${JSON.stringify(poll.changed.byPath)}`,
    })
    figures.sync = { ...(figures.sync as object), poll }

    if (runs('tokens')) {
      const changedSet = new Set(changed)
      const eligible = directory.users
        .map((u) => u.id)
        .filter((id) => id !== 'admin' && !changedSet.has(id))
      const tokenUsers = eligible.slice(0, sizes.tokenUsers)
      const jwtUsers = eligible.slice(sizes.tokenUsers, sizes.tokenUsers * 2)
      const pwUsers = eligible.slice(-sizes.passwordUsers)
      const c = sizes.concurrency

      // Keycloak's grant path and the token client are compiled by their JITs over the first few
      // hundred calls: first tokens for users of neither set, both ways, so that neither the
      // ExApp nor the baseline pays for it alone. They start once Keycloak is quiet
      // (its collector done with what the syncs left), and the measured loads follow at once.
      const waited = kcPid ? await quiet(kcPid) : 0
      progress(`token loads: Keycloak quiet after ${secs(waited)}`)
      const warmup = Math.max(c, sizes.tokenUsers)
      const from = sizes.tokenUsers * 2
      const warmBare = eligible.slice(from, from + warmup)
      const warmApp = eligible.slice(from + warmup, from + 2 * warmup)
      const bareGrants = await bareJwtGrants(t, proxy.url)
      progress(
        `token warm-up: first tokens for ${warmBare.length} + ${warmApp.length} other users, then ${APP_WARMUP_REQUESTS} from the ExApp's cache`,
      )
      await bareGrants(warmBare, c)
      await tokenLoad(t, warmApp, warmApp.length, c)
      // The ExApp's own part of the path (its HTTP server, Hono, the access table, the token
      // route, the cache) takes longer. Against a token endpoint that answers at once, after
      // 2 000 first tokens through the ExApp V8 still finished 96, 28 and 6 compilations in the
      // next three rounds of 2 000, then 1 to 9 a round. A sidecar that has served ten thousand
      // requests is past that. Tokens from the cache run that code the same way and cost Keycloak
      // nothing, so the ExApp gets there without a grant the baseline would not also have had.
      await tokenLoad(t, warmApp, APP_WARMUP_REQUESTS, c)

      // Both paths keep getting cheaper all through the loads (at --scale 0.5, the rate of either
      // rose by a fifth from its first quarter to its last, and whichever load ran first paid up
      // to 1.3 ms more of Keycloak's CPU per grant). So each load is cut in quarters that run
      // A B B A B A A B: each path's positions sum to 18 and their squares to 102, so a drift
      // that is linear or quadratic in time favours neither. Each quarter's rate and CPU per
      // request are shown. The bare grant goes the way the ExApp reaches Keycloak (through the
      // counting proxy), so the ratio is what the ExApp adds, not the proxy.
      loadAt['token-cold'] = loadAverage()
      const order = ['cold', 'bare', 'bare', 'cold', 'bare', 'cold', 'cold', 'bare'] as const
      progress(
        `token-cold and bare JWT grant: ${tokenUsers.length} users each, ${c} concurrent, in quarters A B B A B A A B`,
      )
      const quartersOf = { cold: quarters(tokenUsers), bare: quarters(jwtUsers) }
      // CPU per request, of this process (the ExApp, the fake Nextcloud, the proxy, the load's
      // thread) and of Keycloak, summed over each path's quarters
      const cpu = { cold: { node: 0, kc: 0 }, bare: { node: 0, kc: 0 } }
      const slices: string[] = []
      const counted = async (path: 'cold' | 'bare', run: () => Promise<LoadResult>) => {
        const node = process.cpuUsage()
        const kcBefore = kcPid ? await cpuMs(kcPid) : undefined
        const result = await run()
        const used = process.cpuUsage(node)
        const nodeMs = (used.user + used.system) / 1000
        cpu[path].node += nodeMs
        const kcAfter = kcPid ? await cpuMs(kcPid) : undefined
        const kc = kcAfter !== undefined && kcBefore !== undefined ? kcAfter - kcBefore : 0
        cpu[path].kc += kc
        slices.push(
          `${path === 'cold' ? 'A' : 'B'} ${result.rps.toFixed(0)} req/s (bench process ${(nodeMs / result.requests).toFixed(2)} ms + Keycloak ${(kc / result.requests).toFixed(2)} ms)`,
        )
        return result
      }
      const exapp = t
      const results = { cold: [] as LoadResult[], bare: [] as LoadResult[] }
      for (const path of order) {
        const users = quartersOf[path].shift() ?? []
        if (path === 'bare') {
          loadAt['bare-jwt'] ??= loadAverage()
        }
        results[path].push(
          await counted(path, () =>
            path === 'cold' ? tokenLoad(exapp, users, users.length, c) : bareGrants(users, c),
          ),
        )
      }
      const tokenCold = combined(results.cold)
      const bareJwt = combined(results.bare)
      checkLoad('token-cold', tokenCold)
      checkLoad('bare JWT grant', bareJwt)
      const perRequest = (path: 'cold' | 'bare', n: number) =>
        `bench process ${(cpu[path].node / n).toFixed(2)} ms + Keycloak ${(cpu[path].kc / n).toFixed(2)} ms`
      const cpuNote = `CPU per request: first token ${perRequest('cold', tokenCold.requests)}, bare grant ${perRequest('bare', bareJwt.requests)}; quarters ${slices.join(', ')}`
      progress(`token-cold: ${cpuNote}`)

      const warmCount = tokenUsers.length * sizes.warmRounds
      const floor = await startHttpFloor(t, await aTokenBody(t, tokenUsers[0] as string), log)
      let httpFloor: LoadResult
      let tokenWarm: LoadResult
      try {
        // Warmed up alike: a first round of each before the measured ones.
        await tokenLoad(t, tokenUsers, tokenUsers.length, c, floor.url)
        await tokenLoad(t, tokenUsers, tokenUsers.length, c)
        loadAt['http-floor'] = loadAverage()
        progress(`http-floor: ${warmCount} requests, ${c} concurrent`)
        httpFloor = await tokenLoad(t, tokenUsers, warmCount, c, floor.url)
        checkLoad('http-floor', httpFloor)
        loadAt['token-warm'] = loadAverage()
        progress(`token-warm: ${warmCount} requests over ${tokenUsers.length} tokened users`)
        tokenWarm = await tokenLoad(t, tokenUsers, warmCount, c)
        checkLoad('token-warm', tokenWarm)
      } finally {
        await floor.close()
      }
      progress(`token baseline: bare password grant, ${pwUsers.length} users`)
      const barePw = await barePasswordLoad(t.admin, kc.url, t.realm, pwUsers, c)
      checkLoad('bare password grant', barePw)
      rows.push({
        workload: `http-floor (${httpFloor.requests} requests, ${c} concurrent)`,
        measured: lat(httpFloor),
        baseline: '—',
        ratio: '—',
        notes:
          'the same HTTP stack (access log, access table with the consumer-secret check, token metrics) answering a fixed token body',
      })
      rows.push({
        workload: `token-warm (${tokenWarm.requests} requests, ${tokenUsers.length} users, ${c} concurrent)`,
        measured: lat(tokenWarm),
        baseline: `http-floor: ${lat(httpFloor)}`,
        ratio: `${ratio(tokenWarm.rps, httpFloor.rps)} req/s, ${ratio(tokenWarm.p99, httpFloor.p99)} p99`,
        notes: 'served from the token cache; goal ≥ 0.25× req/s, p99 ≤ 20 ms',
      })
      rows.push({
        workload: `token-cold (${tokenCold.requests} first tokens, ${c} concurrent)`,
        measured: lat(tokenCold),
        baseline: `bare JWT grant (${bareJwt.requests} other users): ${lat(bareJwt)}`,
        ratio: `${ratio(tokenCold.rps, bareJwt.rps)} req/s, ${ratio(tokenCold.p50, bareJwt.p50)} p50`,
        notes: `goal ≥ 0.9× req/s; both through the bench's counting proxy, after Keycloak was quiet for a second (${secs(waited)}) and a warm-up; ${cpuNote}; bare password grant (${barePw.requests}): ${lat(barePw)}`,
      })
      figures.tokens = { tokenCold, tokenWarm, bareJwt, httpFloor, barePassword: barePw }
    }

    if (runs('memory')) {
      await memoryWorkload(kc, directory)
    }
  } finally {
    await t?.close().catch(() => undefined)
    await proxy.close()
    progress('stopping the bench Keycloak')
    await kc.stop()
  }

  if (runs('startup')) {
    await startupRow(prepared)
  }
  await report(startedAt)
}

/** The sidecar as its own process: a cold sync and a token load, its RSS sampled. */
async function memoryWorkload(
  kc: { url: string; admin: string; password: string },
  directory: Directory,
): Promise<void> {
  loadAt.memory = loadAverage()
  const tokenUsers = directory.users.map((u) => u.id).filter((id) => id !== 'admin')
  const sidecar = await sidecarMemory({
    keycloak: { url: kc.url, admin: kc.admin, password: kc.password },
    directory,
    tokenUsers: tokenUsers.slice(0, sizes.tokenUsers),
    tokenCount: sizes.tokenUsers * (sizes.warmRounds + 1),
    concurrency: sizes.concurrency,
  })
  loadAt['memory-end'] = loadAverage()
  const b = sidecar.breakdown
  rows.push({
    workload: `memory: sidecar as its own process (${sidecar.command}, embedded store)`,
    measured: `${mib(sidecar.sidecarPeakRss)} peak RSS (cold sync ${mib(sidecar.syncPeakRss)}, tokens ${mib(sidecar.tokensPeakRss)})`,
    baseline: '150 MiB goal',
    ratio: ratio(sidecar.sidecarPeakRss, 150 * 1024 * 1024),
    notes: `idle ${mib(sidecar.idleRss)}; a scheduled run over the unchanged directory afterwards: ${mib(sidecar.scheduledPeakRss)} peak, ${secs(sidecar.scheduledMs)}; lifetime VmHWM ${mib(sidecar.lifetimeHwm)} (first start's database setup included); cold sync ${secs(sidecar.syncMs)}; tokens ${lat(sidecar.tokens)}; at the peak: ${Object.entries(
      b,
    )
      .map(([k, v]) => `${k} ${mib(v)}`)
      .join(', ')}`,
  })
  figures.memory = {
    ...(figures.memory as object),
    sidecarPeakRss: sidecar.sidecarPeakRss,
    sidecar,
  }
}

/** Startup to first token, the ExApp against a bare Keycloak in the same run. */
async function startupRow(prepared: { home: string; javaHome: string }): Promise<void> {
  loadAt.startup = loadAverage()
  const startup: StartupResult = await startupWorkload(prepared)
  rows.push({
    workload: 'startup (warm): process start → heartbeat ready → first token',
    measured: `${secs(startup.exappReadyMs)} ready, ${secs(startup.exappTokenMs)} first token`,
    baseline: `${secs(startup.bareMs)} bare kc.sh start --optimized`,
    ratio: ratio(startup.exappTokenMs, startup.bareMs),
    notes: `sidecar child peak RSS ${startup.exappPeakRss ? mib(startup.exappPeakRss) : '?'} (Keycloak not included)${startup.timeline ? `; timeline ${startup.timeline}` : ''}`,
  })
  figures.startup = startup
}

/** The markdown table on stdout, and the figures with --json. */
async function report(startedAt: string): Promise<void> {
  loadAt.end = loadAverage()
  const table = [
    `Bench ${startedAt}, scale ${scale}, Node ${process.version}; load average (1/5/15 min) at start ${loadAt.start}, at end ${loadAt.end}; the ExApp logs at info to /dev/null`,
    '',
    '| Workload | Measured | Baseline (same run) | Ratio | Notes |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) => `| ${r.workload} | ${r.measured} | ${r.baseline} | ${r.ratio} | ${r.notes} |`,
    ),
  ].join('\n')
  console.log(table)
  if (values.json) {
    await writeFile(
      values.json,
      `${JSON.stringify(benchJson({ startedAt, scale, sizes, loadAverage: loadAt, rows, measured: figures }), null, 2)}\n`,
    )
    progress(`figures written to ${values.json}`)
  }
}

/** --only memory and/or startup: the bench Keycloak and the directory, no sync run before. */
async function memoryAndStartupOnly(): Promise<void> {
  const startedAt = new Date().toISOString()
  progress(`sizes ${JSON.stringify(sizes)}; load average ${loadAverage()}`)
  loadAt.start = loadAverage()
  const prepared = await prepareKeycloak()
  if (runs('memory')) {
    progress('starting the bench Keycloak on 28680/29680')
    const kc = await startOwnKeycloak(28680, 'bench', prepared)
    try {
      const directory = benchDirectory()
      await memoryWorkload(kc, directory)
    } finally {
      progress('stopping the bench Keycloak')
      await kc.stop()
    }
  }
  if (runs('startup')) {
    await startupRow(prepared)
  }
  await report(startedAt)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)

/** `items` in four consecutive parts, as equal as can be. */
function quarters<T>(items: readonly T[]): T[][] {
  const size = Math.ceil(items.length / 4)
  return [0, 1, 2, 3].map((i) => items.slice(i * size, (i + 1) * size))
}
