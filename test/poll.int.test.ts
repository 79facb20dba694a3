import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { envSchema } from '../src/config/schema.js'
import { aDirectory, aUser } from './builders.js'
import { startTestExApp, type TestExApp } from './exapp-harness.js'

// With the default intervals, changes made in Nextcloud reach the real Keycloak through the poll
// alone: no sync is asked for, and the full run's interval is far longer than the test.

const defaults = {
  SYNC_INTERVAL: String(envSchema.shape.SYNC_INTERVAL.parse(undefined)),
  SYNC_POLL_INTERVAL: String(envSchema.shape.SYNC_POLL_INTERVAL.parse(undefined)),
}

describe('changes in Nextcloud arrive by the poll', () => {
  let t: TestExApp
  // 200 users: four single-user syncs cost Nextcloud less than a full read, so the poll targets them.
  const directory = aDirectory({ users: 200, groups: 4, membershipsPerUser: 1, seed: 13 })
  const [created, disabled, deleted, moved] = ['newcomer', 'u002', 'u003', 'u004']

  beforeAll(async () => {
    t = await startTestExApp({ directory, env: defaults })
    const result = await t.nc.install(t.exapp.config.app.id, { timeoutMs: 180_000 })
    expect(result).toMatchObject({ init: 100, enabled: true })
  }, 240_000)
  afterAll(async () => {
    await t?.close()
  })

  const keycloakUser = async (username: string) => {
    const [user] = await t.admin.users.find({ realm: t.realm, username, exact: true })
    if (!user?.id) {
      return undefined
    }
    const groups = await t.admin.users.listGroups({ realm: t.realm, id: user.id })
    return { enabled: user.enabled, groups: groups.map((g) => g.name).sort() }
  }

  it('brings a created, a disabled, a deleted and a regrouped user over within the default interval', async () => {
    expect(defaults).toEqual({ SYNC_INTERVAL: '900', SYNC_POLL_INTERVAL: '30' })
    const movedFrom = t.nc.user(moved as string)?.groups ?? []
    const movedTo = directory.groups
      .map((g) => g.id)
      .filter((gid) => gid !== 'admin' && !movedFrom.includes(gid))
      .slice(0, 1)
    expect(await keycloakUser(moved as string)).toEqual({ enabled: true, groups: movedFrom })
    expect(await keycloakUser(disabled as string)).toMatchObject({ enabled: true })
    expect(await keycloakUser(deleted as string)).toMatchObject({ enabled: true })
    expect(await keycloakUser(created as string)).toBeUndefined()
    const runsBefore = (await t.exapp.store.listRuns({ realm: t.realm })).map((r) => r.id)
    const requestsBefore = t.nc.requests().length

    t.nc.addUser(aUser({ id: created, groups: movedTo }))
    t.nc.updateUser(disabled as string, { enabled: false })
    t.nc.removeUser(deleted as string)
    t.nc.setMembership(moved as string, movedTo)

    await vi.waitFor(
      async () => {
        expect(await keycloakUser(created as string)).toEqual({ enabled: true, groups: movedTo })
        expect(await keycloakUser(disabled as string)).toMatchObject({ enabled: false })
        // SYNC_DELETE_POLICY's default disables a user gone from Nextcloud
        expect(await keycloakUser(deleted as string)).toMatchObject({ enabled: false })
        expect(await keycloakUser(moved as string)).toEqual({ enabled: true, groups: movedTo })
      },
      { timeout: 120_000, interval: 1000 },
    )

    // Nobody asked: every run since is the schedule's, one per changed user, and Nextcloud was
    // never asked for every user's details, only for the four users' own.
    const runs = (await t.exapp.store.listRuns({ realm: t.realm })).filter(
      (r) => !runsBefore.includes(r.id),
    )
    expect(runs.map((r) => r.trigger)).toEqual(['schedule', 'schedule', 'schedule', 'schedule'])
    const since = t.nc.requests().slice(requestsBefore)
    expect(since.filter((r) => r.path.endsWith('/cloud/users/details'))).toEqual([])
    expect(
      since
        .filter((r) => /\/cloud\/users\/[^/]+$/.test(r.path) && !r.path.endsWith('/disabled'))
        .map((r) => r.path.split('/').pop())
        .sort(),
    ).toEqual([created, disabled, deleted, moved].sort())
  }, 180_000)
})
