import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { aotCachePath, aotFailurePath } from './aot-cache.js'

export interface CommandResult {
  /** undefined when the command could not be started or was killed */
  exitCode?: number
  /** stdout and stderr interleaved */
  output: string
  /** the executable does not exist */
  notFound: boolean
}

/** Runs a command to completion without throwing; install and build go through it. */
export type RunCommand = (
  file: string,
  args: string[],
  opts?: { env?: Record<string, string | undefined>; timeoutMs?: number },
) => Promise<CommandResult>

export const runCommand: RunCommand = async (file, args, opts = {}) => {
  const result = await execa(file, args, {
    reject: false,
    all: true,
    stdin: 'ignore',
    env: opts.env,
    timeout: opts.timeoutMs,
  })
  return {
    exitCode: result.exitCode,
    output: String(result.all ?? result.message ?? ''),
    notFound: result.code === 'ENOENT',
  }
}

/** Maven coordinates of the distribution. It has no classifier: the type picks the archive. */
export function keycloakArtifact(version: string): string {
  return `org.keycloak:keycloak-quarkus-dist:${version}:tar.gz`
}

/**
 * `copy` of maven-dependency-plugin 3.x needs no pom. Maven 3.8's default plugin version (2.8)
 * does, so the plugin is named with its version.
 */
export function mavenCopyArgs(version: string, outputDirectory: string): string[] {
  return [
    '-B',
    '-q',
    'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy',
    `-Dartifact=${keycloakArtifact(version)}`,
    `-DoutputDirectory=${outputDirectory}`,
  ]
}

export function installPaths(cacheDir: string, version: string) {
  const downloadDir = join(cacheDir, 'download')
  return {
    home: join(cacheDir, `keycloak-${version}`),
    downloadDir,
    tarball: join(downloadDir, `keycloak-quarkus-dist-${version}.tar.gz`),
  }
}

/** `Keycloak - Version 26.7.3` (the distribution's version.txt) → `26.7.3`. */
export function parseVersionTxt(text: string): string | undefined {
  return /Version\s+(\S+)/.exec(text)?.[1]
}

/** The line of tool output worth showing an admin: the first error line, else the last line. */
export function failureReason(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
  const error = lines.find((l) => /^(\[ERROR\]|ERROR:|tar:|gzip:)\s*\S/.test(l))
  return (error ?? lines.at(-1) ?? 'no output').slice(0, 500)
}

const fail = (message: string, cause?: unknown) =>
  new AppError('KEYCLOAK_UNAVAILABLE', message, cause === undefined ? undefined : { cause })

async function installedVersion(home: string): Promise<string | undefined> {
  const text = await readFile(join(home, 'version.txt'), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : parseVersionTxt(text)
}

/**
 * Installs `keycloak-quarkus-dist:<version>` into `<cacheDir>/keycloak-<version>` and returns that
 * home. An existing install with the same version.txt is reused. The archive is unpacked next to
 * the target and renamed into place, so a crash never leaves a half-unpacked home behind.
 * Failures throw `AppError('KEYCLOAK_UNAVAILABLE')` with one line an admin can act on.
 */
export async function installKeycloak(opts: {
  version: string
  cacheDir: string
  log: Logger
  run?: RunCommand
}): Promise<{ home: string }> {
  const { version, cacheDir, log, run = runCommand } = opts
  const paths = installPaths(cacheDir, version)
  const existing = await installedVersion(paths.home)
  if (existing === version) {
    log.info({ home: paths.home, version }, 'keycloak.install.reused')
    return { home: paths.home }
  }
  await mkdir(paths.downloadDir, { recursive: true })
  await download(run, version, paths.downloadDir, log)
  const staging = await mkdtemp(join(cacheDir, '.unpack-'))
  try {
    await unpack(run, paths.tarball, staging)
    const unpacked = join(staging, `keycloak-${version}`)
    if ((await installedVersion(unpacked)) !== version) {
      await rm(paths.tarball, { force: true })
      throw fail(
        `${paths.tarball} does not contain Keycloak ${version} (no matching keycloak-${version}/version.txt); it was deleted, run the install again`,
      )
    }
    if (existing !== undefined) {
      log.warn({ home: paths.home, found: existing, version }, 'keycloak.install.replacing')
    }
    await rm(paths.home, { recursive: true, force: true })
    await rename(unpacked, paths.home).catch(async (err: unknown) => {
      // Another process may have installed the same version in the meantime; theirs is as good.
      if ((await installedVersion(paths.home)) !== version) {
        throw fail(`cannot move Keycloak into ${paths.home}: ${(err as Error).message}`, err)
      }
    })
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  // Maven keeps its own copy in ~/.m2; this one would only double the size of an image.
  await rm(paths.tarball, { force: true })
  log.info({ home: paths.home, version }, 'keycloak.install.done')
  return { home: paths.home }
}

async function download(run: RunCommand, version: string, dir: string, log: Logger) {
  const started = Date.now()
  log.info({ artifact: keycloakArtifact(version), dir }, 'keycloak.install.download')
  const result = await run('mvn', mavenCopyArgs(version, dir), { timeoutMs: 15 * 60_000 })
  if (result.notFound) {
    throw fail(
      `Maven (mvn) is needed to download Keycloak ${version} but is not on PATH: install it (apt-get install maven) or set KEYCLOAK_HOME to an unpacked keycloak-${version}`,
    )
  }
  if (result.exitCode !== 0) {
    throw fail(
      `could not download ${keycloakArtifact(version)} with Maven (exit ${result.exitCode ?? 'killed'}): ${failureReason(result.output)}`,
    )
  }
  log.info({ durationMs: Date.now() - started }, 'keycloak.install.downloaded')
}

async function unpack(run: RunCommand, tarball: string, into: string) {
  const result = await run('tar', ['-xzf', tarball, '-C', into], { timeoutMs: 10 * 60_000 })
  if (result.notFound) {
    throw fail(
      'tar is needed to unpack Keycloak but is not on PATH: install it (apt-get install tar)',
    )
  }
  if (result.exitCode !== 0) {
    // A truncated or corrupt download would fail again from the same file.
    await rm(tarball, { force: true })
    throw fail(
      `${tarball} is not a valid Keycloak archive (${failureReason(result.output)}); it was deleted, run the install again`,
    )
  }
}

export const BUILD_STAMP_FILE = '.exapp-build.json'

/**
 * What a build depends on. The JDK is part of it because the augmented output is produced by,
 * and checked against, the JVM that ran the build.
 */
export function buildStamp(buildOptions: string[], javaHome: string): string {
  return `${JSON.stringify({ options: [...buildOptions].sort(), javaHome })}\n`
}

/**
 * Runs `kc.sh build` with `buildOptions` unless the stamp in `home` says this exact set was
 * built already, so the ~30 s augmentation happens once per set of build-time options.
 */
export async function buildKeycloak(opts: {
  home: string
  javaHome: string
  buildOptions: string[]
  log: Logger
  run?: RunCommand
}): Promise<{ built: boolean }> {
  const { home, javaHome, buildOptions, log, run = runCommand } = opts
  const stampFile = join(home, BUILD_STAMP_FILE)
  const wanted = buildStamp(buildOptions, javaHome)
  const current = await readFile(stampFile, 'utf8').catch(() => undefined)
  if (current === wanted) {
    log.info({ home, buildOptions }, 'keycloak.build.skipped')
    return { built: false }
  }
  const kcSh = join(home, 'bin', 'kc.sh')
  await access(kcSh).catch((err: unknown) => {
    throw fail(`${kcSh} is missing: ${home} is not a Keycloak distribution`, err)
  })
  const started = Date.now()
  log.info({ home, buildOptions, javaHome }, 'keycloak.build.started')
  // Drop a stale stamp first, so an interrupted build is redone next time; the AOT cache holds
  // the classes of the last build, so it goes too (and is trained again).
  await rm(stampFile, { force: true })
  await rm(aotCachePath(home), { force: true })
  await rm(aotFailurePath(home), { force: true })
  const result = await run(kcSh, ['build', ...buildOptions], {
    env: { JAVA_HOME: javaHome },
    timeoutMs: 10 * 60_000,
  })
  if (result.exitCode !== 0) {
    throw fail(
      `kc.sh build failed (exit ${result.exitCode ?? 'killed'}): ${failureReason(result.output)}`,
    )
  }
  await writeFile(stampFile, wanted)
  log.info({ durationMs: Date.now() - started }, 'keycloak.build.done')
  return { built: true }
}
