import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import { pipeline } from 'node:stream/promises'
import {
  appApiAuth,
  levelOf,
  listenOn,
  type ProxyHandler,
  type RunningTestProxy,
  serving,
  type TestProxyOptions,
  userFromCookies,
} from './php-proxy.js'

/**
 * HaRP at `/exapps/<appid>/…`: any method, bodies and headers
 * streamed untouched (every Set-Cookie passes), the prefix stripped. Routes: Python `re.match`
 * on "/" + path (anchored, case-sensitive), verb ignored, first URL match decides: PUBLIC passes,
 * else the caller's level must reach the route's or 403; no match 404. HAProxy sets `EX-APP-ID`,
 * `EX-APP-VERSION`, `AUTHORIZATION-APP-API` and a hard-coded `AA-VERSION: 32`.
 */
export async function startHarpProxy(opts: TestProxyOptions): Promise<RunningTestProxy> {
  const handler = harpProxyHandler(opts)
  const server = createServer(handler)
  return serving(await listenOn(server, opts.port), handler, server)
}

/** HaRP's request handler, to serve alone or beside others on one origin. */
export function harpProxyHandler(opts: TestProxyOptions): ProxyHandler {
  const prefix = `/exapps/${opts.appId}`
  const forwarded: RunningTestProxy['forwarded'] = []
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const raw = req.url ?? '/'
      if (!raw.startsWith(`${prefix}/`) && raw !== prefix && !raw.startsWith(`${prefix}?`)) {
        res.writeHead(404)
        res.end()
        return
      }
      const rest = raw.slice(prefix.length) || '/'
      const path = rest.startsWith('/') ? rest : `/${rest}`
      const pathOnly = path.split('?')[0] as string
      const uid = userFromCookies(req.headers.cookie)
      const level = levelOf(uid, opts.users)
      const route = opts.routes.find((r) => new RegExp(`^(?:${r.url})`).test(pathOnly))
      if (!route) {
        res.writeHead(404)
        res.end()
        return
      }
      if (route.accessLevel !== 0 && level < route.accessLevel) {
        res.writeHead(403)
        res.end()
        return
      }
      const headers = { ...req.headers }
      Object.assign(headers, {
        'ex-app-id': opts.appId,
        'ex-app-version': opts.appVersion ?? '1.0.0',
        'authorization-app-api': appApiAuth(uid && level > 0 ? uid : '', opts.appSecret),
        'aa-version': '32',
      })
      forwarded.push({ method: req.method ?? 'GET', path })
      const target = new URL(opts.target)
      const upstream = await new Promise<IncomingMessage | undefined>((resolve) => {
        const out = httpRequest(
          { host: target.hostname, port: target.port, path, method: req.method, headers },
          resolve,
        )
        out.on('error', () => resolve(undefined))
        req.pipe(out)
      })
      if (!upstream) {
        res.writeHead(503)
        res.end()
        return
      }
      res.writeHead(upstream.statusCode ?? 502, upstream.rawHeaders)
      await pipeline(upstream, res)
    } catch {
      if (!res.headersSent) {
        res.writeHead(502)
      }
      res.end()
    }
  }
  return Object.assign(handle, { prefix, forwarded })
}
