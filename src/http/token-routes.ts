import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Consumer } from '../config/config.js'
import { AppError } from '../errors.js'
import type { IssueRequest, TokenService } from '../tokens/service.js'
import { errors, routes } from './openapi.js'
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
  return routes().openapi(token, async (c) => {
    const who = requester(c, c.get('caller'), consumers)
    const { client_id: clientId, scope } = c.req.valid('query')
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
