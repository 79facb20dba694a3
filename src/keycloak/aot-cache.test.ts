import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { aotCachePath, aotFailurePath, ensureAotCache } from './aot-cache.js'
import { type SpawnChild, spawnProcessGroup } from './process-group.js'

const fixture = resolve(import.meta.dirname, '../../test/fixtures/aot-training.js')

function captureLog() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) })
  return { log, lines }
}

describe('AOT cache', () => {
  let home: string
  let spawned: { command: string; args: string[]; env: Record<string, string | undefined> }[]
  /** runs the fixture in place of kc.sh, with the arguments and environment kc.sh would get */
  const fakeKeycloak =
    (mode: 'writes' | 'no-cache' | 'dies'): SpawnChild =>
    (spec, onLine) => {
      spawned.push({ command: spec.command, args: spec.args, env: spec.env ?? {} })
      return spawnProcessGroup(
        {
          command: process.execPath,
          args: [fixture, ...spec.args],
          env: { ...spec.env, AOT_FIXTURE: mode },
        },
        onLine,
      )
    }

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'aot-'))
    await mkdir(join(home, 'data'))
    spawned = []
  })
  afterEach(async () => {
    await rm(home, { recursive: true, force: true })
  })

  const options = (mode: 'writes' | 'no-cache' | 'dies', javaVersion = '25.0.3') => {
    const { log, lines } = captureLog()
    return {
      lines,
      opts: {
        home,
        javaHome: '/jdk',
        javaVersion,
        heap: '-Xmx512m',
        log,
        spawn: fakeKeycloak(mode),
      },
    }
  }

  it('trains once on a JDK 25: a start on scratch storage, stopped when ready, the cache kept', async () => {
    const { opts, lines } = options('writes')
    const path = await ensureAotCache(opts)
    expect(path).toBe(aotCachePath(home))
    expect(await readFile(aotCachePath(home), 'utf8')).toBe('cache')
    // written beside the target and renamed: nothing partial is left
    expect(await readdir(join(home, 'data'))).toEqual(['exapp-keycloak.aot'])
    const [run] = spawned
    expect(run?.command).toBe(join(home, 'bin', 'kc.sh'))
    expect(run?.args.slice(0, 2)).toEqual(['start', '--optimized'])
    expect(run?.args).toContain('--http-host=127.0.0.1')
    expect(run?.env.JAVA_OPTS_APPEND).toMatch(/^-XX:AOTCacheOutput=.*\.partial$/)
    expect(run?.env.JAVA_OPTS_KC_HEAP).toBe('-Xmx512m')
    // a throwaway admin on scratch storage; no configured database is touched
    expect(run?.env.KC_BOOTSTRAP_ADMIN_USERNAME).toBe('aot-training')
    expect(run?.env.KCRAW_BOOTSTRAP_ADMIN_PASSWORD).toMatch(/^[\w-]{32}$/)
    expect(run?.env.KC_DB_URL).toBeUndefined()
    expect(lines.map((l) => l.msg)).toContain('keycloak.aot.trained')

    // a cache in place is used as it is
    expect(await ensureAotCache(options('writes').opts)).toBe(path)
    expect(spawned).toHaveLength(1)
  })

  it('trains nothing on a JDK older than 25', async () => {
    expect(await ensureAotCache(options('writes', '21.0.5').opts)).toBeUndefined()
    expect(spawned).toHaveLength(0)
  })

  it('goes on without a cache when the training fails, and does not try again', async () => {
    for (const mode of ['no-cache', 'dies'] as const) {
      await rm(aotFailurePath(home), { force: true })
      spawned = []
      const { opts, lines } = options(mode)
      expect(await ensureAotCache(opts)).toBeUndefined()
      expect(await readdir(join(home, 'data'))).toEqual(['exapp-keycloak.aot.failed'])
      const failed = lines.find((l) => l.msg === 'keycloak.aot.training_failed')
      const reason = mode === 'dies' ? /exited before it was ready/ : /without writing/
      expect(failed?.err).toMatch(reason)
      expect(await readFile(aotFailurePath(home), 'utf8')).toMatch(reason)
      // the next start goes on without one at once
      expect(await ensureAotCache(options('writes').opts)).toBeUndefined()
      expect(spawned).toHaveLength(1)
    }
  })

  it('trains nothing where it cannot write the cache', async () => {
    // (mode bits do not stop root, who runs the tests here: a file where the folder should be does)
    await rm(join(home, 'data'), { recursive: true })
    await writeFile(join(home, 'data'), '')
    const { opts, lines } = options('writes')
    expect(await ensureAotCache(opts)).toBeUndefined()
    expect(spawned).toHaveLength(0)
    expect(lines.map((l) => l.msg)).toContain('keycloak.aot.not_writable')
  })

  it('does not take an empty file for a cache', async () => {
    await writeFile(aotCachePath(home), '')
    expect(await ensureAotCache(options('writes').opts)).toBe(aotCachePath(home))
    expect(spawned).toHaveLength(1)
  })
})
