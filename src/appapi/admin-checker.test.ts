import { describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { adminChecker } from './admin-checker.js'
import type { UserDetails } from './nextcloud-client.js'

/** A Nextcloud whose answers a test scripts one call at a time; counts the calls. */
function scripted(...answers: (string[] | AppError)[]) {
  let calls = 0
  return {
    calls: () => calls,
    currentUser: async (uid: string): Promise<UserDetails> => {
      const answer = answers[Math.min(calls, answers.length - 1)]
      calls++
      if (answer instanceof AppError) {
        throw answer
      }
      return { id: uid, groups: answer ?? [] } as unknown as UserDetails
    },
  }
}

/** a clock's start; lru-cache takes a start time of 0 for "no expiry" */
const T0 = 1_000_000

describe('adminChecker', () => {
  it('remembers an answer for the ttl', async () => {
    let now = T0
    const nc = scripted(['admin'], [])
    const isAdmin = adminChecker(nc, 60_000, () => now)
    expect(await isAdmin('root')).toBe(true)
    now = T0 + 60_000
    expect(await isAdmin('root')).toBe(true)
    expect(nc.calls()).toBe(1)
    now = T0 + 60_001
    expect(await isAdmin('root')).toBe(false)
    expect(nc.calls()).toBe(2)
  })

  it('does not remember a failed call: the admin is refused once, then served', async () => {
    const nc = scripted(new AppError('NEXTCLOUD_UNAVAILABLE', 'timed out'), ['admin'])
    const isAdmin = adminChecker(nc, 60_000, () => T0)
    expect(await isAdmin('root')).toBe(false)
    expect(await isAdmin('root')).toBe(true)
    expect(await isAdmin('root')).toBe(true)
    expect(nc.calls()).toBe(2)
  })

  it('remembers "no such user" as an answer', async () => {
    const nc = scripted(new AppError('NOT_FOUND', 'no such user'))
    const isAdmin = adminChecker(nc, 60_000, () => T0)
    expect(await isAdmin('ghost')).toBe(false)
    expect(await isAdmin('ghost')).toBe(false)
    expect(nc.calls()).toBe(1)
  })
})
