import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type RoleRepresentation from '@keycloak/keycloak-admin-client/lib/defs/roleRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { toActualGroup, toActualUser } from './keycloak-reps.js'
import { type Actual, managedGid, managedUid } from './model.js'

/** Page size of every paged read. */
const PAGE = 500

export interface ReadOptions {
  admin: KcAdmin
  realm: string
  /** realm roles the sync grants and revokes */
  managedRoles: readonly string[]
  /** attributes the sync writes from Nextcloud profile fields */
  profileAttributes: readonly string[]
  /** identity provider users are linked to; none in password mode */
  idpAlias?: string
  /** the realm login's identity provider (Nextcloud), users are linked to as well */
  loginIdpAlias?: string
}

/** Every identity provider a managed user is to be linked to (uid as user id and name). */
export function linkAliases(opts: Pick<ReadOptions, 'idpAlias' | 'loginIdpAlias'>): string[] {
  return [opts.idpAlias, opts.loginIdpAlias].filter((a): a is string => a !== undefined)
}

/** What a read of the realm found: the planner's snapshot and the representations behind it. */
export interface RealmRead {
  actual: Actual
  /** managed users by uid */
  users: Map<string, UserRepresentation>
  /** managed groups by gid */
  groups: Map<string, GroupRepresentation>
}

/** Realm roles by name, read once per target. */
export class RoleCache {
  private readonly roles = new Map<string, RoleRepresentation>()

  constructor(private readonly opts: Pick<ReadOptions, 'admin' | 'realm'>) {}

  async get(name: string): Promise<RoleRepresentation | undefined> {
    let role = this.roles.get(name)
    if (!role) {
      role =
        (await kc(`read role ${name}`, () =>
          this.opts.admin.roles.findOneByName({ realm: this.opts.realm, name }),
        )) ?? undefined
      if (role) {
        this.roles.set(name, role)
      }
    }
    return role
  }
}

/**
 * Reads every managed user and group, their memberships, managed roles and identity links.
 * Unmarked users and groups come back only as names, for clash detection.
 */
export async function readManagedRealm(opts: ReadOptions, roles: RoleCache): Promise<RealmRead> {
  const { admin, realm } = opts
  const unmanagedUsernames = new Set<string>()
  const unmanagedEmails = new Set<string>()
  const unmanagedGroupNames = new Set<string>()
  const users = new Map<string, UserRepresentation>()
  const groups = new Map<string, GroupRepresentation>()
  for await (const rep of pages((first) =>
    admin.users.find({ realm, first, max: PAGE, briefRepresentation: false }),
  )) {
    const uid = managedUid(rep.attributes)
    if (uid !== null && rep.id) {
      users.set(uid, rep)
    } else {
      unmanagedUsernames.add(rep.username ?? '')
      if (rep.email) {
        unmanagedEmails.add(rep.email.toLowerCase())
      }
    }
  }
  for await (const rep of pages((first) =>
    admin.groups.find({ realm, first, max: PAGE, briefRepresentation: false }),
  )) {
    const gid = managedGid(rep.attributes)
    if (gid !== null && rep.id) {
      groups.set(gid, rep)
    } else {
      unmanagedGroupNames.add(rep.name ?? '')
    }
  }
  const uidById = new Map([...users].map(([uid, rep]) => [rep.id as string, uid]))
  const memberships = await readMemberships(opts, groups, uidById)
  const roleHolders = await readRoleHolders(opts, roles, uidById)
  const linked = await readLinked(opts, uidById)
  const actual: Actual = {
    users: [...users].map(([uid, rep]) =>
      toActualUser(uid, rep, {
        groups: memberships.get(uid) ?? [],
        roles: roleHolders.get(uid) ?? [],
        linked: linked === null || linked.has(uid),
        profileAttributes: opts.profileAttributes,
      }),
    ),
    groups: [...groups].map(([gid, rep]) => toActualGroup(gid, rep)),
    unmanagedUsernames,
    unmanagedEmails,
    unmanagedGroupNames,
  }
  return { actual, users, groups }
}

async function readMemberships(
  { admin, realm }: ReadOptions,
  groups: Map<string, GroupRepresentation>,
  uidById: Map<string, string>,
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>()
  for (const [gid, group] of groups) {
    for await (const member of pages((first) =>
      admin.groups.listMembers({
        realm,
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

async function readRoleHolders(
  { admin, realm, managedRoles }: ReadOptions,
  roles: RoleCache,
  uidById: Map<string, string>,
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>()
  for (const name of managedRoles) {
    const role = await roles.get(name)
    if (!role) {
      continue
    }
    for await (const holder of pages((first) =>
      admin.roles.findUsersWithRole({ realm, name, first, max: PAGE }),
    )) {
      const uid = uidById.get(holder.id ?? '')
      if (uid !== undefined) {
        result.set(uid, [...(result.get(uid) ?? []), name])
      }
    }
  }
  return result
}

/** The users linked to every alias of `linkAliases`; null when there is none to link to. */
async function readLinked(
  opts: ReadOptions,
  uidById: Map<string, string>,
): Promise<Set<string> | null> {
  const { admin, realm } = opts
  let linked: Set<string> | null = null
  for (const idpAlias of linkAliases(opts)) {
    const these = new Set<string>()
    for await (const rep of pages((first) =>
      admin.users.find({ realm, idpAlias, first, max: PAGE, briefRepresentation: true }),
    )) {
      const uid = uidById.get(rep.id ?? '')
      if (uid !== undefined && (linked === null || linked.has(uid))) {
        these.add(uid)
      }
    }
    linked = these
  }
  return linked
}

async function* pages<T>(fetchPage: (first: number) => Promise<T[]>): AsyncGenerator<T> {
  for (let first = 0; ; first += PAGE) {
    const page = await kc('read realm', () => fetchPage(first))
    yield* page
    if (page.length < PAGE) {
      return
    }
  }
}
