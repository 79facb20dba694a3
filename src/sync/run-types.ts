import type { Config } from '../config/config.js'
import type { Release } from '../db/client.js'
import type { Store } from '../db/store.js'
import type { ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'
import type { DirectoryWriter } from './apply.js'
import type { Change, Conflict } from './changes.js'
import type { Actual } from './model.js'
import type { NextcloudDirectory } from './nextcloud-source.js'
import type { Guard } from './plan.js'
import type { ChangeFeed } from './realm-changes.js'

/** Where a run came from; stored with it. */
export type Trigger = 'init' | 'api' | 'schedule' | 'user' | 'token' | 'ui'

/** A Keycloak side the engine can read and write: the real realm or an in-memory one. */
export interface SyncTarget extends DirectoryWriter {
  snapshot(): Actual | Promise<Actual>
  /** the part of the realm one user needs; defaults to filtering the full snapshot */
  snapshotUser?(uid: string, hints: { username?: string; email?: string | null }): Promise<Actual>
  /** requests sent per write operation */
  readonly writes?: Record<string, number>
  /**
   * What changed in the realm since the stored state, read cheaply. A target with it, `prime` and
   * `keycloakId` lets ordinary runs plan against the stored state; without, every run is full.
   */
  readonly feed?: ChangeFeed
  /** Makes the managed objects of `actual` (from the stored state) writable without a snapshot. */
  prime?(actual: Actual): void
  /** The Keycloak id of a managed user or group this target knows (created or primed). */
  keycloakId?(kind: 'user' | 'group', key: string): string | undefined
}

export interface SyncSource {
  readAll(): Promise<NextcloudDirectory>
  readUser(uid: string): Promise<{
    user: NextcloudDirectory['users'][number] | null
    groups: NextcloudDirectory['groups']
  }>
}

export interface SyncEngineDeps {
  realm: string
  source: SyncSource
  /** a fresh target per run: it caches ids read during that run only */
  target(): SyncTarget
  store: Store
  lock(key: string): Promise<Release>
  /** takes the lock only if it is free (null when held); lets the start-up sweep skip a busy realm */
  tryLock?(key: string): Promise<Release | null>
  policy: Config['sync']
  log: Logger
  /**
   * told about every user a run wrote to (profile, email, enabled state, memberships, roles,
   * deletion, or a group of theirs renamed or deleted), so no cached token carries what changed
   */
  onUserRevoked?(uid: string): void
  /** told about every finished run (metrics) */
  onRunFinished?(run: RunSummary): void
  /** how many stored runs to keep */
  keepRuns?: number
  /**
   * called where a run has left most of its garbage and is about to write a lot more: after the
   * writes to Keycloak, and after the realm state is stored (before the changelog); the app
   * passes a full collection of its heap when it has grown (heap.ts)
   */
  collectGarbage?(): void
}

/** `partial`: the run went through but some writes failed (`errors` says which). */
export type RunStatus = 'succeeded' | 'partial' | 'failed' | 'guard_tripped'

/** A planned conflict, or a write Keycloak refused as one (e.g. an email taken meanwhile). */
export type RunConflict =
  | Conflict
  | { kind: 'write-conflict'; change: Change['kind']; id: string; error: string }

export interface RunSummary {
  runId: number
  trigger: Trigger
  status: RunStatus
  dryRun: boolean
  startedAt: string
  finishedAt: string
  /** Nextcloud users and groups read */
  users: number
  groups: number
  /** changes applied per kind (dry run: planned per kind) */
  counts: Record<string, number>
  failed: number
  conflicts: RunConflict[]
  errors: string[]
  guard: Guard | null
  message: string
  /** why a failed run failed, as an error code (which side was unavailable) */
  errorCode?: ErrorCode
  /** the plan; on a real run only when asked for */
  changes?: Change[]
  /**
   * what the plan was made against: `full`, the whole managed realm read from Keycloak; `stored`,
   * the state the previous runs left, with the objects admin events touched read again
   */
  basis?: { kind: 'full' | 'stored'; reason: string; reads?: number }
}

export interface RunOptions {
  trigger: Trigger
  dryRun?: boolean
  /** passes the deletion guard; a forced run is a full reconciliation too */
  force?: boolean
  /** reads the whole managed part of the realm from Keycloak instead of the stored state */
  full?: boolean
}

export type Progress =
  | { phase: 'reading'; runId: number; trigger: Trigger }
  | { phase: 'applying'; runId: number; trigger: Trigger; done: number; total: number }

export interface UserSyncResult {
  status: 'success' | 'failed'
  user_id: string
  synced: boolean
  /** what happened in Keycloak */
  action: 'created' | 'updated' | 'unchanged' | 'disabled' | 'deleted' | 'absent'
  run: RunSummary
}
