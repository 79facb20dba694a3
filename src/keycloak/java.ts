import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { AppError } from '../errors.js'

export interface JavaInstall {
  javaHome: string
  /** full version, for example `25.0.3` */
  version: string
}

/** A JDK directory as seen by the scan; `release` is the text of its `release` file, if any. */
export interface JdkEntry {
  home: string
  release?: string
}

/**
 * Keycloak 26.x targets Java 17 bytecode and runs on 17 (deprecated), 21 and 25; 26.6 added 25.
 * A scan prefers the newest supported LTS; 17 is accepted only as the last resort.
 */
export const PREFERRED_JAVA = { min: 21, max: 25 } as const
export const MIN_JAVA = 17

const INSTALL_HINT =
  'install a JDK 21 or 25 (for example Temurin 25 under /usr/lib/jvm, or apt-get install ' +
  'openjdk-17-jre-headless), or set JAVA_HOME to one'

/** `JAVA_VERSION="25.0.3"` → `25.0.3`; undefined when the line is missing. */
export function parseReleaseFile(text: string): string | undefined {
  return /^JAVA_VERSION="?([^"\n]+)"?\s*$/m.exec(text)?.[1]?.trim()
}

/** Major version of a Java version string: `25.0.3` → 25, `1.8.0_292` → 8, `21` → 21. */
export function javaMajor(version: string): number | undefined {
  const [first, second] = version.split(/[._+-]/)
  const major = Number(first === '1' ? second : first)
  return Number.isInteger(major) && major > 0 ? major : undefined
}

/**
 * Picks the newest JDK whose major version is within `PREFERRED_JAVA` from a directory listing.
 * Symlinked duplicates (Debian's `java-1.17.0-openjdk-amd64`) simply tie and the first one wins.
 */
export function pickJdk(entries: JdkEntry[]): JavaInstall | undefined {
  let best: (JavaInstall & { major: number }) | undefined
  for (const entry of entries) {
    const version = entry.release === undefined ? undefined : parseReleaseFile(entry.release)
    const major = version === undefined ? undefined : javaMajor(version)
    if (version === undefined || major === undefined) {
      continue
    }
    if (major < PREFERRED_JAVA.min || major > PREFERRED_JAVA.max) {
      continue
    }
    if (best === undefined || compareVersions(version, best.version) > 0) {
      best = { javaHome: entry.home, version, major }
    }
  }
  return best === undefined ? undefined : { javaHome: best.javaHome, version: best.version }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[._+-]/).map((x) => Number.parseInt(x, 10) || 0)
  const pb = b.split(/[._+-]/).map((x) => Number.parseInt(x, 10) || 0)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) {
      return d
    }
  }
  return 0
}

/** Reads `java.home` and `java.version` from `java -XshowSettings:properties -version` output. */
export function parseJavaSettings(output: string): JavaInstall | undefined {
  const javaHome = /^\s*java\.home = (.+)$/m.exec(output)?.[1]?.trim()
  const version = /^\s*java\.version = (.+)$/m.exec(output)?.[1]?.trim()
  return javaHome && version ? { javaHome, version } : undefined
}

/**
 * Finds the Java to run Keycloak with: an explicit `javaHome` wins; otherwise the newest JDK 21–25
 * under `jvmRoot` (read from each `release` file); otherwise the `java` on PATH.
 * Throws `AppError('KEYCLOAK_UNAVAILABLE')` naming what to install when none is usable.
 */
export async function findJava(
  opts: { javaHome?: string; jvmRoot?: string } = {},
): Promise<JavaInstall> {
  if (opts.javaHome !== undefined) {
    const found = await describeJavaHome(opts.javaHome)
    if (found === undefined) {
      throw new AppError(
        'KEYCLOAK_UNAVAILABLE',
        `JAVA_HOME=${opts.javaHome} has no runnable bin/java; ${INSTALL_HINT}`,
      )
    }
    return requireSupported(found, `JAVA_HOME=${opts.javaHome}`)
  }
  const scanned = pickJdk(await listJdks(opts.jvmRoot ?? '/usr/lib/jvm'))
  if (scanned !== undefined) {
    return scanned
  }
  const onPath = await askJava('java')
  if (onPath === undefined) {
    throw new AppError('KEYCLOAK_UNAVAILABLE', `no Java found: ${INSTALL_HINT}`)
  }
  return requireSupported(onPath, 'the java on PATH')
}

function requireSupported(found: JavaInstall, what: string): JavaInstall {
  const major = javaMajor(found.version)
  if (major === undefined || major < MIN_JAVA) {
    throw new AppError(
      'KEYCLOAK_UNAVAILABLE',
      `${what} is Java ${found.version}, Keycloak needs 17 or newer: ${INSTALL_HINT}`,
    )
  }
  return found
}

async function listJdks(root: string): Promise<JdkEntry[]> {
  let names: string[]
  try {
    names = (await readdir(root)).sort()
  } catch {
    return []
  }
  return Promise.all(
    names.map(async (name) => {
      const home = join(root, name)
      const release = await readFile(join(home, 'release'), 'utf8').catch(() => undefined)
      return release === undefined ? { home } : { home, release }
    }),
  )
}

async function describeJavaHome(home: string): Promise<JavaInstall | undefined> {
  const release = await readFile(join(home, 'release'), 'utf8').catch(() => undefined)
  const version = release === undefined ? undefined : parseReleaseFile(release)
  if (version !== undefined) {
    return { javaHome: home, version }
  }
  const asked = await askJava(join(home, 'bin', 'java'))
  return asked === undefined ? undefined : { javaHome: home, version: asked.version }
}

async function askJava(binary: string): Promise<JavaInstall | undefined> {
  const result = await execa(binary, ['-XshowSettings:properties', '-version'], {
    reject: false,
    all: true,
    timeout: 15_000,
  })
  return result.exitCode === 0 ? parseJavaSettings(String(result.all ?? '')) : undefined
}
