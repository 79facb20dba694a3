import { describe, expect, it } from 'vitest'
import type { EventsCursor, StoredObject, SyncStateHeader } from '../db/sync-state-store.js'
import type { Actual } from './model.js'
import type { AdminEvent, ChangeFeed } from './realm-changes.js'
import { readBasis } from './run-basis.js'
import type { SyncTarget } from './run-types.js'
import { objectsOf } from './sync-state.js'

const now = new Date('2026-12-02T12:00:00.000Z')
const realmState: Actual = {
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
      groups: [],
      roles: [],
      linked: true,
    },
  ],
  groups: [],
  unmanagedUsernames: new Set(),
  unmanagedEmails: new Set(),
  unmanagedGroupNames: new Set(),
}

function setup(
  header: Partial<SyncStateHeader> | null,
  opts: { events?: readonly AdminEvent[]; realmId?: string; eventsOn?: boolean } = {},
) {
  const events = opts.events ?? [
    {
      id: 'e0',
      time: 100,
      operationType: 'CREATE',
      resourceType: 'USER',
      resourcePath: 'users/k1',
    },
  ]
  const feed: ChangeFeed = {
    realm: async () => ({ id: opts.realmId ?? 'r1', adminEventsEnabled: opts.eventsOn ?? true }),
    events: async (from, first, max) =>
      events.filter((e) => e.time >= from).slice(first, first + max),
    latest: async () => events.slice(-1),
    readUser: async () => ({ kind: 'gone' }),
    readGroup: async () => ({ kind: 'gone' }),
  }
  let snapshots = 0
  const primed: Actual[] = []
  const target = {
    feed,
    prime: (actual: Actual) => primed.push(actual),
    keycloakId: () => undefined,
    snapshot: async () => {
      snapshots++
      return realmState
    },
  } as unknown as SyncTarget
  const cursor: EventsCursor = { time: 100, seen: ['e0'] }
  const stored: SyncStateHeader | undefined = header
    ? {
        realmId: 'r1',
        eventsCursor: cursor,
        reconciledAt: new Date(now.getTime() - 60_000),
        trusted: true,
        ...header,
      }
    : undefined
  const objects: StoredObject[] = [...objectsOf(realmState)]
  const store = {
    getSyncState: async () => stored,
    async *readSyncObjects() {
      yield objects
    },
    listSyncFingerprints: async () =>
      objects.map(({ kind, key, fingerprint }) => ({ kind, key, fingerprint })),
    saveSyncState: async () => undefined,
    distrustSyncState: async () => undefined,
  }
  const deps = { realm: 'test', store, fullIntervalSeconds: 3600 }
  return { deps, target, primed, snapshots: () => snapshots }
}

describe('what a run plans against', () => {
  it('is the stored state when it is trusted, current and no event says otherwise', async () => {
    const { deps, target, primed, snapshots } = setup({})
    const basis = await readBasis(deps, target, {}, now)
    expect(basis).toMatchObject({ kind: 'stored', reads: 0, cursor: { time: 100, seen: ['e0'] } })
    expect(basis.actual.users).toEqual(realmState.users)
    expect(primed).toHaveLength(1)
    expect(snapshots()).toBe(0)
  })

  it.each([
    ['no stored state', null, {}, {}],
    ['the realm was recreated', {}, { realmId: 'r2' }, {}],
    ['the last run did not finish cleanly', { trusted: false }, {}, {}],
    ["the realm's admin events are off", {}, { eventsOn: false }, {}],
    ['a full reconciliation is due', { reconciledAt: new Date(now.getTime() - 3_600_000) }, {}, {}],
    ['a full run was asked for', {}, {}, { full: true }],
    ['a forced run reads the whole realm', {}, {}, { force: true }],
    ['admin events since the last run are gone (expired or cleared)', {}, { events: [] }, {}],
  ] as const)('is the realm read from Keycloak when %s', async (reason, header, opts, runOpts) => {
    const { deps, target, snapshots } = setup(header, opts)
    const basis = await readBasis(deps, target, runOpts, now)
    expect(basis).toMatchObject({ kind: 'full', reason })
    expect(snapshots()).toBe(1)
  })

  it('is the realm read from Keycloak when an event touches what a re-read cannot follow', async () => {
    const events: AdminEvent[] = [
      {
        id: 'e0',
        time: 100,
        operationType: 'CREATE',
        resourceType: 'USER',
        resourcePath: 'users/k1',
      },
      {
        id: 'e1',
        time: 120,
        operationType: 'DELETE',
        resourceType: 'REALM_ROLE',
        resourcePath: 'roles/crm',
      },
    ]
    const { deps, target } = setup({}, { events })
    expect(await readBasis(deps, target, {}, now)).toMatchObject({
      kind: 'full',
      reason: 'a REALM_ROLE DELETE event',
    })
  })
})
