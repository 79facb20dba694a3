import { AppError } from '../src/errors.js'
import type { DirectoryWriter } from '../src/sync/apply.js'
import {
  type Actual,
  type Attributes,
  byCodeUnit,
  type DesiredGroup,
  type NewUser,
  type UserPatch,
} from '../src/sync/model.js'

export type WriterOperation = keyof DirectoryWriter

interface StoredUser {
  id: string
  uid: string
  username: string
  email: string | null
  firstName: string
  lastName: string
  enabled: boolean
  attributes: Attributes
  groups: Set<string>
  roles: Set<string>
  linked: boolean
}

interface StoredGroup {
  id: string
  gid: string
  displayName: string
  members: Set<string>
}

/**
 * An in-memory realm behind the `DirectoryWriter` port, for tests and the benchmark. It enforces
 * what Keycloak enforces (unique lower-cased usernames and emails, unique group names) and counts
 * every write, failed ones included, since each would be a request.
 */
export class MemoryDirectory implements DirectoryWriter {
  /** writes per operation */
  readonly writes: Record<WriterOperation, number> = {
    createGroup: 0,
    updateGroup: 0,
    deleteGroup: 0,
    createUser: 0,
    updateUser: 0,
    setEnabled: 0,
    deleteUser: 0,
    linkIdentity: 0,
    addMember: 0,
    removeMember: 0,
    grantRole: 0,
    revokeRole: 0,
  }
  private readonly users = new Map<string, StoredUser>()
  private readonly groups = new Map<string, StoredGroup>()
  /** username → uid of the managed holder, or null for an unmanaged one */
  private readonly usernames = new Map<string, string | null>()
  private readonly emails = new Map<string, string | null>()
  private readonly unmanagedGroups = new Set<string>()
  private readonly failures = new Map<string, Error>()
  private nextId = 1

  /** All writes so far. */
  get writeCount(): number {
    return Object.values(this.writes).reduce((sum, n) => sum + n, 0)
  }

  /** Adds a Keycloak user the sync does not own. */
  seedUnmanagedUser(user: { username: string; email?: string }): void {
    this.usernames.set(user.username.toLowerCase(), null)
    if (user.email) {
      this.emails.set(user.email.toLowerCase(), null)
    }
  }

  /** Adds a Keycloak group the sync does not own. */
  seedUnmanagedGroup(name: string): void {
    this.unmanagedGroups.add(name)
  }

  /** Makes `operation` fail for the uid/gid `key` (its first argument), or for every call. */
  failOn(operation: WriterOperation, key?: string, error?: Error): void {
    this.failures.set(
      `${operation}:${key ?? '*'}`,
      error ?? new AppError('KEYCLOAK_UNAVAILABLE', `${operation} failed`),
    )
  }

  /** The managed part of the realm, as the Keycloak reader would return it. */
  snapshot(): Actual {
    const byName = (a: { uid: string }, b: { uid: string }) => byCodeUnit(a.uid, b.uid)
    return {
      users: [...this.users.values()].sort(byName).map((u) => ({
        id: u.id,
        username: u.username,
        uid: u.uid,
        email: u.email,
        firstName: u.firstName,
        lastName: u.lastName,
        enabled: u.enabled,
        attributes: structuredClone(u.attributes),
        groups: [...u.groups].sort(byCodeUnit),
        roles: [...u.roles].sort(byCodeUnit),
        linked: u.linked,
      })),
      groups: [...this.groups.values()]
        .sort((a, b) => byCodeUnit(a.gid, b.gid))
        .map(({ id, gid, displayName }) => ({ id, gid, displayName })),
      unmanagedUsernames: new Set(
        [...this.usernames].filter(([, uid]) => uid === null).map(([n]) => n),
      ),
      unmanagedEmails: new Set([...this.emails].filter(([, uid]) => uid === null).map(([e]) => e)),
      unmanagedGroupNames: new Set(this.unmanagedGroups),
    }
  }

  async createGroup(group: DesiredGroup): Promise<void> {
    this.write('createGroup', group.gid)
    if (this.groups.has(group.gid) || this.unmanagedGroups.has(group.gid)) {
      throw new AppError('CONFLICT', `Top level group named '${group.gid}' already exists.`)
    }
    this.groups.set(group.gid, { id: this.id('g'), ...group, members: new Set() })
  }

  async updateGroup(gid: string, displayName: string): Promise<void> {
    this.write('updateGroup', gid)
    this.group(gid).displayName = displayName
  }

  async deleteGroup(gid: string): Promise<void> {
    this.write('deleteGroup', gid)
    for (const uid of this.group(gid).members) {
      this.users.get(uid)?.groups.delete(gid)
    }
    this.groups.delete(gid)
  }

  async createUser(user: NewUser): Promise<void> {
    this.write('createUser', user.uid)
    const username = user.username.toLowerCase()
    if (this.users.has(user.uid) || this.usernames.has(username)) {
      throw new AppError('CONFLICT', 'User exists with same username')
    }
    const email = this.claimEmail(user.uid, null, user.email)
    this.usernames.set(username, user.uid)
    const { uid, firstName, lastName, enabled, attributes } = user
    const stored = { id: this.id('u'), uid, username, email, firstName, lastName, enabled }
    const rest = {
      attributes: structuredClone(attributes),
      groups: new Set<string>(),
      roles: new Set<string>(),
    }
    this.users.set(uid, { ...stored, ...rest, linked: false })
  }

  async updateUser(uid: string, patch: UserPatch): Promise<void> {
    this.write('updateUser', uid)
    const user = this.user(uid)
    if (patch.email !== undefined) {
      user.email = this.claimEmail(uid, user.email, patch.email)
    }
    user.firstName = patch.firstName ?? user.firstName
    user.lastName = patch.lastName ?? user.lastName
    for (const [name, values] of Object.entries(patch.attributes ?? {})) {
      if (values === null) {
        delete user.attributes[name]
      } else {
        user.attributes[name] = [...values]
      }
    }
  }

  async setEnabled(uid: string, enabled: boolean): Promise<void> {
    this.write('setEnabled', uid)
    this.user(uid).enabled = enabled
  }

  async deleteUser(uid: string): Promise<void> {
    this.write('deleteUser', uid)
    const user = this.user(uid)
    for (const gid of user.groups) {
      this.groups.get(gid)?.members.delete(uid)
    }
    this.usernames.delete(user.username)
    if (user.email !== null) {
      this.emails.delete(user.email)
    }
    this.users.delete(uid)
  }

  async linkIdentity(uid: string): Promise<void> {
    this.write('linkIdentity', uid)
    this.user(uid).linked = true
  }

  async addMember(uid: string, gid: string): Promise<void> {
    this.write('addMember', uid)
    const user = this.user(uid)
    this.group(gid).members.add(uid)
    user.groups.add(gid)
  }

  async removeMember(uid: string, gid: string): Promise<void> {
    this.write('removeMember', uid)
    this.user(uid).groups.delete(gid)
    this.groups.get(gid)?.members.delete(uid)
  }

  async grantRole(uid: string, role: string): Promise<void> {
    this.write('grantRole', uid)
    this.user(uid).roles.add(role)
  }

  async revokeRole(uid: string, role: string): Promise<void> {
    this.write('revokeRole', uid)
    this.user(uid).roles.delete(role)
  }

  private write(operation: WriterOperation, key: string): void {
    this.writes[operation] += 1
    const failure = this.failures.get(`${operation}:${key}`) ?? this.failures.get(`${operation}:*`)
    if (failure) {
      throw failure
    }
  }

  /** Moves `uid`'s email from `from` to `to`; returns the stored (lower-cased) address. */
  private claimEmail(uid: string, from: string | null, to: string | null): string | null {
    const email = to?.toLowerCase() ?? null
    if (email !== null && this.emails.has(email) && this.emails.get(email) !== uid) {
      throw new AppError('CONFLICT', 'User exists with same email')
    }
    if (from !== null) {
      this.emails.delete(from.toLowerCase())
    }
    if (email !== null) {
      this.emails.set(email, uid)
    }
    return email
  }

  private user(uid: string): StoredUser {
    const user = this.users.get(uid)
    if (!user) {
      throw new AppError('NOT_FOUND', `no managed user ${uid}`)
    }
    return user
  }

  private group(gid: string): StoredGroup {
    const group = this.groups.get(gid)
    if (!group) {
      throw new AppError('NOT_FOUND', `no managed group ${gid}`)
    }
    return group
  }

  private id(prefix: string): string {
    const id = `${prefix}-${String(this.nextId).padStart(6, '0')}`
    this.nextId += 1
    return id
  }
}
