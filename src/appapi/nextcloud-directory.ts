/**
 * A user as the provisioning API describes it (`cloud/users/details`, `cloud/users/{uid}`,
 * `cloud/user`). Known fields are normalised; unknown ones are kept as they came, because
 * profile-field mappings read them by name and newer servers add fields.
 */
export type UserDetails = {
  id: string
  /** absent when the acting user may not see it; `"true"`/`"1"` from old servers become booleans */
  enabled?: boolean
  /** `displayname`, else the older `display-name`, else the uid */
  displayname: string
  email: string | null
  additional_mail: string[]
  /** group ids */
  groups: string[]
  subadmin: string[]
  backend: string
  /** milliseconds since the epoch, 0 = never */
  lastLogin: number
  language: string
  locale: string
  [field: string]: unknown
}

/** A group from `cloud/groups/details`. */
export type GroupDetails = {
  id: string
  displayname: string
  usercount: number
  /** how many members are disabled (not a flag) */
  disabled: number
  canAdd: boolean
  canRemove: boolean
}

/** One page of `cloud/users/details`. */
export interface UsersPage {
  users: UserDetails[]
  /**
   * uids listed without readable details (Nextcloud lists users the caller may not see as
   * `{"id": uid}`) or with a malformed entry. They exist: never treat them as deleted.
   * A page is the last one when `users.length + hidden.length` is below the limit asked for.
   */
  hidden: string[]
}

/**
 * Normalises one user object; null when it is not a readable user. Hand-written rather than a
 * zod schema: it runs for every user of every sync page.
 */
export function parseUserDetails(raw: unknown): UserDetails | null {
  if (!isRecord(raw)) {
    return null
  }
  const id = idOf(raw.id)
  // Required: defaulting groups to [] would read as "left every group".
  const groups = stringList(raw.groups)
  if (id === undefined || groups === undefined) {
    return null
  }
  // The fields as they came (but `enabled`), in their order, added one by one: every user of a
  // page then shares one V8 hidden class. `{ ...rest, id, … }` after a rest destructuring gave
  // each user a hidden class of its own (~0.9 kB more per user: 9 MiB for 10 000 users).
  const user = {} as UserDetails
  for (const key of Object.keys(raw)) {
    if (key !== 'enabled') {
      setField(user, key, raw[key])
    }
  }
  user.id = id
  user.displayname = text(raw.displayname) || text(raw['display-name']) || id
  user.email = text(raw.email) || null
  user.additional_mail = stringList(raw.additional_mail) ?? []
  user.groups = groups
  user.subadmin = stringList(raw.subadmin) ?? []
  user.backend = text(raw.backend) ?? ''
  user.lastLogin = typeof raw.lastLogin === 'number' ? raw.lastLogin : 0
  user.language = text(raw.language) ?? ''
  user.locale = text(raw.locale) ?? ''
  const enabled = flag(raw.enabled)
  if (enabled !== undefined) {
    user.enabled = enabled
  }
  return user
}

/** The fields every UserDetails has, but `enabled` (absent when hidden from the caller). */
const DETAIL_FIELDS = [
  'id',
  'displayname',
  'email',
  'additional_mail',
  'groups',
  'subadmin',
  'backend',
  'lastLogin',
  'language',
  'locale',
] as const satisfies readonly (keyof UserDetails)[]
const ALWAYS_KEPT = new Set<string>([...DETAIL_FIELDS, 'enabled'])

/**
 * `user` with its normalised fields and, of the others, only those named in `fields` (the ones
 * profile mappings read). A user as listed carries some 30 fields; a sync that holds 10 000 of
 * them keeps 19 MiB with every field, about 3 MiB with these.
 */
export function keepFields(user: UserDetails, fields: ReadonlySet<string>): UserDetails {
  const out = {} as Record<string, unknown>
  for (const key of DETAIL_FIELDS) {
    out[key] = user[key]
  }
  if (user.enabled !== undefined) {
    out.enabled = user.enabled
  }
  for (const key of fields) {
    if (!ALWAYS_KEPT.has(key) && Object.hasOwn(user, key)) {
      setField(out, key, user[key])
    }
  }
  return out as UserDetails
}

/**
 * Decodes `ocs.data` of `cloud/users/details` and `cloud/groups/{gid}/users/details`:
 * `{"users": {uid: details}}`, `{"users": []}` when empty, or a JSON array when PHP's keys
 * happened to be 0..n-1.
 */
export function parseUsersPage(data: unknown): UsersPage | null {
  if (!isRecord(data)) {
    return Array.isArray(data) && data.length === 0 ? { users: [], hidden: [] } : null
  }
  const entries = entriesOf(data.users)
  if (entries === null) {
    return null
  }
  const page: UsersPage = { users: [], hidden: [] }
  for (const [key, value] of entries) {
    const user = isIdOnly(value) ? null : parseUserDetails(value)
    if (user) {
      page.users.push(user)
    } else {
      page.hidden.push((isRecord(value) ? idOf(value.id) : undefined) ?? key)
    }
  }
  return page
}

/** Decodes `ocs.data` of `cloud/groups/details`; null when it has another shape. */
export function parseGroupsPage(data: unknown): { groups: GroupDetails[] } | null {
  if (Array.isArray(data) && data.length === 0) {
    return { groups: [] }
  }
  const entries = isRecord(data) ? entriesOf(data.groups) : null
  const groups: GroupDetails[] = []
  for (const [, g] of entries ?? []) {
    const id = isRecord(g) ? idOf(g.id) : undefined
    if (!isRecord(g) || id === undefined) {
      return null
    }
    groups.push({
      id,
      displayname: text(g.displayname) || id,
      usercount: count(g.usercount),
      disabled: count(g.disabled),
      canAdd: g.canAdd === true,
      canRemove: g.canRemove === true,
    })
  }
  return entries ? { groups } : null
}

/** Decodes `ocs.data` of `cloud/users` and `cloud/groups/{gid}/users`: `{"users": [uid, ...]}`. */
export function parseUserIds(data: unknown): string[] | null {
  return isRecord(data) ? (stringList(data.users) ?? null) : null
}

/** Decodes a PHP list of strings (`api/v1/users`, `{"groups": [...]}` values). */
export function parseStringList(data: unknown): string[] | null {
  return stringList(data) ?? null
}

/** An own data property, as a spread makes it (`__proto__` from JSON included). */
function setField(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    })
  } else {
    target[key] = value
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'number') {
    return String(value)
  }
  return typeof value === 'string' && value !== '' ? value : undefined
}

// PHP encodes a list whose keys are not 0..n-1 as an object.
function stringList(value: unknown): string[] | undefined {
  const items = Array.isArray(value) ? value : isRecord(value) ? Object.values(value) : undefined
  if (!items?.every((v) => typeof v === 'string' || typeof v === 'number')) {
    return undefined
  }
  return items.map(String)
}

// Old servers send `enabled` as "true"/"1".
function flag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') {
    return value
  }
  if (typeof value === 'number') {
    return value !== 0
  }
  if (typeof value === 'string') {
    return ['true', '1', 'yes'].includes(value.trim().toLowerCase())
  }
  return undefined
}

// Group counts are `false` when a backend cannot count.
function count(value: unknown): number {
  return typeof value === 'number' ? value : Number(value) || 0
}

function entriesOf(value: unknown): [string, unknown][] | null {
  if (Array.isArray(value)) {
    return value.map((v, i) => [String(i), v])
  }
  return typeof value === 'object' && value !== null ? Object.entries(value) : null
}

function isIdOnly(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).every((k) => k === 'id')
}
