// @ts-check
// The credentials section: token service, consumer secrets and an example request (the console
// has no shared password to show). Secrets are fetched only on an admin's click and dropped again
// on "Hide".

import { revealCredentials } from './api.js'
import { byId, el, setText } from './dom.js'
import { clearError, showError } from './errors.js'
import { MASK, state } from './state.js'

/** @typedef {import('../status-api.js').Overview} Overview */

export async function toggleCredentials() {
  const button = byId('reveal-credentials', HTMLButtonElement)
  if (state.credentials) {
    state.credentials = null
    renderCredentials()
    return
  }
  button.disabled = true
  try {
    state.credentials = await revealCredentials()
    clearError('credentials')
    renderCredentials()
  } catch (error) {
    showError('credentials', error)
  } finally {
    button.disabled = false
  }
}

export function renderCredentials() {
  const revealed = Boolean(state.credentials)
  const button = byId('reveal-credentials')
  button.textContent = revealed ? 'Hide' : 'Reveal'
  button.setAttribute('aria-expanded', String(revealed))
  renderConsumers()
  renderCurl()
}

/** @param {Overview['tokens']} tokens */
export function renderTokens(tokens) {
  setText('token-mode', tokens.mode === 'jwt' ? 'JWT (signed by Keycloak)' : tokens.mode)
  setText('token-endpoint', tokens.endpoint)
  setText('token-clients', Array.isArray(tokens.clients) ? tokens.clients.join(', ') : null)
  renderConsumers()
  renderCurl()
}

/** Consumer rows from the overview; secrets are filled in only while revealed. */
function renderConsumers() {
  const list = byId('consumers')
  const consumers = state.overview?.tokens.consumers ?? []
  const revealed = new Map((state.credentials?.consumers ?? []).map((c) => [c.name, c]))
  const names = consumers.map((c) => c.name)
  for (const name of revealed.keys()) {
    if (!names.includes(name)) {
      names.push(name)
    }
  }
  list.replaceChildren()
  if (names.length === 0) {
    list.append(el('li', { className: 'subtle', text: 'No consumer apps configured.' }))
    return
  }
  for (const name of names) {
    const info = revealed.get(name) ?? consumers.find((c) => c.name === name)
    const clients = info?.clients ?? []
    const secret = revealed.get(name)?.secret
    const secretCode = el('code', {
      // `.secret` marks a revealed value only; the mask is a plain placeholder.
      className: secret ? 'secret secret-value' : 'secret-value masked',
      text: secret ?? MASK,
    })
    const row = el(
      'li',
      { 'data-consumer': name, className: 'consumer' },
      el(
        'div',
        { className: 'consumer-head' },
        el('strong', { text: name }),
        el('span', {
          className: 'subtle',
          text: clients.length ? `clients: ${clients.join(', ')}` : 'no clients',
        }),
      ),
      el(
        'div',
        { className: 'secret-row' },
        secretCode,
        secret ? copyButton(secret, `secret of ${name}`) : null,
      ),
    )
    list.append(row)
  }
}

/** @param {string} value */
function shellQuote(value) {
  return `'${String(value).replace(/'/g, `'\\''`)}'`
}

function renderCurl() {
  const tokens = state.overview?.tokens
  const code = byId('curl-example')
  const endpoint = tokens?.endpoint || '<endpoint>'
  const client = tokens?.clients[0] || '<client>'
  const secret = state.credentials?.consumers[0]?.secret || '…'
  const url = `${endpoint}?client_id=${encodeURIComponent(client)}`
  const text = `curl -X POST -H ${shellQuote(`X-API-SECRET: ${secret}`)} -H 'X-NC-USER-ID: alice' ${shellQuote(url)}`
  code.textContent = text
  const block = code.closest('.code-block')
  block?.querySelector('.copy')?.remove()
  block?.append(copyButton(text, 'example request'))
}

/**
 * A "Copy" button; without clipboard access it shows a note instead of failing.
 *
 * @param {string} value
 * @param {string} what what is copied, for its accessible name
 */
function copyButton(value, what) {
  const button = el('button', {
    type: 'button',
    className: 'button tertiary small copy',
    text: 'Copy',
    'aria-label': `Copy ${what}`,
  })
  button.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard?.writeText) {
        throw new Error('no clipboard')
      }
      await navigator.clipboard.writeText(value)
      button.textContent = 'Copied'
      setTimeout(() => {
        button.textContent = 'Copy'
      }, 1500)
    } catch {
      byId('copy-note').hidden = false
    }
  })
  return button
}
