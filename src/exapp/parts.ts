import { createNextcloudClient, type NextcloudClient } from '../appapi/nextcloud-client.js'
import type { Config } from '../config/config.js'
import type { Store } from '../db/store.js'
import type { KcAdmin } from '../keycloak/admin.js'
import { JWT_GRANT_IDP_ALIAS } from '../keycloak/jwt-grant.js'
import type { Logger } from '../log.js'
import { brokerClient, consoleBrokerClient, NEXTCLOUD_IDP_ALIAS } from '../oidc/clients.js'
import { ConsoleAdmins } from '../sync/console-admins.js'
import type { RunSummary } from '../sync/engine.js'
import { KeycloakTarget } from '../sync/keycloak-target.js'
import { managedRoles } from '../sync/model.js'
import type { NextcloudSource } from '../sync/nextcloud-source.js'

/** The client of Nextcloud's OCS and AppAPI endpoints, signed as this app. */
export function nextcloudClientFor(config: Config, log: Logger): NextcloudClient {
  return createNextcloudClient({
    url: config.nextcloud.url,
    appId: config.app.id,
    appSecret: config.app.secret,
    appVersion: config.app.version,
    aaVersion: config.nextcloud.aaVersion,
    log,
  })
}

/** The realm the sync writes: managed roles, profile attributes and the identity links it keeps. */
export function keycloakTargetFor(config: Config, admin: KcAdmin): KeycloakTarget {
  return new KeycloakTarget({
    admin,
    realm: config.keycloak.realm,
    managedRoles: managedRoles(config.sync),
    profileAttributes: config.sync.profileFields.map((f) => f.attribute),
    idpAlias: config.keycloak.tokenMode === 'jwt' ? JWT_GRANT_IDP_ALIAS : undefined,
    // The realm login's provider (on a unix socket too: Keycloak calls a loopback back-channel).
    loginIdpAlias: NEXTCLOUD_IDP_ALIAS,
  })
}

/** A value known later (the address the app listens on): `value` waits for `set`. */
export function later<T>(): { value: Promise<T>; set(value: T): void } {
  let set: (value: T) => void = () => undefined
  const value = new Promise<T>((resolve) => {
    set = resolve
  })
  return { value, set }
}

/** The secrets of the provider's two broker clients (the realm's and the console's), kept in the store. */
export function brokerSecrets(
  store: Pick<Store, 'getOrCreateSecret'>,
  config: Config,
): { secret(): Promise<string>; consoleSecret(): Promise<string> } {
  const broker = brokerClient(store, config.keycloak)
  const consoleBroker = consoleBrokerClient(store, config.keycloak)
  return {
    secret: async () => (await broker()).secret,
    consoleSecret: async () => (await consoleBroker()).secret,
  }
}

/**
 * The console identities of Nextcloud admins in the master realm; none with
 * KEYCLOAK_CONSOLE_LOGIN=keycloak, or when the sync writes another target than Keycloak (the
 * benches' in-memory realm).
 */
export function consoleAdminsFor(parts: {
  config: Config
  admin: KcAdmin
  nextcloud: NextcloudClient
  source: Pick<NextcloudSource, 'admin'>
  log: Logger
  overrides: { syncTarget?: unknown }
}): ConsoleAdmins | undefined {
  const { config, source } = parts
  if (parts.overrides.syncTarget || config.keycloak.consoleLogin !== 'nextcloud') {
    return undefined
  }
  return new ConsoleAdmins({
    admin: parts.admin,
    realm: config.keycloak.realm,
    consoleGroups: config.keycloak.consoleGroups,
    idpAlias: NEXTCLOUD_IDP_ALIAS,
    nextcloud: parts.nextcloud,
    actingAdmin: () => source.admin(),
    log: parts.log,
  })
}

/** One listener made of several (absent ones skipped), e.g. for each finished sync run. */
export function each(
  ...listeners: (((run: RunSummary) => void) | undefined)[]
): (run: RunSummary) => void {
  return (run) => {
    for (const listener of listeners) {
      listener?.(run)
    }
  }
}
