import { describe, expect, it } from 'vitest'
import { aDirectory, aGroup, aUser } from '../../test/builders.js'
import { MemoryDirectory } from '../../test/memory-directory.js'
import { applyPlan } from './apply.js'
import type { Actual } from './model.js'
import { toDesired } from './model.js'
import { planSync } from './plan.js'
import {
  type AdminEvent,
  type ChangeFeed,
  cursorAfter,
  eventsSince,
  followChanges,
  type ReadGroup,
  type ReadUser,
  touchedBy,
} from './realm-changes.js'
import { afterApply, diffObjects, fingerprint, objectsOf, readStoredState } from './sync-state.js'

const policy = {
  gateGroups: [],
  roleMappings: [{ group: 'sales', role: 'crm' }],
  profileFields: [{ field: 'phone', attribute: 'phone' }],
}
const planPolicy = {
  deletePolicy: 'disable' as const,
  guardPercent: 100,
  force: false,
  managedRoles: ['crm'],
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of value instanceof Set ? value : Object.values(value)) {
      deepFreeze(v)
    }
  }
  return value
}

/** Plans `directory` against the memory realm and applies it; the realm state before and after. */
async function syncOnce(realm: MemoryDirectory, directory: ReturnType<typeof aDirectory>) {
  const before = realm.snapshot()
  const plan = planSync(toDesired(directory.users, directory.groups, policy), before, planPolicy)
  const report = await applyPlan(plan, realm, { concurrency: 3 })
  const after = realm.snapshot()
  const idOf = (kind: 'user' | 'group', key: string) =>
    kind === 'user'
      ? after.users.find((u) => u.uid === key)?.id
      : after.groups.find((g) => g.gid === key)?.id
  // Frozen: the simulation must not change the state before the run or the changes (a write in
  // place throws), since it shares what it does not change.
  const simulated = afterApply(deepFreeze(before), deepFreeze(report.results), idOf)
  return { before, after, simulated }
}

describe('the stored sync state', () => {
  it('after a run is what the realm holds: the run need not read it back', async () => {
    const realm = new MemoryDirectory()
    realm.seedUnmanagedUser({ username: 'ops', email: 'ops@example.com' })
    const directory = aDirectory({ users: 60, groups: 6, membershipsPerUser: 2, seed: 3 })
    directory.users.push(aUser({ id: 'sam', groups: ['sales'], phone: '+49 1' }))
    directory.groups.push(aGroup({ id: 'sales' }))
    const cold = await syncOnce(realm, directory)
    expect(cold.simulated).toEqual(cold.after)

    // names, emails, enabled state, memberships, a group renamed and one deleted, users gone
    directory.users = directory.users
      .slice(5)
      .map((u, i) =>
        i % 4 === 0
          ? { ...u, displayname: `Renamed ${i}`, enabled: i % 8 !== 0, groups: u.groups.slice(1) }
          : i % 7 === 0
            ? { ...u, email: `moved${i}@example.org`, groups: [...u.groups, 'sales'] }
            : u,
      )
    const [first, ...rest] = directory.groups
    directory.groups = first ? [{ ...first, displayname: 'New name' }, ...rest.slice(1)] : rest
    const delta = await syncOnce(realm, directory)
    expect(delta.simulated).toEqual(delta.after)
  })

  it('round-trips through stored objects, and a diff rewrites only what changed', async () => {
    const realm = new MemoryDirectory()
    realm.seedUnmanagedUser({ username: 'ops', email: 'ops@example.com' })
    realm.seedUnmanagedGroup('admins')
    const actual: Actual = {
      ...realm.snapshot(),
      users: [
        {
          id: 'k1',
          uid: 'Alice',
          username: 'alice',
          email: 'alice@example.com',
          firstName: 'Alice',
          lastName: 'Anders',
          enabled: true,
          attributes: { phone: ['1'] },
          groups: ['staff'],
          roles: [],
          linked: true,
        },
      ],
      groups: [{ id: 'g1', gid: 'staff', displayName: 'Staff' }],
    }
    const objects = [...objectsOf(actual)]
    const pages = async function* () {
      yield objects
    }
    expect((await readStoredState(pages())).actual).toEqual(actual)
    const same = diffObjects(objects, actual)
    expect([...same.put]).toEqual([])
    expect(same.remove).toEqual([])
    const renamed = { ...actual, users: [{ ...actual.users[0], firstName: 'Alicia' }] } as Actual
    const diff = diffObjects(objects, { ...renamed, groups: [] })
    expect([...diff.put].map((o) => o.key)).toEqual(['Alice'])
    expect(diff.remove).toEqual([{ kind: 'group', key: 'staff' }])
    // an object of a kind this version does not know (even one named like an Object property) goes
    const odd = [{ kind: 'constructor', key: 'x', fingerprint: 'f', state: {} }]
    expect(diffObjects([...objects, ...odd], actual).remove).toEqual([
      { kind: 'constructor', key: 'x' },
    ])
  })

  it('read back, keeps the stored fingerprints of what a run leaves alone, and freezes it', async () => {
    const realm = new MemoryDirectory()
    const directory = aDirectory({ users: 12, groups: 3, membershipsPerUser: 2, seed: 9 })
    const cold = await syncOnce(realm, directory)
    // Fingerprints no hash gives: kept, they show the objects were not fingerprinted again.
    const objects = [...objectsOf(cold.after)].map((o) => ({
      ...o,
      fingerprint: `stored ${o.key}`,
    }))
    async function* pages() {
      yield objects.slice(0, 5)
      yield objects.slice(5)
    }
    const { actual, stored } = await readStoredState(pages())
    expect(actual).toEqual(cold.after)
    expect(stored).toEqual(
      objects.map(({ kind, key, fingerprint }) => ({ kind, key, fingerprint })),
    )
    const [first, second] = actual.users
    expect(() => {
      ;(first as { enabled: boolean }).enabled = false
    }).toThrow(TypeError)
    expect(() => first?.groups.push('x')).toThrow(TypeError)

    const unchanged = afterApply(actual, [], () => undefined) as Actual
    expect([...diffObjects(stored, unchanged).put]).toEqual([])
    // a user a change edits is a copy, fingerprinted anew
    const disable = {
      kind: 'disable-user' as const,
      uid: second?.uid ?? '',
      reason: 'disabled' as const,
    }
    const next = afterApply(actual, [{ change: disable, outcome: 'applied' }], () => undefined)
    const put = [...diffObjects(stored, next as Actual).put]
    expect(put.map((o) => [o.key, o.state.enabled])).toEqual([[second?.uid, false]])
    expect(put[0]?.fingerprint).toBe(fingerprint(put[0]?.state ?? {}))
  })
})

function event(id: string, time: number, resourcePath: string, op = 'UPDATE', type = 'USER') {
  return { id, time, operationType: op, resourceType: type, resourcePath } satisfies AdminEvent
}

function aFeed(
  events: AdminEvent[],
  users: Record<string, ReadUser> = {},
  groups: Record<string, ReadGroup> = {},
): ChangeFeed & { reads: string[] } {
  const reads: string[] = []
  return {
    reads,
    realm: async () => ({ id: 'r', adminEventsEnabled: true }),
    events: async (from, first, max) =>
      events.filter((e) => e.time >= from).slice(first, first + max),
    latest: async () => events.slice(-1),
    readUser: async (id) => {
      reads.push(`user ${id}`)
      return users[id] ?? { kind: 'gone' }
    },
    readGroup: async (id) => {
      reads.push(`group ${id}`)
      return groups[id] ?? { kind: 'gone' }
    },
  }
}

describe('admin events since the last run', () => {
  it('are those after the cursor; the cursor moves past them; events it saw gone are a gap', async () => {
    const all = [event('a', 10, 'users/1'), event('b', 10, 'users/2'), event('c', 12, 'users/3')]
    const feed = aFeed(all)
    const since = await eventsSince(feed, { time: 10, seen: ['a'] }, 100)
    expect(since).toEqual({ events: all.slice(1), gap: false, overflow: false })
    expect(cursorAfter({ time: 10, seen: ['a'] }, since.events)).toEqual({ time: 12, seen: ['c'] })
    expect(cursorAfter({ time: 10, seen: ['a'] }, all.slice(1, 2))).toEqual({
      time: 10,
      seen: ['a', 'b'],
    })
    expect((await eventsSince(aFeed(all.slice(1)), { time: 10, seen: ['a'] }, 100)).gap).toBe(true)
    expect((await eventsSince(feed, { time: 0, seen: [] }, 2)).overflow).toBe(true)
  })

  it('touch the users and groups on their paths; a role or profile change asks for a full read', () => {
    const touched = touchedBy([
      event('1', 1, 'users/u1'),
      event('2', 2, 'users/u2/groups/g1', 'CREATE', 'GROUP_MEMBERSHIP'),
      event('3', 3, 'groups/g2', 'DELETE', 'GROUP'),
      event('4', 4, 'clients/c1', 'UPDATE', 'CLIENT'),
    ])
    expect(touched.escalation).toBeNull()
    expect([...touched.users.keys()]).toEqual(['u1', 'u2'])
    expect([...touched.groups.keys()]).toEqual(['g2'])
    expect(touchedBy([event('5', 5, 'roles/crm', 'DELETE', 'REALM_ROLE')]).escalation).toMatch(
      /REALM_ROLE/,
    )
    expect(
      touchedBy([event('6', 6, 'ui-ext/user-profile', 'UPDATE', 'USER_PROFILE')]).escalation,
    ).not.toBeNull()
  })

  it('are followed by reading again what they touched', async () => {
    const realm = new MemoryDirectory()
    const stored: Actual = {
      ...realm.snapshot(),
      users: [
        {
          id: 'k1',
          uid: 'alice',
          username: 'alice',
          email: 'alice@example.com',
          firstName: 'Alice',
          lastName: 'Anders',
          enabled: true,
          attributes: {},
          groups: ['sales', 'staff'],
          roles: [],
          linked: true,
        },
      ],
      groups: [
        { id: 'g1', gid: 'sales', displayName: 'Sales' },
        { id: 'g2', gid: 'staff', displayName: 'Staff' },
      ],
    }
    const [alice] = stored.users
    if (!alice) {
      throw new Error('no stored user')
    }
    const edited = { ...alice, firstName: 'Mallory', enabled: false }
    const feed = aFeed(
      [],
      {
        k1: { kind: 'managed', user: { ...edited, groups: ['sales'] } },
        k9: { kind: 'unmanaged', username: 'Ops', email: 'Ops@example.com' },
      },
      {},
    )
    const touched = touchedBy([
      event('1', 1, 'users/k1'),
      event('2', 2, 'groups/g2', 'DELETE', 'GROUP'),
      event('3', 3, 'users/k9', 'CREATE'),
    ])
    const followed = await followChanges(stored, touched, feed)
    expect(followed.escalation).toBeNull()
    expect(followed.reads).toBe(3)
    expect(followed.actual.groups.map((g) => g.gid)).toEqual(['sales'])
    expect(followed.actual.users).toEqual([{ ...edited, groups: ['sales'] }])
    expect(feed.reads).toEqual(['group g2', 'user k1', 'user k9'])
    expect([...followed.actual.unmanagedUsernames]).toEqual(['ops'])
    expect([...followed.actual.unmanagedEmails]).toEqual(['ops@example.com'])

    // an unmanaged user that existed before, changed: its old names are not known
    const unknown = touchedBy([event('4', 4, 'users/k8')])
    const escalated = await followChanges(stored, unknown, aFeed([], { k8: feedUnmanaged() }))
    expect(escalated.escalation).toMatch(/only a full read/)
  })
})

function feedUnmanaged(): ReadUser {
  return { kind: 'unmanaged', username: 'old', email: null }
}
