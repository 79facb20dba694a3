import type { Store } from '../db/store.js'
import {
  loadOrCreateSigningKey,
  type PublicJwk,
  type SigningKey,
} from '../keycloak/assertion-signing.js'

/** Store name of the provider's ID token signing key (its private part, sealed by the store). */
export const OIDC_SIGNING_KEY_SECRET = 'oidc-signing-key'

export interface ProviderKeys {
  /** the key that signs ID tokens (ES256) */
  key(): Promise<SigningKey>
  jwks(): Promise<{ keys: PublicJwk[] }>
}

/**
 * The provider's own signing key, apart from the token API's assertion key: generated once,
 * kept in the store like the app's other secrets, the same for every replica on one database.
 */
export function providerKeys(store: Pick<Store, 'getOrCreateSecret'>): ProviderKeys {
  let loaded: Promise<SigningKey> | undefined
  const key = () => {
    loaded ??= loadOrCreateSigningKey(store, OIDC_SIGNING_KEY_SECRET).catch((err: unknown) => {
      loaded = undefined
      throw err
    })
    return loaded
  }
  return {
    key,
    jwks: async () => ({ keys: [(await key()).publicJwk] }),
  }
}
