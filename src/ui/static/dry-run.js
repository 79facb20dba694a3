// @ts-check
// The dry run: plans a full run, writes nothing, and lists what it would change.

import { dryRunOf, planDryRun } from './api.js'
import { byId, el, present } from './dom.js'
import { clearError, showError } from './errors.js'
import { renderChanges, renderConflicts, renderCounts, renderErrorList } from './results.js'
import { loadRuns } from './runs.js'
import { state } from './state.js'
import { updateButtons } from './sync.js'

/** @typedef {import('../status-api.js').DryRunAnswer} DryRunAnswer */

export async function startDryRun() {
  clearError('dry-run')
  state.dryRunPending = true
  updateButtons()
  const section = byId('dry-run-section')
  const result = byId('dry-run-result')
  section.hidden = false
  result.setAttribute('aria-busy', 'true')
  result.replaceChildren(
    el('p', { className: 'progress-text' }, 'Planning the changes, nothing is written…'),
    el('progress', { className: 'progress-bar' }),
  )
  try {
    renderDryRun(await planDryRun())
  } catch (error) {
    showError('dry-run', error)
    // A tripped guard refuses the run but still sends the plan.
    const plan = dryRunOf(error)
    if (plan) {
      renderDryRun(plan)
    } else {
      result.replaceChildren(el('p', { className: 'subtle', text: 'The dry run failed.' }))
    }
  } finally {
    result.removeAttribute('aria-busy')
    state.dryRunPending = false
    updateButtons()
  }
  loadRuns()
}

/** @param {DryRunAnswer} body */
function renderDryRun(body) {
  const result = byId('dry-run-result')
  result.replaceChildren()
  if (body.runId !== undefined) {
    result.dataset.runId = String(body.runId)
  }
  result.append(
    ...present(
      el(
        'p',
        { className: 'notice' },
        el('strong', { text: 'Would change, nothing written. ' }),
        body.message ? String(body.message) : '',
      ),
      renderCounts(body.counts),
      renderConflicts(body.conflicts),
      renderErrorList(body.errors),
      renderChanges(body.changes, 'Planned changes'),
    ),
  )
}
