import { describe, expect, it } from 'vitest'
import { buildTestApp, TEST_METRICS_TOKEN } from '../test/app-builder.js'
import { AppError } from './errors.js'
import type { KeycloakRuntime } from './keycloak/runtime.js'
import { Metrics } from './metrics.js'
import type { RunSummary } from './sync/engine.js'

const keycloak: KeycloakRuntime = {
  mode: 'embedded',
  status: () => 'ready',
  start() {},
  stop: async () => {},
  waitReady: async () => {},
  restarts: () => 2,
}

const run: RunSummary = {
  runId: 1,
  trigger: 'api',
  status: 'succeeded',
  dryRun: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.000Z',
  users: 3,
  groups: 1,
  counts: { 'create-user': 3, 'add-member': 2 },
  failed: 0,
  conflicts: [{ kind: 'group-name-taken', gid: 'x' }],
  errors: [],
  guard: null,
  message: '',
}

describe('metrics', () => {
  it('counts runs, applied changes by kind, conflicts, Keycloak restarts and state', async () => {
    const metrics = new Metrics(keycloak)
    metrics.recordRun(run)
    const text = await metrics.registry.metrics()
    expect(text).toContain(
      'keycloak_exapp_sync_runs_total{trigger="api",status="succeeded",dry_run="false"} 1',
    )
    expect(text).toContain('keycloak_exapp_sync_changes_applied_total{kind="create-user"} 3')
    expect(text).toContain('keycloak_exapp_sync_conflicts_total 1')
    expect(text).toContain('keycloak_exapp_sync_run_duration_seconds_sum{status="succeeded"} 2')
    expect(text).toContain('keycloak_exapp_keycloak_restarts 2')
    expect(text).toContain('keycloak_exapp_keycloak_state{state="ready"} 1')
    expect(text).toContain('keycloak_exapp_keycloak_state{state="crashed"} 0')
  })

  it('times token requests by outcome', async () => {
    const metrics = new Metrics(keycloak)
    const ok = metrics.timeTokens(async () => 'token')
    const refused = metrics.timeTokens(async () => {
      throw new AppError('FORBIDDEN', 'disabled')
    })
    await ok()
    await expect(refused()).rejects.toThrow('disabled')
    const text = await metrics.registry.metrics()
    expect(text).toContain('keycloak_exapp_token_requests_total{outcome="issued"} 1')
    expect(text).toContain('keycloak_exapp_token_requests_total{outcome="FORBIDDEN"} 1')
    expect(text).toContain(
      'keycloak_exapp_token_request_duration_seconds_count{outcome="issued"} 1',
    )
  })

  it('serves /metrics to the scrape token and hands everyone else to the admin check', async () => {
    const { app: a } = await buildTestApp()
    const ok = await a.request('/metrics', {
      headers: { Authorization: `Bearer ${TEST_METRICS_TOKEN}` },
    })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('content-type')).toContain('text/plain')
    expect(await ok.text()).toContain('keycloak_exapp_keycloak_state')
    expect(
      (await a.request('/metrics', { headers: { Authorization: 'Bearer wrong' } })).status,
    ).toBe(401)
    expect((await a.request('/metrics')).status).toBe(401)
  })
})
