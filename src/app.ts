import { Hono } from 'hono'
import type { Lifecycle } from './appapi/lifecycle.js'
import type { Config } from './config/config.js'
import { AppError } from './errors.js'
import { accessMatcher, type Part } from './http/access.js'
import { accessLog } from './http/access-log.js'
import { accessControl } from './http/api-auth.js'
import { notFound, onError } from './http/errors.js'
import { FailureLimiter } from './http/failure-limiter.js'
import { mountDeclared } from './http/mount.js'
import type { AppEnv } from './http/types.js'
import type { KeycloakRuntime } from './keycloak/runtime.js'
import type { Logger } from './log.js'

export interface AppDeps {
  config: Config
  log: Logger
  keycloak: KeycloakRuntime
  lifecycle: Lifecycle
  /** the routes under /api; each must be declared in the access table (src/http/access.ts) */
  api?: Hono<AppEnv>
  /** `GET /metrics` */
  metrics?: Hono<AppEnv>
  /** everything else Nextcloud proxies to us (status page, console), declared as `ui` entries */
  ui?: Hono<AppEnv>
  /** whether a Nextcloud uid is an admin; without it no named user is one */
  isAdmin?(uid: string): Promise<boolean>
  /** counts failed authentications (a fresh one when not given) */
  limiter?: FailureLimiter
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

  const served = new Set<Part>(['lifecycle'])
  for (const [part, routes] of [
    ['api', deps.api],
    ['metrics', deps.metrics],
    ['ui', deps.ui],
  ] as const) {
    if (routes) {
      served.add(part)
    }
  }
  // Every request passes the access table before any route: what it does not declare is refused.
  app.use(
    accessControl(accessMatcher(config.keycloak.realm, served), {
      appId: config.app.id,
      appSecret: config.app.secret,
      consumers: config.consumers,
      limiter: deps.limiter ?? new FailureLimiter(),
      isAdmin: deps.isAdmin,
      metricsToken: config.metricsToken,
    }),
  )

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

  app.post('/init', (c) => {
    lifecycle.startInit()
    return c.json({})
  })

  app.put('/enabled', async (c) => {
    const flag = c.req.query('enabled')
    if (flag !== '0' && flag !== '1') {
      throw new AppError('INVALID_INPUT', 'query parameter "enabled" must be 1 or 0')
    }
    return c.json(await lifecycle.setEnabled(flag === '1'))
  })

  if (deps.api) {
    mountDeclared(app, '/api', deps.api, 'api')
    // Any other path under /api, for a caller the table lets through.
    app.all('/api/*', () => {
      throw new AppError('NOT_FOUND', 'no such API route')
    })
  }
  if (deps.metrics) {
    mountDeclared(app, '/metrics', deps.metrics, 'metrics')
  }
  if (deps.ui) {
    mountDeclared(app, '/', deps.ui, 'ui')
  }
  return app
}
