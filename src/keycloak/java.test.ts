import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import {
  findJava,
  type JdkEntry,
  javaMajor,
  parseJavaSettings,
  parseReleaseFile,
  pickJdk,
} from './java.js'

const release = (version: string) =>
  `IMPLEMENTOR="Someone"\nJAVA_VERSION="${version}"\nOS_NAME="Linux"\n`
const jdk = (home: string, version?: string): JdkEntry =>
  version === undefined ? { home } : { home, release: release(version) }

describe('parsing', () => {
  it('reads JAVA_VERSION from a release file', () => {
    expect(parseReleaseFile(release('25.0.3'))).toBe('25.0.3')
    expect(parseReleaseFile('JAVA_VERSION=21\n')).toBe('21')
    expect(parseReleaseFile('IMPLEMENTOR="x"\n')).toBeUndefined()
  })

  it.each([
    ['25.0.3', 25],
    ['17.0.15', 17],
    ['21', 21],
    ['1.8.0_292', 8],
    ['25-ea', 25],
    ['garbage', undefined],
  ])('major of %s is %s', (version, major) => {
    expect(javaMajor(version)).toBe(major)
  })

  it('reads java.home and java.version from -XshowSettings output', () => {
    const out = [
      'Property settings:',
      '    java.class.version = 61.0',
      '    java.home = /usr/lib/jvm/java-17-openjdk-amd64',
      '    java.version = 17.0.15',
      'openjdk version "17.0.15" 2025-04-15',
    ].join('\n')
    expect(parseJavaSettings(out)).toEqual({
      javaHome: '/usr/lib/jvm/java-17-openjdk-amd64',
      version: '17.0.15',
    })
    expect(parseJavaSettings('openjdk version "17"')).toBeUndefined()
  })
})

describe('pickJdk', () => {
  it('prefers the newest supported JDK', () => {
    const entries = [
      jdk('/jvm/java-17', '17.0.15'),
      jdk('/jvm/temurin-21', '21.0.4'),
      jdk('/jvm/temurin-25', '25.0.3'),
      jdk('/jvm/temurin-21-new', '21.0.9'),
    ]
    expect(pickJdk(entries)).toEqual({ javaHome: '/jvm/temurin-25', version: '25.0.3' })
  })

  it('compares patch versions numerically', () => {
    const entries = [jdk('/a', '21.0.9'), jdk('/b', '21.0.10')]
    expect(pickJdk(entries)?.javaHome).toBe('/b')
  })

  it('skips JDKs outside 21–25 and directories without a release file', () => {
    const entries = [
      jdk('/jvm/openjdk-17'),
      jdk('/jvm/java-17', '17.0.15'),
      jdk('/jvm/jdk-26', '26'),
    ]
    expect(pickJdk(entries)).toBeUndefined()
  })

  it('returns nothing for an empty listing', () => {
    expect(pickJdk([])).toBeUndefined()
  })
})

describe('findJava', () => {
  let root: string

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'jvm-'))
    for (const [name, version] of [
      ['java-17', '17.0.15'],
      ['temurin-21', '21.0.4'],
      ['temurin-25', '25.0.3'],
      ['old-11', '11.0.2'],
    ] as const) {
      await mkdir(join(root, name))
      await writeFile(join(root, name, 'release'), release(version))
    }
    await mkdir(join(root, 'empty'))
  })

  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('scans the root for the newest supported JDK', async () => {
    expect(await findJava({ jvmRoot: root })).toEqual({
      javaHome: join(root, 'temurin-25'),
      version: '25.0.3',
    })
  })

  it('lets an explicit javaHome win over the scan', async () => {
    const javaHome = join(root, 'java-17')
    expect(await findJava({ javaHome, jvmRoot: root })).toEqual({ javaHome, version: '17.0.15' })
  })

  it('rejects an explicit javaHome that is too old, saying what to install', async () => {
    const err = await findJava({ javaHome: join(root, 'old-11') }).catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toMatch(/Java 11\.0\.2.*install a JDK 21 or 25/)
  })

  it('rejects an explicit javaHome without a java binary', async () => {
    const err = await findJava({ javaHome: join(root, 'empty') }).catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toMatch(/no runnable bin\/java/)
  })
})
