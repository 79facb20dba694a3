import { Hono } from 'hono'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { AppEnv } from './http/types.js'
import type { KeycloakRuntime, KeycloakStatus } from './keycloak/runtime.js'
import type { RunSummary } from './sync/engine.js'

const KEYCLOAK_STATES: KeycloakStatus[] = [
  'installing',
  'stopped',
  'starting',
  'ready',
  'stopping',
  'crashed',
]

/** Prometheus metrics of one sidecar, on a registry of its own (never the global one). */
export class Metrics {
  readonly registry = new Registry()
  private readonly syncRuns = new Counter({
    name: 'keycloak_exapp_sync_runs_total',
    help: 'Sync runs by trigger and outcome',
    labelNames: ['trigger', 'status', 'dry_run'] as const,
    registers: [this.registry],
  })
  private readonly syncDuration = new Histogram({
    name: 'keycloak_exapp_sync_run_duration_seconds',
    help: 'Duration of sync runs by outcome',
    labelNames: ['status'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900],
    registers: [this.registry],
  })
  private readonly changes = new Counter({
    name: 'keycloak_exapp_sync_changes_applied_total',
    help: 'Changes written to Keycloak by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })
  private readonly conflicts = new Counter({
    name: 'keycloak_exapp_sync_conflicts_total',
    help: 'Conflicts reported by sync runs',
    registers: [this.registry],
  })
  private readonly tokenRequests = new Counter({
    name: 'keycloak_exapp_token_requests_total',
    help: 'Token requests by outcome (issued or an error code)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  private readonly tokenDuration = new Histogram({
    name: 'keycloak_exapp_token_request_duration_seconds',
    help: 'Latency of token requests by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  })

  private readonly droppedIssuances = new Counter({
    name: 'keycloak_exapp_token_issuances_dropped_total',
    help: 'Issuance log records dropped because the database could not keep up',
    registers: [this.registry],
  })

  constructor(keycloak: KeycloakRuntime) {
    collectDefaultMetrics({ register: this.registry, prefix: 'keycloak_exapp_' })
    new Gauge({
      name: 'keycloak_exapp_keycloak_restarts',
      help: 'Restarts of the bundled Keycloak after a crash since the sidecar started',
      registers: [this.registry],
      collect() {
        this.set(keycloak.restarts())
      },
    })
    new Gauge({
      name: 'keycloak_exapp_keycloak_state',
      help: 'State of Keycloak: 1 for the current state, 0 for the others',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const current = keycloak.status()
        for (const state of KEYCLOAK_STATES) {
          this.set({ state }, state === current ? 1 : 0)
        }
      },
    })
  }

  recordRun(run: RunSummary): void {
    this.syncRuns.inc({ trigger: run.trigger, status: run.status, dry_run: String(run.dryRun) })
    const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000
    this.syncDuration.observe({ status: run.status }, seconds)
    if (!run.dryRun) {
      for (const [kind, count] of Object.entries(run.counts)) {
        this.changes.inc({ kind }, count)
      }
    }
    this.conflicts.inc(run.conflicts.length)
  }

  issuancesDropped(count: number): void {
    this.droppedIssuances.inc(count)
  }

  /** Wraps a token-issuing function so each call is counted and timed by outcome. */
  timeTokens<A extends unknown[], R>(
    issue: (...args: A) => Promise<R>,
  ): (...args: A) => Promise<R> {
    return async (...args) => {
      // performance.now() rather than the histogram's startTimer(): the same seconds, without a
      // timer closure, two hrtime arrays and a merged label object per request.
      const started = performance.now()
      let outcome = 'issued'
      try {
        return await issue(...args)
      } catch (err) {
        outcome = (err as { code?: string }).code ?? 'INTERNAL'
        throw err
      } finally {
        const labels = { outcome }
        this.tokenDuration.observe(labels, (performance.now() - started) / 1000)
        this.tokenRequests.inc(labels)
      }
    }
  }
}

/**
 * `GET /metrics` in Prometheus text format. Who may read it (the scrape token, Nextcloud admins)
 * is the access table's business.
 */
export function metricsRoutes(metrics: Metrics) {
  return new Hono<AppEnv>().get('/', async (c) => {
    c.header('Content-Type', metrics.registry.contentType)
    return c.body(await metrics.registry.metrics())
  })
}
