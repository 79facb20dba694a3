import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { testConfig } from '../../test/config.js'
import { appWithUi } from '../../test/ui-app.js'
import { isAppError } from '../errors.js'
import { accessFor, checkMethod, upstreamUrl } from './paths.js'
import { keycloakProxy } from './proxy.js'
import { parseSetCookie } from './set-cookie.js'

const PUBLIC = 'https://cloud.example/index.php/apps/app_api/proxy/keycloak'
const PREFIX = '/index.php/apps/app_api/proxy/keycloak'

interface Seen {
  method: string
  url: string
  headers: Headers
  body: string
}

type Reply = (req: Seen) => Response

function setup(
  reply: Reply = () => new Response('ok'),
  extra: Partial<Parameters<typeof keycloakProxy>[0]> = {},
) {
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

  it('refuses what Keycloak must not be asked for with AppErrors', () => {
    const codeOf = (f: () => unknown) => {
      try {
        f()
        return undefined
      } catch (err) {
        return isAppError(err) ? err.code : 'not an AppError'
      }
    }
    const up = new URL('http://127.0.0.1:8080')
    expect(codeOf(() => checkMethod('PROPFIND'))).toBe('METHOD_NOT_ALLOWED')
    expect(codeOf(() => checkMethod('PATCH'))).toBeUndefined()
    expect(codeOf(() => upstreamUrl(up, new URL('http://x//evil.example/a')))).toBe('INVALID_INPUT')
    expect(codeOf(() => upstreamUrl(up, new URL('http://x/realms/a%2fb')))).toBe('INVALID_INPUT')
    expect(upstreamUrl(up, new URL('https://x/realms/a/b?c=1')).href).toBe(
      'http://127.0.0.1:8080/realms/a/b?c=1',
    )
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

  it('forwards no empty header (Keycloak fails on an empty Content-Type)', async () => {
    const { app, as, seen } = setup()
    await app.request('/realms/commonground/x', {
      headers: as('', { 'Content-Type': '', 'X-Empty': ' ' }),
    })
    expect(seen[0]?.headers.has('content-type')).toBe(false)
    expect(seen[0]?.headers.has('x-empty')).toBe(false)
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

  it('creates no jar for an answer that only deletes cookies', async () => {
    const { app, as } = setup(() => {
      const headers = new Headers()
      headers.append('set-cookie', `KC_RESTART=; Path=${PREFIX}/realms/commonground/; Max-Age=0`)
      headers.append('set-cookie', `KC_STATE=gone; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`)
      return new Response('ok', { headers })
    })
    const res = await app.request('/realms/commonground/x', { headers: as('') })
    expect(res.headers.getSetCookie()).toEqual([])
  })

  /** Keycloak starting a session on every login page. */
  let sessionNo = 0
  const sessions: Reply = (req) => {
    if (req.url.endsWith('/login')) {
      const headers = new Headers()
      headers.append('set-cookie', `AUTH_SESSION_ID=s${++sessionNo}; Path=${PREFIX}/; HttpOnly`)
      return new Response('<html></html>', { headers })
    }
    return new Response(req.headers.get('cookie') ?? '')
  }
  const REALM_PATH = '/realms/commonground'

  it("keeps an admin's console session through 10 050 anonymous sessions", async () => {
    const { app, as } = setup(sessions)
    const login = await app.request(`${REALM_PATH}/login`, { headers: as('admin') })
    const ours = (login.headers.getSetCookie()[0] as string).split(';')[0] as string
    const kept = await (
      await app.request(`${REALM_PATH}/x`, { headers: as('admin', { Cookie: ours }) })
    ).text()
    expect(kept).toMatch(/^AUTH_SESSION_ID=s\d+$/)
    // Each anonymous visitor of the public realm gets a session cookie from Keycloak.
    for (let i = 0; i < 10_050; i++) {
      const res = await app.request(`${REALM_PATH}/login`, { headers: as('') })
      expect(res.headers.getSetCookie()).toHaveLength(1)
    }
    const after = await app.request(`${REALM_PATH}/x`, { headers: as('admin', { Cookie: ours }) })
    expect(await after.text()).toBe(kept)
  }, 60_000)

  it("bounds each user's jars; only the user's own new jars replace them", async () => {
    const { app, as } = setup(sessions, { jars: { perUser: 3, anonymous: 2 } })
    const jarOf = async (uid: string) => {
      const res = await app.request(`${REALM_PATH}/login`, { headers: as(uid) })
      return (res.headers.getSetCookie()[0] as string).split(';')[0] as string
    }
    const keeps = async (uid: string, cookie: string) =>
      (await (
        await app.request(`${REALM_PATH}/x`, { headers: as(uid, { Cookie: cookie }) })
      ).text()) !== ''
    const admin = await jarOf('admin')
    const alice = [await jarOf('alice'), await jarOf('alice'), await jarOf('alice')]
    expect(await keeps('alice', alice[0] as string)).toBe(true)
    // A fourth session of alice's replaces her least recently used one, nobody else's.
    await jarOf('alice')
    expect(await keeps('alice', alice[1] as string)).toBe(false)
    expect(await keeps('alice', alice[0] as string)).toBe(true)
    const anonymous = [await jarOf(''), await jarOf(''), await jarOf('')]
    expect(await keeps('', anonymous[0] as string)).toBe(false)
    expect(await keeps('', anonymous[2] as string)).toBe(true)
    expect(await keeps('admin', admin)).toBe(true)
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
    )
    // Only the PHP proxy sets X-Origin-IP.
    const res = await app.request('/admin/', {
      headers: as('admin', { 'X-Origin-IP': '10.0.0.1' }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    expect(await res.text()).toContain(`url=${PUBLIC}/admin/#a=1&#38;b=2`)
    // HaRP and direct callers get the redirect itself.
    const harp = await app.request('/admin/', { headers: as('admin') })
    expect(harp.status).toBe(302)
    expect(harp.headers.get('location')).toBe(`${PUBLIC}/admin/#a=1&b=2`)
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

  it('sends every answer whole with its Content-Length, chunked ones included', async () => {
    const { app, as } = setup(
      () =>
        new Response(
          new ReadableStream({
            start(ctl) {
              ctl.enqueue(new TextEncoder().encode('part1-'))
              ctl.enqueue(new TextEncoder().encode('part2'))
              ctl.close()
            },
          }),
          { headers: { 'content-type': 'text/javascript' } },
        ),
    )
    const res = await app.request('/resources/x/main.js', { headers: as('') })
    expect(res.headers.get('content-length')).toBe('11')
    expect(await res.text()).toBe('part1-part2')
  })

  it('hands the PHP proxy an .html page with scripts gzip-encoded, so its nonces fit', async () => {
    const page = '<html><script>var a = 1</script></html>'
    const { app, as } = setup(
      () =>
        new Response(page, {
          headers: { 'content-type': 'text/html', 'content-length': String(page.length) },
        }),
    )
    const path = '/realms/commonground/protocol/openid-connect/3p-cookies/step1.html'
    const php = await app.request(path, { headers: as('', { 'X-Origin-IP': '10.0.0.1' }) })
    expect(php.headers.get('content-encoding')).toBe('gzip')
    const zipped = Buffer.from(await php.arrayBuffer())
    expect(php.headers.get('content-length')).toBe(String(zipped.length))
    expect(gunzipSync(zipped).toString()).toBe(page)
    // HaRP and direct callers rewrite nothing: the page as it is.
    const harp = await app.request(path, { headers: as('') })
    expect(harp.headers.get('content-encoding')).toBeNull()
    expect(await harp.text()).toBe(page)
    // Other paths the PHP proxy leaves alone.
    const other = await app.request('/realms/commonground/page', {
      headers: as('', { 'X-Origin-IP': '10.0.0.1' }),
    })
    expect(await other.text()).toBe(page)
  })

  it('streams an answer over the buffer limit where the caller can take it', async () => {
    const big = 'x'.repeat(100)
    const chunked = () =>
      new Response(
        new ReadableStream({
          start(ctl) {
            for (let i = 0; i < 10; i++) {
              ctl.enqueue(new TextEncoder().encode(big.slice(i * 10, i * 10 + 10)))
            }
            ctl.close()
          },
        }),
      )
    const framed = () => new Response(big, { headers: { 'content-length': '100' } })
    let reply: () => Response = chunked
    const { app, as } = setup(() => reply(), { maxBufferedBytes: 25 })
    const php = { headers: as('', { 'X-Origin-IP': '10.0.0.1' }) }
    expect(await (await app.request('/resources/a.js', { headers: as('') })).text()).toBe(big)
    // The PHP proxy cannot pass a body without length: refused rather than broken.
    const refused = await app.request('/resources/a.js', php)
    expect(refused.status).toBe(502)
    reply = framed
    const whole = await app.request('/resources/a.js', php)
    expect(whole.headers.get('content-length')).toBe('100')
    expect(await whole.text()).toBe(big)
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

  it("answers Keycloak's failures through the app's error handler, with what went wrong", async () => {
    type Failure = { error: { code: string; message: string } }
    let reply: () => Response = () => {
      throw new TypeError('fetch failed')
    }
    const { app, as } = setup(() => reply(), { maxBufferedBytes: 8 })
    const failure = async (headers: Record<string, string>) => {
      const res = await app.request('/resources/a.js', { headers })
      expect(res.status).toBe(502)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      return ((await res.json()) as Failure).error
    }
    expect(await failure(as(''))).toEqual({
      code: 'KEYCLOAK_UNAVAILABLE',
      message: 'Keycloak is not reachable',
      requestId: expect.any(String),
    })
    reply = () =>
      new Response(
        new ReadableStream({
          start(ctl) {
            ctl.error(new Error('connection reset'))
          },
        }),
      )
    expect((await failure(as(''))).message).toBe('Keycloak broke off its answer')
    reply = () => new Response(new Blob(['x'.repeat(20)]).stream())
    const tooLarge = await failure(as('', { 'X-Origin-IP': '10.0.0.1' }))
    expect(tooLarge.code).toBe('KEYCLOAK_UNAVAILABLE')
    expect(tooLarge.message).toMatch(/too large for Nextcloud's proxy/)
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
