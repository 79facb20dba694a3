import { Hono } from 'hono'
import type { Config } from '../config/config.js'
import type { Store } from '../db/store.js'
import type { KeycloakRuntime } from '../keycloak/runtime.js'
import type { SyncEngine } from '../sync/engine.js'
import { tokenRoutes } from '../tokens/routes.js'
import type { TokenService } from '../tokens/service.js'
import { openApiDocument } from './openapi.js'
import { syncRoutes } from './sync-routes.js'
import type { AppEnv } from './types.js'
import { uiRoutes } from './ui-routes.js'

export interface ApiDeps {
  config: Config
  keycloak: KeycloakRuntime
  sync: SyncEngine
  store: Store
  tokens: Pick<TokenService, 'issue' | 'rotateSigningKey'>
}

/**
 * The routes under `/api`. They carry no authentication of their own: the app mounts them only
 * where the access table (src/http/access.ts) declares them, and checks every caller against it.
 */
export function apiRoutes({ config, keycloak, sync, store, tokens }: ApiDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get('/openapi.json', (c) => c.json(openApiDocument(config.app.version)))
    .route('/', syncRoutes({ sync, store, realm: config.keycloak.realm }))
    .route('/ui', uiRoutes({ config, keycloak, sync }))
    .post('/signing-key/rotate', async (c) => c.json(await tokens.rotateSigningKey()))
    .route('/', tokenRoutes({ tokens, consumers: config.consumers }))
}
