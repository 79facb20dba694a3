/**
 * The entry point as it runs in production (src/main.ts in a process of its own): what it refuses
 * at start, the permissions of the state it leaves on disk, and what it says when the encryption
 * key no longer opens the stored secrets. Keycloak is external and unreachable here: none of this
 * needs it.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type ResultPromise } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from './net.js'

const REPO = fileURLToPath(new URL('../', import.meta.url))

function baseEnv(storage: string, port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? storage,
    APP_PERSISTENT_STORAGE: storage,
    APP_PORT: String(port),
    APP_HOST: '127.0.0.1',
    KEYCLOAK_URL: 'http://127.0.0.1:9',
    NEXTCLOUD_URL: 'http://127.0.0.1:9',
    SYNC_INTERVAL: '0',
  }
}

const runMain = (env: Record<string, string>) =>
  execa(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO,
    env,
    extendEnv: false,
    all: true,
    reject: false,
  })

/** Starts the app and waits until it answers; the caller stops it. */
async function start(env: Record<string, string>) {
  const app = runMain(env)
  let output = ''
  app.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const url = `http://127.0.0.1:${env.APP_PORT}`
  const deadline = Date.now() + 90_000
  for (;;) {
    if (app.exitCode !== null && app.exitCode !== undefined) {
      throw new Error(`the app exited with ${app.exitCode}:\n${output}`)
    }
    const res = await fetch(`${url}/heartbeat`).catch(() => undefined)
    if (res?.ok) {
      break
    }
    if (Date.now() > deadline) {
      throw new Error(`the app did not answer within 90 s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return {
    url,
    output: () => output,
    async stop(): Promise<number | undefined> {
      app.kill('SIGTERM')
      return (await app).exitCode
    },
    process: app as ResultPromise,
  }
}

/** Every entry under `dir` whose permissions let group or others in. */
async function openToOthers(dir: string): Promise<string[]> {
  const found: string[] = []
  const visit = async (path: string) => {
    const info = await lstat(path)
    if (info.isSymbolicLink()) {
      return
    }
    if ((info.mode & 0o077) !== 0) {
      found.push(`${path.slice(dir.length) || '/'} ${(info.mode & 0o777).toString(8)}`)
    }
    if (info.isDirectory()) {
      for (const entry of await readdir(path)) {
        await visit(join(path, entry))
      }
    }
  }
  await visit(dir)
  return found
}

async function countFiles(dir: string): Promise<number> {
  let n = 0
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    n += entry.isFile() ? 1 : 0
  }
  return n
}

describe('src/main.ts refuses at start', () => {
  it.each([
    ['APP_SECRET', 'x', /^invalid configuration: APP_SECRET: too weak: needs at least 16/m],
    ['METRICS_TOKEN', 'short-token', /^invalid configuration: METRICS_TOKEN: too weak/m],
    [
      'KC_BOOTSTRAP_ADMIN_PASSWORD',
      'admin',
      /^invalid configuration: KC_BOOTSTRAP_ADMIN_PASSWORD: too weak/m,
    ],
    ['KEYCLOAK_REALM', 'Master', /^invalid configuration: KEYCLOAK_REALM: the master realm/m],
  ])(
    '%s=%s, with one clear line',
    async (name, value, message) => {
      const storage = await mkdtemp(join(tmpdir(), 'main-refuses-'))
      try {
        const result = await runMain({ ...baseEnv(storage, await freePort()), [name]: value })
        expect(result.exitCode).toBe(1)
        expect(result.stderr).toMatch(message)
        if (name !== 'KEYCLOAK_REALM') {
          expect(result.all).not.toContain(`"${value}"`)
        }
        // nothing was generated or opened
        expect(await readdir(storage)).toEqual([])
      } finally {
        await rm(storage, { recursive: true, force: true })
      }
    },
    60_000,
  )
})

describe('src/main.ts state on disk', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps every state file owner-only and tells when secrets.json was lost', async () => {
    const storage = await mkdtemp(join(tmpdir(), 'main-state-'))
    dirs.push(storage)
    // As an earlier version left it: folders 0755, Keycloak's H2 file 0644.
    await chmod(storage, 0o755)
    await mkdir(join(storage, 'keycloak', 'h2'), { recursive: true, mode: 0o755 })
    await chmod(join(storage, 'keycloak'), 0o755)
    await chmod(join(storage, 'keycloak', 'h2'), 0o755)
    const h2 = join(storage, 'keycloak', 'h2', 'keycloakdb.mv.db')
    await writeFile(h2, 'realm keys and client secrets', { mode: 0o644 })
    await chmod(h2, 0o644)
    const env = baseEnv(storage, await freePort())

    const first = await start(env)
    try {
      const health = await fetch(`${first.url}/healthz`)
      expect(await health.json()).toMatchObject({ database: 'ok', secrets: 'ok' })
      expect(await countFiles(join(storage, 'pglite'))).toBeGreaterThan(100)
      expect(await openToOthers(storage)).toEqual([])
      expect(first.output()).toContain('storage.permissions_restricted')
    } finally {
      expect(await first.stop()).toBe(0)
    }

    // secrets.json gone: a new ENCRYPTION_KEY is generated that opens nothing stored.
    await rm(join(storage, 'secrets.json'))
    const second = await start(env)
    try {
      const health = await fetch(`${second.url}/healthz`)
      expect(health.status).toBe(503)
      expect(await health.json()).toMatchObject({ database: 'ok', secrets: 'undecryptable' })
      const lines = second
        .output()
        .split('\n')
        .filter((line) => line.includes('secrets.undecryptable'))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ level: 50, undecryptable: 1 })
      expect(await openToOthers(storage)).toEqual([])
    } finally {
      expect(await second.stop()).toBe(0)
    }
  }, 240_000)
})
