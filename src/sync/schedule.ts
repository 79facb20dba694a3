import type { Logger } from '../log.js'

/**
 * A periodic run every `intervalSeconds` (0 = off), counted from the end of the previous one; a
 * failed run is logged, not fatal.
 */
export class SyncSchedule {
  private timer: NodeJS.Timeout | undefined
  private nextAt: Date | undefined

  constructor(
    private readonly intervalSeconds: number,
    private readonly run: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  nextRun(): Date | undefined {
    return this.nextAt
  }

  start(): void {
    const seconds = this.intervalSeconds
    if (seconds <= 0 || this.timer) {
      return
    }
    const schedule = () => {
      this.nextAt = new Date(Date.now() + seconds * 1000)
      this.timer = setTimeout(async () => {
        try {
          await this.run()
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

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.nextAt = undefined
  }
}
