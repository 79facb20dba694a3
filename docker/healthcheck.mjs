// Docker HEALTHCHECK: `node docker/healthcheck.mjs http://127.0.0.1:$APP_PORT/healthz`.
// Exit 0 = healthy, 1 = unhealthy; the one printed line ends up in `docker inspect`.
//
// - Without HaRP the app listens on TCP. Healthy when /healthz answers 200 (Keycloak ready and
//   every other part it reports, database and stored secrets, "ok"), or 503 with keycloak
//   "stopped" and every other part "ok": Nextcloud disabled the app, and enabling it again first
//   waits for a healthy container, so "stopped on purpose" must not count as unhealthy.
// - Under HaRP (HP_SHARED_KEY set) the app listens on /tmp/exapp.sock behind frpc. Healthy when an
//   frpc process is alive and the app answers /heartbeat on the socket. HaRP waits only 90 s for
//   "healthy", less than a first Keycloak start may take; Keycloak's readiness is what /init
//   waits for and reports.

import { readdir, readFile } from 'node:fs/promises'
import { request } from 'node:http'

const SOCKET = '/tmp/exapp.sock'
const TIMEOUT_MS = 4000

// biome-ignore lint/style/noProcessEnv: a container health probe; the environment is its input
const env = process.env

function get(target) {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method: 'GET', timeout: TIMEOUT_MS }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** True when a process named frpc runs (zombies do not count). */
async function frpcAlive() {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name))
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    // "<pid> (<comm>) <state> …"; comm may contain spaces and parentheses, so cut at the last ')'.
    const open = stat.indexOf('(')
    const close = stat.lastIndexOf(')')
    if (open < 0 || close < open) {
      continue
    }
    const comm = stat.slice(open + 1, close)
    const state = stat.slice(close + 2, close + 3)
    if (comm === 'frpc' && state !== 'Z' && state !== 'X') {
      return true
    }
  }
  return false
}

async function check() {
  if (env.HP_SHARED_KEY) {
    if (!(await frpcAlive())) {
      return 'frpc is not running'
    }
    const res = await get({ socketPath: SOCKET, path: '/heartbeat' })
    return res.status === 200 ? undefined : `/heartbeat on ${SOCKET} answered ${res.status}`
  }
  const url = new URL(process.argv[2] ?? `http://127.0.0.1:${env.APP_PORT ?? '23000'}/healthz`)
  const res = await get({ hostname: url.hostname, port: url.port, path: url.pathname })
  if (res.status === 200) {
    return undefined
  }
  let body = {}
  try {
    body = JSON.parse(res.body) ?? {}
  } catch {
    body = {}
  }
  const keycloak = body.keycloak
  // the other parts /healthz reports (database, secrets) that are not "ok"
  const broken = Object.entries(body).filter(
    ([name, value]) => name !== 'status' && name !== 'keycloak' && value !== 'ok',
  )
  if (res.status === 503 && keycloak === 'stopped' && broken.length === 0) {
    return undefined
  }
  const parts = broken.map(([name, value]) => `, ${name}: ${value}`).join('')
  return `${url.pathname} answered ${res.status} (keycloak: ${keycloak ?? 'unknown'}${parts})`
}

check().then(
  (problem) => {
    process.stdout.write(`${problem ?? 'healthy'}\n`)
    process.exit(problem === undefined ? 0 : 1)
  },
  (err) => {
    process.stdout.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
