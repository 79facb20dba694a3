import { mkdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { randomSecret } from '../src/config/secrets.js'
import { buildKeycloak, installKeycloak } from '../src/keycloak/install.js'
import { findJava } from '../src/keycloak/java.js'
import { buildOptionsFor } from '../src/keycloak/options.js'
import { keycloakSupervisor, type Supervisor } from '../src/keycloak/supervisor.js'
import { createLogger } from '../src/log.js'
import { testConfig } from './config.js'
import { ensurePostgres, type RunningPostgres } from './postgres.js'

/** TEST_KEYCLOAK_PORT lets two runs on one machine keep out of each other's way. */
export const SHARED_KEYCLOAK_PORT = Number(process.env.TEST_KEYCLOAK_PORT ?? 38080)
const ROOT = resolve(import.meta.dirname, '..')

let keycloak: Supervisor | undefined
let postgres: RunningPostgres | undefined

/**
 * Once per integration run: a real PostgreSQL (installed from Debian when absent) and one real
 * Keycloak (installed from Maven Central when absent) that every test file shares. Nothing here
 * is skipped: a missing piece fails the run.
 */
export async function setup(): Promise<void> {
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' })
  const started = Date.now()
  postgres = await ensurePostgres()
  process.env.TEST_DATABASE_URL = postgres.url

  const storageDir = join(ROOT, '.test-artifacts', `keycloak-shared-${SHARED_KEYCLOAK_PORT}`)
  await rm(storageDir, { recursive: true, force: true })
  await mkdir(storageDir, { recursive: true })
  const password = randomSecret()
  const config = testConfig({
    APP_PERSISTENT_STORAGE: storageDir,
    KEYCLOAK_CACHE_DIR: join(ROOT, '.keycloak'),
    KEYCLOAK_HTTP_PORT: String(SHARED_KEYCLOAK_PORT),
    KEYCLOAK_MANAGEMENT_PORT: String(SHARED_KEYCLOAK_PORT + 1000),
    KC_HOSTNAME: `http://127.0.0.1:${SHARED_KEYCLOAK_PORT}`,
    KC_BOOTSTRAP_ADMIN_PASSWORD: password,
  })
  const java = await findJava({ javaHome: config.keycloak.javaHome })
  const { home } = await installKeycloak({
    version: config.keycloak.version,
    cacheDir: config.keycloak.cacheDir,
    log,
  })
  await buildKeycloak({ home, javaHome: java.javaHome, buildOptions: buildOptionsFor(config), log })
  process.env.KEYCLOAK_HOME = home
  process.env.TEST_JAVA_HOME = java.javaHome
  keycloak = keycloakSupervisor(config, home, java.javaHome, log)
  await keycloak.start()
  await keycloak.waitReady(config.keycloak.startTimeoutMs)
  process.env.TEST_KEYCLOAK_URL = config.keycloak.url
  process.env.TEST_KEYCLOAK_ADMIN = config.keycloak.adminUser
  process.env.TEST_KEYCLOAK_ADMIN_PASSWORD = password
  console.log(
    `integration setup: Keycloak ${config.keycloak.version} on Java ${java.version} ready at ${config.keycloak.url}, PostgreSQL at ${new URL(postgres.url).host}, in ${Math.round((Date.now() - started) / 1000)} s`,
  )
}

export async function teardown(): Promise<void> {
  await keycloak?.stop()
  await postgres?.stop()
}
