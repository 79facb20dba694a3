import { resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../test/net.js'
import { silentLogger } from '../log.js'
import { createEmbeddedKeycloak } from './embedded.js'
import type { KeycloakRuntime } from './runtime.js'
import { createSupervisor, type Supervisor } from './supervisor.js'

const fixture = resolve(import.meta.dirname, '../../test/fixtures/ready-after.js')

describe('embedded Keycloak', () => {
  const running: KeycloakRuntime[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map((k) => k.stop()))
  })

  /** The runtime over a real supervisor whose child is ready `delayMs` after each spawn. */
  async function embedded(delayMs: number) {
    const port = await freePort()
    const log = silentLogger()
    let prepared = 0
    const keycloak = createEmbeddedKeycloak(async () => {
      prepared++
      return createSupervisor({
        command: process.execPath,
        args: [fixture, String(port), String(delayMs)],
        readyUrl: `http://127.0.0.1:${port}/health/ready`,
        log,
        startTimeoutMs: 10_000,
        stopTimeoutMs: 2_000,
        probeIntervalMs: 50,
      })
    }, log)
    running.push(keycloak)
    return { keycloak, prepared: () => prepared }
  }

  it('waits for ready after a stop and a start in the same process (re-registration)', async () => {
    const { keycloak, prepared } = await embedded(300)
    keycloak.start()
    await keycloak.waitReady(10_000)
    await keycloak.stop()
    expect(keycloak.status()).toBe('stopped')

    // What AppAPI's unregister + register does to a running process: /enabled=0, then /init.
    keycloak.start()
    await keycloak.waitReady(10_000)
    expect(keycloak.status()).toBe('ready')
    expect(prepared()).toBe(1)
  })

  it('still refuses to wait when stopped after the start', async () => {
    const { keycloak } = await embedded(0)
    keycloak.start()
    await keycloak.waitReady(10_000)
    await keycloak.stop()
    await expect(keycloak.waitReady(10_000)).rejects.toThrow(/stopped/)
  })

  it('tells status listeners every change, ready again after a crash and restart included', async () => {
    const port = await freePort()
    const log = silentLogger()
    let supervisor: Supervisor | undefined
    const keycloak = createEmbeddedKeycloak(async () => {
      supervisor = createSupervisor({
        command: process.execPath,
        args: [fixture, String(port), '0'],
        readyUrl: `http://127.0.0.1:${port}/health/ready`,
        log,
        startTimeoutMs: 10_000,
        stopTimeoutMs: 2_000,
        probeIntervalMs: 50,
        restartDelayScale: 0.01,
      })
      return supervisor
    }, log)
    running.push(keycloak)
    const seen: string[] = []
    keycloak.onStatusChange?.((status, previous) => seen.push(`${previous}>${status}`))
    keycloak.start()
    await keycloak.waitReady(10_000)
    const pid = supervisor?.pid
    expect(pid).toBeGreaterThan(0)
    process.kill(pid as number, 'SIGKILL')
    const deadline = Date.now() + 10_000
    while (seen.filter((s) => s.endsWith('>ready')).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(seen).toEqual([
      'stopped>starting',
      'starting>ready',
      'ready>crashed',
      'crashed>starting',
      'starting>ready',
    ])
  })

  it('reports a failed preparation from waitReady, and tries again on the next start', async () => {
    let attempts = 0
    const keycloak = createEmbeddedKeycloak(async () => {
      attempts++
      throw new Error('no Java found')
    }, silentLogger())
    await expect(keycloak.waitReady(1_000)).rejects.toThrow(/not started/)
    keycloak.start()
    await expect(keycloak.waitReady(1_000)).rejects.toThrow(/no Java found/)
    expect(keycloak.status()).toBe('crashed')
    keycloak.start()
    await expect(keycloak.waitReady(1_000)).rejects.toThrow(/no Java found/)
    expect(attempts).toBe(2)
  })
})
