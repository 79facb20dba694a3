import type { InitStep, ProgressReporter } from '../appapi/lifecycle.js'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import { type KeycloakRuntime, startAndWaitReady, startDeadlineMs } from '../keycloak/runtime.js'
import type { SyncEngine } from '../sync/engine.js'
import { registerTopMenu } from '../ui/top-menu.js'

export interface InitParts {
  keycloak: Pick<KeycloakRuntime, 'start' | 'waitReady'>
  /** Keycloak's own start timeout (config.keycloak.startTimeoutMs) */
  startTimeoutMs: number
  /** makes the realm what the app needs (idempotent) */
  bootstrap(): Promise<unknown>
  sync: Pick<SyncEngine, 'runFull'>
  nextcloud: NextcloudClient
}

/**
 * What `/init` does, in order, and the progress Nextcloud shows after each step: Keycloak ready,
 * the realm set up, the first full sync, the top menu registered.
 */
export function initSteps(parts: InitParts): InitStep[] {
  return [
    {
      name: 'keycloak',
      progress: 40,
      // The first start may download and build Keycloak before it starts it.
      timeoutMs: startDeadlineMs(parts.startTimeoutMs),
      run: () => startAndWaitReady(parts.keycloak, parts.startTimeoutMs),
    },
    {
      name: 'realm',
      progress: 60,
      timeoutMs: 120_000,
      run: async () => {
        await parts.bootstrap()
      },
    },
    {
      name: 'sync',
      progress: 90,
      timeoutMs: 30 * 60_000,
      run: async () => {
        const run = await parts.sync.runFull({ trigger: 'init' })
        // A partial run (some writes failed) goes on: the next run retries them.
        if (run.status !== 'succeeded' && run.status !== 'partial') {
          throw new Error(run.message)
        }
      },
    },
    {
      name: 'ui',
      progress: 95,
      timeoutMs: 60_000,
      run: () => registerTopMenu(parts.nextcloud),
    },
  ]
}

/** Init's progress goes to Nextcloud (AppAPI's ex-app status). */
export function progressToNextcloud(
  nextcloud: Pick<NextcloudClient, 'setInitProgress'>,
): ProgressReporter {
  return { report: (progress, error) => nextcloud.setInitProgress(progress, error) }
}
