import { describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { createLifecycle, type InitStep, withDeadline } from './lifecycle.js'

function recorder() {
  const reports: { progress: number; error?: string }[] = []
  return {
    reports,
    reporter: {
      report: async (progress: number, error?: string) => {
        reports.push(error === undefined ? { progress } : { progress, error })
      },
    },
  }
}

const step = (
  name: string,
  progress: number,
  run: InitStep['run'] = async () => {},
  timeoutMs = 1_000,
) => ({
  name,
  progress,
  timeoutMs,
  run,
})

describe('lifecycle init', () => {
  it('reports 0, each step, then 100 last', async () => {
    const { reports, reporter } = recorder()
    const lc = createLifecycle({
      steps: [step('keycloak', 40), step('realm', 60), step('sync', 90)],
      reporter,
      onEnabled: async () => '',
      log: silentLogger(),
    })
    expect(lc.startInit()).toEqual({ started: true })
    await lc.settled()
    expect(reports).toEqual([
      { progress: 0 },
      { progress: 40 },
      { progress: 60 },
      { progress: 90 },
      { progress: 100 },
    ])
    expect(lc.initState().kind).toBe('done')
  })

  it('reports a failing step as an error below 100 and stops there', async () => {
    const { reports, reporter } = recorder()
    const lc = createLifecycle({
      steps: [
        step('keycloak', 40),
        step('realm', 60, async () => {
          throw new AppError('KEYCLOAK_UNAVAILABLE', 'admin login refused')
        }),
        step('sync', 90),
      ],
      reporter,
      onEnabled: async () => '',
      log: silentLogger(),
    })
    lc.startInit()
    await lc.settled()
    expect(reports).toEqual([
      { progress: 0 },
      { progress: 40 },
      { progress: 40, error: 'realm: admin login refused' },
    ])
    expect(lc.initState()).toMatchObject({ kind: 'failed', step: 'realm' })
  })

  it('never stays stuck: a step past its deadline is reported as an error', async () => {
    const { reports, reporter } = recorder()
    const lc = createLifecycle({
      steps: [step('keycloak', 40, () => new Promise(() => {}), 50)],
      reporter,
      onEnabled: async () => '',
      log: silentLogger(),
    })
    lc.startInit()
    await lc.settled()
    expect(reports.at(-1)).toEqual({
      progress: 0,
      error: 'keycloak: init step "keycloak" did not finish within 0 s',
    })
  })

  it('runs one init at a time', async () => {
    const { reporter } = recorder()
    let release = () => {}
    let runs = 0
    const lc = createLifecycle({
      steps: [
        step('wait', 50, () =>
          ++runs === 1
            ? new Promise<void>((r) => {
                release = r
              })
            : Promise.resolve(),
        ),
      ],
      reporter,
      onEnabled: async () => '',
      log: silentLogger(),
    })
    expect(lc.startInit().started).toBe(true)
    expect(lc.startInit().started).toBe(false)
    await new Promise((r) => setTimeout(r, 10))
    release()
    await lc.settled()
    expect(lc.startInit().started).toBe(true)
    await lc.settled()
  })

  it('retries a failed report, spaced, and gives up on 401', async () => {
    let calls = 0
    const lc = createLifecycle({
      steps: [],
      reporter: {
        report: async () => {
          calls++
          throw new AppError('UNAUTHORIZED', 'AppAPI authentication failed')
        },
      },
      onEnabled: async () => '',
      log: silentLogger(),
      retryDelayMs: 1,
    })
    lc.startInit()
    await lc.settled()
    expect(calls).toBe(2) // progress 0 and progress 100, once each
  })
})

describe('lifecycle enabled', () => {
  it('returns the handler error, or the thrown message', async () => {
    const lc = createLifecycle({
      steps: [],
      reporter: recorder().reporter,
      onEnabled: async (enabled) => {
        if (!enabled) {
          throw new Error('stop failed')
        }
        return ''
      },
      log: silentLogger(),
    })
    expect(await lc.setEnabled(true)).toEqual({ error: '' })
    expect(await lc.setEnabled(false)).toEqual({ error: 'stop failed' })
  })
})

describe('withDeadline', () => {
  it('aborts the work and rejects after the deadline', async () => {
    let aborted = false
    await expect(
      withDeadline('slow thing', 20, (signal) => {
        signal.addEventListener('abort', () => {
          aborted = true
        })
        return new Promise(() => {})
      }),
    ).rejects.toThrow('slow thing did not finish within 0 s')
    expect(aborted).toBe(true)
  })
})
