import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { appWithUi } from '../../test/ui-app.js'
import type { AppEnv } from '../http/types.js'
import { asset, STATIC_DIR, STATUS_PAGE_FILES } from './assets.js'
import { appAssets, loaderScript, STATUS_PAGE_CSP } from './top-menu.js'

const files = new Map([
  ['index.html', asset('<!DOCTYPE html><title>status</title>', 'text/html; charset=utf-8')],
  ['status.css', asset('body{}', 'text/css; charset=utf-8')],
  ['status.js', asset('void 0', 'text/javascript; charset=utf-8')],
] as const)

function setup() {
  const ui = new Hono<AppEnv>()
    .route(
      '/app',
      appAssets({
        publicPath: '/exapps/keycloak',
        isAdmin: async (uid) => uid === 'admin',
        files: new Map(files),
      }),
    )
    // Stands for the Keycloak proxy behind: nothing under /app may reach it.
    .all('*', (c) => c.text('keycloak', 418))
  return appWithUi(ui)
}

/** Runs the loader in a stand-in of Nextcloud's embedded page; returns the frame's src. */
function mountLoader(source: string, scriptSrc: string): string {
  const frame: Record<string, unknown> = { style: {} }
  const content = { innerHTML: 'old', appendChild: (el: unknown) => Object.assign(frame, el) }
  runInNewContext(source, {
    URL,
    document: {
      currentScript: { src: scriptSrc },
      readyState: 'complete',
      getElementById: (id: string) => (id === 'content' ? content : null),
      createElement: () => frame,
    },
  })
  expect(content.innerHTML).toBe('')
  return frame.src as string
}

describe('loader script', () => {
  const php = 'https://cloud.example/index.php/apps/app_api/proxy/keycloak/app/loader.js?v=1'

  it('frames the status page under the prefix it was loaded from', () => {
    expect(mountLoader(loaderScript(''), php)).toBe('/index.php/apps/app_api/proxy/keycloak/app/')
  })

  it('prefers the configured HaRP prefix, where Keycloak is published', () => {
    expect(mountLoader(loaderScript('/exapps/keycloak'), php)).toBe('/exapps/keycloak/app/')
    expect(mountLoader(loaderScript('/nc/exapps/keycloak'), php)).toBe('/nc/exapps/keycloak/app/')
  })

  it('ignores a configured path that is not a Nextcloud proxy prefix', () => {
    expect(mountLoader(loaderScript('/auth'), php)).toBe(
      '/index.php/apps/app_api/proxy/keycloak/app/',
    )
  })
})

describe('/app assets', () => {
  it('serves the page, its style and script to admins with the page policy', async () => {
    const { app, as } = setup()
    const page = await app.request('/app/', { headers: as('admin') })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toBe(STATUS_PAGE_CSP)
    expect(STATUS_PAGE_CSP).toContain("frame-ancestors 'self'")
    expect(page.headers.get('cache-control')).toBe('no-cache')
    expect(await page.text()).toContain('<title>status</title>')
    const css = await app.request('/app/status.css', { headers: as('admin') })
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(css.headers.get('x-content-type-options')).toBe('nosniff')
    const js = await app.request('/app/status.js', { headers: as('admin') })
    expect(await js.text()).toBe('void 0')
  })

  it('answers a matching ETag with 304', async () => {
    const { app, as } = setup()
    const first = await app.request('/app/status.js', { headers: as('admin') })
    const etag = first.headers.get('etag') as string
    expect(etag).toMatch(/^"[\w-]{22}"$/)
    const again = await app.request('/app/status.js', {
      headers: as('admin', { 'if-none-match': etag }),
    })
    expect(again.status).toBe(304)
    expect(await again.text()).toBe('')
  })

  it('keeps the page from non-admins and from anonymous proxy calls', async () => {
    const { app, as } = setup()
    for (const path of ['/app/', '/app/status.js', '/app/status.css']) {
      expect((await app.request(path, { headers: as('alice') })).status).toBe(403)
      expect((await app.request(path, { headers: as('') })).status).toBe(403)
      expect((await app.request(path)).status).toBe(401)
    }
  })

  it('serves the loader and icon to any user Nextcloud lets through', async () => {
    const { app, as } = setup()
    const loader = await app.request('/app/loader.js', { headers: as('alice') })
    expect(loader.status).toBe(200)
    expect(await loader.text()).toContain('"/exapps/keycloak"')
    const icon = await app.request('/app/icon.svg', { headers: as('') })
    expect(icon.headers.get('content-type')).toBe('image/svg+xml')
  })

  it('sends `/app` on to `app/` with a page, since the PHP proxy follows redirects itself', async () => {
    const { app, as } = setup()
    const res = await app.request('/app', { headers: as('admin') })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('content="0;url=app/"')
  })

  it.each([
    '/app/..%2f..%2fsecrets.json',
    '/app/status.js/',
    '/app/status.js%00.png',
    '/app//status.js',
    '/app/index.html',
    '/app/STATUS.JS',
    '/app/hasOwnProperty',
    '/app/__proto__',
  ])('answers %s with 404 and never reaches Keycloak', async (path) => {
    const { app, as } = setup()
    const res = await app.request(path, { headers: as('admin') })
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })

  it.each(['/app/%2e%2e/%2e%2e/etc/passwd', '/app/.%2e/state.json', '/app/../secrets.json'])(
    'resolves the dot segments of %s before routing: a Keycloak path, not a file',
    async (path) => {
      const { app, as } = setup()
      const res = await app.request(path, { headers: as('admin') })
      expect(res.status).toBe(418)
    },
  )

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('refuses %s with 405', async (method) => {
    const { app, as } = setup()
    const res = await app.request('/app/status.js', { method, headers: as('admin') })
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET')
  })
})

describe('the status page files', () => {
  it('exist and load nothing from another origin', () => {
    for (const name of Object.keys(STATUS_PAGE_FILES)) {
      const text = readFileSync(join(STATIC_DIR, name), 'utf8')
      expect(text.length).toBeGreaterThan(100)
      // No CDN, fonts or images from elsewhere: no absolute URLs in src/href/url()/import.
      expect(text).not.toMatch(/(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i)
      expect(text).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//i)
      expect(text).not.toMatch(/@import/i)
      expect(text).not.toMatch(/fetch\(\s*["'`](?:https?:)?\/\//i)
    }
    const html = readFileSync(join(STATIC_DIR, 'index.html'), 'utf8')
    // The policy forbids inline code: scripts come from files, relative to the page.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i)
    expect(html).not.toMatch(/\sstyle\s*=/i)
    expect(html).toMatch(/<script[^>]+src="status\.js"/)
    expect(html).toMatch(/<link[^>]+href="status\.css"/)
  })
})
