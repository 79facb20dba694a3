import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../log.js'
import { createKeycloakAdmin, type KcAdmin } from './admin.js'
import { ADMIN_EVENTS_EXPIRATION_SECONDS, bootstrapRealm, type RealmSpec } from './bootstrap.js'

// The shared global setup provides a running Keycloak; without one this suite must fail, not skip.
const KEYCLOAK_URL = process.env.TEST_KEYCLOAK_URL
const ADMIN = process.env.TEST_KEYCLOAK_ADMIN
const ADMIN_PASSWORD = process.env.TEST_KEYCLOAK_ADMIN_PASSWORD

const log = silentLogger()
let admin: KcAdmin
const realms: string[] = []

const aRealmName = () => {
  const realm = `bootstrap-${randomUUID().slice(0, 8)}`
  realms.push(realm)
  return realm
}

const spec = (realm: string): RealmSpec => ({
  realm,
  profile: { usernamePattern: '^.+$', markerAttributes: [], profileAttributes: [] },
  roles: [],
  clients: [],
})

const eventSettings = async (realm: string) => {
  const rep = await admin.realms.findOne({ realm })
  return {
    adminEventsEnabled: rep?.adminEventsEnabled,
    expiration: rep?.attributes?.adminEventsExpiration,
  }
}

beforeAll(async () => {
  if (!KEYCLOAK_URL || !ADMIN || !ADMIN_PASSWORD) {
    throw new Error(
      'TEST_KEYCLOAK_URL, TEST_KEYCLOAK_ADMIN and TEST_KEYCLOAK_ADMIN_PASSWORD must point at a running Keycloak',
    )
  }
  admin = createKeycloakAdmin({
    baseUrl: KEYCLOAK_URL.replace(/\/+$/, ''),
    username: ADMIN,
    password: ADMIN_PASSWORD,
    realm: 'master',
    log,
  })
})

afterAll(async () => {
  for (const realm of realms) {
    await admin?.realms.del({ realm }).catch(() => undefined)
  }
})

describe('the realm’s admin events', () => {
  const days30 = String(ADMIN_EVENTS_EXPIRATION_SECONDS)

  it('are kept 30 days in a realm the app creates', async () => {
    const realm = aRealmName()
    const report = await bootstrapRealm(admin, spec(realm), log)
    expect(report.changes).toContain(`realm ${realm} created`)
    expect(await eventSettings(realm)).toEqual({ adminEventsEnabled: true, expiration: days30 })
  })

  it('are kept 30 days where the app turns them on, unless the realm says how long', async () => {
    const [plain, withOwn] = [aRealmName(), aRealmName()]
    await admin.realms.create({ realm: plain, enabled: true })
    await admin.realms.create({
      realm: withOwn,
      enabled: true,
      attributes: { adminEventsExpiration: '3600' },
    })
    expect(await eventSettings(plain)).toEqual({ adminEventsEnabled: false, expiration: undefined })

    await bootstrapRealm(admin, spec(plain), log)
    await bootstrapRealm(admin, spec(withOwn), log)
    expect(await eventSettings(plain)).toEqual({ adminEventsEnabled: true, expiration: days30 })
    expect(await eventSettings(withOwn)).toEqual({ adminEventsEnabled: true, expiration: '3600' })
  })

  it('keep what an admin chose where they were on already, for ever included', async () => {
    const realm = aRealmName()
    await admin.realms.create({ realm, enabled: true, adminEventsEnabled: true })
    const report = await bootstrapRealm(admin, spec(realm), log)
    expect(report.changes).toContain(`realm ${realm} updated`)
    expect(await eventSettings(realm)).toEqual({ adminEventsEnabled: true, expiration: undefined })
  })
})
