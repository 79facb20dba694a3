import { Hono, type MiddlewareHandler } from 'hono'
import type { Lifecycle } from './appapi/lifecycle.js'
import type { Config } from './config/config.js'
import { accessLog } from './http/access-log.js'
import { requireAppApi } from './http/appapi-auth.js'
import { errorBody, notFound, onError } from './http/errors.js'
import type { AppEnv } from './http/types.js'
import type { KeycloakRuntime } from './keycloak/runtime.js'
import type { Logger } from './log.js'

export interface AppDeps {
  config: Config
  log: Logger
  keycloak: KeycloakRuntime
  lifecycle: Lifecycle
  /** routes that bring their own authentication (consumer API), mounted under /api */
  api?: Hono<AppEnv>
  /** `GET /metrics`, with its own authentication */
  metrics?: Hono<AppEnv>
  /** everything else Nextcloud proxies to us (status page, console), behind AppAPI auth */
  ui?: Hono<AppEnv>
  /** whether a Nextcloud uid is an admin; without it only the system may call /init and /enabled */
  isAdmin?(uid: string): Promise<boolean>
  /** the other parts `/healthz` reports (the database, the stored secrets); each must be ok */
  health?(): Record<string, PartHealth>
}

/** A part of the app besides Keycloak, as `/healthz` reports it. */
export interface PartHealth {
  ok: boolean
  /** `ok`, or what is wrong (`failing`, `stalled`, `undecryptable`, …); the logs say why */
  status: string
}

/** The HTTP surface. No I/O happens here; everything arrives through `deps`. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { config, keycloak, lifecycle } = deps
  const app = new Hono<AppEnv>()
  app.use(accessLog(deps.log))
  app.onError(onError)
  app.notFound(notFound)

  // AppAPI calls /init only after a 200 here, so it answers as soon as we listen, and says what
  // is true rather than pretending Keycloak is up.
  app.get('/heartbeat', (c) =>
    c.json({ status: 'ok', keycloak: keycloak.status(), init: lifecycle.initState().kind }),
  )

  // Container health check: healthy only once Keycloak answers and every other part is ok.
  app.get('/healthz', (c) => {
    const status = keycloak.status()
    const parts = deps.health?.() ?? {}
    const ok = status === 'ready' && Object.values(parts).every((part) => part.ok)
    const statuses = Object.fromEntries(
      Object.entries(parts).map(([name, part]) => [name, part.status]),
    )
    return c.json(
      { status: ok ? 'ok' : 'unavailable', keycloak: status, ...statuses },
      ok ? 200 : 503,
    )
  })

  const appApi = requireAppApi({ appId: config.app.id, secret: config.app.secret })
  // AppAPI calls the lifecycle as the system (empty user id). Through the proxy any user's request
  // carries valid AppAPI headers too, so a named user must be a Nextcloud admin.
  const lifecycleCaller: MiddlewareHandler<AppEnv> = async (c, next) => {
    const caller = c.get('caller')
    const uid = caller?.kind === 'nextcloud' ? caller.userId : undefined
    const allowed =
      uid === '' ||
      (uid !== undefined &&
        deps.isAdmin !== undefined &&
        (await deps.isAdmin(uid).catch(() => false)))
    if (!allowed) {
      c.set('errorCode', 'FORBIDDEN')
      return c.json(
        errorBody(c, 'FORBIDDEN', 'only AppAPI or a Nextcloud admin may call this'),
        403,
      )
    }
    await next()
    return undefined
  }

  app.post('/init', appApi, lifecycleCaller, (c) => {
    lifecycle.startInit()
    return c.json({})
  })

  app.put('/enabled', appApi, lifecycleCaller, async (c) => {
    const flag = c.req.query('enabled')
    if (flag !== '0' && flag !== '1') {
      return c.json({ error: 'query parameter "enabled" must be 1 or 0' }, 400)
    }
    return c.json(await lifecycle.setEnabled(flag === '1'))
  })

  if (deps.api) {
    app.route('/api', deps.api)
  }
  if (deps.metrics) {
    app.route('/metrics', deps.metrics)
  }
  // Everything below this line needs AppAPI credentials, unknown paths included.
  app.use('*', appApi)
  if (deps.ui) {
    app.route('/', deps.ui)
  }
  return app
}
