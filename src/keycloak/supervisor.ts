/**
 * Runs Keycloak as a supervised child. Supported Keycloak: the version pinned in
 * src/config/schema.ts (KEYCLOAK_VERSION, 26.7.x), started with `kc.sh start --optimized`.
 *
 * This module only executes what supervisor-states.ts decides: it turns process exits, probe results and
 * timers into events, and effects into spawns, signals and timers.
 */
import { join } from 'node:path'
import type { Config } from '../config/config.js'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { startArgsFor, startEnvFor } from './options.js'
import { removePidFile, stopLeftover, writePidFile } from './pid-file.js'
import {
  type ChildHandle,
  type SpawnChild,
  signalGroup,
  spawnProcessGroup,
} from './process-group.js'
import { pollReady } from './ready-probe.js'
import {
  type Effect,
  nextState,
  readiness,
  type SupervisorEvent,
  type SupervisorState,
} from './supervisor-states.js'

export type { SupervisorState } from './supervisor-states.js'

export interface SupervisorOptions {
  command: string
  args: string[]
  env?: Record<string, string | undefined>
  cwd?: string
  /** polled for readiness; the child's output is never parsed for control */
  readyUrl: string
  /** lets a later sidecar stop a child left behind by one that died without cleaning up */
  pidFile?: string
  /** text a leftover process's command line must contain to be stopped (default: `command`) */
  processMark?: string
  log: Logger
  startTimeoutMs: number
  /** SIGTERM to the group, then SIGKILL after this long (default 20 s) */
  stopTimeoutMs?: number
  probeIntervalMs?: number
  readyProbeIntervalMs?: number
  /** multiplies backoff delays; tests shrink it so a crash loop takes milliseconds */
  restartDelayScale?: number
  spawn?: SpawnChild
  fetch?: typeof fetch
}

export type StateListener = (state: SupervisorState, previous: SupervisorState) => void

export interface Supervisor {
  /** Starts the child (after stopping a leftover from the pid file). Does not wait for ready. */
  start(): Promise<void>
  /** Stops the child (SIGTERM to its group, SIGKILL after the deadline); resolves once gone. */
  stop(): Promise<void>
  state(): SupervisorState
  /**
   * Resolves once ready. Rejects with `AppError('KEYCLOAK_UNAVAILABLE')` carrying the reason and
   * the last output lines on timeout, on a crash loop, or when stopped meanwhile.
   */
  waitReady(timeoutMs: number): Promise<void>
  /** Called on every change of state kind; returns the unsubscribe function. */
  onChange(listener: StateListener): () => void
  /** restarts after crashes since creation */
  readonly restarts: number
  /**
   * True when the child last exited because it was stopped, within the deadline (SIGTERM was
   * enough), and nothing started since: what it wrote is on disk as it left it.
   */
  stoppedCleanly(): boolean
  readonly pid: number | undefined
}

const OUTPUT_TAIL = 20
/**
 * While starting, a probe is a refused connection or one small answer: probing often costs next
 * to nothing, and readiness is seen at most this long after Keycloak reached it.
 */
const STARTING_PROBE_INTERVAL_MS = 100
// Stack frames would push the lines that say what went wrong out of the tail.
const STACK_FRAME = /^\s+at |^\s*\.\.\. \d+ more$/

/** Supervises one child per the lifecycle table. See `keycloakSupervisor` for the Keycloak wiring. */
export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const log = opts.log.child({ component: 'supervisor' })
  const out = opts.log.child({ component: 'keycloak' })
  const stopTimeoutMs = opts.stopTimeoutMs ?? 20_000
  const listeners = new Set<StateListener>()
  const tail: string[] = []
  let current: SupervisorState = { kind: 'stopped' }
  let child: (ChildHandle & { alive: AbortController }) | undefined
  let startRequested = false
  let restarts = 0
  let leftoverChecked = false
  /** the child's exit followed a stop request and no SIGKILL (see `stoppedCleanly`) */
  let cleanExit = false
  let forced = false
  let queue: Promise<void> = Promise.resolve()
  const timers: Partial<Record<'start' | 'kill' | 'restart', NodeJS.Timeout>> = {}

  const clear = (name: keyof typeof timers) => {
    clearTimeout(timers[name])
    delete timers[name]
  }
  const remember = (line: string) => {
    if (!STACK_FRAME.test(line)) {
      tail.push(line.length > 300 ? `${line.slice(0, 300)}…` : line)
      tail.splice(0, Math.max(0, tail.length - OUTPUT_TAIL))
    }
  }
  // execa's `cleanup` skips detached children, so the group is signalled here when we exit.
  const onParentExit = () => child?.pid !== undefined && signalGroup(child.pid, 'SIGTERM')

  function dispatch(event: SupervisorEvent) {
    const previous = current
    const { state, effects } = nextState(current, event)
    current = state
    if (state.kind !== 'starting') {
      clear('start')
    }
    if (state.kind !== previous.kind) {
      const { kind, ...details } = state
      const level = kind === 'crashed' ? 'warn' : 'info'
      log[level](
        { state: kind, from: previous.kind, event: event.type, ...details },
        'keycloak.state',
      )
      for (const listener of listeners) {
        listener(state, previous)
      }
    }
    for (const effect of effects) {
      execute(effect)
    }
  }

  function execute(effect: Effect) {
    switch (effect.kind) {
      case 'spawn':
        return spawn()
      case 'kill':
        return kill()
      case 'scheduleRestart':
        timers.restart = setTimeout(
          () => {
            delete timers.restart
            restarts++
            dispatch({ type: 'backoff-elapsed', at: Date.now() })
          },
          effect.ms * (opts.restartDelayScale ?? 1),
        )
        return
      case 'cancelRestart':
        return clear('restart')
    }
  }

  function spawn() {
    const spec = { command: opts.command, args: opts.args, env: opts.env, cwd: opts.cwd }
    const handle = (opts.spawn ?? spawnProcessGroup)(spec, (stream, line) => {
      remember(line)
      out.info({ stream }, line)
    })
    const alive = new AbortController()
    const spawnedAt = Date.now()
    cleanExit = false
    forced = false
    child = { ...handle, alive }
    log.info({ childPid: handle.pid, command: opts.command, args: opts.args }, 'keycloak.spawned')
    process.on('exit', onParentExit)
    const pidFile = opts.pidFile
    const pidWritten =
      pidFile && handle.pid ? writePidFile(pidFile, handle.pid).catch(pidFileFailed) : undefined
    timers.start = setTimeout(
      () => dispatch({ type: 'start-timeout', at: Date.now() }),
      opts.startTimeoutMs,
    )
    void pollReady({
      url: opts.readyUrl,
      signal: alive.signal,
      intervalMs: () =>
        current.kind === 'ready'
          ? (opts.readyProbeIntervalMs ?? 10_000)
          : (opts.probeIntervalMs ?? STARTING_PROBE_INTERVAL_MS),
      onResult: onProbe,
      fetch: opts.fetch,
    })
    void handle.exited.then(async (exit) => {
      cleanExit = current.kind === 'stopping' && !forced
      alive.abort()
      process.off('exit', onParentExit)
      clear('kill')
      if (handle.pid !== undefined) {
        // kc.sh may die before its JVM (a SIGKILL to the script alone): take the group down too.
        signalGroup(handle.pid, 'SIGKILL')
      }
      if (exit.error !== undefined) {
        remember(exit.error)
      }
      child = undefined
      log.info(
        { childPid: handle.pid, ...exit, uptimeMs: Date.now() - spawnedAt },
        'keycloak.exited',
      )
      // The pid file goes before the event, so `stopped` means there is nothing left to reap.
      if (pidFile && pidWritten) {
        await pidWritten.then(() => removePidFile(pidFile, handle.pid)).catch(pidFileFailed)
      }
      dispatch({ type: 'exited', at: Date.now(), code: exit.code, signal: exit.signal })
    })
  }

  const pidFileFailed = (err: unknown) => log.warn({ err }, 'keycloak.pidfile.failed')

  function kill() {
    const pid = child?.pid
    if (pid === undefined) {
      return
    }
    signalGroup(pid, 'SIGTERM')
    timers.kill = setTimeout(() => {
      forced = true
      log.warn({ childPid: pid, stopTimeoutMs }, 'keycloak.kill.forced')
      signalGroup(pid, 'SIGKILL')
    }, stopTimeoutMs)
  }

  function onProbe(ok: boolean) {
    if (current.kind !== 'starting' && current.kind !== 'ready') {
      return
    }
    if (!ok && current.kind === 'ready') {
      const failures = current.probeFailures + 1
      log.warn({ url: opts.readyUrl, failures }, 'keycloak.probe.failed')
    }
    dispatch({ type: ok ? 'probe-ok' : 'probe-failed', at: Date.now() })
  }

  function onChange(listener: StateListener) {
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
    }
  }

  /** Resolves when `settled` returns a value for the current or a later state. */
  function watch<T>(settled: (s: SupervisorState) => T | undefined, signal?: AbortSignal) {
    return new Promise<T>((resolve) => {
      const now = settled(current)
      if (now !== undefined) {
        return resolve(now)
      }
      const off = onChange((s) => {
        const result = settled(s)
        if (result !== undefined) {
          off()
          resolve(result)
        }
      })
      signal?.addEventListener('abort', off)
    })
  }

  function unavailable(reason: string): AppError {
    const output = tail.length > 0 ? `\nlast output:\n${tail.join('\n')}` : ''
    return new AppError('KEYCLOAK_UNAVAILABLE', `${reason}${output}`)
  }

  async function waitReady(timeoutMs: number): Promise<void> {
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), timeoutMs)
    const timedOut = new Promise<{ kind: 'timeout' }>((resolve) =>
      deadline.signal.addEventListener('abort', () => resolve({ kind: 'timeout' })),
    )
    const verdict = await Promise.race([
      watch((s) => {
        const r = readiness(s, startRequested)
        return r.kind === 'waiting' ? undefined : r
      }, deadline.signal),
      timedOut,
    ])
    clearTimeout(timer)
    deadline.abort()
    if (verdict.kind === 'failed') {
      throw unavailable(verdict.reason)
    }
    if (verdict.kind === 'timeout') {
      const seconds = Math.round(timeoutMs / 1000)
      throw unavailable(
        `Keycloak did not become ready within ${seconds} s (state: ${current.kind}, probing ${opts.readyUrl})`,
      )
    }
  }

  const enqueue = (op: () => Promise<void>) => {
    const next = queue.then(op)
    queue = next.catch(() => undefined)
    return next
  }

  return {
    start: () => {
      startRequested = true
      return enqueue(async () => {
        if (!leftoverChecked && opts.pidFile !== undefined) {
          leftoverChecked = true
          const mark = opts.processMark ?? opts.command
          await stopLeftover({ path: opts.pidFile, mark, stopTimeoutMs, log })
        }
        if (startRequested) {
          dispatch({ type: 'start', at: Date.now() })
        }
      })
    },
    stop: () => {
      startRequested = false
      return enqueue(async () => {
        dispatch({ type: 'stop', at: Date.now() })
        await watch((s) => (s.kind === 'stopped' ? true : undefined))
      })
    },
    state: () => current,
    waitReady,
    onChange,
    get restarts() {
      return restarts
    },
    stoppedCleanly: () => cleanExit && current.kind === 'stopped',
    get pid() {
      return child?.pid
    },
  }
}

/**
 * The supervisor for the bundled Keycloak in `home`, configured from `config` (see options.ts);
 * `args` replaces the start options derived from it (tests run Keycloak without a fixed hostname),
 * `aotCache` is the home's trained AOT cache, if any (see aot-cache.ts).
 */
export function keycloakSupervisor(
  config: Config,
  home: string,
  javaHome: string,
  log: Logger,
  opts: { args?: string[]; aotCache?: string | undefined } = {},
): Supervisor {
  return createSupervisor({
    command: join(home, 'bin', 'kc.sh'),
    args: ['start', '--optimized', ...(opts.args ?? startArgsFor(config))],
    env: startEnvFor(config, javaHome, opts.aotCache),
    cwd: home,
    readyUrl: `http://127.0.0.1:${config.keycloak.managementPort}/health/ready`,
    pidFile: join(config.app.storageDir, 'keycloak', 'keycloak.pid'),
    // kc.sh's and the JVM's command lines both contain the home, so a reused pid never matches.
    processMark: home,
    log,
    startTimeoutMs: config.keycloak.startTimeoutMs,
  })
}
