// @ts-check
// What the page knows between refreshes, shared by its sections.

/**
 * @typedef {import('../status-api.js').Overview} Overview
 * @typedef {import('../status-api.js').Credentials} Credentials
 * @typedef {import('../status-api.js').SyncStatus} SyncStatus
 */

export const IDLE_POLL_MS = 10_000
export const RUNNING_POLL_MS = 1_000
/** Changes, conflicts and errors listed at most per run. */
export const MAX_CHANGES_SHOWN = 500
/** Give up waiting for a started background run that never shows up after this long. */
export const START_TIMEOUT_MS = 60_000
/** What stands in for a secret that is not revealed. */
export const MASK = '••••••••'

/**
 * @typedef {object} PageState
 * @property {Overview | null} overview
 * @property {SyncStatus | null} status
 * @property {{ after: number, since: number } | null} tracking set while waiting for a
 *   background run: it has ended once a run newer than `after` exists
 * @property {boolean} dryRunPending
 * @property {boolean} syncRequestPending
 * @property {number | null} lastRunId
 * @property {Credentials | null} credentials
 * @property {string} announced what the live region last said, so screen readers hear each
 *   step once
 */

/** @type {PageState} */
export const state = {
  overview: null,
  status: null,
  tracking: null,
  dryRunPending: false,
  syncRequestPending: false,
  lastRunId: null,
  credentials: null,
  announced: '',
}
