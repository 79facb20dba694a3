import { randomBytes } from 'node:crypto'

/**
 * Keycloak's cookies, kept server-side per browser session behind one cookie of the proxy's
 * (AppAPI's PHP proxy passes one `Set-Cookie` per response). Memory stays bounded without letting
 * one caller push out another's session:
 *
 * - a jar is created only for a response that sets a cookie worth keeping (the caller decides);
 * - each Nextcloud user has at most `perUser` jars, and only that user's new jars replace the
 *   least recently used of them: nobody else's traffic evicts a user's live session;
 * - anonymous callers (empty uid) share a pool of `anonymous` jars, least recently used out first;
 * - jars idle longer than `idleMs` (`anonymousIdleMs` for anonymous ones) are dropped.
 *
 * Only callers Nextcloud authenticated (AppAPI's signed user header) reach the per-user jars, so
 * their number is bounded by Nextcloud's users.
 */
export interface JarCookie {
  value: string
  path: string
  expires?: number
}

export interface Jar {
  uid: string
  /** by `<path> <name>` */
  cookies: Map<string, JarCookie>
  /** mirrored cookies still to hand to the browser, by name (one per response) */
  pending: Map<string, string>
  lastUsed: number
}

export interface JarStoreOptions {
  idleMs?: number
  anonymousIdleMs?: number
  perUser?: number
  anonymous?: number
  /** cookies one jar keeps at most (Keycloak sets a handful per realm path) */
  cookiesPerJar?: number
  now?: () => number
}

export class JarStore {
  private readonly idleMs: number
  private readonly anonymousIdleMs: number
  private readonly perUser: number
  private readonly anonymousMax: number
  readonly cookiesPerJar: number
  private readonly now: () => number
  /** anonymous jars, least recently used first */
  private readonly anonymous = new Map<string, Jar>()
  /** each user's jars, least recently used first */
  private readonly users = new Map<string, Map<string, Jar>>()

  constructor(opts: JarStoreOptions = {}) {
    this.idleMs = opts.idleMs ?? 12 * 3600_000
    this.anonymousIdleMs = opts.anonymousIdleMs ?? 3600_000
    this.perUser = opts.perUser ?? 8
    this.anonymousMax = opts.anonymous ?? 1000
    this.cookiesPerJar = opts.cookiesPerJar ?? 64
    this.now = opts.now ?? Date.now
  }

  private poolOf(uid: string): Map<string, Jar> | undefined {
    return uid === '' ? this.anonymous : this.users.get(uid)
  }

  /** The jar `id` if it belongs to `uid` and is still alive; it becomes the most recently used. */
  get(id: string | undefined, uid: string): Jar | undefined {
    if (!id) {
      return undefined
    }
    const pool = this.poolOf(uid)
    const jar = pool?.get(id)
    if (!pool || !jar) {
      return undefined
    }
    pool.delete(id)
    const idle = uid === '' ? this.anonymousIdleMs : this.idleMs
    if (this.now() - jar.lastUsed > idle) {
      this.dropEmpty(uid)
      return undefined
    }
    jar.lastUsed = this.now()
    pool.set(id, jar)
    return jar
  }

  /** A new jar for `uid`, making room among that caller's own jars only. */
  create(uid: string): { id: string; jar: Jar } {
    this.sweep()
    let pool = this.poolOf(uid)
    if (!pool) {
      pool = new Map()
      this.users.set(uid, pool)
    }
    const max = uid === '' ? this.anonymousMax : this.perUser
    for (const id of pool.keys()) {
      if (pool.size < max) {
        break
      }
      pool.delete(id)
    }
    const id = randomBytes(32).toString('base64url')
    const jar: Jar = { uid, cookies: new Map(), pending: new Map(), lastUsed: this.now() }
    pool.set(id, jar)
    return { id, jar }
  }

  /** How many jars exist: anonymous ones and those of each user. */
  size(): { anonymous: number; users: number } {
    let users = 0
    for (const pool of this.users.values()) {
      users += pool.size
    }
    return { anonymous: this.anonymous.size, users }
  }

  /** Drops idle jars (each pool is in order of use, so the scan stops at the first live one). */
  private sweep() {
    const t = this.now()
    const expire = (pool: Map<string, Jar>, idle: number) => {
      for (const [id, jar] of pool) {
        if (t - jar.lastUsed <= idle) {
          break
        }
        pool.delete(id)
      }
    }
    expire(this.anonymous, this.anonymousIdleMs)
    for (const uid of this.users.keys()) {
      expire(this.users.get(uid) as Map<string, Jar>, this.idleMs)
      this.dropEmpty(uid)
    }
  }

  private dropEmpty(uid: string) {
    if (uid !== '' && this.users.get(uid)?.size === 0) {
      this.users.delete(uid)
    }
  }
}
