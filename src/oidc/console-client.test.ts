import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { CONSOLE_CLIENT_ID, clientSecretName, NEXTCLOUD_IDP_ALIAS } from './clients.js'

const VERIFIER = 'verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG'

/** The provider's console client: only Nextcloud admins get a code, and only they redeem one. */
async function setup() {
  const t = await buildTestApp({
    users: {
      ana: { enabled: true, groups: ['admin'] },
      alice: { enabled: true, groups: ['staff'] },
    },
  })
  const secret = await t.memory.store.getOrCreateSecret(
    clientSecretName(CONSOLE_CLIENT_ID),
    () => 'console-secret-0123456789abcdef',
  )
  const redirectUri = `${t.config.keycloak.publicUrl}/realms/master/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
  const authorize = (uid: string) =>
    t.app.request(
      `/oidc/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: CONSOLE_CLIENT_ID,
        redirect_uri: redirectUri,
        scope: 'openid',
        state: 'st',
        code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
        code_challenge_method: 'S256',
      })}`,
      { headers: t.as(uid) },
    )
  const redeem = (code: string) =>
    t.app.request('/oidc/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: VERIFIER,
        client_id: CONSOLE_CLIENT_ID,
        client_secret: secret,
      }).toString(),
    })
  return { t, authorize, redeem, redirectUri }
}

describe('the OpenID provider’s console client', () => {
  it('gives a Nextcloud admin a code for the master realm’s broker endpoint, and tokens', async () => {
    const s = await setup()
    const res = await s.authorize('ana')
    expect(res.status).toBe(302)
    const to = new URL(res.headers.get('location') ?? '')
    expect(`${to.origin}${to.pathname}`).toBe(s.redirectUri)
    const code = to.searchParams.get('code') as string
    expect(code).toBeTruthy()
    const tokens = await s.redeem(code)
    expect(tokens.status).toBe(200)
  })

  it('refuses a signed-in user who is not an admin with a page that says why, sent nowhere', async () => {
    const s = await setup()
    const res = await s.authorize('alice')
    expect(res.status).toBe(403)
    expect(res.headers.get('location')).toBeNull()
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const body = await res.text()
    expect(body).toContain('only Nextcloud admins may open the Keycloak admin console')
    expect(body).toContain('alice is not one')
    expect(body).not.toContain('code=')
  })

  it('refuses at the token endpoint a code whose user left admin meanwhile', async () => {
    const s = await setup()
    const to = new URL((await s.authorize('ana')).headers.get('location') ?? '')
    s.t.nextcloud.set('ana', { enabled: true, groups: ['staff'] })
    const res = await s.redeem(to.searchParams.get('code') as string)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' })
  })
})
