import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { KeycloakStatus, StatusListener } from '../keycloak/runtime.js'
import { readState, writeState } from '../state.js'
import { realmMark } from './realm-mark.js'

/** A Keycloak whose status a test moves, and whose last stop was clean or not. */
function aKeycloak() {
  let status: KeycloakStatus = 'stopped'
  let clean = false
  const listeners = new Set<StatusListener>()
  return {
    status: () => status,
    stoppedCleanly: () => clean,
    onStatusChange(listener: StatusListener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    move(next: KeycloakStatus, opts: { clean?: boolean } = {}) {
      const previous = status
      status = next
      clean = opts.clean ?? false
      for (const listener of listeners) {
        listener(next, previous)
      }
    },
  }
}

describe('realm mark', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'realm-mark-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('is left by a clean stop after an assertion, and taken once by the next start', async () => {
    await writeState(dir, { enabled: true })
    const keycloak = aKeycloak()
    const mark = realmMark(dir, keycloak)
    expect(await mark.take()).toBeUndefined()
    keycloak.move('starting')
    keycloak.move('ready')
    mark.asserted('fp-1')
    keycloak.move('stopping')
    keycloak.move('stopped', { clean: true })
    await mark.leave()
    expect(await readState(dir)).toEqual({ enabled: true, realmAsserted: 'fp-1' })

    const next = realmMark(dir, aKeycloak())
    expect(await next.take()).toBe('fp-1')
    // taken: a crash of this run leaves no mark for the one after
    expect(await readState(dir)).toEqual({ enabled: true })
    expect(await realmMark(dir, aKeycloak()).take()).toBeUndefined()
  })

  it('is not left when Keycloak was killed, crashed before the stop, or never asserted', async () => {
    const cases: ((k: ReturnType<typeof aKeycloak>, m: ReturnType<typeof realmMark>) => void)[] = [
      // SIGKILL after the stop deadline
      (k, m) => {
        k.move('ready')
        m.asserted('fp')
        k.move('stopping')
        k.move('stopped', { clean: false })
      },
      // crashed, came back, stopped before the realm was asserted again
      (k, m) => {
        k.move('ready')
        m.asserted('fp')
        k.move('crashed')
        k.move('starting')
        k.move('ready')
        k.move('stopping')
        k.move('stopped', { clean: true })
      },
      // an assertion that ended after Keycloak went away
      (k, m) => {
        k.move('ready')
        k.move('crashed')
        m.asserted('fp')
        k.move('starting')
        k.move('ready')
        k.move('stopping')
        k.move('stopped', { clean: true })
      },
    ]
    for (const steps of cases) {
      await writeState(dir, { enabled: true })
      const keycloak = aKeycloak()
      const mark = realmMark(dir, keycloak)
      steps(keycloak, mark)
      await mark.leave()
      expect(await readState(dir)).toEqual({ enabled: true })
    }
  })
})
