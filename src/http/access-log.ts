import { randomUUID } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from '../log.js'
import type { AppEnv } from './types.js'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Adds `X-Request-Id` to the response the route made. Its own headers take it where they can:
 * `c.header()` on a finished response copies it into a new one, and @hono/node-server then reads
 * the copy's body back from a web stream instead of writing the string it had: in a profile of
 * the token API that copy and its stream were the largest cost after the socket writes. A
 * response whose headers are immutable (one `fetch` returned) is copied as before.
 */
function tagResponse(c: Context<AppEnv>, requestId: string): void {
  try {
    c.res.headers.set('X-Request-Id', requestId)
  } catch {
    c.header('X-Request-Id', requestId)
  }
}

/**
 * A token answered is at debug, as the token service's own `token.issued` is: a consumer may ask
 * for tokens hundreds of times a second, each answer is already kept in the issuance log (who, for
 * whom, which client, when), so a line per answer at info would mostly be volume: the same facts
 * again, hundreds of lines a second, burying what an operator looks for. A token refused stays at
 * info, a failure at error.
 */
const TOKEN_PATH = '/api/token'

/**
 * Gives every request an id (Nextcloud's `AA-REQUEST-ID` or `X-Request-Id` when well-formed) and
 * writes one access line when it ends: at info, 5xx at error, health checks and answered token
 * requests at debug.
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
    tagResponse(c, requestId)
    const status = c.res.status
    const path = c.req.path
    const level =
      status >= 500
        ? 'error'
        : path === '/heartbeat' || path === '/healthz' || (status < 400 && path === TOKEN_PATH)
          ? 'debug'
          : 'info'
    // A line below the logger's level (a token answered, at info) is not even put together.
    if (child.isLevelEnabled(level)) {
      child[level](
        {
          method: c.req.method,
          route: c.req.routePath,
          path,
          status,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
          errorCode: c.get('errorCode'),
        },
        'http.access',
      )
    }
  }
}
