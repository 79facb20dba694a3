import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { grantRejection } from './grant-errors.js'
import { JWT_BEARER_GRANT_TYPE } from './jwt-grant.js'
import { createTokenClient } from './token-client.js'

const ISSUER = 'https://nc.example/index.php/apps/app_api/proxy/keycloak/realms/r'

let server: Server | undefined
afterEach(async () => {
  const running = server
  server = undefined
  if (running) {
    running.closeAllConnections()
    await new Promise((resolve) => running.close(resolve))
  }
})

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
  connection: number
}

/** A Keycloak stand-in over real HTTP: discovery, and `token` for the token endpoint. */
async function keycloak(token: (res: ServerResponse) => void) {
  const seen: Seen[] = []
  const connections = new Map<Socket, number>()
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
    })
    req.on('end', () => {
      if (!connections.has(req.socket)) {
        connections.set(req.socket, connections.size + 1)
      }
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        connection: connections.get(req.socket) ?? 0,
      })
      if (req.url?.endsWith('/.well-known/openid-configuration')) {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end(
          JSON.stringify({
            issuer: ISSUER,
            token_endpoint: `${ISSUER}/protocol/openid-connect/token`,
          }),
        )
        return
      }
      token(res)
    })
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const client = createTokenClient({ backchannelUrl: url, realm: 'r', log: silentLogger() })
  return { client, seen, url }
}

const grant = { clientId: 'opentalk', clientSecret: 's3cret', scope: 'openid', assertion: 'a.b.c' }

describe('the token client over node:http', () => {
  it('posts the grant as a form on kept-alive connections and reads the answer', async () => {
    const { client, seen } = await keycloak((res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      res.end(JSON.stringify({ access_token: 'at', expires_in: 300, token_type: 'Bearer' }))
    })

    for (let i = 0; i < 3; i++) {
      expect(await client.jwtGrant(grant)).toMatchObject({ access_token: 'at', expires_in: 300 })
    }

    const posts = seen.filter((s) => s.method === 'POST')
    expect(posts).toHaveLength(3)
    expect(posts[0]?.url).toBe('/realms/r/protocol/openid-connect/token')
    expect(posts[0]?.headers['content-type']).toBe(
      'application/x-www-form-urlencoded;charset=UTF-8',
    )
    expect(Object.fromEntries(new URLSearchParams(posts[0]?.body))).toEqual({
      grant_type: JWT_BEARER_GRANT_TYPE,
      assertion: 'a.b.c',
      scope: 'openid',
      client_id: 'opentalk',
      client_secret: 's3cret',
    })
    expect(new Set(seen.map((s) => s.connection))).toEqual(new Set([1]))
  })

  it("classifies Keycloak's refusal as it did over fetch", async () => {
    const { client } = await keycloak((res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'User not found' }))
    })
    const err = await client.jwtGrant(grant).catch((e: unknown) => e)
    expect(grantRejection(err)).toBe('user_not_found')
  })

  it('reads a refused connection as Keycloak away (KEYCLOAK_UNAVAILABLE), as over fetch', async () => {
    // a port nothing listens on: bound, then closed
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise((resolve) => probe.close(resolve))
    const client = createTokenClient({
      backchannelUrl: `http://127.0.0.1:${port}`,
      realm: 'r',
      log: silentLogger(),
      timeoutMs: 2000,
    })
    const err = await client.jwtGrant(grant).catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE'), String(err)).toBe(true)
    expect(grantRejection(err)).toBe('unavailable')
    expect((err as Error).message).toContain('ECONNREFUSED')
  })

  it('fails a grant whose answer does not come within the timeout: Keycloak away, not an internal error', async () => {
    const held: ServerResponse[] = []
    const { url } = await keycloak((res) => {
      held.push(res)
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '500' })
      res.write('{"access_token":')
    })
    const failure = async (fetch?: typeof globalThis.fetch) => {
      const client = createTokenClient({
        backchannelUrl: url,
        realm: 'r',
        log: silentLogger(),
        timeoutMs: 500,
        ...(fetch ? { fetch } : {}),
      })
      const err = await client.jwtGrant(grant).catch((e: unknown) => e)
      expect(isAppError(err)).toBe(true)
      return { rejection: grantRejection(err), message: (err as Error).message }
    }
    // The answer is read before the Response is made, so openid-client reports its own timeout
    // (OAUTH_TIMEOUT): KEYCLOAK_UNAVAILABLE (502), not INTERNAL.
    const viaHttp = await failure()
    expect(viaHttp.rejection).toBe('unavailable')
    expect(viaHttp.message).toContain('operation timed out')
    // (Over fetch the Response comes first and openid-client fails reading its body instead.)
    await failure(globalThis.fetch)
    expect(held.length).toBe(2)
    for (const res of held) {
      res.destroy()
    }
  })
})
