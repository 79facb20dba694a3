import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { memoryStore } from '../../test/token-fakes.js'
import { createIssuanceLog, type IssuanceLogOptions } from './issuance-log.js'

function setup(opts: IssuanceLogOptions = {}) {
  const memory = memoryStore()
  const lines: string[] = []
  const log = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) })
  const dropped: number[] = []
  const issuances = createIssuanceLog(memory.store, log, {
    onDropped: (n) => dropped.push(n),
    ...opts,
  })
  const record = (userId: string) =>
    issuances.record({ consumer: { name: 'talk' }, userId, clientId: 'opentalk' }, 'issued')
  return { memory, issuances, record, dropped, logText: () => lines.join('') }
}

const users = (n: number, prefix = 'u') => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

afterEach(() => {
  vi.useRealTimers()
})

describe('issuance log', () => {
  it('writes nothing while a request records, then one insert for the batch', async () => {
    vi.useFakeTimers()
    const t = setup({ flushEveryMs: 1000 })
    for (const uid of users(3)) {
      t.record(uid)
    }
    expect(t.memory.issuances).toEqual([])
    expect(t.issuances.queued).toBe(3)

    await vi.advanceTimersByTimeAsync(1000)
    expect(t.memory.issuances.map((i) => i.userId)).toEqual(users(3))
    expect(t.memory.writes()).toBe(1)
    expect(t.issuances.queued).toBe(0)
  })

  it("keeps each record's own time, not the time it was written", async () => {
    vi.useFakeTimers()
    let now = Date.parse('2026-01-01T00:00:00Z')
    const t = setup({ flushEveryMs: 1000, now: () => now })
    t.record('a')
    now += 700
    t.record('b')
    await vi.advanceTimersByTimeAsync(1000)
    expect(t.memory.issuedAt.map((d) => d?.toISOString())).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00.700Z',
    ])
  })

  it('writes as soon as a batch is full, in inserts of at most the batch size', async () => {
    vi.useFakeTimers()
    const t = setup({ flushEveryMs: 60_000, batchSize: 4 })
    for (const uid of users(3)) {
      t.record(uid)
    }
    await vi.advanceTimersByTimeAsync(0)
    expect(t.memory.writes()).toBe(0)
    for (const uid of users(7, 'v')) {
      t.record(uid)
    }
    // The full batch starts a write, which goes on until the queue is empty; no timer needed.
    await vi.advanceTimersByTimeAsync(0)
    expect(t.memory.issuances.map((i) => i.userId)).toEqual([...users(3), ...users(7, 'v')])
    expect(t.memory.writes()).toBe(3)
  })

  it('loses nothing on a clean stop', async () => {
    const t = setup({ flushEveryMs: 60_000, batchSize: 100 })
    for (const uid of users(250)) {
      t.record(uid)
    }
    await t.issuances.stop()
    expect(t.memory.issuances.map((i) => i.userId)).toEqual(users(250))
    expect(t.issuances.dropped).toBe(0)
    expect(t.dropped).toEqual([])
  })

  it('keeps the records of a failed write for the next one, in order', async () => {
    vi.useFakeTimers()
    const t = setup({ flushEveryMs: 1000 })
    t.memory.store.failWrites = true
    t.record('a')
    t.record('b')
    await vi.advanceTimersByTimeAsync(1000)
    expect(t.logText()).toContain('tokens.record_failed')
    expect(t.issuances.queued).toBe(2)

    t.memory.store.failWrites = false
    t.record('c')
    await vi.advanceTimersByTimeAsync(1000)
    expect(t.memory.issuances.map((i) => i.userId)).toEqual(['a', 'b', 'c'])
    expect(t.issuances.dropped).toBe(0)
  })

  it('drops the oldest records when the queue is full, and counts them', async () => {
    vi.useFakeTimers()
    const t = setup({ flushEveryMs: 1000, batchSize: 5, maxQueued: 5 })
    t.memory.store.failWrites = true
    for (const uid of users(8)) {
      t.record(uid)
    }
    await vi.advanceTimersByTimeAsync(0)
    expect(t.issuances.queued).toBe(5)
    expect(t.issuances.dropped).toBe(3)
    expect(t.dropped.reduce((a, b) => a + b, 0)).toBe(3)

    t.memory.store.failWrites = false
    await t.issuances.stop()
    expect(t.memory.issuances.map((i) => i.userId)).toEqual(['u3', 'u4', 'u5', 'u6', 'u7'])
  })

  it('counts what a stop cannot write as lost, and says so', async () => {
    const t = setup({ flushEveryMs: 60_000 })
    t.memory.store.failWrites = true
    t.record('a')
    t.record('b')
    await t.issuances.stop()
    expect(t.issuances.dropped).toBe(2)
    expect(t.logText()).toContain('tokens.records_lost')
  })

  it('prunes the log every N records written', async () => {
    vi.useFakeTimers()
    const t = setup({ flushEveryMs: 1000, pruneEvery: 5, keep: 100 })
    for (const round of [1, 2, 3]) {
      for (const uid of users(4, `r${round}-`)) {
        t.record(uid)
      }
      await vi.advanceTimersByTimeAsync(1000)
    }
    // 4, 8 and 12 written: the 5th and the 10th record were each the first past a multiple of 5
    expect(t.memory.issuances).toHaveLength(12)
    expect(t.memory.prunes()).toBe(2)
  })
})
