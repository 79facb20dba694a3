/** What the rest of the app needs to know about Keycloak, embedded (a supervised child) or external. */
export type KeycloakStatus =
  | 'stopped'
  | 'starting'
  | 'ready'
  | 'stopping'
  | 'crashed'
  | 'installing'

/** Told of every change of status, e.g. `ready` again after a crash and restart. */
export type StatusListener = (status: KeycloakStatus, previous: KeycloakStatus) => void

export interface KeycloakRuntime {
  readonly mode: 'embedded' | 'external'
  status(): KeycloakStatus
  /** starts Keycloak (installing it first when needed); idempotent */
  start(): void
  /** stops it and waits until it has exited; idempotent */
  stop(): Promise<void>
  /** resolves when ready; rejects with an admin-actionable AppError after `timeoutMs` or on failure */
  waitReady(timeoutMs: number): Promise<void>
  /** restarts after a crash since this process started */
  restarts(): number
  /** subscribes to status changes; returns the unsubscribe function */
  onStatusChange?(listener: StatusListener): () => void
  /**
   * Embedded only: Keycloak last exited because it was stopped, within the deadline, so its
   * storage is as it left it (an external Keycloak's storage is never ours to vouch for).
   */
  stoppedCleanly?(): boolean
}

/**
 * What a start may take besides Keycloak's own start timeout: a first start of the bundled
 * Keycloak downloads and builds it before it starts it.
 */
export const INSTALL_ALLOWANCE_MS = 10 * 60_000

/** The longest a start may take, an install included. */
export function startDeadlineMs(startTimeoutMs: number): number {
  return startTimeoutMs + INSTALL_ALLOWANCE_MS
}

/** Starts Keycloak (idempotent) and waits until it is ready, allowing for an install first. */
export async function startAndWaitReady(
  keycloak: Pick<KeycloakRuntime, 'start' | 'waitReady'>,
  startTimeoutMs: number,
): Promise<void> {
  keycloak.start()
  await keycloak.waitReady(startDeadlineMs(startTimeoutMs))
}
