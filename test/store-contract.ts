// Store behaviour both drivers must show: src/db/store.test.ts runs it on PGlite,
// src/db/postgres.int.test.ts on a real PostgreSQL.
import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../src/db/client.js'
import { createSecretBox } from '../src/db/crypto.js'
import { appSecrets, MIGRATIONS_SCHEMA, MIGRATIONS_TABLE } from '../src/db/schema.js'
import { createStore, type Store, withTransaction } from '../src/db/store.js'

const KEY = 'test-encryption-key-0123456789abcdef'

/** A name no other test uses, so tests sharing one database stay independent. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

/** The pages of stored sync objects of `realm`, as the store reads them. */
async function syncObjectPages(store: Store, realm: string, opts?: { pageSize?: number }) {
  const pages = []
  for await (const page of store.readSyncObjects(realm, opts)) {
    pages.push(page)
  }
  return pages
}

/** Every stored sync object of `realm`, its pages joined. */
async function allSyncObjects(store: Store, realm: string) {
  return (await syncObjectPages(store, realm)).flat()
}

export function describeStoreContract(label: string, open: () => Promise<Database>): void {
  describe(`store on ${label}`, () => {
    const box = createSecretBox(KEY)
    let database: Database
    let store: Store

    beforeAll(async () => {
      database = await open()
      store = createStore(database, box)
    }, 120_000)
    afterAll(async () => {
      await database?.close()
    })

    it('applies the migrations into its own ledger', async () => {
      const tables = await database.db.execute<{ table_name: string }>(
        sql`select table_name from information_schema.tables where table_schema = 'public'`,
      )
      expect(rowsOf<{ table_name: string }>(tables).map((r) => r.table_name)).toEqual(
        expect.arrayContaining([
          'app_secrets',
          'sync_runs',
          'sync_run_changes',
          'token_issuances',
          'user_passwords',
          'sync_states',
          'sync_state_objects',
        ]),
      )
      const ledger = await database.db.execute(
        sql`select count(*)::int as n from ${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)}`,
      )
      expect(rowsOf<{ n: number }>(ledger)[0]?.n).toBeGreaterThan(0)
    })

    it('round-trips secrets and stores them sealed', async () => {
      const name = unique('secret')
      expect(await store.getSecret(name)).toBeUndefined()
      await store.putSecret(name, 'first value')
      await store.putSecret(name, 'second value')
      expect(await store.getSecret(name)).toBe('second value')
      const [row] = await database.db.select().from(appSecrets).where(eq(appSecrets.name, name))
      expect(row?.ciphertext).toMatch(/^v1:/)
      expect(row?.ciphertext).not.toContain('second value')
      expect(row?.updatedAt).toBeInstanceOf(Date)
    })

    it('getOrCreateSecret generates once and returns the same value after', async () => {
      const name = unique('signing-key')
      let calls = 0
      const generate = () => `generated-${++calls}`
      const racing = await Promise.all([
        store.getOrCreateSecret(name, generate),
        store.getOrCreateSecret(name, generate),
      ])
      const again = await store.getOrCreateSecret(name, generate)
      expect(new Set([...racing, again]).size, JSON.stringify({ racing, again })).toBe(1)
      expect(await store.getSecret(name)).toBe(again)
    })

    it('refuses a tampered ciphertext or another key, naming ENCRYPTION_KEY', async () => {
      const name = unique('secret')
      await store.putSecret(name, 'value')
      const otherKey = createStore(database, createSecretBox('another-encryption-key-0123456789ab'))
      await expect(otherKey.getSecret(name)).rejects.toMatchObject({
        code: 'INTERNAL',
        message: expect.stringContaining('ENCRYPTION_KEY'),
      })
      const sealed = Buffer.from(box.seal('value').slice('v1:'.length), 'base64url')
      sealed[sealed.length - 1] = (sealed.at(-1) ?? 0) ^ 0x01
      const forged = `v1:${sealed.toString('base64url')}`
      await database.db
        .update(appSecrets)
        .set({ ciphertext: forged })
        .where(eq(appSecrets.name, name))
      await expect(store.getSecret(name)).rejects.toMatchObject({ code: 'INTERNAL' })
    })

    it('records a run from start to finish', async () => {
      const realm = unique('realm')
      const id = await store.startRun({ realm, trigger: 'manual', dryRun: true })
      expect(await store.getRun(id)).toMatchObject({
        id,
        realm,
        status: 'running',
        dryRun: true,
        finishedAt: null,
        counts: {},
        changelog: [],
      })
      const changelog = [{ kind: 'create-user', id: 'alice' }]
      await store.finishRun(id, {
        status: 'succeeded',
        counts: { 'create-user': 1 },
        conflicts: [{ uid: 'admin', reason: 'unmanaged' }],
        errors: [],
        changelog,
        message: 'ok',
      })
      const run = await store.getRun(id)
      expect(run).toMatchObject({ status: 'succeeded', counts: { 'create-user': 1 }, changelog })
      expect(run?.conflicts).toEqual([{ uid: 'admin', reason: 'unmanaged' }])
      expect(run?.startedAt).toBeInstanceOf(Date)
      expect(run?.finishedAt).toBeInstanceOf(Date)
      expect(run?.message).toBe('ok')
    })

    it('stores a long changelog in chunks and reads it back in order, whole or its head', async () => {
      const id = await store.startRun({ realm: unique('realm'), trigger: 'api', dryRun: false })
      // more changes than one read of chunks brings (2 000), so the reads go on where they stopped
      const changelog = Array.from({ length: 2345 }, (_, i) => ({
        kind: 'add-member',
        uid: `u${i}`,
        gid: `g${i % 7}`,
      }))
      await store.finishRun(id, { status: 'succeeded', changelog })
      expect(await store.getRun(id)).toMatchObject({ changelog, changelogTotal: 2345 })
      for (const limit of [0, 3, 200, 201, 1000, 2000, 2001, 2345, 5000]) {
        const run = await store.getRun(id, { limit })
        expect(run?.changelog, String(limit)).toEqual(changelog.slice(0, limit))
        expect(run?.changelogTotal).toBe(2345)
      }
      // What `entry` makes of each change is what is stored, in the same order.
      await store.finishRun(id, {
        status: 'succeeded',
        changelog,
        entry: (change) => ({ ...change, outcome: 'applied' }),
      })
      const stored = await store.getRun(id)
      expect(stored?.changelogTotal).toBe(2345)
      expect(stored?.changelog).toEqual(changelog.map((c) => ({ ...c, outcome: 'applied' })))
      // Finishing again replaces the changelog; pruning the run removes it.
      await store.finishRun(id, { status: 'succeeded', changelog: changelog.slice(0, 2) })
      expect(await store.getRun(id)).toMatchObject({
        changelog: changelog.slice(0, 2),
        changelogTotal: 2,
      })
      const realm = (await store.getRun(id))?.realm as string
      await store.startRun({ realm, trigger: 'api', dryRun: false })
      expect(await store.pruneRuns({ keep: 1, realm })).toBe(1)
      const left = await database.db.execute(
        sql`select count(*)::int as n from sync_run_changes where run_id = ${id}`,
      )
      expect(rowsOf<{ n: number }>(left)[0]?.n).toBe(0)
    })

    it('finishRun of an unknown id is NOT_FOUND, getRun undefined', async () => {
      await expect(store.finishRun(987_654_321, { status: 'failed' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      })
      expect(await store.getRun(987_654_321)).toBeUndefined()
    })

    it('lists runs of a realm newest first without changelogs', async () => {
      const realm = unique('realm')
      const ids: number[] = []
      for (const trigger of ['init', 'schedule', 'manual']) {
        ids.push(await store.startRun({ realm, trigger, dryRun: false }))
      }
      await store.startRun({ realm: unique('other'), trigger: 'init', dryRun: false })
      const runs = await store.listRuns({ realm, limit: 2 })
      expect(runs.map((r) => r.id)).toEqual([ids[2], ids[1]])
      expect(runs[0]).not.toHaveProperty('changelog')
      expect(runs[0]).toMatchObject({ trigger: 'manual', status: 'running' })
    })

    it('marks the runs of a realm left running as interrupted, and stores partial runs', async () => {
      const realm = unique('realm')
      const other = unique('realm')
      const done = await store.startRun({ realm, trigger: 'api', dryRun: false })
      await store.finishRun(done, { status: 'partial', errors: ['update-user bob: 503'] })
      const left = await store.startRun({ realm, trigger: 'schedule', dryRun: false })
      const elsewhere = await store.startRun({ realm: other, trigger: 'init', dryRun: false })
      expect(await store.interruptRuns(realm)).toBe(1)
      expect(await store.getRun(left)).toMatchObject({
        status: 'interrupted',
        finishedAt: expect.any(Date),
        message: expect.stringMatching(/stopped before it finished/),
      })
      expect(await store.getRun(done)).toMatchObject({ status: 'partial' })
      expect(await store.getRun(elsewhere)).toMatchObject({ status: 'running' })
      expect(await store.interruptRuns(realm)).toBe(0)
    })

    it('pruneRuns keeps the newest N of a realm and leaves other realms alone', async () => {
      const realm = unique('realm')
      const other = unique('realm')
      const ids: number[] = []
      for (let i = 0; i < 5; i++) {
        ids.push(await store.startRun({ realm, trigger: 'schedule', dryRun: false }))
      }
      const otherId = await store.startRun({ realm: other, trigger: 'init', dryRun: false })
      expect(await store.pruneRuns({ keep: 2, realm })).toBe(3)
      expect((await store.listRuns({ realm })).map((r) => r.id)).toEqual([ids[4], ids[3]])
      expect(await store.getRun(otherId)).toBeDefined()
      await expect(store.pruneRuns({ keep: -1 })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    })

    it('records, counts and prunes token issuances', async () => {
      const consumer = unique('consumer')
      const base = { consumer, clientId: 'opentalk', outcome: 'issued' }
      await store.recordIssuances(
        ['u1', 'u2', 'u3', 'u4', 'u5'].map((userId) => ({ ...base, userId })),
      )
      await store.recordIssuances([])
      await store.recordIssuances([{ ...base, userId: 'u1', outcome: 'denied' }])
      expect(await store.countIssuances({ consumer })).toBe(6)
      expect(await store.countIssuances({ consumer, userId: 'u1' })).toBe(2)
      expect(await store.countIssuances({ consumer, outcome: 'denied' })).toBe(1)
      expect(await store.countIssuances({ consumer, since: new Date(Date.now() + 60_000) })).toBe(0)

      await store.pruneIssuances({ keep: 3 })
      expect(await store.countIssuances()).toBe(3)
      expect(await store.countIssuances({ consumer, userId: 'u1', outcome: 'denied' })).toBe(1)
      expect(await store.countIssuances({ consumer, userId: 'u5' })).toBe(1)
      expect(await store.pruneIssuances({ keep: 3 })).toBe(0)
    })

    it('records issuances whatever characters their fields hold', async () => {
      const consumer = unique('consumer "quoted", {braced}')
      const userIds = ['a"b', 'c\\d', 'e,f', '{g}', 'NULL', ' h ', '', 'ü😀']
      await store.recordIssuances(
        userIds.map((userId) => ({ consumer, userId, clientId: 'c\\"', outcome: 'issued' })),
      )
      for (const userId of userIds) {
        expect(await store.countIssuances({ consumer, userId, clientId: 'c\\"' }), userId).toBe(1)
      }
    })

    it('prunes issuances older than a date', async () => {
      const consumer = unique('consumer')
      const base = { consumer, userId: 'u', clientId: 'c', outcome: 'issued' }
      await store.recordIssuances([
        { ...base, issuedAt: new Date('2020-01-01T00:00:00Z') },
        { ...base, issuedAt: new Date('2020-06-01T00:00:00Z') },
        base,
      ])
      expect(await store.pruneIssuances({ olderThan: new Date('2021-01-01T00:00:00Z') })).toBe(2)
      expect(await store.countIssuances({ consumer })).toBe(1)
    })

    it('keeps user passwords per realm, sealed', async () => {
      const realm = unique('realm')
      expect(await store.getUserPassword(realm, 'alice')).toBeUndefined()
      await store.putUserPassword(realm, 'alice', 'pw-1')
      await store.putUserPassword(realm, 'alice', 'pw-2')
      await store.putUserPassword(unique('realm'), 'alice', 'elsewhere')
      expect(await store.getUserPassword(realm, 'alice')).toBe('pw-2')
      expect(await store.deleteUserPassword(realm, 'alice')).toBe(true)
      expect(await store.deleteUserPassword(realm, 'alice')).toBe(false)
      expect(await store.getUserPassword(realm, 'alice')).toBeUndefined()
    })

    it('withTransaction rolls back everything when fn throws, and joins an outer one', async () => {
      const name = unique('secret')
      await expect(
        withTransaction(database, async (tx) => {
          await withTransaction(
            database,
            (inner) => createStore({ db: inner }, box).putSecret(name, 'x'),
            tx,
          )
          throw new Error('abort')
        }),
      ).rejects.toThrow('abort')
      expect(await store.getSecret(name)).toBeUndefined()
    })

    it('tryLock excludes a second holder of the same key until release', async () => {
      const key = unique('sync')
      const first = await database.tryLock(key)
      expect(first).not.toBeNull()
      expect(await database.tryLock(key)).toBeNull()
      const other = await database.tryLock(unique('sync'))
      expect(other).not.toBeNull()
      await first?.()
      const again = await database.tryLock(key)
      expect(again).not.toBeNull()
      await Promise.all([again?.(), other?.()])
    })

    it('keeps the sync state of a realm: header, objects by kind and key, only what changed rewritten', async () => {
      const realm = unique('state')
      expect(await store.getSyncState(realm)).toBeUndefined()
      expect(await allSyncObjects(store, realm)).toEqual([])
      const reconciledAt = new Date('2026-12-01T10:00:00.000Z')
      const alice = { kind: 'user', key: 'alice', fingerprint: 'a1', state: { id: 'k-1' } }
      const bob = { kind: 'user', key: 'bob', fingerprint: 'b1', state: { id: 'k-2' } }
      const staff = { kind: 'group', key: 'staff', fingerprint: 's1', state: { id: 'g-1' } }
      const cursor = { time: 1_700_000_000_123, seen: ['e-1'] }
      await store.saveSyncState(realm, {
        realmId: 'realm-1',
        eventsCursor: cursor,
        reconciledAt,
        trusted: true,
        put: [alice, bob, staff],
        remove: [],
      })
      expect(await store.getSyncState(realm)).toEqual({
        realmId: 'realm-1',
        eventsCursor: cursor,
        reconciledAt,
        trusted: true,
      })
      await store.distrustSyncState(realm)
      expect((await store.getSyncState(realm))?.trusted).toBe(false)
      const renamed = { ...alice, fingerprint: 'a2', state: { id: 'k-1', firstName: 'Alicia' } }
      await store.saveSyncState(realm, {
        realmId: 'realm-1',
        eventsCursor: null,
        reconciledAt,
        trusted: true,
        put: [renamed],
        remove: [{ kind: 'user', key: 'bob' }],
      })
      const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key)
      expect((await allSyncObjects(store, realm)).sort(byKey)).toEqual([renamed, staff])
      expect(await store.getSyncState(realm)).toMatchObject({ eventsCursor: null, trusted: true })
      // Another realm is untouched by a replace.
      const other = unique('state')
      await store.saveSyncState(other, {
        realmId: 'realm-2',
        eventsCursor: null,
        reconciledAt,
        trusted: false,
        put: [bob],
        remove: [],
      })
      await store.saveSyncState(realm, {
        realmId: 'realm-3',
        eventsCursor: null,
        reconciledAt,
        trusted: true,
        put: [staff],
        remove: [],
        replace: true,
      })
      expect(await allSyncObjects(store, realm)).toEqual([staff])
      expect(await allSyncObjects(store, other)).toEqual([bob])
      expect((await store.getSyncState(realm))?.realmId).toBe('realm-3')
    })

    it('writes and removes thousands of sync state objects in one save', async () => {
      const realm = unique('state')
      const put = Array.from({ length: 1_203 }, (_, i) => ({
        kind: 'user',
        key: `u${i}`,
        fingerprint: `f${i}`,
        state: { n: i },
      }))
      const header = { realmId: 'r', eventsCursor: null, reconciledAt: new Date(), trusted: true }
      await store.saveSyncState(realm, { ...header, put, remove: [] })
      // read back in pages along (kind, key), each a statement of its own
      const pages = await syncObjectPages(store, realm, { pageSize: 500 })
      expect(pages.map((p) => p.length)).toEqual([500, 500, 203])
      const read = pages.flat()
      expect(read.map((o) => o.key)).toEqual(put.map((o) => o.key).sort())
      expect(read.sort((a, b) => a.fingerprint.localeCompare(b.fingerprint))).toEqual(
        [...put].sort((a, b) => a.fingerprint.localeCompare(b.fingerprint)),
      )
      const fingerprints = await store.listSyncFingerprints(realm)
      expect(fingerprints.sort((a, b) => a.key.localeCompare(b.key))).toEqual(
        put
          .map(({ kind, key, fingerprint }) => ({ kind, key, fingerprint }))
          .sort((a, b) => a.key.localeCompare(b.key)),
      )
      await store.saveSyncState(realm, {
        ...header,
        put: [],
        remove: put.slice(0, 1_201).map(({ kind, key }) => ({ kind, key })),
      })
      const left = await allSyncObjects(store, realm)
      expect(left.map((o) => o.key).sort()).toEqual(['u1201', 'u1202'])
    })

    it('stores sync state objects whose keys and states hold quotes, backslashes, braces and non-ASCII text', async () => {
      const realm = unique('state')
      const awkward = ['a"b', 'c\\d', '{e,f}', 'NULL', ' g ', '', 'ü ✓ 𝄞', "h'i", 'j\nk']
      const put = awkward.map((text, i) => ({
        kind: i % 2 === 0 ? 'user' : 'unmanaged-email',
        key: `${text}${i}`,
        fingerprint: `f"${i}\\`,
        state: { text, nested: { list: [text, null, 1.5, true], '"key"': text }, empty: {} },
      }))
      const header = { realmId: 'r', eventsCursor: null, reconciledAt: new Date(), trusted: true }
      // any iterable: a generator, as the sync passes it
      await store.saveSyncState(realm, { ...header, put: put.values(), remove: [] })
      const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1)
      expect((await allSyncObjects(store, realm)).sort(byKey)).toEqual([...put].sort(byKey))
    })

    it('lock waits for the holder to release', async () => {
      const key = unique('sync')
      const first = await database.lock(key)
      const order: string[] = []
      const waiting = database.lock(key).then((release) => {
        order.push('second acquired')
        return release
      })
      await new Promise((resolve) => setTimeout(resolve, 100))
      order.push('first releasing')
      await first()
      const second = await waiting
      expect(order).toEqual(['first releasing', 'second acquired'])
      await second()
    })
  })
}

/** Raw results differ per driver: postgres.js returns an array, PGlite `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? [])
}
