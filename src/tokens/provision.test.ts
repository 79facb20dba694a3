import { describe, expect, it } from 'vitest'
import { type NextcloudUser, provisioner } from './provision.js'

/** A Nextcloud whose answers the test releases one by one. */
function slowNextcloud() {
  const asked: Array<{ uid: string; answer: (user: NextcloudUser | null) => void }> = []
  return {
    asked,
    findUser: (uid: string) =>
      new Promise<NextcloudUser | null>((resolve) => {
        asked.push({ uid, answer: resolve })
      }),
    /** answers the oldest open question */
    answer(user: NextcloudUser | null) {
      const next = asked.find((q) => q.answer !== undefined)
      asked.splice(asked.indexOf(next as never), 1)
      next?.answer(user)
    },
  }
}

function setup() {
  let now = 1_000_000
  const nc = slowNextcloud()
  const p = provisioner({
    engine: { runUser: async () => ({ action: 'unchanged' }) as never },
    findUser: nc.findUser,
    now: () => now,
    ttlMs: 30_000,
  })
  return { p, nc, advance: (ms: number) => (now += ms) }
}

const flush = () => new Promise((resolve) => setImmediate(resolve))

describe('provisioner lookups', () => {
  it('shares one read between concurrent lookups and remembers the answer', async () => {
    const t = setup()
    const a = t.p.lookup('Alice')
    const b = t.p.lookup('alice')
    expect(t.nc.asked).toHaveLength(1)
    t.nc.answer({ id: 'alice', groups: ['staff'] })
    expect(await a).toEqual({ id: 'alice', groups: ['staff'] })
    expect(await b).toEqual({ id: 'alice', groups: ['staff'] })
    expect(await t.p.lookup('ALICE')).toEqual({ id: 'alice', groups: ['staff'] })
    expect(t.nc.asked).toHaveLength(0)
  })

  it('reads an answer again past half its life, answering from memory meanwhile', async () => {
    const t = setup()
    const first = t.p.lookup('alice')
    t.nc.answer({ id: 'alice', groups: ['staff'] })
    await first
    t.advance(10_000)
    await t.p.lookup('alice')
    expect(t.nc.asked).toHaveLength(0)

    t.advance(6_000)
    // Past half its life: answered at once, and read again behind it.
    expect(await t.p.lookup('alice')).toEqual({ id: 'alice', groups: ['staff'] })
    expect(t.nc.asked.map((q) => q.uid)).toEqual(['alice'])
    expect(await t.p.lookup('alice')).toEqual({ id: 'alice', groups: ['staff'] })
    expect(t.nc.asked).toHaveLength(1)
    t.nc.answer({ id: 'alice', groups: ['sales'] })
    await flush()
    expect(await t.p.lookup('alice')).toEqual({ id: 'alice', groups: ['sales'] })

    // The read-again answer lives its own full life.
    t.advance(29_000)
    expect(await t.p.lookup('alice')).toEqual({ id: 'alice', groups: ['sales'] })
  })

  it('never uses an answer past its life: the request waits for Nextcloud then', async () => {
    const t = setup()
    const first = t.p.lookup('alice')
    t.nc.answer({ id: 'alice', groups: ['staff'] })
    await first
    t.advance(30_001)
    let settled = false
    const again = t.p.lookup('alice').finally(() => {
      settled = true
    })
    await flush()
    expect(settled).toBe(false)
    t.nc.answer(null)
    await expect(again).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })

  it('does not remember a read that was under way when the user was forgotten', async () => {
    const t = setup()
    const first = t.p.lookup('alice')
    t.p.forget('alice')
    t.nc.answer({ id: 'alice', groups: ['staff'] })
    // The request that asked still gets its answer …
    expect(await first).toEqual({ id: 'alice', groups: ['staff'] })
    // … but the next one reads again.
    const second = t.p.lookup('alice')
    expect(t.nc.asked).toHaveLength(1)
    t.nc.answer({ id: 'alice', groups: ['sales'] })
    expect(await second).toEqual({ id: 'alice', groups: ['sales'] })
  })
})
