import { describe, expect, it } from 'vitest'
import type { Change } from './changes.js'
import type { Actual, ActualGroup, ActualUser, DesiredGroup, DesiredUser } from './model.js'
import { planSync, type SyncPolicy } from './plan.js'

const aDesiredUser = (uid: string, overrides: Partial<DesiredUser> = {}): DesiredUser => ({
  uid,
  username: uid.toLowerCase(),
  email: `${uid.toLowerCase()}@example.com`,
  firstName: uid,
  lastName: 'Tester',
  enabled: true,
  groups: [],
  roles: [],
  attributes: {},
  ...overrides,
})

/** The Keycloak user a clean sync of `aDesiredUser(uid, overrides)` leaves behind. */
const anActualUser = (uid: string, overrides: Partial<ActualUser> = {}): ActualUser => {
  const { roles, groups, ...fields } = aDesiredUser(uid)
  return { id: `id-${uid}`, ...fields, groups, roles, linked: true, ...overrides }
}

const aGroup = (gid: string, displayName = gid.toUpperCase()): DesiredGroup => ({
  gid,
  displayName,
})
const anActualGroup = (gid: string, displayName = gid.toUpperCase()): ActualGroup => ({
  id: `id-${gid}`,
  gid,
  displayName,
})

const anActual = (overrides: Partial<Actual> = {}): Actual => ({
  users: [],
  groups: [],
  unmanagedUsernames: new Set(),
  unmanagedEmails: new Set(),
  unmanagedGroupNames: new Set(),
  ...overrides,
})

const aPolicy = (overrides: Partial<SyncPolicy> = {}): SyncPolicy => ({
  deletePolicy: 'disable',
  guardPercent: 20,
  force: false,
  managedRoles: ['crm', 'ops'],
  ...overrides,
})

const plan = (
  users: DesiredUser[],
  actual: Partial<Actual>,
  options: { groups?: DesiredGroup[]; policy?: Partial<SyncPolicy> } = {},
) => planSync({ users, groups: options.groups ?? [] }, anActual(actual), aPolicy(options.policy))

const changesFor = (changes: Change[], uid: string) =>
  changes.filter((c) => 'uid' in c && c.uid === uid)

describe('planSync', () => {
  it('plans nothing when both sides agree', () => {
    const groups = [aGroup('sales')]
    const users = [
      aDesiredUser('alice', { groups: ['sales'], roles: ['crm'], attributes: { org: ['ACME'] } }),
    ]
    const actual = {
      users: [
        anActualUser('alice', { groups: ['sales'], roles: ['crm'], attributes: { org: ['ACME'] } }),
      ],
      groups: [anActualGroup('sales')],
    }
    expect(plan(users, actual, { groups })).toEqual({
      changes: [],
      conflicts: [],
      guard: { tripped: false, forced: false, affected: 0, managed: 1, limit: 0 },
    })
  })

  it('creates a new user with its link, memberships and managed roles, in kind order', () => {
    const groups = [aGroup('sales'), aGroup('admin')]
    const alice = aDesiredUser('alice', { groups: ['admin', 'sales'], roles: ['crm', 'unmapped'] })
    const { changes } = plan([alice], { groups: [anActualGroup('admin')] }, { groups })
    expect(changes).toEqual([
      { kind: 'create-group', gid: 'sales', displayName: 'SALES' },
      {
        kind: 'create-user',
        uid: 'alice',
        user: {
          uid: 'alice',
          username: 'alice',
          email: 'alice@example.com',
          firstName: 'alice',
          lastName: 'Tester',
          enabled: true,
          attributes: {},
        },
      },
      { kind: 'link-identity', uid: 'alice' },
      { kind: 'add-member', uid: 'alice', gid: 'admin' },
      { kind: 'add-member', uid: 'alice', gid: 'sales' },
      { kind: 'grant-role', uid: 'alice', role: 'crm' },
    ])
  })

  it('updates only the fields that changed, with before and after', () => {
    const desired = aDesiredUser('alice', {
      email: 'new@example.com',
      lastName: 'Anders',
      attributes: { org: ['ACME'], phone: ['+1'] },
    })
    const actual = anActualUser('alice', {
      attributes: { org: ['Old'], dept: ['R&D'], phone: ['+1'] },
    })
    expect(plan([desired], { users: [actual] }).changes).toEqual([
      {
        kind: 'update-user',
        uid: 'alice',
        before: {
          email: 'alice@example.com',
          lastName: 'Tester',
          attributes: { dept: ['R&D'], org: ['Old'] },
        },
        after: {
          email: 'new@example.com',
          lastName: 'Anders',
          attributes: { dept: null, org: ['ACME'] },
        },
      },
    ])
  })

  it.each([
    [
      'disables a user disabled in Nextcloud',
      false,
      true,
      { kind: 'disable-user', uid: 'alice', reason: 'disabled' },
    ],
    ['re-enables a user enabled again', true, false, { kind: 'enable-user', uid: 'alice' }],
  ])('%s', (_, desiredEnabled, actualEnabled, change) => {
    const { changes } = plan([aDesiredUser('alice', { enabled: desiredEnabled })], {
      users: [anActualUser('alice', { enabled: actualEnabled })],
    })
    expect(changes).toEqual([change])
  })

  it('links a managed user that has no federated identity yet', () => {
    const { changes } = plan([aDesiredUser('alice')], {
      users: [anActualUser('alice', { linked: false })],
    })
    expect(changes).toEqual([{ kind: 'link-identity', uid: 'alice' }])
  })

  describe('users gone from Nextcloud', () => {
    const actual = {
      users: [anActualUser('keep'), anActualUser('gone'), anActualUser('off', { enabled: false })],
    }
    const policy = { guardPercent: 100 }

    it('disables them by default, leaving already disabled ones alone', () => {
      const { changes } = plan([aDesiredUser('keep')], actual, { policy })
      expect(changes).toEqual([{ kind: 'disable-user', uid: 'gone', reason: 'removed' }])
    })

    it('deletes them under the delete policy', () => {
      const { changes } = plan([aDesiredUser('keep')], actual, {
        policy: { ...policy, deletePolicy: 'delete' },
      })
      expect(changes).toEqual([
        { kind: 'delete-user', uid: 'gone' },
        { kind: 'delete-user', uid: 'off' },
      ])
    })
  })

  describe('groups', () => {
    it('renames the display name of a managed group', () => {
      const { changes } = plan(
        [],
        { groups: [anActualGroup('sales', 'Sales')] },
        { groups: [aGroup('sales', 'Sales EU')] },
      )
      expect(changes).toEqual([
        {
          kind: 'update-group',
          gid: 'sales',
          before: { displayName: 'Sales' },
          after: { displayName: 'Sales EU' },
        },
      ])
    })

    it('adds and removes memberships', () => {
      const groups = [aGroup('a'), aGroup('b'), aGroup('c')]
      const actual = {
        users: [anActualUser('alice', { groups: ['a', 'b'] })],
        groups: groups.map((g) => anActualGroup(g.gid)),
      }
      const { changes } = plan([aDesiredUser('alice', { groups: ['b', 'c'] })], actual, { groups })
      expect(changes).toEqual([
        { kind: 'add-member', uid: 'alice', gid: 'c' },
        { kind: 'remove-member', uid: 'alice', gid: 'a' },
      ])
    })

    it('deletes a managed group gone from Nextcloud without removing its members first', () => {
      const actual = {
        users: [anActualUser('alice', { groups: ['old', 'kept'] })],
        groups: [anActualGroup('old'), anActualGroup('kept')],
      }
      const { changes } = plan([aDesiredUser('alice', { groups: ['kept'] })], actual, {
        groups: [aGroup('kept')],
      })
      expect(changes).toEqual([{ kind: 'delete-group', gid: 'old' }])
    })
  })

  it('grants and revokes managed roles only', () => {
    const actual = { users: [anActualUser('alice', { roles: ['crm', 'legacy'] })] }
    const desired = aDesiredUser('alice', { roles: ['ops', 'unmapped'] })
    expect(plan([desired], actual).changes).toEqual([
      { kind: 'grant-role', uid: 'alice', role: 'ops' },
      { kind: 'revoke-role', uid: 'alice', role: 'crm' },
    ])
  })

  describe('conflicts', () => {
    it('never adopts a user whose username an unmanaged user holds', () => {
      const result = plan(
        [aDesiredUser('admin', { groups: ['a'] })],
        { unmanagedUsernames: new Set(['admin']) },
        {
          groups: [aGroup('a')],
        },
      )
      expect(changesFor(result.changes, 'admin')).toEqual([])
      expect(result.conflicts).toEqual([
        { kind: 'username-taken', uid: 'admin', username: 'admin', holder: null },
      ])
    })

    it('creates users with every uid Nextcloud accepts, the username lower-cased', () => {
      const uids = ['john doe', "o'brien", 'a.b@example.org', 'MaxMustermann', 'jo', '-x_y.z']
      const result = plan(
        uids.map((uid) => aDesiredUser(uid)),
        {},
      )
      expect(result.conflicts).toEqual([])
      const created = result.changes.flatMap((c) =>
        c.kind === 'create-user' ? [[c.uid, c.user.username]] : [],
      )
      expect(created.sort()).toEqual(uids.map((uid) => [uid, uid.toLowerCase()]).sort())
    })

    it('reports a uid Keycloak would refuse once as a conflict with the reason, not a failing create', () => {
      const long = 'a'.repeat(256)
      const result = plan([aDesiredUser('ünï'), aDesiredUser('a/b'), aDesiredUser(long)], {})
      expect(result.changes).toEqual([])
      expect(result.conflicts).toEqual([
        { kind: 'uid-refused', uid: 'a/b', reason: expect.stringMatching(/characters outside/) },
        { kind: 'uid-refused', uid: long, reason: expect.stringMatching(/longer than the 255/) },
        { kind: 'uid-refused', uid: 'ünï', reason: expect.stringMatching(/characters outside/) },
      ])
    })

    it('keeps syncing a user already in Keycloak whatever its uid', () => {
      const result = plan([aDesiredUser('ünï', { firstName: 'Ü' })], {
        users: [anActualUser('ünï')],
      })
      expect(result.conflicts).toEqual([])
      expect(result.changes.map((c) => c.kind)).toEqual(['update-user'])
    })

    it('gives a username two uids share by case to the earlier uid', () => {
      const result = plan([aDesiredUser('bob'), aDesiredUser('Bob', { email: null })], {})
      expect(result.changes.map((c) => c.kind === 'create-user' && c.uid)).toContain('Bob')
      expect(changesFor(result.changes, 'bob')).toEqual([])
      expect(result.conflicts).toEqual([
        { kind: 'username-taken', uid: 'bob', username: 'bob', holder: 'Bob' },
      ])
    })

    it('leaves a username with the user already holding it in Keycloak', () => {
      const result = plan([aDesiredUser('Bob', { email: null }), aDesiredUser('bob')], {
        users: [anActualUser('bob')],
      })
      expect(result.changes).toEqual([])
      expect(result.conflicts).toEqual([
        { kind: 'username-taken', uid: 'Bob', username: 'bob', holder: 'bob' },
      ])
    })

    it('syncs a user without the email an unmanaged user holds', () => {
      const result = plan([aDesiredUser('alice')], {
        unmanagedEmails: new Set(['alice@example.com']),
      })
      const create = result.changes.find((c) => c.kind === 'create-user')
      expect(create?.kind === 'create-user' && create.user.email).toBeNull()
      expect(result.conflicts).toEqual([
        { kind: 'email-taken', uid: 'alice', email: 'alice@example.com', holder: null },
      ])
    })

    it('gives an email two new users share to the earlier uid', () => {
      const shared = { email: 'team@example.com' }
      const result = plan([aDesiredUser('zed', shared), aDesiredUser('amy', shared)], {})
      const emails = result.changes.flatMap((c) =>
        c.kind === 'create-user' ? [[c.uid, c.user.email]] : [],
      )
      expect(emails).toEqual([
        ['amy', 'team@example.com'],
        ['zed', null],
      ])
      expect(result.conflicts).toEqual([
        { kind: 'email-taken', uid: 'zed', email: 'team@example.com', holder: 'amy' },
      ])
    })

    it('leaves an email with the managed user already holding it', () => {
      const result = plan(
        [aDesiredUser('amy', { email: 'zed@example.com' }), aDesiredUser('zed')],
        {
          users: [anActualUser('zed')],
        },
      )
      expect(result.changes.find((c) => c.kind === 'create-user')).toMatchObject({
        user: { email: null },
      })
      expect(result.conflicts).toEqual([
        { kind: 'email-taken', uid: 'amy', email: 'zed@example.com', holder: 'zed' },
      ])
    })

    it('keeps an email held by a managed user gone from Nextcloud for that user', () => {
      const result = plan(
        [aDesiredUser('new', { email: 'old@example.com' }), aDesiredUser('keep')],
        {
          users: [
            anActualUser('old'),
            anActualUser('keep'),
            anActualUser('other'),
            anActualUser('more'),
          ],
        },
        { policy: { guardPercent: 50 } },
      )
      expect(result.conflicts).toEqual([
        { kind: 'email-taken', uid: 'new', email: 'old@example.com', holder: 'old' },
      ])
    })

    it('moves an email another user gives up in the same run after that user’s update', () => {
      const result = plan(
        [
          aDesiredUser('amy', { email: 'amy.new@example.com' }),
          aDesiredUser('bob', { email: 'amy@example.com' }),
        ],
        { users: [anActualUser('amy'), anActualUser('bob')] },
      )
      expect(result.conflicts).toEqual([])
      expect(result.changes).toEqual([
        {
          kind: 'update-user',
          uid: 'amy',
          before: { email: 'amy@example.com' },
          after: { email: 'amy.new@example.com' },
        },
        {
          kind: 'update-user',
          uid: 'bob',
          before: { email: 'bob@example.com' },
          after: { email: 'amy@example.com' },
          emailFrom: 'amy',
        },
      ])
    })

    it('breaks an email swap by clearing both this run', () => {
      const result = plan(
        [
          aDesiredUser('amy', { email: 'bob@example.com' }),
          aDesiredUser('bob', { email: 'amy@example.com' }),
        ],
        { users: [anActualUser('amy'), anActualUser('bob')] },
      )
      expect(result.changes.map((c) => c.kind === 'update-user' && c.after)).toEqual([
        { email: null },
        { email: null },
      ])
      expect(result.conflicts).toEqual([
        { kind: 'email-pending', uid: 'amy', email: 'bob@example.com', holder: 'bob' },
        { kind: 'email-pending', uid: 'bob', email: 'amy@example.com', holder: 'amy' },
      ])
    })

    it('reports a group whose name an unmanaged group holds and adds nobody to it', () => {
      const result = plan(
        [aDesiredUser('alice', { groups: ['staff'] })],
        { unmanagedGroupNames: new Set(['staff']) },
        {
          groups: [aGroup('staff')],
        },
      )
      expect(result.changes.map((c) => c.kind)).toEqual(['create-user', 'link-identity'])
      expect(result.conflicts).toEqual([{ kind: 'group-name-taken', gid: 'staff' }])
    })

    it('syncs only the first of two Keycloak users carrying the same uid marker', () => {
      const result = plan([aDesiredUser('alice', { lastName: 'New' })], {
        users: [anActualUser('alice', { id: 'b' }), anActualUser('alice', { id: 'a' })],
      })
      expect(result.changes).toHaveLength(1)
      expect(result.conflicts).toEqual([{ kind: 'duplicate-managed-user', uid: 'alice', id: 'b' }])
    })
  })

  describe('deletion guard', () => {
    /** `managed` managed users of whom the first `affected` are disabled in Nextcloud. */
    const guardOf = (managed: number, affected: number, policy: Partial<SyncPolicy>) => {
      const uids = Array.from({ length: managed }, (_, i) => `u${String(i).padStart(3, '0')}`)
      const users = uids.map((uid, i) => aDesiredUser(uid, { enabled: i >= affected }))
      return plan(users, { users: uids.map((uid) => anActualUser(uid)) }, { policy }).guard
    }

    it.each([
      [10, 20, 2, false],
      [10, 20, 3, true],
      [4, 20, 0, false],
      [4, 20, 1, true],
      [5, 20, 1, false],
      [5, 20, 2, true],
      [30, 10, 3, false],
      [30, 10, 4, true],
      [3, 0, 1, true],
      [10, 100, 10, false],
      [7, 12.5, 0, false],
      [8, 12.5, 1, false],
      [8, 12.5, 2, true],
    ])(
      'with %i managed at %s%%, %i affected trips: %s',
      (managed, guardPercent, affected, tripped) => {
        const guard = guardOf(managed, affected, { guardPercent })
        expect(guard).toMatchObject({ tripped, forced: false, affected, managed })
        expect(guard.limit).toBe(Math.floor((guardPercent * managed) / 100 + 1e-9))
        expect(guard.reason !== undefined).toBe(tripped)
      },
    )

    it('says why it tripped', () => {
      expect(guardOf(10, 3, {}).reason).toBe(
        '3 of 10 managed users would be disabled or deleted, more than the 20% guard allows (2)',
      )
    })

    it('lets a forced plan through and says it was forced', () => {
      expect(guardOf(10, 3, { force: true })).toMatchObject({
        tripped: false,
        forced: true,
        affected: 3,
      })
    })

    it('counts removals and deletions of already disabled users alike', () => {
      const actual = {
        users: ['a', 'b', 'c', 'd', 'e'].map((uid) => anActualUser(uid, { enabled: uid !== 'e' })),
      }
      const desired = ['a', 'b', 'c'].map((uid) => aDesiredUser(uid))
      expect(plan(desired, actual, { policy: { guardPercent: 40 } }).guard).toMatchObject({
        tripped: false,
        affected: 1,
      })
      const deleting = { guardPercent: 20, deletePolicy: 'delete' as const }
      expect(plan(desired, actual, { policy: deleting }).guard).toMatchObject({
        tripped: true,
        affected: 2,
      })
    })

    it('always trips when Nextcloud returned no users while managed users exist', () => {
      const actual = { users: [anActualUser('alice', { enabled: false })] }
      const guard = plan([], actual, { policy: { guardPercent: 100 } }).guard
      expect(guard).toMatchObject({ tripped: true, affected: 0, managed: 1 })
      expect(guard.reason).toBe('Nextcloud returned no users while 1 managed users exist')
      expect(plan([], actual, { policy: { force: true } }).guard).toMatchObject({
        tripped: false,
        forced: true,
      })
    })

    it('does not trip on an empty realm and an empty Nextcloud', () => {
      expect(plan([], {}).guard).toEqual({
        tripped: false,
        forced: false,
        affected: 0,
        managed: 0,
        limit: 0,
      })
    })

    it('still lists every change of a tripped plan, for the report', () => {
      const result = plan([], { users: [anActualUser('alice')] })
      expect(result.changes).toEqual([{ kind: 'disable-user', uid: 'alice', reason: 'removed' }])
    })
  })

  it('gives the same bytes whatever the input order', () => {
    const groups = [aGroup('b'), aGroup('a'), aGroup('c')]
    const users = [
      aDesiredUser('carl', { groups: ['a', 'c'], roles: ['ops', 'crm'] }),
      aDesiredUser('amy', { groups: ['c', 'b'], email: 'x@example.com' }),
      aDesiredUser('bob', { groups: ['b'], email: 'x@example.com' }),
    ]
    const actual = {
      users: [
        anActualUser('dan', { groups: ['a'] }),
        anActualUser('amy', { groups: ['a'], linked: false }),
      ],
      groups: [anActualGroup('z'), anActualGroup('a', 'old')],
    }
    const forward = plan(users, actual, { groups, policy: { force: true } })
    const backward = plan(
      [...users].reverse(),
      { ...actual, users: [...actual.users].reverse(), groups: [...actual.groups].reverse() },
      {
        groups: [...groups].reverse(),
        policy: { force: true },
      },
    )
    expect(JSON.stringify(backward)).toBe(JSON.stringify(forward))
    expect(forward.changes.map((c) => c.kind)).toEqual([
      'create-group',
      'create-group',
      'update-group',
      'create-user',
      'create-user',
      'update-user',
      'link-identity',
      'link-identity',
      'link-identity',
      'add-member',
      'add-member',
      'add-member',
      'add-member',
      'add-member',
      'grant-role',
      'grant-role',
      'remove-member',
      'disable-user',
      'delete-group',
    ])
  })
})
