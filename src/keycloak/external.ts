import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import type { KeycloakRuntime, KeycloakStatus, StatusListener } from './runtime.js'

/**
 * An existing Keycloak at `url` (external mode): nothing to start or stop; readiness is whether
 * its master realm's discovery document answers, probed in the background.
 */
export function createExternalKeycloak(
  url: string,
  log: Logger,
  intervalMs = 5_000,
): KeycloakRuntime {
  let status: KeycloakStatus = 'starting'
  let timer: NodeJS.Timeout | undefined
  const listeners = new Set<StatusListener>()
  const set = (next: KeycloakStatus) => {
    const previous = status
    if (next !== previous) {
      log.info({ url, status: next }, 'keycloak.external.state')
      status = next
      for (const listener of listeners) {
        listener(next, previous)
      }
    }
  }
  const probe = async (): Promise<boolean> => {
    try {
      const res = await fetch(`${url}/realms/master/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(5_000),
      })
      return res.ok
    } catch {
      return false
    }
  }
  const tick = async () => {
    set((await probe()) ? 'ready' : 'crashed')
  }
  return {
    mode: 'external',
    status: () => status,
    start() {
      if (!timer) {
        void tick()
        timer = setInterval(tick, intervalMs)
        timer.unref()
      }
    },
    async stop() {
      clearInterval(timer)
      timer = undefined
    },
    async waitReady(timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        if (await probe()) {
          set('ready')
          return
        }
        await new Promise((r) => setTimeout(r, 1_000))
      }
      throw new AppError(
        'KEYCLOAK_UNAVAILABLE',
        `the Keycloak at ${url} did not answer within ${Math.round(timeoutMs / 1000)} s`,
      )
    },
    restarts: () => 0,
    onStatusChange(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
  }
}
