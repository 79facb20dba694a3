import type IdentityProviderRepresentation from '@keycloak/keycloak-admin-client/lib/defs/identityProviderRepresentation.js'
import { type KcAdmin, kc } from './admin.js'
import type { PublicJwk } from './assertion-signing.js'
import { identityProviderRep, JWT_GRANT_IDP_ALIAS, JWT_GRANT_ISSUER } from './jwt-grant.js'

/** The identity provider the JWT grant goes through, trusting the sidecar's `publicJwks`. */
export function sidecarIdentityProvider(publicJwks: {
  keys: PublicJwk[]
}): IdentityProviderRepresentation & { alias: string } {
  return identityProviderRep({ alias: JWT_GRANT_IDP_ALIAS, issuer: JWT_GRANT_ISSUER, publicJwks })
}

/**
 * Makes the realm's identity provider trust `publicJwks` (after a key rotation: the new key and
 * the previous one), in one write, without waiting for the next bootstrap.
 */
export async function pushTrustedKeys(
  admin: KcAdmin,
  realm: string,
  publicJwks: { keys: PublicJwk[] },
): Promise<void> {
  const rep = sidecarIdentityProvider(publicJwks)
  await kc('update the trusted signing keys', () =>
    admin.identityProviders.update({ realm, alias: JWT_GRANT_IDP_ALIAS }, rep),
  )
}
