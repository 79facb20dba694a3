import { batchesOf } from '../batches.js'
import { AppError, errorMessage, isAppError } from '../errors.js'
import { CHANGE_KINDS, type Change, type ChangeKind } from './changes.js'
import type { DesiredGroup, NewUser, UserPatch } from './model.js'
import type { SyncPlan } from './plan.js'

/**
 * The writes the sync needs, addressed by Nextcloud uid/gid; the Keycloak adapter resolves ids and
 * adds the marker attributes. A write refused because a username or email is taken throws
 * `AppError('CONFLICT')`.
 */
export interface DirectoryWriter {
  createGroup(group: DesiredGroup): Promise<void>
  updateGroup(gid: string, displayName: string): Promise<void>
  deleteGroup(gid: string): Promise<void>
  createUser(user: NewUser): Promise<void>
  /** changes only the fields present; an attribute set to null is removed */
  updateUser(uid: string, patch: UserPatch): Promise<void>
  setEnabled(uid: string, enabled: boolean): Promise<void>
  deleteUser(uid: string): Promise<void>
  linkIdentity(uid: string): Promise<void>
  addMember(uid: string, gid: string): Promise<void>
  removeMember(uid: string, gid: string): Promise<void>
  grantRole(uid: string, role: string): Promise<void>
  revokeRole(uid: string, role: string): Promise<void>
}

/** A writer that may also create many objects at a time, where the directory has a way. */
export interface BulkWriter extends DirectoryWriter {
  readonly bulk?: BulkCreator
}

/** A user to create with the groups it joins (gids whose groups exist). */
export interface NewMember {
  user: NewUser
  groups: readonly string[]
}

/**
 * Creates users and groups many per request. It returns what it created; everything else (taken,
 * refused, not fit for the bulk path, or in a batch the directory refused whole) goes through the
 * one-by-one writes, which report each object's own error. A user created here is already in the
 * groups it was given, and linked: those changes then cost no request.
 */
export interface BulkCreator {
  /** objects per request */
  readonly batchSize: number
  /** the gids created */
  createGroups(groups: readonly DesiredGroup[]): Promise<ReadonlySet<string>>
  /** the uids created */
  createUsers(users: readonly NewMember[]): Promise<ReadonlySet<string>>
}

export type Outcome = 'applied' | 'failed' | 'conflict' | 'skipped'

export interface ApplyResult {
  change: Change
  outcome: Outcome
  /** why it failed, conflicted or was skipped */
  error?: string
}

export interface ApplyReport {
  /** in plan order */
  results: ApplyResult[]
  counts: Record<ChangeKind, Record<Outcome, number>>
}

export interface ApplyOptions {
  /** writes in flight at once */
  concurrency: number
  onProgress?: (progress: { done: number; total: number }) => void
}

/** Creates before the changes that use them, removals before disables, group deletes last. */
const PHASE_COUNT = 7

function phaseOf(change: Change): number {
  switch (change.kind) {
    case 'create-group':
    case 'update-group':
      return 0
    case 'create-user':
    case 'update-user':
      // A claimed email is free only once the releasing update of the previous step has run.
      return change.emailFrom === undefined ? 1 : 2
    case 'enable-user':
      return 1
    case 'link-identity':
    case 'add-member':
    case 'grant-role':
      return 3
    case 'remove-member':
    case 'revoke-role':
      return 4
    case 'disable-user':
    case 'delete-user':
      return 5
    case 'delete-group':
      return 6
  }
}

interface Failed {
  createdUsers: Set<string>
  createdGroups: Set<string>
  updatedUsers: Set<string>
}

/**
 * Applies a plan in dependency phases, each with at most `concurrency` writes in flight. A failed
 * change never stops the others; a change that depends on one that did not apply (a user's
 * create, a group's create, the update releasing a claimed email) is skipped with the reason.
 * With `writer.bulk`, new groups and users go many per request first, users with their groups;
 * what that path does not create goes one by one, so each failure is still the object's own.
 * Yields to the event loop every few milliseconds, so a 10 000-user run leaves it responsive.
 *
 * @throws AppError GUARD_TRIPPED when the plan's deletion guard tripped: such a plan applies nothing.
 */
export async function applyPlan(
  plan: Pick<SyncPlan, 'changes' | 'guard'>,
  writer: BulkWriter,
  options: ApplyOptions,
): Promise<ApplyReport> {
  if (plan.guard.tripped) {
    throw new AppError('GUARD_TRIPPED', plan.guard.reason ?? 'the deletion guard tripped')
  }
  const { changes } = plan
  const phases = Array.from({ length: PHASE_COUNT }, (): Change[] => [])
  for (const change of changes) {
    phases[phaseOf(change)]?.push(change)
  }
  const failed: Failed = {
    createdUsers: new Set(),
    createdGroups: new Set(),
    updatedUsers: new Set(),
  }
  const outcomes = new Map<Change, ApplyResult>()
  const pause = createYielder()
  let done = 0
  const record = (change: Change, result: ApplyResult) => {
    if (result.outcome !== 'applied') {
      recordFailure(change, failed)
    }
    outcomes.set(change, result)
    done += 1
    options.onProgress?.({ done, total: changes.length })
  }
  const bulk = writer.bulk
  const groupsOf = bulk ? newMemberships(changes) : new Map<string, string[]>()
  for (const phase of phases) {
    const oneByOne = bulk ? await createInBulk(phase, bulk, groupsOf, failed, record) : phase
    await runBounded(oneByOne, Math.max(1, options.concurrency), pause, async (change) => {
      record(change, await applyOne(change, writer, failed))
    })
  }
  const results = changes.map(
    (change) => outcomes.get(change) ?? { change, outcome: 'skipped' as const },
  )
  return { results, counts: countOutcomes(results) }
}

type CreateUser = Extract<Change, { kind: 'create-user' }>
type CreateGroup = Extract<Change, { kind: 'create-group' }>

/** The gids each user joins in the plan, by uid. */
function newMemberships(changes: readonly Change[]): Map<string, string[]> {
  const result = new Map<string, string[]>()
  for (const change of changes) {
    if (change.kind === 'add-member') {
      const gids = result.get(change.uid)
      if (gids) {
        gids.push(change.gid)
      } else {
        result.set(change.uid, [change.gid])
      }
    }
  }
  return result
}

/** user imports sent together (see createInBulk) */
const USER_IMPORTS_AT_ONCE = 2

/**
 * Creates the phase's new groups and users through `bulk`, in batches, and records them as
 * applied. Groups go one batch at a time; users USER_IMPORTS_AT_ONCE batches at a time, since each
 * import is one transaction on one of Keycloak's threads and one alone leaves cores idle. Results
 * are recorded in the changelog's order all the same. Returns the changes left for the one-by-one
 * writes: everything else in the phase, and the creations the bulk path did not make. A user joins
 * in its create only groups that exist by now (a group whose create failed stays out: its
 * add-member is skipped as before).
 */
async function createInBulk(
  phase: readonly Change[],
  bulk: BulkCreator,
  groupsOf: ReadonlyMap<string, string[]>,
  failed: Failed,
  record: (change: Change, result: ApplyResult) => void,
): Promise<Change[]> {
  const groups = phase.filter((c): c is CreateGroup => c.kind === 'create-group')
  const users = phase.filter(
    (c): c is CreateUser => c.kind === 'create-user' && c.emailFrom === undefined,
  )
  if (groups.length + users.length < 2) {
    return [...phase]
  }
  const size = Math.max(1, bulk.batchSize)
  const created = new Set<Change>()
  const recordMade = <C extends Change>(
    batch: readonly C[],
    made: ReadonlySet<string>,
    keyOf: (change: C) => string,
  ) => {
    for (const change of batch) {
      if (made.has(keyOf(change))) {
        created.add(change)
        record(change, { change, outcome: 'applied' })
      }
    }
  }
  for (const batch of batchesOf(groups, size)) {
    const made = await bulk
      .createGroups(batch.map(({ gid, displayName }) => ({ gid, displayName })))
      .catch(() => new Set<string>())
    recordMade(batch, made, (c) => c.gid)
  }
  const importUsers = (batch: CreateUser[]) =>
    bulk
      .createUsers(
        batch.map((c) => ({
          user: c.user,
          groups: (groupsOf.get(c.uid) ?? []).filter((gid) => !failed.createdGroups.has(gid)),
        })),
      )
      .catch(() => new Set<string>())
  const userBatches = batchesOf(users, size)
  for (const together of batchesOf(userBatches, USER_IMPORTS_AT_ONCE)) {
    const made = await Promise.all(together.map(importUsers))
    together.forEach((batch, n) => {
      recordMade(batch, made[n] ?? new Set(), (c) => c.uid)
    })
  }
  return phase.filter((change) => !created.has(change))
}

async function applyOne(
  change: Change,
  writer: DirectoryWriter,
  failed: Failed,
): Promise<ApplyResult> {
  const blocker = blockedBy(change, failed)
  if (blocker !== undefined) {
    return { change, outcome: 'skipped', error: blocker }
  }
  try {
    await execute(change, writer)
    return { change, outcome: 'applied' }
  } catch (err) {
    const error = errorMessage(err)
    return { change, outcome: isAppError(err, 'CONFLICT') ? 'conflict' : 'failed', error }
  }
}

function blockedBy(change: Change, failed: Failed): string | undefined {
  if ('uid' in change && failed.createdUsers.has(change.uid)) {
    return `create-user ${change.uid} did not apply`
  }
  if (change.kind === 'add-member' && failed.createdGroups.has(change.gid)) {
    return `create-group ${change.gid} did not apply`
  }
  if (
    'emailFrom' in change &&
    change.emailFrom !== undefined &&
    failed.updatedUsers.has(change.emailFrom)
  ) {
    return `update-user ${change.emailFrom}, which releases the email, did not apply`
  }
  return undefined
}

function recordFailure(change: Change, failed: Failed): void {
  if (change.kind === 'create-user') {
    failed.createdUsers.add(change.uid)
  } else if (change.kind === 'create-group') {
    failed.createdGroups.add(change.gid)
  } else if (change.kind === 'update-user') {
    failed.updatedUsers.add(change.uid)
  }
}

function execute(change: Change, writer: DirectoryWriter): Promise<void> {
  switch (change.kind) {
    case 'create-group':
      return writer.createGroup({ gid: change.gid, displayName: change.displayName })
    case 'update-group':
      return writer.updateGroup(change.gid, change.after.displayName)
    case 'create-user':
      return writer.createUser(change.user)
    case 'update-user':
      return writer.updateUser(change.uid, change.after)
    case 'enable-user':
      return writer.setEnabled(change.uid, true)
    case 'disable-user':
      return writer.setEnabled(change.uid, false)
    case 'delete-user':
      return writer.deleteUser(change.uid)
    case 'link-identity':
      return writer.linkIdentity(change.uid)
    case 'add-member':
      return writer.addMember(change.uid, change.gid)
    case 'remove-member':
      return writer.removeMember(change.uid, change.gid)
    case 'grant-role':
      return writer.grantRole(change.uid, change.role)
    case 'revoke-role':
      return writer.revokeRole(change.uid, change.role)
    case 'delete-group':
      return writer.deleteGroup(change.gid)
  }
}

function countOutcomes(results: readonly ApplyResult[]): ApplyReport['counts'] {
  const zero = (): Record<Outcome, number> => ({ applied: 0, failed: 0, conflict: 0, skipped: 0 })
  const counts = Object.fromEntries(
    CHANGE_KINDS.map((kind) => [kind, zero()]),
  ) as ApplyReport['counts']
  for (const { change, outcome } of results) {
    counts[change.kind][outcome] += 1
  }
  return counts
}

/** Runs `task` over `items` with at most `limit` in flight; `task` must not reject. */
async function runBounded<T>(
  items: readonly T[],
  limit: number,
  pause: () => Promise<void> | undefined,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T
      next += 1
      await task(item)
      const paused = pause()
      if (paused) {
        await paused
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * Writers that answer from memory (or a cache) resolve in microtasks, which never let timers or
 * sockets run. Once the budget is spent every worker waits on one setImmediate, so the event loop
 * gets a turn at least every `budgetMs` plus one write per worker.
 */
function createYielder(budgetMs = 8): () => Promise<void> | undefined {
  let since = performance.now()
  let pending: Promise<void> | undefined
  return () => {
    if (pending === undefined && performance.now() - since >= budgetMs) {
      pending = new Promise((resolve) => {
        setImmediate(() => {
          pending = undefined
          since = performance.now()
          resolve()
        })
      })
    }
    return pending
  }
}
