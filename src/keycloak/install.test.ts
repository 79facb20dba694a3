import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import {
  BUILD_STAMP_FILE,
  buildKeycloak,
  buildStamp,
  type CommandResult,
  failureReason,
  installKeycloak,
  installPaths,
  keycloakArtifact,
  mavenCopyArgs,
  parseVersionTxt,
  type RunCommand,
  runCommand,
} from './install.js'

const log = silentLogger()
const ok: CommandResult = { exitCode: 0, output: '', notFound: false }

describe('pure parts', () => {
  it('asks Maven for the tar.gz of the distribution with a pinned plugin', () => {
    expect(keycloakArtifact('26.7.3')).toBe('org.keycloak:keycloak-quarkus-dist:26.7.3:tar.gz')
    expect(mavenCopyArgs('26.7.3', '/c/download')).toEqual([
      '-B',
      '-q',
      'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy',
      '-Dartifact=org.keycloak:keycloak-quarkus-dist:26.7.3:tar.gz',
      '-DoutputDirectory=/c/download',
    ])
  })

  it('lays out the cache dir', () => {
    expect(installPaths('/c', '26.7.3')).toEqual({
      home: '/c/keycloak-26.7.3',
      downloadDir: '/c/download',
      tarball: '/c/download/keycloak-quarkus-dist-26.7.3.tar.gz',
    })
  })

  it('reads the version from version.txt', () => {
    expect(parseVersionTxt('Keycloak - Version 26.7.3\n')).toBe('26.7.3')
    expect(parseVersionTxt('something else')).toBeUndefined()
  })

  it('picks the line an admin needs from tool output', () => {
    const mvn =
      '[INFO] x\n[ERROR] \n[ERROR] Failed to execute goal: Unknown host repo.maven.apache.org\n[ERROR] more'
    expect(failureReason(mvn)).toBe(
      '[ERROR] Failed to execute goal: Unknown host repo.maven.apache.org',
    )
    expect(failureReason('starting\nERROR: Invalid value for option --db\nhelp')).toBe(
      'ERROR: Invalid value for option --db',
    )
    expect(failureReason('a\nlast line\n\n')).toBe('last line')
    expect(failureReason('')).toBe('no output')
  })

  it('stamps a build by its sorted options and JDK', () => {
    expect(buildStamp(['--b', '--a'], '/jdk')).toBe(buildStamp(['--a', '--b'], '/jdk'))
    expect(buildStamp(['--a'], '/jdk')).not.toBe(buildStamp(['--a'], '/other-jdk'))
  })
})

describe('installKeycloak', () => {
  let dir: string
  let cacheDir: string
  let goodTarball: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kc-install-'))
    cacheDir = join(dir, 'cache')
    const src = join(dir, 'src', 'keycloak-9.9.9')
    await mkdir(join(src, 'bin'), { recursive: true })
    await writeFile(join(src, 'version.txt'), 'Keycloak - Version 9.9.9\n')
    await writeFile(join(src, 'bin', 'kc.sh'), '#!/bin/sh\n', { mode: 0o755 })
    goodTarball = join(dir, 'good.tar.gz')
    await runCommand('tar', ['-czf', goodTarball, '-C', join(dir, 'src'), 'keycloak-9.9.9'])
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A Maven that "downloads" `content` (a file path, or bytes) into the output directory. */
  function fakeMaven(content: string | Buffer, calls: string[][] = []): RunCommand {
    return async (file, args, opts) => {
      if (file !== 'mvn') {
        return runCommand(file, args, opts)
      }
      calls.push(args)
      const out = args.find((a) => a.startsWith('-DoutputDirectory='))?.split('=')[1] ?? ''
      const bytes = typeof content === 'string' ? await readFile(content) : content
      await writeFile(join(out, 'keycloak-quarkus-dist-9.9.9.tar.gz'), bytes)
      return ok
    }
  }

  it('downloads, unpacks and moves the distribution into place', async () => {
    const calls: string[][] = []
    const { home } = await installKeycloak({
      version: '9.9.9',
      cacheDir,
      log,
      run: fakeMaven(goodTarball, calls),
    })
    expect(home).toBe(join(cacheDir, 'keycloak-9.9.9'))
    expect(await readFile(join(home, 'version.txt'), 'utf8')).toContain('9.9.9')
    await access(join(home, 'bin', 'kc.sh'))
    expect(calls).toHaveLength(1)
  })

  it('reuses an install whose version.txt matches without calling Maven', async () => {
    await installKeycloak({ version: '9.9.9', cacheDir, log, run: fakeMaven(goodTarball) })
    const calls: string[][] = []
    await installKeycloak({ version: '9.9.9', cacheDir, log, run: fakeMaven(goodTarball, calls) })
    expect(calls).toEqual([])
  })

  it('says to install Maven when mvn is missing', async () => {
    const run: RunCommand = async () => ({ notFound: true, output: '' })
    const err = await installKeycloak({ version: '9.9.9', cacheDir, log, run }).catch((e) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect(err.message).toMatch(/Maven \(mvn\) is needed.*apt-get install maven/)
  })

  it('reports the Maven error line when the download fails', async () => {
    const run: RunCommand = async () => ({
      exitCode: 1,
      notFound: false,
      output: '[ERROR] Failed to execute goal ... Unknown host repo.maven.apache.org\n[ERROR] \n',
    })
    const err = await installKeycloak({ version: '9.9.9', cacheDir, log, run }).catch((e) => e)
    expect(err.message).toMatch(
      /could not download org\.keycloak:keycloak-quarkus-dist:9\.9\.9:tar\.gz with Maven \(exit 1\): \[ERROR\] Failed.*Unknown host/,
    )
  })

  it('deletes a corrupt archive and says to run again', async () => {
    const run = fakeMaven(Buffer.from('not a tarball at all'))
    const err = await installKeycloak({ version: '9.9.9', cacheDir, log, run }).catch((e) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect(err.message).toMatch(/is not a valid Keycloak archive .*deleted, run the install again/)
    const { tarball, home } = installPaths(cacheDir, '9.9.9')
    await expect(access(tarball)).rejects.toThrow()
    await expect(access(home)).rejects.toThrow()
  })

  it('rejects an archive that holds another version', async () => {
    const err = await installKeycloak({
      version: '1.2.3',
      cacheDir,
      log,
      run: async (file, args, opts) => {
        if (file === 'mvn') {
          const out = args.find((a) => a.startsWith('-DoutputDirectory='))?.split('=')[1] ?? ''
          await writeFile(
            join(out, 'keycloak-quarkus-dist-1.2.3.tar.gz'),
            await readFile(goodTarball),
          )
          return ok
        }
        return runCommand(file, args, opts)
      },
    }).catch((e) => e)
    expect(err.message).toMatch(/does not contain Keycloak 1\.2\.3/)
  })
})

describe('buildKeycloak', () => {
  let home: string

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'kc-home-'))
    await mkdir(join(home, 'bin'))
    await writeFile(join(home, 'bin', 'kc.sh'), '#!/bin/sh\n', { mode: 0o755 })
  })

  afterEach(async () => {
    await rm(home, { recursive: true, force: true })
  })

  function recorder(result: CommandResult = ok) {
    const calls: { file: string; args: string[]; env?: Record<string, string | undefined> }[] = []
    const run: RunCommand = async (file, args, opts) => {
      calls.push({ file, args, env: opts?.env })
      return result
    }
    return { calls, run }
  }

  it('builds once per set of build options', async () => {
    const { calls, run } = recorder()
    const base = { home, javaHome: '/jdk25', log, run }
    expect(await buildKeycloak({ ...base, buildOptions: ['--db=dev-file'] })).toEqual({
      built: true,
    })
    expect(await buildKeycloak({ ...base, buildOptions: ['--db=dev-file'] })).toEqual({
      built: false,
    })
    expect(await buildKeycloak({ ...base, buildOptions: ['--db=postgres'] })).toEqual({
      built: true,
    })
    expect(calls.map((c) => c.args)).toEqual([
      ['build', '--db=dev-file'],
      ['build', '--db=postgres'],
    ])
    expect(calls[0]).toMatchObject({
      file: join(home, 'bin', 'kc.sh'),
      env: { JAVA_HOME: '/jdk25' },
    })
    expect(await readFile(join(home, BUILD_STAMP_FILE), 'utf8')).toBe(
      buildStamp(['--db=postgres'], '/jdk25'),
    )
  })

  it('fails with the kc.sh error line and leaves no stamp', async () => {
    const { run } = recorder({
      exitCode: 2,
      notFound: false,
      output: 'Updating the configuration\nERROR: Invalid value for option --db: nope\n',
    })
    const err = await buildKeycloak({
      home,
      javaHome: '/jdk',
      buildOptions: ['--db=nope'],
      log,
      run,
    })
      .then(() => undefined)
      .catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toBe(
      'kc.sh build failed (exit 2): ERROR: Invalid value for option --db: nope',
    )
    await expect(access(join(home, BUILD_STAMP_FILE))).rejects.toThrow()
  })

  it('refuses a home without kc.sh', async () => {
    await rm(join(home, 'bin'), { recursive: true })
    const { run } = recorder()
    const err = await buildKeycloak({ home, javaHome: '/jdk', buildOptions: [], log, run }).catch(
      (e: unknown) => e,
    )
    expect((err as Error).message).toMatch(/is not a Keycloak distribution/)
  })
})
