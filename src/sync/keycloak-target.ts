import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type RoleRepresentation from '@keycloak/keycloak-admin-client/lib/defs/roleRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { AppError } from '../errors.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { federatedIdentityRep } from '../keycloak/jwt-grant.js'
import type { DirectoryWriter } from './apply.js'
import {
  type Actual,
  type ActualGroup,
  type ActualUser,
  type Attributes,
  byCodeUnit,
  type DesiredGroup,
  GROUP_DISPLAY_NAME_ATTRIBUTE,
  groupMarkers,
  managedGid,
  managedUid,
  type NewUser,
  RESERVED_ATTRIBUTES,
  type UserPatch,
  userMarkers,
} from './model.js'

const PAGE = 500

export interface KeycloakTargetOptions {
  admin: KcAdmin
  realm: string
  /** realm roles the sync grants and revokes (the values of the group → role mappings) */
  managedRoles: readonly string[]
  /** attributes the sync writes from Nextcloud profile fields */
  profileAttributes: readonly string[]
  /** identity provider users are linked to for the JWT grant; none in password mode */
  idpAlias?: string
}

/** Keycloak writes made through a target, by operation: what a no-op run must keep at zero. */
export type WriteCounts = Record<string, number>

/**
 * The Keycloak side of the sync: reads the part of the realm the sidecar manages into an `Actual`
 * snapshot and writes changes addressed by Nextcloud uid/gid, resolving Keycloak ids from what it
 * read or created. Unmarked users and groups are only ever seen as names, so nothing here can
 * change them.
 */
export class KeycloakTarget implements DirectoryWriter {
  readonly writes: WriteCounts = {}
  private readonly users = new Map<string, UserRepresentation>()
  private readonly groups = new Map<string, GroupRepresentation>()
  private readonly roles = new Map<string, RoleRepresentation>()
  /** users this target created already linked, so their link-identity change needs no request */
  private readonly linked = new Set<string>()
  private readonly realm: string

  constructor(private readonly opts: KeycloakTargetOptions) {
    this.realm = opts.realm
  }

  /** Reads every managed user and group, their memberships, managed roles and identity links. */
  async snapshot(): Promise<Actual> {
    const unmanagedUsernames = new Set<string>()
    const unmanagedEmails = new Set<string>()
    const unmanagedGroupNames = new Set<string>()
    this.users.clear()
    this.groups.clear()
    for await (const rep of this.pages((first) =>
      this.opts.admin.users.find({
        realm: this.realm,
        first,
        max: PAGE,
        briefRepresentation: false,
      }),
    )) {
      const uid = managedUid(rep.attributes)
      if (uid !== null && rep.id) {
        this.users.set(uid, rep)
      } else {
        unmanagedUsernames.add(rep.username ?? '')
        if (rep.email) {
          unmanagedEmails.add(rep.email.toLowerCase())
        }
      }
    }
    for await (const rep of this.pages((first) =>
      this.opts.admin.groups.find({
        realm: this.realm,
        first,
        max: PAGE,
        briefRepresentation: false,
      }),
    )) {
      const gid = managedGid(rep.attributes)
      if (gid !== null && rep.id) {
        this.groups.set(gid, rep)
      } else {
        unmanagedGroupNames.add(rep.name ?? '')
      }
    }
    const uidById = new Map([...this.users].map(([uid, rep]) => [rep.id as string, uid]))
    const memberships = await this.readMemberships(uidById)
    const roleHolders = await this.readRoleHolders(uidById)
    const linked = await this.readLinked(uidById)
    const users: ActualUser[] = [...this.users].map(([uid, rep]) => ({
      id: rep.id as string,
      uid,
      username: rep.username ?? '',
      email: rep.email ? rep.email.toLowerCase() : null,
      firstName: rep.firstName ?? '',
      lastName: rep.lastName ?? '',
      enabled: rep.enabled !== false,
      attributes: this.syncedAttributes(rep.attributes),
      groups: (memberships.get(uid) ?? []).sort(byCodeUnit),
      roles: (roleHolders.get(uid) ?? []).sort(byCodeUnit),
      linked: this.opts.idpAlias === undefined || linked.has(uid),
    }))
    const groups: ActualGroup[] = [...this.groups].map(([gid, rep]) => ({
      id: rep.id as string,
      gid,
      displayName: rep.attributes?.[GROUP_DISPLAY_NAME_ATTRIBUTE]?.[0] ?? rep.name ?? gid,
    }))
    return { users, groups, unmanagedUsernames, unmanagedEmails, unmanagedGroupNames }
  }

  /** The attributes the sync owns, as the planner compares them (markers excluded). */
  private syncedAttributes(attributes: Record<string, unknown> | undefined): Attributes {
    const result: Attributes = {}
    for (const name of this.opts.profileAttributes) {
      const value = attributes?.[name]
      if (Array.isArray(value) && value.length > 0 && !RESERVED_ATTRIBUTES.has(name)) {
        result[name] = value.map(String)
      }
    }
    return result
  }

  private async readMemberships(uidById: Map<string, string>): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>()
    for (const [gid, group] of this.groups) {
      for await (const member of this.pages((first) =>
        this.opts.admin.groups.listMembers({
          realm: this.realm,
          id: group.id as string,
          first,
          max: PAGE,
          briefRepresentation: true,
        }),
      )) {
        const uid = uidById.get(member.id ?? '')
        if (uid !== undefined) {
          result.set(uid, [...(result.get(uid) ?? []), gid])
        }
      }
    }
    return result
  }

  private async readRoleHolders(uidById: Map<string, string>): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>()
    for (const name of this.opts.managedRoles) {
      const role = await this.role(name)
      if (!role) {
        continue
      }
      for await (const holder of this.pages((first) =>
        this.opts.admin.roles.findUsersWithRole({ realm: this.realm, name, first, max: PAGE }),
      )) {
        const uid = uidById.get(holder.id ?? '')
        if (uid !== undefined) {
          result.set(uid, [...(result.get(uid) ?? []), name])
        }
      }
    }
    return result
  }

  private async readLinked(uidById: Map<string, string>): Promise<Set<string>> {
    const linked = new Set<string>()
    const alias = this.opts.idpAlias
    if (alias === undefined) {
      return linked
    }
    for await (const rep of this.pages((first) =>
      this.opts.admin.users.find({
        realm: this.realm,
        idpAlias: alias,
        first,
        max: PAGE,
        briefRepresentation: true,
      }),
    )) {
      const uid = uidById.get(rep.id ?? '')
      if (uid !== undefined) {
        linked.add(uid)
      }
    }
    return linked
  }

  private async *pages<T>(fetchPage: (first: number) => Promise<T[]>): AsyncGenerator<T> {
    for (let first = 0; ; first += PAGE) {
      const page = await kc('read realm', () => fetchPage(first))
      yield* page
      if (page.length < PAGE) {
        return
      }
    }
  }

  private async role(name: string): Promise<RoleRepresentation | undefined> {
    let role = this.roles.get(name)
    if (!role) {
      role =
        (await kc(`read role ${name}`, () =>
          this.opts.admin.roles.findOneByName({ realm: this.realm, name }),
        )) ?? undefined
      if (role) {
        this.roles.set(name, role)
      }
    }
    return role
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

  /** PUT of the whole representation: Keycloak treats a partial one as clearing what it omits. */
  private async putUser(uid: string, change: Partial<UserRepresentation>, what: string) {
    const current = this.userRep(uid)
    const next = { ...current, ...change }
    this.count('updateUser')
    await kc(what, () => this.opts.admin.users.update({ realm: this.realm, id: current.id }, next))
    this.users.set(uid, next)
  }

  async createGroup(group: DesiredGroup): Promise<void> {
    const rep: GroupRepresentation = { name: group.gid, attributes: groupMarkers(group) }
    this.count('createGroup')
    const { id } = await kc(`create group ${group.gid}`, () =>
      this.opts.admin.groups.create({ realm: this.realm, ...rep }),
    )
    this.groups.set(group.gid, { ...rep, id })
  }

  async updateGroup(gid: string, displayName: string): Promise<void> {
    const id = this.groupId(gid)
    const current = this.groups.get(gid) ?? {}
    const next: GroupRepresentation = {
      ...current,
      attributes: { ...current.attributes, [GROUP_DISPLAY_NAME_ATTRIBUTE]: [displayName] },
    }
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
    const rep: UserRepresentation = {
      username: user.username,
      enabled: user.enabled,
      firstName: user.firstName,
      lastName: user.lastName,
      email: user.email ?? undefined,
      emailVerified: user.email !== null,
      attributes: { ...user.attributes, ...userMarkers(user.uid) },
      requiredActions: [],
      // Linked in the same request (Keycloak accepts federatedIdentities on create): the plan's
      // link-identity change for this user then costs no second request.
      ...(this.opts.idpAlias === undefined
        ? {}
        : { federatedIdentities: [federatedIdentityRep(user.uid, this.opts.idpAlias)] }),
    }
    this.count('createUser')
    const { id } = await kc(`create user ${user.uid}`, () =>
      this.opts.admin.users.create({ realm: this.realm, ...rep }),
    )
    this.users.set(user.uid, { ...rep, id })
    if (this.opts.idpAlias !== undefined) {
      this.linked.add(user.uid)
    }
  }

  async updateUser(uid: string, patch: UserPatch): Promise<void> {
    const current = this.userRep(uid)
    const change: Partial<UserRepresentation> = {}
    if (patch.firstName !== undefined) {
      change.firstName = patch.firstName
    }
    if (patch.lastName !== undefined) {
      change.lastName = patch.lastName
    }
    if (patch.email !== undefined) {
      change.email = patch.email ?? ''
      change.emailVerified = patch.email !== null
    }
    if (patch.attributes !== undefined) {
      const attributes: Record<string, unknown> = { ...current.attributes }
      for (const [name, value] of Object.entries(patch.attributes)) {
        if (value === null) {
          delete attributes[name]
        } else {
          attributes[name] = value
        }
      }
      change.attributes = attributes
    }
    await this.putUser(uid, change, `update user ${uid}`)
  }

  async setEnabled(uid: string, enabled: boolean): Promise<void> {
    await this.putUser(uid, { enabled }, `${enabled ? 'enable' : 'disable'} user ${uid}`)
  }

  async deleteUser(uid: string): Promise<void> {
    const { id } = this.userRep(uid)
    this.count('deleteUser')
    await kc(`delete user ${uid}`, () => this.opts.admin.users.del({ realm: this.realm, id }))
    this.users.delete(uid)
  }

  async linkIdentity(uid: string): Promise<void> {
    const alias = this.opts.idpAlias
    if (alias === undefined || this.linked.has(uid)) {
      return
    }
    const { id } = this.userRep(uid)
    this.count('linkIdentity')
    await kc(`link user ${uid}`, () =>
      this.opts.admin.users.addToFederatedIdentity({
        realm: this.realm,
        id,
        federatedIdentityId: alias,
        federatedIdentity: federatedIdentityRep(uid, alias),
      }),
    )
    this.linked.add(uid)
  }

  async addMember(uid: string, gid: string): Promise<void> {
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
    const role = await this.role(name)
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
