import { createLogger } from '../src/log.js'
import { ensureChromium } from './chromium.js'
import { type OwnKeycloak, prepareKeycloak, startOwnKeycloak } from './keycloak.js'
import { ensurePostgres, type RunningPostgres } from './postgres.js'

/** TEST_KEYCLOAK_PORT lets two runs on one machine keep out of each other's way. */
export const SHARED_KEYCLOAK_PORT = Number(process.env.TEST_KEYCLOAK_PORT ?? 28080)

let keycloak: OwnKeycloak | undefined
let postgres: RunningPostgres | undefined

/**
 * Once per integration run: a real PostgreSQL and Debian's chromium (both installed with apt-get
 * when absent) and one real Keycloak (installed from Maven Central when absent) that every test
 * file shares. Nothing here is skipped: a missing piece fails the run.
 */
export async function setup(): Promise<void> {
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' })
  const started = Date.now()
  postgres = await ensurePostgres()
  process.env.TEST_DATABASE_URL = postgres.url
  process.env.TEST_CHROMIUM_PATH = await ensureChromium()

  const prepared = await prepareKeycloak(log)
  process.env.KEYCLOAK_HOME = prepared.home
  process.env.TEST_JAVA_HOME = prepared.javaHome
  keycloak = await startOwnKeycloak(SHARED_KEYCLOAK_PORT, 'keycloak-shared', prepared, { log })
  process.env.TEST_KEYCLOAK_URL = keycloak.url
  process.env.TEST_KEYCLOAK_ADMIN = keycloak.admin
  process.env.TEST_KEYCLOAK_ADMIN_PASSWORD = keycloak.password
  console.log(
    `integration setup: Keycloak ${keycloak.config.keycloak.version} on Java ${prepared.javaVersion} ready at ${keycloak.url}, PostgreSQL at ${new URL(postgres.url).host}, in ${Math.round((Date.now() - started) / 1000)} s`,
  )
}

export async function teardown(): Promise<void> {
  await keycloak?.stop()
  await postgres?.stop()
}
