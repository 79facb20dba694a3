// @ts-check
// Recent runs: the table of the last 20 and the detail of the one clicked.

import { getRun, listRuns } from './api.js'
import { byId, el, present } from './dom.js'
import { clearError, showError } from './errors.js'
import { formatDateTime, formatSpan, totalChanges } from './format.js'
import {
  renderChanges,
  renderConflicts,
  renderCounts,
  renderErrorList,
  statusPill,
} from './results.js'
import { MAX_CHANGES_SHOWN } from './state.js'
import { triggerLabel } from './vocabulary.js'

/**
 * @typedef {import('../status-api.js').RunRow} RunRow
 * @typedef {import('../status-api.js').RunDetail} RunDetail
 */

export async function loadRuns() {
  try {
    const body = await listRuns(20)
    clearError('runs')
    renderRuns(Array.isArray(body.runs) ? body.runs : [])
  } catch (error) {
    showError('runs', error)
  }
}

/** @returns {HTMLTableRowElement[]} */
function rows() {
  return [...byId('runs-body').querySelectorAll('tr')]
}

/** @param {RunRow[]} runs */
function renderRuns(runs) {
  const tbody = byId('runs-body')
  tbody.replaceChildren()
  if (runs.length === 0) {
    tbody.append(el('tr', {}, el('td', { colspan: 8, className: 'empty', text: 'No runs yet.' })))
    return
  }
  const detail = byId('run-detail')
  const openId = detail.hidden ? null : detail.dataset.loadingRunId
  for (const run of runs) {
    const open = el('button', {
      type: 'button',
      className: 'link-button',
      text: `#${run.id}`,
      'aria-label': `Show details of run ${run.id}`,
    })
    open.addEventListener('click', (event) => {
      event.stopPropagation()
      openRunDetail(run.id)
    })
    const conflicts = Array.isArray(run.conflicts) ? run.conflicts.length : 0
    const errors = Array.isArray(run.errors) ? run.errors.length : 0
    const row = el(
      'tr',
      { 'data-run-id': run.id, className: String(run.id) === openId ? 'selected' : null },
      el('td', {}, open),
      el('td', { className: 'nowrap', text: formatDateTime(run.startedAt) }),
      el('td', { text: triggerLabel(run.trigger) }),
      el('td', { text: run.dryRun ? 'Dry run' : 'Sync' }),
      el('td', {}, statusPill(run)),
      el('td', { className: 'num', text: String(totalChanges(run.counts)) }),
      el('td', { className: conflicts ? 'num warn' : 'num', text: String(conflicts) }),
      el('td', { className: errors ? 'num bad' : 'num', text: String(errors) }),
    )
    row.addEventListener('click', () => openRunDetail(run.id))
    tbody.append(row)
  }
}

/** @param {number} id */
async function openRunDetail(id) {
  const detail = byId('run-detail')
  detail.hidden = false
  // data-run-id is set once the run is shown; until then only the requested id is kept.
  delete detail.dataset.runId
  detail.dataset.loadingRunId = String(id)
  detail.setAttribute('aria-busy', 'true')
  detail.replaceChildren(el('p', { className: 'subtle', text: `Loading run #${id}…` }))
  for (const row of rows()) {
    if (row.dataset.runId !== undefined) {
      row.classList.toggle('selected', row.dataset.runId === String(id))
    }
  }
  try {
    const run = await getRun(id, MAX_CHANGES_SHOWN)
    clearError('detail')
    if (detail.dataset.loadingRunId === String(id)) {
      renderRunDetail(run)
      detail.dataset.runId = String(id)
    }
  } catch (error) {
    showError('detail', error)
    detail.replaceChildren(
      el('p', { className: 'subtle', text: `Run #${id} could not be loaded.` }),
    )
  } finally {
    detail.removeAttribute('aria-busy')
  }
}

/** @param {RunDetail} run */
function renderRunDetail(run) {
  const detail = byId('run-detail')
  const close = el('button', {
    type: 'button',
    className: 'button tertiary small',
    text: 'Close',
  })
  close.addEventListener('click', () => {
    detail.hidden = true
    for (const row of rows()) {
      row.classList.remove('selected')
    }
    rows()
      .find((row) => row.dataset.runId === String(run.id))
      ?.querySelector('button')
      ?.focus()
  })
  const heading = el('h3', { text: `Run #${run.id}${run.dryRun ? ' (dry run)' : ''}` })
  const facts = el('dl', { className: 'fields' })
  /**
   * @param {string} label
   * @param {Node | string} value
   */
  const addFact = (label, value) => {
    facts.append(el('div', {}, el('dt', { text: label }), el('dd', {}, value)))
  }
  addFact('Status', statusPill(run))
  addFact('Trigger', triggerLabel(run.trigger))
  addFact('Realm', run.realm || '–')
  addFact('Started', formatDateTime(run.startedAt))
  addFact(
    'Finished',
    run.finishedAt
      ? `${formatDateTime(run.finishedAt)} (took ${formatSpan(Date.parse(run.finishedAt) - Date.parse(run.startedAt))})`
      : '–',
  )
  detail.replaceChildren(
    ...present(
      el('div', { className: 'result-head' }, heading, close),
      facts,
      run.message ? el('p', { className: 'message', text: run.message }) : null,
      run.dryRun
        ? el('p', { className: 'notice', text: 'Dry run: would change, nothing written.' })
        : null,
      renderCounts(run.counts),
      renderConflicts(run.conflicts),
      renderErrorList(run.errors),
      renderChanges(
        run.changelog,
        run.dryRun ? 'Planned changes' : 'Changelog',
        run.changelogTotal ?? run.changelog?.length,
      ),
    ),
  )
  detail.focus({ preventScroll: true })
  detail.scrollIntoView({ block: 'nearest', behavior: 'smooth' })
}
