import { describe, expect, it } from 'vitest'
import { keyedFlights, singleFlight } from './single-flight.js'

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

describe('keyedFlights', () => {
  function held() {
    const releases: ((value: string) => void)[] = []
    const start = () => new Promise<string>((resolve) => releases.push(resolve))
    return { start, release: (value: string) => releases.shift()?.(value) }
  }

  it('shares one run per key, keeps its result, and runs a key anew once settled', async () => {
    const kept: [string, string][] = []
    const flights = keyedFlights<string, string>((key, value) => kept.push([key, value]))
    const r = held()
    const a = flights.run('a', r.start)
    expect(flights.run('a', r.start)).toBe(a)
    const b = flights.run('b', r.start)
    expect(flights.has('a')).toBe(true)
    r.release('A')
    r.release('B')
    expect(await Promise.all([a, b])).toEqual(['A', 'B'])
    expect(kept).toEqual([
      ['a', 'A'],
      ['b', 'B'],
    ])
    expect(flights.has('a')).toBe(false)
    expect(flights.run('a', r.start)).not.toBe(a)
  })

  it('answers but does not keep a run whose key was forgotten while it ran, and passes failures on', async () => {
    const kept: string[] = []
    const flights = keyedFlights<string, string>((_key, value) => kept.push(value))
    const r = held()
    const before = flights.run('a', r.start)
    flights.forget('a')
    const after = flights.run('a', r.start)
    expect(after).not.toBe(before)
    r.release('old')
    r.release('new')
    expect([await before, await after]).toEqual(['old', 'new'])
    expect(kept).toEqual(['new'])

    const others = flights.run('b', r.start)
    flights.forgetAll()
    r.release('dropped')
    expect(await others).toBe('dropped')
    expect(kept).toEqual(['new'])

    await expect(flights.run('c', () => Promise.reject(new Error('down')))).rejects.toThrow('down')
    expect(flights.has('c')).toBe(false)
  })
})
