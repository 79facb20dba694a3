import type { EventsCursor } from '../db/sync-state-store.js'
import { type Actual, type ActualGroup, type ActualUser, byCodeUnit } from './model.js'

/** One admin event of the realm, as Keycloak stores it (without representation). */
export interface AdminEvent {
  id: string
  /** Keycloak's clock, ms */
  time: number
  operationType: string
  resourceType: string
  resourcePath: string
}

export interface RealmInfo {
  /** Keycloak's id of the realm: another id means the realm was recreated */
  id: string
  adminEventsEnabled: boolean
}

export type ReadUser =
  | { kind: 'managed'; user: ActualUser }
  | { kind: 'unmanaged'; username: string; email: string | null }
  | { kind: 'gone' }

export type ReadGroup =
  | { kind: 'managed'; group: ActualGroup }
  | { kind: 'unmanaged'; name: string }
  | { kind: 'gone' }

/**
 * What changed in the realm, read cheaply: the realm's admin events, and single users and groups
 * by Keycloak id. Without one, every run reads the whole realm.
 */
export interface ChangeFeed {
  realm(): Promise<RealmInfo>
  /** admin events at or after `fromTime`, oldest first, from the `first`-th, at most `max` */
  events(fromTime: number, first: number, max: number): Promise<AdminEvent[]>
  /** the newest admin event (none: an empty list) */
  latest(): Promise<AdminEvent[]>
  readUser(id: string): Promise<ReadUser>
  readGroup(id: string): Promise<ReadGroup>
}

/** Events read per request. */
const EVENT_PAGE = 1_000

/** Why a run must read the whole realm, or null when the stored state plus events will do. */
export type Escalation = string | null

/** The events after `cursor`; `gap` when events the cursor saw are gone (expired, cleared). */
export async function eventsSince(
  feed: ChangeFeed,
  cursor: EventsCursor,
  limit: number,
): Promise<{ events: AdminEvent[]; gap: boolean; overflow: boolean }> {
  const all: AdminEvent[] = []
  for (let first = 0; ; first += EVENT_PAGE) {
    const page = await feed.events(cursor.time, first, EVENT_PAGE)
    all.push(...page)
    if (page.length < EVENT_PAGE || all.length > limit + cursor.seen.length) {
      break
    }
  }
  const seen = new Set(cursor.seen)
  const found = new Set(all.filter((e) => seen.has(e.id)).map((e) => e.id))
  const events = all.filter((e) => !seen.has(e.id))
  return { events, gap: found.size < seen.size, overflow: events.length > limit }
}

/** The cursor past `events` (oldest first), or `cursor` when there are none. */
export function cursorAfter(cursor: EventsCursor, events: readonly AdminEvent[]): EventsCursor {
  const last = events[events.length - 1]
  if (!last) {
    return cursor
  }
  const atLast = events.filter((e) => e.time === last.time).map((e) => e.id)
  const carried = last.time === cursor.time ? cursor.seen : []
  return { time: last.time, seen: [...new Set([...carried, ...atLast])].sort(byCodeUnit) }
}

export interface Touched {
  /** Keycloak user ids → operations seen on them or below them */
  users: Map<string, Set<string>>
  groups: Map<string, Set<string>>
  escalation: Escalation
}

/** Resource types whose change can alter what the sync manages in ways a re-read cannot see. */
const ESCALATING: Record<string, (op: string) => boolean> = {
  REALM_ROLE: () => true,
  USER_PROFILE: () => true,
  IDENTITY_PROVIDER: (op) => op === 'DELETE',
  USER_FEDERATION_PROVIDER: () => true,
}

/** Sorts events into the users and groups they touch; anything else either escalates or is moot. */
export function touchedBy(events: readonly AdminEvent[]): Touched {
  const users = new Map<string, Set<string>>()
  const groups = new Map<string, Set<string>>()
  const add = (map: Map<string, Set<string>>, id: string, op: string) => {
    map.set(id, (map.get(id) ?? new Set()).add(op))
  }
  for (const event of events) {
    const [root, id, below] = event.resourcePath.split('/')
    if (root === 'users' && id) {
      add(users, id, below === undefined ? event.operationType : 'UPDATE')
    } else if (root === 'groups' && id) {
      add(groups, id, below === undefined ? event.operationType : 'UPDATE')
    } else if (ESCALATING[event.resourceType]?.(event.operationType)) {
      return { users, groups, escalation: `a ${event.resourceType} ${event.operationType} event` }
    } else if (event.resourceType === 'USER' || event.resourceType === 'GROUP') {
      return { users, groups, escalation: `an event on ${event.resourcePath}` }
    }
  }
  return { users, groups, escalation: null }
}

/**
 * Brings `actual` (the stored state) up to date with what events touched, re-reading those users
 * and groups from Keycloak. Returns why the whole realm must be read instead when a change cannot
 * be followed this way: an object the state does not know by id (an unmanaged one, kept by name
 * only) that existed before the events, since the names it held then are not known.
 */
export async function followChanges(
  actual: Actual,
  touched: Touched,
  feed: ChangeFeed,
): Promise<{ actual: Actual; escalation: Escalation; reads: number }> {
  if (touched.users.size === 0 && touched.groups.size === 0) {
    return { actual, escalation: null, reads: 0 }
  }
  const users = new Map(actual.users.map((u) => [u.id, u]))
  const groups = new Map(actual.groups.map((g) => [g.id, g]))
  const unmanagedUsernames = new Set(actual.unmanagedUsernames)
  const unmanagedEmails = new Set(actual.unmanagedEmails)
  const unmanagedGroupNames = new Set(actual.unmanagedGroupNames)
  let reads = 0
  for (const [id, ops] of touched.groups) {
    const read = await feed.readGroup(id)
    reads++
    const known = groups.get(id)
    if (known) {
      groups.delete(id)
      if (read.kind !== 'managed' || read.group.gid !== known.gid) {
        for (const [userId, user] of users) {
          users.set(userId, { ...user, groups: user.groups.filter((gid) => gid !== known.gid) })
        }
      }
    } else if (!ops.has('CREATE')) {
      // It existed before the state was stored, as an unmanaged group whose name is known only
      // by name: what it held before is not known.
      return { actual, escalation: `group ${id} changed in a way only a full read follows`, reads }
    }
    if (read.kind === 'managed') {
      groups.set(id, read.group)
    } else if (read.kind === 'unmanaged') {
      unmanagedGroupNames.add(read.name)
    }
  }
  for (const [id, ops] of touched.users) {
    const read = await feed.readUser(id)
    reads++
    if (users.has(id)) {
      users.delete(id)
    } else if (!ops.has('CREATE')) {
      return { actual, escalation: `user ${id} changed in a way only a full read follows`, reads }
    }
    if (read.kind === 'managed') {
      users.set(id, read.user)
    } else if (read.kind === 'unmanaged') {
      unmanagedUsernames.add(read.username.toLowerCase())
      if (read.email) {
        unmanagedEmails.add(read.email.toLowerCase())
      }
    }
  }
  return {
    actual: {
      users: [...users.values()].sort((a, b) => byCodeUnit(a.uid, b.uid)),
      groups: [...groups.values()].sort((a, b) => byCodeUnit(a.gid, b.gid)),
      unmanagedUsernames,
      unmanagedEmails,
      unmanagedGroupNames,
    },
    escalation: null,
    reads,
  }
}
