import type { Logger } from '../log.js'
import { RunCoordinator } from './run-coordinator.js'
import { RunPipeline } from './run-pipeline.js'
import type {
  Progress,
  RunOptions,
  RunSummary,
  SyncEngineDeps,
  Trigger,
  UserSyncResult,
} from './run-types.js'
import { SyncSchedule } from './schedule.js'

export type {
  Progress,
  RunConflict,
  RunOptions,
  RunStatus,
  RunSummary,
  SyncEngineDeps,
  SyncSource,
  SyncTarget,
  Trigger,
  UserSyncResult,
} from './run-types.js'

/**
 * Runs syncs: read Nextcloud, read Keycloak, plan, apply, record (run-pipeline.ts). One run at a
 * time per realm, also across processes sharing the database; triggers that arrive during a full
 * run are folded into one follow-up run (run-coordinator.ts); periodic runs (schedule.ts).
 */
export class SyncEngine {
  private readonly log: Logger
  private readonly pipeline: RunPipeline
  private readonly coordinator: RunCoordinator<RunSummary, RunOptions>
  private readonly schedule: SyncSchedule

  constructor(deps: SyncEngineDeps) {
    this.log = deps.log.child({ component: 'sync', realm: deps.realm })
    this.pipeline = new RunPipeline(deps, this.log)
    this.coordinator = new RunCoordinator({ ...deps, log: this.log })
    this.schedule = new SyncSchedule(
      deps.policy.intervalSeconds,
      () => this.runFull({ trigger: 'schedule' }),
      this.log,
    )
  }

  progress(): Progress | undefined {
    return this.pipeline.progress()
  }

  nextScheduledRun(): Date | undefined {
    return this.schedule.nextRun()
  }

  /**
   * A full run. A dry run reads and plans only, at once. A real run that arrives while another
   * runs joins the single follow-up run queued behind it.
   */
  runFull(opts: RunOptions): Promise<RunSummary> {
    if (opts.dryRun) {
      return this.coordinator.locked(() => this.pipeline.runFull(opts))
    }
    return this.coordinator.coalesced(opts, (o) => this.pipeline.runFull(o))
  }

  /**
   * Syncs one user, re-read from Nextcloud (the request never says what the user is): created or
   * updated when Nextcloud has it, disabled or deleted (policy) when it no longer does.
   */
  runUser(uid: string, trigger: Trigger): Promise<UserSyncResult> {
    return this.coordinator.locked(() => this.pipeline.runUser(uid, trigger))
  }

  /**
   * At start: marks the runs an earlier life of this process (or a dead replica) left `running`,
   * unless another process holds the realm lock now (its next run does it then).
   */
  recoverInterruptedRuns(): Promise<void> {
    return this.coordinator.recoverInterruptedRuns()
  }

  /** Periodic full runs every `intervalSeconds` (0 = off); a failed run is logged, not fatal. */
  startSchedule(): void {
    this.schedule.start()
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    this.schedule.stop()
    await this.coordinator.settled()
  }
}
