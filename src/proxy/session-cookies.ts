import type { Jar, JarStore } from './cookie-jars.js'
import {
  cookiePairs,
  mirroredCookie,
  type ParsedSetCookie,
  parseSetCookie,
  pathMatches,
  readCookie,
} from './set-cookie.js'

/**
 * Keycloak's cookies, kept server-side in a jar behind one cookie of ours, because AppAPI's PHP
 * proxy keeps only the first `Set-Cookie` of a response (cookie-jars.ts bounds the jars). A jar
 * belongs to one Nextcloud user: another user's request never gets it.
 */

/** Cookies a browser sets for Keycloak itself (e.g. the console's 3rd-party cookie check). */
const KEYCLOAK_COOKIE = /^(?:KEYCLOAK_|KC_|AUTH_SESSION_ID)/

/**
 * Cookies the browser must see as well: keycloak-js's login-status iframe reads
 * `KEYCLOAK_SESSION` (a hash of the session id, not a credential; Keycloak sends it without
 * HttpOnly for that reason). Without it the console decides the session ended and logs in again,
 * over and over. `KEYCLOAK_IDENTITY`, the credential, stays in the jar.
 */
const MIRRORED = new Set(['KEYCLOAK_SESSION'])

export interface SessionCookiesOptions {
  jars: JarStore
  /** the one cookie of ours, naming the jar */
  cookieName: string
  /** path of the public prefix ('' at the root) */
  prefixPath: string
  /** the public URL is https */
  secure: boolean
  now: () => number
}

export class SessionCookies {
  constructor(private readonly opts: SessionCookiesOptions) {}

  /** The jar the browser's cookie names, if it is alive and belongs to `uid`. */
  jarFor(cookieHeader: string | undefined, uid: string): Jar | undefined {
    return this.opts.jars.get(readCookie(cookieHeader, this.opts.cookieName), uid)
  }

  /**
   * The `Cookie` header for Keycloak (undefined for none): the Keycloak cookies the browser set
   * itself, then the jar's unexpired cookies whose path matches `publicPath` (expired ones leave
   * the jar).
   */
  upstreamCookie(
    cookieHeader: string | undefined,
    jar: Jar | undefined,
    publicPath: string,
  ): string | undefined {
    const sent = new Map<string, string>()
    for (const [name, value] of cookiePairs(cookieHeader)) {
      if (KEYCLOAK_COOKIE.test(name)) {
        sent.set(name, value)
      }
    }
    if (jar) {
      const t = this.opts.now()
      for (const [key, ck] of jar.cookies) {
        if (ck.expires !== undefined && ck.expires <= t) {
          jar.cookies.delete(key)
          continue
        }
        if (pathMatches(ck.path, publicPath)) {
          sent.set(key.slice(key.indexOf(' ') + 1), ck.value)
        }
      }
    }
    return sent.size > 0 ? [...sent].map(([k, v]) => `${k}=${v}`).join('; ') : undefined
  }

  /**
   * Keeps Keycloak's `setCookies` in `jar`, creating a jar for `uid` only for a cookie worth
   * keeping (deletions alone create nothing), and adds to `out` at most one `Set-Cookie`: ours
   * for a new jar, else a mirrored cookie still to hand over.
   */
  keep(setCookies: string[], jar: Jar | undefined, uid: string, out: Headers): void {
    const { jars, cookieName, prefixPath, secure, now } = this.opts
    const parsed = setCookies
      .map((raw) => ({ raw, ck: parseSetCookie(raw) }))
      .filter((p): p is { raw: string; ck: ParsedSetCookie } => p.ck !== undefined)
    const expiryOf = (ck: ParsedSetCookie) =>
      ck.maxAge !== undefined ? now() + ck.maxAge * 1000 : ck.expires
    const keeps = (ck: ParsedSetCookie) => {
      const expires = expiryOf(ck)
      return ck.value !== '' && (expires === undefined || expires > now())
    }
    let kept = jar
    if (!kept && parsed.some(({ ck }) => keeps(ck))) {
      const created = jars.create(uid)
      kept = created.jar
      out.append(
        'set-cookie',
        `${cookieName}=${created.id}; Path=${prefixPath || '/'}/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      )
    }
    if (!kept) {
      return
    }
    for (const { raw, ck } of parsed) {
      const cpath = ck.path ?? '/'
      const key = `${cpath} ${ck.name}`
      kept.cookies.delete(key)
      if (keeps(ck)) {
        if (kept.cookies.size >= jars.cookiesPerJar) {
          const oldest = kept.cookies.keys().next().value
          if (oldest !== undefined) {
            kept.cookies.delete(oldest)
          }
        }
        kept.cookies.set(key, { value: ck.value, path: cpath, expires: expiryOf(ck) })
      }
      if (MIRRORED.has(ck.name)) {
        kept.pending.set(ck.name, mirroredCookie(raw, prefixPath))
      }
    }
    // The PHP proxy passes one Set-Cookie per response: ours first, a mirrored one next time.
    const [mirrorName, mirror] = kept.pending.entries().next().value ?? []
    if (mirrorName && mirror && !out.has('set-cookie')) {
      out.append('set-cookie', mirror)
      kept.pending.delete(mirrorName)
    }
  }
}
