// @ts-check
// The error region: one message per source, cleared when that source succeeds again.

import { byId, el } from './dom.js'

/** @type {Map<string, string>} */
const messages = new Map()

/**
 * @param {string} source what failed, e.g. "overview"
 * @param {unknown} error
 */
export function showError(source, error) {
  const message = error instanceof Error ? error.message : String(error)
  messages.set(source, message)
  renderErrors()
}

/** @param {string} source */
export function clearError(source) {
  if (messages.delete(source)) {
    renderErrors()
  }
}

function renderErrors() {
  const region = byId('error')
  region.replaceChildren()
  if (messages.size === 0) {
    region.hidden = true
    return
  }
  const list = el('ul', { className: 'alert-list' })
  for (const message of messages.values()) {
    list.append(el('li', { text: message }))
  }
  const dismiss = el('button', { type: 'button', className: 'button tertiary', text: 'Dismiss' })
  dismiss.addEventListener('click', () => {
    messages.clear()
    renderErrors()
  })
  region.append(list, dismiss)
  region.hidden = false
}
