import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../log.js'
import { findGroupMembers, signalGroup } from './process-group.js'

export async function writePidFile(path: string, pid: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, `${pid}\n`)
}

/** Removes the pid file if it still names `pid` (a quick restart may have rewritten it). */
export async function removePidFile(path: string, pid?: number): Promise<void> {
  const recorded = await readFile(path, 'utf8').catch(() => undefined)
  if (pid === undefined || recorded?.trim() === String(pid)) {
    await rm(path, { force: true })
  }
}

/**
 * Stops the process group recorded in `path` by a sidecar that died without stopping its child
 * (SIGTERM, then SIGKILL after `stopTimeoutMs`), then removes the file. Only processes whose
 * command line contains `mark` count, so a pid reused by another program is left alone.
 */
export async function stopLeftover(opts: {
  path: string
  mark: string
  stopTimeoutMs: number
  log: Logger
}): Promise<void> {
  const pid = Number.parseInt(await readFile(opts.path, 'utf8').catch(() => ''), 10)
  const ours = () => (Number.isInteger(pid) && pid > 1 ? findGroupMembers(pid, opts.mark) : [])
  const members = await ours()
  if (members.length > 0) {
    opts.log.warn({ childPid: pid, members }, 'keycloak.leftover.stopping')
    signalGroup(pid, 'SIGTERM')
    const deadline = Date.now() + opts.stopTimeoutMs
    while ((await ours()).length > 0) {
      if (Date.now() > deadline) {
        signalGroup(pid, 'SIGKILL')
      }
      await sleep(100)
    }
    opts.log.info({ childPid: pid }, 'keycloak.leftover.stopped')
  }
  await removePidFile(opts.path)
}
