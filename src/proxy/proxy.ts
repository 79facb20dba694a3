import type { Context } from 'hono'
import { Hono } from 'hono'
import { nextcloudUid, refuseNonAdmin } from '../http/api-auth.js'
import type { AppEnv } from '../http/types.js'
import { JarStore, type JarStoreOptions } from './cookie-jars.js'
import { applyFramePolicy } from './frame-policy.js'
import { accessFor, checkMethod, upstreamUrl } from './paths.js'
import { deliver, extensionOf, viaPhpProxy } from './proxy-body.js'
import { publicSite } from './public-site.js'
import { isRedirect, redirectPage } from './redirect-page.js'
import { SessionCookies } from './session-cookies.js'
import { askUpstream, responseHeaders, upstreamHeaders } from './upstream.js'

/**
 * Reverse proxy from Nextcloud's proxies (AppAPI's PHP proxy, HaRP) to Keycloak. Each step is a
 * module of its own:
 *
 * - paths.ts: which methods and paths pass, and which need a Nextcloud admin;
 * - upstream.ts: the headers Keycloak gets and those it sends back, and the request itself;
 * - session-cookies.ts (with cookie-jars.ts, set-cookie.ts): Keycloak's cookies kept per
 *   Nextcloud user behind one cookie of ours;
 * - public-site.ts: the public URL Keycloak is told of, and `Location` headers moved under it;
 * - frame-policy.ts, redirect-page.ts: what lets Nextcloud frame the pages, and the page that
 *   replaces a redirect for the PHP proxy;
 * - proxy-body.ts: how the body goes back (read whole, `Content-Length`, gzip for the PHP proxy).
 *
 * Refusals and failures are thrown as AppError for the app's error handler. A client that goes
 * away is an info line and a 499 in the access log, not an error.
 */
export interface KeycloakProxyOptions {
  /** loopback URL of Keycloak, e.g. http://127.0.0.1:8080 */
  upstream: string
  /** public URL of the proxied prefix, e.g. https://nc/index.php/apps/app_api/proxy/keycloak */
  publicUrl: string
  /** the synced realm, reachable without an admin */
  realm: string
  isAdmin: (uid: string) => Promise<boolean>
  fetch?: typeof fetch
  cookieName?: string
  /** bounds of the cookie jars */
  jars?: JarStoreOptions
  /** answers up to this size are read whole before they are sent (default 32 MiB) */
  maxBufferedBytes?: number
  now?: () => number
}

/** Status for a request whose client went away before the answer (nginx's convention). */
const CLIENT_CLOSED = 499

/** The answer to a client that went away: nobody reads it, so it is no error, only a log line. */
function clientGone(c: Context<AppEnv>, path: string): Response {
  c.get('log')?.info({ path }, 'keycloak.proxy.client_closed')
  return new Response(null, { status: CLIENT_CLOSED })
}

export function keycloakProxy(opts: KeycloakProxyOptions): Hono<AppEnv> {
  const upstream = new URL(opts.upstream)
  const site = publicSite(opts.publicUrl, upstream)
  const doFetch = opts.fetch ?? fetch
  const now = opts.now ?? Date.now
  const maxBuffered = opts.maxBufferedBytes ?? 32 * 1024 * 1024
  const cookies = new SessionCookies({
    jars: new JarStore({ now, ...opts.jars }),
    cookieName: opts.cookieName ?? 'kcx_session',
    prefixPath: site.prefixPath,
    secure: site.secure,
    now,
  })

  const app = new Hono<AppEnv>()
  app.all('*', async (c) => {
    const method = c.req.method.toUpperCase()
    checkMethod(method)
    const url = new URL(c.req.url)
    const path = url.pathname
    const target = upstreamUrl(upstream, url)
    if (accessFor(path, opts.realm) === 'admin') {
      await refuseNonAdmin(c, opts.isAdmin)
    }
    const uid = nextcloudUid(c)
    const request = c.req.raw
    const phpProxy = viaPhpProxy(request.headers)

    const cookieHeader = request.headers.get('cookie') ?? undefined
    const jar = cookies.jarFor(cookieHeader, uid)
    const cookie = cookies.upstreamCookie(cookieHeader, jar, `${site.prefixPath}${path}`)
    const headers = upstreamHeaders(request.headers, site, cookie)
    const res = await askUpstream(doFetch, target, method, headers, request)
    if (!res) {
      return clientGone(c, path)
    }

    const out = responseHeaders(res.headers)
    cookies.keep(res.headers.getSetCookie(), jar, uid, out)
    const location = res.headers.get('location')
    if (location) {
      out.set('location', site.rewriteLocation(location))
    }
    applyFramePolicy(out, res.headers, res.status)

    if (phpProxy && isRedirect(res.status, out)) {
      await res.body?.cancel()
      return redirectPage(out)
    }
    if (method === 'HEAD') {
      await res.body?.cancel()
      return new Response(null, { status: res.status, statusText: res.statusText, headers: out })
    }
    const plan = {
      phpProxy,
      rewritten: phpProxy && extensionOf(path) === 'html',
      maxBuffered,
      signal: request.signal,
    }
    const delivered = await deliver(res, out, plan, () =>
      c.get('log')?.info({ path }, 'keycloak.proxy.client_closed'),
    )
    if (delivered.kind === 'aborted') {
      return clientGone(c, path)
    }
    return new Response(delivered.body as BodyInit | null, {
      status: res.status,
      statusText: res.statusText,
      headers: delivered.headers,
    })
  })
  return app
}
