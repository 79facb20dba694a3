import { afterEach, describe, expect, it } from 'vitest'
import { createNextcloudClient, type NextcloudClient } from '../../src/appapi/nextcloud-client.js'
import { silentLogger } from '../../src/log.js'
import { decodeAuth, encodeAuth } from './auth.js'
import { loadFixture, replayHeaders } from './fixtures.js'
import {
  createFakeNextcloud,
  type ExAppStub,
  type ExAppStubOptions,
  type FakeNextcloud,
  FIXTURE_APP,
  fixtureDirectory,
  startExAppStub,
} from './index.js'

interface Step {
  direction: string
  request_line: string
  headers: Record<string, string>
  response?: { status: number; body: unknown }
}
interface Lifecycle {
  sequence: Step[]
}
interface Variant {
  ex_apps_row_3s_after_register: { enabled: number; status: { init: number; error: string } }
  sequence: Step[]
}

const toExApp = (steps: Step[]) => steps.filter((s) => s.direction === 'Nextcloud -> ExApp')
const lineOf = (s: Step) => s.request_line.replace(/ HTTP\/1\.1$/, '')
const linesSeen = (stub: ExAppStub) => stub.requests.map((r) => `${r.method} ${r.path}`)

let nc: FakeNextcloud
let stub: ExAppStub
let client: NextcloudClient
afterEach(async () => {
  await stub?.close()
  await nc?.close()
})

async function start(init: (client: NextcloudClient) => ExAppStubOptions['init']) {
  nc = await createFakeNextcloud(fixtureDirectory())
  client = createNextcloudClient({
    url: nc.url,
    appId: FIXTURE_APP.appId,
    appSecret: FIXTURE_APP.secret,
    appVersion: FIXTURE_APP.version,
    aaVersion: '5.0.2',
    log: silentLogger(),
  })
  stub = await startExAppStub({ init: init(client) })
  nc.registerExApp({ ...FIXTURE_APP, url: stub.url })
}

/** AppAPI's `ex-app/state` read as the ExApp would (system context): 1 enabled, 0 disabled. */
async function exAppState(): Promise<unknown> {
  const res = await fetch(`${nc.url}/ocs/v1.php/apps/app_api/ex-app/state?format=json`, {
    headers: {
      'EX-APP-ID': FIXTURE_APP.appId,
      'EX-APP-VERSION': FIXTURE_APP.version,
      'AUTHORIZATION-APP-API': encodeAuth('', FIXTURE_APP.secret),
      'OCS-APIRequest': 'true',
    },
  })
  expect(res.status).toBe(200)
  return ((await res.json()) as { ocs: { data: unknown } }).ocs.data
}

describe('AppAPI driver', () => {
  it('installs like `app_api:app:register --wait-finish` (appapi.lifecycle.register)', async () => {
    const fixture = loadFixture<Lifecycle>('appapi.lifecycle.register')
    let seenWhenAnswered: string[] = []
    await start((c) => async () => {
      await c.setInitProgress(100)
      seenWhenAnswered = linesSeen(stub)
    })

    const result = await nc.install(FIXTURE_APP.appId)
    await stub.initDone()

    expect(result).toEqual({ init: 100, error: '', enabled: true, timedOut: false })
    const expected = toExApp(fixture.sequence).map(lineOf)
    expect(linesSeen(stub)).toEqual(expected)
    // The progress-100 callback is answered only after Nextcloud has called /enabled.
    expect(seenWhenAnswered).toEqual(expected)
    expect(nc.count('/apps/app_api/ex-app/status', 'PUT')).toBe(1)
  })

  it('sends the captured headers to the ExApp', async () => {
    const fixture = loadFixture<Lifecycle>('appapi.lifecycle.register')
    await start((c) => () => c.setInitProgress(100))
    await nc.install(FIXTURE_APP.appId)

    const compared = [
      'accept',
      'content-type',
      'user-agent',
      'aa-version',
      'ex-app-id',
      'ex-app-version',
      'aa-request-id',
      'accept-language',
      'authorization-app-api',
    ]
    toExApp(fixture.sequence).forEach((step, i) => {
      const captured = replayHeaders(step.headers, FIXTURE_APP.secret)
      const sent = stub.requests[i]?.headers ?? {}
      for (const name of compared) {
        expect(sent[name], `${lineOf(step)} ${name}`).toBe(captured[name])
      }
    })
    const init = stub.requests.find((r) => r.path === '/init')
    expect(decodeAuth(init?.headers['authorization-app-api'] ?? '')).toEqual({
      user: '',
      secret: FIXTURE_APP.secret,
    })
  })

  it('disables, then enables with a heartbeat first (appapi.lifecycle.disable-enable)', async () => {
    const fixture = loadFixture<Lifecycle>('appapi.lifecycle.disable-enable')
    await start(() => undefined)

    expect(await nc.disable(FIXTURE_APP.appId)).toEqual({ error: '' })
    expect(nc.exApp(FIXTURE_APP.appId).enabled).toBe(false)
    expect(await nc.enable(FIXTURE_APP.appId)).toEqual({ error: '' })

    expect(linesSeen(stub)).toEqual(toExApp(fixture.sequence).map(lineOf))
    expect(nc.exApp(FIXTURE_APP.appId).enabled).toBe(true)
  })

  describe.each([
    ['error', (c: NextcloudClient) => () => c.setInitProgress(50, 'stub init failed on purpose')],
    ['init404', () => 'absent' as const],
    ['none', () => async () => undefined],
  ])('init variant "%s" (appapi.init-variants)', (name, init) => {
    it('ends in the captured ex_apps row after the captured calls', async () => {
      const variant = loadFixture<{ variants: Record<string, Variant> }>('appapi.init-variants')
        .variants[name] as Variant
      await start(init)

      const result = await nc.install(FIXTURE_APP.appId, { timeoutMs: 150 })
      await stub.initDone()

      const row = variant.ex_apps_row_3s_after_register
      expect(result).toMatchObject({
        init: row.status.init,
        error: row.status.error,
        enabled: row.enabled === 1,
        timedOut: name === 'none',
      })
      // The capture ends with the unregister that cleaned up after it.
      const calls = toExApp(variant.sequence).map(lineOf).slice(0, -1)
      expect(linesSeen(stub)).toEqual(calls)
    })
  })

  it.each([
    ['v2', '/ocs/v2.php/apps/app_api/ex-app/status', true],
    ['noocsheader', '/ocs/v1.php/apps/app_api/ex-app/status', false],
  ])('accepts the init callback of variant "%s"', async (name, path, ocsHeader) => {
    const variant = loadFixture<{ variants: Record<string, Variant> }>('appapi.init-variants')
      .variants[name] as Variant
    const callback = variant.sequence.find((s) => s.direction === 'ExApp -> Nextcloud')
    let reply: { status: number; body: unknown } | undefined
    await start(() => async () => {
      const res = await fetch(`${nc.url}${path}`, {
        method: 'PUT',
        headers: {
          ...nc.appApiHeaders(FIXTURE_APP.appId),
          'Content-Type': 'application/json',
          ...(ocsHeader ? { 'OCS-APIRequest': 'true' } : {}),
        },
        body: JSON.stringify({ progress: 100 }),
      })
      reply = { status: res.status, body: await res.json() }
    })

    const result = await nc.install(FIXTURE_APP.appId)
    await stub.initDone()

    expect(result).toMatchObject({ init: 100, enabled: true })
    expect(reply).toEqual(callback?.response && { status: 200, body: callback.response.body })
  })

  it('ignores progress reported after 100 and calls nothing back (appapi.init-status.after-done)', async () => {
    await start((c) => () => c.setInitProgress(100))
    await nc.install(FIXTURE_APP.appId)
    await stub.initDone()
    const before = stub.requests.length

    await client.setInitProgress(100)
    await client.setInitProgress(40)

    expect(stub.requests.length).toBe(before)
    expect(nc.exApp(FIXTURE_APP.appId).status).toMatchObject({ init: 100, error: '' })
  })

  it('records the error of the /enabled reply and leaves the app disabled', async () => {
    await start(() => undefined)
    stub.settings.enabledError = 'Keycloak did not start'

    expect(await nc.enable(FIXTURE_APP.appId)).toEqual({ error: 'Keycloak did not start' })
    expect(nc.exApp(FIXTURE_APP.appId)).toMatchObject({
      enabled: false,
      lastEnabledError: 'Keycloak did not start',
    })
  })

  it('fails the install with "Heartbeat check failed" when the ExApp never answers ok', async () => {
    await start(() => undefined)
    stub.settings.healthy = false

    const result = await nc.install(FIXTURE_APP.appId, { timeoutMs: 150 })

    expect(result).toMatchObject({ error: 'Heartbeat check failed', enabled: false })
    expect(linesSeen(stub).every((line) => line === 'GET /heartbeat')).toBe(true)
  })

  it('lets a disabled ExApp read its state and nothing else', async () => {
    await start(() => undefined)
    await nc.disable(FIXTURE_APP.appId)

    expect(await exAppState()).toBe(0)
    await expect(client.listAppApiUsers()).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
  })
})
