import { existsSync } from 'node:fs'
import { cp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describeRun, type RunResult, runBash } from './shell.js'

export type WebServer = 'apache' | 'nginx'

/**
 * Where the real Nextcloud's start script is: NEXTCLOUD_START, else `../shared/nextcloud/start.sh`
 * beside the repository (the only place the repository looks outside itself).
 */
export function nextcloudStartScript(root: string): { path: string; found: boolean } {
  const given = process.env.NEXTCLOUD_START
  const path = given ? resolve(given) : resolve(root, '..', 'shared', 'nextcloud', 'start.sh')
  return { path, found: existsSync(path) }
}

export function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

export interface BasicUser {
  uid: string
  password: string
}

/** A Nextcloud 31 + AppAPI 5.0.2 installed and served by the start script, one per run. */
export class RealNextcloud {
  readonly url: string
  readonly dir: string
  server: WebServer = 'apache'
  adminPassword = ''

  constructor(
    readonly script: string,
    readonly port: number,
    private readonly logFile: string,
  ) {
    // under the temp dir: the web server's user (www-data) must reach it
    this.dir = join(tmpdir(), `keycloak-exapp-nextcloud-${port}`)
    this.url = `http://127.0.0.1:${port}`
  }

  /** `bash <start.sh> occ`, for commands run through bash with `env()` */
  get occPrefix(): string {
    return `bash ${quote(this.script)} occ`
  }

  /** What start.sh needs to find this installation. */
  env(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      NC_DIR: this.dir,
      NC_PORT: String(this.port),
      NC_SERVER: this.server,
    }
  }

  private async runScript(args: string, timeoutMs: number, env = {}): Promise<RunResult> {
    return runBash(`bash ${quote(this.script)} ${args}`, {
      cwd: tmpdir(),
      env: { ...this.env(), ...env },
      timeoutMs,
      logFile: this.logFile,
    })
  }

  /** A fresh installation: whatever an earlier run left in `dir` is stopped and removed. */
  async install(): Promise<void> {
    if (existsSync(this.dir)) {
      await this.runScript('stop', 60_000)
      await rm(this.dir, { recursive: true, force: true })
    }
    await this.serve('apache')
    this.adminPassword = (await readFile(join(this.dir, 'admin-pass'), 'utf8')).trim()
  }

  /** Serves the installation with `server` (start.sh replaces the one running). */
  async serve(server: WebServer): Promise<void> {
    this.server = server
    // the first nginx start may apt-get nginx and php-fpm
    const r = await this.runScript('', 300_000)
    if (r.exitCode !== 0) {
      throw new Error(`start.sh (${server}) failed:\n${describeRun(r)}`)
    }
  }

  async stop(): Promise<void> {
    if (existsSync(this.dir)) {
      await this.runScript('stop', 60_000)
    }
  }

  /** Where nextcloud.log ends now, for `logSince`. */
  async logMark(): Promise<number> {
    return (await readFile(join(this.dir, 'data', 'nextcloud.log')).catch(() => Buffer.alloc(0)))
      .length
  }

  /** Entries nextcloud.log got since `mark` (level 0 debug … 4 fatal; 2 is a warning). */
  async logSince(mark: number): Promise<{ level: number; app: string; message: string }[]> {
    const log = await readFile(join(this.dir, 'data', 'nextcloud.log')).catch(() => Buffer.alloc(0))
    return log
      .subarray(mark)
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { level: number; app: string; message: string })
  }

  /** Nextcloud's log and the web servers' logs, copied to `dest` for whoever reads a failure. */
  async keepLogs(dest: string): Promise<void> {
    for (const [from, to] of [
      [join(this.dir, 'logs'), join(dest, 'logs')],
      [join(this.dir, 'data', 'nextcloud.log'), join(dest, 'nextcloud.log')],
    ] as const) {
      await cp(from, to, { recursive: true }).catch(() => undefined)
    }
  }

  /** occ with `args` (each quoted); throws with its output unless it exits 0. */
  async occ(args: string[], env: Record<string, string> = {}): Promise<string> {
    const r = await this.tryOcc(args, env)
    if (r.exitCode !== 0) {
      throw new Error(`occ failed:\n${describeRun(r)}`)
    }
    return r.output
  }

  tryOcc(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    return this.runScript(`occ ${args.map(quote).join(' ')}`, 300_000, env)
  }

  /** A request to Nextcloud with Basic auth (admin unless `as` is given). */
  fetch(path: string, init: RequestInit & { as?: BasicUser } = {}): Promise<Response> {
    const { as, headers, ...rest } = init
    const user = as ?? { uid: 'admin', password: this.adminPassword }
    return fetch(`${this.url}${path}`, {
      ...rest,
      redirect: 'manual',
      headers: {
        Authorization: `Basic ${Buffer.from(`${user.uid}:${user.password}`).toString('base64')}`,
        ...headers,
      },
      signal: AbortSignal.timeout(120_000),
    })
  }

  /** An OCS v2 call as the admin; `ocs.data`. */
  async ocs<T>(path: string): Promise<T> {
    const sep = path.includes('?') ? '&' : '?'
    const res = await this.fetch(`/ocs/v2.php${path}${sep}format=json`, {
      headers: { 'OCS-APIRequest': 'true', Accept: 'application/json' },
    })
    const text = await res.text()
    if (!res.ok) {
      throw new Error(`OCS ${path}: HTTP ${res.status} ${text.slice(0, 300)}`)
    }
    return (JSON.parse(text) as { ocs: { data: T } }).ocs.data
  }

  /** AppAPI's record of an ExApp's init: `{init, error, …}`, or undefined when not registered. */
  async appStatus(appId: string): Promise<{ init?: number; error?: string } | undefined> {
    const res = await this.fetch(`/index.php/apps/app_api/apps/status/${appId}`)
    if (res.status === 404) {
      return undefined
    }
    if (!res.ok) {
      throw new Error(`AppAPI status of ${appId}: HTTP ${res.status}`)
    }
    return (await res.json()) as { init?: number; error?: string }
  }
}
