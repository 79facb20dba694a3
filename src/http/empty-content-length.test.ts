import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { acceptEmptyContentLength, EmptyContentLengthFilter } from './empty-content-length.js'

const GET_EMPTY = 'GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: \r\nContent-Type: \r\n\r\n'

function run(filter: EmptyContentLengthFilter, ...chunks: string[]): string {
  return chunks
    .flatMap((c) => filter.feed(Buffer.from(c, 'latin1')))
    .map((b) => b.toString('latin1'))
    .join('')
}

describe('empty Content-Length filter', () => {
  it('removes an empty Content-Length line, whatever the chunking', () => {
    const want = 'GET /a HTTP/1.1\r\nHost: x\r\nContent-Type: \r\n\r\n'
    expect(run(new EmptyContentLengthFilter(), GET_EMPTY)).toBe(want)
    const bytes = [...GET_EMPTY]
    expect(run(new EmptyContentLengthFilter(), ...bytes)).toBe(want)
    expect(run(new EmptyContentLengthFilter(), `\r\n${GET_EMPTY}`)).toBe(`\r\n${want}`)
  })

  it('counts Content-Length bodies through and looks at the next head only', () => {
    const body = 'x\r\nContent-Length: \r\n\r\n'
    const post = `POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    const out = run(new EmptyContentLengthFilter(), GET_EMPTY, post, GET_EMPTY)
    expect(out.match(/Content-Length: \r\n/g)).toHaveLength(1)
    expect(out).toContain(post)
  })

  it('passes the rest of the connection untouched after a chunked body or an upgrade', () => {
    const chunked = 'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
    expect(run(new EmptyContentLengthFilter(), chunked, GET_EMPTY)).toBe(chunked + GET_EMPTY)
    const upgrade = 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
    expect(run(new EmptyContentLengthFilter(), upgrade, GET_EMPTY)).toBe(upgrade + GET_EMPTY)
  })

  it('holds back an incomplete head and gives it up when the client closes', () => {
    const filter = new EmptyContentLengthFilter()
    expect(run(filter, 'GET / HTTP/1.1\r\nHo')).toBe('')
    expect(filter.flush().map((b) => b.toString())).toEqual(['GET / HTTP/1.1\r\nHo'])
  })
})

describe('a server behind the filter', () => {
  let server: Server | undefined
  afterEach(async () => {
    server?.closeAllConnections()
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
    server = undefined
  })

  async function start(filtered: boolean) {
    const seen: {
      method?: string
      headers: IncomingMessage['headers']
      body: string
      from?: string
    }[] = []
    server = createServer(async (req, res) => {
      const entry = {
        method: req.method,
        headers: req.headers,
        body: '',
        from: req.socket.remoteAddress,
      }
      seen.push(entry)
      for await (const chunk of req) {
        entry.body += chunk
      }
      res.end(`ok ${seen.length}`)
    })
    if (filtered) {
      acceptEmptyContentLength(server)
    }
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()))
    const { port } = server.address() as { port: number }
    return { port, seen }
  }

  /** Writes `raw` on one connection and reads until the server closes it or `count` answers came. */
  function exchange(port: number, raw: string, count: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      let got = ''
      socket.on('data', (d) => {
        got += d.toString()
        if ((got.match(/HTTP\/1\.1 /g) ?? []).length >= count && /ok \d+$/.test(got)) {
          socket.end()
          resolve(got)
        }
      })
      socket.on('end', () => resolve(got))
      socket.on('error', reject)
      socket.write(raw)
    })
  }

  it("is refused by node's parser without it", async () => {
    const { port, seen } = await start(false)
    const got = await exchange(port, GET_EMPTY, 1)
    expect(got).toMatch(/^HTTP\/1\.1 400 /)
    expect(seen).toHaveLength(0)
  })

  it('serves requests with empty Content-Length on a keep-alive connection, bodies intact', async () => {
    const { port, seen } = await start(true)
    const post = 'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: \r\n\r\nhello'
    const got = await exchange(port, GET_EMPTY + post + GET_EMPTY, 3)
    expect(got.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(3)
    expect(seen.map((s) => [s.method, s.body, s.headers['content-length']])).toEqual([
      ['GET', '', undefined],
      ['POST', 'hello', '5'],
      ['GET', '', undefined],
    ])
    expect(seen[0]?.headers['content-type']).toBe('')
    expect(seen[0]?.from).toBe('127.0.0.1')
  })

  it('still refuses what node refuses: conflicting lengths, oversized heads', async () => {
    const { port, seen } = await start(true)
    const twice = 'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'
    expect(await exchange(port, twice, 1)).toMatch(/^HTTP\/1\.1 400 /)
    const big = `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`
    expect(await exchange(port, big, 1)).toMatch(/^HTTP\/1\.1 431 /)
    expect(seen).toHaveLength(0)
  })

  it('lets the server close an idle keep-alive connection', async () => {
    const { port } = await start(true)
    if (server) {
      server.keepAliveTimeout = 50
    }
    const closed = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      let got = ''
      socket.on('data', (d) => {
        got += d.toString()
      })
      socket.on('close', () => resolve(got))
      socket.on('error', reject)
      socket.write(GET_EMPTY)
    })
    expect(closed).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*ok 1$/)
  })
})
