import type { Context } from 'hono'
import { Hono } from 'hono'
import { nextcloudUid, refuseNonAdmin } from '../http/api-auth.js'
import { errorBody } from '../http/errors.js'
import type { AppEnv } from '../http/types.js'
import { type Jar, JarStore, type JarStoreOptions } from './cookie-jars.js'
import { deliver } from './proxy-body.js'

/**
 * Reverse proxy from Nextcloud's proxies (AppAPI's PHP proxy, HaRP) to Keycloak.
 *
 * - Every method Keycloak knows passes; request bodies stream to Keycloak; answers are read whole
 *   and sent with a `Content-Length` (proxy-body.ts says why and where that stops).
 * - Only Keycloak is ever asked: a path that a URL parser would read as another host (`//host/…`)
 *   is refused.
 * - Never forwards AppAPI's credentials (`AUTHORIZATION-APP-API`, `EX-APP-*`, `AA-*`, HaRP's
 *   routing headers), hop-by-hop headers, empty headers (the PHP proxy behind php-fpm sends an
 *   empty `Content-Type`, which Keycloak answers with 500), Nextcloud's cookies or a Basic
 *   `Authorization` (the PHP proxy forwards the browser's Nextcloud credentials). Bearer tokens
 *   pass: the console needs them.
 * - Keycloak's cookies live server-side in a jar behind one cookie of ours, because the PHP proxy
 *   keeps only the first `Set-Cookie` of a response (cookie-jars.ts bounds them). A jar belongs to
 *   one Nextcloud user. The one cookie keycloak-js reads in the browser (`KEYCLOAK_SESSION`) is
 *   also handed over, one `Set-Cookie` per response.
 * - `X-Forwarded-Proto/Host/Prefix` name the public URL, so Keycloak builds public URLs even when
 *   it runs without a fixed `hostname`; `Location` headers pointing at the loopback upstream or at
 *   a root-relative path are moved under the public prefix. The PHP proxy (told apart by the
 *   `X-Origin-IP` header only it sets) would follow a redirect itself, so it gets a page that
 *   sends the browser on instead.
 * - Framing: responses without a CSP get `frame-ancestors 'self'` (otherwise the PHP proxy adds a
 *   deny-all CSP); a CSP with `frame-ancestors 'none'` or `X-Frame-Options: DENY` is relaxed to
 *   same-origin. Keycloak's own default (`frame-ancestors 'self'`, SAMEORIGIN) is left alone.
 * - Access: the synced realm (`/realms/<realm>/…`) and `/resources/…` are open to anyone the
 *   Nextcloud route lets through; everything else (console, master realm, admin REST API) needs
 *   a Nextcloud admin.
 * - A client that goes away is an info line and a 499 in the access log, not an error.
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

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Request headers that never reach Keycloak (besides hop-by-hop ones and AA-*, EX-APP-*). */
const DROPPED_REQUEST = new Set([
  'host',
  'content-length',
  'cookie',
  'authorization-app-api',
  'harp-shared-key',
  'x-origin-ip',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'accept-encoding',
])

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** Cookies a browser sets for Keycloak itself (e.g. the console's 3rd-party cookie check). */
const KEYCLOAK_COOKIE = /^(?:KEYCLOAK_|KC_|AUTH_SESSION_ID)/

/**
 * Cookies the browser must see as well: keycloak-js's login-status iframe reads
 * `KEYCLOAK_SESSION` (a hash of the session id, not a credential; Keycloak sends it without
 * HttpOnly for that reason). Without it the console decides the session ended and logs in again,
 * over and over. `KEYCLOAK_IDENTITY`, the credential, stays in the jar.
 */
const MIRRORED = new Set(['KEYCLOAK_SESSION'])

/** A mirrored cookie as the browser gets it: under the public prefix, no Domain. */
export function mirroredCookie(raw: string, prefixPath: string): string {
  const [pair = '', ...attrs] = raw.split(';')
  const kept = attrs
    .map((a) => a.trim())
    .filter((a) => a !== '' && !/^(?:domain|path)\s*=/i.test(a))
  const path = parseSetCookie(raw)?.path ?? '/'
  const publicPath =
    prefixPath && path !== prefixPath && !path.startsWith(`${prefixPath}/`)
      ? `${prefixPath}${path}`
      : path
  return [pair.trim(), `Path=${publicPath}`, ...kept].join('; ')
}

export interface ParsedSetCookie {
  name: string
  value: string
  path?: string
  maxAge?: number
  expires?: number
}

/** Parses one `Set-Cookie` value (only the attributes the jar needs). */
export function parseSetCookie(header: string): ParsedSetCookie | undefined {
  const [pair, ...attrs] = header.split(';')
  const eq = pair?.indexOf('=') ?? -1
  if (!pair || eq <= 0) {
    return undefined
  }
  const out: ParsedSetCookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim() }
  for (const attr of attrs) {
    const i = attr.indexOf('=')
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase()
    const val = i < 0 ? '' : attr.slice(i + 1).trim()
    if (key === 'path' && val.startsWith('/')) {
      out.path = val
    } else if (key === 'max-age' && /^-?\d+$/.test(val)) {
      out.maxAge = Number(val)
    } else if (key === 'expires') {
      const t = Date.parse(val)
      if (!Number.isNaN(t)) {
        out.expires = t
      }
    }
  }
  return out
}

function pathMatches(cookiePath: string, requestPath: string): boolean {
  if (requestPath === cookiePath || cookiePath === '/') {
    return true
  }
  const base = cookiePath.endsWith('/') ? cookiePath : `${cookiePath}/`
  return requestPath.startsWith(base) || `${requestPath}/` === base
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) {
      return part.slice(i + 1).trim()
    }
  }
  return undefined
}

/** Access rule: 'public' paths go to anyone the Nextcloud route lets through. */
export function accessFor(path: string, realm: string): 'public' | 'admin' {
  if (path.startsWith('/resources/')) {
    return 'public'
  }
  const m = /^\/realms\/([^/]+)(?:\/|$)/.exec(path)
  if (m && m[1] === realm && realm.toLowerCase() !== 'master') {
    return 'public'
  }
  return 'admin'
}

/** Replaces or adds frame-ancestors so Nextcloud (same origin) may frame the page. */
function frameableCsp(csp: string | null): string {
  if (!csp) {
    return "frame-ancestors 'self'"
  }
  return csp.replace(/frame-ancestors\s+'none'/i, "frame-ancestors 'self'")
}

/** Text safe inside HTML content and quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

/** `pathinfo($path, PATHINFO_EXTENSION)` as AppAPI uses it to decide on its `.html` rewrite. */
export function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot < 0 ? '' : base.slice(dot + 1)
}

/** AppAPI's PHP proxy sets `X-Origin-IP` on everything it forwards; HaRP and direct callers do not. */
export function viaPhpProxy(c: Context<AppEnv>): boolean {
  return c.req.header('x-origin-ip') !== undefined
}

/** Status for a request whose client went away before the answer (nginx's convention). */
const CLIENT_CLOSED = 499

export function keycloakProxy(opts: KeycloakProxyOptions): Hono<AppEnv> {
  const upstream = new URL(opts.upstream)
  const publicUrl = new URL(opts.publicUrl.replace(/\/+$/, ''))
  const prefixPath = publicUrl.pathname.replace(/\/+$/, '')
  const publicBase = `${publicUrl.origin}${prefixPath}`
  const cookieName = opts.cookieName ?? 'kcx_session'
  const secure = publicUrl.protocol === 'https:'
  const doFetch = opts.fetch ?? fetch
  const now = opts.now ?? Date.now
  const maxBuffered = opts.maxBufferedBytes ?? 32 * 1024 * 1024
  const jars = new JarStore({ now, ...opts.jars })

  const rewriteLocation = (location: string): string => {
    if (location.startsWith('/') && !location.startsWith('//')) {
      return location === prefixPath || location.startsWith(`${prefixPath}/`)
        ? `${publicUrl.origin}${location}`
        : `${publicBase}${location}`
    }
    try {
      const u = new URL(location)
      if (u.origin === upstream.origin) {
        return `${publicBase}${u.pathname}${u.search}${u.hash}`
      }
    } catch {
      // not a URL we know: leave it
    }
    return location
  }

  const clientGone = (c: Context<AppEnv>, path: string) => {
    c.get('log')?.info({ path }, 'keycloak.proxy.client_closed')
    return new Response(null, { status: CLIENT_CLOSED })
  }

  const app = new Hono<AppEnv>()
  app.all('*', async (c) => {
    const method = c.req.method.toUpperCase()
    if (!METHODS.has(method)) {
      return c.json(errorBody(c, 'INVALID_INPUT', `method ${method} is not proxied`), 405)
    }
    const url = new URL(c.req.url)
    const path = url.pathname
    // Dot segments are already resolved by the URL parser; encoded separators and dots are not,
    // and Keycloak might decode them into another realm. A path starting with `//` would name
    // another host to a URL parser.
    if (path.startsWith('//') || /%2e|%2f|%5c|\\/i.test(path) || path.split('/').includes('..')) {
      return c.json(errorBody(c, 'INVALID_INPUT', 'path not allowed'), 400)
    }
    const target = new URL(`${upstream.origin}${path}${url.search}`)
    if (target.origin !== upstream.origin) {
      return c.json(errorBody(c, 'INVALID_INPUT', 'path not allowed'), 400)
    }
    if (accessFor(path, opts.realm) === 'admin') {
      const refused = await refuseNonAdmin(c, opts.isAdmin)
      if (refused) {
        return refused
      }
    }
    const uid = nextcloudUid(c)
    const phpProxy = viaPhpProxy(c)

    // The jar, if the browser has one and it belongs to the same Nextcloud user.
    const incomingCookies = c.req.header('cookie')
    let jar: Jar | undefined = jars.get(readCookie(incomingCookies, cookieName), uid)

    const headers = new Headers()
    const connectionTokens = new Set(
      (c.req.header('connection') ?? '')
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean),
    )
    c.req.raw.headers.forEach((value, key) => {
      const k = key.toLowerCase()
      if (
        value.trim() === '' ||
        HOP_BY_HOP.has(k) ||
        DROPPED_REQUEST.has(k) ||
        connectionTokens.has(k) ||
        k.startsWith('aa-') ||
        k.startsWith('ex-app-')
      ) {
        return
      }
      if (k === 'authorization' && !/^bearer\s/i.test(value)) {
        return
      }
      headers.set(k, value)
    })
    headers.set('accept-encoding', 'identity')
    headers.set('x-forwarded-proto', publicUrl.protocol.replace(':', ''))
    headers.set('x-forwarded-host', publicUrl.host)
    if (publicUrl.port) {
      headers.set('x-forwarded-port', publicUrl.port)
    }
    if (prefixPath) {
      headers.set('x-forwarded-prefix', prefixPath)
    }
    const publicPath = `${prefixPath}${path}`
    const sent = new Map<string, string>()
    for (const part of (incomingCookies ?? '').split(';')) {
      const i = part.indexOf('=')
      const name = i > 0 ? part.slice(0, i).trim() : ''
      if (KEYCLOAK_COOKIE.test(name)) {
        sent.set(name, part.slice(i + 1).trim())
      }
    }
    if (jar) {
      const t = now()
      for (const [key, ck] of jar.cookies) {
        if (ck.expires !== undefined && ck.expires <= t) {
          jar.cookies.delete(key)
          continue
        }
        if (pathMatches(ck.path, publicPath)) {
          sent.set(key.slice(key.indexOf(' ') + 1), ck.value)
        }
      }
    }
    if (sent.size > 0) {
      headers.set('cookie', [...sent].map(([k, v]) => `${k}=${v}`).join('; '))
    }

    const hasBody = method !== 'GET' && method !== 'HEAD'
    const signal = c.req.raw.signal
    let res: Response
    try {
      res = await doFetch(target, {
        method,
        headers,
        body: hasBody ? c.req.raw.body : undefined,
        redirect: 'manual',
        signal,
        ...(hasBody ? { duplex: 'half' } : {}),
      } as RequestInit)
    } catch (err) {
      if (signal.aborted) {
        return clientGone(c, path)
      }
      c.get('log')?.warn({ err, path }, 'keycloak.proxy.upstream_failed')
      c.set('errorCode', 'KEYCLOAK_UNAVAILABLE')
      return c.json(errorBody(c, 'KEYCLOAK_UNAVAILABLE', 'Keycloak is not reachable'), 502)
    }

    const out = new Headers()
    const responseConnection = new Set(
      (res.headers.get('connection') ?? '').split(',').map((t) => t.trim().toLowerCase()),
    )
    res.headers.forEach((value, key) => {
      const k = key.toLowerCase()
      if (HOP_BY_HOP.has(k) || responseConnection.has(k) || k === 'set-cookie') {
        return
      }
      out.set(k, value)
    })

    const parsed = res.headers
      .getSetCookie()
      .map((raw) => ({ raw, ck: parseSetCookie(raw) }))
      .filter((p): p is { raw: string; ck: ParsedSetCookie } => p.ck !== undefined)
    const expiryOf = (ck: ParsedSetCookie) =>
      ck.maxAge !== undefined ? now() + ck.maxAge * 1000 : ck.expires
    const keeps = (ck: ParsedSetCookie) => {
      const expires = expiryOf(ck)
      return ck.value !== '' && (expires === undefined || expires > now())
    }
    // A jar only for a cookie worth keeping: deletions alone create nothing.
    if (!jar && parsed.some(({ ck }) => keeps(ck))) {
      const created = jars.create(uid)
      jar = created.jar
      out.append(
        'set-cookie',
        `${cookieName}=${created.id}; Path=${prefixPath || '/'}/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      )
    }
    if (jar) {
      for (const { raw, ck } of parsed) {
        const cpath = ck.path ?? '/'
        const key = `${cpath} ${ck.name}`
        jar.cookies.delete(key)
        if (keeps(ck)) {
          if (jar.cookies.size >= jars.cookiesPerJar) {
            const oldest = jar.cookies.keys().next().value
            if (oldest !== undefined) {
              jar.cookies.delete(oldest)
            }
          }
          jar.cookies.set(key, { value: ck.value, path: cpath, expires: expiryOf(ck) })
        }
        if (MIRRORED.has(ck.name)) {
          jar.pending.set(ck.name, mirroredCookie(raw, prefixPath))
        }
      }
    }
    // The PHP proxy passes one Set-Cookie per response: ours first, a mirrored one next time.
    const [mirrorName, mirror] = jar?.pending.entries().next().value ?? []
    if (jar && mirrorName && mirror && !out.has('set-cookie')) {
      out.append('set-cookie', mirror)
      jar.pending.delete(mirrorName)
    }

    const location = res.headers.get('location')
    if (location) {
      out.set('location', rewriteLocation(location))
    }

    const contentType = res.headers.get('content-type') ?? ''
    if (contentType.startsWith('text/html') || !res.headers.has('content-security-policy')) {
      out.set('content-security-policy', frameableCsp(res.headers.get('content-security-policy')))
    }
    if (/^\s*deny\s*$/i.test(res.headers.get('x-frame-options') ?? '')) {
      out.set('x-frame-options', 'SAMEORIGIN')
    }
    if (!out.has('cache-control') && res.status !== 200) {
      out.set('cache-control', 'no-store')
    }

    if (phpProxy && res.status >= 300 && res.status < 400 && out.has('location')) {
      // Guzzle in the PHP proxy would follow the redirect itself, without the browser's
      // Nextcloud session, and hand the browser the wrong page; a page redirects the browser.
      await res.body?.cancel()
      const page = escapeHtml(out.get('location') as string)
      out.delete('location')
      out.delete('content-length')
      out.set('content-type', 'text/html; charset=utf-8')
      out.set('cache-control', 'no-store')
      out.set('content-security-policy', "default-src 'none'; frame-ancestors 'self'")
      return new Response(
        `<!doctype html><meta http-equiv="refresh" content="0;url=${page}"><a href="${page}">Continue</a>`,
        { status: 200, headers: out },
      )
    }

    if (method === 'HEAD') {
      await res.body?.cancel()
      return new Response(null, { status: res.status, statusText: res.statusText, headers: out })
    }
    let delivered: Awaited<ReturnType<typeof deliver>>
    try {
      delivered = await deliver(
        res,
        out,
        {
          phpProxy,
          rewritten: phpProxy && extensionOf(path) === 'html',
          maxBuffered,
          signal,
        },
        () => c.get('log')?.info({ path }, 'keycloak.proxy.client_closed'),
      )
    } catch (err) {
      c.get('log')?.warn({ err, path }, 'keycloak.proxy.upstream_failed')
      c.set('errorCode', 'KEYCLOAK_UNAVAILABLE')
      return c.json(errorBody(c, 'KEYCLOAK_UNAVAILABLE', 'Keycloak broke off its answer'), 502)
    }
    if (delivered.kind === 'aborted') {
      return clientGone(c, path)
    }
    if (delivered.kind === 'too-large') {
      c.get('log')?.warn({ path, maxBuffered }, 'keycloak.proxy.answer_too_large')
      c.set('errorCode', 'KEYCLOAK_UNAVAILABLE')
      return c.json(
        errorBody(
          c,
          'KEYCLOAK_UNAVAILABLE',
          "Keycloak's answer is too large for Nextcloud's proxy",
        ),
        502,
      )
    }
    return new Response(delivered.body as BodyInit | null, {
      status: res.status,
      statusText: res.statusText,
      headers: delivered.headers,
    })
  })
  return app
}
