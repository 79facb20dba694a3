import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export interface RunResult {
  command: string
  exitCode: number | null
  signal: string | null
  /** stdout and stderr interleaved as they came */
  output: string
  timedOut: boolean
  durationMs: number
}

export interface RunOptions {
  cwd: string
  env: Record<string, string>
  timeoutMs: number
  /** appended to as well, for the artifacts */
  logFile?: string
}

/**
 * Runs `command` with bash in a process group of its own, so a timeout stops everything it
 * started (occ runs under setpriv, a grandchild). Never rejects: the caller asserts on the result.
 */
export async function runBash(command: string, opts: RunOptions): Promise<RunResult> {
  const started = Date.now()
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined
  log?.write(`\n$ ${command}\n`)
  const child = spawn('bash', ['-c', command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const take = (chunk: Buffer) => {
    output += chunk.toString('utf8')
    log?.write(chunk)
  }
  child.stdout?.on('data', take)
  child.stderr?.on('data', take)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    signalGroup(child, 'SIGKILL')
  }, opts.timeoutMs)
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve) => {
    child.once('error', (err) => {
      output += String(err)
      resolve([null, null])
    })
    child.once('close', (code, sig) => resolve([code, sig]))
  })
  clearTimeout(timer)
  const took = ((Date.now() - started) / 1000).toFixed(1)
  log?.write(`[exit ${exitCode ?? signal}${timedOut ? ', timed out' : ''}, ${took} s]\n`)
  await new Promise((resolve) => (log ? log.end(resolve) : resolve(undefined)))
  return { command, exitCode, signal, output, timedOut, durationMs: Date.now() - started }
}

/** A result as one line for assertion messages: the command, how it ended, its output's tail. */
export function describeRun(r: RunResult): string {
  const how = r.timedOut
    ? `timed out after ${Math.round(r.durationMs / 1000)} s`
    : `exit ${r.exitCode ?? r.signal}`
  return `${r.command}\n→ ${how}\n${r.output.trim().split('\n').slice(-15).join('\n')}`
}

export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) {
    return
  }
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

export interface Background {
  command: string
  pid: number
  /** the exit code or signal once it has ended, else undefined */
  exited(): string | undefined
  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves once the group is gone */
  stop(graceMs: number): Promise<void>
}

/**
 * Starts `command` with bash in the background, in its own process group, output appended to
 * `logFile`.
 */
export function startBackground(
  command: string,
  opts: { cwd: string; env: Record<string, string>; logFile: string },
): Background {
  const log = createWriteStream(opts.logFile, { flags: 'a' })
  log.write(`\n$ ${command} &\n`)
  const child = spawn('bash', ['-c', command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  let ended: string | undefined
  child.once('exit', (code, signal) => {
    ended = String(code ?? signal)
  })
  const pid = child.pid
  if (pid === undefined) {
    throw new Error(`could not start: ${command}`)
  }
  return {
    command,
    pid,
    exited: () => ended,
    async stop(graceMs) {
      signalGroup(child, 'SIGTERM')
      const deadline = Date.now() + graceMs
      while (groupAlive(pid) && Date.now() < deadline) {
        await sleep(200)
      }
      if (groupAlive(pid)) {
        signalGroup(child, 'SIGKILL')
        while (groupAlive(pid)) {
          await sleep(100)
        }
      }
      log.end()
    },
  }
}
