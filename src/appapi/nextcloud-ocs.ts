import { z } from 'zod'
import { AppError, type ErrorCode, errorMessage } from '../errors.js'
import { keptAliveSender } from '../http-request.js'
import type { Logger } from '../log.js'

export interface OcsRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** from the Nextcloud root, e.g. `/ocs/v2.php/cloud/users/details` */
  path: string
  /** uid to act as; `''` is the ExApp's system context */
  asUser: string
  query?: Record<string, string | number | undefined>
  body?: Record<string, unknown>
  timeoutMs?: number
}

export interface OcsCallOptions {
  /** Nextcloud root, without `/index.php` or a trailing slash */
  baseUrl: string
  appId: string
  appSecret: string
  appVersion: string
  aaVersion?: string
  /** sends the calls instead of node:http (tests); default: node:http(s) over kept-alive connections */
  fetch?: typeof fetch
  log: Logger
  timeoutMs: number
}

/** Sends one OCS call with AppAPI credentials and returns `ocs.data`, or throws an AppError. */
export type OcsCall = (req: OcsRequest) => Promise<unknown>

const envelope = z.object({
  ocs: z.object({
    meta: z.object({
      status: z.string(),
      statuscode: z.coerce.number(),
      message: z.string().nullish(),
    }),
    data: z.unknown(),
  }),
})

/**
 * Builds the OCS caller behind the Nextcloud client (AppAPI auth as this ExApp). Every failure becomes
 * an AppError whose message tells an admin what to check. Nothing is retried: a 401 counts
 * towards Nextcloud's brute-force throttling, and retrying anything else is the caller's policy.
 * Redirects are not followed, so credentials never travel to another host.
 */
export function createOcsCall(opts: OcsCallOptions): OcsCall {
  const shownBase = withoutCredentials(opts.baseUrl)
  const headers = (req: OcsRequest): Record<string, string> => ({
    'EX-APP-ID': opts.appId,
    'EX-APP-VERSION': opts.appVersion,
    'AUTHORIZATION-APP-API': Buffer.from(`${req.asUser}:${opts.appSecret}`).toString('base64'),
    'OCS-APIRequest': 'true',
    Accept: 'application/json',
    ...(opts.aaVersion ? { 'AA-VERSION': opts.aaVersion } : {}),
    ...(req.body ? { 'Content-Type': 'application/json' } : {}),
  })

  const viaFetch = opts.fetch
  const transport = viaFetch ? undefined : keptAliveSender()
  const send = async (req: OcsRequest): Promise<OcsReply> => {
    const timeoutMs = req.timeoutMs ?? opts.timeoutMs
    const url = urlFor(opts.baseUrl, req)
    const body = req.body ? JSON.stringify(req.body) : undefined
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      if (transport) {
        const answer = await transport(url, {
          method: req.method,
          headers: headers(req),
          ...(body === undefined ? {} : { body }),
          signal,
        })
        const location = answer.headers.location
        return {
          status: answer.status,
          location: location === undefined ? null : location,
          text: answer.body.toString('utf8'),
        }
      }
      const res = await (viaFetch as typeof fetch)(url, {
        method: req.method,
        headers: headers(req),
        body,
        redirect: 'manual',
        signal,
      })
      return { status: res.status, location: res.headers.get('location'), text: await res.text() }
    } catch (cause) {
      throw unreachable(cause, `${req.method} ${req.path}`, shownBase, timeoutMs)
    }
  }

  return async (req) => {
    const started = Date.now()
    const fields = { method: req.method, path: req.path, asUser: req.asUser }
    let status: number | undefined
    try {
      const reply = await send(req)
      status = reply.status
      const data = interpret(req, reply)
      opts.log.debug({ ...fields, status, durationMs: Date.now() - started }, 'nextcloud.call')
      return data
    } catch (err) {
      const errorCode = err instanceof AppError ? err.code : 'INTERNAL'
      const level = errorCode === 'NOT_FOUND' ? 'debug' : 'warn'
      const durationMs = Date.now() - started
      opts.log[level]({ ...fields, status, errorCode, durationMs }, 'nextcloud.failed')
      throw err
    }
  }
}

export interface OcsReply {
  status: number
  location: string | null
  text: string
}

/** Reads one reply: `ocs.data` on success (null for 204), else throws the AppError explaining it. */
export function interpret(req: Pick<OcsRequest, 'method' | 'path' | 'asUser'>, reply: OcsReply) {
  const where = `${req.method} ${req.path}`
  const ok = reply.status >= 200 && reply.status < 300
  if (reply.status === 204) {
    return null
  }
  if (reply.status >= 300 && reply.status < 400) {
    throw new AppError(
      'NEXTCLOUD_UNAVAILABLE',
      `Nextcloud redirected ${where} to ${reply.location ?? 'another address'} (HTTP ${reply.status}); set NEXTCLOUD_URL to the address Nextcloud answers on directly`,
    )
  }
  const json = parseJson(reply.text)
  const ocs = envelope.safeParse(json)
  if (!ocs.success) {
    if (ok) {
      throw new AppError(
        'NEXTCLOUD_UNAVAILABLE',
        `Nextcloud answered ${where} with HTTP ${reply.status} but no OCS JSON (${snippet(reply.text)}); check that NEXTCLOUD_URL points at Nextcloud itself`,
      )
    }
    throw refusal(req, reply.status, undefined, plainMessage(json) ?? snippet(reply.text))
  }
  const { meta, data } = ocs.data.ocs
  if (ok && meta.status === 'ok') {
    return data
  }
  throw refusal(req, reply.status, meta.statuscode, meta.message ?? '')
}

/** The AppError for a refused call; OCS v1 keeps HTTP 200 and puts the real code in `statuscode`. */
export function refusal(
  req: Pick<OcsRequest, 'method' | 'path' | 'asUser'>,
  httpStatus: number,
  ocsCode: number | undefined,
  said: string,
): AppError {
  const where = `${req.method} ${req.path}`
  const who = req.asUser === '' ? 'the ExApp (no user)' : `user "${req.asUser}"`
  const status =
    ocsCode === undefined || ocsCode === httpStatus
      ? `HTTP ${httpStatus}`
      : `HTTP ${httpStatus}, OCS ${ocsCode}`
  const detail = said ? `${status}: ${said}` : status
  const raise = (code: ErrorCode, message: string) => new AppError(code, message)
  switch (effectiveStatus(httpStatus, ocsCode)) {
    case 401:
      return raise(
        'UNAUTHORIZED',
        `Nextcloud refused ${where} as ${who} (${detail}). ${
          req.asUser === ''
            ? 'The endpoint may need a Nextcloud user, or'
            : 'The user may not exist, or'
        } the AppAPI credentials are wrong: check that APP_ID, APP_SECRET and APP_VERSION match the registration (occ app_api:app:list). Not retried: every wrong secret counts towards Nextcloud's brute-force protection`,
      )
    case 403:
      return raise(
        'FORBIDDEN',
        `Nextcloud does not let ${who} call ${where} (${detail}); act as a Nextcloud admin (NEXTCLOUD_ADMIN_USER)`,
      )
    case 404:
      return raise('NOT_FOUND', `Nextcloud found nothing for ${where} (${detail})`)
    case 429:
      return raise(
        'NEXTCLOUD_UNAVAILABLE',
        `Nextcloud is throttling this ExApp's address (${detail}), usually after wrong APP_SECRET attempts; fix the secret, then run occ security:bruteforce:reset <ip>`,
      )
    default:
      if (effectiveStatus(httpStatus, ocsCode) >= 500) {
        return raise(
          'NEXTCLOUD_UNAVAILABLE',
          `Nextcloud failed on ${where} (${detail}); check that it is up and not in maintenance mode, and read its log`,
        )
      }
      return raise('INTERNAL', `Nextcloud rejected ${where} as ${who} (${detail})`)
  }
}

// OCS codes 997/998/996/999 stand for 401/404/500; v1 answers most failures with HTTP 200.
function effectiveStatus(httpStatus: number, ocsCode: number | undefined): number {
  const code = httpStatus !== 200 || ocsCode === undefined ? httpStatus : ocsCode
  const aliases: Record<number, number> = { 997: 401, 998: 404, 996: 500, 999: 500 }
  return aliases[code] ?? code
}

function unreachable(cause: unknown, where: string, base: string, timeoutMs: number): AppError {
  const name = cause instanceof Error ? cause.name : ''
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new AppError(
      'NEXTCLOUD_UNAVAILABLE',
      `Nextcloud at ${base} did not answer ${where} within ${timeoutMs / 1000} s; check that it is up and not overloaded`,
      { cause },
    )
  }
  return new AppError(
    'NEXTCLOUD_UNAVAILABLE',
    `Cannot reach Nextcloud at ${base} for ${where} (${reasonOf(cause)}); check NEXTCLOUD_URL and that this container can reach Nextcloud`,
    { cause },
  )
}

function reasonOf(err: unknown): string {
  const inner = err instanceof Error && err.cause instanceof Error ? err.cause : err
  const code = (inner as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    return code
  }
  return errorMessage(inner)
}

function urlFor(base: string, req: OcsRequest): string {
  const query = new URLSearchParams({ format: 'json' })
  for (const [key, value] of Object.entries(req.query ?? {})) {
    if (value !== undefined) {
      query.set(key, String(value))
    }
  }
  return `${base}${req.path}?${query}`
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

// Core security middleware and AppAPI's auth middleware answer `{"message": "..."}`.
function plainMessage(json: unknown): string | undefined {
  const parsed = z.object({ message: z.string() }).safeParse(json)
  return parsed.success ? parsed.data.message : undefined
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  if (flat === '') {
    return 'empty body'
  }
  return `body starts with "${flat.slice(0, 60)}${flat.length > 60 ? '…' : ''}"`
}

function withoutCredentials(base: string): string {
  try {
    const url = new URL(base)
    url.username = ''
    url.password = ''
    return url.toString().replace(/\/$/, '')
  } catch {
    return base
  }
}
