import type { Store } from '../db/store.js'
import { AppError, errorMessage } from '../errors.js'
import {
  exportSigningKey,
  generateSigningKey,
  loadOrCreateSigningKey,
  type PublicJwk,
  type SigningKey,
} from '../keycloak/assertion-signing.js'
import type { Logger } from '../log.js'

/** Store names: the current key (private part, sealed by the store) and the retiring public key. */
export const SIGNING_KEY_SECRET = 'signing-key'
export const PREVIOUS_KEY_SECRET = 'signing-key.previous'

/** The retiring key: only its public half is needed, to keep the IdP trusting it for a while. */
interface StoredPreviousKey {
  v: 1
  publicJwk: PublicJwk
  /** ISO time after which the IdP no longer needs to list it */
  retireAt: string
}

export type Jwks = { keys: PublicJwk[] }

export interface SigningKeysOptions {
  store: Pick<Store, 'getOrCreateSecret' | 'getSecret' | 'putSecret'>
  log: Logger
  /** how long the previous key stays trusted after a rotation; default 10 minutes */
  graceMs?: number
  /**
   * Makes the realm's identity provider trust exactly `jwks`. Called with both keys before the new
   * one signs anything, and with the current key alone once the grace period is over.
   */
  onKeysChanged?(jwks: Jwks): Promise<void>
  now?: () => number
}

/**
 * The assertion signing key as the store holds it: generated once, shared by every replica on the
 * same database, rotated on request. Replicas keep the key in memory; one that signs with a key
 * the IdP no longer trusts calls `reload()` (see the JWT minter).
 */
export class SigningKeys {
  private current: Promise<SigningKey> | undefined
  private rotating: Promise<unknown> = Promise.resolve()
  private retireTimer: NodeJS.Timeout | undefined
  private readonly graceMs: number
  private readonly now: () => number

  constructor(private readonly opts: SigningKeysOptions) {
    this.graceMs = opts.graceMs ?? 10 * 60_000
    this.now = opts.now ?? Date.now
  }

  /** The key that signs; created and stored on first use. */
  key(): Promise<SigningKey> {
    this.current ??= this.load().catch((err: unknown) => {
      this.current = undefined
      throw err
    })
    return this.current
  }

  /** Re-reads the current key from the store, for when another replica may have rotated it. */
  async reload(): Promise<SigningKey> {
    const loaded = this.load()
    this.current = loaded.catch((err: unknown) => {
      this.current = undefined
      throw err
    })
    return loaded
  }

  /**
   * The JWKS the identity provider must hold: the current key first, the previous one while its
   * grace period lasts. Read from the store, so it is right on any replica and after a restart.
   */
  async publicJwks(): Promise<Jwks> {
    const current = await this.key()
    const previous = await this.readPrevious()
    if (previous && previous.publicJwk.kid !== current.kid && this.stillTrusted(previous)) {
      return { keys: [current.publicJwk, previous.publicJwk] }
    }
    return { keys: [current.publicJwk] }
  }

  /**
   * Replaces the signing key. The identity provider is told to trust the new key (and still the
   * old one) before anything is stored: if that fails, nothing changed and the old key signs on.
   */
  rotate(): Promise<{ kid: string; previousKid: string }> {
    const run = this.rotating.then(() => this.rotateNow())
    this.rotating = run.catch(() => undefined)
    return run
  }

  /** Cancels the pending retirement call (at shutdown). */
  stop(): void {
    clearTimeout(this.retireTimer)
    this.retireTimer = undefined
  }

  private async rotateNow(): Promise<{ kid: string; previousKid: string }> {
    const old = await this.reload()
    const next = await generateSigningKey(new Date(this.now()))
    const retireAt = new Date(this.now() + this.graceMs)
    await this.opts.onKeysChanged?.({ keys: [next.publicJwk, old.publicJwk] })
    const previous: StoredPreviousKey = {
      v: 1,
      publicJwk: old.publicJwk,
      retireAt: retireAt.toISOString(),
    }
    await this.opts.store.putSecret(PREVIOUS_KEY_SECRET, JSON.stringify(previous))
    await this.opts.store.putSecret(
      SIGNING_KEY_SECRET,
      JSON.stringify(await exportSigningKey(next)),
    )
    this.current = Promise.resolve(next)
    this.opts.log.info({ kid: next.kid, previousKid: old.kid, retireAt }, 'tokens.key_rotated')
    this.scheduleRetirement()
    return { kid: next.kid, previousKid: old.kid }
  }

  private scheduleRetirement(): void {
    this.stop()
    this.retireTimer = setTimeout(() => {
      this.retireTimer = undefined
      void this.publicJwks()
        .then((jwks) => this.opts.onKeysChanged?.(jwks))
        .then(() => this.opts.log.info('tokens.previous_key_retired'))
        .catch((err: unknown) => {
          // The next bootstrap (every start) writes publicJwks() again and so retires it then.
          this.opts.log.warn({ err: errorMessage(err) }, 'tokens.key_retirement_failed')
        })
    }, this.graceMs + 1000)
    this.retireTimer.unref()
  }

  private stillTrusted(previous: StoredPreviousKey): boolean {
    return Date.parse(previous.retireAt) > this.now()
  }

  private async load(): Promise<SigningKey> {
    return loadOrCreateSigningKey(this.opts.store, SIGNING_KEY_SECRET, () => new Date(this.now()))
  }

  private async readPrevious(): Promise<StoredPreviousKey | undefined> {
    const raw = await this.opts.store.getSecret(PREVIOUS_KEY_SECRET)
    if (raw === undefined) {
      return undefined
    }
    const parsed = parseJson<StoredPreviousKey>(raw, 'previous signing key')
    if (parsed?.v !== 1 || !parsed.publicJwk?.kid || Number.isNaN(Date.parse(parsed.retireAt))) {
      throw new AppError('INTERNAL', 'stored previous signing key has an unknown format')
    }
    return parsed
  }
}

function parseJson<T>(raw: string, what: string): T {
  try {
    return JSON.parse(raw) as T
  } catch (cause) {
    throw new AppError('INTERNAL', `stored ${what} is not valid JSON`, { cause })
  }
}
