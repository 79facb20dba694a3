import * as oidc from 'openid-client'
import { AppError, type ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'
import { JWT_BEARER_GRANT_TYPE } from './jwt-grant.js'

/** Keycloak's token response, normalized: empty strings where Keycloak gives none. */
export interface TokenSet {
  access_token: string
  refresh_token: string
  id_token: string
  expires_in: number
  token_type: string
  /** Keycloak's own field; 0 when there is no refresh token (JWT grant) */
  refresh_expires_in: number
}

export interface ClientCredentials {
  clientId: string
  clientSecret: string
  /** e.g. "openid"; an ID token comes back only when it includes openid */
  scope?: string
}

export interface TokenClient {
  /**
   * The realm's issuer as Keycloak advertises it: the public URL when `hostname` is set, even
   * though we call the loopback URL. An assertion's `aud` must be exactly this (or the public
   * token endpoint); the loopback URL is refused ("Invalid token audience").
   */
  issuer(): Promise<string>
  jwtGrant(req: ClientCredentials & { assertion: string }): Promise<TokenSet>
  passwordGrant(req: ClientCredentials & { username: string; password: string }): Promise<TokenSet>
  refreshGrant(req: ClientCredentials & { refreshToken: string }): Promise<TokenSet>
}

export interface TokenClientOptions {
  /** where the sidecar reaches Keycloak, e.g. http://127.0.0.1:8080 (plain http allowed) */
  backchannelUrl: string
  realm: string
  log: Logger
  fetch?: typeof fetch
  timeoutMs?: number
}

/** Why Keycloak refused a grant, for callers that react differently (sync the user, log in again). */
export type GrantRejection =
  | 'user_not_found'
  | 'user_disabled'
  | 'user_not_ready'
  | 'invalid_credentials'
  | 'refresh_rejected'
  | 'assertion_rejected'
  | 'client_rejected'
  | 'invalid_scope'
  | 'unavailable'
  | 'unexpected'

/** The `cause` of every AppError this module throws for a failed grant. */
export class GrantError extends Error {
  override readonly name = 'GrantError'
  constructor(
    readonly rejection: GrantRejection,
    readonly status: number | undefined,
    readonly error: string | undefined,
    readonly description: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`${error ?? 'error'}: ${description ?? ''}`, options)
  }
}

/** The rejection behind an error thrown by a TokenClient, if it is one. */
export function grantRejection(err: unknown): GrantRejection | undefined {
  return err instanceof AppError && err.cause instanceof GrantError
    ? err.cause.rejection
    : undefined
}

type Grant = 'jwt' | 'password' | 'refresh'

/**
 * A client for the realm's token endpoint, built on openid-client. Discovery is read once from
 * the backchannel URL's `.well-known` document (that form skips openid-client's issuer check,
 * which would fail: the document's issuer is the public URL), and requests always go to the
 * backchannel token endpoint, so a Keycloak without `hostname-backchannel-dynamic` works too.
 */
export function createTokenClient(opts: TokenClientOptions): TokenClient {
  const base = opts.backchannelUrl.replace(/\/+$/, '')
  const realmUrl = `${base}/realms/${encodeURIComponent(opts.realm)}`
  const insecure = new URL(base).protocol === 'http:'
  const timeout = Math.ceil((opts.timeoutMs ?? 10_000) / 1000)
  const log = opts.log
  const customFetch = opts.fetch ? toCustomFetch(opts.fetch) : undefined
  let metadata: Promise<oidc.ServerMetadata> | undefined

  const discover = () => {
    metadata ??= loadMetadata(realmUrl, insecure, timeout, customFetch).catch((err: unknown) => {
      metadata = undefined
      throw err
    })
    return metadata
  }

  const configFor = async (req: ClientCredentials) => {
    const server = await discover()
    const config = new oidc.Configuration(
      { ...server, token_endpoint: `${realmUrl}/protocol/openid-connect/token` },
      req.clientId,
      undefined,
      oidc.ClientSecretPost(req.clientSecret),
    )
    if (insecure) {
      oidc.allowInsecureRequests(config)
    }
    if (customFetch) {
      config[oidc.customFetch] = customFetch
    }
    config.timeout = timeout
    return config
  }

  const run = async (
    grant: Grant,
    req: ClientCredentials,
    call: (c: oidc.Configuration) => Promise<oidc.TokenEndpointResponse>,
  ): Promise<TokenSet> => {
    const config = await configFor(req)
    try {
      return normalize(await call(config))
    } catch (err) {
      const failure = classify(grant, err)
      log[failure.code === 'FORBIDDEN' ? 'info' : 'warn'](
        {
          grant,
          clientId: req.clientId,
          rejection: failure.cause.rejection,
          status: failure.cause.status,
        },
        'keycloak.grant_failed',
      )
      throw failure
    }
  }

  const scoped = (req: ClientCredentials, params: Record<string, string>) =>
    req.scope ? { ...params, scope: req.scope } : params

  return {
    issuer: async () => (await discover()).issuer,
    jwtGrant: (req) =>
      run('jwt', req, (c) =>
        oidc.genericGrantRequest(
          c,
          JWT_BEARER_GRANT_TYPE,
          scoped(req, { assertion: req.assertion }),
        ),
      ),
    passwordGrant: (req) =>
      run('password', req, (c) =>
        oidc.genericGrantRequest(
          c,
          'password',
          scoped(req, { username: req.username, password: req.password }),
        ),
      ),
    refreshGrant: (req) =>
      run('refresh', req, (c) => oidc.refreshTokenGrant(c, req.refreshToken, scoped(req, {}))),
  }
}

async function loadMetadata(
  realmUrl: string,
  insecure: boolean,
  timeout: number,
  customFetch: oidc.CustomFetch | undefined,
): Promise<oidc.ServerMetadata> {
  try {
    const config = await oidc.discovery(
      new URL(`${realmUrl}/.well-known/openid-configuration`),
      'keycloak-exapp',
      undefined,
      undefined,
      {
        execute: insecure ? [oidc.allowInsecureRequests] : [],
        timeout,
        ...(customFetch ? { [oidc.customFetch]: customFetch } : {}),
      },
    )
    return config.serverMetadata()
  } catch (err) {
    const cause = new GrantError('unavailable', undefined, undefined, undefined, { cause: err })
    throw new AppError(
      'KEYCLOAK_UNAVAILABLE',
      `Keycloak's OpenID configuration at ${realmUrl} cannot be read`,
      { cause },
    )
  }
}

function toCustomFetch(f: typeof fetch): oidc.CustomFetch {
  return (url, options) => f(url, options as RequestInit)
}

function normalize(res: oidc.TokenEndpointResponse): TokenSet {
  const refreshExpiresIn = res.refresh_expires_in
  return {
    access_token: res.access_token,
    refresh_token: res.refresh_token ?? '',
    id_token: res.id_token ?? '',
    expires_in: res.expires_in ?? 0,
    // openid-client lowercases token_type; consumers of the original got Keycloak's "Bearer".
    token_type: res.token_type === 'bearer' ? 'Bearer' : res.token_type,
    refresh_expires_in: typeof refreshExpiresIn === 'number' ? refreshExpiresIn : 0,
  }
}

/** Keycloak's invalid_grant descriptions that are about the user, not about us (26.7.3). */
const USER_REJECTIONS: Record<string, GrantRejection> = {
  'User not found': 'user_not_found',
  'User is not enabled': 'user_disabled',
  'Account disabled': 'user_disabled',
  'Account is not fully set up': 'user_not_ready',
  'Invalid user credentials': 'invalid_credentials',
}

export const GRANT_ERROR_CODES: Record<GrantRejection, ErrorCode> = {
  user_not_found: 'FORBIDDEN',
  user_disabled: 'FORBIDDEN',
  user_not_ready: 'FORBIDDEN',
  invalid_credentials: 'FORBIDDEN',
  refresh_rejected: 'UNAUTHORIZED',
  // the realm does not trust our assertion: wrong key, issuer, audience or IdP setup
  assertion_rejected: 'INTERNAL',
  client_rejected: 'INVALID_INPUT',
  invalid_scope: 'INVALID_INPUT',
  unavailable: 'KEYCLOAK_UNAVAILABLE',
  unexpected: 'INTERNAL',
}

/** Wraps an openid-client failure into an AppError whose cause is a GrantError. */
function classify(grant: Grant, err: unknown): AppError & { cause: GrantError } {
  const { status, error, description } = describe(err)
  const rejection = rejectionFor(grant, status, error, description)
  const detail = description ? `${error}: ${description.slice(0, 200)}` : (error ?? 'no response')
  const cause = new GrantError(rejection, status, error, description, { cause: err })
  const message =
    status === undefined
      ? `Keycloak did not answer the ${grant} grant (${detail})`
      : `Keycloak refused the ${grant} grant (${status} ${detail})`
  return new AppError(GRANT_ERROR_CODES[rejection], message, { cause }) as AppError & {
    cause: GrantError
  }
}

function rejectionFor(
  grant: Grant,
  status: number | undefined,
  error: string | undefined,
  description: string | undefined,
): GrantRejection {
  if (status === undefined || status >= 500) {
    return 'unavailable'
  }
  switch (error) {
    case 'invalid_client':
    case 'unauthorized_client':
      return 'client_rejected'
    case 'invalid_scope':
      return 'invalid_scope'
    case 'invalid_grant': {
      const user = description ? USER_REJECTIONS[description] : undefined
      if (user) {
        return user
      }
      if (grant === 'refresh') {
        return 'refresh_rejected'
      }
      return grant === 'jwt' ? 'assertion_rejected' : 'unexpected'
    }
    default:
      return 'unexpected'
  }
}

/** Status, OAuth error and description out of whatever openid-client threw. */
function describe(err: unknown): { status?: number; error?: string; description?: string } {
  if (err instanceof oidc.ResponseBodyError) {
    return { status: err.status, error: err.error, description: err.error_description }
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    return { status: err.status, error: err.cause[0]?.parameters.error ?? 'invalid_client' }
  }
  if (err instanceof oidc.ClientError) {
    const response = err.cause instanceof Response ? err.cause : undefined
    if (response) {
      // a non-OAuth answer (an HTML error page, a proxy's 502): Keycloak is not serving tokens
      return { status: response.status >= 500 ? response.status : undefined, error: err.code }
    }
    // the answer was a token response that failed validation (e.g. an ID token for another issuer)
    return { status: 200, error: 'unexpected', description: err.message }
  }
  // fetch failures (TypeError) and timeouts (DOMException)
  return {}
}
