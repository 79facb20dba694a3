import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { XMLParser } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readManifest, registrationInfo } from './registration.js'

const root = resolve(import.meta.dirname, '../..')
const infoXml = () => readFile(join(root, 'appinfo/info.xml'), 'utf8')
const run = promisify(execFile)

describe('registration info', () => {
  it('carries the routes of appinfo/info.xml as a full XML parser reads them', async () => {
    const xml = await infoXml()
    const parsed = new XMLParser({
      parseTagValue: false,
      isArray: (name) => name === 'route',
    }).parse(xml).info
    const levels: Record<string, number> = { PUBLIC: 0, USER: 1, ADMIN: 2 }
    const manifest = readManifest(xml)
    expect(manifest.id).toBe(parsed.id)
    expect(manifest.name).toBe(parsed.name)
    expect(manifest.version).toBe(parsed.version)
    const routes = parsed['external-app'].routes.route as Record<string, string>[]
    expect(manifest.routes).toEqual(
      routes.map((r) => ({
        url: r.url,
        verb: r.verb,
        access_level: levels[r.access_level ?? ''],
        headers_to_exclude: JSON.parse(r.headers_to_exclude ?? '[]'),
        ...(r.bruteforce_protection
          ? { bruteforce_protection: JSON.parse(r.bruteforce_protection) }
          : {}),
      })),
    )
    expect(manifest.routes.length).toBeGreaterThan(0)
  })

  it('reads entities and CDATA, skips comments, and takes <name> from <info> itself', () => {
    const xml = `<?xml version="1.0"?>
      <info>
        <!-- <id>commented</id> -->
        <id>demo</id>
        <dependencies><nextcloud min-version="30"/><name>not this</name></dependencies>
        <name>Demo &amp; Co</name>
        <version>1.2.3</version>
        <external-app>
          <routes>
            <route>
              <url><![CDATA[^\\/?a&b<c$]]></url>
              <verb>GET</verb>
              <access_level>admin</access_level>
              <headers_to_exclude>["x-a","&#x41;"]</headers_to_exclude>
            </route>
          </routes>
          <environment-variables><variable><name>X</name></variable></environment-variables>
        </external-app>
      </info>`
    expect(registrationInfo(xml, { port: 23001, secret: 's3cret' })).toEqual({
      id: 'demo',
      name: 'Demo & Co',
      version: '1.2.3',
      port: 23001,
      secret: 's3cret',
      routes: [
        { url: '^\\/?a&b<c$', verb: 'GET', access_level: 2, headers_to_exclude: ['x-a', 'A'] },
      ],
    })
  })

  it('refuses an unknown access level and a list that is not a JSON array', () => {
    const route = (inner: string) =>
      `<info><id>a</id><name>A</name><version>1</version><routes><route><url>.*</url><verb>GET</verb>${inner}</route></routes></info>`
    expect(() => readManifest(route('<access_level>ROOT</access_level>'))).toThrow(/ROOT/)
    expect(() =>
      readManifest(
        route('<access_level>USER</access_level><headers_to_exclude>cookie</headers_to_exclude>'),
      ),
    ).toThrow(/headers_to_exclude must be a JSON array/)
  })
})

describe('npm run --silent registration', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registration-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const registration = (env: Record<string, string>) =>
    run('npm', ['run', '--silent', 'registration'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...env },
    })

  it('prints only the JSON, with the secret the app generated and APP_PORT', async () => {
    await writeFile(
      join(dir, 'secrets.json'),
      JSON.stringify({ APP_SECRET: 'generated-by-the-app', ENCRYPTION_KEY: 'not-shown' }),
    )
    const { stdout } = await registration({ APP_PERSISTENT_STORAGE: dir, APP_PORT: '23456' })
    const info = JSON.parse(stdout)
    expect(info).toEqual(
      registrationInfo(await infoXml(), { port: 23456, secret: 'generated-by-the-app' }),
    )
    expect(stdout).not.toContain('not-shown')
  })

  it('prefers APP_SECRET from the environment, and fails with a message when there is none', async () => {
    const given = await registration({
      APP_PERSISTENT_STORAGE: dir,
      APP_SECRET: 'from-env-0123456789',
    })
    expect(JSON.parse(given.stdout)).toMatchObject({ secret: 'from-env-0123456789', port: 23000 })
    const failed = await registration({ APP_PERSISTENT_STORAGE: dir }).then(
      () => undefined,
      (err: { code: number; stdout: string; stderr: string }) => err,
    )
    expect(failed?.code).toBe(1)
    expect(failed?.stdout).toBe('')
    expect(failed?.stderr).toContain('no APP_SECRET')
  })
})
