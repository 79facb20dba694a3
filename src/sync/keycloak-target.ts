import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { AppError } from '../errors.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { federatedIdentityRep } from '../keycloak/jwt-grant.js'
import type { BulkCreator, BulkWriter, NewMember } from './apply.js'
import {
  addedIds,
  BULK_BATCH,
  fitForBulk,
  groupPath,
  importGroupRep,
  importUserRep,
} from './keycloak-bulk.js'
import { KeycloakChangeFeed } from './keycloak-changes.js'
import { linkAliases, RoleCache, readManagedRealm } from './keycloak-read.js'
import { newGroupRep, newUserRep, renamedGroupRep, userChange } from './keycloak-reps.js'
import type { Actual, DesiredGroup, NewUser, UserPatch } from './model.js'

export interface KeycloakTargetOptions {
  admin: KcAdmin
  realm: string
  /** realm roles the sync grants and revokes (the values of the group → role mappings) */
  managedRoles: readonly string[]
  /** attributes the sync writes from Nextcloud profile fields */
  profileAttributes: readonly string[]
  /** identity provider users are linked to for the JWT grant; none in password mode */
  idpAlias?: string
  /** the realm login's identity provider (Nextcloud), users are linked to as well */
  loginIdpAlias?: string
  /** users or groups per partial import; 0 creates everything one by one */
  bulkBatch?: number
}

/** Keycloak writes made through a target, by operation: what a no-op run must keep at zero. */
export type WriteCounts = Record<string, number>

/**
 * The Keycloak side of the sync: reads the part of the realm the sidecar manages into an `Actual`
 * snapshot (keycloak-read.ts) and writes changes addressed by Nextcloud uid/gid, resolving
 * Keycloak ids from what it read or created. Unmarked users and groups are only ever seen as
 * names, so nothing here can change them.
 */
export class KeycloakTarget implements BulkWriter {
  readonly writes: WriteCounts = {}
  private users = new Map<string, UserRepresentation>()
  private groups = new Map<string, GroupRepresentation>()
  private readonly roles: RoleCache
  /** users this target created already linked, so their link-identity change needs no request */
  private readonly linked = new Set<string>()
  /** `uid\ngid` of users this target created already in the group: their add-member is done */
  private readonly joined = new Set<string>()
  /**
   * Users this target created, kept in `users` by id and username only: their whole
   * representation (a PUT in the same run needs it) is made again from this when asked for.
   * Keeping each one sent held ~0.8 kB per user until the run ended (8 MiB at 10 000 users).
   */
  private readonly created = new Map<string, NewUser>()
  private defaultRole: string | undefined
  private readonly realm: string
  readonly bulk: BulkCreator | undefined

  constructor(private readonly opts: KeycloakTargetOptions) {
    this.realm = opts.realm
    this.roles = new RoleCache(opts)
    const batchSize = opts.bulkBatch ?? BULK_BATCH
    this.bulk =
      batchSize > 0
        ? {
            batchSize,
            createGroups: (groups) => this.importGroups(groups),
            createUsers: (users) => this.importUsers(users),
          }
        : undefined
  }

  /** Reads every managed user and group, their memberships, managed roles and identity links. */
  async snapshot(): Promise<Actual> {
    const read = await readManagedRealm(this.opts, this.roles)
    this.users = read.users
    this.created.clear()
    this.groups = read.groups
    return read.actual
  }

  private changeFeed: KeycloakChangeFeed | undefined
  /** uids known from the stored state by id only: read before their first PUT */
  private readonly primed = new Set<string>()

  /** The realm's admin events and single objects by id, for runs on the stored state. */
  get feed(): KeycloakChangeFeed {
    this.changeFeed ??= new KeycloakChangeFeed(this.opts)
    return this.changeFeed
  }

  /** Makes the objects of `actual` (the stored state) writable without a snapshot. */
  prime(actual: Actual): void {
    this.users = new Map(actual.users.map((u) => [u.uid, { id: u.id, username: u.username }]))
    this.created.clear()
    this.groups = new Map(actual.groups.map((g) => [g.gid, { ...newGroupRep(g), id: g.id }]))
    this.primed.clear()
    for (const user of actual.users) {
      this.primed.add(user.uid)
      if (user.linked) {
        this.linked.add(user.uid)
      }
    }
  }

  keycloakId(kind: 'user' | 'group', key: string): string | undefined {
    return (kind === 'user' ? this.users.get(key) : this.groups.get(key))?.id
  }

  /** The whole representation of a user (a PUT needs it), read first when only primed. */
  private async fullRep(uid: string): Promise<UserRepresentation & { id: string }> {
    const rep = this.userRep(uid)
    const made = this.created.get(uid)
    if (made) {
      const sent = { ...newUserRep(made, linkAliases(this.opts)), id: rep.id }
      this.users.set(uid, sent)
      this.created.delete(uid)
      return sent
    }
    if (!this.primed.has(uid)) {
      return rep
    }
    const read = await kc(`read user ${uid}`, () =>
      this.opts.admin.users.findOne({ realm: this.realm, id: rep.id }),
    )
    if (!read?.id) {
      throw new AppError('NOT_FOUND', `no managed Keycloak user for Nextcloud user "${uid}"`)
    }
    this.users.set(uid, read)
    this.primed.delete(uid)
    return read as UserRepresentation & { id: string }
  }

  private count(op: string): void {
    this.writes[op] = (this.writes[op] ?? 0) + 1
  }

  private userRep(uid: string): UserRepresentation & { id: string } {
    const rep = this.users.get(uid)
    if (!rep?.id) {
      throw new AppError('NOT_FOUND', `no managed Keycloak user for Nextcloud user "${uid}"`)
    }
    return rep as UserRepresentation & { id: string }
  }

  private groupId(gid: string): string {
    const id = this.groups.get(gid)?.id
    if (!id) {
      throw new AppError('NOT_FOUND', `no managed Keycloak group for Nextcloud group "${gid}"`)
    }
    return id
  }

  /** PUTs of a user in flight, so a second one starts from what the first wrote */
  private readonly userWrites = new Map<string, Promise<void>>()

  /**
   * PUT of the whole representation: Keycloak treats a partial one as clearing what it omits. Two
   * changes of one user (an update and an enable in the same phase) run one after the other, each
   * on the representation the other left; in parallel the later PUT would undo the earlier.
   */
  private async putUser(
    uid: string,
    change: (current: UserRepresentation) => Partial<UserRepresentation>,
    what: string,
  ) {
    const previous = this.userWrites.get(uid) ?? Promise.resolve()
    const write = previous
      .catch(() => undefined)
      .then(async () => {
        const current = await this.fullRep(uid)
        const next = { ...current, ...change(current) }
        this.count('updateUser')
        await kc(what, () =>
          this.opts.admin.users.update({ realm: this.realm, id: current.id }, next),
        )
        this.users.set(uid, next)
      })
    this.userWrites.set(uid, write)
    try {
      await write
    } finally {
      if (this.userWrites.get(uid) === write) {
        this.userWrites.delete(uid)
      }
    }
  }

  async createGroup(group: DesiredGroup): Promise<void> {
    const rep = newGroupRep(group)
    this.count('createGroup')
    const { id } = await kc(`create group ${group.gid}`, () =>
      this.opts.admin.groups.create({ realm: this.realm, ...rep }),
    )
    this.groups.set(group.gid, { ...rep, id })
  }

  /**
   * Creates `groups` in one partial import; returns the gids it created. Groups it cannot take,
   * names taken, or a refused request leave theirs to `createGroup`, which reports each error.
   */
  private async importGroups(groups: readonly DesiredGroup[]): Promise<Set<string>> {
    const reps = groups.flatMap((group) => {
      const path = groupPath(group.gid)
      return path === null ? [] : [{ group, rep: newGroupRep(group), path }]
    })
    if (reps.length === 0) {
      return new Set()
    }
    this.count('importGroups')
    const answer = await kc(`import ${reps.length} groups`, () =>
      this.opts.admin.realms.partialImport({
        realm: this.realm,
        rep: {
          ifResourceExists: 'SKIP',
          groups: reps.map(({ rep, path }) => importGroupRep(rep, path)),
        },
      }),
    ).catch(() => undefined)
    const ids = addedIds(answer?.results, 'GROUP')
    const created = new Set<string>()
    for (const { group, rep } of reps) {
      const id = ids.get(group.gid)
      if (id !== undefined) {
        this.groups.set(group.gid, { ...rep, id })
        created.add(group.gid)
      }
    }
    return created
  }

  async updateGroup(gid: string, displayName: string): Promise<void> {
    const id = this.groupId(gid)
    const next = renamedGroupRep(this.groups.get(gid) ?? {}, displayName)
    this.count('updateGroup')
    await kc(`update group ${gid}`, () =>
      this.opts.admin.groups.update({ realm: this.realm, id }, next),
    )
    this.groups.set(gid, next)
  }

  async deleteGroup(gid: string): Promise<void> {
    const id = this.groupId(gid)
    this.count('deleteGroup')
    await kc(`delete group ${gid}`, () => this.opts.admin.groups.del({ realm: this.realm, id }))
    this.groups.delete(gid)
  }

  async createUser(user: NewUser): Promise<void> {
    // Linked in the same request (Keycloak accepts federatedIdentities on create).
    const rep = newUserRep(user, linkAliases(this.opts))
    this.count('createUser')
    const { id } = await kc(`create user ${user.uid}`, () =>
      this.opts.admin.users.create({ realm: this.realm, ...rep }),
    )
    this.rememberCreated(user, id)
    if (linkAliases(this.opts).length > 0) {
      this.linked.add(user.uid)
    }
  }

  private rememberCreated(user: NewUser, id: string): void {
    this.users.set(user.uid, { id, username: user.username })
    this.created.set(user.uid, user)
  }

  /**
   * Creates `members` in one partial import, each linked and in its groups as `createUser` and
   * `addMember` would leave it; returns the uids it created. Users the realm's profile might refuse
   * (the import does not check them), usernames taken, or a refused request leave theirs to
   * `createUser`, which reports each error; memberships it cannot name stay with `addMember`.
   */
  private async importUsers(members: readonly NewMember[]): Promise<Set<string>> {
    const fit = members.filter((m) => fitForBulk(m.user))
    if (fit.length === 0) {
      return new Set()
    }
    const defaultRole = await this.defaultRoleName().catch(() => undefined)
    if (defaultRole === undefined) {
      return new Set()
    }
    const reps = fit.map(({ user, groups }) => {
      const joins = groups.flatMap((gid) => {
        const path = groupPath(gid)
        return path !== null && this.groups.get(gid)?.id ? [{ gid, path }] : []
      })
      return { user, rep: newUserRep(user, linkAliases(this.opts)), joins }
    })
    this.count('importUsers')
    const answer = await kc(`import ${reps.length} users`, () =>
      this.opts.admin.realms.partialImport({
        realm: this.realm,
        rep: {
          ifResourceExists: 'SKIP',
          users: reps.map(({ rep, joins }) =>
            importUserRep(
              rep,
              joins.map((j) => j.path),
              defaultRole,
            ),
          ),
        },
      }),
    ).catch(() => undefined)
    const ids = addedIds(answer?.results, 'USER')
    const created = new Set<string>()
    for (const { user, joins } of reps) {
      const id = ids.get(user.username)
      if (id === undefined) {
        continue
      }
      this.rememberCreated(user, id)
      if (linkAliases(this.opts).length > 0) {
        this.linked.add(user.uid)
      }
      for (const { gid } of joins) {
        this.joined.add(`${user.uid}\n${gid}`)
      }
      created.add(user.uid)
    }
    return created
  }

  /** The realm's default role, which the per-user create grants and the import does not. */
  private async defaultRoleName(): Promise<string> {
    if (this.defaultRole === undefined) {
      const realm = await kc('read realm', () =>
        this.opts.admin.realms.findOne({ realm: this.realm }),
      )
      const name = realm?.defaultRole?.name
      if (!name) {
        throw new AppError('NOT_FOUND', `realm "${this.realm}" has no default role`)
      }
      this.defaultRole = name
    }
    return this.defaultRole
  }

  async updateUser(uid: string, patch: UserPatch): Promise<void> {
    await this.putUser(uid, (current) => userChange(current, patch), `update user ${uid}`)
  }

  async setEnabled(uid: string, enabled: boolean): Promise<void> {
    await this.putUser(uid, () => ({ enabled }), `${enabled ? 'enable' : 'disable'} user ${uid}`)
  }

  async deleteUser(uid: string): Promise<void> {
    const { id } = this.userRep(uid)
    this.count('deleteUser')
    await kc(`delete user ${uid}`, () => this.opts.admin.users.del({ realm: this.realm, id }))
    this.users.delete(uid)
    this.created.delete(uid)
  }

  async linkIdentity(uid: string): Promise<void> {
    const aliases = linkAliases(this.opts)
    if (aliases.length === 0 || this.linked.has(uid)) {
      return
    }
    const { id } = this.userRep(uid)
    // With two providers one link may be there already (a realm from before the second).
    const present =
      aliases.length === 1
        ? []
        : await kc(`read links of ${uid}`, () =>
            this.opts.admin.users.listFederatedIdentities({ realm: this.realm, id }),
          )
    for (const alias of aliases) {
      if (present.some((l) => l.identityProvider === alias)) {
        continue
      }
      this.count('linkIdentity')
      await kc(`link user ${uid}`, () =>
        this.opts.admin.users.addToFederatedIdentity({
          realm: this.realm,
          id,
          federatedIdentityId: alias,
          federatedIdentity: federatedIdentityRep(uid, alias),
        }),
      )
    }
    this.linked.add(uid)
  }

  async addMember(uid: string, gid: string): Promise<void> {
    if (this.joined.has(`${uid}\n${gid}`)) {
      return
    }
    const { id } = this.userRep(uid)
    const groupId = this.groupId(gid)
    this.count('addMember')
    await kc(`add ${uid} to ${gid}`, () =>
      this.opts.admin.users.addToGroup({ realm: this.realm, id, groupId }),
    )
  }

  async removeMember(uid: string, gid: string): Promise<void> {
    const { id } = this.userRep(uid)
    const groupId = this.groupId(gid)
    this.count('removeMember')
    await kc(`remove ${uid} from ${gid}`, () =>
      this.opts.admin.users.delFromGroup({ realm: this.realm, id, groupId }),
    )
  }

  async grantRole(uid: string, role: string): Promise<void> {
    await this.roleMapping(uid, role, 'grant')
  }

  async revokeRole(uid: string, role: string): Promise<void> {
    await this.roleMapping(uid, role, 'revoke')
  }

  private async roleMapping(uid: string, name: string, op: 'grant' | 'revoke') {
    const { id } = this.userRep(uid)
    const role = await this.roles.get(name)
    if (!role?.id) {
      throw new AppError('NOT_FOUND', `realm role "${name}" does not exist`)
    }
    const roles = [{ id: role.id, name }]
    this.count(`${op}Role`)
    await kc(`${op} ${name} for ${uid}`, () =>
      op === 'grant'
        ? this.opts.admin.users.addRealmRoleMappings({ realm: this.realm, id, roles })
        : this.opts.admin.users.delRealmRoleMappings({ realm: this.realm, id, roles }),
    )
  }
}
