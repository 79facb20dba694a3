import type { Config } from '../config/config.js'
import type { Store } from '../db/store.js'
import { brokerClient } from './clients.js'
import { providerKeys } from './keys.js'
import { OidcProvider, type OidcUser } from './provider.js'
import { OIDC_PATH } from './routes.js'

export interface OidcDeps {
  config: Pick<Config, 'keycloak' | 'nextcloud'>
  store: Pick<Store, 'getOrCreateSecret'>
  /** the user's details from Nextcloud (through the app's Nextcloud client) */
  findUser(uid: string): Promise<OidcUser | null>
  now?: () => number
}

/**
 * The provider as the app runs it: its issuer under the public URL Nextcloud serves the app at,
 * one client (the realm's broker, see clients.ts), keys and client secret in the store.
 */
export function oidcProvider(deps: OidcDeps): OidcProvider {
  const { config } = deps
  const broker = brokerClient(deps.store, config.keycloak)
  return new OidcProvider({
    issuer: `${config.keycloak.publicUrl}${OIDC_PATH}`,
    nextcloudUrl: config.nextcloud.url,
    clients: async () => [await broker()],
    findUser: deps.findUser,
    keys: providerKeys(deps.store),
    ...(deps.now ? { now: deps.now } : {}),
  })
}
