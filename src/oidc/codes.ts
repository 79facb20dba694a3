import { randomBytes } from 'node:crypto'

/** What an authorization code stands for, until it is redeemed or expires. */
export interface CodeGrant {
  clientId: string
  redirectUri: string
  /** the Nextcloud uid the code was issued to */
  userId: string
  /** the S256 challenge the redeemer's verifier must match */
  codeChallenge: string
  nonce?: string
  scope: string
}

export interface AuthCodesOptions {
  /** lifetime of a code; at most 60 s */
  ttlSeconds: number
  now: () => number
  /** codes kept at once; beyond it the oldest are dropped (default 10 000) */
  maxCodes?: number
}

/**
 * One-time authorization codes, in memory: a code is random (256 bits), redeemable once, and
 * only until it expires. Taking a code removes it whether or not the redemption then succeeds, so
 * a code that leaked with a wrong verifier cannot be tried again.
 */
export class AuthCodes {
  private readonly codes = new Map<string, CodeGrant & { expiresAt: number }>()
  private readonly maxCodes: number

  constructor(private readonly opts: AuthCodesOptions) {
    if (!(opts.ttlSeconds > 0 && opts.ttlSeconds <= 60)) {
      throw new Error('an authorization code lives more than 0 and at most 60 seconds')
    }
    this.maxCodes = opts.maxCodes ?? 10_000
  }

  issue(grant: CodeGrant): string {
    this.prune()
    const code = randomBytes(32).toString('base64url')
    this.codes.set(code, { ...grant, expiresAt: this.opts.now() + this.opts.ttlSeconds * 1000 })
    // Map keeps insertion order: the first keys are the oldest codes.
    for (const oldest of this.codes.keys()) {
      if (this.codes.size <= this.maxCodes) {
        break
      }
      this.codes.delete(oldest)
    }
    return code
  }

  /** The grant of `code`, once: undefined when unknown, already taken or expired. */
  take(code: string): CodeGrant | undefined {
    const found = this.codes.get(code)
    if (!found) {
      return undefined
    }
    this.codes.delete(code)
    if (this.opts.now() >= found.expiresAt) {
      return undefined
    }
    const { expiresAt: _, ...grant } = found
    return grant
  }

  get size(): number {
    return this.codes.size
  }

  private prune(): void {
    const now = this.opts.now()
    for (const [code, grant] of this.codes) {
      if (now >= grant.expiresAt) {
        this.codes.delete(code)
      }
    }
  }
}
