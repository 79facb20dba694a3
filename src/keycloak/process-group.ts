import { readdir, readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { execa } from 'execa'
import type { ExitInfo } from './supervisor-states.js'

export interface SpawnSpec {
  command: string
  args: string[]
  /** merged over the parent's environment; an undefined value removes the variable */
  env?: Record<string, string | undefined>
  cwd?: string
}

export interface ChildHandle {
  /** also the process group id: the child leads its own group */
  pid: number | undefined
  /** settles once the child has exited; never rejects. `error` is set when it never started. */
  exited: Promise<ExitInfo & { error?: string }>
}

export type OutputStream = 'stdout' | 'stderr'

/** Starts a child; `onLine` receives its output line by line. Injectable for tests. */
export type SpawnChild = (
  spec: SpawnSpec,
  onLine: (stream: OutputStream, line: string) => void,
) => ChildHandle

/**
 * Spawns the child as the leader of a new process group. kc.sh 26.7 keeps running as the parent of
 * the JVM (it traps TERM and forwards it), so only signalling the whole group reaches everything.
 * execa's `cleanup` does nothing for detached children; the supervisor covers parent exit itself.
 */
export const spawnProcessGroup: SpawnChild = (spec, onLine) => {
  const child = execa(spec.command, spec.args, {
    env: spec.env,
    cwd: spec.cwd,
    detached: true,
    cleanup: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
  })
  for (const stream of ['stdout', 'stderr'] as const) {
    const readable = child[stream]
    if (readable) {
      createInterface({ input: readable, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
        onLine(stream, line),
      )
    }
  }
  const exited = child.then((result) => ({
    code: result.exitCode ?? null,
    signal: result.signal ?? null,
    ...(result.exitCode === undefined && result.signal === undefined
      ? { error: result.shortMessage }
      : {}),
  }))
  return { pid: child.pid, exited }
}

/** Signals every process in the group; false when none is left. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * The fields of a `/proc/<pid>/stat` line after the command name (which may contain spaces):
 * `[0]` is the state, `[2]` the process group, `[11]` and `[12]` utime and stime.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** The process group id from a `/proc/<pid>/stat` line. */
export function parseStatPgrp(stat: string): number | undefined {
  const pgrp = Number(statFields(stat)[2])
  return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : undefined
}

/**
 * Pids of live processes in group `pgid` whose command line contains `mark`. The mark (the
 * Keycloak home) makes sure a pid reused by an unrelated program is never taken for ours.
 * Empty where /proc is unavailable.
 */
export async function findGroupMembers(pgid: number, mark: string): Promise<number[]> {
  const entries = await readdir('/proc').catch(() => [] as string[])
  const members: number[] = []
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
        if (parseStatPgrp(stat) !== pgid) {
          return
        }
        const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')
        if (cmdline.replaceAll('\0', ' ').includes(mark)) {
          members.push(Number(name))
        }
      }),
  )
  return members.sort((a, b) => a - b)
}
