// The store and the run lock on a real PostgreSQL. Independent of global setup: ensurePostgres()
// reuses a cluster that setup (or an earlier run) left running.
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createTestDatabase, ensurePostgres, type RunningPostgres } from '../../test/postgres.js'
import { describeStoreContract, rowsOf, unique } from '../../test/store-contract.js'
import { silentLogger } from '../log.js'
import { type Database, openDatabase } from './client.js'
import { createSecretBox } from './crypto.js'
import { advisoryLockId } from './locks.js'
import { createStore } from './store.js'

let pg: RunningPostgres
let url: string
const open = (databaseUrl = url) =>
  openDatabase({ url: databaseUrl, storageDir: '/nonexistent', log: silentLogger() })

beforeAll(async () => {
  pg = await ensurePostgres()
  url = await createTestDatabase(pg.url, 'keycloak_exapp_db_int')
}, 300_000)

afterAll(async () => {
  await pg?.stop()
})

describeStoreContract('PostgreSQL', () => open())

describe('PostgreSQL database', () => {
  const opened: Database[] = []
  const openTracked = async (databaseUrl?: string) => {
    const database = await open(databaseUrl)
    opened.push(database)
    return database
  }
  afterAll(async () => {
    await Promise.all(opened.map((d) => d.close()))
  })

  it('stores jsonb as JSON values, not as encoded strings', async () => {
    const database = await openTracked()
    expect(database.kind).toBe('postgres')
    const store = createStore(database, createSecretBox('test-encryption-key-0123456789abcdef'))
    const id = await store.startRun({ realm: unique('realm'), trigger: 'init', dryRun: false })
    await store.finishRun(id, { status: 'failed', counts: { 'create-user': 2 }, errors: ['x'] })
    const result = await database.db.execute(
      sql`select jsonb_typeof(counts) as counts, jsonb_typeof(errors) as errors from sync_runs where id = ${id}`,
    )
    expect(rowsOf(result)[0]).toEqual({ counts: 'object', errors: 'array' })
  })

  it('excludes a second process (another pool) from a held key until release', async () => {
    const [a, b] = [await openTracked(), await openTracked()]
    const key = unique('sync')
    const held = await a.tryLock(key)
    expect(held).not.toBeNull()
    expect(await b.tryLock(key)).toBeNull()
    const otherKey = await b.tryLock(unique('sync'))
    expect(otherKey, 'a different key must not block').not.toBeNull()
    await held?.()
    const taken = await b.tryLock(key)
    expect(taken).not.toBeNull()
    expect(await a.tryLock(key)).toBeNull()
    await Promise.all([taken?.(), otherKey?.()])
  })

  it('lock() in a second process waits until the first releases', async () => {
    const [a, b] = [await openTracked(), await openTracked()]
    const key = unique('sync')
    const held = await a.lock(key)
    let acquired = false
    const waiting = b.lock(key).then((release) => {
      acquired = true
      return release
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(acquired).toBe(false)
    await held()
    await (await waiting)()
    expect(acquired).toBe(true)
  })

  it('frees a lock whose process closed without releasing it', async () => {
    const [a, b] = [await open(), await openTracked()]
    const key = unique('sync')
    expect(await a.tryLock(key)).not.toBeNull()
    await a.close()
    const taken = await b.tryLock(key)
    expect(taken).not.toBeNull()
    await taken?.()
  })

  it('frees a lock whose connection died, and the holder keeps working', async () => {
    const [a, b] = [await openTracked(), await openTracked()]
    const key = unique('sync')
    const held = await a.tryLock(key)
    expect(held).not.toBeNull()
    const [classid, objid] = advisoryLockParts(key)
    // A crashed process looks like this to PostgreSQL: its backend goes away.
    const killed = await b.db.execute(
      sql`select pg_terminate_backend(pid) as ok from pg_locks
          where locktype = 'advisory' and classid = ${classid} and objid = ${objid} and objsubid = 1`,
    )
    expect(rowsOf(killed)).toEqual([{ ok: true }])
    const taken = await vi.waitFor(
      async () => {
        const release = await b.tryLock(key)
        expect(release, 'the lock free again').not.toBeNull()
        return release as NonNullable<typeof release>
      },
      { timeout: 30_000, interval: 50 },
    )
    await expect(held?.()).resolves.toBeUndefined()
    await expect(a.db.execute(sql`select 1 as one`)).resolves.toBeDefined()
    await taken()
  })

  it('migrates once when two processes open a fresh database together', async () => {
    const fresh = await createTestDatabase(pg.url, 'keycloak_exapp_db_int_race')
    const [a, b] = await Promise.all([openTracked(fresh), openTracked(fresh)])
    const box = createSecretBox('test-encryption-key-0123456789abcdef')
    const values = await Promise.all([
      createStore(a, box).getOrCreateSecret('signing-key', () => 'from-a'),
      createStore(b, box).getOrCreateSecret('signing-key', () => 'from-b'),
    ])
    expect(values[0]).toBe(values[1])
  })
})

/** The (classid, objid) pair pg_locks shows for a bigint advisory lock. */
function advisoryLockParts(key: string): [number, number] {
  const unsigned = BigInt.asUintN(64, BigInt(advisoryLockId(key)))
  return [Number(unsigned >> 32n), Number(unsigned & 0xffffffffn)]
}
