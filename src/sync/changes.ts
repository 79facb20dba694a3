import { byCodeUnit, type NewUser, type UserPatch } from './model.js'

/** Change kinds in the order they are applied and listed: creations first, destruction last. */
export const CHANGE_KINDS = [
  'create-group',
  'update-group',
  'create-user',
  'update-user',
  'enable-user',
  'link-identity',
  'add-member',
  'grant-role',
  'remove-member',
  'revoke-role',
  'disable-user',
  'delete-user',
  'delete-group',
] as const

export type ChangeKind = (typeof CHANGE_KINDS)[number]

/**
 * One write to Keycloak, addressed by Nextcloud uid/gid (the writer resolves Keycloak ids).
 * `emailFrom` names the user whose `update-user` in the same plan releases the email this change
 * sets, so it must run after that one.
 */
export type Change =
  | { kind: 'create-group'; gid: string; displayName: string }
  | {
      kind: 'update-group'
      gid: string
      before: { displayName: string }
      after: { displayName: string }
    }
  | { kind: 'create-user'; uid: string; user: NewUser; emailFrom?: string }
  | { kind: 'update-user'; uid: string; before: UserPatch; after: UserPatch; emailFrom?: string }
  | { kind: 'enable-user'; uid: string }
  /** `removed`: gone from Nextcloud; `disabled`: disabled there or outside the gate groups */
  | { kind: 'disable-user'; uid: string; reason: 'removed' | 'disabled' }
  | { kind: 'delete-user'; uid: string }
  | { kind: 'link-identity'; uid: string }
  | { kind: 'add-member'; uid: string; gid: string }
  | { kind: 'remove-member'; uid: string; gid: string }
  | { kind: 'grant-role'; uid: string; role: string }
  | { kind: 'revoke-role'; uid: string; role: string }
  | { kind: 'delete-group'; gid: string }

/**
 * Something the sync refused to do. `holder` is the uid of the managed or desired user holding the
 * name, or null when an unmanaged Keycloak user holds it.
 */
export type Conflict =
  | { kind: 'username-taken'; uid: string; username: string; holder: string | null }
  /** Keycloak would refuse the uid as a username (a user backend outside Nextcloud's uid rule) */
  | { kind: 'uid-refused'; uid: string; reason: string }
  /** the user is synced without an email */
  | { kind: 'email-taken'; uid: string; email: string; holder: string | null }
  /** the email moves from `holder`, who changes its own in this run too; it is set next run */
  | { kind: 'email-pending'; uid: string; email: string; holder: string }
  | { kind: 'group-name-taken'; gid: string }
  /** two Keycloak users carry the same uid marker; only the first (by id) is synced */
  | { kind: 'duplicate-managed-user'; uid: string; id: string }

const KIND_ORDER = new Map<ChangeKind, number>(CHANGE_KINDS.map((kind, i) => [kind, i]))

/**
 * Sorts by kind order, then uid/gid, then the member gid or role: the same input, the same bytes.
 * Kinds go to buckets first: a plan lists changes user by user in uid order, so each bucket is
 * nearly sorted already, and 50 000 changes sort without holding the event loop for long.
 */
export function sortChanges(changes: Change[]): Change[] {
  const buckets = CHANGE_KINDS.map((): Change[] => [])
  for (const change of changes) {
    buckets[KIND_ORDER.get(change.kind) ?? 0]?.push(change)
  }
  return buckets.flatMap((bucket) => bucket.sort(byKeys))
}

function byKeys(a: Change, b: Change): number {
  return byCodeUnit(primaryKey(a), primaryKey(b)) || byCodeUnit(secondaryKey(a), secondaryKey(b))
}

function primaryKey(change: Change): string {
  return 'uid' in change ? change.uid : change.gid
}

function secondaryKey(change: Change): string {
  if (!('uid' in change)) {
    return ''
  }
  return 'gid' in change ? change.gid : 'role' in change ? change.role : ''
}

/** Sorts conflicts by uid/gid, then kind. */
export function sortConflicts(conflicts: Conflict[]): Conflict[] {
  const subject = (c: Conflict) => ('uid' in c ? c.uid : c.gid)
  return conflicts.sort((a, b) => byCodeUnit(subject(a), subject(b)) || byCodeUnit(a.kind, b.kind))
}
