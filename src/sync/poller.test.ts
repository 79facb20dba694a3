import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { aDirectory, aGroup, aUser, type Directory } from '../../test/builders.js'
import type { FakeNextcloud } from '../../test/fake-nextcloud/index.js'
import { clientAgainstFake } from '../../test/nextcloud-client-setup.js'
import { silentLogger } from '../log.js'
import { NextcloudSource } from './nextcloud-source.js'
import {
  DirectoryPoller,
  diffUsers,
  groupStructureChange,
  movedMembers,
  needsDisabledList,
  type PollEngine,
  targetedLimit,
  withPoll,
} from './poller.js'

function smallDirectory(): Directory {
  return {
    groups: [
      aGroup({ id: 'admin' }),
      aGroup({ id: 'engineering', displayname: 'Engineering' }),
      aGroup({ id: 'sales', displayname: 'Sales' }),
    ],
    users: [
      aUser({ id: 'admin', groups: ['admin'] }),
      aUser({ id: 'alice', groups: ['engineering'] }),
      aUser({ id: 'bob', groups: ['engineering', 'sales'] }),
      aUser({ id: 'carol', groups: ['sales'] }),
      aUser({ id: 'dave', groups: [] }),
    ],
  }
}

/** An engine that re-reads each user as the real one does, and records what it was asked. */
function recordingEngine(source: NextcloudSource) {
  const calls: string[] = []
  const engine: PollEngine & { calls: string[]; isBusy: boolean } = {
    calls,
    isBusy: false,
    async runUser(uid) {
      calls.push(`user ${uid}`)
      await source.readUser(uid)
      return true
    },
    async runFull() {
      calls.push('full')
      await source.readAll()
    },
    busy() {
      return this.isBusy
    },
  }
  return engine
}

describe('DirectoryPoller against the fake Nextcloud', () => {
  let nc: FakeNextcloud
  let source: NextcloudSource
  let engine: ReturnType<typeof recordingEngine>
  let poller: DirectoryPoller

  const setUp = async (directory: Directory) => {
    const fake = await clientAgainstFake(directory)
    nc = fake.nc
    const pageSize = directory.users.length > 100 ? 500 : 2
    source = new NextcloudSource({
      client: fake.client,
      pageSize,
      listPageSize: (3 * pageSize) / 2,
    })
    engine = recordingEngine(source)
    poller = new DirectoryPoller({
      source,
      engine,
      intervalSeconds: 0,
      pageSize,
      log: silentLogger(),
    })
    // What a full run (init, schedule) leaves behind: the baseline.
    await source.readAll()
  }
  /** requests since the last call, per `METHOD /path` without the OCS prefix */
  let seen = 0
  const requestsSince = () => {
    const all = nc.requests().slice(seen)
    seen = nc.requests().length
    return all.map((r) => `${r.method} ${r.path.replace(/^\/ocs\/v2\.php/, '')}`)
  }

  beforeEach(async () => {
    await setUp(smallDirectory())
    seen = nc.requests().length
  })
  afterEach(async () => {
    await poller.close()
    await nc.close()
  })

  it('reads only the cheap lists when nothing changed, and syncs nothing', async () => {
    const result = await poller.pollOnce()

    expect(result).toEqual({ outcome: 'unchanged', changes: [] })
    expect(engine.calls).toEqual([])
    const requests = requestsSince()
    expect(requests.filter((r) => r.includes('details') && !r.includes('groups/details'))).toEqual(
      [],
    )
    // 5 users in pages of 3: two id pages; 3 groups in pages of 2: two pages; dave is in no
    // group, so no count would show him disabled: one page of disabled users
    expect(requests).toEqual([
      'GET /cloud/users',
      'GET /cloud/users',
      'GET /cloud/groups/details',
      'GET /cloud/groups/details',
      'GET /cloud/users/disabled',
    ])
  })

  it('lists the disabled users only when a disabled count moved, once every user is in a group', async () => {
    nc.setMembership('dave', ['sales'])
    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'dave', kind: 'groups' }])
    requestsSince()

    expect(await poller.pollOnce()).toEqual({ outcome: 'unchanged', changes: [] })
    expect(requestsSince()).not.toContain('GET /cloud/users/disabled')

    nc.updateUser('alice', { enabled: false })
    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'alice', kind: 'disabled' }])
    expect(requestsSince()).toContain('GET /cloud/users/disabled')
  })

  it('syncs a created user alone, re-read in detail', async () => {
    nc.addUser(aUser({ id: 'erin', groups: [] }))

    const result = await poller.pollOnce()

    expect(result.outcome).toBe('targeted')
    expect(result.changes).toEqual([{ uid: 'erin', kind: 'created' }])
    expect(engine.calls).toEqual(['user erin'])
    expect(requestsSince().filter((r) => r.startsWith('GET /cloud/users/'))).toEqual([
      'GET /cloud/users/disabled',
      'GET /cloud/users/erin',
    ])
  })

  it('syncs a disabled user and then an enabled one', async () => {
    nc.updateUser('carol', { enabled: false })
    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'carol', kind: 'disabled' }])
    expect(await poller.pollOnce()).toEqual({ outcome: 'unchanged', changes: [] })

    nc.updateUser('carol', { enabled: true })
    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'carol', kind: 'enabled' }])
    expect(engine.calls).toEqual(['user carol', 'user carol'])
  })

  it('syncs a deleted user', async () => {
    nc.removeUser('dave')

    const result = await poller.pollOnce()

    expect(result.changes).toEqual([{ uid: 'dave', kind: 'deleted' }])
    expect(engine.calls).toEqual(['user dave'])
  })

  it('finds a user moved between groups from the counts and the members of those groups only', async () => {
    nc.setMembership('alice', ['sales'])

    const result = await poller.pollOnce()

    expect(result.changes).toEqual([{ uid: 'alice', kind: 'groups' }])
    expect(engine.calls).toEqual(['user alice'])
    const requests = requestsSince()
    expect(requests.filter((r) => /\/cloud\/groups\/[^/]+\/users$/.test(r)).sort()).toEqual([
      'GET /cloud/groups/engineering/users',
      'GET /cloud/groups/sales/users',
    ])
    // the group list read by the poll stands in for the one a single-user read would fetch
    expect(requests.filter((r) => r.endsWith('/groups/details'))).toHaveLength(2)
    expect(await poller.pollOnce()).toEqual({ outcome: 'unchanged', changes: [] })
  })

  it('finds a user added to a group it was not in', async () => {
    nc.setMembership('dave', ['engineering'])

    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'dave', kind: 'groups' }])
  })

  it('reports each kind at once when several happen in one interval', async () => {
    await poller.close()
    await nc.close()
    // With 400 more users a full read costs more than four single-user reads.
    const directory = smallDirectory()
    for (let i = 0; i < 400; i++) {
      directory.users.push(aUser({ id: `filler${i}`, groups: ['engineering'] }))
    }
    await setUp(directory)
    nc.addUser(aUser({ id: 'erin', groups: ['sales'] }))
    nc.updateUser('bob', { enabled: false })
    nc.removeUser('carol')
    nc.setMembership('alice', ['sales'])

    const result = await poller.pollOnce()

    expect(result.outcome).toBe('targeted')
    expect([...result.changes].sort((a, b) => a.uid.localeCompare(b.uid))).toEqual([
      { uid: 'alice', kind: 'groups' },
      { uid: 'bob', kind: 'disabled' },
      { uid: 'carol', kind: 'deleted' },
      { uid: 'erin', kind: 'created' },
    ])
    expect(engine.calls).toEqual(['user alice', 'user bob', 'user carol', 'user erin'])
  })

  it('runs a full sync for a new, renamed or deleted group', async () => {
    nc.addGroup({ id: 'support' })
    expect(await poller.pollOnce()).toMatchObject({
      outcome: 'full',
      reason: 'group "support" was created',
    })
    expect(engine.calls).toEqual(['full'])
    expect(await poller.pollOnce()).toEqual({ outcome: 'unchanged', changes: [] })

    nc.removeGroup('support')
    expect(await poller.pollOnce()).toMatchObject({ outcome: 'full' })
  })

  it('runs a full sync when more users changed than one by one is worth', async () => {
    // 5 users in pages of 2: a full read is 3 details pages, 2 group pages; 6 users are more
    for (const id of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']) {
      nc.addUser(aUser({ id, groups: [] }))
    }

    const result = await poller.pollOnce()

    expect(result.outcome).toBe('full')
    expect(result.changes).toHaveLength(6)
    expect(engine.calls).toEqual(['full'])
  })

  it('starts with a full run when nothing was read yet', async () => {
    const fresh = new DirectoryPoller({
      source,
      engine,
      intervalSeconds: 0,
      pageSize: 2,
      log: silentLogger(),
    })
    // A poller created after the last full read knows nothing to compare with.
    const result = await fresh.pollOnce()
    await fresh.close()

    expect(result).toMatchObject({ outcome: 'full', reason: 'nothing read yet to compare with' })
  })

  it('skips its turn while a full run is in progress', async () => {
    engine.isBusy = true

    expect(await poller.pollOnce()).toEqual({ outcome: 'skipped', changes: [] })
    expect(requestsSince()).toEqual([])
  })

  it('tries a user again next time when its run failed', async () => {
    nc.updateUser('bob', { enabled: false })
    engine.runUser = async (uid) => {
      engine.calls.push(`user ${uid}`)
      await source.readUser(uid)
      return false
    }
    await poller.pollOnce()
    engine.runUser = async (uid) => {
      engine.calls.push(`user ${uid}`)
      await source.readUser(uid)
      return true
    }

    const again = await poller.pollOnce()

    expect(again.changes).toEqual([{ uid: 'bob', kind: 'disabled' }])
    expect(engine.calls).toEqual(['user bob', 'user bob'])
  })

  it('keeps a moved user for the next poll when its run threw', async () => {
    nc.setMembership('carol', ['engineering'])
    const runUser = engine.runUser
    engine.runUser = async () => {
      throw new Error('Keycloak is down')
    }
    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'carol', kind: 'groups' }])
    engine.runUser = runUser

    expect((await poller.pollOnce()).changes).toEqual([{ uid: 'carol', kind: 'groups' }])
  })

  it('polls on its own every interval once started, and stops with the schedule', async () => {
    const timed = new DirectoryPoller({
      source,
      engine,
      intervalSeconds: 0.05,
      pageSize: 2,
      log: silentLogger(),
    })
    const started: string[] = []
    const both = withPoll(
      {
        startSchedule: () => started.push('schedule'),
        stop: async () => void started.push('stop'),
      },
      timed,
    )
    await source.readAll()
    nc.addUser(aUser({ id: 'erin', groups: [] }))
    both.startSchedule()
    await vi.waitFor(() => expect(engine.calls).toContain('user erin'), { timeout: 10_000 })
    await both.stop()
    await timed.close()
    const after = nc.requests().length
    await new Promise((resolve) => setTimeout(resolve, 200))

    expect(started).toEqual(['schedule', 'stop'])
    expect(nc.requests().length).toBe(after)
  })
})

describe('the poll at 10 000 users', () => {
  it('costs a handful of requests and no user details when nothing changed', async () => {
    const directory = aDirectory({ users: 10_000, groups: 100, membershipsPerUser: 3, seed: 7 })
    const { nc, client } = await clientAgainstFake(directory)
    try {
      const source = new NextcloudSource({ client, pageSize: 500 })
      const engine = recordingEngine(source)
      const poller = new DirectoryPoller({
        source,
        engine,
        intervalSeconds: 0,
        pageSize: 500,
        log: silentLogger(),
      })
      await source.readAll()
      const before = nc.requests().length

      expect(await poller.pollOnce()).toEqual({ outcome: 'unchanged', changes: [] })
      const poll = nc.requests().slice(before)
      // every user is in a group: the disabled counts stand in for the list of disabled users
      expect(poll.map((r) => r.path.replace(/^\/ocs\/v2\.php/, ''))).toEqual([
        '/cloud/users',
        '/cloud/users',
        '/cloud/groups/details',
      ])
      await poller.close()
    } finally {
      await nc.close()
    }
  })
})

describe('change detection', () => {
  const known = new Map([
    ['alice', { enabled: true, groups: ['engineering'] }],
    ['bob', { enabled: false, groups: ['sales'] }],
    ['carol', { enabled: true, groups: [] }],
  ])

  it('names created, deleted, disabled and enabled users', () => {
    expect(diffUsers(known, { userIds: ['alice', 'bob', 'dave'], disabledIds: ['alice'] })).toEqual(
      [
        { uid: 'alice', kind: 'disabled' },
        { uid: 'bob', kind: 'enabled' },
        { uid: 'dave', kind: 'created' },
        { uid: 'carol', kind: 'deleted' },
      ],
    )
    expect(diffUsers(known, { userIds: ['alice', 'bob', 'carol'], disabledIds: ['bob'] })).toEqual(
      [],
    )
  })

  it('leaves enabled states alone without a list of disabled users', () => {
    expect(diffUsers(known, { userIds: ['alice', 'bob', 'carol'] })).toEqual([])
  })

  it('asks for the disabled users when a disabled count moved or a user is in no group', () => {
    const sales = aGroup({ id: 'sales', usercount: 1, disabled: 1 })
    const grouped = new Map([['bob', { enabled: false, groups: ['sales'] }]])
    const groups = new Map([['sales', sales]])
    expect(needsDisabledList({ users: grouped, groups }, [sales])).toBe(false)
    expect(needsDisabledList({ users: grouped, groups }, [{ ...sales, disabled: 0 }])).toBe(true)
    expect(needsDisabledList({ users: known, groups }, [sales])).toBe(true)
  })

  it('names the users who joined or left a group', () => {
    expect(movedMembers(known, 'engineering', ['carol', 'erin'])).toEqual([
      'alice',
      'carol',
      'erin',
    ])
    expect(movedMembers(known, 'sales', ['bob'])).toEqual([])
  })

  it('tells a created, renamed or deleted group apart from a count change', () => {
    const before = new Map([['sales', aGroup({ id: 'sales', displayname: 'Sales', usercount: 2 })]])
    expect(groupStructureChange(before, [aGroup({ id: 'sales', displayname: 'Sales' })])).toBe(
      undefined,
    )
    expect(groupStructureChange(before, [aGroup({ id: 'sales', displayname: 'Selling' })])).toBe(
      'group "sales" was renamed',
    )
    expect(groupStructureChange(before, [])).toBe('group "sales" was deleted')
  })

  it('weighs one-by-one syncs against a full read', () => {
    expect(targetedLimit(5, 500)).toBe(3)
    expect(targetedLimit(5, 2)).toBe(5)
    expect(targetedLimit(232, 500)).toBe(4)
    expect(targetedLimit(10_000, 500)).toBe(78)
  })
})

describe('NextcloudSource.readAll', () => {
  it('keeps of each user the normalised fields and those the profile mappings read', async () => {
    const { nc, client } = await clientAgainstFake({
      groups: [aGroup({ id: 'admin' })],
      users: [
        aUser({ id: 'admin', groups: ['admin'] }),
        aUser({ id: 'alice', organisation: 'ACME', phone: '+1 555' }),
      ],
    })
    try {
      const source = new NextcloudSource({ client, pageSize: 1, userFields: ['organisation'] })
      const { users } = await source.readAll()
      const alice = users.find((u) => u.id === 'alice')
      expect(alice).toMatchObject({ id: 'alice', enabled: true, organisation: 'ACME', groups: [] })
      expect(alice).not.toHaveProperty('phone')
      expect(alice).not.toHaveProperty('quota')
      expect(alice).not.toHaveProperty('backendCapabilities')
      // what the source reads one at a time (for /api/sync-user) keeps every field
      expect((await source.readUser('alice')).user).toHaveProperty('phone', '+1 555')
    } finally {
      await nc.close()
    }
  })
})
