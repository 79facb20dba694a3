import type { Config } from '../config/config.js'
import type { Store } from '../db/store.js'
import { brokerClient, consoleBrokerClient } from './clients.js'
import { providerKeys } from './keys.js'
import { OidcProvider, type OidcUser } from './provider.js'
import { OIDC_PATH } from './routes.js'

export interface OidcDeps {
  config: Pick<Config, 'app' | 'keycloak' | 'nextcloud' | 'sync'>
  store: Pick<Store, 'getOrCreateSecret'>
  /** the user's details from Nextcloud (through the app's Nextcloud client) */
  findUser(uid: string): Promise<OidcUser | null>
  now?: () => number
}

/**
 * The provider as the app runs it: its issuer under the public URL Nextcloud serves the app at
 * (Keycloak's own public URL may differ, with KC_HOSTNAME),
 * two clients (the realm's broker and the admin console's, see clients.ts), keys and client
 * secrets in the store.
 */
export function oidcProvider(deps: OidcDeps): OidcProvider {
  const { config } = deps
  const broker = brokerClient(deps.store, config.keycloak)
  const consoleBroker = consoleBrokerClient(deps.store, config.keycloak)
  return new OidcProvider({
    issuer: `${config.app.publicUrl}${OIDC_PATH}`,
    nextcloudUrl: config.nextcloud.url,
    // Checked at sign-in too: a user just taken out of the gate groups is not let in until the
    // next sync disables their account.
    clients: async () => [
      { ...(await broker()), gateGroups: config.sync.gateGroups },
      await consoleBroker(),
    ],
    findUser: deps.findUser,
    keys: providerKeys(deps.store),
    ...(deps.now ? { now: deps.now } : {}),
  })
}

/**
 * Where Keycloak, running beside the app, reaches the provider directly: a TCP address (the app's,
 * or on HaRP's unix socket the back-channel's, see backchannel.ts) with a wildcard host made
 * loopback. None for a socket path: then the realm gets no identity provider for Nextcloud.
 */
export function loopbackUrl(listening: string | undefined): string | undefined {
  if (!listening?.startsWith('http')) {
    return undefined
  }
  const url = new URL(listening)
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') {
    url.hostname = '127.0.0.1'
  }
  return url.origin
}
