import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BROWSER_FLOW, DENY_FIRST_LOGIN_FLOW } from '../src/keycloak/nextcloud-login.js'
import { CONSOLE_CLIENT_ID, NEXTCLOUD_IDP_ALIAS } from '../src/oidc/clients.js'
import { CONSOLE_ATTRIBUTE, CONSOLE_REALM_ROLES } from '../src/sync/console-plan.js'
import { aGroup, aUser } from './builders.js'
import { sharedKeycloak } from './config.js'
import { bootstrapped, startTestExApp, type TestExApp } from './exapp-harness.js'
import { startHarpProxy } from './harp-proxy.js'
import { freePort } from './net.js'
import { type RunningTestProxy, routesFromInfoXml } from './php-proxy.js'

/**
 * Nextcloud admins' console identities in the master realm, against the real Keycloak: made,
 * linked and given roles by the reconciler after each sync run, removed when the user leaves the
 * groups; an unmarked master user of the same name left alone; the console's login brokered to
 * the app's provider through the HaRP stand-in, refused to a non-admin.
 */
const MASTER = 'master'
const CONSOLE = 'security-admin-console'
const tag = randomBytes(3).toString('hex')
const ADMIN = `ana-${tag}`
const ADMIN2 = `ben-${tag}`
const OPS = `ops-${tag}`
const PLAIN = `pia-${tag}`
const CLASH = `kim-${tag}`

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
    if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) {
      jar.delete(name)
    } else {
      jar.set(name, pair.slice(eq + 1).trim())
    }
  }
}

describe('console identities of Nextcloud admins in the master realm', () => {
  let t: TestExApp
  let harp: RunningTestProxy
  let clashId: string
  const keycloak = sharedKeycloak()
  const consoleRedirect = `${keycloak.url}/admin/master/console/`

  beforeAll(async () => {
    const port = await freePort()
    const appSecret = randomBytes(24).toString('base64url')
    harp = await startHarpProxy({
      target: `http://127.0.0.1:${port}`,
      appId: 'keycloak',
      appSecret,
      routes: routesFromInfoXml(new URL('../appinfo/info.xml', import.meta.url).pathname),
      users: {
        [ADMIN]: { admin: true },
        [ADMIN2]: { admin: true },
        [OPS]: { admin: false },
        [PLAIN]: { admin: false },
        [CLASH]: { admin: true },
      },
    })
    t = await startTestExApp({
      directory: {
        users: [
          aUser({ id: ADMIN, displayname: 'Ana Admin', groups: ['admin'] }),
          aUser({ id: ADMIN2, groups: ['admin', 'ops'] }),
          aUser({ id: OPS, displayname: 'Otto Ops', groups: ['ops'] }),
          aUser({ id: PLAIN }),
          aUser({ id: CLASH, groups: ['admin'] }),
        ],
        groups: [aGroup({ id: 'admin' }), aGroup({ id: 'ops' })],
      },
      enabled: true,
      port,
      env: {
        APP_ID: 'keycloak',
        APP_SECRET: appSecret,
        KC_HOSTNAME: keycloak.url,
        KEYCLOAK_CONSOLE_GROUPS: 'ops',
        KEYCLOAK_CONSOLE_LOGIN: 'nextcloud',
        NEXTCLOUD_ADMIN_USER: ADMIN,
      },
      configure: (config) => {
        config.app.publicUrl = harp.publicUrl
      },
    })
    // A master user of the same name as a Nextcloud admin, not made by the app (break-glass).
    const clash = await t.admin.users.create({
      realm: MASTER,
      username: CLASH,
      enabled: true,
      firstName: 'Break',
      lastName: 'Glass',
    })
    clashId = clash.id
    await bootstrapped(t)
    const run = await t.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
    await t.exapp.consoleAdmins?.settled()
  }, 180_000)

  afterAll(async () => {
    // The shared Keycloak's master realm goes back to its own form and loses our users.
    const marked = await t?.admin.users.find({
      realm: MASTER,
      q: `${CONSOLE_ATTRIBUTE}:${t.realm}`,
    })
    for (const user of marked ?? []) {
      await t.admin.users.del({ realm: MASTER, id: user.id as string })
    }
    if (clashId) {
      await t.admin.users.del({ realm: MASTER, id: clashId }).catch(() => undefined)
    }
    const master = await t?.admin.realms.findOne({ realm: MASTER })
    if (master) {
      await t.admin.realms.update({ realm: MASTER }, { ...master, browserFlow: 'browser' })
    }
    await t?.close()
    await harp?.close()
  })

  async function masterUser(username: string) {
    const [user] = await t.admin.users.find({ realm: MASTER, username, exact: true })
    return user
  }

  async function rolesOf(id: string) {
    const mappings = await t.admin.users.listRoleMappings({ realm: MASTER, id })
    const client = Object.values(mappings.clientMappings ?? {}).find(
      (m) => m.client === `${t.realm}-realm`,
    )
    return {
      realm: (mappings.realmMappings ?? []).map((r) => r.name).filter((n) => n === 'admin'),
      client: (client?.mappings ?? []).map((r: { name?: string }) => r.name).sort(),
    }
  }

  /** The console's own code flow (PKCE) for the Nextcloud user `uid`, as a browser does it. */
  async function consoleLogin(uid: string) {
    const verifier = randomBytes(32).toString('base64url')
    let url = new URL(
      `${keycloak.url}/realms/${MASTER}/protocol/openid-connect/auth?${new URLSearchParams({
        response_type: 'code',
        client_id: CONSOLE,
        redirect_uri: consoleRedirect,
        response_mode: 'query',
        scope: 'openid',
        state: 'st',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      })}`,
    )
    const jar = new CookieJar()
    jar.set(new URL(harp.origin), `nc_session_id=${uid}`)
    const steps: string[] = []
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
        url = new URL(location, url)
        if (url.href.startsWith(consoleRedirect)) {
          break
        }
        continue
      }
      return { steps, page: { status: res.status, url: url.href, body: await res.text() } }
    }
    const code = url.searchParams.get('code')
    expect(code, JSON.stringify(steps)).toBeTruthy()
    const res = await fetch(`${keycloak.url}/realms/${MASTER}/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: CONSOLE,
        code: code as string,
        redirect_uri: consoleRedirect,
        code_verifier: verifier,
      }),
    })
    const body = (await res.json()) as { access_token?: string }
    expect(res.status, JSON.stringify(body)).toBe(200)
    return { steps, accessToken: body.access_token as string }
  }

  it('configures the master realm: provider, a first login that denies, the browser flow', async () => {
    const idp = await t.admin.identityProviders.findOne({
      realm: MASTER,
      alias: NEXTCLOUD_IDP_ALIAS,
    })
    expect(idp).toMatchObject({
      enabled: true,
      firstBrokerLoginFlowAlias: DENY_FIRST_LOGIN_FLOW,
      config: {
        authorizationUrl: `${harp.publicUrl}/oidc/authorize`,
        tokenUrl: `${t.exapp.url}/oidc/token`,
        clientId: CONSOLE_CLIENT_ID,
      },
    })
    const steps = await t.admin.authenticationManagement.getExecutions({
      realm: MASTER,
      flow: DENY_FIRST_LOGIN_FLOW,
    })
    expect(steps.map((s) => [s.providerId, s.requirement])).toEqual([
      ['deny-access-authenticator', 'REQUIRED'],
    ])
    expect((await t.admin.realms.findOne({ realm: MASTER }))?.browserFlow).toBe(BROWSER_FLOW)
    expect((await t.exapp.bootstrap()).changes).toEqual([])
  })

  it('gives a Nextcloud admin a linked master identity with the master role admin', async () => {
    const user = await masterUser(ADMIN)
    expect(user).toMatchObject({
      enabled: true,
      email: `${ADMIN}@example.com`,
      firstName: 'Ana',
      lastName: 'Admin',
      attributes: expect.objectContaining({ [CONSOLE_ATTRIBUTE]: [t.realm] }),
    })
    const links = await t.admin.users.listFederatedIdentities({
      realm: MASTER,
      id: user?.id as string,
    })
    expect(links).toEqual([
      expect.objectContaining({ identityProvider: NEXTCLOUD_IDP_ALIAS, userId: ADMIN }),
    ])
    expect(await rolesOf(user?.id as string)).toEqual({ realm: ['admin'], client: [] })
    // In admin and a console group: admin wins.
    expect(await rolesOf((await masterUser(ADMIN2))?.id as string)).toEqual({
      realm: ['admin'],
      client: [],
    })
  })

  it('gives a console-group member only the synced realm’s management roles', async () => {
    const user = await masterUser(OPS)
    expect(user?.attributes?.[CONSOLE_ATTRIBUTE]).toEqual([t.realm])
    expect(await rolesOf(user?.id as string)).toEqual({
      realm: [],
      client: [...CONSOLE_REALM_ROLES].sort(),
    })
    expect(await masterUser(PLAIN)).toBeUndefined()
  })

  it('leaves an unmarked master user of the same name alone, with a warning', async () => {
    const report = await t.exapp.consoleAdmins?.reconcile()
    expect(report?.warnings.join('\n')).toContain(CLASH)
    const user = await t.admin.users.findOne({ realm: MASTER, id: clashId })
    expect(user).toMatchObject({ username: CLASH, firstName: 'Break', lastName: 'Glass' })
    expect(user?.attributes ?? {}).toEqual({})
    expect(await t.admin.users.listFederatedIdentities({ realm: MASTER, id: clashId })).toEqual([])
    expect(await rolesOf(clashId)).toEqual({ realm: [], client: [] })
  })

  it('signs an admin in to the console as themselves; a console-group member administers the realm only', async () => {
    const admin = await consoleLogin(ADMIN)
    expect('accessToken' in admin, JSON.stringify(admin)).toBe(true)
    // The console's access tokens are lightweight (no subject, no name): the console's own
    // whoami says whose they are.
    const whoami = async (token: string, realm = MASTER) => {
      const res = await fetch(
        `${keycloak.url}/admin/${MASTER}/console/whoami?currentRealm=${realm}`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      )
      expect(res.status).toBe(200)
      return (await res.json()) as { userId?: string; userName?: string }
    }
    expect(await whoami((admin as { accessToken: string }).accessToken)).toMatchObject({
      userId: (await masterUser(ADMIN))?.id,
    })
    const ops = (await consoleLogin(OPS)) as { accessToken: string }
    expect(await whoami(ops.accessToken, t.realm)).toMatchObject({
      userId: (await masterUser(OPS))?.id,
    })
    const get = (path: string, token: string) =>
      fetch(`${keycloak.url}/admin/realms/${path}`, {
        headers: { authorization: `Bearer ${token}` },
      })
    expect((await get(`${t.realm}/users?max=1`, ops.accessToken)).status).toBe(200)
    expect((await get(`${MASTER}/users?max=1`, ops.accessToken)).status).toBe(403)
    expect(
      (await get(`${MASTER}/users?max=1`, (admin as { accessToken: string }).accessToken)).status,
    ).toBe(200)
  })

  it('refuses the console to a signed-in Nextcloud user who is not an admin', async () => {
    const result = await consoleLogin(PLAIN)
    expect('accessToken' in result).toBe(false)
    const page = (result as { page: { status: number; body: string } }).page
    expect(page.status).toBe(403)
    expect(page.body).toContain('only Nextcloud admins may open the Keycloak admin console')
  })

  it('refuses an admin whose name is taken by an unmarked master user (nobody is linked on login)', async () => {
    const result = await consoleLogin(CLASH)
    expect('accessToken' in result).toBe(false)
    expect(await t.admin.users.listFederatedIdentities({ realm: MASTER, id: clashId })).toEqual([])
  })

  it('a plain visit to the console goes to Nextcloud; an empty kc_idp_hint keeps Keycloak’s form', async () => {
    const auth = (extra: Record<string, string>) =>
      fetch(
        `${keycloak.url}/realms/${MASTER}/protocol/openid-connect/auth?${new URLSearchParams({
          response_type: 'code',
          client_id: CONSOLE,
          redirect_uri: consoleRedirect,
          scope: 'openid',
          code_challenge: createHash('sha256').update('v'.repeat(43)).digest('base64url'),
          code_challenge_method: 'S256',
          ...extra,
        })}`,
        { redirect: 'manual' },
      )
    const plain = await auth({})
    expect([302, 303]).toContain(plain.status)
    // Straight to the broker's login for nextcloud, which sends the browser to the provider.
    expect(plain.headers.get('location')).toContain(
      `/realms/${MASTER}/broker/${NEXTCLOUD_IDP_ALIAS}/login`,
    )
    await plain.body?.cancel()
    const form = await auth({ kc_idp_hint: '' })
    expect(form.status).toBe(200)
    expect(await form.text()).toContain('kc-form-login')
  })

  it('disables the identity of a user disabled in Nextcloud, and removes it when they leave admin', async () => {
    t.nc.updateUser(OPS, { enabled: false })
    t.nc.updateUser(ADMIN2, { groups: [] })
    const run = await t.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
    // The run started a reconciliation as it finished.
    await t.exapp.consoleAdmins?.settled()
    expect(await masterUser(ADMIN2)).toBeUndefined()
    expect((await masterUser(OPS))?.enabled).toBe(false)
    expect((await masterUser(ADMIN))?.enabled).toBe(true)
  })
})
