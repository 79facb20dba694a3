import { describe, expect, it } from 'vitest'
import type { KeycloakDb } from '../config/config.js'
import { buildOptionsFor, startArgsFor, startEnvFor } from './options.js'

function aConfig(db: KeycloakDb = { kind: 'dev-file' }) {
  return {
    app: { storageDir: '/data' },
    keycloak: {
      httpPort: 18080,
      managementPort: 19000,
      publicUrl: 'https://cloud.example/index.php/apps/app_api/proxy/keycloak',
      db,
      heap: '-Xms128m -Xmx768m',
      adminUser: 'admin',
      adminPassword: 'pa$$word',
    },
  }
}

const postgres: KeycloakDb = {
  kind: 'postgres',
  url: 'jdbc:postgresql://db/keycloak',
  username: 'kc',
  password: 's3cret',
}

describe('buildOptionsFor', () => {
  it('builds dev-file with health and metrics by default', () => {
    expect(buildOptionsFor(aConfig())).toEqual([
      '--db=dev-file',
      '--health-enabled=true',
      '--metrics-enabled=true',
    ])
  })

  it('takes the db vendor from the config and never a secret', () => {
    const options = buildOptionsFor(aConfig(postgres))
    expect(options[0]).toBe('--db=postgres')
    expect(options.join(' ')).not.toMatch(/s3cret|pa\$\$word|jdbc:/)
  })
})

describe('startArgsFor', () => {
  it('binds both interfaces to loopback and trusts proxy headers from loopback only', () => {
    const args = startArgsFor(aConfig())
    expect(args).toEqual(
      expect.arrayContaining([
        '--http-enabled=true',
        '--http-host=127.0.0.1',
        '--http-port=18080',
        '--http-management-host=127.0.0.1',
        '--http-management-port=19000',
        '--hostname=https://cloud.example/index.php/apps/app_api/proxy/keycloak',
        '--hostname-backchannel-dynamic=true',
        '--proxy-headers=xforwarded',
        '--proxy-trusted-addresses=127.0.0.1',
        '--cache=local',
      ]),
    )
  })

  it('keeps the dev-file database under persistent storage', () => {
    expect(startArgsFor(aConfig())).toContain(
      '--db-url=jdbc:h2:file:/data/keycloak/h2/keycloakdb;NON_KEYWORDS=VALUE;DB_CLOSE_ON_EXIT=FALSE',
    )
  })

  it('passes no db url argument and no secret for an external database', () => {
    const args = startArgsFor(aConfig(postgres)).join(' ')
    expect(args).not.toMatch(/db-url|s3cret|pa\$\$word/)
  })
})

describe('startEnvFor', () => {
  it('passes the JDK, heap and bootstrap admin, with the password kept literal', () => {
    expect(startEnvFor(aConfig(), '/jdk25')).toEqual({
      JAVA_HOME: '/jdk25',
      JAVA_OPTS_KC_HEAP: '-Xms128m -Xmx768m',
      KC_BOOTSTRAP_ADMIN_USERNAME: 'admin',
      KC_BOOTSTRAP_ADMIN_PASSWORD: undefined,
      KCRAW_BOOTSTRAP_ADMIN_PASSWORD: 'pa$$word',
      KC_DB_PASSWORD: undefined,
    })
  })

  it('passes the external database connection through the environment', () => {
    expect(startEnvFor(aConfig(postgres), '/jdk')).toMatchObject({
      KC_DB_URL: 'jdbc:postgresql://db/keycloak',
      KC_DB_USERNAME: 'kc',
      KC_DB_PASSWORD: undefined,
      KCRAW_DB_PASSWORD: 's3cret',
    })
  })
})
