import type { Config } from '../config/config.js'
import { type Change, type Conflict, sortChanges, sortConflicts } from './changes.js'
import {
  type Actual,
  type ActualUser,
  byCodeUnit,
  type Desired,
  type DesiredGroup,
  type DesiredUser,
  type UserPatch,
  uidRefusal,
} from './model.js'
import { assignEmails, type EmailDecision } from './plan-emails.js'
import { runSteps, STEP_ITEMS, type Steps } from './steps.js'

export interface SyncPolicy {
  deletePolicy: Config['sync']['deletePolicy']
  guardPercent: number
  force: boolean
  /** realm roles the sync owns (those in the role mappings); no other role is granted or revoked */
  managedRoles: readonly string[]
}

export interface Guard {
  /** the plan must not be applied (applyPlan refuses it) */
  tripped: boolean
  /** the threshold was exceeded but `force` let the plan through */
  forced: boolean
  /** why the threshold was exceeded */
  reason?: string
  /** managed users this plan disables or deletes, for any reason */
  affected: number
  managed: number
  /** the largest `affected` that passes */
  limit: number
}

export interface SyncPlan {
  changes: Change[]
  conflicts: Conflict[]
  guard: Guard
}

interface Context {
  managedRoles: ReadonlySet<string>
  /** gids that exist or are created by this plan */
  usableGroups: ReadonlySet<string>
  desiredGroups: ReadonlyMap<string, DesiredGroup>
  emails: ReadonlyMap<string, EmailDecision>
  changes: Change[]
}

/**
 * Plans the writes that make the managed part of the realm mirror Nextcloud. Pure: no I/O, no
 * clock. Unmanaged Keycloak objects reach it only as names, so it can never address them.
 *
 * The deletion guard: `affected` counts managed users the plan disables or deletes (gone, disabled
 * or outside the gate). The plan trips when `affected` exceeds `limit = floor(guardPercent% of
 * managed)`, e.g. 20% of 10 managed: 2 passes, 3 trips; and whenever Nextcloud returned no users
 * while managed users exist. A tripped plan still lists every change (for the dry run and the
 * report) but must be applied as nothing: `applyPlan` refuses it. `force` lets it through.
 */
export function planSync(desired: Desired, actual: Actual, policy: SyncPolicy): SyncPlan {
  return runSteps(planSteps(desired, actual, policy))
}

/** `planSync` in steps (see steps.ts), for directories large enough to hold up the event loop. */
export function* planSteps(desired: Desired, actual: Actual, policy: SyncPolicy): Steps<SyncPlan> {
  const conflicts: Conflict[] = []
  const changes: Change[] = []
  const actualUsers = indexManagedUsers(actual.users, conflicts)
  const desiredGroups = new Map(desired.groups.map((g) => [g.gid, g]))
  const usableGroups = planGroups(desiredGroups, actual, changes, conflicts)
  const users = uniqueSorted(desired.users)
  yield
  const admitted = admitUsers(users, actualUsers, actual.unmanagedUsernames, conflicts)
  yield
  const emails = yield* assignEmails(admitted, actualUsers, actual.unmanagedEmails, conflicts)
  const context: Context = {
    managedRoles: new Set(policy.managedRoles),
    usableGroups,
    desiredGroups,
    emails,
    changes,
  }
  for (const [i, user] of admitted.entries()) {
    planUser(user, actualUsers.get(user.uid), context)
    if (i % STEP_ITEMS === STEP_ITEMS - 1) {
      yield
    }
  }
  const desiredUids = new Set(users.map((u) => u.uid))
  for (const user of actualUsers.values()) {
    if (!desiredUids.has(user.uid)) {
      planRemoval(user, policy, changes)
    }
  }
  yield
  const sorted = sortChanges(changes)
  yield
  return {
    changes: sorted,
    conflicts: sortConflicts(conflicts),
    guard: checkGuard(changes, actualUsers.size, users.length, policy),
  }
}

/** Managed users by uid; a second user with the same marker is reported and left alone. */
function indexManagedUsers(users: readonly ActualUser[], conflicts: Conflict[]) {
  const sorted = [...users].sort((a, b) => byCodeUnit(a.uid, b.uid) || byCodeUnit(a.id, b.id))
  const byUid = new Map<string, ActualUser>()
  for (const user of sorted) {
    if (byUid.has(user.uid)) {
      conflicts.push({ kind: 'duplicate-managed-user', uid: user.uid, id: user.id })
    } else {
      byUid.set(user.uid, user)
    }
  }
  return byUid
}

function uniqueSorted(users: readonly DesiredUser[]): DesiredUser[] {
  const sorted = [...users].sort((a, b) => byCodeUnit(a.uid, b.uid))
  return sorted.filter((user, i) => i === 0 || sorted[i - 1]?.uid !== user.uid)
}

/** Group changes; returns the gids members can be added to. */
function planGroups(
  desired: ReadonlyMap<string, DesiredGroup>,
  actual: Actual,
  changes: Change[],
  conflicts: Conflict[],
): Set<string> {
  const existing = new Map(actual.groups.map((g) => [g.gid, g]))
  const usable = new Set<string>()
  for (const group of desired.values()) {
    const current = existing.get(group.gid)
    if (current) {
      usable.add(group.gid)
      if (current.displayName !== group.displayName) {
        changes.push({
          kind: 'update-group',
          gid: group.gid,
          before: { displayName: current.displayName },
          after: { displayName: group.displayName },
        })
      }
    } else if (actual.unmanagedGroupNames.has(group.gid)) {
      conflicts.push({ kind: 'group-name-taken', gid: group.gid })
    } else {
      usable.add(group.gid)
      changes.push({ kind: 'create-group', gid: group.gid, displayName: group.displayName })
    }
  }
  for (const group of existing.values()) {
    if (!desired.has(group.gid)) {
      changes.push({ kind: 'delete-group', gid: group.gid })
    }
  }
  return usable
}

/**
 * Users the plan may touch. A user already in Keycloak (by marker) always is. A new one needs a
 * uid Keycloak takes as a username (else a conflict with the reason, rather than a create that
 * fails every run) and its username free: held by an unmanaged user, a managed one or a new one
 * earlier by uid, it is a conflict, never an adoption.
 */
function admitUsers(
  users: readonly DesiredUser[],
  actual: ReadonlyMap<string, ActualUser>,
  unmanagedUsernames: ReadonlySet<string>,
  conflicts: Conflict[],
): DesiredUser[] {
  const holders = new Map([...actual.values()].map((u) => [u.username.toLowerCase(), u.uid]))
  const admitted: DesiredUser[] = []
  for (const user of users) {
    const username = user.username.toLowerCase()
    if (!actual.has(user.uid)) {
      const reason = uidRefusal(user.uid)
      if (reason !== null) {
        conflicts.push({ kind: 'uid-refused', uid: user.uid, reason })
        continue
      }
      const holder = unmanagedUsernames.has(username) ? null : holders.get(username)
      if (holder !== undefined) {
        conflicts.push({ kind: 'username-taken', uid: user.uid, username, holder })
        continue
      }
      holders.set(username, user.uid)
    }
    admitted.push(user)
  }
  return admitted
}

function planUser(user: DesiredUser, current: ActualUser | undefined, context: Context): void {
  const { changes, managedRoles } = context
  const { uid } = user
  const email = context.emails.get(uid) ?? { email: null }
  if (current) {
    planUserState(user, email, current, changes)
  } else {
    const { username, firstName, lastName, enabled, attributes } = user
    const created = { uid, username, email: email.email, firstName, lastName, enabled, attributes }
    const claim = email.from === undefined ? {} : { emailFrom: email.from }
    changes.push(
      { kind: 'create-user', uid, user: created, ...claim },
      { kind: 'link-identity', uid },
    )
  }
  const groups = user.groups.filter((gid) => context.usableGroups.has(gid))
  const roles = user.roles.filter((role) => managedRoles.has(role))
  // Members of a group being deleted leave with it; a remove-member would only race the delete.
  const kept = (current?.groups ?? []).filter((gid) => context.desiredGroups.has(gid))
  const held = (current?.roles ?? []).filter((role) => managedRoles.has(role))
  for (const gid of missingFrom(groups, kept)) {
    changes.push({ kind: 'add-member', uid, gid })
  }
  for (const role of missingFrom(roles, held)) {
    changes.push({ kind: 'grant-role', uid, role })
  }
  for (const gid of missingFrom(kept, groups)) {
    changes.push({ kind: 'remove-member', uid, gid })
  }
  for (const role of missingFrom(held, roles)) {
    changes.push({ kind: 'revoke-role', uid, role })
  }
}

/** Fields, enabled state and identity link of a user already in Keycloak. */
function planUserState(
  user: DesiredUser,
  email: EmailDecision,
  current: ActualUser,
  changes: Change[],
): void {
  const { uid } = user
  const patch = diffFields(current, { ...user, email: email.email })
  if (patch) {
    const claim = email.from === undefined ? {} : { emailFrom: email.from }
    changes.push({ kind: 'update-user', uid, ...patch, ...claim })
  }
  if (user.enabled !== current.enabled) {
    changes.push(
      user.enabled
        ? { kind: 'enable-user', uid }
        : { kind: 'disable-user', uid, reason: 'disabled' },
    )
  }
  if (!current.linked) {
    changes.push({ kind: 'link-identity', uid })
  }
}

/** Before/after of the fields that differ, or null when none does. */
function diffFields(
  current: ActualUser,
  desired: Pick<DesiredUser, 'email' | 'firstName' | 'lastName' | 'attributes'>,
): { before: UserPatch; after: UserPatch } | null {
  const before: UserPatch = {}
  const after: UserPatch = {}
  if ((current.email?.toLowerCase() ?? null) !== desired.email) {
    before.email = current.email
    after.email = desired.email
  }
  for (const field of ['firstName', 'lastName'] as const) {
    if (current[field] !== desired[field]) {
      before[field] = current[field]
      after[field] = desired[field]
    }
  }
  const names = [
    ...new Set([...Object.keys(current.attributes), ...Object.keys(desired.attributes)]),
  ]
  for (const name of names.sort(byCodeUnit)) {
    const was = current.attributes[name] ?? null
    const is = desired.attributes[name] ?? null
    if (!sameValues(was, is)) {
      before.attributes = { ...before.attributes, [name]: was }
      after.attributes = { ...after.attributes, [name]: is }
    }
  }
  return Object.keys(after).length > 0 ? { before, after } : null
}

function planRemoval(user: ActualUser, policy: SyncPolicy, changes: Change[]): void {
  if (policy.deletePolicy === 'delete') {
    changes.push({ kind: 'delete-user', uid: user.uid })
  } else if (user.enabled) {
    changes.push({ kind: 'disable-user', uid: user.uid, reason: 'removed' })
  }
}

function checkGuard(
  changes: readonly Change[],
  managed: number,
  desiredUsers: number,
  policy: SyncPolicy,
): Guard {
  const affected = changes.filter(
    (c) => c.kind === 'disable-user' || c.kind === 'delete-user',
  ).length
  // The epsilon keeps a share like 0.1 * 30 (2.9999…) from losing a user to binary fractions.
  const limit = Math.floor((policy.guardPercent * managed) / 100 + 1e-9)
  let reason: string | undefined
  if (managed > 0 && desiredUsers === 0) {
    reason = `Nextcloud returned no users while ${managed} managed users exist`
  } else if (affected > limit) {
    reason =
      `${affected} of ${managed} managed users would be disabled or deleted, ` +
      `more than the ${policy.guardPercent}% guard allows (${limit})`
  }
  const exceeded = reason !== undefined
  return {
    tripped: exceeded && !policy.force,
    forced: exceeded && policy.force,
    ...(reason === undefined ? {} : { reason }),
    affected,
    managed,
    limit,
  }
}

/** Items of `items` not in `other`. */
function missingFrom<T>(items: readonly T[], other: readonly T[]): T[] {
  const present = new Set(other)
  return items.filter((item) => !present.has(item))
}

function sameValues(a: readonly string[] | null, b: readonly string[] | null): boolean {
  return (
    a === b || (a !== null && b !== null && a.length === b.length && a.every((v, i) => v === b[i]))
  )
}
