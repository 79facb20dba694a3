/**
 * The supervisor's decisions as a pure transition table. `supervisor.ts` feeds it events (what
 * happened) and executes the effects it returns (what to do); nothing here touches a process,
 * a timer or a clock, so every path is testable with plain arrays of events.
 */

export interface ExitInfo {
  code: number | null
  signal: string | null
}

/**
 * `failures` counts crashes since Keycloak last stayed ready for `STABLE_AFTER_MS`; it drives
 * the backoff and lets callers notice a crash loop.
 */
export type SupervisorState =
  | { kind: 'stopped' }
  | { kind: 'starting'; since: number; failures: number }
  | { kind: 'ready'; since: number; failures: number; probeFailures: number }
  | { kind: 'stopping'; since: number; failures: number; after: AfterStop }
  | { kind: 'crashed'; since: number; failures: number; retryInMs: number; exit: ExitInfo }

/**
 * What follows the exit of a child we asked to stop: nothing (`stopped`), an immediate spawn
 * (`start`, asked for while stopping), or the crash path (`restart`, after a start timeout or a
 * hang, which must count as a failure so a broken install cannot restart in a tight loop).
 */
export type AfterStop = 'stopped' | 'start' | 'restart'

export type SupervisorEvent =
  | { type: 'start'; at: number }
  | { type: 'stop'; at: number }
  | { type: 'probe-ok'; at: number }
  | { type: 'probe-failed'; at: number }
  | { type: 'exited'; at: number; code: number | null; signal: string | null }
  | { type: 'start-timeout'; at: number }
  | { type: 'backoff-elapsed'; at: number }

export type Effect =
  | { kind: 'spawn' }
  | { kind: 'kill' }
  | { kind: 'scheduleRestart'; ms: number }
  | { kind: 'cancelRestart' }

export interface Transition {
  state: SupervisorState
  effects: Effect[]
}

export const BACKOFF_INITIAL_MS = 1_000
export const BACKOFF_MAX_MS = 30_000
/** Ready this long before a crash means the crash is not part of a loop: backoff starts over. */
export const STABLE_AFTER_MS = 60_000
/**
 * Consecutive failed readiness probes after which a ready Keycloak counts as hung and is
 * restarted. Probes run every few seconds while ready, so a short blip does not restart it.
 */
export const HUNG_AFTER_PROBE_FAILURES = 6
/** Crashes without reaching ready after which a caller waiting for readiness should give up. */
export const CRASH_LOOP_FAILURES = 3

/** Capped exponential backoff: 1 s, 2 s, 4 s, … 30 s for the 1st, 2nd, 3rd, … failure. */
export function backoffMs(failures: number): number {
  const exponent = Math.max(0, failures - 1)
  return Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.min(exponent, 16))
}

export type Readiness = { kind: 'ready' } | { kind: 'waiting' } | { kind: 'failed'; reason: string }

/**
 * Whether someone waiting for readiness should keep waiting. Waiting stops early when the child
 * has crashed `CRASH_LOOP_FAILURES` times without becoming ready, or when no start is pending.
 */
export function readiness(state: SupervisorState, startRequested: boolean): Readiness {
  if (state.kind === 'ready') {
    return { kind: 'ready' }
  }
  if (state.kind === 'crashed' && state.failures >= CRASH_LOOP_FAILURES) {
    const how = state.exit.signal ? `signal ${state.exit.signal}` : `exit code ${state.exit.code}`
    const retry = Math.round(state.retryInMs / 1000)
    return {
      kind: 'failed',
      reason: `Keycloak exited ${state.failures} times in a row without becoming ready (last: ${how}); retrying in ${retry} s`,
    }
  }
  if (!startRequested && (state.kind === 'stopped' || state.kind === 'stopping')) {
    return { kind: 'failed', reason: 'Keycloak is stopped' }
  }
  return { kind: 'waiting' }
}

const stay = (state: SupervisorState): Transition => ({ state, effects: [] })

function crash(failures: number, at: number, exit: ExitInfo): Transition {
  const next = failures + 1
  const retryInMs = backoffMs(next)
  return {
    state: { kind: 'crashed', since: at, failures: next, retryInMs, exit },
    effects: [{ kind: 'scheduleRestart', ms: retryInMs }],
  }
}

function spawn(at: number, failures: number): Transition {
  return { state: { kind: 'starting', since: at, failures }, effects: [{ kind: 'spawn' }] }
}

function kill(at: number, failures: number, after: AfterStop): Transition {
  return { state: { kind: 'stopping', since: at, failures, after }, effects: [{ kind: 'kill' }] }
}

/**
 * The transition table. Events that do not apply to the current state (a late probe result, a
 * timer that fired after a stop) leave the state unchanged with no effects.
 *
 * @example
 * nextState({ kind: 'stopped' }, { type: 'start', at: 0 })
 * // → { state: { kind: 'starting', since: 0, failures: 0 }, effects: [{ kind: 'spawn' }] }
 */
export function nextState(state: SupervisorState, event: SupervisorEvent): Transition {
  switch (state.kind) {
    case 'stopped':
      return event.type === 'start' ? spawn(event.at, 0) : stay(state)

    case 'starting':
      switch (event.type) {
        case 'probe-ok':
          return stay({
            kind: 'ready',
            since: event.at,
            failures: state.failures,
            probeFailures: 0,
          })
        case 'exited':
          return crash(state.failures, event.at, exitOf(event))
        case 'start-timeout':
          return kill(event.at, state.failures, 'restart')
        case 'stop':
          return kill(event.at, state.failures, 'stopped')
        default:
          return stay(state)
      }

    case 'ready':
      switch (event.type) {
        case 'probe-ok':
          return state.probeFailures === 0 ? stay(state) : stay({ ...state, probeFailures: 0 })
        case 'probe-failed': {
          const probeFailures = state.probeFailures + 1
          return probeFailures >= HUNG_AFTER_PROBE_FAILURES
            ? kill(event.at, state.failures, 'restart')
            : stay({ ...state, probeFailures })
        }
        case 'exited': {
          const stable = event.at - state.since >= STABLE_AFTER_MS
          return crash(stable ? 0 : state.failures, event.at, exitOf(event))
        }
        case 'stop':
          return kill(event.at, state.failures, 'stopped')
        default:
          return stay(state)
      }

    case 'stopping':
      switch (event.type) {
        case 'exited':
          if (state.after === 'start') {
            return spawn(event.at, 0)
          }
          if (state.after === 'restart') {
            return crash(state.failures, event.at, exitOf(event))
          }
          return stay({ kind: 'stopped' })
        case 'start':
          return stay({ ...state, after: 'start' })
        case 'stop':
          return state.after === 'stopped' ? stay(state) : stay({ ...state, after: 'stopped' })
        default:
          return stay(state)
      }

    case 'crashed':
      switch (event.type) {
        case 'backoff-elapsed':
          return spawn(event.at, state.failures)
        case 'start': {
          const next = spawn(event.at, state.failures)
          return { state: next.state, effects: [{ kind: 'cancelRestart' }, ...next.effects] }
        }
        case 'stop':
          return { state: { kind: 'stopped' }, effects: [{ kind: 'cancelRestart' }] }
        default:
          return stay(state)
      }
  }
}

function exitOf(event: { code: number | null; signal: string | null }): ExitInfo {
  return { code: event.code, signal: event.signal }
}
