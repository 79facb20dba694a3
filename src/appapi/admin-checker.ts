import type { NextcloudClient } from './nextcloud-client.js'

/** Asks Nextcloud whether a uid is an admin, remembering the answer for a minute. */
export function adminChecker(nextcloud: NextcloudClient, ttlMs = 60_000) {
  const cache = new Map<string, { admin: boolean; until: number }>()
  return async (uid: string): Promise<boolean> => {
    const hit = cache.get(uid)
    if (hit && hit.until > Date.now()) {
      return hit.admin
    }
    const user = await nextcloud.currentUser(uid).catch(() => undefined)
    const admin = user?.groups.includes('admin') ?? false
    cache.set(uid, { admin, until: Date.now() + ttlMs })
    return admin
  }
}
