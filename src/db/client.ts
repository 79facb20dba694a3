import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PGlite } from '@electric-sql/pglite'
import { getTableName, sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT, PgTable } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres, { type Notice } from 'postgres'
import { AppError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { advisoryLockId, createAdvisoryLocks, createLocalLocks, type Release } from './locks.js'
import { type DatabaseHealth, openRemotePglite } from './pglite-remote.js'
import {
  appSecrets,
  MIGRATIONS_SCHEMA,
  MIGRATIONS_TABLE,
  syncRuns,
  tokenIssuances,
  userPasswords,
} from './schema.js'

export type { DatabaseHealth, Release }

const schema = { appSecrets, syncRuns, tokenIssuances, userPasswords }
export type Schema = typeof schema

/**
 * The drizzle handle store code is written against. Both drivers (and their transactions) are
 * PgDatabases over this schema; only the raw result shape differs, which the store never reads.
 */
export type Db = PgDatabase<PgQueryResultHKT, Schema>

/** An open, migrated database plus the cross-process lock for "one sync run per realm". */
export interface Database {
  kind: 'postgres' | 'pglite'
  db: Db
  /**
   * Takes `key` if nobody holds it, else null. On Postgres this is a session advisory lock, so a
   * second process on the same database sees it too; on PGlite an in-process mutex (PGlite is
   * single-process by nature).
   */
  tryLock(key: string): Promise<Release | null>
  /** Waits until `key` is free, then takes it. */
  lock(key: string): Promise<Release>
  /** What is known about the database now: ok, or failing, stalled, reopening (PGlite) and why. */
  health(): DatabaseHealth
  /**
   * Lets Postgres reuse the space of the rows deleted or replaced in `tables`, and of its
   * write-ahead log: on PGlite a VACUUM, and a CHECKPOINT when the log has grown; nothing on
   * PostgreSQL, where autovacuum and the checkpointer do it. Never throws; a failure is logged.
   */
  reclaimSpace(tables: readonly PgTable[]): Promise<void>
  /** Releases held locks and closes the connections. */
  close(): Promise<void>
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; without one, PGlite in `<storageDir>/pglite` */
  url?: string
  storageDir: string
  log: Logger
  /** where the generated SQL lives; the default is next to this module (src/db/migrations) */
  migrationsFolder?: string
  /** PGlite: a call not answered within this is taken for a hung database (default 60 s) */
  callTimeoutMs?: number
  /** PGlite: pause between checks of a failing database (default 5 s) */
  probeIntervalMs?: number
  /** PGlite: write-ahead log that reclaimSpace lets pile up before a checkpoint (16 MiB) */
  checkpointAfterWalBytes?: number
}

/** `src/db/migrations` from source; `dist/migrations` beside the bundled `dist/main.js` in the image. */
export const DEFAULT_MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url))

/** Opens the database and applies pending migrations before returning. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const log = opts.log.child({ component: 'db' })
  const migrationsFolder = opts.migrationsFolder ?? DEFAULT_MIGRATIONS_FOLDER
  const started = Date.now()
  const database = opts.url
    ? await openPostgres(opts.url, migrationsFolder, log)
    : await openPglite(join(opts.storageDir, 'pglite'), migrationsFolder, opts, log)
  log.info({ kind: database.kind, durationMs: Date.now() - started }, 'db.opened')
  return database
}

const migrationConfig = (migrationsFolder: string) => ({
  migrationsFolder,
  migrationsTable: MIGRATIONS_TABLE,
  migrationsSchema: MIGRATIONS_SCHEMA,
})

async function openPostgres(url: string, migrationsFolder: string, log: Logger): Promise<Database> {
  const onnotice = (notice: Notice) => log.debug({ notice: notice.message }, 'db.notice')
  const options = { onnotice, connection: { application_name: 'keycloak-exapp' } }
  await migrateOnPostgres(url, migrationsFolder, options, describe(url))
  const sql = postgres(url, { ...options, max: 10 })
  const locks = createAdvisoryLocks(
    (onclose) => postgres(url, { ...options, max: 1, max_lifetime: null, onclose }),
    log,
  )
  return {
    kind: 'postgres',
    db: drizzlePostgres({ client: sql, schema }),
    tryLock: locks.tryLock,
    lock: locks.lock,
    health: () => postgresHealth,
    reclaimSpace: async () => undefined,
    async close() {
      await locks.closeLocks()
      await sql.end({ timeout: 5 })
    },
  }
}

/**
 * Runs the migrator on its own single connection (drizzle's postgres-js advice). Replicas starting
 * together would otherwise race through the same migrations; an advisory lock on that connection
 * makes the second wait and then find nothing to do.
 */
async function migrateOnPostgres(
  url: string,
  migrationsFolder: string,
  options: postgres.Options<Record<string, postgres.PostgresType>>,
  where: string,
): Promise<void> {
  const sql = postgres(url, { ...options, max: 1 })
  try {
    try {
      await sql`select pg_advisory_lock(${advisoryLockId('migrations')}::bigint)`
    } catch (cause) {
      const text = `cannot connect to the database at ${where}: ${errorMessage(cause)}`
      throw new AppError('INTERNAL', text, { cause })
    }
    try {
      await migratePostgres(drizzlePostgres({ client: sql }), migrationConfig(migrationsFolder))
    } catch (cause) {
      throw new AppError('INTERNAL', `database migration failed: ${errorMessage(cause)}`, { cause })
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * PGlite on a thread of its own (see openRemotePglite): a database that loops or fails on its
 * files is reported and reopened, and never holds the app's event loop.
 */
async function openPglite(
  dataDir: string,
  migrationsFolder: string,
  opts: OpenDatabaseOptions,
  log: Logger,
): Promise<Database> {
  await mkdir(dataDir, { recursive: true })
  let remote: Awaited<ReturnType<typeof openRemotePglite>>
  try {
    remote = await openRemotePglite({
      dataDir,
      log,
      callTimeoutMs: opts.callTimeoutMs,
      probeIntervalMs: opts.probeIntervalMs,
    })
  } catch (cause) {
    throw new AppError('INTERNAL', `cannot open PGlite in ${dataDir}: ${errorMessage(cause)}`, {
      cause,
    })
  }
  try {
    // drizzle's PGlite driver calls only query, exec and transaction, which the remote client has.
    const db = drizzlePglite({ client: remote.client as unknown as PGlite, schema })
    await migratePglite(db, migrationConfig(migrationsFolder))
    const locks = createLocalLocks()
    return {
      kind: 'pglite',
      db,
      tryLock: locks.tryLock,
      lock: locks.lock,
      health: remote.health,
      reclaimSpace: (tables) =>
        reclaim(db, tables, opts.checkpointAfterWalBytes ?? CHECKPOINT_AFTER_WAL_BYTES, log),
      async close() {
        await locks.closeLocks()
        await remote.close()
      },
    }
  } catch (cause) {
    await remote.close().catch(() => undefined)
    throw new AppError('INTERNAL', `cannot migrate PGlite in ${dataDir}: ${errorMessage(cause)}`, {
      cause,
    })
  }
}

/** PGlite: write-ahead log since the last checkpoint beyond which reclaimSpace makes one. */
export const CHECKPOINT_AFTER_WAL_BYTES = 16 * 2 ** 20

/**
 * PGlite is Postgres in single-user mode, where neither autovacuum nor the checkpointer runs.
 *
 * A deleted or updated row stays in its table's files as a dead tuple, and new rows go after it:
 * the issuance log, kept at 10 000 rows, grew by about 115 bytes per token issued (35 MB after
 * 300 000). A VACUUM after the store deletes or replaces rows lets Postgres reuse that space; the
 * files stop growing (they do not shrink). About 1 ms per 1 000 dead rows, on PGlite's thread.
 *
 * Nor is a checkpoint ever made while the database is open (a standalone backend does not ask for
 * one when the log passes max_wal_size), so pg_wal kept every 16 MB segment written since the
 * open, one per ~50 000 tokens, and an unclean stop would have replayed all of it at the next
 * start. After the VACUUM, once `checkpointAfter` bytes of log have accumulated, a CHECKPOINT
 * (1-3 ms) lets Postgres recycle the segments before it.
 */
async function reclaim(
  db: Db,
  tables: readonly PgTable[],
  checkpointAfter: number,
  log: Logger,
): Promise<void> {
  try {
    if (tables.length > 0) {
      await db.execute(sql`vacuum ${sql.join([...tables], sql`, `)}`)
    }
    // PGlite's driver answers { rows }
    const since = (await db.execute(
      sql`select (pg_current_wal_insert_lsn() - redo_lsn)::bigint::text as bytes from pg_control_checkpoint()`,
    )) as unknown as { rows: { bytes: string }[] }
    if (Number(since.rows[0]?.bytes) > checkpointAfter) {
      await db.execute(sql`checkpoint`)
    }
  } catch (err) {
    const names = tables.map((t) => getTableName(t))
    log.warn({ err: errorMessage(err), tables: names }, 'db.reclaim_failed')
  }
}

/** PostgreSQL is reached over the network by postgres.js, which never blocks the app. */
const postgresHealth: DatabaseHealth = { status: 'ok', since: new Date().toISOString() }

/** host:port/database of a URL, for messages: never the password. */
function describe(url: string): string {
  try {
    const u = new URL(url)
    return `${u.host}${u.pathname}`
  } catch {
    return 'DATABASE_URL (unparsable)'
  }
}
