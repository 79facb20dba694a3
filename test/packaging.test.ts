/**
 * Static checks of the packaging: Dockerfile (parsed with dockerfile-ast), docker-compose.yml
 * (yaml), appinfo/info.xml (fast-xml-parser) against what AppAPI and HaRP require of an ExApp, and
 * .env.example. No Docker engine is needed: this runs in the unit layer.
 */
import { readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Copy, From, Healthcheck } from 'dockerfile-ast'
import { execa } from 'execa'
import { XMLParser } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import type { ZodType } from 'zod'
import { envSchema, KEYCLOAK_VERSION } from '../src/config/schema.js'
import { buildOptionsFor } from '../src/keycloak/options.js'
import {
  commandsOf,
  envOf,
  jsonArgs,
  ofKind,
  readDockerfile,
  type Stage,
  stagesOf,
} from './dockerfile.js'

const root = new URL('../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const isExecutable = (path: string) => (statSync(new URL(path, root)).mode & 0o111) !== 0

const pkg = JSON.parse(read('package.json')) as { version: string; license: string }

/** Build-time options the image is built for: what the sidecar wants for a Postgres Keycloak. */
const POSTGRES_BUILD_OPTIONS = buildOptionsFor({ keycloak: { db: { kind: 'postgres' } } })

// ---- Dockerfile ---------------------------------------------------------------------------------

/** Seconds of a Docker duration such as `10m`, `90s`, `1m30s`. */
function seconds(duration: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 }
  let total = 0
  for (const [, value, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    total += Number(value) * (units[unit ?? 's'] ?? 0)
  }
  return total
}

describe('Dockerfile', () => {
  const dockerfile = readDockerfile()
  const stages = stagesOf(dockerfile)
  const stage = (name: string) => {
    const found = stages.find((s) => s.name === name)
    expect(found, `stage "${name}"`).toBeDefined()
    return found as Stage
  }
  const keycloak = stage('keycloak')
  const build = stage('build')
  const runtime = stages.at(-1) as Stage
  const entrypoint = read('docker/entrypoint.sh')

  it('has a Keycloak build stage, a Node build stage and a final runtime stage', () => {
    expect(stages.map((s) => s.name)).toEqual(
      expect.arrayContaining(['keycloak', 'jre', 'frpc', 'build', 'runtime']),
    )
    expect(runtime.name).toBe('runtime')
  })

  it('builds Keycloak from the official image at KEYCLOAK_VERSION', () => {
    expect(keycloak.from.getRegistry()).toBe('quay.io')
    expect(keycloak.from.getImageName()).toBe('keycloak/keycloak')
    expect(keycloak.from.getImageTag()).toBe(KEYCLOAK_VERSION)
  })

  it('runs kc.sh build with the build-time options buildOptionsFor() gives for postgres', () => {
    const builds = ofKind(keycloak, 'RUN')
      .flatMap(commandsOf)
      .filter((c) => c[0]?.endsWith('/kc.sh') && c[1] === 'build')
    expect(builds).toHaveLength(1)
    expect([...(builds[0] ?? []).slice(2)].sort()).toEqual([...POSTGRES_BUILD_OPTIONS].sort())
  })

  it('stamps /opt/keycloak for the same options, so the sidecar starts it without a rebuild', () => {
    const stamps = ofKind(runtime, 'RUN')
      .flatMap(commandsOf)
      .filter((c) => c[0] === 'node' && c[1] === 'docker/keycloak-home.mjs' && c[2] === 'stamp')
    expect(stamps).toHaveLength(1)
    expect([...(stamps[0] ?? []).slice(3)].sort()).toEqual([...POSTGRES_BUILD_OPTIONS].sort())
    expect(read('docker/keycloak-home.mjs')).toContain('buildStamp(')
  })

  it('pins every base image and never uses latest', () => {
    const stageNames = new Set(stages.map((s) => s.name))
    const images = [
      ...stages.map((s) => s.from),
      ...stages.flatMap((s) => ofKind<Copy>(s, 'COPY')).filter((c) => c.getFromFlag()),
    ]
    for (const instruction of images) {
      if (instruction.getKeyword() === 'COPY') {
        const from = (instruction as Copy).getFromFlag()?.getValue() ?? ''
        expect(stageNames.has(from), `COPY --from=${from} names a stage`).toBe(true)
        continue
      }
      const from = instruction as From
      const tag = from.getImageTag()
      const digest = from.getImageDigest()
      expect(tag ?? digest, `${from.getImage()} has a tag or digest`).toBeTruthy()
      expect(tag).not.toBe('latest')
    }
  })

  it('compiles TypeScript, ships the migrations next to dist/db and drops dev dependencies', () => {
    const commands = ofKind(build, 'RUN').flatMap(commandsOf)
    const has = (...words: string[]) =>
      commands.some((c) => words.every((w, i) => c[i] === w) && c.length >= words.length)
    expect(has('npm', 'ci')).toBe(true)
    expect(has('npm', 'run', 'build')).toBe(true)
    expect(has('cp', '-R', 'src/db/migrations', 'dist/db/migrations')).toBe(true)
    expect(has('npm', 'prune', '--omit=dev') || has('npm', 'ci', '--omit=dev')).toBe(true)
    // `npm run build` is tsc -p tsconfig.build.json over src/, plus the status page's files
    const buildScript = (
      JSON.parse(readFileSync('package.json', 'utf8')) as {
        scripts: Record<string, string>
      }
    ).scripts.build
    expect(buildScript).toContain('tsc -p tsconfig.build.json')
    expect(buildScript).toMatch(/cpSync\('src\/ui\/static', 'dist\/ui\/static'/)
    const sources = ofKind<Copy>(build, 'COPY').flatMap((c) =>
      c
        .getArguments()
        .slice(0, -1)
        .map((a) => a.getValue()),
    )
    expect(sources).toEqual(
      expect.arrayContaining(['package-lock.json', 'tsconfig.build.json', 'src']),
    )
    expect(build.from.getImageName()).toBe('node')
  })

  it('runs on a current Node LTS slim image with Java 21, Keycloak and frpc', () => {
    expect(runtime.from.getImageName()).toBe('node')
    expect(runtime.from.getImageTag()).toMatch(/^(22|24)([.-].*)?-slim$/)
    const jre = stage('jre')
    expect(jre.from.getImageName()).toBe('eclipse-temurin')
    expect(jre.from.getImageTag()).toMatch(/^21[.-]/)

    const copies = ofKind<Copy>(runtime, 'COPY').map((c) => ({
      from: c.getFromFlag()?.getValue(),
      args: c.getArguments().map((a) => a.getValue()),
    }))
    const copied = (from: string, source: string, target: string) =>
      copies.some((c) => c.from === from && c.args[0] === source && c.args.at(-1) === target)
    expect(copied('jre', '/opt/java/openjdk', '/opt/java/openjdk')).toBe(true)
    expect(copied('keycloak', '/opt/keycloak', '/opt/keycloak')).toBe(true)
    expect(copied('frpc', '/out/frpc', '/usr/local/bin/frpc')).toBe(true)
    expect(copied('build', '/app/dist', './dist')).toBe(true)
    expect(copied('build', '/app/node_modules', './node_modules')).toBe(true)

    const env = envOf(runtime)
    expect(env.get('JAVA_HOME')).toBe('/opt/java/openjdk')
    expect(env.get('KEYCLOAK_HOME')).toBe('/opt/keycloak')
    expect(env.get('NODE_ENV')).toBe('production')
  })

  it('downloads frpc 0.61.1 from its release archive and checks it', () => {
    const frpc = stage('frpc')
    const version = ofKind(frpc, 'ARG')
      .flatMap((a) => a.getArguments().map((x) => x.getValue()))
      .find((v) => v.startsWith('FRP_VERSION='))
    expect(version).toBe('FRP_VERSION=0.61.1')
    const sources = ofKind(frpc, 'ADD').map((a) => a.getArguments()[0]?.getValue() ?? '')
    expect(sources.some((s) => s.includes('/fatedier/frp/releases/download/'))).toBe(true)
    expect(sources.some((s) => s.endsWith('frp_sha256_checksums.txt'))).toBe(true)
    // grep <archive line> frp_sha256_checksums.txt | sha256sum -c -
    expect(
      ofKind(frpc, 'RUN')
        .flatMap(commandsOf)
        .some((c) => c.includes('frp_sha256_checksums.txt') && c.includes('sha256sum')),
    ).toBe(true)
  })

  it('keeps the image user root and drops to uid 1000 in the entrypoint', () => {
    // AppAPI/HaRP copy /certs/frp and run update-ca-certificates as the image user.
    for (const user of ofKind(runtime, 'USER')) {
      expect(user.getArguments()[0]?.getValue()).toMatch(/^(root|0)(:.*)?$/)
    }
    const [entry] = ofKind(runtime, 'ENTRYPOINT')
    expect(entry && jsonArgs(entry)).toEqual(['/app/docker/entrypoint.sh'])
    expect(
      ofKind<Copy>(runtime, 'COPY').some(
        (c) =>
          c.getArguments()[0]?.getValue() === 'docker/entrypoint.sh' &&
          c.getFlags().some((f) => f.getName() === 'chmod' && f.getValue() === '0755'),
      ),
    ).toBe(true)
    expect(isExecutable('docker/entrypoint.sh')).toBe(true)
    expect(entrypoint.startsWith('#!/bin/sh\n')).toBe(true)
    expect(entrypoint).toMatch(/^set -eu$/m)
    expect(entrypoint).toMatch(/^APP_UID=1000$/m)
    expect(entrypoint).toContain('if [ "$(id -u)" = 0 ]; then')
    expect(entrypoint).toContain('exec setpriv --reuid="$APP_UID" --regid="$APP_GID"')
    expect(entrypoint).toMatch(/^exec "\$@"$/m)
  })

  it('writes the HaRP frpc configuration in the entrypoint', () => {
    for (const piece of [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a JS template
      'if [ -n "${HP_SHARED_KEY:-}" ]; then',
      'write_frpc_config /frpc.toml',
      'printf \'serverAddr = %s\\n\' "$(toml_string "$HP_FRP_ADDRESS")"',
      'printf \'serverPort = %s\\n\' "$HP_FRP_PORT"',
      "printf 'loginFailExit = false\\n'",
      'if [ -d /certs/frp ]; then',
      'transport.tls.certFile = "/certs/frp/client.crt"',
      'transport.tls.keyFile = "/certs/frp/client.key"',
      'transport.tls.trustedCaFile = "/certs/frp/ca.crt"',
      'transport.tls.serverName = "harp.nc"',
      'printf \'metadatas.token = %s\\n\' "$(toml_string "$HP_SHARED_KEY")"',
      'printf \'name = %s\\n\' "$(toml_string "$APP_ID")"',
      'printf \'remotePort = %s\\n\' "$APP_PORT"',
      'type = "unix_domain_socket"',
      'SOCKET=/tmp/exapp.sock',
      'frpc -c "$frpc_config"',
    ]) {
      expect(entrypoint).toContain(piece)
    }
  })

  it('points KEYCLOAK_HOME at a rebuilt copy in persistent storage when build options differ', () => {
    expect(entrypoint).toContain('if home=$(node "$SCRIPT_DIR/keycloak-home.mjs"); then')
    expect(entrypoint).toMatch(/^export KEYCLOAK_HOME$/m)
    const chooser = read('docker/keycloak-home.mjs')
    expect(chooser).toContain("const COPY_NAME = 'keycloak-home'")
    expect(chooser).toContain('buildOptionsFor(config)')
    expect(chooser).toContain('BUILD_STAMP_FILE')
  })

  it('declares the persistent storage as a volume', () => {
    expect(envOf(runtime).get('APP_PERSISTENT_STORAGE')).toBe('/nc_app_keycloak_data')
    const volumes = ofKind(runtime, 'VOLUME').flatMap(jsonArgs)
    expect(volumes).toContain('/nc_app_keycloak_data')
  })

  it('has a HEALTHCHECK on /healthz with a start period long enough for Keycloak', () => {
    const checks = ofKind<Healthcheck>(runtime, 'HEALTHCHECK')
    expect(checks).toHaveLength(1)
    const check = checks[0] as Healthcheck
    expect(check.getSubcommand()?.getValue()).toBe('CMD')
    const args = check.getArguments().map((a) => a.getValue().replaceAll('"', ''))
    // biome-ignore lint/suspicious/noTemplateCurlyInString: expanded by the shell at check time
    expect(args).toContain('http://127.0.0.1:${APP_PORT}/healthz')
    expect(args).toContain('/app/docker/healthcheck.mjs')
    const flags = new Map(check.getFlags().map((f) => [f.getName(), f.getValue() ?? '']))
    expect(seconds(flags.get('start-period') ?? '0s')).toBeGreaterThanOrEqual(180)
    expect(seconds(flags.get('timeout') ?? '30s')).toBeLessThanOrEqual(10)
    const probe = read('docker/healthcheck.mjs')
    expect(probe).toContain("const SOCKET = '/tmp/exapp.sock'")
    expect(probe).toContain("comm === 'frpc'")
  })

  it.each([
    [200, { status: 'ok', keycloak: 'ready', database: 'ok', secrets: 'ok' }, 0, 'healthy'],
    [503, { status: 'unavailable', keycloak: 'stopped', database: 'ok' }, 0, 'healthy'],
    [503, { status: 'unavailable', keycloak: 'stopped', database: 'stalled' }, 1, 'stalled'],
    [
      503,
      { status: 'unavailable', keycloak: 'ready', secrets: 'undecryptable' },
      1,
      'undecryptable',
    ],
    [503, { status: 'unavailable', keycloak: 'starting' }, 1, 'keycloak: starting'],
  ])('health probe: /healthz %i %j → exit %i', async (status, body, exit, printed) => {
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    try {
      const env = { PATH: process.env.PATH ?? '' }
      const result = await execa(
        'node',
        [
          fileURLToPath(new URL('docker/healthcheck.mjs', root)),
          `http://127.0.0.1:${port}/healthz`,
        ],
        { env, extendEnv: false, reject: false },
      )
      expect(result.exitCode).toBe(exit)
      expect(result.stdout).toContain(printed)
    } finally {
      server.close()
    }
  })

  it('starts node dist/main.js', () => {
    const [cmd] = ofKind(runtime, 'CMD')
    expect(cmd && jsonArgs(cmd)).toEqual(['node', 'dist/main.js'])
    expect(ofKind(runtime, 'WORKDIR').at(-1)?.getArguments()[0]?.getValue()).toBe('/app')
  })

  it('installs no build tools or dev dependencies in the final stage', () => {
    const commands = ofKind(runtime, 'RUN').flatMap(commandsOf)
    const installed = commands
      .filter((c) => c[0] === 'apt-get' && c[1] === 'install')
      .flatMap((c) => c.slice(2).filter((w) => !w.startsWith('-')))
    expect(installed).toEqual(['ca-certificates'])
    for (const c of commands) {
      expect(c[0], c.join(' ')).not.toMatch(/^(npm|npx|yarn|pnpm|apk|pip3?|gcc|make)$/)
    }
    const copiedFromContext = ofKind<Copy>(runtime, 'COPY')
      .filter((c) => !c.getFromFlag())
      .flatMap((c) =>
        c
          .getArguments()
          .slice(0, -1)
          .map((a) => a.getValue()),
      )
    expect(copiedFromContext.every((p) => p.startsWith('docker/'))).toBe(true)
  })
})

// ---- docker-compose.yml --------------------------------------------------------------------------

interface ComposeService {
  image?: string
  build?: { context?: string; dockerfile?: string } | string
  environment?: Record<string, string | number | boolean>
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: string[] | string }
  volumes?: string[]
  networks?: string[]
  entrypoint?: string[]
  user?: string
  restart?: string
}
interface Compose {
  services: Record<string, ComposeService>
  networks?: Record<string, unknown>
  volumes?: Record<string, unknown>
}

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml')) as Compose
  const services = compose.services
  const service = (name: string) => {
    expect(services[name], `service "${name}"`).toBeDefined()
    return services[name] as ComposeService
  }
  const app = service('keycloak-exapp')
  const register = service('register')

  it('has postgres, nextcloud (31+), the app built from . and a registration one-shot', () => {
    expect(service('postgres').image).toMatch(/^postgres:\d+/)
    const nextcloud = service('nextcloud').image ?? ''
    expect(nextcloud).toMatch(/^nextcloud:\d+/)
    expect(Number(/^nextcloud:(\d+)/.exec(nextcloud)?.[1])).toBeGreaterThanOrEqual(31)
    const build = typeof app.build === 'string' ? { context: app.build } : app.build
    expect(build?.context).toBe('.')
    expect(build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile')
    expect(register.image).toBe(nextcloud)
    expect(register.restart).toBe('no')
    expect(register.user).toBe('www-data')
  })

  it('pins every image and never uses latest', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image) {
        expect(s.image, name).toMatch(/:[^:/]+$/)
        expect(s.image, name).not.toMatch(/:latest$/)
      }
    }
  })

  it('puts every service on a declared network and uses only declared named volumes', () => {
    const networks = Object.keys(compose.networks ?? {})
    const volumes = Object.keys(compose.volumes ?? {})
    expect(networks.length).toBeGreaterThan(0)
    for (const [name, s] of Object.entries(services)) {
      expect(s.networks?.length, `${name} networks`).toBeGreaterThan(0)
      for (const n of s.networks ?? []) {
        expect(networks, name).toContain(n)
      }
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] ?? ''
        if (!source.startsWith('.') && !source.startsWith('/')) {
          expect(volumes, `${name}: ${v}`).toContain(source)
        } else if (source.startsWith('./')) {
          expect(() => statSync(new URL(source, root)), `${name}: ${v}`).not.toThrow()
        }
      }
    }
    expect(app.volumes).toContain('keycloak_exapp_data:/nc_app_keycloak_data')
  })

  it('waits on health: postgres and nextcloud have healthchecks, the app the image HEALTHCHECK', () => {
    expect(service('postgres').healthcheck?.test).toBeDefined()
    expect(service('nextcloud').healthcheck?.test).toBeDefined()
    expect(service('nextcloud').depends_on?.postgres?.condition).toBe('service_healthy')
    expect(app.depends_on?.postgres?.condition).toBe('service_healthy')
    expect(register.depends_on?.nextcloud?.condition).toBe('service_healthy')
    expect(register.depends_on?.['keycloak-exapp']?.condition).toBe('service_healthy')
    for (const s of Object.values(services)) {
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        if (condition === 'service_healthy' && dependency !== 'keycloak-exapp') {
          expect(services[dependency]?.healthcheck, dependency).toBeDefined()
        }
      }
    }
  })

  it('configures the app as AppAPI would, with Postgres for Keycloak and the sidecar', () => {
    const env = app.environment ?? {}
    expect(env.APP_ID).toBe('keycloak')
    expect(String(env.APP_PORT)).toBe('23000')
    expect(env.APP_HOST).toBe('0.0.0.0')
    expect(env.NEXTCLOUD_URL).toBe('http://nextcloud')
    expect(env.APP_SECRET).toMatch(/^\$\{APP_SECRET:\?/)
    expect(env.KC_DB).toBe('postgres')
    expect(env.KC_DB_URL).toBe('jdbc:postgresql://postgres:5432/keycloak')
    expect(env.KC_DB_USERNAME).toBeTruthy()
    expect(env.KC_DB_PASSWORD).toMatch(/^\$\{\w+:\?/)
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/\w+:\$\{\w+:\?[^}]*\}@postgres:5432\/keycloak$/)
    expect(register.environment?.APP_SECRET).toBe(env.APP_SECRET)
    expect(String(register.environment?.APP_PORT)).toBe(String(env.APP_PORT))
  })

  it('gives no secret a public default', () => {
    const secretName = /PASSWORD|SECRET|DATABASE_URL|_KEY$|TOKEN$/
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        const text = String(value)
        for (const [, variable, op] of text.matchAll(/\$\{(\w+)(:?[-?])?/g)) {
          if (secretName.test(variable ?? '')) {
            expect(op, `${name}.${key} uses \${${variable}} without a default`).toBe(':?')
          }
        }
        if (secretName.test(key)) {
          expect(text, `${name}.${key}`).toMatch(/\$\{\w+:\?/)
        }
      }
    }
  })

  it('creates the Nextcloud and Keycloak databases with an init script', () => {
    const init = service('postgres').volumes?.find((v) =>
      v.includes('/docker-entrypoint-initdb.d/'),
    )
    expect(init).toMatch(/^\.\/docker\/[\w.-]+\.sh:/)
    const path = (init ?? '').split(':')[0] ?? ''
    expect(isExecutable(path)).toBe(true)
    const script = read(path)
    expect(script).toContain('CREATE DATABASE nextcloud OWNER nextcloud')
    expect(script).toContain('CREATE DATABASE keycloak OWNER keycloak')
    expect(service('nextcloud').environment?.POSTGRES_DB).toBe('nextcloud')
  })

  it('registers a manual-install daemon and the ExApp with the routes of appinfo/info.xml', () => {
    expect(register.entrypoint).toEqual(['/bin/sh', '/exapp/register-exapp.sh'])
    expect(register.volumes).toEqual(
      expect.arrayContaining([
        './docker/register-exapp.sh:/exapp/register-exapp.sh:ro',
        './docker/exapp-json.php:/exapp/exapp-json.php:ro',
        './appinfo/info.xml:/exapp/info.xml:ro',
        'nextcloud_html:/var/www/html',
      ]),
    )
    expect(register.environment?.EXAPP_HOST).toBe('keycloak-exapp')
    const script = read('docker/register-exapp.sh')
    expect(script).toContain('occ app_api:daemon:register "$DAEMON"')
    expect(script).toContain('manual-install')
    expect(script).toContain(
      'occ app_api:app:register "$APP_ID" "$DAEMON" --wait-finish --json-info "$json"',
    )
    const json = read('docker/exapp-json.php')
    expect(json).toContain("$xml->{'external-app'}->routes->route")
    expect(json).toContain("'access_level' => $levels[$level]")
  })
})

// ---- appinfo/info.xml ----------------------------------------------------------------------------

type Level = 'PUBLIC' | 'USER' | 'ADMIN'
type Caller = 'anonymous' | 'user' | 'admin'
interface Route {
  url: string
  verb: string
  access_level: string
  bruteforce_protection?: string
  headers_to_exclude?: string
}
interface Variable {
  name: string
  'display-name'?: string
  description?: string
  default?: string
}
interface InfoXml {
  info: {
    id: string
    name: string
    summary: string
    description: string
    version: string
    licence: string
    author: string
    namespace: string
    category: string[]
    bugs: string
    dependencies: { nextcloud: { '@_min-version': string; '@_max-version': string } }
    'external-app': {
      'docker-install': { registry: string; image: string; 'image-tag': string }
      routes: { route: Route[] }
      'environment-variables': { variable: Variable[] }
    }
  }
}

const LEVELS: Level[] = ['PUBLIC', 'USER', 'ADMIN']
const passes = (level: Level, caller: Caller) =>
  level === 'PUBLIC' || (level === 'USER' && caller !== 'anonymous') || caller === 'admin'

/**
 * The three route matchers Nextcloud has had (the PHP proxy before and since 34.0.0, HaRP). Each
 * answers whether `caller` gets through to `path` (request path without the proxy prefix and
 * without its leading slash).
 */
const matchers = {
  /** PHP proxy up to 33.0.0: preg_match('/url/i', path), first route passing url+verb+level. */
  oldPhp: (routes: Route[], method: string, path: string, caller: Caller) =>
    routes.some(
      (r) =>
        new RegExp(r.url, 'i').test(path) &&
        r.verb.toLowerCase().includes(method.toLowerCase()) &&
        passes(r.access_level as Level, caller),
    ),
  /** PHP proxy 34.0.0+: ~^(?:url)~i on "/path", else on "path"; first url+verb match decides. */
  newPhp: (routes: Route[], method: string, path: string, caller: Caller) => {
    for (const r of routes) {
      const re = new RegExp(`^(?:${r.url})`, 'i')
      if (
        (re.test(`/${path}`) || re.test(path)) &&
        r.verb.toLowerCase().includes(method.toLowerCase())
      ) {
        return passes(r.access_level as Level, caller)
      }
    }
    return false
  },
  /** HaRP: Python re.match(url, "/path"), case-sensitive, verb ignored; first url match decides. */
  harp: (routes: Route[], _method: string, path: string, caller: Caller) => {
    for (const r of routes) {
      const re = new RegExp(r.url, 'y') // sticky at index 0 = anchored at the start, like re.match
      if (re.test(`/${path}`)) {
        return passes(r.access_level as Level, caller)
      }
    }
    return false
  },
}

/** The least privileged caller that gets through, or NONE (404/403 for everyone). */
function effectiveLevel(allowed: (caller: Caller) => boolean): Level | 'NONE' {
  if (allowed('anonymous')) {
    return 'PUBLIC'
  }
  if (allowed('user')) {
    return 'USER'
  }
  return allowed('admin') ? 'ADMIN' : 'NONE'
}

/** `/` not escaped by a backslash: the old PHP proxy's delimiter would end the pattern there. */
function unescapedSlash(url: string): number {
  for (let i = 0; i < url.length; i++) {
    if (url[i] === '\\') {
      i++
    } else if (url[i] === '/') {
      return i
    }
  }
  return -1
}

/**
 * envSchema variables an admin does not set through AppAPI's `--env`, so info.xml leaves them out:
 * - set by AppAPI on every deploy: declaring them would let `--env` fight AppAPI;
 * - the image's own layout: Java, the Keycloak home (chosen by docker/entrypoint.sh) and the
 *   install cache of `npm start`;
 * - Keycloak's HTTP and management ports: bound to 127.0.0.1 inside the container, nothing
 *   outside ever sees them;
 * - NODE_ENV: "development" only turns on pino-pretty, a dev dependency the image does not have.
 * Heap, start timeout and sync tuning stay declared: an admin with a large directory needs them.
 */
const NOT_DECLARED = [
  'APP_ID',
  'APP_SECRET',
  'APP_VERSION',
  'APP_HOST',
  'APP_PORT',
  'APP_PERSISTENT_STORAGE',
  'NEXTCLOUD_URL',
  'AA_VERSION',
  'HP_SHARED_KEY',
  'JAVA_HOME',
  'KEYCLOAK_HOME',
  'KEYCLOAK_CACHE_DIR',
  'KEYCLOAK_HTTP_PORT',
  'KEYCLOAK_MANAGEMENT_PORT',
  'NODE_ENV',
]

/** Variables holding secrets (or URLs that embed one): their info.xml default must be empty. */
const isSecret = (name: string) =>
  /SECRET|PASSWORD|ENCRYPTION_KEY|TOKEN$/.test(name) ||
  name === 'KEYCLOAK_CONSUMERS' ||
  name === 'DATABASE_URL'

describe('appinfo/info.xml', () => {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    isArray: (name) => ['route', 'variable', 'category'].includes(name),
  })
  const info = (parser.parse(read('appinfo/info.xml')) as InfoXml).info
  const external = info['external-app']
  const routes = external.routes.route
  const variables = external['environment-variables'].variable
  const shape = envSchema.shape as unknown as Record<string, ZodType>

  it('has the regular app fields', () => {
    expect(info.id).toBe('keycloak')
    expect(info.name).toBe('Keycloak')
    expect(info.version).toBe(pkg.version)
    expect(info.licence).toBe('agpl')
    expect(pkg.license).toMatch(/^AGPL-3\.0/)
    for (const field of ['summary', 'description', 'author', 'namespace', 'bugs'] as const) {
      expect(String(info[field]).trim(), field).not.toBe('')
    }
    expect(info.category.length).toBeGreaterThan(0)
    expect(info.dependencies.nextcloud['@_min-version']).toBe('30')
    expect(info.dependencies.nextcloud['@_max-version']).toBe('34')
  })

  it('installs a pinned image whose tag is the app version', () => {
    const docker = external['docker-install']
    expect(docker.registry).toBeTruthy()
    expect(docker.image).toBeTruthy()
    expect(docker['image-tag']).toBe(info.version)
    expect(docker['image-tag']).not.toBe('latest')
  })

  it('gives every route a url, verbs and a valid access level', () => {
    expect(routes.length).toBeGreaterThan(0)
    for (const route of routes) {
      expect(route.url).toBeTruthy()
      expect(LEVELS).toContain(route.access_level)
      for (const verb of route.verb.split(',')) {
        // the PHP proxy knows no other methods
        expect(['GET', 'POST', 'PUT', 'DELETE']).toContain(verb.trim())
      }
      // AppAPI 5.0.2 reads headers_to_exclude of every route unconditionally (a PHP warning per
      // route without it); from info.xml it stores anything but `[]` as `[]` anyway.
      expect(route.headers_to_exclude, route.url).toBe('[]')
      if (route.bruteforce_protection !== undefined) {
        const list = JSON.parse(route.bruteforce_protection)
        expect(Array.isArray(list), route.bruteforce_protection).toBe(true)
      }
    }
  })

  it('writes every route url as a regex all three matchers accept', () => {
    for (const { url } of routes) {
      expect(() => new RegExp(url), url).not.toThrow()
      expect(unescapedSlash(url), `unescaped "/" in ${url}`).toBe(-1)
      // Python-only or PCRE-only syntax would not compile here or would mean something else.
      expect(url, url).not.toMatch(/\(\?P|\(\?<[^=!]|\\[AZz]/)
    }
  })

  // method, path without leading slash, intended access level
  const table: [string, string, Level | 'NONE'][] = [
    ['POST', 'api/token', 'USER'],
    ['POST', 'api/sync-all', 'ADMIN'],
    ['POST', 'api/sync-user', 'ADMIN'],
    ['POST', 'api/delete-user', 'ADMIN'],
    ['GET', 'api/sync-runs', 'ADMIN'],
    ['GET', 'api/sync-runs/42', 'ADMIN'],
    ['GET', 'realms/commonground/protocol/openid-connect/certs', 'PUBLIC'],
    ['GET', 'realms/commonground/.well-known/openid-configuration', 'PUBLIC'],
    ['GET', 'realms/commonground/protocol/openid-connect/auth', 'PUBLIC'],
    ['POST', 'realms/commonground/protocol/openid-connect/token', 'PUBLIC'],
    ['POST', 'realms/commonground/login-actions/authenticate', 'PUBLIC'],
    ['GET', 'realms/master/protocol/openid-connect/certs', 'ADMIN'],
    ['POST', 'realms/master/protocol/openid-connect/token', 'ADMIN'],
    ['GET', 'realms/Master/protocol/openid-connect/auth', 'ADMIN'],
    ['GET', 'realms/MASTER/account/', 'ADMIN'],
    ['GET', 'realms/master', 'ADMIN'],
    ['GET', 'realms/commonground/../master/protocol/openid-connect/auth', 'ADMIN'],
    ['GET', 'realms/commonground/%2e%2e/master/account', 'ADMIN'],
    ['GET', 'resources/a1b2c/login/keycloak.v2/css/styles.css', 'PUBLIC'],
    ['GET', 'resources/a1b2c/common/keycloak/vendor/react/react.production.min.js', 'PUBLIC'],
    ['GET', 'resources/a1b2c/../../admin/master/console/', 'ADMIN'],
    ['GET', 'resources/%2E%2E/admin/master/console/', 'ADMIN'],
    ['GET', 'admin/master/console/', 'ADMIN'],
    ['GET', 'admin/realms/commonground/users', 'ADMIN'],
    ['PUT', 'admin/realms/commonground/users/0b1c', 'ADMIN'],
    ['DELETE', 'admin/realms/commonground/users/0b1c', 'ADMIN'],
    ['GET', '', 'ADMIN'],
    ['GET', 'js/keycloak-exapp-main.js', 'ADMIN'],
    ['GET', 'app/', 'ADMIN'],
    ['GET', 'app/status.js', 'ADMIN'],
    ['GET', 'app/loader.js', 'ADMIN'],
    ['GET', 'api/ui/overview', 'ADMIN'],
    ['POST', 'api/ui/credentials', 'ADMIN'],
    ['POST', 'api/sync-all', 'ADMIN'],
    ['GET', 'img/app.svg', 'ADMIN'],
    ['GET', 'metrics', 'ADMIN'],
    ['GET', 'oidc/authorize', 'PUBLIC'],
    ['GET', 'oidc/authorize/x', 'ADMIN'],
    ['POST', 'oidc/token', 'ADMIN'],
    ['GET', 'oidc/jwks', 'ADMIN'],
    // AppAPI's lifecycle endpoints are never reachable through a proxy
    ['GET', 'heartbeat', 'NONE'],
    ['POST', 'init', 'NONE'],
    ['PUT', 'enabled', 'NONE'],
  ]

  for (const [name, matcher] of Object.entries(matchers)) {
    it(`routes each sample path to its intended access level (${name})`, () => {
      const got = table.map(([method, path]) => [
        method,
        path,
        effectiveLevel((caller) => matcher(routes, method, path, caller)),
      ])
      expect(got).toEqual(table)
    })
  }

  it('declares every admin-settable envSchema variable, and nothing else', () => {
    const declared = variables.map((v) => v.name).sort()
    const expected = Object.keys(shape)
      .filter((name) => !NOT_DECLARED.includes(name))
      .sort()
    expect(declared).toEqual(expected)
    for (const name of NOT_DECLARED) {
      expect(shape[name], `${name} is in envSchema`).toBeDefined()
    }
  })

  it('describes every variable, keeps secrets empty and defaults equal to envSchema', () => {
    for (const v of variables) {
      expect(String(v['display-name'] ?? '').trim(), v.name).not.toBe('')
      expect(String(v.description ?? '').trim(), v.name).not.toBe('')
      const fallback = v.default ?? ''
      if (isSecret(v.name)) {
        expect(fallback, `${v.name} is a secret`).toBe('')
        continue
      }
      if (fallback !== '') {
        // AppAPI passes the default as the value: it must mean what leaving it unset means.
        const schema = shape[v.name] as ZodType
        const given = schema.safeParse(fallback)
        expect(given.success, `${v.name}=${fallback}`).toBe(true)
        expect(given.data, v.name).toEqual(schema.parse(undefined))
      }
    }
  })
})

describe('.env.example', () => {
  it('lists every envSchema variable', () => {
    const listed = new Set(
      read('.env.example')
        .split('\n')
        .map((line) => /^#?\s*([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
        .filter((name): name is string => name !== undefined),
    )
    const missing = Object.keys(envSchema.shape).filter((name) => !listed.has(name))
    expect(missing).toEqual([])
  })
})
