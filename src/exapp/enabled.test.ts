import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import { AppError } from '../errors.js'
import type { KeycloakStatus } from '../keycloak/runtime.js'
import { silentLogger } from '../log.js'
import { ENABLE_WAIT_MS, resume, setEnabled } from './enabled.js'

/** Records what enabling and resuming do to each part, in order. */
function parts(opts: { status?: KeycloakStatus; waitReady?: () => Promise<void> } = {}) {
  const calls: string[] = []
  const keycloak = {
    start: () => void calls.push('keycloak.start'),
    stop: async () => void calls.push('keycloak.stop'),
    waitReady: async (ms: number) => {
      calls.push(`keycloak.waitReady(${ms})`)
      await opts.waitReady?.()
    },
    status: () => opts.status ?? 'ready',
  }
  const sync = {
    startSchedule: () => void calls.push('sync.startSchedule'),
    stop: async () => void calls.push('sync.stop'),
  }
  const menu = { fail: false }
  const call = (name: string) => async () => {
    calls.push(name)
    if (menu.fail) {
      throw new AppError('NEXTCLOUD_UNAVAILABLE', 'Nextcloud answered 500')
    }
  }
  const nextcloud = {
    registerScript: call('nextcloud.registerScript'),
    registerTopMenu: call('nextcloud.registerTopMenu'),
    unregisterScript: call('nextcloud.unregisterScript'),
    unregisterTopMenu: call('nextcloud.unregisterTopMenu'),
  } as unknown as NextcloudClient
  return { calls, keycloak, sync, nextcloud, menu }
}

let storageDir: string
beforeEach(async () => {
  storageDir = await mkdtemp(join(tmpdir(), 'enabled-'))
})
afterEach(async () => {
  await rm(storageDir, { recursive: true, force: true })
})

const stored = async () => JSON.parse(await readFile(join(storageDir, 'state.json'), 'utf8'))

describe('setEnabled', () => {
  it('enabling starts Keycloak, waits for it, starts the schedule and registers the top menu', async () => {
    const p = parts()
    expect(await setEnabled({ storageDir, ...p })(true)).toBe('')
    expect(p.calls).toEqual([
      'keycloak.start',
      `keycloak.waitReady(${ENABLE_WAIT_MS})`,
      'sync.startSchedule',
      'nextcloud.registerScript',
      'nextcloud.registerTopMenu',
    ])
    expect(await stored()).toEqual({ enabled: true })
  })

  it('disabling removes the top menu first, then stops the schedule and Keycloak', async () => {
    const p = parts()
    expect(await setEnabled({ storageDir, ...p })(false)).toBe('')
    expect(p.calls).toEqual([
      'nextcloud.unregisterScript',
      'nextcloud.unregisterTopMenu',
      'sync.stop',
      'keycloak.stop',
    ])
    expect(await stored()).toEqual({ enabled: false })
  })

  it('a top menu Nextcloud refuses is reported, and the rest still happens', async () => {
    const p = parts()
    p.menu.fail = true
    const enabled = setEnabled({ storageDir, ...p })
    expect(await enabled(false)).toMatch(/^the top menu could not be removed: /)
    expect(p.calls.slice(-2)).toEqual(['sync.stop', 'keycloak.stop'])
    expect(await enabled(true)).toMatch(/^the top menu could not be registered: .*500/)
    expect(p.calls).toContain('sync.startSchedule')
  })

  it('a slow Keycloak does not fail enabling; a crashed one does, before the schedule starts', async () => {
    const slow = parts({
      status: 'starting',
      waitReady: async () => {
        throw new AppError('KEYCLOAK_UNAVAILABLE', 'not ready within 45 s')
      },
    })
    expect(await setEnabled({ storageDir, ...slow })(true)).toBe('')
    expect(slow.calls).toContain('sync.startSchedule')

    const crashed = parts({
      status: 'crashed',
      waitReady: async () => {
        throw new AppError('KEYCLOAK_UNAVAILABLE', 'Keycloak exited with code 1')
      },
    })
    expect(await setEnabled({ storageDir, ...crashed })(true)).toBe('Keycloak exited with code 1')
    expect(crashed.calls).not.toContain('sync.startSchedule')
  })
})

describe('resume', () => {
  const run = async (
    state: string | undefined,
    p = parts(),
    extra: { bootstrap?: () => Promise<void>; stopping?: () => boolean } = {},
  ) => {
    if (state !== undefined) {
      await writeFile(join(storageDir, 'state.json'), state)
    }
    const log = silentLogger()
    const failed = vi.spyOn(log, 'error')
    const abandoned = vi.spyOn(log, 'info')
    const bootstrap = async () => {
      p.calls.push('bootstrap')
      await extra.bootstrap?.()
    }
    await resume({
      storageDir,
      startTimeoutMs: 1_000,
      log,
      ...p,
      stopping: extra.stopping,
      bootstrap,
    })
    return { calls: p.calls, failed, abandoned }
  }

  it('an app enabled before gets Keycloak, its realm and its schedule back', async () => {
    const { calls } = await run('{"enabled":true}')
    await vi.waitFor(() => expect(calls).toContain('sync.startSchedule'))
    expect(calls).toEqual([
      'keycloak.start',
      // the start timeout plus the install allowance (10 minutes)
      `keycloak.waitReady(${1_000 + 600_000})`,
      'bootstrap',
      'sync.startSchedule',
    ])
  })

  it('a first start (no state) starts Keycloak and the realm, but no schedule', async () => {
    const { calls } = await run(undefined)
    await vi.waitFor(() => expect(calls).toContain('bootstrap'))
    expect(calls).not.toContain('sync.startSchedule')
  })

  it('an app Nextcloud disabled stays stopped', async () => {
    const { calls } = await run('{"enabled":false}')
    expect(calls).toEqual([])
  })

  it('a failure is logged, not thrown, and stops what follows', async () => {
    const p = parts({
      waitReady: async () => {
        throw new AppError('KEYCLOAK_UNAVAILABLE', 'no')
      },
    })
    const { calls, failed } = await run('{"enabled":true}', p)
    await vi.waitFor(() =>
      expect(failed).toHaveBeenCalledWith({ err: expect.any(AppError) }, 'exapp.resume_failed'),
    )
    expect(calls).not.toContain('bootstrap')
    expect(calls).not.toContain('sync.startSchedule')
  })

  it('a setup the app stops in the middle of is no error, and starts no schedule', async () => {
    let stopping = false
    const { calls, failed, abandoned } = await run('{"enabled":true}', parts(), {
      stopping: () => stopping,
      bootstrap: async () => {
        // The stop arrives while the realm is set up, and takes Keycloak away.
        stopping = true
        throw new AppError('KEYCLOAK_UNAVAILABLE', 'fetch failed: other side closed')
      },
    })
    await vi.waitFor(() =>
      expect(abandoned).toHaveBeenCalledWith(
        { reason: 'fetch failed: other side closed' },
        'exapp.resume_abandoned',
      ),
    )
    expect(failed).not.toHaveBeenCalled()
    expect(calls).not.toContain('sync.startSchedule')
  })

  it('a setup that ends after the stop began starts no schedule', async () => {
    let stopping = false
    const { calls, failed } = await run('{"enabled":true}', parts(), {
      stopping: () => stopping,
      bootstrap: async () => {
        stopping = true
      },
    })
    await vi.waitFor(() => expect(calls).toContain('bootstrap'))
    // what follows the setup runs in the microtasks after it: one turn of the loop lets them run
    await new Promise((resolve) => setImmediate(resolve))
    expect(calls).not.toContain('sync.startSchedule')
    expect(failed).not.toHaveBeenCalled()
  })
})
