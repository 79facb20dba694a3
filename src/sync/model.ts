import type { Config } from '../config/config.js'
import { KEYCLOAK_NAME_MAX } from '../keycloak/user-profile.js'
import { mapSteps, runSteps, type Steps } from './steps.js'

/** Marker attributes on everything the sync creates: only marked objects are ever changed. */
export const MANAGED_ATTRIBUTE = 'nextcloud_managed'
export const MANAGED_VALUE = 'true'
export const UID_ATTRIBUTE = 'nextcloud_uid'
export const GID_ATTRIBUTE = 'nextcloud_gid'
export const GROUP_DISPLAY_NAME_ATTRIBUTE = 'nextcloud_display_name'

/**
 * Attribute names a profile-field mapping may not write: our markers, and Keycloak's built-in
 * profile attributes, which the sync already sets from their own Nextcloud fields.
 */
export const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set([
  MANAGED_ATTRIBUTE,
  UID_ATTRIBUTE,
  GID_ATTRIBUTE,
  GROUP_DISPLAY_NAME_ATTRIBUTE,
  'username',
  'email',
  'firstName',
  'lastName',
])

/**
 * Characters Nextcloud allows in a uid ("a-z", "A-Z", "0-9", spaces and "_.@-'"), one or more: the
 * realm's username pattern (given to keycloak/user-profile.ts by exapp/realm-spec.ts). Other user backends may hand Nextcloud
 * uids outside it; Keycloak refuses those.
 */
export const NEXTCLOUD_UID_PATTERN = "^[a-zA-Z0-9 _.@'-]+$"
const NEXTCLOUD_UID = new RegExp(NEXTCLOUD_UID_PATTERN)

/** Why the realm would refuse `uid` as a username, or null when it takes it. */
export function uidRefusal(uid: string): string | null {
  if (uid.length > KEYCLOAK_NAME_MAX) {
    return `is longer than the ${KEYCLOAK_NAME_MAX} characters Keycloak allows in a username`
  }
  if (!NEXTCLOUD_UID.test(uid)) {
    return `has characters outside those Nextcloud allows in a user id (letters a-z, digits, space and _.@-')`
  }
  return null
}

export type Attributes = Record<string, string[]>

/** The user fields `update-user` may change; `enabled` has its own changes (enable/disable). */
export interface UserFields {
  email: string | null
  firstName: string
  lastName: string
  /** only attributes from configured profile fields; markers are the writer's business */
  attributes: Attributes
}

export interface DesiredUser extends UserFields {
  uid: string
  /** lower-cased uid: Keycloak stores usernames lower-cased, the marker keeps the exact uid */
  username: string
  enabled: boolean
  /** gids, sorted, only groups present in the desired group list */
  groups: string[]
  /** realm roles from the role mappings, sorted */
  roles: string[]
}

/** What `create-user` carries; memberships, roles and the identity link are changes of their own. */
export type NewUser = Omit<DesiredUser, 'groups' | 'roles'>

/** Changed fields only. An attribute set to `null` is removed. */
export interface UserPatch {
  email?: string | null
  firstName?: string
  lastName?: string
  attributes?: Record<string, string[] | null>
}

export interface DesiredGroup {
  gid: string
  displayName: string
}

/** Nextcloud as it should appear in Keycloak. Arrays are sorted by uid/gid and unique. */
export interface Desired {
  users: DesiredUser[]
  groups: DesiredGroup[]
}

export interface ActualUser extends UserFields {
  id: string
  username: string
  /** from the `nextcloud_uid` marker */
  uid: string
  enabled: boolean
  /** gids of managed groups the user is in */
  groups: string[]
  /** managed (mapped) realm roles the user holds */
  roles: string[]
  /** whether the federated identity the token grant needs exists */
  linked: boolean
}

export interface ActualGroup {
  id: string
  gid: string
  displayName: string
}

/**
 * The managed part of the realm. Unmarked users and groups appear only as names, so no plan can
 * ever address them; the names exist to detect clashes.
 */
export interface Actual {
  users: ActualUser[]
  groups: ActualGroup[]
  /** lower-cased */
  unmanagedUsernames: ReadonlySet<string>
  /** lower-cased */
  unmanagedEmails: ReadonlySet<string>
  unmanagedGroupNames: ReadonlySet<string>
}

/** The fields of OCS `cloud/users/details` the sync reads; other fields feed profile mappings. */
export interface NextcloudUser {
  id: string
  enabled?: boolean | string | number | null
  email?: string | null
  displayname?: string | null
  'display-name'?: string | null
  groups?: readonly string[]
  readonly [field: string]: unknown
}

export interface NextcloudGroup {
  id: string
  displayname?: string | null
}

export type DesiredPolicy = Pick<Config['sync'], 'gateGroups' | 'roleMappings' | 'profileFields'>

/** The realm roles the sync grants and revokes: those the group → role mappings name. */
export function managedRoles(policy: Pick<Config['sync'], 'roleMappings'>): string[] {
  return [...new Set(policy.roleMappings.map((m) => m.role))]
}

/**
 * Builds the desired realm state from Nextcloud's users and groups.
 *
 * Usernames: Keycloak lower-cases usernames, so `username` is the lower-cased uid and the
 * `nextcloud_uid` marker keeps the exact one. Two uids equal but for case map to one username;
 * both stay in `Desired` and `planSync` reports the one not already in Keycloak (else the later
 * uid) as a conflict. Duplicate uids (a user seen on two pages) are kept once.
 */
export function toDesired(
  ncUsers: readonly NextcloudUser[],
  ncGroups: readonly NextcloudGroup[],
  policy: DesiredPolicy,
): Desired {
  return runSteps(toDesiredSteps(ncUsers, ncGroups, policy))
}

/** `toDesired` in steps (see steps.ts), for directories large enough to hold up the event loop. */
export function* toDesiredSteps(
  ncUsers: readonly NextcloudUser[],
  ncGroups: readonly NextcloudGroup[],
  policy: DesiredPolicy,
): Steps<Desired> {
  const groups = uniqueBy(ncGroups, (g) => g.id).map((g) => ({
    gid: g.id,
    displayName: clip(g.displayname?.trim() || g.id),
  }))
  const gids = new Set(groups.map((g) => g.gid))
  const unique = uniqueBy(ncUsers, (u) => u.id)
  yield
  const users = yield* mapSteps(unique, (u) => toDesiredUser(u, gids, policy))
  return { users: sortBy(users, (u) => u.uid), groups: sortBy(groups, (g) => g.gid) }
}

function toDesiredUser(
  user: NextcloudUser,
  gids: ReadonlySet<string>,
  policy: DesiredPolicy,
): DesiredUser {
  const memberOf = new Set(user.groups ?? [])
  const gated = passesGate(memberOf, policy.gateGroups)
  const { firstName, lastName } = splitDisplayName(
    user.displayname ?? user['display-name'] ?? '',
    user.id,
  )
  return {
    uid: user.id,
    username: user.id.toLowerCase(),
    email: normalizeEmail(user.email),
    firstName,
    lastName,
    enabled: isEnabled(user.enabled) && gated,
    groups: [...memberOf].filter((gid) => gids.has(gid)).sort(byCodeUnit),
    roles: unique(policy.roleMappings.filter((m) => memberOf.has(m.group)).map((m) => m.role)).sort(
      byCodeUnit,
    ),
    attributes: profileAttributes(user, policy.profileFields),
  }
}

/**
 * First token → first name, the rest → last name. Keycloak refuses a grant to a user without
 * both ("Account is not fully set up"), so a single word fills both and an empty name uses the uid.
 */
export function splitDisplayName(
  displayName: string,
  uid: string,
): { firstName: string; lastName: string } {
  const tokens = displayName.trim().split(/\s+/).filter(Boolean)
  const [first, ...rest] = tokens
  if (first === undefined) {
    const name = clip(uid)
    return { firstName: name, lastName: name }
  }
  return { firstName: clip(first), lastName: clip(rest.length > 0 ? rest.join(' ') : first) }
}

/** Lower-cased (Keycloak stores emails lower-cased) or null when empty or not an address. */
export function normalizeEmail(raw: unknown): string | null {
  if (typeof raw !== 'string') {
    return null
  }
  const email = raw.trim().toLowerCase()
  // Keycloak's validator caps the local part at 64 and the address at 254 (RFC 5321).
  const at = email.lastIndexOf('@')
  const valid =
    at > 0 &&
    at <= 64 &&
    at < email.length - 1 &&
    email.length <= 254 &&
    email.indexOf('@') === at &&
    !/\s/.test(email)
  return valid ? email : null
}

/**
 * Whether a member of `groups` may be in the realm: no gate groups let everyone through, else one
 * of them is needed. The sync disables who fails it; the OpenID provider lets them not sign in.
 */
export function passesGate(groups: Iterable<string>, gateGroups: readonly string[]): boolean {
  if (gateGroups.length === 0) {
    return true
  }
  const memberOf = new Set(groups)
  return gateGroups.some((gid) => memberOf.has(gid))
}

/** Absent means enabled (older Nextcloud omits it); some backends send strings. */
function isEnabled(value: NextcloudUser['enabled']): boolean {
  if (value === undefined || value === null) {
    return true
  }
  if (typeof value === 'string') {
    return value === 'true' || value === '1'
  }
  return value === true || value === 1
}

function profileAttributes(
  user: NextcloudUser,
  fields: DesiredPolicy['profileFields'],
): Attributes {
  const attributes: Attributes = {}
  for (const { field, attribute } of fields) {
    if (RESERVED_ATTRIBUTES.has(attribute)) {
      continue
    }
    const values = attributeValues(user[field])
    if (values.length > 0) {
      attributes[attribute] = values
    }
  }
  return sortKeys(attributes)
}

function attributeValues(value: unknown): string[] {
  if (typeof value === 'number' || typeof value === 'boolean') {
    return [String(value)]
  }
  const list = Array.isArray(value) ? value : [value]
  return list
    .filter((v): v is string => typeof v === 'string' && v.trim() !== '')
    .map((v) => v.trim())
}

/** Marker attributes for a user the sync creates. */
export function userMarkers(uid: string): Attributes {
  return { [MANAGED_ATTRIBUTE]: [MANAGED_VALUE], [UID_ATTRIBUTE]: [uid] }
}

/** Marker attributes for a group the sync creates; the display name lives here, the gid is the name. */
export function groupMarkers(group: DesiredGroup): Attributes {
  return {
    [MANAGED_ATTRIBUTE]: [MANAGED_VALUE],
    [GID_ATTRIBUTE]: [group.gid],
    [GROUP_DISPLAY_NAME_ATTRIBUTE]: [group.displayName],
  }
}

/** The Nextcloud uid of a managed Keycloak user, or null for an unmarked one. */
export function managedUid(attributes: Partial<Attributes> | undefined): string | null {
  const marked = attributes?.[MANAGED_ATTRIBUTE]?.[0] === MANAGED_VALUE
  return marked ? (attributes?.[UID_ATTRIBUTE]?.[0] ?? null) : null
}

/** The gid of a managed Keycloak group, or null for an unmarked one. */
export function managedGid(attributes: Partial<Attributes> | undefined): string | null {
  const marked = attributes?.[MANAGED_ATTRIBUTE]?.[0] === MANAGED_VALUE
  return marked ? (attributes?.[GID_ATTRIBUTE]?.[0] ?? null) : null
}

/** Cuts to Keycloak's 255 UTF-16 units without splitting a surrogate pair. */
function clip(value: string): string {
  if (value.length <= KEYCLOAK_NAME_MAX) {
    return value
  }
  const cut = value.slice(0, KEYCLOAK_NAME_MAX)
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut
}

/** Locale-independent order, so sorting gives the same result on every machine. */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sortBy<T>(items: T[], key: (item: T) => string): T[] {
  return items.sort((a, b) => byCodeUnit(key(a), key(b)))
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => byCodeUnit(a, b)))
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)]
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>()
  for (const item of items) {
    if (!seen.has(key(item))) {
      seen.set(key(item), item)
    }
  }
  return [...seen.values()]
}
