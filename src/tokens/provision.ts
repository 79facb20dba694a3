import { AppError } from '../errors.js'
import { lruCache } from '../lru.js'
import { keyedFlights } from '../single-flight.js'
import type { SyncEngine } from '../sync/engine.js'

/** A Nextcloud user as a token request needs it: the uid as Nextcloud spells it. */
export interface NextcloudUser {
  id: string
  enabled?: boolean
  /** the groups it is a member of */
  groups?: readonly string[]
}

/** Finds the Nextcloud user a uid names the way Nextcloud does (case-insensitively); null: none. */
export type FindNextcloudUser = (uid: string) => Promise<NextcloudUser | null>

export interface ProvisionerOptions {
  engine: Pick<SyncEngine, 'runUser'>
  findUser: FindNextcloudUser
  now: () => number
  /** how long an answer about a uid is remembered; default 30 s */
  ttlMs?: number
}

export interface Provisioner {
  /** The Nextcloud user `uid` names; AppError NOT_FOUND when Nextcloud has none. */
  lookup(uid: string): Promise<NextcloudUser>
  /**
   * Syncs the Nextcloud user `uid` (as Nextcloud spells it) into Keycloak: one sync run, stored
   * like any other, at most once per uid while answers are remembered. NOT_FOUND when the run
   * found the user gone.
   */
  provision(uid: string): Promise<void>
  /** Forgets what was remembered about `uid` (in any case), e.g. once a sync changed that user. */
  forget(uid: string): void
}

/** uids whose answers are remembered at once; past that the least recently asked goes first */
const MAX_REMEMBERED = 10_000

/**
 * On-demand provisioning for token requests. Nextcloud is asked first, with one read: a uid it
 * does not know is answered without a sync run, so requests for made-up uids never turn into
 * stored runs or realm locks. A run only happens for a user Nextcloud has and Keycloak lacks,
 * which is a change to the realm and belongs in the run history like any other. Concurrent
 * requests share one lookup and one run, and answers are remembered briefly, so a consumer
 * repeating a request costs neither a read nor a run each time.
 */
export function provisioner(opts: ProvisionerOptions): Provisioner {
  const ttlMs = opts.ttlMs ?? 30_000
  // Nextcloud finds uids case-insensitively, so its answers are remembered per case-folded uid.
  const fold = (uid: string) => uid.toLowerCase()
  const answers = <V extends object>() =>
    lruCache<string, V>(MAX_REMEMBERED, {
      ttl: ttlMs,
      // an injected clock is read on every look-up, never cached
      ttlResolution: 0,
      perf: { now: opts.now },
    })
  const found = answers<{ user: NextcloudUser | null }>()
  const running = new Map<string, Promise<boolean>>()
  const ran = answers<{ present: boolean }>()

  /**
   * One read of Nextcloud per uid at a time; its answer is remembered unless `forget` came while
   * it ran (the sync changed the user: an answer read before that must not outlive it).
   */
  const looking = keyedFlights<string, NextcloudUser | null>((key, user) =>
    found.set(key, { user }),
  )
  const read = (uid: string, key: string) => looking.run(key, () => opts.findUser(uid))

  const lookup = async (uid: string): Promise<NextcloudUser> => {
    const key = fold(uid)
    const known = found.get(key)
    let user = known?.user
    if (known) {
      // Past half its life, an answer is read again behind the request that used it: a user who
      // keeps asking never waits for Nextcloud, and no answer is used longer than `ttlMs`.
      if (found.getRemainingTTL(key) < ttlMs / 2 && !looking.has(key)) {
        read(uid, key).catch(() => undefined)
      }
    } else {
      user = await read(uid, key)
    }
    if (!user) {
      throw unknownUser()
    }
    return user
  }

  const provision = async (uid: string): Promise<void> => {
    const key = fold(uid)
    let present = ran.get(key)?.present
    if (present === undefined) {
      let run = running.get(key)
      if (!run) {
        run = opts.engine
          .runUser(uid, 'token')
          // disabled and deleted mean the same here: the run found the user gone from Nextcloud.
          .then((result) => !['absent', 'disabled', 'deleted'].includes(result.action))
          .finally(() => running.delete(key))
        running.set(key, run)
      }
      present = await run
      ran.set(key, { present })
      if (!present) {
        found.set(key, { user: null })
      }
    }
    if (!present) {
      throw unknownUser()
    }
  }

  const forget = (uid: string) => {
    found.delete(fold(uid))
    ran.delete(fold(uid))
    looking.forget(fold(uid))
  }

  return { lookup, provision, forget }
}

function unknownUser(): AppError {
  return new AppError('NOT_FOUND', 'user unknown to Nextcloud')
}
