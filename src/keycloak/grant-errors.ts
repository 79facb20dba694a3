// How a refused or failed token grant becomes an AppError (with a GrantError as its cause) that
// says which side is at fault: the user, the client, our assertion, or Keycloak being away.
import * as oidc from 'openid-client'
import { AppError, type ErrorCode } from '../errors.js'

/** Why Keycloak refused a grant, for callers that react differently (sync the user, log in again). */
export type GrantRejection =
  | 'user_not_found'
  | 'user_disabled'
  | 'user_not_ready'
  | 'invalid_credentials'
  | 'refresh_rejected'
  | 'assertion_rejected'
  | 'client_rejected'
  | 'invalid_scope'
  | 'unavailable'
  | 'unexpected'

/** The `cause` of every AppError this module throws for a failed grant. */
export class GrantError extends Error {
  override readonly name = 'GrantError'
  constructor(
    readonly rejection: GrantRejection,
    readonly status: number | undefined,
    readonly error: string | undefined,
    readonly description: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`${error ?? 'error'}: ${description ?? ''}`, options)
  }
}

/** The rejection behind an error thrown by a TokenClient, if it is one. */
export function grantRejection(err: unknown): GrantRejection | undefined {
  return err instanceof AppError && err.cause instanceof GrantError
    ? err.cause.rejection
    : undefined
}

export type Grant = 'jwt' | 'password' | 'refresh'

/** Keycloak's invalid_grant descriptions that are about the user, not about us (26.7.3). */
const USER_REJECTIONS: Record<string, GrantRejection> = {
  'User not found': 'user_not_found',
  'User is not enabled': 'user_disabled',
  'Account disabled': 'user_disabled',
  'Account is not fully set up': 'user_not_ready',
  'Invalid user credentials': 'invalid_credentials',
}

export const GRANT_ERROR_CODES: Record<GrantRejection, ErrorCode> = {
  user_not_found: 'FORBIDDEN',
  user_disabled: 'FORBIDDEN',
  user_not_ready: 'FORBIDDEN',
  invalid_credentials: 'FORBIDDEN',
  refresh_rejected: 'UNAUTHORIZED',
  // the realm does not trust our assertion: wrong key, issuer, audience or IdP setup
  assertion_rejected: 'INTERNAL',
  client_rejected: 'INVALID_INPUT',
  invalid_scope: 'INVALID_INPUT',
  unavailable: 'KEYCLOAK_UNAVAILABLE',
  unexpected: 'INTERNAL',
}

/** Wraps an openid-client failure into an AppError whose cause is a GrantError. */
export function classify(grant: Grant, err: unknown): AppError & { cause: GrantError } {
  const { status, error, description } = describe(err)
  const rejection = rejectionFor(grant, status, error, description)
  const detail = description
    ? `${error}: ${description.slice(0, 200)}`
    : (error ?? failureReason(err))
  const cause = new GrantError(rejection, status, error, description, { cause: err })
  const message =
    status === undefined
      ? `Keycloak did not answer the ${grant} grant (${detail})`
      : `Keycloak refused the ${grant} grant (${status} ${detail})`
  return new AppError(GRANT_ERROR_CODES[rejection], message, { cause }) as AppError & {
    cause: GrantError
  }
}

function rejectionFor(
  grant: Grant,
  status: number | undefined,
  error: string | undefined,
  description: string | undefined,
): GrantRejection {
  if (status === undefined || status >= 500) {
    return 'unavailable'
  }
  switch (error) {
    case 'invalid_client':
    case 'unauthorized_client':
      return 'client_rejected'
    case 'invalid_scope':
      return 'invalid_scope'
    case 'invalid_grant': {
      const user = description ? USER_REJECTIONS[description] : undefined
      if (user) {
        return user
      }
      if (grant === 'refresh') {
        return 'refresh_rejected'
      }
      return grant === 'jwt' ? 'assertion_rejected' : 'unexpected'
    }
    default:
      return 'unexpected'
  }
}

/** What went wrong when no answer came: the message, and a system error's code (ECONNREFUSED). */
export function failureReason(err: unknown): string {
  if (!(err instanceof Error)) {
    return 'no response'
  }
  const code = (err.cause as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? `${err.message}: ${code}` : err.message
}

/** Status, OAuth error and description out of whatever openid-client threw. */
function describe(err: unknown): { status?: number; error?: string; description?: string } {
  if (err instanceof oidc.ResponseBodyError) {
    return { status: err.status, error: err.error, description: err.error_description }
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    return { status: err.status, error: err.cause[0]?.parameters.error ?? 'invalid_client' }
  }
  if (err instanceof oidc.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') {
      // no answer within the client's timeout: Keycloak is away or overloaded
      return {}
    }
    const response = err.cause instanceof Response ? err.cause : undefined
    if (response) {
      // a non-OAuth answer (an HTML error page, a proxy's 502): Keycloak is not serving tokens
      return { status: response.status >= 500 ? response.status : undefined, error: err.code }
    }
    // the answer was a token response that failed validation (e.g. an ID token for another issuer)
    return { status: 200, error: 'unexpected', description: err.message }
  }
  // fetch failures (TypeError) and timeouts (DOMException)
  return {}
}
