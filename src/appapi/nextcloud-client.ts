import { AppError, isAppError } from '../errors.js'
import type { Logger } from '../log.js'
import {
  type GroupDetails,
  parseGroupsPage,
  parseStringList,
  parseUserDetails,
  parseUserIds,
  parseUsersPage,
  type UserDetails,
  type UsersPage,
} from './nextcloud-directory.js'
import { createOcsCall, type OcsRequest } from './nextcloud-ocs.js'

export type { GroupDetails, UserDetails, UsersPage } from './nextcloud-directory.js'

export interface NextcloudClientOptions {
  /** NEXTCLOUD_URL; a trailing `/index.php` or `/` is ignored */
  url: string
  appId: string
  appSecret: string
  appVersion: string
  aaVersion?: string
  fetch?: typeof fetch
  log: Logger
  /** per call; default 30 s */
  timeoutMs?: number
  /** for the init progress report; default 150 s (see `setInitProgress`) */
  statusTimeoutMs?: number
  /** how many users `findAdminUser` impersonates at most; default 100 */
  adminSearchLimit?: number
}

export interface PageRequest {
  offset: number
  limit: number
  search?: string
}

export interface TopMenu {
  /** unique per app; also the page name scripts and styles attach to */
  name: string
  displayName: string
  /** relative to the ExApp root, served through the proxy; a route must cover it */
  icon?: string
  adminRequired: boolean
}

export interface UiResource {
  /** the top-menu entry name */
  name: string
  /** relative to the ExApp root; a `.js`/`.css` suffix is dropped, AppAPI appends it */
  path: string
}

/** Calls from the ExApp into Nextcloud: init progress, AppAPI's state and user list, provisioning, UI. */
export interface NextcloudClient {
  /**
   * Reports init progress 0..100, with `error` to mark init failed (send it with progress < 100:
   * 100 enables the app anyway). Reporting 100 blocks until Nextcloud has called our
   * `/heartbeat` and `/enabled`, so those must be served meanwhile.
   */
  setInitProgress(progress: number, error?: string): Promise<void>
  /** All uids, through AppAPI's own helper, which works without a user. */
  listAppApiUsers(): Promise<string[]>
  currentUser(asUser: string): Promise<UserDetails>
  /**
   * A uid in group `admin` to act as for provisioning calls, which need an admin: `preferred` when it is one,
   * else the first admin among AppAPI's users (`admin` tried first); null when none is found.
   */
  findAdminUser(preferred?: string): Promise<string | null>
  usersDetailsPage(asUser: string, page: PageRequest): Promise<UsersPage>
  groupsDetailsPage(asUser: string, page: PageRequest): Promise<{ groups: GroupDetails[] }>
  /** null when the user does not exist (or `asUser` may not see it) */
  userDetails(asUser: string, uid: string): Promise<UserDetails | null>
  /** one page of uids (`cloud/users`): no details, so a page of thousands is cheap */
  userIdsPage(asUser: string, page: PageRequest): Promise<string[]>
  /** one page of the disabled users, with their details (`cloud/users/disabled`) */
  disabledUsersPage(asUser: string, page: PageRequest): Promise<UsersPage>
  /** the uids in a group (`cloud/groups/{gid}/users`); null when the group does not exist */
  groupMemberIds(asUser: string, gid: string): Promise<string[] | null>
  /** Upserts by name. */
  registerTopMenu(entry: TopMenu): Promise<void>
  /** Also drops the entry's scripts and styles. Resolves false when there was none. */
  unregisterTopMenu(name: string): Promise<boolean>
  registerScript(script: UiResource & { afterAppId?: string }): Promise<void>
  unregisterScript(script: UiResource): Promise<boolean>
  registerStyle(style: UiResource): Promise<void>
  unregisterStyle(style: UiResource): Promise<boolean>
}

const APPAPI = '/ocs/v1.php/apps/app_api'
const CLOUD = '/ocs/v2.php/cloud'
const SYSTEM = ''

/**
 * Builds the client. It keeps no state between calls and never retries; see `createOcsCall`
 * for how failures map to AppErrors.
 *
 * @example
 * const nc = createNextcloudClient({ url, appId, appSecret, appVersion, log })
 * const admin = await nc.findAdminUser(config.nextcloud.adminUser)
 */
export function createNextcloudClient(opts: NextcloudClientOptions): NextcloudClient {
  const log = opts.log.child({ component: 'nextcloud' })
  const call = createOcsCall({
    baseUrl: opts.url.replace(/\/+$/, '').replace(/\/index\.php$/, ''),
    appId: opts.appId,
    appSecret: opts.appSecret,
    appVersion: opts.appVersion,
    aaVersion: opts.aaVersion,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    log,
    timeoutMs: opts.timeoutMs ?? 30_000,
  })
  // Nextcloud runs a heartbeat and `PUT /enabled` (itself allowed 60 s) before answering 100.
  const statusTimeoutMs = opts.statusTimeoutMs ?? 150_000

  const decode = <T>(req: OcsRequest, parse: (data: unknown) => T | null) =>
    call(req).then((data) => {
      const value = parse(data)
      if (value === null) {
        throw new AppError(
          'NEXTCLOUD_UNAVAILABLE',
          `Nextcloud answered ${req.method} ${req.path} with data of an unexpected shape; is this a supported Nextcloud version?`,
        )
      }
      return value
    })
  const userAt = (path: string, asUser: string) =>
    decode({ method: 'GET', path, asUser }, parseUserDetails)
  const optional = <T>(work: Promise<T>) =>
    work.then(
      (value) => value,
      (err: unknown) => {
        if (isAppError(err, 'NOT_FOUND')) {
          return null
        }
        throw err
      },
    )
  const ui = (method: 'POST' | 'DELETE', kind: string, params: Record<string, string | number>) =>
    call({
      method,
      path: `${APPAPI}/api/v1/ui/${kind}`,
      asUser: SYSTEM,
      // AppAPI reads DELETE parameters from the query, as nc_py_api sends them.
      ...(method === 'DELETE' ? { query: params } : { body: params }),
    })
  const removed = (work: Promise<unknown>) =>
    work.then(
      () => true,
      (err: unknown) => {
        if (isAppError(err, 'NOT_FOUND')) {
          return false
        }
        throw err
      },
    )

  const client: NextcloudClient = {
    async setInitProgress(progress, error) {
      if (!Number.isInteger(progress) || progress < 0 || progress > 100) {
        throw new AppError(
          'INVALID_INPUT',
          `init progress must be an integer 0..100, got ${progress}`,
        )
      }
      await call({
        method: 'PUT',
        path: `${APPAPI}/ex-app/status`,
        asUser: SYSTEM,
        body: error ? { progress, error } : { progress },
        timeoutMs: statusTimeoutMs,
      })
    },
    listAppApiUsers: () =>
      decode({ method: 'GET', path: `${APPAPI}/api/v1/users`, asUser: SYSTEM }, parseStringList),
    currentUser: (asUser) => userAt(`${CLOUD}/user`, asUser),
    findAdminUser: (preferred) =>
      findAdminUser(client, log, preferred, opts.adminSearchLimit ?? 100),
    usersDetailsPage: (asUser, page) =>
      decode(
        { method: 'GET', path: `${CLOUD}/users/details`, asUser, query: { ...page } },
        parseUsersPage,
      ),
    groupsDetailsPage: (asUser, page) =>
      decode(
        { method: 'GET', path: `${CLOUD}/groups/details`, asUser, query: { ...page } },
        parseGroupsPage,
      ),
    userDetails: async (asUser, uid) =>
      optional(userAt(`${CLOUD}/users/${pathSegment(uid)}`, asUser)),
    userIdsPage: (asUser, page) =>
      decode({ method: 'GET', path: `${CLOUD}/users`, asUser, query: { ...page } }, parseUserIds),
    disabledUsersPage: (asUser, page) =>
      decode(
        { method: 'GET', path: `${CLOUD}/users/disabled`, asUser, query: { ...page } },
        parseUsersPage,
      ),
    groupMemberIds: async (asUser, gid) =>
      optional(
        decode(
          { method: 'GET', path: `${CLOUD}/groups/${pathSegment(gid)}/users`, asUser },
          parseUserIds,
        ),
      ),
    async registerTopMenu(entry) {
      await ui('POST', 'top-menu', {
        name: entry.name,
        displayName: entry.displayName,
        icon: entry.icon ?? '',
        adminRequired: entry.adminRequired ? 1 : 0,
      })
    },
    unregisterTopMenu: (name) => removed(ui('DELETE', 'top-menu', { name })),
    async registerScript({ afterAppId, ...script }) {
      await ui('POST', 'script', {
        ...resource(script, '.js'),
        ...(afterAppId ? { afterAppId } : {}),
      })
    },
    unregisterScript: (script) => removed(ui('DELETE', 'script', resource(script, '.js'))),
    async registerStyle(style) {
      await ui('POST', 'style', resource(style, '.css'))
    },
    unregisterStyle: (style) => removed(ui('DELETE', 'style', resource(style, '.css'))),
  }
  return client
}

/**
 * A value as one URL path segment: percent-encoded, and refused when it is empty, `.` or `..`,
 * which no encoding keeps in place (URL parsing resolves them, so `users/..` would be another
 * endpoint). Nextcloud allows no such uid or gid.
 */
export function pathSegment(value: string): string {
  if (value === '' || value === '.' || value === '..') {
    throw new AppError('INVALID_INPUT', `"${value}" is not a Nextcloud user or group id`)
  }
  return encodeURIComponent(value)
}

function resource({ name, path }: UiResource, suffix: string) {
  const bare = path.replace(/^\/+/, '')
  return {
    type: 'top_menu',
    name,
    path: bare.endsWith(suffix) ? bare.slice(0, -suffix.length) : bare,
  }
}

async function findAdminUser(
  nc: NextcloudClient,
  log: Logger,
  preferred: string | undefined,
  limit: number,
): Promise<string | null> {
  if (preferred) {
    try {
      if ((await nc.currentUser(preferred)).groups.includes('admin')) {
        return preferred
      }
      log.warn({ user: preferred }, 'nextcloud.preferred_user_not_admin')
    } catch (err) {
      // A missing user answers 401 like a wrong secret; the system call below tells them apart.
      if (!isAppError(err, 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND')) {
        throw err
      }
      log.warn({ user: preferred, errorCode: err.code }, 'nextcloud.preferred_user_unusable')
    }
  }
  const uids = (await nc.listAppApiUsers()).filter((uid) => uid !== preferred)
  // Every impersonation is a request and a line in Nextcloud's impersonation log, so try the
  // usual admin uid first and stop after `limit`.
  const candidates = [
    ...uids.filter((uid) => uid === 'admin'),
    ...uids.filter((uid) => uid !== 'admin'),
  ]
  for (const uid of candidates.slice(0, limit)) {
    try {
      if ((await nc.currentUser(uid)).groups.includes('admin')) {
        return uid
      }
    } catch (err) {
      // Users from AppAPI's own list exist, so a 401 here means the credentials broke: stop.
      if (!isAppError(err, 'FORBIDDEN', 'NOT_FOUND')) {
        throw err
      }
    }
  }
  log.warn(
    { checked: Math.min(limit, candidates.length), users: uids.length },
    'nextcloud.no_admin_found',
  )
  return null
}
