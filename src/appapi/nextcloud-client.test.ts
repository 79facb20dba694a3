import { afterEach, describe, expect, it } from 'vitest'
import { aDirectory, aUser } from '../../test/builders.js'
import {
  type FakeNextcloud,
  FIXTURE_APP,
  fixtureDirectory,
} from '../../test/fake-nextcloud/index.js'
import { clientAgainstFake } from '../../test/nextcloud-client-setup.js'
import { silentLogger } from '../log.js'
import {
  createNextcloudClient,
  type NextcloudClient,
  type NextcloudClientOptions,
  type UserDetails,
} from './nextcloud-client.js'

let nc: FakeNextcloud
afterEach(() => nc?.close())

async function setup(
  directory = fixtureDirectory(),
  overrides: Partial<NextcloudClientOptions> = {},
): Promise<NextcloudClient> {
  const started = await clientAgainstFake(directory, overrides)
  nc = started.nc
  return started.client
}

/** Reads every page the way the sync does: until a page comes back short. */
async function allUsers(client: NextcloudClient, asUser: string, limit: number) {
  const users: UserDetails[] = []
  for (let offset = 0; ; offset += limit) {
    const page = await client.usersDetailsPage(asUser, { offset, limit })
    users.push(...page.users)
    if (page.users.length + page.hidden.length < limit) {
      return users
    }
  }
}

describe('Nextcloud client', () => {
  it('sends the four AppAPI headers and OCS-APIRequest, and asks for JSON', async () => {
    const sent: { url: string; headers: Record<string, string> }[] = []
    const client = await setup(undefined, {
      aaVersion: '5.0.2',
      fetch: (input, init) => {
        const headers: Record<string, string> = {}
        new Headers(init?.headers).forEach((value, name) => {
          headers[name] = value
        })
        sent.push({ url: String(input), headers })
        return fetch(input, init)
      },
    })

    await client.currentUser('admin')

    const [call] = sent
    expect(call?.url).toBe(`${nc.url}/ocs/v2.php/cloud/user?format=json`)
    expect(call?.headers).toEqual({
      'ex-app-id': 'nc_stub',
      'ex-app-version': '1.0.0',
      'authorization-app-api': Buffer.from(`admin:${FIXTURE_APP.secret}`).toString('base64'),
      'ocs-apirequest': 'true',
      accept: 'application/json',
      'aa-version': '5.0.2',
    })
  })

  it("reads the cheap lists: uids in pages, disabled users, a group's members", async () => {
    const directory = fixtureDirectory()
    directory.users.push(aUser({ id: 'dave', enabled: false, groups: ['sales'] }))
    const client = await setup(directory)

    expect(await client.userIdsPage('admin', { offset: 0, limit: 3 })).toEqual([
      'admin',
      'alice',
      'bob',
    ])
    expect(await client.userIdsPage('admin', { offset: 3, limit: 3 })).toEqual(['carol', 'dave'])
    const disabled = await client.disabledUsersPage('admin', { offset: 0, limit: 10 })
    expect(disabled.users.map((u) => [u.id, u.enabled])).toEqual([['dave', false]])
    expect(await client.groupMemberIds('admin', 'sales')).toEqual(['bob', 'carol', 'dave'])
    expect(await client.groupMemberIds('admin', 'nope')).toBeNull()
    // a non-admin is shown no disabled users, as Nextcloud does
    expect(await client.disabledUsersPage('alice', { offset: 0, limit: 10 })).toEqual({
      users: [],
      hidden: [],
    })
  })

  it('ignores /index.php and trailing slashes in NEXTCLOUD_URL', async () => {
    await setup()
    const client = createNextcloudClient({
      url: `${nc.url}/index.php/`,
      appId: FIXTURE_APP.appId,
      appSecret: FIXTURE_APP.secret,
      appVersion: FIXTURE_APP.version,
      log: silentLogger(),
    })
    expect(await client.listAppApiUsers()).toEqual(['admin', 'alice', 'bob', 'carol'])
  })

  it('reads the user list in the system context', async () => {
    const client = await setup()
    expect(await client.listAppApiUsers()).toEqual(['admin', 'alice', 'bob', 'carol'])
    expect(nc.requests().map((r) => r.user)).toEqual([''])
  })

  it('reads single users, and null for a missing one', async () => {
    const client = await setup()
    expect(await client.currentUser('alice')).toMatchObject({
      id: 'alice',
      displayname: 'Alice Anders',
      groups: ['engineering'],
      enabled: true,
      emailScope: 'v2-federated',
    })
    expect(await client.userDetails('admin', 'bob')).toMatchObject({
      groups: ['engineering', 'sales'],
    })
    expect(await client.userDetails('admin', 'nobody')).toBeNull()
    // Nextcloud finds a uid in any case and answers with its own spelling.
    expect(await client.userDetails('admin', 'BOB')).toMatchObject({ id: 'bob' })
  })

  it('encodes a uid as one path segment and never calls Nextcloud for "." or ".."', async () => {
    const client = await setup()
    for (const uid of ['.', '..', '']) {
      await expect(client.userDetails('admin', uid)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      })
    }
    expect(nc.requests()).toEqual([])
    expect(await client.userDetails('admin', 'a/../b?c#d')).toBeNull()
    expect(nc.requests().map((r) => r.path)).toEqual(['/ocs/v2.php/cloud/users/a%2F..%2Fb%3Fc%23d'])
  })

  it('pages users/details with one request per page and none per user', async () => {
    const directory = aDirectory({ users: 1000, groups: 20, membershipsPerUser: 3, seed: 7 })
    const client = await setup(directory)

    const users = await allUsers(client, 'admin', 250)

    expect(users).toHaveLength(1001)
    expect(users.find((u) => u.id === 'u0500')?.groups).toEqual(
      directory.users.find((u) => u.id === 'u0500')?.groups,
    )
    expect(nc.count('/cloud/users/details')).toBe(5)
    expect(nc.requests()).toHaveLength(5)
  })

  it('returns a truncated page as it came: only the caller can tell it from the end', async () => {
    const client = await setup(
      aDirectory({ users: 100, groups: 5, membershipsPerUser: 1, seed: 1 }),
    )
    nc.truncateNext('/cloud/users/details', { keep: 10 })

    expect(await allUsers(client, 'admin', 50)).toHaveLength(10)
  })

  it('pages groups/details', async () => {
    const client = await setup()
    const first = await client.groupsDetailsPage('admin', { offset: 0, limit: 2 })
    const second = await client.groupsDetailsPage('admin', { offset: 2, limit: 2 })

    expect(first.groups.map((g) => g.id)).toEqual(['admin', 'engineering'])
    expect(second.groups).toEqual([
      {
        id: 'sales',
        displayname: 'Sales',
        usercount: 2,
        disabled: 0,
        canAdd: true,
        canRemove: true,
      },
    ])
  })

  it('refuses an init progress outside 0..100 without calling Nextcloud', async () => {
    const client = await setup()
    await expect(client.setInitProgress(101)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    expect(nc.requests()).toHaveLength(0)
  })
})

describe('findAdminUser', () => {
  it('takes the preferred user when it is an admin, with one request', async () => {
    const client = await setup()
    expect(await client.findAdminUser('admin')).toBe('admin')
    expect(nc.requests()).toHaveLength(1)
  })

  it('tries "admin" first, then walks AppAPI users until one is in group admin', async () => {
    const directory = fixtureDirectory()
    directory.users = directory.users.map((u) => (u.id === 'admin' ? { ...u, groups: [] } : u))
    directory.users.push(aUser({ id: 'zed', groups: ['admin'] }))
    const client = await setup(directory)

    expect(await client.findAdminUser('alice')).toBe('zed')
    const asked = nc
      .requests()
      .filter((r) => r.path.endsWith('/cloud/user'))
      .map((r) => r.user)
    expect(asked).toEqual(['alice', 'admin', 'bob', 'carol', 'zed'])
  })

  it('goes on when the preferred user does not exist', async () => {
    const client = await setup()
    expect(await client.findAdminUser('ghost')).toBe('admin')
  })

  it('gives up with null after adminSearchLimit users', async () => {
    const directory = aDirectory({
      users: 30,
      groups: 2,
      membershipsPerUser: 1,
      seed: 3,
      admin: false,
    })
    const client = await setup(directory, { adminSearchLimit: 5 })

    expect(await client.findAdminUser()).toBeNull()
    expect(nc.count('/cloud/user')).toBe(5)
  })
})

describe('UI registration', () => {
  it('registers a top menu with its script and style, and removes them', async () => {
    const client = await setup()
    const app = FIXTURE_APP.appId

    await client.registerScript({ name: 'keycloak', path: '/js/loader.js' })
    await client.registerStyle({ name: 'keycloak', path: 'css/page.css' })
    await client.registerTopMenu({
      name: 'keycloak',
      displayName: 'Keycloak',
      icon: '/img/app.svg',
      adminRequired: true,
    })
    await client.registerTopMenu({
      name: 'keycloak',
      displayName: 'Keycloak',
      icon: 'img/app.svg',
      adminRequired: true,
    })

    expect(nc.ui(app)).toMatchObject({
      topMenus: [
        { name: 'keycloak', display_name: 'Keycloak', icon: 'img/app.svg', admin_required: 1 },
      ],
      scripts: [{ type: 'top_menu', name: 'keycloak', path: 'js/loader' }],
      styles: [{ type: 'top_menu', name: 'keycloak', path: 'css/page' }],
    })
    expect(await client.unregisterScript({ name: 'keycloak', path: 'js/loader' })).toBe(true)
    expect(await client.unregisterTopMenu('keycloak')).toBe(true)
    expect(nc.ui(app)).toEqual({ topMenus: [], scripts: [], styles: [] })
    expect(await client.unregisterTopMenu('keycloak')).toBe(false)
    expect(await client.unregisterStyle({ name: 'keycloak', path: 'css/page' })).toBe(false)
  })
})
