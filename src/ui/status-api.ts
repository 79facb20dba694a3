/**
 * The JSON the status page (src/ui/static) reads from the API, as types built from the server's
 * own: the page's modules import them in JSDoc (`import('../status-api.js').…`), so a change on
 * the server that the page does not follow fails `npm run typecheck`. Types only: nothing here
 * runs, and the browser never loads this file.
 */
import type { SyncRun, SyncRunSummary } from '../db/store.js'
import type { Credentials, Overview } from '../http/ui-routes.js'
import type { Vocabulary } from '../http/vocabulary.js'
import type { Outcome } from '../sync/apply.js'
import type { Change } from '../sync/changes.js'
import type { Progress, RunConflict, RunSummary } from '../sync/engine.js'

export type { Credentials, Overview, Progress, RunConflict, Vocabulary }

/** A value as `JSON.parse` gives it back: dates are strings. */
export type Json<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T

/** One change of a stored changelog: what was planned, and for a real run how it went. */
export type LoggedChange = Change & { outcome?: Outcome; error?: string }

/** A stored run as `GET /api/sync-runs` and `GET /api/sync-status` list it. */
export type RunRow = Json<Omit<SyncRunSummary, 'conflicts' | 'errors'>> & {
  conflicts: RunConflict[]
  errors: string[]
}

/** `GET /api/sync-runs/:id` */
export type RunDetail = RunRow &
  Json<Pick<SyncRun, 'changelogTotal'>> & {
    changelog: LoggedChange[]
  }

/** `GET /api/sync-runs` */
export interface RunList {
  runs: RunRow[]
}

/** `GET /api/sync-status` */
export interface SyncStatus {
  running: Progress | null
  lastRun: RunRow | null
  nextRun: string | null
}

/** `POST /api/sync-all?background=1` */
export interface SyncStarted {
  status: 'started'
  after: number
}

/**
 * `POST /api/sync-all?dryRun=1`: the run's summary with the plan (a tripped guard or a failure
 * answers the same body with an `error` beside it).
 */
export type DryRunAnswer = Omit<RunSummary, 'status'> & {
  status: string
  runStatus: RunSummary['status']
  synced: number
}

/** The body of every error answer. */
export interface ErrorAnswer {
  error: { code: string; message: string; requestId: string }
}
