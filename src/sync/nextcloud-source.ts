import type { GroupDetails, NextcloudClient, UserDetails } from '../appapi/nextcloud-client.js'
import { keepFields } from '../appapi/nextcloud-directory.js'
import { AppError } from '../errors.js'

export interface NextcloudDirectory {
  users: UserDetails[]
  groups: GroupDetails[]
}

export interface NextcloudSourceOptions {
  client: NextcloudClient
  /** NEXTCLOUD_ADMIN_USER, tried first when looking for an admin to act as */
  preferredAdmin?: string
  /** users per `users/details` page, groups per `groups/details` page */
  pageSize: number
  /** uids per page of the cheap lists `observe` reads (`cloud/users`, `users/disabled`); default 10 000 */
  listPageSize?: number
  /**
   * The fields beyond the normalised ones that `readAll` keeps of each user: those the profile
   * mappings read. The others are dropped as each page arrives; none by default.
   */
  userFields?: readonly string[]
}

/**
 * What the cheap lists say about Nextcloud: every uid, and each group with its member and
 * disabled-member counts. No user details: at 10 000 users this is a few requests.
 */
export interface DirectoryObservation {
  userIds: string[]
  groups: GroupDetails[]
}

/** A read the source finished: the whole directory, or one user (null: Nextcloud has none). */
export type SourceRead =
  | { kind: 'all'; directory: NextcloudDirectory }
  | { kind: 'user'; uid: string; user: UserDetails | null }

/**
 * Reads Nextcloud's directory the way the provisioning API allows it: as an admin (an empty user
 * is refused), with paged `users/details` (memberships come with each user) and paged
 * `groups/details`, so the cost is a handful of requests whatever the size. A read that is not
 * complete throws: a sync must never take a partial directory for the truth.
 */
export class NextcloudSource {
  private actingUser: string | undefined
  private readonly userFields: ReadonlySet<string>
  private readonly listeners = new Set<(read: SourceRead) => void>()
  /** set by `withGroups`: the group list `readUser` uses instead of reading it again */
  private knownGroups: GroupDetails[] | undefined

  constructor(private readonly opts: NextcloudSourceOptions) {
    this.userFields = new Set(opts.userFields)
  }

  /** Tells `listener` about every read that completed; returns the unsubscribe function. */
  onRead(listener: (read: SourceRead) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Runs `work` with `groups` (just read, e.g. by `observe`) standing in for the group list
   * `readUser` would otherwise read with each user: one request less per user.
   */
  async withGroups<T>(groups: GroupDetails[], work: () => Promise<T>): Promise<T> {
    this.knownGroups = groups
    try {
      return await work()
    } finally {
      this.knownGroups = undefined
    }
  }

  /** The admin uid the sync acts as; found once, then reused. */
  async admin(): Promise<string> {
    if (this.actingUser === undefined) {
      const uid = await this.opts.client.findAdminUser(this.opts.preferredAdmin)
      if (uid === null) {
        throw new AppError(
          'NEXTCLOUD_UNAVAILABLE',
          this.opts.preferredAdmin
            ? `NEXTCLOUD_ADMIN_USER "${this.opts.preferredAdmin}" is not a Nextcloud admin, and no other admin was found to read users as`
            : 'no Nextcloud admin was found to read users as; set NEXTCLOUD_ADMIN_USER to an admin uid',
        )
      }
      this.actingUser = uid
    }
    return this.actingUser
  }

  async readAll(): Promise<NextcloudDirectory> {
    const asUser = await this.admin()
    const limit = this.opts.pageSize
    const users: UserDetails[] = []
    let shortPageAt: number | undefined
    // Read until an empty page, not until the first short one: a short page followed by more
    // users means rows went missing while paging, and a partial directory must never be synced.
    for (let offset = 0; ; offset += limit) {
      const page = await this.opts.client.usersDetailsPage(asUser, { offset, limit })
      if (page.hidden.length > 0) {
        throw new AppError(
          'NEXTCLOUD_UNAVAILABLE',
          `Nextcloud did not show the details of ${page.hidden.length} user(s) (e.g. "${page.hidden[0]}") to "${asUser}"; the sync needs an admin that sees every user`,
        )
      }
      if (page.users.length === 0) {
        break
      }
      if (shortPageAt !== undefined) {
        throw new AppError(
          'NEXTCLOUD_UNAVAILABLE',
          `Nextcloud returned a short page of users at offset ${shortPageAt} and more users after it; the directory changed or a page was cut, so this run syncs nothing`,
        )
      }
      for (const user of page.users) {
        users.push(keepFields(user, this.userFields))
      }
      if (page.users.length < limit) {
        shortPageAt = offset
      }
    }
    const groups = await this.readGroups(asUser)
    checkGroupCounts(users, groups)
    this.tell({ kind: 'all', directory: { users, groups } })
    return { users, groups }
  }

  /** One user (null when Nextcloud no longer has it) and the group list it may refer to. */
  async readUser(uid: string): Promise<{ user: UserDetails | null; groups: GroupDetails[] }> {
    const asUser = await this.admin()
    const user = await this.opts.client.userDetails(asUser, uid)
    const groups = this.knownGroups ?? (await this.readGroups(asUser))
    this.tell({ kind: 'user', uid, user })
    return { user, groups }
  }

  /**
   * The cheap lists: uids (`cloud/users`) and groups with counts (`groups/details`). Pages may
   * shift while they are read (a user created meanwhile): what this returns is a hint of what
   * changed, to be read again in detail.
   */
  async observe(): Promise<DirectoryObservation> {
    const asUser = await this.admin()
    const limit = this.listPageSize()
    const userIds: string[] = []
    for (let offset = 0; ; offset += limit) {
      const page = await this.opts.client.userIdsPage(asUser, { offset, limit })
      userIds.push(...page)
      if (page.length < limit) {
        break
      }
    }
    return { userIds, groups: await this.readGroups(asUser) }
  }

  /**
   * The uids of the disabled users (`users/disabled`). Nextcloud sends each one's details, so
   * this costs about as much per disabled user as a details page does per user.
   */
  async disabledIds(): Promise<string[]> {
    const asUser = await this.admin()
    const limit = this.listPageSize()
    const ids: string[] = []
    for (let offset = 0; ; offset += limit) {
      const page = await this.opts.client.disabledUsersPage(asUser, { offset, limit })
      ids.push(...page.users.map((u) => u.id), ...page.hidden)
      if (page.users.length + page.hidden.length < limit) {
        return ids
      }
    }
  }

  private listPageSize(): number {
    return this.opts.listPageSize ?? 10_000
  }

  /** The uids in group `gid`; null when Nextcloud has no such group (any more). */
  async groupMembers(gid: string): Promise<string[] | null> {
    return this.opts.client.groupMemberIds(await this.admin(), gid)
  }

  private tell(read: SourceRead): void {
    for (const listener of this.listeners) {
      listener(read)
    }
  }

  private async readGroups(asUser: string): Promise<GroupDetails[]> {
    const limit = this.opts.pageSize
    const groups: GroupDetails[] = []
    for (let offset = 0; ; offset += limit) {
      const page = await this.opts.client.groupsDetailsPage(asUser, { offset, limit })
      groups.push(...page.groups)
      if (page.groups.length < limit) {
        return groups
      }
    }
  }
}

/**
 * Every member a group reports must have been read: fewer means users are missing from the pages
 * (a cut response), and syncing that would disable or delete them. Every group a user is in must
 * have been listed: one missing means the group pages were cut, and syncing that would delete it.
 */
function checkGroupCounts(users: UserDetails[], groups: GroupDetails[]): void {
  const seen = new Map<string, number>()
  for (const user of users) {
    for (const gid of user.groups) {
      seen.set(gid, (seen.get(gid) ?? 0) + 1)
    }
  }
  const listed = new Set(groups.map((g) => g.id))
  for (const gid of seen.keys()) {
    if (!listed.has(gid)) {
      throw new AppError(
        'NEXTCLOUD_UNAVAILABLE',
        `Nextcloud lists users in group "${gid}" but not the group itself; the group list is incomplete, so this run syncs nothing`,
      )
    }
  }
  for (const group of groups) {
    const expected = group.usercount
    const found = seen.get(group.id) ?? 0
    if (typeof expected === 'number' && expected > found) {
      throw new AppError(
        'NEXTCLOUD_UNAVAILABLE',
        `Nextcloud says group "${group.id}" has ${expected} member(s) but only ${found} were read; the user list is incomplete, so this run syncs nothing`,
      )
    }
  }
}
