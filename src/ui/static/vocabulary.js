// @ts-check
// The sync's words (change kinds, triggers, conflicts, run statuses) as the server serves them
// at /api/ui/vocabulary. Until they have arrived, or for a word the server no longer has (a run
// stored by another version), the raw key is shown.

/** @typedef {import('../status-api.js').Vocabulary} Vocabulary */

/** @type {Map<string, string>} */
const kinds = new Map()
/** @type {Map<string, number>} */
const kindOrder = new Map()
/** @type {Map<string, string>} */
const triggers = new Map()
/** @type {Map<string, string>} */
const conflicts = new Map()
/** @type {Map<string, string>} */
const statuses = new Map()
let loaded = false

/** @param {Vocabulary} vocabulary */
export function setVocabulary(vocabulary) {
  /**
   * @param {Map<string, string>} map
   * @param {{ key: string, label: string }[]} terms
   */
  const fill = (map, terms) => {
    map.clear()
    for (const { key, label } of terms) {
      map.set(key, label)
    }
  }
  fill(kinds, vocabulary.changeKinds)
  fill(triggers, vocabulary.triggers)
  fill(conflicts, vocabulary.conflicts)
  fill(statuses, vocabulary.runStatuses)
  kindOrder.clear()
  vocabulary.changeKinds.forEach(({ key }, index) => {
    kindOrder.set(key, index)
  })
  loaded = true
}

export function hasVocabulary() {
  return loaded
}

/** @param {string} kind the label of a change kind's count, e.g. "Users created" */
export const kindLabel = (kind) => kinds.get(kind) || kind

/**
 * Orders change kinds as the sync applies them; unknown kinds last, by name.
 *
 * @param {string} a
 * @param {string} b
 */
export const byKindOrder = (a, b) =>
  (kindOrder.get(a) ?? 99) - (kindOrder.get(b) ?? 99) || a.localeCompare(b)

/** @param {string} trigger */
export const triggerLabel = (trigger) => triggers.get(trigger) || trigger

/** @param {string} kind */
export const conflictLabel = (kind) => conflicts.get(kind) || kind

/** @param {string} status a run's status, or "partial" */
export const statusLabel = (status) => statuses.get(status) || status
