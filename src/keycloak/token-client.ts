import * as oidc from 'openid-client'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { classify, failureReason, type Grant, GrantError } from './grant-errors.js'
import { httpFetch } from './http-fetch.js'
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
  /** sends the requests instead of node:http (tests); default: httpFetch(), kept-alive connections */
  fetch?: typeof fetch
  timeoutMs?: number
}

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
  const customFetch = opts.fetch ? toCustomFetch(opts.fetch) : httpFetch()
  let metadata: Promise<oidc.ServerMetadata> | undefined

  const discover = () => {
    metadata ??= loadMetadata(realmUrl, insecure, timeout, customFetch).catch((err: unknown) => {
      metadata = undefined
      throw err
    })
    return metadata
  }

  /**
   * One openid-client Configuration per client and secret, built once: its constructor
   * structured-clones the whole discovery document, which cost more CPU per grant than anything
   * else the client does. A changed secret builds a new one.
   */
  const configs = new Map<string, { secret: string; config: oidc.Configuration }>()
  const configFor = async (req: ClientCredentials) => {
    const server = await discover()
    const known = configs.get(req.clientId)
    if (known?.secret === req.clientSecret) {
      return known.config
    }
    const config = new oidc.Configuration(
      { ...server, token_endpoint: `${realmUrl}/protocol/openid-connect/token` },
      req.clientId,
      undefined,
      oidc.ClientSecretPost(req.clientSecret),
    )
    if (insecure) {
      oidc.allowInsecureRequests(config)
    }
    config[oidc.customFetch] = customFetch
    config.timeout = timeout
    if (configs.size >= 100) {
      configs.clear()
    }
    configs.set(req.clientId, { secret: req.clientSecret, config })
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
  customFetch: oidc.CustomFetch,
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
        [oidc.customFetch]: customFetch,
      },
    )
    return config.serverMetadata()
  } catch (err) {
    const cause = new GrantError('unavailable', undefined, undefined, undefined, { cause: err })
    throw new AppError(
      'KEYCLOAK_UNAVAILABLE',
      `Keycloak's OpenID configuration at ${realmUrl} cannot be read (${failureReason(err)})`,
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
