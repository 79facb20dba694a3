import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { createOcsCall } from './nextcloud-ocs.js'

const OK = JSON.stringify({ ocs: { meta: { status: 'ok', statuscode: 200 }, data: { id: 'u' } } })

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

/** A plain server; `handle` sees each request with its connection's number and its index on it. */
async function serve(
  handle: (req: IncomingMessage, res: ServerResponse, conn: number, nth: number) => void,
) {
  const seen = new Map<Socket, { conn: number; count: number }>()
  let connections = 0
  server = createServer((req, res) => {
    let entry = seen.get(req.socket)
    if (!entry) {
      entry = { conn: ++connections, count: 0 }
      seen.set(req.socket, entry)
    }
    entry.count++
    handle(req, res, entry.conn, entry.count)
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const call = createOcsCall({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    appId: 'keycloak',
    appSecret: 'secret',
    appVersion: '1.0.0',
    log: silentLogger(),
    timeoutMs: 5000,
  })
  return { call, connections: () => connections }
}

const json = (res: ServerResponse) => {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(OK)
}

/**
 * A server that answers every request but the second on each connection, whose connection it
 * closes unanswered (as a server does with a kept connection it timed out); requests are listed
 * as `METHOD connection/nth`.
 */
async function serveClosingSecond() {
  const requests: string[] = []
  const served = await serve((req, res, conn, nth) => {
    requests.push(`${req.method} ${conn}/${nth}`)
    if (nth === 2) {
      req.socket.destroy()
      return
    }
    json(res)
  })
  return { ...served, requests }
}

describe('the OCS caller over node:http', () => {
  it('keeps connections alive between calls', async () => {
    const { call, connections } = await serve((_req, res) => json(res))
    for (let i = 0; i < 3; i++) {
      expect(
        await call({ method: 'GET', path: '/ocs/v2.php/cloud/user', asUser: 'admin' }),
      ).toEqual({ id: 'u' })
    }
    expect(connections()).toBe(1)
  })

  it('sends a GET once more on a new connection when the kept one was closed under it', async () => {
    const { call, connections, requests } = await serveClosingSecond()
    await call({ method: 'GET', path: '/ocs/v2.php/cloud/user', asUser: 'admin' })
    expect(await call({ method: 'GET', path: '/ocs/v2.php/cloud/user', asUser: 'admin' })).toEqual({
      id: 'u',
    })
    expect(requests).toEqual(['GET 1/1', 'GET 1/2', 'GET 2/1'])
    expect(connections()).toBe(2)
  })

  it('does not send anything but a GET twice', async () => {
    const { call, requests } = await serveClosingSecond()
    await call({ method: 'GET', path: '/ocs/v2.php/cloud/user', asUser: 'admin' })
    const err = await call({
      method: 'POST',
      path: '/ocs/v1.php/apps/app_api/ex-app/ui/top-menu',
      asUser: '',
      body: { name: 'x' },
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AppError)
    expect((err as AppError).code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect(requests).toEqual(['GET 1/1', 'POST 1/2'])
  })

  it('gives up when the answer stops halfway, within the timeout', async () => {
    const { call } = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '1000' })
      res.write('{"ocs":')
    })
    const err = await call({
      method: 'GET',
      path: '/ocs/v2.php/cloud/user',
      asUser: 'admin',
      timeoutMs: 200,
    }).catch((e: unknown) => e)
    expect((err as AppError).code).toBe('NEXTCLOUD_UNAVAILABLE')
    expect((err as AppError).message).toContain(
      'did not answer GET /ocs/v2.php/cloud/user within 0.2 s',
    )
  })

  it('hands a redirect back without following it', async () => {
    const requests: string[] = []
    const { call } = await serve((req, res) => {
      requests.push(req.url ?? '')
      res.writeHead(302, { Location: 'https://elsewhere.example/login' })
      res.end()
    })
    const err = await call({
      method: 'GET',
      path: '/ocs/v2.php/cloud/user',
      asUser: 'admin',
    }).catch((e: unknown) => e)
    expect((err as AppError).message).toContain('https://elsewhere.example/login')
    expect(requests).toHaveLength(1)
  })
})
