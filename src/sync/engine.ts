import type { Config } from '../config/config.js'
import type { Release } from '../db/client.js'
import type { Store } from '../db/store.js'
import { AppError, type ErrorCode, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { type ApplyReport, applyPlan, type DirectoryWriter } from './apply.js'
import type { Change, Conflict } from './changes.js'
import { type Actual, managedRoles, toDesired, toDesiredSteps } from './model.js'
import type { NextcloudDirectory } from './nextcloud-source.js'
import { type Guard, planSteps, planSync } from './plan.js'
import { mapSteps, runStepsCooperatively } from './steps.js'

/** Where a run came from; stored with it. */
export type Trigger = 'init' | 'api' | 'schedule' | 'user' | 'token' | 'ui'

/** A Keycloak side the engine can read and write: the real realm or an in-memory one. */
export interface SyncTarget extends DirectoryWriter {
  snapshot(): Actual | Promise<Actual>
  /** the part of the realm one user needs; defaults to filtering the full snapshot */
  snapshotUser?(uid: string, hints: { username?: string; email?: string | null }): Promise<Actual>
  readonly writes?: Record<string, number>
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
}

export interface RunOptions {
  trigger: Trigger
  dryRun?: boolean
  force?: boolean
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

const SINGLE_USER_KINDS = new Set(['create-group', 'update-group'])

/** Counts per change kind of what was applied (or, for a plan alone, planned). */
function countApplied(report: ApplyReport): { counts: Record<string, number>; failed: number } {
  const counts: Record<string, number> = {}
  let failed = 0
  for (const result of report.results) {
    if (result.outcome === 'applied') {
      counts[result.change.kind] = (counts[result.change.kind] ?? 0) + 1
    } else if (result.outcome === 'failed' || result.outcome === 'skipped') {
      failed++
    }
  }
  return { counts, failed }
}

function countPlanned(changes: Change[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const change of changes) {
    counts[change.kind] = (counts[change.kind] ?? 0) + 1
  }
  return counts
}

/**
 * Runs syncs: read Nextcloud, read Keycloak, plan, apply, record. One run at a time per realm,
 * also across processes sharing the database (the realm lock); triggers that arrive during a full
 * run are folded into one follow-up run.
 */
export class SyncEngine {
  private readonly log: Logger
  private running: Promise<RunSummary> | undefined
  private followUp: Promise<RunSummary> | undefined
  private followUpForce = false
  private current: Progress | undefined
  private timer: NodeJS.Timeout | undefined
  private nextAt: Date | undefined

  constructor(private readonly deps: SyncEngineDeps) {
    this.log = deps.log.child({ component: 'sync', realm: deps.realm })
  }

  progress(): Progress | undefined {
    return this.current
  }

  nextScheduledRun(): Date | undefined {
    return this.nextAt
  }

  /**
   * A full run. A dry run reads and plans only, at once. A real run that arrives while another
   * runs joins the single follow-up run queued behind it.
   */
  runFull(opts: RunOptions): Promise<RunSummary> {
    if (opts.dryRun) {
      return this.locked(() => this.execute(opts))
    }
    if (!this.running) {
      return this.startRun(opts)
    }
    this.followUpForce ||= opts.force === true
    this.followUp ??= this.running
      .catch(() => undefined)
      .then(() => {
        const force = this.followUpForce
        this.followUp = undefined
        this.followUpForce = false
        return this.startRun({ ...opts, force })
      })
    return this.followUp
  }

  private startRun(opts: RunOptions): Promise<RunSummary> {
    const run = this.locked(() => this.execute(opts)).finally(() => {
      if (this.running === run) {
        this.running = undefined
      }
    })
    this.running = run
    return run
  }

  private lockKey(): string {
    return `sync:${this.deps.realm}`
  }

  /** Runs `work` holding the realm lock, after marking runs a dead process left `running`. */
  private async locked<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.deps.lock(this.lockKey())
    try {
      await this.interruptLeftRuns()
      return await work()
    } finally {
      await release()
    }
  }

  /**
   * Every run holds the realm lock from start to finish, and the lock ends with the process that
   * holds it (a session advisory lock on PostgreSQL, this process's memory on PGlite). So whoever
   * holds the lock knows that runs still `running` belong to a process that died: interrupted.
   */
  private async interruptLeftRuns(): Promise<void> {
    const interrupted = await this.deps.store.interruptRuns(this.deps.realm)
    if (interrupted > 0) {
      this.log.warn({ interrupted }, 'sync.runs_interrupted')
    }
  }

  /**
   * At start: marks the runs an earlier life of this process (or a dead replica) left `running`,
   * unless another process holds the realm lock now (its next run does it then).
   */
  async recoverInterruptedRuns(): Promise<void> {
    const release = await this.deps.tryLock?.(this.lockKey())
    if (!release) {
      return
    }
    try {
      await this.interruptLeftRuns()
    } finally {
      await release()
    }
  }

  private async execute(opts: RunOptions): Promise<RunSummary> {
    const dryRun = opts.dryRun === true
    const startedAt = new Date()
    const runId = await this.deps.store.startRun({
      realm: this.deps.realm,
      trigger: opts.trigger,
      dryRun,
    })
    this.current = { phase: 'reading', runId, trigger: opts.trigger }
    const base = { runId, trigger: opts.trigger, dryRun, startedAt: startedAt.toISOString() }
    try {
      const directory = await this.deps.source.readAll()
      const target = this.deps.target()
      const actual = await target.snapshot()
      // Planning 10 000 users takes a few hundred ms: in steps, so the event loop keeps serving.
      const desired = await runStepsCooperatively(
        toDesiredSteps(directory.users, directory.groups, this.deps.policy),
      )
      const plan = await runStepsCooperatively(
        planSteps(desired, actual, {
          deletePolicy: this.deps.policy.deletePolicy,
          guardPercent: this.deps.policy.guardPercent,
          force: opts.force === true,
          managedRoles: this.managedRoles(),
        }),
      )
      const sizes = { users: directory.users.length, groups: directory.groups.length }
      if (dryRun || (plan.guard.tripped && !plan.guard.forced)) {
        const status: RunStatus = dryRun ? 'succeeded' : 'guard_tripped'
        const message = dryRun
          ? `dry run: ${plan.changes.length} change(s) would be made`
          : (plan.guard.reason ?? 'deletion guard tripped')
        return await this.finish({
          ...base,
          ...sizes,
          status,
          counts: countPlanned(plan.changes),
          failed: 0,
          conflicts: plan.conflicts,
          errors: [],
          guard: plan.guard,
          message,
          changes: plan.changes,
        })
      }
      const report = await this.apply(plan, target, runId, opts.trigger, actual)
      const { counts, failed } = countApplied(report)
      const errors = report.results
        .filter((r) => r.outcome === 'failed' || r.outcome === 'skipped')
        .map(
          (r) =>
            `${r.change.kind} ${'uid' in r.change ? r.change.uid : r.change.gid}: ${r.error ?? r.outcome}`,
        )
      const conflicts: RunConflict[] = [
        ...plan.conflicts,
        ...report.results
          .filter((r) => r.outcome === 'conflict')
          .map((r) => ({
            kind: 'write-conflict' as const,
            change: r.change.kind,
            id: 'uid' in r.change ? r.change.uid : r.change.gid,
            error: r.error ?? '',
          })),
      ]
      const applied = Object.values(counts).reduce((a, b) => a + b, 0)
      return await this.finish({
        ...base,
        ...sizes,
        status: failed > 0 ? 'partial' : 'succeeded',
        counts,
        failed,
        conflicts,
        errors,
        guard: plan.guard,
        message: `${applied} change(s) applied, ${failed} failed, ${conflicts.length} conflict(s)`,
        // Not `changes`: a real run's changelog is stored (GET /api/sync-runs/:id); returning it
        // made a 10 000-user answer megabytes that took the event loop for as long to serialize.
        outcomes: report,
      })
    } catch (err) {
      this.log.error({ err, runId }, 'sync.run_failed')
      return await this.finish({
        ...base,
        users: 0,
        groups: 0,
        status: 'failed',
        counts: {},
        failed: 0,
        conflicts: [],
        errors: [errorMessage(err)],
        guard: null,
        message: `run failed: ${errorMessage(err)}`,
        errorCode: err instanceof AppError ? err.code : 'INTERNAL',
      })
    } finally {
      this.current = undefined
    }
  }

  private managedRoles(): string[] {
    return managedRoles(this.deps.policy)
  }

  private async apply(
    plan: ReturnType<typeof planSync>,
    target: SyncTarget,
    runId: number,
    trigger: Trigger,
    actual: Actual,
  ): Promise<ApplyReport> {
    const report = await applyPlan(plan, target, {
      concurrency: this.deps.policy.concurrency,
      onProgress: ({ done, total }) => {
        this.current = { phase: 'applying', runId, trigger, done, total }
      },
    })
    const revoke = this.deps.onUserRevoked
    if (revoke) {
      for (const uid of touchedUsers(report, actual)) {
        revoke(uid)
      }
    }
    return report
  }

  private async finish(
    summary: Omit<RunSummary, 'finishedAt'> & { outcomes?: ApplyReport },
  ): Promise<RunSummary> {
    const { outcomes, ...rest } = summary
    const result: RunSummary = { ...rest, finishedAt: new Date().toISOString() }
    const changelog = outcomes
      ? await runStepsCooperatively(
          mapSteps(outcomes.results, (r) => ({
            ...r.change,
            outcome: r.outcome,
            ...(r.error ? { error: r.error } : {}),
          })),
        )
      : (summary.changes ?? [])
    await this.deps.store.finishRun(summary.runId, {
      status: summary.status,
      counts: summary.counts,
      conflicts: summary.conflicts,
      errors: summary.errors,
      changelog,
      message: summary.message,
    })
    await this.deps.store.pruneRuns({ keep: this.deps.keepRuns ?? 200, realm: this.deps.realm })
    this.deps.onRunFinished?.(result)
    this.log.info(
      {
        runId: summary.runId,
        trigger: summary.trigger,
        status: summary.status,
        dryRun: summary.dryRun,
        counts: summary.counts,
        failed: summary.failed,
        conflicts: summary.conflicts.length,
        durationMs: Date.parse(result.finishedAt) - Date.parse(summary.startedAt),
      },
      'sync.run_finished',
    )
    return result
  }

  /**
   * Syncs one user, re-read from Nextcloud (the request never says what the user is): created or
   * updated when Nextcloud has it, disabled or deleted (policy) when it no longer does.
   */
  async runUser(uid: string, trigger: Trigger): Promise<UserSyncResult> {
    return this.locked(async () => {
      const startedAt = new Date()
      const runId = await this.deps.store.startRun({
        realm: this.deps.realm,
        trigger,
        dryRun: false,
      })
      const base = { runId, trigger, dryRun: false, startedAt: startedAt.toISOString() }
      try {
        const { user, groups } = await this.deps.source.readUser(uid)
        const target = this.deps.target()
        const desired = toDesired(user ? [user] : [], groups, this.deps.policy)
        const wanted = desired.users[0]
        // The other users stay in the snapshot (their changes are dropped below): a username or
        // email one of them holds is then a conflict, not a create Keycloak refuses.
        const actual = target.snapshotUser
          ? await target.snapshotUser(uid, { username: wanted?.username, email: wanted?.email })
          : await target.snapshot()
        const full = planSync(desired, actual, {
          deletePolicy: this.deps.policy.deletePolicy,
          guardPercent: this.deps.policy.guardPercent,
          // The guard protects bulk runs from a broken read; one named user is deliberate.
          force: true,
          managedRoles: this.managedRoles(),
        })
        const mine = full.changes.filter(
          (c) => ('uid' in c && c.uid === uid) || SINGLE_USER_KINDS.has(c.kind),
        )
        const plan = {
          ...full,
          changes: mine,
          conflicts: full.conflicts.filter((c) => !('uid' in c) || c.uid === uid),
        }
        const report = await this.apply(plan, target, runId, trigger, actual)
        const { counts, failed } = countApplied(report)
        const summary = await this.finish({
          ...base,
          users: user ? 1 : 0,
          groups: groups.length,
          status: failed > 0 ? 'failed' : 'succeeded',
          counts,
          failed,
          conflicts: plan.conflicts,
          errors: report.results.filter((r) => r.error).map((r) => `${r.change.kind}: ${r.error}`),
          guard: null,
          message: `user ${uid}: ${mine.length} change(s)`,
          changes: mine,
          outcomes: report,
        })
        const existed = actual.users.some((u) => u.uid === uid)
        const action: UserSyncResult['action'] = counts['delete-user']
          ? 'deleted'
          : counts['disable-user'] && !user
            ? 'disabled'
            : counts['create-user']
              ? 'created'
              : mine.length > 0
                ? 'updated'
                : user || existed
                  ? 'unchanged'
                  : 'absent'
        const synced = failed === 0 && plan.conflicts.length === 0
        return { status: synced ? 'success' : 'failed', user_id: uid, synced, action, run: summary }
      } catch (err) {
        await this.deps.store.finishRun(runId, {
          status: 'failed',
          errors: [errorMessage(err)],
          message: errorMessage(err),
        })
        throw err
      }
    })
  }

  /** Periodic full runs every `intervalSeconds` (0 = off); a failed run is logged, not fatal. */
  startSchedule(): void {
    const seconds = this.deps.policy.intervalSeconds
    if (seconds <= 0 || this.timer) {
      return
    }
    const schedule = () => {
      this.nextAt = new Date(Date.now() + seconds * 1000)
      this.timer = setTimeout(async () => {
        try {
          await this.runFull({ trigger: 'schedule' })
        } catch (err) {
          this.log.error({ err }, 'sync.schedule_failed')
        }
        if (this.timer) {
          schedule()
        }
      }, seconds * 1000)
      this.timer.unref()
    }
    schedule()
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    this.nextAt = undefined
    await Promise.allSettled([this.running, this.followUp])
  }
}

/**
 * Users whose tokens may carry something a run changed: every user a write was attempted for (a
 * failed write may have half happened), and the members of groups renamed or deleted.
 */
function touchedUsers(report: ApplyReport, actual: Actual): Set<string> {
  const uids = new Set<string>()
  const groups = new Set<string>()
  for (const { change, outcome } of report.results) {
    if (outcome !== 'applied' && outcome !== 'failed') {
      continue
    }
    if ('uid' in change) {
      uids.add(change.uid)
    } else if (change.kind === 'update-group' || change.kind === 'delete-group') {
      groups.add(change.gid)
    }
  }
  if (groups.size > 0) {
    for (const user of actual.users) {
      if (user.groups.some((gid) => groups.has(gid))) {
        uids.add(user.uid)
      }
    }
  }
  return uids
}
