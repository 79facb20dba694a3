import { createHash } from 'node:crypto'
import type { StoredFingerprint, StoredObject } from '../db/sync-state-store.js'
import type { ApplyResult } from './apply.js'
import { type Actual, type ActualGroup, type ActualUser, byCodeUnit } from './model.js'

/**
 * The managed part of the realm as the last run left it, kept in the sidecar's database so an
 * ordinary run plans against it instead of reading Keycloak. One stored object per managed user
 * (key: uid) and group (key: gid), and one per name an unmanaged Keycloak object holds.
 */
export const OBJECT_KINDS = {
  user: 'user',
  group: 'group',
  unmanagedUsername: 'unmanaged-username',
  unmanagedEmail: 'unmanaged-email',
  unmanagedGroup: 'unmanaged-group',
} as const

/** JSON with object keys sorted, so equal states give equal fingerprints. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => byCodeUnit(a, b)))
      : v,
  )
}

export function fingerprint(state: Record<string, unknown>): string {
  return createHash('sha256').update(canonical(state)).digest('base64url').slice(0, 22)
}

/**
 * The fingerprint each user and group made from a stored object was stored with. Such an object
 * is frozen, and a run never changes it in place (afterApply copies what a change edits), so the
 * state after a run need not fingerprint it again: a run that changed nothing hashes nothing.
 */
const storedWith = new WeakMap<object, string>()

function object(
  kind: string,
  key: string,
  state: Record<string, unknown>,
  known?: string,
): StoredObject {
  return { kind, key, fingerprint: known ?? fingerprint(state), state }
}

/** The stored objects of a realm state, made one at a time as they are asked for. */
export function* objectsOf(actual: Actual): Generator<StoredObject> {
  for (const u of actual.users) {
    const { uid, ...user } = u
    yield object(OBJECT_KINDS.user, uid, user, storedWith.get(u))
  }
  for (const g of actual.groups) {
    const { gid, ...group } = g
    yield object(OBJECT_KINDS.group, gid, group, storedWith.get(g))
  }
  for (const name of actual.unmanagedUsernames) {
    yield object(OBJECT_KINDS.unmanagedUsername, name, {})
  }
  for (const email of actual.unmanagedEmails) {
    yield object(OBJECT_KINDS.unmanagedEmail, email, {})
  }
  for (const name of actual.unmanagedGroupNames) {
    yield object(OBJECT_KINDS.unmanagedGroup, name, {})
  }
}

/**
 * A user made from a stored object, frozen down to its attribute values. Object.assign, not a
 * spread: on Node 20 each object spread from these states got a map (hidden class) of its own,
 * 10 000 of them in a run over 10 000 stored users (3-4 MB); assigned, they share one.
 */
function loadedUser(key: string, o: StoredObject): ActualUser {
  const user: ActualUser = Object.assign({}, o.state as Omit<ActualUser, 'uid'>, { uid: key })
  for (const values of Object.values(user.attributes)) {
    Object.freeze(values)
  }
  Object.freeze(user.attributes)
  Object.freeze(user.groups)
  Object.freeze(user.roles)
  storedWith.set(user, o.fingerprint)
  return Object.freeze(user)
}

/**
 * The realm state of the objects `pages` bring (objects of unknown kinds are ignored), page by
 * page, with what a later diff needs of them: their states are not kept once the realm state has
 * what it needs.
 */
export async function readStoredState(
  pages: AsyncIterable<readonly StoredObject[]>,
): Promise<{ actual: Actual; stored: StoredFingerprint[] }> {
  const users: ActualUser[] = []
  const groups: ActualGroup[] = []
  const unmanagedUsernames = new Set<string>()
  const unmanagedEmails = new Set<string>()
  const unmanagedGroupNames = new Set<string>()
  const stored: StoredFingerprint[] = []
  for await (const page of pages) {
    for (const o of page) {
      const { kind, key, fingerprint } = o
      stored.push({ kind, key, fingerprint })
      if (kind === OBJECT_KINDS.user) {
        users.push(loadedUser(key, o))
      } else if (kind === OBJECT_KINDS.group) {
        const group = Object.freeze(
          Object.assign({}, o.state as Omit<ActualGroup, 'gid'>, { gid: key }),
        )
        storedWith.set(group, fingerprint)
        groups.push(group)
      } else if (kind === OBJECT_KINDS.unmanagedUsername) {
        unmanagedUsernames.add(key)
      } else if (kind === OBJECT_KINDS.unmanagedEmail) {
        unmanagedEmails.add(key)
      } else if (kind === OBJECT_KINDS.unmanagedGroup) {
        unmanagedGroupNames.add(key)
      }
    }
  }
  users.sort((a, b) => byCodeUnit(a.uid, b.uid))
  groups.sort((a, b) => byCodeUnit(a.gid, b.gid))
  const actual = { users, groups, unmanagedUsernames, unmanagedEmails, unmanagedGroupNames }
  return { actual, stored }
}

/**
 * What to write so the stored objects become those of `next`: the objects gone, and the new or
 * changed ones, made (and fingerprinted) only as the writer takes them, so a 10 000-user state is
 * never in memory twice.
 */
export function diffObjects(
  stored: readonly StoredFingerprint[],
  next: Actual,
): { put: Iterable<StoredObject>; remove: Pick<StoredObject, 'kind' | 'key'>[] } {
  const id = (kind: string, key: string) => `${kind}\u0000${key}`
  const before = new Map(stored.map((o) => [id(o.kind, o.key), o.fingerprint]))
  const keys = new Map<string, ReadonlySet<string>>([
    [OBJECT_KINDS.user, new Set(next.users.map((u) => u.uid))],
    [OBJECT_KINDS.group, new Set(next.groups.map((g) => g.gid))],
    [OBJECT_KINDS.unmanagedUsername, next.unmanagedUsernames],
    [OBJECT_KINDS.unmanagedEmail, next.unmanagedEmails],
    [OBJECT_KINDS.unmanagedGroup, next.unmanagedGroupNames],
  ])
  return {
    put: (function* () {
      for (const o of objectsOf(next)) {
        if (before.get(id(o.kind, o.key)) !== o.fingerprint) {
          yield o
        }
      }
    })(),
    remove: stored
      .filter((o) => !keys.get(o.kind)?.has(o.key))
      .map(({ kind, key }) => ({ kind, key })),
  }
}

/** Keycloak ids of objects a run created, as the writer knows them. */
export type IdLookup = (kind: 'user' | 'group', key: string) => string | undefined

/**
 * The realm state after the applied changes of `results` on `actual`: what the run wrote, so the
 * next run need not read it back. Changes that did not apply leave their object as it was (a run
 * with a failed write is not trusted anyway). Returns null when the id of a created object is
 * unknown.
 *
 * Neither `actual` nor the changes are modified: an object of `actual` is shared until a change
 * touches it, and then copied once; a created user shares its fields with its change. So the
 * state after a run that changed a few users of 10 000 is not a second copy of all of them.
 */
export function afterApply(
  actual: Actual,
  results: readonly ApplyResult[],
  idOf: IdLookup,
): Actual | null {
  const users = new Map(actual.users.map((u) => [u.uid, u]))
  const groups = new Map(actual.groups.map((g) => [g.gid, g]))
  /** the user objects made here, which may be changed in place */
  const made = new Set<ActualUser>()
  const own = (uid: string): ActualUser | undefined => {
    const user = users.get(uid)
    if (!user || made.has(user)) {
      return user
    }
    const copy = { ...user }
    made.add(copy)
    users.set(uid, copy)
    return copy
  }
  const sortedAdd = (list: string[], item: string) =>
    list.includes(item) ? list : [...list, item].sort(byCodeUnit)
  for (const { change, outcome } of results) {
    if (outcome !== 'applied') {
      continue
    }
    const user = 'uid' in change ? own(change.uid) : undefined
    switch (change.kind) {
      case 'create-group': {
        const id = idOf('group', change.gid)
        if (id === undefined) {
          return null
        }
        groups.set(change.gid, { id, gid: change.gid, displayName: change.displayName })
        break
      }
      case 'update-group': {
        const group = groups.get(change.gid)
        if (group) {
          groups.set(change.gid, { ...group, displayName: change.after.displayName })
        }
        break
      }
      case 'delete-group':
        groups.delete(change.gid)
        for (const [uid, member] of users) {
          if (member.groups.includes(change.gid)) {
            const copy = own(uid) as ActualUser
            copy.groups = member.groups.filter((gid) => gid !== change.gid)
          }
        }
        break
      case 'create-user': {
        const id = idOf('user', change.uid)
        if (id === undefined) {
          return null
        }
        const { uid, username, email, firstName, lastName, enabled, attributes } = change.user
        const created: ActualUser = {
          id,
          uid,
          username,
          email,
          firstName,
          lastName,
          enabled,
          attributes,
          groups: [],
          roles: [],
          linked: false,
        }
        made.add(created)
        users.set(uid, created)
        break
      }
      case 'update-user':
        if (user) {
          const { email, firstName, lastName, attributes } = change.after
          if (email !== undefined) {
            user.email = email
          }
          user.firstName = firstName ?? user.firstName
          user.lastName = lastName ?? user.lastName
          const merged = { ...user.attributes }
          for (const [name, values] of Object.entries(attributes ?? {})) {
            if (values === null) {
              delete merged[name]
            } else {
              merged[name] = [...values]
            }
          }
          user.attributes = Object.fromEntries(
            Object.entries(merged).sort(([a], [b]) => byCodeUnit(a, b)),
          )
        }
        break
      case 'enable-user':
      case 'disable-user':
        if (user) {
          user.enabled = change.kind === 'enable-user'
        }
        break
      case 'delete-user':
        users.delete(change.uid)
        break
      case 'link-identity':
        if (user) {
          user.linked = true
        }
        break
      case 'add-member':
        if (user) {
          user.groups = sortedAdd(user.groups, change.gid)
        }
        break
      case 'remove-member':
        if (user) {
          user.groups = user.groups.filter((gid) => gid !== change.gid)
        }
        break
      case 'grant-role':
        if (user) {
          user.roles = sortedAdd(user.roles, change.role)
        }
        break
      case 'revoke-role':
        if (user) {
          user.roles = user.roles.filter((role) => role !== change.role)
        }
        break
    }
  }
  return {
    ...actual,
    users: [...users.values()].sort((a, b) => byCodeUnit(a.uid, b.uid)),
    groups: [...groups.values()].sort((a, b) => byCodeUnit(a.gid, b.gid)),
  }
}
