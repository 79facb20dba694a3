import { createRoute, z } from '@hono/zod-openapi'
import type { Hono } from 'hono'
import type { Config } from '../config/config.js'
import type { Store } from '../db/store.js'
import type { KeycloakRuntime } from '../keycloak/runtime.js'
import type { SyncEngine } from '../sync/engine.js'
import type { TokenService } from '../tokens/service.js'
import { errors, openApiDocument, routes } from './openapi.js'
import { syncRoutes } from './sync-routes.js'
import { tokenRoutes } from './token-routes.js'
import type { AppEnv } from './types.js'
import { uiRoutes } from './ui-routes.js'

const rotate = createRoute({
  method: 'post',
  path: '/signing-key/rotate',
  summary: 'Rotate the token signing key',
  responses: {
    200: {
      description: 'the new key id and the one it replaces',
      content: {
        'application/json': { schema: z.object({ kid: z.string(), previousKid: z.string() }) },
      },
    },
    ...errors(401, 403, 409),
  },
})

export interface ApiDeps {
  config: Config
  keycloak: KeycloakRuntime
  sync: SyncEngine
  store: Store
  tokens: Pick<TokenService, 'issue' | 'rotateSigningKey'>
  /**
   * resolves when tokens may be minted, throws (KEYCLOAK_UNAVAILABLE) when not: after a Keycloak
   * restart, the realm must be re-asserted first
   */
  realmReady?(): Promise<void>
  /** wraps every token issuance, e.g. to count and time it */
  timeTokens?<A extends unknown[], R>(issue: (...args: A) => Promise<R>): (...args: A) => Promise<R>
}

/**
 * The routes under `/api`. They carry no authentication of their own: the app mounts them only
 * where the access table (src/http/access.ts) declares them, and checks every caller against it.
 */
export function apiRoutes(deps: ApiDeps): Hono<AppEnv> {
  const { config, keycloak, sync, store, tokens } = deps
  const guarded: TokenService['issue'] = async (req) => {
    await deps.realmReady?.()
    return tokens.issue(req)
  }
  const issue = deps.timeTokens ? deps.timeTokens(guarded) : guarded
  const api = routes()
    .route('/', syncRoutes({ sync, store, realm: config.keycloak.realm }))
    .route('/ui', uiRoutes({ config, keycloak, sync }))
    .openapi(rotate, async (c) => c.json(await tokens.rotateSigningKey(), 200))
    .route('/', tokenRoutes({ tokens: { issue }, consumers: config.consumers }))
  let document: ReturnType<typeof openApiDocument> | undefined
  // Not declared itself: the document describes the API, not where it is served.
  return api.get('/openapi.json', (c) => {
    document ??= openApiDocument(api, '/api', config.app.version)
    return c.json(document)
  })
}
