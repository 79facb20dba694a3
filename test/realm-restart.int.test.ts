import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { JWT_GRANT_IDP_ALIAS } from '../src/keycloak/jwt-grant.js'
import { sharedKeycloak } from './config.js'
import { type CountingProxy, startCountingProxy } from './counting-proxy.js'
import { bootstrapped, startTestExApp, type TestExApp } from './exapp-harness.js'
import { fixtureDirectory } from './fake-nextcloud/index.js'

// A Keycloak that crashes right after a key rotation may come back without the identity
// provider's new key (an embedded H2 loses its last second). Here the ExApp reaches the shared
// Keycloak through a proxy: cutting it is, to the app, Keycloak going away and coming back, and
// the key's loss is written into the realm directly, as the crash would have left it.

describe('after Keycloak comes back without what it had not written', () => {
  let t: TestExApp
  let proxy: CountingProxy

  const token = async (uid: string) => {
    t.exapp.tokens.revokeUser(uid)
    return fetch(`${t.exapp.url}/api/token?client_id=opentalk`, {
      method: 'POST',
      headers: {
        'X-API-SECRET': t.exapp.config.consumers[0]?.secret ?? '',
        'X-NC-USER-ID': uid,
      },
    })
  }

  beforeAll(async () => {
    proxy = await startCountingProxy(sharedKeycloak().url)
    t = await startTestExApp({
      directory: fixtureDirectory(),
      enabled: true,
      env: { KEYCLOAK_URL: proxy.url },
    })
    await bootstrapped(t)
    const run = await t.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
  })
  afterAll(async () => {
    await t?.close()
    await proxy?.close()
  })

  it('re-asserts the realm before minting: the rotated key is trusted again at once', async () => {
    expect((await token('alice')).status).toBe(200)
    const before = await t.admin.identityProviders.findOne({ alias: JWT_GRANT_IDP_ALIAS })
    expect(before?.config).toBeDefined()
    await t.exapp.tokens.rotateSigningKey()
    expect((await token('alice')).status).toBe(200)

    // What the crash leaves: the provider as it was before the rotation.
    await t.admin.identityProviders.update({ alias: JWT_GRANT_IDP_ALIAS }, { ...before })
    expect((await token('alice')).status, 'the lost key breaks minting').not.toBe(200)

    proxy.breakAfter(0)
    await vi.waitFor(
      () => expect(t.exapp.keycloak.status(), 'Keycloak seen gone').toBe('crashed'),
      { timeout: 60_000, interval: 50 },
    )
    const down = await token('alice')
    expect(down.status).toBe(502)
    expect(((await down.json()) as { error: { code: string } }).error.code).toBe(
      'KEYCLOAK_UNAVAILABLE',
    )
    proxy.heal()
    await vi.waitFor(() => expect(t.exapp.keycloak.status(), 'Keycloak seen back').toBe('ready'), {
      timeout: 60_000,
      interval: 50,
    })

    const res = await token('alice')
    expect(res.status, await res.clone().text()).toBe(200)
    const after = await t.admin.identityProviders.findOne({ alias: JWT_GRANT_IDP_ALIAS })
    expect(after?.config).not.toEqual(before?.config)
  })
})
