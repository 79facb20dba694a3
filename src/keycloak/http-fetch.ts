import type * as oidc from 'openid-client'
import { keptAliveSender } from '../http-request.js'

/**
 * openid-client's requests over kept-alive node:http(s) connections (keptAliveSender), answered
 * as a Response once the whole answer is read; the signal (openid-client's timeout) covers it.
 * Redirects are not followed. A body other than a string, URLSearchParams or bytes goes to fetch.
 */
export function httpFetch(): oidc.CustomFetch {
  const send = keptAliveSender()
  return async (url, options) => {
    const { body, method, signal } = options
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
    let answer: Awaited<ReturnType<typeof send>>
    try {
      answer = await send(url, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        ...(signal ? { signal } : {}),
      })
    } catch (err) {
      // As fetch does: the signal's reason when it fired, else a TypeError (openid-client passes a
      // TypeError on untouched, so a refused or reset connection reads as Keycloak being away).
      throw signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err })
    }
    const responseHeaders = new Headers()
    for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
      responseHeaders.append(answer.rawHeaders[i] as string, answer.rawHeaders[i + 1] as string)
    }
    const empty = answer.status === 204 || answer.status === 304 || method === 'HEAD'
    return new Response(empty ? null : answer.body, {
      status: answer.status,
      statusText: answer.statusMessage,
      headers: responseHeaders,
    })
  }
}
