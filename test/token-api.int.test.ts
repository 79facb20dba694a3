import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestExApp, type TestExApp } from './exapp-harness.js'
import { fixtureDirectory } from './fake-nextcloud/index.js'

function claims(jwt: string): Record<string, unknown> {
  const [, payload = ''] = jwt.split('.')
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
}

describe('POST /api/token against the real Keycloak, as consumers of the original call it', () => {
  let t: TestExApp
  let secret: string
  const token = (query: string, headers: Record<string, string>) =>
    fetch(`${t.exapp.url}/api/token${query}`, { method: 'POST', headers })

  beforeAll(async () => {
    t = await startTestExApp({ directory: fixtureDirectory() })
    const installed = await t.nc.install(t.exapp.config.app.id, { timeoutMs: 120_000 })
    expect(installed).toMatchObject({ init: 100, error: '' })
    secret = t.exapp.config.consumers[0]?.secret ?? ''
  })
  afterAll(async () => {
    await t?.close()
  })

  it('answers the original request with the original fields', async () => {
    // curl -X POST 'http://keycloak:23000/api/token?client_id=opentalk' -H 'X-API-SECRET: …' -H 'X-NC-USER-ID: alice'
    const res = await token('?client_id=opentalk', {
      'X-API-SECRET': secret,
      'X-NC-USER-ID': 'alice',
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(
      expect.arrayContaining([
        'access_token',
        'expires_in',
        'id_token',
        'refresh_token',
        'token_type',
      ]),
    )
    expect(body.token_type).toBe('Bearer')
    expect(body.refresh_token).toBe('')
    expect(typeof body.expires_in).toBe('number')
    const access = claims(body.access_token as string)
    expect(access).toMatchObject({ preferred_username: 'alice', azp: 'opentalk' })
    // external mode: the issuer is the shared Keycloak's own hostname
    expect(access.iss).toBe(`${t.exapp.config.keycloak.url}/realms/${t.realm}`)
    expect(claims(body.id_token as string)).toMatchObject({ aud: 'opentalk' })

    const userinfo = await fetch(
      `${t.exapp.config.keycloak.url}/realms/${t.realm}/protocol/openid-connect/userinfo`,
      { headers: { Authorization: `Bearer ${body.access_token as string}` } },
    )
    expect(userinfo.status).toBe(200)
    expect(await userinfo.json()).toMatchObject({ preferred_username: 'alice' })
  })

  it('refuses what it must, with JSON errors and the right status', async () => {
    const cases: [string, string, Record<string, string>, number, string][] = [
      ['no secret', '?client_id=opentalk', { 'X-NC-USER-ID': 'alice' }, 401, 'UNAUTHORIZED'],
      [
        'wrong secret',
        '?client_id=opentalk',
        { 'X-API-SECRET': 'x'.repeat(40), 'X-NC-USER-ID': 'alice' },
        401,
        'UNAUTHORIZED',
      ],
      [
        'unknown client',
        '?client_id=other',
        { 'X-API-SECRET': secret, 'X-NC-USER-ID': 'alice' },
        403,
        'FORBIDDEN',
      ],
      ['no client', '', { 'X-API-SECRET': secret, 'X-NC-USER-ID': 'alice' }, 400, 'INVALID_INPUT'],
      [
        'user unknown to Nextcloud',
        '?client_id=opentalk',
        { 'X-API-SECRET': secret, 'X-NC-USER-ID': 'nobody' },
        404,
        'NOT_FOUND',
      ],
      [
        'another app through the proxy',
        '?client_id=opentalk',
        { ...t.nc.appApiHeaders(t.exapp.config.app.id, 'alice'), 'EX-APP-ID': 'other_app' },
        401,
        'UNAUTHORIZED',
      ],
      [
        'a spoofed user through the proxy',
        '?client_id=opentalk',
        { ...t.nc.appApiHeaders(t.exapp.config.app.id, 'alice'), 'X-NC-USER-ID': 'bob' },
        403,
        'FORBIDDEN',
      ],
    ]
    for (const [name, query, headers, status, code] of cases) {
      const res = await token(query, headers)
      expect(res.status, name).toBe(status)
      expect(((await res.json()) as { error: { code: string } }).error.code, name).toBe(code)
    }
  })

  it('gives the verified Nextcloud user a token through the proxy', async () => {
    const res = await token('?client_id=opentalk', t.nc.appApiHeaders(t.exapp.config.app.id, 'bob'))
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string }
    expect(claims(body.access_token)).toMatchObject({ preferred_username: 'bob' })
  })

  it('stops issuing for a user disabled in Nextcloud once the sync ran', async () => {
    const headers = { 'X-API-SECRET': secret, 'X-NC-USER-ID': 'carol' }
    expect((await token('?client_id=opentalk', headers)).status).toBe(200)
    t.nc.updateUser('carol', { enabled: false })
    const sync = await fetch(`${t.exapp.url}/api/sync-user`, {
      method: 'POST',
      headers: {
        ...t.nc.appApiHeaders(t.exapp.config.app.id, 'admin'),
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ user_id: 'carol' }),
    })
    expect(sync.status).toBe(200)
    const refused = await token('?client_id=opentalk', headers)
    expect(refused.status).toBe(403)
  })
})
