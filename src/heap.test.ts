import { describe, expect, it } from 'vitest'
import { heapCollector } from './heap.js'

/** Makes `count` arrays of 1 kB that live long enough to be promoted, then drops them. */
function leaveGarbage(count: number): number {
  const kept: number[][] = []
  for (let i = 0; i < count; i++) {
    kept.push(Array.from({ length: 128 }, (_, j) => i + j))
  }
  return kept.length
}

describe('heapCollector', () => {
  it('collects once the heap has grown, and not again until it grows once more', () => {
    const collect = heapCollector(4 * 1024 * 1024)
    // the first call has nothing to compare with: it collects and settles
    expect(collect()).toBeDefined()
    expect(collect()).toBeUndefined()

    expect(leaveGarbage(16_000)).toBe(16_000)
    const collection = collect()
    expect(collection).toBeDefined()
    expect(collection?.usedAfter).toBeLessThan((collection?.usedBefore ?? 0) - 8 * 1024 * 1024)
    expect(collect()).toBeUndefined()
  })
})
