import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import type { KcAdmin } from './admin.js'
import { bootstrapRealm, type RealmSpec, realmSettings } from './bootstrap.js'

/**
 * An Admin API with an existing realm and nothing else: roles and clients are created. Each
 * role's creation takes `roleDelayMs(name)`; creating a role named in `failing` fails.
 */
function fakeAdmin(opts: { roleDelayMs: (name: string) => number; failing?: string }) {
  let inFlight = 0
  const writes: string[] = []
  const call = async <T>(what: string, ms: number, result: T, fail = false): Promise<T> => {
    inFlight++
    try {
      await sleep(ms)
      if (fail) {
        throw new Error(`${what} refused`)
      }
      writes.push(what)
      return result
    } finally {
      inFlight--
    }
  }
  const admin = {
    realms: {
      findOne: async ({ realm }: { realm: string }) => realmSettings(realm),
    },
    users: {
      getProfile: async () => ({ attributes: [] }),
      updateProfile: () => call('user profile', 1, undefined),
    },
    roles: {
      findOneByName: async () => undefined,
      create: ({ name }: { name: string }) =>
        call(`role ${name}`, opts.roleDelayMs(name), {}, name === opts.failing),
    },
    clients: {
      find: async () => [],
      create: ({ clientId }: { clientId: string }) => call(`client ${clientId}`, 1, {}),
    },
  }
  return { admin: admin as unknown as KcAdmin, writes, inFlight: () => inFlight }
}

const spec = (roles: string[]): RealmSpec => ({
  realm: 'r',
  profile: { usernamePattern: '^.+$', markerAttributes: [], profileAttributes: [] },
  roles,
  clients: [{ clientId: 'app', secret: 's', directAccessGrants: false, attributes: {} }],
})

describe('bootstrapRealm', () => {
  it('asserts the parts side by side and reports them in the spec order whatever finished first', async () => {
    // the first role takes longest: written last, reported first
    const delays: Record<string, number> = { a: 60, b: 30, c: 1 }
    const { admin, writes } = fakeAdmin({ roleDelayMs: (name) => delays[name] ?? 1 })
    const report = await bootstrapRealm(admin, spec(['a', 'b', 'c']), silentLogger())
    expect(writes.indexOf('role c')).toBeLessThan(writes.indexOf('role a'))
    expect(report.changes.filter((c) => c.startsWith('role'))).toEqual([
      'role a created',
      'role b created',
      'role c created',
    ])
    expect(report.changes.at(-1)).toBe('client app created')
  })

  it('fails with the first failure only once every other part has settled', async () => {
    const { admin, writes, inFlight } = fakeAdmin({
      roleDelayMs: (name) => (name === 'slow' ? 80 : 1),
      failing: 'broken',
    })
    const err = await bootstrapRealm(admin, spec(['broken', 'slow']), silentLogger()).catch(
      (e: unknown) => e,
    )
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect(String(err)).toMatch(/create role broken/)
    // nothing still writing behind the caller's back
    expect(inFlight()).toBe(0)
    expect(writes).toContain('role slow')
  })
})
