import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { BrowserContext, Frame, FrameLocator, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aGroup, aUser } from './builders.js'
import { launchChromium, type RunningBrowser } from './chromium.js'
import { startTestExApp, type TestExApp, uniqueRealm } from './exapp-harness.js'
import { freePort } from './net.js'
import { type NextcloudFront, startNextcloudFront } from './nextcloud-front.js'
import { requestPath, routesFromInfoXml } from './php-proxy.js'
import { type ProxiedKeycloak, startProxiedKeycloak } from './proxied-keycloak.js'
import { type RelyingParty, registerRelyingParty, startRelyingParty } from './relying-party.js'

/**
 * The status page and the Keycloak admin console in a real browser (Debian's chromium), opened
 * from the top-menu entry on Nextcloud's embedded page, through AppAPI's PHP proxy and through
 * HaRP. Each side runs the whole ExApp (installed through the fake AppAPI) against one Keycloak
 * that takes its public URL from the proxy headers. Screenshots go to .test-artifacts/browser/.
 */
const ROOT = resolve(import.meta.dirname, '..')
const ARTIFACTS = join(ROOT, '.test-artifacts', 'browser')
const KC_PORT = 28880
const APP_ID = 'keycloak'
const USERS = { admin: { admin: true }, alice: { admin: false } }
/** Nextcloud passwords of the stand-in's login form */
const PASSWORDS = { admin: 'admin-nextcloud-password', alice: 'alice-nextcloud-password' }
const NEW_USERS = ['carol', 'dave', 'erin']
/**
 * BROWSER_TEST_FIXED_HOSTNAME=1 runs the production setting instead: Keycloak's `hostname` fixed
 * to the PHP proxy's public URL (on a fixed port), through the PHP proxy only.
 */
const FIXED = process.env.BROWSER_TEST_FIXED_HOSTNAME === '1'
const FIXED_FRONT_PORT = 28882
const PHP_PREFIX = `/index.php/apps/app_api/proxy/${APP_ID}`
const SIDES = FIXED ? (['php'] as const) : (['php', 'harp'] as const)

interface Side {
  name: 'php' | 'harp'
  front: NextcloudFront
  t: TestExApp
  publicUrl: string
  /** what Nextcloud answers a non-admin on admin-only paths */
  denied: number
  /** an app of the synced realm, signing its users in with the realm's login */
  rp: RelyingParty
}

/** Console errors, uncaught exceptions and policy violations of a page, to assert none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      problems.push(`console: ${msg.text()}`)
    }
  })
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
  page.on('response', (res) => {
    if (res.status() >= 400) {
      problems.push(`${res.status()} ${res.request().method()} ${res.url()}`)
    }
  })
  return problems
}

interface SeenDocument {
  url: string
  status: number
  /** a password field or Keycloak's login form in the page */
  password: boolean
}

/** Every page the main frame loaded, in order, and whether it asked for a password. */
function watchDocuments(page: Page): () => Promise<SeenDocument[]> {
  const seen: Promise<SeenDocument>[] = []
  page.on('response', (res) => {
    const req = res.request()
    if (req.resourceType() !== 'document' || req.frame() !== page.mainFrame()) {
      return
    }
    const url = res.url()
    const status = res.status()
    seen.push(
      res.text().then(
        (body) => ({
          url,
          status,
          password: /type=["']?password/i.test(body) || body.includes('kc-form-login'),
        }),
        // a redirect has no body to read
        () => ({ url, status, password: false }),
      ),
    )
  })
  return () => Promise.all(seen)
}

function relativeLuminance(rgb: string): number {
  const [r = 0, g = 0, b = 0] = (rgb.match(/\d+(\.\d+)?/g) ?? []).map(Number).map((v) => {
    const c = v / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  })
  return 0.2126 * r + 0.7152 * g + 0.0722 * b
}

describe('status page and console in a browser, through the Nextcloud proxies', () => {
  let keycloak: ProxiedKeycloak
  let chromium: RunningBrowser
  const sides: Side[] = []
  const started = Date.now()

  beforeAll(async () => {
    const executable = process.env.TEST_CHROMIUM_PATH
    if (!executable) {
      throw new Error('TEST_CHROMIUM_PATH unset: run with vitest.int.config.ts')
    }
    await mkdir(ARTIFACTS, { recursive: true })
    keycloak = await startProxiedKeycloak({
      port: KC_PORT,
      ...(FIXED ? { hostname: `http://127.0.0.1:${FIXED_FRONT_PORT}${PHP_PREFIX}` } : {}),
    })
    chromium = await launchChromium(executable)
    const routes = routesFromInfoXml(join(ROOT, 'appinfo', 'info.xml'))
    for (const [name, prefix, denied] of [
      ['php', PHP_PREFIX, 404],
      ['harp', `/exapps/${APP_ID}`, 403],
    ] as const) {
      if (!(SIDES as readonly string[]).includes(name)) {
        continue
      }
      // The front's address goes into the ExApp's config (Keycloak's public URL) before it runs.
      const port = FIXED ? FIXED_FRONT_PORT : await freePort()
      const origin = `http://127.0.0.1:${port}`
      const publicUrl = `${origin}${prefix}`
      const t = await startTestExApp({
        keycloak: { url: keycloak.url, admin: keycloak.admin, password: keycloak.password },
        realm: uniqueRealm(`browser-${name}`),
        // Nextcloud is the front's origin, as for a real one: its API (forwarded to the fake),
        // its login page, and the app's public prefix on that side.
        env: { APP_ID, KC_HOSTNAME: publicUrl, NEXTCLOUD_URL: origin },
        configure: (config) => {
          config.app.publicUrl = publicUrl
        },
        directory: {
          users: [
            aUser({ id: 'admin', groups: ['admin'] }),
            aUser({ id: 'alice', groups: ['staff'] }),
          ],
          groups: [aGroup({ id: 'admin' }), aGroup({ id: 'staff' })],
        },
      })
      const front = await startNextcloudFront({
        port,
        target: t.exapp.url,
        appId: APP_ID,
        appSecret: t.exapp.config.app.secret,
        appVersion: t.exapp.config.app.version,
        routes,
        users: USERS,
        passwords: PASSWORDS,
        ui: () => t.nc.ui(APP_ID),
        nextcloud: () => t.nc.url,
      })
      const rp = await startRelyingParty({ issuer: `${publicUrl}/realms/${t.realm}` })
      sides.push({ name, front, t, publicUrl, denied, rp })
      const installed = await t.nc.install(APP_ID, { timeoutMs: 180_000 })
      expect(installed).toMatchObject({ init: 100, error: '', enabled: true })
      await registerRelyingParty(t.admin, t.realm, rp)
    }
    console.log(`browser test setup in ${Math.round((Date.now() - started) / 1000)} s`)
  })

  afterAll(async () => {
    await chromium?.close()
    for (const s of sides) {
      await s.rp.close()
      await s.front.close()
      await s.t.close()
    }
    await keycloak?.stop()
    console.log(`browser test total ${Math.round((Date.now() - started) / 1000)} s`)
  })

  const side = (name: Side['name']) => sides.find((s) => s.name === name) as Side

  async function asUser(
    uid: string,
    s: Side,
    opts: Parameters<RunningBrowser['browser']['newContext']>[0] = {},
  ): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
    const context = await chromium.browser.newContext({
      viewport: { width: 1280, height: 900 },
      ...opts,
    })
    await context.addCookies([{ name: 'nc_session_id', value: uid, url: s.front.origin }])
    const page = await context.newPage()
    return { context, page, problems: watchProblems(page) }
  }

  /** Opens the top-menu entry's page and waits for the framed status page to show Keycloak. */
  async function openFromTopMenu(page: Page, s: Side, theme?: 'dark'): Promise<FrameLocator> {
    const res = await page.goto(s.front.embeddedUrl('keycloak', theme))
    expect(res?.status()).toBe(200)
    const frame = page.frameLocator('#keycloak-exapp-frame')
    await frame.locator('#kc-state[data-state="ready"]').waitFor({ timeout: 30_000 })
    return frame
  }

  async function appFrame(page: Page): Promise<Frame> {
    const frame = await (await page.$('#keycloak-exapp-frame'))?.contentFrame()
    if (!frame) {
      throw new Error('the app frame is missing')
    }
    return frame
  }

  describe.each(SIDES)('through the %s proxy', (name) => {
    it('lets an admin dry-run and run a sync from the page and see its counts', async () => {
      const s = side(name)
      const { context, page, problems } = await asUser('admin', s)
      try {
        const frame = await openFromTopMenu(page, s)
        expect(await frame.locator('#kc-state').textContent()).toBe('ready')

        // Nextcloud changed since the install's sync.
        for (const uid of NEW_USERS) {
          s.t.nc.addUser(aUser({ id: uid, groups: ['staff'] }))
        }

        await frame.locator('#dry-run').click()
        const dry = frame.locator('#dry-run-result')
        await dry.locator('[data-count="create-user"]').waitFor({ timeout: 30_000 })
        expect(await dry.locator('[data-count="create-user"]').textContent()).toBe('3')
        expect(await dry.locator('[data-count="add-member"]').textContent()).toBe('3')
        // The words come from the server's vocabulary (GET /api/ui/vocabulary).
        expect(await dry.locator('.count:has([data-count="create-user"]) dt').textContent()).toBe(
          'Users created',
        )
        const planned = await dry.locator('li[data-change-kind="create-user"]').allTextContents()
        for (const uid of NEW_USERS) {
          expect(
            planned.some((line) => line.includes(uid)),
            uid,
          ).toBe(true)
        }
        // A dry run writes nothing.
        expect(
          await s.t.admin.users.find({ realm: s.t.realm, username: 'carol', exact: true }),
        ).toEqual([])

        // A slow Nextcloud keeps the run in its reading phase long enough to watch it.
        s.t.nc.delayNext(/users\/details/, { ms: 2500 })
        await frame.locator('#sync-now').click()
        await frame.locator('#sync-progress:not([hidden])').waitFor({ timeout: 10_000 })
        expect(await frame.locator('#sync-now').isDisabled()).toBe(true)
        const result = frame.locator('#sync-result[data-status="succeeded"]')
        await result.waitFor({ timeout: 60_000 })
        expect(await frame.locator('#sync-progress').isHidden()).toBe(true)
        expect(await result.locator('[data-count="create-user"]').textContent()).toBe('3')
        expect(await result.locator('[data-count="add-member"]').textContent()).toBe('3')
        const runId = await result.getAttribute('data-run-id')
        expect(Number(runId)).toBeGreaterThan(0)
        // Screen readers hear the steps and the end, not every tick of the counter.
        expect(await frame.locator('#sync-announce[aria-live="polite"]').textContent()).toMatch(
          new RegExp(`^Run #${runId} finished: `),
        )
        for (const uid of NEW_USERS) {
          const [user] = await s.t.admin.users.find({
            realm: s.t.realm,
            username: uid,
            exact: true,
          })
          expect(user?.attributes?.nextcloud_uid).toEqual([uid])
        }

        // "Sync now" is the status page's trigger, in the server's words.
        expect(
          await frame.locator(`#runs tr[data-run-id="${runId}"] td`).nth(2).textContent(),
        ).toBe('Status page')
        // The run's changelog, from the list of runs.
        await frame.locator(`#runs tr[data-run-id="${runId}"] button`).first().click()
        const detail = frame.locator(`#run-detail[data-run-id="${runId}"]`)
        await detail.waitFor()
        const created = await detail.locator('li[data-change-kind="create-user"]').allTextContents()
        expect(created.filter((line) => NEW_USERS.some((uid) => line.includes(uid)))).toHaveLength(
          3,
        )
        const joined = await detail.locator('li[data-change-kind="add-member"]').allTextContents()
        expect(joined.every((line) => line.includes('staff'))).toBe(true)

        // Secrets stay hidden until asked for.
        const secret = s.t.exapp.config.consumers[0]?.secret as string
        expect(await page.content()).not.toContain(secret)
        expect(await frame.locator('body').textContent()).not.toContain(keycloak.password)
        await frame.locator('#reveal-credentials').click()
        await frame.locator('[data-consumer="default"] .secret').waitFor()
        expect(await frame.locator('[data-consumer="default"] .secret').textContent()).toBe(secret)
        // The console has no shared password: revealing shows none.
        expect(await frame.locator('body').textContent()).not.toContain(keycloak.password)

        await page.screenshot({ path: join(ARTIFACTS, `${name}-status.png`), fullPage: true })
        expect(problems).toEqual([])
        // The whole page at once (inside Nextcloud it scrolls within its frame).
        await page.goto(`${s.publicUrl}/app/`)
        await page.locator('#kc-state[data-state="ready"]').waitFor()
        await page.screenshot({ path: join(ARTIFACTS, `${name}-status-full.png`), fullPage: true })
      } finally {
        await context.close()
      }
    })

    it('follows a dark Nextcloud theme and fits a 360 px screen', async () => {
      const s = side(name)
      for (const theme of ['dark', 'light'] as const) {
        const { context, page, problems } = await asUser('admin', s, {
          viewport: { width: 360, height: 740 },
          colorScheme: 'light',
        })
        try {
          await openFromTopMenu(page, s, theme === 'dark' ? 'dark' : undefined)
          const frame = await appFrame(page)
          const look = await frame.evaluate(() => ({
            theme: document.documentElement.dataset.theme,
            background: getComputedStyle(document.body).backgroundColor,
            color: getComputedStyle(document.body).color,
            overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          }))
          expect(look.theme).toBe(theme)
          const bg = relativeLuminance(look.background)
          const fg = relativeLuminance(look.color)
          expect(theme === 'dark' ? bg < 0.05 : bg > 0.8, look.background).toBe(true)
          // WCAG contrast of body text on the background: at least 4.5:1.
          expect((Math.max(bg, fg) + 0.05) / (Math.min(bg, fg) + 0.05)).toBeGreaterThan(4.5)
          expect(look.overflow, 'horizontal scrolling at 360 px').toBeLessThanOrEqual(0)
          await page.screenshot({
            path: join(ARTIFACTS, `${name}-status-${theme}-360.png`),
            fullPage: true,
          })
          expect(problems).toEqual([])
        } finally {
          await context.close()
        }
      }
    })

    it('opens the console from the page; an admin logs in and finds a synced user', async () => {
      const s = side(name)
      const { context, page, problems } = await asUser('admin', s)
      page.on('requestfailed', (req) => problems.push(`failed ${req.method()} ${req.url()}`))
      const statusFrames: string[] = []
      const methods = new Map<string, number>()
      page.on('request', (req) => {
        methods.set(req.method(), (methods.get(req.method()) ?? 0) + 1)
        if (req.url().includes('login-status-iframe')) {
          statusFrames.push(req.url())
        }
      })
      try {
        await loginAndFindUser(page, s, statusFrames)
        // Nothing the console asked for was refused or failed on the way.
        expect(problems).toEqual([])
        console.log(`console through ${name}: requests by method`, Object.fromEntries(methods))
      } catch (err) {
        await page.screenshot({ path: join(ARTIFACTS, `${name}-console-failure.png`) })
        throw new Error(`${String(err)}\nwhat the page saw:\n${problems.join('\n')}`)
      } finally {
        await context.close()
      }
    })

    async function loginAndFindUser(page: Page, s: Side, statusFrames: string[]) {
      const frame = await openFromTopMenu(page, s)
      const href = await frame.locator('a#open-console').getAttribute('href')
      expect(href).toBe(`${s.publicUrl}/admin/master/console/`)
      await frame.locator('a#open-console').click()
      await frame.locator('#username').waitFor({ timeout: 60_000 })
      expect((await appFrame(page)).url()).toContain(
        `${s.publicUrl}/realms/master/protocol/openid-connect/auth`,
      )
      await frame.locator('#username').fill(keycloak.admin)
      await frame.locator('#password').fill(keycloak.password)
      await frame.locator('#kc-login').click()
      await page.waitForFunction(
        (prefix) => {
          const el = document.getElementById('keycloak-exapp-frame') as HTMLIFrameElement | null
          return el?.contentWindow?.location.href.startsWith(`${prefix}/admin/master/console/`)
        },
        s.publicUrl,
        { timeout: 60_000 },
      )
      // As an admin would: the realm list, the synced realm, its users; search for a synced one.
      await frame.getByRole('link', { name: 'Manage realms' }).click()
      await frame.getByRole('link', { name: s.t.realm, exact: true }).click()
      await frame.getByRole('link', { name: 'Users', exact: true }).click()
      const search = frame.getByPlaceholder(/search user/i).first()
      await search.waitFor({ timeout: 30_000 })
      await search.fill('alice')
      await search.press('Enter')
      await frame.getByRole('link', { name: 'alice', exact: true }).waitFor({ timeout: 30_000 })
      expect((await appFrame(page)).url()).toBe(
        `${s.publicUrl}/admin/master/console/#/${s.t.realm}/users`,
      )
      await page.screenshot({ path: join(ARTIFACTS, `${s.name}-console-users.png`) })

      // keycloak-js checks the session through its status iframe; with Keycloak's cookies kept
      // server-side that must settle, not loop.
      const seen = statusFrames.length
      await page.waitForTimeout(6000)
      expect(statusFrames.length - seen).toBeLessThanOrEqual(1)
      expect((await appFrame(page)).url()).toContain('/admin/master/console/')
    }

    it('signs a Nextcloud user in to an app of the realm through Nextcloud, no form shown', async () => {
      const s = side(name)
      const { context, page, problems } = await asUser('alice', s)
      const documents = watchDocuments(page)
      try {
        expect((await page.goto(s.rp.loginUrl))?.ok()).toBe(true)
        await page.locator('#signed-in').waitFor({ timeout: 60_000 })
        expect(await page.locator('#username').textContent()).toBe('alice')
        expect(page.url().startsWith(`${s.rp.redirectUri}?`)).toBe(true)
        await page.screenshot({ path: join(ARTIFACTS, `sso-${name}-signed-in.png`) })
        expect(s.rp.failures).toEqual([])
        expect(s.rp.landings.at(-1)).toMatchObject({
          preferredUsername: 'alice',
          claims: { iss: `${s.publicUrl}/realms/${s.t.realm}`, aud: s.rp.clientId },
        })
        // The way: the realm, the app's provider through this proxy, the realm's broker, back.
        const seen = await documents()
        const path = new URL(s.publicUrl).pathname
        const at = (part: string) => seen.findIndex((d) => d.url.includes(part))
        expect(at(`${path}/realms/${s.t.realm}/protocol/openid-connect/auth`)).toBeGreaterThan(-1)
        expect(at(`${path}/oidc/authorize`)).toBeGreaterThan(
          at(`${path}/realms/${s.t.realm}/protocol/openid-connect/auth`),
        )
        expect(at(`${path}/realms/${s.t.realm}/broker/nextcloud/endpoint`)).toBeGreaterThan(
          at(`${path}/oidc/authorize`),
        )
        // No page on the way had a password field: neither Keycloak's form nor Nextcloud's.
        expect(seen.filter((d) => d.password).map((d) => d.url)).toEqual([])
        expect(seen.some((d) => d.url.includes('/index.php/login'))).toBe(false)
        expect(problems).toEqual([])
      } finally {
        await context.close()
      }
    })

    it('without a Nextcloud session, Nextcloud’s login comes first, then the same landing', async () => {
      const s = side(name)
      const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } })
      const page = await context.newPage()
      const problems = watchProblems(page)
      const documents = watchDocuments(page)
      try {
        await page.goto(s.rp.loginUrl)
        await page.locator('form[name="login"] #password').waitFor({ timeout: 60_000 })
        const login = new URL(page.url())
        expect(login.origin).toBe(s.front.origin)
        expect(login.pathname).toBe('/index.php/login')
        const back = login.searchParams.get('redirect_url') ?? ''
        expect(back.startsWith(`${new URL(s.publicUrl).pathname}/oidc/authorize?`), back).toBe(true)
        await page.screenshot({ path: join(ARTIFACTS, `sso-${name}-nextcloud-login.png`) })
        await page.locator('#user').fill('admin')
        await page.locator('#password').fill(PASSWORDS.admin)
        await page.locator('#submit-form').click()
        await page.locator('#signed-in').waitFor({ timeout: 60_000 })
        expect(await page.locator('#username').textContent()).toBe('admin')
        await page.screenshot({ path: join(ARTIFACTS, `sso-${name}-signed-in-after-login.png`) })
        expect(s.rp.failures).toEqual([])
        expect(s.rp.landings.at(-1)?.preferredUsername).toBe('admin')
        // The one password field was Nextcloud's login; Keycloak showed no form.
        const seen = await documents()
        expect(seen.filter((d) => d.password).map((d) => new URL(d.url).pathname)).toEqual([
          '/index.php/login',
        ])
        expect(problems).toEqual([])
      } catch (err) {
        await page.screenshot({ path: join(ARTIFACTS, `sso-${name}-login-failure.png`) })
        const way = (await documents()).map((d) => `${d.status} ${d.url}`)
        throw new Error(
          `${String(err)}\nat ${page.url()}: ${(await page.locator('body').textContent())?.slice(0, 300)}\nthe way:\n${way.join('\n')}\nthe relying party: ${s.rp.failures.join('; ')}\nwhat the page saw:\n${problems.join('\n')}`,
        )
      } finally {
        await context.close()
      }
    })

    it('gives a non-admin neither the page, its API, nor the console', async () => {
      const s = side(name)
      const { context, page } = await asUser('alice', s)
      try {
        // Nextcloud hides an admin-only entry's page from others.
        expect((await page.goto(s.front.embeddedUrl('keycloak')))?.status()).toBe(404)
        for (const path of ['/app/', '/app/status.js', '/admin/master/console/']) {
          expect((await page.request.get(`${s.publicUrl}${path}`)).status(), path).toBe(s.denied)
        }
        const overview = await page.request.get(`${s.publicUrl}/api/ui/overview`)
        expect(overview.status()).toBe(s.denied)
        const reveal = await page.request.post(`${s.publicUrl}/api/ui/credentials`)
        expect(reveal.status()).toBe(s.denied)
        expect(await reveal.text()).not.toContain(keycloak.password)
        const sync = await page.request.post(`${s.publicUrl}/api/sync-all?background=1`)
        expect(sync.status()).toBe(s.denied)
      } finally {
        await context.close()
      }
    })

    it('answers traversal, oversized headers and odd methods on the page files with 4xx', async () => {
      const s = side(name)
      const { origin } = s.front
      const prefix = new URL(s.publicUrl).pathname
      const raw = (path: string, method = 'GET', headers: Record<string, string> = {}) =>
        requestPath(origin, path, method, { cookie: 'nc_session_id=admin', ...headers })
      const attempts: Record<string, { status: number; body: string }> = {
        encodedSlashes: await raw(`${prefix}/app/..%2f..%2fsecrets.json`),
        encodedDots: await raw(`${prefix}/app/%2e%2e/%2e%2e/state.json`),
        dotsAfterFile: await raw(`${prefix}/app/status.js/../../../../etc/passwd`),
        backslashes: await raw(`${prefix}/app/..%5c..%5csecrets.json`),
        nul: await raw(`${prefix}/app/status.js%00.html`),
        unknownFile: await raw(`${prefix}/app/package.json`),
        bigHeader: await raw(`${prefix}/app/status.js`, 'GET', { 'x-big': 'a'.repeat(40_000) }),
        propfind: await raw(`${prefix}/app/status.js`, 'PROPFIND'),
        deleteFile: await raw(`${prefix}/app/status.js`, 'DELETE'),
      }
      const secrets = [s.t.exapp.config.app.secret, s.t.exapp.config.encryptionKey, 'root:x:0:0']
      for (const [what, { status, body }] of Object.entries(attempts)) {
        expect(status >= 400 && status < 500, `${what}: ${status}`).toBe(true)
        for (const secret of secrets) {
          expect(body.includes(secret), what).toBe(false)
        }
      }
    })
  })
})
