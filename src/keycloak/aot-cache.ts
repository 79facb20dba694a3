import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { access, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage } from '../errors.js'
import { freeLoopbackPort } from '../free-port.js'
import type { Logger } from '../log.js'
import { javaMajor } from './java.js'
import { type StartConfig, startArgsFor, startEnvFor } from './options.js'
import { type SpawnChild, signalGroup, spawnProcessGroup } from './process-group.js'
import { pollReady } from './ready-probe.js'

/**
 * Where the ahead-of-time cache of a built Keycloak home is kept (JDK 25+, JEP 483/514): the
 * classes Keycloak loads and links at start, already parsed and linked, so a start that maps it
 * reaches ready in about half the time. A build removes it (its classes change).
 */
export function aotCachePath(home: string): string {
  return join(home, 'data', 'exapp-keycloak.aot')
}

/**
 * Left beside the cache when a training failed, with the reason: later starts do not train
 * again (each try costs a Keycloak start) until a build of the home removes it.
 */
export function aotFailurePath(home: string): string {
  return `${aotCachePath(home)}.failed`
}

/** The JDK that writes a cache in one training run (-XX:AOTCacheOutput) is 25 or newer. */
export const MIN_AOT_JAVA = 25

export interface AotCacheOptions {
  home: string
  javaHome: string
  javaVersion: string
  /** the heap options Keycloak runs with (KEYCLOAK_HEAP), so the cache matches its runs */
  heap: string
  log: Logger
  /** how long the training start may take to become ready, and then to exit; default 5 min */
  timeoutMs?: number
  spawn?: SpawnChild
}

/**
 * The AOT cache for `home`, trained once if missing: Keycloak is started on a scratch H2
 * database and free loopback ports, and stopped once ready; the JVM writes the cache as it exits.
 * Undefined when the JDK is older than 25 or the training failed (logged): Keycloak then starts
 * without one, as it would anyway.
 */
export async function ensureAotCache(opts: AotCacheOptions): Promise<string | undefined> {
  const major = javaMajor(opts.javaVersion)
  if (major === undefined || major < MIN_AOT_JAVA) {
    return undefined
  }
  const target = aotCachePath(opts.home)
  if (await exists(target)) {
    return target
  }
  if (await exists(aotFailurePath(opts.home))) {
    return undefined
  }
  try {
    await mkdir(dirname(target), { recursive: true })
    await access(dirname(target), constants.W_OK)
  } catch {
    // a home the app may not write (e.g. a read-only KEYCLOAK_HOME) gets no cache
    opts.log.info({ home: opts.home }, 'keycloak.aot.not_writable')
    return undefined
  }
  const started = Date.now()
  opts.log.info({ home: opts.home }, 'keycloak.aot.training')
  const scratch = await mkdtemp(join(tmpdir(), 'keycloak-aot-'))
  try {
    // Written beside the target and renamed into place: a killed training leaves no half a cache.
    const partial = `${target}.${process.pid}.partial`
    await rm(partial, { force: true })
    await train({ ...opts, output: partial, scratch })
    if (!(await exists(partial))) {
      throw new Error('the JVM exited without writing the cache')
    }
    await rename(partial, target)
    const { size } = await stat(target)
    opts.log.info(
      { path: target, bytes: size, durationMs: Date.now() - started },
      'keycloak.aot.trained',
    )
    return target
  } catch (err) {
    opts.log.warn({ err: errorMessage(err) }, 'keycloak.aot.training_failed')
    await writeFile(aotFailurePath(opts.home), `${errorMessage(err)}\n`).catch(() => undefined)
    return undefined
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

async function train(opts: AotCacheOptions & { output: string; scratch: string }): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000
  const [http, management] = [await freeLoopbackPort(), await freeLoopbackPort()]
  const tail: string[] = []
  const password = randomBytes(24).toString('base64url')
  // Started as the app starts Keycloak (startArgsFor, startEnvFor), on scratch storage and free
  // ports, with a throwaway admin for the requests that train the paths the app's first calls
  // take (see trainRequests).
  const scratch: StartConfig = {
    app: { storageDir: opts.scratch },
    keycloak: {
      httpPort: http,
      managementPort: management,
      publicUrl: `http://127.0.0.1:${http}`,
      db: { kind: 'dev-file' },
      heap: opts.heap,
      adminUser: TRAINING_ADMIN,
      adminPassword: password,
    },
  }
  const child = (opts.spawn ?? spawnProcessGroup)(
    {
      command: join(opts.home, 'bin', 'kc.sh'),
      args: ['start', '--optimized', ...startArgsFor(scratch)],
      env: {
        ...startEnvFor(scratch, opts.javaHome),
        JAVA_OPTS_APPEND: `-XX:AOTCacheOutput=${opts.output}`,
        // whatever database the app was given, the training touches none
        KC_DB_URL: undefined,
        KC_DB_USERNAME: undefined,
        KCRAW_DB_PASSWORD: undefined,
      },
      cwd: opts.home,
    },
    (_stream, line) => {
      tail.push(line)
      tail.splice(0, Math.max(0, tail.length - 5))
    },
  )
  const pid = child.pid
  let exited = false
  void child.exited.then(() => {
    exited = true
  })
  const ready = new AbortController()
  // ends the deadlines below once training is over, so no timer outlives it
  const over = new AbortController()
  const deadline = (what: string) =>
    sleep(timeoutMs, undefined, { signal: over.signal }).then(() => {
      throw new Error(`Keycloak ${what} within ${timeoutMs / 1000} s`)
    })
  try {
    await Promise.race([
      pollReady({
        url: `http://127.0.0.1:${management}/health/ready`,
        signal: ready.signal,
        intervalMs: () => 200,
        onResult: (ok) => ok && ready.abort(),
      }),
      child.exited.then((exit) => {
        throw new Error(
          `Keycloak exited before it was ready (${JSON.stringify(exit)}): ${tail.join(' | ')}`,
        )
      }),
      deadline('was not ready'),
    ])
    await trainRequests(`http://127.0.0.1:${http}`, password, opts.log).catch((err: unknown) =>
      opts.log.info({ err: errorMessage(err) }, 'keycloak.aot.requests_failed'),
    )
    if (pid !== undefined) {
      signalGroup(pid, 'SIGTERM')
    }
    // The JVM assembles the cache as it exits, in a child JVM of its own: that takes a while.
    const exit = await Promise.race([child.exited, deadline('did not exit after the stop')])
    if (exit.error !== undefined) {
      throw new Error(exit.error)
    }
  } finally {
    ready.abort()
    over.abort()
    if (!exited && pid !== undefined) {
      signalGroup(pid, 'SIGKILL')
    }
  }
}

const TRAINING_ADMIN = 'aot-training'

/**
 * A few requests on the paths the app's first calls after a start take, made by the app's own
 * clients: discovery through the token client, a password grant and admin reads through the
 * admin client. The classes they load go into the cache too, so the realm's re-assertion and the
 * first token after a start find them loaded. A failure only makes the cache smaller. The clients
 * are loaded here, not with this module: the entry point starts Keycloak before it loads them.
 */
async function trainRequests(baseUrl: string, password: string, log: Logger): Promise<void> {
  const realm = 'master'
  const [{ createTokenClient }, { createKeycloakAdmin }] = await Promise.all([
    import('./token-client.js'),
    import('./admin.js'),
  ])
  await createTokenClient({ backchannelUrl: baseUrl, realm, log }).issuer()
  const admin = createKeycloakAdmin({ baseUrl, username: TRAINING_ADMIN, password, realm, log })
  await admin.realms.findOne({ realm })
  await admin.users.getProfile({ realm })
  await admin.clients.find({ realm, clientId: 'admin-cli' })
  await admin.identityProviders.find({ realm })
  await admin.authenticationManagement.getFlows({ realm })
  await admin.roles.find({ realm })
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  )
}
