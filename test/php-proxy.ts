import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { XMLParser } from 'fast-xml-parser'

/**
 * Test stand-ins for Nextcloud's two ways into an ExApp (captures proxy.* in test/fixtures/nextcloud):
 * this file is AppAPI's PHP proxy as observed on AppAPI 5.0.2; harp-proxy.ts is HaRP.
 *
 * The logged-in Nextcloud user is the value of the `nc_session_id` cookie (a stand-in for a real
 * session); no cookie means anonymous. The cookie is a Nextcloud cookie and reaches the ExApp,
 * as real Nextcloud cookies do.
 */
export interface ProxyRoute {
  url: string
  verb: string
  /** 0 PUBLIC, 1 USER, 2 ADMIN */
  accessLevel: 0 | 1 | 2
}

export interface TestProxyOptions {
  /** where the ExApp listens, e.g. http://127.0.0.1:23000 */
  target: string
  appId: string
  appSecret: string
  appVersion?: string
  routes: ProxyRoute[]
  /** known Nextcloud users and whether they are in the admin group */
  users: Record<string, { admin: boolean }>
  /** listen here (0 = any free port) */
  port?: number
}

export interface RunningTestProxy {
  /** http://127.0.0.1:<port> */
  origin: string
  /** the public URL of the app, e.g. http://127.0.0.1:<port>/index.php/apps/app_api/proxy/keycloak */
  publicUrl: string
  /** every request the ExApp got through this proxy (method, path) */
  forwarded: { method: string; path: string }[]
  close(): Promise<void>
}

const LEVELS = { PUBLIC: 0, USER: 1, ADMIN: 2 } as const

/** The `<routes>` of an info.xml, in order. */
export function routesFromInfoXml(path: string): ProxyRoute[] {
  const parser = new XMLParser({ isArray: (name) => name === 'route', parseTagValue: false })
  const xml = parser.parse(readFileSync(path, 'utf8')) as {
    info: {
      'external-app': { routes: { route: { url: string; verb: string; access_level: string }[] } }
    }
  }
  return xml.info['external-app'].routes.route.map((r) => {
    const level = String(r.access_level).trim()
    const accessLevel = (level in LEVELS ? LEVELS[level as keyof typeof LEVELS] : Number(level)) as
      | 0
      | 1
      | 2
    return { url: String(r.url).trim(), verb: String(r.verb).trim(), accessLevel }
  })
}

export function userFromCookies(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, v] = part.split('=')
    if (k?.trim() === 'nc_session_id' && v?.trim()) {
      return decodeURIComponent(v.trim())
    }
  }
  return undefined
}

export function levelOf(uid: string | undefined, users: TestProxyOptions['users']): 0 | 1 | 2 {
  const user = uid ? users[uid] : undefined
  if (!user) {
    return 0
  }
  return user.admin ? 2 : 1
}

export function appApiAuth(uid: string, secret: string): string {
  return Buffer.from(`${uid}:${secret}`).toString('base64')
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) {
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

export async function listenOn(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/** One request to the ExApp with node:http (no URL normalisation, as Guzzle sends it). */
export function send(
  url: URL,
  method: string,
  headers: IncomingHttpHeaders | Record<string, string>,
  body?: Buffer,
): Promise<IncomingMessage> {
  return sendPath(url.origin, `${url.pathname}${url.search}`, method, headers, body)
}

/** One request for `path` exactly as written: dot segments and encodings reach the server. */
export function sendPath(
  origin: string,
  path: string,
  method: string,
  headers: IncomingHttpHeaders | Record<string, string>,
  body?: Buffer,
): Promise<IncomingMessage> {
  const { hostname, port } = new URL(origin)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method, headers }, resolve)
    req.on('error', reject)
    req.end(body)
  })
}

/** Status and body text of a `sendPath` request. */
export async function requestPath(
  origin: string,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const res = await sendPath(origin, path, method, headers)
  return { status: res.statusCode ?? 0, body: (await readBody(res)).toString() }
}

const NC_CSP = "default-src 'none';base-uri 'none';manifest-src 'self';frame-ancestors 'none'"
const DROPPED_RESPONSE = new Set([
  'aa-version',
  'ex-app-id',
  'authorization-app-api',
  'ex-app-version',
  'aa-request-id',
  'transfer-encoding',
  'connection',
  'keep-alive',
])

export type ProxyHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & {
  /** the path prefix it answers under */
  prefix: string
  forwarded: RunningTestProxy['forwarded']
}

/** AppAPI's PHP proxy at `/index.php/apps/app_api/proxy/<appid>/…`. */
export async function startPhpProxy(opts: TestProxyOptions): Promise<RunningTestProxy> {
  const handler = phpProxyHandler(opts)
  const server = createServer(handler)
  return serving(await listenOn(server, opts.port), handler, server)
}

export function serving(origin: string, handler: ProxyHandler, server?: Server): RunningTestProxy {
  return {
    origin,
    publicUrl: `${origin}${handler.prefix}`,
    forwarded: handler.forwarded,
    close: () => (server ? closeServer(server) : Promise.resolve()),
  }
}

/** The PHP proxy's request handler, to serve alone or beside others on one origin. */
export function phpProxyHandler(opts: TestProxyOptions): ProxyHandler {
  const prefix = `/index.php/apps/app_api/proxy/${opts.appId}`
  const forwarded: RunningTestProxy['forwarded'] = []
  const notFound = (res: ServerResponse) => {
    res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' })
    res.end('<!DOCTYPE html><html><body><h2>Page not found</h2></body></html>')
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const raw = req.url ?? '/'
      const q = raw.indexOf('?')
      const rawPath = q < 0 ? raw : raw.slice(0, q)
      const search = q < 0 ? '' : raw.slice(q)
      if (!rawPath.startsWith(`${prefix}/`) && rawPath !== prefix) {
        notFound(res)
        return
      }
      const method = (req.method ?? 'GET').toUpperCase()
      // Nextcloud's router has GET, POST, PUT and DELETE routes only.
      if (!['GET', 'POST', 'PUT', 'DELETE'].includes(method)) {
        res.writeHead(405, { 'content-type': 'text/html' })
        res.end('Method not allowed')
        return
      }
      // Symfony hands the controller the decoded {path}.
      let other: string
      try {
        other = decodeURIComponent(rawPath.slice(prefix.length + 1))
      } catch {
        notFound(res)
        return
      }
      if (method !== 'GET' && other === '') {
        notFound(res)
        return
      }
      const uid = userFromCookies(req.headers.cookie)
      const level = levelOf(uid, opts.users)
      // AppAPI 5.0.2 (observed): first route whose url and verb match and whose level passes.
      const allowed = opts.routes.some(
        (r) =>
          new RegExp(r.url, 'i').test(other) &&
          r.verb.toLowerCase().includes(method.toLowerCase()) &&
          level >= r.accessLevel,
      )
      if (!allowed) {
        notFound(res)
        return
      }
      const body = method === 'GET' ? undefined : await readBody(req)
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || k === 'authorization-app-api' || k === 'content-length') {
          continue
        }
        headers[k] = Array.isArray(v) ? v.join(', ') : v
      }
      if (body && body.length > 0) {
        headers['content-length'] = String(body.length)
      }
      Object.assign(headers, {
        'x-origin-ip': req.socket.remoteAddress ?? '127.0.0.1',
        'aa-version': '5.0.2',
        'ex-app-id': opts.appId,
        'ex-app-version': opts.appVersion ?? '1.0.0',
        'authorization-app-api': appApiAuth(uid && level > 0 ? uid : '', opts.appSecret),
        'aa-request-id': randomBytes(10).toString('base64url'),
        'user-agent': 'Nextcloud Server Crawler',
      })
      headers['accept-language'] ??= 'en'
      // Guzzle follows up to 5 redirects itself; the browser only sees the last answer.
      let url = new URL(`/${other}${search}`, opts.target)
      let currentMethod = method
      let currentBody = body
      forwarded.push({ method, path: `/${other}${search}` })
      let upstream = await send(url, currentMethod, headers, currentBody)
      for (let hop = 0; hop < 5; hop++) {
        const location = upstream.headers.location
        if (!location || (upstream.statusCode ?? 0) < 300 || (upstream.statusCode ?? 0) >= 400) {
          break
        }
        upstream.resume()
        const next = new URL(location, url)
        if (next.origin !== url.origin) {
          delete headers.cookie
          delete headers.authorization
        }
        headers.host = next.host
        if (upstream.statusCode !== 307 && upstream.statusCode !== 308) {
          currentMethod = 'GET'
          currentBody = undefined
          delete headers['content-length']
          delete headers['content-type']
        }
        url = next
        upstream = await send(url, currentMethod, headers, currentBody)
      }
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries(upstream.headers)) {
        if (v === undefined || DROPPED_RESPONSE.has(k)) {
          continue
        }
        // ProxyResponse keeps the first value of every header: one Set-Cookie survives.
        out[k] = Array.isArray(v) ? (v[0] as string) : v
      }
      out['content-security-policy'] ??= NC_CSP
      out['x-frame-options'] = 'SAMEORIGIN'
      out['cache-control'] ??= 'no-cache, no-store, must-revalidate'
      const content = await readBody(upstream)
      out['content-length'] = String(content.length)
      res.writeHead(upstream.statusCode ?? 500, out)
      res.end(content)
    } catch {
      // A connection failure to the ExApp: 500 with an empty body.
      if (!res.headersSent) {
        res.writeHead(500)
      }
      res.end()
    }
  }
  return Object.assign(handle, { prefix, forwarded })
}
