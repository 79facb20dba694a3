// @ts-check
// The app's API as the status page calls it: one function per request, typed with the
// server's own types (src/ui/status-api.ts).

/**
 * @typedef {import('../status-api.js').Overview} Overview
 * @typedef {import('../status-api.js').Credentials} Credentials
 * @typedef {import('../status-api.js').Vocabulary} Vocabulary
 * @typedef {import('../status-api.js').SyncStatus} SyncStatus
 * @typedef {import('../status-api.js').SyncStarted} SyncStarted
 * @typedef {import('../status-api.js').RunList} RunList
 * @typedef {import('../status-api.js').RunDetail} RunDetail
 * @typedef {import('../status-api.js').DryRunAnswer} DryRunAnswer
 */

/** A failed call; `body` is the server's JSON answer, if it sent one. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   * @param {unknown} body
   */
  constructor(message, status, body) {
    super(message)
    this.status = status
    this.body = body
  }
}

/**
 * The server's message of an error answer, if the body is one.
 *
 * @param {unknown} body
 * @returns {string | undefined}
 */
function errorMessage(body) {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const error = body.error
    if (typeof error === 'object' && error !== null && 'message' in error) {
      return typeof error.message === 'string' && error.message ? error.message : undefined
    }
  }
  return undefined
}

/**
 * Calls the app's API (paths are relative to the page, `<prefix>/app/`); rejects with an
 * ApiError carrying the server's message. The caller names the type of the answer.
 *
 * @template T
 * @param {string} path
 * @param {'GET' | 'POST'} [method]
 * @returns {Promise<T>}
 */
async function call(path, method = 'GET') {
  let response
  try {
    response = await fetch(path, {
      method,
      headers: { accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store',
    })
  } catch {
    throw new ApiError('The app cannot be reached. Check the connection and try again.', 0, null)
  }
  /** @type {unknown} */
  let body = null
  try {
    body = await response.json()
  } catch {
    body = null
  }
  if (!response.ok) {
    const message = errorMessage(body) || `Request failed (HTTP ${response.status}).`
    throw new ApiError(message, response.status, body)
  }
  if (typeof body !== 'object' || body === null) {
    throw new ApiError(`The app sent no data (HTTP ${response.status}).`, response.status, body)
  }
  return /** @type {T} */ (body)
}

/** @returns {Promise<Overview>} */
export const getOverview = () => call('../api/ui/overview')

/** @returns {Promise<Vocabulary>} */
export const getVocabulary = () => call('../api/ui/vocabulary')

/** @returns {Promise<Credentials>} */
export const revealCredentials = () => call('../api/ui/credentials', 'POST')

/** @returns {Promise<SyncStatus>} */
export const getSyncStatus = () => call('../api/sync-status')

/**
 * @param {number} limit
 * @returns {Promise<RunList>}
 */
export const listRuns = (limit) => call(`../api/sync-runs?limit=${limit}`)

/**
 * @param {number} id
 * @param {number} limit the first `limit` changes of its changelog
 * @returns {Promise<RunDetail>}
 */
export const getRun = (id, limit) =>
  call(`../api/sync-runs/${encodeURIComponent(id)}?limit=${limit}`)

/**
 * "Sync now": the run goes on in the background; it is the first with an id above `after`.
 *
 * @param {boolean} force pass the deletion guard
 * @returns {Promise<SyncStarted>}
 */
export const startBackgroundSync = (force) =>
  call(`../api/sync-all?background=1${force ? '&force=1' : ''}`, 'POST')

/** @returns {Promise<DryRunAnswer>} */
export const planDryRun = () => call('../api/sync-all?dryRun=1', 'POST')

/**
 * The plan a refused dry run still sent (a tripped guard answers 409 with it).
 *
 * @param {unknown} error
 * @returns {DryRunAnswer | null}
 */
export function dryRunOf(error) {
  const body = error instanceof ApiError ? error.body : null
  if (typeof body === 'object' && body !== null && ('counts' in body || 'changes' in body)) {
    return /** @type {DryRunAnswer} */ (body)
  }
  return null
}
