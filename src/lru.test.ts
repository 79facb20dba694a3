import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { LRUCache } from 'lru-cache'
import { describe, expect, it } from 'vitest'
import { lruCache } from './lru.js'

setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

/** Heap bytes still in use after making `count` caches with `make` (kept alive until measured). */
function heapOf(count: number, make: () => unknown): number {
  collect()
  const before = process.memoryUsage().heapUsed
  const kept = Array.from({ length: count }, make)
  collect()
  const after = process.memoryUsage().heapUsed
  expect(kept).toHaveLength(count)
  return after - before
}

describe('lruCache', () => {
  it('holds at most `limit` entries and lets the least recently used go first', () => {
    const cache = lruCache<string, { n: number }>(3)
    cache.set('a', { n: 1 })
    cache.set('b', { n: 2 })
    cache.set('c', { n: 3 })
    expect(cache.get('a')).toEqual({ n: 1 })
    cache.set('d', { n: 4 })
    expect(cache.size).toBe(3)
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd'])
    cache.set('d', { n: 5 })
    expect(cache.size).toBe(3)
    expect(cache.get('d')).toEqual({ n: 5 })
  })

  it('passes the other options on (expiry on the given clock)', () => {
    let now = 1_000
    const cache = lruCache<string, { n: number }>(10, {
      ttl: 100,
      ttlResolution: 0,
      perf: { now: () => now },
    })
    cache.set('a', { n: 1 })
    now += 99
    expect(cache.get('a')).toEqual({ n: 1 })
    now += 2
    expect(cache.get('a')).toBeUndefined()
  })

  it('takes no memory for entries it does not hold', () => {
    // lru-cache's `max` alone allocates room for every entry up front (about 300 kB each here)
    const preallocated = heapOf(50, () => new LRUCache({ max: 10_000, ttl: 60_000 }))
    const grown = heapOf(50, () => lruCache(10_000, { ttl: 60_000 }))
    expect(preallocated).toBeGreaterThan(50 * 100_000)
    expect(grown).toBeLessThan(50 * 20_000)
  })
})
