import { Hono } from 'hono'
import type { Config } from '../config/config.js'
import type { AppEnv } from '../http/types.js'
import { keycloakProxy } from '../proxy/proxy.js'
import type { Asset, StatusPageFile } from './assets.js'
import { appAssets } from './top-menu.js'

export interface PagesOptions {
  config: Config
  isAdmin: (uid: string) => Promise<boolean>
  /** the status page's files (default: the ones shipped in src/ui/static) */
  files?: Map<StatusPageFile, Asset>
  /** Keycloak's loopback URL (default: config.keycloak.url) */
  upstream?: string
  fetch?: typeof fetch
}

/**
 * What Nextcloud proxies to the app besides the API: the status page under `/app` and, for every
 * other path, Keycloak (the admin console and the realm's public endpoints).
 */
export function proxiedPages(opts: PagesOptions): Hono<AppEnv> {
  const { config, isAdmin } = opts
  return new Hono<AppEnv>()
    .route(
      '/app',
      appAssets({
        publicPath: new URL(config.keycloak.publicUrl).pathname,
        isAdmin,
        files: opts.files,
      }),
    )
    .route(
      '/',
      keycloakProxy({
        upstream: opts.upstream ?? config.keycloak.url,
        publicUrl: config.keycloak.publicUrl,
        realm: config.keycloak.realm,
        isAdmin,
        fetch: opts.fetch,
      }),
    )
}
