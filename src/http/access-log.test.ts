import { Writable } from 'node:stream'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { accessLog } from './access-log.js'
import { onError } from './errors.js'
import type { AppEnv } from './types.js'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

/** The middleware in front of a few routes, on a real Node server as the app runs. */
async function serve() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
      done()
    },
  })
  const app = new Hono<AppEnv>()
  app.use(accessLog(pino({ level: 'debug' }, sink)))
  app.onError(onError)
  app.post('/json', (c) => {
    c.header('Cache-Control', 'no-store')
    return c.json({ access_token: 'a'.repeat(2000) })
  })
  app.get('/raw', () => new Response('raw body', { headers: { 'content-type': 'text/plain' } }))
  // Response.redirect's headers are immutable: the middleware has to copy the response.
  app.get('/immutable', () => Response.redirect('http://127.0.0.1/elsewhere', 302))
  app.post('/api/token', (c) => {
    if (c.req.query('refuse')) {
      throw new AppError('FORBIDDEN', 'not this user')
    }
    return c.json({ access_token: 't' })
  })
  app.get('/fails', () => {
    throw new AppError('FORBIDDEN', 'no')
  })
  const server = createAdaptorServer({ fetch: app.fetch })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  closers.push(() => new Promise((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${port}`, lines }
}

describe('accessLog', () => {
  it('tags every kind of response with the request id, its body and headers unchanged', async () => {
    const { url } = await serve()
    const json = await fetch(`${url}/json`, { method: 'POST' })
    expect(json.status).toBe(200)
    expect(json.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(json.headers.get('cache-control')).toBe('no-store')
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual({ access_token: 'a'.repeat(2000) })

    const raw = await fetch(`${url}/raw`)
    expect(raw.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(await raw.text()).toBe('raw body')

    const moved = await fetch(`${url}/immutable`, { redirect: 'manual' })
    expect(moved.status).toBe(302)
    expect(moved.headers.get('location')).toBe('http://127.0.0.1/elsewhere')
    expect(moved.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)

    const failed = await fetch(`${url}/fails`)
    expect(failed.status).toBe(403)
    const id = failed.headers.get('x-request-id')
    expect((await failed.json()).error).toMatchObject({ code: 'FORBIDDEN', requestId: id })
  })

  it("keeps Nextcloud's well-formed request id and replaces a malformed one", async () => {
    const { url } = await serve()
    const kept = await fetch(`${url}/json`, {
      method: 'POST',
      headers: { 'AA-REQUEST-ID': 'nc-req.42' },
    })
    expect(kept.headers.get('x-request-id')).toBe('nc-req.42')
    const replaced = await fetch(`${url}/json`, {
      method: 'POST',
      headers: { 'X-Request-Id': 'bad id with spaces' },
    })
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('writes one access line per request with its route, status and request id', async () => {
    const { url, lines } = await serve()
    const res = await fetch(`${url}/fails`, { headers: { 'X-Request-Id': 'r-1' } })
    await res.arrayBuffer()
    const access = lines.filter((l) => l.msg === 'http.access')
    expect(access).toEqual([
      expect.objectContaining({
        level: 30,
        requestId: 'r-1',
        method: 'GET',
        path: '/fails',
        status: 403,
        errorCode: 'FORBIDDEN',
      }),
    ])
  })

  it('writes a token handed out at debug (the issuance log has it), a refused one at info', async () => {
    const { url, lines } = await serve()
    await (await fetch(`${url}/api/token`, { method: 'POST' })).arrayBuffer()
    await (await fetch(`${url}/api/token?refuse=1`, { method: 'POST' })).arrayBuffer()
    const access = lines.filter((l) => l.msg === 'http.access')
    expect(access.map((l) => [l.status, l.level])).toEqual([
      [200, 20],
      [403, 30],
    ])
  })
})
