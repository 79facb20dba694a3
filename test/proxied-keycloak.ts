import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Config } from '../src/config/config.js'
import { startArgsFor, startEnvFor } from '../src/keycloak/options.js'
import { createSupervisor } from '../src/keycloak/supervisor.js'
import { createLogger } from '../src/log.js'
import { testConfig } from './config.js'

const ROOT = resolve(import.meta.dirname, '..')

export interface ProxiedKeycloak {
  /** loopback URL, e.g. http://127.0.0.1:38880 */
  url: string
  admin: string
  password: string
  config: Config
  /** an admin token of the master realm */
  adminToken(): Promise<string>
  stop(): Promise<void>
}

/**
 * A Keycloak of our own for the tests that go through the Nextcloud proxies (console, browser).
 * Without `hostname` it takes its public URL from the X-Forwarded-Proto/Host/Prefix headers the
 * sidecar's proxy sets (26.6+ honours the prefix), so one server serves both the PHP proxy's and
 * HaRP's prefix; the shared Keycloak (hostname = its loopback URL) cannot. `hostname` runs the
 * production setting instead. Its H2 database stays under .test-artifacts between runs, so
 * later starts are warm.
 */
export async function startProxiedKeycloak(opts: {
  port: number
  hostname?: string
}): Promise<ProxiedKeycloak> {
  const home = process.env.KEYCLOAK_HOME
  const javaHome = process.env.TEST_JAVA_HOME
  if (!home || !javaHome) {
    throw new Error('KEYCLOAK_HOME/TEST_JAVA_HOME unset: run with vitest.int.config.ts')
  }
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' })
  const storageDir = join(ROOT, '.test-artifacts', `keycloak-proxied-${opts.port}`)
  await mkdir(storageDir, { recursive: true })
  // Keycloak creates the bootstrap admin on its first start only: later starts reuse it.
  const credentialsFile = join(storageDir, 'test-admin.json')
  const { admin, password } = await readFile(credentialsFile, 'utf8')
    .then((text) => JSON.parse(text) as { admin: string; password: string })
    .catch(async () => {
      const fresh = { admin: 'admin', password: randomBytes(18).toString('base64url') }
      await rm(join(storageDir, 'keycloak'), { recursive: true, force: true })
      await writeFile(credentialsFile, JSON.stringify(fresh), { mode: 0o600 })
      return fresh
    })
  const config = testConfig({
    APP_PERSISTENT_STORAGE: storageDir,
    KEYCLOAK_HTTP_PORT: String(opts.port),
    KEYCLOAK_MANAGEMENT_PORT: String(opts.port + 1000),
    KC_HOSTNAME: opts.hostname ?? `http://127.0.0.1:${opts.port}`,
    KC_BOOTSTRAP_ADMIN_USERNAME: admin,
    KC_BOOTSTRAP_ADMIN_PASSWORD: password,
  })
  const args = opts.hostname
    ? startArgsFor(config)
    : startArgsFor(config)
        .filter((a) => !a.startsWith('--hostname'))
        .concat('--hostname-strict=false')
  const keycloak = createSupervisor({
    command: join(home, 'bin', 'kc.sh'),
    args: ['start', '--optimized', ...args],
    env: startEnvFor(config, javaHome),
    cwd: home,
    readyUrl: `http://127.0.0.1:${opts.port + 1000}/health/ready`,
    pidFile: join(storageDir, 'keycloak.pid'),
    processMark: home,
    log,
    startTimeoutMs: config.keycloak.startTimeoutMs,
  })
  await keycloak.start()
  await keycloak.waitReady(config.keycloak.startTimeoutMs)
  const url = config.keycloak.url
  return {
    url,
    admin,
    password,
    config,
    async adminToken() {
      const res = await fetch(`${url}/realms/master/protocol/openid-connect/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'password',
          client_id: 'admin-cli',
          username: admin,
          password,
        }),
      })
      if (!res.ok) {
        throw new Error(`admin login to ${url} failed: ${res.status} ${await res.text()}`)
      }
      return ((await res.json()) as { access_token: string }).access_token
    },
    stop: () => keycloak.stop(),
  }
}
