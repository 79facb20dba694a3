import { AppError } from '../errors.js'
import type { PublicSite } from './public-site.js'

/**
 * The request to Keycloak and the headers that cross the proxy in either direction.
 *
 * Never forwarded to Keycloak: AppAPI's credentials (`AUTHORIZATION-APP-API`, `EX-APP-*`, `AA-*`,
 * HaRP's routing headers), hop-by-hop headers, empty headers (the PHP proxy behind php-fpm sends
 * an empty `Content-Type`, which Keycloak answers with 500), the browser's cookies (the caller
 * passes the ones Keycloak may see) or a Basic `Authorization` (the PHP proxy forwards the
 * browser's Nextcloud credentials). Bearer tokens pass: the console needs them.
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Request headers that never reach Keycloak (besides hop-by-hop ones and AA-*, EX-APP-*). */
const DROPPED_REQUEST = new Set([
  'host',
  'content-length',
  'cookie',
  'authorization-app-api',
  'harp-shared-key',
  'x-origin-ip',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'accept-encoding',
])

/** The header names a `Connection` header lists (they are hop-by-hop too). */
function connectionTokens(headers: Headers): Set<string> {
  return new Set(
    (headers.get('connection') ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  )
}

/**
 * The headers Keycloak gets: the caller's, filtered as above, plus `X-Forwarded-*` naming the
 * public URL, `Accept-Encoding: identity` (bodies are read whole, see proxy-body.ts) and `cookie`.
 */
export function upstreamHeaders(
  incoming: Headers,
  site: PublicSite,
  cookie: string | undefined,
): Headers {
  const headers = new Headers()
  const connection = connectionTokens(incoming)
  incoming.forEach((value, key) => {
    const k = key.toLowerCase()
    if (
      value.trim() === '' ||
      HOP_BY_HOP.has(k) ||
      DROPPED_REQUEST.has(k) ||
      connection.has(k) ||
      k.startsWith('aa-') ||
      k.startsWith('ex-app-')
    ) {
      return
    }
    if (k === 'authorization' && !/^bearer\s/i.test(value)) {
      return
    }
    headers.set(k, value)
  })
  headers.set('accept-encoding', 'identity')
  for (const [name, value] of site.forwarded) {
    headers.set(name, value)
  }
  if (cookie !== undefined) {
    headers.set('cookie', cookie)
  }
  return headers
}

/** Keycloak's response headers the caller may get: no hop-by-hop ones, no `Set-Cookie`. */
export function responseHeaders(upstream: Headers): Headers {
  const out = new Headers()
  const connection = connectionTokens(upstream)
  upstream.forEach((value, key) => {
    const k = key.toLowerCase()
    if (HOP_BY_HOP.has(k) || connection.has(k) || k === 'set-cookie') {
      return
    }
    out.set(k, value)
  })
  return out
}

/**
 * Asks Keycloak: the request body streams through, redirects come back to the caller. Resolves
 * to undefined when the client went away first; throws KEYCLOAK_UNAVAILABLE when Keycloak cannot
 * be reached.
 */
export async function askUpstream(
  doFetch: typeof fetch,
  target: URL,
  method: string,
  headers: Headers,
  request: Request,
): Promise<Response | undefined> {
  const hasBody = method !== 'GET' && method !== 'HEAD'
  try {
    return await doFetch(target, {
      method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: 'manual',
      signal: request.signal,
      ...(hasBody ? { duplex: 'half' } : {}),
    } as RequestInit)
  } catch (err) {
    if (request.signal.aborted) {
      return undefined
    }
    throw new AppError('KEYCLOAK_UNAVAILABLE', 'Keycloak is not reachable', { cause: err })
  }
}
