import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseEnv } from './config.js'
import { givenSecrets, loadOrCreateSecrets, readStoredSecrets } from './secrets.js'

describe('secrets', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secrets-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const stored = async () =>
    JSON.parse(await readFile(join(dir, 'secrets.json'), 'utf8')) as Record<string, string>

  it('neither generates nor writes a secret given in the environment', async () => {
    const given = { APP_SECRET: 'app-secret-from-the-environment', ENCRYPTION_KEY: undefined }
    const secrets = await loadOrCreateSecrets(dir, given)
    expect(secrets.APP_SECRET).toBe('app-secret-from-the-environment')
    const file = await stored()
    expect(Object.keys(file).sort()).toEqual([
      'ENCRYPTION_KEY',
      'KC_BOOTSTRAP_ADMIN_PASSWORD',
      'KEYCLOAK_ADMIN_CLIENT_SECRET',
      'KEYCLOAK_API_SECRET',
    ])
    expect(JSON.stringify(file)).not.toContain('app-secret-from-the-environment')
    expect((await stat(join(dir, 'secrets.json'))).mode & 0o777).toBe(0o600)
  })

  it('writes nothing when every secret is given', async () => {
    const all = {
      APP_SECRET: 'a'.repeat(32),
      KC_BOOTSTRAP_ADMIN_PASSWORD: 'b'.repeat(32),
      KEYCLOAK_ADMIN_CLIENT_SECRET: 'e'.repeat(32),
      KEYCLOAK_API_SECRET: 'c'.repeat(32),
      ENCRYPTION_KEY: 'd'.repeat(32),
    }
    expect(await loadOrCreateSecrets(dir, all)).toEqual(all)
    expect(await readStoredSecrets(dir)).toEqual({})
  })

  it('keeps what the file has, and the environment wins over it', async () => {
    const first = await loadOrCreateSecrets(dir)
    const again = await loadOrCreateSecrets(dir, { APP_SECRET: 'set-later-in-the-environment' })
    expect(again).toEqual({ ...first, APP_SECRET: 'set-later-in-the-environment' })
    expect(await stored()).toEqual(first)
  })

  it('takes the given secrets from a parsed environment, ignoring everything else', () => {
    const parsed = parseEnv({ APP_SECRET: 'x'.repeat(40), APP_PORT: '23001' })
    expect(parsed.ok).toBe(true)
    if (parsed.ok) {
      expect(givenSecrets(parsed.env)).toEqual({ APP_SECRET: 'x'.repeat(40) })
    }
  })

  it('says which file it cannot read', async () => {
    await writeFile(join(dir, 'secrets.json'), '{not json')
    await expect(loadOrCreateSecrets(dir)).rejects.toThrow(/cannot read .*secrets\.json/)
  })
})
