/**
 * Who may call what: the one table every route the app serves is mounted against. A request is
 * matched to the first entry whose path fits; its method must be one the entry lists (else 405)
 * and its caller one of the entry's kinds (else 401 without an acceptable credential, 403 with a
 * valid credential of a kind the entry does not take).
 */

/** The kinds of caller a route may take. */
export const CALLER_KINDS = [
  'anonymous',
  'appapi-system',
  'nextcloud-admin',
  'nextcloud-user',
  'nextcloud-anonymous',
  'consumer',
  'metrics-token',
] as const
export type CallerKind = (typeof CALLER_KINDS)[number]

/** What each kind of caller is, for the README's table. */
export const CALLER_MEANING: Record<CallerKind, string> = {
  anonymous: 'anyone, no credential looked at',
  'appapi-system':
    'valid AppAPI headers with an empty user id (AppAPI itself; the same headers as `nextcloud-anonymous`)',
  'nextcloud-admin': 'valid AppAPI headers naming a member of Nextcloud’s `admin` group',
  'nextcloud-user': 'valid AppAPI headers naming any logged-in Nextcloud user (admins included)',
  'nextcloud-anonymous':
    'valid AppAPI headers with an empty user id, as Nextcloud’s proxy sends for a visitor on a PUBLIC route',
  consumer: 'a consumer’s `X-API-SECRET` (`KEYCLOAK_API_SECRET` or `KEYCLOAK_CONSUMERS`)',
  'metrics-token': '`Authorization: Bearer $METRICS_TOKEN`',
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'

/** Which part of the app serves an entry: lifecycle always, the others when mounted. */
export type Part = 'lifecycle' | 'api' | 'metrics' | 'ui'

export interface AccessEntry {
  id: string
  part: Part
  methods: readonly Method[]
  /** Hono-style paths; `{realm}` stands for the synced realm */
  paths: readonly string[]
  callers: readonly CallerKind[]
  /** failed authentications count toward the failure limiter (429) */
  counted?: boolean
  /**
   * paths with encoded separators or dots, or starting with `//`, are refused (400) before the
   * caller is looked at: Keycloak might decode them into another realm than the one matched here
   */
  plainPaths?: boolean
  what: string
}

const PROXIED: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const ANY_NEXTCLOUD: readonly CallerKind[] = [
  'nextcloud-anonymous',
  'nextcloud-user',
  'nextcloud-admin',
]
const ADMIN: readonly CallerKind[] = ['nextcloud-admin']

/** Ordered: the first entry whose path fits a request decides. */
export const ACCESS = [
  {
    id: 'heartbeat',
    part: 'lifecycle',
    methods: ['GET'],
    paths: ['/heartbeat'],
    callers: ['anonymous'],
    what: 'AppAPI heartbeat',
  },
  {
    id: 'healthz',
    part: 'lifecycle',
    methods: ['GET'],
    paths: ['/healthz'],
    callers: ['anonymous'],
    what: 'container health check',
  },
  {
    id: 'init',
    part: 'lifecycle',
    methods: ['POST'],
    paths: ['/init'],
    callers: ['appapi-system', 'nextcloud-admin'],
    what: 'AppAPI init',
  },
  {
    id: 'enabled',
    part: 'lifecycle',
    methods: ['PUT'],
    paths: ['/enabled'],
    callers: ['appapi-system', 'nextcloud-admin'],
    what: 'AppAPI enable/disable',
  },
  {
    id: 'metrics',
    part: 'metrics',
    methods: ['GET'],
    paths: ['/metrics'],
    callers: ['metrics-token', 'nextcloud-admin'],
    counted: true,
    what: 'Prometheus metrics',
  },
  {
    id: 'openapi',
    part: 'api',
    methods: ['GET'],
    paths: ['/api/openapi.json'],
    callers: ['anonymous'],
    what: 'the API’s OpenAPI document',
  },
  {
    id: 'token',
    part: 'api',
    methods: ['POST'],
    paths: ['/api/token'],
    callers: ['consumer', 'nextcloud-user', 'nextcloud-admin'],
    counted: true,
    what: 'tokens: a consumer’s for its clients and users, a Nextcloud user’s own',
  },
  ...(
    [
      ['sync-all', 'POST', '/api/sync-all', 'full sync (dry run, force, background)'],
      ['sync-user', 'POST', '/api/sync-user', 'sync one user'],
      ['delete-user', 'POST', '/api/delete-user', 'sync one user gone from Nextcloud'],
      ['sync-status', 'GET', '/api/sync-status', 'run in progress, last and next run'],
      ['sync-runs', 'GET', '/api/sync-runs', 'stored runs (names and emails of users)'],
      ['sync-run', 'GET', '/api/sync-runs/:id', 'one run and its changelog'],
      ['ui-overview', 'GET', '/api/ui/overview', 'the status page’s overview'],
      [
        'ui-vocabulary',
        'GET',
        '/api/ui/vocabulary',
        'the status page’s words for the sync’s vocabularies',
      ],
      ['ui-credentials', 'POST', '/api/ui/credentials', 'reveals the consumer secrets'],
      ['signing-key-rotate', 'POST', '/api/signing-key/rotate', 'rotates the token signing key'],
    ] as const
  ).map(
    ([id, method, path, what]): AccessEntry => ({
      id,
      part: 'api',
      methods: [method],
      paths: [path],
      callers: ADMIN,
      counted: true,
      what,
    }),
  ),
  {
    id: 'api-other',
    part: 'api',
    methods: PROXIED,
    paths: ['/api/*'],
    callers: ADMIN,
    counted: true,
    what: 'any other path under /api: 404',
  },
  {
    id: 'oidc-authorize',
    part: 'ui',
    methods: ['GET'],
    paths: ['/oidc/authorize'],
    callers: ['nextcloud-user', 'nextcloud-anonymous'],
    what: 'OpenID provider: sign-in of the Nextcloud user (a visitor is sent to Nextcloud’s login)',
  },
  {
    id: 'oidc-token',
    part: 'ui',
    methods: ['POST'],
    paths: ['/oidc/token'],
    callers: ['anonymous'],
    what: 'OpenID provider: code for tokens, with client authentication (Keycloak, directly)',
  },
  {
    id: 'oidc-keys',
    part: 'ui',
    methods: ['GET'],
    paths: ['/oidc/jwks', '/oidc/.well-known/openid-configuration'],
    callers: ['anonymous'],
    what: 'OpenID provider: signing keys and discovery (Keycloak, directly)',
  },
  {
    id: 'oidc-other',
    part: 'ui',
    methods: PROXIED,
    paths: ['/oidc/*'],
    callers: ['anonymous'],
    what: 'any other path under /oidc: 404',
  },
  {
    id: 'status-page-loader',
    part: 'ui',
    methods: ['GET'],
    paths: ['/app/loader.js', '/app/icon.svg'],
    callers: ANY_NEXTCLOUD,
    what: 'the top menu’s script and icon',
  },
  {
    id: 'status-page',
    part: 'ui',
    methods: ['GET'],
    paths: ['/app/*'],
    callers: ADMIN,
    what: 'the status page',
  },
  {
    id: 'keycloak-public',
    part: 'ui',
    methods: PROXIED,
    paths: ['/realms/{realm}/*', '/resources/*'],
    callers: ANY_NEXTCLOUD,
    plainPaths: true,
    what: 'Keycloak: the synced realm (login, discovery, JWKS, tokens) and its resources',
  },
  {
    id: 'keycloak-admin',
    part: 'ui',
    methods: PROXIED,
    paths: ['/*'],
    callers: ADMIN,
    plainPaths: true,
    what: 'Keycloak: everything else (admin console, master realm)',
  },
] as const satisfies readonly AccessEntry[]

export type RouteId = (typeof ACCESS)[number]['id']

/** What answers a path no served entry fits: any AppAPI caller gets a 404. */
export const UNROUTED: AccessEntry = {
  id: 'unrouted',
  part: 'lifecycle',
  methods: PROXIED,
  paths: ['/*'],
  callers: ['appapi-system', ...ANY_NEXTCLOUD],
  what: 'a path nothing serves: 404',
}

const byId = new Map<string, AccessEntry>(ACCESS.map((e) => [e.id, e]))

export function accessEntry(id: RouteId): AccessEntry {
  return byId.get(id) as AccessEntry
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** A table path as a regular expression over request paths. */
export function pathPattern(path: string, realm: string): RegExp {
  let source = ''
  const rest = path.endsWith('/*') ? path.slice(0, -2) : path
  for (const part of rest.split('/').slice(1)) {
    source +=
      part === '{realm}'
        ? `/${escapeRegExp(realm)}`
        : part.startsWith(':')
          ? '/[^/]+'
          : `/${escapeRegExp(part)}`
  }
  return new RegExp(`^${source}${path.endsWith('/*') ? '(?:/.*)?' : ''}$`)
}

export interface AccessMatcher {
  /** The entry a request path falls under (the first that fits), or UNROUTED. */
  entryFor(path: string): AccessEntry
}

/** Matches request paths against the entries of `served` parts, in the table's order. */
export function accessMatcher(realm: string, served: ReadonlySet<Part>): AccessMatcher {
  const compiled = ACCESS.filter((e) => served.has(e.part)).map((entry) => ({
    entry: entry as AccessEntry,
    patterns: entry.paths.map((p) => pathPattern(p, realm)),
  }))
  return {
    entryFor(path) {
      // Loops rather than find/some: this runs for every request, and allocates nothing here.
      for (const { entry, patterns } of compiled) {
        for (const pattern of patterns) {
          if (pattern.test(path)) {
            return entry
          }
        }
      }
      return UNROUTED
    },
  }
}

/** The table as Markdown, as the README shows it. */
export function accessTableMarkdown(): string {
  const rows = ACCESS.map(
    (e) =>
      `| ${e.paths.map((p) => `\`${p}\``).join(', ')} | ${e.methods.join(', ')} | ${e.callers.map((k) => `\`${k}\``).join(', ')} | ${e.what} |`,
  )
  return ['| path | methods | who may call it | what |', '| --- | --- | --- | --- |', ...rows].join(
    '\n',
  )
}
