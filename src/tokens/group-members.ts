import { keyedFlights } from '../single-flight.js'

/** Reads the uids of a Nextcloud group, as Nextcloud spells them; null when there is no such group. */
export type ReadGroupMembers = (gid: string) => Promise<readonly string[] | null>

export interface GroupMembersOptions {
  read: ReadGroupMembers
  now: () => number
  /** how long a group's member list is used; default 30 s, as long as an answer about a user */
  ttlMs?: number
}

export interface GroupMembers {
  /**
   * Whether `uid` (in any letter case) is a member of `gid`, by a list read at most `maxAgeMs`
   * ago (default: the lists' lifetime). One read per group at a time; past half its life a list
   * is read again behind the caller that used it.
   */
  memberOf(
    gids: readonly string[],
    maxAgeMs?: number,
  ): Promise<(gid: string, uid: string) => boolean>
  /** Every list is read again before its next use (the sync changed a user). */
  expire(): void
}

/** A group's members, case-folded, and when the read that gave them began. */
type MemberList = { members: ReadonlySet<string>; readAt: number }

/**
 * Nextcloud's member lists of the few groups a consumer's limits name (and `admin`), shared by
 * every token request: a thousand users' first tokens cost Nextcloud one read per group, not one
 * read per user. A list is used at most as long as an answer about one user is remembered, so a
 * decision rests on Nextcloud data no older than it did with one read per user.
 */
export function groupMembers(opts: GroupMembersOptions): GroupMembers {
  const ttlMs = opts.ttlMs ?? 30_000
  // Nextcloud finds uids case-insensitively and allows no two that differ only in case.
  const fold = (uid: string) => uid.toLowerCase()
  const lists = new Map<string, MemberList>()
  const reading = keyedFlights<string, MemberList>((gid, list) => lists.set(gid, list))

  /** A read under way when the lists expire answers its callers but is not kept. */
  const read = async (gid: string): Promise<ReadonlySet<string>> => {
    const list = await reading.run(gid, async () => {
      const readAt = opts.now()
      const uids = await opts.read(gid)
      return { members: new Set((uids ?? []).map(fold)), readAt }
    })
    return list.members
  }

  const members = (
    gid: string,
    maxAgeMs: number,
  ): ReadonlySet<string> | Promise<ReadonlySet<string>> => {
    const list = lists.get(gid)
    const age = list ? opts.now() - list.readAt : Number.POSITIVE_INFINITY
    if (!list || age > Math.min(maxAgeMs, ttlMs)) {
      return read(gid)
    }
    if (age > ttlMs / 2 && !reading.has(gid)) {
      read(gid).catch(() => undefined)
    }
    return list.members
  }

  return {
    async memberOf(gids, maxAgeMs = ttlMs) {
      const sets = new Map<string, ReadonlySet<string>>()
      await Promise.all(
        gids.map(async (gid) => {
          sets.set(gid, await members(gid, maxAgeMs))
        }),
      )
      return (gid, uid) => sets.get(gid)?.has(fold(uid)) ?? false
    },
    expire() {
      lists.clear()
      reading.forgetAll()
    },
  }
}
