// @ts-check
// What a run did, as the sync result, the dry run and the run detail all show it: counts per
// change kind, conflicts, errors and the list of changes.

import { el } from './dom.js'
import { describeChange, describeConflict, kindTag, runOutcome } from './format.js'
import { MAX_CHANGES_SHOWN } from './state.js'
import { byKindOrder, conflictLabel, kindLabel, statusLabel } from './vocabulary.js'

/**
 * @typedef {import('../status-api.js').LoggedChange} LoggedChange
 * @typedef {import('../status-api.js').RunConflict} RunConflict
 * @typedef {import('../status-api.js').RunRow} RunRow
 */

/**
 * The run's status as a coloured pill.
 *
 * @param {Pick<RunRow, 'status' | 'errors'>} run
 */
export function statusPill(run) {
  const outcome = runOutcome(run)
  return el('span', { className: `pill pill-${outcome}`, text: statusLabel(outcome) })
}

/**
 * A definition list with one `[data-count="<kind>"]` per counted kind.
 *
 * @param {Record<string, number> | undefined} counts
 */
export function renderCounts(counts) {
  const entries = Object.entries(counts || {}).sort(([a], [b]) => byKindOrder(a, b))
  if (entries.length === 0) {
    return el('p', { className: 'subtle', text: 'No changes.' })
  }
  const list = el('dl', { className: 'counts' })
  for (const [kind, count] of entries) {
    list.append(
      el(
        'div',
        { className: Number(count) ? 'count' : 'count zero' },
        el('dt', { text: kindLabel(kind) }),
        el('dd', { 'data-count': kind, text: String(count) }),
      ),
    )
  }
  return list
}

/** @param {RunConflict[] | undefined} conflicts */
export function renderConflicts(conflicts) {
  if (!Array.isArray(conflicts) || conflicts.length === 0) {
    return null
  }
  const list = el('ul', { className: 'issues conflicts' })
  for (const conflict of conflicts.slice(0, MAX_CHANGES_SHOWN)) {
    list.append(
      el(
        'li',
        { 'data-conflict-kind': conflict.kind },
        el('span', { className: 'tag tag-warning', text: conflictLabel(conflict.kind) }),
        ' ',
        el('span', { text: describeConflict(conflict) }),
      ),
    )
  }
  return el(
    'div',
    { className: 'block' },
    el('h4', { text: `Conflicts (${conflicts.length})` }),
    list,
    moreNote(conflicts.length),
  )
}

/** @param {string[] | undefined} errors */
export function renderErrorList(errors) {
  if (!Array.isArray(errors) || errors.length === 0) {
    return null
  }
  const list = el('ul', { className: 'issues errors' })
  for (const message of errors.slice(0, MAX_CHANGES_SHOWN)) {
    list.append(el('li', { text: String(message) }))
  }
  return el(
    'div',
    { className: 'block' },
    el('h4', { text: `Errors (${errors.length})` }),
    list,
    moreNote(errors.length),
  )
}

/** @param {number} total */
function moreNote(total) {
  if (total <= MAX_CHANGES_SHOWN) {
    return null
  }
  return el('p', {
    className: 'subtle',
    text: `… and ${total - MAX_CHANGES_SHOWN} more (first ${MAX_CHANGES_SHOWN} shown).`,
  })
}

/**
 * The list of changes (planned or applied), capped at MAX_CHANGES_SHOWN entries; `total` is
 * how many there are when the server sent only the first ones.
 *
 * @param {LoggedChange[] | undefined} changes
 * @param {string} title
 * @param {number} [total]
 */
export function renderChanges(changes, title, total = changes?.length ?? 0) {
  if (!Array.isArray(changes) || changes.length === 0) {
    return el('p', { className: 'subtle', text: 'No changes listed.' })
  }
  const list = el('ol', { className: 'changes' })
  for (const change of changes.slice(0, MAX_CHANGES_SHOWN)) {
    const item = el(
      'li',
      { 'data-change-kind': change.kind },
      el('span', { className: 'tag', text: kindTag(change.kind) }),
      ' ',
      el('span', { className: 'change-text', text: describeChange(change) }),
    )
    if (change.outcome) {
      item.dataset.outcome = change.outcome
      item.append(
        ' ',
        el('span', { className: `outcome outcome-${change.outcome}`, text: change.outcome }),
      )
    }
    if (change.error) {
      item.append(' ', el('span', { className: 'change-error', text: String(change.error) }))
    }
    list.append(item)
  }
  return el(
    'div',
    { className: 'block' },
    el('h4', { text: `${title} (${total})` }),
    el('div', { className: 'list-scroll' }, list),
    moreNote(total),
  )
}
