import type { Hono } from 'hono'
import { createApp } from '../src/app.js'
import type { Lifecycle } from '../src/appapi/lifecycle.js'
import type { Config } from '../src/config/config.js'
import type { AppEnv } from '../src/http/types.js'
import type { KeycloakRuntime } from '../src/keycloak/runtime.js'
import { silentLogger } from '../src/log.js'
import { testConfig } from './config.js'

/**
 * `ui` (the part behind AppAPI authentication: status page, Keycloak proxy) mounted in the real
 * app, with `as(user)` giving the headers AppAPI's proxy sends for `user` ('' = anonymous).
 * The access table's admin check takes `isAdmin` (default: the uid `admin` only).
 */
export function appWithUi(
  ui: Hono<AppEnv>,
  config: Config = testConfig({}),
  isAdmin: (uid: string) => Promise<boolean> = async (uid) => uid === 'admin',
) {
  const app = createApp({
    config,
    log: silentLogger(),
    keycloak: { status: () => 'ready' } as unknown as KeycloakRuntime,
    lifecycle: {} as Lifecycle,
    ui,
    isAdmin,
  })
  const as = (user: string, headers: Record<string, string> = {}) => ({
    'EX-APP-ID': config.app.id,
    'EX-APP-VERSION': '1.0.0',
    'AA-VERSION': '5.0.2',
    'AUTHORIZATION-APP-API': Buffer.from(`${user}:${config.app.secret}`).toString('base64'),
    ...headers,
  })
  return { app, as, config }
}
