import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BROWSER_FLOW, FIRST_LOGIN_FLOW } from '../src/keycloak/nextcloud-login.js'
import { NEXTCLOUD_IDP_ALIAS } from '../src/oidc/clients.js'
import { aGroup, aUser } from './builders.js'
import { sharedKeycloak } from './config.js'
import { bootstrapped, startTestExApp, type TestExApp } from './exapp-harness.js'
import { startHarpProxy } from './harp-proxy.js'
import { freePort } from './net.js'
import { type RunningTestProxy, routesFromInfoXml } from './php-proxy.js'

/**
 * The realm's browser login brokered to the app's OpenID provider, against the real Keycloak:
 * a relying party of the test's own starts the code flow (PKCE) at the realm; the test acts as
 * the browser (following redirects, keeping cookies per origin), signed in to Nextcloud through
 * the HaRP stand-in; Keycloak calls the provider's token and keys endpoints itself.
 */
const RP_CLIENT = 'test-relying-party'
const RP_REDIRECT = 'http://127.0.0.1:9/callback'

/** Cookies per origin, as a browser keeps them (attributes other than expiry ignored). */
class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>()

  header(url: URL): string {
    const jar = this.jars.get(url.origin)
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : ''
  }

  set(url: URL, value: string): void {
    const jar = this.jars.get(url.origin) ?? new Map<string, string>()
    this.jars.set(url.origin, jar)
    const [pair = '', ...attrs] = value.split(';')
    const eq = pair.indexOf('=')
    const name = pair.slice(0, eq).trim()
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
    if (expired) {
      jar.delete(name)
    } else {
      jar.set(name, pair.slice(eq + 1).trim())
    }
  }
}

interface Walk {
  /** the relying party's callback with its query, when the flow got there */
  callback?: URL
  /** the statuses and hosts on the way */
  steps: string[]
  /** a page (status 200 or an error) the flow stopped at instead */
  page?: { status: number; url: string; body: string }
}

/** Follows redirects like a browser until the relying party's callback or a page. */
async function walk(start: string, jar: CookieJar): Promise<Walk> {
  const steps: string[] = []
  let url = new URL(start)
  for (let i = 0; i < 20; i++) {
    const cookie = jar.header(url)
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} })
    for (const c of res.headers.getSetCookie()) {
      jar.set(url, c)
    }
    steps.push(`${res.status} ${url.host}${url.pathname}`)
    const location = res.headers.get('location')
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel()
      const next = new URL(location, url)
      if (next.href.startsWith(RP_REDIRECT)) {
        return { callback: next, steps }
      }
      url = next
      continue
    }
    return { steps, page: { status: res.status, url: url.href, body: await res.text() } }
  }
  return { steps }
}

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'))
}

describe('the realm’s login brokered to Nextcloud (KEYCLOAK_LOGIN=nextcloud)', () => {
  let t: TestExApp
  let harp: RunningTestProxy
  const keycloak = sharedKeycloak()

  beforeAll(async () => {
    const port = await freePort()
    const appSecret = randomBytes(24).toString('base64url')
    harp = await startHarpProxy({
      target: `http://127.0.0.1:${port}`,
      appId: 'keycloak',
      appSecret,
      routes: routesFromInfoXml(new URL('../appinfo/info.xml', import.meta.url).pathname),
      users: {
        alice: { admin: false },
        bob: { admin: false },
        carol: { admin: false },
        dave: { admin: false },
      },
    })
    t = await startTestExApp({
      directory: {
        users: [
          aUser({ id: 'admin', groups: ['admin'] }),
          aUser({ id: 'alice', groups: ['staff'] }),
          aUser({ id: 'bob', groups: ['staff'] }),
          aUser({ id: 'carol', groups: ['staff'] }),
          aUser({ id: 'dave', groups: ['staff'] }),
        ],
        groups: [aGroup({ id: 'admin' }), aGroup({ id: 'staff' })],
      },
      enabled: true,
      port,
      env: {
        APP_ID: 'keycloak',
        APP_SECRET: appSecret,
        // The browser reaches the shared Keycloak directly; the app through the HaRP stand-in.
        KC_HOSTNAME: keycloak.url,
        SYNC_GATE_GROUPS: 'admin,staff',
      },
      configure: (config) => {
        config.app.publicUrl = harp.publicUrl
      },
    })
    await bootstrapped(t)
    const run = await t.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
    await t.admin.clients.create({
      realm: t.realm,
      clientId: RP_CLIENT,
      publicClient: true,
      standardFlowEnabled: true,
      redirectUris: [RP_REDIRECT],
      attributes: { 'pkce.code.challenge.method': 'S256' },
    })
  }, 180_000)
  afterAll(async () => {
    await t?.close()
    await harp?.close()
  })

  /** The relying party's whole code flow for the Nextcloud user `uid` (signed in, or not). */
  async function login(uid: string | undefined) {
    const verifier = randomBytes(32).toString('base64url')
    const state = randomBytes(8).toString('hex')
    const realmUrl = `${keycloak.url}/realms/${t.realm}/protocol/openid-connect`
    const authorize = `${realmUrl}/auth?${new URLSearchParams({
      response_type: 'code',
      client_id: RP_CLIENT,
      redirect_uri: RP_REDIRECT,
      scope: 'openid',
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    })}`
    const jar = new CookieJar()
    if (uid) {
      jar.set(new URL(harp.origin), `nc_session_id=${uid}`)
    }
    const result = await walk(authorize, jar)
    const code = result.callback?.searchParams.get('code')
    if (!code) {
      return { ...result, idToken: undefined }
    }
    expect(result.callback?.searchParams.get('state')).toBe(state)
    const res = await fetch(`${realmUrl}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: RP_CLIENT,
        code,
        redirect_uri: RP_REDIRECT,
        code_verifier: verifier,
      }),
    })
    const body = (await res.json()) as { id_token?: string }
    expect(res.status, JSON.stringify(body)).toBe(200)
    return { ...result, idToken: body.id_token }
  }

  it('configures the identity provider, its first-login flow and the browser flow, once', async () => {
    const idp = await t.admin.identityProviders.findOne({
      realm: t.realm,
      alias: NEXTCLOUD_IDP_ALIAS,
    })
    expect(idp).toMatchObject({
      providerId: 'oidc',
      enabled: true,
      firstBrokerLoginFlowAlias: FIRST_LOGIN_FLOW,
      config: {
        authorizationUrl: `${harp.publicUrl}/oidc/authorize`,
        tokenUrl: `${t.exapp.url}/oidc/token`,
        jwksUrl: `${t.exapp.url}/oidc/jwks`,
        clientId: 'keycloak-broker',
        pkceEnabled: 'true',
        pkceMethod: 'S256',
        validateSignature: 'true',
      },
    })
    const realm = await t.admin.realms.findOne({ realm: t.realm })
    expect(realm?.browserFlow).toBe(BROWSER_FLOW)
    const again = await t.exapp.bootstrap()
    expect(again.changes).toEqual([])
  })

  it('every synced user is linked to the Nextcloud provider before any login', async () => {
    const [bob] = await t.admin.users.find({ realm: t.realm, username: 'bob', exact: true })
    const links = await t.admin.users.listFederatedIdentities({
      realm: t.realm,
      id: bob?.id as string,
    })
    expect(links.filter((l) => l.identityProvider === NEXTCLOUD_IDP_ALIAS)).toEqual([
      expect.objectContaining({ userId: 'bob', userName: 'bob' }),
    ])
    const linked = await t.admin.users.find({ realm: t.realm, idpAlias: NEXTCLOUD_IDP_ALIAS })
    expect(linked.map((u) => u.username).sort()).toEqual(['admin', 'alice', 'bob', 'carol', 'dave'])
  })

  it('a signed-in Nextcloud user lands back in the relying party as themselves, no form shown', async () => {
    const result = await login('alice')
    expect(result.page, JSON.stringify(result.steps)).toBeUndefined()
    expect(result.idToken).toBeDefined()
    expect(claimsOf(result.idToken as string)).toMatchObject({ preferred_username: 'alice' })
    // Every step was a redirect: the realm's form, Keycloak's first-login questions, none.
    expect(result.steps.every((s) => /^30[23] /.test(s))).toBe(true)
    expect(result.steps.some((s) => s.includes('/exapps/keycloak/oidc/authorize'))).toBe(true)
    expect(result.steps.some((s) => s.includes(`/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`))).toBe(
      true,
    )
  })

  it('a second login uses the same account, linked once', async () => {
    const before = await t.admin.users.find({ realm: t.realm, username: 'alice', exact: true })
    const count = await t.admin.users.count({ realm: t.realm })
    const result = await login('alice')
    expect(claimsOf(result.idToken as string)).toMatchObject({ preferred_username: 'alice' })
    const after = await t.admin.users.find({ realm: t.realm, username: 'alice', exact: true })
    expect(after.map((u) => u.id)).toEqual(before.map((u) => u.id))
    const links = await t.admin.users.listFederatedIdentities({
      realm: t.realm,
      id: after[0]?.id as string,
    })
    expect(links.filter((l) => l.identityProvider === NEXTCLOUD_IDP_ALIAS)).toEqual([
      expect.objectContaining({ userId: 'alice', userName: 'alice' }),
    ])
    expect(await t.admin.users.count({ realm: t.realm })).toBe(count)
  })

  it('without a Nextcloud session the flow goes to Nextcloud’s login, not Keycloak’s form', async () => {
    const result = await login(undefined)
    expect(result.idToken).toBeUndefined()
    const last = result.steps.at(-1) ?? ''
    // The provider sent the visitor to Nextcloud's login (the fake's origin), with the way back.
    expect(result.page?.url ?? '', JSON.stringify(result.steps)).toContain('/index.php/login')
    expect(last).toMatch(/^\d+ /)
    expect(result.page?.body ?? '').not.toContain('kc-form-login')
  })

  it('a user disabled in Nextcloud cannot sign in', async () => {
    t.nc.updateUser('carol', { enabled: false })
    const result = await login('carol')
    expect(result.idToken).toBeUndefined()
    expect(result.callback?.searchParams.get('code') ?? null).toBeNull()
  })

  it('a user taken out of the gate groups cannot sign in, before any sync disables them', async () => {
    expect((await login('dave')).idToken).toBeDefined()
    t.nc.setMembership('dave', [])
    const result = await login('dave')
    expect(result.idToken).toBeUndefined()
    expect(result.callback?.searchParams.get('code') ?? null).toBeNull()
    // Keycloak's account is still enabled: the provider refused, not the realm.
    const [dave] = await t.admin.users.find({ realm: t.realm, username: 'dave', exact: true })
    expect(dave?.enabled).toBe(true)
  })
})
