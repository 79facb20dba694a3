import type { Config } from '../config/config.js'
import type { Logger } from '../log.js'
import { adminClient, clientLogin, type KcAdmin, passwordLogin, tokenAdmin } from './admin.js'
import { ensureServiceAccount, removeTemporaryAdmin, switchingLogin } from './service-account.js'

export { keycloakRuntime } from './runtime-from-config.js'

/**
 * An admin client of that Keycloak for the synced realm, logged in as the app's own service
 * account (created or repaired with the bootstrap admin when Keycloak refuses it). Once it works,
 * the bundled Keycloak's temporary bootstrap admin is deleted; an external Keycloak's admin never is.
 */
export function keycloakAdmin(keycloak: Config['keycloak'], log: Logger): KcAdmin {
  const { url, serviceAccount } = keycloak
  const login = switchingLogin({
    client: clientLogin(
      url,
      serviceAccount.clientId,
      serviceAccount.secret,
      'KEYCLOAK_ADMIN_CLIENT_SECRET',
    ),
    bootstrap: passwordLogin(url, keycloak.adminUser, keycloak.adminPassword),
    repair: (token) => ensureServiceAccount(tokenAdmin(url, token), serviceAccount),
    afterSwitch:
      keycloak.mode === 'embedded'
        ? async (token) => {
            if (await removeTemporaryAdmin(tokenAdmin(url, token), keycloak.adminUser)) {
              log.info({ username: keycloak.adminUser }, 'keycloak.temporary_admin_removed')
            }
          }
        : undefined,
    settings:
      'KEYCLOAK_ADMIN_CLIENT_SECRET, KC_BOOTSTRAP_ADMIN_USERNAME and KC_BOOTSTRAP_ADMIN_PASSWORD (a removed bootstrap admin: npm run keycloak:bootstrap-admin)',
    log,
  })
  return adminClient(url, keycloak.realm, login)
}
