import { createHash } from 'node:crypto'
import type { Sql } from 'postgres'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'

/** Gives a held lock back. Calling it again does nothing. */
export type Release = () => Promise<void>

/** Named locks: at most one holder per key at a time. */
export interface Locks {
  /** Takes `key` if nobody holds it; null when someone does (here or in another process). */
  tryLock(key: string): Promise<Release | null>
  /** Waits until `key` is free, then takes it. Rejects when the database closes meanwhile. */
  lock(key: string): Promise<Release>
  /** Releases what is held and rejects every waiter. */
  closeLocks(): Promise<void>
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

/** In-process keyed mutex: the lock on PGlite, and the first gate before an advisory lock. */
export function createLocalLocks(): Locks {
  // A key is present while held; its array is the FIFO of waiters, handed the lock on release.
  const held = new Map<string, Waiter[]>()
  let closed = false

  const releaser = (key: string): Release =>
    once(async () => {
      const next = held.get(key)?.shift()
      if (next) {
        next.resolve()
      } else {
        held.delete(key)
      }
    })

  return {
    async tryLock(key) {
      if (closed || held.has(key)) {
        return null
      }
      held.set(key, [])
      return releaser(key)
    },
    async lock(key) {
      if (closed) {
        throw closedError()
      }
      const waiters = held.get(key)
      if (waiters) {
        await new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }))
      } else {
        held.set(key, [])
      }
      return releaser(key)
    },
    async closeLocks() {
      closed = true
      for (const waiters of held.values()) {
        for (const waiter of waiters.splice(0)) {
          waiter.reject(closedError())
        }
      }
      held.clear()
    },
  }
}

/**
 * Session advisory locks, so two processes on one database exclude each other. A session lock
 * belongs to the connection that took it, so each attempt gets its own single-connection client,
 * closed on release: ending the session is what frees the lock, also when the process dies.
 * Not `sql.reserve()`: in postgres.js 3.4 a query on a reserved connection whose server side went
 * away throws from a timer and takes the process down. A local mutex in front keeps waiters of
 * one process from each holding a connection.
 *
 * `connect` must build a client with `max: 1` and no `max_lifetime`, which would otherwise end
 * the session, and the lock, under a long run.
 */
export function createAdvisoryLocks(connect: (onclose: () => void) => Sql, log: Logger): Locks {
  const local = createLocalLocks()
  const clients = new Set<Sql>()

  const take = async (key: string, localRelease: Release, wait: boolean) => {
    let held = false
    let released = false
    const client = connect(() => {
      if (held && !released) {
        log.warn({ key }, 'db.lock.lost')
      }
    })
    clients.add(client)
    const release = once(async () => {
      released = true
      clients.delete(client)
      await client.end({ timeout: 5 }).catch(() => undefined)
      await localRelease()
    })
    try {
      const id = advisoryLockId(key)
      const [row] = wait
        ? await client`select pg_advisory_lock(${id}::bigint), true as locked`
        : await client`select pg_try_advisory_lock(${id}::bigint) as locked`
      if (row?.locked === true) {
        held = true
        return release
      }
      await release()
      return null
    } catch (err) {
      await release()
      throw new AppError('INTERNAL', `cannot take the database lock "${key}"`, { cause: err })
    }
  }

  return {
    async tryLock(key) {
      const localRelease = await local.tryLock(key)
      return localRelease ? take(key, localRelease, false) : null
    },
    async lock(key) {
      const release = await take(key, await local.lock(key), true)
      if (!release) {
        throw new AppError('INTERNAL', `pg_advisory_lock returned without the lock "${key}"`)
      }
      return release
    },
    async closeLocks() {
      await local.closeLocks()
      // Ending the sessions frees held locks and aborts a pg_advisory_lock still waiting.
      await Promise.all([...clients].map((client) => client.end({ timeout: 0 })))
      clients.clear()
    },
  }
}

/**
 * Signed 64-bit lock id from a SHA-256 of the key. Stable across PostgreSQL versions (hashtext()
 * is not promised to be), and the app prefix keeps it clear of other apps' advisory locks on a
 * shared database.
 */
export function advisoryLockId(key: string): string {
  const digest = createHash('sha256').update(`keycloak-exapp:${key}`).digest()
  return digest.readBigInt64BE(0).toString()
}

function once(fn: () => Promise<void>): Release {
  let done: Promise<void> | undefined
  return () => {
    done ??= fn()
    return done
  }
}

function closedError(): AppError {
  return new AppError('INTERNAL', 'the database was closed while waiting for a lock')
}
