import fc from 'fast-check'
import type { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { buildTestApp, TEST_APP_SECRET, TEST_CONSUMER_SECRET } from '../../test/app-builder.js'
import type { Consumer } from '../config/config.js'
import { FailureLimiter } from './failure-limiter.js'
import type { AppEnv } from './types.js'

const APP_ID = 'keycloak'
const APP_SECRET = TEST_APP_SECRET
const SECRET = TEST_CONSUMER_SECRET

interface AppOptions {
  consumers?: Consumer[]
  limiter?: FailureLimiter
  clients?: string[]
}

/** The whole app over fakes (test/app-builder.ts): the access table, then tokenRoutes under /api. */
async function makeApp(opts: AppOptions = {}) {
  const built = await buildTestApp({
    ...opts,
    users: { alice: { enabled: true }, bob: { enabled: true } },
  })
  return built
}

function appApiHeaders(user: string, secret = APP_SECRET): Record<string, string> {
  return {
    'EX-APP-ID': APP_ID,
    'EX-APP-VERSION': '1.0.0',
    'AUTHORIZATION-APP-API': Buffer.from(`${user}:${secret}`).toString('base64'),
  }
}

function post(
  app: Hono<AppEnv>,
  query: string,
  headers: Record<string, string> = { 'X-API-SECRET': SECRET, 'X-NC-USER-ID': 'alice' },
) {
  return app.request(`/api/token${query}`, { method: 'POST', headers })
}

async function expectError(res: Response, status: number, code: string) {
  const body = await res.json()
  expect(res.status, JSON.stringify(body)).toBe(status)
  expect(body).toMatchObject({ error: { code, message: expect.any(String) } })
  expect(body.error.requestId).not.toBe('')
}

describe('POST /api/token', () => {
  it("answers the original's request with the original's response shape", async () => {
    const { app } = await makeApp()
    const res = await app.request('http://keycloak:23000/api/token?client_id=opentalk', {
      method: 'POST',
      headers: { 'X-API-SECRET': SECRET, 'X-NC-USER-ID': 'alice' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = await res.json()
    expect(Object.keys(body).sort()).toEqual([
      'access_token',
      'expires_in',
      'id_token',
      'refresh_token',
      'token_type',
    ])
    expect(body).toMatchObject({
      access_token: expect.stringMatching(/^at-alice-opentalk-/),
      refresh_token: '',
      id_token: 'id-alice',
      expires_in: 300,
      token_type: 'Bearer',
    })
  })

  it('passes extra scopes on, with openid always included', async () => {
    const { app, keycloak } = await makeApp()
    const seen: string[] = []
    const grant = keycloak.jwtGrant.bind(keycloak)
    keycloak.jwtGrant = (req) => {
      seen.push(req.scope ?? '')
      return grant(req)
    }
    expect((await post(app, '?client_id=opentalk&scope=email+profile')).status).toBe(200)
    expect(seen).toEqual(['openid email profile'])
    await expectError(
      await post(app, '?client_id=opentalk&scope=offline_access'),
      400,
      'INVALID_INPUT',
    )
  })

  it('refuses a missing or wrong secret with 401, and a wrong secret that keeps failing with 429', async () => {
    const { app } = await makeApp()
    const wrong = { 'X-API-SECRET': 'wrong', 'X-NC-USER-ID': 'alice' }
    await expectError(
      await post(app, '?client_id=opentalk', { 'X-NC-USER-ID': 'alice' }),
      401,
      'UNAUTHORIZED',
    )
    for (let i = 0; i < 10; i++) {
      await expectError(await post(app, '?client_id=opentalk', wrong), 401, 'UNAUTHORIZED')
    }
    const blocked = await post(app, '?client_id=opentalk', wrong)
    await expectError(blocked, 429, 'RATE_LIMITED')
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
    // Every request here comes from one address, as behind AppAPI's proxy or HaRP: the right
    // secret still passes, and another wrong one is judged on its own.
    expect((await post(app, '?client_id=opentalk')).status).toBe(200)
    const other = { 'X-API-SECRET': 'also-wrong', 'X-NC-USER-ID': 'alice' }
    await expectError(await post(app, '?client_id=opentalk', other), 401, 'UNAUTHORIZED')
  })

  it('stops a Nextcloud user guessing secrets through the proxy, and nobody else', async () => {
    const { app } = await makeApp()
    for (let i = 0; i < 10; i++) {
      const guess = { ...appApiHeaders('bob'), 'X-API-SECRET': `guess-${i}` }
      await expectError(await post(app, '?client_id=opentalk', guess), 401, 'UNAUTHORIZED')
    }
    const next = { ...appApiHeaders('bob'), 'X-API-SECRET': 'guess-10' }
    await expectError(await post(app, '?client_id=opentalk', next), 429, 'RATE_LIMITED')
    // bob's own token through the proxy, alice's, and the consumer's secret all still pass.
    expect((await post(app, '?client_id=opentalk', appApiHeaders('bob'))).status).toBe(200)
    expect((await post(app, '?client_id=opentalk', appApiHeaders('alice'))).status).toBe(200)
    expect((await post(app, '?client_id=opentalk')).status).toBe(200)
  })

  it("counts a wrong app secret by itself, not against Nextcloud's right one", async () => {
    const { app } = await makeApp()
    const forged = appApiHeaders('alice', 'not-the-app-secret')
    for (let i = 0; i < 10; i++) {
      await expectError(await post(app, '?client_id=opentalk', forged), 401, 'UNAUTHORIZED')
    }
    await expectError(await post(app, '?client_id=opentalk', forged), 429, 'RATE_LIMITED')
    expect((await post(app, '?client_id=opentalk', appApiHeaders('alice'))).status).toBe(200)
  })

  it('refuses an unknown client, and one the consumer may not use, with 403', async () => {
    const { app, memory } = await makeApp()
    await expectError(await post(app, '?client_id=admin-cli'), 403, 'FORBIDDEN')
    await expectError(await post(app, '?client_id=files'), 403, 'FORBIDDEN')
    expect(memory.issuances.map((i) => i.outcome)).toEqual(['denied', 'denied'])
  })

  it('gives each consumer the clients configured for it', async () => {
    const { app } = await makeApp({
      consumers: [
        { name: 'talk', secret: SECRET, clients: ['opentalk'] },
        { name: 'files', secret: 'files-consumer-secret-0123', clients: ['files'] },
      ],
    })
    const asFiles = { 'X-API-SECRET': 'files-consumer-secret-0123', 'X-NC-USER-ID': 'bob' }
    expect((await post(app, '?client_id=files', asFiles)).status).toBe(200)
    await expectError(await post(app, '?client_id=opentalk', asFiles), 403, 'FORBIDDEN')
  })

  it.each([
    ['', 'missing client_id'],
    ['?client_id=', 'empty client_id'],
    ['?client_id=open%20talk', 'malformed client_id'],
    [`?client_id=${'a'.repeat(256)}`, 'overlong client_id'],
    ['?client_id=opentalk&client_id=files', 'repeated client_id'],
    [`?client_id=opentalk&scope=${'a'.repeat(1025)}`, 'overlong scope'],
  ])('answers 400 for %s (%s)', async (query) => {
    const { app } = await makeApp()
    await expectError(await post(app, query), 400, 'INVALID_INPUT')
  })

  it.each<[string | undefined, string]>([
    [undefined, 'missing'],
    ['', 'empty'],
    ['a/b', 'with a slash'],
    ['x'.repeat(65), 'too long'],
    ['<script>', 'with markup'],
    ['.', 'the current path segment'],
    ['..', 'the parent path segment'],
    ['...', 'dots only'],
  ])('answers 400 for an X-NC-USER-ID that is %s (%s)', async (userId) => {
    const { app, engine } = await makeApp()
    const headers: Record<string, string> = { 'X-API-SECRET': SECRET }
    if (userId !== undefined) {
      headers['X-NC-USER-ID'] = userId
    }
    await expectError(await post(app, '?client_id=opentalk', headers), 400, 'INVALID_INPUT')
    expect(engine.lookups).toEqual([])
  })

  it('answers 404 for a user Nextcloud does not have', async () => {
    const { app } = await makeApp()
    const res = await post(app, '?client_id=opentalk', {
      'X-API-SECRET': SECRET,
      'X-NC-USER-ID': 'nobody',
    })
    await expectError(res, 404, 'NOT_FOUND')
  })

  it('answers 403 for a disabled user', async () => {
    const { app, keycloak } = await makeApp()
    keycloak.users.get('alice')!.enabled = false
    await expectError(await post(app, '?client_id=opentalk'), 403, 'FORBIDDEN')
  })

  it('answers 502 when Keycloak is down', async () => {
    const { app, keycloak } = await makeApp()
    keycloak.down = true
    await expectError(await post(app, '?client_id=opentalk'), 502, 'KEYCLOAK_UNAVAILABLE')
  })

  describe('through Nextcloud (verified AUTHORIZATION-APP-API)', () => {
    it("mints for the authenticated user with the first consumer's clients", async () => {
      const { app, memory } = await makeApp()
      const res = await post(app, '?client_id=opentalk', appApiHeaders('bob'))
      expect(res.status).toBe(200)
      expect((await res.json()).access_token).toMatch(/^at-bob-opentalk-/)
      expect(memory.issuances).toEqual([
        { consumer: 'default@nextcloud', userId: 'bob', clientId: 'opentalk', outcome: 'issued' },
      ])
      await expectError(await post(app, '?client_id=files', appApiHeaders('bob')), 403, 'FORBIDDEN')
    })

    it('accepts an X-NC-USER-ID naming the same user and refuses one naming another', async () => {
      const { app } = await makeApp()
      const same = await post(app, '?client_id=opentalk', {
        ...appApiHeaders('bob'),
        'X-NC-USER-ID': 'bob',
      })
      expect(same.status).toBe(200)
      const other = await post(app, '?client_id=opentalk', {
        ...appApiHeaders('bob'),
        'X-NC-USER-ID': 'alice',
      })
      await expectError(other, 403, 'FORBIDDEN')
    })

    it('refuses a forged AppAPI header with 401 and an anonymous one with 403', async () => {
      const { app } = await makeApp()
      await expectError(
        await post(app, '?client_id=opentalk', appApiHeaders('alice', 'guess')),
        401,
        'UNAUTHORIZED',
      )
      await expectError(await post(app, '?client_id=opentalk', appApiHeaders('')), 403, 'FORBIDDEN')
    })

    it('prefers X-API-SECRET when both are sent, so a consumer cannot be mistaken for a user', async () => {
      const { app } = await makeApp()
      const res = await post(app, '?client_id=opentalk', {
        ...appApiHeaders('bob'),
        'X-API-SECRET': SECRET,
        'X-NC-USER-ID': 'alice',
      })
      expect((await res.json()).access_token).toMatch(/^at-alice-/)
    })
  })
})

describe('POST /api/token with junk', () => {
  it('never answers 5xx', async () => {
    const latin1 = Array.from({ length: 0xff - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
      .filter((ch) => ch !== '\x7f')
      .join('')
    const junk = (maxLength: number, alphabet: string) =>
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength })
    const value = (valid: string[]) =>
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...valid) },
        {
          weight: 4,
          arbitrary: fc.oneof(
            junk(8, latin1),
            junk(300, latin1),
            fc.constantFrom('', ' ', 'alice\u00a0', '%zz'),
          ),
        },
      )
    /** `arb` with probability `p`, else undefined (which a failing case shrinks to) */
    const sometimes = <T>(p: number, arb: fc.Arbitrary<T>) =>
      fc.oneof(
        { weight: Math.round((1 - p) * 100), arbitrary: fc.constant(undefined) },
        { weight: Math.round(p * 100), arbitrary: arb },
      )
    const param = fc.record({
      name: fc.oneof(
        fc.constantFrom('client_id', 'scope', 'client_id'),
        junk(5, `${latin1}%&=+#?/\\;`),
      ),
      raw: fc.boolean(),
      value: value(['opentalk', 'files', 'openid email', 'offline_access']),
    })
    const request = fc.record({
      secret: sometimes(0.85, value([SECRET])),
      user: sometimes(0.8, value(['alice', 'bob', 'nobody', "o'neil", 'a b'])),
      appApi: sometimes(
        0.3,
        fc.record({
          uid: value(['alice', '', 'x:y']),
          appSecret: fc.constantFrom(APP_SECRET, 'x'),
          forged: sometimes(0.3, junk(40, latin1)),
        }),
      ),
      params: fc.array(param, { maxLength: 3 }),
      bareQuery: fc.constantFrom('', '?', '?&&='),
    })

    // failures from one source would soon be 429s; this run is about the rest of the pipeline
    const { app } = await makeApp({ limiter: new FailureLimiter(Number.MAX_SAFE_INTEGER) })
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {}
        if (r.secret !== undefined) {
          headers['X-API-SECRET'] = r.secret
        }
        if (r.user !== undefined) {
          headers['X-NC-USER-ID'] = r.user
        }
        if (r.appApi !== undefined) {
          Object.assign(headers, appApiHeaders(r.appApi.uid, r.appApi.appSecret))
          if (r.appApi.forged !== undefined) {
            headers['AUTHORIZATION-APP-API'] = r.appApi.forged
          }
        }
        const params = r.params.map(
          (p) => `${p.name}=${p.raw ? p.value.replace(/[#\s]/g, '') : encodeURIComponent(p.value)}`,
        )
        const query = params.length > 0 ? `?${params.join('&')}` : r.bareQuery
        const res = await app.request(`/api/token${query}`, { method: 'POST', headers })
        const context = `${query} ${JSON.stringify(headers)}`
        expect(res.status, context).toBeLessThan(500)
        if (res.status >= 400) {
          expect(await res.json(), context).toMatchObject({ error: { code: expect.any(String) } })
        }
      }),
      { numRuns: 400 },
    )
  })
})
