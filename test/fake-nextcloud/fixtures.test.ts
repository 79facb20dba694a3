import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aUser, type UserRecord } from '../builders.js'
import { type Capture, type IndexEntry, loadFixture, replayHeaders } from './fixtures.js'
import { createFakeNextcloud, type FakeNextcloud, FIXTURE_APP, fixtureDirectory } from './index.js'

// Captured requests the fake does not serve, and why.
const NOT_MODELLED: Record<string, string> = {
  'users-list.basic-auth.v1.json': 'basic auth: the ExApp only ever uses AppAPI auth',
  'appapi.nextcloud-url.v1.json': 'nextcloud_url: not used by the ExApp',
  'capabilities.v1.json': 'capabilities: not used by the ExApp',
}

// Captures recorded with a user the fixture directory lacks: present only while they replay.
const EXTRA_USERS: Record<string, UserRecord[]> = {
  'users-disabled.v1.json': [
    aUser({
      id: 'dave',
      displayname: 'Dave Dijk',
      email: 'dave@example.com',
      enabled: false,
      storageLocation: '/tmp/nc13/nc/data/dave',
      groups: ['sales'],
    }),
  ],
}

const index = loadFixture<{ fixtures: IndexEntry[] }>('index.json')
const replayable = index.fixtures.filter(
  (f) =>
    /^(GET|PUT|POST|DELETE) \/ocs\//.test(f.request_line ?? '') && !f.file.startsWith('webhook.'),
)
const served = replayable.filter((f) => !(f.file in NOT_MODELLED)).map((f) => f.file)

describe('fake Nextcloud answers like the captured Nextcloud 31', () => {
  let nc: FakeNextcloud

  beforeAll(async () => {
    nc = await createFakeNextcloud({
      // Init is done, so a repeated progress report calls nothing back (nothing listens there).
      apps: [{ ...FIXTURE_APP, url: 'http://127.0.0.1:9' }],
      ...fixtureDirectory(),
    })
  })
  afterAll(() => nc.close())

  it('replays every captured OCS call except the ones listed as not modelled', () => {
    expect(served.length).toBeGreaterThanOrEqual(25)
    expect(replayable.length - served.length).toBe(Object.keys(NOT_MODELLED).length)
  })

  it.each(served)('%s', async (file) => {
    const capture = loadFixture<Capture>(file)
    const secret = file === 'appapi.auth.wrong-secret.json' ? 'not-the-secret' : FIXTURE_APP.secret
    const { method, path, headers, body } = capture.request
    const extra = EXTRA_USERS[file] ?? []
    for (const user of extra) {
      nc.addUser(user)
    }
    const res = await fetch(`${nc.url}${path}`, {
      method,
      headers: replayHeaders(headers, secret),
      body: body === null ? undefined : JSON.stringify(body),
    }).finally(() => {
      for (const user of extra) {
        nc.removeUser(user.id)
      }
    })

    expect(res.status).toBe(capture.response.status)
    expect(res.headers.get('content-type')).toBe(capture.response.headers['content-type'])
    expect(await res.json()).toEqual(capture.response.body)
  })

  it('records a brute-force attempt for a wrong secret and for an unknown app id', async () => {
    const before = nc.bruteForceAttempts()
    for (const file of ['appapi.auth.wrong-secret.json', 'appapi.auth.unknown-app-id.json']) {
      const { request } = loadFixture<Capture>(file)
      await fetch(`${nc.url}${request.path}`, {
        headers: replayHeaders(request.headers, 'not-the-secret'),
      })
    }
    expect(nc.bruteForceAttempts() - before).toBe(2)
  })
})
