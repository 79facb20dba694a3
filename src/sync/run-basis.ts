import type { Store } from '../db/store.js'
import type { EventsCursor, StoredFingerprint } from '../db/sync-state-store.js'
import type { ApplyReport } from './apply.js'
import type { Actual } from './model.js'
import {
  type ChangeFeed,
  cursorAfter,
  eventsSince,
  followChanges,
  type RealmInfo,
  touchedBy,
} from './realm-changes.js'
import type { RunOptions, SyncTarget } from './run-types.js'
import { afterApply, diffObjects, readStoredState } from './sync-state.js'

/** Full reconciliations by default every 6 hours. */
export const DEFAULT_FULL_INTERVAL_SECONDS = 6 * 3600

/**
 * Admin events (and objects they touch) an ordinary run follows one by one; beyond this (at least
 * this share of the managed users) reading the whole realm is cheaper.
 */
const FOLLOW_LIMIT = 200
const FOLLOW_SHARE = 0.05

/** What a run plans against, and what it needs to store the state after. */
export interface Basis {
  kind: 'full' | 'stored'
  reason: string
  actual: Actual
  /** objects re-read because admin events touched them (stored basis) */
  reads?: number
  /** null: the target has no change feed; nothing is stored */
  realm: RealmInfo | null
  /** the admin-event cursor as of the start of the run */
  cursor: EventsCursor | null
  /** the stored objects the state after the run is written over */
  stored: StoredFingerprint[]
  replace: boolean
  reconciledAt: Date
}

interface BasisDeps {
  realm: string
  store: Pick<
    Store,
    | 'getSyncState'
    | 'readSyncObjects'
    | 'listSyncFingerprints'
    | 'saveSyncState'
    | 'distrustSyncState'
  >
  fullIntervalSeconds: number
}

/**
 * The realm as the run should see it: the stored state brought up to date by the admin events
 * since the last run, or, whenever that is missing or suspect (or asked for, or due), the whole
 * managed realm read from Keycloak.
 */
export async function readBasis(
  deps: BasisDeps,
  target: SyncTarget,
  opts: Pick<RunOptions, 'full' | 'force'>,
  now: Date,
): Promise<Basis> {
  const feed = target.feed
  if (!feed || !target.prime || !target.keycloakId) {
    const actual = await target.snapshot()
    return full(actual, 'the target keeps no state', null, null, [], false, now)
  }
  const header = await deps.store.getSyncState(deps.realm)
  const realm = await feed.realm()
  let reason = whyFull(deps, header, realm, opts, now)
  if (reason === null && header?.eventsCursor) {
    const { actual: stored, stored: managed } = await readStoredState(
      deps.store.readSyncObjects(deps.realm),
    )
    const limit = Math.max(FOLLOW_LIMIT, Math.ceil(stored.users.length * FOLLOW_SHARE))
    const { events, gap, overflow } = await eventsSince(feed, header.eventsCursor, limit)
    const touched = touchedBy(events)
    if (gap) {
      reason = 'admin events since the last run are gone (expired or cleared)'
    } else if (overflow || touched.users.size + touched.groups.size > limit) {
      reason = `more than ${limit} admin events or objects changed since the last run`
    } else if (touched.escalation) {
      reason = touched.escalation
    } else {
      const followed = await followChanges(stored, touched, feed)
      if (followed.escalation) {
        reason = followed.escalation
      } else {
        target.prime(followed.actual)
        return {
          kind: 'stored',
          reason: `${events.length} admin event(s) since the last run`,
          actual: followed.actual,
          reads: followed.reads,
          realm,
          cursor: cursorAfter(header.eventsCursor, events),
          stored: managed,
          replace: false,
          reconciledAt: header.reconciledAt,
        }
      }
    }
  }
  const cursor = realm.adminEventsEnabled ? await latestCursor(feed) : null
  const actual = await target.snapshot()
  const sameRealm = header?.realmId === realm.id
  const stored = sameRealm ? await deps.store.listSyncFingerprints(deps.realm) : []
  return full(actual, reason ?? 'no stored state', realm, cursor, stored, !sameRealm, now)
}

function full(
  actual: Actual,
  reason: string,
  realm: RealmInfo | null,
  cursor: EventsCursor | null,
  stored: StoredFingerprint[],
  replace: boolean,
  now: Date,
): Basis {
  return { kind: 'full', reason, actual, realm, cursor, stored, replace, reconciledAt: now }
}

function whyFull(
  deps: BasisDeps,
  header: Awaited<ReturnType<BasisDeps['store']['getSyncState']>>,
  realm: RealmInfo,
  opts: Pick<RunOptions, 'full' | 'force'>,
  now: Date,
): string | null {
  if (opts.full) {
    return 'a full run was asked for'
  }
  if (opts.force) {
    return 'a forced run reads the whole realm'
  }
  if (!header) {
    return 'no stored state'
  }
  if (header.realmId !== realm.id) {
    return 'the realm was recreated'
  }
  if (!header.trusted) {
    return 'the last run did not finish cleanly'
  }
  if (!realm.adminEventsEnabled || !header.eventsCursor) {
    return "the realm's admin events are off"
  }
  const age = (now.getTime() - header.reconciledAt.getTime()) / 1000
  if (deps.fullIntervalSeconds === 0 || age >= deps.fullIntervalSeconds) {
    return 'a full reconciliation is due'
  }
  return null
}

/** The cursor at the newest admin event of the realm (time 0 when there is none). */
async function latestCursor(feed: ChangeFeed): Promise<EventsCursor> {
  const [newest] = await feed.latest()
  return newest ? { time: newest.time, seen: [newest.id] } : { time: 0, seen: [] }
}

/** How many of a run's last writes the cursor is placed after (events sharing a millisecond). */
const TAIL = 20

/**
 * Where the next run's event read starts: after the `writes` events this run caused, when exactly
 * that many came after the start cursor (so none of them was someone else's); else the start
 * cursor, and the next run reads them all again.
 */
async function cursorAfterWrites(
  feed: ChangeFeed,
  start: EventsCursor,
  writes: number,
): Promise<EventsCursor> {
  if (writes === 0) {
    return start
  }
  const tail = Math.min(writes, TAIL)
  const events = await feed.events(start.time, start.seen.length + writes - tail, tail + 1)
  if (events.length !== tail) {
    return start
  }
  return cursorAfter({ time: -1, seen: [] }, events)
}

/** Write operations that create objects: one request may create many (a partial import). */
const CREATING = new Set(['createUser', 'createGroup', 'importUsers', 'importGroups'])

/**
 * The admin events a run's writes cause: Keycloak records one per request that changes something,
 * and one per object a partial import creates (what it creates inline, memberships and links,
 * records nothing). Counted only for runs whose every write went through.
 */
export function expectedEvents(writes: Record<string, number>, report: ApplyReport): number {
  const requests = Object.entries(writes)
    .filter(([op]) => !CREATING.has(op))
    .reduce((n, [, count]) => n + count, 0)
  const created = report.results.filter(
    (r) =>
      r.outcome === 'applied' &&
      (r.change.kind === 'create-user' || r.change.kind === 'create-group'),
  ).length
  return requests + created
}

/** Marks the stored state untrusted before a run writes, so an interrupted run leaves it so. */
export async function beforeWrites(deps: BasisDeps, basis: Basis): Promise<void> {
  if (basis.realm !== null) {
    await deps.store.distrustSyncState(deps.realm)
  }
}

/**
 * Stores the realm state the run leaves: the basis with what the run applied. Trusted only when
 * every write went through.
 */
export async function recordState(
  deps: BasisDeps,
  target: SyncTarget,
  basis: Basis,
  report: ApplyReport | null,
): Promise<void> {
  const feed = target.feed
  if (basis.realm === null || !feed || !target.keycloakId) {
    return
  }
  const idOf = target.keycloakId.bind(target)
  const next = report ? afterApply(basis.actual, report.results, idOf) : basis.actual
  const failed = report?.results.some((r) => r.outcome === 'failed' || r.outcome === 'skipped')
  if (next === null) {
    await deps.store.distrustSyncState(deps.realm)
    return
  }
  const writes = report ? expectedEvents(target.writes ?? {}, report) : 0
  let cursor: EventsCursor | null
  try {
    cursor = basis.cursor && (await cursorAfterWrites(feed, basis.cursor, writes))
  } catch {
    // Keycloak went away after the writes: the run stands, the next one reads the whole realm.
    await deps.store.distrustSyncState(deps.realm)
    return
  }
  const { put, remove } = diffObjects(basis.stored, next)
  await deps.store.saveSyncState(deps.realm, {
    realmId: basis.realm.id,
    eventsCursor: cursor,
    reconciledAt: basis.reconciledAt,
    trusted: failed !== true,
    put,
    remove,
    replace: basis.replace,
  })
}
