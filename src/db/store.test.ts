import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeStoreContract } from '../../test/store-contract.js'
import { silentLogger } from '../log.js'
import { openDatabase } from './client.js'
import { createSecretBox } from './crypto.js'
import { createStore } from './store.js'

const box = createSecretBox('test-encryption-key-0123456789abcdef')

// PGlite's initdb takes seconds, so it runs once into a template that each test copies.
let root: string
let template: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keycloak-exapp-store-'))
  template = join(root, 'template')
  const database = await openDatabase({ storageDir: template, log: silentLogger() })
  await createStore(database, box).putSecret('written-before-close', 'kept')
  await database.close()
}, 120_000)

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

let copies = 0
async function freshStorageDir(): Promise<string> {
  const dir = join(root, `copy-${++copies}`)
  await cp(template, dir, { recursive: true })
  return dir
}

describeStoreContract('PGlite', async () =>
  openDatabase({ storageDir: await freshStorageDir(), log: silentLogger() }),
)

describe('PGlite database', () => {
  it('keeps data in <storageDir>/pglite across a reopen, re-running migrations as a no-op', async () => {
    const database = await openDatabase({
      storageDir: await freshStorageDir(),
      log: silentLogger(),
    })
    try {
      expect(database.kind).toBe('pglite')
      expect(await createStore(database, box).getSecret('written-before-close')).toBe('kept')
    } finally {
      await database.close()
    }
  })
})
