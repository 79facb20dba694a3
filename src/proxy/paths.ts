import { AppError } from '../errors.js'

/**
 * Which requests reach Keycloak, where they go, and who may make them. The access table
 * (src/http/access.ts) checks methods and plain paths before any route; the proxy checks again,
 * because it is the part that builds the URL Keycloak is asked for.
 */

/** Every method Keycloak answers. */
export const PROXIED_METHODS: readonly string[] = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]

/** Throws METHOD_NOT_ALLOWED for a method Keycloak does not use. */
export function checkMethod(method: string): void {
  if (!PROXIED_METHODS.includes(method)) {
    throw new AppError('METHOD_NOT_ALLOWED', `method ${method} is not proxied`)
  }
}

/**
 * Keycloak's URL for a request: the same path and query on the upstream origin. Only Keycloak is
 * ever asked. Dot segments are already resolved by the URL parser; encoded separators and dots
 * are not, and Keycloak might decode them into another realm. A path starting with `//` would
 * name another host to a URL parser. Either is INVALID_INPUT.
 */
export function upstreamUrl(upstream: URL, url: URL): URL {
  const path = url.pathname
  if (path.startsWith('//') || /%2e|%2f|%5c|\\/i.test(path) || path.split('/').includes('..')) {
    throw new AppError('INVALID_INPUT', 'path not allowed')
  }
  const target = new URL(`${upstream.origin}${path}${url.search}`)
  if (target.origin !== upstream.origin) {
    throw new AppError('INVALID_INPUT', 'path not allowed')
  }
  return target
}

/**
 * Access rule: the synced realm (`/realms/<realm>/…`) and `/resources/…` are 'public', open to
 * anyone the Nextcloud route lets through; everything else (console, master realm, admin REST
 * API) is 'admin', for Nextcloud admins only.
 */
export function accessFor(path: string, realm: string): 'public' | 'admin' {
  if (path.startsWith('/resources/')) {
    return 'public'
  }
  const m = /^\/realms\/([^/]+)(?:\/|$)/.exec(path)
  if (m && m[1] === realm && realm.toLowerCase() !== 'master') {
    return 'public'
  }
  return 'admin'
}
