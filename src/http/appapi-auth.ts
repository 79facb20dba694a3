import { createHash, timingSafeEqual } from 'node:crypto'

export type AppApiVerdict =
  | { ok: true; userId: string }
  | { ok: false; reason: 'missing-header' | 'bad-encoding' | 'wrong-app' | 'wrong-secret' }

/** Compares two secrets in constant time, whatever their lengths. */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b) && given.length === expected.length
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Decides whether a request carries valid AppAPI credentials: all three
 * headers present, `EX-APP-ID` equal to our id, `AUTHORIZATION-APP-API` strict base64 of
 * `user:secret` split at the first colon, secret equal in constant time. `EX-APP-VERSION` must be
 * present but is never compared (it lags or leads during updates); `AA-VERSION` is ignored.
 */
export function verifyAppApi(
  header: (name: string) => string | undefined,
  expected: { appId: string; secret: string },
): AppApiVerdict {
  const appId = header('ex-app-id')
  const version = header('ex-app-version')
  const auth = header('authorization-app-api')
  if (!appId || !version || !auth) {
    return { ok: false, reason: 'missing-header' }
  }
  if (!BASE64.test(auth) || auth.length % 4 !== 0) {
    return { ok: false, reason: 'bad-encoding' }
  }
  const decoded = Buffer.from(auth, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) {
    return { ok: false, reason: 'bad-encoding' }
  }
  // Check the secret before the app id so both failures cost the same.
  const secretOk = secretsEqual(decoded.slice(colon + 1), expected.secret)
  if (appId !== expected.appId) {
    return { ok: false, reason: 'wrong-app' }
  }
  if (!secretOk) {
    return { ok: false, reason: 'wrong-secret' }
  }
  return { ok: true, userId: decoded.slice(0, colon) }
}
