import type { Release } from '../db/client.js'
import type { Store } from '../db/store.js'
import type { Logger } from '../log.js'

export interface RunCoordinatorDeps {
  realm: string
  store: Pick<Store, 'interruptRuns'>
  lock(key: string): Promise<Release>
  tryLock?(key: string): Promise<Release | null>
  log: Logger
}

/**
 * Who runs when: one run at a time per realm, also across processes sharing the database (the
 * realm lock); bulk runs that arrive while one runs are folded into one follow-up run; runs a dead
 * process left `running` are marked interrupted by whoever takes the lock next.
 */
export class RunCoordinator<T, O extends { force?: boolean; full?: boolean }> {
  private running: Promise<T> | undefined
  private followUp: Promise<T> | undefined
  private followUpForce = false
  private followUpFull = false

  constructor(private readonly deps: RunCoordinatorDeps) {}

  /**
   * Starts `work(opts)` when nothing runs; else joins the single follow-up run queued behind the
   * current one (forced, or full, when any caller asked for it).
   */
  coalesced(opts: O, work: (opts: O) => Promise<T>): Promise<T> {
    if (!this.running) {
      return this.start(opts, work)
    }
    this.followUpForce ||= opts.force === true
    this.followUpFull ||= opts.full === true
    this.followUp ??= this.running
      .catch(() => undefined)
      .then(() => {
        const force = this.followUpForce
        const full = this.followUpFull
        this.followUp = undefined
        this.followUpForce = false
        this.followUpFull = false
        return this.start({ ...opts, force, full }, work)
      })
    return this.followUp
  }

  private start(opts: O, work: (opts: O) => Promise<T>): Promise<T> {
    const run = this.locked(() => work(opts)).finally(() => {
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
  async locked<R>(work: () => Promise<R>): Promise<R> {
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
      this.deps.log.warn({ interrupted }, 'sync.runs_interrupted')
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

  /** Waits for the run in progress and the follow-up queued behind it. */
  async settled(): Promise<void> {
    await Promise.allSettled([this.running, this.followUp])
  }
}
