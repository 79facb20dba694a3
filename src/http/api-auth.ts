import { createHash, hash, timingSafeEqual } from 'node:crypto'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context, MiddlewareHandler } from 'hono'
import type { Consumer } from '../config/config.js'
import { AppError } from '../errors.js'
import type { AccessEntry, AccessMatcher, CallerKind } from './access.js'
import { secretsEqual, verifyAppApi } from './appapi-auth.js'
import type { FailureLimiter } from './failure-limiter.js'
import type { AppEnv, Caller } from './types.js'

/**
 * Where a request comes from: for the log, and for limiting only where the caller comes directly
 * (the OpenID token endpoint, called by Keycloak); behind a proxy all callers share one.
 */
export function sourceOf(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** One-shot: no Hash object per call (this runs on every consumer request). */
const sha256 = (value: string) => hash('sha256', value, 'buffer')

/**
 * Finds the consumer a presented secret belongs to. The configured secrets are hashed once; each
 * request hashes the presented one and compares it with every digest in constant time (no early
 * exit), as `secretsEqual` would, without hashing every configured secret again per request.
 */
export function consumerMatcher(consumers: Consumer[]): (secret: string) => Consumer | undefined {
  const digests = consumers.map((consumer) => ({ consumer, digest: sha256(consumer.secret) }))
  return (secret) => {
    const given = sha256(secret)
    let match: Consumer | undefined
    for (const { consumer, digest } of digests) {
      if (timingSafeEqual(given, digest) && secret.length === consumer.secret.length) {
        match = consumer
      }
    }
    return match
  }
}

export interface AccessOptions {
  appId: string
  appSecret: string
  consumers: Consumer[]
  limiter: FailureLimiter
  /** whether a Nextcloud uid is an admin; without it no named user is an admin */
  isAdmin?(uid: string): Promise<boolean>
  /** the scrape token `/metrics` takes as `Authorization: Bearer …` */
  metricsToken?: string
}

/** A presented credential as a limiter key: a hash, so no secret is kept in memory or logged. */
function credentialKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`
}

function refuse(c: Context<AppEnv>, status: 401 | 403, message: string): never {
  c.get('log')?.info({ source: sourceOf(c), reason: message }, 'auth.rejected')
  throw new AppError(status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', message)
}

function rateLimited(c: Context<AppEnv>, wait: number): never {
  c.header('Retry-After', String(wait))
  throw new AppError('RATE_LIMITED', `too many failed attempts; retry in ${wait} s`)
}

/**
 * Who the caller is, if `entry` takes them; else throws 401 (no credential the route takes, or a
 * wrong one) or 403 (a valid credential of a kind the route does not take). An `X-API-SECRET`
 * decides alone when present; then AppAPI's headers; then a metrics bearer token.
 *
 * Where `entry.counted`, failures are counted per presented credential (its hash) and per
 * Nextcloud user, never per socket address (behind AppAPI's proxy or HaRP every caller has the
 * same one), and a key that keeps failing gets 429: a consumer stuck on a wrong secret backs off,
 * a Nextcloud user who keeps guessing secrets through the proxy is stopped before the next guess
 * is looked at, and a correct credential is never refused because of someone else's failures.
 */
async function authenticate(
  c: Context<AppEnv>,
  entry: AccessEntry,
  opts: AccessOptions,
  findConsumer: (secret: string) => Consumer | undefined,
): Promise<Caller> {
  const takes = (kind: CallerKind) => entry.callers.includes(kind)
  const secret = c.req.header('x-api-secret')
  const appApi = c.req.header('authorization-app-api')
  const verdict =
    appApi === undefined
      ? undefined
      : verifyAppApi((name) => c.req.header(name), { appId: opts.appId, secret: opts.appSecret })
  const user = verdict?.ok && verdict.userId !== '' ? `user:${verdict.userId}` : undefined
  const failed = (message: string): never => {
    if (entry.counted) {
      // Hashed only here: a request that passes never needs its credential as a limiter key.
      const presented =
        secret !== undefined
          ? credentialKey('secret', secret)
          : appApi !== undefined
            ? credentialKey('appapi', appApi)
            : undefined
      // A blocked key is a credential that failed before, so it cannot be the right one.
      const wait = presented ? opts.limiter.blockedFor(presented) : 0
      if (wait > 0) {
        rateLimited(c, wait)
      }
      for (const key of [presented, user]) {
        if (key !== undefined) {
          opts.limiter.fail(key)
        }
      }
    }
    return refuse(c, 401, message)
  }

  if (secret !== undefined) {
    // A user's own guesses are stopped before they are judged; their other requests go on.
    const userWait = entry.counted && user !== undefined ? opts.limiter.blockedFor(user) : 0
    if (userWait > 0) {
      rateLimited(c, userWait)
    }
    const consumer = findConsumer(secret)
    if (!consumer) {
      return failed('invalid X-API-SECRET')
    }
    if (!takes('consumer')) {
      return refuse(c, 403, 'a consumer secret may only ask for tokens')
    }
    return {
      kind: 'consumer',
      consumer: consumer.name,
      clients: consumer.clients,
      ...(consumer.groups ? { groups: consumer.groups } : {}),
      allowAdmins: consumer.allowAdmins ?? false,
    }
  }
  if (verdict) {
    if (!verdict.ok) {
      return failed('AppAPI authentication failed')
    }
    const uid = verdict.userId
    if (uid === '') {
      if (takes('appapi-system') || takes('nextcloud-anonymous')) {
        return { kind: 'nextcloud', userId: '' }
      }
      return refuse(c, 403, 'a Nextcloud user is required')
    }
    if (takes('nextcloud-user')) {
      return { kind: 'nextcloud', userId: uid }
    }
    // An unanswered admin check is a no.
    const admin = opts.isAdmin ? await opts.isAdmin(uid).catch(() => false) : false
    if (takes('nextcloud-admin') && admin) {
      return { kind: 'nextcloud', userId: uid, isAdmin: true }
    }
    return refuse(c, 403, 'only Nextcloud admins may do this')
  }
  const bearer = c.req.header('authorization')
  if (takes('metrics-token') && bearer !== undefined) {
    if (opts.metricsToken && bearer.startsWith('Bearer ')) {
      if (secretsEqual(bearer.slice(7), opts.metricsToken)) {
        return { kind: 'metrics' }
      }
    }
    return failed('invalid metrics token')
  }
  if (takes('consumer')) {
    return failed('X-API-SECRET or AppAPI authentication required')
  }
  return failed('AppAPI authentication failed')
}

/**
 * The one access check: every request is matched to its entry in the access table (src/http/
 * access.ts) and let through only for a caller of a kind the entry takes; a method the entry does
 * not list is a 405. Sets `caller` for the handlers.
 */
export function accessControl(
  matcher: AccessMatcher,
  opts: AccessOptions,
): MiddlewareHandler<AppEnv> {
  const findConsumer = consumerMatcher(opts.consumers)
  return async (c, next) => {
    const entry = matcher.entryFor(c.req.path)
    const method = c.req.method.toUpperCase()
    const methods: readonly string[] = entry.methods
    if (!methods.includes(method) && !(method === 'HEAD' && methods.includes('GET'))) {
      c.header('Allow', entry.methods.join(', '))
      throw new AppError('METHOD_NOT_ALLOWED', `method ${method} not allowed here`)
    }
    const path = c.req.path
    if (
      entry.plainPaths &&
      (path.startsWith('//') || /%2e|%2f|%5c|\\/i.test(path) || path.split('/').includes('..'))
    ) {
      throw new AppError('INVALID_INPUT', 'path not allowed')
    }
    if (!entry.callers.includes('anonymous')) {
      c.set('caller', await authenticate(c, entry, opts, findConsumer))
    }
    await next()
  }
}

/** The Nextcloud user a verified AppAPI request is made for ('' when anonymous or not AppAPI). */
export function nextcloudUid(c: Context<AppEnv>): string {
  const caller = c.get('caller')
  return caller?.kind === 'nextcloud' ? caller.userId : ''
}

/**
 * For what only Nextcloud admins may see (status page, console, master realm): throws 403 unless
 * the AppAPI caller is an admin. An unanswered admin check is a no.
 */
export async function refuseNonAdmin(
  c: Context<AppEnv>,
  isAdmin: (uid: string) => Promise<boolean>,
): Promise<undefined> {
  const uid = nextcloudUid(c)
  if (uid !== '' && (await isAdmin(uid).catch(() => false))) {
    return undefined
  }
  throw new AppError('FORBIDDEN', 'Nextcloud admins only')
}
