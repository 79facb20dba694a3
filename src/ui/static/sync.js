// @ts-check
// The sync section: last and next run, "Sync now" with its live progress, and the finished
// run's result (a tripped guard offers to run again with force).

import { startBackgroundSync } from './api.js'
import { byId, el, present } from './dom.js'
import { clearError, showError } from './errors.js'
import {
  formatAgo,
  formatInterval,
  formatSpan,
  formatTime,
  plural,
  runOutcome,
  totalChanges,
} from './format.js'
import { renderConflicts, renderCounts, renderErrorList, statusPill } from './results.js'
import { loadRuns } from './runs.js'
import { RUNNING_POLL_MS, START_TIMEOUT_MS, state } from './state.js'
import { triggerLabel } from './vocabulary.js'

/**
 * @typedef {import('../status-api.js').Progress} Progress
 * @typedef {import('../status-api.js').RunRow} RunRow
 * @typedef {import('../status-api.js').SyncStatus} SyncStatus
 */

/** @type {(delay: number) => void} */
let pollIn = () => {}

/**
 * Tells the section how to ask for the next refresh sooner (the page's poller).
 *
 * @param {(delay: number) => void} schedule
 */
export function onPollSoon(schedule) {
  pollIn = schedule
}

export function isRunActive() {
  return Boolean(state.status?.running || state.tracking || state.syncRequestPending)
}

export function updateButtons() {
  const busy = isRunActive() || state.dryRunPending
  byId('sync-now', HTMLButtonElement).disabled = busy
  byId('dry-run', HTMLButtonElement).disabled = busy
}

export function renderNextRun() {
  const node = byId('next-run')
  const interval = state.overview?.sync.intervalSeconds
  const nextRun = state.status ? state.status.nextRun : state.overview?.sync.nextRun
  node.replaceChildren()
  if (interval === 0 || !nextRun) {
    node.textContent = state.overview || state.status ? 'periodic sync off' : '–'
    return
  }
  const due = new Date(nextRun).getTime() - Date.now()
  const when = due <= 0 ? 'due now' : `in ${formatSpan(due)}`
  node.append(
    ...present(
      el('time', { datetime: nextRun, text: `${when} (${formatTime(nextRun)})` }),
      interval
        ? el('span', { className: 'subtle', text: ` · every ${formatInterval(interval)}` })
        : null,
    ),
  )
}

/** @param {RunRow | null} run */
function renderLastRun(run) {
  const node = byId('last-run')
  node.replaceChildren()
  if (!run) {
    node.textContent = 'none yet'
    return
  }
  const parts = [
    `#${run.id}`,
    run.finishedAt ? formatAgo(run.finishedAt) : formatAgo(run.startedAt),
    plural(totalChanges(run.counts), 'change', 'changes'),
  ]
  if (run.dryRun) {
    parts.push('dry run')
  }
  node.append(
    ...present(
      statusPill(run),
      el('span', { text: ` ${parts.join(' · ')}` }),
      run.message ? el('span', { className: 'subtle block-line', text: run.message }) : null,
    ),
  )
}

/**
 * Tells screen readers about a step of a run (not every counter tick of it).
 *
 * @param {string} text
 */
function announce(text) {
  if (text !== state.announced) {
    state.announced = text
    byId('sync-announce').textContent = text
  }
}

/** @param {Progress | null} progress null: the run was asked for and has not shown up yet */
function renderProgress(progress) {
  const box = byId('sync-progress')
  const phase = byId('sync-phase')
  const bar = byId('sync-bar', HTMLProgressElement)
  const by = progress?.trigger ? ` (${triggerLabel(progress.trigger)})` : ''
  if (!progress) {
    phase.textContent = 'Starting the run…'
    bar.removeAttribute('value')
  } else if (progress.phase === 'applying' && Number(progress.total) > 0) {
    phase.textContent = `Run #${progress.runId}${by}: applying changes, ${progress.done} of ${progress.total}`
    bar.max = progress.total
    bar.value = Math.min(progress.done, progress.total)
  } else if (progress.phase === 'applying') {
    phase.textContent = `Run #${progress.runId}${by}: applying changes…`
    bar.removeAttribute('value')
  } else {
    phase.textContent = `Run #${progress.runId}${by}: reading Nextcloud and Keycloak…`
    bar.removeAttribute('value')
  }
  announce(
    progress
      ? `Run #${progress.runId} ${progress.phase === 'applying' ? 'is applying changes' : 'is reading Nextcloud and Keycloak'}`
      : 'Starting a sync run',
  )
  box.hidden = false
}

function hideProgress() {
  byId('sync-progress').hidden = true
}

/**
 * Shows a finished run in #sync-result; a tripped guard offers to run again with force.
 *
 * @param {RunRow} run
 */
function renderSyncResult(run) {
  const box = byId('sync-result')
  box.replaceChildren()
  box.dataset.runId = String(run.id)
  box.dataset.status = run.status
  const outcome = runOutcome(run)
  box.dataset.outcome = outcome
  announce(`Run #${run.id} finished: ${run.message || outcome}`)
  box.append(
    el(
      'div',
      { className: 'result-head' },
      el('h3', { text: `Run #${run.id}${run.dryRun ? ' (dry run)' : ''}` }),
      statusPill(run),
    ),
  )
  if (run.message) {
    box.append(el('p', { className: 'message', text: run.message }))
  }
  if (run.status === 'guard_tripped') {
    const retry = el('button', {
      type: 'button',
      id: 'run-anyway',
      className: 'button danger',
      text: 'Run anyway',
    })
    retry.addEventListener('click', () => {
      const ok = window.confirm(
        'The deletion guard stopped this run because it would disable or delete many users. ' +
          'Run it anyway and apply every change?',
      )
      if (ok) {
        startSync(true)
      }
    })
    box.append(
      el(
        'p',
        { className: 'hint' },
        'Nothing was written. Check the planned changes with a dry run before forcing the run.',
      ),
      el('div', { className: 'actions' }, retry),
    )
  }
  box.append(
    ...present(
      renderCounts(run.counts),
      renderConflicts(run.conflicts),
      renderErrorList(run.errors),
    ),
  )
  box.hidden = false
}

/**
 * Takes a fresh `/api/sync-status`: follows a run in progress (this page's or one started
 * elsewhere) to its end and shows how it ended.
 *
 * @param {SyncStatus} status
 */
export function handleStatus(status) {
  state.status = status
  const running = status.running
  if (running) {
    if (!state.tracking) {
      // A run started elsewhere (schedule, API): follow it to its end as well.
      state.tracking = { after: Number(running.runId) - 1, since: Date.now() }
    }
    renderProgress(running)
  } else if (state.tracking) {
    const last = status.lastRun
    if (last && last.id > state.tracking.after && last.status !== 'running') {
      state.tracking = null
      hideProgress()
      renderSyncResult(last)
    } else if (Date.now() - state.tracking.since > START_TIMEOUT_MS) {
      state.tracking = null
      hideProgress()
      showError('sync', 'The run did not start. Check the app log and try again.')
    } else {
      renderProgress(null)
    }
  } else {
    hideProgress()
  }

  renderLastRun(status.lastRun)
  renderNextRun()
  const lastId = status.lastRun ? status.lastRun.id : 0
  if (lastId !== state.lastRunId) {
    state.lastRunId = lastId
    loadRuns()
  }
  updateButtons()
}

/**
 * "Sync now" (and "Run anyway" with `force`): starts a background run and follows it.
 *
 * @param {boolean} force pass the deletion guard
 */
export async function startSync(force) {
  clearError('sync')
  state.syncRequestPending = true
  const previous = byId('sync-result')
  previous.hidden = true
  delete previous.dataset.runId
  delete previous.dataset.status
  delete previous.dataset.outcome
  renderProgress(null)
  updateButtons()
  try {
    const body = await startBackgroundSync(force)
    state.tracking = { after: Number(body.after) || 0, since: Date.now() }
  } catch (error) {
    hideProgress()
    showError('sync', error)
  } finally {
    state.syncRequestPending = false
    updateButtons()
  }
  pollIn(RUNNING_POLL_MS)
}
