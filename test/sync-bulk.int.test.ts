import { afterEach, describe, expect, it } from 'vitest'
import { createKeycloakAdmin, type KcAdmin } from '../src/keycloak/admin.js'
import { JWT_GRANT_IDP_ALIAS } from '../src/keycloak/jwt-grant.js'
import { silentLogger } from '../src/log.js'
import type { Change } from '../src/sync/changes.js'
import { KeycloakTarget, type KeycloakTargetOptions } from '../src/sync/keycloak-target.js'
import type { Actual } from '../src/sync/model.js'
import { aDirectory, aGroup, aUser, type Directory } from './builders.js'
import { sharedKeycloak } from './config.js'
import { bootstrapped, startTestExApp, type TestExApp, uniqueRealm } from './exapp-harness.js'
import { verifiedClaims } from './jwt.js'

// A cold sync creates users and groups through Keycloak's partial import. These tests run the
// same directory into two realms of the shared real Keycloak, one through the bulk path and one
// one by one (a target without it), and compare what each realm holds and what each run reports.

/** Two realms bootstrapped, synced and read back: minutes on a loaded machine. */
const TEST_MS = 600_000

const PROFILE_FIELDS = 'phone,organisation'

/**
 * 24 generated users in 6 groups (some disabled), and the odd ones: no email, an email with a
 * comma (the import would take it unchecked, the per-user create judges it), a mixed-case uid,
 * profile fields, and a group whose gid has a "/" (no path the import resolves).
 */
function oddDirectory(): Directory {
  const base = aDirectory({
    users: 24,
    groups: 6,
    membershipsPerUser: 2,
    seed: 11,
    disabledRatio: 0.2,
  })
  const users = base.users.map((u, i) =>
    i % 7 === 3 ? { ...u, phone: `+49 30 ${1000 + i}`, organisation: `Org ${i % 3}` } : u,
  )
  return {
    groups: [...base.groups, aGroup({ id: 'team/a', displayname: 'Team A' })],
    users: [
      ...users,
      aUser({ id: 'noemail', displayname: 'No Email', email: null, groups: ['g1'] }),
      aUser({
        id: 'comma',
        displayname: 'Comma Mail',
        email: 'first,last@example.com',
        groups: ['g2'],
      }),
      aUser({ id: 'MixedCase', displayname: 'Mixed Case', groups: ['g3', 'team/a'] }),
      aUser({ id: 'slashed', displayname: 'In Team A', groups: ['team/a'] }),
    ],
  }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup()
  }
})

function adminFor(realm: string): KcAdmin {
  const kc = sharedKeycloak()
  return createKeycloakAdmin({
    baseUrl: kc.url,
    username: kc.admin,
    password: kc.password,
    realm,
    log: silentLogger(),
  })
}

type Targets = (opts: KeycloakTargetOptions) => KeycloakTarget

/**
 * A bootstrapped ExApp on a realm of its own whose sync writes through `make` (default: the
 * ExApp's own target); `targets` collects each run's target, to read its write counts.
 */
async function given(directory: Directory, make: Targets = (o) => new KeycloakTarget(o)) {
  const realm = uniqueRealm('bulk')
  const targets: KeycloakTarget[] = []
  const admin = adminFor(realm)
  const t = await startTestExApp({
    directory,
    enabled: true,
    realm,
    env: { SYNC_PROFILE_FIELDS: PROFILE_FIELDS },
    syncTarget: () => {
      const target = make({
        admin,
        realm,
        managedRoles: [],
        profileAttributes: ['phone', 'organisation'],
        idpAlias: JWT_GRANT_IDP_ALIAS,
      })
      targets.push(target)
      return target
    },
  })
  cleanups.push(() => t.close())
  await bootstrapped(t)
  return { t, targets }
}

const oneByOne: Targets = (o) => new KeycloakTarget({ ...o, bulkBatch: 0 })

type Entry = Change & { outcome?: string; error?: string }

/** A run's changelog as stored: each change with its outcome and error. */
async function changelog(t: TestExApp, runId: number): Promise<Entry[] | undefined> {
  const run = await t.exapp.store.getRun(runId)
  return run?.changelog as Entry[] | undefined
}

/** Everything a user or group holds in the realm that the sync or the token grant may depend on. */
async function realmState(t: TestExApp) {
  const realm = t.realm
  const kc = t.admin
  const rename = (s: string) => s.replaceAll(realm, 'REALM')
  const users = await kc.users.find({ realm, max: 1000, briefRepresentation: false })
  const userStates = await Promise.all(
    users.map(async (u) => {
      const id = u.id as string
      const [links, groups, roles, credentials] = await Promise.all([
        kc.users.listFederatedIdentities({ realm, id }),
        kc.users.listGroups({ realm, id, briefRepresentation: true }),
        kc.users.listRoleMappings({ realm, id }),
        kc.users.getCredentials({ realm, id }),
      ])
      return {
        username: u.username,
        email: u.email,
        emailVerified: u.emailVerified,
        firstName: u.firstName,
        lastName: u.lastName,
        enabled: u.enabled,
        attributes: u.attributes,
        requiredActions: u.requiredActions,
        totp: u.totp,
        links,
        groups: groups.map((g) => g.path).sort(),
        realmRoles: (roles.realmMappings ?? []).map((r) => rename(r.name ?? '')).sort(),
        clientRoles: Object.keys(roles.clientMappings ?? {}).sort(),
        credentials: credentials.map((c) => c.type),
      }
    }),
  )
  const groups = await kc.groups.find({ realm, max: 1000, briefRepresentation: false })
  const groupStates = await Promise.all(
    groups.map(async (g) => ({
      name: g.name,
      path: g.path,
      attributes: g.attributes,
      members: (await kc.groups.listMembers({ realm, id: g.id as string, max: 1000 }))
        .map((m) => m.username)
        .sort(),
    })),
  )
  const byName = <T extends { username?: string; name?: string }>(list: T[]) =>
    list.sort((a, b) => (a.username ?? a.name ?? '').localeCompare(b.username ?? b.name ?? ''))
  return { users: byName(userStates), groups: byName(groupStates) }
}

async function token(t: TestExApp, uid: string) {
  const res = await fetch(`${t.exapp.url}/api/token?client_id=opentalk`, {
    method: 'POST',
    headers: {
      'X-API-SECRET': t.exapp.config.consumers[0]?.secret ?? '',
      'X-NC-USER-ID': uid,
    },
  })
  const body = (await res.json()) as { access_token?: string }
  expect(res.status, JSON.stringify(body)).toBe(200)
  const certs = () =>
    fetch(`${t.exapp.config.keycloak.url}/realms/${t.realm}/protocol/openid-connect/certs`)
  return verifiedClaims(body.access_token ?? '', certs)
}

describe('cold sync through Keycloak partial import', () => {
  it(
    'leaves the realm exactly as the one-by-one writes do, reports the same, and tokens mint for its users',
    async () => {
      const directory = oddDirectory()
      const bulk = await given(directory)
      const single = await given(directory, oneByOne)

      const bulkRun = await bulk.t.exapp.sync.runFull({ trigger: 'api' })
      const singleRun = await single.t.exapp.sync.runFull({ trigger: 'api' })
      expect(bulkRun.status, bulkRun.message).toBe(singleRun.status)
      expect(bulkRun.counts).toEqual(singleRun.counts)
      expect(bulkRun.errors).toEqual(singleRun.errors)
      expect(await changelog(bulk.t, bulkRun.runId)).toEqual(
        await changelog(single.t, singleRun.runId),
      )
      expect(await realmState(bulk.t)).toEqual(await realmState(single.t))

      // The bulk realm was written in bulk: one import of the groups but "team/a", one of the
      // users but "comma" (which Keycloak refuses one by one in both realms).
      const writes = bulk.targets[0]?.writes ?? {}
      expect(writes).toMatchObject({
        importGroups: 1,
        importUsers: 1,
        createGroup: 1,
        createUser: 1,
      })
      expect(writes.addMember, 'only the memberships of "team/a" go one by one').toBe(2)
      expect(single.targets[0]?.writes.importUsers).toBeUndefined()
      const comma = (await changelog(bulk.t, bulkRun.runId))?.find(
        (c) => c.kind === 'create-user' && c.uid === 'comma',
      )
      expect(comma?.outcome, JSON.stringify(comma)).not.toBe('applied')

      // A second run finds nothing to do in either realm.
      const again = await bulk.t.exapp.sync.runFull({ trigger: 'api' })
      expect(
        Object.values(again.counts).reduce((a, b) => a + b, 0),
        JSON.stringify(again),
      ).toBe(0)

      // Tokens mint for users the import created, with the same realm roles as one-by-one users.
      const uid = directory.users.find((u) => u.enabled && !u.groups.includes('admin'))?.id ?? ''
      const [bulkUser] = await bulk.t.admin.users.find({
        realm: bulk.t.realm,
        username: uid,
        exact: true,
      })
      const bulkClaims = await token(bulk.t, uid)
      const singleClaims = await token(single.t, uid)
      expect(bulkClaims).toMatchObject({ preferred_username: uid, sub: bulkUser?.id })
      const realmRoles = (claims: Record<string, unknown>, realm: string) =>
        ((claims.realm_access as { roles?: string[] } | undefined)?.roles ?? [])
          .map((role) => role.replaceAll(realm, 'REALM'))
          .sort()
      expect(realmRoles(bulkClaims, bulk.t.realm)).toEqual(realmRoles(singleClaims, single.t.realm))
      expect(realmRoles(bulkClaims, bulk.t.realm)).toContain('default-roles-REALM')
      expect(bulkClaims.resource_access).toEqual(singleClaims.resource_access)
      const mixed = await token(bulk.t, 'MixedCase')
      expect(mixed).toMatchObject({ preferred_username: 'mixedcase' })
    },
    TEST_MS,
  )

  it(
    'one user the realm refuses does not sink its batch: the others go in, the error is its own',
    async () => {
      const directory = oddDirectory()
      const victim = directory.users.find((u) => u.id.startsWith('u') && u.email)
      const email = victim?.email ?? ''
      // An unmanaged user takes the victim's email after the run read the realm: the import of the
      // whole batch fails, and the one-by-one writes report only the victim.
      const intruding: Targets = (o) =>
        new (class extends KeycloakTarget {
          override async snapshot(): Promise<Actual> {
            const actual = await super.snapshot()
            await o.admin.users.create({
              realm: o.realm,
              username: 'intruder',
              email,
              enabled: true,
            })
            return actual
          }
        })(o)
      const bulk = await given(directory, intruding)
      const single = await given(directory, (o) => intruding({ ...o, bulkBatch: 0 }))

      const bulkRun = await bulk.t.exapp.sync.runFull({ trigger: 'api' })
      const singleRun = await single.t.exapp.sync.runFull({ trigger: 'api' })
      expect(bulkRun.status, bulkRun.message).toBe('partial')
      expect(bulkRun.counts).toEqual(singleRun.counts)
      expect(bulkRun.conflicts).toEqual(singleRun.conflicts)
      expect(bulkRun.conflicts).toContainEqual(
        expect.objectContaining({ kind: 'write-conflict', change: 'create-user', id: victim?.id }),
      )
      expect(await changelog(bulk.t, bulkRun.runId)).toEqual(
        await changelog(single.t, singleRun.runId),
      )
      expect(await realmState(bulk.t)).toEqual(await realmState(single.t))
      const writes = bulk.targets[0]?.writes ?? {}
      expect(writes.importUsers, 'the batch was tried').toBe(1)
      expect(writes.createUser, 'and every user of it went one by one').toBe(
        single.targets[0]?.writes.createUser,
      )
    },
    TEST_MS,
  )
})
