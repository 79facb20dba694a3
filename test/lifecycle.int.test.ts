import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NEXTCLOUD_IDP_ALIAS } from '../src/oidc/clients.js'
import { bootstrapped, startTestExApp, type TestExApp } from './exapp-harness.js'
import { fixtureDirectory } from './fake-nextcloud/index.js'

describe('install through AppAPI against a real Keycloak', () => {
  let t: TestExApp

  beforeAll(async () => {
    t = await startTestExApp({ directory: fixtureDirectory() })
  })
  afterAll(async () => {
    await t?.close()
  })

  it('reports progress to 100, gets enabled, and leaves the realm set up and synced', async () => {
    const result = await t.nc.install(t.exapp.config.app.id, { timeoutMs: 120_000 })
    expect(result).toMatchObject({ init: 100, error: '', enabled: true, timedOut: false })
    const calls = t.nc.exAppCalls().map((c) => `${c.method} ${c.path}`)
    expect(calls).toEqual(
      expect.arrayContaining(['GET /heartbeat', 'POST /init', 'PUT /enabled?enabled=1']),
    )
    // Progress went up in steps (0, 40, 60, 90, 95, 100), not straight to 100.
    expect(t.nc.count('/ocs/v1.php/apps/app_api/ex-app/status', 'PUT')).toBe(6)

    const realm = await t.admin.realms.findOne({ realm: t.realm })
    expect(realm).toMatchObject({
      enabled: true,
      bruteForceProtected: true,
      registrationAllowed: false,
    })
    const profile = await t.admin.users.getProfile({ realm: t.realm })
    const username = profile.attributes?.find((a) => a.name === 'username')
    expect(username?.validations).toMatchObject({ length: { min: 1, max: 255 } })
    expect(profile.attributes?.find((a) => a.name === 'email')?.required).toBeUndefined()
    expect(profile.attributes?.map((a) => a.name)).toEqual(
      expect.arrayContaining(['nextcloud_managed', 'nextcloud_uid']),
    )
    const [client] = await t.admin.clients.find({ realm: t.realm, clientId: 'opentalk' })
    expect(client).toMatchObject({ publicClient: false, enabled: true })

    const users = await t.admin.users.find({ realm: t.realm, max: 100 })
    expect(users.map((u) => u.username).sort()).toEqual(['admin', 'alice', 'bob', 'carol'])
    const alice = users.find((u) => u.username === 'alice')
    expect(alice).toMatchObject({ firstName: 'Alice', lastName: 'Anders', enabled: true })
    expect(alice?.attributes).toMatchObject({
      nextcloud_uid: ['alice'],
      nextcloud_managed: ['true'],
    })
  })

  it('registers the admin-only "Keycloak" top menu with a loader that frames the console', async () => {
    const appId = t.exapp.config.app.id
    const ui = t.nc.ui(appId)
    expect(ui.topMenus).toEqual([
      expect.objectContaining({ name: 'keycloak', display_name: 'Keycloak', admin_required: 1 }),
    ])
    expect(ui.scripts).toEqual([expect.objectContaining({ name: 'keycloak', path: 'app/loader' })])
    const headers = t.nc.appApiHeaders(appId, 'admin')
    const loader = await fetch(`${t.exapp.url}/app/loader.js`, { headers })
    expect(loader.status).toBe(200)
    expect(loader.headers.get('content-type')).toContain('javascript')
    expect(await loader.text()).toContain("'/app/'")
    const icon = await fetch(`${t.exapp.url}/${ui.topMenus[0]?.icon}`, { headers })
    expect(icon.status).toBe(200)
    expect(icon.headers.get('content-type')).toBe('image/svg+xml')
  })

  it('heartbeat tells the truth once installed', async () => {
    const res = await fetch(`${t.exapp.url}/heartbeat`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ok', keycloak: 'ready', init: 'done' })
    expect((await fetch(`${t.exapp.url}/healthz`)).status).toBe(200)
  })

  it('serves its OpenAPI document without credentials', async () => {
    const res = await fetch(`${t.exapp.url}/api/openapi.json`)
    expect(res.status).toBe(200)
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> }
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/token', '/api/sync-all', '/api/sync-user', '/api/delete-user']),
    )
  })

  it('a second bootstrap changes nothing in the realm', async () => {
    const before = await t.admin.realms.findOne({ realm: t.realm })
    const profileBefore = await t.admin.users.getProfile({ realm: t.realm })
    const report = await t.exapp.bootstrap()
    expect(report.changes).toEqual([])
    expect(await t.admin.realms.findOne({ realm: t.realm })).toEqual(before)
    expect(await t.admin.users.getProfile({ realm: t.realm })).toEqual(profileBefore)
  })

  it('answers 401 on every protected route to no header, a wrong secret and another app', async () => {
    const appId = t.exapp.config.app.id
    const good = t.nc.appApiHeaders(appId, '')
    const variants: Record<string, Record<string, string>> = {
      none: {},
      wrongSecret: {
        ...good,
        'AUTHORIZATION-APP-API': Buffer.from(':not-the-secret').toString('base64'),
      },
      otherApp: { ...good, 'EX-APP-ID': 'another_app' },
    }
    const routes: [string, string][] = [
      ['POST', '/init'],
      ['PUT', '/enabled?enabled=0'],
      ['GET', '/admin/master/console/'],
      ['GET', '/anything'],
      ['POST', '/api/sync-all'],
      ['POST', '/api/sync-user'],
      ['GET', '/api/sync-runs'],
    ]
    for (const [method, path] of routes) {
      for (const [name, headers] of Object.entries(variants)) {
        const res = await fetch(`${t.exapp.url}${path}`, { method, headers })
        expect(res.status, `${method} ${path} with ${name}`).toBe(401)
        const body = (await res.json()) as { error: { code: string } }
        expect(body.error.code).toBe('UNAUTHORIZED')
      }
    }
  })
})

describe('under HaRP', () => {
  it('serves on the unix socket /tmp/exapp.sock instead of TCP', async () => {
    const { request } = await import('node:http')
    const t = await startTestExApp({ env: { HP_SHARED_KEY: 'harp-shared-key-for-test' } })
    try {
      expect(t.exapp.url).toBe('/tmp/exapp.sock')
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ socketPath: '/tmp/exapp.sock', path: '/heartbeat' }, (res) => {
          let data = ''
          res.on('data', (chunk: Buffer) => {
            data += chunk.toString()
          })
          res.on('end', () => resolve(data))
        })
        req.on('error', reject)
        req.end()
      })
      expect(JSON.parse(body)).toMatchObject({ status: 'ok' })

      // Keycloak cannot call the socket: the realm's Nextcloud login points at the provider's
      // back-channel on a loopback port, which serves the provider's keys and nothing else.
      await bootstrapped(t)
      const idp = await t.admin.identityProviders.findOne({
        realm: t.realm,
        alias: NEXTCLOUD_IDP_ALIAS,
      })
      const tokenUrl = idp?.config?.tokenUrl ?? ''
      expect(tokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oidc\/token$/)
      const base = new URL(tokenUrl).origin
      expect(idp?.config?.jwksUrl).toBe(`${base}/oidc/jwks`)
      const jwks = (await (await fetch(`${base}/oidc/jwks`)).json()) as { keys: unknown[] }
      expect(jwks.keys).toHaveLength(1)
      expect((await fetch(`${base}/heartbeat`)).status).toBe(404)
    } finally {
      await t.close()
    }
  })
})
