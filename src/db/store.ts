import { and, asc, desc, eq, gte, lt, lte, notInArray, type SQL, sql } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { batchesOf } from '../batches.js'
import { AppError } from '../errors.js'
import type { Database, Db } from './client.js'
import type { SecretBox } from './crypto.js'
import {
  appSecrets,
  type RunStatus,
  syncRunChanges,
  syncRuns,
  tokenIssuances,
  userPasswords,
} from './schema.js'
import { arrayLiteral } from './sql-arrays.js'
import { createSyncStateStore, type SyncStateStore } from './sync-state-store.js'

export interface SyncRunSummary {
  id: number
  realm: string
  trigger: string
  status: RunStatus
  dryRun: boolean
  startedAt: Date
  finishedAt: Date | null
  /** number of changes per change kind */
  counts: Record<string, number>
  conflicts: unknown[]
  errors: unknown[]
  message: string | null
}

export interface SyncRun extends SyncRunSummary {
  /** the changes in plan order (the first `limit` when asked for fewer) */
  changelog: unknown[]
  /** how many changes the run has */
  changelogTotal: number
}

export interface RunOutcome<T = unknown> {
  status: Exclude<RunStatus, 'running'>
  counts?: Record<string, number>
  conflicts?: unknown[]
  errors?: unknown[]
  /** the run's changes in plan order, stored a chunk at a time */
  changelog?: readonly T[]
  /**
   * What is stored of each change (default: the change as it is), made a chunk at a time, so the
   * changelog of a large run is never copied whole.
   */
  entry?: (change: T) => unknown
  message?: string | null
}

export interface Issuance {
  consumer: string
  userId: string
  clientId: string
  /** e.g. issued, denied, failed */
  outcome: string
  /** defaults to the database's now() */
  issuedAt?: Date
}

export type IssuanceFilter = Partial<Omit<Issuance, 'issuedAt'>> & { since?: Date }

/** Queries by intent. Secrets and passwords go in and come out as plaintext; rows hold them sealed. */
export interface Store extends SyncStateStore {
  getSecret(name: string): Promise<string | undefined>
  putSecret(name: string, value: string): Promise<void>
  /** The stored value, or `generate()`'s stored once: two processes racing get the same value. */
  getOrCreateSecret(name: string, generate: () => string | Promise<string>): Promise<string>
  startRun(run: { realm: string; trigger: string; dryRun: boolean }): Promise<number>
  /** Throws NOT_FOUND for an unknown id. */
  finishRun<T>(id: number, outcome: RunOutcome<T>): Promise<void>
  /**
   * Marks the runs of `realm` still `running` as `interrupted`; returns how many. Only for a
   * caller that holds the realm's sync lock: every run holds it from start to finish, so a run
   * still `running` then was left by a process that died.
   */
  interruptRuns(realm: string): Promise<number>
  /** Newest first, without changelogs. */
  listRuns(query?: { realm?: string; limit?: number }): Promise<SyncRunSummary[]>
  getRun(id: number, opts?: { limit?: number }): Promise<SyncRun | undefined>
  /** Deletes all but the newest `keep` runs (of `realm` when given); returns how many went. */
  pruneRuns(opts: { keep: number; realm?: string }): Promise<number>
  /** Writes the issuances in one insert (none: nothing happens). */
  recordIssuances(issuances: readonly Issuance[]): Promise<void>
  /** Deletes all but the newest `keep` issuances, or those issued before `olderThan`. */
  pruneIssuances(opts: { keep: number } | { olderThan: Date }): Promise<number>
  countIssuances(filter?: IssuanceFilter): Promise<number>
  getUserPassword(realm: string, userId: string): Promise<string | undefined>
  putUserPassword(realm: string, userId: string, password: string): Promise<void>
  /** True when there was one to delete. */
  deleteUserPassword(realm: string, userId: string): Promise<boolean>
}

const summaryColumns = {
  id: syncRuns.id,
  realm: syncRuns.realm,
  trigger: syncRuns.trigger,
  status: syncRuns.status,
  dryRun: syncRuns.dryRun,
  startedAt: syncRuns.startedAt,
  finishedAt: syncRuns.finishedAt,
  counts: syncRuns.counts,
  conflicts: syncRuns.conflicts,
  errors: syncRuns.errors,
  message: syncRuns.message,
}

/**
 * Changes per stored chunk of a changelog, and chunks per read: a few milliseconds each. A chunk
 * of 200 changes is at most about 60 kB of JSON, short-lived in V8's young generation; 500 made
 * strings of up to 150 kB, born in the old generation, which held them until a full collection
 * (the sidecar's peak at the end of a 10 000-user cold sync: 151 MiB with 200, 151-158 with 500).
 */
const CHANGES_PER_CHUNK = 200
const CHUNKS_PER_READ = 10

const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Builds the store over `database.db`. Pass `{ db: tx }` to run it inside a transaction, e.g. a
 * test's transaction that is rolled back.
 */
export function createStore(
  database: Pick<Database, 'db'> & Partial<Pick<Database, 'reclaimSpace'>>,
  box: SecretBox,
): Store {
  const { db } = database
  // After the deletes and updates that would otherwise leave the embedded database growing (see
  // client.ts). A store inside a caller's transaction has none: VACUUM cannot run in one.
  const reclaim = (...tables: PgTable[]) => database.reclaimSpace?.(tables) ?? Promise.resolve()

  const getSecret = async (name: string) => {
    const [row] = await db.select().from(appSecrets).where(eq(appSecrets.name, name))
    return row ? box.open(row.ciphertext) : undefined
  }

  return {
    ...createSyncStateStore(db, reclaim),
    getSecret,
    async putSecret(name, value) {
      const ciphertext = box.seal(value)
      await db
        .insert(appSecrets)
        .values({ name, ciphertext })
        .onConflictDoUpdate({ target: appSecrets.name, set: { ciphertext, updatedAt: sql`now()` } })
    },
    async getOrCreateSecret(name, generate) {
      const existing = await getSecret(name)
      if (existing !== undefined) {
        return existing
      }
      const value = await generate()
      const inserted = await db
        .insert(appSecrets)
        .values({ name, ciphertext: box.seal(value) })
        .onConflictDoNothing()
        .returning({ name: appSecrets.name })
      if (inserted.length > 0) {
        return value
      }
      // Someone else stored it between our read and our insert: theirs wins.
      const winner = await getSecret(name)
      if (winner === undefined) {
        throw new AppError('INTERNAL', `secret "${name}" vanished while being created`)
      }
      return winner
    },

    async startRun({ realm, trigger, dryRun }) {
      const [row] = await db
        .insert(syncRuns)
        .values({ realm, trigger, dryRun })
        .returning({ id: syncRuns.id })
      return mustExist(row, 'sync run insert returned no row').id
    },
    async finishRun(id, outcome) {
      const changelog = outcome.changelog
      await db.transaction(async (tx) => {
        const updated = await tx
          .update(syncRuns)
          .set({
            status: outcome.status,
            finishedAt: sql`now()`,
            message: outcome.message ?? null,
            ...(outcome.counts ? { counts: outcome.counts } : {}),
            ...(outcome.conflicts ? { conflicts: outcome.conflicts } : {}),
            ...(outcome.errors ? { errors: outcome.errors } : {}),
            ...(changelog ? { changeCount: changelog.length } : {}),
          })
          .where(eq(syncRuns.id, id))
          .returning({ id: syncRuns.id })
        if (updated.length === 0) {
          throw new AppError('NOT_FOUND', `sync run ${id} does not exist`)
        }
        if (!changelog) {
          return
        }
        await tx.delete(syncRunChanges).where(eq(syncRunChanges.runId, id))
        // A chunk per statement, with a turn of the event loop between: PGlite runs on it.
        let chunk = 0
        for (const changes of batchesOf(changelog, CHANGES_PER_CHUNK)) {
          await tx.insert(syncRunChanges).values({
            runId: id,
            chunk: chunk++,
            changes: outcome.entry ? changes.map(outcome.entry) : changes,
          })
          await yieldToEventLoop()
        }
      })
    },
    async interruptRuns(realm) {
      const marked = await db
        .update(syncRuns)
        .set({
          status: 'interrupted',
          finishedAt: sql`now()`,
          message: 'interrupted: the process running it stopped before it finished',
        })
        .where(and(eq(syncRuns.realm, realm), eq(syncRuns.status, 'running')))
        .returning({ id: syncRuns.id })
      return marked.length
    },
    async listRuns({ realm, limit = 20 } = {}) {
      return db
        .select(summaryColumns)
        .from(syncRuns)
        .where(realm === undefined ? undefined : eq(syncRuns.realm, realm))
        .orderBy(desc(syncRuns.id))
        .limit(limit)
    },
    async getRun(id, { limit } = {}) {
      const [row] = await db
        .select({ ...summaryColumns, changeCount: syncRuns.changeCount })
        .from(syncRuns)
        .where(eq(syncRuns.id, id))
      if (!row) {
        return undefined
      }
      const { changeCount, ...run } = row
      const wanted = Math.min(limit ?? changeCount, changeCount)
      const changelog: unknown[] = []
      // Chunk by chunk, in order, until `wanted` changes are in (chunk sizes may vary).
      let next = 0
      while (changelog.length < wanted) {
        const chunks = await db
          .select({ chunk: syncRunChanges.chunk, changes: syncRunChanges.changes })
          .from(syncRunChanges)
          .where(and(eq(syncRunChanges.runId, id), gte(syncRunChanges.chunk, next)))
          .orderBy(asc(syncRunChanges.chunk))
          .limit(CHUNKS_PER_READ)
        if (chunks.length === 0) {
          break
        }
        for (const { changes } of chunks) {
          // A loop, not push(...changes): a chunk carried over from before chunking may be huge.
          for (let i = 0; i < changes.length && changelog.length < wanted; i++) {
            changelog.push(changes[i])
          }
        }
        next = (chunks[chunks.length - 1]?.chunk ?? next) + 1
        await yieldToEventLoop()
      }
      return { ...run, changelog, changelogTotal: changeCount }
    },
    async pruneRuns({ keep, realm }) {
      assertKeep(keep)
      const inRealm = realm === undefined ? undefined : eq(syncRuns.realm, realm)
      const newest = db
        .select({ id: syncRuns.id })
        .from(syncRuns)
        .where(inRealm)
        .orderBy(desc(syncRuns.id))
        .limit(keep)
      const deleted = await db
        .delete(syncRuns)
        .where(and(inRealm, notInArray(syncRuns.id, newest)))
        .returning({ id: syncRuns.id })
      if (deleted.length > 0) {
        // a run's row is written twice (started, finished), its changelog once, and both go here
        await reclaim(syncRuns, syncRunChanges)
      }
      return deleted.length
    },

    async recordIssuances(issuances) {
      if (issuances.length === 0) {
        return
      }
      // One array per column, each one text parameter, instead of drizzle's multi-row VALUES:
      // that built 5 parameters per record (500 records per write), each mapped and checked, all
      // on the thread that answers requests: ~9 ms at once, in the middle of a token load.
      const column = (value: (issuance: Issuance) => string | undefined) =>
        arrayLiteral(issuances.map(value))
      await db.execute(sql`
        insert into ${tokenIssuances} (consumer, user_id, client_id, outcome, issued_at)
        select consumer, user_id, client_id, outcome, coalesce(issued_at, now())
        from unnest(
          ${column((i) => i.consumer)}::text[], ${column((i) => i.userId)}::text[],
          ${column((i) => i.clientId)}::text[], ${column((i) => i.outcome)}::text[],
          ${column((i) => i.issuedAt?.toISOString())}::timestamptz[]
        ) as r(consumer, user_id, client_id, outcome, issued_at)`)
    },
    async pruneIssuances(opts) {
      let where: SQL
      if ('olderThan' in opts) {
        where = lt(tokenIssuances.issuedAt, opts.olderThan)
      } else {
        assertKeep(opts.keep)
        // The newest id that goes; null (nothing deleted) while there are at most `keep` rows.
        where = lte(
          tokenIssuances.id,
          sql`(select ${tokenIssuances.id} from ${tokenIssuances} order by ${tokenIssuances.id} desc offset ${opts.keep} limit 1)`,
        )
      }
      const deleted = await db
        .delete(tokenIssuances)
        .where(where)
        .returning({ id: tokenIssuances.id })
      if (deleted.length > 0) {
        await reclaim(tokenIssuances)
      }
      return deleted.length
    },
    async countIssuances(filter = {}) {
      return db.$count(
        tokenIssuances,
        and(
          filter.consumer === undefined ? undefined : eq(tokenIssuances.consumer, filter.consumer),
          filter.userId === undefined ? undefined : eq(tokenIssuances.userId, filter.userId),
          filter.clientId === undefined ? undefined : eq(tokenIssuances.clientId, filter.clientId),
          filter.outcome === undefined ? undefined : eq(tokenIssuances.outcome, filter.outcome),
          filter.since === undefined ? undefined : gte(tokenIssuances.issuedAt, filter.since),
        ),
      )
    },

    async getUserPassword(realm, userId) {
      const [row] = await db
        .select({ ciphertext: userPasswords.ciphertext })
        .from(userPasswords)
        .where(passwordKey(realm, userId))
      return row ? box.open(row.ciphertext) : undefined
    },
    async putUserPassword(realm, userId, password) {
      const ciphertext = box.seal(password)
      await db
        .insert(userPasswords)
        .values({ realm, userId, ciphertext })
        .onConflictDoUpdate({
          target: [userPasswords.realm, userPasswords.userId],
          set: { ciphertext, updatedAt: sql`now()` },
        })
    },
    async deleteUserPassword(realm, userId) {
      const deleted = await db
        .delete(userPasswords)
        .where(passwordKey(realm, userId))
        .returning({ userId: userPasswords.userId })
      return deleted.length > 0
    },
  }
}

/**
 * Runs `fn` in a transaction, or inside `outer` when the caller already has one (so a test can
 * wrap everything in a transaction it rolls back).
 */
export async function withTransaction<T>(
  database: Pick<Database, 'db'>,
  fn: (tx: Db) => Promise<T>,
  outer?: Db,
): Promise<T> {
  return outer ? fn(outer) : database.db.transaction((tx) => fn(tx))
}

function passwordKey(realm: string, userId: string) {
  return and(eq(userPasswords.realm, realm), eq(userPasswords.userId, userId))
}

function assertKeep(keep: number): void {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new AppError('INVALID_INPUT', `keep must be a non-negative integer, got ${keep}`)
  }
}

function mustExist<T>(value: T | undefined, what: string): T {
  if (value === undefined) {
    throw new AppError('INTERNAL', what)
  }
  return value
}
