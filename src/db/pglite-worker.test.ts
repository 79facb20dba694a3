import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type PgliteResult, type PgliteThread, startPgliteThread } from './pglite-worker.js'

const query = async (thread: PgliteThread, sql: string) =>
  (
    (await thread.send({
      op: 'query',
      sql,
      params: [],
      rowMode: 'object',
      rawTypes: [],
    })) as PgliteResult
  ).rows as Record<string, unknown>[]

describe('the PGlite thread', () => {
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
  })
  /** a thread on a new database in a folder of its own, open */
  const openThread = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pglite-thread-'))
    dirs.push(dir)
    const thread = startPgliteThread(join(dir, 'data'))
    await thread.ready.catch(async (err: unknown) => {
      await thread.terminate()
      throw err
    })
    return thread
  }

  it('releases the file bundle and keeps what a database reads', async () => {
    const thread = await openThread()
    try {
      const bundle = thread.bundle()
      expect(bundle).toBeDefined()
      expect(bundle?.bytes).toBeGreaterThan(1_000_000)
      expect(bundle?.dropped).toBeGreaterThan(0)
      expect(bundle?.kept).toBeGreaterThan(0)

      // a dropped file (read by initdb only) is gone; a kept one reads as it was
      await expect(
        query(thread, `select pg_read_binary_file('/pglite/share/postgresql/postgres.bki')`),
      ).rejects.toThrow(/could not open file/)
      // ICU data too, the database's locale provider being libc (no file left under /pglite/icu)
      const [icu] = await query(
        thread,
        `select datlocprovider as provider, (select count(*)::int from pg_ls_dir('/pglite/icu') f
           where not (pg_stat_file('/pglite/icu/' || f)).isdir) as files
         from pg_database where datname = current_database()`,
      )
      expect(icu).toEqual({ provider: 'c', files: 0 })
      const [tzset] = await query(
        thread,
        `select pg_read_file('/pglite/share/postgresql/timezonesets/Default') as text`,
      )
      expect(String(tzset?.text)).toMatch(/^CET\s+3600\s+D?\s*#/m)

      // time zones (files read when a zone is first named), plpgsql and text search still load
      const [berlin] = await query(
        thread,
        `select (timestamptz '2026-07-01 12:00:00+00' at time zone 'Europe/Berlin')::text as t`,
      )
      expect(berlin?.t).toBe('2026-07-01 14:00:00')
      await query(thread, `set timezone = 'America/New_York'`)
      const [ny] = await query(thread, `select timestamptz '2026-01-01 12:00:00+00'::text as t`)
      expect(ny?.t).toBe('2026-01-01 07:00:00-05')
      await thread.send({
        op: 'exec',
        sql: `do $$ begin create table t (v text); insert into t values ('ok'); end $$`,
      })
      expect(await query(thread, 'select v from t')).toEqual([{ v: 'ok' }])
      const [ts] = await query(
        thread,
        `select to_tsvector('english', 'the quick foxes')::text as v`,
      )
      expect(ts?.v).toBe(`'fox':3 'quick':2`)
    } finally {
      await thread.terminate()
    }
  }, 60_000)

  it('collects the garbage that large statements leave in its heap', async () => {
    const thread = await openThread()
    try {
      const before = (await thread.send({ op: 'heap' })) as number
      // 60 statements with a 256 kB parameter each: 15 MB of strings that die once answered
      const large = 'x'.repeat(256 * 1024)
      for (let i = 0; i < 60; i++) {
        const result = (await thread.send({
          op: 'query',
          sql: 'select length($1::text) as n',
          params: [`${i}${large}`],
          rowMode: 'object',
          rawTypes: [],
        })) as PgliteResult
        expect(result.rows).toEqual([{ n: large.length + String(i).length }])
      }
      const after = (await thread.send({ op: 'heap' })) as number
      // left to V8, the heap kept 10.8 MB of them (measured); collected once it has grown by
      // 2 MB, it holds at most that much more
      expect(after - before).toBeLessThan(4 * 1024 * 1024)
    } finally {
      await thread.terminate()
    }
  }, 60_000)
})
