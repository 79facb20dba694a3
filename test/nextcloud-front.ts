import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { escapeHtml } from '../src/proxy/redirect-page.js'
import type { TopMenuRecord, UiResourceRecord } from './fake-nextcloud/exapps.js'
import { harpProxyHandler } from './harp-proxy.js'
import {
  closeServer,
  levelOf,
  listenOn,
  phpProxyHandler,
  type TestProxyOptions,
  userFromCookies,
} from './php-proxy.js'

/**
 * Nextcloud's front door as a browser sees it, on one origin: AppAPI's PHP proxy
 * (`/index.php/apps/app_api/proxy/<appid>/…`), HaRP (`/exapps/<appid>/…`) and the embedded page a
 * top-menu entry opens (`/index.php/apps/app_api/embedded/<appid>/<name>`), which loads the
 * entry's scripts through the PHP proxy like AppAPI's template does. The
 * logged-in user is the `nc_session_id` cookie, as in php-proxy.ts.
 *
 * The embedded page carries Nextcloud's theme variables on `body`, light or (`?theme=dark`)
 * dark, so a framed page can be checked in both.
 */
export interface NextcloudFrontOptions extends TestProxyOptions {
  /** the app's registered top-menu entries and scripts (the fake Nextcloud's records) */
  ui(): { topMenus: TopMenuRecord[]; scripts: UiResourceRecord[] }
}

export interface NextcloudFront {
  origin: string
  /** the app's URL through the PHP proxy */
  phpUrl: string
  /** the app's URL through HaRP */
  harpUrl: string
  /** the page the top-menu entry `name` opens */
  embeddedUrl(name: string, theme?: 'light' | 'dark'): string
  close(): Promise<void>
}

const LIGHT = {
  '--color-main-background': '#ffffff',
  '--color-main-background-rgb': '255,255,255',
  '--color-main-text': '#222222',
  '--color-text-maxcontrast': '#6b6b6b',
  '--color-background-hover': '#f5f5f5',
  '--color-background-dark': '#ededed',
  '--color-border': '#ededed',
  '--color-border-dark': '#dbdbdb',
  '--color-primary-element': '#00679e',
  '--color-primary-element-text': '#ffffff',
  '--color-primary-element-light': '#e5eff5',
  '--color-error': '#db0606',
  '--color-success': '#2d7b41',
  '--color-warning': '#a37200',
  '--border-radius': '3px',
  '--border-radius-large': '10px',
  '--default-font-size': '15px',
}

const DARK = {
  ...LIGHT,
  '--color-main-background': '#171717',
  '--color-main-background-rgb': '23,23,23',
  '--color-main-text': '#ebebeb',
  '--color-text-maxcontrast': '#999999',
  '--color-background-hover': '#292929',
  '--color-background-dark': '#2b2b2b',
  '--color-border': '#2b2b2b',
  '--color-border-dark': '#3b3b3b',
  '--color-primary-element': '#0082c9',
  '--color-primary-element-light': '#0e2330',
  '--color-error': '#ff5252',
  '--color-success': '#50b86b',
  '--color-warning': '#e6b300',
}

function vars(set: Record<string, string>): string {
  return Object.entries(set)
    .map(([k, v]) => `${k}:${v};`)
    .join('')
}

export async function startNextcloudFront(opts: NextcloudFrontOptions): Promise<NextcloudFront> {
  const php = phpProxyHandler(opts)
  const harp = harpProxyHandler(opts)
  const embeddedPrefix = `/index.php/apps/app_api/embedded/${opts.appId}/`

  const embedded = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const level = levelOf(userFromCookies(req.headers.cookie), opts.users)
    const name = decodeURIComponent(url.pathname.slice(embeddedPrefix.length).split('/')[0] ?? '')
    const { topMenus, scripts } = opts.ui()
    const entry = topMenus.find((m) => m.name === name)
    // Nextcloud: anonymous users go to the login page; an admin entry is a 404 to others.
    if (level === 0) {
      res.writeHead(303, { location: '/index.php/login' })
      res.end()
      return
    }
    if (!entry || (entry.admin_required === 1 && level < 2)) {
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' })
      res.end('<!DOCTYPE html><html><body><h2>Page not found</h2></body></html>')
      return
    }
    const dark = url.searchParams.get('theme') === 'dark'
    const tags = scripts
      .filter((s) => s.name === name)
      .map((s) => `<script src="${escapeHtml(`${php.prefix}/${s.path}.js`)}" nonce="nc"></script>`)
      .join('\n')
    res.writeHead(200, {
      'content-type': 'text/html; charset=UTF-8',
      // As the embedded page's policy: scripts and frames from this server only.
      'content-security-policy':
        "default-src 'none'; script-src 'self' 'unsafe-eval' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'",
      'x-frame-options': 'SAMEORIGIN',
    })
    res.end(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(entry.display_name)} - Nextcloud</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body { margin: 0; ${vars(LIGHT)} background: var(--color-main-background); color: var(--color-main-text); font-family: system-ui, sans-serif; }
body[data-themes~="dark"] { ${vars(DARK)} }
#header { height: 50px; background: var(--color-primary-element); color: var(--color-primary-element-text); display: flex; align-items: center; padding: 0 12px; }
</style>
${tags}
</head><body data-themes="${dark ? 'dark' : 'light'}">
<header id="header"><span>Nextcloud</span></header>
<main id="content"></main>
</body></html>`)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://front')
    if (url.pathname.startsWith(`${php.prefix}/`) || url.pathname === php.prefix) {
      void php(req, res)
    } else if (url.pathname.startsWith(`${harp.prefix}/`) || url.pathname === harp.prefix) {
      void harp(req, res)
    } else if (req.method === 'GET' && url.pathname.startsWith(embeddedPrefix)) {
      embedded(req, res, url)
    } else {
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' })
      res.end('<!DOCTYPE html><html><body><h2>Page not found</h2></body></html>')
    }
  })
  const origin = await listenOn(server, opts.port)
  return {
    origin,
    phpUrl: `${origin}${php.prefix}`,
    harpUrl: `${origin}${harp.prefix}`,
    embeddedUrl: (name, theme = 'light') =>
      `${origin}${embeddedPrefix}${encodeURIComponent(name)}${theme === 'dark' ? '?theme=dark' : ''}`,
    close: () => closeServer(server),
  }
}
