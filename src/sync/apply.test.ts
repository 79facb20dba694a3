import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { MemoryDirectory } from '../../test/memory-directory.js'
import { AppError } from '../errors.js'
import {
  type ApplyReport,
  applyPlan,
  type BulkWriter,
  type DirectoryWriter,
  type NewMember,
} from './apply.js'
import type { Change } from './changes.js'
import { type DesiredUser, type NewUser, type NextcloudUser, toDesired } from './model.js'
import { planSync, type SyncPlan, type SyncPolicy } from './plan.js'

const aPolicy = (overrides: Partial<SyncPolicy> = {}): SyncPolicy => ({
  deletePolicy: 'disable',
  guardPercent: 20,
  force: false,
  managedRoles: ['crm'],
  ...overrides,
})

const aDesiredUser = (uid: string, overrides: Partial<DesiredUser> = {}): DesiredUser => ({
  uid,
  username: uid,
  email: `${uid}@example.com`,
  firstName: uid,
  lastName: 'Tester',
  enabled: true,
  groups: ['sales'],
  roles: ['crm'],
  attributes: {},
  ...overrides,
})

const aNewUser = (uid: string): NewUser => {
  const { groups, roles, ...user } = aDesiredUser(uid)
  return user
}

const anUntrippedPlan = (changes: Change[]): Pick<SyncPlan, 'changes' | 'guard'> => ({
  changes,
  guard: { tripped: false, forced: false, affected: 0, managed: 0, limit: 0 },
})

const planFor = (directory: MemoryDirectory, users: DesiredUser[], policy = aPolicy()) =>
  planSync(
    { users, groups: [{ gid: 'sales', displayName: 'Sales' }] },
    directory.snapshot(),
    policy,
  )

const outcomesOf = (report: ApplyReport) =>
  report.results.map((r) => [
    r.change.kind,
    'uid' in r.change ? r.change.uid : r.change.gid,
    r.outcome,
  ])

/** A writer that records each call and how many were in flight at once. */
function aRecordingWriter(delayMs = 0) {
  const calls: string[] = []
  const stats = { inFlight: 0, maxInFlight: 0 }
  const record =
    (operation: string) =>
    async (...args: unknown[]): Promise<void> => {
      const [first, second] = args
      const key = typeof first === 'object' && first !== null ? Object.values(first)[0] : first
      calls.push(
        [operation, key, typeof second === 'object' ? undefined : second]
          .filter((x) => x !== undefined)
          .join(' '),
      )
      stats.inFlight += 1
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
      await sleep(delayMs)
      stats.inFlight -= 1
    }
  const writer: DirectoryWriter = {
    createGroup: record('createGroup'),
    updateGroup: record('updateGroup'),
    deleteGroup: record('deleteGroup'),
    createUser: record('createUser'),
    updateUser: record('updateUser'),
    setEnabled: record('setEnabled'),
    deleteUser: record('deleteUser'),
    linkIdentity: record('linkIdentity'),
    addMember: record('addMember'),
    removeMember: record('removeMember'),
    grantRole: record('grantRole'),
    revokeRole: record('revokeRole'),
  }
  return { writer, calls, stats }
}

describe('applyPlan', () => {
  it('runs phase by phase: creations, email claims after releases, removals, destruction', async () => {
    const { writer, calls } = aRecordingWriter()
    const shuffled: Change[] = [
      { kind: 'delete-group', gid: 'old' },
      { kind: 'delete-user', uid: 'gone' },
      { kind: 'disable-user', uid: 'left', reason: 'removed' },
      { kind: 'revoke-role', uid: 'bob', role: 'crm' },
      { kind: 'remove-member', uid: 'bob', gid: 'old' },
      { kind: 'grant-role', uid: 'alice', role: 'crm' },
      { kind: 'add-member', uid: 'alice', gid: 'sales' },
      { kind: 'link-identity', uid: 'alice' },
      {
        kind: 'update-user',
        uid: 'carl',
        before: { email: null },
        after: { email: 'b@x.org' },
        emailFrom: 'bob',
      },
      { kind: 'enable-user', uid: 'dan' },
      { kind: 'update-user', uid: 'bob', before: { email: 'b@x.org' }, after: { email: null } },
      { kind: 'create-user', uid: 'alice', user: aNewUser('alice') },
      {
        kind: 'update-group',
        gid: 'team',
        before: { displayName: 'T' },
        after: { displayName: 'Team' },
      },
      { kind: 'create-group', gid: 'sales', displayName: 'Sales' },
    ]
    await applyPlan(anUntrippedPlan(shuffled), writer, { concurrency: 1 })
    expect(calls).toEqual([
      'updateGroup team Team',
      'createGroup sales',
      'setEnabled dan true',
      'updateUser bob',
      'createUser alice',
      'updateUser carl',
      'grantRole alice crm',
      'addMember alice sales',
      'linkIdentity alice',
      'revokeRole bob crm',
      'removeMember bob old',
      'deleteUser gone',
      'setEnabled left false',
      'deleteGroup old',
    ])
  })

  it.each([1, 4, 6])('keeps at most %i writes in flight', async (concurrency) => {
    const { writer, stats } = aRecordingWriter(2)
    const changes: Change[] = Array.from({ length: 30 }, (_, i) => ({
      kind: 'link-identity',
      uid: `u${i}`,
    }))
    await applyPlan(anUntrippedPlan(changes), writer, { concurrency })
    expect(stats.maxInFlight).toBe(concurrency)
  })

  it('keeps going after a failed change and counts outcomes per kind', async () => {
    const directory = new MemoryDirectory()
    directory.failOn('addMember', 'bob')
    const plan = planFor(directory, [
      aDesiredUser('alice'),
      aDesiredUser('bob'),
      aDesiredUser('carl'),
    ])
    const report = await applyPlan(plan, directory, { concurrency: 3 })
    const failed = report.results.filter((r) => r.outcome !== 'applied')
    expect(failed).toEqual([
      {
        change: { kind: 'add-member', uid: 'bob', gid: 'sales' },
        outcome: 'failed',
        error: 'addMember failed',
      },
    ])
    expect(report.counts['add-member']).toEqual({ applied: 2, failed: 1, conflict: 0, skipped: 0 })
    expect(report.counts['create-user']).toEqual({ applied: 3, failed: 0, conflict: 0, skipped: 0 })
    expect(report.counts['delete-group']).toEqual({
      applied: 0,
      failed: 0,
      conflict: 0,
      skipped: 0,
    })
  })

  it('skips what depends on a user that could not be created', async () => {
    const directory = new MemoryDirectory()
    directory.failOn('createUser', 'bob')
    const report = await applyPlan(
      planFor(directory, [aDesiredUser('alice'), aDesiredUser('bob')]),
      directory,
      {
        concurrency: 2,
      },
    )
    expect(outcomesOf(report)).toEqual([
      ['create-group', 'sales', 'applied'],
      ['create-user', 'alice', 'applied'],
      ['create-user', 'bob', 'failed'],
      ['link-identity', 'alice', 'applied'],
      ['link-identity', 'bob', 'skipped'],
      ['add-member', 'alice', 'applied'],
      ['add-member', 'bob', 'skipped'],
      ['grant-role', 'alice', 'applied'],
      ['grant-role', 'bob', 'skipped'],
    ])
    expect(report.results.find((r) => r.outcome === 'skipped')?.error).toBe(
      'create-user bob did not apply',
    )
  })

  it('skips memberships of a group that could not be created', async () => {
    const directory = new MemoryDirectory()
    directory.failOn('createGroup')
    const report = await applyPlan(planFor(directory, [aDesiredUser('alice')]), directory, {
      concurrency: 2,
    })
    expect(report.results.find((r) => r.change.kind === 'add-member')).toMatchObject({
      outcome: 'skipped',
      error: 'create-group sales did not apply',
    })
    expect(report.counts['create-user'].applied).toBe(1)
  })

  it('skips an email claim when the update releasing the email fails', async () => {
    const directory = new MemoryDirectory()
    const users = [aDesiredUser('amy'), aDesiredUser('bob')]
    await applyPlan(planFor(directory, users), directory, { concurrency: 2 })
    const moved = [
      aDesiredUser('amy', { email: 'amy.new@example.com' }),
      aDesiredUser('bob', { email: 'amy@example.com' }),
    ]
    directory.failOn('updateUser', 'amy')
    const report = await applyPlan(planFor(directory, moved), directory, { concurrency: 2 })
    expect(outcomesOf(report)).toEqual([
      ['update-user', 'amy', 'failed'],
      ['update-user', 'bob', 'skipped'],
    ])
  })

  it('records a write Keycloak refuses as taken as a conflict, and the next plan works around it', async () => {
    const directory = new MemoryDirectory()
    const plan = planFor(directory, [aDesiredUser('alice')])
    // Someone takes the address between our read and our write.
    directory.seedUnmanagedUser({ username: 'intruder', email: 'alice@example.com' })
    const report = await applyPlan(plan, directory, { concurrency: 2 })
    expect(report.results.find((r) => r.change.kind === 'create-user')).toMatchObject({
      outcome: 'conflict',
      error: 'User exists with same email',
    })
    const next = planFor(directory, [aDesiredUser('alice')])
    expect(next.conflicts).toEqual([
      { kind: 'email-taken', uid: 'alice', email: 'alice@example.com', holder: null },
    ])
    const retried = await applyPlan(next, directory, { concurrency: 2 })
    expect(retried.results.every((r) => r.outcome === 'applied')).toBe(true)
  })

  it('refuses a plan whose deletion guard tripped, writing nothing', async () => {
    const directory = new MemoryDirectory()
    await applyPlan(planFor(directory, [aDesiredUser('alice')]), directory, { concurrency: 1 })
    const before = directory.writeCount
    const tripped = planFor(directory, [])
    await expect(applyPlan(tripped, directory, { concurrency: 1 })).rejects.toMatchObject({
      name: 'AppError',
      code: 'GUARD_TRIPPED',
      message: 'Nextcloud returned no users while 1 managed users exist',
    })
    expect(directory.writeCount).toBe(before)
  })

  it('reports progress up to the total', async () => {
    const directory = new MemoryDirectory()
    const seen: string[] = []
    const plan = planFor(directory, [aDesiredUser('alice')])
    await applyPlan(plan, directory, {
      concurrency: 2,
      onProgress: (p) => seen.push(`${p.done}/${p.total}`),
    })
    expect(seen).toEqual(['1/5', '2/5', '3/5', '4/5', '5/5'])
  })

  it('wraps a writer that throws synchronously or a non-Error', async () => {
    const { writer } = aRecordingWriter()
    writer.linkIdentity = () => {
      throw new AppError('KEYCLOAK_UNAVAILABLE', 'down')
    }
    writer.deleteGroup = () => Promise.reject('plain string')
    const changes: Change[] = [
      { kind: 'link-identity', uid: 'a' },
      { kind: 'delete-group', gid: 'g' },
    ]
    const report = await applyPlan(anUntrippedPlan(changes), writer, { concurrency: 1 })
    expect(report.results.map((r) => [r.outcome, r.error])).toEqual([
      ['failed', 'down'],
      ['failed', 'plain string'],
    ])
  })

  it('applies a 10 000-user realm and lets the event loop turn while it does', async () => {
    const groups = Array.from({ length: 50 }, (_, i) => ({
      id: `g${i}`,
      displayname: `Group ${i}`,
    }))
    const ncUsers: NextcloudUser[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `user${i}`,
      email: `user${i}@example.com`,
      displayname: `User Number${i}`,
      groups: [`g${i % 50}`, `g${(i * 7) % 50}`, `g${(i * 13) % 50}`],
    }))
    const policy = {
      gateGroups: [],
      roleMappings: [{ group: 'g1', role: 'crm' }],
      profileFields: [],
    }
    const desired = toDesired(ncUsers, groups, policy)
    const directory = new MemoryDirectory()
    const plan = planSync(desired, directory.snapshot(), aPolicy())

    // The event loop turns while the plan is applied: a loop of setImmediate callbacks records
    // how many writes were done each time it gets a turn. Blocked until the end, it would see
    // only 0 and the final count. How often it turns depends on the machine's speed (the apply
    // yields on a time budget), so a few turns are asked for; speed lives in the bench.
    const seen = new Set<number>()
    let watching = true
    const watch = () => {
      seen.add(directory.writeCount)
      if (watching) {
        setImmediate(watch)
      }
    }
    setImmediate(watch)
    const report = await applyPlan(plan, directory, { concurrency: 6 })
    watching = false

    expect(report.results.every((r) => r.outcome === 'applied')).toBe(true)
    expect(report.counts['create-user'].applied).toBe(10_000)
    const between = [...seen].filter((n) => n > 0 && n < directory.writeCount)
    expect(
      between.length,
      `turns of the event loop seen in the middle of ${directory.writeCount} writes`,
    ).toBeGreaterThanOrEqual(3)

    const writes = directory.writeCount
    const replan = planSync(desired, directory.snapshot(), aPolicy())
    expect(replan.changes).toEqual([])
    await applyPlan(replan, directory, { concurrency: 6 })
    expect(directory.writeCount).toBe(writes)
  })
})

/**
 * `directory` with a bulk path as the Keycloak target has one: a batch creates its users (in
 * their groups) and groups, except those in `refused` (left to the one-by-one writes); a batch
 * with a uid in `sinks` fails whole. Records each batch.
 */
function withBulk(
  directory: MemoryDirectory,
  opts: { batchSize: number; refused?: string[]; sinks?: string[] },
) {
  const batches: string[][] = []
  const joined = new Set<string>()
  const imports = { inFlight: 0, most: 0 }
  const writer: BulkWriter = {
    createGroup: (g) => directory.createGroup(g),
    updateGroup: (gid, name) => directory.updateGroup(gid, name),
    deleteGroup: (gid) => directory.deleteGroup(gid),
    createUser: (u) => directory.createUser(u),
    updateUser: (uid, patch) => directory.updateUser(uid, patch),
    setEnabled: (uid, enabled) => directory.setEnabled(uid, enabled),
    deleteUser: (uid) => directory.deleteUser(uid),
    linkIdentity: (uid) => directory.linkIdentity(uid),
    addMember: async (uid, gid) => {
      if (!joined.has(`${uid} ${gid}`)) {
        await directory.addMember(uid, gid)
      }
    },
    removeMember: (uid, gid) => directory.removeMember(uid, gid),
    grantRole: (uid, role) => directory.grantRole(uid, role),
    revokeRole: (uid, role) => directory.revokeRole(uid, role),
    bulk: {
      batchSize: opts.batchSize,
      async createGroups(groups) {
        batches.push(groups.map((g) => `group ${g.gid}`))
        const made = new Set<string>()
        for (const group of groups.filter((g) => !opts.refused?.includes(g.gid))) {
          await directory.createGroup(group)
          made.add(group.gid)
        }
        return made
      },
      async createUsers(members: readonly NewMember[]) {
        batches.push(members.map((m) => `user ${m.user.uid} [${m.groups.join(',')}]`))
        imports.inFlight++
        imports.most = Math.max(imports.most, imports.inFlight)
        try {
          if (members.some((m) => opts.sinks?.includes(m.user.uid))) {
            throw new AppError('KEYCLOAK_UNAVAILABLE', 'the batch failed')
          }
          const made = new Set<string>()
          for (const { user, groups } of members.filter(
            (m) => !opts.refused?.includes(m.user.uid),
          )) {
            await directory.createUser(user)
            for (const gid of groups) {
              await directory.addMember(user.uid, gid)
              joined.add(`${user.uid} ${gid}`)
            }
            made.add(user.uid)
          }
          return made
        } finally {
          imports.inFlight--
        }
      },
    },
  }
  return { writer, batches, imports }
}

/** A realm snapshot without the ids, which follow the order of creation. */
const withoutIds = (actual: ReturnType<MemoryDirectory['snapshot']>) => ({
  ...actual,
  users: actual.users.map(({ id: _, ...user }) => user),
  groups: actual.groups.map(({ id: _, ...group }) => group),
})

describe('applyPlan with a bulk path', () => {
  const users = ['alice', 'bob', 'carl', 'dora', 'emil'].map((uid) =>
    aDesiredUser(uid, { groups: uid === 'bob' ? [] : ['sales'] }),
  )

  it('creates groups and users in batches, each user with its groups, and reports as one by one', async () => {
    const single = new MemoryDirectory()
    const expected = await applyPlan(planFor(single, users), single, { concurrency: 2 })
    const directory = new MemoryDirectory()
    const { writer, batches, imports } = withBulk(directory, { batchSize: 2 })
    const report = await applyPlan(planFor(directory, users), writer, { concurrency: 2 })
    expect(report).toEqual(expected)
    // two user imports at a time (Keycloak runs each on a thread of its own)
    expect(imports.most).toBe(2)
    // two imports at once: the fake's ids follow the order it was called in, nothing else differs
    expect(withoutIds(directory.snapshot())).toEqual(withoutIds(single.snapshot()))
    // One group is one creation: it goes one by one.
    expect(batches).toEqual([
      ['user alice [sales]', 'user bob []'],
      ['user carl [sales]', 'user dora [sales]'],
      ['user emil [sales]'],
    ])
    expect(directory.writes.createUser, 'no user created twice').toBe(5)
    expect(directory.writes.addMember, 'no membership added twice').toBe(4)
  })

  it('creates one by one what the batch did not, and every user of a batch that failed whole', async () => {
    const single = new MemoryDirectory()
    single.failOn('createUser', 'carl')
    const expected = await applyPlan(planFor(single, users), single, { concurrency: 2 })
    const directory = new MemoryDirectory()
    directory.failOn('createUser', 'carl')
    const { writer } = withBulk(directory, { batchSize: 2, refused: ['alice'], sinks: ['carl'] })
    const report = await applyPlan(planFor(directory, users), writer, { concurrency: 2 })
    expect(outcomesOf(report)).toEqual(outcomesOf(expected))
    expect(
      report.results.find((r) => r.change.kind === 'create-user' && r.change.uid === 'carl'),
    ).toMatchObject({ outcome: 'failed', error: 'createUser failed' })
    expect(withoutIds(directory.snapshot())).toEqual(withoutIds(single.snapshot()))
  })

  it('keeps a group whose create failed out of the users it creates', async () => {
    const single = new MemoryDirectory()
    single.failOn('createGroup', 'sales')
    const expected = await applyPlan(planFor(single, users), single, { concurrency: 2 })
    const directory = new MemoryDirectory()
    directory.failOn('createGroup', 'sales')
    const { writer, batches } = withBulk(directory, { batchSize: 10, refused: ['sales'] })
    const report = await applyPlan(planFor(directory, users), writer, { concurrency: 2 })
    expect(report).toEqual(expected)
    expect(batches).toEqual([users.map((u) => `user ${u.uid} []`)])
  })

  it('leaves a single creation, and creations that claim a released email, to the one-by-one writes', async () => {
    const directory = new MemoryDirectory()
    const { writer, batches } = withBulk(directory, { batchSize: 10 })
    await applyPlan(planFor(directory, [aDesiredUser('alice')]), writer, { concurrency: 1 })
    expect(batches).toEqual([])
    const changes: Change[] = [
      { kind: 'create-user', uid: 'bob', user: aNewUser('bob'), emailFrom: 'alice' },
      { kind: 'create-user', uid: 'carl', user: aNewUser('carl'), emailFrom: 'alice' },
    ]
    await applyPlan(anUntrippedPlan(changes), writer, { concurrency: 1 })
    expect(batches).toEqual([])
  })
})
