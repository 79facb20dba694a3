import { randomBytes } from 'node:crypto'
import pLimit from 'p-limit'
import type { Store } from '../db/store.js'
import { AppError, isAppError } from '../errors.js'
import { GrantError, grantRejection } from '../keycloak/grant-errors.js'
import type { TokenClient, TokenSet } from '../keycloak/token-client.js'
import type { Logger } from '../log.js'
import { lruCache } from '../lru.js'

export interface PasswordMinterOptions {
  realm: string
  store: Pick<Store, 'getUserPassword' | 'putUserPassword'>
  tokenClient: Pick<TokenClient, 'passwordGrant' | 'refreshGrant'>
  clientSecret(clientId: string): Promise<string>
  /**
   * Sets the user's Keycloak password (admin API, not temporary). Throws AppError NOT_FOUND when
   * Keycloak has no such managed user, so the caller can sync the user and try again.
   */
  setPassword(userId: string, password: string): Promise<void>
  log: Logger
  now: () => number
  /**
   * Logins (setting the password when there is none, then the password grant) run at once at
   * most this many: each hash costs Keycloak ~22 ms of CPU and 7 MiB of heap (Argon2), so a burst
   * of first logins must not queue up inside Keycloak. Refreshes do not wait for a slot.
   */
  maxConcurrentLogins?: number
  /** refresh tokens kept; default 10 000 */
  maxSessions?: number
}

interface Session {
  userId: string
  refreshToken: string
  refreshUntil: number
}

/**
 * Password mode, for an external Keycloak without the JWT grant: each user gets a random password
 * that only the sidecar knows (sealed in the store), set in Keycloak only when the store has none,
 * so the sync never resets it. A login's refresh token is reused until Keycloak refuses it; only
 * then does the user log in again (a login costs a password hash and a new user session).
 */
export function createPasswordMinter(opts: PasswordMinterOptions) {
  /** refresh tokens by request; past `maxSessions` the least recently used goes first */
  const sessions = lruCache<string, Session>(opts.maxSessions ?? 10_000)
  const userQueues = new Map<string, Promise<unknown>>()
  const logins = pLimit(opts.maxConcurrentLogins ?? 4)
  const log = opts.log

  const remember = (id: string, userId: string, tokens: TokenSet, askedAt: number) => {
    sessions.delete(id)
    if (tokens.refresh_token === '' || !(tokens.refresh_expires_in > 0)) {
      return
    }
    sessions.set(id, {
      userId,
      refreshToken: tokens.refresh_token,
      refreshUntil: askedAt + tokens.refresh_expires_in * 1000,
    })
  }

  /** A fresh password, set in Keycloak first, then stored: a stored one is always one we set. */
  const newPassword = async (userId: string): Promise<string> => {
    const password = randomPassword()
    try {
      await opts.setPassword(userId, password)
    } catch (err) {
      if (isAppError(err, 'NOT_FOUND')) {
        const cause = new GrantError('user_not_found', undefined, undefined, 'User not found', {
          cause: err,
        })
        throw new AppError('FORBIDDEN', `Keycloak has no user "${userId}"`, { cause })
      }
      throw err
    }
    await opts.store.putUserPassword(opts.realm, userId, password)
    return password
  }

  // The whole login waits for a slot, not only its grant: setting a password costs Keycloak a
  // hash too, and a burst of first logins would otherwise set them all at once.
  const login = (userId: string, clientId: string, scope: string) =>
    logins(() => loginNow(userId, clientId, scope))

  const loginNow = async (userId: string, clientId: string, scope: string) => {
    const clientSecret = await opts.clientSecret(clientId)
    const grant = (password: string) =>
      opts.tokenClient.passwordGrant({
        clientId,
        clientSecret,
        scope,
        username: userId,
        password,
      })
    const stored = await opts.store.getUserPassword(opts.realm, userId)
    if (stored === undefined) {
      return grant(await newPassword(userId))
    }
    try {
      return await grant(stored)
    } catch (err) {
      if (grantRejection(err) !== 'invalid_credentials') {
        throw err
      }
      // Someone reset the password in Keycloak, or the user was re-created: recover once. Never
      // loop: with brute-force protection on, repeated failures lock the account.
      log.warn({ userId }, 'tokens.stale_password_reset')
      return grant(await newPassword(userId))
    }
  }

  const mintNow = async (userId: string, clientId: string, scope: string): Promise<TokenSet> => {
    const id = JSON.stringify([userId, clientId, scope])
    const askedAt = opts.now()
    const session = sessions.get(id)
    if (session && session.refreshUntil > askedAt) {
      try {
        const tokens = await opts.tokenClient.refreshGrant({
          clientId,
          clientSecret: await opts.clientSecret(clientId),
          scope,
          refreshToken: session.refreshToken,
        })
        remember(id, userId, tokens, askedAt)
        return tokens
      } catch (err) {
        sessions.delete(id)
        if (grantRejection(err) !== 'refresh_rejected') {
          throw err
        }
      }
    }
    const tokens = await login(userId, clientId, scope)
    remember(id, userId, tokens, askedAt)
    return tokens
  }

  return {
    /** Tokens for `userId`; one login (or refresh) per user at a time, whatever the client. */
    mint(userId: string, clientId: string, scope: string): Promise<TokenSet> {
      const previous = userQueues.get(userId) ?? Promise.resolve()
      const run = previous.then(() => mintNow(userId, clientId, scope))
      const tail = run.catch(() => undefined)
      userQueues.set(userId, tail)
      void tail.then(() => {
        if (userQueues.get(userId) === tail) {
          userQueues.delete(userId)
        }
      })
      return run
    },
    /** Drops the user's refresh tokens (the password stays: a re-enabled user logs in with it). */
    forget(userId: string): void {
      for (const [id, session] of [...sessions.entries()]) {
        if (session.userId === userId) {
          sessions.delete(id)
        }
      }
    },
  }
}

export type PasswordMinter = ReturnType<typeof createPasswordMinter>

/**
 * 240 random bits, plus one character of each class, so the password also passes a realm password
 * policy that asks for upper case, lower case, digits or special characters.
 */
function randomPassword(): string {
  return `${randomBytes(30).toString('base64url')}aA1!`
}
