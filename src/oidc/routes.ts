import { Hono } from 'hono'
import { AppError } from '../errors.js'
import { nextcloudUid, sourceOf } from '../http/api-auth.js'
import type { AppEnv } from '../http/types.js'
import { viaPhpProxy } from '../proxy/proxy-body.js'
import { redirectPage } from '../proxy/redirect-page.js'
import type { OidcProvider } from './provider.js'

/** The provider's paths: `/oidc/…` on the app, `<public prefix>/oidc/…` through Nextcloud. */
export const OIDC_PATH = '/oidc'

/**
 * The mark of the way back from Nextcloud's login (a query parameter the provider never reads).
 * Nextcloud's login page lets its form lead only to Nextcloud (`form-action 'self'`), and browsers
 * hold every redirect after the form's POST to that: a chain of 302s from here through the realm's
 * broker to an app elsewhere would be blocked. The request the login returns to answers with a
 * page instead, which ends the chain.
 */
const FROM_LOGIN = 'from_nextcloud_login'

/**
 * Sends the browser on. Through AppAPI's PHP proxy a 302 would be followed by the proxy itself,
 * so the browser gets a page that moves it (a meta refresh and a link, allowed by the page's own
 * CSP), as does a browser back from Nextcloud's login (see FROM_LOGIN); HaRP and direct callers
 * otherwise get the 302.
 */
function sendBrowser(request: Headers, location: string, page = false): Response {
  const headers = new Headers({
    location,
    'cache-control': 'no-store',
    // The code is in the URL: no page it leads to learns it from a Referer.
    'referrer-policy': 'no-referrer',
  })
  return page || viaPhpProxy(request)
    ? redirectPage(headers)
    : new Response(null, { status: 302, headers })
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/**
 * A refusal the browser is not sent back with (Keycloak would only say "unexpected error"): a
 * plain page with the reason, no script, no style.
 */
function refusedPage(message: string): Response {
  const text = message.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string)
  return new Response(
    `<!doctype html><html><head><meta charset="utf-8"><title>Access denied</title></head><body><h1>Access denied</h1><p>${text}</p></body></html>`,
    {
      status: 403,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'",
      },
    },
  )
}

/** How the access log counts a refused token request. */
const TOKEN_ERROR_CODES = {
  400: 'INVALID_INPUT',
  401: 'UNAUTHORIZED',
  429: 'RATE_LIMITED',
} as const

function publicPathOf(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '')
}

/**
 * The provider's HTTP surface. `/authorize` is reached by the browser through Nextcloud (the
 * access table lets only AppAPI-verified callers in: a user, or the anonymous visitor who is sent
 * to Nextcloud's login); `/token`, `/jwks` and discovery are called by Keycloak directly (see
 * oidcBackchannelRoutes).
 */
export function oidcRoutes(provider: OidcProvider): Hono<AppEnv> {
  const returnBase = publicPathOf(provider.issuer)
  return new Hono<AppEnv>()
    .get(`${OIDC_PATH}/authorize`, async (c) => {
      const params = new URL(c.req.url).searchParams
      const fromLogin = params.get(FROM_LOGIN) === '1'
      params.delete(FROM_LOGIN)
      const back = new URLSearchParams(params)
      back.set(FROM_LOGIN, '1')
      // Re-encoded, so no '@' is left bare: Nextcloud's login refuses to return to a URL with one.
      const outcome = await provider.authorize(
        params,
        nextcloudUid(c),
        `${returnBase}/authorize?${back.toString()}`,
      )
      if (outcome.kind === 'refused') {
        c.set('errorCode', 'FORBIDDEN')
        c.get('log')?.info({ uid: nextcloudUid(c) }, 'oidc.authorize_refused')
        return refusedPage(outcome.message)
      }
      return sendBrowser(c.req.raw.headers, outcome.url, fromLogin)
    })
    .route('/', oidcBackchannelRoutes(provider))
    .all(`${OIDC_PATH}/*`, () => {
      throw new AppError('NOT_FOUND', 'no such provider endpoint')
    })
}

/**
 * What Keycloak calls itself: the token endpoint, the keys and discovery. Part of the app's own
 * routes, and on HaRP's unix socket also served alone on a loopback port (see backchannel.ts).
 */
export function oidcBackchannelRoutes(provider: OidcProvider): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .post(`${OIDC_PATH}/token`, async (c) => {
      const type = c.req.header('content-type') ?? ''
      c.header('cache-control', 'no-store')
      if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
        c.set('errorCode', 'INVALID_INPUT')
        return c.json(
          {
            error: 'invalid_request',
            error_description: 'the body must be application/x-www-form-urlencoded',
          },
          400,
        )
      }
      const form = new URLSearchParams(await c.req.text())
      const answer = await provider.token(form, c.req.header('authorization'), sourceOf(c))
      if (answer.status !== 200) {
        c.set('errorCode', TOKEN_ERROR_CODES[answer.status])
        c.get('log')?.info({ error: answer.body.error }, 'oidc.token_refused')
      }
      if (answer.retryAfter !== undefined) {
        c.header('retry-after', String(answer.retryAfter))
      }
      if (answer.challenge) {
        c.header('www-authenticate', 'Basic realm="oidc"')
      }
      return c.json(answer.body, answer.status)
    })
    .get(`${OIDC_PATH}/jwks`, async (c) => c.json(await provider.jwks()))
    .get(`${OIDC_PATH}/.well-known/openid-configuration`, (c) => {
      // Keycloak reads this directly: the endpoints it calls itself are where it asked.
      const direct = `${new URL(c.req.url).origin}${OIDC_PATH}`
      return c.json(provider.discovery(direct))
    })
}
