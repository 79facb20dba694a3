import { describe, expect, it } from 'vitest'
import { buildConfig, parseEnv } from '../config/config.js'
import { BREAK_GLASS_PASSWORD_VAR, bootstrapAdminInvocation } from './bootstrap-admin.js'

function configFrom(env: Record<string, string>) {
  const parsed = parseEnv({ APP_PERSISTENT_STORAGE: '/data', ...env })
  if (!parsed.ok) {
    throw new Error(parsed.errors.join('\n'))
  }
  return buildConfig(
    parsed.env,
    {
      APP_SECRET: 'app-secret-0123456789',
      KC_BOOTSTRAP_ADMIN_PASSWORD: 'the-apps-bootstrap-password',
      KEYCLOAK_ADMIN_CLIENT_SECRET: 'the-service-account-secret',
      KEYCLOAK_API_SECRET: 'api-secret-0123456789',
      ENCRYPTION_KEY: 'encryption-key-0123456789abcdef0123',
    },
    '1.0.0',
  )
}

describe('bootstrapAdminInvocation', () => {
  it("runs kc.sh bootstrap-admin user on the app's H2 file with the app's start options", () => {
    const config = configFrom({})
    const run = bootstrapAdminInvocation(config, '/kc', '/jdk', 'rescue', 'break-glass-pw')
    expect(run.command).toBe('/kc/bin/kc.sh')
    expect(run.args.slice(0, 3)).toEqual(['bootstrap-admin', 'user', '--optimized'])
    expect(run.args).toEqual(
      expect.arrayContaining(['--http-management-host=127.0.0.1', '--http-management-port=9000']),
    )
    expect(run.args.some((a) => a.startsWith('--hostname') || a.startsWith('--http-port'))).toBe(
      false,
    )
    expect(run.args).toContain(
      '--db-url=jdbc:h2:file:/data/keycloak/h2/keycloakdb;NON_KEYWORDS=VALUE;DB_CLOSE_ON_EXIT=FALSE',
    )
    expect(run.args.slice(-3)).toEqual([
      '--username=rescue',
      `--password:env=${BREAK_GLASS_PASSWORD_VAR}`,
      '--no-prompt',
    ])
    expect(run.env).toMatchObject({
      JAVA_HOME: '/jdk',
      [BREAK_GLASS_PASSWORD_VAR]: 'break-glass-pw',
    })
  })

  it('never puts a password on the command line, and leaves out the app’s bootstrap admin', () => {
    const run = bootstrapAdminInvocation(configFrom({}), '/kc', '/jdk', 'rescue', 'break-glass-pw')
    expect(run.args.join(' ')).not.toMatch(/break-glass-pw|the-apps-bootstrap-password/)
    expect(run.env).toMatchObject({
      KC_BOOTSTRAP_ADMIN_USERNAME: undefined,
      KC_BOOTSTRAP_ADMIN_PASSWORD: undefined,
      KCRAW_BOOTSTRAP_ADMIN_PASSWORD: undefined,
    })
    expect(Object.values(run.env)).not.toContain('the-apps-bootstrap-password')
  })

  it('points at the PostgreSQL database the app’s Keycloak uses, its password in the environment', () => {
    const config = configFrom({
      KC_DB: 'postgres',
      KC_DB_URL: 'jdbc:postgresql://db/keycloak',
      KC_DB_USERNAME: 'kc',
      KC_DB_PASSWORD: 'db-password-0123456789',
    })
    const run = bootstrapAdminInvocation(config, '/kc', '/jdk', 'rescue', 'pw')
    expect(run.args.some((a) => a.startsWith('--db-url'))).toBe(false)
    expect(run.env).toMatchObject({
      KC_DB_URL: 'jdbc:postgresql://db/keycloak',
      KC_DB_USERNAME: 'kc',
      KCRAW_DB_PASSWORD: 'db-password-0123456789',
    })
    expect(run.args.join(' ')).not.toContain('db-password')
  })
})
