import type { Config } from '../config/config.js'
import type { RealmSpec } from '../keycloak/bootstrap.js'
import { clientGrantAttributes, JWT_GRANT_IDP_ALIAS } from '../keycloak/jwt-grant.js'
import { sidecarIdentityProvider } from '../keycloak/trusted-keys.js'
import {
  MANAGED_ATTRIBUTE,
  managedRoles,
  NEXTCLOUD_UID_PATTERN,
  UID_ATTRIBUTE,
} from '../sync/model.js'
import type { Jwks } from '../tokens/signing-key-store.js'

/** The realm as the sidecar needs it; client secrets are generated once and kept in the store. */
export async function realmSpecFor(
  config: Config,
  clientSecret: (clientId: string) => Promise<string>,
  trustedKeys: (() => Promise<Jwks>) | undefined,
): Promise<RealmSpec> {
  const grant = trustedKeys ? clientGrantAttributes({ idpAlias: JWT_GRANT_IDP_ALIAS }) : {}
  const clients = await Promise.all(
    config.keycloak.clients.map(async (clientId) => ({
      clientId,
      secret: await clientSecret(clientId),
      directAccessGrants: config.keycloak.tokenMode === 'password',
      attributes: grant,
    })),
  )
  return {
    realm: config.keycloak.realm,
    profile: {
      markerAttributes: [MANAGED_ATTRIBUTE, UID_ATTRIBUTE],
      profileAttributes: config.sync.profileFields.map((f) => f.attribute),
      usernamePattern: NEXTCLOUD_UID_PATTERN,
    },
    clients,
    roles: managedRoles(config.sync),
    ...(trustedKeys ? { identityProvider: sidecarIdentityProvider(await trustedKeys()) } : {}),
  }
}
