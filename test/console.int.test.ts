import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { join, resolve } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import type { Lifecycle } from '../src/appapi/lifecycle.js'
import { acceptEmptyContentLength } from '../src/http/empty-content-length.js'
import type { AppEnv } from '../src/http/types.js'
import type { KeycloakRuntime } from '../src/keycloak/runtime.js'
import { createLogger } from '../src/log.js'
import { keycloakProxy } from '../src/proxy/proxy.js'
import { startHarpProxy } from './harp-proxy.js'
import {
  closeServer,
  listenOn,
  type RunningTestProxy,
  requestPath,
  routesFromInfoXml,
  startPhpProxy,
  type TestProxyOptions,
} from './php-proxy.js'
import { type ProxiedKeycloak, startProxiedKeycloak } from './proxied-keycloak.js'

/**
 * The Keycloak admin console through both of Nextcloud's entry points: the PHP proxy (one
 * Set-Cookie per response, GET/POST/PUT/DELETE only, redirects followed server-side, headers
 * copied onto a decoded body; behind Apache and behind nginx) and HaRP.
 *
 * One Keycloak of our own serves both prefixes: it runs without a fixed `hostname` and takes the
 * public URL from the X-Forwarded-Proto/Host/Prefix headers our proxy sets (26.6+ honours the
 * prefix), which is why the shared Keycloak (hostname http://127.0.0.1:<port>) is not used here.
 */
const KC_PORT = 28880
/**
 * CONSOLE_TEST_FIXED_HOSTNAME=1 runs the production settings instead (`--hostname` = the PHP
 * proxy's public URL on a fixed port, backchannel dynamic) through the PHP proxy only.
 */
const FIXED = process.env.CONSOLE_TEST_FIXED_HOSTNAME === '1'
const PHP_PORT = 28881
const SIDES = FIXED ? (['php'] as const) : (['php', 'php-nginx', 'harp'] as const)
const ROOT = resolve(import.meta.dirname, '..')
const REALM = 'commonground'

/** A cookie-carrying HTTP client that follows redirects and meta-refresh pages like a browser. */
class Browser {
  private jar = new Map<string, { value: string; path: string; origin: string }>()
  constructor(initial: Record<string, string> = {}, origin = '') {
    for (const [k, v] of Object.entries(initial)) {
      this.jar.set(`${origin} / ${k}`, { value: v, path: '/', origin })
    }
  }

  setCookie(origin: string, name: string, value: string) {
    this.jar.set(`${origin} / ${name}`, { value, path: '/', origin })
  }

  cookieNames(): string[] {
    return [...this.jar.keys()].map((k) => k.split(' ').pop() as string)
  }

  private cookieHeader(url: URL): string {
    return [...this.jar.entries()]
      .filter(([key, c]) => {
        const name = key.split(' ').pop()
        return (
          c.origin === url.origin &&
          name &&
          (url.pathname === c.path ||
            url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
        )
      })
      .map(([key, c]) => `${key.split(' ').pop()}=${c.value}`)
      .join('; ')
  }

  private store(url: URL, setCookies: string[]) {
    for (const raw of setCookies) {
      const [pair = '', ...attrs] = raw.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = '/'
      let expired = false
      for (const a of attrs) {
        const [k = '', v = ''] = a.split('=')
        if (k.trim().toLowerCase() === 'path') {
          path = v.trim()
        }
        if (k.trim().toLowerCase() === 'max-age' && Number(v) <= 0) {
          expired = true
        }
      }
      const key = `${url.origin} ${path} ${name}`
      if (expired) {
        this.jar.delete(key)
      } else {
        this.jar.set(key, { value, path, origin: url.origin })
      }
    }
  }

  /** One request, no redirect handling. */
  async raw(url: string, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url)
    const headers = new Headers(init.headers)
    const cookie = this.cookieHeader(u)
    if (cookie) {
      headers.set('cookie', cookie)
    }
    const res = await fetch(u, { ...init, headers, redirect: 'manual' })
    this.store(u, res.headers.getSetCookie())
    return res
  }

  /** Follows 3xx and meta-refresh pages; returns the last response, its URL and its body. */
  async go(
    url: string,
    init: RequestInit = {},
  ): Promise<{ res: Response; url: string; body: string }> {
    let current = url
    let req = init
    for (let hop = 0; hop < 10; hop++) {
      const res = await this.raw(current, req)
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer()
        current = new URL(location, current).href
        req = {}
        if (stopAt(current)) {
          return { res, url: current, body: '' }
        }
        continue
      }
      const body = await res.text()
      const refresh = /<meta http-equiv="refresh" content="0;url=([^"]+)"/i.exec(body)
      if (refresh?.[1]) {
        current = new URL(unescapeHtml(refresh[1]), current).href
        req = {}
        if (stopAt(current)) {
          return { res, url: current, body }
        }
        continue
      }
      return { res, url: current, body }
    }
    throw new Error(`too many redirects from ${url}`)
  }
}

/** The OIDC redirect back to the console carries the code; a browser would run the console JS. */
function stopAt(url: string): boolean {
  return /[?#&]code=/.test(url)
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&quot;/g, '"')
}

interface Side {
  name: (typeof SIDES)[number]
  proxy: RunningTestProxy
  exapp: Server
  /** status a non-admin or anonymous caller gets for admin-only paths */
  denied: number
}

describe('Keycloak admin console through the Nextcloud proxies', () => {
  let keycloak: ProxiedKeycloak
  let password: string
  let kcUrl: string
  let appApi: Record<string, string> = {}
  const sides: Side[] = []
  const started = Date.now()

  beforeAll(async () => {
    const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' })
    keycloak = await startProxiedKeycloak({
      port: KC_PORT,
      ...(FIXED
        ? { hostname: `http://127.0.0.1:${PHP_PORT}/index.php/apps/app_api/proxy/keycloak` }
        : {}),
    })
    const { config } = keycloak
    password = keycloak.password
    kcUrl = keycloak.url
    appApi = {
      'ex-app-id': config.app.id,
      'ex-app-version': '1.0.0',
      'authorization-app-api': Buffer.from(`:${config.app.secret}`).toString('base64'),
    }

    // The synced realm with one user, as the sync would leave it.
    const auth = {
      authorization: `Bearer ${await keycloak.adminToken()}`,
      'content-type': 'application/json',
    }
    const realm = await fetch(`${kcUrl}/admin/realms`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ realm: REALM, enabled: true }),
    })
    expect([201, 409]).toContain(realm.status)
    const user = await fetch(`${kcUrl}/admin/realms/${REALM}/users`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ username: 'alice', enabled: true, email: 'alice@example.com' }),
    })
    expect([201, 409]).toContain(user.status)

    const routes = routesFromInfoXml(join(ROOT, 'appinfo', 'info.xml'))
    const users = { admin: { admin: true }, alice: { admin: false } }
    const starters = {
      php: (o: TestProxyOptions) => startPhpProxy(o),
      'php-nginx': (o: TestProxyOptions) => startPhpProxy({ ...o, server: 'nginx' }),
      harp: (o: TestProxyOptions) => startHarpProxy(o),
    }
    for (const [name, denied] of [
      ['php', 404],
      ['php-nginx', 404],
      ['harp', 403],
    ] as const) {
      if (!(SIDES as readonly string[]).includes(name)) {
        continue
      }
      // The ExApp first (the proxy needs its address), its app once the public URL is known.
      let app: Hono<AppEnv> | undefined
      const exapp = createServer(getRequestListener((req) => (app as Hono<AppEnv>).fetch(req)))
      // As listen() serves the app: requests with an empty Content-Length (nginx) get through.
      acceptEmptyContentLength(exapp)
      const target = await listenOn(exapp)
      const proxy = await starters[name]({
        target,
        appId: config.app.id,
        appSecret: config.app.secret,
        routes,
        users,
        port: FIXED && name === 'php' ? PHP_PORT : 0,
      })
      const isAdmin = async (uid: string) => users[uid as keyof typeof users]?.admin ?? false
      const ui = keycloakProxy({
        upstream: kcUrl,
        publicUrl: proxy.publicUrl,
        realm: REALM,
        isAdmin,
      })
      app = createApp({
        config,
        isAdmin,
        log,
        keycloak: { status: () => 'ready' } as unknown as KeycloakRuntime,
        lifecycle: {} as Lifecycle,
        ui,
      })
      sides.push({ name, proxy, exapp, denied })
    }
    console.log(`console test setup in ${Math.round((Date.now() - started) / 1000)} s`)
  })

  afterAll(async () => {
    for (const s of sides) {
      await s.proxy.close()
      await closeServer(s.exapp)
    }
    await keycloak?.stop()
    console.log(`console test total ${Math.round((Date.now() - started) / 1000)} s`)
  })

  const side = (name: Side['name']) => sides.find((s) => s.name === name) as Side

  describe.each(SIDES)('through the %s proxy', (name) => {
    it('lets an admin open the console, log in and list the realm users', async () => {
      const { proxy } = side(name)
      const base = proxy.publicUrl
      const browser = new Browser()
      browser.setCookie(proxy.origin, 'nc_session_id', 'admin')

      // The console page, its assets under the prefix.
      const page = await browser.go(`${base}/admin/master/console/`)
      expect(page.res.status).toBe(200)
      expect(page.res.headers.get('content-type')).toMatch(/text\/html/)
      expect(page.res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'self'/)
      const prefixPath = new URL(base).pathname
      const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
      expect(refs.length).toBeGreaterThan(0)
      for (const ref of refs) {
        if (ref.startsWith('/')) {
          expect(ref.startsWith(`${prefixPath}/`), ref).toBe(true)
        } else if (/^https?:/.test(ref)) {
          expect(ref.startsWith(`${base}/`), ref).toBe(true)
        }
      }
      expect(page.body).toContain(`${base}`)
      // Every script and style of the page, and the pages keycloak-js frames, arrive whole: the
      // same bytes as from Keycloak itself (the PHP proxy adds nonces to `.html` pages).
      const files = refs
        .filter((r) => /\.(?:js|css)$/.test(r))
        .concat(
          '/realms/master/protocol/openid-connect/3p-cookies/step1.html',
          '/realms/master/protocol/openid-connect/login-status-iframe.html',
        )
      expect(files.filter((f) => /\/main-[^/]+\.(?:js|css)$/.test(f))).toHaveLength(2)
      for (const ref of files) {
        const url = new URL(ref.startsWith(prefixPath) ? ref : `${prefixPath}${ref}`, base)
        const direct = await fetch(`${kcUrl}${url.pathname.slice(prefixPath.length)}`, {
          headers: {
            'x-forwarded-proto': 'http',
            'x-forwarded-host': url.host,
            'x-forwarded-prefix': prefixPath,
          },
        })
        const want = await direct.text()
        const asset = await browser.raw(url.href)
        expect(asset.status, ref).toBe(200)
        const got = (await asset.text()).replace(/<script nonce="[^"]*"/g, '<script')
        expect(got.length, ref).toBe(want.length)
        expect(got === want, ref).toBe(true)
      }

      // What the console's keycloak-js does: authorization code flow with PKCE.
      const verifier = randomBytes(32).toString('base64url')
      const challenge = createHash('sha256').update(verifier).digest('base64url')
      const redirectUri = `${base}/admin/master/console/`
      const auth = new URL(`${base}/realms/master/protocol/openid-connect/auth`)
      auth.search = new URLSearchParams({
        client_id: 'security-admin-console',
        redirect_uri: redirectUri,
        response_type: 'code',
        response_mode: 'fragment',
        scope: 'openid',
        state: 's1',
        nonce: 'n1',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }).toString()
      const login = await browser.go(auth.href)
      expect(login.res.status).toBe(200)
      const action = /<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"/.exec(login.body)?.[1]
      expect(action, login.body.slice(0, 500)).toBeTruthy()
      const actionUrl = unescapeHtml(action as string)
      expect(actionUrl.startsWith(`${base}/realms/master/login-actions/`)).toBe(true)
      // Only what the proxy let through: our one cookie, no Keycloak cookie.
      expect(browser.cookieNames().sort()).toEqual(['kcx_session', 'nc_session_id'])

      const done = await browser.go(actionUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: keycloak.admin, password, credentialId: '' }),
      })
      expect(done.url.startsWith(redirectUri), done.url).toBe(true)
      const fragment = new URLSearchParams(new URL(done.url).hash.slice(1))
      const code = fragment.get('code')
      expect(code).toBeTruthy()

      const token = await browser.raw(`${base}/realms/master/protocol/openid-connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: 'security-admin-console',
          code: code as string,
          redirect_uri: redirectUri,
          code_verifier: verifier,
        }),
      })
      expect(token.status).toBe(200)
      const { access_token } = (await token.json()) as { access_token: string }
      const claims = JSON.parse(
        Buffer.from(access_token.split('.')[1] as string, 'base64url').toString(),
      ) as { iss: string }
      expect(claims.iss).toBe(`${base}/realms/master`)

      const list = await browser.raw(`${base}/admin/realms/${REALM}/users`, {
        headers: { authorization: `Bearer ${access_token}`, accept: 'application/json' },
      })
      expect(list.status).toBe(200)
      const found = (await list.json()) as { username: string }[]
      expect(found.map((u) => u.username)).toContain('alice')
    })

    it('gives a non-admin and an anonymous caller no console and no master realm', async () => {
      const { proxy, denied } = side(name)
      const alice = new Browser()
      alice.setCookie(proxy.origin, 'nc_session_id', 'alice')
      const anon = new Browser()
      for (const b of [alice, anon]) {
        const res = await b.raw(`${proxy.publicUrl}/admin/master/console/`)
        expect(res.status).toBe(denied)
        await res.arrayBuffer()
      }
      const master = await anon.raw(
        `${proxy.publicUrl}/realms/master/.well-known/openid-configuration`,
      )
      expect(master.status).toBe(denied)
      await master.arrayBuffer()
    })

    it('serves the realm discovery document anonymously, with URLs under the prefix', async () => {
      const { proxy } = side(name)
      const res = await new Browser().raw(
        `${proxy.publicUrl}/realms/${REALM}/.well-known/openid-configuration`,
      )
      expect(res.status).toBe(200)
      const doc = (await res.json()) as Record<string, unknown>
      expect(doc.issuer).toBe(`${proxy.publicUrl}/realms/${REALM}`)
      for (const key of [
        'authorization_endpoint',
        'token_endpoint',
        'jwks_uri',
        'end_session_endpoint',
      ]) {
        expect(String(doc[key]).startsWith(`${proxy.publicUrl}/realms/${REALM}/`), key).toBe(true)
      }
      const jwks = await new Browser().raw(String(doc.jwks_uri))
      expect(jwks.status).toBe(200)
      await jwks.arrayBuffer()
    })

    it('answers traversal, oversized headers and odd methods with 4xx, never 5xx', async () => {
      const { proxy } = side(name)
      const base = proxy.publicUrl
      const rawRequest = async (path: string, method = 'GET', headers = {}) =>
        (await requestPath(proxy.origin, path, method, headers)).status
      const prefix = new URL(base).pathname
      const statuses: Record<string, number> = {
        dots: await rawRequest(
          `${prefix}/realms/${REALM}/../master/.well-known/openid-configuration`,
        ),
        encoded: await rawRequest(
          `${prefix}/realms/${REALM}/%2e%2e/master/.well-known/openid-configuration`,
        ),
        encodedUpper: await rawRequest(
          `${prefix}/realms/${REALM}/%2E%2E/master/.well-known/openid-configuration`,
        ),
        slash: await rawRequest(`${prefix}/realms/${REALM}%2f..%2fmaster/protocol`),
        bigHeader: await rawRequest(
          `${prefix}/realms/${REALM}/.well-known/openid-configuration`,
          'GET',
          { 'x-big': 'a'.repeat(40_000) },
        ),
        propfind: await rawRequest(`${prefix}/realms/${REALM}/x`, 'PROPFIND'),
        patchAnon: await rawRequest(`${prefix}/admin/realms/${REALM}`, 'PATCH'),
      }
      for (const [what, status] of Object.entries(statuses)) {
        expect(status >= 400 && status < 500, `${what}: ${status}`).toBe(true)
      }
    })
  })

  it('guards the ExApp itself: anonymous traversal, encoded separators, unknown methods', async () => {
    const { exapp } = sides[sides.length - 1] as Side
    const port = (exapp.address() as { port: number }).port
    // Node's parser answers an unknown method with 400 and closes the socket.
    const direct = (path: string, method = 'GET') =>
      requestPath(`http://127.0.0.1:${port}`, path, method, appApi).then(
        (res) => res.status,
        () => 400,
      )
    expect(await direct(`/realms/${REALM}/../master/.well-known/openid-configuration`)).toBe(403)
    expect(await direct(`/realms/${REALM}/%2e%2e/master/.well-known/openid-configuration`)).toBe(
      403,
    )
    expect(await direct(`/realms/${REALM}%2f..%2fmaster/protocol`)).toBe(400)
    expect(await direct('/admin/master/console/')).toBe(403)
    expect(await direct(`/realms/${REALM}/.well-known/openid-configuration`)).toBe(200)
    expect(await direct(`/realms/${REALM}/x`, 'PROPFIND')).toBe(405)
    const odd = await direct(`/realms/${REALM}/x`, 'FOO')
    expect(odd >= 400 && odd < 500, String(odd)).toBe(true)
  })
})
