import { readFileSync } from 'node:fs'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { buildTestApp, TEST_CONSUMER_SECRET, TEST_METRICS_TOKEN } from '../../test/app-builder.js'
import {
  ACCESS,
  type AccessEntry,
  accessMatcher,
  accessTableMarkdown,
  type CallerKind,
  UNROUTED,
} from './access.js'
import { FailureLimiter } from './failure-limiter.js'
import { mountDeclared } from './mount.js'
import type { AppEnv } from './types.js'

type Built = Awaited<ReturnType<typeof buildTestApp>>

const CREDENTIALS = {
  'no credentials': () => ({}),
  'wrong X-API-SECRET': () => ({ 'X-API-SECRET': 'not-the-consumer-secret-0123' }),
  'consumer secret': () => ({ 'X-API-SECRET': TEST_CONSUMER_SECRET, 'X-NC-USER-ID': 'alice' }),
  "another app's AppAPI header": (t: Built) => t.as('admin', t.config.app.secret, 'other-app'),
  'wrong app secret': (t: Built) => t.as('admin', 'not-the-app-secret-0123456'),
  'system (empty user)': (t: Built) => t.as(''),
  'non-admin user': (t: Built) => t.as('alice'),
  admin: (t: Built) => t.as('admin'),
  'metrics token': () => ({ Authorization: `Bearer ${TEST_METRICS_TOKEN}` }),
} satisfies Record<string, (t: Built) => Record<string, string>>
type Credential = keyof typeof CREDENTIALS

/** What the table says a credential gets on a route: through, or refused with 401 or 403. */
function expected(entry: AccessEntry, credential: Credential): 'allowed' | 401 | 403 {
  const takes = (...kinds: CallerKind[]) => kinds.some((k) => entry.callers.includes(k))
  if (takes('anonymous')) {
    return 'allowed'
  }
  switch (credential) {
    case 'no credentials':
    case 'wrong X-API-SECRET':
    case "another app's AppAPI header":
    case 'wrong app secret':
      return 401
    case 'consumer secret':
      return takes('consumer') ? 'allowed' : 403
    case 'system (empty user)':
      return takes('appapi-system', 'nextcloud-anonymous') ? 'allowed' : 403
    case 'non-admin user':
      return takes('nextcloud-user') ? 'allowed' : 403
    case 'admin':
      return takes('nextcloud-user', 'nextcloud-admin') ? 'allowed' : 403
    case 'metrics token':
      return takes('metrics-token') ? 'allowed' : 401
  }
}

/** A request path a table path stands for. */
function sample(path: string, realm: string): string {
  return path
    .replace('{realm}', realm)
    .replace(/:[a-z]+/g, '1')
    .replace(/\/\*$/, '/x')
}

async function walk(t: Built) {
  const matcher = accessMatcher(
    t.config.keycloak.realm,
    new Set(['lifecycle', 'api', 'metrics', 'ui']),
  )
  const answers: {
    entry: string
    method: string
    path: string
    credential: string
    status: number
    want: string
  }[] = []
  for (const entry of ACCESS as readonly AccessEntry[]) {
    for (const declared of entry.paths) {
      const path = sample(declared, t.config.keycloak.realm)
      expect(matcher.entryFor(path).id, `${declared} falls under its own entry`).toBe(entry.id)
      for (const method of entry.methods) {
        for (const [credential, headersOf] of Object.entries(CREDENTIALS)) {
          const withBody = ['POST', 'PUT', 'PATCH'].includes(method)
          const res = await t.app.request(path, {
            method,
            headers: {
              ...headersOf(t),
              ...(withBody ? { 'Content-Type': 'application/json' } : {}),
            },
            ...(withBody ? { body: JSON.stringify({ user_id: 'alice' }) } : {}),
          })
          await res.arrayBuffer()
          answers.push({
            entry: entry.id,
            method,
            path,
            credential,
            status: res.status,
            want: String(expected(entry, credential as Credential)),
          })
        }
      }
    }
  }
  return answers
}

describe('the access table', () => {
  it('answers every route, every method, every credential exactly as the table says', async () => {
    const t = await buildTestApp({ limiter: new FailureLimiter(Number.POSITIVE_INFINITY) })
    const answers = await walk(t)
    const unexpected = answers.filter(({ status, want }) =>
      want === 'allowed'
        ? status === 401 || status === 403 || status === 429
        : String(status) !== want,
    )
    expect(unexpected).toEqual([])
    // Every credential and every entry was tried, and both outcomes happen.
    const requests = ACCESS.reduce((n, e) => n + e.paths.length * e.methods.length, 0)
    expect(answers).toHaveLength(requests * Object.keys(CREDENTIALS).length)
    expect(answers.some((a) => a.want === 'allowed')).toBe(true)
    expect(answers.some((a) => a.want === '401')).toBe(true)
    expect(answers.some((a) => a.want === '403')).toBe(true)
  })

  it('refuses the consumer secret everywhere but the token API', async () => {
    const t = await buildTestApp()
    const headers = CREDENTIALS['consumer secret']()
    for (const [method, path] of [
      ['POST', '/api/sync-all?force=1'],
      ['POST', '/api/sync-user'],
      ['POST', '/api/delete-user'],
      ['GET', '/api/sync-runs'],
      ['GET', '/api/sync-status'],
      ['GET', '/api/ui/overview'],
      ['GET', '/api/ui/vocabulary'],
      ['POST', '/api/ui/credentials'],
      ['POST', '/api/signing-key/rotate'],
      ['GET', '/metrics'],
      ['GET', '/app/'],
    ] as const) {
      const res = await t.app.request(path, { method, headers })
      expect(res.status, `${method} ${path}`).toBe(403)
      expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
    }
    const token = await t.app.request('/api/token?client_id=opentalk', { method: 'POST', headers })
    expect(token.status).toBe(200)
  })

  it('has an entry for every route the app registers', async () => {
    const t = await buildTestApp()
    const realm = t.config.keycloak.realm
    const matcher = accessMatcher(realm, new Set(['lifecycle', 'api', 'metrics', 'ui']))
    const declared = new Set(ACCESS.flatMap((e) => [...e.paths]))
    expect(t.app.routes.length).toBeGreaterThan(15)
    for (const route of t.app.routes) {
      expect(declared.has(route.path), `${route.method} ${route.path} is declared`).toBe(true)
      const entry = matcher.entryFor(sample(route.path, realm))
      expect(entry).not.toBe(UNROUTED)
      if (route.method !== 'ALL') {
        expect(entry.methods as readonly string[]).toContain(route.method)
      }
    }
  })

  it('refuses to mount a route the table does not declare', () => {
    const app = new Hono<AppEnv>()
    const routes = new Hono<AppEnv>().post('/resync', (c) => c.json({}))
    expect(() => mountDeclared(app, '/api', routes, 'api')).toThrow(/no entry in the access table/)
    expect(app.routes).toEqual([])
  })

  it('keeps a route added around the table behind the admin check (fail closed)', async () => {
    const t = await buildTestApp()
    t.app.post('/api/resync', (c) => c.json({ ran: true }))
    t.app.get('/brand-new', (c) => c.json({ ran: true }))
    for (const path of ['/api/resync', '/brand-new']) {
      const method = path === '/api/resync' ? 'POST' : 'GET'
      expect((await t.app.request(path, { method })).status).toBe(401)
      const consumer = await t.app.request(path, {
        method,
        headers: CREDENTIALS['consumer secret'](),
      })
      expect(consumer.status).toBe(403)
      expect((await t.app.request(path, { method, headers: t.as('alice') })).status).toBe(403)
    }
  })

  it('is the table the README shows', () => {
    // Cells compared without the padding the formatter adds to Markdown tables.
    const rows = (md: string) =>
      md
        .split('\n')
        .filter((line) => line.startsWith('|'))
        .map((line) =>
          line
            .split('|')
            .map((cell) => cell.trim().replace(/^-+$/, '-'))
            .join('|'),
        )
    const readme = rows(readFileSync(new URL('../../README.md', import.meta.url), 'utf8')).join(
      '\n',
    )
    expect(readme).toContain(rows(accessTableMarkdown()).join('\n'))
  })
})

describe('what a consumer may mint', () => {
  const consumer = (extra: Record<string, unknown>) => ({
    name: 'talk',
    secret: TEST_CONSUMER_SECRET,
    clients: ['opentalk'],
    ...extra,
  })
  const users = {
    admin: { enabled: true, groups: ['admin'] },
    alice: { enabled: true, groups: ['staff'] },
    bob: { enabled: true, groups: ['sales'] },
    root: { enabled: true, groups: ['admin', 'staff'] },
  }
  const mint = (t: Built, uid: string) =>
    t.app.request('/api/token?client_id=opentalk', {
      method: 'POST',
      headers: { 'X-API-SECRET': TEST_CONSUMER_SECRET, 'X-NC-USER-ID': uid },
    })

  it('by default: any user but a Nextcloud admin', async () => {
    const t = await buildTestApp({ consumers: [consumer({})], users })
    expect((await mint(t, 'alice')).status).toBe(200)
    expect((await mint(t, 'bob')).status).toBe(200)
    const admin = await mint(t, 'admin')
    expect(admin.status).toBe(403)
    expect(await admin.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
    // An admin still gets their own token through Nextcloud.
    const own = await t.app.request('/api/token?client_id=opentalk', {
      method: 'POST',
      headers: t.as('admin'),
    })
    expect(own.status).toBe(200)
  })

  it('with allowAdmins: admins too', async () => {
    const t = await buildTestApp({ consumers: [consumer({ allowAdmins: true })], users })
    expect((await mint(t, 'admin')).status).toBe(200)
  })

  it('with groups: only their members, and admins only when allowed', async () => {
    const t = await buildTestApp({ consumers: [consumer({ groups: ['staff'] })], users })
    expect((await mint(t, 'alice')).status).toBe(200)
    expect((await mint(t, 'bob')).status).toBe(403)
    expect((await mint(t, 'root')).status).toBe(403)
    const admins = await buildTestApp({
      consumers: [consumer({ groups: ['staff', 'admin'] })],
      users,
    })
    expect((await mint(admins, 'root')).status).toBe(200)
    expect((await mint(admins, 'admin')).status).toBe(200)
    expect((await mint(admins, 'bob')).status).toBe(403)
  })
})
