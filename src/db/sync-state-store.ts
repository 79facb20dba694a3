import { and, eq, inArray, sql } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { batchesOf } from '../batches.js'
import type { Db } from './client.js'
import { type EventsCursor, syncStateObjects, syncStates } from './schema.js'
import { arrayLiteral } from './sql-arrays.js'

export type { EventsCursor } from './schema.js'

/** One stored object of a realm's sync state (see schema.ts, sync_state_objects). */
export interface StoredObject {
  kind: string
  key: string
  fingerprint: string
  state: Record<string, unknown>
}

/** What a diff against the stored state needs of an object: not its state. */
export type StoredFingerprint = Pick<StoredObject, 'kind' | 'key' | 'fingerprint'>

export interface SyncStateHeader {
  realmId: string
  eventsCursor: EventsCursor | null
  reconciledAt: Date
  trusted: boolean
}

export interface SyncStateUpdate extends SyncStateHeader {
  /** objects new or changed since the stored state (taken a statement's worth at a time) */
  put: Iterable<StoredObject>
  /** objects gone */
  remove: readonly Pick<StoredObject, 'kind' | 'key'>[]
  /** drop every stored object first (the realm was recreated) */
  replace?: boolean
}

/** The stored state of what the last sync run left in a realm. */
export interface SyncStateStore {
  getSyncState(realm: string): Promise<SyncStateHeader | undefined>
  /**
   * Every stored object of `realm`, a page at a time in (kind, key) order, so that neither the
   * store nor its caller holds every state at once. Pages are read one statement each, not in one
   * snapshot: the caller holds the sync lock, and only a run writes the state.
   */
  readSyncObjects(realm: string, opts?: { pageSize?: number }): AsyncGenerator<StoredObject[]>
  /** Kind, key and fingerprint of every stored object of `realm`, without their states. */
  listSyncFingerprints(realm: string): Promise<StoredFingerprint[]>
  /** Writes the header and the changed objects in one transaction. */
  saveSyncState(realm: string, update: SyncStateUpdate): Promise<void>
  /** Marks the state untrusted (a run is about to write, or failed): the next run reads Keycloak. */
  distrustSyncState(realm: string): Promise<void>
}

/**
 * Rows per statement: a few milliseconds each, so the store keeps serving. Few enough that
 * PGlite's WebAssembly memory, which grows to the largest statement Postgres has handled and never
 * shrinks, stays small: at the end of a 10 000-user cold sync, statements of 500 rows grew it by
 * 4.3 MiB for the rest of the process's life, statements of 100 rows by 1.3 MiB.
 */
const ROWS_PER_STATEMENT = 100
/**
 * Objects per page read. Each page is the most either thread holds of the stored states at once:
 * a scheduled run over an unchanged 10 000-user directory peaked at 164 MiB with pages of 2 000,
 * 160 with 500 and 159 with 250, and read the state in 0.46, 0.6 and 0.85 s.
 */
const ROWS_PER_PAGE = 500
const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve))

/**
 * `reclaim` lets the database reuse the space of rows a save replaced or deleted (see
 * Database.reclaimSpace); it never throws.
 */
export function createSyncStateStore(
  db: Db,
  reclaim: (...tables: PgTable[]) => Promise<void> = async () => undefined,
): SyncStateStore {
  return {
    async getSyncState(realm) {
      const [row] = await db
        .select({
          realmId: syncStates.realmId,
          eventsCursor: syncStates.eventsCursor,
          reconciledAt: syncStates.reconciledAt,
          trusted: syncStates.trusted,
        })
        .from(syncStates)
        .where(eq(syncStates.realm, realm))
      return row
    },
    async *readSyncObjects(realm, { pageSize = ROWS_PER_PAGE } = {}) {
      // Keyset pages along the primary key (realm, kind, key): each starts where the last ended.
      let last: StoredFingerprint | undefined
      for (;;) {
        const rows = await db
          .select({
            kind: syncStateObjects.kind,
            key: syncStateObjects.key,
            fingerprint: syncStateObjects.fingerprint,
            state: sql<string>`${syncStateObjects.state}::text`,
          })
          .from(syncStateObjects)
          .where(
            and(
              eq(syncStateObjects.realm, realm),
              last &&
                sql`(${syncStateObjects.kind}, ${syncStateObjects.key}) > (${last.kind}, ${last.key})`,
            ),
          )
          .orderBy(syncStateObjects.kind, syncStateObjects.key)
          .limit(pageSize)
        const page = rows.map((r) => ({
          ...r,
          state: JSON.parse(r.state) as Record<string, unknown>,
        }))
        if (page.length > 0) {
          yield page
        }
        last = page.at(-1)
        if (page.length < pageSize || !last) {
          return
        }
      }
    },
    async listSyncFingerprints(realm) {
      return db
        .select({
          kind: syncStateObjects.kind,
          key: syncStateObjects.key,
          fingerprint: syncStateObjects.fingerprint,
        })
        .from(syncStateObjects)
        .where(eq(syncStateObjects.realm, realm))
    },
    async saveSyncState(realm, update) {
      const header = {
        realmId: update.realmId,
        eventsCursor: update.eventsCursor,
        reconciledAt: update.reconciledAt,
        trusted: update.trusted,
      }
      let written = 0
      await db.transaction(async (tx) => {
        if (update.replace) {
          await tx.delete(syncStateObjects).where(eq(syncStateObjects.realm, realm))
        }
        const byKind = new Map<string, string[]>()
        for (const { kind, key } of update.remove) {
          const keys = byKind.get(kind)
          if (keys) {
            keys.push(key)
          } else {
            byKind.set(kind, [key])
          }
        }
        for (const [kind, keys] of byKind) {
          for (const batch of batchesOf(keys, ROWS_PER_STATEMENT)) {
            await tx
              .delete(syncStateObjects)
              .where(
                and(
                  eq(syncStateObjects.realm, realm),
                  eq(syncStateObjects.kind, kind),
                  inArray(syncStateObjects.key, batch),
                ),
              )
          }
        }
        // One array per column, each one text parameter, instead of drizzle's multi-row VALUES
        // (5 parameters per row, each mapped and checked, and their SQL pieces: garbage that
        // outlived the statement's round trip to the database).
        for (const rows of batchesOf(update.put, ROWS_PER_STATEMENT)) {
          written += rows.length
          const column = (value: (o: StoredObject) => string) => arrayLiteral(rows.map(value))
          await tx.execute(sql`
            insert into ${syncStateObjects} (realm, kind, key, fingerprint, state)
            select ${realm}, kind, key, fingerprint, state
            from unnest(
              ${column((o) => o.kind)}::text[], ${column((o) => o.key)}::text[],
              ${column((o) => o.fingerprint)}::text[],
              ${column((o) => JSON.stringify(o.state))}::jsonb[]
            ) as r(kind, key, fingerprint, state)
            on conflict (realm, kind, key)
            do update set fingerprint = excluded.fingerprint, state = excluded.state`)
          await yieldToEventLoop()
        }
        await tx
          .insert(syncStates)
          .values({ realm, ...header })
          .onConflictDoUpdate({
            target: syncStates.realm,
            set: { ...header, updatedAt: sql`now()` },
          })
      })
      // Each changed object's row was replaced, each removed one deleted; the header is replaced
      // every run (reclaimed here too, with the next change).
      if (update.replace || update.remove.length > 0 || written > 0) {
        await reclaim(syncStateObjects, syncStates)
      }
    },
    async distrustSyncState(realm) {
      await db
        .update(syncStates)
        .set({ trusted: false, updatedAt: sql`now()` })
        .where(eq(syncStates.realm, realm))
    },
  }
}
