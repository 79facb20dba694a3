import type { Config } from '../config/config.js'
import type { Logger } from '../log.js'
import { createKeycloakAdmin, type KcAdmin } from './admin.js'
import { createEmbeddedKeycloak, prepareBundledKeycloak } from './embedded.js'
import { createExternalKeycloak } from './external.js'
import type { KeycloakRuntime } from './runtime.js'

/** The Keycloak the configuration names: one at KEYCLOAK_URL, or the bundled one, supervised. */
export function keycloakRuntime(config: Config, log: Logger): KeycloakRuntime {
  return config.keycloak.mode === 'external'
    ? createExternalKeycloak(config.keycloak.url, log)
    : createEmbeddedKeycloak(prepareBundledKeycloak(config, log), log)
}

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
