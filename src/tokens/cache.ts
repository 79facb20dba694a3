import type { LRUCache } from 'lru-cache'
import type { TokenSet } from '../keycloak/token-client.js'
import { lruCache } from '../lru.js'

/** What a cached token is for: one Nextcloud user, one client, one (normalized) scope string. */
export interface TokenKey {
  userId: string
  clientId: string
  scope: string
}

/** Where an answer came from: our own call, another request's call we joined, or the cache. */
export type TokenSource = 'minted' | 'shared' | 'cache'

export interface TokenCacheOptions {
  /** stop serving a token this long before it expires; default 30 */
  skewSeconds?: number
  /** default 10 000; the least recently used entry goes first */
  maxEntries?: number
  /** milliseconds since the epoch; injected by tests */
  now?: () => number
}

interface Entry {
  userId: string
  tokens: TokenSet
  obtainedAt: number
  freshUntil: number
  /** the tokens as last handed out and the whole seconds they had aged then: one copy a second */
  agedBy: number
  aged: TokenSet
}

interface Flight {
  userId: string
  startedAt: number
  promise: Promise<TokenSet>
  /** set by dropUser: the result is still handed to its waiters but never stored */
  revoked: boolean
}

/**
 * Tokens per (user, client, scope), served until shortly before they expire. Concurrent requests
 * for one key share one call (single flight), so a burst for one user costs Keycloak one grant.
 * The `expires_in` handed out is what is left of the token's lifetime, not what it started with:
 * a consumer that caches on its side must not keep a token longer than Keycloak honours it.
 */
export class TokenCache {
  /** fresh entries, the least recently used evicted first, each expiring when it stops being fresh */
  private readonly entries: LRUCache<string, Entry>
  private readonly flights = new Map<string, Flight>()
  /** cache ids of a user's entries and flights, so dropping a user is not a scan */
  private readonly byUser = new Map<string, Set<string>>()
  private readonly skewSeconds: number
  private readonly now: () => number

  constructor(opts: TokenCacheOptions = {}) {
    this.skewSeconds = Math.max(0, opts.skewSeconds ?? 30)
    this.now = opts.now ?? Date.now
    this.entries = lruCache<string, Entry>(Math.max(1, opts.maxEntries ?? 10_000), {
      // Lifetimes are counted on the injected clock, read at every lookup (no cached time).
      perf: { now: this.now },
      ttlResolution: 0,
      dispose: (entry, id, reason) => {
        // Replacing an entry keeps its id in use; every other way out may free the user's index.
        if (reason !== 'set') {
          this.unindexIfUnused(entry.userId, id)
        }
      },
    })
  }

  get size(): number {
    return this.entries.size
  }

  /**
   * The cached token for `key`, the result of a call already in flight for it, or `mint()`'s.
   * A failed mint is never cached: every waiter gets the error, and the next request tries again.
   */
  async get(
    key: TokenKey,
    mint: () => Promise<TokenSet>,
  ): Promise<{ tokens: TokenSet; source: TokenSource }> {
    const id = cacheId(key)
    const now = this.now()
    const entry = this.entries.get(id)
    if (entry && now < entry.freshUntil) {
      // Requests in the same second share one aged copy instead of each making its own.
      const elapsed = elapsedSeconds(entry.obtainedAt, now)
      if (elapsed !== entry.agedBy) {
        entry.aged = aged(entry.tokens, elapsed)
        entry.agedBy = elapsed
      }
      return { tokens: entry.aged, source: 'cache' }
    }
    if (entry) {
      this.entries.delete(id)
    }
    const joined = this.flights.get(id)
    if (joined) {
      const tokens = await joined.promise
      return {
        tokens: aged(tokens, elapsedSeconds(joined.startedAt, this.now())),
        source: 'shared',
      }
    }
    const flight: Flight = {
      userId: key.userId,
      startedAt: now,
      // Deferred so a mint that throws synchronously still fails through the promise.
      promise: Promise.resolve().then(mint),
      revoked: false,
    }
    this.flights.set(id, flight)
    this.index(key.userId, id)
    try {
      const tokens = await flight.promise
      if (!flight.revoked) {
        this.store(id, key.userId, tokens, flight.startedAt)
      }
      return { tokens, source: 'minted' }
    } finally {
      if (this.flights.get(id) === flight) {
        this.flights.delete(id)
        this.unindexIfUnused(key.userId, id)
      }
    }
  }

  /**
   * Forgets every token of `userId`, and makes calls in flight for it not land in the cache: a
   * user disabled while a grant for them is running must not have that token served afterwards.
   */
  dropUser(userId: string): void {
    const ids = this.byUser.get(userId)
    if (!ids) {
      return
    }
    for (const id of [...ids]) {
      this.entries.delete(id)
      const flight = this.flights.get(id)
      if (flight) {
        flight.revoked = true
        this.flights.delete(id)
      }
    }
    this.byUser.delete(userId)
  }

  clear(): void {
    for (const flight of this.flights.values()) {
      flight.revoked = true
    }
    this.entries.clear()
    this.flights.clear()
    this.byUser.clear()
  }

  private store(id: string, userId: string, tokens: TokenSet, obtainedAt: number): void {
    const lifetime = tokens.expires_in
    if (!(lifetime > 0)) {
      return
    }
    // A realm with very short-lived tokens still gets some caching, and a consumer still gets at
    // least half of the lifetime it would get from a fresh grant.
    const skew = Math.min(this.skewSeconds, lifetime / 2)
    const freshUntil = obtainedAt + (lifetime - skew) * 1000
    if (freshUntil <= this.now()) {
      return
    }
    this.index(userId, id)
    this.entries.set(
      id,
      { userId, tokens, obtainedAt, freshUntil, agedBy: 0, aged: tokens },
      { ttl: freshUntil - this.now() },
    )
  }

  private index(userId: string, id: string): void {
    let ids = this.byUser.get(userId)
    if (!ids) {
      ids = new Set()
      this.byUser.set(userId, ids)
    }
    ids.add(id)
  }

  private unindexIfUnused(userId: string, id: string): void {
    if (this.entries.has(id) || this.flights.has(id)) {
      return
    }
    const ids = this.byUser.get(userId)
    ids?.delete(id)
    if (ids?.size === 0) {
      this.byUser.delete(userId)
    }
  }
}

/** JSON of the parts: no separator inside a uid, client id or scope can make two keys collide. */
function cacheId(key: TokenKey): string {
  return JSON.stringify([key.userId, key.clientId, key.scope])
}

/** Whole seconds from `obtainedAt` (when the grant was asked) to `now`, rounded up. */
function elapsedSeconds(obtainedAt: number, now: number): number {
  return Math.max(0, Math.ceil((now - obtainedAt) / 1000))
}

/** `tokens` as seen `elapsed` seconds after the grant was asked. */
function aged(tokens: TokenSet, elapsed: number): TokenSet {
  if (elapsed === 0) {
    return tokens
  }
  return {
    ...tokens,
    expires_in: Math.max(0, tokens.expires_in - elapsed),
    refresh_expires_in:
      tokens.refresh_expires_in > 0 ? Math.max(0, tokens.refresh_expires_in - elapsed) : 0,
  }
}
