import { Hono } from 'hono'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import { AppError } from '../errors.js'
import { refuseNonAdmin } from '../http/api-auth.js'
import type { AppEnv } from '../http/types.js'
import { type Asset, asset, loadStatusPage, type StatusPageFile } from './assets.js'

/** The top-menu entry's name; AppAPI attaches its script and style to it. */
export const TOP_MENU = 'keycloak'
const LOADER_PATH = 'app/loader'
const ICON_PATH = 'app/icon.svg'

/** Registers the admin-only "Keycloak" entry and its loader script; both calls upsert. */
export async function registerTopMenu(nextcloud: NextcloudClient): Promise<void> {
  await nextcloud.registerScript({ name: TOP_MENU, path: LOADER_PATH })
  await nextcloud.registerTopMenu({
    name: TOP_MENU,
    displayName: 'Keycloak',
    icon: ICON_PATH,
    adminRequired: true,
  })
}

/** Removes the entry (AppAPI drops its scripts with it) and the script itself. */
export async function unregisterTopMenu(nextcloud: NextcloudClient): Promise<void> {
  await nextcloud.unregisterScript({ name: TOP_MENU, path: LOADER_PATH })
  await nextcloud.unregisterTopMenu(TOP_MENU)
}

/** A path under which Nextcloud proxies this app: the PHP proxy's or HaRP's, on any web root. */
const PROXY_PREFIX = /(?:\/apps\/app_api\/proxy|\/exapps)\/[^/]+$/

/**
 * Runs inside Nextcloud's embedded page (`<div id="content">`): fills it with a same-origin iframe
 * on the status page. Nextcloud loads scripts through the PHP proxy even where HaRP runs, so the
 * page goes under the configured public prefix when that is one of Nextcloud's proxy prefixes
 * (Keycloak's hostname is that prefix, and the console must stay under it), else under the prefix
 * this script came from.
 */
export function loaderScript(publicPath: string): string {
  const preferred = PROXY_PREFIX.test(publicPath) ? publicPath : ''
  return `(function () {
  var script = document.currentScript
  var own = script ? new URL(script.src).pathname.replace(/\\/app\\/loader\\.js$/, '') : ''
  var prefix = ${JSON.stringify(preferred)} || own
  function mount() {
    var content = document.getElementById('content')
    if (!content) { return }
    content.innerHTML = ''
    var frame = document.createElement('iframe')
    frame.src = prefix + '/app/'
    frame.title = 'Keycloak'
    frame.id = 'keycloak-exapp-frame'
    frame.style.cssText = 'border:0;width:100%;height:calc(100vh - 50px);display:block'
    content.appendChild(frame)
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', mount) } else { mount() }
})()
`
}

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="#fff"><path d="M12 1 3 5v6c0 5.5 3.8 10.7 9 12 5.2-1.3 9-6.5 9-12V5l-9-4zm0 6a3 3 0 0 1 1 5.8V17h-2v-4.2A3 3 0 0 1 12 7z"/></svg>
`

/**
 * The page's own policy: nothing from elsewhere, no inline code, framed only by Nextcloud (the
 * PHP proxy would otherwise send a deny-all policy).
 */
export const STATUS_PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self'",
  "frame-ancestors 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ')

export interface AppAssetsOptions {
  /** path of the configured public prefix, e.g. /exapps/keycloak */
  publicPath: string
  isAdmin(uid: string): Promise<boolean>
  /** the status page's files (default: read from src/ui/static or dist/ui/static) */
  files?: Map<StatusPageFile, Asset>
}

/**
 * `/app/…`: the loader script and icon AppAPI loads for the top menu, and the status page
 * (admins only). Only these names exist; any other path under `/app` is a 404 here and never
 * reaches Keycloak.
 */
export function appAssets(opts: AppAssetsOptions) {
  const files = opts.files ?? loadStatusPage()
  const loader = asset(loaderScript(opts.publicPath), 'text/javascript; charset=utf-8')
  const icon = asset(ICON, 'image/svg+xml')
  const pages: Record<string, { file: Asset; admin: boolean; cache: string }> = {
    '/loader.js': { file: loader, admin: false, cache: 'no-cache' },
    '/icon.svg': { file: icon, admin: false, cache: 'public, max-age=86400' },
  }
  for (const [name, file] of files) {
    pages[name === 'index.html' ? '/' : `/${name}`] = { file, admin: true, cache: 'no-cache' }
  }

  return new Hono<AppEnv>().all('*', async (c) => {
    // Mounted at /app: what follows it.
    const path = c.req.path.slice('/app'.length)
    if (path === '') {
      // `<prefix>/app` without the slash: relative asset URLs need the slash, and the PHP proxy
      // would follow a redirect itself, so a page sends the browser on.
      c.header('Content-Security-Policy', STATUS_PAGE_CSP)
      return c.html(
        '<!DOCTYPE html><meta http-equiv="refresh" content="0;url=app/"><title>Keycloak</title>',
      )
    }
    const page = Object.hasOwn(pages, path) ? pages[path] : undefined
    if (!page) {
      throw new AppError('NOT_FOUND', 'no such file')
    }
    if (c.req.method !== 'GET') {
      c.header('Allow', 'GET')
      throw new AppError('METHOD_NOT_ALLOWED', `method ${c.req.method} not allowed`)
    }
    if (page.admin) {
      await refuseNonAdmin(c, opts.isAdmin)
    }
    c.header('Cache-Control', page.cache)
    c.header('ETag', page.file.etag)
    c.header('X-Content-Type-Options', 'nosniff')
    if (page.file.type.startsWith('text/html')) {
      c.header('Content-Security-Policy', STATUS_PAGE_CSP)
      c.header('Referrer-Policy', 'no-referrer')
    }
    if (c.req.header('if-none-match') === page.file.etag) {
      return c.body(null, 304)
    }
    c.header('Content-Type', page.file.type)
    return c.body(new Uint8Array(page.file.body))
  })
}
