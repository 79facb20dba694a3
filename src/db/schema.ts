import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core'

/**
 * `partial`: the run went through but some writes failed. `interrupted`: the process running it
 * stopped (killed, crashed) before it finished; found and marked by a later run.
 */
export const RUN_STATUSES = [
  'running',
  'succeeded',
  'partial',
  'failed',
  'guard_tripped',
  'interrupted',
] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow()
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow()

/** Secrets the sidecar generates and must keep (signing keys, client secrets), sealed by crypto.ts. */
export const appSecrets = pgTable('app_secrets', {
  name: text('name').primaryKey(),
  ciphertext: text('ciphertext').notNull(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
})

/** One row per sync run; its changelog is in sync_run_changes. */
export const syncRuns = pgTable(
  'sync_runs',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    realm: text('realm').notNull(),
    trigger: text('trigger').notNull(),
    status: text('status').$type<RunStatus>().notNull().default('running'),
    dryRun: boolean('dry_run').notNull().default(false),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    counts: jsonb('counts').$type<Record<string, number>>().notNull().default({}),
    conflicts: jsonb('conflicts').$type<unknown[]>().notNull().default([]),
    errors: jsonb('errors').$type<unknown[]>().notNull().default([]),
    /** how many changes the run's changelog (sync_run_changes) holds */
    changeCount: integer('change_count').notNull().default(0),
    message: text('message'),
  },
  (t) => [
    // Text plus a check instead of a pg enum: adding a status later is a plain migration.
    check('sync_runs_status_check', sql.raw(`status in ('${RUN_STATUSES.join("', '")}')`)),
    // listRuns: newest runs of one realm; ids grow with start time.
    index('sync_runs_realm_id_idx').on(t.realm, t.id.desc()),
  ],
)

/**
 * A run's changelog in plan order, as consecutive chunks of a few hundred changes. Stored and
 * read a chunk per statement, so the 50 000 changes of a large run never hold the event loop
 * (an embedded PGlite runs on it) and the status page reads only the first chunk. Goes with its
 * run.
 */
export const syncRunChanges = pgTable(
  'sync_run_changes',
  {
    runId: bigint('run_id', { mode: 'number' })
      .notNull()
      .references(() => syncRuns.id, { onDelete: 'cascade' }),
    chunk: integer('chunk').notNull(),
    changes: jsonb('changes').$type<unknown[]>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.chunk] })],
)

/** Who asked for a token for whom (never the token itself), with bounded retention. */
export const tokenIssuances = pgTable(
  'token_issuances',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    consumer: text('consumer').notNull(),
    userId: text('user_id').notNull(),
    clientId: text('client_id').notNull(),
    outcome: text('outcome').notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // pruning by age and counting a recent window; pruning by count walks the primary key
  (t) => [index('token_issuances_issued_at_idx').on(t.issuedAt)],
)

/** Password-mode fallback: the random per-user Keycloak password, sealed by crypto.ts. */
export const userPasswords = pgTable(
  'user_passwords',
  {
    realm: text('realm').notNull(),
    userId: text('user_id').notNull(),
    ciphertext: text('ciphertext').notNull(),
    updatedAt: updatedAt(),
  },
  (t) => [primaryKey({ columns: [t.realm, t.userId] })],
)

/** Where the next run's read of the realm's admin events starts (Keycloak's clock, ms). */
export interface EventsCursor {
  time: number
  /** ids of the events at exactly `time` already seen (several can share a millisecond) */
  seen: string[]
}

/**
 * Per realm, what the stored sync state (sync_state_objects) is worth. A run plans against the
 * stored state instead of reading Keycloak while it is trusted, written for the same Keycloak realm
 * (`realmId`) and reconciled recently enough; admin events since `eventsCursor` say which objects
 * changed behind the sidecar's back.
 */
export const syncStates = pgTable('sync_states', {
  realm: text('realm').primaryKey(),
  /** Keycloak's id of the realm: another id means the realm was deleted and created again */
  realmId: text('realm_id').notNull(),
  eventsCursor: jsonb('events_cursor').$type<EventsCursor>(),
  /** when a run last read the whole managed part of the realm from Keycloak */
  reconciledAt: timestamp('reconciled_at', { withTimezone: true }).notNull(),
  /** false while a run writes, and after one that failed or was interrupted */
  trusted: boolean('trusted').notNull().default(false),
  updatedAt: updatedAt(),
})

/**
 * The realm's managed objects as the last run left them, one row each: kind `user` (key: uid),
 * `group` (key: gid), or the names of unmanaged Keycloak objects (`unmanaged-user`,
 * `unmanaged-group`; key: Keycloak id). `fingerprint` hashes `state`, so a run rewrites only the
 * rows that changed.
 */
export const syncStateObjects = pgTable(
  'sync_state_objects',
  {
    realm: text('realm').notNull(),
    kind: text('kind').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    state: jsonb('state').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.realm, t.kind, t.key] })],
)

/**
 * drizzle's default ledger (`drizzle.__drizzle_migrations`) would be shared with any other
 * drizzle-based app on the same database, and its migrator only compares against the newest
 * entry, so another app's migrations could make ours look applied. Ours gets its own table.
 */
export const MIGRATIONS_SCHEMA = 'drizzle'
export const MIGRATIONS_TABLE = '__keycloak_exapp_migrations'
