import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { silentLogger } from '../log.js'
import { onError } from './errors.js'
import type { AppEnv } from './types.js'

function appThrowing(err: Error) {
  const logged: { obj: unknown; msg: string }[] = []
  const log = {
    ...silentLogger(),
    error: (obj: unknown, msg: string) => logged.push({ obj, msg }),
  } as unknown as Logger
  const app = new Hono<AppEnv>()
    .use(async (c, next) => {
      c.set('log', log)
      c.set('requestId', 'r1')
      await next()
    })
    .get('/', () => {
      throw err
    })
  app.onError(onError)
  return { app, logged }
}

describe('onError', () => {
  it("writes an error's details beside the error, and never lets them replace it", async () => {
    const details = { status: 'guard_tripped', runId: 7, error: 'not this' }
    const { app } = appThrowing(new AppError('GUARD_TRIPPED', 'too many deletions', { details }))
    const res = await app.request('/')
    expect(res.status).toBe(409)
    expect(await res.json()).toEqual({
      status: 'guard_tripped',
      runId: 7,
      error: { code: 'GUARD_TRIPPED', message: 'too many deletions', requestId: 'r1' },
    })
  })

  it('never shows an INTERNAL message, and logs it with its cause', async () => {
    const cause = new Error('connection string postgres://u:p@db')
    const { app, logged } = appThrowing(new AppError('INTERNAL', 'db said: secret', { cause }))
    const res = await app.request('/')
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({
      error: { code: 'INTERNAL', message: 'internal error', requestId: 'r1' },
    })
    expect(logged).toHaveLength(1)
    expect(logged[0]?.obj).toMatchObject({ err: { cause } })
  })

  it('logs every 5xx, shows the message of a 4xx and a 502, and logs no 4xx', async () => {
    const bad = appThrowing(new AppError('INVALID_INPUT', 'limit must be a number'))
    const res = await bad.app.request('/')
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { message: 'limit must be a number' } })
    expect(bad.logged).toHaveLength(0)

    const down = appThrowing(new AppError('KEYCLOAK_UNAVAILABLE', 'Keycloak is not reachable'))
    const res502 = await down.app.request('/')
    expect(res502.status).toBe(502)
    expect(await res502.json()).toMatchObject({ error: { message: 'Keycloak is not reachable' } })
    expect(down.logged).toHaveLength(1)

    const plain = appThrowing(new TypeError('x is undefined'))
    const res500 = await plain.app.request('/')
    expect(await res500.json()).toMatchObject({
      error: { code: 'INTERNAL', message: 'internal error' },
    })
    expect(plain.logged).toHaveLength(1)
  })

  it('answers 405 with its own code', async () => {
    const { app } = appThrowing(new AppError('METHOD_NOT_ALLOWED', 'method PROPFIND not allowed'))
    const res = await app.request('/')
    expect(res.status).toBe(405)
    expect(await res.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
  })
})
