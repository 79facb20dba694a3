// @ts-check
// The overview: the header (Keycloak's state, realm, versions), the sync settings, the console
// links and the token service.

import { renderTokens } from './credentials.js'
import { byId, setText } from './dom.js'
import { plural } from './format.js'
import { renderNextRun, updateButtons } from './sync.js'

/** @typedef {import('../status-api.js').Overview} Overview */

/** @type {Record<Overview['keycloak']['status'], 'good' | 'busy' | 'bad'>} */
const STATE_TONES = {
  ready: 'good',
  starting: 'busy',
  installing: 'busy',
  stopping: 'busy',
  crashed: 'bad',
  stopped: 'bad',
}

/** @param {Overview} overview */
export function renderOverview(overview) {
  const keycloak = overview.keycloak
  const badge = byId('kc-state')
  const keycloakState = keycloak.status || 'unknown'
  badge.textContent = keycloakState
  badge.dataset.state = keycloakState
  badge.dataset.tone = STATE_TONES[keycloak.status] || 'unknown'

  setText('kc-realm', keycloak.realm)
  setText('kc-mode', keycloak.mode)
  const restarts = Number(keycloak.restarts) || 0
  setText(
    'kc-version',
    keycloak.version
      ? `${keycloak.version}${restarts ? ` (${plural(restarts, 'restart', 'restarts')})` : ''}`
      : null,
  )
  setText('app-version', overview.app.version)

  const sync = overview.sync
  setText('delete-policy', sync.deletePolicy === 'delete' ? 'deleted' : 'disabled')
  setText(
    'guard',
    typeof sync.guardPercent === 'number'
      ? `stops a run that would disable or delete more than ${sync.guardPercent} % of managed users`
      : null,
  )

  for (const id of ['open-console', 'open-console-tab']) {
    const link = byId(id, HTMLAnchorElement)
    if (keycloak.consolePath) {
      link.href = keycloak.consolePath
      link.removeAttribute('aria-disabled')
    } else {
      link.removeAttribute('href')
      link.setAttribute('aria-disabled', 'true')
    }
  }

  renderTokens(overview.tokens)
  renderNextRun()
  updateButtons()
}
