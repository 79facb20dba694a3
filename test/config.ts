import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConfig, type Config, parseEnv } from '../src/config/config.js'
import { randomSecret } from '../src/config/secrets.js'

/** A Config as main.ts would build it from `env`, with fresh generated secrets. */
export function testConfig(env: Record<string, string | undefined>): Config {
  // The master realm is left alone unless a test asks for the console login (one shared Keycloak).
  const parsed = parseEnv({
    LOG_LEVEL: 'silent',
    SYNC_INTERVAL: '0',
    KEYCLOAK_CONSOLE_LOGIN: 'keycloak',
    ...env,
  })
  if (!parsed.ok) {
    throw new Error(parsed.errors.join('\n'))
  }
  return buildConfig(
    parsed.env,
    {
      APP_SECRET: randomSecret(),
      KC_BOOTSTRAP_ADMIN_PASSWORD: randomSecret(),
      KEYCLOAK_ADMIN_CLIENT_SECRET: randomSecret(),
      KEYCLOAK_API_SECRET: randomSecret(),
      ENCRYPTION_KEY: randomSecret(),
    },
    '0.0.0-test',
  )
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${prefix}-`))
}

/** The shared Keycloak that global setup started, as the integration tests see it. */
export function sharedKeycloak(): { url: string; admin: string; password: string } {
  const url = process.env.TEST_KEYCLOAK_URL
  const admin = process.env.TEST_KEYCLOAK_ADMIN
  const password = process.env.TEST_KEYCLOAK_ADMIN_PASSWORD
  if (!url || !admin || !password) {
    throw new Error('TEST_KEYCLOAK_* are not set: run integration tests with vitest.int.config.ts')
  }
  return { url, admin, password }
}
