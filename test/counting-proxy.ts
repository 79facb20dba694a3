import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CountingProxy {
  url: string
  /** requests forwarded so far, by method */
  counts(): Record<string, number>
  /**
   * requests that change something in Keycloak: anything but GET, and not the admin client's
   * token requests (it logs in again every minute; that changes nothing in the realm)
   */
  writes(): number
  /** token requests (admin logins) */
  logins(): number
  /** every request forwarded so far, as `METHOD /path` (query left off) */
  requests(): string[]
  /**
   * milliseconds during which at least one forwarded request was in flight (from its arrival to
   * the end of its answer): how long Keycloak worked for the caller, whatever the concurrency
   */
  busyMs(): number
  reset(): void
  /** after `n` more forwarded requests, answer 503 without forwarding until `heal()` */
  breakAfter(n: number): void
  /** once `times` more requests (`METHOD /path`) matching `pattern` went through, answer 503 */
  breakAfterMatching(pattern: RegExp, times?: number): void
  heal(): void
  close(): Promise<void>
}

/**
 * A loopback HTTP proxy in front of Keycloak that counts what crosses it, so a test can say how
 * many requests (and writes) a sync really sent, and can make Keycloak vanish mid-run.
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target)
  let counts: Record<string, number> = {}
  let logins = 0
  let log: string[] = []
  let budget = Number.POSITIVE_INFINITY
  let breakOn: { pattern: RegExp; left: number } | undefined
  let inFlight = 0
  let busySince = 0
  let busy = 0
  const started = () => {
    if (inFlight++ === 0) {
      busySince = performance.now()
    }
  }
  const ended = () => {
    if (--inFlight === 0) {
      busy += performance.now() - busySince
    }
  }
  const server: Server = createServer((req, res) => {
    if (budget <= 0) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('keycloak unavailable (test)')
      return
    }
    budget--
    const method = req.method ?? 'GET'
    counts[method] = (counts[method] ?? 0) + 1
    const line = `${method} ${(req.url ?? '').split('?')[0]}`
    log.push(line)
    if (breakOn?.pattern.test(line) && --breakOn.left <= 0) {
      breakOn = undefined
      budget = 0
    }
    if (/\/protocol\/openid-connect\/token$/.test((req.url ?? '').split('?')[0] ?? '')) {
      logins++
    }
    started()
    res.once('close', ended)
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (upstreamRes: IncomingMessage) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
        upstreamRes.pipe(res)
      },
    )
    forward.on('error', () => res.writeHead(502).end())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    writes: () =>
      Object.entries(counts).reduce((n, [m, c]) => (m === 'GET' ? n : n + c), 0) - logins,
    logins: () => logins,
    requests: () => [...log],
    busyMs: () => busy + (inFlight > 0 ? performance.now() - busySince : 0),
    reset() {
      busy = 0
      busySince = performance.now()
      counts = {}
      logins = 0
      log = []
    },
    breakAfter(n) {
      budget = n
    },
    breakAfterMatching(pattern, times = 1) {
      breakOn = { pattern, left: times }
    },
    heal() {
      budget = Number.POSITIVE_INFINITY
      breakOn = undefined
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
