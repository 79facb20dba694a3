import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../src/config/config.js'
import { randomSecret } from '../src/config/secrets.js'
import { ROOT, startOwnKeycloak } from './keycloak.js'

export interface ProxiedKeycloak {
  /** loopback URL, e.g. http://127.0.0.1:28880 */
  url: string
  admin: string
  password: string
  config: Config
  /** an admin token of the master realm */
  adminToken(): Promise<string>
  stop(): Promise<void>
}

const NAME = 'keycloak-proxied'

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
  const storageDir = join(ROOT, '.test-artifacts', `${NAME}-${opts.port}`)
  await mkdir(storageDir, { recursive: true })
  // Keycloak creates the bootstrap admin on its first start only: later starts reuse it.
  const passwordFile = join(storageDir, 'test-admin-password')
  const password = await readFile(passwordFile, 'utf8').catch(async () => {
    const fresh = randomSecret()
    await rm(join(storageDir, 'keycloak'), { recursive: true, force: true })
    await writeFile(passwordFile, fresh, { mode: 0o600 })
    return fresh
  })
  const keycloak = await startOwnKeycloak(
    opts.port,
    NAME,
    { home, javaHome },
    { keep: true, password, hostname: opts.hostname ?? 'dynamic' },
  )
  return {
    url: keycloak.url,
    admin: keycloak.admin,
    password,
    config: keycloak.config,
    async adminToken() {
      const res = await fetch(`${keycloak.url}/realms/master/protocol/openid-connect/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'password',
          client_id: 'admin-cli',
          username: keycloak.admin,
          password,
        }),
      })
      if (!res.ok) {
        throw new Error(`admin login to ${keycloak.url} failed: ${res.status} ${await res.text()}`)
      }
      return ((await res.json()) as { access_token: string }).access_token
    },
    stop: () => keycloak.stop(),
  }
}
