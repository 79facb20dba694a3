import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What the app remembers across restarts besides its databases. */
export interface PersistedState {
  /** whether Nextcloud enabled it (unset: never told) */
  enabled?: boolean
  /**
   * the fingerprint of the realm spec asserted before Keycloak was last stopped cleanly; taken
   * (and removed) at the next start (see src/exapp/realm-mark.ts)
   */
  realmAsserted?: string
}

export async function readState(storageDir: string): Promise<PersistedState | undefined> {
  try {
    return JSON.parse(await readFile(join(storageDir, 'state.json'), 'utf8')) as PersistedState
  } catch {
    return undefined
  }
}

export async function writeState(storageDir: string, state: PersistedState): Promise<void> {
  await writeFile(join(storageDir, 'state.json'), `${JSON.stringify(state)}\n`)
}
