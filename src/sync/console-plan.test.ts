import { describe, expect, it } from 'vitest'
import {
  type ActualIdentity,
  CONSOLE_REALM_ROLES,
  type ConsoleCandidate,
  desiredIdentities,
  planConsole,
  rolesOf,
} from './console-plan.js'

function user(
  id: string,
  groups: string[],
  extra: Partial<ConsoleCandidate> = {},
): ConsoleCandidate {
  return { id, displayname: `${id} Doe`, email: `${id}@example.com`, groups, ...extra }
}

function actual(
  uid: string,
  grant: 'admin' | 'realm',
  extra: Partial<ActualIdentity> = {},
): ActualIdentity {
  return {
    id: `kc-${uid}`,
    uid,
    username: uid.toLowerCase(),
    enabled: true,
    email: `${uid.toLowerCase()}@example.com`,
    firstName: uid,
    lastName: 'Doe',
    links: [uid],
    roles: rolesOf(grant),
    ...extra,
  }
}

describe('who gets a console identity', () => {
  it('admins get the master role admin; console-group members the realm roles; others nothing', () => {
    const desired = desiredIdentities(
      [
        user('ana', ['admin']),
        user('otto', ['ops', 'staff']),
        user('both', ['ops', 'admin']),
        user('pia', ['staff']),
        user('nobody', []),
      ],
      ['ops'],
    )
    expect(desired.map((d) => [d.uid, d.grant])).toEqual([
      ['ana', 'admin'],
      ['both', 'admin'],
      ['otto', 'realm'],
    ])
    expect(rolesOf('admin')).toEqual({ realm: ['admin'], client: [] })
    expect(rolesOf('realm')).toEqual({ realm: [], client: [...CONSOLE_REALM_ROLES] })
    expect(CONSOLE_REALM_ROLES).not.toContain('impersonation')
  })

  it('without console groups only admins; a disabled admin stays, disabled', () => {
    const desired = desiredIdentities(
      [user('ana', ['admin'], { enabled: false }), user('otto', ['ops'])],
      [],
    )
    expect(desired).toEqual([
      {
        uid: 'ana',
        username: 'ana',
        enabled: false,
        email: 'ana@example.com',
        firstName: 'ana',
        lastName: 'Doe',
        grant: 'admin',
      },
    ])
  })

  it('lowercases the username (Keycloak does) but keeps the uid as Nextcloud spells it', () => {
    const [d] = desiredIdentities([user('Ana', ['admin'], { email: ' Ana@Example.COM ' })], [])
    expect(d).toMatchObject({ uid: 'Ana', username: 'ana', email: 'ana@example.com' })
  })
})

describe('the console plan', () => {
  const none = new Set<string>()

  it('creates missing identities with their roles, linked to the uid', () => {
    const desired = desiredIdentities([user('ana', ['admin']), user('otto', ['ops'])], ['ops'])
    const plan = planConsole(desired, [], none)
    expect(plan.warnings).toEqual([])
    expect(plan.steps).toEqual([
      { kind: 'create', identity: desired[0], roles: rolesOf('admin') },
      { kind: 'create', identity: desired[1], roles: rolesOf('realm') },
    ])
  })

  it('changes nothing when everything matches', () => {
    const desired = desiredIdentities([user('ana', ['admin'])], [])
    expect(planConsole(desired, [actual('ana', 'admin')], none)).toEqual({
      steps: [],
      warnings: [],
    })
  })

  it('deletes the identity of a user who left admin and every console group', () => {
    const desired = desiredIdentities([user('ana', ['admin']), user('ben', ['staff'])], ['ops'])
    const plan = planConsole(desired, [actual('ana', 'admin'), actual('ben', 'admin')], none)
    expect(plan.steps).toEqual([{ kind: 'delete', id: 'kc-ben', uid: 'ben' }])
  })

  it('deletes the identity of a user Nextcloud no longer has', () => {
    const plan = planConsole([], [actual('gone', 'realm')], none)
    expect(plan.steps).toEqual([{ kind: 'delete', id: 'kc-gone', uid: 'gone' }])
  })

  it('moves roles when an admin becomes a console-group member only, and back', () => {
    const demoted = planConsole(
      desiredIdentities([user('ana', ['ops'])], ['ops']),
      [actual('ana', 'admin')],
      none,
    )
    expect(demoted.steps).toEqual([
      { kind: 'grant', id: 'kc-ana', uid: 'ana', roles: rolesOf('realm') },
      { kind: 'revoke', id: 'kc-ana', uid: 'ana', roles: rolesOf('admin') },
    ])
    const promoted = planConsole(
      desiredIdentities([user('ana', ['admin', 'ops'])], ['ops']),
      [actual('ana', 'realm')],
      none,
    )
    expect(promoted.steps).toEqual([
      { kind: 'grant', id: 'kc-ana', uid: 'ana', roles: rolesOf('admin') },
      { kind: 'revoke', id: 'kc-ana', uid: 'ana', roles: rolesOf('realm') },
    ])
  })

  it('grants only the missing roles of ours', () => {
    const partial = actual('otto', 'realm', {
      roles: { realm: [], client: CONSOLE_REALM_ROLES.filter((r) => r !== 'view-users') },
    })
    const plan = planConsole(desiredIdentities([user('otto', ['ops'])], ['ops']), [partial], none)
    expect(plan.steps).toEqual([
      { kind: 'grant', id: 'kc-otto', uid: 'otto', roles: { realm: [], client: ['view-users'] } },
    ])
  })

  it('updates the profile and disables the identity of a user disabled in Nextcloud', () => {
    const desired = desiredIdentities(
      [user('ana', ['admin'], { enabled: false, email: 'new@example.com' })],
      [],
    )
    const plan = planConsole(desired, [actual('ana', 'admin')], none)
    expect(plan.steps).toEqual([{ kind: 'update', id: 'kc-ana', identity: desired[0] }])
    expect(desired[0]).toMatchObject({ enabled: false, email: 'new@example.com' })
  })

  it('relinks an identity that lost or changed its link', () => {
    const desired = desiredIdentities([user('ana', ['admin'])], [])
    expect(planConsole(desired, [actual('ana', 'admin', { links: [] })], none).steps).toEqual([
      { kind: 'link', id: 'kc-ana', uid: 'ana', stale: [] },
    ])
    expect(
      planConsole(desired, [actual('ana', 'admin', { links: ['mallory'] })], none).steps,
    ).toEqual([{ kind: 'link', id: 'kc-ana', uid: 'ana', stale: ['mallory'] }])
  })

  it('warns about a name taken by a master user that is not ours, and never touches it', () => {
    const desired = desiredIdentities([user('Admin', ['admin']), user('ana', ['admin'])], [])
    const plan = planConsole(desired, [], new Set(['admin']))
    expect(plan.steps).toEqual([{ kind: 'create', identity: desired[1], roles: rolesOf('admin') }])
    expect(plan.warnings).toEqual([
      'master realm user "admin" exists and is not a console identity of this app: Admin gets none',
    ])
  })

  it('deletes only marked identities: the plan knows no others', () => {
    const plan = planConsole([], [actual('ana', 'admin')], new Set(['admin', 'service-account-x']))
    expect(plan.steps.map((s) => s.kind)).toEqual(['delete'])
  })
})
