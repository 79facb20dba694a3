import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { Writable } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import type { Hono } from 'hono'
import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { testConfig } from '../../test/config.js'
import { startHarpProxy } from '../../test/harp-proxy.js'
import {
  closeServer,
  listenOn,
  type PhpServer,
  type RunningTestProxy,
  sendPath,
  startPhpProxy,
} from '../../test/php-proxy.js'
import { createApp } from '../app.js'
import type { Lifecycle } from '../appapi/lifecycle.js'
import { acceptEmptyContentLength } from '../http/empty-content-length.js'
import type { AppEnv } from '../http/types.js'
import type { KeycloakRuntime } from '../keycloak/runtime.js'
import type { Logger } from '../log.js'
import { keycloakProxy } from './proxy.js'

/**
 * The proxy on a real socket, between a stand-in Keycloak and the stand-ins for Nextcloud's two
 * proxies: what a browser gets for Keycloak's console files and pages, a path naming another
 * host, a client that goes away.
 */
const REALM = 'commonground'
const ASSET = '/resources/abc12/admin/keycloak.v2/assets/main-Abc.js'
/** About the size of the console's main script, which Keycloak sends chunked. */
const MAIN_JS = `/* console */\n${'globalThis.x = (globalThis.x ?? 0) + 1;\n'.repeat(22_000)}`
const STEP1 = '/realms/master/protocol/openid-connect/3p-cookies/step1.html'
const STATUS_IFRAME = '/realms/master/protocol/openid-connect/login-status-iframe.html'
const PAGES: Record<string, string> = {
  [STEP1]:
    '<!DOCTYPE html><html><body><script>document.cookie = "KEYCLOAK_3P_COOKIE_SAMESITE=supported; Max-Age=60; SameSite=None; Secure"; window.location = "step2.html";</script></body></html>',
  [STATUS_IFRAME]: `<!DOCTYPE html><html><head><script src="x.js"></script><script>${'var a = 1;\n'.repeat(400)}</script></head><body></body></html>`,
}

/** Keycloak as the proxy sees it: chunked files, pages with Content-Length, 500 on an empty type. */
function keycloakStandIn(req: IncomingMessage, res: ServerResponse) {
  const path = (req.url ?? '/').split('?')[0] as string
  if (req.headers['content-type'] === '') {
    // Keycloak: "Failed to parse media type"
    res.writeHead(500, { 'content-type': 'text/plain', 'content-length': 5 })
    res.end('error')
    return
  }
  if (path === ASSET) {
    res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'max-age=2592000' })
    for (let i = 0; i < MAIN_JS.length; i += 65_536) {
      res.write(MAIN_JS.slice(i, i + 65_536))
    }
    res.end()
    return
  }
  const page = PAGES[path]
  if (page) {
    res.writeHead(200, {
      'content-type': 'text/html;charset=utf-8',
      'content-length': Buffer.byteLength(page),
    })
    res.end(page)
    return
  }
  const body = JSON.stringify({ issuer: `x/realms/${REALM}` })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

const withoutNonces = (html: string) => html.replace(/<script nonce="[^"]*"/g, '<script')

describe('the proxy between Keycloak and the Nextcloud proxies', () => {
  const closers: (() => Promise<void>)[] = []
  afterEach(async () => {
    vi.restoreAllMocks()
    for (const close of closers.splice(0).reverse()) {
      await close()
    }
  })

  async function serve(server: Server): Promise<string> {
    const url = await listenOn(server)
    closers.push(() => closeServer(server))
    return url
  }

  /** Keycloak stand-in ← the app (on its own socket, as listen() serves it) ← `front`. */
  async function chain(
    front: (target: string, config: ReturnType<typeof testConfig>) => Promise<RunningTestProxy>,
    keycloak: (req: IncomingMessage, res: ServerResponse) => void = keycloakStandIn,
    log?: Logger,
  ) {
    const upstream = await serve(createServer(keycloak))
    const config = testConfig({})
    let app: Hono<AppEnv> | undefined
    const appServer = createServer(getRequestListener((req) => (app as Hono<AppEnv>).fetch(req)))
    acceptEmptyContentLength(appServer)
    const target = await serve(appServer)
    const proxy = await front(target, config)
    closers.push(() => proxy.close())
    const isAdmin = async (uid: string) => uid === 'admin'
    app = createApp({
      config,
      isAdmin,
      log: log ?? pino({ level: 'silent' }),
      keycloak: { status: () => 'ready' } as unknown as KeycloakRuntime,
      lifecycle: {} as Lifecycle,
      ui: keycloakProxy({
        upstream,
        publicUrl: proxy.publicUrl,
        realm: REALM,
        isAdmin,
        maxBufferedBytes: 64 * 1024 * 1024,
      }),
    })
    return { proxy, target, config }
  }

  const php = (server: PhpServer) => (target: string, config: ReturnType<typeof testConfig>) =>
    startPhpProxy({
      target,
      appId: config.app.id,
      appSecret: config.app.secret,
      routes: [{ url: '.*', verb: 'GET,POST,PUT,DELETE', accessLevel: 0 }],
      users: { admin: { admin: true } },
      server,
    })
  const harp = (target: string, config: ReturnType<typeof testConfig>) =>
    startHarpProxy({
      target,
      appId: config.app.id,
      appSecret: config.app.secret,
      routes: [{ url: '.*', verb: 'GET,POST,PUT,DELETE', accessLevel: 0 }],
      users: { admin: { admin: true } },
    })

  describe.each(['apache', 'nginx'] as const)('through the PHP proxy behind %s', (server) => {
    it("delivers the console's chunked scripts whole", async () => {
      const { proxy } = await chain(php(server))
      const res = await fetch(`${proxy.publicUrl}${ASSET}`, {
        headers: { cookie: 'nc_session_id=admin' },
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('transfer-encoding')).toBeNull()
      expect(await res.text()).toBe(MAIN_JS)
    })

    it("delivers Keycloak's .html pages whole, with the proxy's nonces", async () => {
      const { proxy } = await chain(php(server))
      for (const path of [STEP1, STATUS_IFRAME]) {
        const res = await fetch(`${proxy.publicUrl}${path}`, {
          headers: { cookie: 'nc_session_id=admin' },
        })
        expect(res.status, path).toBe(200)
        const body = await res.text()
        expect(body, path).toMatch(/<script nonce="/)
        expect(withoutNonces(body), path).toBe(PAGES[path])
      }
    })

    it('answers a request without body, whatever empty headers PHP adds', async () => {
      const { proxy } = await chain(php(server))
      const res = await fetch(`${proxy.publicUrl}/realms/${REALM}/.well-known/openid-configuration`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ issuer: `x/realms/${REALM}` })
    })
  })

  it('delivers the same files through HaRP', async () => {
    const { proxy } = await chain(harp)
    const admin = { headers: { cookie: 'nc_session_id=admin' } }
    expect(await (await fetch(`${proxy.publicUrl}${ASSET}`, admin)).text()).toBe(MAIN_JS)
    expect(await (await fetch(`${proxy.publicUrl}${STEP1}`, admin)).text()).toBe(PAGES[STEP1])
  })

  it('asks no host but Keycloak for a path that starts with // or ///', async () => {
    const connections: string[] = []
    const elsewhere: NetServer = createNetServer((socket) => {
      connections.push(String(socket.remotePort))
      socket.destroy()
    })
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', () => r()))
    closers.push(() => new Promise((r) => elsewhere.close(() => r())))
    const port = (elsewhere.address() as { port: number }).port
    const { target, config } = await chain(php('apache'))
    const admin = {
      'ex-app-id': config.app.id,
      'ex-app-version': '1.0.0',
      'authorization-app-api': Buffer.from(`admin:${config.app.secret}`).toString('base64'),
      authorization: 'Bearer stolen',
      cookie: 'KEYCLOAK_IDENTITY=stolen',
    }
    for (const path of [`//127.0.0.1:${port}/steal`, `///127.0.0.1:${port}/steal`]) {
      const res = await sendPath(target, path, 'GET', admin)
      res.resume()
      expect(res.statusCode, path).toBe(400)
    }
    expect(connections).toEqual([])
  })

  describe('a client that goes away', () => {
    function capture(): { log: Logger; lines: Record<string, unknown>[]; next: Promise<void> } {
      const lines: Record<string, unknown>[] = []
      let seen: () => void = () => undefined
      const next = new Promise<void>((resolve) => {
        seen = resolve
      })
      const sink = new Writable({
        write(chunk, _enc, done) {
          const line = JSON.parse(String(chunk)) as Record<string, unknown>
          lines.push(line)
          if (line.msg === 'http.access') {
            seen()
          }
          done()
        },
      })
      return { log: pino({ level: 'debug' }, sink), lines, next }
    }

    it.each(['headers', 'body'] as const)(
      'is a 499 at info while Keycloak is sending %s, with no error and no stack',
      async (stage) => {
        const consoleError = vi.spyOn(console, 'error')
        const { log, lines, next } = capture()
        let asked: () => void = () => undefined
        const kcAsked = new Promise<void>((resolve) => {
          asked = resolve
        })
        const { target, config } = await chain(
          php('apache'),
          (req, res) => {
            if (stage === 'body') {
              res.writeHead(200, { 'content-type': 'text/plain' })
              res.write('partial')
            }
            asked()
            req.socket.on('close', () => res.destroy())
          },
          log,
        )
        const client = new AbortController()
        const answered = fetch(`${target}/realms/${REALM}/slow`, {
          headers: {
            'ex-app-id': config.app.id,
            'ex-app-version': '1.0.0',
            'authorization-app-api': Buffer.from(`:${config.app.secret}`).toString('base64'),
          },
          signal: client.signal,
        }).catch((err: Error) => err.name)
        await kcAsked
        client.abort()
        expect(await answered).toBe('AbortError')
        await next
        const access = lines.find((l) => l.msg === 'http.access')
        expect(access).toMatchObject({ level: 30, status: 499, path: `/realms/${REALM}/slow` })
        expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([])
        expect(lines.some((l) => l.msg === 'keycloak.proxy.client_closed')).toBe(true)
        expect(consoleError).not.toHaveBeenCalled()
      },
    )
  })
})
