import type FederatedIdentityRepresentation from '@keycloak/keycloak-admin-client/lib/defs/federatedIdentityRepresentation.js'
import type IdentityProviderRepresentation from '@keycloak/keycloak-admin-client/lib/defs/identityProviderRepresentation.js'
import type { PublicJwk } from './assertion-signing.js'

/**
 * Admin API representations that let the sidecar mint user tokens with Keycloak's JWT
 * Authorization Grant (RFC 7523). Every statement below was checked against Keycloak 26.7.3,
 * where the feature `jwt-authorization-grant` is on by default (no build or start option).
 */

/** The identity provider that trusts the sidecar's key; users are linked to it. */
export const JWT_GRANT_IDP_ALIAS = 'nextcloud-sidecar'

/**
 * The `iss` of our assertions and the IdP's `issuer`; Keycloak picks the IdP by this value. It is
 * never fetched (the key is static), but Keycloak insists on a well-formed https URL unless the
 * host is local ("The url [Issuer] is malformed" / "requires secure connections"). `.invalid`
 * (RFC 2606) can never resolve to someone else's server.
 */
export const JWT_GRANT_ISSUER = 'https://keycloak-exapp.invalid/nextcloud-sidecar'

export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** Lifetime we give each assertion; it is used at once, so short is enough. */
export const ASSERTION_TTL_SECONDS = 60

/**
 * With `iat` present Keycloak rejects an assertion older than this ("issued too far in the past"),
 * whatever its `exp`; without `iat` it rejects an `exp` further ahead than this.
 */
export const MAX_ASSERTION_AGE_SECONDS = 120

/**
 * Keycloak's default skew is 0: an `iat` even 5 s ahead of its clock fails ("issued in the
 * future"). An external Keycloak's clock may drift from ours, so allow a little.
 */
export const ASSERTION_CLOCK_SKEW_SECONDS = 10

export interface IdentityProviderSpec {
  alias: string
  issuer: string
  /** current key first; during a rotation the previous key too (see assertion-signing.ts) */
  publicJwks: { keys: PublicJwk[] }
}

/**
 * The IdP representation for `POST/PUT /admin/realms/{r}/identity-provider/instances`. All values
 * are strings, as Keycloak stores and returns them, so a read-compare finds no difference.
 */
export function identityProviderRep(
  spec: IdentityProviderSpec,
): IdentityProviderRepresentation & { alias: string } {
  return {
    alias: spec.alias,
    displayName: 'Nextcloud (keycloak-exapp token issuer)',
    // The dedicated provider type: it cannot be used for browser login, so it never shows on the
    // login page or among the account console's linked accounts.
    providerId: 'jwt-authorization-grant',
    // A disabled IdP is not found by issuer: every grant fails with "No Identity Provider for
    // provided issuer". Disabling it is how an admin stops all minting at once.
    enabled: true,
    // Redundant for this provider type (verified: it never shows); kept so intent is explicit.
    hideOnLogin: true,
    config: {
      issuer: spec.issuer,
      // Not checked for providerId jwt-authorization-grant in 26.7.3 (grants pass with "false"),
      // but it is the switch the console shows and the OIDC provider type requires.
      jwtAuthorizationGrantEnabled: 'true',
      // Static key: no JWKS URL is fetched.
      useJwksUrl: 'false',
      // A value starting with "{" is read as a JWKS (several keys, chosen by `kid`), anything else
      // as one PEM public key. Each JWK needs `use: "sig"`; `alg` is optional.
      publicKeySignatureVerifier: JSON.stringify(spec.publicJwks),
      // Other algorithms are then refused ("Invalid signature algorithm").
      jwtAuthorizationGrantAssertionSignatureAlg: 'ES256',
      // Default "false" made explicit: each `jti` is accepted once ("Token reuse detected"), and an
      // assertion without `jti` is refused ("Token jti claim is required").
      jwtAuthorizationGrantAssertionReuseAllowed: 'false',
      // Default "300".
      jwtAuthorizationGrantMaxAllowedAssertionExpiration: String(MAX_ASSERTION_AGE_SECONDS),
      // Default "0".
      jwtAuthorizationGrantAllowedClockSkew: String(ASSERTION_CLOCK_SKEW_SECONDS),
    },
  }
}

/**
 * Client attributes that let a confidential client use the grant with our IdP only. Both are
 * needed: without the first, "JWT Authorization Grant is not supported for the requested client";
 * without the second (a `##`-separated alias list), "Identity Provider is not allowed for the
 * client". Public clients are refused whatever these say. Neither the direct access grant nor the
 * standard flow has to be enabled.
 */
export function clientGrantAttributes(spec: { idpAlias: string }): Record<string, string> {
  return {
    'oauth2.jwt.authorization.grant.enabled': 'true',
    'oauth2.jwt.authorization.grant.idp': spec.idpAlias,
  }
}

/**
 * The link for `POST /admin/realms/{r}/users/{id}/federated-identity/{alias}` (or the
 * `federatedIdentities` of a user create). The assertion's `sub` must equal `userId`; `userName`
 * is not used for the lookup. Keycloak does not enforce one user per `userId`: two users linked to
 * the same uid make every grant for it fail ("More results found…"), so the sync must keep it
 * unique. A link to an alias that does not exist yet is silently dropped (204), so the IdP must
 * exist before users are linked.
 */
export function federatedIdentityRep(
  uid: string,
  alias: string = JWT_GRANT_IDP_ALIAS,
): FederatedIdentityRepresentation {
  return { identityProvider: alias, userId: uid, userName: uid }
}
