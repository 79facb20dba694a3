import { describe, expect, it } from 'vitest'
import { type ErrorCode, isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { type GrantRejection, grantRejection } from './grant-errors.js'
import { JWT_BEARER_GRANT_TYPE } from './jwt-grant.js'
import { createTokenClient } from './token-client.js'

const LOOPBACK = 'http://127.0.0.1:8080'
const PUBLIC_ISSUER = 'https://nc.example/index.php/apps/app_api/proxy/keycloak/realms/r'
const SECRET = 'client-secret-never-in-messages'
const ASSERTION = 'eyJhbGciOiJFUzI1NiJ9.assertion-never-in-messages.sig'

interface Call {
  url: string
  method: string
  body: URLSearchParams
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  })
}

/** Discovery as Keycloak serves it with a public `hostname`; the token endpoint answers `token`. */
function fakeKeycloak(token: () => Response | Promise<Response>) {
  const calls: Call[] = []
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input)
    calls.push({
      url,
      method: init?.method ?? 'GET',
      body: new URLSearchParams(String(init?.body ?? '')),
    })
    if (url.endsWith('/.well-known/openid-configuration')) {
      return json(200, {
        issuer: PUBLIC_ISSUER,
        // advertises the public endpoint, as Keycloak does without hostname-backchannel-dynamic
        token_endpoint: `${PUBLIC_ISSUER}/protocol/openid-connect/token`,
        jwks_uri: `${PUBLIC_ISSUER}/protocol/openid-connect/certs`,
      })
    }
    return token()
  }
  const client = createTokenClient({
    backchannelUrl: `${LOOPBACK}/`,
    realm: 'r',
    log: silentLogger(),
    fetch,
  })
  return { client, calls }
}

const creds = { clientId: 'opentalk', clientSecret: SECRET }

describe('createTokenClient', () => {
  it('reports the public issuer from discovery read over the loopback URL', async () => {
    const { client, calls } = fakeKeycloak(() => json(500, {}))
    expect(await client.issuer()).toBe(PUBLIC_ISSUER)
    expect(calls[0]?.url).toBe(`${LOOPBACK}/realms/r/.well-known/openid-configuration`)
  })

  it('posts the JWT grant to the loopback token endpoint and normalizes the answer', async () => {
    const { client, calls } = fakeKeycloak(() =>
      json(200, {
        access_token: 'at',
        expires_in: 300,
        refresh_expires_in: 0,
        token_type: 'Bearer',
        'not-before-policy': 0,
        scope: 'email profile',
      }),
    )
    const tokens = await client.jwtGrant({ ...creds, assertion: ASSERTION })

    expect(tokens).toEqual({
      access_token: 'at',
      refresh_token: '',
      id_token: '',
      expires_in: 300,
      token_type: 'Bearer',
      refresh_expires_in: 0,
    })
    const grant = calls.at(-1)
    expect(grant?.url).toBe(`${LOOPBACK}/realms/r/protocol/openid-connect/token`)
    expect(grant?.method).toBe('POST')
    expect(Object.fromEntries(grant?.body ?? [])).toEqual({
      grant_type: JWT_BEARER_GRANT_TYPE,
      assertion: ASSERTION,
      client_id: 'opentalk',
      client_secret: SECRET,
    })
  })

  it('reads discovery once and sends each grant with the secret it was given, for each client', async () => {
    const { client, calls } = fakeKeycloak(() =>
      json(200, { access_token: 'at', expires_in: 300, token_type: 'Bearer' }),
    )
    await client.jwtGrant({ ...creds, assertion: ASSERTION })
    await client.jwtGrant({ ...creds, assertion: ASSERTION })
    await client.jwtGrant({ clientId: 'other', clientSecret: 'other-secret', assertion: ASSERTION })
    await client.jwtGrant({ ...creds, clientSecret: 'rotated', assertion: ASSERTION })

    const grants = calls.filter((c) => c.method === 'POST')
    expect(calls.length - grants.length).toBe(1)
    expect(grants.map((g) => [g.body.get('client_id'), g.body.get('client_secret')])).toEqual([
      ['opentalk', SECRET],
      ['opentalk', SECRET],
      ['other', 'other-secret'],
      ['opentalk', 'rotated'],
    ])
  })

  it('sends scope, username and password for the password grant and keeps the refresh token', async () => {
    const { client, calls } = fakeKeycloak(() =>
      json(200, {
        access_token: 'at',
        refresh_token: 'rt',
        expires_in: 300,
        refresh_expires_in: 1800,
        token_type: 'Bearer',
      }),
    )
    const tokens = await client.passwordGrant({
      ...creds,
      username: 'alice',
      password: 'pw',
      scope: 'profile',
    })

    expect(tokens).toMatchObject({ refresh_token: 'rt', refresh_expires_in: 1800, id_token: '' })
    expect(Object.fromEntries(calls.at(-1)?.body ?? [])).toMatchObject({
      grant_type: 'password',
      username: 'alice',
      password: 'pw',
      scope: 'profile',
    })
  })

  it('sends the refresh token for the refresh grant', async () => {
    const { client, calls } = fakeKeycloak(() =>
      json(200, {
        access_token: 'at2',
        refresh_token: 'rt2',
        expires_in: 300,
        token_type: 'Bearer',
      }),
    )
    const tokens = await client.refreshGrant({ ...creds, refreshToken: 'rt' })
    expect(tokens).toMatchObject({ access_token: 'at2', refresh_token: 'rt2' })
    expect(Object.fromEntries(calls.at(-1)?.body ?? [])).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: 'rt',
    })
  })

  it('reads discovery once and retries it after a failure', async () => {
    let down = true
    const calls: string[] = []
    const fetch = async (input: RequestInfo | URL) => {
      calls.push(String(input))
      if (down) {
        throw new TypeError('fetch failed')
      }
      return json(200, { issuer: PUBLIC_ISSUER, token_endpoint: `${PUBLIC_ISSUER}/token` })
    }
    const client = createTokenClient({
      backchannelUrl: LOOPBACK,
      realm: 'r',
      log: silentLogger(),
      fetch,
    })

    const err = await client.issuer().catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect(grantRejection(err)).toBe('unavailable')

    down = false
    expect(await client.issuer()).toBe(PUBLIC_ISSUER)
    expect(await client.issuer()).toBe(PUBLIC_ISSUER)
    expect(calls).toHaveLength(2)
  })
})

// Bodies and statuses as Keycloak 26.7.3 answers them.
const failures: Array<[string, () => Response, ErrorCode, GrantRejection]> = [
  [
    'an unlinked user',
    () => json(400, { error: 'invalid_grant', error_description: 'User not found' }),
    'FORBIDDEN',
    'user_not_found',
  ],
  [
    'a disabled user',
    () => json(400, { error: 'invalid_grant', error_description: 'User is not enabled' }),
    'FORBIDDEN',
    'user_disabled',
  ],
  [
    'a user with required actions',
    () => json(400, { error: 'invalid_grant', error_description: 'Account is not fully set up' }),
    'FORBIDDEN',
    'user_not_ready',
  ],
  [
    'an assertion the realm does not trust',
    () => json(400, { error: 'invalid_grant', error_description: 'Invalid token audience' }),
    'INTERNAL',
    'assertion_rejected',
  ],
  [
    'a wrong client secret',
    () =>
      json(401, {
        error: 'unauthorized_client',
        error_description: 'Invalid client or Invalid client credentials',
      }),
    'INVALID_INPUT',
    'client_rejected',
  ],
  [
    'an unknown client',
    () =>
      json(401, {
        error: 'invalid_client',
        error_description: 'Invalid client or Invalid client credentials',
      }),
    'INVALID_INPUT',
    'client_rejected',
  ],
  [
    'an unknown scope',
    () => json(400, { error: 'invalid_scope', error_description: 'Invalid scopes: openid nope' }),
    'INVALID_INPUT',
    'invalid_scope',
  ],
  [
    'a server error',
    () => json(500, { error: 'unknown_error' }),
    'KEYCLOAK_UNAVAILABLE',
    'unavailable',
  ],
  [
    'a proxy error page',
    () =>
      new Response('<html>502</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
    'KEYCLOAK_UNAVAILABLE',
    'unavailable',
  ],
  [
    'a network failure',
    () => {
      throw new TypeError('fetch failed')
    },
    'KEYCLOAK_UNAVAILABLE',
    'unavailable',
  ],
]

describe('jwtGrant failures', () => {
  it.each(failures)('maps %s', async (_name, answer, code, rejection) => {
    const { client } = fakeKeycloak(answer)
    const err = await client.jwtGrant({ ...creds, assertion: ASSERTION }).catch((e: unknown) => e)

    expect(isAppError(err, code), String(err)).toBe(true)
    expect(grantRejection(err)).toBe(rejection)
    const message = (err as Error).message
    expect(message).not.toContain(SECRET)
    expect(message).not.toContain(ASSERTION)
  })

  it("keeps Keycloak's error description in the message", async () => {
    const { client } = fakeKeycloak(() =>
      json(400, { error: 'invalid_grant', error_description: 'User is not enabled' }),
    )
    await expect(client.jwtGrant({ ...creds, assertion: ASSERTION })).rejects.toThrow(
      'User is not enabled',
    )
  })
})

describe('password and refresh failures', () => {
  it('maps wrong credentials and a disabled account to FORBIDDEN', async () => {
    for (const description of ['Invalid user credentials', 'Account disabled']) {
      const { client } = fakeKeycloak(() =>
        json(400, { error: 'invalid_grant', error_description: description }),
      )
      const err = await client
        .passwordGrant({ ...creds, username: 'alice', password: 'secret-pw' })
        .catch((e: unknown) => e)
      expect(isAppError(err, 'FORBIDDEN'), description).toBe(true)
      expect((err as Error).message).not.toContain('secret-pw')
    }
  })

  it('maps a refused refresh token to refresh_rejected', async () => {
    const { client } = fakeKeycloak(() =>
      json(400, { error: 'invalid_grant', error_description: 'Session not active' }),
    )
    const err = await client.refreshGrant({ ...creds, refreshToken: 'rt' }).catch((e: unknown) => e)
    expect(isAppError(err, 'UNAUTHORIZED')).toBe(true)
    expect(grantRejection(err)).toBe('refresh_rejected')
  })
})
