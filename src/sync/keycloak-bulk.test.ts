import { describe, expect, it } from 'vitest'
import { addedIds, fitForBulk, groupPath, importUserRep } from './keycloak-bulk.js'
import type { NewUser } from './model.js'

const aUser = (overrides: Partial<NewUser> = {}): NewUser => ({
  uid: 'Alice',
  username: 'alice',
  email: 'alice@example.com',
  firstName: 'Alice',
  lastName: 'Example',
  enabled: true,
  attributes: { phone: ['+49 30 1234'] },
  ...overrides,
})

describe('fitForBulk', () => {
  it.each([
    ['a plain user', {}],
    ['no email', { email: null }],
    ['a dotted, tagged address', { email: "o'neil.x+tag@mail.example.co.uk" }],
    ['a uid with space and quote', { username: "jo o'neil" }],
  ])('takes %s', (_, overrides: Partial<NewUser>) => {
    expect(fitForBulk(aUser(overrides))).toBe(true)
  })

  it.each([
    ['a comma in the address', { email: 'first,last@example.com' }],
    ['a local part of 65 characters', { email: `${'a'.repeat(65)}@example.com` }],
    ['a domain without a dot', { email: 'alice@localhost' }],
    ['a leading dot', { email: '.alice@example.com' }],
    ['a non-ASCII domain', { email: 'alice@exämple.com' }],
    ['a username outside Nextcloud’s rule', { username: 'zoë' }],
    ['a name too long', { lastName: 'x'.repeat(256) }],
    ['an attribute too long', { attributes: { phone: ['1'.repeat(2049)] } }],
    ['two values of one attribute', { attributes: { phone: ['1', '2'] } }],
  ])('leaves %s to the per-user create', (_, overrides: Partial<NewUser>) => {
    expect(fitForBulk(aUser(overrides))).toBe(false)
  })
})

describe('groupPath', () => {
  it('names top-level groups, but not gids with "/" or "~"', () => {
    expect(groupPath("o'k team")).toBe("/o'k team")
    expect(groupPath('team/a')).toBeNull()
    expect(groupPath('a~b')).toBeNull()
  })
})

describe('importUserRep', () => {
  it('adds the groups and the realm default role to the per-user representation', () => {
    expect(importUserRep({ username: 'alice' }, ['/sales'], 'default-roles-r')).toEqual({
      username: 'alice',
      groups: ['/sales'],
      realmRoles: ['default-roles-r'],
    })
  })
})

describe('addedIds', () => {
  it('maps what was added, of one type, by name', () => {
    const ids = addedIds(
      [
        { action: 'ADDED', resourceType: 'USER', resourceName: 'alice', id: '1' },
        { action: 'SKIPPED', resourceType: 'USER', resourceName: 'bob', id: '2' },
        { action: 'ADDED', resourceType: 'GROUP', resourceName: 'sales', id: '3' },
        { action: 'ADDED', resourceType: 'USER', resourceName: 'carl' },
      ],
      'USER',
    )
    expect([...ids]).toEqual([['alice', '1']])
    expect(addedIds(undefined, 'GROUP').size).toBe(0)
  })
})
