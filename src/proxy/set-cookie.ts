/** Cookie syntax as the proxy needs it: reading `Cookie` and `Set-Cookie`, matching paths. */

export interface ParsedSetCookie {
  name: string
  value: string
  path?: string
  maxAge?: number
  expires?: number
}

/** Parses one `Set-Cookie` value (only the attributes the jar needs). */
export function parseSetCookie(header: string): ParsedSetCookie | undefined {
  const [pair, ...attrs] = header.split(';')
  const eq = pair?.indexOf('=') ?? -1
  if (!pair || eq <= 0) {
    return undefined
  }
  const out: ParsedSetCookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim() }
  for (const attr of attrs) {
    const i = attr.indexOf('=')
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase()
    const val = i < 0 ? '' : attr.slice(i + 1).trim()
    if (key === 'path' && val.startsWith('/')) {
      out.path = val
    } else if (key === 'max-age' && /^-?\d+$/.test(val)) {
      out.maxAge = Number(val)
    } else if (key === 'expires') {
      const t = Date.parse(val)
      if (!Number.isNaN(t)) {
        out.expires = t
      }
    }
  }
  return out
}

/** A `Set-Cookie` as the browser gets it: under the public prefix, no Domain. */
export function mirroredCookie(raw: string, prefixPath: string): string {
  const [pair = '', ...attrs] = raw.split(';')
  const kept = attrs
    .map((a) => a.trim())
    .filter((a) => a !== '' && !/^(?:domain|path)\s*=/i.test(a))
  const path = parseSetCookie(raw)?.path ?? '/'
  const publicPath =
    prefixPath && path !== prefixPath && !path.startsWith(`${prefixPath}/`)
      ? `${prefixPath}${path}`
      : path
  return [pair.trim(), `Path=${publicPath}`, ...kept].join('; ')
}

/** Whether a cookie set for `cookiePath` goes with a request for `requestPath`. */
export function pathMatches(cookiePath: string, requestPath: string): boolean {
  if (requestPath === cookiePath || cookiePath === '/') {
    return true
  }
  const base = cookiePath.endsWith('/') ? cookiePath : `${cookiePath}/`
  return requestPath.startsWith(base) || `${requestPath}/` === base
}

/** The pairs of a `Cookie` header, in order. */
export function cookiePairs(header: string | undefined): [string, string][] {
  const pairs: [string, string][] = []
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0) {
      pairs.push([part.slice(0, i).trim(), part.slice(i + 1).trim()])
    }
  }
  return pairs
}

/** The value of cookie `name` in a `Cookie` header (the first one). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  return cookiePairs(header).find(([n]) => n === name)?.[1]
}
