/**
 * The image's own path, without a Docker engine. The Dockerfile's `build` stage runs as written in
 * a temporary directory standing for its `/app`: its COPY instructions take files from the
 * repository (the build context), its RUN commands run one by one (`npm ci`, `npm run build`, the
 * migrations copy, `npm prune --omit=dev`). The final stage's COPY instructions into `/app` then
 * assemble what ships, and its CMD starts there with its ENV. That app must answer `/heartbeat` and
 * go through a fake AppAPI's install to init 100 against the shared Keycloak (external mode).
 *
 * Not run, on purpose, and checked to be only these: the other stages and the final stage's COPY
 * outside `/app` (Java, Keycloak, frpc: the shared Keycloak stands in for them), the final stage's
 * RUN (apt-get, the Keycloak build stamp, ownership), the ENTRYPOINT (root-only work, then CMD), and
 * `npm cache clean --force`, which only makes the layer smaller and here would empty the
 * machine's npm cache. Any other instruction in those stages fails the test until it is handled.
 */
import { randomBytes } from 'node:crypto'
import { chmod, cp, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises'
import { basename, delimiter, dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Copy, Instruction } from 'dockerfile-ast'
import { execa, type ResultPromise } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKeycloakAdmin } from '../src/keycloak/admin.js'
import { silentLogger } from '../src/log.js'
import { sharedKeycloak, tempDir } from './config.js'
import { commandsOf, envOf, jsonArgs, readDockerfile, type Stage, stagesOf } from './dockerfile.js'
import { uniqueRealm } from './exapp-harness.js'
import {
  createFakeNextcloud,
  type FakeNextcloud,
  fixtureDirectory,
  type InstallResult,
} from './fake-nextcloud/index.js'
import { freePort } from './net.js'

const REPO = fileURLToPath(new URL('../', import.meta.url))
const WORKDIR = '/app'
/** Only makes the image layer smaller; run here it would empty the machine's npm cache. */
const SKIPPED_COMMAND = 'npm cache clean --force'
/** Programs of the final stage's RUN lines: system setup a Docker engine does, not the app. */
const SYSTEM_PROGRAMS = ['apt-get', 'rm', 'node docker/keycloak-home.mjs', 'mkdir', 'chown']
/** Final-stage ENV that names places inside the image; the test's stand-ins replace them. */
const IMAGE_PATHS = ['JAVA_HOME', 'KEYCLOAK_HOME', 'PATH']

/**
 * The environment of a RUN or of the app: the machine's PATH without any project's
 * node_modules/.bin (so nothing of this checkout is used), HOME (the npm cache) and TMPDIR.
 */
function hostEnv(): Record<string, string> {
  const path = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((p) => !p.includes(`node_modules${posix.sep}.bin`))
    .join(delimiter)
  const env: Record<string, string> = { PATH: path }
  for (const name of ['HOME', 'TMPDIR', 'npm_config_cache', 'npm_config_registry']) {
    const value = process.env[name]
    if (value) {
      env[name] = value
    }
  }
  return env
}

/** A path of the image under WORKDIR, mapped into `root`; undefined outside WORKDIR. */
function local(root: string, imagePath: string): string | undefined {
  const absolute = posix.resolve(WORKDIR, imagePath)
  if (absolute !== WORKDIR && !absolute.startsWith(`${WORKDIR}/`)) {
    return undefined
  }
  return join(root, posix.relative(WORKDIR, absolute))
}

/** COPY as Docker does it: several sources or a trailing slash make the target a directory. */
async function copy(
  instruction: Copy,
  fromRoot: (source: string) => string,
  targetRoot: string,
): Promise<'copied' | 'outside'> {
  const args = instruction.getArguments().map((a) => a.getValue())
  const sources = args.slice(0, -1)
  const target = args.at(-1) ?? ''
  const into = local(targetRoot, target)
  if (into === undefined) {
    return 'outside'
  }
  const intoDirectory = sources.length > 1 || target.endsWith('/')
  for (const source of sources) {
    const from = fromRoot(source)
    const isDirectory = (await stat(from)).isDirectory()
    const to = intoDirectory && !isDirectory ? join(into, basename(from)) : into
    await mkdir(dirname(to), { recursive: true })
    await cp(from, to, { recursive: true })
    const mode = instruction.getFlags().find((f) => f.getName() === 'chmod')
    if (mode) {
      await chmod(to, Number.parseInt(mode.getValue() ?? '', 8))
    }
  }
  return 'copied'
}

/** Words a shell would treat specially: the RUN commands here are run without one. */
const SHELL_SYNTAX = /["'`$|<>*?\\(){}]/

async function runCommand(words: string[], cwd: string, transcript: string[]): Promise<void> {
  const line = words.join(' ')
  expect(line, 'a RUN command the test can run without a shell').not.toMatch(SHELL_SYNTAX)
  if (line === SKIPPED_COMMAND) {
    transcript.push(`skipped: ${line}`)
    return
  }
  const [program = '', ...args] = words
  const result = await execa(program, args, {
    cwd,
    env: hostEnv(),
    extendEnv: false,
    all: true,
    reject: false,
  })
  transcript.push(`${line} → exit ${result.exitCode}`)
  if (result.exitCode !== 0) {
    throw new Error(`${line} failed (exit ${result.exitCode}):\n${result.all}`)
  }
}

/** Runs the `build` stage into `dir`; returns what was run. */
async function runBuildStage(stage: Stage, dir: string): Promise<string[]> {
  const transcript: string[] = []
  for (const instruction of stage.instructions) {
    const keyword = instruction.getKeyword()
    if (keyword === 'WORKDIR') {
      expect(instruction.getArguments().map((a) => a.getValue())).toEqual([WORKDIR])
      await mkdir(dir, { recursive: true })
    } else if (keyword === 'COPY') {
      const copy_ = instruction as Copy
      expect(copy_.getFromFlag(), 'the build stage copies from the context only').toBeNull()
      expect(await copy(copy_, (source) => join(REPO, source), dir)).toBe('copied')
      transcript.push(
        `COPY ${copy_
          .getArguments()
          .map((a) => a.getValue())
          .join(' ')}`,
      )
    } else if (keyword === 'RUN') {
      for (const words of commandsOf(instruction)) {
        await runCommand(words, dir, transcript)
      }
    } else {
      throw new Error(`the build stage has ${keyword}, which this test does not run yet`)
    }
  }
  return transcript
}

interface Runtime {
  env: Map<string, string | null>
  cmd: string[]
  /** first program of each RUN command of the final stage (not run) */
  systemPrograms: string[]
}

/** Assembles the final stage's `/app` in `dir` from the context and the built `buildDir`. */
async function assembleRuntime(stage: Stage, buildDir: string, dir: string): Promise<Runtime> {
  const runtime: Runtime = { env: envOf(stage), cmd: [], systemPrograms: [] }
  const handled = new Set(['ARG', 'ENV', 'VOLUME', 'HEALTHCHECK', 'ENTRYPOINT'])
  for (const instruction of stage.instructions as Instruction[]) {
    const keyword = instruction.getKeyword()
    if (keyword === 'WORKDIR') {
      expect(instruction.getArguments().map((a) => a.getValue())).toEqual([WORKDIR])
      await mkdir(dir, { recursive: true })
    } else if (keyword === 'COPY') {
      const copy_ = instruction as Copy
      const from = copy_.getFromFlag()?.getValue()
      const fromRoot =
        from === 'build'
          ? (source: string) => {
              const path = local(buildDir, source)
              expect(path, `${source} is under ${WORKDIR} of the build stage`).toBeDefined()
              return path as string
            }
          : (source: string) => join(REPO, source)
      const outcome = await copy(copy_, fromRoot, dir)
      // Only other stages' system pieces (Java, Keycloak, frpc) go elsewhere.
      expect(outcome === 'copied' || (from !== undefined && from !== 'build')).toBe(true)
    } else if (keyword === 'RUN') {
      for (const words of commandsOf(instruction)) {
        runtime.systemPrograms.push(words[0] === 'node' ? `node ${words[1]}` : (words[0] ?? ''))
      }
    } else if (keyword === 'CMD') {
      runtime.cmd = jsonArgs(instruction)
    } else if (!handled.has(keyword)) {
      throw new Error(`the final stage has ${keyword}, which this test does not handle yet`)
    }
  }
  return runtime
}

async function waitForHeartbeat(url: string, app: ResultPromise, output: () => string) {
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    if (app.exitCode !== undefined && app.exitCode !== null) {
      throw new Error(`the app exited with ${app.exitCode}:\n${output()}`)
    }
    const res = await fetch(`${url}/heartbeat`).catch(() => undefined)
    if (res) {
      return res
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`no answer on /heartbeat within 120 s:\n${output()}`)
}

describe('the image path: build stage, production prune, node dist/main.js', () => {
  const stages = stagesOf(readDockerfile())
  const buildStage = stages.find((s) => s.name === 'build') as Stage
  const finalStage = stages.at(-1) as Stage
  let root: string
  let transcript: string[] = []
  let runtime: Runtime
  let appDir: string
  let nc: FakeNextcloud
  let app: ResultPromise | undefined
  let output = ''
  let url: string
  const realm = uniqueRealm('image')
  const secret = randomBytes(24).toString('base64url')
  const shared = sharedKeycloak()

  beforeAll(async () => {
    root = await tempDir('image-path')
    transcript = await runBuildStage(buildStage, join(root, 'build'))
    appDir = join(root, 'app')
    runtime = await assembleRuntime(finalStage, join(root, 'build'), appDir)

    nc = await createFakeNextcloud(fixtureDirectory())
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    const env: Record<string, string> = hostEnv()
    for (const [name, value] of runtime.env) {
      if (!IMAGE_PATHS.includes(name) && value !== null) {
        env[name] = value
      }
    }
    Object.assign(env, {
      APP_HOST: '127.0.0.1',
      APP_PORT: String(port),
      APP_PERSISTENT_STORAGE: join(root, 'data'),
      APP_SECRET: secret,
      NEXTCLOUD_URL: nc.url,
      KEYCLOAK_URL: shared.url,
      KC_BOOTSTRAP_ADMIN_USERNAME: shared.admin,
      KC_BOOTSTRAP_ADMIN_PASSWORD: shared.password,
      KEYCLOAK_REALM: realm,
      SYNC_INTERVAL: '0',
    })
    const [program = '', ...args] = runtime.cmd
    app = execa(program, args, { cwd: appDir, env, extendEnv: false, all: true, reject: false })
    app.all?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
  }, 600_000)

  afterAll(async () => {
    if (app && app.exitCode === null) {
      app.kill('SIGKILL')
    }
    await nc?.close()
    const admin = createKeycloakAdmin({
      baseUrl: shared.url,
      username: shared.admin,
      password: shared.password,
      realm,
      log: silentLogger(),
    })
    await admin.realms.del({ realm }).catch(() => undefined)
    if (root) {
      await rm(root, { recursive: true, force: true })
    }
  })

  it('ran the build stage as written, leaving out only the cache clean', () => {
    expect(transcript).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^npm ci .*→ exit 0$/),
        expect.stringMatching(/^npm run build → exit 0$/),
        expect.stringMatching(/^cp -R src\/db\/migrations dist\/db\/migrations → exit 0$/),
        expect.stringMatching(/^npm prune --omit=dev .*→ exit 0$/),
      ]),
    )
    expect(transcript.filter((line) => line.startsWith('skipped: '))).toEqual([
      `skipped: ${SKIPPED_COMMAND}`,
    ])
    expect(runtime.systemPrograms.length).toBeGreaterThan(0)
    for (const program of runtime.systemPrograms) {
      expect(SYSTEM_PROGRAMS, `final-stage RUN program ${program}`).toContain(program)
    }
    expect(runtime.cmd).toEqual(['node', 'dist/main.js'])
  })

  it('ships production dependencies only, the compiled app and its migrations', async () => {
    const installed = (name: string) =>
      stat(join(appDir, 'node_modules', name, 'package.json')).then(
        () => true,
        () => false,
      )
    for (const prod of ['hono', '@electric-sql/pglite', 'pino', 'zod']) {
      expect(await installed(prod), `${prod} is a dependency`).toBe(true)
    }
    for (const dev of [
      'typescript',
      'vitest',
      '@biomejs/biome',
      'drizzle-kit',
      'playwright-core',
    ]) {
      expect(await installed(dev), `${dev} is a dev dependency`).toBe(false)
    }
    expect((await readdir(appDir)).sort()).toEqual([
      'dist',
      'docker',
      'node_modules',
      'package.json',
    ])
    const migrations = await readdir(join(appDir, 'dist/db/migrations'))
    expect(migrations.filter((f) => f.endsWith('.sql')).length).toBeGreaterThan(0)
    const pkg = JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as {
      name: string
    }
    expect(pkg.name).toBe('keycloak-exapp')
  })

  it('starts and answers /heartbeat', async () => {
    const res = await waitForHeartbeat(url, app as ResultPromise, () => output)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok' })
  })

  it("goes through a fake AppAPI's install to init 100 and syncs the directory", async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
      version: string
    }
    nc.registerExApp({
      appId: 'keycloak',
      secret,
      version: pkg.version,
      url,
      enabled: false,
      init: 0,
    })
    const result: InstallResult = await nc.install('keycloak', { timeoutMs: 180_000 })
    expect(result, output).toMatchObject({ init: 100, error: '', enabled: true, timedOut: false })

    const admin = createKeycloakAdmin({
      baseUrl: shared.url,
      username: shared.admin,
      password: shared.password,
      realm,
      log: silentLogger(),
    })
    const users = await admin.users.find({ realm, max: 100 })
    expect(users.map((u) => u.username).sort()).toEqual(['admin', 'alice', 'bob', 'carol'])
  }, 240_000)

  it('stops cleanly on SIGTERM', async () => {
    app?.kill('SIGTERM')
    const result = await app
    expect(result?.exitCode, output).toBe(0)
  }, 90_000)
})
