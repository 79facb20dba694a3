import { AppError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'

/** One init step: reaching its end reports `progress` to Nextcloud. */
export interface InitStep {
  name: string
  /** progress reported once the step has finished, 1..99 */
  progress: number
  timeoutMs: number
  run(signal: AbortSignal): Promise<void>
}

export type InitState =
  | { kind: 'idle' }
  | { kind: 'running'; step: string; progress: number; since: Date }
  | { kind: 'done'; at: Date }
  | { kind: 'failed'; step: string; error: string; at: Date }

export interface ProgressReporter {
  /** PUT …/ex-app/status; progress 100 blocks until Nextcloud has enabled us */
  report(progress: number, error?: string): Promise<void>
}

export interface LifecycleDeps {
  steps: InitStep[]
  reporter: ProgressReporter
  /** does what enabling or disabling means; resolves to an error string, '' on success */
  onEnabled(enabled: boolean): Promise<string>
  log: Logger
  /** pause between retries of a failed progress report */
  retryDelayMs?: number
}

export interface Lifecycle {
  /** starts init in the background unless it is already running; never throws */
  startInit(): { started: boolean }
  initState(): InitState
  /** waits for a running init to end (tests and shutdown) */
  settled(): Promise<void>
  setEnabled(enabled: boolean): Promise<{ error: string }>
}

/** Rejects with a TIMEOUT-like AppError when `work` takes longer than `ms`, and aborts it. */
export async function withDeadline<T>(
  what: string,
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seconds = Math.round(ms / 1000)
      controller.abort()
      reject(new AppError('INTERNAL', `${what} did not finish within ${seconds} s`))
    }, ms)
  })
  try {
    return await Promise.race([work(controller.signal), deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * AppAPI's init and enable protocol: `/init` answers at once and the steps run
 * in the background, each with a deadline, reporting progress after each; a failure is reported as
 * an error with the last progress reached (never 100, which would enable the app anyway). The
 * final 100 is sent last, since Nextcloud calls `/heartbeat` and `/enabled` before answering it.
 */
export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const log = deps.log.child({ component: 'lifecycle' })
  const retryDelayMs = deps.retryDelayMs ?? 2_000
  let state: InitState = { kind: 'idle' }
  let running: Promise<void> = Promise.resolve()

  const report = async (progress: number, error?: string) => {
    // A report can fail while Nextcloud is busy; try a few times, spaced, never in a tight loop.
    for (let attempt = 1; ; attempt++) {
      try {
        await deps.reporter.report(progress, error)
        return
      } catch (err) {
        if (attempt >= 3 || (err instanceof AppError && err.code === 'UNAUTHORIZED')) {
          log.error({ err, progress }, 'init.report_failed')
          return
        }
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt))
      }
    }
  }

  const run = async () => {
    let progress = 0
    await report(0)
    for (const step of deps.steps) {
      state = { kind: 'running', step: step.name, progress, since: new Date() }
      log.info({ step: step.name }, 'init.step_started')
      try {
        await withDeadline(`init step "${step.name}"`, step.timeoutMs, (signal) => step.run(signal))
      } catch (err) {
        const message = errorMessage(err)
        state = { kind: 'failed', step: step.name, error: message, at: new Date() }
        log.error({ err, step: step.name }, 'init.step_failed')
        await report(Math.min(progress, 99), `${step.name}: ${message}`)
        return
      }
      progress = Math.min(99, Math.max(progress, step.progress))
      log.info({ step: step.name, progress }, 'init.step_done')
      await report(progress)
    }
    state = { kind: 'done', at: new Date() }
    await report(100)
    log.info('init.done')
  }

  return {
    startInit() {
      if (state.kind === 'running') {
        return { started: false }
      }
      state = { kind: 'running', step: 'starting', progress: 0, since: new Date() }
      running = run().catch((err) => {
        log.error({ err }, 'init.crashed')
      })
      return { started: true }
    },
    initState: () => state,
    settled: () => running,
    async setEnabled(enabled) {
      try {
        const error = await deps.onEnabled(enabled)
        log.info({ enabled, error }, 'lifecycle.enabled')
        return { error }
      } catch (err) {
        log.error({ err, enabled }, 'lifecycle.enable_failed')
        return { error: errorMessage(err) }
      }
    },
  }
}
