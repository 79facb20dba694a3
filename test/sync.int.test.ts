import { request as httpRequest } from 'node:http'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { JWT_GRANT_IDP_ALIAS } from '../src/keycloak/jwt-grant.js'
import { NEXTCLOUD_IDP_ALIAS } from '../src/oidc/clients.js'
import type { Change } from '../src/sync/changes.js'
import type { RunSummary } from '../src/sync/engine.js'
import { aDirectory, aGroup, aUser, type Directory } from './builders.js'
import { sharedKeycloak } from './config.js'
import { type CountingProxy, startCountingProxy } from './counting-proxy.js'
import {
  bootstrapped,
  startTestExApp,
  type TestExApp,
  type TestExAppOptions,
} from './exapp-harness.js'
import { fixtureDirectory } from './fake-nextcloud/index.js'

// End to end through the HTTP API against the shared real Keycloak, checking the realm with an
// admin client of its own (never through the ExApp). Each test gets its own ExApp and realm, but
// the tests of a describe whose tests change nothing (failed runs, refused input) share one.

interface ErrorBody {
  error: { code: string; message: string }
}

/** What /api/sync-all answers: the run summary, with the original ExApp's `status` and `synced`. */
type RunBody = Partial<ErrorBody> &
  Omit<RunSummary, 'status' | 'errorCode'> & { status: string; runStatus: string; synced: number }

interface StoredRun {
  id: number
  realm: string
  trigger: string
  status: string
  dryRun: boolean
  counts: Record<string, number>
  errors: string[]
  changelog?: (Change & { outcome?: string; error?: string })[]
  changelogTotal?: number
}

interface UserBody {
  status: string
  user_id: string
  synced: boolean
  action: string
  run: number
  deleted?: boolean
  still_in_nextcloud?: boolean
}

interface Reply<T> {
  status: number
  body: T
  ms: number
}

const EXTRA = ['erin', 'frank', 'grace', 'heidi', 'ivan', 'judy']
const ALL = ['admin', 'alice', 'bob', 'carol', ...EXTRA]

/**
 * The fixtures' admin, alice, bob, carol and six more: ten users, so the 20% deletion guard lets
 * two be disabled in one run. Groups admin, engineering (alice, bob, erin, frank, grace), sales
 * (bob, carol) and marketing (heidi, ivan, judy).
 */
function tenUsers(): Directory {
  const base = fixtureDirectory()
  const more = EXTRA.map((id, i) =>
    aUser({
      id,
      displayname: `${id.charAt(0).toUpperCase()}${id.slice(1)} Example`,
      groups: [i < 3 ? 'engineering' : 'marketing'],
    }),
  )
  return {
    groups: [...base.groups, aGroup({ id: 'marketing', displayname: 'Marketing' })],
    users: [...base.users, ...more],
  }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup()
  }
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A bootstrapped ExApp on a realm of its own. With `proxy`, it reaches Keycloak through the
 * counting proxy (returned either way, so a test can ask for it without a type guard).
 */
async function given(
  {
    proxy: counted = false,
    synced = false,
    ...opts
  }: TestExAppOptions & {
    proxy?: boolean
    synced?: boolean
  } = {},
  closeAfter = cleanups,
): Promise<{ t: TestExApp; proxy: CountingProxy }> {
  const proxy = await startCountingProxy(sharedKeycloak().url)
  closeAfter.push(() => proxy.close())
  const t = await startTestExApp({
    directory: tenUsers(),
    enabled: true,
    ...opts,
    env: { ...(counted ? { KEYCLOAK_URL: proxy.url } : {}), ...opts.env },
  })
  closeAfter.push(() => t.close())
  await bootstrapped(t)
  if (synced) {
    const cold = await syncAll(t)
    expect(cold.status, JSON.stringify(cold.body)).toBe(200)
  }
  proxy.reset()
  return { t, proxy }
}

async function request<T>(
  t: TestExApp,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: BodyInit; json?: unknown } = {},
): Promise<Reply<T>> {
  const started = Date.now()
  const res = await fetch(`${t.exapp.url}${path}`, {
    method,
    headers: {
      ...(init.json === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...init.headers,
    },
    body: init.json === undefined ? init.body : JSON.stringify(init.json),
  })
  const text = await res.text()
  const ms = Date.now() - started
  let body: T
  try {
    body = JSON.parse(text) as T
  } catch {
    throw new Error(
      `${method} ${path} answered ${res.status} with a body that is not JSON: ${text}`,
    )
  }
  return { status: res.status, body, ms }
}

/** A call as the Nextcloud admin, through AppAPI (the consumer secret opens only the token API). */
function api<T>(
  t: TestExApp,
  method: string,
  path: string,
  init: { body?: BodyInit; json?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  return request<T>(t, method, path, {
    ...init,
    headers: { ...adminHeaders(t), ...init.headers },
  })
}

const adminHeaders = (t: TestExApp) => t.nc.appApiHeaders(t.exapp.config.app.id, 'admin')

const syncAll = (t: TestExApp, query = '') => api<RunBody>(t, 'POST', `/api/sync-all${query}`)
const syncUser = (t: TestExApp, uid: string) =>
  api<UserBody>(t, 'POST', '/api/sync-user', { json: { user_id: uid } })
const deleteUser = (t: TestExApp, uid: string) =>
  api<UserBody>(t, 'POST', '/api/delete-user', { json: { user_id: uid } })
const storedRun = async (t: TestExApp, id: number) =>
  (await api<StoredRun>(t, 'GET', `/api/sync-runs/${id}`)).body

async function realmUsers(t: TestExApp): Promise<Map<string, UserRepresentation>> {
  const users = await t.admin.users.find({ max: 1000, briefRepresentation: false })
  return new Map(users.map((u) => [u.username ?? '', u]))
}

async function enabledUsers(t: TestExApp): Promise<string[]> {
  return [...(await realmUsers(t)).values()]
    .filter((u) => u.enabled)
    .map((u) => u.username ?? '')
    .sort()
}

interface RealmGroup {
  displayName: string | undefined
  managed: boolean
  members: string[]
}

async function realmGroups(t: TestExApp): Promise<Record<string, RealmGroup>> {
  const groups = await t.admin.groups.find({ max: 1000, briefRepresentation: false })
  const result: Record<string, RealmGroup> = {}
  for (const group of groups) {
    const members = await t.admin.groups.listMembers({ id: group.id ?? '', max: 1000 })
    result[group.name ?? ''] = {
      displayName: group.attributes?.nextcloud_display_name?.[0],
      managed: group.attributes?.nextcloud_managed?.[0] === 'true',
      members: members.map((m) => m.username ?? '').sort(),
    }
  }
  return result
}

async function roleHolders(t: TestExApp, role: string): Promise<string[]> {
  const holders = await t.admin.roles.findUsersWithRole({ name: role, max: 1000 })
  return holders.map((u) => u.username ?? '').sort()
}

const TEN_USERS_GROUPS: Record<string, RealmGroup> = {
  admin: { displayName: 'admin', managed: true, members: ['admin'] },
  engineering: {
    displayName: 'Engineering',
    managed: true,
    members: ['alice', 'bob', 'erin', 'frank', 'grace'],
  },
  marketing: { displayName: 'Marketing', managed: true, members: ['heidi', 'ivan', 'judy'] },
  sales: { displayName: 'Sales', managed: true, members: ['bob', 'carol'] },
}

describe('sync through the HTTP API against a real Keycloak', () => {
  it('mirrors users, groups and memberships on a cold sync; a second run writes nothing', async () => {
    const { t, proxy } = await given({ proxy: true })
    const cold = await syncAll(t)
    const coldRequests = proxy.counts()
    expect(cold.status, JSON.stringify(cold.body)).toBe(200)
    expect(cold.body).toMatchObject({
      status: 'success',
      runStatus: 'succeeded',
      dryRun: false,
      users: 10,
      groups: 4,
      failed: 0,
      conflicts: [],
      errors: [],
    })
    expect(cold.body.counts).toEqual({
      'create-group': 4,
      'create-user': 10,
      'link-identity': 10,
      'add-member': 11,
    })

    const users = await realmUsers(t)
    expect([...users.keys()].sort()).toEqual(ALL)
    expect(users.get('alice')).toMatchObject({
      firstName: 'Alice',
      lastName: 'Anders',
      email: 'alice@example.com',
      emailVerified: true,
      enabled: true,
      attributes: { nextcloud_managed: ['true'], nextcloud_uid: ['alice'] },
    })
    expect(users.get('frank')).toMatchObject({
      firstName: 'Frank',
      lastName: 'Example',
      email: 'frank@example.com',
      enabled: true,
    })
    // admin: a one-word display name fills both names; no email in Nextcloud, none in Keycloak.
    const admin = users.get('admin')
    expect(admin).toMatchObject({ firstName: 'admin', lastName: 'admin', enabled: true })
    expect(admin?.email).toBeUndefined()
    for (const [username, user] of users) {
      expect(user.attributes, username).toMatchObject({
        nextcloud_managed: ['true'],
        nextcloud_uid: [username],
      })
    }
    expect(await realmGroups(t)).toEqual(TEN_USERS_GROUPS)
    // Linked to the token-minting identity provider, as the token grant needs, and to the realm
    // login's (Nextcloud), so a first browser login asks nothing.
    const links = await t.admin.users.listFederatedIdentities({ id: users.get('alice')?.id ?? '' })
    expect(links.map((l) => [l.identityProvider, l.userId, l.userName]).sort()).toEqual(
      [
        [NEXTCLOUD_IDP_ALIAS, 'alice', 'alice'],
        [JWT_GRANT_IDP_ALIAS, 'alice', 'alice'],
      ].sort(),
    )

    proxy.reset()
    const noop = await syncAll(t)
    expect(noop.status).toBe(200)
    expect(noop.body).toMatchObject({ runStatus: 'succeeded', counts: {}, synced: 0, failed: 0 })
    expect(proxy.writes(), `no-op run sent ${JSON.stringify(proxy.counts())}`).toBe(0)
    // Reading the realm is a handful of pages, not a request per user.
    expect(proxy.counts().GET ?? 0).toBeLessThanOrEqual(10)
    console.log(
      `10 users: cold sync ${cold.ms} ms, Keycloak requests ${JSON.stringify(coldRequests)}; no-op ${noop.ms} ms, ${JSON.stringify(proxy.counts())}`,
    )
  })

  it('follows Nextcloud: names, email, enabled state, memberships, group renames and deletions, removed users', async () => {
    const { t } = await given({ synced: true })
    t.nc.updateUser('alice', {
      displayname: 'Alicia Maria Anders',
      'display-name': 'Alicia Maria Anders',
    })
    t.nc.updateUser('bob', { email: 'Robert@Example.org' })
    t.nc.updateUser('carol', { enabled: false })
    t.nc.setMembership('alice', ['engineering', 'sales'])
    t.nc.setMembership('bob', ['sales'])
    t.nc.addGroup({ id: 'engineering', displayname: 'Research & Development' })
    t.nc.removeGroup('marketing')
    t.nc.removeUser('judy')

    const run = await syncAll(t)
    expect(run.status, JSON.stringify(run.body)).toBe(200)
    expect(run.body.counts).toEqual({
      'update-group': 1,
      'update-user': 2,
      'add-member': 1,
      'remove-member': 1,
      'disable-user': 2,
      'delete-group': 1,
    })
    const users = await realmUsers(t)
    expect(users.get('alice')).toMatchObject({ firstName: 'Alicia', lastName: 'Maria Anders' })
    expect(users.get('bob')).toMatchObject({ email: 'robert@example.org', enabled: true })
    expect(users.get('carol')?.enabled).toBe(false)
    // Removed from Nextcloud: disabled (the default policy), not deleted.
    expect(users.get('judy')).toMatchObject({
      enabled: false,
      attributes: { nextcloud_uid: ['judy'] },
    })
    expect(await enabledUsers(t)).toEqual(ALL.filter((u) => u !== 'carol' && u !== 'judy'))
    expect(await realmGroups(t)).toEqual({
      admin: TEN_USERS_GROUPS.admin,
      engineering: {
        displayName: 'Research & Development',
        managed: true,
        members: ['alice', 'erin', 'frank', 'grace'],
      },
      sales: { displayName: 'Sales', managed: true, members: ['alice', 'bob', 'carol'] },
    })

    // Enabled again in Nextcloud, and a removed user who comes back: both enabled again.
    t.nc.updateUser('carol', { enabled: true })
    t.nc.addUser(aUser({ id: 'judy', displayname: 'Judy Example' }))
    const back = await syncAll(t)
    expect(back.body.counts).toEqual({ 'enable-user': 2 })
    expect(await enabledUsers(t)).toEqual(ALL)
  })

  it('deletes a user removed from Nextcloud with SYNC_DELETE_POLICY=delete', async () => {
    const { t } = await given({ synced: true, env: { SYNC_DELETE_POLICY: 'delete' } })
    t.nc.removeUser('judy')
    const run = await syncAll(t)
    expect(run.status).toBe(200)
    expect(run.body.counts).toEqual({ 'delete-user': 1 })
    expect([...(await realmUsers(t)).keys()].sort()).toEqual(ALL.filter((u) => u !== 'judy'))
    expect((await realmGroups(t)).marketing?.members).toEqual(['heidi', 'ivan'])
  })

  it('grants a mapped realm role to members of the group and revokes it when they leave', async () => {
    const { t } = await given({ env: { SYNC_ROLE_MAPPINGS: 'sales:seller' } })
    const cold = await syncAll(t)
    expect(cold.body.counts['grant-role']).toBe(2)
    expect(await roleHolders(t, 'seller')).toEqual(['bob', 'carol'])

    t.nc.setMembership('carol', [])
    t.nc.setMembership('alice', ['engineering', 'sales'])
    const run = await syncAll(t)
    expect(run.body.counts).toEqual({
      'add-member': 1,
      'grant-role': 1,
      'remove-member': 1,
      'revoke-role': 1,
    })
    expect(await roleHolders(t, 'seller')).toEqual(['alice', 'bob'])
  })

  it('enables only members of the gate group, and enables a user who joins it', async () => {
    const { t } = await given({ env: { SYNC_GATE_GROUPS: 'engineering' } })
    const engineers = ['alice', 'bob', 'erin', 'frank', 'grace']
    const cold = await syncAll(t)
    expect(cold.status).toBe(200)
    expect(await enabledUsers(t)).toEqual(engineers)

    t.nc.setMembership('carol', ['engineering', 'sales'])
    expect((await syncAll(t)).body.counts).toEqual({ 'add-member': 1, 'enable-user': 1 })
    expect(await enabledUsers(t)).toEqual([...engineers, 'carol'].sort())

    t.nc.setMembership('bob', ['sales'])
    expect((await syncAll(t)).body.counts).toEqual({ 'remove-member': 1, 'disable-user': 1 })
    expect((await realmUsers(t)).get('bob')?.enabled).toBe(false)

    t.nc.setMembership('bob', ['engineering', 'sales'])
    expect((await syncAll(t)).body.counts).toEqual({ 'add-member': 1, 'enable-user': 1 })
    expect((await realmUsers(t)).get('bob')?.enabled).toBe(true)
  })

  it('runs in the background on request and tells which run to follow', async () => {
    const { t } = await given()
    const before = (await api<{ lastRun: { id: number } | null }>(t, 'GET', '/api/sync-status'))
      .body.lastRun
    const started = await api<{ status: string; after: number }>(
      t,
      'POST',
      '/api/sync-all?background=1',
    )
    expect(started.status).toBe(202)
    expect(started.body).toEqual({ status: 'started', after: before?.id ?? 0 })
    type Status = { running: unknown; lastRun: { id: number; status: string; trigger: string } }
    let status: Status | undefined
    const deadline = Date.now() + 60_000
    do {
      await sleep(100)
      status = (await api<Status>(t, 'GET', '/api/sync-status')).body
    } while (
      (status.running !== null || !status.lastRun || status.lastRun.id <= started.body.after) &&
      Date.now() < deadline
    )
    expect(status.lastRun).toMatchObject({ status: 'succeeded', trigger: 'ui' })
    expect(await enabledUsers(t)).toEqual([...ALL].sort())
    const dry = await api<ErrorBody>(t, 'POST', '/api/sync-all?background=1&dryRun=1')
    expect(dry.status).toBe(400)
    expect(dry.body.error.code).toBe('INVALID_INPUT')
  })

  it('answers a dry run with the changelog and writes nothing', async () => {
    const { t, proxy } = await given({ proxy: true })
    const first = await syncAll(t, '?dryRun=1')
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ dryRun: true, runStatus: 'succeeded' })
    expect(first.body.counts).toMatchObject({ 'create-group': 4, 'create-user': 10 })
    expect(first.body.changes).toContainEqual({
      kind: 'create-user',
      uid: 'alice',
      user: expect.objectContaining({ firstName: 'Alice', lastName: 'Anders' }),
    })
    expect(proxy.writes(), JSON.stringify(proxy.counts())).toBe(0)
    expect(await t.admin.users.find({ max: 100 })).toEqual([])
    expect(await t.admin.groups.find({ max: 100 })).toEqual([])

    expect((await syncAll(t)).status).toBe(200)
    t.nc.updateUser('alice', { displayname: 'Alicia Anders', 'display-name': 'Alicia Anders' })
    t.nc.removeUser('judy')
    proxy.reset()
    const dry = await syncAll(t, '?dryRun=1')
    expect(dry.status).toBe(200)
    expect(dry.body.changes).toEqual([
      {
        kind: 'update-user',
        uid: 'alice',
        before: { firstName: 'Alice' },
        after: { firstName: 'Alicia' },
      },
      { kind: 'disable-user', uid: 'judy', reason: 'removed' },
    ])
    expect(proxy.writes(), JSON.stringify(proxy.counts())).toBe(0)
    const users = await realmUsers(t)
    expect(users.get('alice')?.firstName).toBe('Alice')
    expect(users.get('judy')?.enabled).toBe(true)
    expect(await storedRun(t, dry.body.runId)).toMatchObject({
      dryRun: true,
      status: 'succeeded',
      changelog: dry.body.changes,
      changelogTotal: 2,
    })
    // The head of a changelog only, with its length.
    const head = await api<StoredRun>(t, 'GET', `/api/sync-runs/${dry.body.runId}?limit=1`)
    expect(head.body).toMatchObject({ changelog: [dry.body.changes?.[0]], changelogTotal: 2 })
    for (const limit of ['-1', '1.5', 'x']) {
      const bad = await api<ErrorBody>(t, 'GET', `/api/sync-runs/${dry.body.runId}?limit=${limit}`)
      expect(bad.status, limit).toBe(400)
    }
  })

  it('never changes Keycloak users it did not create; name and email clashes are conflicts', async () => {
    const { t } = await given()
    await t.admin.users.create({
      username: 'dave',
      email: 'dave@example.com',
      firstName: 'Dave',
      lastName: 'Direct',
      enabled: true,
    })
    await t.admin.users.create({
      username: 'kc-erin',
      email: 'erin@example.com',
      firstName: 'Erin',
      lastName: 'Elsewhere',
      enabled: true,
    })
    const before = await realmUsers(t)
    t.nc.addUser(aUser({ id: 'dave', displayname: 'Dave Nextcloud', groups: ['sales'] }))
    t.nc.updateUser('frank', { email: 'shared@example.com' })
    t.nc.updateUser('grace', { email: 'shared@example.com' })

    const run = await syncAll(t)
    expect(run.status, JSON.stringify(run.body)).toBe(200)
    expect(run.body).toMatchObject({ status: 'success', runStatus: 'succeeded', failed: 0 })
    expect(run.body.conflicts).toEqual([
      { kind: 'username-taken', uid: 'dave', username: 'dave', holder: null },
      { kind: 'email-taken', uid: 'erin', email: 'erin@example.com', holder: null },
      { kind: 'email-taken', uid: 'grace', email: 'shared@example.com', holder: 'frank' },
    ])
    const users = await realmUsers(t)
    // Not adopted: the one dave is the Keycloak one, untouched, unmarked, in no synced group.
    expect(users.get('dave')).toEqual(before.get('dave'))
    expect(users.get('dave')?.attributes?.nextcloud_uid).toBeUndefined()
    expect(users.get('kc-erin')).toEqual(before.get('kc-erin'))
    expect((await realmGroups(t)).sales?.members).toEqual(['bob', 'carol'])
    // Email clashes cost only the address: the users are synced without it.
    expect(users.get('erin')).toMatchObject({ enabled: true, firstName: 'Erin' })
    expect(users.get('erin')?.email).toBeUndefined()
    expect(users.get('frank')?.email).toBe('shared@example.com')
    expect(users.get('grace')?.email).toBeUndefined()

    // Gone from Nextcloud, even forced: an unmarked user is never disabled or deleted.
    t.nc.removeUser('dave')
    const forced = await syncAll(t, '?force=1')
    expect(forced.status).toBe(200)
    expect(forced.body.counts).toEqual({})
    const after = await realmUsers(t)
    expect(after.get('dave')).toEqual(before.get('dave'))
    expect(after.get('kc-erin')).toEqual(before.get('kc-erin'))
  })

  it('stops a run that would disable more than 20% of the users unless forced, and an empty Nextcloud', async () => {
    const { t } = await given({ synced: true })
    for (const uid of ['heidi', 'ivan', 'judy']) {
      t.nc.removeUser(uid)
    }
    const tripped = await syncAll(t)
    expect(tripped.status).toBe(409)
    expect(tripped.body).toMatchObject({
      status: 'guard_tripped',
      runStatus: 'guard_tripped',
      error: { code: 'GUARD_TRIPPED' },
      guard: { tripped: true, forced: false, affected: 3, managed: 10, limit: 2 },
    })
    expect(await enabledUsers(t)).toEqual(ALL)
    expect(await storedRun(t, tripped.body.runId)).toMatchObject({ status: 'guard_tripped' })

    const forced = await syncAll(t, '?force=1')
    expect(forced.status).toBe(200)
    expect(forced.body.counts).toEqual({ 'disable-user': 3 })
    expect(forced.body.guard).toMatchObject({ tripped: false, forced: true })
    expect(await enabledUsers(t)).toEqual(ALL.filter((u) => !['heidi', 'ivan', 'judy'].includes(u)))

    // Nextcloud answering with no users (and no groups, so nothing else looks wrong).
    const empty = (key: string) =>
      JSON.stringify({
        ocs: { meta: { status: 'ok', statuscode: 200, message: 'OK' }, data: { [key]: [] } },
      })
    const json = { status: 200, contentType: 'application/json; charset=utf-8' }
    t.nc.failNext('/cloud/users/details', { ...json, body: empty('users') })
    t.nc.failNext('/cloud/groups/details', { ...json, body: empty('groups') })
    const wiped = await syncAll(t)
    expect(wiped.status, JSON.stringify(wiped.body)).toBe(409)
    expect(wiped.body.guard?.reason).toMatch(/no users/)
    expect(await enabledUsers(t)).toEqual(ALL.filter((u) => !['heidi', 'ivan', 'judy'].includes(u)))
    expect(Object.keys(await realmGroups(t)).sort()).toEqual(Object.keys(TEN_USERS_GROUPS))
  })

  it('converges after Keycloak vanishes mid-run: every user exactly once', async () => {
    // New groups go in one partial import, new users in partial imports of 200 (three batches):
    // Keycloak goes away once the groups and the first batch of users went through.
    const directory = aDirectory({ users: 450, groups: 5, membershipsPerUser: 2, seed: 7 })
    const { t, proxy } = await given({ proxy: true, directory })
    proxy.reset()
    proxy.breakAfterMatching(/^POST .*\/partialImport$/, 2)
    const broken = await syncAll(t)
    proxy.heal()
    expect(broken.body.failed, JSON.stringify(broken.body).slice(0, 500)).toBeGreaterThan(0)
    expect(broken.body.status).toBe('partial')
    expect(broken.body.errors.join('\n')).toMatch(/503|unavailable/i)
    const partial = await realmUsers(t)
    expect(partial.size).toBeGreaterThan(0)
    expect(partial.size).toBeLessThan(451)
    const stored = await storedRun(t, broken.body.runId)
    expect(stored.status).toBe('partial')
    const outcomes = new Set(stored.changelog?.map((c) => c.outcome))
    expect([...outcomes].sort()).toEqual(expect.arrayContaining(['applied', 'failed']))

    const healed = await syncAll(t)
    expect(healed.status).toBe(200)
    expect(healed.body).toMatchObject({ runStatus: 'succeeded', failed: 0, errors: [] })
    const users = await t.admin.users.find({ max: 1000, briefRepresentation: false })
    const usernames = users.map((u) => u.username).sort()
    expect(usernames).toEqual(directory.users.map((u) => u.id).sort())
    for (const user of users) {
      expect(user.attributes?.nextcloud_uid).toEqual([user.username])
    }
    const groups = await realmGroups(t)
    for (const group of directory.groups) {
      const members = directory.users.filter((u) => u.groups.includes(group.id)).map((u) => u.id)
      expect(groups[group.id]?.members, group.id).toEqual(members.sort())
    }

    proxy.reset()
    const settled = await syncAll(t)
    expect(settled.body.counts).toEqual({})
    expect(proxy.writes()).toBe(0)
  })

  it('folds sync-all calls arriving during a run into one follow-up run', async () => {
    const { t } = await given()
    const answers = await Promise.all([syncAll(t), syncAll(t), syncAll(t)])
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
    const ids = answers.map((a) => a.body.runId)
    const [first, followUp] = [...new Set(ids)].sort((a, b) => a - b)
    expect(new Set(ids).size, `runIds ${ids}`).toBe(2)
    expect(ids.filter((id) => id === followUp)).toHaveLength(2)
    const byId = new Map(answers.map((a) => [a.body.runId, a.body]))
    expect(byId.get(first ?? 0)?.counts['create-user']).toBe(10)
    expect(byId.get(followUp ?? 0)?.counts).toEqual({})
    const { body } = await api<{ runs: StoredRun[] }>(t, 'GET', '/api/sync-runs')
    expect(body.runs.map((r) => r.id)).toEqual([followUp, first])
  })

  it('syncs one user on sync-user, and on delete-user keeps a user Nextcloud still has', async () => {
    const { t } = await given({ synced: true })
    t.nc.addUser(aUser({ id: 'newbie', displayname: 'New Bie', groups: ['engineering'] }))
    t.nc.addUser(aUser({ id: 'other', displayname: 'Other Person' }))
    t.nc.updateUser('bob', { displayname: 'Robert Berg', 'display-name': 'Robert Berg' })

    const created = await syncUser(t, 'newbie')
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    expect(created.body).toMatchObject({
      status: 'success',
      user_id: 'newbie',
      synced: true,
      action: 'created',
    })
    let users = await realmUsers(t)
    expect(users.get('newbie')).toMatchObject({
      firstName: 'New',
      lastName: 'Bie',
      enabled: true,
      attributes: { nextcloud_uid: ['newbie'] },
    })
    expect(users.has('other')).toBe(false)
    expect(users.get('bob')?.firstName).toBe('Bob')
    expect((await realmGroups(t)).engineering?.members).toContain('newbie')

    const kept = await deleteUser(t, 'alice')
    expect(kept.status).toBe(200)
    expect(kept.body).toMatchObject({
      status: 'success',
      user_id: 'alice',
      synced: true,
      deleted: false,
      still_in_nextcloud: true,
    })
    expect((await realmUsers(t)).get('alice')?.enabled).toBe(true)

    t.nc.removeUser('carol')
    const removed = await deleteUser(t, 'carol')
    expect(removed.status).toBe(200)
    expect(removed.body).toMatchObject({
      status: 'success',
      user_id: 'carol',
      synced: true,
      action: 'disabled',
      deleted: true,
      still_in_nextcloud: false,
    })
    users = await realmUsers(t)
    expect(users.get('carol')?.enabled).toBe(false)
    expect(users.get('bob')?.firstName).toBe('Bob')

    const unknown = await deleteUser(t, 'nobody')
    expect(unknown.body).toMatchObject({ status: 'success', user_id: 'nobody', action: 'absent' })
  })

  it('stores runs: newest first, each with its changelog and every change’s outcome', async () => {
    const { t } = await given()
    const cold = await syncAll(t)
    t.nc.updateUser('alice', { displayname: 'Alicia Anders', 'display-name': 'Alicia Anders' })
    const dry = await syncAll(t, '?dryRun=1')
    const update = await syncAll(t)

    const list = await api<{ runs: StoredRun[] }>(t, 'GET', '/api/sync-runs')
    expect(list.status).toBe(200)
    expect(list.body.runs.map((r) => r.id)).toEqual([
      update.body.runId,
      dry.body.runId,
      cold.body.runId,
    ])
    expect(list.body.runs[0]).toMatchObject({
      realm: t.realm,
      trigger: 'api',
      status: 'succeeded',
      dryRun: false,
      counts: { 'update-user': 1 },
    })
    expect(list.body.runs[1]).toMatchObject({ dryRun: true })
    expect(list.body.runs.every((r) => r.changelog === undefined)).toBe(true)
    const limited = await api<{ runs: StoredRun[] }>(t, 'GET', '/api/sync-runs?limit=1')
    expect(limited.body.runs.map((r) => r.id)).toEqual([update.body.runId])

    const coldRun = await storedRun(t, cold.body.runId)
    const planned = Object.values(cold.body.counts).reduce((a, b) => a + b, 0)
    expect(coldRun.changelog).toHaveLength(planned)
    expect(new Set(coldRun.changelog?.map((c) => c.outcome))).toEqual(new Set(['applied']))
    expect(coldRun.changelog).toContainEqual(
      expect.objectContaining({ kind: 'create-user', uid: 'alice', outcome: 'applied' }),
    )
    expect((await storedRun(t, update.body.runId)).changelog).toEqual([
      {
        kind: 'update-user',
        uid: 'alice',
        before: { firstName: 'Alice' },
        after: { firstName: 'Alicia' },
        outcome: 'applied',
      },
    ])
    const missing = await api<ErrorBody>(t, 'GET', '/api/sync-runs/999999999')
    expect(missing.status).toBe(404)
    expect(missing.body.error.code).toBe('NOT_FOUND')
  })
})

describe('ordinary runs plan against the stored state', () => {
  /** Keycloak reads of the realm's users (one user, a page, its groups, roles or links). */
  const userReads = (proxy: CountingProxy) =>
    proxy.requests().filter((r) => /^GET \/admin\/realms\/[^/]+\/users/.test(r))

  it('read no Keycloak user when nothing changed, and repair a console edit of a managed user', async () => {
    const { t, proxy } = await given({ proxy: true, synced: true })
    const noop = await syncAll(t)
    expect(noop.body).toMatchObject({ runStatus: 'succeeded', counts: {}, synced: 0 })
    expect(noop.body.basis).toMatchObject({ kind: 'stored', reads: 0 })
    expect(userReads(proxy), JSON.stringify(proxy.requests())).toEqual([])
    expect(proxy.writes()).toBe(0)

    // An admin edits managed users in the console (the same admin API, the same admin).
    const users = await realmUsers(t)
    const alice = users.get('alice')
    const bob = users.get('bob')
    const carol = users.get('carol')
    const [engineering] = await t.admin.groups.find({ search: 'engineering', exact: true })
    if (!alice?.id || !bob?.id || !carol?.id || !engineering?.id) {
      throw new Error('the cold sync left no alice, bob, carol or engineering')
    }
    await t.admin.users.update(
      { id: alice.id },
      { ...alice, email: 'mallory@example.net', firstName: 'Mallory', enabled: false },
    )
    await t.admin.users.delFromGroup({ id: bob.id, groupId: engineering.id })
    await t.admin.users.addToGroup({ id: carol.id, groupId: engineering.id })

    proxy.reset()
    const repair = await syncAll(t)
    expect(repair.body).toMatchObject({ runStatus: 'succeeded', failed: 0 })
    expect(repair.body.basis).toMatchObject({ kind: 'stored', reads: 3 })
    expect(repair.body.counts).toEqual({
      'update-user': 1,
      'enable-user': 1,
      'add-member': 1,
      'remove-member': 1,
    })
    expect((await realmUsers(t)).get('alice')).toMatchObject({
      firstName: 'Alice',
      lastName: 'Anders',
      email: 'alice@example.com',
      enabled: true,
    })
    expect(await realmGroups(t)).toEqual(TEN_USERS_GROUPS)

    // The repair's own writes are not mistaken for someone else's: the next run reads nothing.
    proxy.reset()
    const after = await syncAll(t)
    expect(after.body).toMatchObject({ runStatus: 'succeeded', counts: {} })
    expect(after.body.basis).toMatchObject({ kind: 'stored', reads: 0 })
    expect(userReads(proxy)).toEqual([])
  })

  it('follow Nextcloud on the stored state, and read the whole realm when asked to', async () => {
    const { t, proxy } = await given({ proxy: true, synced: true })
    t.nc.updateUser('bob', { email: 'robert@example.org' })
    t.nc.setMembership('carol', ['engineering', 'sales'])
    const delta = await syncAll(t)
    expect(delta.body.basis).toMatchObject({ kind: 'stored' })
    expect(delta.body.counts).toEqual({ 'update-user': 1, 'add-member': 1 })
    expect((await realmUsers(t)).get('bob')?.email).toBe('robert@example.org')

    proxy.reset()
    const full = await syncAll(t, '?full=1')
    expect(full.body).toMatchObject({ runStatus: 'succeeded', counts: {} })
    expect(full.body.basis).toMatchObject({ kind: 'full', reason: 'a full run was asked for' })
    expect(userReads(proxy).length).toBeGreaterThan(0)
    expect(proxy.writes()).toBe(0)
  })

  it('read the whole realm again after a run whose write failed', async () => {
    const { t, proxy } = await given({ proxy: true, synced: true })
    t.nc.updateUser('bob', { email: 'robert@example.org' })
    t.nc.updateUser('carol', { email: 'caroline@example.org' })
    // A dry run reads what the run reads; the run then reads bob before its first write, which
    // is where Keycloak goes away.
    proxy.reset()
    await syncAll(t, '?dryRun=1')
    const reads = proxy.requests().length
    proxy.breakAfter(reads + 1)
    const broken = await syncAll(t)
    proxy.heal()
    expect(broken.body).toMatchObject({ runStatus: 'partial', counts: {} })
    const next = await syncAll(t)
    expect(next.body.basis).toMatchObject({ kind: 'full' })
    expect(next.body).toMatchObject({ runStatus: 'succeeded', failed: 0 })
    const users = await realmUsers(t)
    expect(users.get('bob')?.email).toBe('robert@example.org')
    expect(users.get('carol')?.email).toBe('caroline@example.org')
  })
})

describe('uids Nextcloud accepts', () => {
  // Nextcloud allows letters, digits, spaces and "_.@-'" in a uid, any case; Keycloak lower-cases
  // usernames, so the nextcloud_uid marker keeps the exact uid and the token path finds it by that.
  const ODD = [
    aUser({ id: 'john doe', displayname: 'John Doe', email: 'john.doe@example.com' }),
    aUser({ id: "o'brien", displayname: "Siobhan O'Brien", email: 'obrien@example.com' }),
    aUser({ id: 'a.b@example.org', displayname: 'A B', email: 'a.b@example.org' }),
    aUser({ id: 'MaxMustermann', displayname: 'Max Mustermann', email: 'max@example.com' }),
  ]

  const tokenFor = async (t: TestExApp, uid: string) => {
    const res = await request<{ access_token?: string }>(
      t,
      'POST',
      '/api/token?client_id=opentalk',
      {
        // A consumer's request: its secret opens the token API.
        headers: { 'X-API-SECRET': t.exapp.config.consumers[0]?.secret ?? '', 'X-NC-USER-ID': uid },
      },
    )
    expect(res.status, `${uid}: ${JSON.stringify(res.body)}`).toBe(200)
    const [, payload = ''] = (res.body.access_token ?? '').split('.')
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
  }

  it.each(['jwt', 'password'])(
    'get tokens before any sync (%s mode), sync, and the next run writes nothing',
    async (mode) => {
      const directory = tenUsers()
      const { t } = await given({
        directory: { ...directory, users: [...directory.users, ...ODD] },
        env: { KEYCLOAK_TOKEN_MODE: mode },
      })
      // Each token request provisions its user with a single-user run.
      for (const { id } of ODD) {
        expect((await tokenFor(t, id)).preferred_username, id).toBe(id.toLowerCase())
      }
      const first = await syncAll(t)
      expect(first.status, JSON.stringify(first.body)).toBe(200)
      expect(first.body).toMatchObject({ status: 'success', failed: 0, conflicts: [], errors: [] })
      const users = await realmUsers(t)
      for (const { id, email } of ODD) {
        expect(users.get(id.toLowerCase()), id).toMatchObject({
          email,
          attributes: { nextcloud_uid: [id] },
        })
      }
      const again = await syncAll(t)
      expect(again.body).toMatchObject({ status: 'success', failed: 0, conflicts: [], counts: {} })
      const one = await syncUser(t, 'MaxMustermann')
      expect(one.body).toMatchObject({ status: 'success', synced: true, action: 'unchanged' })
      t.exapp.tokens.revokeUser('john doe')
      expect((await tokenFor(t, 'john doe')).preferred_username).toBe('john doe')
    },
  )

  it('reports what Keycloak cannot take as a conflict each run, with the reason, not as a failed write', async () => {
    const directory = tenUsers()
    // another user backend may hand Nextcloud a uid outside its own rule
    const zoe = aUser({ id: 'zoë', displayname: 'Zoë', email: 'zoe@example.com' })
    const { t } = await given({
      directory: { ...directory, users: [...directory.users, zoe] },
      synced: true,
    })
    // a user added later with the email alice has
    t.nc.addUser(aUser({ id: 'x_y-z', displayname: 'X Y', email: 'alice@example.com' }))
    // token first: provisioned without the email alice holds, instead of refused
    expect((await tokenFor(t, 'x_y-z')).preferred_username).toBe('x_y-z')
    for (let run = 0; run < 2; run++) {
      const res = await syncAll(t)
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      expect(res.body).toMatchObject({ status: 'success', failed: 0, errors: [] })
      expect(res.body.conflicts).toEqual([
        { kind: 'email-taken', uid: 'x_y-z', email: 'alice@example.com', holder: 'alice' },
        { kind: 'uid-refused', uid: 'zoë', reason: expect.stringMatching(/characters outside/) },
      ])
    }
    const users = await realmUsers(t)
    expect(users.has('zoë')).toBe(false)
    expect(users.get('x_y-z')?.email).toBeUndefined()
    expect(users.get('alice')?.email).toBe('alice@example.com')
  })
})

describe('when Nextcloud fails during a run', () => {
  let t: TestExApp
  const closeAfterAll: (() => Promise<void>)[] = []

  beforeAll(async () => {
    const started = await given(
      {
        synced: true,
        // Small pages, so a cut page has more after it; a short client timeout for the hang.
        env: { SYNC_PAGE_SIZE: '4' },
        nextcloudTimeoutMs: 1_000,
      },
      closeAfterAll,
    )
    t = started.t
    // A healthy run would disable judy: each fault must keep it from doing so.
    t.nc.removeUser('judy')
  })
  afterAll(async () => {
    for (const close of closeAfterAll.reverse()) {
      await close()
    }
  })

  const faults: [string, (t: TestExApp) => void][] = [
    ['answers 500 on users/details', (t) => t.nc.failNext('/cloud/users/details')],
    ['never answers users/details', (t) => t.nc.hangNext('/cloud/users/details')],
    ['cuts a users/details page short', (t) => t.nc.truncateNext('/cloud/users/details')],
    ['cuts the group list short', (t) => t.nc.truncateNext('/cloud/groups/details')],
    [
      'answers a page that is not JSON',
      (t) =>
        t.nc.failNext('/cloud/users/details', { status: 200, body: '<html>maintenance</html>' }),
    ],
  ]

  it.each(faults)('fails the run and disables nothing when Nextcloud %s', async (_, inject) => {
    inject(t)
    const run = await syncAll(t)
    expect(run.status, JSON.stringify(run.body)).toBe(502)
    expect(run.body).toMatchObject({
      status: 'failed',
      runStatus: 'failed',
      counts: {},
      error: { code: 'NEXTCLOUD_UNAVAILABLE' },
    })
    expect(run.body.errors).toHaveLength(1)
    expect(await storedRun(t, run.body.runId)).toMatchObject({
      status: 'failed',
      changelog: [],
      errors: run.body.errors,
    })
    expect(await enabledUsers(t)).toEqual(ALL)
    expect(await realmGroups(t)).toEqual(TEN_USERS_GROUPS)
    // The same read without the fault would disable judy, so nothing above was luck.
    const dry = await syncAll(t, '?dryRun=1')
    expect(dry.body.changes).toEqual([{ kind: 'disable-user', uid: 'judy', reason: 'removed' }])
  })
})

describe('input and access of the sync endpoints', () => {
  let t: TestExApp
  beforeAll(async () => {
    t = await startTestExApp({ directory: tenUsers(), enabled: true })
    await bootstrapped(t)
  })
  afterAll(async () => {
    await t?.close()
  })

  const big = JSON.stringify({ user_id: 'alice', padding: 'x'.repeat(1_000_000) })
  const bad: [string, BadBody][] = [
    ['no user_id', { body: '{}' }],
    ['a number as user_id', { body: '{"user_id":42}' }],
    ['null as user_id', { body: '{"user_id":null}' }],
    ['a list as user_id', { body: '{"user_id":["alice"]}' }],
    ['an object as user_id', { body: '{"user_id":{"id":"alice"}}' }],
    ['an empty user_id', { body: '{"user_id":""}' }],
    ['a 65-character user_id', { body: JSON.stringify({ user_id: 'a'.repeat(65) }) }],
    ['a user_id with a slash', { body: '{"user_id":"../admin"}' }],
    ['a JSON list', { body: '[{"user_id":"alice"}]' }],
    ['a JSON string', { body: '"alice"' }],
    ['invalid JSON', { body: '{"user_id":' }],
    ['an empty body', { body: '' }],
    ['a 1 MB body', { body: big }],
    ['a 1 MB body sent in chunks, without a length', { body: big, chunked: true }],
    ['text/plain', { body: '{"user_id":"alice"}', type: 'text/plain' }],
    ['a form', { body: 'user_id=alice', type: 'application/x-www-form-urlencoded' }],
    ['no content type', { body: '{"user_id":"alice"}', type: null }],
  ]
  const cases = ['/api/sync-user', '/api/delete-user'].flatMap((path) =>
    bad.map(([name, body]) => [path, name, body] as const),
  )

  it.each(cases)('%s answers 400 INVALID_INPUT to %s', async (path, _, body) => {
    const res = await post(`${t.exapp.url}${path}`, adminHeaders(t), body)
    expect(res.status, res.text).toBe(400)
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'INVALID_INPUT' } })
  })

  it('answers 400 to a run id that is not a positive integer, 404 to an unknown one', async () => {
    for (const id of ['abc', '0', '-1', '1.5', '9'.repeat(400)]) {
      const res = await api<ErrorBody>(t, 'GET', `/api/sync-runs/${id}`)
      expect(res.status, id).toBe(400)
      expect(res.body.error.code).toBe('INVALID_INPUT')
    }
    const res = await api<ErrorBody>(t, 'GET', '/api/sync-runs/424242424')
    expect(res.status).toBe(404)
  })

  it('ignores a body on sync-all rather than failing on it', async () => {
    const res = await api<RunBody>(t, 'POST', '/api/sync-all?dryRun=1', {
      body: '{"user_id":',
      headers: { 'Content-Type': 'application/json' },
    })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    expect(res.body.dryRun).toBe(true)
  })

  it('answers 403 to a Nextcloud user who is not an admin, and serves an admin', async () => {
    const appId = t.exapp.config.app.id
    const routes: [string, string, unknown?][] = [
      ['POST', '/api/sync-all'],
      ['POST', '/api/sync-user', { user_id: 'alice' }],
      ['POST', '/api/delete-user', { user_id: 'alice' }],
      ['GET', '/api/sync-runs'],
      ['GET', '/api/sync-runs/1'],
      ['GET', '/api/sync-status'],
    ]
    for (const [method, path, json] of routes) {
      const res = await request<ErrorBody>(t, method, path, {
        headers: t.nc.appApiHeaders(appId, 'alice'),
        json,
      })
      expect(res.status, `${method} ${path}`).toBe(403)
      expect(res.body.error.code).toBe('FORBIDDEN')
    }
    const admin = await request<{ runs: unknown[] }>(t, 'GET', '/api/sync-runs', {
      headers: t.nc.appApiHeaders(appId, 'admin'),
    })
    expect(admin.status).toBe(200)
    expect(Array.isArray(admin.body.runs)).toBe(true)
  })
})

it('answers 401 to a missing or wrong secret, then 429 to a wrong secret that keeps failing, not to the right one', async () => {
  // An ExApp of its own: ten failures of one credential block it for a minute. Every request here
  // comes from one address, as behind AppAPI's proxy or HaRP, and the right secret still passes.
  const t = await startTestExApp({ directory: tenUsers(), enabled: true })
  cleanups.push(() => t.close())
  await bootstrapped(t)
  const routes: [string, string][] = [
    ['POST', '/api/sync-all'],
    ['POST', '/api/sync-user'],
    ['POST', '/api/delete-user'],
    ['GET', '/api/sync-runs'],
    ['GET', '/api/sync-runs/1'],
    ['GET', '/api/sync-status'],
  ]
  const attempts: [string, string, Record<string, string>][] = [
    ...routes.map(([m, p]): [string, string, Record<string, string>] => [m, p, {}]),
    ...[...routes, ...routes]
      .slice(0, 10)
      .map(([m, p]): [string, string, Record<string, string>] => [
        m,
        p,
        { 'X-API-SECRET': 'not-the-secret' },
      ]),
  ]
  for (const [method, path, headers] of attempts) {
    const res = await request<ErrorBody>(t, method, path, {
      headers,
      json: method === 'POST' ? { user_id: 'alice' } : undefined,
    })
    expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401)
    expect(res.body.error.code).toBe('UNAUTHORIZED')
  }
  const blocked = await request<ErrorBody>(t, 'GET', '/api/sync-runs', {
    headers: { 'X-API-SECRET': 'not-the-secret' },
  })
  expect(blocked.status).toBe(429)
  expect(blocked.body.error.code).toBe('RATE_LIMITED')
  expect((await api(t, 'GET', '/api/sync-runs')).status).toBe(200)
})

interface BadBody {
  body: string
  /** Content-Type; null for none; default application/json */
  type?: string | null
  /** sent with Transfer-Encoding: chunked, in 64 KB writes, instead of with a Content-Length */
  chunked?: boolean
}

/**
 * A POST on a connection of its own (fetch would reuse one, and the server may close a connection
 * whose request body it refused unread). Errors after the answer arrived (the server stopped
 * reading a body it refused) are the point, not a failure.
 */
function post(
  url: string,
  headers: Record<string, string>,
  { body, type = 'application/json', chunked = false }: BadBody,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          ...headers,
          ...(type === null ? {} : { 'Content-Type': type }),
          ...(chunked ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
        },
      },
      (res) => {
        answered = true
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', (err) => {
      if (!answered) {
        reject(err)
      }
    })
    if (chunked) {
      for (let i = 0; i < body.length; i += 65_536) {
        req.write(body.slice(i, i + 65_536))
      }
      req.end()
    } else {
      req.end(body)
    }
  })
}
