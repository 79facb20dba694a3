import { randomSecret } from '../config/secrets.js'
import type { Store } from '../db/store.js'
import { NEXTCLOUD_ADMIN_GROUP } from '../sync/console-plan.js'

/** A relying party of the provider, with the redirect URIs it may use (compared exactly). */
export interface OidcClient {
  id: string
  secret: string
  redirectUris: readonly string[]
  /**
   * Nextcloud groups one of which a user needs to sign in through this client (absent or empty:
   * none needed): the broker's are the sync's gate groups, whose outsiders the realm disables
   */
  gateGroups?: readonly string[]
  /** who may sign in through this client (absent: every enabled Nextcloud user); `why` says it */
  admits?: { user(user: OidcUserGroups): boolean; why: string }
}

/** What a client's admission rule reads of a user: their Nextcloud groups (absent: unknown). */
export interface OidcUserGroups {
  groups?: readonly string[]
}

/** The client the realm's identity provider for Nextcloud signs in as. */
export const BROKER_CLIENT_ID = 'keycloak-broker'

/** The client the master realm's identity provider for Nextcloud (the admin console) signs in as. */
export const CONSOLE_CLIENT_ID = 'keycloak-console-broker'

/** The alias the realm's identity provider for Nextcloud is to have (its broker endpoint path). */
export const NEXTCLOUD_IDP_ALIAS = 'nextcloud'

/** Store name of a client's secret. */
export function clientSecretName(clientId: string): string {
  return `oidc-client.${clientId}`
}

/**
 * The broker client: Keycloak, redirecting back to the realm's broker endpoint under the public
 * URL it is served at. Its secret is generated once and kept in the store (sealed).
 */
export function brokerClient(
  store: Pick<Store, 'getOrCreateSecret'>,
  keycloak: { publicUrl: string; realm: string },
): () => Promise<OidcClient> {
  return storedClient(store, BROKER_CLIENT_ID, brokerEndpoint(keycloak.publicUrl, keycloak.realm))
}

/**
 * The console's broker client: the master realm's broker endpoint, for the admin console. Only
 * Nextcloud admins (`admin`, or a group of `consoleGroups`) are admitted: the master realm denies
 * everybody it has no linked identity for, and this refuses them before Keycloak is asked.
 */
export function consoleBrokerClient(
  store: Pick<Store, 'getOrCreateSecret'>,
  keycloak: { publicUrl: string; consoleGroups: readonly string[] },
): () => Promise<OidcClient> {
  const allowed = new Set([NEXTCLOUD_ADMIN_GROUP, ...keycloak.consoleGroups])
  const client = storedClient(
    store,
    CONSOLE_CLIENT_ID,
    brokerEndpoint(keycloak.publicUrl, 'master'),
  )
  const admits = {
    user: (user: OidcUserGroups) => (user.groups ?? []).some((g) => allowed.has(g)),
    why: 'only Nextcloud admins may open the Keycloak admin console',
  }
  return async () => ({ ...(await client()), admits })
}

function brokerEndpoint(publicUrl: string, realm: string): string {
  return `${publicUrl}/realms/${encodeURIComponent(realm)}/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
}

function storedClient(
  store: Pick<Store, 'getOrCreateSecret'>,
  id: string,
  redirectUri: string,
): () => Promise<OidcClient> {
  let secret: Promise<string> | undefined
  return async () => {
    secret ??= store
      .getOrCreateSecret(clientSecretName(id), () => randomSecret())
      .catch((err: unknown) => {
        secret = undefined
        throw err
      })
    return { id, secret: await secret, redirectUris: [redirectUri] }
  }
}
