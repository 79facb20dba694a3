import { isAppError } from '../errors.js'
import type { NextcloudClient } from './nextcloud-client.js'

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
  const cache = new Map<string, { admin: boolean; until: number }>()
  return async (uid: string): Promise<boolean> => {
    const hit = cache.get(uid)
    if (hit && hit.until > now()) {
      return hit.admin
    }
    let admin: boolean
    try {
      const user = await nextcloud.currentUser(uid)
      admin = user.groups.includes('admin')
    } catch (err) {
      if (!isAppError(err, 'NOT_FOUND')) {
        cache.delete(uid)
        return false
      }
      admin = false
    }
    cache.set(uid, { admin, until: now() + ttlMs })
    return admin
  }
}
