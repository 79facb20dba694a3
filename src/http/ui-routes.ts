import { createRoute, z } from '@hono/zod-openapi'
import type { Config } from '../config/config.js'
import { AppError } from '../errors.js'
import type { KeycloakRuntime } from '../keycloak/runtime.js'
import type { SyncEngine } from '../sync/engine.js'
import { errors, routes } from './openapi.js'
import { vocabulary } from './vocabulary.js'

export interface UiRoutesDeps {
  config: Config
  keycloak: KeycloakRuntime
  sync: SyncEngine
}

/**
 * Where consumer apps send `POST /api/token` (server to server, with `X-API-SECRET`): the app's
 * own address. Listening on every interface means a container, which AppAPI names
 * `nc_app_<appid>` on its Docker network; under HaRP only Nextcloud's proxy reaches the app.
 */
export function tokenEndpoint(app: Config['app'], publicUrl: string): string {
  if (app.socketPath) {
    return `${publicUrl}/api/token`
  }
  const host = ['0.0.0.0', '::', '[::]'].includes(app.host) ? `nc_app_${app.id}` : app.host
  return `http://${host.includes(':') ? `[${host}]` : host}:${app.port}/api/token`
}

const progress = z.object({
  phase: z.enum(['reading', 'applying']),
  runId: z.number().int(),
  trigger: z.string(),
  done: z.number().int().optional(),
  total: z.number().int().optional(),
})

const OverviewSchema = z.object({
  app: z.object({ version: z.string() }),
  keycloak: z.object({
    status: z.enum(['stopped', 'starting', 'ready', 'stopping', 'crashed', 'installing']),
    mode: z.enum(['embedded', 'external']),
    version: z.string().nullable(),
    restarts: z.number().int(),
    realm: z.string(),
    publicUrl: z.string(),
    consolePath: z.string(),
    issuer: z.string(),
  }),
  sync: z.object({
    intervalSeconds: z.number(),
    nextRun: z.string().nullable(),
    running: progress.nullable(),
    deletePolicy: z.enum(['disable', 'delete']),
    guardPercent: z.number(),
  }),
  tokens: z.object({
    mode: z.enum(['jwt', 'password']),
    endpoint: z.string(),
    clients: z.array(z.string()),
    consumers: z.array(z.object({ name: z.string(), clients: z.array(z.string()) })),
  }),
})

/** What `GET /api/ui/overview` answers. */
export type Overview = z.infer<typeof OverviewSchema>

const overview = createRoute({
  method: 'get',
  path: '/overview',
  summary: "State of Keycloak, the sync schedule and the token API (the status page's data)",
  responses: {
    200: {
      description: 'overview',
      content: { 'application/json': { schema: OverviewSchema } },
    },
    ...errors(401, 403, 429),
  },
})

const named = z.object({ name: z.string(), clients: z.array(z.string()) })

const CredentialsSchema = z.object({
  consumers: z.array(named.extend({ secret: z.string() })),
})

/** What `POST /api/ui/credentials` answers. */
export type Credentials = z.infer<typeof CredentialsSchema>

const credentials = createRoute({
  method: 'post',
  path: '/credentials',
  summary: 'The consumer secrets, for a Nextcloud admin',
  responses: {
    200: {
      description: 'the secrets',
      content: {
        'application/json': { schema: CredentialsSchema },
      },
    },
    ...errors(401, 403, 429),
  },
})

const term = z.object({ key: z.string(), label: z.string() })

const vocabularyRoute = createRoute({
  method: 'get',
  path: '/vocabulary',
  summary: "The labels of the sync's change kinds, triggers, conflicts and run statuses",
  responses: {
    200: {
      description: 'lists in the order the server keeps them (change kinds: the order applied)',
      content: {
        'application/json': {
          schema: z.object({
            changeKinds: z.array(term),
            triggers: z.array(term),
            conflicts: z.array(term),
            runStatuses: z.array(term),
          }),
        },
      },
    },
    ...errors(401, 403, 429),
  },
})

/**
 * `/api/ui/*`, what the status page reads besides the sync routes: the state of Keycloak and the
 * schedule, the words for the sync's vocabularies, and (on an admin's click) the secrets.
 * Authentication is applied by the caller.
 */
export function uiRoutes({ config, keycloak, sync }: UiRoutesDeps) {
  const publicUrl = config.keycloak.publicUrl
  const consoleUrl = `${publicUrl}/admin/master/console/`
  return routes()
    .openapi(overview, (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(
        {
          app: { version: config.app.version },
          keycloak: {
            status: keycloak.status(),
            mode: keycloak.mode,
            // An external Keycloak's version is its own business.
            version: keycloak.mode === 'embedded' ? config.keycloak.version : null,
            restarts: keycloak.restarts(),
            realm: config.keycloak.realm,
            publicUrl,
            consolePath: consoleUrl,
            issuer: `${publicUrl}/realms/${config.keycloak.realm}`,
          },
          sync: {
            intervalSeconds: config.sync.intervalSeconds,
            nextRun: sync.nextScheduledRun()?.toISOString() ?? null,
            running: sync.progress() ?? null,
            deletePolicy: config.sync.deletePolicy,
            guardPercent: config.sync.guardPercent,
          },
          tokens: {
            mode: config.keycloak.tokenMode,
            endpoint: tokenEndpoint(config.app, publicUrl),
            clients: config.keycloak.clients,
            consumers: config.consumers.map(({ name, clients }) => ({ name, clients })),
          },
        },
        200,
      )
    })
    .openapi(vocabularyRoute, (c) => {
      c.header('Cache-Control', 'no-cache')
      return c.json(vocabulary(), 200)
    })
    .openapi(credentials, (c) => {
      // Only a person looking at the page, never a consumer holding one secret, sees them all.
      const caller = c.get('caller')
      if (caller?.kind !== 'nextcloud') {
        throw new AppError('FORBIDDEN', 'only a Nextcloud admin may reveal secrets')
      }
      c.get('log').info({ user: caller.userId }, 'ui.credentials_revealed')
      c.header('Cache-Control', 'no-store')
      return c.json(
        {
          consumers: config.consumers.map(({ name, secret, clients }) => ({
            name,
            secret,
            clients,
          })),
        },
        200,
      )
    })
}
