import { randomBytes } from 'node:crypto'
import type { LRUCache } from 'lru-cache'
import { lruCache } from '../lru.js'

/**
 * Keycloak's cookies, kept server-side per browser session behind one cookie of the proxy's
 * (AppAPI's PHP proxy passes one `Set-Cookie` per response). Memory stays bounded without letting
 * one caller push out another's session:
 *
 * - a jar is created only for a response that sets a cookie worth keeping (the caller decides);
 * - each Nextcloud user has at most `perUser` jars, and only that user's new jars replace the
 *   least recently used of them: nobody else's traffic evicts a user's live session;
 * - anonymous callers (empty uid) share a pool of `anonymous` jars, least recently used out first;
 * - jars idle longer than `idleMs` (`anonymousIdleMs` for anonymous ones) are dropped;
 * - an anonymous jar passes to the first user who presents it, once: a visitor whose realm login
 *   sent them to Nextcloud's login comes back signed in, and Keycloak's login must find the
 *   cookies it set for them (its auth session) to finish. A user's jar never passes to anyone.
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
  private readonly perUser: number
  readonly cookiesPerJar: number
  private readonly now: () => number
  /** anonymous jars */
  private readonly anonymous: LRUCache<string, Jar>
  /** each user's jars */
  private readonly users = new Map<string, LRUCache<string, Jar>>()

  constructor(opts: JarStoreOptions = {}) {
    this.idleMs = opts.idleMs ?? 12 * 3600_000
    this.perUser = opts.perUser ?? 8
    this.cookiesPerJar = opts.cookiesPerJar ?? 64
    this.now = opts.now ?? Date.now
    this.anonymous = this.pool(opts.anonymous ?? 1000, opts.anonymousIdleMs ?? 3600_000)
  }

  /** Jars by id, least recently used out first once `max` are held, and dropped when idle. */
  private pool(max: number, idleMs: number): LRUCache<string, Jar> {
    return lruCache<string, Jar>(max, {
      ttl: idleMs,
      updateAgeOnGet: true,
      // an injected clock is read on every look-up, never cached
      ttlResolution: 0,
      perf: { now: this.now },
    })
  }

  private poolOf(uid: string): LRUCache<string, Jar> | undefined {
    return uid === '' ? this.anonymous : this.users.get(uid)
  }

  /**
   * The jar `id` if it belongs to `uid` and is still alive; it becomes the most recently used. An
   * anonymous jar presented by a user becomes that user's (see above).
   */
  get(id: string | undefined, uid: string): Jar | undefined {
    if (!id) {
      return undefined
    }
    const pool = this.poolOf(uid)
    const jar = pool?.get(id) ?? (uid === '' ? undefined : this.adopt(id, uid))
    if (!jar) {
      this.dropEmpty(uid)
      return undefined
    }
    return jar
  }

  /** Moves the live anonymous jar `id` to `uid`'s jars, making room among theirs only. */
  private adopt(id: string, uid: string): Jar | undefined {
    const jar = this.anonymous.get(id)
    if (!jar) {
      return undefined
    }
    this.anonymous.delete(id)
    let pool = this.users.get(uid)
    if (!pool) {
      pool = this.pool(this.perUser, this.idleMs)
      this.users.set(uid, pool)
    }
    jar.uid = uid
    pool.set(id, jar)
    return jar
  }

  /** A new jar for `uid`, making room among that caller's own jars only. */
  create(uid: string): { id: string; jar: Jar } {
    this.sweep()
    let pool = this.poolOf(uid)
    if (!pool) {
      pool = this.pool(this.perUser, this.idleMs)
      this.users.set(uid, pool)
    }
    const id = randomBytes(32).toString('base64url')
    const jar: Jar = { uid, cookies: new Map(), pending: new Map() }
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

  /** Drops idle jars. */
  private sweep() {
    this.anonymous.purgeStale()
    for (const [uid, pool] of this.users) {
      pool.purgeStale()
      this.dropEmpty(uid)
    }
  }

  private dropEmpty(uid: string) {
    if (uid !== '' && this.users.get(uid)?.size === 0) {
      this.users.delete(uid)
    }
  }
}
