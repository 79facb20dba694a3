import type { Config } from '../config/config.js'
import type { Logger } from '../log.js'
import { createKeycloakAdmin, type KcAdmin } from './admin.js'

export { keycloakRuntime } from './runtime-from-config.js'

/** An admin client of that Keycloak (the master realm's admin) for the synced realm. */
export function keycloakAdmin(keycloak: Config['keycloak'], log: Logger): KcAdmin {
  return createKeycloakAdmin({
    baseUrl: keycloak.url,
    username: keycloak.adminUser,
    password: keycloak.adminPassword,
    realm: keycloak.realm,
    log,
  })
}
