import type { LRUCache } from 'lru-cache'
import { lruCache } from '../lru.js'

/** Keys remembered at once; past that the least recently seen is forgotten first. */
const MAX_KEYS = 10_000

/**
 * Counts failed authentications per key (a presented credential's hash, a Nextcloud user) and says
 * when a key must wait: after `max` failures within `windowMs` it is refused until the window has
 * passed. Successes never reset it, so a guessing client cannot interleave a known-good request to
 * keep going. A key that keeps failing is seen on every attempt, so it is the last to be forgotten.
 */
export class FailureLimiter {
  /** failures per key; the window starts at the first failure and is not extended by later ones */
  private readonly failures: LRUCache<string, { count: number }>

  constructor(
    private readonly max = 10,
    windowMs = 60_000,
    now: () => number = Date.now,
  ) {
    this.failures = lruCache(MAX_KEYS, {
      ttl: windowMs,
      // an injected clock is read on every look-up, never cached
      ttlResolution: 0,
      perf: { now },
    })
  }

  /** Seconds to wait when the key `source` is blocked, else 0. */
  blockedFor(source: string): number {
    const entry = this.failures.get(source)
    if (!entry || entry.count < this.max) {
      return 0
    }
    return Math.ceil(this.failures.getRemainingTTL(source) / 1000)
  }

  fail(source: string): void {
    const entry = this.failures.get(source)
    if (entry) {
      entry.count++
    } else {
      this.failures.set(source, { count: 1 })
    }
  }
}
