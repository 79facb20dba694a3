import { describe, expect, it } from 'vitest'
import {
  type DesiredPolicy,
  managedGid,
  managedUid,
  type NextcloudGroup,
  type NextcloudUser,
  normalizeEmail,
  splitDisplayName,
  toDesired,
  userMarkers,
} from './model.js'

const aUser = (overrides: Partial<NextcloudUser> = {}): NextcloudUser => ({
  id: 'alice',
  enabled: true,
  email: 'alice@example.com',
  displayname: 'Alice Anders',
  groups: [],
  ...overrides,
})

const aGroup = (id: string, displayname = id): NextcloudGroup => ({ id, displayname })

const aPolicy = (overrides: Partial<DesiredPolicy> = {}): DesiredPolicy => ({
  gateGroups: [],
  roleMappings: [],
  profileFields: [],
  ...overrides,
})

const desiredUser = (user: NextcloudUser, groups: NextcloudGroup[] = [], policy = aPolicy()) => {
  const [desired] = toDesired([user], groups, policy).users
  if (!desired) {
    throw new Error('toDesired dropped the user')
  }
  return desired
}

describe('splitDisplayName', () => {
  const long = 'x'.repeat(300)
  // An emoji at the cut would leave half a surrogate pair behind.
  const emojiAtCut = `${'y'.repeat(254)}😀z`
  it.each([
    ['Alice Anders', 'alice', 'Alice', 'Anders'],
    ['Anna Maria van der Berg', 'anna', 'Anna', 'Maria van der Berg'],
    ['  Bob   Berg  ', 'bob', 'Bob', 'Berg'],
    ['Cher', 'cher', 'Cher', 'Cher'],
    ['', 'dave', 'dave', 'dave'],
    ['   ', 'erin', 'erin', 'erin'],
    ['Tab\tSeparated', 'tab', 'Tab', 'Separated'],
    [long, 'long', 'x'.repeat(255), 'x'.repeat(255)],
    [`First ${long}`, 'f', 'First', 'x'.repeat(255)],
    [emojiAtCut, 'e', 'y'.repeat(254), 'y'.repeat(254)],
  ])('splits %j (uid %s) into %j / %j', (displayName, uid, firstName, lastName) => {
    expect(splitDisplayName(displayName, uid)).toEqual({ firstName, lastName })
  })
})

describe('normalizeEmail', () => {
  it.each([
    ['alice@example.com', 'alice@example.com'],
    ['  Alice@Example.COM ', 'alice@example.com'],
    ['', null],
    [null, null],
    [undefined, null],
    [42, null],
    ['not-an-address', null],
    ['@example.com', null],
    ['alice@', null],
    ['a b@example.com', null],
    ['a@b@example.com', null],
    [`${'l'.repeat(65)}@example.com`, null],
    [`a@${'d'.repeat(260)}`, null],
  ])('normalizes %j to %j', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected)
  })
})

describe('toDesired', () => {
  it('mirrors a Nextcloud user as the fixture shows it', () => {
    const user = desiredUser(aUser({ groups: ['engineering'] }), [
      aGroup('engineering', 'Engineering'),
    ])
    expect(user).toEqual({
      uid: 'alice',
      username: 'alice',
      email: 'alice@example.com',
      firstName: 'Alice',
      lastName: 'Anders',
      enabled: true,
      groups: ['engineering'],
      roles: [],
      attributes: {},
    })
  })

  it('reads display-name when displayname is missing', () => {
    const user = desiredUser(aUser({ displayname: undefined, 'display-name': 'Bob Berg' }))
    expect([user.firstName, user.lastName]).toEqual(['Bob', 'Berg'])
  })

  it.each([
    [true, true],
    [false, false],
    [undefined, true],
    [null, true],
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
    [1, true],
    [0, false],
  ])('maps enabled %j to %j', (enabled, expected) => {
    expect(desiredUser(aUser({ enabled })).enabled).toBe(expected)
  })

  describe('gate groups', () => {
    const gate = aPolicy({ gateGroups: ['staff', 'guests'] })
    it.each([
      ['a member of one gate group', ['staff'], true, true],
      ['a member of another gate group', ['other', 'guests'], true, true],
      ['outside every gate group', ['other'], true, false],
      ['in a gate group but disabled in Nextcloud', ['staff'], false, false],
    ])('enables a user %s only when allowed', (_, groups, enabled, expected) => {
      expect(desiredUser(aUser({ groups, enabled }), [], gate).enabled).toBe(expected)
    })

    it('enables everyone when no gate is configured', () => {
      expect(desiredUser(aUser({ groups: [] })).enabled).toBe(true)
    })
  })

  it('keeps only groups present in the group list, sorted and unique', () => {
    const user = desiredUser(aUser({ groups: ['sales', 'ghost', 'admin', 'sales'] }), [
      aGroup('admin'),
      aGroup('sales'),
    ])
    expect(user.groups).toEqual(['admin', 'sales'])
  })

  it('maps roles from the groups a user is in, sorted and unique', () => {
    const policy = aPolicy({
      roleMappings: [
        { group: 'admin', role: 'realm-admin' },
        { group: 'sales', role: 'crm' },
        { group: 'staff', role: 'crm' },
        { group: 'other', role: 'never' },
      ],
    })
    // The gate and the role mappings read Nextcloud's membership, even of an unlisted group.
    const user = desiredUser(
      aUser({ groups: ['staff', 'sales', 'admin'] }),
      [aGroup('admin')],
      policy,
    )
    expect(user.roles).toEqual(['crm', 'realm-admin'])
  })

  it('maps configured profile fields to attributes, leaving empty ones out', () => {
    const policy = aPolicy({
      profileFields: [
        { field: 'organisation', attribute: 'org' },
        { field: 'phone', attribute: 'phone' },
        { field: 'missing', attribute: 'missing' },
        { field: 'additional_mail', attribute: 'aliases' },
        { field: 'quota', attribute: 'quota' },
        { field: 'lastLogin', attribute: 'lastLogin' },
        { field: 'organisation', attribute: 'nextcloud_uid' },
      ],
    })
    const user = desiredUser(
      aUser({
        organisation: ' ACME ',
        phone: '',
        additional_mail: ['a@x.org', '', 'b@x.org'],
        quota: { used: 0 },
        lastLogin: 0,
      }),
      [],
      policy,
    )
    expect(user.attributes).toEqual({
      aliases: ['a@x.org', 'b@x.org'],
      lastLogin: ['0'],
      org: ['ACME'],
    })
  })

  it('lower-cases the username and keeps the exact uid', () => {
    const user = desiredUser(aUser({ id: 'Alice.Anders' }))
    expect([user.uid, user.username]).toEqual(['Alice.Anders', 'alice.anders'])
  })

  it('keeps both uids that differ only by case, for the planner to arbitrate', () => {
    const { users } = toDesired([aUser({ id: 'bob' }), aUser({ id: 'Bob' })], [], aPolicy())
    expect(users.map((u) => [u.uid, u.username])).toEqual([
      ['Bob', 'bob'],
      ['bob', 'bob'],
    ])
  })

  it('keeps a uid seen twice once, and sorts users and groups', () => {
    const desired = toDesired(
      [aUser({ id: 'zoe' }), aUser({ id: 'amy' }), aUser({ id: 'zoe', displayname: 'Later' })],
      [aGroup('b'), aGroup('a', ''), aGroup('b', 'Later')],
      aPolicy(),
    )
    expect(desired.users.map((u) => [u.uid, u.firstName])).toEqual([
      ['amy', 'Alice'],
      ['zoe', 'Alice'],
    ])
    expect(desired.groups).toEqual([
      { gid: 'a', displayName: 'a' },
      { gid: 'b', displayName: 'b' },
    ])
  })
})

describe('markers', () => {
  it.each([
    [userMarkers('Alice'), 'Alice'],
    [{ nextcloud_uid: ['alice'] }, null],
    [{ nextcloud_managed: ['false'], nextcloud_uid: ['alice'] }, null],
    [{ nextcloud_managed: ['true'] }, null],
    [undefined, null],
  ])('reads the managed uid of %j as %j', (attributes, uid) => {
    expect(managedUid(attributes)).toBe(uid)
  })

  it('reads the managed gid only from a marked group', () => {
    expect(managedGid({ nextcloud_managed: ['true'], nextcloud_gid: ['sales'] })).toBe('sales')
    expect(managedGid({ nextcloud_gid: ['sales'] })).toBeNull()
  })
})
