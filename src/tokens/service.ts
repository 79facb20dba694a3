import type { Config, Consumer } from '../config/config.js'
import type { Store } from '../db/store.js'
import { AppError, isAppError } from '../errors.js'
import { grantRejection } from '../keycloak/grant-errors.js'
import type { TokenClient, TokenSet } from '../keycloak/token-client.js'
import type { Logger } from '../log.js'
import type { SyncEngine } from '../sync/engine.js'
import { TokenCache, type TokenCacheOptions } from './cache.js'
import { groupMembers, type ReadGroupMembers } from './group-members.js'
import { createIssuanceLog, type IssuanceLogOptions } from './issuance-log.js'
import { createJwtMinter } from './jwt-minter.js'
import { createPasswordMinter } from './password-minter.js'
import { type FindNextcloudUser, provisioner } from './provision.js'
import { type Jwks, SigningKeys } from './signing-key-store.js'

export interface TokenServiceDeps {
  config: Pick<Config['keycloak'], 'realm' | 'clients' | 'tokenMode'>
  store: Store
  tokenClient: TokenClient
  /** asked to sync a user Keycloak does not know, re-reading Nextcloud */
  engine: Pick<SyncEngine, 'runUser'>
  /** Nextcloud's user for a uid, found as Nextcloud finds it (case-insensitively) */
  findUser: FindNextcloudUser
  /** the uids in a Nextcloud group, for the groups a consumer's limits name and `admin` */
  groupMembers: ReadGroupMembers
  /** the secret of a configured client (the one bootstrap gave it) */
  clientSecret(clientId: string): Promise<string>
  /** password mode only: sets a user's Keycloak password; AppError NOT_FOUND for an unknown user */
  setPassword?(userId: string, password: string): Promise<void>
  /** JWT mode: makes the realm's IdP trust exactly these keys (see SigningKeys) */
  onKeysChanged?(jwks: Jwks): Promise<void>
  log: Logger
  /** milliseconds since the epoch; injected by tests */
  now?: () => number
  cache?: Omit<TokenCacheOptions, 'now'>
  /** how long a rotated-out key stays trusted; default 10 minutes */
  keyGraceMs?: number
  /**
   * how long Nextcloud's answer about a uid, and its member list of a group, is used, so repeats
   * cost no read or sync; 30 s
   */
  absentTtlMs?: number
  /** issuances kept; default 10 000, pruned every `pruneEvery` (1000) records */
  keepIssuances?: number
  pruneEvery?: number
  /** how the issuance log batches its writes (see createIssuanceLog) */
  issuanceLog?: Pick<IssuanceLogOptions, 'flushEveryMs' | 'batchSize' | 'maxQueued'>
  /** counts issuance records dropped because the store could not keep up */
  onIssuancesDropped?(count: number): void
  maxConcurrentLogins?: number
}

export interface IssueRequest {
  /** who asks, and which clients it may ask for */
  consumer: Pick<Consumer, 'name' | 'clients'>
  /** the Nextcloud uid the token is for */
  userId: string
  clientId: string
  /** extra scopes, space-separated; `openid` is always included */
  scope?: string
  /**
   * The users a consumer may ask for, when it asks for someone else: members of `groups` (any user
   * when unset), and members of Nextcloud's `admin` group only with `allowAdmins` or `admin` among
   * `groups`. Unset for a Nextcloud user's own token.
   */
  users?: { groups?: readonly string[]; allowAdmins: boolean }
}

export interface TokenService {
  /**
   * Tokens for the Nextcloud user `userId` names (in any letter case, as Nextcloud finds users),
   * from the cache when fresh. Throws AppError: FORBIDDEN (client not
   * configured or not allowed, user disabled), NOT_FOUND (not in Nextcloud), INVALID_INPUT (bad
   * scope), KEYCLOAK_UNAVAILABLE, NEXTCLOUD_UNAVAILABLE.
   */
  issue(req: IssueRequest): Promise<TokenSet>
  /**
   * Forgets the user's cached tokens (and, in password mode, refresh tokens) and what Nextcloud
   * said about the user; the sync calls it for every user it changes.
   */
  revokeUser(userId: string): void
  /** JWT mode: a new signing key; the previous one stays trusted for the grace period. */
  rotateSigningKey(): Promise<{ kid: string; previousKid: string }>
  /** JWT mode: the keys the realm's IdP must trust; creates the key on first use. */
  publicJwks(): Promise<Jwks>
  /** Writes the issuance records still queued and cancels timers (at shutdown). */
  stop(): Promise<void>
}

const MAX_SCOPES = 16
/** RFC 6749 §3.3 scope-token characters, at most 64 of them */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/

/**
 * `openid` plus the requested scopes, deduplicated and sorted, so equal requests share a cache
 * entry. `offline_access` is refused: an offline session per request would pile up in Keycloak's
 * database, and a token that outlives the user's Nextcloud account is not ours to hand out.
 */
export function normalizeScope(scope: string | undefined): string {
  if (scope === undefined || scope === '') {
    return 'openid'
  }
  const requested = scope.split(' ').filter((s) => s !== '')
  if (requested.length > MAX_SCOPES) {
    throw new AppError('INVALID_INPUT', `at most ${MAX_SCOPES} scopes may be asked for`)
  }
  for (const token of requested) {
    if (!SCOPE_TOKEN.test(token)) {
      throw new AppError('INVALID_INPUT', 'scope has a malformed entry')
    }
    if (token === 'offline_access') {
      throw new AppError('INVALID_INPUT', 'offline_access is not available through this API')
    }
  }
  const extra = [...new Set(requested)].filter((s) => s !== 'openid').sort()
  return ['openid', ...extra].join(' ')
}

/** a consumer's refusal is decided again on member lists at most this old */
const REFUSAL_RECHECK_MS = 1000

type UserLimit = NonNullable<IssueRequest['users']>

const mayHaveAdmins = (limit: UserLimit) =>
  limit.allowAdmins || (limit.groups?.includes('admin') ?? false)

/** The groups whose members decide what `limit` allows: its own, and `admin` unless admins may. */
function groupsDeciding(limit: UserLimit): string[] {
  return [...(limit.groups ?? []), ...(mayHaveAdmins(limit) ? [] : ['admin'])]
}

/** Whether `limit` lets a consumer ask for `uid`, given who is in which group. */
function allows(
  limit: UserLimit,
  isMember: (gid: string, uid: string) => boolean,
  uid: string,
): boolean {
  const listed = limit.groups === undefined || limit.groups.some((g) => isMember(g, uid))
  return listed && (mayHaveAdmins(limit) || !isMember('admin', uid))
}

/** Builds the token service; nothing is read or called until the first request. */
export function createTokenService(deps: TokenServiceDeps): TokenService {
  const now = deps.now ?? Date.now
  const log = deps.log.child({ component: 'tokens' })
  const cache = new TokenCache({ ...deps.cache, now })
  const keys = new SigningKeys({
    store: deps.store,
    log,
    graceMs: deps.keyGraceMs,
    onKeysChanged: deps.onKeysChanged,
    now,
  })
  const minter = pickMinter(deps, keys, log, now)
  const nextcloud = provisioner({
    engine: deps.engine,
    findUser: deps.findUser,
    now,
    ttlMs: deps.absentTtlMs,
  })
  const memberships = groupMembers({ read: deps.groupMembers, now, ttlMs: deps.absentTtlMs })
  /**
   * The uid as Nextcloud spells it, per case-folded uid, once a request asked in another case.
   * Nextcloud finds users case-insensitively and allows no two uids that differ only in case
   * (Keycloak's lower-cased usernames could not hold them either), so one folded uid is one user:
   * its tokens share a cache entry and are dropped together.
   */
  const spelled = new Map<string, string>()
  const fold = (uid: string) => uid.toLowerCase()
  const issuances = createIssuanceLog(deps.store, log, {
    ...deps.issuanceLog,
    keep: deps.keepIssuances,
    pruneEvery: deps.pruneEvery,
    onDropped: deps.onIssuancesDropped,
    now,
  })
  const configured = new Set(deps.config.clients)
  /**
   * JWT mode asks Keycloak for a first token while Nextcloud is asked whether the consumer may
   * have it, rather than one after the other: a JWT grant uses a transient session and writes
   * nothing, so a token minted for a refused request costs Keycloak one grant and nothing more
   * (it waits in the cache for a request allowed to see it). Password mode logs in, which creates
   * a session and may set a password: there the check comes first.
   */
  const speculative = deps.config.tokenMode === 'jwt'

  const dropTokens = (userId: string) => {
    cache.dropUser(fold(userId))
    spelled.delete(fold(userId))
    minter.forget(userId)
  }
  // The sync changed the user: its tokens go, and so does what Nextcloud said about it (its
  // groups may have changed too).
  const revokeUser = (userId: string) => {
    dropTokens(userId)
    nextcloud.forget(userId)
    memberships.expire()
  }

  /** Nextcloud's user for `userId`; NOT_FOUND (and its tokens dropped) when it has none. */
  const nextcloudUser = async (userId: string) => {
    try {
      return await nextcloud.lookup(userId)
    } catch (err) {
      if (isAppError(err, 'NOT_FOUND')) {
        dropTokens(userId)
      }
      throw err
    }
  }

  /**
   * FORBIDDEN unless `limit` lets a consumer ask for this user: Nextcloud's member lists of the
   * groups involved decide. A refusal is decided again on lists read just now (a user added to a
   * group since gets in), and a uid Nextcloud does not know is NOT_FOUND.
   */
  const checkAudience = async (userId: string, limit: UserLimit) => {
    const gids = groupsDeciding(limit)
    if (allows(limit, await memberships.memberOf(gids), userId)) {
      return
    }
    if (allows(limit, await memberships.memberOf(gids, REFUSAL_RECHECK_MS), userId)) {
      return
    }
    await nextcloudUser(userId)
    throw new AppError('FORBIDDEN', 'this consumer may not ask for tokens of this user')
  }

  const mint = async (userId: string, clientId: string, scope: string): Promise<TokenSet> => {
    const known = spelled.get(fold(userId)) ?? userId
    try {
      return await minter.mint(known, clientId, scope)
    } catch (err) {
      const rejection = grantRejection(err)
      if (rejection === 'user_disabled') {
        // The sync keeps a user Nextcloud deleted as a disabled one: Nextcloud tells which it is.
        await nextcloudUser(known)
      }
      if (rejection !== 'user_not_found') {
        throw refusal(err, known, clientId)
      }
    }
    // Keycloak has no linked user for this spelling: Nextcloud says whether the user exists and
    // how it spells the uid (maybe Nextcloud created it since the last sync). The request only
    // names it.
    const uid = (await nextcloudUser(userId)).id
    if (uid !== known) {
      if (spelled.size >= 10_000) {
        spelled.clear()
      }
      spelled.set(fold(userId), uid)
      try {
        return await minter.mint(uid, clientId, scope)
      } catch (err) {
        if (grantRejection(err) !== 'user_not_found') {
          throw refusal(err, uid, clientId)
        }
      }
    }
    try {
      await nextcloud.provision(uid)
    } catch (err) {
      if (isAppError(err, 'NOT_FOUND')) {
        dropTokens(uid)
      }
      throw err
    }
    try {
      return await minter.mint(uid, clientId, scope)
    } catch (err) {
      if (grantRejection(err) === 'user_not_found') {
        throw new AppError(
          'FORBIDDEN',
          `user "${uid}" is in Nextcloud but the sync could not provision it in Keycloak`,
          { cause: err },
        )
      }
      throw refusal(err, uid, clientId)
    }
  }

  return {
    async issue(req) {
      const { consumer, userId, clientId } = req
      const started = performance.now()
      try {
        if (!configured.has(clientId)) {
          throw new AppError('FORBIDDEN', 'unknown client')
        }
        if (!consumer.clients.includes(clientId)) {
          throw new AppError('FORBIDDEN', `consumer "${consumer.name}" may not use this client`)
        }
        const scope = normalizeScope(req.scope)
        const key = { userId: fold(userId), clientId, scope }
        const fromCache = () => cache.get(key, () => mint(userId, clientId, scope))
        let answer: ReturnType<typeof fromCache>
        if (!req.users) {
          answer = fromCache()
        } else if (speculative) {
          answer = fromCache()
          // Nothing is handed out before the check passed. When it refuses, the refusal is the
          // answer, and whatever the mint does is left to the cache.
          answer.catch(() => undefined)
          await checkAudience(userId, req.users)
        } else {
          await checkAudience(userId, req.users)
          answer = fromCache()
        }
        const { tokens, source } = await answer
        issuances.record(req, source === 'minted' ? 'issued' : 'cached')
        // Below the level (info in production) the line's fields are not even gathered.
        if (log.isLevelEnabled('debug')) {
          const durationMs = Math.round(performance.now() - started)
          log.debug(
            { consumer: consumer.name, userId, clientId, source, durationMs },
            'token.issued',
          )
        }
        return tokens
      } catch (err) {
        const code = isAppError(err) ? err.code : 'INTERNAL'
        const denied = ['FORBIDDEN', 'NOT_FOUND', 'INVALID_INPUT'].includes(code)
        issuances.record(req, denied ? 'denied' : 'failed')
        log[denied ? 'info' : 'warn'](
          { consumer: consumer.name, userId, clientId, code, rejection: grantRejection(err) },
          'token.refused',
        )
        throw err
      }
    },
    revokeUser,
    async rotateSigningKey() {
      if (deps.config.tokenMode !== 'jwt') {
        throw new AppError('CONFLICT', 'signing keys are used in JWT mode only')
      }
      return keys.rotate()
    },
    publicJwks: () => keys.publicJwks(),
    async stop() {
      keys.stop()
      await issuances.stop()
    },
  }
}

type Minter = {
  mint(userId: string, clientId: string, scope: string): Promise<TokenSet>
  forget(userId: string): void
}

function pickMinter(
  deps: TokenServiceDeps,
  keys: SigningKeys,
  log: Logger,
  now: () => number,
): Minter {
  if (deps.config.tokenMode === 'jwt') {
    const jwt = createJwtMinter({
      keys,
      tokenClient: deps.tokenClient,
      clientSecret: deps.clientSecret,
    })
    return { mint: jwt.mint, forget: () => undefined }
  }
  const setPassword = deps.setPassword
  if (!setPassword) {
    throw new AppError('INTERNAL', 'password mode needs a setPassword dependency')
  }
  return createPasswordMinter({
    realm: deps.config.realm,
    store: deps.store,
    tokenClient: deps.tokenClient,
    clientSecret: deps.clientSecret,
    setPassword,
    log,
    now,
    maxConcurrentLogins: deps.maxConcurrentLogins,
  })
}

/** Keycloak's refusals as callers should read them; everything else passes unchanged. */
function refusal(err: unknown, userId: string, clientId: string): unknown {
  switch (grantRejection(err)) {
    case 'user_disabled':
      return new AppError('FORBIDDEN', `user "${userId}" is disabled`, { cause: err })
    case 'user_not_ready':
      return new AppError(
        'FORBIDDEN',
        `user "${userId}" cannot log in to Keycloak: the account is not fully set up`,
        { cause: err },
      )
    case 'invalid_credentials':
      return new AppError('FORBIDDEN', `Keycloak refused the login of user "${userId}"`, {
        cause: err,
      })
    case 'invalid_scope':
      return new AppError('INVALID_INPUT', `client "${clientId}" does not offer that scope`, {
        cause: err,
      })
    case 'client_rejected':
      // Our own credentials for a configured client: an admin changed the client in Keycloak.
      return new AppError(
        'INTERNAL',
        `Keycloak refused the sidecar's credentials for client "${clientId}"; restarting the app re-applies them`,
        { cause: err },
      )
    default:
      return err
  }
}
