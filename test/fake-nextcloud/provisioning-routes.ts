import { type Context, Hono } from 'hono'
import type { UserRecord } from '../builders.js'
import { appApiLogin } from './auth.js'
import type { Directory } from './directory.js'
import type { ExAppRegistry } from './exapps.js'
import {
  type FakeEnv,
  notLoggedIn,
  type OcsVersion,
  ocsFail,
  ocsOk,
  phpAssoc,
  sendJson,
  truncated,
} from './ocs.js'

interface Deps {
  directory: Directory
  registry: ExAppRegistry
}

// Lists only admins and subadmins may read (SecurityMiddleware answers 403 before CSRF).
const SUBADMIN_ONLY = /\/cloud\/(users|users\/details|groups|groups\/details)$/

/**
 * The provisioning API (`/cloud/...`) under one OCS version, answering like Nextcloud 31 in the
 * fixtures: 997 without a user, 403 for non-admins on lists, 412 without `OCS-APIRequest`.
 */
export function provisioningRoutes(v: OcsVersion, { directory, registry }: Deps) {
  const r = new Hono<FakeEnv>()
  r.use('/cloud/*', async (c, next) => {
    const login = appApiLogin((n) => c.req.header(n), c.req.path, registry, directory)
    if (login.kind !== 'ok' || login.user === '') {
      return notLoggedIn(c, v)
    }
    if (SUBADMIN_ONLY.test(c.req.path) && !directory.isAdmin(login.user)) {
      return ocsFail(c, v, 403, 'Logged in account must be at least a sub admin')
    }
    if (c.req.header('ocs-apirequest') !== 'true') {
      return sendJson(c, 412, { message: 'CSRF check failed' })
    }
    c.set('user', login.user)
    c.set('app', login.app)
    await next()
    return undefined
  })

  const viewer = (c: Context<FakeEnv>) => {
    const uid = c.get('user')
    return { uid, admin: directory.isAdmin(uid) }
  }
  const detailsMap = (c: Context<FakeEnv>, users: UserRecord[]) =>
    phpAssoc(truncated(c, users).map((u) => [u.id, viewOf(u, { scopes: false, storage: true })]))

  r.get('/cloud/users', (c) => {
    const { search, limit, offset } = listParams(c)
    return ocsOk(c, v, { users: directory.searchUsers(search, limit, offset).map((u) => u.id) })
  })
  r.get('/cloud/users/details', (c) => {
    const { search, limit, offset } = listParams(c)
    return ocsOk(c, v, { users: detailsMap(c, directory.searchUsers(search, limit, offset)) })
  })
  // Admins get every disabled user with details (the DB order; here by uid), others none.
  r.get('/cloud/users/disabled', (c) => {
    const { search, limit, offset } = listParams(c)
    const disabled = viewer(c).admin
      ? directory.searchUsers(search, undefined, 0).filter((u) => u.enabled === false)
      : []
    const page = disabled.slice(offset, limit === undefined ? undefined : offset + limit)
    return ocsOk(c, v, { users: detailsMap(c, page) })
  })
  r.get('/cloud/user', (c) => {
    const me = viewer(c)
    const user = directory.user(me.uid)
    return user ? ocsOk(c, v, viewOf(user, { scopes: true, storage: me.admin })) : notLoggedIn(c, v)
  })
  r.get('/cloud/users/:uid/groups', (c) => {
    const target = directory.user(c.req.param('uid'))
    const me = viewer(c)
    if (!target) {
      return ocsFail(c, v, 998, '')
    }
    if (!me.admin && me.uid !== target.id) {
      return ocsFail(c, v, 997, '')
    }
    return ocsOk(c, v, { groups: target.groups })
  })
  r.get('/cloud/users/:uid', (c) => {
    const target = directory.findUser(c.req.param('uid'))
    const me = viewer(c)
    if (!target) {
      return ocsFail(c, v, 404, 'User does not exist')
    }
    if (!me.admin && me.uid !== target.id) {
      return ocsFail(c, v, 998, '')
    }
    return ocsOk(c, v, viewOf(target, { scopes: me.uid === target.id, storage: me.admin }))
  })
  r.get('/cloud/groups', (c) => {
    const { search, limit, offset } = listParams(c)
    return ocsOk(c, v, { groups: directory.searchGroups(search, limit, offset).map((g) => g.id) })
  })
  r.get('/cloud/groups/details', (c) => {
    const { search, limit, offset } = listParams(c)
    return ocsOk(c, v, { groups: truncated(c, directory.searchGroups(search, limit, offset)) })
  })
  r.get('/cloud/groups/:gid/users/details', (c) => {
    const members = readableMembers(c, c.req.param('gid'))
    if (members instanceof Response) {
      return members
    }
    const { limit, offset } = listParams(c)
    const users = members
      .sort()
      .slice(offset, limit === undefined ? undefined : offset + limit)
      .flatMap((uid) => directory.user(uid) ?? [])
    return ocsOk(c, v, { users: detailsMap(c, users) })
  })
  const groupUsers = (c: Context<FakeEnv>) => {
    const members = readableMembers(c, c.req.param('gid') ?? '')
    return members instanceof Response ? members : ocsOk(c, v, { users: members })
  }
  r.get('/cloud/groups/:gid/users', groupUsers)
  r.get('/cloud/groups/:gid', groupUsers)

  function readableMembers(c: Context<FakeEnv>, gid: string): string[] | Response {
    const members = directory.members(gid)
    if (!members) {
      return ocsFail(c, v, 404, 'The requested group could not be found')
    }
    const me = viewer(c)
    if (!me.admin && !members.includes(me.uid)) {
      return ocsFail(c, v, 403, '')
    }
    return members
  }
  return r
}

function listParams(c: Context) {
  const int = (name: string) => {
    const raw = c.req.query(name)
    const n = raw === undefined || raw === '' ? Number.NaN : Number.parseInt(raw, 10)
    return Number.isNaN(n) ? undefined : n
  }
  return { search: c.req.query('search') ?? '', limit: int('limit'), offset: int('offset') ?? 0 }
}

// Reading yourself one at a time adds the `*Scope` fields (lists never do); only admins see
// `storageLocation`.
const SCOPES_AFTER: Record<string, [string, unknown][]> = {
  manager: [['avatarScope', 'v2-federated']],
  email: [['emailScope', 'v2-federated']],
  additional_mail: [['additional_mailScope', []]],
  'display-name': [['displaynameScope', 'v2-federated']],
  phone: [['phoneScope', 'v2-local']],
  address: [['addressScope', 'v2-local']],
  website: [['websiteScope', 'v2-local']],
  twitter: [['twitterScope', 'v2-local']],
  fediverse: [['fediverseScope', 'v2-local']],
  organisation: [['organisationScope', 'v2-local']],
  role: [['roleScope', 'v2-local']],
  headline: [['headlineScope', 'v2-local']],
  biography: [['biographyScope', 'v2-local']],
  profile_enabled: [['profile_enabledScope', 'v2-local']],
  pronouns: [['pronounsScope', 'v2-federated']],
}

function viewOf(
  user: UserRecord,
  show: { scopes: boolean; storage: boolean },
): Record<string, unknown> {
  const view: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(user)) {
    if (key === 'storageLocation' && !show.storage) {
      continue
    }
    view[key] = value
    for (const [scope, level] of show.scopes ? (SCOPES_AFTER[key] ?? []) : []) {
      view[scope] = level
    }
  }
  return view
}
