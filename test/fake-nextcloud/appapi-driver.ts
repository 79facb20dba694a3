import { request } from 'node:http'
import { errorMessage } from '../../src/errors.js'
import { encodeAuth } from './auth.js'
import type { ExAppRecord, ExAppRegistry } from './exapps.js'

export interface DriverOptions {
  aaVersion: string
  /** pause between heartbeat attempts; AppAPI sleeps 1 s, tests need less */
  heartbeatIntervalMs: number
  /** heartbeat attempts of the enable sequence; AppAPI makes up to 600 */
  enableHeartbeatAttempts: number
  /** AppAPI 5 gives `PUT /enabled` 60 s */
  enabledTimeoutMs: number
}

export interface InstallResult {
  init: number
  error: string
  enabled: boolean
  /** the deadline passed first (e.g. the ExApp never reported progress) */
  timedOut: boolean
}

/** A request the fake sent to an ExApp. */
export interface ExAppCall {
  appId: string
  method: string
  path: string
  status?: number
  error?: string
}

export interface AppApiDriver {
  /** `occ app_api:app:register … --wait-finish` for an ExApp already registered with the fake */
  install(appId: string, opts?: { timeoutMs?: number }): Promise<InstallResult>
  /** `occ app_api:app:enable`: heartbeat, then `PUT /enabled?enabled=1` */
  enable(appId: string): Promise<{ error: string }>
  /** `occ app_api:app:disable`: `PUT /enabled?enabled=0`, then disabled whatever the reply */
  disable(appId: string): Promise<{ error: string }>
  /** the headers AppAPI puts on requests to the ExApp, with `user` ('' = system) */
  appApiHeaders(appId: string, user?: string, opts?: { requestId?: string }): Record<string, string>
  /** AppAPIService::setAppInitProgress, used by the `ex-app/status` endpoint */
  setInitProgress(app: ExAppRecord, progress: number, error: string): Promise<void>
  calls: ExAppCall[]
}

const USER_AGENT = 'Nextcloud Server Crawler'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** AppAPI's side of the lifecycle, as AppAPI 5.0.2's AppAPIService (Nextcloud 31) runs it. */
export function createAppApiDriver(registry: ExAppRegistry, opts: DriverOptions): AppApiDriver {
  const calls: ExAppCall[] = []

  const appApiHeaders = (appId: string, user = '', { requestId = 'CLI' } = {}) => {
    const app = registry.require(appId)
    return {
      'AA-VERSION': opts.aaVersion,
      'EX-APP-ID': app.appId,
      'EX-APP-VERSION': app.version,
      'AUTHORIZATION-APP-API': encodeAuth(user, app.secret),
      'AA-REQUEST-ID': requestId,
    }
  }

  async function send(
    app: ExAppRecord,
    method: string,
    path: string,
    init: { headers: Record<string, string>; timeoutMs: number },
  ): Promise<{ status: number; text: string } | { error: string }> {
    const call: ExAppCall = { appId: app.appId, method, path }
    calls.push(call)
    try {
      const headers: Record<string, string> = { ...init.headers, 'User-Agent': USER_AGENT }
      if (method !== 'GET') {
        headers['Content-Length'] = '0'
      }
      const res = await plainRequest(`${app.url}${path}`, method, headers, init.timeoutMs)
      call.status = res.status
      return res
    } catch (err) {
      call.error = errorMessage(err)
      return { error: `${method} ${app.url}${path} failed: ${call.error}` }
    }
  }

  async function heartbeat(app: ExAppRecord, until: () => boolean): Promise<boolean> {
    const headers = { Accept: 'application/json', 'Content-Type': 'application/json' }
    for (;;) {
      const reply = await send(app, 'GET', '/heartbeat', { headers, timeoutMs: 5_000 })
      if ('status' in reply && reply.status === 200 && parse(reply.text)?.status === 'ok') {
        return true
      }
      if (!until()) {
        return false
      }
      await sleep(opts.heartbeatIntervalMs)
    }
  }

  // `/enabled` replies are judged by their `error` field only; non-JSON counts as success.
  async function putEnabled(app: ExAppRecord, enabled: 0 | 1): Promise<string> {
    const reply = await send(app, 'PUT', `/enabled?enabled=${enabled}`, {
      headers: { ...appApiHeaders(app.appId), 'Accept-Language': 'en' },
      timeoutMs: opts.enabledTimeoutMs,
    })
    const error = 'error' in reply ? reply.error : String(parse(reply.text)?.error ?? '')
    app.lastEnabledError = error
    return error
  }

  async function enableExApp(app: ExAppRecord): Promise<string> {
    app.enabling = true
    app.enabled = true
    try {
      let attempts = 0
      if (!(await heartbeat(app, () => ++attempts < opts.enableHeartbeatAttempts))) {
        app.enabled = false
        return `ExApp ${app.appId} heartbeat failed`
      }
      const error = await putEnabled(app, 1)
      if (error !== '') {
        app.enabled = false
      }
      return error
    } finally {
      app.enabling = false
    }
  }

  async function setInitProgress(app: ExAppRecord, progress: number, error: string) {
    const status = app.status
    if (progress !== 0 && status.init === 100) {
      return
    }
    if (error !== '') {
      status.error = error
    } else {
      if (progress === 0) {
        status.action = 'init'
        status.error = ''
      }
      status.init = progress
    }
    if (progress === 100) {
      status.action = ''
      status.type = ''
      await enableExApp(app)
    }
  }

  async function install(appId: string, { timeoutMs = 10_000 } = {}): Promise<InstallResult> {
    const app = registry.require(appId)
    const deadline = Date.now() + timeoutMs
    const result = (timedOut: boolean) => ({
      init: app.status.init,
      error: app.status.error,
      enabled: app.enabled,
      timedOut,
    })
    app.enabled = false
    app.status = { deploy: 100, init: 0, action: '', type: 'install', error: '' }
    if (!(await heartbeat(app, () => Date.now() < deadline))) {
      app.status.error = 'Heartbeat check failed'
      return result(false)
    }
    // dispatchExAppInitInternal: init 0, enabled in the DB, then POST /init.
    await setInitProgress(app, 0, '')
    app.enabled = true
    const reply = await send(app, 'POST', '/init', {
      headers: appApiHeaders(appId),
      timeoutMs: Math.max(1, deadline - Date.now()),
    })
    if ('error' in reply) {
      await setInitProgress(app, 0, reply.error)
    } else if (reply.status === 404 || reply.status === 501) {
      await setInitProgress(app, 100, '')
    } else if (reply.status >= 400) {
      await setInitProgress(app, 0, `POST ${app.url}/init resulted in a ${reply.status} response`)
    }
    // --wait-finish polls every 0.1 s for init 100 (enable done) or an error.
    while (Date.now() < deadline) {
      if (app.status.error !== '' || (app.status.init === 100 && !app.enabling)) {
        return result(false)
      }
      await sleep(10)
    }
    return result(true)
  }

  return {
    install,
    async enable(appId) {
      return { error: await enableExApp(registry.require(appId)) }
    },
    async disable(appId) {
      const app = registry.require(appId)
      const error = await putEnabled(app, 0)
      app.enabled = false
      return { error }
    },
    appApiHeaders,
    setInitProgress,
    calls,
  }
}

// node:http rather than fetch, which would add headers AppAPI's Guzzle does not send.
function plainRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
