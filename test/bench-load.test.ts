import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { httpLoad } from '../bench/lib.js'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: { method?: string; url?: string; secret?: string; user?: string }[] = []
  const sockets = new Set<unknown>()
  const server = createServer((req, res) => {
    sockets.add(req.socket)
    seen.push({
      method: req.method,
      url: req.url,
      secret: req.headers['x-api-secret'] as string,
      user: req.headers['x-nc-user-id'] as string,
    })
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { url: `http://127.0.0.1:${port}`, seen, sockets }
}

const requests = (url: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    url: `${url}/api/token?client_id=opentalk`,
    method: 'POST',
    headers: { 'X-API-SECRET': 's3cret', 'X-NC-USER-ID': `user${i}` },
  }))

describe('the bench load generator', () => {
  it('sends every request with its method, path and headers over kept-alive connections', async () => {
    const { url, seen, sockets } = await serve((_req, res) => {
      // Chunked: the body arrives in pieces the generator puts together.
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"access_token":"')
      res.end(`${'x'.repeat(70_000)}"}`)
    })
    const result = await httpLoad(requests(url, 40), 4)
    expect(result).toMatchObject({ requests: 40, failed: 0 })
    expect(result.p99).toBeGreaterThanOrEqual(result.p50)
    expect(seen).toHaveLength(40)
    expect(seen[0]).toEqual({
      method: 'POST',
      url: '/api/token?client_id=opentalk',
      secret: 's3cret',
      user: 'user0',
    })
    expect(new Set(seen.map((s) => s.user)).size).toBe(40)
    expect(sockets.size).toBe(4)
  })

  it('counts an unexpected status as a failure, with the first one', async () => {
    let n = 0
    const { url } = await serve((_req, res) => {
      const status = n++ % 2 === 0 ? 200 : 403
      const body = status === 200 ? '{}' : '{"error":{"code":"FORBIDDEN"}}'
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
    })
    const result = await httpLoad(requests(url, 10), 1)
    expect(result).toMatchObject({ requests: 10, failed: 5 })
    expect(result.firstError).toBe('HTTP 403 {"error":{"code":"FORBIDDEN"}}')
  })

  it('reconnects after a server that closes the connection', async () => {
    const { url, sockets } = await serve((_req, res) => {
      res.writeHead(200, { connection: 'close', 'content-length': '2' })
      res.end('{}')
    })
    const result = await httpLoad(requests(url, 6), 2)
    expect(result).toMatchObject({ requests: 6, failed: 0 })
    expect(sockets.size).toBe(6)
  })

  it('refuses a response it cannot delimit rather than guessing', async () => {
    const { url } = await serve((req, res) => {
      // HTTP/1.0 style: the body ends where the connection does.
      req.socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nbody')
      res.destroy()
    })
    const result = await httpLoad(requests(url, 3), 1)
    expect(result).toMatchObject({ requests: 3, failed: 3 })
    expect(result.firstError).toMatch(/without Content-Length or chunks/)
  })
})
