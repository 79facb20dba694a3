import { describe, expect, it } from 'vitest'
import { singleFlight } from './single-flight.js'

describe('singleFlight', () => {
  it('gives concurrent callers the one run in flight and starts anew once it settled', async () => {
    let runs = 0
    let release: (value: number) => void = () => undefined
    const once = singleFlight(() => {
      runs++
      return new Promise<number>((resolve) => {
        release = resolve
      })
    })
    const a = once()
    const b = once()
    expect(b).toBe(a)
    release(1)
    expect(await Promise.all([a, b])).toEqual([1, 1])
    const c = once()
    expect(c).not.toBe(a)
    release(2)
    expect(await c).toBe(2)
    expect(runs).toBe(2)
  })

  it('starts a new run after a failed one', async () => {
    let runs = 0
    const once = singleFlight(async () => {
      runs++
      if (runs === 1) {
        throw new Error('first fails')
      }
      return 'second'
    })
    await expect(once()).rejects.toThrow('first fails')
    expect(await once()).toBe('second')
    expect(runs).toBe(2)
  })
})
