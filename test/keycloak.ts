import { mkdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Config } from '../src/config/config.js'
import { randomSecret } from '../src/config/secrets.js'
import { installedKeycloak } from '../src/keycloak/embedded.js'
import { startArgsFor } from '../src/keycloak/options.js'
import { keycloakSupervisor, type Supervisor } from '../src/keycloak/supervisor.js'
import { createLogger, type Logger } from '../src/log.js'
import { testConfig } from './config.js'

export const ROOT = resolve(import.meta.dirname, '..')

/** Keycloak installed and built once, for integration tests and the bench to start. */
export interface PreparedKeycloak {
  home: string
  javaHome: string
  javaVersion: string
  /** the home's trained AOT cache (JDK 25+), as the app uses it */
  aotCache?: string
}

function defaultLog(): Logger {
  return createLogger({
    level: process.env.TEST_LOG_LEVEL ?? process.env.BENCH_LOG_LEVEL ?? 'warn',
  })
}

export interface OwnKeycloak {
  url: string
  admin: string
  password: string
  home: string
  javaHome: string
  config: Config
  supervisor: Supervisor
  stop(): Promise<void>
}

/**
 * The config of a Keycloak of our own on `port` (management `port + 1000`), storage `dir`, public
 * URL `hostname` (default: its loopback URL).
 */
export function ownKeycloakConfig(
  port: number,
  storageDir: string,
  password: string,
  hostname = `http://127.0.0.1:${port}`,
): Config {
  return testConfig({
    APP_PERSISTENT_STORAGE: storageDir,
    KEYCLOAK_CACHE_DIR: join(ROOT, '.keycloak'),
    KEYCLOAK_HTTP_PORT: String(port),
    KEYCLOAK_MANAGEMENT_PORT: String(port + 1000),
    KC_HOSTNAME: hostname,
    KC_BOOTSTRAP_ADMIN_PASSWORD: password,
  })
}

/**
 * Installs the pinned Keycloak (when absent) into ./.keycloak, builds it for dev-file and trains
 * its AOT cache (JDK 25+), as the app does.
 */
export async function prepareKeycloak(log: Logger = defaultLog()): Promise<PreparedKeycloak> {
  // Only the install location, Java and build options of this config matter here.
  const config = ownKeycloakConfig(38680, join(ROOT, '.test-artifacts', 'unused'), randomSecret())
  return installedKeycloak(config, log)
}

/**
 * Starts a Keycloak with a fresh (or, `keep`, existing) H2 storage in
 * `.test-artifacts/<name>-<port>`; resolves once ready. `hostname: 'dynamic'` runs it without a
 * fixed hostname: it takes its public URL from each request's X-Forwarded-* headers.
 */
export async function startOwnKeycloak(
  port: number,
  name: string,
  prepared: Pick<PreparedKeycloak, 'home' | 'javaHome' | 'aotCache'>,
  opts: {
    keep?: boolean
    password?: string
    log?: Logger
    hostname?: string | 'dynamic'
    aot?: boolean
  } = {},
): Promise<OwnKeycloak> {
  const log = opts.log ?? defaultLog()
  const storageDir = join(ROOT, '.test-artifacts', `${name}-${port}`)
  if (!opts.keep) {
    await rm(storageDir, { recursive: true, force: true })
  }
  await mkdir(storageDir, { recursive: true })
  const password = opts.password ?? randomSecret()
  const dynamic = opts.hostname === 'dynamic'
  const config = ownKeycloakConfig(port, storageDir, password, dynamic ? undefined : opts.hostname)
  const args = dynamic
    ? startArgsFor(config)
        .filter((a) => !a.startsWith('--hostname'))
        .concat('--hostname-strict=false')
    : startArgsFor(config)
  // `aot: false`: a bare start, as `kc.sh start --optimized` runs without the app's AOT cache
  const aotCache = opts.aot === false ? undefined : prepared.aotCache
  const supervisor = keycloakSupervisor(config, prepared.home, prepared.javaHome, log, {
    args,
    aotCache,
  })
  await supervisor.start()
  await supervisor.waitReady(config.keycloak.startTimeoutMs)
  return {
    url: config.keycloak.url,
    admin: config.keycloak.adminUser,
    password,
    home: prepared.home,
    javaHome: prepared.javaHome,
    config,
    supervisor,
    stop: () => supervisor.stop(),
  }
}
