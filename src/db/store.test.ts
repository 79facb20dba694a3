import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeStoreContract } from '../../test/store-contract.js'
import { silentLogger } from '../log.js'
import { DEFAULT_MIGRATIONS_FOLDER, openDatabase } from './client.js'
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

/** The migrations folder as it was at `tag`: its journal cut after that entry. */
async function migrationsUpTo(tag: string): Promise<string> {
  const dir = join(root, `migrations-${tag}`)
  await cp(DEFAULT_MIGRATIONS_FOLDER, dir, { recursive: true })
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { tag: string }[] }
  const end = journal.entries.findIndex((e) => e.tag === tag)
  expect(end).toBeGreaterThanOrEqual(0)
  journal.entries = journal.entries.slice(0, end + 1)
  await writeFile(journalPath, JSON.stringify(journal))
  return dir
}

describe('PGlite database', () => {
  it('moves changelogs stored before 0001 into chunks, in order', async () => {
    const storageDir = join(root, 'from-0000')
    await mkdir(storageDir)
    const changes = [
      { kind: 'create-user', uid: 'alice' },
      { kind: 'add-member', uid: 'alice', gid: 'staff' },
      { kind: 'create-user', uid: 'bob' },
    ]
    const old = await openDatabase({
      storageDir,
      log: silentLogger(),
      migrationsFolder: await migrationsUpTo('0000_init'),
    })
    await old.db.execute(
      sql`insert into sync_runs (realm, trigger, status, changelog) values ('old', 'api', 'succeeded', ${JSON.stringify(changes)}::jsonb), ('old', 'api', 'succeeded', '[]'::jsonb)`,
    )
    await old.close()
    const database = await openDatabase({ storageDir, log: silentLogger() })
    try {
      const store = createStore(database, box)
      const [empty, run] = await store.listRuns({ realm: 'old' })
      expect(await store.getRun(run?.id as number)).toMatchObject({
        changelog: changes,
        changelogTotal: 3,
      })
      expect(await store.getRun(run?.id as number, { limit: 2 })).toMatchObject({
        changelog: changes.slice(0, 2),
      })
      expect(await store.getRun(empty?.id as number)).toMatchObject({
        changelog: [],
        changelogTotal: 0,
      })
    } finally {
      await database.close()
    }
  }, 60_000)

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
