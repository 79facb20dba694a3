import type { GroupDetails, UserDetails } from '../src/appapi/nextcloud-client.js'

/**
 * A user exactly as Nextcloud 31 lists it to an admin (fixtures/nextcloud/users-details.v1.json):
 * a `UserDetails` with every field the server sends.
 */
export type UserRecord = UserDetails & {
  enabled: boolean
  storageLocation: string
  firstLoginTimestamp: number
  lastLoginTimestamp: number
  quota: { free: number; used: number; total: number; relative: number; quota: number | string }
  manager: string
  'display-name': string
  phone: string
  address: string
  website: string
  twitter: string
  fediverse: string
  organisation: string
  role: string
  headline: string
  biography: string
  profile_enabled: string
  pronouns: string
  notify_email: string | null
  backendCapabilities: { setDisplayName: boolean; setPassword: boolean }
}

let users = 0
let groups = 0

/**
 * A real-shaped user; the defaults are those of a fresh Database-backend user in the fixtures.
 * `displayname` and `display-name` follow each other unless both are given.
 */
export function aUser(overrides: Partial<UserRecord> = {}): UserRecord {
  const id = overrides.id ?? `user${++users}`
  const name = overrides.displayname ?? overrides['display-name'] ?? id
  return {
    enabled: true,
    storageLocation: `/var/www/html/data/${id}`,
    id,
    firstLoginTimestamp: 0,
    lastLoginTimestamp: 0,
    lastLogin: 0,
    backend: 'Database',
    subadmin: [],
    quota: { free: -3, used: 0, total: -3, relative: 0, quota: -3 },
    manager: '',
    email: `${id}@example.com`,
    additional_mail: [],
    displayname: name,
    'display-name': name,
    phone: '',
    address: '',
    website: '',
    twitter: '',
    fediverse: '',
    organisation: '',
    role: '',
    headline: '',
    biography: '',
    profile_enabled: '1',
    pronouns: '',
    groups: [],
    language: 'en',
    locale: '',
    notify_email: null,
    backendCapabilities: { setDisplayName: true, setPassword: true },
    ...overrides,
  }
}

/** A group as `cloud/groups/details` lists it; the fake recomputes the counts from its members. */
export function aGroup(overrides: Partial<GroupDetails> = {}): GroupDetails {
  const id = overrides.id ?? `group${++groups}`
  return {
    id,
    displayname: id,
    usercount: 0,
    disabled: 0,
    canAdd: true,
    canRemove: true,
    ...overrides,
  }
}

export interface DirectorySpec {
  users: number
  groups: number
  /** distinct groups per user, capped at `groups` */
  membershipsPerUser: number
  seed: number
  /** share of users disabled in Nextcloud, 0..1; default 0 */
  disabledRatio?: number
  /** an extra user in group `admin` (also added) to act as; default `admin`, false for none */
  admin?: string | false
}

export interface Directory {
  users: UserRecord[]
  groups: GroupDetails[]
}

const FIRST = ['Ada', 'Bo', 'Chen', 'Dara', 'Emil', 'Fatma', 'Goran', 'Hana', 'Ivo', 'Jun', 'Kai']
const LAST = ['Adler', 'Berg', 'Costa', 'Dijk', 'Eriksen', 'Fischer', 'Garcia', 'Horvat', 'Ito']

/**
 * A large deterministic directory for load tests: the same spec and seed always give the same
 * users (`u00001`…), groups (`g001`…) and memberships. 10 000 users build in milliseconds.
 */
export function aDirectory(spec: DirectorySpec): Directory {
  const random = mulberry32(spec.seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
  const pad = (n: number, of: number) => String(n).padStart(String(of).length, '0')
  const gids = Array.from({ length: spec.groups }, (_, i) => `g${pad(i + 1, spec.groups)}`)
  const perUser = Math.min(spec.membershipsPerUser, gids.length)

  const list: UserRecord[] = []
  for (let i = 1; i <= spec.users; i++) {
    const id = `u${pad(i, spec.users)}`
    const chosen = new Set<string>()
    while (chosen.size < perUser) {
      chosen.add(pick(gids))
    }
    const displayname = `${pick(FIRST)} ${pick(LAST)} ${i}`
    list.push(
      aUser({
        id,
        displayname,
        enabled: random() >= (spec.disabledRatio ?? 0),
        groups: [...chosen].sort(),
      }),
    )
  }
  const counts = new Map<string, { members: number; disabled: number }>()
  for (const user of list) {
    for (const gid of user.groups) {
      const c = counts.get(gid) ?? { members: 0, disabled: 0 }
      c.members++
      c.disabled += user.enabled ? 0 : 1
      counts.set(gid, c)
    }
  }
  const groupList = gids.map((gid, i) =>
    aGroup({
      id: gid,
      displayname: `Group ${i + 1}`,
      usercount: counts.get(gid)?.members ?? 0,
      disabled: counts.get(gid)?.disabled ?? 0,
    }),
  )
  const admin = spec.admin ?? 'admin'
  if (admin !== false) {
    list.unshift(aUser({ id: admin, email: null, groups: ['admin'] }))
    groupList.unshift(aGroup({ id: 'admin', displayname: 'admin', usercount: 1 }))
  }
  return { users: list, groups: groupList }
}

/** mulberry32: a small seeded PRNG, so a failing seed or a load test replays exactly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
