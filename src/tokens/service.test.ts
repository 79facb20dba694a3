import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FakeKeycloak, fakeEngine, grantFailure, memoryStore } from '../../test/token-fakes.js'
import { AppError } from '../errors.js'
import type { StoredSigningKey } from '../keycloak/assertion-signing.js'
import { JWT_GRANT_ISSUER } from '../keycloak/jwt-grant.js'
import type { TokenClient } from '../keycloak/token-client.js'
import { createTokenService, type IssueRequest, normalizeScope } from './service.js'
import { SIGNING_KEY_SECRET } from './signing-key-store.js'

const opentalk = { name: 'opentalk-app', clients: ['opentalk'] }

function clock(start = Date.now()) {
  let t = start
  return { now: () => t, advance: (seconds: number) => (t += seconds * 1000) }
}

/** A logger whose lines the test can read. */
function capturedLog() {
  const lines: string[] = []
  const log = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) })
  return { log, text: () => lines.join('') }
}

interface SetupOptions {
  mode?: 'jwt' | 'password'
  nextcloud?: Record<string, { enabled: boolean; groups?: string[] }>
  keycloakUsers?: string[]
  tokenClient?: (keycloak: FakeKeycloak) => TokenClient
  store?: ReturnType<typeof memoryStore>
  keycloak?: FakeKeycloak
  pruneEvery?: number
  keyGraceMs?: number
  /** holds every Nextcloud lookup until the returned promise's gate is opened */
  gatedLookups?: boolean
}

/** A gate a test opens by hand. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { open, opened }
}

async function setup(opts: SetupOptions = {}) {
  const mode = opts.mode ?? 'jwt'
  const keycloak = opts.keycloak ?? new FakeKeycloak()
  keycloak.clientSecrets.set('opentalk', 'opentalk-secret')
  keycloak.clientSecrets.set('files', 'files-secret')
  for (const uid of opts.keycloakUsers ?? ['alice']) {
    keycloak.addUser(uid)
  }
  const nextcloud = new Map(
    Object.entries(opts.nextcloud ?? { alice: { enabled: true }, bob: { enabled: true } }),
  )
  const engine = fakeEngine(keycloak, nextcloud)
  const lookups = gate()
  if (!opts.gatedLookups) {
    lookups.open()
  }
  let lookupsAsked = 0
  const findUser = async (uid: string) => {
    lookupsAsked++
    await lookups.opened
    return engine.findUser(uid)
  }
  const groupMembers = async (gid: string) => {
    lookupsAsked++
    await lookups.opened
    return engine.groupMembers(gid)
  }
  const memory = opts.store ?? memoryStore()
  const c = clock()
  const { log, text } = capturedLog()
  const setPassword = vi.fn(async (uid: string, password: string) => {
    const user = keycloak.users.get(uid)
    if (!user) {
      throw new AppError('NOT_FOUND', `no user ${uid}`)
    }
    user.password = password
  })
  const onKeysChanged = vi.fn(async (jwks: Parameters<FakeKeycloak['trust']>[0]) => {
    keycloak.trust(jwks)
  })
  const service = createTokenService({
    config: { realm: 'test', clients: ['opentalk', 'files'], tokenMode: mode },
    store: memory.store,
    tokenClient: opts.tokenClient ? opts.tokenClient(keycloak) : keycloak,
    engine,
    findUser,
    groupMembers,
    clientSecret: async (id) => keycloak.clientSecrets.get(id) ?? '',
    setPassword,
    onKeysChanged,
    log,
    now: c.now,
    pruneEvery: opts.pruneEvery,
    keyGraceMs: opts.keyGraceMs,
    // Each record is written as it is made, so a test reads it at once (batching has its own tests).
    issuanceLog: { batchSize: 1 },
  })
  if (mode === 'jwt' && keycloak.trusted.size === 0) {
    // what the lead's bootstrap does: the IdP gets publicJwks() before the first grant
    keycloak.trust(await service.publicJwks())
  }
  const issue = (req: Partial<IssueRequest> = {}) =>
    service.issue({ consumer: opentalk, userId: 'alice', clientId: 'opentalk', ...req })
  return {
    keycloak,
    nextcloud,
    engine,
    memory,
    clock: c,
    service,
    issue,
    setPassword,
    onKeysChanged,
    openLookups: lookups.open,
    lookupsAsked: () => lookupsAsked,
    logText: text,
  }
}

async function errorOf(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, 'expected a rejection').toBeInstanceOf(AppError)
  return err as AppError
}

function claimsOf(jwt: string) {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString())
}

/** Records the assertions a token client is sent. */
function recordingAssertions(keycloak: FakeKeycloak, assertions: string[]): TokenClient {
  return {
    issuer: () => keycloak.issuer(),
    jwtGrant: (req) => {
      assertions.push(req.assertion)
      return keycloak.jwtGrant(req)
    },
    passwordGrant: (req) => keycloak.passwordGrant(req),
    refreshGrant: (req) => keycloak.refreshGrant(req),
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('normalizeScope', () => {
  it.each([
    [undefined, 'openid'],
    ['', 'openid'],
    ['openid', 'openid'],
    ['email', 'openid email'],
    ['profile email openid email', 'openid email profile'],
    ['  email   profile ', 'openid email profile'],
  ])('turns %j into %j', (input, expected) => {
    expect(normalizeScope(input)).toBe(expected)
  })

  it.each([
    'offline_access',
    'email "quoted"',
    'back\\slash',
    'x'.repeat(65),
    Array.from({ length: 17 }, (_, i) => `s${i}`).join(' '),
    'tab\there',
    'ünïcode',
  ])('refuses %j as INVALID_INPUT', (input) => {
    expect(() => normalizeScope(input)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }))
  })
})

describe('token service, JWT mode', () => {
  it('mints with an assertion for the uid, aimed at the realm issuer, with a fresh jti', async () => {
    const assertions: string[] = []
    const t = await setup({ tokenClient: (keycloak) => recordingAssertions(keycloak, assertions) })

    const tokens = await t.issue()
    t.service.revokeUser('alice')
    await t.issue()

    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 300, id_token: 'id-alice' })
    expect(assertions).toHaveLength(2)
    const [first, second] = assertions.map(claimsOf)
    expect(first).toMatchObject({ iss: JWT_GRANT_ISSUER, sub: 'alice', aud: t.keycloak.issuerUrl })
    expect(first.exp - first.iat).toBe(60)
    expect(first.jti).not.toBe(second.jti)
  })

  it('serves a repeated request from the cache and records both issuances, not the token', async () => {
    const t = await setup()
    const first = await t.issue()
    t.clock.advance(60)
    const second = await t.issue()

    expect(t.keycloak.calls.jwt).toBe(1)
    expect(second).toEqual({ ...first, expires_in: 240 })
    expect(t.memory.issuances).toEqual([
      { consumer: 'opentalk-app', userId: 'alice', clientId: 'opentalk', outcome: 'issued' },
      { consumer: 'opentalk-app', userId: 'alice', clientId: 'opentalk', outcome: 'cached' },
    ])
  })

  it('shares a cache entry between scope strings that mean the same', async () => {
    const t = await setup()
    await t.issue({ scope: 'email profile' })
    await t.issue({ scope: 'openid profile email email' })
    expect(t.keycloak.calls.jwt).toBe(1)
  })

  it('refuses a client that is not configured, before asking Keycloak', async () => {
    const t = await setup()
    const err = await errorOf(
      t.issue({ clientId: 'admin-cli', consumer: { name: 'x', clients: ['admin-cli'] } }),
    )
    expect(err).toMatchObject({ code: 'FORBIDDEN', message: 'unknown client' })
    expect(t.keycloak.calls.jwt).toBe(0)
    expect(t.memory.issuances).toMatchObject([{ clientId: 'admin-cli', outcome: 'denied' }])
  })

  it('refuses a configured client the consumer may not use', async () => {
    const t = await setup()
    const err = await errorOf(t.issue({ clientId: 'files' }))
    expect(err.code).toBe('FORBIDDEN')
    expect(t.keycloak.calls.jwt).toBe(0)
  })

  it('syncs a user Keycloak does not know yet, once, and retries', async () => {
    const t = await setup()
    const tokens = await t.issue({ userId: 'bob' })
    expect(tokens.access_token).toMatch(/^at-bob-/)
    expect(t.engine.runs).toEqual(['bob'])
    expect(t.keycloak.calls.jwt).toBe(2)
  })

  it('shares one sync between concurrent requests for a new user', async () => {
    const t = await setup()
    t.keycloak.delayMs = 5
    await Promise.all([
      t.issue({ userId: 'bob' }),
      t.issue({ userId: 'bob', clientId: 'files', consumer: { name: 'c', clients: ['files'] } }),
    ])
    expect(t.engine.runs).toEqual(['bob'])
  })

  it('answers NOT_FOUND for a user Nextcloud does not have without a sync run, and remembers it briefly', async () => {
    const t = await setup()
    const err = await errorOf(t.issue({ userId: 'mallory' }))
    expect(err).toMatchObject({ code: 'NOT_FOUND', message: 'user unknown to Nextcloud' })
    await errorOf(t.issue({ userId: 'mallory' }))
    expect(t.engine.lookups).toEqual(['mallory'])
    // Nothing to change in the realm, so nothing to store: no sync run per request.
    expect(t.engine.runs).toEqual([])

    t.clock.advance(31)
    await errorOf(t.issue({ userId: 'mallory' }))
    expect(t.engine.lookups).toEqual(['mallory', 'mallory'])
    expect(t.engine.runs).toEqual([])
    expect(t.memory.issuances.map((i) => i.outcome)).toEqual(['denied', 'denied', 'denied'])
  })

  it('runs the sync for a new user once while answers are remembered, even when it cannot link it', async () => {
    const t = await setup({ nextcloud: { carol: { enabled: true } } })
    t.engine.runUser = async (uid) => {
      t.engine.runs.push(uid)
      return {
        status: 'failed',
        user_id: uid,
        synced: false,
        action: 'unchanged',
        run: {} as never,
      }
    }
    for (let i = 0; i < 3; i++) {
      expect((await errorOf(t.issue({ userId: 'carol' }))).code).toBe('FORBIDDEN')
    }
    expect(t.engine.runs).toEqual(['carol'])
    t.clock.advance(31)
    await errorOf(t.issue({ userId: 'carol' }))
    expect(t.engine.runs).toEqual(['carol', 'carol'])
  })

  it('gives a uid asked in another case the token of the Nextcloud user it names, without a sync run', async () => {
    const t = await setup({
      nextcloud: { MaxMustermann: { enabled: true } },
      keycloakUsers: ['MaxMustermann'],
    })
    const tokens = await t.issue({ userId: 'maxmustermann' })
    expect(tokens.access_token).toMatch(/^at-MaxMustermann-/)
    expect(t.engine.runs).toEqual([])
    expect(t.engine.lookups).toEqual(['maxmustermann'])

    // Another spelling of the same user is the same cache entry; the exact one too.
    expect((await t.issue({ userId: 'MAXMUSTERMANN' })).access_token).toBe(tokens.access_token)
    expect((await t.issue({ userId: 'MaxMustermann' })).access_token).toBe(tokens.access_token)
    expect(t.keycloak.grantCount('MaxMustermann', 'opentalk')).toBe(1)

    // The sync revokes by Nextcloud's spelling; that drops what any spelling got.
    t.service.revokeUser('MaxMustermann')
    const again = await t.issue({ userId: 'maxmustermann' })
    expect(again.access_token).not.toBe(tokens.access_token)
    expect(t.keycloak.grantCount('MaxMustermann', 'opentalk')).toBe(2)
  })

  it('syncs the Nextcloud spelling of a uid asked in another case that Keycloak lacks', async () => {
    const t = await setup({ nextcloud: { MaxMustermann: { enabled: true } }, keycloakUsers: [] })
    const tokens = await t.issue({ userId: 'maxMUSTERmann' })
    expect(tokens.access_token).toMatch(/^at-MaxMustermann-/)
    expect(t.engine.runs).toEqual(['MaxMustermann'])
    expect((await errorOf(t.issue({ userId: 'maxmustermann2' }))).code).toBe('NOT_FOUND')
  })

  it('answers NOT_FOUND for a user deleted from Nextcloud that the sync disabled, FORBIDDEN for one disabled there', async () => {
    const t = await setup({
      nextcloud: { bob: { enabled: false } },
      keycloakUsers: ['alice', 'bob'],
    })
    // What the sync leaves behind with SYNC_DELETE_POLICY=disable: alice is gone from Nextcloud.
    t.keycloak.users.get('alice')!.enabled = false
    t.keycloak.users.get('bob')!.enabled = false
    const gone = await errorOf(t.issue())
    expect(gone).toMatchObject({ code: 'NOT_FOUND', message: 'user unknown to Nextcloud' })
    const disabled = await errorOf(t.issue({ userId: 'bob' }))
    expect(disabled).toMatchObject({ code: 'FORBIDDEN', message: 'user "bob" is disabled' })
    expect(t.engine.runs).toEqual([])
  })

  it('answers NOT_FOUND and drops cached tokens when the user left Nextcloud', async () => {
    const t = await setup()
    await t.issue()
    t.nextcloud.delete('alice')
    t.keycloak.users.get('alice')!.linked = false
    t.service.revokeUser('alice')
    expect((await errorOf(t.issue())).code).toBe('NOT_FOUND')
  })

  it('refuses a disabled user with FORBIDDEN without syncing', async () => {
    const t = await setup()
    t.keycloak.users.get('alice')!.enabled = false
    const err = await errorOf(t.issue())
    expect(err).toMatchObject({ code: 'FORBIDDEN', message: 'user "alice" is disabled' })
    expect(t.engine.runs).toEqual([])
  })

  it('answers NOT_FOUND at once for a user deleted from Nextcloud right after its first token, once the sync disabled it', async () => {
    const t = await setup({ nextcloud: { 'Gone.User': { enabled: true } }, keycloakUsers: [] })
    await t.issue({ userId: 'gone.user' })
    expect(t.engine.runs).toEqual(['Gone.User'])
    // Deleted from Nextcloud within the time answers are remembered; the sync disables it.
    t.nextcloud.delete('Gone.User')
    t.keycloak.users.get('Gone.User')!.enabled = false
    t.service.revokeUser('Gone.User')
    for (const userId of ['gone.user', 'Gone.User']) {
      const err = await errorOf(t.issue({ userId }))
      expect(err, userId).toMatchObject({ code: 'NOT_FOUND', message: 'user unknown to Nextcloud' })
    }
  })

  it('refuses with FORBIDDEN when the sync ran but the user is still not linked', async () => {
    const t = await setup({ nextcloud: { carol: { enabled: true } } })
    const engine = t.engine
    engine.runUser = async (uid) => ({
      status: 'failed',
      user_id: uid,
      synced: false,
      action: 'unchanged',
      run: {} as never,
    })
    t.keycloak.users.set('carol', { enabled: true, linked: false })
    const err = await errorOf(t.issue({ userId: 'carol' }))
    expect(err.code).toBe('FORBIDDEN')
    expect(err.message).toContain('could not provision')
  })

  it('answers KEYCLOAK_UNAVAILABLE when Keycloak is down and caches nothing', async () => {
    const t = await setup()
    t.keycloak.down = true
    expect((await errorOf(t.issue())).code).toBe('KEYCLOAK_UNAVAILABLE')
    t.keycloak.down = false
    await t.issue()
    expect(t.memory.issuances.map((i) => i.outcome)).toEqual(['failed', 'issued'])
  })

  it('turns a scope Keycloak refuses into INVALID_INPUT', async () => {
    const t = await setup({
      tokenClient: (keycloak) => ({
        ...recordingAssertions(keycloak, []),
        jwtGrant: async () => {
          throw grantFailure('invalid_scope', 'Invalid scopes: nope')
        },
      }),
    })
    expect((await errorOf(t.issue({ scope: 'nope' }))).code).toBe('INVALID_INPUT')
  })

  it('makes exactly one grant per user and client for 200 concurrent requests', async () => {
    const users = Array.from({ length: 100 }, (_, i) => `user${i}`)
    const t = await setup({ keycloakUsers: users })
    t.keycloak.delayMs = 2
    const requests = [...users, ...users].sort(() => Math.random() - 0.5)
    const results = await Promise.all(requests.map((userId) => t.issue({ userId })))

    expect(results.every((r, i) => r.access_token.startsWith(`at-${requests[i]}-`))).toBe(true)
    expect(t.keycloak.calls.jwt).toBe(100)
    expect(users.every((u) => t.keycloak.grantCount(u, 'opentalk') === 1)).toBe(true)
  })

  it('does not cache a token minted while its user was being revoked', async () => {
    const t = await setup()
    t.keycloak.delayMs = 20
    const inFlight = t.issue()
    await new Promise((resolve) => setTimeout(resolve, 5))
    t.service.revokeUser('alice')
    await inFlight
    await t.issue()
    expect(t.keycloak.calls.jwt).toBe(2)
  })

  it('keeps the signing key in the store, so a restart signs with the same key', async () => {
    const t = await setup()
    await t.issue()
    const stored = JSON.parse(t.memory.secrets.get(SIGNING_KEY_SECRET) ?? '{}') as StoredSigningKey
    const jwks = await t.service.publicJwks()
    expect(stored.kid).toBe(jwks.keys[0]?.kid)

    const restarted = await setup({ store: t.memory, keycloak: t.keycloak, keycloakUsers: [] })
    expect(await restarted.service.publicJwks()).toEqual(jwks)
    t.service.revokeUser('alice')
    await restarted.issue()
    expect(restarted.onKeysChanged).not.toHaveBeenCalled()
  })

  it('rotates: the IdP trusts both keys first, the new key signs, the old one retires', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const t = await setup({ keyGraceMs: 60_000 })
    const oldKid = (await t.service.publicJwks()).keys[0]?.kid

    const { kid, previousKid } = await t.service.rotateSigningKey()
    expect(previousKid).toBe(oldKid)
    expect(t.onKeysChanged).toHaveBeenCalledTimes(1)
    expect(t.onKeysChanged.mock.calls[0]?.[0].keys.map((k) => k.kid)).toEqual([kid, oldKid])
    expect((await t.service.publicJwks()).keys.map((k) => k.kid)).toEqual([kid, oldKid])

    await t.issue()
    t.clock.advance(61)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(t.onKeysChanged).toHaveBeenCalledTimes(2)
    expect(t.onKeysChanged.mock.calls[1]?.[0].keys.map((k) => k.kid)).toEqual([kid])
    t.service.revokeUser('alice')
    await t.issue()
    await t.service.stop()
  })

  it('keeps the old key when the IdP cannot be told about the new one', async () => {
    const t = await setup()
    const before = await t.service.publicJwks()
    t.onKeysChanged.mockRejectedValueOnce(new AppError('KEYCLOAK_UNAVAILABLE', 'down'))
    expect((await errorOf(t.service.rotateSigningKey())).code).toBe('KEYCLOAK_UNAVAILABLE')
    expect(await t.service.publicJwks()).toEqual(before)
    await t.issue()
  })

  it('picks up a key another replica rotated once the IdP drops the old one', async () => {
    const a = await setup()
    const b = await setup({ store: a.memory, keycloak: a.keycloak, keycloakUsers: [] })
    await b.issue()
    await a.service.rotateSigningKey()
    a.keycloak.trust({ keys: [(await a.service.publicJwks()).keys[0]!] })
    b.service.revokeUser('alice')

    await b.issue()
    expect(a.keycloak.calls.jwt).toBe(3)
  })

  it('still answers when the issuance log cannot be written', async () => {
    const t = await setup()
    t.memory.store.failWrites = true
    await t.issue()
    await new Promise((resolve) => setImmediate(resolve))
    expect(t.logText()).toContain('tokens.record_failed')
  })

  it('prunes the issuance log every N records', async () => {
    const t = await setup({ pruneEvery: 5 })
    for (let i = 0; i < 10; i++) {
      await t.issue()
    }
    await new Promise((resolve) => setImmediate(resolve))
    expect(t.memory.prunes()).toBe(2)
  })

  it("asks Keycloak while Nextcloud answers a consumer's check, and hands out only what it allows", async () => {
    const t = await setup({
      gatedLookups: true,
      keycloakUsers: ['alice', 'root'],
      nextcloud: {
        alice: { enabled: true, groups: ['staff'] },
        root: { enabled: true, groups: ['admin'] },
      } as Record<string, { enabled: boolean }>,
    })
    const users = { allowAdmins: false }
    const alice = t.issue({ userId: 'alice', users })
    const root = t.issue({ userId: 'root', users })
    const refused = errorOf(root)
    // Both grants go out while Nextcloud has not answered anything.
    await vi.waitFor(() => expect(t.keycloak.calls.jwt).toBe(2), { timeout: 10_000 })
    expect(t.engine.lookups).toEqual([])

    t.openLookups()
    expect((await alice).access_token).toMatch(/^at-alice-/)
    expect(await refused).toMatchObject({ code: 'FORBIDDEN' })
    expect(t.memory.issuances.map((i) => [i.userId, i.outcome]).sort()).toEqual([
      ['alice', 'issued'],
      ['root', 'denied'],
    ])
  })

  describe("a consumer's limits, decided on Nextcloud's member lists", () => {
    type Directory = Record<string, { enabled: boolean; groups?: string[] }>
    const directory = (extra: Directory = {}): Directory => ({
      alice: { enabled: true, groups: ['staff'] },
      bob: { enabled: true, groups: ['sales'] },
      Root: { enabled: true, groups: ['admin', 'staff'] },
      ...extra,
    })
    const limited = (nextcloud: Directory) =>
      setup({ keycloakUsers: Object.keys(nextcloud), nextcloud })

    it('gives many users their first tokens for one read of the admin list and none per user', async () => {
      const many: Directory = {}
      for (let i = 0; i < 50; i++) {
        many[`user${i}`] = { enabled: true, groups: ['staff'] }
      }
      const t = await limited(directory(many))
      const users = { allowAdmins: false }
      await Promise.all(Object.keys(many).map((userId) => t.issue({ userId, users })))
      await t.issue({ userId: 'user0', users })
      expect(t.engine.listReads).toEqual(['admin'])
      expect(t.engine.lookups).toEqual([])
      expect(t.keycloak.calls.jwt).toBe(50)
    })

    it('asks Nextcloud nothing for a consumer that may have any user, admins included', async () => {
      const t = await limited(directory())
      expect(
        (await t.issue({ userId: 'Root', users: { allowAdmins: true } })).access_token,
      ).toMatch(/^at-Root-/)
      expect(t.engine.listReads).toEqual([])
      expect(t.engine.lookups).toEqual([])
    })

    it('refuses an admin asked for in another letter case', async () => {
      const t = await limited(directory())
      const err = await errorOf(t.issue({ userId: 'ROOT', users: { allowAdmins: false } }))
      expect(err.code).toBe('FORBIDDEN')
    })

    it('refuses a user made admin once the lists are 30 s old, or at once when the sync changed the user', async () => {
      const t = await limited(directory())
      const users = { allowAdmins: false }
      await t.issue({ userId: 'alice', users })
      await t.issue({ userId: 'bob', users })
      t.nextcloud.set('alice', { enabled: true, groups: ['staff', 'admin'] })
      t.service.revokeUser('alice')
      expect((await errorOf(t.issue({ userId: 'alice', users }))).code).toBe('FORBIDDEN')

      // Promoted behind the sync's back: the list in use is at most 30 s old.
      t.nextcloud.set('bob', { enabled: true, groups: ['sales', 'admin'] })
      t.clock.advance(31)
      expect((await errorOf(t.issue({ userId: 'bob', users }))).code).toBe('FORBIDDEN')
      expect(t.engine.listReads).toEqual(['admin', 'admin', 'admin'])
    })

    it('decides a refusal again on lists read just now: a user added to a listed group gets in', async () => {
      const t = await limited(directory())
      const users = { groups: ['staff'], allowAdmins: false }
      await t.issue({ userId: 'alice', users })
      expect((await errorOf(t.issue({ userId: 'bob', users }))).code).toBe('FORBIDDEN')
      t.nextcloud.set('bob', { enabled: true, groups: ['sales', 'staff'] })
      t.clock.advance(2)
      expect((await t.issue({ userId: 'bob', users })).access_token).toMatch(/^at-bob-/)
      expect((await errorOf(t.issue({ userId: 'Root', users }))).code).toBe('FORBIDDEN')
    })

    it('answers NOT_FOUND for a uid Nextcloud does not know, as before', async () => {
      const t = await limited(directory())
      const err = await errorOf(
        t.issue({ userId: 'mallory', users: { groups: ['staff'], allowAdmins: false } }),
      )
      expect(err.code).toBe('NOT_FOUND')
      expect(t.engine.lookups).toEqual(['mallory'])
    })
  })

  it('never logs a token, a secret or an assertion', async () => {
    const assertions: string[] = []
    const t = await setup({ tokenClient: (keycloak) => recordingAssertions(keycloak, assertions) })
    const tokens = await t.issue()
    await errorOf(t.issue({ userId: 'mallory' }))
    t.keycloak.users.get('alice')!.enabled = false
    t.service.revokeUser('alice')
    await errorOf(t.issue())
    await t.service.rotateSigningKey()
    await t.service.stop()

    const logged = t.logText()
    expect(logged).toContain('token.refused')
    for (const secret of [tokens.access_token, tokens.id_token, 'opentalk-secret', ...assertions]) {
      expect(logged).not.toContain(secret)
    }
    const stored = JSON.parse(t.memory.secrets.get(SIGNING_KEY_SECRET) ?? '{}') as StoredSigningKey
    expect(logged).not.toContain(stored.privateJwk.d)
  })
})

describe('token service, password mode', () => {
  async function passwordSetup(opts: SetupOptions = {}) {
    return setup({ mode: 'password', ...opts })
  }

  it('sets a random password once, stores it, and logs in with it', async () => {
    const t = await passwordSetup()
    const tokens = await t.issue()
    expect(tokens.refresh_token).not.toBe('')
    expect(t.setPassword).toHaveBeenCalledTimes(1)
    const password = t.memory.passwords.get('test alice')
    expect(password).toBe(t.keycloak.users.get('alice')?.password)
    expect(password?.length).toBeGreaterThanOrEqual(40)
  })

  it("checks a consumer's request with Nextcloud before it logs in", async () => {
    const t = await passwordSetup({
      gatedLookups: true,
      nextcloud: { alice: { enabled: true, groups: ['staff'] } } as Record<
        string,
        { enabled: boolean }
      >,
    })
    const alice = t.issue({ users: { allowAdmins: false } })
    // The lookup is asked for, and nothing goes to Keycloak while it has no answer.
    await vi.waitFor(() => expect(t.lookupsAsked()).toBe(1), { timeout: 10_000 })
    await new Promise((resolve) => setImmediate(resolve))
    expect(t.keycloak.calls.password).toBe(0)
    expect(t.setPassword).not.toHaveBeenCalled()
    t.openLookups()
    expect((await alice).refresh_token).not.toBe('')
    expect(t.keycloak.calls.password).toBe(1)
  })

  it('refreshes once the cached token is stale, instead of logging in again', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.clock.advance(290)
    await t.issue()
    expect(t.keycloak.calls).toMatchObject({ password: 1, refresh: 1 })
  })

  it('logs in again with the stored password when the refresh token is refused', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.keycloak.dropSessions()
    t.clock.advance(290)
    await t.issue()
    expect(t.keycloak.calls).toMatchObject({ password: 2, refresh: 1 })
    expect(t.setPassword).toHaveBeenCalledTimes(1)
  })

  it('logs in again once the refresh token has expired, without trying it', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.clock.advance(1801)
    await t.issue()
    expect(t.keycloak.calls).toMatchObject({ password: 2, refresh: 0 })
  })

  it('recovers a stale password once', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.keycloak.users.get('alice')!.password = 'changed-by-an-admin'
    t.keycloak.dropSessions()
    t.service.revokeUser('alice')
    await t.issue()
    expect(t.setPassword).toHaveBeenCalledTimes(2)
    expect(t.logText()).toContain('tokens.stale_password_reset')
  })

  it('gives up with FORBIDDEN when the reset password is refused too', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.service.revokeUser('alice')
    t.setPassword.mockImplementation(async () => undefined)
    t.keycloak.users.get('alice')!.password = 'changed-by-an-admin'
    expect((await errorOf(t.issue())).code).toBe('FORBIDDEN')
    expect(t.setPassword).toHaveBeenCalledTimes(2)
    expect(t.keycloak.calls.password).toBe(3)
  })

  it('logs a user in once at a time, whatever the client', async () => {
    const t = await passwordSetup()
    t.keycloak.delayMs = 10
    let active = 0
    let most = 0
    const grant = t.keycloak.passwordGrant.bind(t.keycloak)
    t.keycloak.passwordGrant = async (req) => {
      most = Math.max(most, ++active)
      try {
        return await grant(req)
      } finally {
        active--
      }
    }
    const files = { name: 'c', clients: ['files'] }
    await Promise.all([
      t.issue(),
      t.issue({ clientId: 'files', consumer: files }),
      t.issue({ scope: 'email' }),
    ])
    expect(most).toBe(1)
    expect(t.setPassword).toHaveBeenCalledTimes(1)
  })

  it('syncs a user Keycloak does not have, then sets its password', async () => {
    const t = await passwordSetup()
    await t.issue({ userId: 'bob' })
    expect(t.engine.runs).toEqual(['bob'])
    expect(t.setPassword).toHaveBeenCalledTimes(2)
  })

  it('keeps logging in after a restart without resetting the password', async () => {
    const t = await passwordSetup()
    await t.issue()
    const restarted = await passwordSetup({
      store: t.memory,
      keycloak: t.keycloak,
      keycloakUsers: [],
    })
    await restarted.issue()
    expect(restarted.setPassword).not.toHaveBeenCalled()
    expect(t.keycloak.calls.password).toBe(2)
  })

  it('refuses a disabled user with FORBIDDEN', async () => {
    const t = await passwordSetup()
    await t.issue()
    t.keycloak.users.get('alice')!.enabled = false
    t.service.revokeUser('alice')
    expect((await errorOf(t.issue())).code).toBe('FORBIDDEN')
  })

  it('never logs a password or a refresh token', async () => {
    const t = await passwordSetup()
    const tokens = await t.issue()
    t.keycloak.users.get('alice')!.password = 'changed-by-an-admin'
    t.keycloak.dropSessions()
    t.service.revokeUser('alice')
    await t.issue()
    const logged = t.logText()
    for (const secret of [
      tokens.refresh_token,
      tokens.access_token,
      t.memory.passwords.get('test alice') ?? 'missing',
      'changed-by-an-admin',
    ]) {
      expect(logged).not.toContain(secret)
    }
  })

  it('has no signing key to rotate', async () => {
    const t = await passwordSetup()
    expect((await errorOf(t.service.rotateSigningKey())).code).toBe('CONFLICT')
  })
})
