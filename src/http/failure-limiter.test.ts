import { describe, expect, it } from 'vitest'
import { FailureLimiter } from './failure-limiter.js'

describe('FailureLimiter', () => {
  it('blocks a key after max failures until the window from its first failure has passed', () => {
    let now = 1_000_000
    const limiter = new FailureLimiter(3, 60_000, () => now)
    limiter.fail('a')
    now += 20_000
    limiter.fail('a')
    expect(limiter.blockedFor('a')).toBe(0)
    limiter.fail('a')
    expect(limiter.blockedFor('a')).toBe(40)
    expect(limiter.blockedFor('b')).toBe(0)
    now += 39_500
    expect(limiter.blockedFor('a')).toBe(1)
    now += 501
    expect(limiter.blockedFor('a')).toBe(0)
    limiter.fail('a')
    expect(limiter.blockedFor('a'), 'a new window starts from one failure').toBe(0)
  })

  it('forgets the least recently seen keys past 10 000, not a key that keeps failing', () => {
    const limiter = new FailureLimiter(1, 60_000, () => 1_000_000)
    limiter.fail('guesser')
    for (let i = 0; i < 20_000; i++) {
      limiter.fail(`k${i}`)
      if (i % 1000 === 0) {
        expect(limiter.blockedFor('guesser')).toBe(60)
      }
    }
    expect(limiter.blockedFor('guesser')).toBe(60)
    expect(limiter.blockedFor('k0')).toBe(0)
    expect(limiter.blockedFor('k19999')).toBe(60)
  })
})
