import { isAppError } from '../errors.js'
import { lruCache } from '../lru.js'
import type { NextcloudClient } from './nextcloud-client.js'

/** Uids whose answer is remembered at once; past that the least recently asked is forgotten. */
const MAX_REMEMBERED = 10_000

/**
 * Asks Nextcloud whether a uid is an admin, remembering Nextcloud's answer for a minute. Only
 * answers are remembered (the user's groups, or "no such user"): a failed call (Nextcloud down, a
 * timeout) refuses this request and the next one asks again.
 */
export function adminChecker(
  nextcloud: Pick<NextcloudClient, 'currentUser'>,
  ttlMs = 60_000,
  now: () => number = Date.now,
) {
  const answers = lruCache<string, { admin: boolean }>(MAX_REMEMBERED, {
    ttl: ttlMs,
    // an injected clock is read on every look-up, never cached
    ttlResolution: 0,
    perf: { now },
  })
  return async (uid: string): Promise<boolean> => {
    const hit = answers.get(uid)
    if (hit) {
      return hit.admin
    }
    let admin: boolean
    try {
      const user = await nextcloud.currentUser(uid)
      admin = user.groups.includes('admin')
    } catch (err) {
      if (!isAppError(err, 'NOT_FOUND')) {
        answers.delete(uid)
        return false
      }
      admin = false
    }
    answers.set(uid, { admin })
    return admin
  }
}
