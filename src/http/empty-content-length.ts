import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'

/**
 * Behind nginx + php-fpm, AppAPI's PHP proxy sends requests without a body with an empty
 * `Content-Length:` header. Node's HTTP parser refuses that with 400 before any handler runs
 * (`insecureHTTPParser` does not change it), so every proxied GET would fail. The filter below
 * sits between the socket and the parser and removes exactly those header lines; everything else
 * reaches the parser byte for byte.
 *
 * It follows the framing of a keep-alive connection to find each request head: a
 * `Content-Length` body is counted through; after a chunked body, an upgrade or a CONNECT, and
 * for a head longer than MAX_HEAD, the rest of the connection passes untouched.
 */

/** Longer request heads are not looked into: node answers them with 431 anyway. */
const MAX_HEAD = 64 * 1024
const EMPTY = Buffer.alloc(0)
const CRLF = 0x0a0d

type Mode = 'head' | 'body' | 'pass'

export class EmptyContentLengthFilter {
  private mode: Mode = 'head'
  private pending: Buffer = EMPTY
  private remaining = 0

  /** The bytes to hand the parser for `chunk` (a head is held back until it is complete). */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk
    this.pending = EMPTY
    while (data.length > 0) {
      if (this.mode === 'pass') {
        out.push(data)
        break
      }
      if (this.mode === 'body') {
        const n = Math.min(this.remaining, data.length)
        out.push(data.subarray(0, n))
        this.remaining -= n
        data = data.subarray(n)
        if (this.remaining === 0) {
          this.mode = 'head'
        }
        continue
      }
      // Empty lines before a request line are allowed; they must not end the head.
      let start = 0
      while (start + 1 < data.length && data.readUInt16LE(start) === CRLF) {
        start += 2
      }
      const end = data.indexOf('\r\n\r\n', start, 'latin1')
      if (end < 0) {
        if (data.length > MAX_HEAD) {
          this.mode = 'pass'
          out.push(data)
        } else {
          this.pending = data
        }
        break
      }
      const headEnd = end + 4
      out.push(this.head(data.subarray(0, headEnd), start))
      data = data.subarray(headEnd)
    }
    return out
  }

  /** What is still held back when the client closes its side. */
  flush(): Buffer[] {
    const rest = this.pending
    this.pending = EMPTY
    return rest.length > 0 ? [rest] : []
  }

  /** One complete head: without its empty Content-Length lines; sets the mode for what follows. */
  private head(head: Buffer, start: number): Buffer {
    const lines = head.toString('latin1', start, head.length - 4).split('\r\n')
    const method = (lines[0] ?? '').split(' ')[0]
    const lengths: string[] = []
    let pass = method === 'CONNECT'
    let dropped = false
    const kept = lines.filter((line, i) => {
      const colon = line.indexOf(':')
      if (i === 0 || colon <= 0 || line[0] === ' ' || line[0] === '\t') {
        return true
      }
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (name === 'content-length') {
        if (value === '') {
          dropped = true
          return false
        }
        lengths.push(value)
      } else if (name === 'transfer-encoding' || name === 'upgrade') {
        pass = true
      }
      return true
    })
    const length = lengths[0]
    if (
      pass ||
      lengths.some((l) => l !== length) ||
      (length !== undefined && !/^\d+$/.test(length))
    ) {
      // Framing the parser will decide on (or refuse): stop looking.
      this.mode = 'pass'
    } else if (length !== undefined && Number(length) > 0) {
      this.mode = 'body'
      this.remaining = Number(length)
    }
    if (!dropped) {
      return head
    }
    return Buffer.concat([
      head.subarray(0, start),
      Buffer.from(`${kept.join('\r\n')}\r\n\r\n`, 'latin1'),
    ])
  }
}

/** The socket as the HTTP server sees it: reads pass through the filter, the rest is the socket. */
class FilteredSocket extends Duplex {
  private readonly heads = new EmptyContentLengthFilter()

  constructor(private readonly socket: Socket) {
    super({ allowHalfOpen: true })
    socket.on('data', (chunk: Buffer) => {
      for (const part of this.heads.feed(chunk)) {
        if (!this.push(part)) {
          socket.pause()
        }
      }
    })
    socket.on('end', () => {
      for (const part of this.heads.flush()) {
        this.push(part)
      }
      this.push(null)
    })
    socket.on('timeout', () => this.emit('timeout'))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  get remoteAddress() {
    return this.socket.remoteAddress
  }
  get remotePort() {
    return this.socket.remotePort
  }
  get remoteFamily() {
    return this.socket.remoteFamily
  }
  get localAddress() {
    return this.socket.localAddress
  }
  get localPort() {
    return this.socket.localPort
  }
  get bytesWritten() {
    return this.socket.bytesWritten
  }
  address() {
    return this.socket.address()
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms)
    if (callback) {
      this.once('timeout', callback)
    }
    return this
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay)
    return this
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay)
    return this
  }
  ref(): this {
    this.socket.ref()
    return this
  }
  unref(): this {
    this.socket.unref()
    return this
  }
  destroySoon(): void {
    this.end(() => this.destroy())
  }

  override _read(): void {
    this.socket.resume()
  }
  override _write(chunk: Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void) {
    if (this.socket.write(chunk, encoding)) {
      done()
    } else {
      this.socket.once('drain', () => done())
    }
  }
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    done: (err?: Error | null) => void,
  ): void {
    // The HTTP server corks head and body together: one write on the socket.
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'buffer' as BufferEncoding, done)
  }
  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(() => done())
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined)
    done(err)
  }
}

/** Puts the filter in front of `server`'s HTTP parser, for every connection it accepts. */
export function acceptEmptyContentLength(server: Server): void {
  const listeners = server.listeners('connection') as ((socket: Duplex) => void)[]
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    const filtered = new FilteredSocket(socket)
    for (const listener of listeners) {
      listener.call(server, filtered)
    }
  })
}
