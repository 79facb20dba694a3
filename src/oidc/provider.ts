import { createHash } from 'node:crypto'
import { SignJWT } from 'jose'
import { AppError } from '../errors.js'
import { secretsEqual } from '../http/appapi-auth.js'
import { FailureLimiter } from '../http/failure-limiter.js'
import { passesGate } from '../sync/model.js'
import type { OidcClient } from './clients.js'
import { AuthCodes } from './codes.js'
import type { ProviderKeys } from './keys.js'

/** What the provider needs to know of a Nextcloud user. */
export interface OidcUser {
  id: string
  /** absent when Nextcloud did not say; only `false` refuses */
  enabled?: boolean
  displayname?: string
  email?: string | null
  /** the user's Nextcloud groups, for a client with gate groups */
  groups?: readonly string[]
}

export interface ProviderOptions {
  /** the issuer: the provider's public URL (under Nextcloud's proxy), no trailing slash */
  issuer: string
  /** Nextcloud's URL as the browser reaches it, for its login page */
  nextcloudUrl: string
  clients(): Promise<readonly OidcClient[]>
  /** the user's details from Nextcloud, null when Nextcloud has no such user */
  findUser(uid: string): Promise<OidcUser | null>
  keys: ProviderKeys
  now?: () => number
  /** lifetime of an authorization code (at most 60 s; default 60) */
  codeTtlSeconds?: number
  /** lifetime of the ID and access tokens (default 300 s) */
  tokenTtlSeconds?: number
  /** counts failed client authentications (default: 10 per client and peer a minute, on `now`) */
  failures?: FailureLimiter
}

/** Where the authorize step sends the browser next. */
export type AuthorizeOutcome =
  | { kind: 'to-client'; url: string }
  | { kind: 'to-login'; url: string }
  /** a signed-in user this client does not admit: a page saying why, sent nowhere */
  | { kind: 'refused'; message: string }

/** A token endpoint answer: RFC 6749 §5.1 on success, §5.2 on failure. */
export interface TokenAnswer {
  status: 200 | 400 | 401 | 429
  body: Record<string, unknown>
  /** the client tried HTTP Basic and failed: the answer says which scheme to use */
  challenge?: boolean
  /** with 429: seconds until the client may try again */
  retryAfter?: number
}

const OUTSIDE_GATE = 'this Nextcloud user is in none of the groups that may sign in'

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/

/** The S256 challenge of a PKCE verifier. */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

function oauthError(status: 400 | 401, error: string, description: string): TokenAnswer {
  return { status, body: { error, error_description: description } }
}

/**
 * An OpenID provider for the signed-in Nextcloud user: authorization code flow only, PKCE S256
 * required, redirect URIs compared exactly, one-time codes, ID tokens signed with a key of its own.
 * HTTP lives in routes.ts; this part decides.
 */
export class OidcProvider {
  readonly issuer: string
  private readonly codes: AuthCodes
  private readonly now: () => number
  private readonly tokenTtl: number
  private readonly failures: FailureLimiter

  constructor(private readonly opts: ProviderOptions) {
    this.issuer = opts.issuer.replace(/\/+$/, '')
    this.now = opts.now ?? Date.now
    this.tokenTtl = opts.tokenTtlSeconds ?? 300
    this.failures = opts.failures ?? new FailureLimiter(10, 60_000, this.now)
    this.codes = new AuthCodes({ ttlSeconds: opts.codeTtlSeconds ?? 60, now: this.now })
  }

  /** The discovery document; the endpoints Keycloak calls itself are under `directUrl`. */
  discovery(directUrl: string): Record<string, unknown> {
    const direct = directUrl.replace(/\/+$/, '')
    return {
      issuer: this.issuer,
      authorization_endpoint: `${this.issuer}/authorize`,
      token_endpoint: `${direct}/token`,
      jwks_uri: `${direct}/jwks`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'profile', 'email'],
      claims_supported: [
        ...['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'azp'],
        ...['preferred_username', 'name', 'email'],
      ],
      authorization_response_iss_parameter_supported: true,
    }
  }

  jwks() {
    return this.opts.keys.jwks()
  }

  /**
   * The authorize step for `userId` ('' when nobody is signed in to Nextcloud). `returnPath` is
   * this request's path and query as Nextcloud serves it, for the way back from the login page.
   *
   * An unknown client or a redirect URI it did not register is INVALID_INPUT (the browser is sent
   * nowhere); every other refusal goes back to the client's redirect URI as an OAuth error, with
   * the state it sent.
   */
  async authorize(
    params: URLSearchParams,
    userId: string,
    returnPath: string,
  ): Promise<AuthorizeOutcome> {
    const single = (name: string): string | undefined => {
      const values = params.getAll(name)
      if (values.length > 1) {
        throw new AppError('INVALID_INPUT', `parameter ${name} is given more than once`)
      }
      return values[0]
    }
    const clientId = single('client_id')
    const redirectUri = single('redirect_uri')
    const client = (await this.opts.clients()).find((c) => c.id === clientId)
    if (!client) {
      throw new AppError('INVALID_INPUT', 'unknown client_id')
    }
    if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
      throw new AppError('INVALID_INPUT', 'redirect_uri is not registered for this client')
    }
    const state = single('state')
    const back = (query: Record<string, string>): AuthorizeOutcome => {
      const url = new URL(redirectUri)
      for (const [name, value] of Object.entries({
        ...query,
        ...(state !== undefined ? { state } : {}),
        iss: this.issuer,
      })) {
        url.searchParams.set(name, value)
      }
      return { kind: 'to-client', url: url.toString() }
    }
    const refuse = (error: string, description: string) =>
      back({ error, error_description: description })

    if (single('response_type') !== 'code') {
      return refuse('unsupported_response_type', 'only response_type=code is supported')
    }
    if (!state) {
      return refuse('invalid_request', 'state is required')
    }
    const scope = single('scope') ?? ''
    if (!scope.split(' ').includes('openid')) {
      return refuse('invalid_scope', 'scope must include openid')
    }
    const challenge = single('code_challenge')
    const method = single('code_challenge_method')
    if (!challenge || method !== 'S256') {
      return refuse('invalid_request', 'PKCE with code_challenge_method=S256 is required')
    }
    if (!CHALLENGE.test(challenge)) {
      return refuse('invalid_request', 'code_challenge is not an S256 challenge')
    }
    const prompt = (single('prompt') ?? '').split(' ')
    if (userId === '') {
      if (prompt.includes('none')) {
        return refuse('login_required', 'nobody is signed in to Nextcloud')
      }
      const login = new URL(`${this.opts.nextcloudUrl.replace(/\/+$/, '')}/index.php/login`)
      login.searchParams.set('redirect_url', returnPath)
      return { kind: 'to-login', url: login.toString() }
    }
    // AppAPI names the user its session holds; Nextcloud says whether they may still sign in.
    const user = await this.opts.findUser(userId)
    if (!user || user.enabled === false) {
      return refuse('access_denied', 'this Nextcloud user may not sign in')
    }
    if (!passesGate(user.groups ?? [], client.gateGroups ?? [])) {
      return refuse('access_denied', OUTSIDE_GATE)
    }
    if (client.admits && !client.admits.user(user)) {
      return { kind: 'refused', message: `${client.admits.why}; ${user.id} is not one` }
    }
    const nonce = single('nonce')
    const code = this.codes.issue({
      clientId: client.id,
      redirectUri,
      userId: user.id,
      codeChallenge: challenge,
      scope,
      ...(nonce !== undefined ? { nonce } : {}),
    })
    return back({ code })
  }

  /**
   * The token endpoint: `form` is the request body, `authorization` its Authorization header,
   * `peer` the address the request came from (Keycloak calls directly, so it is Keycloak's).
   */
  async token(
    form: URLSearchParams,
    authorization: string | undefined,
    peer = 'unknown',
  ): Promise<TokenAnswer> {
    for (const [name] of form) {
      if (form.getAll(name).length > 1) {
        return oauthError(400, 'invalid_request', `parameter ${name} is given more than once`)
      }
    }
    const authed = await this.authenticateClient(form, authorization, peer)
    if ('status' in authed) {
      return authed
    }
    const client = authed
    if (form.get('grant_type') !== 'authorization_code') {
      return oauthError(400, 'unsupported_grant_type', 'only authorization_code is supported')
    }
    const code = form.get('code')
    // Taken first: a code is spent by any attempt to redeem it.
    const grant = code ? this.codes.take(code) : undefined
    if (!grant) {
      return oauthError(400, 'invalid_grant', 'the code is unknown, used or expired')
    }
    if (grant.clientId !== client.id) {
      return oauthError(400, 'invalid_grant', 'the code was issued to another client')
    }
    if (form.get('redirect_uri') !== grant.redirectUri) {
      return oauthError(400, 'invalid_grant', 'redirect_uri differs from the authorize request')
    }
    const verifier = form.get('code_verifier')
    if (!verifier || !VERIFIER.test(verifier)) {
      return oauthError(400, 'invalid_grant', 'a code_verifier is required')
    }
    if (!secretsEqual(s256(verifier), grant.codeChallenge)) {
      return oauthError(400, 'invalid_grant', 'the code_verifier does not match the challenge')
    }
    // Checked again: the user may have been disabled since the code was issued.
    const user = await this.opts.findUser(grant.userId)
    if (!user || user.enabled === false) {
      return oauthError(400, 'invalid_grant', 'this Nextcloud user may not sign in')
    }
    if (!passesGate(user.groups ?? [], client.gateGroups ?? [])) {
      return oauthError(400, 'invalid_grant', OUTSIDE_GATE)
    }
    if (client.admits && !client.admits.user(user)) {
      return oauthError(400, 'invalid_grant', client.admits.why)
    }
    return { status: 200, body: await this.tokens(client.id, grant.scope, user, grant.nonce) }
  }

  private async tokens(clientId: string, scope: string, user: OidcUser, nonce?: string) {
    const key = await this.opts.keys.key()
    const iat = Math.floor(this.now() / 1000)
    const exp = iat + this.tokenTtl
    const common = { iss: this.issuer, sub: user.id, aud: clientId, iat, exp, azp: clientId }
    const idToken = await new SignJWT({
      ...common,
      ...(nonce !== undefined ? { nonce } : {}),
      preferred_username: user.id,
      name: user.displayname || user.id,
      ...(user.email ? { email: user.email } : {}),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key.kid })
      .sign(key.privateKey)
    const accessToken = await new SignJWT({ ...common, scope, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
      .sign(key.privateKey)
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: this.tokenTtl,
      id_token: idToken,
      scope,
    }
  }

  /**
   * client_secret_basic or client_secret_post, one of them, checked in constant time. Failures
   * are counted per client id and peer; one that keeps failing gets 429 before its secret is
   * looked at, until the window of its first failure has passed (a right secret too: a guesser
   * must not learn when it found it).
   */
  private async authenticateClient(
    form: URLSearchParams,
    authorization: string | undefined,
    peer: string,
  ): Promise<OidcClient | TokenAnswer> {
    let id: string | undefined
    let secret: string | undefined
    const basic = authorization?.startsWith('Basic ') === true
    if (basic) {
      if (form.has('client_secret')) {
        return oauthError(400, 'invalid_request', 'use one client authentication method')
      }
      const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      try {
        id = colon < 0 ? undefined : decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
        secret =
          colon < 0 ? undefined : decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
      } catch {
        id = undefined
      }
      const named = form.get('client_id')
      if (named !== null && named !== id) {
        return oauthError(400, 'invalid_request', 'client_id differs from the authenticated client')
      }
    } else {
      id = form.get('client_id') ?? undefined
      secret = form.get('client_secret') ?? undefined
    }
    const source = `oidc-client:${JSON.stringify([id ?? null, peer])}`
    const wait = this.failures.blockedFor(source)
    if (wait > 0) {
      return {
        status: 429,
        body: {
          error: 'invalid_client',
          error_description: `too many failed client authentications; retry in ${wait} s`,
        },
        retryAfter: wait,
      }
    }
    const failed = (): TokenAnswer => {
      this.failures.fail(source)
      return {
        ...oauthError(401, 'invalid_client', 'client authentication failed'),
        challenge: basic,
      }
    }
    if (id === undefined || secret === undefined) {
      return failed()
    }
    const clients = await this.opts.clients()
    const client = clients.find((c) => c.id === id)
    // Compared even for an unknown client, so both failures cost the same.
    const ok = secretsEqual(secret, client?.secret ?? '\u0000no-client')
    return client && ok ? client : failed()
  }
}
