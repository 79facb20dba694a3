import { gzipSync } from 'node:zlib'
import { AppError } from '../errors.js'

/**
 * How a Keycloak answer's body goes back through Nextcloud.
 *
 * AppAPI's PHP proxy reads the whole answer, then copies every header of it onto its own
 * response: a `Transfer-Encoding: chunked` reaches the browser with a body that is no longer
 * chunked (broken behind Apache and php -S), and for paths ending in `.html` it adds a nonce to
 * every `<script` but keeps the original `Content-Length` (the page is cut behind nginx and
 * php -S). Keycloak sends its larger files (the console's scripts and styles) chunked.
 *
 * So bodies are read whole and sent with their `Content-Length`, whoever asks: on loopback,
 * streaming gains nothing measurable for files of this size, and a whole body lets a client
 * abort be told apart from a failure. A body larger than `maxBuffered` streams on for HaRP and
 * direct callers; the PHP proxy gets it only with a `Content-Length` Keycloak set itself. An
 * `.html` answer with scripts goes to the PHP proxy gzip-encoded: Guzzle decodes it and drops
 * the length, so the web server frames the longer page itself.
 *
 * An answer the caller cannot be given (Keycloak broke it off, or it is too large for the PHP
 * proxy) is KEYCLOAK_UNAVAILABLE.
 */

/** AppAPI's PHP proxy sets `X-Origin-IP` on everything it forwards; HaRP and direct callers do not. */
export function viaPhpProxy(request: Headers): boolean {
  return request.has('x-origin-ip')
}

/** `pathinfo($path, PATHINFO_EXTENSION)` as AppAPI uses it to decide on its `.html` rewrite. */
export function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot < 0 ? '' : base.slice(dot + 1)
}

export interface BodyPlan {
  /** the request came through AppAPI's PHP proxy */
  phpProxy: boolean
  /** the PHP proxy will rewrite the body (request path ends in `.html`) */
  rewritten: boolean
  maxBuffered: number
  /** the client's request signal: aborted when the client went away */
  signal: AbortSignal
}

export type Delivered =
  | { kind: 'body'; body: Uint8Array | ReadableStream<Uint8Array> | null; headers: Headers }
  | { kind: 'aborted' }

const SCRIPT = Buffer.from('<script', 'latin1')

/**
 * The body to answer with and the headers that frame it (`headers` is changed in place: its
 * `content-length` and `content-encoding` describe what is sent).
 */
export async function deliver(
  upstream: Response,
  headers: Headers,
  plan: BodyPlan,
  onClientAbort: () => void,
): Promise<Delivered> {
  if (!upstream.body) {
    return { kind: 'body', body: null, headers }
  }
  const reader = upstream.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) {
        break
      }
      chunks.push(value)
      size += value.byteLength
      if (size > plan.maxBuffered) {
        return overflow(reader, chunks, headers, plan, onClientAbort)
      }
    }
  } catch (err) {
    if (plan.signal.aborted) {
      return { kind: 'aborted' }
    }
    throw new AppError('KEYCLOAK_UNAVAILABLE', 'Keycloak broke off its answer', { cause: err })
  }
  let body = Buffer.concat(chunks, size)
  headers.delete('content-encoding')
  if (plan.phpProxy && plan.rewritten && body.includes(SCRIPT)) {
    body = gzipSync(body)
    headers.set('content-encoding', 'gzip')
  }
  headers.set('content-length', String(body.byteLength))
  return { kind: 'body', body, headers }
}

/** A body over the limit: streamed on where the caller can take it, refused where it cannot. */
async function overflow(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  head: Uint8Array[],
  headers: Headers,
  plan: BodyPlan,
  onClientAbort: () => void,
): Promise<Delivered> {
  const framed = headers.has('content-length')
  if (plan.phpProxy && (plan.rewritten || !framed)) {
    await reader.cancel().catch(() => undefined)
    throw new AppError(
      'KEYCLOAK_UNAVAILABLE',
      `Keycloak's answer is too large for Nextcloud's proxy (over ${plan.maxBuffered} bytes)`,
    )
  }
  const queued = [...head]
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = queued.shift()
      if (next) {
        controller.enqueue(next)
        return
      }
      try {
        const { done, value } = await reader.read()
        if (done) {
          controller.close()
        } else {
          controller.enqueue(value)
        }
      } catch (err) {
        if (plan.signal.aborted) {
          // The client left: end quietly, nobody is reading.
          onClientAbort()
          controller.close()
        } else {
          controller.error(err)
        }
      }
    },
    cancel: (reason) => reader.cancel(reason),
  })
  return { kind: 'body', body, headers }
}
