import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { freePort } from '../../test/net.js'
import { isAppError } from '../errors.js'
import { findGroupMembers, parseStatPgrp } from './process-group.js'
import {
  createSupervisor,
  type Supervisor,
  type SupervisorOptions,
  type SupervisorState,
} from './supervisor.js'

const fixture = (name: string) => resolve(import.meta.dirname, '../../test/fixtures', name)

/** A logger that keeps every line, to assert on what an operator would see. */
function captureLog() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) })
  return { log, lines }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('supervisor with fixture children', () => {
  let dir: string
  let port: number
  const running: Supervisor[] = []

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'supervisor-'))
    port = await freePort()
  })

  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()))
    await rm(dir, { recursive: true, force: true })
  })

  function supervise(script: string, args: string[], extra: Partial<SupervisorOptions> = {}) {
    const supervisor = createSupervisor({
      command: process.execPath,
      args: [fixture(script), ...args],
      readyUrl: `http://127.0.0.1:${port}/health/ready`,
      pidFile: join(dir, 'keycloak.pid'),
      processMark: fixture(script),
      log: pino({ level: 'silent' }),
      startTimeoutMs: 5_000,
      stopTimeoutMs: 2_000,
      probeIntervalMs: 50,
      readyProbeIntervalMs: 100,
      restartDelayScale: 0.05,
      ...extra,
    })
    running.push(supervisor)
    return supervisor
  }

  it('becomes ready from the probe, logs each transition once and stops cleanly', async () => {
    const { log, lines } = captureLog()
    const kinds: string[] = []
    const s = supervise('ready-after.js', [String(port), '200'], { log })
    s.onChange((state) => kinds.push(state.kind))
    await s.start()
    await s.waitReady(5_000)
    const pid = s.pid as number
    expect(await readFile(join(dir, 'keycloak.pid'), 'utf8')).toBe(`${pid}\n`)
    await s.stop()
    expect(kinds).toEqual(['starting', 'ready', 'stopping', 'stopped'])
    expect(alive(pid)).toBe(false)
    await expect(readFile(join(dir, 'keycloak.pid'))).rejects.toThrow()
    const transitions = lines.filter((l) => l.msg === 'keycloak.state').map((l) => l.state)
    expect(transitions).toEqual(['starting', 'ready', 'stopping', 'stopped'])
    expect(lines).toContainEqual(
      expect.objectContaining({ component: 'keycloak', stream: 'stderr', msg: 'a line on stderr' }),
    )
    expect(s.restarts).toBe(0)
    expect(s.stoppedCleanly()).toBe(true)
  })

  it('restarts a child killed with SIGKILL and becomes ready again', async () => {
    const s = supervise('ready-after.js', [String(port), '0'])
    await s.start()
    await s.waitReady(5_000)
    const first = s.pid as number
    const seen: SupervisorState[] = []
    s.onChange((state) => seen.push(state))
    process.kill(first, 'SIGKILL')
    await vi.waitFor(
      () =>
        expect(
          seen.some((state) => state.kind === 'crashed'),
          'a crash seen',
        ).toBe(true),
      { timeout: 30_000, interval: 20 },
    )
    await s.waitReady(5_000)
    expect(seen.map((state) => state.kind)).toEqual(['crashed', 'starting', 'ready'])
    expect(seen[0]).toMatchObject({ exit: { code: null, signal: 'SIGKILL' }, retryInMs: 1_000 })
    expect(s.stoppedCleanly()).toBe(false)
    expect(s.pid).not.toBe(first)
    expect(s.restarts).toBe(1)
  })

  it('rejects waitReady early with the output when the child keeps crashing', async () => {
    const s = supervise('exits-1.js', [])
    await s.start()
    const started = Date.now()
    const err = await s.waitReady(20_000).catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toMatch(
      /exited 3 times in a row without becoming ready \(last: exit code 1\)/,
    )
    expect((err as Error).message).toContain('ERROR: Failed to obtain JDBC connection')
    // early: well before the 20 s it was given
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('escalates to SIGKILL when the child ignores SIGTERM', async () => {
    const { log, lines } = captureLog()
    const s = supervise('hangs.js', [String(port)], { log, stopTimeoutMs: 300 })
    await s.start()
    await s.waitReady(5_000)
    const pid = s.pid as number
    await s.stop()
    expect(alive(pid)).toBe(false)
    expect(lines.some((l) => l.msg === 'keycloak.kill.forced')).toBe(true)
    expect(s.state().kind).toBe('stopped')
    expect(s.stoppedCleanly()).toBe(false)
  })

  it('kills a child that misses the start deadline and says why', async () => {
    // A start deadline long enough for a loaded machine to start node and print a line.
    const s = supervise('ready-after.js', [String(port), '60000'], { startTimeoutMs: 4_000 })
    await s.start()
    const err = await s.waitReady(10_000).catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toMatch(
      /did not become ready within 10 s \(state: (crashed|starting|stopping)/,
    )
    expect((err as Error).message).toContain('listening on')
  })

  it('rejects waitReady when nothing was started', async () => {
    const s = supervise('ready-after.js', [String(port), '0'])
    await expect(s.waitReady(1_000)).rejects.toThrow(/Keycloak is stopped/)
  })

  it('reports a command that cannot be spawned as a crash with the reason', async () => {
    const s = supervise('ready-after.js', [], { command: join(dir, 'no-such-kc.sh') })
    await s.start()
    const err = await s.waitReady(2_000).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(/exited 3 times in a row[\s\S]*ENOENT/)
  })

  it('stops a child left running by a previous sidecar before starting', async () => {
    const leftover = spawn(process.execPath, [fixture('hangs.js')], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    // Only once it prints does it ignore SIGTERM, which is the case worth testing.
    await new Promise((ok) => leftover.stdout?.once('data', ok))
    const pid = leftover.pid as number
    await writeFile(join(dir, 'keycloak.pid'), `${pid}\n`)
    expect(await findGroupMembers(pid, fixture('hangs.js'))).toEqual([pid])
    const s = supervise('ready-after.js', [String(port), '0'], {
      processMark: fixture('hangs.js'),
      stopTimeoutMs: 200,
    })
    await s.start()
    await vi.waitFor(
      () =>
        expect(
          !alive(pid) || leftover.exitCode !== null || leftover.signalCode !== null,
          'the leftover child gone',
        ).toBe(true),
      { timeout: 30_000, interval: 20 },
    )
    expect(leftover.signalCode ?? leftover.exitCode).not.toBeNull()
  })

  it('never stops a pid from the pid file that is not ours', async () => {
    await writeFile(join(dir, 'keycloak.pid'), `${process.pid}\n`)
    const s = supervise('ready-after.js', [String(port), '0'])
    await s.start()
    await s.waitReady(5_000)
    expect(alive(process.pid)).toBe(true)
  })
})

describe('parseStatPgrp', () => {
  it('reads the group from a stat line whose command has spaces and parentheses', () => {
    expect(parseStatPgrp('4242 (kc (x) sh) S 1 4240 4240 0 -1 4194560')).toBe(4240)
    expect(parseStatPgrp('')).toBeUndefined()
  })
})
