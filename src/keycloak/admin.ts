import KcAdminClient, { NetworkError } from '@keycloak/keycloak-admin-client'
import { AppError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { singleFlight } from '../single-flight.js'

export type KcAdmin = KcAdminClient

export interface AdminConnection {
  /** Keycloak base URL the sidecar reaches (loopback in embedded mode) */
  baseUrl: string
  username: string
  password: string
  /** realm later calls default to */
  realm: string
  log: Logger
}

/** A master-realm access token and when it expires (ms since the epoch). */
export interface AdminToken {
  value: string
  expiresAt: number
}

/** Fetches a new master-realm token; throws UNAUTHORIZED when Keycloak refuses the credentials. */
export type AdminLogin = () => Promise<AdminToken>

/** Master-realm admin tokens live 60 s; renew when less than this remains. */
const RENEW_BEFORE_MS = 15_000

/**
 * One token request to the master realm. `who` and `settings` only word the error: a refusal
 * (any 4xx) is UNAUTHORIZED and names the settings to check, a 5xx or no answer is
 * KEYCLOAK_UNAVAILABLE.
 */
async function requestToken(
  baseUrl: string,
  form: Record<string, string>,
  who: string,
  settings: string,
): Promise<AdminToken> {
  const started = Date.now()
  let res: Response
  try {
    res = await fetch(`${baseUrl}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(30_000),
    })
  } catch (cause) {
    throw new AppError('KEYCLOAK_UNAVAILABLE', `Keycloak at ${baseUrl} is unreachable`, { cause })
  }
  if (!res.ok) {
    const detail = await res.text().catch(() => '')
    const code = res.status >= 500 ? 'KEYCLOAK_UNAVAILABLE' : 'UNAUTHORIZED'
    throw new AppError(
      code,
      `Keycloak refused the admin login for ${who} (HTTP ${res.status}); check ${settings}`,
      { cause: new Error(detail.slice(0, 300)) },
    )
  }
  const json = (await res.json()) as { access_token: string; expires_in: number }
  return { value: json.access_token, expiresAt: started + json.expires_in * 1000 }
}

/** The password grant of a master-realm user through `admin-cli` (the bootstrap admin). */
export function passwordLogin(baseUrl: string, username: string, password: string): AdminLogin {
  return () =>
    requestToken(
      baseUrl,
      { grant_type: 'password', client_id: 'admin-cli', username, password },
      `"${username}"`,
      'KC_BOOTSTRAP_ADMIN_USERNAME and KC_BOOTSTRAP_ADMIN_PASSWORD',
    )
}

/** The client-credentials grant of a confidential master-realm client (a service account). */
export function clientLogin(
  baseUrl: string,
  clientId: string,
  secret: string,
  settings: string,
): AdminLogin {
  return () =>
    requestToken(
      baseUrl,
      { grant_type: 'client_credentials', client_id: clientId, client_secret: secret },
      `the service account "${clientId}"`,
      settings,
    )
}

/**
 * An admin client for `realm` that keeps itself authenticated through `login`: a master token
 * lasts only 60 s and the library never renews it, so a token provider fetches a new one before
 * it expires. Concurrent calls share one token request.
 */
export function adminClient(baseUrl: string, realm: string, login: AdminLogin): KcAdmin {
  const client = new KcAdminClient({ baseUrl, realmName: realm })
  let current: AdminToken | undefined
  // Concurrent requests that find the token expired share one login.
  const fetchOnce = singleFlight(login)
  client.registerTokenProvider({
    getAccessToken: async () => {
      if (!current || Date.now() > current.expiresAt - RENEW_BEFORE_MS) {
        current = await fetchOnce()
      }
      return current.value
    },
  })
  return client
}

/** An admin client for `realm` logged in as a master-realm user with its password. */
export function createKeycloakAdmin(conn: AdminConnection): KcAdmin {
  return adminClient(
    conn.baseUrl,
    conn.realm,
    passwordLogin(conn.baseUrl, conn.username, conn.password),
  )
}

/** An admin client that uses one token as it is (no renewal): for a few calls right after a login. */
export function tokenAdmin(baseUrl: string, token: AdminToken): KcAdmin {
  const client = new KcAdminClient({ baseUrl, realmName: 'master' })
  client.setAccessToken(token.value)
  return client
}

/** HTTP status of a Keycloak admin error, if it is one. */
export function kcStatus(err: unknown): number | undefined {
  return err instanceof NetworkError ? err.response.status : undefined
}

/** Keycloak's own error text (`errorMessage` or `error`), if any. */
export function kcMessage(err: unknown): string {
  if (err instanceof NetworkError) {
    const data = err.responseData as { errorMessage?: string; error?: string } | string | undefined
    if (typeof data === 'string') {
      return data.slice(0, 300)
    }
    return data?.errorMessage ?? data?.error ?? err.message
  }
  return errorMessage(err)
}

/**
 * Runs one Admin API call and turns a foreign failure into an AppError: 404 → NOT_FOUND,
 * 409 → CONFLICT, 400 → INVALID_INPUT, anything else (network, 5xx, 401) → KEYCLOAK_UNAVAILABLE.
 */
export async function kc<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof AppError) {
      throw err
    }
    const status = kcStatus(err)
    const message = `${what}: ${kcMessage(err)}`
    switch (status) {
      case 404:
        throw new AppError('NOT_FOUND', message, { cause: err })
      case 409:
        throw new AppError('CONFLICT', message, { cause: err })
      case 400:
        throw new AppError('INVALID_INPUT', message, { cause: err })
      default:
        throw new AppError('KEYCLOAK_UNAVAILABLE', message, { cause: err })
    }
  }
}
