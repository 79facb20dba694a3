/**
 * Counts failed authentications per key (a presented credential's hash, a Nextcloud user) and says
 * when a key must wait: after `max` failures within `windowMs` it is refused until the window has
 * passed. Successes never reset it, so a guessing client cannot interleave a known-good request to
 * keep going.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, { count: number; resetAt: number }>()

  constructor(
    private readonly max = 10,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait when the key `source` is blocked, else 0. */
  blockedFor(source: string): number {
    const entry = this.failures.get(source)
    if (!entry) {
      return 0
    }
    const left = entry.resetAt - this.now()
    if (left <= 0) {
      this.failures.delete(source)
      return 0
    }
    return entry.count >= this.max ? Math.ceil(left / 1000) : 0
  }

  fail(source: string): void {
    const now = this.now()
    const entry = this.failures.get(source)
    if (!entry || entry.resetAt <= now) {
      this.failures.set(source, { count: 1, resetAt: now + this.windowMs })
      this.prune(now)
      return
    }
    entry.count++
  }

  /** Bounds memory: drops expired entries once the map grows. */
  private prune(now: number): void {
    if (this.failures.size < 10_000) {
      return
    }
    for (const [source, entry] of this.failures) {
      if (entry.resetAt <= now) {
        this.failures.delete(source)
      }
    }
  }
}
