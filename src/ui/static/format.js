// @ts-check
// Plain text for the page: dates, spans, counts, and one-line descriptions of changes and
// conflicts. No DOM here.

/**
 * @typedef {import('../status-api.js').LoggedChange} LoggedChange
 * @typedef {import('../status-api.js').RunConflict} RunConflict
 * @typedef {import('../status-api.js').RunRow} RunRow
 */

/**
 * @param {string | null | undefined} iso
 * @returns {string}
 */
export function formatDateTime(iso) {
  if (!iso) {
    return '–'
  }
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) {
    return String(iso)
  }
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

/** @param {string} iso */
export function formatTime(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
}

/**
 * "4 min", "1 h 5 min", "30 s" for a span in milliseconds.
 *
 * @param {number} ms
 * @returns {string}
 */
export function formatSpan(ms) {
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

/** @param {string} iso */
export function formatAgo(iso) {
  const ms = Date.now() - new Date(iso).getTime()
  return ms < 45_000 ? 'just now' : `${formatSpan(ms)} ago`
}

/** @param {number} seconds */
export function formatInterval(seconds) {
  return formatSpan(seconds * 1000)
}

/**
 * @param {number} count
 * @param {string} one
 * @param {string} many
 */
export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`
}

/** @param {Record<string, number> | undefined} counts */
export function totalChanges(counts) {
  let total = 0
  for (const value of Object.values(counts || {})) {
    total += Number(value) || 0
  }
  return total
}

/**
 * The run's status word, with "partial" for a succeeded run whose writes partly failed.
 *
 * @param {Pick<RunRow, 'status' | 'errors'>} run
 * @returns {RunRow['status']}
 */
export function runOutcome(run) {
  if (run.status === 'succeeded' && Array.isArray(run.errors) && run.errors.length > 0) {
    return 'partial'
  }
  return run.status
}

/**
 * "add-member" → "Add member": a short tag for one planned or applied change.
 *
 * @param {string} kind
 */
export function kindTag(kind) {
  const words = String(kind).replace(/-/g, ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

/**
 * A one-line, human-readable description of a change; includes its uid and gid.
 *
 * @param {LoggedChange} change
 * @returns {string}
 */
export function describeChange(change) {
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
      return subjectOf(change)
  }
}

/**
 * Who a change or conflict the page has no words for is about (a run stored by another version).
 *
 * @param {object} item
 * @returns {string}
 */
function subjectOf(item) {
  const { uid, gid, id } = /** @type {{ uid?: unknown, gid?: unknown, id?: unknown }} */ (item)
  return String(uid ?? gid ?? id ?? '')
}

/**
 * @param {string | null} holder the uid holding a name, null for an unmanaged account
 */
function holderOf(holder) {
  return holder ? `“${holder}”` : 'another Keycloak account'
}

/**
 * @param {RunConflict} conflict
 * @returns {string}
 */
export function describeConflict(conflict) {
  switch (conflict.kind) {
    case 'username-taken':
      return `${conflict.uid}: username “${conflict.username}” is already used by ${holderOf(conflict.holder)}`
    case 'uid-refused':
      return `${conflict.uid}: Keycloak cannot take this user id: it ${conflict.reason}`
    case 'email-taken':
      return `${conflict.uid}: email ${conflict.email} is already used by ${holderOf(conflict.holder)}`
    case 'email-pending':
      return `${conflict.uid}: email ${conflict.email} is still held by ${holderOf(conflict.holder)}; it follows once freed`
    case 'group-name-taken':
      return `group ${conflict.gid}: a group with this name already exists in Keycloak`
    case 'duplicate-managed-user':
      return `${conflict.uid}: more than one managed Keycloak account (${conflict.id})`
    case 'write-conflict': {
      // `change` is the kind of the refused write, `id` the uid or gid it was for.
      const target = `${kindTag(conflict.change)} ${conflict.id}`
      return conflict.error ? `${target}: ${conflict.error}` : target
    }
    default:
      return subjectOf(conflict)
  }
}
