import { describe, expect, it } from 'vitest'
import {
  keepFields,
  parseGroupsPage,
  parseStringList,
  parseUserDetails,
  parseUsersPage,
} from './nextcloud-directory.js'

const minimal = { id: 'alice', displayname: 'Alice', groups: ['eng'] }

describe('parseUserDetails', () => {
  it.each([
    [true, true],
    ['true', true],
    ['1', true],
    [1, true],
    [false, false],
    ['false', false],
    ['0', false],
    [0, false],
  ])('reads enabled %j as %j', (raw, expected) => {
    expect(parseUserDetails({ ...minimal, enabled: raw })?.enabled).toBe(expected)
  })

  it('leaves enabled out when Nextcloud does not show it', () => {
    expect(parseUserDetails(minimal)).not.toHaveProperty('enabled')
  })

  it('takes the display name from display-name, then the uid', () => {
    const { displayname: _, ...rest } = minimal
    expect(parseUserDetails({ ...rest, 'display-name': 'Old Style' })?.displayname).toBe(
      'Old Style',
    )
    expect(parseUserDetails({ ...rest, displayname: '' })?.displayname).toBe('alice')
  })

  it('keeps unknown fields for profile mappings and fills the known ones', () => {
    expect(parseUserDetails({ ...minimal, pronouns: 'she/her', email: '' })).toEqual({
      ...minimal,
      pronouns: 'she/her',
      email: null,
      additional_mail: [],
      subadmin: [],
      backend: '',
      lastLogin: 0,
      language: '',
      locale: '',
    })
  })

  it('keeps the fields in the order Nextcloud sent them, the filled ones after, enabled last', () => {
    const raw = JSON.parse(
      '{"storageLocation":"/d","enabled":true,"id":"alice","quota":{"used":1},"groups":["eng"],"__proto__":{"x":1}}',
    )
    const user = parseUserDetails(raw)
    expect(Object.keys(user ?? {})).toEqual([
      'storageLocation',
      'id',
      'quota',
      'groups',
      '__proto__',
      'displayname',
      'email',
      'additional_mail',
      'subadmin',
      'backend',
      'lastLogin',
      'language',
      'locale',
      'enabled',
    ])
    expect(Object.getPrototypeOf(user)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(user, '__proto__')?.value).toEqual({ x: 1 })
  })

  it('accepts a group list PHP encoded as an object', () => {
    expect(parseUserDetails({ ...minimal, groups: { 0: 'a', 2: 'b' } })?.groups).toEqual(['a', 'b'])
  })

  it('refuses a user without groups rather than reading it as a member of none', () => {
    expect(parseUserDetails({ id: 'alice', displayname: 'Alice' })).toBeNull()
  })
})

describe('parseUsersPage', () => {
  it('reads users keyed by uid, and users listed only by id as hidden', () => {
    const page = parseUsersPage({
      users: { alice: minimal, bob: { id: 'bob' }, eve: { id: 'eve', groups: 7 } },
    })
    expect(page?.users.map((u) => u.id)).toEqual(['alice'])
    expect(page?.hidden).toEqual(['bob', 'eve'])
  })

  it('reads an empty page sent as [] and a map PHP turned into a list', () => {
    expect(parseUsersPage({ users: [] })).toEqual({ users: [], hidden: [] })
    expect(parseUsersPage([])).toEqual({ users: [], hidden: [] })
    expect(parseUsersPage({ users: [{ ...minimal, id: '0' }] })?.users[0]?.id).toBe('0')
  })

  it('refuses other shapes', () => {
    expect(parseUsersPage({ users: 'nope' })).toBeNull()
    expect(parseUsersPage('<html>')).toBeNull()
  })
})

describe('parseGroupsPage', () => {
  it('normalises counts a backend could not compute and missing names', () => {
    expect(parseGroupsPage({ groups: [{ id: 'eng', usercount: false, disabled: 0 }] })).toEqual({
      groups: [
        {
          id: 'eng',
          displayname: 'eng',
          usercount: 0,
          disabled: 0,
          canAdd: false,
          canRemove: false,
        },
      ],
    })
    expect(parseGroupsPage([])).toEqual({ groups: [] })
  })
})

describe('parseStringList', () => {
  it('reads lists and PHP objects of uids', () => {
    expect(parseStringList(['admin', 'alice'])).toEqual(['admin', 'alice'])
    expect(parseStringList({ 1: 'bob' })).toEqual(['bob'])
    expect(parseStringList('admin')).toBeNull()
  })
})

describe('keepFields', () => {
  const listed = parseUserDetails({
    id: 'alice',
    enabled: false,
    displayname: 'Alice',
    email: 'alice@example.org',
    groups: ['eng'],
    organisation: 'ACME',
    phone: '+1 555',
    quota: { used: 1 },
    ['__proto__']: 'odd',
  })

  it('keeps the normalised fields and enabled, and of the others only those named', () => {
    if (!listed) {
      throw new Error('the listed user did not parse')
    }
    const kept = keepFields(listed, new Set(['organisation', 'website', 'groups']))
    expect(kept).toEqual({
      id: 'alice',
      displayname: 'Alice',
      email: 'alice@example.org',
      additional_mail: [],
      groups: ['eng'],
      subadmin: [],
      backend: '',
      lastLogin: 0,
      language: '',
      locale: '',
      enabled: false,
      organisation: 'ACME',
    })
    // a field Nextcloud did not send stays absent, not undefined
    expect(Object.keys(kept)).not.toContain('website')
  })

  it('keeps a field named __proto__ as data, never as the prototype', () => {
    if (!listed) {
      throw new Error('the listed user did not parse')
    }
    const kept = keepFields(listed, new Set(['__proto__']))
    expect(Object.getPrototypeOf(kept)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(kept, '__proto__')?.value).toBe('odd')
  })

  it('keeps every field the parser normalises, so none is lost to keepFields', () => {
    // A bare user gets each normalised field from parseUserDetails and nothing else: a field
    // added there and not to keepFields' list would be missing here.
    const bare = parseUserDetails({ id: 'carol', groups: [] })
    if (!bare) {
      throw new Error('the bare user did not parse')
    }
    expect(Object.keys(keepFields(bare, new Set())).sort()).toEqual(Object.keys(bare).sort())
  })

  it('leaves enabled out when Nextcloud did not show it', () => {
    const hidden = parseUserDetails({ id: 'bob', displayname: 'Bob', groups: [] })
    if (!hidden) {
      throw new Error('the listed user did not parse')
    }
    expect(keepFields(hidden, new Set(['enabled']))).not.toHaveProperty('enabled')
  })
})
