import { AppError } from '../errors.js'
import type { SyncEngine } from '../sync/engine.js'

/**
 * Syncs one user on demand. Concurrent requests for one uid share one run, and a uid Nextcloud
 * does not have is remembered briefly: a consumer asking for made-up uids must not turn each
 * request into a Nextcloud read and a sync run under the realm lock.
 */
export function provisioner(
  engine: Pick<SyncEngine, 'runUser'>,
  now: () => number,
  absentTtlMs = 30_000,
) {
  const running = new Map<string, Promise<boolean>>()
  const absentUntil = new Map<string, number>()

  const present = async (userId: string): Promise<boolean> => {
    const result = await engine.runUser(userId, 'token')
    // disabled and deleted mean the same here: the run found the user gone from Nextcloud.
    return !['absent', 'disabled', 'deleted'].includes(result.action)
  }

  return async (userId: string, onAbsent: () => void): Promise<void> => {
    const until = absentUntil.get(userId)
    if (until !== undefined && until > now()) {
      throw unknownUser()
    }
    absentUntil.delete(userId)
    let run = running.get(userId)
    if (!run) {
      run = present(userId).finally(() => running.delete(userId))
      running.set(userId, run)
    }
    if (!(await run)) {
      if (absentUntil.size >= 10_000) {
        // Bounded the cheap way: forgetting early only costs a sync run.
        absentUntil.clear()
      }
      absentUntil.set(userId, now() + absentTtlMs)
      onAbsent()
      throw unknownUser()
    }
  }
}

function unknownUser(): AppError {
  return new AppError('NOT_FOUND', 'user unknown to Nextcloud')
}
