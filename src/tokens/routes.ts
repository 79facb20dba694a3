import type { Context } from 'hono'
import { Hono } from 'hono'
import type { Consumer } from '../config/config.js'
import { AppError } from '../errors.js'
import { userIdSchema } from '../http/sync-routes.js'
import type { AppEnv, Caller } from '../http/types.js'
import type { IssueRequest, TokenService } from './service.js'

export interface TokenRoutesDeps {
  tokens: Pick<TokenService, 'issue'>
  /** the configured consumers; a Nextcloud user's own request uses the first one's clients */
  consumers: Consumer[]
}

/** The characters KEYCLOAK_CLIENTS accepts; anything else cannot name a configured client. */
const CLIENT_ID = /^[A-Za-z0-9_.:-]{1,255}$/
const MAX_SCOPE_LENGTH = 1024

/** The one value of a query parameter; repeating it is ambiguous, so it is refused. */
function singleQuery(c: Context<AppEnv>, name: string): string | undefined {
  const values = c.req.queries(name)
  if (values && values.length > 1) {
    throw new AppError('INVALID_INPUT', `${name} must be given once`)
  }
  return values?.[0]
}

function clientIdOf(c: Context<AppEnv>): string {
  const clientId = singleQuery(c, 'client_id')
  if (clientId === undefined || clientId === '') {
    throw new AppError('INVALID_INPUT', 'client_id is required')
  }
  if (!CLIENT_ID.test(clientId)) {
    throw new AppError('INVALID_INPUT', 'client_id is malformed')
  }
  return clientId
}

function scopeOf(c: Context<AppEnv>): string | undefined {
  const scope = singleQuery(c, 'scope')
  if (scope !== undefined && scope.length > MAX_SCOPE_LENGTH) {
    throw new AppError('INVALID_INPUT', 'scope is too long')
  }
  return scope
}

function userIdOf(value: string | undefined, what: string): string {
  if (value === undefined) {
    throw new AppError('INVALID_INPUT', `${what} is required`)
  }
  const parsed = userIdSchema.safeParse(value)
  if (!parsed.success) {
    throw new AppError('INVALID_INPUT', `${what} is not a Nextcloud user id`)
  }
  return parsed.data
}

/**
 * Who asks and for whom. A consumer names the user in `X-NC-USER-ID`. A request Nextcloud
 * proxied carries the logged-in user, verified: the token is for that user and nobody else, so an
 * `X-NC-USER-ID` naming someone else is refused rather than silently ignored (a caller that meant
 * another user must not walk away with a token it believes is that user's). That path may use the
 * clients of the first configured consumer, and its issuances are recorded apart from it.
 */
function requester(
  c: Context<AppEnv>,
  caller: Caller | undefined,
  consumers: Consumer[],
): Pick<IssueRequest, 'consumer' | 'userId' | 'users'> {
  const named = c.req.header('x-nc-user-id')
  if (caller?.kind === 'consumer') {
    // A consumer asks for others: only for the users its configuration allows.
    return {
      consumer: { name: caller.consumer, clients: caller.clients },
      userId: userIdOf(named, 'X-NC-USER-ID'),
      users: {
        ...(caller.groups ? { groups: caller.groups } : {}),
        allowAdmins: caller.allowAdmins ?? false,
      },
    }
  }
  if (caller?.kind === 'nextcloud') {
    const userId = userIdOf(caller.userId, 'the Nextcloud user')
    if (named !== undefined && named !== userId) {
      throw new AppError('FORBIDDEN', 'X-NC-USER-ID must be the user Nextcloud authenticated')
    }
    const fallback = consumers[0]
    if (!fallback) {
      throw new AppError('FORBIDDEN', 'no consumer is configured for Nextcloud users')
    }
    return { consumer: { name: `${fallback.name}@nextcloud`, clients: fallback.clients }, userId }
  }
  throw new AppError('UNAUTHORIZED', 'authentication required')
}

/**
 * `POST /token?client_id=X[&scope=…]`, mounted under `/api`: the original's contract. Answers
 * `{access_token, refresh_token, id_token, expires_in, token_type}` with empty strings where
 * Keycloak gives none; `openid` is always asked for, so `id_token` is there.
 *
 * @example
 * curl -X POST 'http://keycloak:23000/api/token?client_id=opentalk' \
 *   -H 'X-API-SECRET: …' -H 'X-NC-USER-ID: alice'
 */
export function tokenRoutes({ tokens, consumers }: TokenRoutesDeps) {
  return new Hono<AppEnv>().post('/token', async (c) => {
    const who = requester(c, c.get('caller'), consumers)
    const clientId = clientIdOf(c)
    const scope = scopeOf(c)
    const set = await tokens.issue({ ...who, clientId, scope })
    // RFC 6749 §5.1: token responses must not be stored by caches on the way.
    c.header('Cache-Control', 'no-store')
    c.header('Pragma', 'no-cache')
    return c.json({
      access_token: set.access_token,
      refresh_token: set.refresh_token,
      id_token: set.id_token,
      expires_in: set.expires_in,
      token_type: set.token_type,
    })
  })
}
