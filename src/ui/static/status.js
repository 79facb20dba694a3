// Admin status page for the Keycloak app. Plain browser script: no build step, no framework.
// Every value from the API reaches the DOM through textContent or attributes, never as markup.
;(() => {
  const IDLE_POLL_MS = 10_000
  const RUNNING_POLL_MS = 1_000
  const MAX_CHANGES_SHOWN = 500
  /** Give up waiting for a started background run that never shows up after this long. */
  const START_TIMEOUT_MS = 60_000

  /** Change kinds in the order the sync applies them, with labels for their counts. */
  const CHANGE_KINDS = [
    ['create-group', 'Groups created'],
    ['update-group', 'Groups renamed'],
    ['create-user', 'Users created'],
    ['update-user', 'Users updated'],
    ['enable-user', 'Users enabled'],
    ['link-identity', 'Identities linked'],
    ['add-member', 'Memberships added'],
    ['grant-role', 'Roles granted'],
    ['remove-member', 'Memberships removed'],
    ['revoke-role', 'Roles revoked'],
    ['disable-user', 'Users disabled'],
    ['delete-user', 'Users deleted'],
    ['delete-group', 'Groups deleted'],
  ]
  const KIND_LABELS = new Map(CHANGE_KINDS)
  const KIND_ORDER = new Map(CHANGE_KINDS.map(([kind], index) => [kind, index]))

  const CONFLICT_LABELS = {
    'username-taken': 'Username taken',
    'uid-refused': 'User id refused',
    'email-taken': 'Email taken',
    'email-pending': 'Email pending',
    'group-name-taken': 'Group name taken',
    'duplicate-managed-user': 'Duplicate account',
    'write-conflict': 'Write conflict',
  }

  const TRIGGER_LABELS = {
    init: 'Startup',
    api: 'API',
    schedule: 'Schedule',
    user: 'User event',
    token: 'Token request',
    ui: 'Status page',
  }

  const STATE_TONES = {
    ready: 'good',
    starting: 'busy',
    installing: 'busy',
    stopping: 'busy',
    crashed: 'bad',
    stopped: 'bad',
  }

  /** Nextcloud theme variables copied from the parent page when the page runs in its frame. */
  const THEME_VARIABLES = [
    '--color-main-background',
    '--color-main-background-rgb',
    '--color-main-text',
    '--color-text-maxcontrast',
    '--color-background-hover',
    '--color-background-dark',
    '--color-border',
    '--color-border-dark',
    '--color-primary-element',
    '--color-primary-element-hover',
    '--color-primary-element-text',
    '--color-primary-element-light',
    '--color-primary-element-light-hover',
    '--color-primary-element-light-text',
    '--color-error',
    '--color-error-text',
    '--color-success',
    '--color-success-text',
    '--color-warning',
    '--color-warning-text',
    '--border-radius',
    '--border-radius-large',
    '--border-radius-element',
    '--font-face',
    '--default-font-size',
  ]

  const MASK = '••••••••'

  const state = {
    overview: null,
    status: null,
    /** Set while waiting for a background run: it has ended once a run newer than `after` exists. */
    tracking: null,
    dryRunPending: false,
    syncRequestPending: false,
    lastRunId: null,
    credentials: null,
    pollTimer: null,
    polling: false,
    errors: new Map(),
    /** what the live region last said, so screen readers hear each step once */
    announced: '',
  }

  const byId = (id) => document.getElementById(id)

  // ---------------------------------------------------------------------------------------------
  // DOM helpers

  /** Creates an element; `text` becomes its textContent, `attrs` its attributes. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag)
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) {
        continue
      }
      if (name === 'className') {
        node.className = value
      } else if (name === 'text') {
        node.textContent = String(value)
      } else {
        node.setAttribute(name, value === true ? '' : String(value))
      }
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child)
      }
    }
    return node
  }

  /** Drops absent parts, so optional sections can be passed straight to append(). */
  function present(...nodes) {
    return nodes.filter((node) => node !== null && node !== undefined && node !== false)
  }

  function setText(id, value) {
    const node = byId(id)
    if (node) {
      node.textContent = value === null || value === undefined || value === '' ? '–' : String(value)
    }
  }

  // ---------------------------------------------------------------------------------------------
  // API access

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message)
      this.status = status
      this.body = body
    }
  }

  /** Calls the app's API; rejects with an ApiError carrying the server's message. */
  async function api(path, method = 'GET') {
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
    let body = null
    try {
      body = await response.json()
    } catch {
      body = null
    }
    if (!response.ok) {
      const message = body?.error?.message || `Request failed (HTTP ${response.status}).`
      throw new ApiError(message, response.status, body)
    }
    return body
  }

  // ---------------------------------------------------------------------------------------------
  // Error region: one message per source, cleared when that source succeeds again

  function showError(source, error) {
    const message = error instanceof Error ? error.message : String(error)
    state.errors.set(source, message)
    renderErrors()
  }

  function clearError(source) {
    if (state.errors.delete(source)) {
      renderErrors()
    }
  }

  function renderErrors() {
    const region = byId('error')
    region.replaceChildren()
    if (state.errors.size === 0) {
      region.hidden = true
      return
    }
    const list = el('ul', { className: 'alert-list' })
    for (const message of state.errors.values()) {
      list.append(el('li', { text: message }))
    }
    const dismiss = el('button', { type: 'button', className: 'button tertiary', text: 'Dismiss' })
    dismiss.addEventListener('click', () => {
      state.errors.clear()
      renderErrors()
    })
    region.append(list, dismiss)
    region.hidden = false
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting

  function formatDateTime(iso) {
    if (!iso) {
      return '–'
    }
    const date = new Date(iso)
    if (Number.isNaN(date.getTime())) {
      return String(iso)
    }
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
  }

  function formatTime(iso) {
    return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
  }

  /** "4 min", "1 h 5 min", "30 s" for a span in milliseconds. */
  function formatSpan(ms) {
    const seconds = Math.max(0, Math.round(ms / 1000))
    if (seconds < 60) {
      return `${seconds} s`
    }
    const minutes = Math.round(seconds / 60)
    if (minutes < 60) {
      return `${minutes} min`
    }
    const hours = Math.floor(minutes / 60)
    const rest = minutes % 60
    if (hours < 48) {
      return rest ? `${hours} h ${rest} min` : `${hours} h`
    }
    return `${Math.round(hours / 24)} days`
  }

  function formatAgo(iso) {
    const ms = Date.now() - new Date(iso).getTime()
    return ms < 45_000 ? 'just now' : `${formatSpan(ms)} ago`
  }

  function formatInterval(seconds) {
    return formatSpan(seconds * 1000)
  }

  function plural(count, one, many) {
    return `${count} ${count === 1 ? one : many}`
  }

  function totalChanges(counts) {
    let total = 0
    for (const value of Object.values(counts || {})) {
      total += Number(value) || 0
    }
    return total
  }

  /** The run's status word, with "partial" for a succeeded run whose writes partly failed. */
  function runOutcome(run) {
    if (run.status === 'succeeded' && Array.isArray(run.errors) && run.errors.length > 0) {
      return 'partial'
    }
    return run.status
  }

  const OUTCOME_LABELS = {
    running: 'Running',
    succeeded: 'Succeeded',
    partial: 'Partly failed',
    failed: 'Failed',
    guard_tripped: 'Guard tripped',
    interrupted: 'Interrupted',
  }

  function statusPill(run) {
    const outcome = runOutcome(run)
    return el('span', {
      className: `pill pill-${outcome}`,
      text: OUTCOME_LABELS[outcome] || outcome,
    })
  }

  function kindLabel(kind) {
    return KIND_LABELS.get(kind) || kind
  }

  /** "add-member" → "Add member": a short tag for one planned or applied change. */
  function kindTag(kind) {
    const words = String(kind).replace(/-/g, ' ')
    return words.charAt(0).toUpperCase() + words.slice(1)
  }

  /** A one-line, human-readable description of a change; includes its uid and gid. */
  function describeChange(change) {
    switch (change.kind) {
      case 'create-group':
        return change.displayName && change.displayName !== change.gid
          ? `${change.gid} (“${change.displayName}”)`
          : String(change.gid)
      case 'update-group':
        return `${change.gid}: “${change.before?.displayName ?? ''}” → “${change.after?.displayName ?? ''}”`
      case 'create-user': {
        const user = change.user || {}
        const details = [user.email, user.enabled === false ? 'disabled' : null].filter(Boolean)
        return details.length ? `${change.uid} (${details.join(', ')})` : String(change.uid)
      }
      case 'update-user': {
        const fields = new Set([
          ...Object.keys(change.before || {}),
          ...Object.keys(change.after || {}),
        ])
        return fields.size ? `${change.uid}: ${[...fields].join(', ')}` : String(change.uid)
      }
      case 'add-member':
        return `${change.uid} → group ${change.gid}`
      case 'remove-member':
        return `${change.uid} ✕ group ${change.gid}`
      case 'grant-role':
      case 'revoke-role':
        return `${change.uid}: role ${change.role}`
      case 'disable-user': {
        const reason =
          change.reason === 'removed'
            ? 'removed from Nextcloud'
            : change.reason === 'disabled'
              ? 'disabled in Nextcloud'
              : change.reason
        return reason ? `${change.uid} (${reason})` : String(change.uid)
      }
      case 'delete-group':
        return String(change.gid)
      default:
        return String(change.uid ?? change.gid ?? '')
    }
  }

  function describeConflict(conflict) {
    const holder = conflict.holder ? `“${conflict.holder}”` : 'another Keycloak account'
    switch (conflict.kind) {
      case 'username-taken':
        return `${conflict.uid}: username “${conflict.username}” is already used by ${holder}`
      case 'uid-refused':
        return `${conflict.uid}: Keycloak cannot take this user id: it ${conflict.reason}`
      case 'email-taken':
        return `${conflict.uid}: email ${conflict.email} is already used by ${holder}`
      case 'email-pending':
        return `${conflict.uid}: email ${conflict.email} is still held by ${holder}; it follows once freed`
      case 'group-name-taken':
        return `group ${conflict.gid}: a group with this name already exists in Keycloak`
      case 'duplicate-managed-user':
        return `${conflict.uid}: more than one managed Keycloak account (${conflict.id})`
      case 'write-conflict': {
        const change = conflict.change
        const target = change ? `${kindTag(change.kind)} ${describeChange(change)}` : conflict.id
        return conflict.error ? `${target}: ${conflict.error}` : String(target)
      }
      default:
        return String(conflict.uid ?? conflict.gid ?? conflict.id ?? '')
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Shared renderers for run results

  /** A definition list with one `[data-count="<kind>"]` per counted kind. */
  function renderCounts(counts) {
    const entries = Object.entries(counts || {}).sort(
      ([a], [b]) => (KIND_ORDER.get(a) ?? 99) - (KIND_ORDER.get(b) ?? 99) || a.localeCompare(b),
    )
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

  function renderConflicts(conflicts) {
    if (!Array.isArray(conflicts) || conflicts.length === 0) {
      return null
    }
    const list = el('ul', { className: 'issues conflicts' })
    for (const conflict of conflicts.slice(0, MAX_CHANGES_SHOWN)) {
      list.append(
        el(
          'li',
          { 'data-conflict-kind': conflict.kind },
          el('span', {
            className: 'tag tag-warning',
            text: CONFLICT_LABELS[conflict.kind] || conflict.kind,
          }),
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

  function renderErrorList(errors) {
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
   */
  function renderChanges(changes, title, total = changes?.length ?? 0) {
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

  // ---------------------------------------------------------------------------------------------
  // Overview: header, sync settings, console, token service

  function renderOverview(overview) {
    const keycloak = overview.keycloak || {}
    const badge = byId('kc-state')
    const keycloakState = keycloak.status || 'unknown'
    badge.textContent = keycloakState
    badge.dataset.state = keycloakState
    badge.dataset.tone = STATE_TONES[keycloakState] || 'unknown'

    setText('kc-realm', keycloak.realm)
    setText('kc-mode', keycloak.mode)
    const restarts = Number(keycloak.restarts) || 0
    setText(
      'kc-version',
      keycloak.version
        ? `${keycloak.version}${restarts ? ` (${plural(restarts, 'restart', 'restarts')})` : ''}`
        : null,
    )
    setText('app-version', overview.app?.version)

    const sync = overview.sync || {}
    setText('delete-policy', sync.deletePolicy === 'delete' ? 'deleted' : 'disabled')
    setText(
      'guard',
      typeof sync.guardPercent === 'number'
        ? `stops a run that would disable or delete more than ${sync.guardPercent} % of managed users`
        : null,
    )

    for (const id of ['open-console', 'open-console-tab']) {
      const link = byId(id)
      if (keycloak.consolePath) {
        link.href = keycloak.consolePath
        link.removeAttribute('aria-disabled')
      } else {
        link.removeAttribute('href')
        link.setAttribute('aria-disabled', 'true')
      }
    }

    renderTokens(overview.tokens || {})
    renderNextRun()
    updateButtons()
  }

  function renderTokens(tokens) {
    setText('token-mode', tokens.mode === 'jwt' ? 'JWT (signed by Keycloak)' : tokens.mode)
    setText('token-endpoint', tokens.endpoint)
    setText('token-clients', Array.isArray(tokens.clients) ? tokens.clients.join(', ') : null)
    renderConsumers()
    renderCurl()
  }

  /** Consumer rows from the overview; secrets are filled in only while revealed. */
  function renderConsumers() {
    const list = byId('consumers')
    const consumers = state.overview?.tokens?.consumers || []
    const revealed = new Map((state.credentials?.consumers || []).map((c) => [c.name, c]))
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
      const info = revealed.get(name) || consumers.find((c) => c.name === name) || {}
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
            text:
              Array.isArray(info.clients) && info.clients.length
                ? `clients: ${info.clients.join(', ')}`
                : 'no clients',
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

  function shellQuote(value) {
    return `'${String(value).replace(/'/g, `'\\''`)}'`
  }

  function renderCurl() {
    const tokens = state.overview?.tokens || {}
    const code = byId('curl-example')
    const endpoint = tokens.endpoint || '<endpoint>'
    const client =
      Array.isArray(tokens.clients) && tokens.clients[0] ? tokens.clients[0] : '<client>'
    const secret = state.credentials?.consumers?.[0]?.secret || '…'
    const url = `${endpoint}?client_id=${encodeURIComponent(client)}`
    code.textContent = `curl -X POST -H ${shellQuote(`X-API-SECRET: ${secret}`)} -H 'X-NC-USER-ID: alice' ${shellQuote(url)}`
    const block = code.closest('.code-block')
    block.querySelector('.copy')?.remove()
    block.append(copyButton(code.textContent, 'example request'))
  }

  /** A "Copy" button; without clipboard access it shows a note instead of failing. */
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

  // ---------------------------------------------------------------------------------------------
  // Sync status: last run, next run, live progress, finished run

  function isRunActive() {
    return Boolean(state.status?.running || state.tracking || state.syncRequestPending)
  }

  function updateButtons() {
    const busy = isRunActive() || state.dryRunPending
    byId('sync-now').disabled = busy
    byId('dry-run').disabled = busy
  }

  function renderNextRun() {
    const node = byId('next-run')
    const interval = state.overview?.sync?.intervalSeconds
    const nextRun = state.status ? state.status.nextRun : state.overview?.sync?.nextRun
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

  /** Tells screen readers about a step of a run (not every counter tick of it). */
  function announce(text) {
    if (text !== state.announced) {
      state.announced = text
      byId('sync-announce').textContent = text
    }
  }

  function renderProgress(progress) {
    const box = byId('sync-progress')
    const phase = byId('sync-phase')
    const bar = byId('sync-bar')
    const by = progress?.trigger ? ` (${TRIGGER_LABELS[progress.trigger] || progress.trigger})` : ''
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

  /** Shows a finished run in #sync-result; a tripped guard offers to run again with force. */
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

  function handleStatus(status) {
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

  // ---------------------------------------------------------------------------------------------
  // Actions

  async function startSync(force) {
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
      const body = await api(`../api/sync-all?background=1${force ? '&force=1' : ''}`, 'POST')
      state.tracking = { after: Number(body?.after) || 0, since: Date.now() }
    } catch (error) {
      hideProgress()
      showError('sync', error)
    } finally {
      state.syncRequestPending = false
      updateButtons()
    }
    schedulePoll(RUNNING_POLL_MS)
  }

  async function startDryRun() {
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
      const body = await api('../api/sync-all?dryRun=1', 'POST')
      renderDryRun(body)
    } catch (error) {
      showError('dry-run', error)
      if (error.body?.counts || error.body?.changes) {
        renderDryRun(error.body)
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

  // ---------------------------------------------------------------------------------------------
  // Recent runs and run detail

  async function loadRuns() {
    try {
      const body = await api('../api/sync-runs?limit=20')
      clearError('runs')
      renderRuns(Array.isArray(body?.runs) ? body.runs : [])
    } catch (error) {
      showError('runs', error)
    }
  }

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
        el('td', { text: TRIGGER_LABELS[run.trigger] || run.trigger }),
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

  async function openRunDetail(id) {
    const detail = byId('run-detail')
    detail.hidden = false
    // data-run-id is set once the run is shown; until then only the requested id is kept.
    delete detail.dataset.runId
    detail.dataset.loadingRunId = String(id)
    detail.setAttribute('aria-busy', 'true')
    detail.replaceChildren(el('p', { className: 'subtle', text: `Loading run #${id}…` }))
    for (const row of byId('runs-body').querySelectorAll('tr[data-run-id]')) {
      row.classList.toggle('selected', row.dataset.runId === String(id))
    }
    try {
      const run = await api(`../api/sync-runs/${encodeURIComponent(id)}?limit=${MAX_CHANGES_SHOWN}`)
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

  function renderRunDetail(run) {
    const detail = byId('run-detail')
    const close = el('button', {
      type: 'button',
      className: 'button tertiary small',
      text: 'Close',
    })
    close.addEventListener('click', () => {
      detail.hidden = true
      for (const row of byId('runs-body').querySelectorAll('tr.selected')) {
        row.classList.remove('selected')
      }
      byId('runs-body')
        .querySelector(`tr[data-run-id="${CSS.escape(String(run.id))}"] button`)
        ?.focus()
    })
    const heading = el('h3', { text: `Run #${run.id}${run.dryRun ? ' (dry run)' : ''}` })
    const facts = el('dl', { className: 'fields' })
    const addFact = (label, value) => {
      facts.append(el('div', {}, el('dt', { text: label }), el('dd', {}, value)))
    }
    addFact('Status', statusPill(run))
    addFact('Trigger', TRIGGER_LABELS[run.trigger] || run.trigger)
    addFact('Realm', run.realm || '–')
    addFact('Started', formatDateTime(run.startedAt))
    addFact(
      'Finished',
      run.finishedAt
        ? `${formatDateTime(run.finishedAt)} (took ${formatSpan(new Date(run.finishedAt) - new Date(run.startedAt))})`
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

  // ---------------------------------------------------------------------------------------------
  // Credentials

  async function toggleCredentials() {
    const button = byId('reveal-credentials')
    if (state.credentials) {
      hideCredentials()
      return
    }
    button.disabled = true
    try {
      const body = await api('../api/ui/credentials', 'POST')
      clearError('credentials')
      state.credentials = body || {}
      renderCredentials()
    } catch (error) {
      showError('credentials', error)
    } finally {
      button.disabled = false
    }
  }

  function hideCredentials() {
    state.credentials = null
    renderCredentials()
  }

  function renderCredentials() {
    const revealed = Boolean(state.credentials)
    const button = byId('reveal-credentials')
    button.textContent = revealed ? 'Hide' : 'Reveal'
    button.setAttribute('aria-expanded', String(revealed))

    const login = state.credentials?.console
    for (const [id, value, what] of [
      ['console-username', login?.username, 'console username'],
      ['console-password', login?.password, 'console password'],
    ]) {
      const code = byId(id)
      code.textContent = revealed ? (value ?? '') : MASK
      code.classList.toggle('masked', !revealed)
      const row = code.parentElement
      row.querySelector('.copy')?.remove()
      if (revealed && value) {
        row.append(copyButton(value, what))
      }
    }
    renderConsumers()
    renderCurl()
  }

  // ---------------------------------------------------------------------------------------------
  // Polling

  async function loadOverview() {
    try {
      const overview = await api('../api/ui/overview')
      clearError('overview')
      state.overview = overview || {}
      renderOverview(state.overview)
    } catch (error) {
      showError('overview', error)
    }
  }

  async function loadStatus() {
    try {
      const status = await api('../api/sync-status')
      clearError('status')
      handleStatus(status || {})
    } catch (error) {
      showError('status', error)
    }
  }

  async function poll() {
    if (state.polling) {
      return
    }
    state.polling = true
    try {
      await Promise.all([loadOverview(), loadStatus()])
    } finally {
      state.polling = false
    }
    schedulePoll()
  }

  /** Plans the next refresh: every second while a run is in progress, else every ten. */
  function schedulePoll(delay) {
    clearTimeout(state.pollTimer)
    state.pollTimer = null
    if (document.hidden) {
      return
    }
    const wait = delay ?? (isRunActive() ? RUNNING_POLL_MS : IDLE_POLL_MS)
    state.pollTimer = setTimeout(poll, wait)
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(state.pollTimer)
      state.pollTimer = null
    } else {
      poll()
    }
  })

  // ---------------------------------------------------------------------------------------------
  // Theme: follow the Nextcloud page around the frame

  /** Copies Nextcloud's theme variables from the parent page, if it is readable (same origin). */
  function adoptParentTheme() {
    try {
      if (window.parent !== window && window.parent.document?.body) {
        const styles = window.getComputedStyle(window.parent.document.body)
        const root = document.documentElement
        for (const name of THEME_VARIABLES) {
          const value = styles.getPropertyValue(name).trim()
          if (value) {
            root.style.setProperty(name, value)
          } else {
            root.style.removeProperty(name)
          }
        }
      }
    } catch {
      // Cross-origin or detached parent: keep the page's own colours.
    }
    applyColorScheme()
  }

  /** Sets color-scheme and data-theme from the luminance of the resulting background. */
  function applyColorScheme() {
    const root = document.documentElement
    const rgb = parseRgb(window.getComputedStyle(document.body).backgroundColor)
    const dark = rgb
      ? relativeLuminance(rgb) < 0.4
      : window.matchMedia('(prefers-color-scheme: dark)').matches
    root.dataset.theme = dark ? 'dark' : 'light'
    root.style.setProperty('color-scheme', dark ? 'dark' : 'light')
  }

  function parseRgb(value) {
    const match = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(value || '')
    return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null
  }

  function relativeLuminance([r, g, b]) {
    const channel = (c) => {
      const s = c / 255
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
    }
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
  }

  function watchParentTheme() {
    try {
      if (window.parent === window) {
        return
      }
      const observer = new MutationObserver(() => adoptParentTheme())
      observer.observe(window.parent.document.body, { attributes: true })
      observer.observe(window.parent.document.documentElement, { attributes: true })
    } catch {
      // Not readable: nothing to follow.
    }
    try {
      // The parent's theme stylesheets may still be loading when this page starts.
      if (window.parent !== window && window.parent.document.readyState !== 'complete') {
        window.parent.addEventListener('load', adoptParentTheme, { once: true })
      }
    } catch {
      // Not readable.
    }
    window.addEventListener('load', adoptParentTheme, { once: true })
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', adoptParentTheme)
  }

  // ---------------------------------------------------------------------------------------------
  // Start

  function start() {
    adoptParentTheme()
    watchParentTheme()
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
})()
