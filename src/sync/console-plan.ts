import type { ProfileSpec } from '../keycloak/user-profile.js'
import { byCodeUnit, NEXTCLOUD_UID_PATTERN, splitDisplayName, UID_ATTRIBUTE } from './model.js'

/**
 * Console identities: the master-realm users through whom Nextcloud admins open Keycloak's admin
 * console as themselves. This part decides (who gets which identity and roles); console-admins.ts
 * reads and writes.
 */

/**
 * Master-realm attribute that marks a console identity as ours; its value is the synced realm, so
 * two apps sharing one Keycloak (or test realms) never take each other's identities. A master user
 * without it (the app's service account, a break-glass admin) is never changed.
 */
export const CONSOLE_ATTRIBUTE = 'nextcloud_console'

/** Nextcloud's admin group: its members administer the whole Keycloak. */
export const NEXTCLOUD_ADMIN_GROUP = 'admin'

/** The master realm role a Nextcloud admin gets: every realm, master included. */
export const CONSOLE_ADMIN_ROLE = 'admin'

/**
 * The roles a member of a console group gets, on the synced realm's management client in master
 * (`<realm>-realm`): they administer that realm's users, groups, clients, login and events in the
 * console, and nothing in master or another realm. Left out: `impersonation` (acting as a user in
 * their apps) and `create-client` (implied by manage-clients).
 */
export const CONSOLE_REALM_ROLES: readonly string[] = [
  'manage-authorization',
  'manage-clients',
  'manage-events',
  'manage-identity-providers',
  'manage-realm',
  'manage-users',
  'query-clients',
  'query-groups',
  'query-realms',
  'query-users',
  'view-authorization',
  'view-clients',
  'view-events',
  'view-identity-providers',
  'view-realm',
  'view-users',
]

/** The client in master whose roles administer `realm`. */
export function realmManagementClient(realm: string): string {
  return `${realm}-realm`
}

/**
 * What the master realm's user profile must declare so Keycloak keeps our attributes, and
 * usernames every Nextcloud uid fits (Keycloak's defaults refuse "jo" or "o'neil").
 */
export function consoleProfile(): ProfileSpec {
  return {
    usernamePattern: NEXTCLOUD_UID_PATTERN,
    markerAttributes: [CONSOLE_ATTRIBUTE, UID_ATTRIBUTE],
    profileAttributes: [],
  }
}

/** A Nextcloud user as the reconciler reads them (user details). */
export interface ConsoleCandidate {
  id: string
  /** absent: Nextcloud did not say (taken as enabled) */
  enabled?: boolean
  displayname: string
  email: string | null
  groups: readonly string[]
}

/** `admin`: master role admin; `realm`: the synced realm's management roles only. */
export type ConsoleGrant = 'admin' | 'realm'

export interface ConsoleRoles {
  /** master realm roles, of CONSOLE_ADMIN_ROLE */
  realm: string[]
  /** roles of the synced realm's management client, of CONSOLE_REALM_ROLES */
  client: string[]
}

export interface DesiredIdentity {
  uid: string
  /** Keycloak lowercases usernames */
  username: string
  enabled: boolean
  email: string | null
  firstName: string
  lastName: string
  grant: ConsoleGrant
}

/** A marked master user, with the roles of ours it holds and its links to the provider. */
export interface ActualIdentity {
  id: string
  uid: string
  username: string
  enabled: boolean
  email: string | null
  firstName: string
  lastName: string
  /** user ids it is linked to at the identity provider nextcloud */
  links: string[]
  roles: ConsoleRoles
}

export type ConsoleStep =
  | { kind: 'create'; identity: DesiredIdentity; roles: ConsoleRoles }
  | { kind: 'update'; id: string; identity: DesiredIdentity }
  | { kind: 'link'; id: string; uid: string; stale: string[] }
  | { kind: 'grant'; id: string; uid: string; roles: ConsoleRoles }
  | { kind: 'revoke'; id: string; uid: string; roles: ConsoleRoles }
  | { kind: 'delete'; id: string; uid: string }

export interface ConsolePlan {
  steps: ConsoleStep[]
  /** desired identities left out, and why (a master user of that name that is not ours) */
  warnings: string[]
}

/** The roles each grant carries: exactly these of ours, no others of ours. */
export function rolesOf(grant: ConsoleGrant): ConsoleRoles {
  return grant === 'admin'
    ? { realm: [CONSOLE_ADMIN_ROLE], client: [] }
    : { realm: [], client: [...CONSOLE_REALM_ROLES] }
}

/**
 * Who gets a console identity: every Nextcloud user in `admin` (grant admin) or in a group of
 * `consoleGroups` (grant realm), disabled ones too (their identity is disabled, not removed).
 */
export function desiredIdentities(
  users: readonly ConsoleCandidate[],
  consoleGroups: readonly string[],
): DesiredIdentity[] {
  const console = new Set(consoleGroups)
  const desired: DesiredIdentity[] = []
  for (const user of users) {
    const admin = user.groups.includes(NEXTCLOUD_ADMIN_GROUP)
    if (!admin && !user.groups.some((g) => console.has(g))) {
      continue
    }
    desired.push({
      uid: user.id,
      username: user.id.toLowerCase(),
      enabled: user.enabled !== false,
      email: user.email?.trim().toLowerCase() || null,
      ...splitDisplayName(user.displayname, user.id),
      grant: admin ? 'admin' : 'realm',
    })
  }
  return desired.sort((a, b) => byCodeUnit(a.uid, b.uid))
}

function missing(want: readonly string[], have: readonly string[]): string[] {
  return want.filter((r) => !have.includes(r))
}

function isEmpty(roles: ConsoleRoles): boolean {
  return roles.realm.length === 0 && roles.client.length === 0
}

/**
 * The steps from `actual` (the marked master users) to `desired`. `taken` holds the usernames
 * (lowercase) of master users that are not ours: a desired identity of such a name is a warning,
 * never a takeover. Marked users nobody desires any more are deleted.
 */
export function planConsole(
  desired: readonly DesiredIdentity[],
  actual: readonly ActualIdentity[],
  taken: ReadonlySet<string>,
): ConsolePlan {
  const steps: ConsoleStep[] = []
  const warnings: string[] = []
  const byUid = new Map(actual.map((a) => [a.uid, a]))
  const wanted = new Set<string>()
  for (const want of desired) {
    wanted.add(want.uid)
    const roles = rolesOf(want.grant)
    const have = byUid.get(want.uid)
    if (!have) {
      if (taken.has(want.username)) {
        warnings.push(
          `master realm user "${want.username}" exists and is not a console identity of this app: ${want.uid} gets none`,
        )
      } else {
        steps.push({ kind: 'create', identity: want, roles })
      }
      continue
    }
    if (
      have.enabled !== want.enabled ||
      have.email !== want.email ||
      have.firstName !== want.firstName ||
      have.lastName !== want.lastName
    ) {
      steps.push({ kind: 'update', id: have.id, identity: want })
    }
    if (have.links.length !== 1 || have.links[0] !== want.uid) {
      steps.push({
        kind: 'link',
        id: have.id,
        uid: want.uid,
        stale: have.links.filter((l) => l !== want.uid),
      })
    }
    const grant = {
      realm: missing(roles.realm, have.roles.realm),
      client: missing(roles.client, have.roles.client),
    }
    if (!isEmpty(grant)) {
      steps.push({ kind: 'grant', id: have.id, uid: want.uid, roles: grant })
    }
    const revoke = {
      realm: missing(have.roles.realm, roles.realm),
      client: missing(have.roles.client, roles.client),
    }
    if (!isEmpty(revoke)) {
      steps.push({ kind: 'revoke', id: have.id, uid: want.uid, roles: revoke })
    }
  }
  for (const have of actual) {
    if (!wanted.has(have.uid)) {
      steps.push({ kind: 'delete', id: have.id, uid: have.uid })
    }
  }
  return { steps, warnings }
}
