import { describe, expect, it } from 'vitest'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import type { RunSummary } from '../sync/engine.js'
import { initSteps, progressToNextcloud } from './init-steps.js'

function steps(status: RunSummary['status']) {
  const calls: string[] = []
  const list = initSteps({
    keycloak: {
      start: () => void calls.push('keycloak.start'),
      waitReady: async (ms) => void calls.push(`keycloak.waitReady(${ms})`),
    },
    startTimeoutMs: 1_000,
    bootstrap: async () => void calls.push('bootstrap'),
    sync: {
      runFull: async (opts) => {
        calls.push(`sync.runFull(${opts?.trigger})`)
        return { status, message: `run ${status}` } as RunSummary
      },
    },
    nextcloud: {
      registerScript: async () => void calls.push('nextcloud.registerScript'),
      registerTopMenu: async () => void calls.push('nextcloud.registerTopMenu'),
    } as unknown as NextcloudClient,
  })
  const run = async () => {
    for (const step of list) {
      await step.run(new AbortController().signal)
    }
  }
  return { list, calls, run }
}

describe('initSteps', () => {
  it('Keycloak (with time to install it), realm, first sync, top menu, with rising progress', async () => {
    const { list, calls, run } = steps('succeeded')
    expect(list.map((s) => [s.name, s.progress, s.timeoutMs])).toEqual([
      ['keycloak', 40, 1_000 + 600_000],
      ['realm', 60, 120_000],
      ['sync', 90, 1_800_000],
      ['ui', 95, 60_000],
    ])
    await run()
    expect(calls).toEqual([
      'keycloak.start',
      `keycloak.waitReady(${1_000 + 600_000})`,
      'bootstrap',
      'sync.runFull(init)',
      'nextcloud.registerScript',
      'nextcloud.registerTopMenu',
    ])
  })

  it('a partial first sync goes on; a failed one stops init with its message', async () => {
    await expect(steps('partial').run()).resolves.toBeUndefined()
    const failed = steps('failed')
    await expect(failed.run()).rejects.toThrow('run failed')
    expect(failed.calls).not.toContain('nextcloud.registerTopMenu')
  })

  it('reports progress to Nextcloud', async () => {
    const reports: unknown[] = []
    const reporter = progressToNextcloud({
      setInitProgress: async (progress, error) => void reports.push([progress, error]),
    })
    await reporter.report(40)
    await reporter.report(60, 'realm: failed')
    expect(reports).toEqual([
      [40, undefined],
      [60, 'realm: failed'],
    ])
  })
})
