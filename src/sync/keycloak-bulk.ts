import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { KEYCLOAK_NAME_MAX } from '../keycloak/user-profile.js'
import { type NewUser, uidRefusal } from './model.js'

/**
 * What Keycloak 26.7.3's partial import (`POST /admin/realms/{realm}/partialImport`) needs to
 * create users and groups exactly as the one-by-one Admin API does. Checked against the real one:
 *
 * - it stores attributes, federated identities, groups (by path) and required actions as given,
 *   but validates nothing against the user profile: an email, username or attribute the per-user
 *   create refuses goes in unchecked. Only users that surely pass that validation go in bulk
 *   (`fitForBulk`); Keycloak judges the others one by one.
 * - a user gets no realm roles unless it lists them, not even the realm's default role that the
 *   per-user create grants: the bulk representation lists it.
 * - `ifResourceExists: SKIP` skips a user whose username exists and a group whose name exists (so
 *   nothing is overwritten), but an email another user holds fails the whole request (500), as do
 *   a group path that does not resolve, a group name with a "/", and two users with one email.
 * - the answer lists every user and group with its action (ADDED, SKIPPED) and id.
 */

/**
 * Users or groups per partial import. Keycloak slows down within a large import transaction: a
 * cold sync of 1 500 users (100 groups, 3 memberships each) took 130 s in batches of 200, 182 s of
 * 500 and 356 s of 1 000 on one loaded machine; of 10 001 users (101 groups, 30 001
 * memberships), 23.7-29.5 s in batches of 100 against 38-40 s of 200 (the memory bench's cold
 * sync, several runs each), and in the full bench 24.5 s against 35.0 s.
 */
export const BULK_BATCH = 100

/** The realm's user profile (keycloak/user-profile.ts) lets our attributes hold one value this long. */
const ATTRIBUTE_MAX = 2048

const EMAIL_ATOM = "[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
const EMAIL_LOCAL = new RegExp(`^${EMAIL_ATOM}(\\.${EMAIL_ATOM})*$`, 'i')
const DOMAIN_LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'
const EMAIL_DOMAIN = new RegExp(`^${DOMAIN_LABEL}(\\.${DOMAIN_LABEL})+$`, 'i')

/**
 * An address every Keycloak email check passes: a dot-atom local part of at most 64 characters,
 * an ASCII domain of dotted labels. Keycloak takes more than this; those go one by one.
 */
function plainEmail(email: string): boolean {
  const at = email.lastIndexOf('@')
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  return (
    at > 0 &&
    local.length <= 64 &&
    email.length <= 254 &&
    EMAIL_LOCAL.test(local) &&
    EMAIL_DOMAIN.test(domain)
  )
}

/** Whether the realm's user profile would surely accept `user` as the per-user create sends it. */
export function fitForBulk(user: NewUser): boolean {
  return (
    uidRefusal(user.username) === null &&
    (user.email === null || plainEmail(user.email)) &&
    user.firstName.length <= KEYCLOAK_NAME_MAX &&
    user.lastName.length <= KEYCLOAK_NAME_MAX &&
    Object.values(user.attributes).every(
      (values) => values.length <= 1 && values.every((v) => v.length <= ATTRIBUTE_MAX),
    )
  )
}

/**
 * The path of a top-level group, for gids a path names plainly; null for those with "/" (which
 * the import refuses) or "~" (its escape character).
 */
export function groupPath(gid: string): string | null {
  return /[/~]/.test(gid) ? null : `/${gid}`
}

/** A group as the partial import takes it. */
export function importGroupRep(rep: GroupRepresentation, path: string): GroupRepresentation {
  return { ...rep, path }
}

/** A user as the partial import takes it: the per-user representation, its groups and default role. */
export function importUserRep(
  rep: UserRepresentation,
  paths: readonly string[],
  defaultRole: string,
): UserRepresentation {
  return { ...rep, groups: [...paths], realmRoles: [defaultRole] }
}

export interface ImportResult {
  action?: string
  resourceType?: string
  resourceName?: string
  id?: string
}

/** The ids of what the import added, by name (username or group name), of one resource type. */
export function addedIds(
  results: readonly ImportResult[] | undefined,
  type: 'USER' | 'GROUP',
): Map<string, string> {
  const ids = new Map<string, string>()
  for (const r of results ?? []) {
    if (r.action === 'ADDED' && r.resourceType === type && r.resourceName && r.id) {
      ids.set(r.resourceName, r.id)
    }
  }
  return ids
}
