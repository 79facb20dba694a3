import type { Config } from '../config/config.js'
import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { ensureAotCache } from './aot-cache.js'
import { buildKeycloak, installKeycloak } from './install.js'
import { findJava } from './java.js'
import { buildOptionsFor } from './options.js'
import type { KeycloakRuntime, KeycloakStatus, StatusListener } from './runtime.js'
import { keycloakSupervisor, type Supervisor } from './supervisor.js'

/** Installs, builds and supervises the given Keycloak home; returns the supervisor. */
export type PrepareKeycloak = () => Promise<Supervisor>

/**
 * Finds Java, installs the pinned distribution when needed (unless KEYCLOAK_HOME names one), and
 * builds it for our options: the Keycloak the app runs, and the break-glass command's.
 */
export async function installedKeycloak(
  config: Config,
  log: Logger,
): Promise<{ home: string; javaHome: string; javaVersion: string; aotCache?: string }> {
  const java = await findJava({ javaHome: config.keycloak.javaHome })
  const home =
    config.keycloak.home ??
    (
      await installKeycloak({
        version: config.keycloak.version,
        cacheDir: config.keycloak.cacheDir,
        log,
      })
    ).home
  await buildKeycloak({
    home,
    javaHome: java.javaHome,
    buildOptions: buildOptionsFor(config),
    log,
  })
  const aotCache = await ensureAotCache({
    home,
    javaHome: java.javaHome,
    javaVersion: java.version,
    heap: config.keycloak.heap,
    log,
  })
  return { home, javaHome: java.javaHome, javaVersion: java.version, aotCache }
}

/** The bundled Keycloak, installed and built, under a supervisor. */
export function prepareBundledKeycloak(config: Config, log: Logger): PrepareKeycloak {
  return async () => {
    const { home, javaHome, javaVersion, aotCache } = await installedKeycloak(config, log)
    log.info({ home, java: javaVersion, aotCache: aotCache !== undefined }, 'keycloak.prepared')
    return keycloakSupervisor(config, home, javaHome, log.child({ component: 'keycloak' }), {
      aotCache,
    })
  }
}

/**
 * The bundled Keycloak: installed and built on first start (which can take a minute, so callers
 * never wait on it from a request), then supervised. A failed preparation is kept and reported by
 * `waitReady`, and retried on the next `start()`.
 *
 * `waitReady` right after `start()` waits for that start: the supervisor is told synchronously
 * when it exists, and `waitReady` first waits for the pending start, so it never judges by the
 * state an earlier `stop()` left (a re-registration stops and starts the app in one process).
 */
export function createEmbeddedKeycloak(prepare: PrepareKeycloak, log: Logger): KeycloakRuntime {
  let supervisor: Supervisor | undefined
  let preparing: Promise<Supervisor> | undefined
  let failure: AppError | undefined
  let wanted = false
  /** the latest start(): settles once the supervisor was asked to start (or preparing failed) */
  let starting: Promise<void> | undefined
  const listeners = new Set<StatusListener>()

  const ensurePrepared = (): Promise<Supervisor> => {
    if (supervisor) {
      return Promise.resolve(supervisor)
    }
    preparing ??= prepare()
      .then((s) => {
        supervisor = s
        failure = undefined
        s.onChange((state, previous) => {
          for (const listener of listeners) {
            listener(state.kind, previous.kind)
          }
        })
        return s
      })
      .catch((err: unknown) => {
        failure =
          err instanceof AppError
            ? err
            : new AppError(
                'KEYCLOAK_UNAVAILABLE',
                `Keycloak could not be prepared: ${String(err)}`,
                { cause: err },
              )
        log.error({ err }, 'keycloak.prepare_failed')
        throw failure
      })
      .finally(() => {
        preparing = undefined
      })
    return preparing
  }

  return {
    mode: 'embedded',
    status(): KeycloakStatus {
      if (!supervisor) {
        return preparing ? 'installing' : failure ? 'crashed' : 'stopped'
      }
      return supervisor.state().kind
    },
    start() {
      wanted = true
      // A prepared supervisor is told now, so its state says "start requested" at once.
      starting = supervisor
        ? supervisor.start()
        : ensurePrepared().then((s) => (wanted ? s.start() : undefined))
      starting.catch(() => {
        // kept in `failure`, reported by waitReady and the heartbeat
      })
    },
    async stop() {
      wanted = false
      await preparing?.catch(() => undefined)
      await supervisor?.stop()
    },
    async waitReady(timeoutMs) {
      const deadline = Date.now() + timeoutMs
      if (starting) {
        await withTimeout(starting, timeoutMs, () =>
          supervisor
            ? `Keycloak did not start within ${Math.round(timeoutMs / 1000)} s`
            : `installing Keycloak did not finish within ${Math.round(timeoutMs / 1000)} s`,
        )
      }
      if (!supervisor) {
        throw (
          failure ??
          new AppError('KEYCLOAK_UNAVAILABLE', 'Keycloak is not started (is the app disabled?)')
        )
      }
      await supervisor.waitReady(Math.max(1, deadline - Date.now()))
    },
    restarts: () => supervisor?.restarts ?? 0,
    stoppedCleanly: () => supervisor?.stoppedCleanly() ?? false,
    onStatusChange(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
  }
}

/** `work`, or an AppError KEYCLOAK_UNAVAILABLE with `message()` once `ms` have passed. */
async function withTimeout<T>(work: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AppError('KEYCLOAK_UNAVAILABLE', message())), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}
