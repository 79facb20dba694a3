import type { Config } from '../config/config.js'
import type { RealmSpec } from '../keycloak/bootstrap.js'
import { clientGrantAttributes, JWT_GRANT_IDP_ALIAS } from '../keycloak/jwt-grant.js'
import { sidecarIdentityProvider } from '../keycloak/trusted-keys.js'
import { BROKER_CLIENT_ID, CONSOLE_CLIENT_ID, NEXTCLOUD_IDP_ALIAS } from '../oidc/clients.js'
import { OIDC_PATH } from '../oidc/routes.js'
import { consoleProfile } from '../sync/console-plan.js'
import {
  MANAGED_ATTRIBUTE,
  managedRoles,
  NEXTCLOUD_UID_PATTERN,
  UID_ATTRIBUTE,
} from '../sync/model.js'
import type { Jwks } from '../tokens/signing-key-store.js'

/** What the realm's identity provider for Nextcloud needs of the app's OpenID provider. */
export interface BrokerSide {
  /** the app's address for Keycloak's calls (token, keys); undefined: no Nextcloud login */
  backchannelUrl(): Promise<string | undefined>
  /** the broker client's secret (kept in the store) */
  secret(): Promise<string>
  /** the admin console's broker client's secret (kept in the store) */
  consoleSecret(): Promise<string>
}

/** The realm as the sidecar needs it; client secrets are generated once and kept in the store. */
export async function realmSpecFor(
  config: Config,
  clientSecret: (clientId: string) => Promise<string>,
  trustedKeys: (() => Promise<Jwks>) | undefined,
  broker?: BrokerSide,
): Promise<RealmSpec> {
  const backchannel = await broker?.backchannelUrl()
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
    ...(broker && backchannel !== undefined
      ? {
          nextcloudLogin: {
            alias: NEXTCLOUD_IDP_ALIAS,
            issuer: `${config.app.publicUrl}${OIDC_PATH}`,
            backchannelUrl: `${backchannel}${OIDC_PATH}`,
            clientId: BROKER_CLIENT_ID,
            clientSecret: await broker.secret(),
            login: config.keycloak.login,
          },
          ...(config.keycloak.consoleLogin === 'nextcloud'
            ? {
                console: {
                  login: {
                    alias: NEXTCLOUD_IDP_ALIAS,
                    issuer: `${config.app.publicUrl}${OIDC_PATH}`,
                    backchannelUrl: `${backchannel}${OIDC_PATH}`,
                    clientId: CONSOLE_CLIENT_ID,
                    clientSecret: await broker.consoleSecret(),
                    login: 'nextcloud' as const,
                    firstLogin: 'deny' as const,
                  },
                  profile: consoleProfile(),
                },
              }
            : {}),
        }
      : {}),
  }
}
