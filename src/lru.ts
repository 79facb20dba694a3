import { LRUCache } from 'lru-cache'

/** What may be set on a cache besides its bound. */
export type LruOptions<K extends {}, V extends {}> = Omit<
  LRUCache.Options<K, V, unknown>,
  'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'
>

/**
 * A least-recently-used cache of at most `limit` entries that takes memory as entries arrive.
 * lru-cache's `max` allocates room for all `max` entries when the cache is made: 160 kB of heap
 * for 10 000 entries, 320 kB with expiry, and the app makes a dozen such caches at start, most of
 * which never hold more than a few entries. Counting each entry as 1 against `maxSize` is the
 * same bound (the least recently used entry goes first once `limit` are held) without the
 * up-front allocation, as lru-cache documents.
 */
export function lruCache<K extends {}, V extends {}>(
  limit: number,
  options: LruOptions<K, V> = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: limit, sizeCalculation: () => 1 })
}
