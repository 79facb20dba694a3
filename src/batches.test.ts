import { describe, expect, it } from 'vitest'
import { batchesOf } from './batches.js'

describe('batchesOf', () => {
  it('cuts a sequence into consecutive batches, the last one shorter', () => {
    expect([...batchesOf([1, 2, 3, 4, 5], 2)]).toEqual([[1, 2], [3, 4], [5]])
    expect([...batchesOf([1, 2, 3, 4], 2)]).toEqual([
      [1, 2],
      [3, 4],
    ])
    expect([...batchesOf([], 3)]).toEqual([])
  })

  it('takes from a lazy sequence only as far as the batches asked for', () => {
    let made = 0
    function* counting() {
      for (let i = 0; i < 10; i++) {
        made++
        yield i
      }
    }
    const batches = batchesOf(counting(), 3)
    expect(batches.next().value).toEqual([0, 1, 2])
    expect(made).toBe(3)
  })
})
