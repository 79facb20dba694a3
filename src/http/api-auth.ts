import { createHash } from 'node:crypto'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, MiddlewareHandler } from 'hono'
import type { Consumer } from '../config/config.js'
import { type AppApiVerdict, secretsEqual, verifyAppApi } from './appapi-auth.js'
import { errorBody } from './errors.js'
import type { FailureLimiter } from './failure-limiter.js'
import type { AppEnv, Caller } from './types.js'

export interface ApiAuthOptions {
  appId: string
  appSecret: string
  consumers: Consumer[]
  limiter: FailureLimiter
  /** whether a Nextcloud uid is an admin (asked of Nextcloud, cached by the caller) */
  isAdmin(uid: string): Promise<boolean>
}

/** Where a request comes from, for the log (never for limiting: behind a proxy all share one). */
export function sourceOf(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** The consumer whose secret matches, comparing every one in constant time. */
export function consumerFor(secret: string, consumers: Consumer[]): Consumer | undefined {
  let match: Consumer | undefined
  for (const consumer of consumers) {
    if (secretsEqual(secret, consumer.secret)) {
      match = consumer
    }
  }
  return match
}

type Verdict = { ok: true; caller: Caller } | { ok: false; status: 401 | 403; message: string }

async function decide(
  c: Context<AppEnv>,
  opts: ApiAuthOptions,
  adminOnly: boolean,
): Promise<Verdict> {
  const secret = c.req.header('x-api-secret')
  if (secret !== undefined) {
    const consumer = consumerFor(secret, opts.consumers)
    return consumer
      ? {
          ok: true,
          caller: { kind: 'consumer', consumer: consumer.name, clients: consumer.clients },
        }
      : { ok: false, status: 401, message: 'invalid X-API-SECRET' }
  }
  if (c.req.header('authorization-app-api') !== undefined) {
    const verdict: AppApiVerdict = verifyAppApi((name) => c.req.header(name), {
      appId: opts.appId,
      secret: opts.appSecret,
    })
    if (!verdict.ok) {
      return { ok: false, status: 401, message: 'AppAPI authentication failed' }
    }
    if (verdict.userId === '') {
      return { ok: false, status: 403, message: 'a Nextcloud user is required' }
    }
    if (adminOnly && !(await opts.isAdmin(verdict.userId))) {
      return { ok: false, status: 403, message: 'only Nextcloud admins may do this' }
    }
    return {
      ok: true,
      caller: { kind: 'nextcloud', userId: verdict.userId, isAdmin: adminOnly || undefined },
    }
  }
  return { ok: false, status: 401, message: 'X-API-SECRET or AppAPI authentication required' }
}

/** A presented credential as a limiter key: a hash, so no secret is kept in memory or logged. */
function credentialKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`
}

/**
 * What failures of this request count against: the wrong credential it presents (its hash), and
 * the Nextcloud user it comes from when Nextcloud vouches for one. Never the socket address: behind
 * AppAPI's proxy or HaRP every caller has the same one, and one guesser would lock everyone out.
 */
function failureKeys(
  c: Context<AppEnv>,
  opts: ApiAuthOptions,
): { credential?: string; user?: string } {
  const secret = c.req.header('x-api-secret')
  const appApi = c.req.header('authorization-app-api')
  const verdict =
    appApi === undefined
      ? undefined
      : verifyAppApi((name) => c.req.header(name), { appId: opts.appId, secret: opts.appSecret })
  const user = verdict?.ok && verdict.userId !== '' ? `user:${verdict.userId}` : undefined
  if (secret !== undefined) {
    return { credential: credentialKey('secret', secret), user }
  }
  return { credential: appApi === undefined ? undefined : credentialKey('appapi', appApi), user }
}

function rateLimited(c: Context<AppEnv>, wait: number) {
  c.set('errorCode', 'RATE_LIMITED')
  c.header('Retry-After', String(wait))
  return c.json(errorBody(c, 'RATE_LIMITED', `too many failed attempts; retry in ${wait} s`), 429)
}

/**
 * Authentication of `/api/*`: a consumer's `X-API-SECRET`, or Nextcloud's verified
 * `AUTHORIZATION-APP-API` naming a user (an admin where `adminOnly`). Nothing else passes.
 *
 * Failed authentications are counted per presented credential and per Nextcloud user, and a key
 * that keeps failing gets 429: a consumer stuck on a wrong secret backs off, and a Nextcloud user
 * who keeps guessing secrets through the proxy is stopped before the next guess is looked at. A
 * correct credential is never refused because of someone else's failures.
 */
export function requireApiCaller(
  opts: ApiAuthOptions,
  adminOnly: boolean,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const keys = failureKeys(c, opts)
    // A user's own guesses are stopped before they are judged; their other requests go on.
    const userWait =
      keys.user !== undefined && c.req.header('x-api-secret') !== undefined
        ? opts.limiter.blockedFor(keys.user)
        : 0
    if (userWait > 0) {
      return rateLimited(c, userWait)
    }
    const verdict = await decide(c, opts, adminOnly)
    if (!verdict.ok) {
      if (verdict.status === 401) {
        // A blocked key is a credential that failed before, so it cannot be the right one.
        const wait = keys.credential ? opts.limiter.blockedFor(keys.credential) : 0
        if (wait > 0) {
          return rateLimited(c, wait)
        }
        for (const key of [keys.credential, keys.user]) {
          if (key !== undefined) {
            opts.limiter.fail(key)
          }
        }
      }
      const code = verdict.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN'
      c.set('errorCode', code)
      c.get('log').info({ source: sourceOf(c), reason: verdict.message }, 'auth.api.rejected')
      return c.json(errorBody(c, code, verdict.message), verdict.status)
    }
    c.set('caller', verdict.caller)
    await next()
    return undefined
  }
}

/** The Nextcloud user a verified AppAPI request is made for ('' when anonymous or not AppAPI). */
export function nextcloudUid(c: Context<AppEnv>): string {
  const caller = c.get('caller')
  return caller?.kind === 'nextcloud' ? caller.userId : ''
}

/**
 * For what only Nextcloud admins may see (status page, console, master realm): a 403 unless the
 * AppAPI caller is an admin, undefined when they may go on. An unanswered admin check is a no.
 */
export async function refuseNonAdmin(
  c: Context<AppEnv>,
  isAdmin: (uid: string) => Promise<boolean>,
): Promise<Response | undefined> {
  const uid = nextcloudUid(c)
  if (uid !== '' && (await isAdmin(uid).catch(() => false))) {
    return undefined
  }
  c.set('errorCode', 'FORBIDDEN')
  return c.json(errorBody(c, 'FORBIDDEN', 'Nextcloud admins only'), 403)
}
