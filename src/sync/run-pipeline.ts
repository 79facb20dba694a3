import { AppError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { type ApplyReport, type ApplyResult, applyPlan } from './apply.js'
import type { Change } from './changes.js'
import { type Actual, type Desired, managedRoles, toDesired, toDesiredSteps } from './model.js'
import type { NextcloudDirectory } from './nextcloud-source.js'
import { planSteps, planSync } from './plan.js'
import {
  type Basis,
  beforeWrites,
  DEFAULT_FULL_INTERVAL_SECONDS,
  readBasis,
  recordState,
} from './run-basis.js'
import type {
  Progress,
  RunConflict,
  RunOptions,
  RunStatus,
  RunSummary,
  SyncEngineDeps,
  SyncTarget,
  Trigger,
  UserSyncResult,
} from './run-types.js'
import { runStepsCooperatively } from './steps.js'

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
 * One run from start to end: read Nextcloud, read Keycloak, plan, apply, record. Knows nothing of
 * when runs happen or who else runs (run-coordinator.ts, schedule.ts); the caller holds the lock.
 */
export class RunPipeline {
  private current: Progress | undefined

  constructor(
    private readonly deps: SyncEngineDeps,
    private readonly log: Logger,
  ) {}

  progress(): Progress | undefined {
    return this.current
  }

  /** A full run: read Nextcloud, read Keycloak, plan, apply (unless a dry run), record. */
  async runFull(opts: RunOptions): Promise<RunSummary> {
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
      // Dropped once the desired state is built, before the realm is read: Nextcloud's users (the
      // fields the sync reads, about 3 MiB at 10 000 users) and the realm state are never in memory
      // together. Planning 10 000 users takes a few hundred ms: in steps, so the event loop keeps
      // serving.
      let directory: NextcloudDirectory | undefined = await this.deps.source.readAll()
      let desired: Desired | undefined = await runStepsCooperatively(
        toDesiredSteps(directory.users, directory.groups, this.deps.policy),
      )
      const sizes = { users: directory.users.length, groups: directory.groups.length }
      directory = undefined
      const target = this.deps.target()
      const basis = await readBasis(this.basisDeps(), target, opts, startedAt)
      const actual = basis.actual
      const basisSummary = {
        kind: basis.kind,
        reason: basis.reason,
        ...(basis.reads === undefined ? {} : { reads: basis.reads }),
      }
      const plan = await runStepsCooperatively(
        planSteps(desired, actual, {
          deletePolicy: this.deps.policy.deletePolicy,
          guardPercent: this.deps.policy.guardPercent,
          force: opts.force === true,
          managedRoles: this.managedRoles(),
        }),
      )
      // The plan's changes carry what the writes need: the desired state is not kept through them.
      desired = undefined
      if (dryRun || (plan.guard.tripped && !plan.guard.forced)) {
        const status: RunStatus = dryRun ? 'succeeded' : 'guard_tripped'
        const message = dryRun
          ? `dry run: ${plan.changes.length} change(s) would be made`
          : (plan.guard.reason ?? 'deletion guard tripped')
        if (!dryRun) {
          // Nothing was written: the realm is as the basis says.
          await recordState(this.basisDeps(), target, basis, null)
        }
        return await this.finish({
          ...base,
          ...sizes,
          basis: basisSummary,
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
      if (plan.changes.length > 0) {
        await beforeWrites(this.basisDeps(), basis)
      }
      const report = await this.apply(plan, target, runId, opts.trigger, actual)
      this.deps.collectGarbage?.()
      await recordState(this.basisDeps(), target, basis, report)
      this.deps.collectGarbage?.()
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
        basis: basisSummary,
        counts,
        failed,
        conflicts,
        errors,
        guard: plan.guard,
        message: `${applied} change(s) applied, ${failed} failed, ${conflicts.length} conflict(s); ${describeBasis(basis)}`,
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

  private basisDeps() {
    return {
      realm: this.deps.realm,
      store: this.deps.store,
      fullIntervalSeconds: this.deps.policy.fullIntervalSeconds ?? DEFAULT_FULL_INTERVAL_SECONDS,
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
    const outcome = {
      status: summary.status,
      counts: summary.counts,
      conflicts: summary.conflicts,
      errors: summary.errors,
      message: summary.message,
    }
    await (outcomes
      ? this.deps.store.finishRun(summary.runId, {
          ...outcome,
          changelog: outcomes.results,
          entry: changelogEntry,
        })
      : this.deps.store.finishRun(summary.runId, { ...outcome, changelog: summary.changes ?? [] }))
    await this.deps.store.pruneRuns({ keep: this.deps.keepRuns ?? 200, realm: this.deps.realm })
    this.deps.onRunFinished?.(result)
    this.log.info(
      {
        runId: summary.runId,
        trigger: summary.trigger,
        status: summary.status,
        basis: summary.basis?.kind,
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
  }
}

/** A change of the stored changelog: the planned change with what became of it. */
function changelogEntry(result: ApplyResult): unknown {
  return {
    ...result.change,
    outcome: result.outcome,
    ...(result.error ? { error: result.error } : {}),
  }
}

function describeBasis(basis: Basis): string {
  return basis.kind === 'full'
    ? `realm read from Keycloak (${basis.reason})`
    : `planned on the stored state (${basis.reason}, ${basis.reads ?? 0} object(s) read again)`
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
