import { describe, expect, it } from 'vitest'
import { advisoryLockId, createLocalLocks } from './locks.js'

describe('local locks', () => {
  it('tryLock is null while the key is held and free again after release', async () => {
    const locks = createLocalLocks()
    const release = await locks.tryLock('sync:a')
    expect(release).not.toBeNull()
    expect(await locks.tryLock('sync:a')).toBeNull()
    expect(await locks.tryLock('sync:b')).not.toBeNull()
    await release?.()
    await release?.() // a second release must not free a lock someone else took meanwhile
    expect(await locks.tryLock('sync:a')).not.toBeNull()
  })

  it('hands the lock to waiters in arrival order', async () => {
    const locks = createLocalLocks()
    const first = await locks.lock('k')
    const order: number[] = []
    const acquire = async (n: number) => {
      const release = await locks.lock('k')
      order.push(n)
      return release
    }
    const second = acquire(2)
    const third = acquire(3)
    expect(await locks.tryLock('k')).toBeNull()
    await first()
    await (await second)()
    await (await third)()
    expect(order).toEqual([2, 3])
    expect(await locks.tryLock('k')).not.toBeNull()
  })

  it('rejects waiters when closed', async () => {
    const locks = createLocalLocks()
    await locks.lock('k')
    const waiting = locks.lock('k')
    await locks.closeLocks()
    await expect(waiting).rejects.toMatchObject({ code: 'INTERNAL' })
    await expect(locks.lock('other')).rejects.toMatchObject({ code: 'INTERNAL' })
  })
})

describe('advisoryLockId', () => {
  it('is a stable signed 64-bit integer per key', () => {
    const id = advisoryLockId('sync:commonground')
    expect(id).toBe(advisoryLockId('sync:commonground'))
    expect(id).not.toBe(advisoryLockId('sync:other'))
    const n = BigInt(id)
    expect(n >= -(2n ** 63n) && n < 2n ** 63n).toBe(true)
  })
})
