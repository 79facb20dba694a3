import { describe, expect, it } from 'vitest'
import { aGroup, aUser, type UserRecord } from '../../test/builders.js'
import { MemoryDirectory } from '../../test/memory-directory.js'
import type { Config } from '../config/config.js'
import { createLocalLocks } from '../db/locks.js'
import type { RunOutcome, Store } from '../db/store.js'
import { silentLogger } from '../log.js'
import { SyncEngine, type SyncEngineDeps } from './engine.js'
import type { NextcloudDirectory } from './nextcloud-source.js'

const policy: Config['sync'] = {
  intervalSeconds: 0,
  deletePolicy: 'disable',
  guardPercent: 50,
  gateGroups: [],
  roleMappings: [{ group: 'sales', role: 'crm' }],
  profileFields: [],
  pageSize: 100,
  concurrency: 2,
}

interface StoredRun extends Omit<Partial<RunOutcome>, 'status'> {
  id: number
  realm: string
  status: string
}

/** The part of the store the engine uses, in memory. */
function memoryStore() {
  const runs = new Map<number, StoredRun>()
  let next = 0
  const store = {
    async startRun({ realm }: { realm: string }) {
      next += 1
      runs.set(next, { id: next, realm, status: 'running' })
      return next
    },
    async finishRun<T>(id: number, { entry, ...outcome }: RunOutcome<T>) {
      const run = runs.get(id)
      if (run) {
        const changelog = entry ? outcome.changelog?.map(entry) : outcome.changelog
        runs.set(id, { ...run, ...outcome, changelog })
      }
    },
    async pruneRuns() {
      return 0
    },
    async interruptRuns(realm: string) {
      let marked = 0
      for (const run of runs.values()) {
        if (run.realm === realm && run.status === 'running') {
          run.status = 'interrupted'
          marked++
        }
      }
      return marked
    },
  }
  return { store: store as unknown as Store, runs }
}

/** A Nextcloud a test edits between runs. */
function nextcloud(users: UserRecord[]) {
  const directory: NextcloudDirectory = {
    users,
    groups: [aGroup({ id: 'sales' }), aGroup({ id: 'staff' })],
  }
  return {
    directory,
    update(uid: string, change: Partial<UserRecord>) {
      directory.users = directory.users.map((u) => (u.id === uid ? { ...u, ...change } : u))
    },
    source: {
      readAll: async () => structuredClone(directory),
      readUser: async (uid: string) => ({
        user: structuredClone(directory.users.find((u) => u.id === uid) ?? null),
        groups: structuredClone(directory.groups),
      }),
    },
  }
}

function anEngine(users: UserRecord[], overrides: Partial<SyncEngineDeps> = {}) {
  const nc = nextcloud(users)
  const realm = new MemoryDirectory()
  const { store, runs } = memoryStore()
  const locks = createLocalLocks()
  const revoked: string[] = []
  const engine = new SyncEngine({
    realm: 'test',
    source: nc.source,
    target: () => realm,
    store,
    lock: (key) => locks.lock(key),
    tryLock: (key) => locks.tryLock(key),
    policy,
    log: silentLogger(),
    onUserRevoked: (uid) => revoked.push(uid),
    ...overrides,
  })
  return { engine, nc, realm, store, runs, revoked, locks }
}

const people = () => [
  aUser({ id: 'alice', displayname: 'Alice Anders', groups: ['sales', 'staff'] }),
  aUser({ id: 'bob', displayname: 'Bob Berg', groups: ['staff'] }),
  aUser({ id: 'carol', displayname: 'Carol Cruz', groups: [] }),
  aUser({ id: 'dave', displayname: 'Dave Dunn', groups: [] }),
]

describe('cached tokens after a run', () => {
  it('are dropped for every user a run changes, not only for disabled ones', async () => {
    const { engine, nc, revoked } = anEngine(people())
    expect((await engine.runFull({ trigger: 'api' })).status).toBe('succeeded')
    revoked.length = 0

    nc.update('alice', { displayname: 'Alicia Anders' })
    nc.update('bob', { email: 'robert@example.com' })
    nc.update('carol', { groups: ['sales'] })
    nc.update('dave', { enabled: false })
    const run = await engine.runFull({ trigger: 'api' })
    expect(run.counts).toEqual({
      'update-user': 2,
      'add-member': 1,
      'grant-role': 1,
      'disable-user': 1,
    })
    expect([...new Set(revoked)].sort()).toEqual(['alice', 'bob', 'carol', 'dave'])
  })

  it('are dropped for the members of a renamed or deleted group', async () => {
    const { engine, nc, revoked } = anEngine(people())
    await engine.runFull({ trigger: 'api' })
    revoked.length = 0
    nc.directory.groups = [aGroup({ id: 'sales' })]
    const run = await engine.runFull({ trigger: 'api' })
    expect(run.counts).toEqual({ 'delete-group': 1 })
    expect([...new Set(revoked)].sort()).toEqual(['alice', 'bob'])
  })

  it('are dropped by a single-user run that changes the user, and kept by one that does not', async () => {
    const { engine, nc, revoked } = anEngine(people())
    await engine.runFull({ trigger: 'api' })
    revoked.length = 0
    expect((await engine.runUser('bob', 'token')).action).toBe('unchanged')
    expect(revoked).toEqual([])
    nc.update('bob', { displayname: 'Robert Berg' })
    expect((await engine.runUser('bob', 'user')).action).toBe('updated')
    expect(revoked).toEqual(['bob'])
  })
})

describe('stored run status', () => {
  it('is partial, as the API says, when some writes failed', async () => {
    const { engine, realm, runs } = anEngine(people())
    realm.failOn('createUser', 'bob', new Error('Keycloak answered 503'))
    const run = await engine.runFull({ trigger: 'api' })
    expect(run).toMatchObject({ status: 'partial', failed: 3 })
    expect(run.errors).toContain('create-user bob: Keycloak answered 503')
    expect(runs.get(run.runId)?.status).toBe('partial')
  })

  it('marks a run a dead process left running as interrupted at the next run', async () => {
    const { engine, runs } = await withLeftRun()
    const run = await engine.runFull({ trigger: 'schedule' })
    expect(runs.get(1)?.status).toBe('interrupted')
    expect(runs.get(run.runId)?.status).toBe('succeeded')
  })

  it('marks left runs at start, unless another process holds the realm lock', async () => {
    const busy = await withLeftRun()
    const release = await busy.locks.tryLock('sync:test')
    await busy.engine.recoverInterruptedRuns()
    expect(busy.runs.get(1)?.status).toBe('running')
    await release?.()
    await busy.engine.recoverInterruptedRuns()
    expect(busy.runs.get(1)?.status).toBe('interrupted')
  })

  it('marks left runs before a single-user run too, never the run itself', async () => {
    const { engine, runs } = await withLeftRun()
    const result = await engine.runUser('alice', 'token')
    expect(runs.get(1)?.status).toBe('interrupted')
    expect(runs.get(result.run.runId)?.status).toBe('succeeded')
  })
})

describe('the heap between the phases of a run', () => {
  it('is offered a collection after the writes to Keycloak and again after the state, before the changelog', async () => {
    const seen: { users: number; changelogStored: boolean }[] = []
    const setup = anEngine(people(), {
      collectGarbage: () =>
        seen.push({
          users: setup.realm.snapshot().users.length,
          changelogStored: setup.runs.get(1)?.changelog !== undefined,
        }),
    })
    const run = await setup.engine.runFull({ trigger: 'api' })
    expect(run.runId).toBe(1)
    expect(seen).toEqual([
      { users: 4, changelogStored: false },
      { users: 4, changelogStored: false },
    ])
    // and the changelog was stored after them, whole
    const applied = Object.values(run.counts).reduce((a, b) => a + b, 0)
    expect(applied).toBeGreaterThan(4)
    expect(setup.runs.get(1)?.changelog).toHaveLength(applied)
  })

  it('is not offered one by a dry run, which writes nothing', async () => {
    let offered = 0
    const { engine } = anEngine(people(), { collectGarbage: () => offered++ })
    await engine.runFull({ trigger: 'api', dryRun: true })
    expect(offered).toBe(0)
  })
})

/** An engine whose store holds run 1, started by a process that died (still `running`). */
async function withLeftRun() {
  const setup = anEngine(people())
  expect(await setup.store.startRun({ realm: 'test', trigger: 'schedule', dryRun: false })).toBe(1)
  return setup
}

describe('a single-user run', () => {
  it('syncs a user without the email another managed user holds, instead of a refused create', async () => {
    const { engine, nc, realm } = anEngine(people())
    await engine.runFull({ trigger: 'api' })
    nc.directory.users.push(aUser({ id: 'zed', email: 'alice@example.com' }))
    const result = await engine.runUser('zed', 'token')
    expect(result.action).toBe('created')
    expect(result.run.failed).toBe(0)
    expect(result.run.conflicts).toEqual([
      { kind: 'email-taken', uid: 'zed', email: 'alice@example.com', holder: 'alice' },
    ])
    const users = realm.snapshot().users
    expect(users.find((u) => u.uid === 'zed')?.email).toBeNull()
    expect(users.find((u) => u.uid === 'alice')?.email).toBe('alice@example.com')
  })

  it('leaves the other users alone', async () => {
    const { engine, nc, realm } = anEngine(people())
    await engine.runFull({ trigger: 'api' })
    nc.directory.users = nc.directory.users.filter((u) => u.id !== 'carol')
    nc.update('bob', { displayname: 'Robert Berg' })
    const before = realm.writeCount
    expect((await engine.runUser('alice', 'user')).action).toBe('unchanged')
    expect(realm.writeCount).toBe(before)
  })
})
