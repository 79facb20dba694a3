import type { GroupDetails } from '../../src/appapi/nextcloud-client.js'
import type { UserRecord } from '../builders.js'

export type GroupInput = Pick<GroupDetails, 'id'> & Partial<GroupDetails>

/** Users, groups and memberships of the fake; `user.groups` always mirrors the memberships. */
export interface Directory {
  addUser(user: UserRecord): void
  updateUser(uid: string, patch: Partial<UserRecord>): void
  removeUser(uid: string): void
  addGroup(group: GroupInput): void
  removeGroup(gid: string): void
  setMembership(uid: string, gids: readonly string[]): void
  user(uid: string): UserRecord | undefined
  /** Nextcloud's user lookup (`cloud/users/{uid}`): case-insensitive, as the Database backend */
  findUser(uid: string): UserRecord | undefined
  group(gid: string): GroupDetails | undefined
  members(gid: string): string[] | undefined
  isAdmin(uid: string): boolean
  /** Nextcloud's Database backend: case-insensitive match on uid, display name or email, by uid */
  searchUsers(search: string, limit: number | undefined, offset: number): UserRecord[]
  searchGroups(search: string, limit: number | undefined, offset: number): GroupDetails[]
}

export function createDirectory(): Directory {
  const users = new Map<string, UserRecord>()
  const groups = new Map<string, { id: string; displayname: string }>()
  const members = new Map<string, Set<string>>()
  let sortedUids: string[] | null = null

  const ensureGroup = (gid: string) => {
    if (!groups.has(gid)) {
      groups.set(gid, { id: gid, displayname: gid })
      members.set(gid, new Set())
    }
  }
  const required = (uid: string) => {
    const user = users.get(uid)
    if (!user) {
      throw new Error(`fake Nextcloud has no user "${uid}"`)
    }
    return user
  }
  const setMembership = (uid: string, gids: readonly string[]) => {
    const user = required(uid)
    for (const gid of user.groups) {
      members.get(gid)?.delete(uid)
    }
    const unique = [...new Set(gids)]
    for (const gid of unique) {
      ensureGroup(gid)
      members.get(gid)?.add(uid)
    }
    users.set(uid, { ...user, groups: unique })
  }
  const group = (gid: string): GroupDetails | undefined => {
    const found = groups.get(gid)
    if (!found) {
      return undefined
    }
    const uids = [...(members.get(gid) ?? [])]
    return {
      ...found,
      usercount: uids.length,
      disabled: uids.filter((uid) => users.get(uid)?.enabled === false).length,
      canAdd: true,
      canRemove: true,
    }
  }
  const page = <T>(list: T[], limit: number | undefined, offset: number) =>
    list.slice(offset, limit === undefined ? undefined : offset + limit)

  return {
    addUser(user) {
      if (users.has(user.id)) {
        throw new Error(`fake Nextcloud already has user "${user.id}"`)
      }
      users.set(user.id, { ...user, groups: [] })
      sortedUids = null
      setMembership(user.id, user.groups)
    },
    updateUser(uid, patch) {
      const { groups: gids, ...rest } = patch
      users.set(uid, { ...required(uid), ...rest, id: uid })
      if (gids) {
        setMembership(uid, gids)
      }
    },
    removeUser(uid) {
      setMembership(uid, [])
      users.delete(uid)
      sortedUids = null
    },
    addGroup(group) {
      ensureGroup(group.id)
      groups.set(group.id, { id: group.id, displayname: group.displayname ?? group.id })
    },
    removeGroup(gid) {
      for (const uid of members.get(gid) ?? []) {
        const user = required(uid)
        users.set(uid, { ...user, groups: user.groups.filter((g) => g !== gid) })
      }
      groups.delete(gid)
      members.delete(gid)
    },
    setMembership,
    user: (uid) => users.get(uid),
    findUser: (uid) =>
      users.get(uid) ?? [...users.values()].find((u) => u.id.toLowerCase() === uid.toLowerCase()),
    group,
    members: (gid) => (members.has(gid) ? [...(members.get(gid) ?? [])] : undefined),
    isAdmin: (uid) => members.get('admin')?.has(uid) ?? false,
    searchUsers(search, limit, offset) {
      sortedUids ??= [...users.keys()].sort((a, b) => compare(a.toLowerCase(), b.toLowerCase()))
      const needle = search.toLowerCase()
      const all = sortedUids.map((uid) => required(uid))
      const found = needle === '' ? all : all.filter((u) => matches(u, needle))
      return page(found, limit, offset)
    },
    searchGroups(search, limit, offset) {
      const needle = search.toLowerCase()
      const gids = [...groups.keys()]
        .filter((gid) => needle === '' || gid.toLowerCase().includes(needle))
        .sort(compare)
      return page(gids, limit, offset).flatMap((gid) => group(gid) ?? [])
    },
  }
}

function matches(user: UserRecord, needle: string): boolean {
  return [user.id, user.displayname, user.email ?? ''].some((v) => v.toLowerCase().includes(needle))
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
