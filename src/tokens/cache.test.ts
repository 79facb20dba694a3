import { describe, expect, it } from 'vitest'
import type { TokenSet } from '../keycloak/token-client.js'
import { TokenCache, type TokenKey } from './cache.js'

function aTokenSet(overrides: Partial<TokenSet> = {}): TokenSet {
  return {
    access_token: `at-${Math.random()}`,
    refresh_token: '',
    id_token: 'id',
    expires_in: 300,
    token_type: 'Bearer',
    refresh_expires_in: 0,
    ...overrides,
  }
}

function aKey(overrides: Partial<TokenKey> = {}): TokenKey {
  return { userId: 'alice', clientId: 'opentalk', scope: 'openid', ...overrides }
}

function clock(start = 1_000_000) {
  let t = start
  return { now: () => t, advance: (seconds: number) => (t += seconds * 1000) }
}

/** A mint whose result the test releases by hand. */
function deferredMint() {
  let resolve!: (tokens: TokenSet) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<TokenSet>((res, rej) => {
    resolve = res
    reject = rej
  })
  let calls = 0
  const mint = () => {
    calls++
    return promise
  }
  return { mint, resolve, reject, calls: () => calls }
}

/** Lets deferred work (the cache starts a mint on a microtask) run. */
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('TokenCache', () => {
  it('serves a minted token from the cache with the lifetime that is left', async () => {
    const c = clock()
    const cache = new TokenCache({ now: c.now })
    const set = aTokenSet()
    expect(await cache.get(aKey(), async () => set)).toEqual({ tokens: set, source: 'minted' })

    c.advance(100)
    const again = await cache.get(aKey(), () => Promise.reject(new Error('must not mint')))
    expect(again.source).toBe('cache')
    expect(again.tokens).toEqual({ ...set, expires_in: 200 })
  })

  it('mints again once only the skew is left', async () => {
    const c = clock()
    const cache = new TokenCache({ now: c.now, skewSeconds: 30 })
    let mints = 0
    const mint = async () => {
      mints++
      return aTokenSet()
    }
    await cache.get(aKey(), mint)
    c.advance(269)
    await cache.get(aKey(), mint)
    expect(mints).toBe(1)
    c.advance(1)
    await cache.get(aKey(), mint)
    expect(mints).toBe(2)
  })

  it('caches a token shorter-lived than the skew for half its lifetime, never longer', async () => {
    const c = clock()
    const cache = new TokenCache({ now: c.now, skewSeconds: 30 })
    let mints = 0
    const mint = async () => {
      mints++
      return aTokenSet({ expires_in: 20 })
    }
    await cache.get(aKey(), mint)
    c.advance(9)
    expect((await cache.get(aKey(), mint)).tokens.expires_in).toBe(11)
    c.advance(1)
    await cache.get(aKey(), mint)
    expect(mints).toBe(2)
  })

  it('never caches a token without a lifetime', async () => {
    const cache = new TokenCache()
    await cache.get(aKey(), async () => aTokenSet({ expires_in: 0 }))
    expect(cache.size).toBe(0)
  })

  it('keeps entries apart by user, client and scope', async () => {
    const cache = new TokenCache()
    const keys = [
      aKey(),
      aKey({ userId: 'bob' }),
      aKey({ clientId: 'other' }),
      aKey({ scope: 'openid email' }),
      // would collide with a naive "user:client" join
      aKey({ userId: 'alice:opentalk', clientId: '' }),
    ]
    for (const key of keys) {
      expect((await cache.get(key, async () => aTokenSet())).source).toBe('minted')
    }
    expect(cache.size).toBe(keys.length)
  })

  it('shares one call between concurrent requests for a key', async () => {
    const cache = new TokenCache()
    const d = deferredMint()
    const all = Array.from({ length: 50 }, () => cache.get(aKey(), d.mint))
    const set = aTokenSet()
    d.resolve(set)
    const results = await Promise.all(all)
    expect(d.calls()).toBe(1)
    expect(results.every((r) => r.tokens.access_token === set.access_token)).toBe(true)
    expect(results.filter((r) => r.source === 'minted')).toHaveLength(1)
    expect(results.filter((r) => r.source === 'shared')).toHaveLength(49)
  })

  it('hands a failure to every waiter and caches nothing, so the next request tries again', async () => {
    const cache = new TokenCache()
    const d = deferredMint()
    const all = Array.from({ length: 3 }, () => cache.get(aKey(), d.mint))
    d.reject(new Error('keycloak down'))
    for (const result of await Promise.allSettled(all)) {
      expect(result.status).toBe('rejected')
    }
    expect(cache.size).toBe(0)
    expect((await cache.get(aKey(), async () => aTokenSet())).source).toBe('minted')
  })

  it('turns a mint that throws synchronously into a rejection', async () => {
    const cache = new TokenCache()
    const mint = (): Promise<TokenSet> => {
      throw new Error('sync throw')
    }
    await expect(cache.get(aKey(), mint)).rejects.toThrow('sync throw')
  })

  it('drops every entry of a user and nobody else', async () => {
    const cache = new TokenCache()
    await cache.get(aKey(), async () => aTokenSet())
    await cache.get(aKey({ clientId: 'other' }), async () => aTokenSet())
    await cache.get(aKey({ userId: 'bob' }), async () => aTokenSet())
    cache.dropUser('alice')
    expect(cache.size).toBe(1)
    expect((await cache.get(aKey(), async () => aTokenSet())).source).toBe('minted')
    expect((await cache.get(aKey({ userId: 'bob' }), async () => aTokenSet())).source).toBe('cache')
  })

  it('does not let a fetch in flight when its user is dropped land in the cache', async () => {
    const cache = new TokenCache()
    const d = deferredMint()
    const inFlight = cache.get(aKey(), d.mint)
    cache.dropUser('alice')

    // A request after the drop does not join the revoked call.
    const d2 = deferredMint()
    const after = cache.get(aKey(), d2.mint)
    await tick()
    expect(d2.calls()).toBe(1)

    d.resolve(aTokenSet({ access_token: 'revoked' }))
    expect((await inFlight).tokens.access_token).toBe('revoked')
    d2.resolve(aTokenSet({ access_token: 'fresh' }))
    expect((await after).tokens.access_token).toBe('fresh')

    const next = await cache.get(aKey(), () => Promise.reject(new Error('must not mint')))
    expect(next).toMatchObject({ source: 'cache', tokens: { access_token: 'fresh' } })
  })

  it('evicts the least recently used entry beyond its bound', async () => {
    const cache = new TokenCache({ maxEntries: 2 })
    await cache.get(aKey({ userId: 'a' }), async () => aTokenSet())
    await cache.get(aKey({ userId: 'b' }), async () => aTokenSet())
    await cache.get(aKey({ userId: 'a' }), async () => aTokenSet()) // a is now the newest
    await cache.get(aKey({ userId: 'c' }), async () => aTokenSet())
    expect(cache.size).toBe(2)
    expect((await cache.get(aKey({ userId: 'a' }), async () => aTokenSet())).source).toBe('cache')
    expect((await cache.get(aKey({ userId: 'b' }), async () => aTokenSet())).source).toBe('minted')
  })

  it('stays bounded under many users and forgets dropped users entirely', async () => {
    const cache = new TokenCache({ maxEntries: 100 })
    for (let i = 0; i < 1000; i++) {
      await cache.get(aKey({ userId: `u${i}` }), async () => aTokenSet())
    }
    expect(cache.size).toBe(100)
    for (let i = 0; i < 1000; i++) {
      cache.dropUser(`u${i}`)
    }
    expect(cache.size).toBe(0)
    // biome-ignore lint/complexity/useLiteralKeys: reaching the private index to check it is empty
    expect((cache as unknown as { byUser: Map<string, unknown> })['byUser'].size).toBe(0)
  })
})
