import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type * as oidc from 'openid-client'

/**
 * openid-client's requests over node:http(s) with kept-alive connections, answered as a Response.
 * fetch (undici, its body read through web streams) spent more CPU per grant than anything else
 * the sidecar did for a token besides signing: measured with 50 concurrent form POSTs answered
 * with a 2.5 KB token response on one loopback server, 0.36-0.40 ms CPU per request with fetch,
 * 0.12-0.15 ms with this, Response included. The whole answer is read before the Response is
 * made; the signal (openid-client's timeout) covers it. Redirects are not followed. A body other
 * than a string, URLSearchParams or bytes goes to fetch.
 */
export function httpFetch(): oidc.CustomFetch {
  // An idle connection is dropped after 4 s, before a proxy in front with a 5 s keep-alive does.
  const keep = { keepAlive: true, timeout: 4000 }
  const agents = { http: new HttpAgent(keep), https: new HttpsAgent(keep) }
  return (url, options) => {
    const { body, method, signal } = options
    const tls = url.startsWith('https:')
    let payload: string | Uint8Array | undefined
    const headers: Record<string, string | number> = { ...options.headers }
    if (typeof body === 'string' || body instanceof Uint8Array) {
      payload = body
    } else if (body instanceof URLSearchParams) {
      payload = body.toString()
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8'
      }
    } else if (body !== undefined && body !== null) {
      return fetch(url, options as RequestInit)
    }
    if (payload !== undefined) {
      headers['content-length'] = Buffer.byteLength(payload)
    }
    return new Promise<Response>((resolve, reject) => {
      // As fetch does: the signal's reason when it fired, else a TypeError (openid-client passes a
      // TypeError on untouched, so a refused or reset connection reads as Keycloak being away).
      const fail = (err: unknown) =>
        reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err }))
      const req = (tls ? httpsRequest : httpRequest)(url, {
        method,
        headers,
        agent: tls ? agents.https : agents.http,
        ...(signal ? { signal } : {}),
      })
      req.on('error', fail)
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', fail)
        res.once('close', () => {
          if (!res.complete) {
            fail(new Error('the answer was cut off'))
          }
        })
        res.once('end', () => {
          const status = res.statusCode ?? 0
          const answer = new Headers()
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            answer.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string)
          }
          const empty = status === 204 || status === 304 || method === 'HEAD'
          resolve(
            new Response(empty ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage ?? '',
              headers: answer,
            }),
          )
        })
      })
      req.end(payload)
    })
  }
}
