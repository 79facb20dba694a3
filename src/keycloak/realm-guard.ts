import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import type { KeycloakRuntime } from './runtime.js'

export interface RealmGuardOptions {
  keycloak: Pick<KeycloakRuntime, 'status' | 'onStatusChange'>
  /** makes the realm what the app needs (idempotent): identity provider keys, clients, profile */
  bootstrap: () => Promise<unknown>
  log: Logger
  /** how long a caller waits for the realm to be re-asserted; default 20 s */
  waitMs?: number
  /** the pause before the nth retry of a failed re-assertion; default 1 s, 2 s, 4 s … 15 s */
  retryMs?: (attempt: number) => number
  /**
   * Asked when Keycloak first becomes ready: true when its realm is known to be as the app left
   * it (see src/exapp/realm-mark.ts). Tokens then go ahead at once; the realm is re-asserted all
   * the same, and every later start of Keycloak waits for that again.
   */
  trustedAtFirstReady?: () => Promise<boolean>
}

export interface RealmGuard {
  /**
   * Resolves at once while the realm is as the app left it (and before Keycloak was ever ready).
   * Once Keycloak went away, throws AppError KEYCLOAK_UNAVAILABLE at once until it is ready again,
   * then waits until the realm was re-asserted, throwing the same after `waitMs`.
   */
  ready(): Promise<void>
  /** unsubscribes and cancels a pending retry */
  stop(): void
}

const defaultRetryMs = (attempt: number) => Math.min(15_000, 1_000 * 2 ** (attempt - 1))

/**
 * Re-asserts the realm every time Keycloak becomes ready: a Keycloak that crashed may come back
 * without what it had not yet written to disk (an embedded H2 loses the last second, e.g. the
 * identity provider's new key after a rotation), and tokens minted against that realm would fail
 * until something wrote it again. Retries until it succeeds, for as long as Keycloak stays ready.
 */
export function createRealmGuard(opts: RealmGuardOptions): RealmGuard {
  const log = opts.log.child({ component: 'realm-guard' })
  const waitMs = opts.waitMs ?? 20_000
  const retryMs = opts.retryMs ?? defaultRetryMs
  /** set from a transition to ready until the realm was re-asserted for that life */
  let pending: { done: Promise<void>; resolve: () => void } | undefined
  /** counts transitions to ready, so an assertion for an earlier life never settles a later one */
  let life = 0
  let running: Promise<void> = Promise.resolve()
  let retry: NodeJS.Timeout | undefined
  let stopped = false

  const assert = async (forLife: number, attempt: number): Promise<void> => {
    if (stopped || forLife !== life || opts.keycloak.status() !== 'ready') {
      return
    }
    try {
      await opts.bootstrap()
    } catch (err) {
      if (forLife === life && !stopped) {
        const ms = retryMs(attempt + 1)
        log.warn({ err, attempt: attempt + 1, retryInMs: ms }, 'realm.reassert_failed')
        retry = setTimeout(() => schedule(forLife, attempt + 1), ms)
        retry.unref()
      }
      return
    }
    if (forLife === life && pending) {
      pending.resolve()
      pending = undefined
      log.info({ attempts: attempt + 1 }, 'realm.reasserted')
    }
  }

  // One assertion at a time: a new one starts after the one in flight settled, so it reads and
  // writes the Keycloak that is up now.
  const schedule = (forLife: number, attempt: number) => {
    running = running.then(() => assert(forLife, attempt))
  }

  const unknownRealm = () => {
    if (!pending) {
      let resolve = () => {}
      const done = new Promise<void>((r) => {
        resolve = r
      })
      pending = { done, resolve }
    }
  }

  const unsubscribe = opts.keycloak.onStatusChange?.((status, previous) => {
    if (stopped || (status === 'ready') === (previous === 'ready')) {
      return
    }
    // Gone (crashed, hung, stopped): what it comes back with is unknown until re-asserted.
    unknownRealm()
    if (status === 'ready') {
      life += 1
      clearTimeout(retry)
      schedule(life, 0)
      if (life === 1 && opts.trustedAtFirstReady) {
        trust(life, opts.trustedAtFirstReady)
      }
    }
  })

  const trust = (forLife: number, trusted: () => Promise<boolean>) => {
    trusted().then(
      (yes) => {
        if (yes && forLife === life && pending && !stopped) {
          pending.resolve()
          pending = undefined
          log.info('realm.trusted')
        }
      },
      (err: unknown) => log.warn({ err }, 'realm.trust_failed'),
    )
  }

  return {
    async ready() {
      const current = pending
      if (!current) {
        return
      }
      const status = opts.keycloak.status()
      if (status !== 'ready') {
        throw new AppError('KEYCLOAK_UNAVAILABLE', `Keycloak is not ready (${status})`)
      }
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new AppError(
                'KEYCLOAK_UNAVAILABLE',
                'Keycloak restarted and its realm is being restored; try again shortly',
              ),
            ),
          waitMs,
        )
      })
      try {
        await Promise.race([current.done, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    stop() {
      stopped = true
      clearTimeout(retry)
      unsubscribe?.()
    },
  }
}
