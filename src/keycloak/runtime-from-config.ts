import type { Config } from '../config/config.js'
import type { Logger } from '../log.js'
import { createEmbeddedKeycloak, prepareBundledKeycloak } from './embedded.js'
import { createExternalKeycloak } from './external.js'
import type { KeycloakRuntime } from './runtime.js'

/**
 * The Keycloak the configuration names: one at KEYCLOAK_URL, or the bundled one, supervised.
 * Kept apart from the admin client so that the entry point can start Keycloak before it loads
 * the rest of the app.
 */
export function keycloakRuntime(config: Config, log: Logger): KeycloakRuntime {
  return config.keycloak.mode === 'external'
    ? createExternalKeycloak(config.keycloak.url, log)
    : createEmbeddedKeycloak(prepareBundledKeycloak(config, log), log)
}
