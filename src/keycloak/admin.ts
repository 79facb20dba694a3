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

/** Master-realm admin tokens live 60 s; renew when less than this remains. */
const RENEW_BEFORE_MS = 15_000

/**
 * An admin client for `realm` that keeps itself authenticated: the master admin token lasts only
 * 60 s and the library never renews it, so a token provider fetches a new one before it expires.
 * Concurrent calls share one token request.
 */
export function createKeycloakAdmin(conn: AdminConnection): KcAdmin {
  const client = new KcAdminClient({ baseUrl: conn.baseUrl, realmName: conn.realm })
  let current: { value: string; expiresAt: number } | undefined

  const fetchToken = async () => {
    const started = Date.now()
    const body = new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: conn.username,
      password: conn.password,
    })
    let res: Response
    try {
      res = await fetch(`${conn.baseUrl}/realms/master/protocol/openid-connect/token`, {
        method: 'POST',
        body,
        signal: AbortSignal.timeout(30_000),
      })
    } catch (cause) {
      throw new AppError('KEYCLOAK_UNAVAILABLE', `Keycloak at ${conn.baseUrl} is unreachable`, {
        cause,
      })
    }
    if (!res.ok) {
      const detail = await res.text().catch(() => '')
      const code = res.status >= 500 ? 'KEYCLOAK_UNAVAILABLE' : 'UNAUTHORIZED'
      throw new AppError(
        code,
        `Keycloak refused the admin login for "${conn.username}" (HTTP ${res.status}); check KC_BOOTSTRAP_ADMIN_USERNAME and KC_BOOTSTRAP_ADMIN_PASSWORD`,
        { cause: new Error(detail.slice(0, 300)) },
      )
    }
    const json = (await res.json()) as { access_token: string; expires_in: number }
    return { value: json.access_token, expiresAt: started + json.expires_in * 1000 }
  }
  // Concurrent requests that find the token expired share one login.
  const fetchOnce = singleFlight(fetchToken)

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
