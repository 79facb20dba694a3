import { randomUUID } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../log.js'
import type { AppEnv } from './types.js'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Gives every request an id (Nextcloud's `AA-REQUEST-ID` or `X-Request-Id` when well-formed) and
 * writes one access line when it ends: 4xx at info, 5xx at error.
 */
export function accessLog(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header('x-request-id') ?? c.req.header('aa-request-id')
    const requestId =
      incoming && incoming !== 'CLI' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    const child = log.child({ requestId })
    c.set('requestId', requestId)
    c.set('log', child)
    const started = performance.now()
    await next()
    c.header('X-Request-Id', requestId)
    const status = c.res.status
    const line = {
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      errorCode: c.get('errorCode'),
    }
    if (status >= 500) {
      child.error(line, 'http.access')
    } else if (c.req.path === '/heartbeat' || c.req.path === '/healthz') {
      child.debug(line, 'http.access')
    } else {
      child.info(line, 'http.access')
    }
  }
}
