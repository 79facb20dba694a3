import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../log.js'
import { type Database, openDatabase } from './client.js'
import { createSecretBox } from './crypto.js'
import { checkEncryptionKey, KEY_CHECK_NAME } from './key-check.js'
import { appSecrets } from './schema.js'
import { createStore } from './store.js'

const oldKey = createSecretBox('the-key-of-the-first-start-0123456789')
const newKey = createSecretBox('a-key-generated-after-secrets-json-was-lost')

function capturingLogger() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  return { log, lines }
}

describe('checkEncryptionKey', () => {
  let root: string
  let database: Database

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'key-check-'))
    database = await openDatabase({ storageDir: root, log: silentLogger() })
  }, 120_000)
  afterAll(async () => {
    await database?.close()
    await rm(root, { recursive: true, force: true })
  })

  it('stores a check value on a first start and finds the same key fine afterwards', async () => {
    const { log, lines } = capturingLogger()
    expect(await checkEncryptionKey(database, oldKey, log)).toMatchObject({ status: 'ok' })
    const [row] = await database.db
      .select()
      .from(appSecrets)
      .where(eq(appSecrets.name, KEY_CHECK_NAME))
    expect(row?.ciphertext).toMatch(/^v1:/)
    expect(await checkEncryptionKey(database, oldKey, log)).toEqual({
      status: 'ok',
      undecryptable: 0,
      stored: 1,
    })
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([])
  })

  it('says so, once and clearly, when the key changed, without naming a secret', async () => {
    await createStore(database, oldKey).putSecret('client-secret:opentalk', 'the-client-secret')
    const { log, lines } = capturingLogger()
    const health = await checkEncryptionKey(database, newKey, log)
    expect(health).toEqual({ status: 'undecryptable', undecryptable: 2, stored: 2 })
    const errors = lines.filter((l) => (l.level as number) >= 50)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ msg: 'secrets.undecryptable', undecryptable: 2 })
    expect(String(errors[0]?.hint)).toMatch(/secrets\.json was lost.*ENCRYPTION_KEY/)
    expect(JSON.stringify(lines)).not.toContain('the-client-secret')
    // nothing was overwritten: the previous key still opens everything
    expect(await checkEncryptionKey(database, oldKey, silentLogger())).toMatchObject({
      status: 'ok',
    })
  })

  it('notices a new key from the stored secrets alone, as after an upgrade', async () => {
    await database.db.delete(appSecrets).where(eq(appSecrets.name, KEY_CHECK_NAME))
    expect(await checkEncryptionKey(database, newKey, silentLogger())).toEqual({
      status: 'undecryptable',
      undecryptable: 1,
      stored: 1,
    })
  })
})
