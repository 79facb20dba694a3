import { createHash } from 'node:crypto'
import { Hono } from 'hono'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { onError } from '../http/errors.js'
import type { AppEnv } from '../http/types.js'
import { BROKER_CLIENT_ID, clientSecretName, NEXTCLOUD_IDP_ALIAS } from './clients.js'
import { AuthCodes } from './codes.js'
import { providerKeys } from './keys.js'
import { OidcProvider } from './provider.js'
import { oidcRoutes } from './routes.js'

type Built = Awaited<ReturnType<typeof buildTestApp>>

const VERIFIER = 'verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG'
const challengeOf = (verifier: string) => createHash('sha256').update(verifier).digest('base64url')

/** A test app with a clock the test moves, and the broker client's secret and redirect URI. */
async function setup(
  users?: Record<string, { enabled: boolean; groups?: string[] }>,
  gateGroups?: string[],
) {
  const clock = { now: Date.parse('2026-12-02T12:00:00Z') }
  const t = await buildTestApp({
    now: () => clock.now,
    ...(users ? { users } : {}),
    ...(gateGroups ? { gateGroups } : {}),
  })
  const secret = await t.memory.store.getOrCreateSecret(
    clientSecretName(BROKER_CLIENT_ID),
    () => 'broker-secret-0123456789abcdef',
  )
  const redirectUri = `${t.config.keycloak.publicUrl}/realms/${t.config.keycloak.realm}/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
  const issuer = `${t.config.keycloak.publicUrl}/oidc`
  return { t, clock, secret, redirectUri, issuer }
}
type Setup = Awaited<ReturnType<typeof setup>>

function authorizeQuery(s: Setup, extra: Record<string, string | undefined> = {}): string {
  const params: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: BROKER_CLIENT_ID,
    redirect_uri: s.redirectUri,
    scope: 'openid profile email',
    state: 'state-1',
    nonce: 'nonce-1',
    code_challenge: challengeOf(VERIFIER),
    code_challenge_method: 'S256',
    ...extra,
  }
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) {
      query.set(name, value)
    }
  }
  return query.toString()
}

/** GET /oidc/authorize as AppAPI forwards it for `user` ('' = nobody signed in). */
function authorize(s: Setup, user: string, extra: Record<string, string | undefined> = {}) {
  return s.t.app.request(`/oidc/authorize?${authorizeQuery(s, extra)}`, {
    headers: s.t.as(user),
  })
}

/** Where a direct (HaRP) authorize answer sends the browser. */
function location(res: Response): URL {
  expect(res.status).toBe(302)
  return new URL(res.headers.get('location') ?? '')
}

async function codeFor(s: Setup, user: string, extra: Record<string, string> = {}) {
  const to = location(await authorize(s, user, extra))
  const code = to.searchParams.get('code')
  expect(code, to.toString()).toBeTruthy()
  return code as string
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
}

function redeem(
  s: Setup,
  form: Record<string, string | undefined>,
  auth: 'basic' | 'post' | { header: string } | 'none' = 'basic',
  app: { request: Built['app']['request'] } = s.t.app,
) {
  const body = new URLSearchParams()
  const fields: Record<string, string | undefined> = {
    grant_type: 'authorization_code',
    redirect_uri: s.redirectUri,
    code_verifier: VERIFIER,
    ...(auth === 'post' ? { client_id: BROKER_CLIENT_ID, client_secret: s.secret } : {}),
    ...form,
  }
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) {
      body.set(name, value)
    }
  }
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
  }
  if (auth === 'basic') {
    headers.authorization = basic(BROKER_CLIENT_ID, s.secret)
  } else if (typeof auth === 'object') {
    headers.authorization = auth.header
  }
  return app.request('/oidc/token', { method: 'POST', headers, body: body.toString() })
}

async function refused(res: Response, status: number, error: string) {
  expect(res.status).toBe(status)
  const body = (await res.json()) as Record<string, unknown>
  expect(body.error).toBe(error)
  expect(body).not.toHaveProperty('id_token')
  expect(body).not.toHaveProperty('access_token')
}

describe('the OpenID provider: the code flow', () => {
  it('signs the Nextcloud user in: code to the registered redirect URI, then signed tokens', async () => {
    const s = await setup()
    const to = location(await authorize(s, 'alice'))
    expect(`${to.origin}${to.pathname}`).toBe(s.redirectUri)
    expect(to.searchParams.get('state')).toBe('state-1')
    expect(to.searchParams.get('iss')).toBe(s.issuer)
    const code = to.searchParams.get('code') as string
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/)

    const res = await redeem(s, { code })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 300 })
    const jwks = await (await s.t.app.request('/oidc/jwks')).json()
    const { payload, protectedHeader } = await jwtVerify(
      body.id_token as string,
      createLocalJWKSet(jwks),
      { issuer: s.issuer, audience: BROKER_CLIENT_ID, currentDate: new Date(s.clock.now) },
    )
    expect(protectedHeader.alg).toBe('ES256')
    expect(payload).toMatchObject({
      sub: 'alice',
      nonce: 'nonce-1',
      preferred_username: 'alice',
      name: 'alice display',
      email: 'alice@example.org',
      iat: s.clock.now / 1000,
      exp: s.clock.now / 1000 + 300,
    })
    const access = await jwtVerify(body.access_token as string, createLocalJWKSet(jwks), {
      issuer: s.issuer,
      audience: BROKER_CLIENT_ID,
      currentDate: new Date(s.clock.now),
    })
    expect(access.payload.sub).toBe('alice')
  })

  it('takes client_secret_post as well as client_secret_basic', async () => {
    const s = await setup()
    const res = await redeem(s, { code: await codeFor(s, 'bob') }, 'post')
    expect(res.status).toBe(200)
    const body = (await res.json()) as { id_token: string }
    expect(decodeJwt(body.id_token).sub).toBe('bob')
  })

  it('through the PHP proxy, sends the browser on with a page its own CSP allows, not a 302', async () => {
    const s = await setup()
    const res = await s.t.app.request(`/oidc/authorize?${authorizeQuery(s)}`, {
      headers: { ...s.t.as('alice'), 'X-Origin-IP': '203.0.113.7' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; frame-ancestors 'self'",
    )
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    const html = await res.text()
    const target = /content="0;url=([^"]+)"/.exec(html)?.[1]?.replace(/&#38;/g, '&')
    const to = new URL(target ?? '')
    expect(`${to.origin}${to.pathname}`).toBe(s.redirectUri)
    expect(to.searchParams.get('state')).toBe('state-1')
    expect(html).toContain(`<a href="`)
    // The code on the page redeems like any other.
    expect((await redeem(s, { code: to.searchParams.get('code') as string })).status).toBe(200)
  })

  it('sends a visitor to Nextcloud’s login, which comes back to the same authorize request', async () => {
    const s = await setup()
    const query = authorizeQuery(s)
    const back = `${new URL(s.issuer).pathname}/authorize?${query}&from_nextcloud_login=1`
    const direct = location(await authorize(s, ''))
    expect(`${direct.origin}${direct.pathname}`).toBe(`${s.t.config.nextcloud.url}/index.php/login`)
    expect(direct.searchParams.get('redirect_url')).toBe(back)
    expect(direct.searchParams.has('code')).toBe(false)

    const viaPhp = await s.t.app.request(`/oidc/authorize?${query}`, {
      headers: { ...s.t.as(''), 'X-Origin-IP': '203.0.113.7' },
    })
    expect(viaPhp.status).toBe(200)
    const html = await viaPhp.text()
    const target = /content="0;url=([^"]+)"/.exec(html)?.[1]?.replace(/&#38;/g, '&')
    expect(new URL(target ?? '').searchParams.get('redirect_url')).toBe(back)

    // Once signed in, the very same request gets its code, on a page: a redirect right after
    // the login form's POST would be held to Nextcloud's `form-action 'self'` by the browser.
    const after = await s.t.app.request(back.slice(back.indexOf('/oidc/')), {
      headers: s.t.as('alice'),
    })
    expect(after.status).toBe(200)
    const next = /content="0;url=([^"]+)"/.exec(await after.text())?.[1]?.replace(/&#38;/g, '&')
    expect(new URL(next ?? '').searchParams.get('code')).toBeTruthy()
    expect(new URL(next ?? '').searchParams.has('from_nextcloud_login')).toBe(false)
  })

  it('sends the way back to Nextcloud’s login without a bare @, which its login would refuse', async () => {
    const s = await setup()
    const raw = `/oidc/authorize?${authorizeQuery(s)}&login_hint=alice@example.org`.replace(
      'state=state-1',
      'state=a@b',
    )
    const to = location(await s.t.app.request(raw, { headers: s.t.as('') }))
    const back = to.searchParams.get('redirect_url') ?? ''
    expect(back).not.toContain('@')
    const page = await s.t.app.request(back.slice(back.indexOf('/oidc/')), {
      headers: s.t.as('alice'),
    })
    const again = new URL(
      /content="0;url=([^"]+)"/.exec(await page.text())?.[1]?.replace(/&#38;/g, '&') ?? '',
    )
    expect(again.searchParams.get('state')).toBe('a@b')
    expect(again.searchParams.get('code')).toBeTruthy()
  })

  it('answers prompt=none without a Nextcloud session with login_required, not the login page', async () => {
    const s = await setup()
    const to = location(await authorize(s, '', { prompt: 'none' }))
    expect(`${to.origin}${to.pathname}`).toBe(s.redirectUri)
    expect(to.searchParams.get('error')).toBe('login_required')
    expect(to.searchParams.get('state')).toBe('state-1')
  })

  it('publishes discovery and keys, with the direct endpoints where Keycloak asked', async () => {
    const s = await setup()
    const res = await s.t.app.request(
      'http://127.0.0.1:23000/oidc/.well-known/openid-configuration',
    )
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      issuer: s.issuer,
      authorization_endpoint: `${s.issuer}/authorize`,
      token_endpoint: 'http://127.0.0.1:23000/oidc/token',
      jwks_uri: 'http://127.0.0.1:23000/oidc/jwks',
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['ES256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    })
    const jwks = (await (await s.t.app.request('/oidc/jwks')).json()) as { keys: object[] }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
    expect(jwks.keys[0]).not.toHaveProperty('d')
    expect((await s.t.app.request('/oidc/nothing')).status).toBe(404)
  })
})

describe('the OpenID provider refuses', () => {
  it('a replayed code', async () => {
    const s = await setup()
    const code = await codeFor(s, 'alice')
    expect((await redeem(s, { code })).status).toBe(200)
    await refused(await redeem(s, { code }), 400, 'invalid_grant')
    await refused(await redeem(s, { code }, 'post'), 400, 'invalid_grant')
  })

  it('a redirect URI not registered, at authorize: the browser is sent nowhere', async () => {
    const s = await setup()
    for (const uri of [
      'https://attacker.example/callback',
      `${s.redirectUri}/`,
      `${s.redirectUri}?next=https://attacker.example`,
      `${s.redirectUri}/../../attacker/endpoint`,
      s.redirectUri.toUpperCase(),
      s.redirectUri.replace('/broker/nextcloud/', '/broker/other/'),
      undefined,
    ]) {
      const res = await authorize(s, 'alice', { redirect_uri: uri })
      expect(res.status, String(uri)).toBe(400)
      expect(res.headers.get('location')).toBeNull()
      expect(await res.json()).toMatchObject({ error: { code: 'INVALID_INPUT' } })
    }
    // nor for a client it does not know
    const unknown = await authorize(s, 'alice', { client_id: 'someone-else' })
    expect(unknown.status).toBe(400)
    expect(unknown.headers.get('location')).toBeNull()
  })

  it('a redirect URI at the token endpoint other than the one the code was issued for', async () => {
    const s = await setup()
    const code = await codeFor(s, 'alice')
    await refused(
      await redeem(s, { code, redirect_uri: 'https://attacker.example/callback' }),
      400,
      'invalid_grant',
    )
    // the attempt spent the code
    await refused(await redeem(s, { code }), 400, 'invalid_grant')
    await refused(
      await redeem(s, { code: await codeFor(s, 'alice'), redirect_uri: undefined }),
      400,
      'invalid_grant',
    )
  })

  it('a missing or wrong PKCE verifier', async () => {
    const s = await setup()
    await refused(
      await redeem(s, { code: await codeFor(s, 'alice'), code_verifier: undefined }),
      400,
      'invalid_grant',
    )
    await refused(
      await redeem(s, { code: await codeFor(s, 'alice'), code_verifier: `${VERIFIER}x` }),
      400,
      'invalid_grant',
    )
    // the challenge itself is not a verifier
    await refused(
      await redeem(s, { code: await codeFor(s, 'alice'), code_verifier: challengeOf(VERIFIER) }),
      400,
      'invalid_grant',
    )
  })

  it('plain PKCE, and authorize requests without PKCE', async () => {
    const s = await setup()
    for (const extra of [
      { code_challenge_method: 'plain', code_challenge: VERIFIER },
      { code_challenge_method: 'plain' },
      { code_challenge_method: undefined },
      { code_challenge: undefined },
      { code_challenge: undefined, code_challenge_method: undefined },
      { code_challenge: 'short' },
    ]) {
      const to = location(await authorize(s, 'alice', extra))
      expect(to.searchParams.get('error'), JSON.stringify(extra)).toBe('invalid_request')
      expect(to.searchParams.get('code')).toBeNull()
      expect(to.searchParams.get('state')).toBe('state-1')
    }
  })

  it('a wrong client secret, an unknown client, and two authentication methods at once', async () => {
    const s = await setup()
    const code = await codeFor(s, 'alice')
    const wrongBasic = await redeem(s, { code }, { header: basic(BROKER_CLIENT_ID, 'wrong') })
    expect(wrongBasic.headers.get('www-authenticate')).toMatch(/^Basic /)
    await refused(wrongBasic, 401, 'invalid_client')
    await refused(
      await redeem(s, { code, client_id: BROKER_CLIENT_ID, client_secret: 'wrong' }, 'none'),
      401,
      'invalid_client',
    )
    await refused(
      await redeem(s, { code, client_id: 'someone-else', client_secret: s.secret }, 'none'),
      401,
      'invalid_client',
    )
    await refused(
      await redeem(s, { code, client_id: BROKER_CLIENT_ID }, 'none'),
      401,
      'invalid_client',
    )
    await refused(
      await redeem(s, { code, client_secret: s.secret }, 'basic'),
      400,
      'invalid_request',
    )
    // A client that failed to authenticate did not spend the code.
    expect((await redeem(s, { code })).status).toBe(200)
  })

  it('a client that keeps failing to authenticate: 429 with Retry-After, until its window passes', async () => {
    const s = await setup()
    const wrong = { header: basic(BROKER_CLIENT_ID, 'wrong') }
    for (let i = 0; i < 10; i++) {
      await refused(await redeem(s, { code: 'any' }, wrong), 401, 'invalid_client')
    }
    const blocked = await redeem(s, { code: 'any' }, wrong)
    await refused(blocked, 429, 'invalid_client')
    expect(Number(blocked.headers.get('retry-after'))).toBe(60)
    // The right secret from the same peer is not looked at either, and does not spend the code.
    const code = await codeFor(s, 'alice')
    await refused(await redeem(s, { code }), 429, 'invalid_client')
    // Counted per client and peer: Keycloak at another address, and another client id, go on.
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: s.redirectUri,
      code_verifier: VERIFIER,
    })
    const elsewhere = await s.t.oidc.token(form, basic(BROKER_CLIENT_ID, s.secret), '192.0.2.7')
    expect(elsewhere.status).toBe(200)
    await refused(
      await redeem(s, { code: 'any', client_id: 'someone-else', client_secret: 'x' }, 'none'),
      401,
      'invalid_client',
    )

    s.clock.now += 30_000
    const later = await redeem(s, { code: 'any' })
    await refused(later, 429, 'invalid_client')
    expect(Number(later.headers.get('retry-after'))).toBe(30)
    s.clock.now += 30_000
    expect((await redeem(s, { code: await codeFor(s, 'alice') })).status).toBe(200)
  })

  it('a code asked for another user: the token is always the user the code was issued to', async () => {
    const s = await setup()
    const code = await codeFor(s, 'alice')
    // Bob, through Nextcloud, with alice's code and every hint a client could add
    const res = await s.t.app.request('/oidc/token', {
      method: 'POST',
      headers: {
        ...s.t.as('bob'),
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic(BROKER_CLIENT_ID, s.secret),
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: s.redirectUri,
        code_verifier: VERIFIER,
        sub: 'bob',
        login_hint: 'bob',
        user_id: 'bob',
      }).toString(),
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { id_token: string; access_token: string }
    expect(decodeJwt(body.id_token)).toMatchObject({ sub: 'alice', preferred_username: 'alice' })
    expect(decodeJwt(body.access_token).sub).toBe('alice')
    // and a login hint at authorize does not change who gets the code
    const hinted = await codeFor(s, 'alice', { login_hint: 'bob' })
    const hintedRes = (await (await redeem(s, { code: hinted })).json()) as { id_token: string }
    expect(decodeJwt(hintedRes.id_token).sub).toBe('alice')
  })

  it('a code redeemed by another client than the one it was issued to', async () => {
    const store = new Map<string, string>()
    const provider = new OidcProvider({
      issuer: 'https://cloud.example/apps/keycloak/oidc',
      nextcloudUrl: 'https://cloud.example',
      clients: async () => [
        { id: 'realm-a', secret: 'secret-a-0123456789', redirectUris: ['https://a.example/cb'] },
        { id: 'realm-b', secret: 'secret-b-0123456789', redirectUris: ['https://b.example/cb'] },
      ],
      findUser: async (uid) => ({ id: uid, enabled: true }),
      keys: providerKeys({
        getOrCreateSecret: async (name, make) => {
          const value = store.get(name) ?? (await make())
          store.set(name, value)
          return value
        },
      }),
    })
    const app = new Hono<AppEnv>()
    app.onError(onError)
    // As the access table leaves it for a verified AppAPI request naming alice.
    app.use(async (c, next) => {
      c.set('caller', { kind: 'nextcloud', userId: 'alice' })
      await next()
    })
    app.route('/', oidcRoutes(provider))
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'realm-a',
      redirect_uri: 'https://a.example/cb',
      scope: 'openid',
      state: 's',
      code_challenge: challengeOf(VERIFIER),
      code_challenge_method: 'S256',
    })
    const issued = await app.request(`/oidc/authorize?${query}`)
    const code = new URL(issued.headers.get('location') ?? '').searchParams.get('code') as string
    expect(code).toBeTruthy()
    const as = (client: string, secret: string, redirectUri: string) =>
      app.request('/oidc/token', {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(client, secret),
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          code_verifier: VERIFIER,
        }).toString(),
      })
    await refused(
      await as('realm-b', 'secret-b-0123456789', 'https://a.example/cb'),
      400,
      'invalid_grant',
    )
    // The attempt spent it: the client it was issued to cannot redeem it any more either.
    await refused(
      await as('realm-a', 'secret-a-0123456789', 'https://a.example/cb'),
      400,
      'invalid_grant',
    )
  })

  it('an expired code (codes live 60 s)', async () => {
    const s = await setup()
    const fresh = await codeFor(s, 'alice')
    s.clock.now += 59_999
    expect((await redeem(s, { code: fresh })).status).toBe(200)
    const stale = await codeFor(s, 'alice')
    s.clock.now += 60_000
    await refused(await redeem(s, { code: stale }), 400, 'invalid_grant')
  })

  it('an authorize request without state (CSRF), and echoes the state it is given', async () => {
    const s = await setup()
    for (const state of [undefined, '']) {
      const to = location(await authorize(s, 'alice', { state }))
      expect(to.searchParams.get('error')).toBe('invalid_request')
      expect(to.searchParams.get('code')).toBeNull()
    }
    const odd = 'a b&c=d/é?#'
    const to = location(await authorize(s, 'alice', { state: odd }))
    expect(to.searchParams.get('state')).toBe(odd)
    expect(to.searchParams.get('code')).toBeTruthy()
    // The step only issues a code: no cookie, no other method, no parameter given twice.
    const res = await authorize(s, 'alice')
    expect(res.headers.get('set-cookie')).toBeNull()
    const post = await s.t.app.request(`/oidc/authorize?${authorizeQuery(s)}`, {
      method: 'POST',
      headers: s.t.as('alice'),
    })
    expect(post.status).toBe(405)
    const twice = await s.t.app.request(`/oidc/authorize?${authorizeQuery(s)}&state=other`, {
      headers: s.t.as('alice'),
    })
    expect(twice.status).toBe(400)
    expect(twice.headers.get('location')).toBeNull()
  })

  it('a user disabled in Nextcloud, at authorize and at the token endpoint', async () => {
    const s = await setup({
      alice: { enabled: true },
      carol: { enabled: false },
    })
    const to = location(await authorize(s, 'carol'))
    expect(to.searchParams.get('error')).toBe('access_denied')
    expect(to.searchParams.get('code')).toBeNull()
    // unknown to Nextcloud
    const ghost = location(await authorize(s, 'ghost'))
    expect(ghost.searchParams.get('error')).toBe('access_denied')
    // disabled between the code and its redemption
    const code = await codeFor(s, 'alice')
    s.t.nextcloud.set('alice', { enabled: false })
    await refused(await redeem(s, { code }), 400, 'invalid_grant')
  })

  it('a user outside the gate groups, or taken out of them, at authorize and at the token endpoint', async () => {
    const s = await setup(
      {
        alice: { enabled: true, groups: ['staff'] },
        dave: { enabled: true, groups: ['guests'] },
      },
      ['staff', 'board'],
    )
    const outside = location(await authorize(s, 'dave'))
    expect(outside.searchParams.get('error')).toBe('access_denied')
    expect(outside.searchParams.get('code')).toBeNull()
    // removed from the gate group between the code and its redemption
    const code = await codeFor(s, 'alice')
    s.t.nextcloud.set('alice', { enabled: true, groups: ['guests'] })
    await refused(await redeem(s, { code }), 400, 'invalid_grant')
    // and at the next sign-in, before any sync has disabled the account
    const removed = location(await authorize(s, 'alice'))
    expect(removed.searchParams.get('error')).toBe('access_denied')
    expect(removed.searchParams.get('code')).toBeNull()
    // any one gate group lets in again
    s.t.nextcloud.set('alice', { enabled: true, groups: ['board'] })
    expect((await redeem(s, { code: await codeFor(s, 'alice') })).status).toBe(200)
  })

  it('without gate groups, any enabled user, in no group at all', async () => {
    const s = await setup({ erin: { enabled: true } })
    expect((await redeem(s, { code: await codeFor(s, 'erin') })).status).toBe(200)
  })

  it('a forged or missing AppAPI header at authorize: no code, no login redirect', async () => {
    const s = await setup()
    const query = `/oidc/authorize?${authorizeQuery(s)}`
    const forged: Record<string, string>[] = [
      s.t.as('alice', 'not-the-app-secret-0123456'),
      s.t.as('alice', s.t.config.app.secret, 'other-app'),
      { ...s.t.as('alice'), 'AUTHORIZATION-APP-API': 'alice:not-base64!' },
      { 'X-NC-USER-ID': 'alice' },
      {},
    ]
    for (const headers of forged) {
      const res = await s.t.app.request(query, { headers })
      expect(res.status).toBe(401)
      expect(res.headers.get('location')).toBeNull()
      expect(await res.text()).not.toContain('code=')
    }
  })

  it('other response types and requests without the openid scope', async () => {
    const s = await setup()
    for (const [extra, error] of [
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ response_type: 'code id_token' }, 'unsupported_response_type'],
      [{ response_type: undefined }, 'unsupported_response_type'],
      [{ scope: 'profile' }, 'invalid_scope'],
    ] as const) {
      const to = location(await authorize(s, 'alice', extra))
      expect(to.searchParams.get('error')).toBe(error)
      expect(to.searchParams.get('code')).toBeNull()
    }
  })

  it('other grant types and bodies that are not a form', async () => {
    const s = await setup()
    await refused(
      await redeem(s, { grant_type: 'client_credentials', code: undefined }),
      400,
      'unsupported_grant_type',
    )
    const json = await s.t.app.request('/oidc/token', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: basic(BROKER_CLIENT_ID, s.secret),
      },
      body: JSON.stringify({ grant_type: 'authorization_code', code: 'x' }),
    })
    await refused(json, 400, 'invalid_request')
  })
})

describe('authorization codes', () => {
  it('live at most 60 s, and the oldest go when too many are pending', () => {
    expect(() => new AuthCodes({ ttlSeconds: 61, now: Date.now })).toThrow(/at most 60/)
    const codes = new AuthCodes({ ttlSeconds: 60, now: () => 0, maxCodes: 2 })
    const grant = {
      clientId: 'c',
      redirectUri: 'https://a.example/cb',
      userId: 'alice',
      codeChallenge: challengeOf(VERIFIER),
      scope: 'openid',
    }
    const first = codes.issue(grant)
    const second = codes.issue(grant)
    const third = codes.issue(grant)
    expect(codes.size).toBe(2)
    expect(codes.take(first)).toBeUndefined()
    expect(codes.take(second)).toEqual(grant)
    expect(codes.take(second)).toBeUndefined()
    expect(codes.take(third)).toEqual(grant)
  })
})
