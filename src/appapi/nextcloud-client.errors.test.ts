import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { type FakeNextcloud, FIXTURE_APP } from '../../test/fake-nextcloud/index.js'
import { clientAgainstFake } from '../../test/nextcloud-client-setup.js'
import { AppError } from '../errors.js'
import { createNextcloudClient, type NextcloudClientOptions } from './nextcloud-client.js'
import { refusal } from './nextcloud-ocs.js'

let nc: FakeNextcloud
afterEach(() => nc?.close())

async function setup(overrides: Partial<NextcloudClientOptions> = {}) {
  const started = await clientAgainstFake(undefined, overrides)
  nc = started.nc
  return started.client
}

async function failure(work: Promise<unknown>): Promise<AppError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(AppError)
  return err as AppError
}

describe('Nextcloud client failures', () => {
  it('maps a wrong secret to UNAUTHORIZED, once: a retry would feed the brute-force throttle', async () => {
    const client = await setup({ appSecret: 'wrong' })

    const err = await failure(client.currentUser('admin'))

    expect(err.code).toBe('UNAUTHORIZED')
    expect(err.message).toContain('APP_SECRET')
    expect(nc.requests()).toHaveLength(1)
    expect(nc.bruteForceAttempts()).toBe(1)
  })

  it('maps the system context on provisioning endpoints to UNAUTHORIZED (OCS 997)', async () => {
    const client = await setup()
    const err = await failure(client.usersDetailsPage('', { offset: 0, limit: 10 }))
    expect(err).toMatchObject({ code: 'UNAUTHORIZED' })
    expect(err.message).toContain('may need a Nextcloud user')
  })

  it('maps a non-admin acting user to FORBIDDEN', async () => {
    const client = await setup()
    const err = await failure(client.usersDetailsPage('alice', { offset: 0, limit: 10 }))
    expect(err.code).toBe('FORBIDDEN')
    expect(err.message).toContain('NEXTCLOUD_ADMIN_USER')
  })

  it.each([
    [500, ''],
    [503, '<html>Service Unavailable</html>'],
  ])('maps HTTP %i to NEXTCLOUD_UNAVAILABLE', async (status, body) => {
    const client = await setup()
    nc.failNext('/cloud/user', { status, body })
    const err = await failure(client.currentUser('admin'))
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(err.message).toContain(`HTTP ${status}`)
  })

  it('maps HTTP 429 to NEXTCLOUD_UNAVAILABLE with the throttle reset hint', async () => {
    const client = await setup()
    nc.failNext('/cloud/user', { status: 429, body: '{"message":"Reached maximum delay"}' })
    const err = await failure(client.currentUser('admin'))
    expect(err).toMatchObject({ code: 'NEXTCLOUD_UNAVAILABLE' })
    expect(err.message).toContain('bruteforce:reset')
  })

  it('maps a 200 that is not OCS JSON (a login page, a proxy) to NEXTCLOUD_UNAVAILABLE', async () => {
    const client = await setup()
    nc.failNext('/api/v1/users', { status: 200, body: '<!DOCTYPE html><title>Login</title>' })
    const err = await failure(client.listAppApiUsers())
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(err.message).toContain('NEXTCLOUD_URL')
  })

  it('maps OCS data of an unexpected shape to NEXTCLOUD_UNAVAILABLE', async () => {
    const client = await setup()
    const body = JSON.stringify({
      ocs: { meta: { status: 'ok', statuscode: 200 }, data: { users: 3 } },
    })
    nc.failNext('/cloud/users/details', { status: 200, body, contentType: 'application/json' })
    const err = await failure(client.usersDetailsPage('admin', { offset: 0, limit: 5 }))
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
  })

  it('gives up after timeoutMs when Nextcloud does not answer', async () => {
    const client = await setup({ timeoutMs: 100 })
    nc.hangNext('/cloud/user')
    const err = await failure(client.currentUser('admin'))
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(err.message).toContain('did not answer GET /ocs/v2.php/cloud/user within 0.1 s')
  })

  it('maps a refused connection to NEXTCLOUD_UNAVAILABLE', async () => {
    const client = await setup()
    await nc.close()
    const err = await failure(client.listAppApiUsers())
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(err.message).toContain('ECONNREFUSED')
  })

  it('does not follow redirects, so the credentials stay with Nextcloud', async () => {
    const client = await setup({
      fetch: async () =>
        new Response(null, { status: 302, headers: { Location: 'https://sso.example/login' } }),
    })
    const err = await failure(client.listAppApiUsers())
    expect(err.code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(err.message).toContain('https://sso.example/login')
  })

  it('never writes the secret or the AppAPI header to logs or error messages', async () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const client = await setup({ log: pino({ level: 'trace' }, sink) })
    const bad = createNextcloudClient({
      url: nc.url,
      appId: FIXTURE_APP.appId,
      appSecret: FIXTURE_APP.secret,
      appVersion: '',
      log: pino({ level: 'trace' }, sink),
    })
    nc.failNext('/api/v1/users', { status: 500 })

    const messages = [
      await client.currentUser('admin').then(() => ''),
      (await failure(client.listAppApiUsers())).message,
      (await failure(client.usersDetailsPage('', { offset: 0, limit: 1 }))).message,
      (await failure(bad.listAppApiUsers())).message,
    ]

    const everything = [...lines, ...messages].join('\n')
    expect(lines.length).toBeGreaterThanOrEqual(4)
    expect(everything).not.toContain(FIXTURE_APP.secret)
    for (const user of ['', 'admin']) {
      expect(everything).not.toContain(
        Buffer.from(`${user}:${FIXTURE_APP.secret}`).toString('base64'),
      )
    }
  })
})

describe('refusal', () => {
  const req = { method: 'GET' as const, path: '/ocs/v1.php/cloud/users', asUser: 'admin' }
  it.each([
    [401, 997, 'UNAUTHORIZED'],
    [200, 997, 'UNAUTHORIZED'],
    [200, 403, 'FORBIDDEN'],
    [403, 403, 'FORBIDDEN'],
    [200, 404, 'NOT_FOUND'],
    [200, 998, 'NOT_FOUND'],
    [404, 998, 'NOT_FOUND'],
    [200, 996, 'NEXTCLOUD_UNAVAILABLE'],
    [500, 999, 'NEXTCLOUD_UNAVAILABLE'],
    [412, undefined, 'INTERNAL'],
    [200, 102, 'INTERNAL'],
  ])('reads HTTP %i with OCS %s as %s', (http, ocs, code) => {
    expect(refusal(req, http, ocs, '').code).toBe(code)
  })
})
