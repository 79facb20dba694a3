import type { KeycloakRuntime } from '../keycloak/runtime.js'
import { readState, writeState } from '../state.js'

export interface RealmMark {
  /** the fingerprint the last clean stop left, if any; removed from the state file, so only this start sees it */
  take(): Promise<string | undefined>
  /** the bootstrapper's `onAsserted`: the realm now holds the spec with this fingerprint */
  asserted(fingerprint: string): void
  /** at close, once Keycloak stopped: leaves the mark if it stopped cleanly with the realm asserted */
  leave(): Promise<void>
}

/**
 * After a Keycloak start the realm is re-asserted before tokens are minted, since a Keycloak that
 * crashed may have lost its last writes. A restart of the app need not wait for that when nothing
 * can have changed the realm: the app asserted it with the same spec in Keycloak's last life and
 * then stopped Keycloak cleanly. This mark says so across the restart: the spec's fingerprint,
 * written at such a stop and taken at the next start, so a crash after that start leaves none. An
 * external Keycloak never gets one: its storage is not the app's to vouch for.
 */
export function realmMark(
  storageDir: string,
  keycloak: Pick<KeycloakRuntime, 'status' | 'onStatusChange' | 'stoppedCleanly'>,
): RealmMark {
  /** asserted in Keycloak's current life */
  let current: string | undefined
  /** asserted when Keycloak was last asked to stop from ready */
  let atStop: string | undefined
  const unsubscribe = keycloak.onStatusChange?.((status, previous) => {
    if (previous === 'ready' && status !== 'ready') {
      atStop = status === 'stopping' ? current : undefined
      current = undefined
    }
  })
  return {
    async take() {
      const state = await readState(storageDir)
      if (state?.realmAsserted === undefined) {
        return undefined
      }
      const { realmAsserted, ...rest } = state
      try {
        await writeState(storageDir, rest)
      } catch {
        // a mark that cannot be taken away is not used: it could outlive a crash of this run
        return undefined
      }
      return realmAsserted
    },
    asserted(fingerprint) {
      // a run that ended after Keycloak went away asserted nothing that is known to be kept
      if (keycloak.status() === 'ready') {
        current = fingerprint
      }
    },
    async leave() {
      unsubscribe?.()
      if (atStop === undefined || !keycloak.stoppedCleanly?.()) {
        return
      }
      const state = await readState(storageDir)
      // Without the mark the next start waits for the re-assertion, as after a crash.
      await writeState(storageDir, { ...state, realmAsserted: atStop }).catch(() => undefined)
    },
  }
}
