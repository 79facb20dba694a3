import { type Context, Hono } from 'hono'
import type { AppApiDriver } from './appapi-driver.js'
import { appApiLogin } from './auth.js'
import type { Directory } from './directory.js'
import type { ExAppRecord, ExAppRegistry, UiResourceRecord } from './exapps.js'
import { type FakeEnv, type OcsVersion, ocsFail, ocsOk, paramsOf, sendJson } from './ocs.js'

interface Deps {
  directory: Directory
  registry: ExAppRegistry
  driver: AppApiDriver
}

/**
 * AppAPI's own OCS endpoints (`#[AppAPIAuth]`, public, no CSRF check): init status, enabled
 * state, the user list and the UI registrations (top menu, scripts, styles). A failed login answers
 * 401 `{"message": "AppAPI authentication failed"}` from AppAPI's middleware, not an OCS body.
 */
export function appApiRoutes(v: OcsVersion, { directory, registry, driver }: Deps) {
  const r = new Hono<FakeEnv>().basePath('/apps/app_api')
  r.use('*', async (c, next) => {
    const login = appApiLogin((n) => c.req.header(n), c.req.path, registry, directory)
    if (login.kind !== 'ok') {
      return sendJson(c, 401, { message: 'AppAPI authentication failed' })
    }
    c.set('user', login.user)
    c.set('app', login.app)
    await next()
    return undefined
  })

  const status = async (c: Context<FakeEnv>, app: ExAppRecord) => {
    const p = await paramsOf(c)
    const progress = Number(p.progress)
    if (p.progress === undefined || !Number.isInteger(progress)) {
      return ocsFail(c, v, 400, 'progress is required')
    }
    if (progress < 0 || progress > 100) {
      return sendJson(c, 500, { message: 'Invalid ExApp init status progress value' })
    }
    // Progress 100 enables the app (heartbeat, PUT /enabled) before this request is answered.
    await driver.setInitProgress(app, progress, typeof p.error === 'string' ? p.error : '')
    return ocsOk(c, v, [])
  }
  r.put('/ex-app/status', (c) => status(c, c.get('app')))
  r.put('/apps/status/:appId', (c) => {
    const app = registry.get(c.req.param('appId'))
    return app ? status(c, app) : ocsFail(c, v, 404, '')
  })
  r.get('/ex-app/state', (c) => ocsOk(c, v, c.get('app').enabled ? 1 : 0))
  r.get('/api/v1/users', (c) =>
    ocsOk(
      c,
      v,
      directory.searchUsers('', undefined, 0).map((u) => u.id),
    ),
  )

  r.post('/api/v1/ui/top-menu', async (c) => {
    const p = await paramsOf(c)
    const app = c.get('app')
    const name = text(p.name)
    if (!name || text(p.displayName) === undefined) {
      return ocsFail(c, v, 400, 'Top Menu entry could not be registered')
    }
    app.topMenus.set(name, {
      id: app.topMenus.get(name)?.id ?? registry.nextId(),
      appid: app.appId,
      name,
      display_name: text(p.displayName) ?? '',
      icon: (text(p.icon) ?? '').replace(/^\/+/, ''),
      admin_required: Number(p.adminRequired ?? 0) ? 1 : 0,
    })
    return ocsOk(c, v, [])
  })
  r.delete('/api/v1/ui/top-menu', async (c) => {
    const name = text((await paramsOf(c)).name) ?? ''
    const app = c.get('app')
    if (!app.topMenus.delete(name)) {
      return ocsFail(c, v, 404, 'No such Top Menu entry')
    }
    for (const list of [app.scripts, app.styles]) {
      for (const [key, res] of list) {
        if (res.type === 'top_menu' && res.name === name) {
          list.delete(key)
        }
      }
    }
    return ocsOk(c, v, [])
  })
  r.get('/api/v1/ui/top-menu', async (c) => {
    const entry = c.get('app').topMenus.get(text((await paramsOf(c)).name) ?? '')
    return entry ? ocsOk(c, v, entry) : ocsFail(c, v, 404, 'No such Top Menu entry')
  })

  for (const [kind, label] of [
    ['script', 'Script'],
    ['style', 'Style'],
  ] as const) {
    const store = (app: ExAppRecord) => (kind === 'script' ? app.scripts : app.styles)
    r.post(`/api/v1/ui/${kind}`, async (c) => {
      const p = await paramsOf(c)
      const app = c.get('app')
      const key = resourceKey(p)
      if (!key) {
        return ocsFail(c, v, 400, `${label} could not be set`)
      }
      const record: UiResourceRecord = {
        id: store(app).get(key.id)?.id ?? registry.nextId(),
        appid: app.appId,
        ...key.fields,
        ...(kind === 'script' ? { after_app_id: text(p.afterAppId) ?? '' } : {}),
      }
      store(app).set(key.id, record)
      return ocsOk(c, v, [])
    })
    r.delete(`/api/v1/ui/${kind}`, async (c) => {
      const key = resourceKey(await paramsOf(c))
      if (!key || !store(c.get('app')).delete(key.id)) {
        return ocsFail(c, v, 404, `No such ${label}`)
      }
      return ocsOk(c, v, [])
    })
    r.get(`/api/v1/ui/${kind}`, async (c) => {
      const key = resourceKey(await paramsOf(c))
      const record = key && store(c.get('app')).get(key.id)
      return record ? ocsOk(c, v, record) : ocsFail(c, v, 404, `No such ${label}`)
    })
  }
  return r
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

// Scripts and styles are upserted by (type, name, path); AppAPI strips a leading slash.
function resourceKey(p: Record<string, unknown>) {
  const type = text(p.type)
  const name = text(p.name)
  const path = text(p.path)?.replace(/^\/+/, '')
  if (!type || !name || !path) {
    return undefined
  }
  return { id: `${type}\n${name}\n${path}`, fields: { type, name, path } }
}
