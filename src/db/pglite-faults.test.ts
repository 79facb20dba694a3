import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { rowsOf } from '../../test/store-contract.js'
import { silentLogger } from '../log.js'
import { type Database, openDatabase } from './client.js'
import { createSecretBox } from './crypto.js'
import { createStore } from './store.js'

const box = createSecretBox('test-encryption-key-0123456789abcdef')
const isRoot = process.getuid?.() === 0

/**
 * Takes the disk away from `dir` and gives it back: as root `chattr -R +i` (root ignores file
 * modes), otherwise every file read-only and every folder closed to new files.
 */
async function freeze(dir: string, frozen: boolean): Promise<void> {
  if (isRoot) {
    execFileSync('chattr', ['-R', frozen ? '+i' : '-i', dir])
    return
  }
  const walk = async (path: string): Promise<void> => {
    const info = await stat(path)
    if (info.isDirectory()) {
      for (const entry of await readdir(path)) {
        await walk(join(path, entry))
      }
      await chmod(path, frozen ? 0o500 : 0o700)
    } else {
      await chmod(path, frozen ? 0o400 : 0o600)
    }
  }
  await walk(dir)
}

const count = async (database: Database) =>
  Number(
    rowsOf<{ n: string | number }>(
      await database.db.execute(sql`select count(*) as n from filler`),
    )[0]?.n,
  )

describe('PGlite whose files stop being writable', () => {
  let root: string | undefined
  let frozenDir: string | undefined

  afterAll(async () => {
    if (frozenDir) {
      await freeze(frozenDir, false).catch(() => undefined)
    }
    if (root) {
      await rm(root, { recursive: true, force: true })
    }
  })

  it('fails the calls, reports it, keeps the event loop free, and recovers with nothing lost', async () => {
    root = await mkdtemp(join(tmpdir(), 'pglite-faults-'))
    const database = await openDatabase({
      storageDir: root,
      log: silentLogger(),
      callTimeoutMs: 5_000,
      probeIntervalMs: 200,
    })
    try {
      const store = createStore(database, box)
      await store.putSecret('written-before', 'kept')
      // A large write, as in the report: a few MB the next checkpoint must flush.
      await database.db.execute(sql`create table filler (id serial primary key, body text)`)
      for (let i = 0; i < 5; i++) {
        await database.db.execute(
          sql`insert into filler (body) select repeat('x', 2000) from generate_series(1, 400)`,
        )
      }
      expect(await count(database)).toBe(2000)
      expect(database.health().status).toBe('ok')

      frozenDir = join(root, 'pglite')
      await freeze(frozenDir, true)
      let ticks = 0
      const ticker = setInterval(() => ticks++, 20)
      const outcomes = []
      // Each of these once left PGlite spinning on the app's thread, or came after one that did.
      for (const step of [
        () => store.putSecret('written-during', 'lost'),
        () => database.db.execute(sql`checkpoint`),
        () => count(database),
        () => store.putSecret('written-during', 'lost'),
        () => count(database),
      ]) {
        outcomes.push(await Promise.allSettled([step()]).then(([o]) => o?.status))
      }
      clearInterval(ticker)
      expect(outcomes).toContain('rejected')
      expect(outcomes).toHaveLength(5)
      expect(ticks).toBeGreaterThan(0)
      expect(database.health().status).not.toBe('ok')
      expect(database.health().detail).toBeTruthy()

      await freeze(frozenDir, false)
      frozenDir = undefined
      await vi.waitFor(
        async () => {
          expect(database.health().status, 'the database works again').toBe('ok')
          // a write goes through again
          await store.putSecret('written-after', 'new')
        },
        { timeout: 90_000, interval: 100 },
      )

      expect(await count(database)).toBe(2000)
      expect(await store.getSecret('written-before')).toBe('kept')
      expect(await store.getSecret('written-after')).toBe('new')
      expect(await store.getSecret('written-during')).toBeUndefined()
    } finally {
      await database.close()
    }
  }, 180_000)
})
