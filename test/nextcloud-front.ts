import { randomBytes } from 'node:crypto'
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import { pipeline } from 'node:stream/promises'
import { escapeHtml } from '../src/proxy/redirect-page.js'
import type { TopMenuRecord, UiResourceRecord } from './fake-nextcloud/exapps.js'
import { harpProxyHandler } from './harp-proxy.js'
import {
  closeServer,
  levelOf,
  listenOn,
  phpProxyHandler,
  readBody,
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
 * Nextcloud's login is here too, as Nextcloud 31's LoginController answers it (measured on the
 * real one, see test/real-nextcloud/browser.ts): `GET /index.php/login?redirect_url=…` shows the
 * form to a visitor (a signed-in user is sent to the default page), `POST /index.php/login` with
 * `user`, `password`, `requesttoken` and a same-origin `Origin` header signs in and answers 303 to
 * `redirect_url` made absolute on this origin, unless it contains an '@' (then the default
 * page); a failed login goes back to the form. Any other path is Nextcloud's API: forwarded to
 * `nextcloud()` (the fake Nextcloud), so an ExApp given this origin as NEXTCLOUD_URL reaches
 * Nextcloud and sends browsers to its login on the one origin, as with a real Nextcloud.
 *
 * The embedded page carries Nextcloud's theme variables on `body`, light or (`?theme=dark`)
 * dark, so a framed page can be checked in both.
 */
export interface NextcloudFrontOptions extends TestProxyOptions {
  /** the app's registered top-menu entries and scripts (the fake Nextcloud's records) */
  ui(): { topMenus: TopMenuRecord[]; scripts: UiResourceRecord[] }
  /** the users' Nextcloud passwords, for the login form (a user without one cannot log in) */
  passwords?: Record<string, string>
  /** where Nextcloud's API is served (the fake Nextcloud): every path the front does not serve */
  nextcloud?: () => string | undefined
}

export interface NextcloudFront {
  origin: string
  /** the app's URL through the PHP proxy */
  phpUrl: string
  /** the app's URL through HaRP */
  harpUrl: string
  /** the page the top-menu entry `name` opens */
  embeddedUrl(name: string, theme?: 'light' | 'dark'): string
  /** Nextcloud's login page, with the way back */
  loginUrl(redirectUrl?: string): string
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

  // One token for the front's life; Nextcloud's is per session, which the check here ignores.
  const requestToken = randomBytes(16).toString('base64url')
  const DEFAULT_PAGE = '/apps/dashboard/'
  const see = (res: ServerResponse, location: string, cookie?: string) => {
    res.writeHead(303, { location, ...(cookie ? { 'set-cookie': cookie } : {}) })
    res.end()
  }

  const loginForm = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (levelOf(userFromCookies(req.headers.cookie), opts.users) > 0) {
      see(res, `${origin}${DEFAULT_PAGE}`)
      return
    }
    const redirect = url.searchParams.get('redirect_url') ?? ''
    const user = url.searchParams.get('user') ?? ''
    res.writeHead(200, {
      'content-type': 'text/html; charset=UTF-8',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
    })
    res.end(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Login - Nextcloud</title>
<link rel="icon" href="data:,">
<style>body{font:16px system-ui,sans-serif;background:#00679e;color:#fff;display:grid;place-items:center;min-height:90vh}
form{background:#fff;color:#222;padding:2em;border-radius:10px;display:grid;gap:.8em;min-width:18em}
input{font:inherit;padding:.4em}button{font:inherit;padding:.5em;background:#00679e;color:#fff;border:0;border-radius:3px}</style>
</head><body>
<form method="post" action="/index.php/login" name="login">
<h2>Log in to Nextcloud</h2>
${user ? '<p id="login-failed">Wrong login or password.</p>' : ''}
<input type="text" name="user" id="user" placeholder="Login or email" value="${escapeHtml(user)}" autocomplete="username" required>
<input type="password" name="password" id="password" placeholder="Password" autocomplete="current-password" required>
<input type="hidden" name="requesttoken" value="${escapeHtml(requestToken)}">
${redirect ? `<input type="hidden" name="redirect_url" value="${escapeHtml(redirect)}">` : ''}
<button type="submit" id="submit-form">Log in</button>
</form></body></html>`)
  }

  const tryLogin = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams((await readBody(req)).toString('utf8'))
    const user = (form.get('user') ?? '').trim()
    const redirect = form.get('redirect_url')
    const password = opts.passwords?.[user]
    const ok =
      req.headers.origin === origin &&
      form.get('requesttoken') === requestToken &&
      password !== undefined &&
      form.get('password') === password &&
      user in opts.users
    if (!ok) {
      const again = new URLSearchParams({ user })
      if (redirect !== null) {
        again.set('redirect_url', redirect)
      }
      see(res, `/index.php/login?${again}`)
      return
    }
    // Nextcloud: getAbsoluteURL(redirect_url), refused when it contains an '@'.
    const absolute =
      redirect === null ? undefined : `${origin}${redirect.startsWith('/') ? '' : '/'}${redirect}`
    const location = absolute && !absolute.includes('@') ? absolute : `${origin}${DEFAULT_PAGE}`
    see(res, location, `nc_session_id=${user}; path=/; HttpOnly; SameSite=Lax`)
  }

  /** Nextcloud's API, and whatever else the front does not serve: the fake Nextcloud's. */
  const toNextcloud = async (req: IncomingMessage, res: ServerResponse) => {
    const base = opts.nextcloud?.()
    if (!base) {
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' })
      res.end('<!DOCTYPE html><html><body><h2>Page not found</h2></body></html>')
      return
    }
    const target = new URL(base)
    const upstream = await new Promise<IncomingMessage | undefined>((resolve) => {
      const out = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: target.host },
        },
        resolve,
      )
      out.on('error', () => resolve(undefined))
      req.pipe(out)
    })
    if (!upstream) {
      res.writeHead(502)
      res.end()
      return
    }
    res.writeHead(upstream.statusCode ?? 502, upstream.rawHeaders)
    await pipeline(upstream, res)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://front')
    if (url.pathname.startsWith(`${php.prefix}/`) || url.pathname === php.prefix) {
      void php(req, res)
    } else if (url.pathname.startsWith(`${harp.prefix}/`) || url.pathname === harp.prefix) {
      void harp(req, res)
    } else if (req.method === 'GET' && url.pathname.startsWith(embeddedPrefix)) {
      embedded(req, res, url)
    } else if (req.method === 'GET' && url.pathname === '/index.php/login') {
      loginForm(req, res, url)
    } else if (req.method === 'POST' && url.pathname === '/index.php/login') {
      void tryLogin(req, res).catch(() => {
        res.writeHead(500)
        res.end()
      })
    } else {
      void toNextcloud(req, res).catch(() => {
        if (!res.headersSent) {
          res.writeHead(502)
        }
        res.end()
      })
    }
  })
  const origin = await listenOn(server, opts.port)
  return {
    origin,
    phpUrl: `${origin}${php.prefix}`,
    harpUrl: `${origin}${harp.prefix}`,
    loginUrl: (redirectUrl) =>
      `${origin}/index.php/login${redirectUrl === undefined ? '' : `?${new URLSearchParams({ redirect_url: redirectUrl })}`}`,
    embeddedUrl: (name, theme = 'light') =>
      `${origin}${embeddedPrefix}${encodeURIComponent(name)}${theme === 'dark' ? '?theme=dark' : ''}`,
    close: () => closeServer(server),
  }
}
