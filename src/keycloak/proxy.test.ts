import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { testConfig } from '../../test/config.js'
import { appWithUi } from '../../test/ui-app.js'
import { accessFor, keycloakProxy, parseSetCookie } from './proxy.js'

const PUBLIC = 'https://cloud.example/index.php/apps/app_api/proxy/keycloak'
const PREFIX = '/index.php/apps/app_api/proxy/keycloak'

interface Seen {
  method: string
  url: string
  headers: Headers
  body: string
}

type Reply = (req: Seen) => Response

function setup(reply: Reply = () => new Response('ok'), extra: { redirectsAsPage?: boolean } = {}) {
  const config = testConfig({})
  const seen: Seen[] = []
  const fakeFetch = (async (input: URL | RequestInfo, init?: RequestInit) => {
    const req = new Request(input, init)
    const s = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body ? await req.text() : '',
    }
    seen.push(s)
    return reply(s)
  }) as typeof fetch
  const ui = keycloakProxy({
    upstream: 'http://127.0.0.1:8080',
    publicUrl: PUBLIC,
    realm: 'commonground',
    isAdmin: async (uid) => uid === 'admin',
    fetch: fakeFetch,
    ...extra,
  })
  const { app, as } = appWithUi(ui, config)
  return { app, seen, as }
}

describe('access', () => {
  it('classifies paths', () => {
    expect(accessFor('/realms/commonground/.well-known/openid-configuration', 'commonground')).toBe(
      'public',
    )
    expect(accessFor('/resources/abc/login/x.css', 'commonground')).toBe('public')
    expect(accessFor('/realms/master/protocol/openid-connect/auth', 'commonground')).toBe('admin')
    expect(accessFor('/realms/Commonground/x', 'commonground')).toBe('admin')
    expect(accessFor('/admin/master/console/', 'commonground')).toBe('admin')
    expect(accessFor('/', 'commonground')).toBe('admin')
  })

  it('lets anyone reach the synced realm and resources, only admins the rest', async () => {
    const { app, as } = setup()
    expect((await app.request('/realms/commonground/x', { headers: as('') })).status).toBe(200)
    expect((await app.request('/resources/x.js', { headers: as('') })).status).toBe(200)
    expect((await app.request('/admin/master/console/', { headers: as('') })).status).toBe(403)
    expect((await app.request('/admin/master/console/', { headers: as('alice') })).status).toBe(403)
    expect((await app.request('/realms/master/x', { headers: as('alice') })).status).toBe(403)
    expect((await app.request('/admin/master/console/', { headers: as('admin') })).status).toBe(200)
  })

  it('refuses requests without AppAPI credentials', async () => {
    const { app, seen } = setup()
    expect((await app.request('/realms/commonground/x')).status).toBe(401)
    expect(seen).toHaveLength(0)
  })

  it('refuses encoded separators and checks dot segments after resolving them', async () => {
    const { app, as, seen } = setup()
    const dots = await app.request('/realms/commonground/%2e%2e/master/x', { headers: as('') })
    expect(dots.status).toBe(403)
    const slash = await app.request('/realms/commonground%2f..%2fmaster/x', { headers: as('') })
    expect(slash.status).toBe(400)
    expect(seen).toHaveLength(0)
  })

  it('refuses methods Keycloak does not use', async () => {
    const { app, as } = setup()
    const res = await app.request('/realms/commonground/x', { method: 'PROPFIND', headers: as('') })
    expect(res.status).toBe(405)
  })
})

describe('request headers', () => {
  it('strips AppAPI credentials, Nextcloud cookies and Basic auth; sets X-Forwarded-*', async () => {
    const { app, as, seen } = setup()
    await app.request('/admin/master/console/?a=1', {
      headers: as('admin', {
        Cookie: 'nc_session_id=abc; oc_sessionPassphrase=x; KEYCLOAK_3P_COOKIE=supported',
        Authorization: 'Basic YWRtaW46cGFzcw==',
        'X-Origin-IP': '10.0.0.1',
        'AA-REQUEST-ID': 'r1',
        'Keep-Alive': 'timeout=5',
        'X-Forwarded-Host': 'evil.example',
        Accept: 'text/html',
      }),
    })
    const h = seen[0]?.headers as Headers
    expect(seen[0]?.url).toBe('http://127.0.0.1:8080/admin/master/console/?a=1')
    for (const name of [
      'authorization-app-api',
      'ex-app-id',
      'ex-app-version',
      'aa-version',
      'aa-request-id',
      'x-origin-ip',
      'authorization',
      'keep-alive',
    ]) {
      expect(h.get(name), name).toBeNull()
    }
    expect(h.get('cookie')).toBe('KEYCLOAK_3P_COOKIE=supported')
    expect(h.get('accept')).toBe('text/html')
    expect(h.get('x-forwarded-host')).toBe('cloud.example')
    expect(h.get('x-forwarded-proto')).toBe('https')
    expect(h.get('x-forwarded-prefix')).toBe(PREFIX)
  })

  it('forwards Bearer tokens (the console calls the Admin REST API with them)', async () => {
    const { app, as, seen } = setup()
    await app.request('/admin/realms/commonground/users', {
      headers: as('admin', { Authorization: 'Bearer abc.def' }),
    })
    expect(seen[0]?.headers.get('authorization')).toBe('Bearer abc.def')
  })
})

describe('cookie jar', () => {
  const keycloakCookies: Reply = (req) => {
    if (req.url.endsWith('/login')) {
      const headers = new Headers({ 'content-type': 'text/html' })
      headers.append('set-cookie', `AUTH_SESSION_ID=s1; Path=${PREFIX}/realms/master/; HttpOnly`)
      headers.append('set-cookie', `KC_RESTART=r1; Path=${PREFIX}/realms/master/; HttpOnly`)
      headers.append('set-cookie', `KC_OTHER=o1; Path=${PREFIX}/realms/other/`)
      return new Response('<html></html>', { headers })
    }
    if (req.url.endsWith('/logout')) {
      const headers = new Headers()
      headers.append('set-cookie', `KC_RESTART=; Path=${PREFIX}/realms/master/; Max-Age=0`)
      return new Response('bye', { headers })
    }
    return new Response(req.headers.get('cookie') ?? '')
  }

  it('keeps Keycloak cookies server-side behind one cookie of ours', async () => {
    const { app, as } = setup(keycloakCookies)
    const login = await app.request('/realms/master/login', { headers: as('admin') })
    const cookies = login.headers.getSetCookie()
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatch(
      new RegExp(`^kcx_session=[\\w-]{43}; Path=${PREFIX}/; HttpOnly; SameSite=Lax; Secure$`),
    )
    const ours = (cookies[0] as string).split(';')[0] as string

    const next = await app.request('/realms/master/x', {
      headers: as('admin', { Cookie: `nc_session_id=n; ${ours}` }),
    })
    expect(await next.text()).toBe('AUTH_SESSION_ID=s1; KC_RESTART=r1')
    expect(next.headers.getSetCookie()).toHaveLength(0)

    await app.request('/realms/master/logout', { headers: as('admin', { Cookie: ours }) })
    const after = await app.request('/realms/master/x', { headers: as('admin', { Cookie: ours }) })
    expect(await after.text()).toBe('AUTH_SESSION_ID=s1')
  })

  it('hands the browser KEYCLOAK_SESSION, one Set-Cookie per response, never the identity', async () => {
    const session = `KEYCLOAK_SESSION=h4sh; Version=1; Expires=Tue, 24-Nov-2026 12:00:00 GMT; Max-Age=36000; Path=${PREFIX}/realms/master/; Secure; SameSite=None`
    const { app, as } = setup((req) => {
      const headers = new Headers()
      if (req.url.endsWith('/authenticate')) {
        headers.append(
          'set-cookie',
          `KEYCLOAK_IDENTITY=secret; Path=${PREFIX}/realms/master/; HttpOnly`,
        )
        headers.append('set-cookie', session)
      } else if (req.url.endsWith('/start')) {
        headers.append('set-cookie', `AUTH_SESSION_ID=s1; Path=${PREFIX}/realms/master/; HttpOnly`)
      } else if (req.url.endsWith('/logout')) {
        headers.append('set-cookie', `KEYCLOAK_SESSION=; Max-Age=0; Path=/realms/master/`)
      }
      return new Response(req.headers.get('cookie') ?? '', { headers })
    })
    const start = await app.request('/realms/master/start', { headers: as('admin') })
    const ours = (start.headers.getSetCookie()[0] as string).split(';')[0] as string
    const cookie = { Cookie: ours }

    const login = await app.request('/realms/master/authenticate', { headers: as('admin', cookie) })
    expect(login.headers.getSetCookie()).toEqual([
      `KEYCLOAK_SESSION=h4sh; Path=${PREFIX}/realms/master/; Version=1; Expires=Tue, 24-Nov-2026 12:00:00 GMT; Max-Age=36000; Secure; SameSite=None`,
    ])
    const next = await app.request('/realms/master/x', { headers: as('admin', cookie) })
    expect(next.headers.getSetCookie()).toEqual([])
    expect(await next.text()).toBe(
      'AUTH_SESSION_ID=s1; KEYCLOAK_IDENTITY=secret; KEYCLOAK_SESSION=h4sh',
    )

    // A logout expires it in the browser too; a path without the prefix is moved under it.
    const out = await app.request('/realms/master/logout', { headers: as('admin', cookie) })
    expect(out.headers.getSetCookie()).toEqual([
      `KEYCLOAK_SESSION=; Path=${PREFIX}/realms/master/; Max-Age=0`,
    ])
  })

  it('delivers a mirrored cookie on the next response when ours took the only slot', async () => {
    const { app, as } = setup(() => {
      const headers = new Headers()
      headers.append('set-cookie', `KEYCLOAK_SESSION=h4sh; Path=${PREFIX}/realms/master/`)
      return new Response('ok', { headers })
    })
    const first = await app.request('/realms/master/a', { headers: as('admin') })
    const [ours] = first.headers.getSetCookie()
    expect(ours).toMatch(/^kcx_session=/)
    const second = await app.request('/admin/master/console/', {
      headers: as('admin', { Cookie: (ours as string).split(';')[0] as string }),
    })
    expect(second.headers.getSetCookie()).toEqual([
      `KEYCLOAK_SESSION=h4sh; Path=${PREFIX}/realms/master/`,
    ])
  })

  it('does not hand one Nextcloud user the jar of another', async () => {
    const { app, as } = setup(keycloakCookies)
    const login = await app.request('/realms/master/login', { headers: as('admin') })
    const ours = (login.headers.getSetCookie()[0] as string).split(';')[0] as string
    const other = await app.request('/realms/commonground/x', {
      headers: as('', { Cookie: ours }),
    })
    expect(await other.text()).toBe('')
  })

  it('parses Set-Cookie attributes', () => {
    expect(parseSetCookie('A=b=c; Path=/x; Max-Age=10; HttpOnly')).toEqual({
      name: 'A',
      value: 'b=c',
      path: '/x',
      maxAge: 10,
    })
    expect(parseSetCookie('garbage')).toBeUndefined()
  })
})

describe('responses', () => {
  it('moves Location headers under the public prefix', async () => {
    const locations = [
      'http://127.0.0.1:8080/admin/master/console/',
      '/realms/master/account',
      `${PUBLIC}/admin/`,
      `${PREFIX}/admin/`,
      'https://elsewhere.example/x',
    ]
    const { app, as } = setup((req) => {
      const i = Number(new URL(req.url).searchParams.get('i'))
      return new Response(null, { status: 302, headers: { location: locations[i] as string } })
    })
    const got = []
    for (let i = 0; i < locations.length; i++) {
      const res = await app.request(`/admin/?i=${i}`, { headers: as('admin') })
      expect(res.status).toBe(302)
      got.push(res.headers.get('location'))
    }
    expect(got).toEqual([
      `${PUBLIC}/admin/master/console/`,
      `${PUBLIC}/realms/master/account`,
      `${PUBLIC}/admin/`,
      `${PUBLIC}/admin/`,
      'https://elsewhere.example/x',
    ])
  })

  it('answers redirects with a page when the PHP proxy would follow them itself', async () => {
    const { app, as } = setup(
      () => new Response(null, { status: 302, headers: { location: '/admin/#a=1&b=2' } }),
      { redirectsAsPage: true },
    )
    const res = await app.request('/admin/', { headers: as('admin') })
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    expect(await res.text()).toContain(`url=${PUBLIC}/admin/#a=1&#38;b=2`)
  })

  it("allows same-origin framing only where Keycloak's headers would forbid it", async () => {
    const replies: Record<string, Record<string, string>> = {
      '/a': {
        'content-type': 'text/html',
        'content-security-policy': "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
        'x-frame-options': 'SAMEORIGIN',
      },
      '/b': {
        'content-type': 'text/html',
        'content-security-policy': "frame-ancestors 'none'",
        'x-frame-options': 'DENY',
      },
      '/c': { 'content-type': 'text/html' },
    }
    const { app, as } = setup(
      (req) => new Response('x', { headers: replies[new URL(req.url).pathname] }),
    )
    const a = await app.request('/a', { headers: as('admin') })
    expect(a.headers.get('content-security-policy')).toBe(
      "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
    )
    expect(a.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    const b = await app.request('/b', { headers: as('admin') })
    expect(b.headers.get('content-security-policy')).toBe("frame-ancestors 'self'")
    expect(b.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    const c = await app.request('/c', { headers: as('admin') })
    expect(c.headers.get('content-security-policy')).toBe("frame-ancestors 'self'")
  })

  it('answers 502 JSON when Keycloak is down', async () => {
    const { app, as } = setup(() => {
      throw new TypeError('fetch failed')
    })
    const res = await app.request('/realms/commonground/x', { headers: as('') })
    expect(res.status).toBe(502)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'KEYCLOAK_UNAVAILABLE',
    )
  })
})

describe('against a real upstream', () => {
  let server: Server | undefined
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())))

  it('streams request and response bodies with every method', async () => {
    const got: { method?: string; body: string; te?: string }[] = []
    server = createServer(async (req: IncomingMessage, res) => {
      let body = ''
      for await (const chunk of req) {
        body += chunk
      }
      got.push({ method: req.method, body, te: req.headers['transfer-encoding'] })
      res.writeHead(201, { 'content-type': 'text/plain' })
      res.write('part1-')
      setTimeout(() => res.end('part2'), 20)
    })
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as AddressInfo).port
    const { app, as } = appWithUi(
      keycloakProxy({
        upstream: `http://127.0.0.1:${port}`,
        publicUrl: PUBLIC,
        realm: 'commonground',
        isAdmin: async () => true,
      }),
    )
    const headers = as('admin')
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const stream = new ReadableStream<Uint8Array>({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode('hello '))
          ctl.enqueue(new TextEncoder().encode(method))
          ctl.close()
        },
      })
      const res = await app.request('/admin/realms/x', {
        method,
        headers,
        body: stream,
        duplex: 'half',
      } as RequestInit)
      expect(res.status).toBe(201)
      expect(await res.text()).toBe('part1-part2')
    }
    expect(got.map((g) => [g.method, g.body])).toEqual([
      ['POST', 'hello POST'],
      ['PUT', 'hello PUT'],
      ['PATCH', 'hello PATCH'],
      ['DELETE', 'hello DELETE'],
    ])
    expect(got[0]?.te).toBe('chunked')
    const opt = await app.request('/admin/realms/x', { method: 'OPTIONS', headers })
    expect(opt.status).toBe(201)
  })

  it('answers 502 when nothing listens', async () => {
    const { app, as } = appWithUi(
      keycloakProxy({
        upstream: 'http://127.0.0.1:9',
        publicUrl: PUBLIC,
        realm: 'commonground',
        isAdmin: async () => true,
      }),
    )
    const res = await app.request('/realms/commonground/x', { headers: as('') })
    expect(res.status).toBe(502)
  })
})
