import { createNextcloudClient, type NextcloudClient } from '../appapi/nextcloud-client.js'
import type { Config } from '../config/config.js'
import type { KcAdmin } from '../keycloak/admin.js'
import { JWT_GRANT_IDP_ALIAS } from '../keycloak/jwt-grant.js'
import type { Logger } from '../log.js'
import { NEXTCLOUD_IDP_ALIAS } from '../oidc/clients.js'
import { KeycloakTarget } from '../sync/keycloak-target.js'
import { managedRoles } from '../sync/model.js'

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
