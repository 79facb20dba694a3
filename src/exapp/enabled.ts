import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import { errorMessage } from '../errors.js'
import { type KeycloakRuntime, startAndWaitReady } from '../keycloak/runtime.js'
import type { Logger } from '../log.js'
import { readState, writeState } from '../state.js'
import type { SyncEngine } from '../sync/engine.js'
import { registerTopMenu, unregisterTopMenu } from '../ui/top-menu.js'

/**
 * How long enabling waits for Keycloak before it answers: AppAPI waits 60 s for that answer; a
 * slower start goes on, and the heartbeat tells.
 */
export const ENABLE_WAIT_MS = 45_000

export interface EnabledParts {
  /** where the enabled flag is kept across restarts */
  storageDir: string
  keycloak: Pick<KeycloakRuntime, 'start' | 'stop' | 'waitReady' | 'status'>
  sync: Pick<SyncEngine, 'startSchedule' | 'stop'>
  nextcloud: NextcloudClient
}

/**
 * What `PUT /enabled` means: enabling starts Keycloak, the sync schedule and the top menu;
 * disabling removes the top menu and stops the schedule and Keycloak. The flag is kept for the
 * next start. Resolves to an error for Nextcloud, '' when all went well.
 */
export function setEnabled(parts: EnabledParts): (enabled: boolean) => Promise<string> {
  const { keycloak, sync, nextcloud } = parts
  return async (enabled) => {
    await writeState(parts.storageDir, { enabled })
    if (!enabled) {
      // Removal first, while Nextcloud still accepts our calls (it disables us afterwards).
      const removed = await unregisterTopMenu(nextcloud).then(
        () => '',
        (err: unknown) => `the top menu could not be removed: ${String(err)}`,
      )
      await sync.stop()
      await keycloak.stop()
      return removed
    }
    keycloak.start()
    try {
      await keycloak.waitReady(ENABLE_WAIT_MS)
    } catch (err) {
      if (keycloak.status() === 'crashed') {
        return errorMessage(err)
      }
    }
    sync.startSchedule()
    try {
      await registerTopMenu(nextcloud)
    } catch (err) {
      return `the top menu could not be registered: ${errorMessage(err)}`
    }
    return ''
  }
}

export interface ResumeParts {
  storageDir: string
  keycloak: Pick<KeycloakRuntime, 'start' | 'waitReady'>
  /** Keycloak's own start timeout (config.keycloak.startTimeoutMs) */
  startTimeoutMs: number
  bootstrap(): Promise<unknown>
  sync: Pick<SyncEngine, 'startSchedule'>
  log: Logger
  /** true once the app is stopping: its own stop of Keycloak then ends the resume */
  stopping?(): boolean
}

/**
 * At start, unless Nextcloud disabled the app: Keycloak starts at once (a first run installs it
 * before AppAPI calls /init) and the realm is set up, in the background; an app enabled before
 * gets its schedule back too, since AppAPI calls nothing after a container restart. Resolves once
 * the stored flag was read.
 */
export async function resume(parts: ResumeParts): Promise<void> {
  const previous = await readState(parts.storageDir)
  if (previous?.enabled === false) {
    return
  }
  const schedule = previous?.enabled === true
  const stopping = () => parts.stopping?.() ?? false
  void (async () => {
    try {
      await startAndWaitReady(parts.keycloak, parts.startTimeoutMs)
      await parts.bootstrap()
      // A schedule started after the stop stopped the sync would outlive the app.
      if (schedule && !stopping()) {
        parts.sync.startSchedule()
      }
    } catch (err) {
      if (stopping()) {
        // The stop took Keycloak away under the realm's setup: nothing is wrong, the next start
        // sets the realm up again.
        parts.log.info({ reason: errorMessage(err) }, 'exapp.resume_abandoned')
        return
      }
      parts.log.error({ err }, 'exapp.resume_failed')
    }
  })()
}
