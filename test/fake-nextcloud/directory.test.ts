import { afterEach, describe, expect, it } from 'vitest'
import { aDirectory, aGroup, aUser } from '../builders.js'
import { createFakeNextcloud, type FakeNextcloud, FIXTURE_APP, fixtureDirectory } from './index.js'

let nc: FakeNextcloud
afterEach(() => nc?.close())

async function start(directory = fixtureDirectory()) {
  nc = await createFakeNextcloud({
    ...directory,
    apps: [{ ...FIXTURE_APP, url: 'http://127.0.0.1:9' }],
  })
}

type OcsData = { users: Record<string, unknown>; groups: unknown[] }

/** An OCS v2 GET as the ExApp acting as `user`; `data` is empty when the body is not OCS. */
async function get(path: string, user = 'admin'): Promise<{ status: number; data: OcsData }> {
  const separator = path.includes('?') ? '&' : '?'
  const res = await fetch(`${nc.url}/ocs/v2.php${path}${separator}format=json`, {
    headers: { ...nc.appApiHeaders(FIXTURE_APP.appId, user), 'OCS-APIRequest': 'true' },
  })
  const text = await res.text()
  const data = res.headers.get('content-type')?.startsWith('application/json')
    ? (JSON.parse(text) as { ocs: { data: OcsData } }).ocs.data
    : { users: {}, groups: [] }
  return { status: res.status, data }
}

describe('aDirectory', () => {
  it('is deterministic for a seed, 10 000 users included', () => {
    const big = aDirectory({ users: 10_000, groups: 300, membershipsPerUser: 4, seed: 42 })

    expect(big.users).toHaveLength(10_001)
    expect(big.users.slice(1).every((u) => u.groups.length === 4)).toBe(true)
    const spec = { users: 50, groups: 5, membershipsPerUser: 2, seed: 1 }
    expect(aDirectory(spec)).toEqual(aDirectory(spec))
    expect(aDirectory(spec)).not.toEqual(aDirectory({ ...spec, seed: 2 }))
  })

  it('counts members and disabled members per group', () => {
    const { users, groups } = aDirectory({
      users: 200,
      groups: 3,
      membershipsPerUser: 1,
      seed: 5,
      disabledRatio: 0.5,
    })
    for (const group of groups.filter((g) => g.id !== 'admin')) {
      const members = users.filter((u) => u.groups.includes(group.id))
      expect(group.usercount).toBe(members.length)
      expect(group.disabled).toBe(members.filter((u) => !u.enabled).length)
    }
  })
})

describe('fake Nextcloud directory', () => {
  it('serves what the test changed', async () => {
    await start()
    nc.addGroup(aGroup({ id: 'ops', displayname: 'Operations' }))
    nc.addUser(aUser({ id: 'dave', displayname: 'Dave Dyer', enabled: false, groups: ['ops'] }))
    nc.updateUser('alice', { email: 'alice@new.example' })
    nc.setMembership('bob', ['sales', 'ops'])
    nc.removeUser('carol')

    const details = await get('/cloud/users/details')
    expect(Object.keys(details.data.users)).toEqual(['admin', 'alice', 'bob', 'dave'])
    expect(details.data.users.alice).toMatchObject({ email: 'alice@new.example' })
    expect(details.data.users.bob).toMatchObject({ groups: ['sales', 'ops'] })
    const groups = await get('/cloud/groups/details')
    expect(groups.data.groups).toContainEqual({
      id: 'ops',
      displayname: 'Operations',
      usercount: 2,
      disabled: 1,
      canAdd: true,
      canRemove: true,
    })
    expect((await get('/cloud/users/carol')).status).toBe(404)
    expect((await get('/cloud/groups/engineering/users')).data).toEqual({ users: ['alice'] })
  })

  it('answers an empty details page with "users": [] like PHP', async () => {
    await start()
    expect((await get('/cloud/users/details?search=nobody-matches')).data).toEqual({ users: [] })
  })

  it('injects faults for the next N matching requests and counts every request', async () => {
    await start()
    nc.failNext('/cloud/users/details', { times: 2, status: 503 })

    const statuses = [
      (await get('/cloud/users/details')).status,
      (await get('/cloud/users/details')).status,
      (await get('/cloud/users/details')).status,
    ]

    expect(statuses).toEqual([503, 503, 200])
    expect(nc.count('/cloud/users/details')).toBe(3)
    expect(nc.counters()).toEqual({ 'GET /ocs/v2.php/cloud/users/details': 3 })
  }, 10_000)

  it('serves 10 000 users in pages', async () => {
    await start(aDirectory({ users: 10_000, groups: 100, membershipsPerUser: 3, seed: 9 }))
    let seen = 0
    for (let offset = 0; ; offset += 1_000) {
      const page = await get(`/cloud/users/details?limit=1000&offset=${offset}`)
      const count = Object.keys(page.data.users).length
      seen += count
      if (count < 1_000) {
        break
      }
    }
    expect(seen).toBe(10_001)
  })
})
