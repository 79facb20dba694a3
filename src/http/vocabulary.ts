import { RUN_STATUSES, type RunStatus } from '../db/schema.js'
import { CHANGE_KINDS, type ChangeKind } from '../sync/changes.js'
import type { RunConflict, Trigger } from '../sync/engine.js'

/**
 * The words the status page shows for the sync's own vocabularies. Each table is keyed by the
 * server's type, so a change kind, trigger, conflict or run status added without its label (or a
 * label left for one that is gone) fails the typecheck; the page reads them from
 * `GET /api/ui/vocabulary` instead of keeping a copy.
 */
const CHANGE_LABELS = {
  'create-group': 'Groups created',
  'update-group': 'Groups renamed',
  'create-user': 'Users created',
  'update-user': 'Users updated',
  'enable-user': 'Users enabled',
  'link-identity': 'Identities linked',
  'add-member': 'Memberships added',
  'grant-role': 'Roles granted',
  'remove-member': 'Memberships removed',
  'revoke-role': 'Roles revoked',
  'disable-user': 'Users disabled',
  'delete-user': 'Users deleted',
  'delete-group': 'Groups deleted',
} as const satisfies Record<ChangeKind, string>

export const TRIGGER_LABELS = {
  init: 'Startup',
  api: 'API',
  schedule: 'Schedule',
  user: 'User event',
  token: 'Token request',
  ui: 'Status page',
} as const satisfies Record<Trigger, string>

export const CONFLICT_LABELS = {
  'username-taken': 'Username taken',
  'uid-refused': 'User id refused',
  'email-taken': 'Email taken',
  'email-pending': 'Email pending',
  'group-name-taken': 'Group name taken',
  'duplicate-managed-user': 'Duplicate account',
  'write-conflict': 'Write conflict',
} as const satisfies Record<RunConflict['kind'], string>

const RUN_STATUS_LABELS = {
  running: 'Running',
  succeeded: 'Succeeded',
  partial: 'Partly failed',
  failed: 'Failed',
  guard_tripped: 'Guard tripped',
  interrupted: 'Interrupted',
} as const satisfies Record<RunStatus, string>

export interface Term<K extends string> {
  key: K
  label: string
}

/** The page's vocabularies; lists keep the server's order (change kinds: the order applied). */
export interface Vocabulary {
  changeKinds: Term<ChangeKind>[]
  triggers: Term<Trigger>[]
  conflicts: Term<RunConflict['kind']>[]
  runStatuses: Term<RunStatus>[]
}

function terms<K extends string>(keys: readonly K[], labels: Record<K, string>): Term<K>[] {
  return keys.map((key) => ({ key, label: labels[key] }))
}

const keysOf = <K extends string>(labels: Record<K, string>) => Object.keys(labels) as K[]

export function vocabulary(): Vocabulary {
  return {
    changeKinds: terms(CHANGE_KINDS, CHANGE_LABELS),
    triggers: terms(keysOf(TRIGGER_LABELS), TRIGGER_LABELS),
    conflicts: terms(keysOf(CONFLICT_LABELS), CONFLICT_LABELS),
    runStatuses: terms(RUN_STATUSES, RUN_STATUS_LABELS),
  }
}
