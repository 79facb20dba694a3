import { describe, expect, it } from 'vitest'
import { NEXTCLOUD_UID_PATTERN } from '../sync/model.js'
import { desiredUserProfile } from './user-profile.js'

/** Keycloak 26.7's default user profile, as GET /users/profile returns it for a new realm. */
const defaultProfile = {
  unmanagedAttributePolicy: undefined,
  attributes: [
    {
      name: 'username',
      displayName: 'Username',
      validations: {
        length: { min: 3, max: 255 },
        'username-prohibited-characters': {},
        'up-username-not-idn-homograph': {},
      },
      permissions: { view: ['admin', 'user'], edit: ['admin', 'user'] },
      multivalued: false,
    },
    {
      name: 'email',
      displayName: 'Email',
      validations: { email: {}, length: { max: 255 } },
      required: { roles: ['user'] },
      permissions: { view: ['admin', 'user'], edit: ['admin', 'user'] },
      multivalued: false,
    },
    {
      name: 'firstName',
      displayName: 'First name',
      validations: { length: { max: 255 }, 'person-name-prohibited-characters': {} },
      required: { roles: ['user'] },
      permissions: { view: ['admin', 'user'], edit: ['admin', 'user'] },
      multivalued: false,
    },
  ],
  groups: [{ name: 'user-metadata', displayHeader: 'User metadata' }],
}

const spec = {
  markerAttributes: ['nextcloud_managed', 'nextcloud_uid'],
  profileAttributes: ['phone'],
  usernamePattern: NEXTCLOUD_UID_PATTERN,
}

describe('desiredUserProfile', () => {
  const desired = desiredUserProfile(defaultProfile, spec)
  const byName = (name: string) => desired.attributes?.find((a) => a.name === name)

  it('accepts every Nextcloud uid as a username', () => {
    expect(byName('username')?.validations).toEqual({
      length: { min: 1, max: 255 },
      pattern: { pattern: NEXTCLOUD_UID_PATTERN, 'error-message': expect.any(String) },
    })
    const pattern = new RegExp(NEXTCLOUD_UID_PATTERN)
    for (const uid of ['a', 'jo', "o'neil", 'first.last@example.org', 'with space', 'x_y-z']) {
      expect(pattern.test(uid), uid).toBe(true)
    }
    expect(pattern.test('')).toBe(false)
    expect(pattern.test('a/b')).toBe(false)
  })

  it('makes email and names optional and lets names carry any character', () => {
    expect(byName('email')?.required).toBeUndefined()
    expect(byName('email')?.validations).toEqual({ email: {}, length: { max: 255 } })
    expect(byName('firstName')?.required).toBeUndefined()
    expect(byName('firstName')?.validations).toEqual({ length: { max: 255 } })
  })

  it('declares marker attributes for admins only and profile attributes readable by the user', () => {
    expect(byName('nextcloud_uid')?.permissions).toEqual({ view: ['admin'], edit: ['admin'] })
    expect(byName('phone')?.permissions).toEqual({ view: ['admin', 'user'], edit: ['admin'] })
  })

  it('makes every synced field read-only to the user, still editable by admins', () => {
    for (const name of ['username', 'email', 'firstName', 'nextcloud_uid', 'phone']) {
      expect(byName(name)?.permissions?.edit, name).toEqual(['admin'])
    }
    for (const name of ['username', 'email', 'firstName', 'phone']) {
      expect(byName(name)?.permissions?.view, name).toEqual(['admin', 'user'])
    }
  })

  it('keeps what it does not own and is idempotent', () => {
    expect(desired.groups).toEqual(defaultProfile.groups)
    expect(desiredUserProfile(desired, spec)).toEqual(desired)
  })
})
