import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { integer, pgTable } from 'drizzle-orm/pg-core'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeStoreContract, rowsOf } from '../../test/store-contract.js'
import { silentLogger } from '../log.js'
import {
  type Database,
  DEFAULT_MIGRATIONS_FOLDER,
  type OpenDatabaseOptions,
  openDatabase,
} from './client.js'
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

/** `use` on a database in a fresh copy of the template, closed after. */
async function withFreshDatabase<T>(
  use: (database: Database) => Promise<T>,
  opts: Partial<OpenDatabaseOptions> = {},
): Promise<T> {
  const database = await openDatabase({
    storageDir: await freshStorageDir(),
    log: silentLogger(),
    ...opts,
  })
  try {
    return await use(database)
  } finally {
    await database.close()
  }
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
    await withFreshDatabase(async (database) => {
      expect(database.kind).toBe('pglite')
      expect(await createStore(database, box).getSecret('written-before-close')).toBe('kept')
    })
  })

  // PGlite runs no autovacuum. Without the store's VACUUM, each table below grew by what was
  // deleted or replaced in it: token_issuances from 0.30 MB after the fourth round to 2.5 MB after
  // the fortieth, the sync tables from 0.30 to 0.75 MB. With it: 0.29 to 0.34 MB, 0.31 to 0.31.
  describe('does not grow with what it deletes or replaces', () => {
    const bytes = async (database: Database, table: string) => {
      const [row] = rowsOf<{ size: string }>(
        await database.db.execute(
          sql`select pg_total_relation_size(${table}::regclass)::text as size`,
        ),
      )
      return Number(row?.size)
    }

    const walBytes = async (database: Database) => {
      const [row] = rowsOf<{ at: string; redo: string }>(
        await database.db.execute(
          sql`select pg_current_wal_insert_lsn()::text as at, redo_lsn::text as redo from pg_control_checkpoint()`,
        ),
      )
      const lsn = (text: string | undefined) => {
        const [high, low] = (text ?? '0/0').split('/')
        return Number.parseInt(high ?? '0', 16) * 2 ** 32 + Number.parseInt(low ?? '0', 16)
      }
      const at = lsn(row?.at)
      return { written: at, sinceCheckpoint: at - lsn(row?.redo) }
    }

    /** Rounds of 500 issuances, each pruned to the newest 1 000; the table's size after each. */
    const issuanceRounds = async (database: Database, rounds: number) => {
      const store = createStore(database, box)
      const sizes: number[] = []
      for (let round = 1; round <= rounds; round++) {
        await store.recordIssuances(
          Array.from({ length: 500 }, (_, i) => ({
            consumer: 'opentalk-app',
            userId: `user-${round}-${i}`,
            clientId: 'opentalk',
            outcome: 'cached',
          })),
        )
        expect(await store.pruneIssuances({ keep: 1000 })).toBe(round >= 3 ? 500 : 0)
        sizes.push(await bytes(database, 'token_issuances'))
      }
      expect(await store.countIssuances()).toBe(1000)
      return sizes
    }

    it('the issuance log, pruned to what it keeps', async () => {
      await withFreshDatabase(async (database) => {
        const sizes = await issuanceRounds(database, 40)
        // 2 000 rows written by the end of the fourth round, 20 000 by the end
        expect(sizes.at(-1)).toBeLessThanOrEqual((sizes[3] as number) * 1.5)
      })
    }, 60_000)

    // Without the checkpoint, the log since the last one was all the log written since the open.
    it('the write-ahead log, checkpointed once it passes its limit', async () => {
      await withFreshDatabase(
        async (database) => {
          const before = await walBytes(database)
          await issuanceRounds(database, 40)
          const after = await walBytes(database)
          expect(after.written - before.written).toBeGreaterThan(4 * 2 ** 20)
          expect(after.sinceCheckpoint).toBeLessThan(2 * 2 ** 20)
        },
        { checkpointAfterWalBytes: 2 ** 20 },
      )
    }, 60_000)

    it('the sync state, every object replaced each run, and the run history', async () => {
      await withFreshDatabase(async (database) => {
        const store = createStore(database, box)
        const save = (run: number) =>
          store.saveSyncState('r', {
            realmId: 'realm-id',
            eventsCursor: null,
            reconciledAt: new Date(),
            trusted: true,
            put: Array.from({ length: 300 }, (_, i) => ({
              kind: 'user',
              key: `u${i}`,
              fingerprint: `f${run}`,
              state: { email: `u${i}@example.org`, firstName: 'First', lastName: `Last ${run}` },
            })),
            remove: [],
          })
        const runs = async (run: number) => {
          const id = await store.startRun({ realm: 'r', trigger: 'schedule', dryRun: false })
          const changelog = Array.from({ length: 300 }, (_, i) => ({
            kind: 'update-user',
            uid: `u${i}`,
            run,
          }))
          await store.finishRun(id, { status: 'succeeded', changelog })
          await store.pruneRuns({ keep: 3, realm: 'r' })
        }
        const sizes: number[] = []
        for (let run = 1; run <= 40; run++) {
          await save(run)
          await runs(run)
          sizes.push(
            (await bytes(database, 'sync_state_objects')) +
              (await bytes(database, 'sync_runs')) +
              (await bytes(database, 'sync_run_changes')),
          )
        }
        expect(await store.listRuns({ realm: 'r' })).toHaveLength(3)
        const page = (await store.readSyncObjects('r').next()).value
        expect(page?.[0]).toMatchObject({ key: 'u0', fingerprint: 'f40' })
        expect(sizes.at(-1)).toBeLessThanOrEqual((sizes[3] as number) * 1.5)
      })
    }, 60_000)
  })

  it('logs a VACUUM that fails, and does not fail the caller', async () => {
    const lines: Record<string, unknown>[] = []
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
    await withFreshDatabase(
      async (database) => {
        await expect(
          database.reclaimSpace([pgTable('no_such_table', { id: integer('id') })]),
        ).resolves.toBeUndefined()
        expect(lines).toContainEqual(
          expect.objectContaining({
            msg: 'db.reclaim_failed',
            tables: ['no_such_table'],
            err: expect.stringContaining('no_such_table'),
          }),
        )
      },
      { log },
    )
  })
})
