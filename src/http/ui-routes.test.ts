import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { testConfig } from '../../test/config.js'
import { RUN_STATUSES } from '../db/schema.js'
import type { KeycloakRuntime } from '../keycloak/runtime.js'
import { silentLogger } from '../log.js'
import { CHANGE_KINDS } from '../sync/changes.js'
import type { SyncEngine } from '../sync/engine.js'
import { onError } from './errors.js'
import type { AppEnv, Caller } from './types.js'
import { tokenEndpoint, uiRoutes } from './ui-routes.js'
import { CONFLICT_LABELS, TRIGGER_LABELS, type Vocabulary } from './vocabulary.js'

function setup(caller: Caller) {
  const config = testConfig({
    KC_HOSTNAME: 'https://cloud.example/exapps/keycloak',
    KEYCLOAK_REALM: 'acme',
    KEYCLOAK_CLIENTS: 'opentalk,matrix',
    SYNC_INTERVAL: '300',
  })
  const keycloak = {
    mode: 'embedded',
    status: () => 'starting',
    restarts: () => 2,
  } as unknown as KeycloakRuntime
  const sync = {
    nextScheduledRun: () => new Date('2026-11-23T01:00:00Z'),
    progress: () => ({ phase: 'applying', runId: 4, trigger: 'ui', done: 3, total: 9 }),
  } as unknown as SyncEngine
  const app = new Hono<AppEnv>()
    .use(async (c, next) => {
      c.set('log', silentLogger())
      c.set('requestId', 'r1')
      c.set('caller', caller)
      await next()
    })
    .route('/ui', uiRoutes({ config, keycloak, sync }))
  app.onError(onError)
  return { app, config }
}

describe('the token endpoint shown to consumer developers', () => {
  const app = testConfig({}).app
  const publicUrl = 'https://cloud.example/exapps/keycloak'
  it.each([
    [{ host: '127.0.0.1', port: 23000 }, 'http://127.0.0.1:23000/api/token'],
    [{ host: '0.0.0.0', port: 23001 }, 'http://nc_app_keycloak:23001/api/token'],
    [{ host: '::', port: 23000 }, 'http://nc_app_keycloak:23000/api/token'],
    [{ host: '::1', port: 23000 }, 'http://[::1]:23000/api/token'],
    [{ socketPath: '/tmp/exapp.sock' }, 'https://cloud.example/exapps/keycloak/api/token'],
  ])('%o → %s', (where, expected) => {
    expect(tokenEndpoint({ ...app, ...where }, publicUrl)).toBe(expected)
  })
})

describe('/api/ui', () => {
  it('gives the page the state of Keycloak, the schedule and the token API, without secrets', async () => {
    const { app, config } = setup({ kind: 'nextcloud', userId: 'admin', isAdmin: true })
    const res = await app.request('/ui/overview')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = await res.json()
    expect(body).toEqual({
      app: { version: '0.0.0-test' },
      keycloak: {
        status: 'starting',
        mode: 'embedded',
        version: config.keycloak.version,
        restarts: 2,
        realm: 'acme',
        publicUrl: 'https://cloud.example/exapps/keycloak',
        consolePath: 'https://cloud.example/exapps/keycloak/admin/master/console/',
        issuer: 'https://cloud.example/exapps/keycloak/realms/acme',
      },
      sync: {
        intervalSeconds: 300,
        nextRun: '2026-11-23T01:00:00.000Z',
        running: { phase: 'applying', runId: 4, trigger: 'ui', done: 3, total: 9 },
        deletePolicy: 'disable',
        guardPercent: 20,
      },
      tokens: {
        mode: 'jwt',
        endpoint: 'http://127.0.0.1:23000/api/token',
        clients: ['opentalk', 'matrix'],
        consumers: [{ name: 'default', clients: ['opentalk', 'matrix'] }],
      },
    })
    const text = JSON.stringify(body)
    expect(text).not.toContain(config.keycloak.adminPassword)
    expect(text).not.toContain(config.consumers[0]?.secret)
  })

  it('reveals the consumer secret to a Nextcloud admin, and no console password', async () => {
    const { app, config } = setup({ kind: 'nextcloud', userId: 'admin', isAdmin: true })
    const res = await app.request('/ui/credentials', { method: 'POST' })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = await res.json()
    expect(body).toEqual({
      consumers: [
        { name: 'default', secret: config.consumers[0]?.secret, clients: ['opentalk', 'matrix'] },
      ],
    })
    expect(JSON.stringify(body)).not.toContain(config.keycloak.adminPassword)
  })

  it('never reveals them to a consumer holding one secret', async () => {
    const { app } = setup({ kind: 'consumer', consumer: 'default', clients: ['opentalk'] })
    const res = await app.request('/ui/credentials', { method: 'POST' })
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
  })

  it('reveals only on POST', async () => {
    const { app } = setup({ kind: 'nextcloud', userId: 'admin', isAdmin: true })
    expect((await app.request('/ui/credentials')).status).toBe(404)
  })

  it("serves the sync's vocabularies as the server keeps them", async () => {
    const { app } = setup({ kind: 'nextcloud', userId: 'admin', isAdmin: true })
    const res = await app.request('/ui/vocabulary')
    expect(res.status).toBe(200)
    const body = (await res.json()) as Vocabulary
    const keys = (terms: { key: string }[]) => terms.map((t) => t.key)
    // The page sorts counts by this order, so it must be the sync's own.
    expect(keys(body.changeKinds)).toEqual([...CHANGE_KINDS])
    expect(keys(body.runStatuses)).toEqual([...RUN_STATUSES])
    expect(Object.fromEntries(body.triggers.map((t) => [t.key, t.label]))).toEqual(TRIGGER_LABELS)
    expect(Object.fromEntries(body.conflicts.map((t) => [t.key, t.label]))).toEqual(CONFLICT_LABELS)
    for (const term of Object.values(body).flat()) {
      expect(term.label, term.key).toMatch(/^[A-Z]/)
    }
    expect(body.changeKinds.find((t) => t.key === 'create-user')?.label).toBe('Users created')
    expect(body.triggers.find((t) => t.key === 'init')?.label).toBe('Startup')
  })
})
