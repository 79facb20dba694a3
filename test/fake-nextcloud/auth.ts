import type { Directory } from './directory.js'
import type { ExAppRecord, ExAppRegistry } from './exapps.js'

export type AppApiLogin =
  | { kind: 'none' }
  | { kind: 'failed' }
  | { kind: 'ok'; app: ExAppRecord; user: string }

/**
 * AppAPIService::validateExAppRequestToNC of AppAPI 5.0 (stable31), without the throttling
 * delay: unknown app ids and wrong secrets count as brute-force attempts; a disabled app may
 * only read `ex-app/state`; EX-APP-VERSION must be present and a higher one is stored; a
 * non-empty user must exist.
 */
export function appApiLogin(
  header: (name: string) => string | undefined,
  path: string,
  registry: ExAppRegistry,
  directory: Directory,
): AppApiLogin {
  const auth = header('authorization-app-api')
  if (!auth) {
    return { kind: 'none' }
  }
  const app = registry.get(header('ex-app-id') ?? '')
  if (!app) {
    registry.bruteForceAttempts++
    return { kind: 'failed' }
  }
  const { user, secret } = decodeAuth(auth)
  if (secret !== app.secret) {
    registry.bruteForceAttempts++
    return { kind: 'failed' }
  }
  if (!app.enabled && !path.endsWith('/apps/app_api/ex-app/state')) {
    return { kind: 'failed' }
  }
  const version = header('ex-app-version') ?? ''
  if (version === '') {
    return { kind: 'failed' }
  }
  if (compareVersions(version, app.version) > 0) {
    app.version = version
  }
  if (user !== '' && !directory.user(user)) {
    return { kind: 'failed' }
  }
  return { kind: 'ok', app, user }
}

/** PHP's lenient base64_decode and explode(':', …, 2). */
export function decodeAuth(header: string): { user: string; secret: string | undefined } {
  const decoded = Buffer.from(header, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0
    ? { user: decoded, secret: undefined }
    : { user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) }
}

export function encodeAuth(user: string, secret: string): string {
  return Buffer.from(`${user}:${secret}`, 'utf8').toString('base64')
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0)
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) {
      return d
    }
  }
  return 0
}
