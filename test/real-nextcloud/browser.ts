import type { BrowserContext, Frame, Page } from 'playwright-core'

export interface Watched {
  /** what the app or Keycloak did wrong */
  problems: string[]
  /** errors of Nextcloud's own scripts, left out of `problems` */
  nextcloudErrors: string[]
}

/**
 * Everything a page did wrong: console errors, uncaught exceptions, failed requests and answers of
 * 400 and above, one line each. The test tarball lacks Nextcloud's shared web bundle, so its own
 * page scripts throw ("OC is not defined"): an uncaught error whose stack names scripts, none of
 * them under `appPath` (the app's proxy prefix), is Nextcloud's and kept apart.
 */
export function watchProblems(page: Page, appPath: string): Watched {
  const problems: string[] = []
  const nextcloudErrors: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      problems.push(`console: ${msg.text()} (${msg.location().url})`)
    }
  })
  page.on('pageerror', (err) => {
    const scripts = (err.stack ?? '').match(/https?:\/\/[^\s)]+/g) ?? []
    const nextcloudOwn = scripts.length > 0 && scripts.every((url) => !url.includes(appPath))
    ;(nextcloudOwn ? nextcloudErrors : problems).push(
      `pageerror: ${err.message} (${scripts[0] ?? 'no stack'})`,
    )
  })
  page.on('requestfailed', (req) =>
    problems.push(`failed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ''}`),
  )
  page.on('response', (res) => {
    if (res.status() >= 400) {
      problems.push(`${res.status()} ${res.request().method()} ${res.url()}`)
    }
  })
  return { problems, nextcloudErrors }
}

/**
 * Logs in to Nextcloud as its login form does (the web UI's scripts are not in the test
 * tarball): a CSRF token, then the form POST with an Origin header; the session cookies stay in
 * `context`. Answers where Nextcloud sends the browser next (`redirectUrl` made absolute).
 */
export async function loginToNextcloud(
  context: BrowserContext,
  url: string,
  user: { uid: string; password: string },
  redirectUrl?: string,
): Promise<string> {
  const csrf = await context.request.get(`${url}/index.php/csrftoken`)
  if (!csrf.ok()) {
    throw new Error(`GET /index.php/csrftoken: HTTP ${csrf.status()}`)
  }
  const { token } = (await csrf.json()) as { token: string }
  const res = await context.request.post(`${url}/index.php/login`, {
    form: {
      user: user.uid,
      password: user.password,
      requesttoken: token,
      timezone: 'UTC',
      timezone_offset: '0',
      // the login page's hidden field when it was opened with ?redirect_url=
      ...(redirectUrl === undefined ? {} : { redirect_url: redirectUrl }),
    },
    headers: { Origin: url },
    maxRedirects: 0,
  })
  const location = res.headers().location ?? ''
  // a failed login goes back to the login page; the way on may carry "login" in its query
  if (res.status() !== 303 || /\/login(\/|$)/.test(new URL(location, url).pathname)) {
    throw new Error(`Nextcloud login as ${user.uid}: HTTP ${res.status()} to ${location}`)
  }
  return location
}

/**
 * Adds to `forms` the address of every page `page` loads that asks for a password (a password
 * field, or Keycloak's login form).
 */
export function watchForms(page: Page, forms: string[]): void {
  page.on('response', (res) => {
    if (res.request().resourceType() === 'document') {
      void res.text().then(
        (body) => {
          if (/type=["']?password/i.test(body) || body.includes('kc-form-login')) {
            forms.push(res.url())
          }
        },
        // a redirect has no body to read
        () => undefined,
      )
    }
  })
}

/** The status page's frame inside Nextcloud's embedded page. */
export async function appFrame(page: Page): Promise<Frame> {
  const frame = await (await page.$('#keycloak-exapp-frame'))?.contentFrame()
  if (!frame) {
    throw new Error('the app frame is missing')
  }
  return frame
}
