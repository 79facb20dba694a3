import type { MiddlewareHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { decodeAuth } from './auth.js'
import type { FakeEnv } from './ocs.js'

/** A string matches paths ending with it (`'/cloud/users/details'`); a RegExp is tested as is. */
export type PathMatch = string | RegExp

export interface RecordedRequest {
  method: string
  /** without the query */
  path: string
  query: string
  appId: string | undefined
  /** the uid claimed in AUTHORIZATION-APP-API ('' = system), undefined without the header */
  user: string | undefined
  /** 0 while the request is pending */
  status: number
  /** the response body's length in bytes, uncompressed (0 while pending) */
  bytes: number
}

export type Fault =
  | { kind: 'status'; status: number; body: string; contentType: string }
  | { kind: 'hang' }
  /** answered normally after `ms` */
  | { kind: 'delay'; ms: number }
  | { kind: 'truncate'; keep?: number }

export interface Traffic {
  middleware: MiddlewareHandler<FakeEnv>
  requests: RecordedRequest[]
  inject(path: PathMatch, fault: Fault, times: number, method?: string): void
  count(path: PathMatch, method?: string): number
  /** requests per `METHOD /path` */
  counters(): Record<string, number>
  /** answers every hanging request (with 504), e.g. before closing */
  releaseHangs(): void
}

export function createTraffic(): Traffic {
  const requests: RecordedRequest[] = []
  const faults: { path: PathMatch; method?: string; fault: Fault; remaining: number }[] = []
  const hangs = new Set<() => void>()
  const matches = (rule: PathMatch, path: string) =>
    typeof rule === 'string' ? path.endsWith(rule) : rule.test(path)

  const takeFault = (method: string, path: string): Fault | undefined => {
    const index = faults.findIndex(
      (f) => matches(f.path, path) && (f.method === undefined || f.method === method),
    )
    const found = faults[index]
    if (!found) {
      return undefined
    }
    found.remaining--
    if (found.remaining <= 0) {
      faults.splice(index, 1)
    }
    return found.fault
  }

  const middleware: MiddlewareHandler<FakeEnv> = async (c, next) => {
    const url = new URL(c.req.url)
    const auth = c.req.header('authorization-app-api')
    const entry: RecordedRequest = {
      method: c.req.method,
      path: url.pathname,
      query: url.search,
      appId: c.req.header('ex-app-id'),
      user: auth === undefined ? undefined : decodeAuth(auth).user,
      status: 0,
      bytes: 0,
    }
    requests.push(entry)
    const fault = takeFault(entry.method, entry.path)
    if (fault?.kind === 'status') {
      entry.status = fault.status
      return c.body(fault.body, fault.status as ContentfulStatusCode, {
        'Content-Type': fault.contentType,
      })
    }
    if (fault?.kind === 'hang') {
      await new Promise<void>((resolve) => hangs.add(resolve))
      entry.status = 504
      return c.body('released', 504)
    }
    if (fault?.kind === 'delay') {
      await new Promise((resolve) => setTimeout(resolve, fault.ms))
    }
    c.set('truncate', fault?.kind === 'truncate' ? { keep: fault.keep } : undefined)
    await next()
    entry.status = c.res.status
    entry.bytes = (await c.res.clone().arrayBuffer()).byteLength
    return undefined
  }

  return {
    middleware,
    requests,
    inject(path, fault, times, method) {
      faults.push({ path, method, fault, remaining: times })
    },
    count: (path, method) =>
      requests.filter((r) => matches(path, r.path) && (method === undefined || r.method === method))
        .length,
    counters() {
      const counts: Record<string, number> = {}
      for (const r of requests) {
        const key = `${r.method} ${r.path}`
        counts[key] = (counts[key] ?? 0) + 1
      }
      return counts
    },
    releaseHangs() {
      for (const release of hangs) {
        release()
      }
      hangs.clear()
    },
  }
}
