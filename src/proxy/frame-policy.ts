/**
 * What lets Nextcloud show Keycloak's pages in its frame: responses without a CSP (and every
 * HTML page) get `frame-ancestors 'self'`, otherwise the PHP proxy adds a deny-all CSP; a CSP
 * with `frame-ancestors 'none'` or `X-Frame-Options: DENY` is relaxed to same-origin. Keycloak's
 * own default (`frame-ancestors 'self'`, SAMEORIGIN) is left alone. An answer other than 200
 * without a `Cache-Control` is not cached.
 */

/** Replaces or adds frame-ancestors so Nextcloud (same origin) may frame the page. */
export function frameableCsp(csp: string | null): string {
  if (!csp) {
    return "frame-ancestors 'self'"
  }
  return csp.replace(/frame-ancestors\s+'none'/i, "frame-ancestors 'self'")
}

/** Sets the framing and caching headers on `out` from Keycloak's answer `upstream`. */
export function applyFramePolicy(out: Headers, upstream: Headers, status: number): void {
  const csp = upstream.get('content-security-policy')
  const contentType = upstream.get('content-type') ?? ''
  if (contentType.startsWith('text/html') || !upstream.has('content-security-policy')) {
    out.set('content-security-policy', frameableCsp(csp))
  }
  if (/^\s*deny\s*$/i.test(upstream.get('x-frame-options') ?? '')) {
    out.set('x-frame-options', 'SAMEORIGIN')
  }
  if (!out.has('cache-control') && status !== 200) {
    out.set('cache-control', 'no-store')
  }
}
