import { describe, expect, it } from 'vitest'
import { testConfig } from '../test/config.js'
import { createApp, type PartHealth } from './app.js'
import type { Lifecycle } from './appapi/lifecycle.js'
import type { KeycloakRuntime, KeycloakStatus } from './keycloak/runtime.js'
import { silentLogger } from './log.js'

function fakeKeycloak(status: KeycloakStatus): KeycloakRuntime {
  return {
    mode: 'embedded',
    status: () => status,
    start() {},
    stop: async () => {},
    waitReady: async () => {},
    restarts: () => 0,
  }
}

function fakeLifecycle(calls: string[]): Lifecycle {
  return {
    startInit() {
      calls.push('init')
      return { started: true }
    },
    initState: () => ({ kind: 'idle' }),
    settled: async () => {},
    setEnabled: async (enabled) => {
      calls.push(`enabled=${enabled}`)
      return { error: '' }
    },
  }
}

function makeApp(status: KeycloakStatus = 'ready', health?: () => Record<string, PartHealth>) {
  const config = testConfig({})
  const calls: string[] = []
  const app = createApp({
    config,
    log: silentLogger(),
    keycloak: fakeKeycloak(status),
    lifecycle: fakeLifecycle(calls),
    isAdmin: async (uid) => uid === 'admin',
    ...(health ? { health } : {}),
  })
  const as = (user: string) => ({
    'EX-APP-ID': config.app.id,
    'EX-APP-VERSION': '1.0.0',
    'AUTHORIZATION-APP-API': Buffer.from(`${user}:${config.app.secret}`).toString('base64'),
  })
  return { app, calls, auth: as(''), as }
}

describe('lifecycle routes', () => {
  it('answers the heartbeat without auth and says what is true', async () => {
    const { app } = makeApp('starting')
    const res = await app.request('/heartbeat')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ok', keycloak: 'starting', init: 'idle' })
  })

  it('keeps /healthz at 503 until Keycloak is ready', async () => {
    expect((await makeApp('starting').app.request('/healthz')).status).toBe(503)
    const ready = await makeApp('ready').app.request('/healthz')
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ok', keycloak: 'ready' })
  })

  it('keeps /healthz at 503 while the database or the stored secrets are not ok, and says which', async () => {
    const parts: Record<string, PartHealth> = {
      database: { ok: true, status: 'ok' },
      secrets: { ok: true, status: 'ok' },
    }
    const { app } = makeApp('ready', () => parts)
    const fine = await app.request('/healthz')
    expect(fine.status).toBe(200)
    expect(await fine.json()).toEqual({
      status: 'ok',
      keycloak: 'ready',
      database: 'ok',
      secrets: 'ok',
    })

    parts.database = { ok: false, status: 'stalled' }
    const stalled = await app.request('/healthz')
    expect(stalled.status).toBe(503)
    expect(await stalled.json()).toMatchObject({ status: 'unavailable', database: 'stalled' })

    parts.database = { ok: true, status: 'ok' }
    parts.secrets = { ok: false, status: 'undecryptable' }
    const locked = await app.request('/healthz')
    expect(locked.status).toBe(503)
    expect(await locked.json()).toMatchObject({ status: 'unavailable', secrets: 'undecryptable' })
  })

  it('starts init in the background and answers {} at once', async () => {
    const { app, calls, auth } = makeApp()
    const res = await app.request('/init', { method: 'POST', headers: auth })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({})
    expect(calls).toEqual(['init'])
  })

  it('passes enabled=1|0 on and refuses anything else', async () => {
    const { app, calls, auth } = makeApp()
    expect(
      await (await app.request('/enabled?enabled=1', { method: 'PUT', headers: auth })).json(),
    ).toEqual({ error: '' })
    expect(
      await (await app.request('/enabled?enabled=0', { method: 'PUT', headers: auth })).json(),
    ).toEqual({ error: '' })
    const bad = await app.request('/enabled?enabled=yes', { method: 'PUT', headers: auth })
    expect(bad.status).toBe(400)
    expect(calls).toEqual(['enabled=true', 'enabled=false'])
  })

  it('refuses lifecycle calls without AppAPI credentials, with a JSON 401', async () => {
    const { app, calls } = makeApp()
    for (const [method, path] of [
      ['POST', '/init'],
      ['PUT', '/enabled?enabled=1'],
      ['GET', '/unknown'],
    ] as const) {
      const res = await app.request(path, { method })
      expect(res.status).toBe(401)
      expect(await res.json()).toMatchObject({
        error: { code: 'UNAUTHORIZED', message: 'AppAPI authentication failed' },
      })
    }
    expect(calls).toEqual([])
  })

  it('lets only the system or a Nextcloud admin call /init and /enabled', async () => {
    const { app, calls, as } = makeApp()
    for (const [method, path] of [
      ['POST', '/init'],
      ['PUT', '/enabled?enabled=1'],
      ['PUT', '/enabled?enabled=yes'],
    ] as const) {
      const res = await app.request(path, { method, headers: as('bob') })
      expect(res.status, `${method} ${path}`).toBe(403)
      expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
    }
    expect(calls).toEqual([])
    expect((await app.request('/init', { method: 'POST', headers: as('admin') })).status).toBe(200)
    const enable = await app.request('/enabled?enabled=1', { method: 'PUT', headers: as('admin') })
    expect(enable.status).toBe(200)
    expect(calls).toEqual(['init', 'enabled=true'])
  })

  it('refuses a named user on /init and /enabled when it cannot check admins', async () => {
    const config = testConfig({})
    const calls: string[] = []
    const app = createApp({
      config,
      log: silentLogger(),
      keycloak: fakeKeycloak('ready'),
      lifecycle: fakeLifecycle(calls),
    })
    const headers = {
      'EX-APP-ID': config.app.id,
      'EX-APP-VERSION': '1.0.0',
      'AUTHORIZATION-APP-API': Buffer.from(`admin:${config.app.secret}`).toString('base64'),
    }
    expect((await app.request('/init', { method: 'POST', headers })).status).toBe(403)
    expect(calls).toEqual([])
  })

  it('answers an unknown path with AppAPI credentials with a JSON 404', async () => {
    const { app, auth } = makeApp()
    const res = await app.request('/nothing-here', { headers: auth })
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })
})
