import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import { XMLParser } from 'fast-xml-parser'

/**
 * Test stand-ins for Nextcloud's two ways into an ExApp: this file is AppAPI's PHP proxy as
 * measured on AppAPI 5.0.2 behind Apache, nginx and php -S (see phpProxyHandler; captures proxy.*
 * in test/fixtures/nextcloud); harp-proxy.ts is HaRP.
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
  /** the web server in front of PHP (default apache, which frames answers as php -S does) */
  server?: PhpServer
}

/**
 * Apache + mod_php (and php -S): a copied `Transfer-Encoding: chunked` reaches the client with
 * the raw body. nginx + php-fpm: nginx frames the answer itself, and PHP sees empty
 * `Content-Length`/`Content-Type` headers on requests without a body.
 */
export type PhpServer = 'apache' | 'nginx'

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

/** Nextcloud's default policy, on every response whose app sent none. */
export const NC_CSP =
  "default-src 'none';base-uri 'none';manifest-src 'self';frame-ancestors 'none'"

/** AppAPI's own headers, the only ones the proxy does not copy back. */
const IGNORED_RESPONSE = new Set([
  'aa-version',
  'ex-app-id',
  'authorization-app-api',
  'ex-app-version',
  'aa-request-id',
])

/** What Nextcloud guesses for a response without Content-Type (IMimeTypeDetector::detectPath). */
const MIME: Record<string, string> = {
  js: 'application/javascript',
  mjs: 'application/javascript',
  css: 'text/css',
  html: 'text/html',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  txt: 'text/plain',
  wasm: 'application/wasm',
}

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

/** `pathinfo($path, PATHINFO_EXTENSION)`: after the last dot of the last segment, case kept. */
export function phpExtension(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot < 0 ? '' : base.slice(dot + 1)
}

/** PHP's `urlencode`: RFC 1738, space as `+`, only `-_.` and alphanumerics left as they are. */
function phpUrlencode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+')
}

/** PHP's variable names: dots and spaces (and `[` without `]`) become `_`. */
function phpName(name: string): string {
  return name.replace(/^ +/, '').replace(/[. ]/g, '_')
}

/**
 * The query the ExApp gets: `http_build_query($_GET)`. PHP parses the query (names mangled, `+`
 * a space, the last of repeated names wins) and encodes it again.
 */
export function phpQuery(search: string): string {
  const params = new Map<string, string>()
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (part === '') {
      continue
    }
    const eq = part.indexOf('=')
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '))
      } catch {
        return s
      }
    }
    const name = phpName(decode(eq < 0 ? part : part.slice(0, eq)))
    if (name === '') {
      continue
    }
    params.delete(name)
    params.set(name, eq < 0 ? '' : decode(part.slice(eq + 1)))
  }
  const out = [...params].map(([k, v]) => `${phpUrlencode(k)}=${phpUrlencode(v)}`).join('&')
  return out ? `?${out}` : ''
}

/** `$_COOKIE` as Guzzle's jar sends it back: names mangled like variables, values decoded. */
export function phpCookies(header: string | undefined): [string, string][] {
  const out = new Map<string, string>()
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) {
      continue
    }
    const name = phpName(part.slice(0, eq).trim())
    if (name === '' || out.has(name)) {
      continue
    }
    let value = part.slice(eq + 1).trim()
    try {
      value = decodeURIComponent(value.replace(/\+/g, ' '))
    } catch {
      // PHP keeps what it cannot decode
    }
    out.set(name, value)
  }
  return [...out]
}

/** Guzzle's cookie jar for one proxied request: `$_COOKIE`, then what each hop sets. */
class HopJar {
  private cookies: { name: string; value: string; path: string }[]
  constructor(initial: [string, string][]) {
    this.cookies = initial.map(([name, value]) => ({ name, value, path: '/' }))
  }

  header(path: string): string | undefined {
    const values = this.cookies
      .filter(
        (c) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map((c) => `${c.name}=${c.value}`)
    return values.length > 0 ? values.join('; ') : undefined
  }

  store(setCookies: string[], requestPath: string) {
    for (const raw of setCookies) {
      const [pair = '', ...attrs] = raw.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) {
        continue
      }
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = requestPath.slice(0, requestPath.lastIndexOf('/')) || '/'
      let expired = value === ''
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=')
        const key = k.trim().toLowerCase()
        if (key === 'path' && v.trim().startsWith('/')) {
          path = v.trim()
        } else if (key === 'max-age' && Number(v) <= 0) {
          expired = true
        } else if (key === 'expires' && Date.parse(v) <= Date.now()) {
          expired = true
        }
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path))
      if (!expired) {
        this.cookies.push({ name, value, path })
      }
    }
  }
}

/** Guzzle's `Uri` encoding of a path: what may not stand in a path is percent-encoded. */
function guzzlePath(path: string): string {
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (ch) =>
    [...Buffer.from(ch)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  )
}

/** The body Guzzle hands AppAPI (decode_content), and the headers it changes for that. */
function decoded(
  headers: [string, string][],
  body: Buffer,
): { headers: [string, string][]; body: Buffer } {
  const ce = headers.find(([k]) => k.toLowerCase() === 'content-encoding')
  if (!ce) {
    return { headers, body }
  }
  const encoding = ce[1].trim().toLowerCase()
  const plain =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? gunzipSync(body)
      : encoding === 'deflate'
        ? inflateSync(body)
        : encoding === 'br'
          ? brotliDecompressSync(body)
          : body
  const cl = headers.find(([k]) => k.toLowerCase() === 'content-length')
  const out = headers.filter(
    ([k]) => !['content-encoding', 'content-length'].includes(k.toLowerCase()),
  )
  out.push(['x-encoded-content-encoding', ce[1]])
  if (cl) {
    out.push(['x-encoded-content-length', cl[1]])
  }
  return { headers: out, body: plain }
}

/** The request headers AppAPI sends: getallheaders(), trimmed and completed. */
function headersToApp(
  req: IncomingMessage,
  opts: TestProxyOptions,
  uid: string,
  hasBody: boolean,
): Record<string, string> {
  const headers: Record<string, string> = {}
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    const lower = name.toLowerCase()
    if (lower === 'authorization-app-api' || lower === 'x-origin-ip') {
      continue
    }
    const existing = Object.keys(headers).find((k) => k.toLowerCase() === lower)
    if (existing) {
      headers[existing] = `${headers[existing]}${lower === 'cookie' ? '; ' : ', '}${value}`
    } else {
      headers[name] = value
    }
  }
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name)
  if (opts.server === 'nginx') {
    // php-fpm reports CONTENT_LENGTH and CONTENT_TYPE even when the request has neither.
    if (!has('content-length')) {
      headers['Content-Length'] = ''
    }
    if (!has('content-type')) {
      headers['Content-Type'] = ''
    }
  } else if (!hasBody) {
    for (const k of Object.keys(headers)) {
      if (k.toLowerCase() === 'content-length') {
        delete headers[k]
      }
    }
  }
  headers['X-Origin-IP'] = req.socket.remoteAddress ?? '127.0.0.1'
  Object.assign(headers, {
    'AA-VERSION': '5.0.2',
    'EX-APP-ID': opts.appId,
    'EX-APP-VERSION': opts.appVersion ?? '1.0.0',
    'AUTHORIZATION-APP-API': appApiAuth(uid, opts.appSecret),
    'AA-REQUEST-ID': randomBytes(15).toString('base64url'),
  })
  // Nextcloud's HTTP client fills these when the keys (as written) are missing.
  if (!('Accept-Language' in headers)) {
    headers['Accept-Language'] = 'en'
  }
  if (!('User-Agent' in headers)) {
    headers['User-Agent'] = 'Nextcloud Server Crawler'
  }
  if (!('Accept-Encoding' in headers)) {
    headers['Accept-Encoding'] = 'gzip'
  }
  return headers
}

/**
 * The PHP proxy's request handler, to serve alone or beside others on one origin. What it does
 * (AppAPI 5.0.2's ExAppProxyController, measured behind Apache + mod_php, nginx + php-fpm and
 * php -S):
 *
 * - Methods: GET, POST, PUT, DELETE; HEAD only when the route's verb lists it, and the app then
 *   gets a GET; anything else 405 from Nextcloud. The route: the first whose `url` regex
 *   (case-insensitive) matches the decoded path, whose verb list contains the method and whose
 *   level the caller reaches; otherwise 404.
 * - To the app: every client header (getallheaders()) without `AUTHORIZATION-APP-API`, plus
 *   `X-Origin-IP` and AppAPI's headers; the query re-encoded by PHP; the cookies as PHP parsed
 *   them. Behind nginx + php-fpm a request without body also carries empty `Content-Length:` and
 *   `Content-Type:` headers.
 * - Guzzle follows up to 5 redirects itself (relative `Location` against the app's URL, cookies
 *   set on the way kept for the next hop, 301–303 turn into a GET); the browser gets the last
 *   answer. A gzip answer is decoded (`x-encoded-content-encoding`/`-length` instead of
 *   `Content-Encoding`/`-Length`).
 * - Back to the browser: every header of the app's answer except AppAPI's own, first value only
 *   (one `Set-Cookie`), `Transfer-Encoding`, `Content-Length` and `Connection` included although
 *   the body is decoded; for `.html` paths every `<script` gets a nonce and the length grows;
 *   Nextcloud's CSP and cache headers where the app sent none.
 * - The web server then frames that: a copied `Content-Length` cuts the body at that length (or
 *   leaves the client waiting for bytes that never come: the connection closes); a copied
 *   `Transfer-Encoding: chunked` goes out with the raw body, which no client can read, except
 *   behind nginx, which frames the answer again itself.
 */
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
      // Nextcloud's router has GET (which answers HEAD too), POST, PUT and DELETE routes only.
      if (!['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].includes(method)) {
        res.writeHead(405, { 'content-type': 'text/html' })
        res.end('Method not allowed')
        return
      }
      // Symfony hands the controller the decoded {other}.
      let other: string
      try {
        other = decodeURIComponent(rawPath.slice(prefix.length + 1))
      } catch {
        notFound(res)
        return
      }
      if (!['GET', 'HEAD'].includes(method) && other === '') {
        notFound(res)
        return
      }
      const uid = userFromCookies(req.headers.cookie)
      const level = levelOf(uid, opts.users)
      // AppAPI 5.0.2: the first route whose url and verb match and whose level passes.
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
      const hasBody = ['POST', 'PUT', 'DELETE'].includes(method)
      const body = hasBody ? await readBody(req) : undefined
      const headers = headersToApp(req, opts, uid && level > 0 ? uid : '', hasBody)
      for (const k of Object.keys(headers)) {
        if (k.toLowerCase() === 'content-length' && body) {
          headers[k] = String(body.length)
        }
      }
      const jar = new HopJar(phpCookies(req.headers.cookie))
      let url = new URL(`${guzzlePath(`/${other}`)}${phpQuery(search)}`, opts.target)
      let currentMethod = method === 'HEAD' ? 'GET' : method
      let currentBody = body
      forwarded.push({ method: currentMethod, path: `${url.pathname}${url.search}` })
      const setCookieHeader = () => {
        for (const k of Object.keys(headers)) {
          if (k.toLowerCase() === 'cookie') {
            delete headers[k]
          }
        }
        const cookie = jar.header(url.pathname)
        if (cookie) {
          headers.Cookie = cookie
        }
      }
      setCookieHeader()
      let upstream = await send(url, currentMethod, headers, currentBody)
      for (let hop = 0; ; hop++) {
        const status = upstream.statusCode ?? 0
        const location = upstream.headers.location
        jar.store(upstream.headers['set-cookie'] ?? [], url.pathname)
        if (!location || status < 300 || status >= 400 || status === 304) {
          break
        }
        upstream.resume()
        if (hop === 5) {
          // Guzzle's TooManyRedirectsException: AppAPI answers 500 with no body.
          res.writeHead(500)
          res.end()
          return
        }
        const next = new URL(location, url)
        if (next.origin !== url.origin) {
          for (const k of Object.keys(headers)) {
            if (['cookie', 'authorization'].includes(k.toLowerCase())) {
              delete headers[k]
            }
          }
        }
        if (status === 303 || status <= 302) {
          currentMethod = 'GET'
          currentBody = undefined
          for (const k of Object.keys(headers)) {
            if (['content-length', 'content-type'].includes(k.toLowerCase())) {
              delete headers[k]
            }
          }
        }
        url = next
        if (next.origin === new URL(opts.target).origin) {
          setCookieHeader()
        }
        upstream = await send(url, currentMethod, headers, currentBody)
      }
      await respond(req, res, upstream, other, opts.server ?? 'apache')
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

/** createProxyResponse(), Nextcloud's Response headers, then the web server's framing. */
async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: IncomingMessage,
  other: string,
  server: PhpServer,
): Promise<void> {
  // Guzzle's getHeaders(): one entry per name (as first written), AppAPI keeps value [0].
  const firsts: [string, string][] = []
  const raw = upstream.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (!firsts.some(([k]) => k.toLowerCase() === name.toLowerCase())) {
      firsts.push([name, raw[i + 1] as string])
    }
  }
  const got = decoded(firsts, await readBody(upstream))
  let body = got.body
  const upstreamHeaders = got.headers.filter(([k]) => !IGNORED_RESPONSE.has(k.toLowerCase()))
  const find = (name: string) => upstreamHeaders.find(([k]) => k.toLowerCase() === name)?.[1]

  const ext = phpExtension(other)
  const isHtml = ext === 'html'
  if (isHtml) {
    const nonce = randomBytes(33).toString('base64')
    body = Buffer.from(
      body.toString('latin1').replaceAll('<script', `<script nonce="${nonce}"`),
      'latin1',
    )
  }
  const out = new Map<string, [string, string]>()
  const put = (name: string, value: string) => out.set(name.toLowerCase(), [name, value])
  // Response::getHeaders(): Nextcloud's defaults, the app's headers over them.
  put('Cache-Control', 'no-cache, no-store, must-revalidate')
  put('Content-Security-Policy', NC_CSP)
  put('X-Robots-Tag', 'noindex, nofollow')
  if (!find('content-type')) {
    const mime = MIME[ext]
    if (mime) {
      put('Content-Type', mime)
    }
  }
  const type = find('content-type')
  if (
    !isHtml &&
    !find('cache-control') &&
    type !== 'application/json' &&
    type !== 'application/x-tar'
  ) {
    put('Cache-Control', 'private, max-age=3600, must-revalidate')
    put('Expires', new Date(Date.now() + 3600_000).toUTCString())
  }
  for (const [k, v] of upstreamHeaders) {
    put(k, v)
  }
  // The web server's own headers (Nextcloud's .htaccess, its nginx configuration).
  put('X-Frame-Options', 'SAMEORIGIN')
  put('X-Content-Type-Options', 'nosniff')
  put('Referrer-Policy', 'no-referrer')

  const status = upstream.statusCode ?? 500
  const headers = [...out.values()]
  const flat = (list: [string, string][]) => list.flat()
  const te = find('transfer-encoding')
  const cl = find('content-length')
  const head = req.method === 'HEAD'
  if (te && /chunked/i.test(te)) {
    if (server === 'nginx') {
      // nginx drops PHP's framing headers and chunks the body itself.
      res.writeHead(status, flat(headers.filter(([k]) => k.toLowerCase() !== 'transfer-encoding')))
      res.end(head ? undefined : body)
      return
    }
    // Apache and php -S send the header as PHP set it, with the raw body.
    const socket = res.socket
    if (!socket) {
      return
    }
    const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`]
    for (const [k, v] of headers) {
      lines.push(`${k}: ${v}`)
    }
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    socket.end(head ? Buffer.alloc(0) : body)
    return
  }
  res.writeHead(status, flat(headers))
  if (head) {
    res.end()
    return
  }
  if (cl !== undefined && /^\d+$/.test(cl.trim())) {
    const length = Number(cl.trim())
    if (body.length >= length) {
      // The rest of the body is never sent.
      res.end(body.subarray(0, length))
    } else {
      // The client waits for bytes that never come, until the connection closes.
      res.write(body)
      res.socket?.destroySoon()
    }
    return
  }
  res.end(body)
}
