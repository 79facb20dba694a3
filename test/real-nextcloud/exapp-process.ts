import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Background, groupAlive, startBackground } from './shell.js'

/** What the ExApp keeps in `$APP_PERSISTENT_STORAGE/secrets.json`. */
export interface AppSecrets {
  APP_SECRET: string
  KC_BOOTSTRAP_ADMIN_PASSWORD: string
  KEYCLOAK_ADMIN_CLIENT_SECRET: string
  KEYCLOAK_API_SECRET: string
}

export interface Heartbeat {
  status: string
  keycloak?: string
  init?: string
}

/** The ExApp as a real process (`npm start` from the README), its state under `storage`. */
export class ExAppProcess {
  private current: Background | undefined

  constructor(
    readonly opts: {
      root: string
      storage: string
      port: number
      keycloakPort: number
      logFile: string
      /** records the process group, so a run that was killed can be cleaned up by the next */
      pidFile: string
    },
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.opts.port}`
  }

  get keycloakUrl(): string {
    return `http://127.0.0.1:${this.opts.keycloakPort}`
  }

  running(): boolean {
    return this.current !== undefined && this.current.exited() === undefined
  }

  /** Runs `command` (a README line containing `npm start`) in the background, with `env`. */
  async start(command: string, env: Record<string, string>): Promise<void> {
    if (this.running()) {
      throw new Error('the ExApp process is already running')
    }
    this.current = startBackground(command, {
      cwd: this.opts.root,
      env,
      logFile: this.opts.logFile,
    })
    await writeFile(this.opts.pidFile, `${this.current.pid}\n`)
  }

  /**
   * Stops what an earlier, killed run left behind: the process group its pid file names, if that
   * process still runs with this storage, and the Keycloak it started.
   */
  async stopLeftover(): Promise<void> {
    const pid = Number.parseInt(await readFile(this.opts.pidFile, 'utf8').catch(() => ''), 10)
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
    if (environ.split('\0').includes(`APP_PERSISTENT_STORAGE=${this.opts.storage}`)) {
      process.kill(-pid, 'SIGTERM')
      const deadline = Date.now() + 75_000
      while (groupAlive(pid) && Date.now() < deadline) {
        await sleep(200)
      }
      if (groupAlive(pid)) {
        process.kill(-pid, 'SIGKILL')
      }
    }
    await this.stopKeycloakLeftover()
    await rm(this.opts.pidFile, { force: true })
  }

  async heartbeat(): Promise<Heartbeat | undefined> {
    try {
      const res = await fetch(`${this.url}/heartbeat`, { signal: AbortSignal.timeout(3000) })
      return res.ok ? ((await res.json()) as Heartbeat) : undefined
    } catch {
      return undefined
    }
  }

  /** Waits until `/heartbeat` answers and satisfies `ok`; throws with the log's tail otherwise. */
  async waitFor(what: string, ok: (h: Heartbeat) => boolean, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs
    let last: Heartbeat | undefined
    while (Date.now() < deadline) {
      last = await this.heartbeat()
      if (last && ok(last)) {
        return last
      }
      if (this.current?.exited() !== undefined) {
        throw new Error(`the ExApp exited (${this.current.exited()}):\n${await this.logTail()}`)
      }
      await sleep(500)
    }
    throw new Error(
      `the ExApp did not reach "${what}" within ${timeoutMs / 1000} s (last heartbeat ${JSON.stringify(last)}):\n${await this.logTail()}`,
    )
  }

  async secrets(): Promise<AppSecrets> {
    return JSON.parse(await readFile(join(this.opts.storage, 'secrets.json'), 'utf8')) as AppSecrets
  }

  async logTail(lines = 25): Promise<string> {
    const text = await readFile(this.opts.logFile, 'utf8').catch(() => '')
    return text.trim().split('\n').slice(-lines).join('\n')
  }

  /**
   * SIGTERM (the app stops Keycloak first), SIGKILL after a minute; then makes sure no Keycloak
   * it started is left behind (its process group is recorded in the storage).
   */
  async stop(): Promise<void> {
    await this.current?.stop(75_000)
    this.current = undefined
    await this.stopKeycloakLeftover()
  }

  private async stopKeycloakLeftover(): Promise<void> {
    const pidFile = join(this.opts.storage, 'keycloak', 'keycloak.pid')
    const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(pid) && pid > 1 && groupAlive(pid)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (cmdline.includes('keycloak')) {
        process.kill(-pid, 'SIGKILL')
      }
    }
  }
}
