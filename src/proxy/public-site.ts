/**
 * The public URL the proxy serves Keycloak under (Nextcloud's proxy route), as Keycloak must be
 * told it and as the browser must see it.
 */
export interface PublicSite {
  /** path of the proxied prefix without a trailing slash ('' at the root) */
  prefixPath: string
  /** the public URL is https: cookies get `Secure` */
  secure: boolean
  /**
   * `X-Forwarded-Proto/Host/Port/Prefix` naming the public URL, so Keycloak builds public URLs
   * even when it runs without a fixed `hostname`.
   */
  forwarded: ReadonlyArray<readonly [string, string]>
  /**
   * A `Location` pointing at the loopback upstream or at a root-relative path, moved under the
   * public prefix; any other location as it is.
   */
  rewriteLocation(location: string): string
}

export function publicSite(publicUrl: string, upstream: URL): PublicSite {
  const url = new URL(publicUrl.replace(/\/+$/, ''))
  const prefixPath = url.pathname.replace(/\/+$/, '')
  const base = `${url.origin}${prefixPath}`
  const forwarded: [string, string][] = [
    ['x-forwarded-proto', url.protocol.replace(':', '')],
    ['x-forwarded-host', url.host],
  ]
  if (url.port) {
    forwarded.push(['x-forwarded-port', url.port])
  }
  if (prefixPath) {
    forwarded.push(['x-forwarded-prefix', prefixPath])
  }
  return {
    prefixPath,
    secure: url.protocol === 'https:',
    forwarded,
    rewriteLocation(location) {
      if (location.startsWith('/') && !location.startsWith('//')) {
        return location === prefixPath || location.startsWith(`${prefixPath}/`)
          ? `${url.origin}${location}`
          : `${base}${location}`
      }
      try {
        const u = new URL(location)
        if (u.origin === upstream.origin) {
          return `${base}${u.pathname}${u.search}${u.hash}`
        }
      } catch {
        // not a URL we know: leave it
      }
      return location
    },
  }
}
