/**
 * AppAPI's PHP proxy (Guzzle) would follow a redirect itself, without the browser's Nextcloud
 * session, and hand the browser the wrong page. So a redirect going back through it becomes a
 * page that sends the browser on instead.
 */

/** Text safe inside HTML content and quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

/** Whether `status` is a redirect that carries the `Location` in `headers`. */
export function isRedirect(status: number, headers: Headers): boolean {
  return status >= 300 && status < 400 && headers.has('location')
}

/**
 * A 200 page that moves the browser to the `Location` in `headers`; the other headers stay,
 * those that describe the body are replaced.
 */
export function redirectPage(headers: Headers): Response {
  const page = escapeHtml(headers.get('location') ?? '')
  headers.delete('location')
  headers.delete('content-length')
  headers.set('content-type', 'text/html; charset=utf-8')
  headers.set('cache-control', 'no-store')
  headers.set('content-security-policy', "default-src 'none'; frame-ancestors 'self'")
  return new Response(
    `<!doctype html><meta http-equiv="refresh" content="0;url=${page}"><a href="${page}">Continue</a>`,
    { status: 200, headers },
  )
}
