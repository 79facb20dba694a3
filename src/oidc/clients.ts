import { randomSecret } from '../config/secrets.js'
import type { Store } from '../db/store.js'

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
}

/** The client the realm's identity provider for Nextcloud signs in as. */
export const BROKER_CLIENT_ID = 'keycloak-broker'

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
  const redirectUri = `${keycloak.publicUrl}/realms/${encodeURIComponent(keycloak.realm)}/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
  let secret: Promise<string> | undefined
  return async () => {
    secret ??= store
      .getOrCreateSecret(clientSecretName(BROKER_CLIENT_ID), () => randomSecret())
      .catch((err: unknown) => {
        secret = undefined
        throw err
      })
    return { id: BROKER_CLIENT_ID, secret: await secret, redirectUris: [redirectUri] }
  }
}
