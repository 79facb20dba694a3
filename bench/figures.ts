import type { LoadResult } from './lib.js'

/**
 * The JSON `npm run bench -- --json out.json` writes. Names here are stable: scripts and notes
 * compare runs by them (`figures.tokens.tokenWarm.rps`, `figures.sync.cold.ms`, …). A figure a
 * run did not measure (a skipped workload) is null, never missing.
 */
export interface BenchJson {
  startedAt: string
  scale: number
  sizes: Record<string, number>
  /** 1/5/15-minute load averages when each workload started, and at start and end */
  loadAverage: Record<string, string>
  /** the printed table: each row's measured figure, its baseline from the same run, the ratio */
  rows: BenchRow[]
  figures: Figures
}

export interface BenchRow {
  workload: string
  measured: string
  baseline: string
  ratio: string
  notes: string
}

/** A load workload's figures: req/s, latency percentiles in milliseconds. */
export interface LoadFigures {
  rps: number
  p50: number
  p99: number
  requests: number
  failed: number
  ms: number
}

/** A timed run: `ms`, with whatever else the workload reports beside it. */
export type Timed = { ms: number }

export const TOKEN_FIGURES = [
  'tokenWarm',
  'tokenCold',
  'bareJwt',
  'httpFloor',
  'barePassword',
] as const
export type TokenFigure = (typeof TOKEN_FIGURES)[number]

export const SYNC_FIGURES = ['cold', 'noop', 'delta', 'partialImport'] as const
export type SyncFigure = (typeof SYNC_FIGURES)[number]

export interface Figures {
  sync: Record<SyncFigure, Timed | null> & Record<string, unknown>
  tokens: Record<TokenFigure, LoadFigures | null>
  /** bytes; `sidecarPeakRss` is the sidecar as its own process */
  memory: { sidecarPeakRss: number | null } & Record<string, unknown>
  startup: object | null
}

/** What a run measured, by workload; anything left out was not measured. */
export interface Measured {
  sync?: Partial<Record<SyncFigure, Timed>> & Record<string, unknown>
  tokens?: Partial<Record<TokenFigure, LoadResult>>
  memory?: { sidecarPeakRss?: number } & Record<string, unknown>
  startup?: object
}

function loadFigures(r: LoadResult | undefined): LoadFigures | null {
  if (!r) {
    return null
  }
  return { rps: r.rps, p50: r.p50, p99: r.p99, requests: r.requests, failed: r.failed, ms: r.ms }
}

/** The figures under their stable names, every name present (null when not measured). */
export function figuresOf(m: Measured): Figures {
  const { sync = {}, tokens = {}, memory = {}, startup } = m
  const syncFigures = Object.fromEntries(SYNC_FIGURES.map((name) => [name, sync[name] ?? null]))
  return {
    sync: { ...sync, ...syncFigures } as Figures['sync'],
    tokens: Object.fromEntries(
      TOKEN_FIGURES.map((name) => [name, loadFigures(tokens[name])]),
    ) as Figures['tokens'],
    memory: { ...memory, sidecarPeakRss: memory.sidecarPeakRss ?? null },
    startup: startup ?? null,
  }
}

export function benchJson(run: Omit<BenchJson, 'figures'> & { measured: Measured }): BenchJson {
  const { measured, ...rest } = run
  return { ...rest, figures: figuresOf(measured) }
}
