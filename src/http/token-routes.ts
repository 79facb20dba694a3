import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Consumer } from '../config/config.js'
import { AppError } from '../errors.js'
import type { IssueRequest, TokenService } from '../tokens/service.js'
import { errors, invalidInput, routes } from './openapi.js'
import { userIdSchema } from './sync-routes.js'
import type { AppEnv, Caller } from './types.js'

export interface TokenRoutesDeps {
  tokens: Pick<TokenService, 'issue'>
  /** the configured consumers; a Nextcloud user's own request uses the first one's clients */
  consumers: Consumer[]
}

/** The characters KEYCLOAK_CLIENTS accepts; anything else cannot name a configured client. */
const CLIENT_ID = /^[A-Za-z0-9_.:-]{1,255}$/
const MAX_SCOPE_LENGTH = 1024

/** A query parameter given once; repeating it is ambiguous, so it is refused. */
const once = (name: string) =>
  z.string({
    error: (issue) =>
      issue.input === undefined
        ? `${name} is required`
        : Array.isArray(issue.input)
          ? `${name} must be given once`
          : `${name} must be a string`,
  })

const TokenSet = z
  .object({
    access_token: z.string(),
    refresh_token: z
      .string()
      .openapi({ description: 'empty when Keycloak gives none (JWT grant)' }),
    id_token: z.string(),
    expires_in: z.number().int().openapi({ description: 'seconds left' }),
    token_type: z.string().openapi({ example: 'Bearer' }),
  })
  .openapi('Token')

const token = createRoute({
  method: 'post',
  path: '/token',
  summary: 'Keycloak tokens for a Nextcloud user',
  request: {
    query: z.object({
      client_id: once('client_id')
        .min(1, 'client_id is required')
        .regex(CLIENT_ID, 'client_id is malformed')
        .openapi({ example: 'opentalk' }),
      scope: once('scope')
        .max(MAX_SCOPE_LENGTH, 'scope is too long')
        .optional()
        .openapi({ description: 'extra scopes; openid is always included' }),
    }),
  },
  // Described, not validated: a header is a string or absent, so a schema could refuse nothing,
  // and its validator (every header copied into an object, parsed) ran on each token request.
  // requester() reads and checks it.
  parameters: [
    {
      name: 'x-nc-user-id',
      in: 'header',
      required: false,
      description: 'the Nextcloud uid (with X-API-SECRET)',
      schema: { type: 'string', description: 'the Nextcloud uid (with X-API-SECRET)' },
    },
  ],
  responses: {
    200: { description: 'tokens', content: { 'application/json': { schema: TokenSet } } },
    ...errors(400, 401, 403, 404, 429, 502),
  },
})

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
  const api = routes()
  // Documented as declared, its query checked by validQuery() below rather than by the validator
  // openapi() would add: the same schema and the same 400, without Hono's validator middleware
  // (an async hop, the query re-parsed into arrays and copied twice) on every token request.
  api.openAPIRegistry.registerPath(token)
  return api.openapi({ ...token, request: {}, hide: true }, async (c) => {
    const { client_id: clientId, scope } = validQuery(c)
    const who = requester(c, c.get('caller'), consumers)
    const set = await tokens.issue({ ...who, clientId, scope })
    // RFC 6749 §5.1: token responses must not be stored by caches on the way.
    c.header('Cache-Control', 'no-store')
    c.header('Pragma', 'no-cache')
    return c.json(
      {
        access_token: set.access_token,
        refresh_token: set.refresh_token,
        id_token: set.id_token,
        expires_in: set.expires_in,
        token_type: set.token_type,
      },
      200,
    )
  })
}

/**
 * The token route's query, checked by its schema as openapi()'s validator would check it (a 400
 * INVALID_INPUT through invalidInput naming each problem). The schema sees what Hono's validator
 * would give it: each parameter's value, an array when repeated.
 */
function validQuery(c: Context<AppEnv>): z.infer<typeof token.request.query> {
  const value = queryValue(c)
  const result = token.request.query.safeParse(value)
  if (!result.success) {
    invalidInput({ ...result, data: value, target: 'query' } as never, c as never)
  }
  return result.data as z.infer<typeof token.request.query>
}

/**
 * The query as Hono's validator builds it from `c.req.queries()`. A query without '%', '+' or
 * '#' has nothing to decode and is split here in one pass, exactly as Hono splits it; any other
 * is left to Hono's parser.
 */
export function queryValue(c: Pick<Context<AppEnv>, 'req'>): Record<string, string | string[]> {
  const url = c.req.url
  const start = url.indexOf('?', 8)
  if (url.indexOf('#', 8) !== -1 || (start !== -1 && /[%+]/.test(url.slice(start)))) {
    return Object.fromEntries(
      Object.entries(c.req.queries()).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v])),
    )
  }
  const value: Record<string, string | string[]> = Object.create(null)
  let at = start
  while (at !== -1) {
    const next = url.indexOf('&', at + 1)
    const end = next === -1 ? url.length : next
    const eq = url.indexOf('=', at + 1)
    const hasValue = eq !== -1 && eq < end
    const name = url.slice(at + 1, hasValue ? eq : end)
    at = next
    if (name === '') {
      continue
    }
    const v = hasValue ? url.slice(eq + 1, end) : ''
    const seen = value[name]
    value[name] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v]
  }
  return { ...value }
}
