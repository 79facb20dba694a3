import { randomSecret } from '../config/secrets.js'
import type { Store } from '../db/store.js'

/**
 * The secret of each configured Keycloak client: generated once, kept (encrypted) in the store,
 * read from it once per process. Every grant needs it, and so does the realm's bootstrap, which
 * gives it to Keycloak. A failed read is not remembered: the next call tries again.
 */
export function clientSecrets(store: Pick<Store, 'getOrCreateSecret'>) {
  const secrets = new Map<string, Promise<string>>()
  return (clientId: string): Promise<string> => {
    let secret = secrets.get(clientId)
    if (!secret) {
      secret = store.getOrCreateSecret(`client-secret:${clientId}`, () => randomSecret())
      secret.catch(() => secrets.delete(clientId))
      secrets.set(clientId, secret)
    }
    return secret
  }
}
