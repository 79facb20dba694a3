import { describe, expect, it } from 'vitest'
import { benchJson, figuresOf } from '../bench/figures.js'
import { combined, type LoadResult } from '../bench/lib.js'

const aLoad = (rps: number): LoadResult => ({
  requests: 100,
  failed: 0,
  ms: 1000,
  rps,
  p50: 2,
  p99: 9,
  latencies: [1, 2, 9],
})

describe('the bench JSON', () => {
  it('puts every figure under its stable name', () => {
    const cold = { ms: 1200, writes: 10 }
    const json = benchJson({
      startedAt: '2026-12-02T12:00:00.000Z',
      scale: 0.2,
      sizes: { users: 2000 },
      loadAverage: { start: '1.00, 1.00, 1.00', end: '1.00, 1.00, 1.00' },
      rows: [{ workload: 'w', measured: 'm', baseline: 'b', ratio: 'r', notes: '' }],
      measured: {
        sync: {
          cold,
          noop: { ms: 30 },
          delta: { ms: 50 },
          partialImport: { ms: 1000 },
          changed: 20,
        },
        tokens: {
          tokenWarm: aLoad(4000),
          tokenCold: aLoad(120),
          bareJwt: aLoad(130),
          httpFloor: aLoad(9000),
          barePassword: aLoad(40),
        },
        memory: { sidecarPeakRss: 140 * 1024 * 1024, benchRssPeak: 1 },
        startup: { exappTokenMs: 20_000 },
      },
    })
    const parsed = JSON.parse(JSON.stringify(json))

    expect(parsed.figures.sync.cold.ms).toBe(1200)
    expect(parsed.figures.sync.cold.writes).toBe(10)
    expect(parsed.figures.sync.noop.ms).toBe(30)
    expect(parsed.figures.sync.changed).toBe(20)
    for (const name of ['tokenWarm', 'tokenCold', 'bareJwt', 'httpFloor']) {
      expect(Object.keys(parsed.figures.tokens[name]).sort(), name).toEqual(
        ['failed', 'ms', 'p50', 'p99', 'requests', 'rps'].sort(),
      )
    }
    expect(parsed.figures.tokens.httpFloor.rps).toBe(9000)
    expect(parsed.figures.tokens.tokenWarm.p99).toBe(9)
    expect(parsed.figures.memory).toEqual({ sidecarPeakRss: 146_800_640, benchRssPeak: 1 })
    expect(parsed.figures.startup).toEqual({ exappTokenMs: 20_000 })
    expect(Object.keys(parsed).sort()).toEqual(
      ['figures', 'loadAverage', 'rows', 'scale', 'sizes', 'startedAt'].sort(),
    )
    expect(parsed.rows[0]).toEqual({
      workload: 'w',
      measured: 'm',
      baseline: 'b',
      ratio: 'r',
      notes: '',
    })
  })

  it('keeps the names of what a run skipped, as null', () => {
    const figures = JSON.parse(JSON.stringify(figuresOf({ sync: { cold: { ms: 5 } } })))
    expect(figures).toEqual({
      sync: { cold: { ms: 5 }, noop: null, delta: null, partialImport: null },
      tokens: {
        tokenWarm: null,
        tokenCold: null,
        bareJwt: null,
        httpFloor: null,
        barePassword: null,
      },
      memory: { sidecarPeakRss: null },
      startup: null,
    })
  })
})

describe('combined loads', () => {
  it('count their requests over their summed time, with percentiles over every latency', () => {
    const first = { ...aLoad(100), requests: 100, ms: 1000, latencies: [1, 1, 1, 1, 1] }
    const second = { ...aLoad(50), requests: 50, failed: 2, ms: 500, latencies: [10, 10, 10] }
    const both = combined([first, second])
    expect(both).toMatchObject({ requests: 150, failed: 2, ms: 1500, p50: 1, p99: 10 })
    expect(both.rps).toBeCloseTo(148 / 1.5)
    expect(both.latencies).toEqual([1, 1, 1, 1, 1, 10, 10, 10])
  })
})
