import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import * as oidc from 'openid-client'
import type { KcAdmin } from '../src/keycloak/admin.js'
import { escapeHtml } from '../src/proxy/redirect-page.js'
import { closeServer, listenOn } from './php-proxy.js'

/**
 * A relying party of the test suite's own: a confidential OpenID client of the realm doing the
 * authorization code flow with PKCE (openid-client), as any app of the realm would. `GET /login`
 * sends the browser to the realm; `GET /callback` redeems the code, validates the ID token
 * (signature against the realm's keys, issuer, audience, nonce, the `iss` of the response) and
 * shows "signed in as <preferred_username>". Everything it asks the realm goes to `issuer`, the
 * realm's public URL (through Nextcloud's proxy where the browser reaches it so).
 */
export const RELYING_PARTY_CLIENT = 'test-relying-party'
/** the cookie tying a callback to the browser that started the flow */
const FLOW_COOKIE = 'rp_flow'

export interface Landing {
  preferredUsername: string
  claims: Record<string, unknown>
}

export interface RelyingParty {
  origin: string
  /** where a browser starts the sign-in */
  loginUrl: string
  redirectUri: string
  clientId: string
  clientSecret: string
  /** every successful sign-in, in order */
  landings: Landing[]
  /** every refused callback, with the reason */
  failures: string[]
  close(): Promise<void>
}

interface Pending {
  verifier: string
  nonce: string
}

export async function startRelyingParty(opts: {
  /** the realm's issuer as the browser and the relying party reach it */
  issuer: string
  clientId?: string
  port?: number
}): Promise<RelyingParty> {
  const clientId = opts.clientId ?? RELYING_PARTY_CLIENT
  const clientSecret = randomBytes(24).toString('base64url')
  const pending = new Map<string, Pending>()
  const landings: Landing[] = []
  const failures: string[] = []
  let config: oidc.Configuration | undefined
  let redirectUri = ''

  // Discovery at the first sign-in: the realm may not be reachable yet when the party starts.
  const configuration = async () => {
    // The secret in the body: an Authorization header would be taken by Nextcloud, in front of
    // the realm, for a Nextcloud login of its own.
    config ??= await oidc.discovery(
      new URL(opts.issuer),
      clientId,
      undefined,
      oidc.ClientSecretPost(clientSecret),
      { execute: [oidc.allowInsecureRequests] },
    )
    return config
  }

  const page = (res: ServerResponse, status: number, body: string, headers = {}) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    })
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test relying party</title>
<link rel="icon" href="data:,">
<style>body{font:18px system-ui,sans-serif;margin:3em}#signed-in{color:#2d7b41}#error{color:#db0606}</style>
</head><body><h1>Test relying party</h1>${body}</body></html>`)
  }

  const login = async (res: ServerResponse) => {
    const cfg = await configuration()
    const state = oidc.randomState()
    const verifier = oidc.randomPKCECodeVerifier()
    const nonce = oidc.randomNonce()
    pending.set(state, { verifier, nonce })
    const to = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    })
    res.writeHead(302, {
      location: to.href,
      'set-cookie': `${FLOW_COOKIE}=${state}; Path=/; HttpOnly; SameSite=Lax`,
      'cache-control': 'no-store',
    })
    res.end()
  }

  const callback = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const state = url.searchParams.get('state') ?? ''
    const flow = pending.get(state)
    const cookie = /(?:^|;\s*)rp_flow=([^;]+)/.exec(req.headers.cookie ?? '')?.[1]
    if (!flow || cookie !== state) {
      failures.push(`unknown state or another browser's: ${url.search}`)
      page(res, 400, '<p id="error">This sign-in was not started here.</p>')
      return
    }
    pending.delete(state)
    try {
      const tokens = await oidc.authorizationCodeGrant(await configuration(), url, {
        pkceCodeVerifier: flow.verifier,
        expectedState: state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      })
      const claims = { ...(tokens.claims() ?? {}) } as Record<string, unknown>
      const preferredUsername = String(claims.preferred_username ?? '')
      landings.push({ preferredUsername, claims })
      page(
        res,
        200,
        `<p id="signed-in">signed in as <strong id="username">${escapeHtml(preferredUsername)}</strong></p>`,
        { 'set-cookie': `${FLOW_COOKIE}=; Path=/; Max-Age=0` },
      )
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      failures.push(reason)
      page(res, 400, `<p id="error">${escapeHtml(reason)}</p>`)
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin)
    const handled =
      req.method === 'GET' && url.pathname === '/login'
        ? login(res)
        : req.method === 'GET' && url.pathname === '/callback'
          ? callback(req, res, url)
          : Promise.resolve(page(res, 404, '<p>Not found</p>'))
    handled.catch((err: unknown) => {
      failures.push(String(err))
      if (!res.headersSent) {
        page(res, 500, `<p id="error">${escapeHtml(String(err))}</p>`)
      }
    })
  })
  const origin = await listenOn(server, opts.port)
  redirectUri = `${origin}/callback`
  return {
    origin,
    loginUrl: `${origin}/login`,
    redirectUri,
    clientId,
    clientSecret,
    landings,
    failures,
    close: () => closeServer(server),
  }
}

/**
 * Registers (or updates) the relying party in `realm` as a confidential client with the
 * standard flow only, its one redirect URI, and PKCE S256 required.
 */
export async function registerRelyingParty(
  admin: KcAdmin,
  realm: string,
  rp: Pick<RelyingParty, 'clientId' | 'clientSecret' | 'redirectUri'>,
): Promise<void> {
  const client = {
    clientId: rp.clientId,
    name: 'Test relying party',
    enabled: true,
    protocol: 'openid-connect',
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    secret: rp.clientSecret,
    standardFlowEnabled: true,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: false,
    serviceAccountsEnabled: false,
    redirectUris: [rp.redirectUri],
    attributes: { 'pkce.code.challenge.method': 'S256' },
  }
  const [existing] = await admin.clients.find({ realm, clientId: rp.clientId })
  if (existing?.id) {
    await admin.clients.update({ realm, id: existing.id }, { ...existing, ...client })
  } else {
    await admin.clients.create({ realm, ...client })
  }
}
