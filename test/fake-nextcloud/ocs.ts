import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { ExAppRecord } from './exapps.js'

export type OcsVersion = 1 | 2

/** What the fake's handlers share through Hono's context. */
export type FakeEnv = {
  Variables: {
    /** set by a `truncateNext` fault: the list page keeps `keep` entries, else half */
    truncate: { keep?: number } | undefined
    /** the impersonated uid, '' for the system context */
    user: string
    app: ExAppRecord
  }
}

/** Nextcloud's JSON responses carry this exact content type. */
export function sendJson(c: Context, status: number, body: unknown): Response {
  return c.body(JSON.stringify(body), status as ContentfulStatusCode, {
    'Content-Type': 'application/json; charset=utf-8',
  })
}

export function ocsOk(c: Context, v: OcsVersion, data: unknown): Response {
  return ocs(c, v, 'ok', v === 1 ? 100 : 200, 'OK', data)
}

export function ocsFail(c: Context, v: OcsVersion, statuscode: number, message: string): Response {
  return ocs(c, v, 'failure', statuscode, message, [])
}

/** The fixtures' "Current user is not logged in" (OCS 997). */
export function notLoggedIn(c: Context, v: OcsVersion): Response {
  return ocsFail(c, v, 997, 'Current user is not logged in')
}

function ocs(
  c: Context,
  v: OcsVersion,
  status: 'ok' | 'failure',
  statuscode: number,
  message: string,
  data: unknown,
): Response {
  // v1 always carries empty paging fields; v2 only when set (never, here).
  const meta =
    v === 1
      ? { status, statuscode, message, totalitems: '', itemsperpage: '' }
      : { status, statuscode, message }
  return sendJson(c, httpStatusOf(v, statuscode), { ocs: { meta, data } })
}

/** V1Response/V2Response::getStatus of nextcloud/server. */
export function httpStatusOf(v: OcsVersion, statuscode: number): number {
  if (statuscode === 997) {
    return 401
  }
  if (v === 1 || statuscode === 100 || statuscode === 200) {
    return 200
  }
  if (statuscode === 998) {
    return 404
  }
  if (statuscode === 996 || statuscode === 999) {
    return 500
  }
  return statuscode < 200 || statuscode > 600 ? 400 : statuscode
}

/** PHP's json_encode of an associative array: a list when the keys are 0..n-1 (or none). */
export function phpAssoc(entries: [string, unknown][]): unknown {
  if (entries.every(([key], i) => key === String(i))) {
    return entries.map(([, value]) => value)
  }
  return Object.fromEntries(entries)
}

/** Applies a `truncateNext` fault to a list page. */
export function truncated<T>(c: Context<FakeEnv>, list: T[]): T[] {
  const fault = c.get('truncate')
  if (!fault) {
    return list
  }
  return list.slice(0, fault.keep ?? Math.floor(list.length / 2))
}

/** Request parameters the way Nextcloud merges them: query, then a JSON or form body. */
export async function paramsOf(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? ''
  let body: Record<string, unknown> = {}
  if (type.includes('application/json')) {
    body = await c.req.json<Record<string, unknown>>().catch(() => ({}))
  } else if (type.includes('application/x-www-form-urlencoded')) {
    body = await c.req.parseBody()
  }
  return { ...c.req.query(), ...body }
}
