import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { acceptEmptyContentLength } from '../src/http/empty-content-length.js'
import {
  closeServer,
  listenOn,
  NC_CSP,
  type PhpServer,
  phpCookies,
  phpExtension,
  phpQuery,
  type RunningTestProxy,
  startPhpProxy,
} from './php-proxy.js'

/**
 * The PHP proxy stand-in against a small app whose answers are the ones the proxy was measured
 * with: chunked and Content-Length bodies, `.html` with scripts, gzip, redirects, cookies.
 */
const JS = `/* ${'x'.repeat(3000)} */\nconsole.log(1)\n`
const HTML =
  '<!doctype html><html><head><script>var a = 1</script><script src="b.js"></script></head></html>'

function app(req: IncomingMessage, res: ServerResponse) {
  const path = (req.url ?? '/').split('?')[0] as string
  const seen = { method: req.method, url: req.url, headers: req.headers }
  res.setHeader('x-probe-method', req.method ?? '')
  switch (path) {
    case '/chunked/a.js':
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.write(JS.slice(0, 100))
      res.end(JS.slice(100))
      return
    case '/cl/a.js':
    case '/cl/a.html':
    case '/cl/page': {
      const body = path.endsWith('.js') ? JS : HTML
      res.writeHead(200, {
        'content-type': path.endsWith('.js') ? 'text/javascript' : 'text/html',
        'content-length': Buffer.byteLength(body),
      })
      res.end(body)
      return
    }
    case '/gzip/a.js': {
      const z = gzipSync(JS)
      res.writeHead(200, {
        'content-type': 'text/javascript',
        'content-encoding': 'gzip',
        'content-length': z.length,
      })
      res.end(z)
      return
    }
    case '/redirect':
      res.writeHead(302, { location: '/cl/a.js', 'set-cookie': 'hop=1; Path=/' })
      res.end()
      return
    case '/loop':
      res.writeHead(302, { location: '/loop' })
      res.end()
      return
    case '/cookies':
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/', 'c=3; Path=/'])
      res.setHeader('x-multi', ['one', 'two'])
      res.end('ok')
      return
    case '/csp.html':
      res.writeHead(200, {
        'content-type': 'text/html',
        'content-security-policy': "default-src 'self'",
      })
      res.end('<p>own</p>')
      return
    default: {
      const body = JSON.stringify(seen)
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      })
      res.end(body)
    }
  }
}

const ROUTES = [
  { url: '^withhead/.*', verb: 'GET,HEAD', accessLevel: 0 as const },
  { url: '.*', verb: 'GET,POST,PUT,DELETE', accessLevel: 0 as const },
]

describe('PHP proxy stand-in', () => {
  const closers: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const close of closers.splice(0)) {
      await close()
    }
  })

  async function through(server: PhpServer = 'apache', handler = app): Promise<RunningTestProxy> {
    // The app's own server tolerates the empty Content-Length nginx + php-fpm produce.
    const upstream = createServer(handler)
    acceptEmptyContentLength(upstream)
    const target = await listenOn(upstream)
    closers.push(() => closeServer(upstream))
    const proxy = await startPhpProxy({
      target,
      appId: 'probe',
      appSecret: 's'.repeat(32),
      routes: ROUTES,
      users: { admin: { admin: true } },
      server,
    })
    closers.push(() => proxy.close())
    return proxy
  }

  it('hands a chunked answer on with its Transfer-Encoding header and a raw body (Apache)', async () => {
    const proxy = await through('apache')
    const res = await fetch(`${proxy.publicUrl}/chunked/a.js`)
    expect(res.headers.get('transfer-encoding')).toBe('chunked')
    await expect(res.text()).rejects.toThrow()
  })

  it('re-chunks a chunked answer behind nginx', async () => {
    const proxy = await through('nginx')
    const res = await fetch(`${proxy.publicUrl}/chunked/a.js`)
    expect(await res.text()).toBe(JS)
  })

  it('adds nonces to `.html` paths and cuts the body at the upstream length', async () => {
    for (const server of ['apache', 'nginx'] as const) {
      const proxy = await through(server)
      const res = await fetch(`${proxy.publicUrl}/cl/a.html`)
      expect(res.headers.get('content-length')).toBe(String(HTML.length))
      const body = await res.text()
      expect(body).toHaveLength(HTML.length)
      expect(body).toMatch(/^<!doctype html><html><head><script nonce="[^"]+">/)
      // The same page at a path without `.html` passes unchanged.
      expect(await (await fetch(`${proxy.publicUrl}/cl/page`)).text()).toBe(HTML)
    }
  })

  it('decodes gzip as Guzzle does and drops Content-Length', async () => {
    const proxy = await through()
    const res = await fetch(`${proxy.publicUrl}/gzip/a.js`)
    expect(res.headers.get('content-encoding')).toBeNull()
    expect(res.headers.get('x-encoded-content-encoding')).toBe('gzip')
    expect(Number(res.headers.get('x-encoded-content-length'))).toBe(gzipSync(JS).length)
    expect(await res.text()).toBe(JS)
  })

  it('follows redirects itself: the browser gets the target, no Location', async () => {
    const proxy = await through()
    const res = await fetch(`${proxy.publicUrl}/redirect`, { redirect: 'manual' })
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    expect(await res.text()).toBe(JS)
    const loop = await fetch(`${proxy.publicUrl}/loop`, { redirect: 'manual' })
    expect(loop.status).toBe(500)
    expect(proxy.forwarded.map((f) => f.path)).toEqual(['/redirect', '/loop'])
  })

  it('keeps the first value of every header: one Set-Cookie', async () => {
    const proxy = await through()
    const res = await fetch(`${proxy.publicUrl}/cookies`)
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/'])
    expect(res.headers.get('x-multi')).toBe('one')
  })

  it('answers PATCH and OPTIONS itself; HEAD only where the route lists it, as a GET', async () => {
    const proxy = await through()
    for (const method of ['PATCH', 'OPTIONS']) {
      expect((await fetch(`${proxy.publicUrl}/cl/a.js`, { method })).status).toBe(405)
    }
    expect((await fetch(`${proxy.publicUrl}/cl/a.js`, { method: 'HEAD' })).status).toBe(404)
    const head = await fetch(`${proxy.publicUrl}/withhead/x`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('x-probe-method')).toBe('GET')
  })

  it("sets Nextcloud's CSP and cache headers where the app sent none", async () => {
    const proxy = await through()
    const js = await fetch(`${proxy.publicUrl}/cl/a.js`)
    expect(js.headers.get('content-security-policy')).toBe(NC_CSP)
    expect(js.headers.get('cache-control')).toBe('private, max-age=3600, must-revalidate')
    const json = await fetch(`${proxy.publicUrl}/echo`)
    expect(json.headers.get('cache-control')).toBe('no-cache, no-store, must-revalidate')
    const own = await fetch(`${proxy.publicUrl}/csp.html`)
    expect(own.headers.get('content-security-policy')).toBe("default-src 'self'")
  })

  it('sends the app the client headers, AppAPI headers and X-Origin-IP, query and cookies as PHP parsed them', async () => {
    const proxy = await through()
    const res = await fetch(`${proxy.publicUrl}/echo?a.b=1&c=x+y&c=z&d`, {
      headers: { cookie: 'nc_session_id=admin; k.v=a%20b', 'x-origin-ip': '6.6.6.6' },
    })
    const seen = (await res.json()) as { url: string; headers: Record<string, string> }
    expect(seen.url).toBe('/echo?a_b=1&c=z&d=')
    expect(seen.headers.cookie).toBe('nc_session_id=admin; k_v=a b')
    expect(seen.headers['x-origin-ip']).toBe('127.0.0.1')
    expect(seen.headers['accept-encoding']).toBeDefined()
    expect(seen.headers['ex-app-id']).toBe('probe')
    expect(Buffer.from(seen.headers['authorization-app-api'] as string, 'base64').toString()).toBe(
      `admin:${'s'.repeat(32)}`,
    )
  })

  it('behind nginx, sends empty Content-Length and Content-Type on a request without body', async () => {
    // A plain TCP server: node's HTTP parser would refuse the request before anyone saw it.
    const heads: string[] = []
    const upstream: NetServer = createNetServer((socket) => {
      let buf = ''
      socket.on('data', (d) => {
        buf += d.toString('latin1')
        if (buf.includes('\r\n\r\n')) {
          heads.push(buf.slice(0, buf.indexOf('\r\n\r\n')))
          socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok')
        }
      })
    })
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()))
    closers.push(() => new Promise((r) => upstream.close(() => r())))
    const { port } = upstream.address() as { port: number }
    for (const server of ['nginx', 'apache'] as const) {
      const proxy = await startPhpProxy({
        target: `http://127.0.0.1:${port}`,
        appId: 'probe',
        appSecret: 's'.repeat(32),
        routes: ROUTES,
        users: {},
        server,
      })
      closers.push(() => proxy.close())
      expect(await (await fetch(`${proxy.publicUrl}/x`)).text()).toBe('ok')
    }
    expect(heads[0]).toMatch(/\r\nContent-Length: \r\n/)
    expect(heads[0]).toMatch(/\r\nContent-Type: \r\n/)
    expect(heads[1]).not.toMatch(/content-length|content-type/i)
  })

  it('parses names, queries and cookies as PHP does', () => {
    expect(phpExtension('realms/x/3p-cookies/step1.html')).toBe('html')
    expect(phpExtension('a.HTML')).toBe('HTML')
    expect(phpExtension('a.html/b')).toBe('')
    expect(phpQuery('?redirect_uri=http%3A%2F%2Fx%2Fa%20b&scope=openid+email')).toBe(
      '?redirect_uri=http%3A%2F%2Fx%2Fa+b&scope=openid+email',
    )
    expect(phpQuery('')).toBe('')
    expect(phpCookies('a=1; a=2; b.c=%41')).toEqual([
      ['a', '1'],
      ['b_c', 'A'],
    ])
  })
})
