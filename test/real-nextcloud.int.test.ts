import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminClient, clientLogin, type KcAdmin } from '../src/keycloak/admin.js'
import { CONSOLE_ATTRIBUTE } from '../src/sync/console-plan.js'
import { TOP_MENU } from '../src/ui/top-menu.js'
import { launchChromium, type RunningBrowser } from './chromium.js'
import { verifiedClaims } from './jwt.js'
import { freePort } from './net.js'
import { appFrame, loginToNextcloud, watchForms, watchProblems } from './real-nextcloud/browser.js'
import { type AppSecrets, ExAppProcess } from './real-nextcloud/exapp-process.js'
import { differences, keycloakSide, nextcloudSide } from './real-nextcloud/mirror.js'
import {
  type BasicUser,
  nextcloudStartScript,
  RealNextcloud,
  type WebServer,
} from './real-nextcloud/nextcloud.js'
import { localise, readmeRecipe } from './real-nextcloud/recipe.js'
import { describeRun, type RunResult, runBash } from './real-nextcloud/shell.js'
import { type RelyingParty, registerRelyingParty, startRelyingParty } from './relying-party.js'

/**
 * The ExApp against a real Nextcloud 31.0.2 with AppAPI 5.0.2 (installed and served by the start
 * script beside the repository, or NEXTCLOUD_START), on Apache + mod_php and then on nginx +
 * php-fpm, one installation for both. The app runs as a real process, registered through a
 * manual-install daemon with the README's own commands; every request a user makes goes through
 * AppAPI's PHP proxy. Outside CI, without the start script, the suite is skipped and says why;
 * under CI=true that fails the run. Logs and screenshots go to .test-artifacts/real-nextcloud/.
 */
const ROOT = resolve(import.meta.dirname, '..')
const ARTIFACTS = join(ROOT, '.test-artifacts', 'real-nextcloud')
const STORAGE = join(ARTIFACTS, 'storage')
const APP_ID = 'keycloak'
const REALM = 'commonground'
const CLIENT = 'opentalk'
// Below Linux's ephemeral range (32768-60999): a port in it can be the local end of any outgoing
// connection of the run, and Apache then fails to bind it (seen once: "Address already in use" on
// 38190 with nothing listening there).
const NC_PORT = Number(process.env.TEST_NEXTCLOUD_PORT ?? 28190)
const APP_PORT = Number(process.env.TEST_EXAPP_PORT ?? 28123)
const SERVERS: WebServer[] = ['apache', 'nginx']
const PROXY = `/index.php/apps/app_api/proxy/${APP_ID}`

const START = nextcloudStartScript(ROOT)
const SKIP = !START.found && process.env.CI !== 'true'
if (SKIP) {
  console.warn(
    `real-Nextcloud suite skipped: no Nextcloud start script at ${START.path} (set NEXTCLOUD_START to one; with CI=true its absence fails the run)`,
  )
}

interface SeedUser {
  uid: string
  displayName: string
  email?: string
  groups: string[]
  disabled?: boolean
}

const GROUPS = [
  { gid: 'staff', displayName: 'Staff' },
  { gid: 'sales', displayName: 'Sales & Marketing' },
  { gid: 'nobody-yet', displayName: 'Nobody yet' },
]

/** uids with a space, an apostrophe, an "@", upper case; one- and two-word names; no email. */
const USERS: SeedUser[] = [
  { uid: 'john doe', displayName: 'John Doe', email: 'John.Doe@Example.org', groups: ['staff'] },
  {
    uid: "o'brien",
    displayName: "Conan O'Brien",
    email: 'obrien@example.org',
    groups: ['staff', 'sales'],
  },
  { uid: 'a.b@example.org', displayName: 'Ada', email: 'a.b@example.org', groups: ['sales'] },
  {
    uid: 'MaxMustermann',
    displayName: 'Max Mustermann',
    email: 'max@example.org',
    groups: ['staff'],
  },
  { uid: 'noemail', displayName: 'Nomail Person', groups: [] },
  {
    uid: 'disabled-user',
    displayName: 'Dee Sabled',
    email: 'dee@example.org',
    groups: ['staff'],
    disabled: true,
  },
  { uid: 'alice', displayName: 'Alice Liddell', email: 'alice@example.org', groups: ['staff'] },
  { uid: 'bob', displayName: 'Bob Builder', email: 'bob@example.org', groups: ['sales'] },
  { uid: 'carol', displayName: 'Carol Danvers', email: 'carol@example.org', groups: [] },
]

/**
 * What each server's round changes in Nextcloud (names, emails, enabled state, memberships, a
 * group, a user), and the user it deletes.
 */
const ROUNDS: Record<WebServer, { occ: string[][]; deleted: string }> = {
  apache: {
    occ: [
      ['user:setting', 'john doe', 'settings', 'display_name', 'Johnny B. Doe'],
      ['user:setting', 'MaxMustermann', 'settings', 'email', 'Max.Mustermann@example.org'],
      ['user:disable', 'alice'],
      ['group:removeuser', 'sales', "o'brien"],
      ['group:adduser', 'staff', 'noemail'],
      ['user:delete', 'bob'],
    ],
    deleted: 'bob',
  },
  nginx: {
    occ: [
      ['user:setting', "o'brien", 'settings', 'display_name', 'Conan'],
      ['user:enable', 'alice'],
      ['group:adduser', 'sales', 'MaxMustermann'],
      ['group:removeuser', 'staff', 'john doe'],
      ['group:delete', 'nobody-yet'],
      ['user:delete', 'carol'],
    ],
    deleted: 'carol',
  },
}

const passwords = new Map<string, string>()
const userFor = (uid: string): BasicUser => ({ uid, password: passwords.get(uid) ?? '' })

describe.skipIf(SKIP)('the ExApp in a real Nextcloud (AppAPI 5.0.2)', () => {
  const started = Date.now()
  let nc: RealNextcloud
  let app: ExAppProcess
  let secrets: AppSecrets
  let admin: KcAdmin
  let chromium: RunningBrowser | undefined
  let rp: RelyingParty | undefined
  const appEnv: Record<string, string> = {}
  const results: string[] = []

  beforeAll(async () => {
    if (!START.found) {
      throw new Error(
        `no Nextcloud start script at ${START.path}: CI=true needs it (or NEXTCLOUD_START)`,
      )
    }
    app = new ExAppProcess({
      root: ROOT,
      storage: STORAGE,
      port: APP_PORT,
      keycloakPort: await freePort(),
      logFile: join(ARTIFACTS, 'exapp.log'),
      pidFile: join(ARTIFACTS, 'exapp.pid'),
    })
    await app.stopLeftover()
    await rm(ARTIFACTS, { recursive: true, force: true })
    await mkdir(ARTIFACTS, { recursive: true })
    nc = new RealNextcloud(START.path, NC_PORT, join(ARTIFACTS, 'start-script.log'))
    await nc.install()
    passwords.set('admin', nc.adminPassword)
    // Every request here comes from 127.0.0.1: Nextcloud's own throttling would slow the whole run.
    await nc.occ([
      'config:system:set',
      'auth.bruteforce.protection.enabled',
      '--type=boolean',
      '--value=false',
    ])
    // The Teams app (circles) answers every user and group change with HTTP calls to itself that
    // write to sqlite while the next occ does: "database is locked". Nothing here uses it.
    await nc.occ(['app:disable', 'circles'])
    for (const g of GROUPS) {
      await nc.occ(['group:add', '--display-name', g.displayName, g.gid])
    }
    for (const u of USERS) {
      const password = `Pw-${randomBytes(12).toString('base64url')}`
      passwords.set(u.uid, password)
      await nc.occ(
        [
          'user:add',
          '--password-from-env',
          '--display-name',
          u.displayName,
          ...(u.email ? ['--email', u.email] : []),
          ...u.groups.flatMap((g) => ['--group', g]),
          u.uid,
        ],
        { OC_PASS: password },
      )
      if (u.disabled) {
        await nc.occ(['user:disable', u.uid])
      }
    }

    Object.assign(appEnv, {
      APP_PERSISTENT_STORAGE: STORAGE,
      APP_PORT: String(APP_PORT),
      KEYCLOAK_HTTP_PORT: String(app.opts.keycloakPort),
      KEYCLOAK_MANAGEMENT_PORT: String(await freePort()),
      KEYCLOAK_CACHE_DIR: join(ROOT, '.keycloak'),
      ...(process.env.TEST_JAVA_HOME ? { JAVA_HOME: process.env.TEST_JAVA_HOME } : {}),
      // runs only when asked for, so the counts a check reads are its own
      SYNC_INTERVAL: '0',
      LOG_LEVEL: 'info',
      NODE_ENV: 'production',
    })
    console.log(`real Nextcloud: installed and seeded in ${seconds(started)} s`)
  })

  afterAll(async () => {
    await chromium?.close()
    await rp?.close()
    await app?.stop()
    await nc?.stop()
    await nc?.keepLogs(join(ARTIFACTS, 'nextcloud'))
    console.log(
      `real Nextcloud: ${seconds(started)} s in all\n${results.map((r) => `  ${r}`).join('\n')}`,
    )
  })

  /** The README's commands, localised: occ through the start script, the real URL and host. */
  async function recipe() {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    return readmeRecipe(readme).map((c) =>
      localise(c, { occ: nc.occPrefix, nextcloudUrl: nc.url, host: '127.0.0.1' }),
    )
  }

  function bash(command: string, timeoutMs = 300_000): Promise<RunResult> {
    return runBash(command, {
      cwd: ROOT,
      env: { ...nc.env(), ...appEnv },
      timeoutMs,
      logFile: join(ARTIFACTS, 'commands.log'),
    })
  }

  /** Waits until AppAPI records init 100 (or an init error) for the app. */
  async function initDone(timeoutMs = 240_000) {
    const deadline = Date.now() + timeoutMs
    let status = await nc.appStatus(APP_ID)
    while (status?.init !== 100 && !status?.error && Date.now() < deadline) {
      await sleep(1000)
      status = await nc.appStatus(APP_ID)
    }
    return status
  }

  /** What AppAPI logged at warning level or above since `mark`. */
  async function appApiComplaints(mark: number): Promise<string[]> {
    return (await nc.logSince(mark))
      .filter((e) => e.app === 'app_api' && e.level >= 2)
      .map((e) => `${e.level}: ${e.message}`)
  }

  async function connectKeycloak() {
    secrets = await app.secrets()
    // The app removed the bundled Keycloak's temporary admin: check the realm as its service account.
    admin = adminClient(
      app.keycloakUrl,
      REALM,
      clientLogin(
        app.keycloakUrl,
        `keycloak-exapp-${REALM}`,
        secrets.KEYCLOAK_ADMIN_CLIENT_SECRET,
        'KEYCLOAK_ADMIN_CLIENT_SECRET',
      ),
    )
  }

  /** A request through AppAPI's PHP proxy, as `as` (default the admin) with Basic auth. */
  function proxied(path: string, init: RequestInit & { as?: BasicUser } = {}) {
    return nc.fetch(`${PROXY}${path}`, init)
  }

  async function syncAll() {
    const res = await proxied('/api/sync-all', { method: 'POST' })
    const text = await res.text()
    expect(res.status, `POST /api/sync-all through the proxy: ${text.slice(0, 300)}`).toBe(200)
    return JSON.parse(text) as {
      status: string
      synced: number
      runId: number
      counts: Record<string, number>
      failed: number
      errors: string[]
      conflicts: unknown[]
    }
  }

  async function expectMirror(when: string) {
    const diff = differences(await nextcloudSide(nc), await keycloakSide(admin, REALM))
    expect(diff, `realm vs Nextcloud ${when}`).toEqual([])
  }

  function directToken(uid: string, secret = secrets.KEYCLOAK_API_SECRET) {
    return fetch(`${app.url}/api/token?client_id=${CLIENT}`, {
      method: 'POST',
      headers: { 'X-API-SECRET': secret, 'X-NC-USER-ID': uid },
      signal: AbortSignal.timeout(60_000),
    })
  }

  function proxiedToken(as: BasicUser, headers: Record<string, string> = {}) {
    return proxied(`/api/token?client_id=${CLIENT}`, { method: 'POST', as, headers })
  }

  /** The access token's claims, its signature checked with the realm's JWKS (via the proxy). */
  function claimsOf(jwt: string): Promise<Record<string, unknown>> {
    return verifiedClaims(jwt, () =>
      nc.fetch(`${PROXY}/realms/${REALM}/protocol/openid-connect/certs`),
    )
  }

  /** Records a check's outcome for the summary printed at the end. */
  function check(server: WebServer, name: string, body: () => Promise<void>) {
    return async () => {
      const t0 = Date.now()
      try {
        await body()
        results.push(`${server.padEnd(6)} pass  ${name} (${seconds(t0)} s)`)
      } catch (err) {
        results.push(`${server.padEnd(6)} FAIL  ${name} (${seconds(t0)} s)`)
        throw err
      }
    }
  }

  describe.each(SERVERS)('on %s', (server) => {
    beforeAll(async () => {
      if (server !== 'apache') {
        await nc.serve(server)
      }
    }, 600_000)

    it(
      `${server}: the README's manual-install commands register the app; init reaches 100`,
      check(server, 'README commands: init 100', async () => {
        if (app.running()) {
          // The recipe from the start on this server: the app, the daemon and the process go.
          await nc.tryOcc(['app_api:app:unregister', APP_ID])
          await nc.tryOcc(['app_api:daemon:unregister', 'manual_install'])
          await app.stop()
        }
        const mark = await nc.logMark()
        for (const step of await recipe()) {
          if (step.background) {
            await app.start(step.command, { ...nc.env(), ...appEnv })
            await app.waitFor('listening', (h) => h.status === 'ok', 120_000)
            continue
          }
          const r = await bash(step.command)
          expect(r.exitCode, describeRun(r)).toBe(0)
        }
        expect(app.running(), 'the README starts the app with npm start').toBe(true)
        const status = await initDone()
        expect(status, `AppAPI status\n${await app.logTail()}`).toMatchObject({
          init: 100,
          error: '',
        })
        expect(await nc.occ(['app_api:app:list'])).toMatch(
          /^keycloak \(Keycloak\): .* \[enabled\]$/m,
        )
        expect(await app.heartbeat()).toMatchObject({ keycloak: 'ready', init: 'done' })
        expect(await appApiComplaints(mark), "AppAPI's warnings in nextcloud.log").toEqual([])
        await connectKeycloak()
      }),
      600_000,
    )

    it(
      `${server}: users and groups are mirrored exactly; changes and deletions follow; a no-op run writes nothing`,
      check(server, 'sync: mirror, changes, no-op', async () => {
        const first = await syncAll()
        expect(first).toMatchObject({ status: 'success', failed: 0, errors: [], conflicts: [] })
        await expectMirror('after a run')
        const seen = await keycloakSide(admin, REALM)
        expect(seen.users.get('MaxMustermann')?.username).toBe('maxmustermann')
        expect(seen.users.get('noemail')).toMatchObject({ email: null, firstName: 'Nomail' })

        for (const args of ROUNDS[server].occ) {
          await nc.occ(args)
        }
        const changed = await syncAll()
        expect(changed).toMatchObject({ status: 'success', failed: 0, errors: [], conflicts: [] })
        expect(changed.synced, JSON.stringify(changed.counts)).toBeGreaterThan(0)
        await expectMirror(`after ${server}'s changes`)
        const gone = (await keycloakSide(admin, REALM)).users.get(ROUNDS[server].deleted)
        expect(gone?.enabled, `${ROUNDS[server].deleted}, deleted in Nextcloud`).toBe(false)

        const noop = await syncAll()
        expect(noop).toMatchObject({ status: 'success', synced: 0, failed: 0 })
        expect(
          Object.values(noop.counts).every((n) => n === 0),
          JSON.stringify(noop.counts),
        ).toBe(true)
        const runs = await proxied('/api/sync-runs?limit=1')
        expect(runs.status).toBe(200)
        const [last] = ((await runs.json()) as { runs: { id: number; counts: object }[] }).runs
        expect(last?.id).toBe(noop.runId)
        expect(Object.values(last?.counts ?? {}).every((n) => n === 0)).toBe(true)
      }),
      300_000,
    )

    it(
      `${server}: tokens for a real user, direct and through the proxy (own token only)`,
      check(server, 'tokens', async () => {
        const ids = (await keycloakSide(admin, REALM)).ids
        const direct = await directToken('john doe')
        expect(direct.status, await direct.clone().text()).toBe(200)
        const claims = await claimsOf(
          ((await direct.json()) as { access_token: string }).access_token,
        )
        expect(claims).toMatchObject({
          preferred_username: 'john doe',
          sub: ids.get('john doe'),
          azp: CLIENT,
          iss: `${nc.url}${PROXY}/realms/${REALM}`,
        })

        const own = await proxiedToken(userFor("o'brien"))
        expect(own.status, await own.clone().text()).toBe(200)
        const ownClaims = await claimsOf(
          ((await own.json()) as { access_token: string }).access_token,
        )
        expect(ownClaims).toMatchObject({ preferred_username: "o'brien", sub: ids.get("o'brien") })

        const other = await proxiedToken(userFor("o'brien"), { 'X-NC-USER-ID': 'john doe' })
        expect(other.status, 'another user through the proxy').toBe(403)

        // Nextcloud finds a uid in any case; Keycloak stores it lower-cased. Both answers are
        // checked before either fails the test.
        const wrong: string[] = []
        const cased = await directToken('maxmustermann')
        const casedBody = await cased.text()
        if (cased.status === 200) {
          const c = await claimsOf((JSON.parse(casedBody) as { access_token: string }).access_token)
          expect(c, 'maxmustermann gets MaxMustermann').toMatchObject({
            sub: ids.get('MaxMustermann'),
          })
        } else if (cased.status !== 404) {
          wrong.push(`maxmustermann: ${cased.status} ${casedBody.slice(0, 200)}`)
        }
        const deleted = await directToken(ROUNDS[server].deleted)
        if (deleted.status !== 404) {
          wrong.push(`deleted user: ${deleted.status} ${(await deleted.text()).slice(0, 200)}`)
        }
        expect(wrong, 'a uid in another case: 200 or 404; a deleted user: 404').toEqual([])
      }),
    )

    it(
      `${server}: in Chromium, the embedded page shows the status page; Open admin console signs the Nextcloud admin in as themselves, no form; a non-admin gets nothing`,
      check(server, 'browser: status page and console as the Nextcloud admin', async () => {
        const executable = process.env.TEST_CHROMIUM_PATH
        if (!executable) {
          throw new Error('TEST_CHROMIUM_PATH unset: run with vitest.int.config.ts')
        }
        chromium ??= await launchChromium(executable)
        const context = await chromium.browser.newContext({
          viewport: { width: 1280, height: 900 },
        })
        const page = await context.newPage()
        const { problems, nextcloudErrors } = watchProblems(page, PROXY)
        const forms: string[] = []
        watchForms(page, forms)
        try {
          await loginToNextcloud(context, nc.url, userFor('admin'))
          const res = await page.goto(
            `${nc.url}/index.php/apps/app_api/embedded/${APP_ID}/${TOP_MENU}`,
          )
          expect(res?.status()).toBe(200)
          const frame = page.frameLocator('#keycloak-exapp-frame')
          await frame.locator('#kc-state[data-state="ready"]').waitFor({ timeout: 60_000 })
          // the runs the checks before started, read by the page through the proxy
          await frame.locator('#runs tr[data-run-id]').first().waitFor({ timeout: 30_000 })
          await page.screenshot({ path: join(ARTIFACTS, `${server}-status.png`), fullPage: true })

          // The console's login goes to Nextcloud, where the admin is signed in: the console
          // opens with no form on the way, as the admin's own console identity.
          const consoleUrl = `${nc.url}${PROXY}/admin/master/console/`
          expect(await frame.locator('a#open-console').getAttribute('href')).toBe(consoleUrl)
          await frame.locator('a#open-console').click()
          await page.waitForFunction(
            (url) => {
              const el = document.getElementById('keycloak-exapp-frame') as HTMLIFrameElement | null
              return el?.contentWindow?.location.href.startsWith(url)
            },
            consoleUrl,
            { timeout: 60_000 },
          )
          await frame.getByRole('link', { name: 'Manage realms' }).click()
          await frame.getByRole('link', { name: REALM, exact: true }).click()
          await frame.getByRole('link', { name: 'Users', exact: true }).click()
          const search = frame.getByPlaceholder(/search user/i).first()
          await search.waitFor({ timeout: 30_000 })
          await search.fill('john')
          await search.press('Enter')
          const link = frame.getByRole('link', { name: 'john doe', exact: true })
          await link.waitFor({ timeout: 30_000 })
          await page.screenshot({ path: join(ARTIFACTS, `${server}-console-users.png`) })
          await link.click()
          await frame
            .getByRole('heading', { name: 'john doe' })
            .first()
            .waitFor({ timeout: 30_000 })
          expect((await appFrame(page)).url()).toMatch(
            new RegExp(`/admin/master/console/#/${REALM}/users/[0-9a-f-]+/settings$`),
          )
          await page.screenshot({ path: join(ARTIFACTS, `${server}-console-user.png`) })
          // No temporary-admin banner: the bootstrap admin is gone.
          expect(await frame.getByText(/temporary admin/i).count()).toBe(0)
          expect(forms.filter((u) => u.includes(`${PROXY}/`))).toEqual([])

          // Whose console session it is: the master realm's user made for the Nextcloud admin
          // (marked, linked to the provider nextcloud), with a session of the console's client.
          const [me] = await admin.users.find({ realm: 'master', username: 'admin', exact: true })
          expect(me?.attributes?.[CONSOLE_ATTRIBUTE]).toEqual([REALM])
          const links = await admin.users.listFederatedIdentities({
            realm: 'master',
            id: me?.id ?? '',
          })
          expect(links).toEqual([
            expect.objectContaining({ identityProvider: 'nextcloud', userId: 'admin' }),
          ])
          const sessions = await admin.users.listSessions({ realm: 'master', id: me?.id ?? '' })
          expect(
            sessions.some((x) => Object.values(x.clients ?? {}).includes('security-admin-console')),
            JSON.stringify(sessions),
          ).toBe(true)
          console.log(
            `${server}: ${nextcloudErrors.length} errors of Nextcloud's own page scripts left aside`,
          )
          expect(problems).toEqual([])
        } catch (err) {
          await page
            .screenshot({ path: join(ARTIFACTS, `${server}-console-failure.png`) })
            .catch(() => undefined)
          throw new Error(`${String(err)}\nwhat the page saw:\n${problems.join('\n')}`)
        } finally {
          await context.close()
        }

        // A signed-in non-admin: Nextcloud's proxy answers the console's paths with 404, and the
        // status page is not theirs either.
        const plain = await chromium.browser.newContext()
        try {
          await loginToNextcloud(plain, nc.url, userFor("o'brien"))
          const p = await plain.newPage()
          for (const path of [
            `${PROXY}/admin/master/console/`,
            `${PROXY}/realms/master/protocol/openid-connect/auth?client_id=security-admin-console`,
          ]) {
            const r = await p.goto(`${nc.url}${path}`)
            expect(r?.status(), path).toBe(404)
          }
          await p.screenshot({ path: join(ARTIFACTS, `${server}-console-non-admin.png`) })
        } finally {
          await plain.close()
        }
      }),
      240_000,
    )

    it(
      `${server}: in Chromium, an app of the realm signs Nextcloud users in through Nextcloud: no form with a session, Nextcloud's login without`,
      check(server, 'browser: single sign-on of an app of the realm', async () => {
        const executable = process.env.TEST_CHROMIUM_PATH
        if (!executable) {
          throw new Error('TEST_CHROMIUM_PATH unset: run with vitest.int.config.ts')
        }
        chromium ??= await launchChromium(executable)
        rp ??= await startRelyingParty({ issuer: `${nc.url}${PROXY}/realms/${REALM}` })
        await registerRelyingParty(admin, REALM, rp)
        const party = rp
        const signIn = async (uid: string, session: boolean) => {
          const context = await chromium?.browser.newContext({
            viewport: { width: 1280, height: 900 },
          })
          if (!context) {
            throw new Error('no browser')
          }
          const forms: string[] = []
          const watched = async () => {
            const page = await context.newPage()
            watchForms(page, forms)
            return { page, problems: watchProblems(page, PROXY).problems }
          }
          let { page, problems } = await watched()
          const shot = `${server}-sso-${session ? 'session' : 'login-first'}`
          try {
            if (session) {
              await loginToNextcloud(context, nc.url, userFor(uid))
              await page.goto(party.loginUrl)
            } else {
              // The provider sends a visitor to Nextcloud's login, with the way back to it.
              await page.goto(party.loginUrl)
              // Nextcloud's login, not Keycloak's broker step (…/broker/nextcloud/login)
              await page.waitForURL(
                (u) => u.origin === nc.url && /^(\/index\.php)?\/login$/.test(u.pathname),
                { timeout: 60_000 },
              )
              const login = new URL(page.url())
              expect(login.origin).toBe(nc.url)
              const back = login.searchParams.get('redirect_url') ?? ''
              expect(back.startsWith(`${PROXY}/oidc/authorize?`), back).toBe(true)
              await page.screenshot({ path: join(ARTIFACTS, `${shot}-nextcloud-login.png`) })
              // What went wrong on the way here, Nextcloud's login page (and its scripts missing
              // from the test tarball) left aside.
              const own = problems.filter(
                (p) => p.includes(`${PROXY}/`) || p.includes(party.origin),
              )
              expect(own).toEqual([])
              // The form's scripts are not in the test tarball: its POST, as the form sends it.
              const next = await loginToNextcloud(context, nc.url, userFor(uid), back)
              expect(next).toBe(`${nc.url}${back}`)
              await page.close()
              ;({ page, problems } = await watched())
              await page.goto(next)
            }
            await page.locator('#signed-in').waitFor({ timeout: 60_000 })
            expect(await page.locator('#username').textContent()).toBe(uid)
            await page.screenshot({ path: join(ARTIFACTS, `${shot}.png`) })
            expect(party.failures).toEqual([])
            expect(party.landings.at(-1)).toMatchObject({
              preferredUsername: uid,
              claims: { iss: `${nc.url}${PROXY}/realms/${REALM}`, aud: party.clientId },
            })
            // No Keycloak form on the way (the login page's own form is not rendered here).
            expect(forms.filter((u) => u.includes(`${PROXY}/`))).toEqual([])
            expect(problems).toEqual([])
          } catch (err) {
            await page
              .screenshot({ path: join(ARTIFACTS, `${shot}-failure.png`) })
              .catch(() => undefined)
            throw new Error(`${String(err)}\nwhat the page saw:\n${problems.join('\n')}`)
          } finally {
            await context.close()
          }
        }
        await signIn("o'brien", true)
        await signIn('noemail', false)
      }),
      240_000,
    )

    it(
      `${server}: disable, enable, unregister and register again while the process keeps running: init reaches 100`,
      check(server, 'disable/enable/re-register', async () => {
        expect(await nc.occ(['app_api:app:disable', APP_ID])).toMatch(/disabled/)
        await app.waitFor('Keycloak stopped', (h) => h.keycloak === 'stopped', 90_000)
        expect(await nc.occ(['app_api:app:enable', APP_ID])).toMatch(/successfully enabled/)
        await app.waitFor('Keycloak ready', (h) => h.keycloak === 'ready', 240_000)
        const enabled = await directToken('john doe')
        expect(enabled.status, `a token after enable: ${await enabled.text()}`).toBe(200)

        const mark = await nc.logMark()
        expect(await nc.occ(['app_api:app:unregister', APP_ID])).toMatch(/unregistered/)
        const register = (await recipe()).filter((s) => s.command.includes('app_api:app:register'))
        expect(register, 'the README registers the app once').toHaveLength(1)
        const r = await bash(register[0]?.command ?? '')
        expect(r.exitCode, describeRun(r)).toBe(0)
        const status = await initDone()
        expect(status, `AppAPI status\n${await app.logTail()}`).toMatchObject({
          init: 100,
          error: '',
        })
        expect(await app.heartbeat()).toMatchObject({ keycloak: 'ready', init: 'done' })
        expect(await appApiComplaints(mark), "AppAPI's warnings in nextcloud.log").toEqual([])
        const token = await directToken('john doe')
        expect(token.status, await token.text()).toBe(200)
      }),
      600_000,
    )

    it(
      `${server}: ten wrong X-API-SECRETs through the proxy lock out neither the admin nor other users`,
      check(server, 'wrong secrets: no lockout', async () => {
        const attacker = userFor('a.b@example.org')
        for (let i = 0; i < 10; i++) {
          const res = await proxiedToken(attacker, {
            'X-API-SECRET': `wrong-${i}-${'x'.repeat(20)}`,
          })
          expect([401, 429], `wrong secret #${i + 1}`).toContain(res.status)
        }
        const admin = await proxied('/api/sync-status')
        expect(admin.status, `the admin afterwards: ${await admin.clone().text()}`).toBe(200)
        const other = await proxiedToken(userFor("o'brien"))
        expect(other.status, `another user afterwards: ${await other.clone().text()}`).toBe(200)
      }),
    )
  })
})

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 1000)
}
