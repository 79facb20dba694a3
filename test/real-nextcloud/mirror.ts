import type { KcAdmin } from '../../src/keycloak/admin.js'
import type { RealNextcloud } from './nextcloud.js'

/**
 * The realm as a mirror of Nextcloud, read from both sides over their own APIs (Nextcloud's
 * provisioning API as the admin, Keycloak's admin API), and compared field by field.
 */
export interface MirroredUser {
  username: string
  email: string | null
  firstName: string
  lastName: string
  enabled: boolean
  groups: string[]
}

export interface MirroredGroup {
  displayName: string
  /** uids */
  members: string[]
}

export interface Mirror {
  users: Map<string, MirroredUser>
  groups: Map<string, MirroredGroup>
}

interface NcUser {
  id: string
  displayname?: string
  email?: string | null
  enabled?: boolean
  groups?: string[]
}

const sorted = (xs: Iterable<string>) => [...xs].sort()

/**
 * A Nextcloud user as the realm keeps it: the uid lower-cased as username (Keycloak lower-cases
 * usernames; the exact uid is in the marker), the email lower-cased, the display name's first word
 * as first name and the rest (or that word again) as last name.
 */
export function expectedUser(u: NcUser): MirroredUser {
  const words = (u.displayname ?? '').trim().split(/\s+/).filter(Boolean)
  const [first = u.id, ...rest] = words
  return {
    username: u.id.toLowerCase(),
    email: u.email ? u.email.toLowerCase() : null,
    firstName: first,
    lastName: rest.length > 0 ? rest.join(' ') : first,
    enabled: u.enabled !== false,
    groups: sorted(u.groups ?? []),
  }
}

/** Nextcloud's users and groups as the realm should have them. */
export async function nextcloudSide(nc: RealNextcloud): Promise<Mirror> {
  const { users } = await nc.ocs<{ users: Record<string, NcUser> }>(
    '/cloud/users/details?limit=1000',
  )
  const { groups } = await nc.ocs<{ groups: { id: string; displayname: string }[] }>(
    '/cloud/groups/details?limit=1000',
  )
  const mirror: Mirror = { users: new Map(), groups: new Map() }
  for (const u of Object.values(users)) {
    mirror.users.set(u.id, expectedUser(u))
  }
  for (const g of groups) {
    const members = Object.values(users)
      .filter((u) => u.groups?.includes(g.id))
      .map((u) => u.id)
    mirror.groups.set(g.id, { displayName: g.displayname || g.id, members: sorted(members) })
  }
  return mirror
}

export interface KeycloakSide extends Mirror {
  /** Keycloak user ids by uid */
  ids: Map<string, string>
}

/** The managed users and groups of `realm`, by Nextcloud uid and gid. */
export async function keycloakSide(admin: KcAdmin, realm: string): Promise<KeycloakSide> {
  const side: KeycloakSide = { users: new Map(), groups: new Map(), ids: new Map() }
  const users = await admin.users.find({ realm, max: 1000, briefRepresentation: false })
  const uidOf = new Map<string, string>()
  for (const u of users) {
    if (u.attributes?.nextcloud_managed?.[0] !== 'true') {
      continue
    }
    const uid = String(u.attributes?.nextcloud_uid?.[0])
    uidOf.set(String(u.id), uid)
    side.ids.set(uid, String(u.id))
    side.users.set(uid, {
      username: String(u.username),
      email: u.email ?? null,
      firstName: u.firstName ?? '',
      lastName: u.lastName ?? '',
      enabled: u.enabled === true,
      groups: [],
    })
  }
  const groups = await admin.groups.find({ realm, max: 1000, briefRepresentation: false })
  for (const g of groups) {
    if (g.attributes?.nextcloud_managed?.[0] !== 'true') {
      continue
    }
    const gid = String(g.name)
    const members = await admin.groups.listMembers({ realm, id: String(g.id), max: 1000 })
    const uids = members.map((m) => uidOf.get(String(m.id)) ?? `unmanaged:${m.username}`)
    side.groups.set(gid, {
      displayName: String(g.attributes?.nextcloud_display_name?.[0]),
      members: sorted(uids),
    })
    for (const uid of uids) {
      side.users.get(uid)?.groups.push(gid)
    }
  }
  for (const user of side.users.values()) {
    user.groups.sort()
  }
  return side
}

/**
 * Every difference between Nextcloud and the realm, one line each; none when the realm mirrors
 * Nextcloud. A managed user Nextcloud no longer has must be disabled (the default deletion
 * policy); the sync leaves its memberships alone, so group members are compared among the users
 * Nextcloud has.
 */
export function differences(want: Mirror, have: Mirror): string[] {
  const out: string[] = []
  for (const [uid, user] of want.users) {
    const got = have.users.get(uid)
    if (!got) {
      out.push(`user ${JSON.stringify(uid)} is missing in Keycloak`)
      continue
    }
    for (const key of Object.keys(user) as (keyof MirroredUser)[]) {
      if (JSON.stringify(user[key]) !== JSON.stringify(got[key])) {
        out.push(
          `user ${JSON.stringify(uid)}: ${key} is ${JSON.stringify(got[key])}, Nextcloud says ${JSON.stringify(user[key])}`,
        )
      }
    }
  }
  for (const [uid, got] of have.users) {
    if (!want.users.has(uid) && got.enabled) {
      out.push(`user ${JSON.stringify(uid)} is gone from Nextcloud but enabled in Keycloak`)
    }
  }
  for (const [gid, group] of want.groups) {
    const found = have.groups.get(gid)
    const got = found && {
      ...found,
      members: found.members.filter((uid) => want.users.has(uid)),
    }
    if (!got) {
      out.push(`group ${JSON.stringify(gid)} is missing in Keycloak`)
    } else if (JSON.stringify(got) !== JSON.stringify(group)) {
      out.push(
        `group ${JSON.stringify(gid)} is ${JSON.stringify(got)}, Nextcloud says ${JSON.stringify(group)}`,
      )
    }
  }
  for (const gid of have.groups.keys()) {
    if (!want.groups.has(gid)) {
      out.push(`group ${JSON.stringify(gid)} is gone from Nextcloud but still in Keycloak`)
    }
  }
  return out
}
