import { randomBytes } from 'node:crypto'
import { Hono } from 'hono'
import { nextcloudUid, refuseNonAdmin } from '../http/api-auth.js'
import { errorBody } from '../http/errors.js'
import type { AppEnv } from '../http/types.js'

/**
 * Reverse proxy from Nextcloud's proxies (AppAPI's PHP proxy, HaRP) to Keycloak.
 *
 * - Streams bodies both ways; every method Keycloak knows passes.
 * - Never forwards AppAPI's credentials (`AUTHORIZATION-APP-API`, `EX-APP-*`, `AA-*`, HaRP's
 *   routing headers), hop-by-hop headers, Nextcloud's cookies or a Basic `Authorization` (the PHP
 *   proxy forwards the browser's Nextcloud credentials). Bearer tokens pass: the console needs them.
 * - Keycloak's cookies live server-side in a jar behind one cookie of ours, because the PHP proxy
 *   keeps only the first `Set-Cookie` of a response. A jar belongs to one Nextcloud user. The
 *   one cookie keycloak-js reads in the browser (`KEYCLOAK_SESSION`) is also handed over, one
 *   `Set-Cookie` per response.
 * - `X-Forwarded-Proto/Host/Prefix` name the public URL, so Keycloak builds public URLs even when
 *   it runs without a fixed `hostname`; `Location` headers pointing at the loopback upstream or at
 *   a root-relative path are moved under the public prefix.
 * - Framing: responses without a CSP get `frame-ancestors 'self'` (otherwise the PHP proxy adds a
 *   deny-all CSP); a CSP with `frame-ancestors 'none'` or `X-Frame-Options: DENY` is relaxed to
 *   same-origin. Keycloak's own default (`frame-ancestors 'self'`, SAMEORIGIN) is left alone.
 * - Access: the synced realm (`/realms/<realm>/…`) and `/resources/…` are open to anyone the
 *   Nextcloud route lets through; everything else (console, master realm, admin REST API) needs
 *   a Nextcloud admin.
 */
export interface KeycloakProxyOptions {
  /** loopback URL of Keycloak, e.g. http://127.0.0.1:8080 */
  upstream: string
  /** public URL of the proxied prefix, e.g. https://nc/index.php/apps/app_api/proxy/keycloak */
  publicUrl: string
  /** the synced realm, reachable without an admin */
  realm: string
  isAdmin: (uid: string) => Promise<boolean>
  /** AppAPI's PHP proxy follows redirects server-side; answer them with a page instead */
  redirectsAsPage?: boolean
  fetch?: typeof fetch
  cookieName?: string
  /** idle lifetime of a cookie jar */
  jarIdleMs?: number
  maxJars?: number
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

interface JarCookie {
  value: string
  path: string
  expires?: number
}

interface Jar {
  uid: string
  cookies: Map<string, JarCookie>
  /** mirrored cookies still to hand to the browser, by name (one per response) */
  pending: Map<string, string>
  lastUsed: number
}

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

export function keycloakProxy(opts: KeycloakProxyOptions): Hono<AppEnv> {
  const upstream = new URL(opts.upstream)
  const publicUrl = new URL(opts.publicUrl.replace(/\/+$/, ''))
  const prefixPath = publicUrl.pathname.replace(/\/+$/, '')
  const publicBase = `${publicUrl.origin}${prefixPath}`
  const cookieName = opts.cookieName ?? 'kcx_session'
  const secure = publicUrl.protocol === 'https:'
  const doFetch = opts.fetch ?? fetch
  const now = opts.now ?? Date.now
  const idleMs = opts.jarIdleMs ?? 12 * 3600_000
  const maxJars = opts.maxJars ?? 10_000
  const jars = new Map<string, Jar>()

  const evict = () => {
    const t = now()
    for (const [id, jar] of jars) {
      if (t - jar.lastUsed > idleMs) {
        jars.delete(id)
      }
    }
    // Map keeps insertion order; touched jars are re-inserted, so the first is the stalest.
    while (jars.size > maxJars) {
      const first = jars.keys().next().value
      if (first === undefined) {
        break
      }
      jars.delete(first)
    }
  }

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

  const app = new Hono<AppEnv>()
  app.all('*', async (c) => {
    const method = c.req.method.toUpperCase()
    if (!METHODS.has(method)) {
      return c.json(errorBody(c, 'INVALID_INPUT', `method ${method} is not proxied`), 405)
    }
    const url = new URL(c.req.url)
    const path = url.pathname
    // Dot segments are already resolved by the URL parser; encoded separators and dots are not,
    // and Keycloak might decode them into another realm.
    if (/%2e|%2f|%5c|\\/i.test(path) || path.split('/').includes('..')) {
      return c.json(errorBody(c, 'INVALID_INPUT', 'path not allowed'), 400)
    }
    if (accessFor(path, opts.realm) === 'admin') {
      const refused = await refuseNonAdmin(c, opts.isAdmin)
      if (refused) {
        return refused
      }
    }
    const uid = nextcloudUid(c)

    // The jar, if the browser has one and it belongs to the same Nextcloud user.
    const incomingCookies = c.req.header('cookie')
    let jarId = readCookie(incomingCookies, cookieName)
    let jar = jarId ? jars.get(jarId) : undefined
    if (jar && jar.uid !== uid) {
      jar = undefined
    }
    if (jar && jarId) {
      jar.lastUsed = now()
      jars.delete(jarId)
      jars.set(jarId, jar)
    }

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
    let res: Response
    try {
      res = await doFetch(new URL(`${path}${url.search}`, upstream), {
        method,
        headers,
        body: hasBody ? c.req.raw.body : undefined,
        redirect: 'manual',
        signal: c.req.raw.signal,
        ...(hasBody ? { duplex: 'half' } : {}),
      } as RequestInit)
    } catch (err) {
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

    const setCookies = res.headers.getSetCookie()
    if (setCookies.length > 0) {
      if (!jar) {
        evict()
        jarId = randomBytes(32).toString('base64url')
        jar = { uid, cookies: new Map(), pending: new Map(), lastUsed: now() }
        jars.set(jarId, jar)
        out.append(
          'set-cookie',
          `${cookieName}=${jarId}; Path=${prefixPath || '/'}/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
        )
      }
      for (const raw of setCookies) {
        const ck = parseSetCookie(raw)
        if (!ck) {
          continue
        }
        const cpath = ck.path ?? '/'
        const key = `${cpath} ${ck.name}`
        const expires =
          ck.maxAge !== undefined ? now() + ck.maxAge * 1000 : (ck.expires ?? undefined)
        if ((expires !== undefined && expires <= now()) || ck.value === '') {
          jar.cookies.delete(key)
        } else {
          jar.cookies.set(key, { value: ck.value, path: cpath, expires })
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

    if (opts.redirectsAsPage && res.status >= 300 && res.status < 400 && out.has('location')) {
      // Guzzle in the PHP proxy would follow the redirect itself, without the browser's
      // Nextcloud session, and hand the browser the wrong page; a page redirects the browser.
      await res.body?.cancel()
      const target = escapeHtml(out.get('location') as string)
      out.delete('location')
      out.delete('content-length')
      out.set('content-type', 'text/html; charset=utf-8')
      out.set('cache-control', 'no-store')
      out.set('content-security-policy', "default-src 'none'; frame-ancestors 'self'")
      return new Response(
        `<!doctype html><meta http-equiv="refresh" content="0;url=${target}"><a href="${target}">Continue</a>`,
        { status: 200, headers: out },
      )
    }

    return new Response(method === 'HEAD' ? null : res.body, {
      status: res.status,
      statusText: res.statusText,
      headers: out,
    })
  })
  return app
}
