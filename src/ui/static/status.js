// @ts-check
// Admin status page for the Keycloak app: the entry module. Plain ES modules, no build step,
// no framework; each section of the page has its module, this one wires them and keeps the
// page fresh.

import { getOverview, getSyncStatus, getVocabulary } from './api.js'
import { renderCredentials, toggleCredentials } from './credentials.js'
import { byId } from './dom.js'
import { startDryRun } from './dry-run.js'
import { clearError, showError } from './errors.js'
import { renderOverview } from './overview.js'
import { loadRuns } from './runs.js'
import { IDLE_POLL_MS, RUNNING_POLL_MS, state } from './state.js'
import { handleStatus, isRunActive, onPollSoon, renderNextRun, startSync } from './sync.js'
import { adoptParentTheme, watchParentTheme } from './theme.js'
import { hasVocabulary, setVocabulary } from './vocabulary.js'

/** @type {number | undefined} */
let pollTimer
let polling = false

/** The sync's words; until they arrive the page shows raw keys, and asks again next refresh. */
async function loadVocabulary() {
  try {
    setVocabulary(await getVocabulary())
    clearError('vocabulary')
    return true
  } catch (error) {
    showError('vocabulary', error)
    return false
  }
}

async function loadOverview() {
  try {
    state.overview = await getOverview()
    clearError('overview')
    renderOverview(state.overview)
  } catch (error) {
    showError('overview', error)
  }
}

async function loadStatus() {
  try {
    const status = await getSyncStatus()
    clearError('status')
    handleStatus(status)
  } catch (error) {
    showError('status', error)
  }
}

async function poll() {
  if (polling) {
    return
  }
  polling = true
  try {
    if (!hasVocabulary() && (await loadVocabulary()) && state.lastRunId !== null) {
      // Runs listed before the words arrived show raw keys: list them again.
      loadRuns()
    }
    await Promise.all([loadOverview(), loadStatus()])
  } finally {
    polling = false
  }
  schedulePoll()
}

/**
 * Plans the next refresh: every second while a run is in progress, else every ten.
 *
 * @param {number} [delay]
 */
function schedulePoll(delay) {
  window.clearTimeout(pollTimer)
  pollTimer = undefined
  if (document.hidden) {
    return
  }
  const wait = delay ?? (isRunActive() ? RUNNING_POLL_MS : IDLE_POLL_MS)
  pollTimer = window.setTimeout(poll, wait)
}

function start() {
  adoptParentTheme()
  watchParentTheme()
  onPollSoon(schedulePoll)
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      window.clearTimeout(pollTimer)
      pollTimer = undefined
    } else {
      poll()
    }
  })
  byId('sync-now').addEventListener('click', () => startSync(false))
  byId('dry-run').addEventListener('click', () => startDryRun())
  byId('reveal-credentials').addEventListener('click', () => toggleCredentials())
  renderCredentials()
  // Keep "in 4 min" current between refreshes.
  setInterval(() => {
    if (!document.hidden) {
      renderNextRun()
    }
  }, 15_000)
  poll()
}

start()
