// In-memory doubles for the token service's unit and app tests (src/tokens/*.test.ts): a
// Keycloak token endpoint that checks assertions the way 26.7.3 does, a store, and a sync engine.
import { randomUUID } from 'node:crypto'
import { compactVerify, importJWK } from 'jose'
import type { Issuance, Store } from '../src/db/store.js'
import { AppError } from '../src/errors.js'
import type { PublicJwk } from '../src/keycloak/assertion-signing.js'
import { GRANT_ERROR_CODES, GrantError, type GrantRejection } from '../src/keycloak/grant-errors.js'
import type { ClientCredentials, TokenClient, TokenSet } from '../src/keycloak/token-client.js'
import type { RunSummary, UserSyncResult } from '../src/sync/engine.js'

interface FakeUser {
  enabled: boolean
  /** linked to the JWT grant IdP */
  linked: boolean
  password?: string
}

/** An error shaped like the ones createTokenClient throws. */
export function grantFailure(rejection: GrantRejection, description: string = rejection): AppError {
  const cause = new GrantError(rejection, 400, 'invalid_grant', description)
  return new AppError(GRANT_ERROR_CODES[rejection], `fake Keycloak refused: ${description}`, {
    cause,
  })
}

function decodePart(part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'))
}

/**
 * A realm's token endpoint: verifies ES256 assertions against the trusted keys, refuses a reused
 * `jti` or a wrong `aud`, knows users (enabled, linked, password) and clients (secrets).
 */
export class FakeKeycloak implements TokenClient {
  readonly issuerUrl = 'https://cloud.example.com/keycloak/realms/test'
  readonly users = new Map<string, FakeUser>()
  readonly clientSecrets = new Map<string, string>()
  readonly trusted = new Map<string, PublicJwk>()
  readonly calls = { jwt: 0, password: 0, refresh: 0 }
  /** grants (of any kind) per "uid client" */
  readonly grants = new Map<string, number>()
  private readonly jtis = new Set<string>()
  private readonly refreshTokens = new Map<string, { uid: string; clientId: string }>()
  down = false
  expiresIn = 300
  /** delay before each answer, so concurrent requests overlap */
  delayMs = 0

  addUser(uid: string, user: Partial<FakeUser> = {}): void {
    this.users.set(uid, { enabled: true, linked: true, ...user })
  }

  trust(jwks: { keys: PublicJwk[] }): void {
    this.trusted.clear()
    for (const key of jwks.keys) {
      this.trusted.set(key.kid, key)
    }
  }

  grantCount(uid: string, clientId: string): number {
    return this.grants.get(`${uid} ${clientId}`) ?? 0
  }

  async issuer(): Promise<string> {
    this.checkUp()
    return this.issuerUrl
  }

  async jwtGrant(req: ClientCredentials & { assertion: string }): Promise<TokenSet> {
    this.calls.jwt++
    await this.answerDelay()
    this.checkClient(req)
    const [h, p] = req.assertion.split('.')
    const header = decodePart(h)
    const payload = decodePart(p)
    const jwk = this.trusted.get(String(header.kid))
    if (!jwk || !(await verifiesEs256(jwk, req.assertion))) {
      throw grantFailure('assertion_rejected', 'Invalid signature')
    }
    if (payload.aud !== this.issuerUrl) {
      throw grantFailure('assertion_rejected', 'Invalid token audience')
    }
    const jti = String(payload.jti)
    if (this.jtis.has(jti)) {
      throw grantFailure('assertion_rejected', 'Token reuse detected')
    }
    this.jtis.add(jti)
    const uid = String(payload.sub)
    const user = this.users.get(uid)
    if (!user?.linked) {
      throw grantFailure('user_not_found', 'User not found')
    }
    if (!user.enabled) {
      throw grantFailure('user_disabled', 'User is not enabled')
    }
    return this.tokensFor(uid, req, false)
  }

  async passwordGrant(
    req: ClientCredentials & { username: string; password: string },
  ): Promise<TokenSet> {
    this.calls.password++
    await this.answerDelay()
    this.checkClient(req)
    const user = this.users.get(req.username)
    if (!user || user.password === undefined || user.password !== req.password) {
      throw grantFailure('invalid_credentials', 'Invalid user credentials')
    }
    if (!user.enabled) {
      throw grantFailure('user_disabled', 'Account disabled')
    }
    return this.tokensFor(req.username, req, true)
  }

  async refreshGrant(req: ClientCredentials & { refreshToken: string }): Promise<TokenSet> {
    this.calls.refresh++
    await this.answerDelay()
    this.checkClient(req)
    const session = this.refreshTokens.get(req.refreshToken)
    if (!session || session.clientId !== req.clientId) {
      throw grantFailure('refresh_rejected', 'Invalid refresh token')
    }
    if (!this.users.get(session.uid)?.enabled) {
      throw grantFailure('refresh_rejected', 'User disabled')
    }
    return this.tokensFor(session.uid, req, true)
  }

  /** Ends every session, as a Keycloak restart without persistent sessions would. */
  dropSessions(): void {
    this.refreshTokens.clear()
  }

  private tokensFor(uid: string, req: ClientCredentials, refresh: boolean): TokenSet {
    const key = `${uid} ${req.clientId}`
    this.grants.set(key, (this.grants.get(key) ?? 0) + 1)
    const refreshToken = refresh ? `rt-${randomUUID()}` : ''
    if (refresh) {
      this.refreshTokens.set(refreshToken, { uid, clientId: req.clientId })
    }
    const openid = (req.scope ?? '').split(' ').includes('openid')
    return {
      access_token: `at-${uid}-${req.clientId}-${randomUUID()}`,
      refresh_token: refreshToken,
      id_token: openid ? `id-${uid}` : '',
      expires_in: this.expiresIn,
      token_type: 'Bearer',
      refresh_expires_in: refresh ? 1800 : 0,
    }
  }

  private checkUp(): void {
    if (this.down) {
      const cause = new GrantError('unavailable', undefined, undefined, undefined)
      throw new AppError('KEYCLOAK_UNAVAILABLE', 'fake Keycloak is down', { cause })
    }
  }

  private checkClient(req: ClientCredentials): void {
    this.checkUp()
    if (this.clientSecrets.get(req.clientId) !== req.clientSecret) {
      const cause = new GrantError('client_rejected', 401, 'invalid_client', undefined)
      throw new AppError('INVALID_INPUT', 'fake Keycloak: bad client credentials', { cause })
    }
  }

  private async answerDelay(): Promise<void> {
    if (this.delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    }
  }
}

/** Whether `jws` is a valid ES256 signature by `jwk`. */
async function verifiesEs256(jwk: PublicJwk, jws: string): Promise<boolean> {
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, 'ES256')
  return compactVerify(jws, key, { algorithms: ['ES256'] }).then(
    () => true,
    () => false,
  )
}

/** The parts of Store the token service uses, in memory; `failWrites` breaks the issuance log. */
export function memoryStore() {
  const secrets = new Map<string, string>()
  const passwords = new Map<string, string>()
  const issuances: Issuance[] = []
  /** when each record in `issuances` was made, apart so tests can compare records with toEqual */
  const issuedAt: (Date | undefined)[] = []
  let writes = 0
  let prunes = 0
  const notUsed = () => Promise.reject(new Error('not used by the token service'))
  const store: Store & { failWrites: boolean } = {
    failWrites: false,
    getSecret: async (name) => secrets.get(name),
    putSecret: async (name, value) => {
      secrets.set(name, value)
    },
    getOrCreateSecret: async (name, generate) => {
      const existing = secrets.get(name)
      if (existing !== undefined) {
        return existing
      }
      const value = await generate()
      // another caller may have stored one while we generated: theirs wins, as in the real store
      const winner = secrets.get(name) ?? value
      secrets.set(name, winner)
      return winner
    },
    recordIssuances: async (rows) => {
      if (store.failWrites) {
        throw new Error('database is read-only')
      }
      writes++
      for (const { issuedAt: at, ...row } of rows) {
        issuances.push(row)
        issuedAt.push(at)
      }
    },
    pruneIssuances: async (opts) => {
      prunes++
      const keep = 'keep' in opts ? opts.keep : 0
      const gone = Math.max(0, issuances.length - keep)
      issuances.splice(0, gone)
      issuedAt.splice(0, gone)
      return gone
    },
    countIssuances: async () => issuances.length,
    getUserPassword: async (realm, uid) => passwords.get(`${realm} ${uid}`),
    putUserPassword: async (realm, uid, password) => {
      passwords.set(`${realm} ${uid}`, password)
    },
    deleteUserPassword: async (realm, uid) => passwords.delete(`${realm} ${uid}`),
    startRun: notUsed,
    finishRun: notUsed,
    listRuns: notUsed,
    getRun: notUsed,
    pruneRuns: notUsed,
    interruptRuns: notUsed,
    getSyncState: notUsed,
    readSyncObjects: () => {
      throw new Error('not used by the token service')
    },
    listSyncFingerprints: notUsed,
    saveSyncState: notUsed,
    distrustSyncState: notUsed,
  }
  return {
    store,
    secrets,
    passwords,
    issuances,
    issuedAt,
    prunes: () => prunes,
    /** inserts made (one per batch) */
    writes: () => writes,
  }
}

/**
 * A sync engine over a Nextcloud directory (uid → enabled): `runUser` creates and links the user
 * in the fake Keycloak, or disables it when Nextcloud no longer has it, like the real one;
 * `findUser` is the service's Nextcloud lookup over the same directory, `groupMembers` its member
 * lists.
 */
export function fakeEngine(
  keycloak: FakeKeycloak,
  nextcloud: Map<string, { enabled: boolean; groups?: string[] }>,
) {
  const runs: string[] = []
  const lookups: string[] = []
  const listReads: string[] = []
  return {
    runs,
    lookups,
    /** the groups whose member lists were read, in order */
    listReads,
    /** Nextcloud's member list of a group: null when no user is in it (no such group) */
    async groupMembers(gid: string): Promise<string[] | null> {
      listReads.push(gid)
      const members = [...nextcloud].filter(([, u]) => u.groups?.includes(gid)).map(([id]) => id)
      return members.length > 0 ? members : null
    },
    /** Nextcloud's user lookup: case-insensitive, answering the uid as Nextcloud spells it */
    async findUser(
      uid: string,
    ): Promise<{ id: string; enabled: boolean; groups?: string[] } | null> {
      lookups.push(uid)
      for (const [id, user] of nextcloud) {
        if (id.toLowerCase() === uid.toLowerCase()) {
          return { id, enabled: user.enabled, ...(user.groups ? { groups: user.groups } : {}) }
        }
      }
      return null
    },
    async runUser(uid: string): Promise<UserSyncResult> {
      runs.push(uid)
      const inNextcloud = nextcloud.get(uid)
      const inKeycloak = keycloak.users.get(uid)
      let action: UserSyncResult['action']
      if (inNextcloud) {
        action = inKeycloak ? 'updated' : 'created'
        keycloak.users.set(uid, { ...inKeycloak, enabled: inNextcloud.enabled, linked: true })
      } else if (inKeycloak) {
        action = 'disabled'
        inKeycloak.enabled = false
      } else {
        action = 'absent'
      }
      return { status: 'success', user_id: uid, synced: true, action, run: {} as RunSummary }
    },
  }
}
