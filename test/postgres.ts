// A real PostgreSQL for the integration suite and CI: TEST_DATABASE_URL when given, otherwise a
// throwaway cluster under <repo>/.test-artifacts/pg started from Debian's binaries (installed with
// apt-get when missing and we are root).
import { access, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import postgres from 'postgres'
import { freePort } from './net.js'

export interface RunningPostgres {
  /** postgres:// URL of the test database */
  url: string
  /** Stops the cluster if this call started it; a reused or external one is left alone. */
  stop(): Promise<void>
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEFAULT_DIR = join(REPO_ROOT, '.test-artifacts', 'pg')
const DEFAULT_DATABASE = 'keycloak_exapp_test'
const isRoot = process.getuid?.() === 0

/**
 * A reachable PostgreSQL with a database for tests. Concurrent callers (several vitest processes)
 * are serialised by a lock file, and a cluster left running by an earlier run is reused.
 */
export async function ensurePostgres(
  opts: { dir?: string; database?: string } = {},
): Promise<RunningPostgres> {
  const external = process.env.TEST_DATABASE_URL
  if (external) {
    return { url: external, stop: async () => {} }
  }
  const dir = opts.dir ?? DEFAULT_DIR
  const database = opts.database ?? DEFAULT_DATABASE
  await mkdir(dir, { recursive: true })
  const unlock = await lockFile(join(dir, '.lock'))
  try {
    const reused = await runningPort(dir)
    if (reused !== undefined) {
      const url = await ensureDatabase(reused, database)
      return { url, stop: async () => {} }
    }
    const bin = (await findPostgresBin()) ?? (await installPostgres())
    await prepareDir(dir)
    await initCluster(bin, dir)
    const port = await freePort()
    await asPostgres(join(bin, 'pg_ctl'), [
      ...['-D', join(dir, 'data'), '-l', join(dir, 'postgres.log'), '-w', '-t', '60'],
      ...['-o', serverOptions(port, join(dir, 'sock')), 'start'],
    ]).catch(async (err: Error) => {
      throw new Error(
        `pg_ctl start failed: ${err.message}\n${await tail(join(dir, 'postgres.log'))}`,
      )
    })
    await waitForConnections(port)
    const url = await ensureDatabase(port, database)
    const stop = async () => {
      await asPostgres(join(bin, 'pg_ctl'), ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop'])
    }
    return { url, stop }
  } finally {
    await unlock()
  }
}

/** A fresh, empty database next to `baseUrl`'s, so suites do not see each other's rows. */
export async function createTestDatabase(baseUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`test database name must match [a-z_][a-z0-9_]*, got "${name}"`)
  }
  const sql = postgres(baseUrl, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(`drop database if exists "${name}" with (force)`)
    await sql.unsafe(`create database "${name}"`)
  } finally {
    await sql.end({ timeout: 5 })
  }
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return url.toString()
}

function baseUrl(port: number, database: string): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`
}

/** Port of a live cluster in `dir` (from its postmaster.pid), if one is running. */
async function runningPort(dir: string): Promise<number | undefined> {
  let lines: string[]
  try {
    lines = (await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')
  } catch {
    return undefined
  }
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (!Number.isInteger(pid) || !Number.isInteger(port) || !isAlive(pid)) {
    return undefined
  }
  return (await canConnect(port)) ? port : undefined
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The newest PostgreSQL bin dir: Debian's layout first, then PATH (e.g. Homebrew). */
async function findPostgresBin(): Promise<string | undefined> {
  const root = '/usr/lib/postgresql'
  const versions = await readdir(root).catch(() => [] as string[])
  const debian = versions
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'))
  const path = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  for (const dir of [...debian, ...path]) {
    if ((await exists(join(dir, 'initdb'))) && (await exists(join(dir, 'pg_ctl')))) {
      return dir
    }
  }
  return undefined
}

async function installPostgres(): Promise<string> {
  if (!isRoot) {
    throw new Error(
      'PostgreSQL binaries not found (/usr/lib/postgresql/*/bin or PATH) and not running as root ' +
        'to install them: install the postgresql package or set TEST_DATABASE_URL',
    )
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' }
  await execa('apt-get', ['update'], { env })
  await execa('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { env })
  const bin = await findPostgresBin()
  if (!bin) {
    throw new Error('apt-get installed postgresql but no initdb/pg_ctl was found afterwards')
  }
  return bin
}

/**
 * initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user, which
 * must own the folder and be able to reach it through every parent.
 */
async function prepareDir(dir: string): Promise<void> {
  await mkdir(join(dir, 'sock'), { recursive: true })
  if (!isRoot) {
    return
  }
  await execa('id', ['-u', 'postgres']).catch(async () => {
    await execa('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
  })
  await execa('chown', ['-R', 'postgres:postgres', dir])
  await execa('runuser', ['-u', 'postgres', '--', 'test', '-w', dir]).catch(() => {
    throw new Error(
      `the postgres OS user cannot write ${dir} (a parent folder is probably not world-` +
        'searchable): move the checkout or set TEST_DATABASE_URL',
    )
  })
}

/** A cluster from another major version cannot be started, and it only holds test data. */
async function initCluster(bin: string, dir: string): Promise<void> {
  const data = join(dir, 'data')
  const existing = await readFile(join(data, 'PG_VERSION'), 'utf8').catch(() => undefined)
  const { stdout } = await execa(join(bin, 'pg_ctl'), ['--version'])
  const major = /(\d+)/.exec(stdout)?.[1]
  if (existing !== undefined && existing.trim() === major) {
    return
  }
  await rm(data, { recursive: true, force: true })
  await asPostgres(join(bin, 'initdb'), [
    ...['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
  ])
}

/** Loopback only, socket in our folder, durability off: this data is disposable. */
function serverOptions(port: number, socketDir: string): string {
  const quoted = `'${socketDir.replaceAll("'", "'\\''")}'`
  return [
    `-p ${port}`,
    `-k ${quoted}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ')
}

function asPostgres(cmd: string, args: string[]) {
  // cwd: the postgres user may not be able to enter the caller's working directory
  const opts = { cwd: '/', stdin: 'ignore' as const }
  return isRoot
    ? execa('runuser', ['-u', 'postgres', '--', cmd, ...args], opts)
    : execa(cmd, args, opts)
}

async function canConnect(port: number): Promise<boolean> {
  const sql = postgres(baseUrl(port, 'postgres'), {
    max: 1,
    connect_timeout: 2,
    onnotice: () => {},
  })
  try {
    await sql`select 1`
    return true
  } catch {
    return false
  } finally {
    await sql.end({ timeout: 1 })
  }
}

async function waitForConnections(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) {
      throw new Error(
        `PostgreSQL on 127.0.0.1:${port} accepted no connection within ${timeoutMs} ms`,
      )
    }
    await sleep(200)
  }
}

async function ensureDatabase(port: number, database: string): Promise<string> {
  const sql = postgres(baseUrl(port, 'postgres'), { max: 1, onnotice: () => {} })
  try {
    const found = await sql`select 1 from pg_database where datname = ${database}`
    if (found.length === 0) {
      await sql.unsafe(`create database "${database}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') {
          throw err
        }
      })
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
  return baseUrl(port, database)
}

/** Exclusive lock file; one left by a dead process or older than two minutes is stale. */
async function lockFile(path: string, timeoutMs = 300_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const handle = await open(path, 'wx')
      await handle.writeFile(String(process.pid))
      await handle.close()
      return () => unlink(path).catch(() => undefined)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw err
      }
    }
    const owner = Number(await readFile(path, 'utf8').catch(() => ''))
    const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0)
    if ((owner > 0 && !isAlive(owner)) || age > 120_000) {
      await unlink(path).catch(() => undefined)
    } else if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${path} (held by pid ${owner})`)
    } else {
      await sleep(200)
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

async function tail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '')
  return text.split('\n').slice(-20).join('\n')
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
