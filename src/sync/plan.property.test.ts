import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryDirectory } from '../../test/memory-directory.js'
import { applyPlan } from './apply.js'
import type { Change, Conflict } from './changes.js'
import {
  type Actual,
  type Desired,
  type DesiredPolicy,
  type NextcloudGroup,
  type NextcloudUser,
  toDesired,
} from './model.js'
import { planSync, type SyncPlan, type SyncPolicy } from './plan.js'

/**
 * The random choices a case is made of. Each one is a fast-check draw, so a failing case shrinks
 * (towards fewer users, first items, "no" to each chance) before it is reported.
 */
interface Draw {
  pick<T>(items: readonly T[]): T
  /** true with probability `p` */
  chance(p: number): boolean
  /** a whole number from 0 to `max` */
  int(max: number): number
}

function drawsFrom(g: fc.GeneratorValue): Draw {
  return {
    pick: <T>(items: readonly T[]) => items[g(fc.nat, { max: items.length - 1 })] as T,
    chance: (p) => g(fc.nat, { max: 99 }) >= 100 - Math.round(p * 100),
    int: (max) => g(fc.nat, { max }),
  }
}

/** Runs `property` on `RUNS` cases drawn by fast-check; a failure is shrunk, then reported. */
const RUNS = 5
const forAll = (property: (d: Draw) => void) =>
  fc.assert(
    fc.property(fc.gen(), (g) => property(drawsFrom(g))),
    { numRuns: RUNS },
  )
const forAllAsync = (property: (d: Draw) => Promise<void>) =>
  fc.assert(
    fc.asyncProperty(fc.gen(), (g) => property(drawsFrom(g))),
    { numRuns: RUNS },
  )

interface Directory {
  users: NextcloudUser[]
  groups: NextcloudGroup[]
}

const GIDS = Array.from({ length: 14 }, (_, i) => `g${i}`)
const NAMES = ['', 'Solo', 'Ann Lee', '  Jo  de  Vries ', 'Zoë Ünal', 'x'.repeat(300)]

function randomEmail(d: Draw, uid: string, users: readonly NextcloudUser[]): string | null {
  const other = users.length > 0 ? d.pick(users).id : uid
  return d.pick([
    `${uid}@example.org`,
    `${uid}@example.org`,
    `${uid.toUpperCase()}@Example.org`,
    `${other}@example.org`,
    'shared@example.org',
    'not-an-address',
    null,
  ])
}

function randomUser(d: Draw, uid: string, users: readonly NextcloudUser[]): NextcloudUser {
  return {
    id: uid,
    enabled: d.pick([true, true, true, true, 'true', false]),
    email: randomEmail(d, uid, users),
    displayname: d.chance(0.5) ? `Name${d.int(8)} ${uid}` : d.pick(NAMES),
    groups: [...GIDS, 'ghost'].filter(() => d.chance(0.15)),
    organisation: d.pick(['', 'ACME', 'Initech']),
    phone: d.chance(0.3) ? `+49 ${d.int(999_999)}` : '',
  }
}

/** Between 60 and 300 Nextcloud users. */
const directorySize = (d: Draw) => 60 + d.int(240)

function randomDirectory(d: Draw, size: number): Directory {
  const users: NextcloudUser[] = []
  for (let i = 0; i < size; i += 1) {
    users.push(randomUser(d, `u${i}`, users))
    // Uids equal but for case share one Keycloak username.
    if (i % 60 === 0) {
      users.push(randomUser(d, `U${i}`, users))
    }
  }
  const groups = GIDS.map((id) => ({ id, displayname: d.chance(0.8) ? `Group ${id}` : '' }))
  return { users, groups }
}

/** Nextcloud a few minutes later: users come and go, rename, move emails, change groups. */
function mutate(d: Draw, directory: Directory, round: number): Directory {
  const users = directory.users
    .filter(() => !d.chance(0.05))
    .map((user) => {
      const changed = { ...user }
      if (d.chance(0.05)) {
        changed.displayname = d.pick(NAMES)
      }
      if (d.chance(0.08)) {
        changed.email = randomEmail(d, `${user.id}.r${round}`, directory.users)
      }
      if (d.chance(0.05)) {
        changed.enabled = !(user.enabled === true || user.enabled === 'true')
      }
      if (d.chance(0.1)) {
        changed.groups = [...GIDS, 'g-new'].filter(() => d.chance(0.15))
      }
      if (d.chance(0.05)) {
        changed.organisation = d.pick(['', 'ACME', 'Globex'])
      }
      return changed
    })
  swapEmails(d, users)
  for (let i = 0; i < 15; i += 1) {
    users.push(randomUser(d, `n${round}.${i}`, users))
  }
  const groups: NextcloudGroup[] = directory.groups
    .filter((g) => g.id !== 'g13')
    .map((g) => (d.chance(0.2) ? { ...g, displayname: `Renamed ${g.id} ${round}` } : g))
  return { users, groups: [...groups, { id: 'g-new', displayname: 'New' }] }
}

/** A few pairs trade addresses and a few chains pass one along: the cases that need ordering. */
function swapEmails(d: Draw, users: NextcloudUser[]): void {
  for (let i = 0; i < 4; i += 1) {
    const a = d.pick(users)
    const b = d.pick(users)
    const c = d.pick(users)
    ;[a.email, b.email] = [b.email, a.email]
    if (d.chance(0.5)) {
      ;[b.email, c.email] = [c.email, `fresh.${c.id}@example.org`]
    }
  }
}

const desiredPolicy = (d: Draw): DesiredPolicy => ({
  gateGroups: d.chance(0.5) ? ['g3', 'g4', 'g5', 'g6', 'g7'] : [],
  roleMappings: [
    { group: 'g0', role: 'crm' },
    { group: 'g1', role: 'ops' },
    { group: 'g2', role: 'crm' },
  ],
  profileFields: [
    { field: 'organisation', attribute: 'org' },
    { field: 'phone', attribute: 'phone' },
  ],
})

/** A realm holding unmanaged users and a group whose names clash with Nextcloud's. */
function seededDirectory(): MemoryDirectory {
  const directory = new MemoryDirectory()
  directory.seedUnmanagedUser({ username: 'admin' })
  directory.seedUnmanagedUser({ username: 'u5', email: 'u7@example.org' })
  directory.seedUnmanagedUser({ username: 'service', email: 'shared@example.org' })
  directory.seedUnmanagedGroup('g12')
  return directory
}

async function syncOnce(
  directory: MemoryDirectory,
  desired: Desired,
  policy: SyncPolicy,
): Promise<SyncPlan> {
  const plan = planSync(desired, directory.snapshot(), policy)
  const report = await applyPlan(plan, directory, { concurrency: 5 })
  const notApplied = report.results.filter((r) => r.outcome !== 'applied')
  expect(notApplied, 'the plan foresaw every refusal').toEqual([])
  return plan
}

/** Uids whose name a user released in that plan: the next plan may finish giving it to them. */
const pendingUids = (conflicts: Conflict[]) =>
  new Set(conflicts.flatMap((c) => (c.kind === 'group-name-taken' ? [] : [c.uid])))

const onlyCompletesPending = (change: Change, pending: ReadonlySet<string>) =>
  'uid' in change &&
  pending.has(change.uid) &&
  (change.kind !== 'update-user' || Object.keys(change.after).join() === 'email')

/** Desired state Keycloak could hold as is: one user per username, one per email. */
function realizable(desired: Desired): Desired {
  const usernames = new Set<string>()
  const emails = new Set<string>()
  const users = desired.users.flatMap((user) => {
    if (usernames.has(user.username)) {
      return []
    }
    usernames.add(user.username)
    const email = user.email !== null && !emails.has(user.email) ? user.email : null
    if (email !== null) {
      emails.add(email)
    }
    return [{ ...user, email }]
  })
  return { ...desired, users }
}

describe('planSync properties', () => {
  it('plans nothing for a realm that already mirrors Nextcloud', () =>
    forAll((d) => {
      const nc = randomDirectory(d, directorySize(d))
      const desired = realizable(toDesired(nc.users, nc.groups, desiredPolicy(d)))
      const mirror: Actual = {
        users: desired.users.map((user) => ({ id: `id-${user.uid}`, ...user, linked: true })),
        groups: desired.groups.map((g) => ({ id: `id-${g.gid}`, ...g })),
        unmanagedUsernames: new Set(),
        unmanagedEmails: new Set(),
        unmanagedGroupNames: new Set(),
      }
      const plan = planSync(desired, mirror, {
        deletePolicy: 'delete',
        guardPercent: 20,
        force: false,
        managedRoles: ['crm', 'ops'],
      })
      expect(plan.conflicts).toEqual([])
      expect(plan.changes).toEqual([])
    }))

  it('converges: apply then re-plan gives no changes, and no writes', () =>
    forAllAsync(async (d) => {
      const shape = desiredPolicy(d)
      const policy: SyncPolicy = {
        deletePolicy: d.pick(['delete', 'disable'] as const),
        guardPercent: 20,
        force: true,
        managedRoles: ['crm', 'ops'],
      }
      const directory = seededDirectory()
      let nc = randomDirectory(d, directorySize(d))
      await syncOnce(directory, toDesired(nc.users, nc.groups, shape), policy)
      expect(
        planSync(toDesired(nc.users, nc.groups, shape), directory.snapshot(), policy).changes,
      ).toEqual([])

      for (let round = 1; round <= 3; round += 1) {
        nc = mutate(d, nc, round)
        const desired = toDesired(nc.users, nc.groups, shape)
        const first = await syncOnce(directory, desired, policy)
        const pending = pendingUids(first.conflicts)
        const leftover = planSync(desired, directory.snapshot(), policy).changes
        expect(leftover.filter((c) => !onlyCompletesPending(c, pending))).toEqual([])
        await syncOnce(directory, desired, policy)
        const writes = directory.writeCount
        const settled = await syncOnce(directory, desired, policy)
        expect(settled.changes).toEqual([])
        expect(directory.writeCount - writes).toBe(0)
      }
    }))

  it('never lets an unmanaged name into a plan', () =>
    forAll((d) => {
      const nc = randomDirectory(d, directorySize(d))
      const desired = toDesired(nc.users, nc.groups, desiredPolicy(d))
      const clashing = desired.users.filter(() => d.chance(0.2))
      const actual: Actual = {
        users: [],
        groups: [],
        unmanagedUsernames: new Set(clashing.map((u) => u.username)),
        unmanagedEmails: new Set(
          desired.users.flatMap((u) => (u.email && d.chance(0.2) ? [u.email] : [])),
        ),
        unmanagedGroupNames: new Set(desired.groups.filter(() => d.chance(0.3)).map((g) => g.gid)),
      }
      const plan = planSync(desired, actual, {
        deletePolicy: 'delete',
        guardPercent: 20,
        force: false,
        managedRoles: ['crm'],
      })
      // Matching by username also catches the other uid of a pair differing only by case.
      const clashingUids = new Set(
        desired.users.filter((u) => actual.unmanagedUsernames.has(u.username)).map((u) => u.uid),
      )
      for (const change of plan.changes) {
        expect('uid' in change && clashingUids.has(change.uid), JSON.stringify(change)).toBe(false)
        expect(
          'gid' in change && actual.unmanagedGroupNames.has(change.gid),
          JSON.stringify(change),
        ).toBe(false)
        const email =
          change.kind === 'create-user'
            ? change.user.email
            : change.kind === 'update-user'
              ? change.after.email
              : null
        expect(email != null && actual.unmanagedEmails.has(email), JSON.stringify(change)).toBe(
          false,
        )
      }
      const reported = new Set(
        plan.conflicts.flatMap((c) =>
          c.kind === 'username-taken' && c.holder === null ? [c.uid] : [],
        ),
      )
      expect(reported).toEqual(clashingUids)
    }))
})
