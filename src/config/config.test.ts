import { mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildConfig, parseEnv } from './config.js'
import { loadOrCreateSecrets } from './secrets.js'

const secrets = {
  APP_SECRET: 'generated-app-secret',
  KC_BOOTSTRAP_ADMIN_PASSWORD: 'generated-admin-password',
  KEYCLOAK_ADMIN_CLIENT_SECRET: 'generated-admin-client-secret',
  KEYCLOAK_API_SECRET: 'generated-api-secret-0123456789',
  ENCRYPTION_KEY: 'generated-encryption-key-0123456789abcdef',
}

function parsed(env: Record<string, string>) {
  const result = parseEnv(env)
  if (!result.ok) {
    throw new Error(result.errors.join('\n'))
  }
  return buildConfig(result.env, secrets, '1.2.3')
}

describe('parseEnv', () => {
  it('gives embedded defaults for an empty environment', () => {
    const config = parsed({})
    expect(config.app).toMatchObject({
      id: 'keycloak',
      host: '127.0.0.1',
      port: 23000,
      version: '1.2.3',
    })
    expect(config.keycloak).toMatchObject({
      mode: 'embedded',
      realm: 'commonground',
      url: 'http://127.0.0.1:8080',
      clients: ['opentalk'],
      db: { kind: 'dev-file' },
      tokenMode: 'jwt',
    })
    expect(config.sync).toMatchObject({
      intervalSeconds: 900,
      pollSeconds: 30,
      deletePolicy: 'disable',
      guardPercent: 20,
    })
    expect(config.databaseUrl).toBeUndefined()
  })

  it('uses generated secrets for secrets left unset, never a fixed value', () => {
    const config = parsed({})
    expect(config.app.secret).toBe(secrets.APP_SECRET)
    expect(config.keycloak.adminPassword).toBe(secrets.KC_BOOTSTRAP_ADMIN_PASSWORD)
    expect(config.keycloak.serviceAccount).toEqual({
      clientId: 'keycloak-exapp-commonground',
      secret: secrets.KEYCLOAK_ADMIN_CLIENT_SECRET,
    })
    expect(config.consumers).toEqual([
      { name: 'default', secret: secrets.KEYCLOAK_API_SECRET, clients: ['opentalk'] },
    ])
  })

  it('strips /index.php and trailing slashes from NEXTCLOUD_URL and derives the public prefix', () => {
    const config = parsed({ NEXTCLOUD_URL: 'https://cloud.example/index.php/' })
    expect(config.nextcloud.url).toBe('https://cloud.example')
    expect(config.keycloak.publicUrl).toBe(
      'https://cloud.example/index.php/apps/app_api/proxy/keycloak',
    )
  })

  it('serves on the HaRP socket and under /exapps when HP_SHARED_KEY is set', () => {
    const config = parsed({ HP_SHARED_KEY: 'k', NEXTCLOUD_URL: 'https://cloud.example' })
    expect(config.app.socketPath).toBe('/tmp/exapp.sock')
    expect(config.keycloak.publicUrl).toBe('https://cloud.example/exapps/keycloak')
  })

  it('switches to external mode when KEYCLOAK_URL is set', () => {
    const config = parsed({ KEYCLOAK_URL: 'https://sso.example/' })
    expect(config.keycloak).toMatchObject({ mode: 'external', url: 'https://sso.example' })
  })

  it('parses lists, role mappings, profile fields and consumers', () => {
    const config = parsed({
      KEYCLOAK_CLIENTS: 'opentalk, openzaak',
      SYNC_GATE_GROUPS: 'staff,,admins',
      SYNC_ROLE_MAPPINGS: 'admin:realm-admin, sales:seller',
      SYNC_PROFILE_FIELDS: 'phone,organisation:org',
      KEYCLOAK_CONSUMERS: JSON.stringify([
        { name: 'talk', secret: 'a-secret-of-16-chars', clients: ['opentalk'] },
      ]),
    })
    expect(config.keycloak.clients).toEqual(['opentalk', 'openzaak'])
    expect(config.sync.gateGroups).toEqual(['staff', 'admins'])
    expect(config.sync.roleMappings).toEqual([
      { group: 'admin', role: 'realm-admin' },
      { group: 'sales', role: 'seller' },
    ])
    expect(config.sync.profileFields).toEqual([
      { field: 'phone', attribute: 'phone' },
      { field: 'organisation', attribute: 'org' },
    ])
    expect(config.consumers).toEqual([
      { name: 'talk', secret: 'a-secret-of-16-chars', clients: ['opentalk'] },
    ])
  })

  it.each([
    ['APP_PORT', 'eighty', /APP_PORT/],
    ['SYNC_INTERVAL', '-5', /SYNC_INTERVAL/],
    ['SYNC_DELETE_POLICY', 'purge', /SYNC_DELETE_POLICY/],
    ['KEYCLOAK_REALM', 'master', /KEYCLOAK_REALM: the master realm/],
    ['KEYCLOAK_URL', 'not a url', /KEYCLOAK_URL/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL: must be a postgres/],
    ['KEYCLOAK_API_SECRET', 'short', /KEYCLOAK_API_SECRET: too weak: needs at least 16/],
    ['SYNC_ROLE_MAPPINGS', 'nocolon', /SYNC_ROLE_MAPPINGS/],
    ['KEYCLOAK_CONSUMERS', '{not json', /KEYCLOAK_CONSUMERS: must be a JSON array/],
  ])('rejects %s=%s with one line naming the variable', (name, value, pattern) => {
    const result = parseEnv({ [name]: value })
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.errors).toHaveLength(1)
      expect(result.errors[0]).toMatch(pattern)
    }
  })

  it.each(['master', 'Master', 'MASTER', 'mAsTeR'])('refuses KEYCLOAK_REALM=%s', (realm) => {
    const result = parseEnv({ KEYCLOAK_REALM: realm })
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.errors).toEqual([
        expect.stringMatching(/^KEYCLOAK_REALM: the master realm cannot be the synced realm/),
      ])
    }
  })

  it.each(['APP_SECRET', 'METRICS_TOKEN', 'KC_BOOTSTRAP_ADMIN_PASSWORD', 'KEYCLOAK_API_SECRET'])(
    'refuses a weak %s (under 16 characters) without echoing it',
    (name) => {
      for (const weak of ['x', 'fifteen-chars!!']) {
        const result = parseEnv({ [name]: weak })
        expect(result.ok, `${name}=${weak}`).toBe(false)
        if (!result.ok) {
          expect(result.errors).toEqual([
            expect.stringMatching(new RegExp(`^${name}: too weak: needs at least 16 characters`)),
          ])
          expect(result.errors[0]).not.toContain(weak)
        }
      }
      const strong = parseEnv({ [name]: 'sixteen-chars-ok' })
      expect(strong.ok).toBe(true)
    },
  )

  it('reports every bad variable, one line each, without echoing secrets', () => {
    const result = parseEnv({ APP_PORT: '0', KEYCLOAK_API_SECRET: 'tiny', LOG_LEVEL: 'loud' })
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.errors).toHaveLength(3)
      expect(result.errors.join('\n')).not.toContain('tiny')
    }
  })
})

describe('loadOrCreateSecrets', () => {
  it('generates distinct secrets once, stores them 0600, and returns the same on the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secrets-'))
    const first = await loadOrCreateSecrets(dir)
    const second = await loadOrCreateSecrets(dir)
    expect(second).toEqual(first)
    expect(new Set(Object.values(first)).size).toBe(5)
    for (const value of Object.values(first)) {
      expect(value).toMatch(/^[A-Za-z0-9_-]{40,}$/)
    }
    const file = join(dir, 'secrets.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(first)
  })
})
