import type { GroupDetails } from '../appapi/nextcloud-client.js'
import { errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import type { SyncEngine } from './engine.js'
import type { DirectoryObservation, SourceRead } from './nextcloud-source.js'

/** The Nextcloud side the poller reads: cheap lists, group members, and the reads of full runs. */
export interface PollSource {
  observe(): Promise<DirectoryObservation>
  disabledIds(): Promise<string[]>
  groupMembers(gid: string): Promise<string[] | null>
  withGroups<T>(groups: GroupDetails[], work: () => Promise<T>): Promise<T>
  onRead(listener: (read: SourceRead) => void): () => void
}

/** The sync engine as the poller uses it. */
export interface PollEngine {
  /** syncs one user, re-read from Nextcloud; resolves false when its writes failed */
  runUser(uid: string): Promise<boolean>
  runFull(): Promise<unknown>
  /** true while a full run is in progress: a poll then waits for the next turn */
  busy(): boolean
}

export interface PollerOptions {
  source: PollSource
  engine: PollEngine
  /** SYNC_POLL_INTERVAL: seconds between the end of one poll and the start of the next; 0 = off */
  intervalSeconds: number
  /** SYNC_PAGE_SIZE: users per details page of a full read, for its cost */
  pageSize: number
  log: Logger
}

/** Why a user is synced on its own. */
export type ChangeKind = 'created' | 'deleted' | 'enabled' | 'disabled' | 'groups'

export interface PollResult {
  /**
   * `unchanged`: nothing to do; `targeted`: the changed users were synced one by one; `full`: a
   * full run (no baseline yet, a group created, renamed or deleted, or more changed users than
   * one by one is worth); `skipped`: a full run was in progress.
   */
  outcome: 'unchanged' | 'targeted' | 'full' | 'skipped'
  changes: { uid: string; kind: ChangeKind }[]
  /** why the run was full, when it was */
  reason?: string
}

interface KnownUser {
  enabled: boolean
  groups: readonly string[]
}

/**
 * What the last reads said: every user's enabled state and groups (from a full read, updated by
 * each single-user read) and every group's count (from a full read, or a poll that was handled).
 */
interface Baseline {
  users: Map<string, KnownUser>
  groups: Map<string, GroupDetails>
}

/**
 * Brings changes in Nextcloud over quickly without reading every user's details: every
 * `intervalSeconds` it reads the cheap lists (uids, groups with member and disabled counts),
 * compares them with what the last reads said, reads the members of the groups whose member count
 * moved and the disabled users when a disabled count moved (or some user is in no group, where no
 * count would show it), and syncs exactly the users that were created, deleted, disabled, enabled
 * or moved between groups, one by one (each re-read in detail). A group created, renamed or
 * deleted, or more changed users than a full read would cost, gets a full run instead. Profile
 * changes (names, emails) show in none of these lists: they arrive with the next full run.
 *
 * Blind spot: changes that cancel out in every count they touch within one interval (one member
 * of a group leaves as another joins; one is disabled as another of the same groups is enabled)
 * show in no list; the next full run brings them.
 */
export class DirectoryPoller {
  private baseline: Baseline | undefined
  private readonly unsubscribe: () => void
  private readonly log: Logger
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private stopped = true

  constructor(private readonly opts: PollerOptions) {
    this.log = opts.log.child({ component: 'poll' })
    this.unsubscribe = opts.source.onRead((read) => this.remember(read))
  }

  /** Polls every `intervalSeconds` (0: never), counted from the end of the previous poll. */
  start(): void {
    if (this.opts.intervalSeconds <= 0 || !this.stopped) {
      return
    }
    this.stopped = false
    this.schedule()
  }

  /** Stops polling and waits for a poll in progress. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.running?.catch(() => undefined)
  }

  /** Stops for good: also stops listening to the source's reads. */
  async close(): Promise<void> {
    await this.stop()
    this.unsubscribe()
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.running = this.pollOnce()
        .catch((err: unknown) =>
          this.log.warn({ err, errorMessage: errorMessage(err) }, 'sync.poll_failed'),
        )
        .finally(() => {
          this.running = undefined
          if (!this.stopped) {
            this.schedule()
          }
        })
    }, this.opts.intervalSeconds * 1000)
    this.timer.unref()
  }

  /** One poll: read the cheap lists, find what changed, sync it. */
  async pollOnce(): Promise<PollResult> {
    if (this.opts.engine.busy()) {
      return { outcome: 'skipped', changes: [] }
    }
    const observed = await this.opts.source.observe()
    const baseline = this.baseline
    if (!baseline) {
      return this.full([], 'nothing read yet to compare with')
    }
    const structural = groupStructureChange(baseline.groups, observed.groups)
    if (structural) {
      return this.full([], structural)
    }
    const disabledIds = needsDisabledList(baseline, observed.groups)
      ? await this.opts.source.disabledIds()
      : undefined
    const changes = diffUsers(baseline.users, { userIds: observed.userIds, disabledIds })
    const seen = new Set(changes.map((c) => c.uid))
    for (const group of observed.groups) {
      if (group.usercount === baseline.groups.get(group.id)?.usercount) {
        continue
      }
      const members = await this.opts.source.groupMembers(group.id)
      if (members === null) {
        return this.full(changes, `group "${group.id}" disappeared while it was read`)
      }
      for (const uid of movedMembers(baseline.users, group.id, members)) {
        if (!seen.has(uid)) {
          seen.add(uid)
          changes.push({ uid, kind: 'groups' })
        }
      }
    }
    if (changes.length === 0) {
      this.settle(baseline, observed.groups)
      return { outcome: 'unchanged', changes }
    }
    const limit = targetedLimit(baseline.users.size, this.opts.pageSize)
    if (changes.length > limit) {
      return this.full(changes, `${changes.length} users changed, more than ${limit}`)
    }
    const failed = await this.opts.source.withGroups(observed.groups, () =>
      this.syncEach(changes.map((c) => c.uid)),
    )
    // A user whose run failed is compared again next time: it keeps what the baseline said
    // before (restored by syncEach), and the group counts stay the old ones.
    if (failed === 0) {
      this.settle(baseline, observed.groups)
    }
    this.log.info({ changes, failed }, 'sync.poll_changes')
    return { outcome: 'targeted', changes }
  }

  /** The observed counts become the baseline's, unless a full read replaced it meanwhile. */
  private settle(baseline: Baseline, groups: GroupDetails[]): void {
    if (this.baseline === baseline) {
      baseline.groups = byId(groups)
    }
  }

  private async full(changes: PollResult['changes'], reason: string): Promise<PollResult> {
    this.log.info({ reason, changed: changes.length }, 'sync.poll_full_run')
    // The full read behind the run resets the baseline (`remember`).
    await this.opts.engine.runFull()
    return { outcome: 'full', changes, reason }
  }

  private async syncEach(uids: string[]): Promise<number> {
    let failed = 0
    for (const uid of uids.sort()) {
      const before = this.baseline?.users.get(uid)
      let ok = false
      try {
        ok = await this.opts.engine.runUser(uid)
      } catch (err) {
        this.log.warn({ err, uid }, 'sync.poll_user_failed')
      }
      if (!ok) {
        failed++
        this.restore(uid, before)
      }
    }
    return failed
  }

  private restore(uid: string, before: KnownUser | undefined): void {
    if (!this.baseline) {
      return
    }
    if (before) {
      this.baseline.users.set(uid, before)
    } else {
      this.baseline.users.delete(uid)
    }
  }

  private remember(read: SourceRead): void {
    if (read.kind === 'all') {
      const users = new Map<string, KnownUser>()
      for (const user of read.directory.users) {
        users.set(user.id, known(user))
      }
      this.baseline = { users, groups: byId(read.directory.groups) }
      return
    }
    // Only the user: the group counts stay those of the last full read or handled poll, so a
    // change to another member of the same groups still shows as a moved count.
    if (!this.baseline) {
      return
    }
    if (read.user) {
      this.baseline.users.set(read.user.id, known(read.user))
    } else {
      this.baseline.users.delete(read.uid)
    }
  }
}

function known(user: { enabled?: boolean; groups: readonly string[] }): KnownUser {
  return { enabled: user.enabled !== false, groups: [...user.groups] }
}

function byId(groups: readonly GroupDetails[]): Map<string, GroupDetails> {
  return new Map(groups.map((g) => [g.id, g]))
}

/**
 * Whether the disabled users must be listed: a group's disabled count moved, or a user is in no
 * group, so no count would show it disabled.
 */
export function needsDisabledList(
  baseline: { users: ReadonlyMap<string, KnownUser>; groups: ReadonlyMap<string, GroupDetails> },
  observed: readonly GroupDetails[],
): boolean {
  if (observed.some((g) => g.disabled !== baseline.groups.get(g.id)?.disabled)) {
    return true
  }
  for (const user of baseline.users.values()) {
    if (user.groups.length === 0) {
      return true
    }
  }
  return false
}

/**
 * Users created, deleted, enabled or disabled since the baseline, per the lists; without a list
 * of disabled users, enabled states are not compared.
 */
export function diffUsers(
  known: ReadonlyMap<string, KnownUser>,
  observed: { userIds: readonly string[]; disabledIds?: readonly string[] },
): { uid: string; kind: ChangeKind }[] {
  const changes: { uid: string; kind: ChangeKind }[] = []
  const ids = new Set(observed.userIds)
  const disabled = observed.disabledIds ? new Set(observed.disabledIds) : undefined
  for (const uid of ids) {
    const before = known.get(uid)
    if (!before) {
      changes.push({ uid, kind: 'created' })
    } else if (disabled && before.enabled === disabled.has(uid)) {
      changes.push({ uid, kind: before.enabled ? 'disabled' : 'enabled' })
    }
  }
  for (const uid of known.keys()) {
    if (!ids.has(uid)) {
      changes.push({ uid, kind: 'deleted' })
    }
  }
  return changes
}

/** Users who joined or left `gid`: its members now against the baseline's. */
export function movedMembers(
  known: ReadonlyMap<string, KnownUser>,
  gid: string,
  members: readonly string[],
): string[] {
  const now = new Set(members)
  const moved: string[] = []
  for (const [uid, user] of known) {
    if (user.groups.includes(gid) !== now.has(uid)) {
      moved.push(uid)
    }
  }
  for (const uid of now) {
    if (!known.has(uid)) {
      moved.push(uid)
    }
  }
  return moved
}

/** Why the group list needs a full run: a group created, deleted or renamed; else undefined. */
export function groupStructureChange(
  before: ReadonlyMap<string, GroupDetails>,
  observed: readonly GroupDetails[],
): string | undefined {
  const now = byId(observed)
  for (const group of observed) {
    const old = before.get(group.id)
    if (!old) {
      return `group "${group.id}" was created`
    }
    if (old.displayname !== group.displayname) {
      return `group "${group.id}" was renamed`
    }
  }
  for (const gid of before.keys()) {
    if (!now.has(gid)) {
      return `group "${gid}" was deleted`
    }
  }
  return undefined
}

/**
 * How many users are worth syncing one by one rather than with a full run, in Nextcloud's cost:
 * a single-user read is one request; a full read is one per details page plus the group list,
 * and each user's details cost about 1/180 of a request's fixed cost (measured on Nextcloud 31:
 * ~0.8 s per request, ~4.5 ms per user).
 */
export function targetedLimit(users: number, pageSize: number): number {
  return Math.max(3, Math.floor(users / pageSize) + 2 + Math.ceil(users / 180))
}

/** The engine's calls as the poller makes them: its runs are stored with trigger `schedule`. */
export function pollEngine(sync: Pick<SyncEngine, 'runUser' | 'runFull' | 'progress'>): PollEngine {
  return {
    runUser: async (uid) => (await sync.runUser(uid, 'schedule')).run.status !== 'failed',
    runFull: () => sync.runFull({ trigger: 'schedule' }),
    busy: () => sync.progress() !== undefined,
  }
}

/**
 * The engine's schedule with the poll beside it, for whoever starts and stops the schedule
 * (enable, disable, resume after a restart): both start and stop together.
 */
export function withPoll(
  sync: Pick<SyncEngine, 'startSchedule' | 'stop'>,
  poller: Pick<DirectoryPoller, 'start' | 'stop'>,
): Pick<SyncEngine, 'startSchedule' | 'stop'> {
  return {
    startSchedule() {
      sync.startSchedule()
      poller.start()
    },
    async stop() {
      await poller.stop()
      await sync.stop()
    },
  }
}
