import { describe, expect, it } from 'vitest'
import {
  type AfterStop,
  BACKOFF_MAX_MS,
  backoffMs,
  type Effect,
  HUNG_AFTER_PROBE_FAILURES,
  nextState,
  type Readiness,
  readiness,
  STABLE_AFTER_MS,
  type SupervisorEvent,
  type SupervisorState,
} from './supervisor-states.js'

const stopped: SupervisorState = { kind: 'stopped' }
const starting = (failures = 0): SupervisorState => ({ kind: 'starting', since: 0, failures })
const ready = (failures = 0, probeFailures = 0): SupervisorState => ({
  kind: 'ready',
  since: 1_000,
  failures,
  probeFailures,
})
const crashed = (failures = 1): SupervisorState => ({
  kind: 'crashed',
  since: 0,
  failures,
  retryInMs: backoffMs(failures),
  exit: { code: 1, signal: null },
})
const stopping = (after: AfterStop, failures = 0): SupervisorState => ({
  kind: 'stopping',
  since: 0,
  failures,
  after,
})

const at = 5_000
const ev = {
  start: { type: 'start', at },
  stop: { type: 'stop', at },
  probeOk: { type: 'probe-ok', at },
  probeFailed: { type: 'probe-failed', at },
  exit1: { type: 'exited', at, code: 1, signal: null },
  killed: { type: 'exited', at, code: null, signal: 'SIGKILL' },
  startTimeout: { type: 'start-timeout', at },
  backoff: { type: 'backoff-elapsed', at },
} satisfies Record<string, SupervisorEvent>

const spawn: Effect = { kind: 'spawn' }
const kill: Effect = { kind: 'kill' }
const restartIn = (ms: number): Effect => ({ kind: 'scheduleRestart', ms })
const cancelRestart: Effect = { kind: 'cancelRestart' }

describe('nextState', () => {
  const table: [string, SupervisorState, SupervisorEvent, SupervisorState, Effect[]][] = [
    [
      'start from stopped spawns',
      stopped,
      ev.start,
      { kind: 'starting', since: at, failures: 0 },
      [spawn],
    ],
    ['stop while stopped does nothing', stopped, ev.stop, stopped, []],
    ['a stale exit while stopped is ignored', stopped, ev.exit1, stopped, []],
    ['a stale backoff timer while stopped is ignored', stopped, ev.backoff, stopped, []],
    [
      'first good probe makes it ready',
      starting(2),
      ev.probeOk,
      { kind: 'ready', since: at, failures: 2, probeFailures: 0 },
      [],
    ],
    ['failed probes while starting keep waiting', starting(), ev.probeFailed, starting(), []],
    ['start while starting is a no-op', starting(), ev.start, starting(), []],
    [
      'exit while starting is a crash',
      starting(),
      ev.exit1,
      {
        kind: 'crashed',
        since: at,
        failures: 1,
        retryInMs: 1_000,
        exit: { code: 1, signal: null },
      },
      [restartIn(1_000)],
    ],
    [
      'stop while starting kills',
      starting(),
      ev.stop,
      { kind: 'stopping', since: at, failures: 0, after: 'stopped' },
      [kill],
    ],
    [
      'a killed child while ready is a crash',
      ready(0),
      ev.killed,
      {
        kind: 'crashed',
        since: at,
        failures: 1,
        retryInMs: 1_000,
        exit: { code: null, signal: 'SIGKILL' },
      },
      [restartIn(1_000)],
    ],
    ['a failed probe while ready is counted', ready(0, 2), ev.probeFailed, ready(0, 3), []],
    ['a good probe clears the count', ready(0, 3), ev.probeOk, ready(0, 0), []],
    [
      `${HUNG_AFTER_PROBE_FAILURES} failed probes in a row restart a hung child`,
      ready(0, HUNG_AFTER_PROBE_FAILURES - 1),
      ev.probeFailed,
      { kind: 'stopping', since: at, failures: 0, after: 'restart' },
      [kill],
    ],
    [
      'stop while ready kills',
      ready(),
      ev.stop,
      { kind: 'stopping', since: at, failures: 0, after: 'stopped' },
      [kill],
    ],
    ['an exit we asked for is not a crash', stopping('stopped'), ev.exit1, stopped, []],
    ['a SIGKILLed stop is not a crash either', stopping('stopped'), ev.killed, stopped, []],
    [
      'start while stopping spawns after the exit',
      stopping('stopped'),
      ev.start,
      stopping('start'),
      [],
    ],
    [
      'the exit after a start request spawns again',
      stopping('start'),
      ev.exit1,
      { kind: 'starting', since: at, failures: 0 },
      [spawn],
    ],
    ['stop cancels a pending start request', stopping('start'), ev.stop, stopping('stopped'), []],
    [
      'stop turns a pending restart into a stop',
      stopping('restart'),
      ev.stop,
      stopping('stopped'),
      [],
    ],
    [
      'the exit after a start timeout backs off',
      stopping('restart', 2),
      ev.killed,
      {
        kind: 'crashed',
        since: at,
        failures: 3,
        retryInMs: 4_000,
        exit: { code: null, signal: 'SIGKILL' },
      },
      [restartIn(4_000)],
    ],
    [
      'late probes while stopping are ignored',
      stopping('stopped'),
      ev.probeOk,
      stopping('stopped'),
      [],
    ],
    [
      'backoff elapsed spawns again',
      crashed(2),
      ev.backoff,
      { kind: 'starting', since: at, failures: 2 },
      [spawn],
    ],
    [
      'start while crashed spawns at once',
      crashed(2),
      ev.start,
      { kind: 'starting', since: at, failures: 2 },
      [cancelRestart, spawn],
    ],
    ['stop while crashed cancels the restart', crashed(), ev.stop, stopped, [cancelRestart]],
    ['a late probe while crashed is ignored', crashed(), ev.probeOk, crashed(), []],
  ]

  it.each(table)('%s', (_name, from, event, to, effects) => {
    expect(nextState(from, event)).toEqual({ state: to, effects })
  })

  it('treats a start timeout as a kill that ends in backoff', () => {
    expect(nextState(starting(1), ev.startTimeout)).toEqual({
      state: { kind: 'stopping', since: at, failures: 1, after: 'restart' },
      effects: [kill],
    })
  })

  it('resets the backoff when the child was ready for a while', () => {
    const stable: SupervisorState = { kind: 'ready', since: 0, failures: 4, probeFailures: 0 }
    const { state } = nextState(stable, { ...ev.exit1, at: STABLE_AFTER_MS })
    expect(state).toMatchObject({ kind: 'crashed', failures: 1, retryInMs: 1_000 })
  })

  it('keeps backing off when the child crashes soon after becoming ready', () => {
    const shaky: SupervisorState = { kind: 'ready', since: 0, failures: 4, probeFailures: 0 }
    const { state } = nextState(shaky, { ...ev.exit1, at: STABLE_AFTER_MS - 1 })
    expect(state).toMatchObject({ kind: 'crashed', failures: 5, retryInMs: 16_000 })
  })

  it('returns the same object when nothing changes, so callers can skip logging', () => {
    const s = ready()
    expect(nextState(s, ev.probeOk).state).toBe(s)
  })
})

describe('backoff', () => {
  it('doubles from 1 s and caps at 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(backoffMs)).toEqual([
      1_000,
      2_000,
      4_000,
      8_000,
      16_000,
      30_000,
      30_000,
      BACKOFF_MAX_MS,
    ])
  })

  it('walks a crash loop through growing delays', () => {
    let state: SupervisorState = stopped
    const delays: number[] = []
    state = nextState(state, ev.start).state
    for (let i = 0; i < 7; i++) {
      const crash = nextState(state, ev.exit1)
      for (const e of crash.effects) {
        if (e.kind === 'scheduleRestart') {
          delays.push(e.ms)
        }
      }
      state = nextState(crash.state, ev.backoff).state
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
  })
})

describe('readiness', () => {
  const table: [string, SupervisorState, boolean, Readiness][] = [
    ['ready is ready', ready(2), true, { kind: 'ready' }],
    ['starting keeps waiting', starting(), true, { kind: 'waiting' }],
    ['one or two crashes keep waiting', crashed(2), true, { kind: 'waiting' }],
    [
      'a crash loop fails with the last exit',
      crashed(3),
      true,
      {
        kind: 'failed',
        reason:
          'Keycloak exited 3 times in a row without becoming ready (last: exit code 1); retrying in 4 s',
      },
    ],
    ['stopped with a start pending keeps waiting', stopped, true, { kind: 'waiting' }],
    ['stopped for good fails', stopped, false, { kind: 'failed', reason: 'Keycloak is stopped' }],
    [
      'stopping for good fails',
      stopping('stopped'),
      false,
      { kind: 'failed', reason: 'Keycloak is stopped' },
    ],
    ['a restart in progress keeps waiting', stopping('restart'), true, { kind: 'waiting' }],
  ]

  it.each(table)('%s', (_name, state, startRequested, expected) => {
    expect(readiness(state, startRequested)).toEqual(expected)
  })
})
