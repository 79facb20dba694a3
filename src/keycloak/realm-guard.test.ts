import { afterEach, describe, expect, it } from 'vitest'
import { isAppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { createRealmGuard, type RealmGuard } from './realm-guard.js'
import type { KeycloakStatus, StatusListener } from './runtime.js'
import { nextState, type SupervisorEvent, type SupervisorState } from './supervisor-states.js'

/** A runtime whose status follows the supervisor's own transition table, event by event. */
function fakeRuntime() {
  let state: SupervisorState = { kind: 'stopped' }
  const listeners = new Set<StatusListener>()
  let at = 0
  return {
    status: (): KeycloakStatus => state.kind,
    onStatusChange(listener: StatusListener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    send(type: SupervisorEvent['type'], exit = { code: 137, signal: null }) {
      at += 1_000
      const previous = state
      const event = (type === 'exited' ? { type, at, ...exit } : { type, at }) as SupervisorEvent
      state = nextState(state, event).state
      if (state.kind !== previous.kind) {
        for (const listener of listeners) {
          listener(state.kind, previous.kind)
        }
      }
    },
  }
}

/** A bootstrap a test settles by hand, one call at a time. */
function manualBootstrap() {
  const calls: { resolve: () => void; reject: (err: Error) => void }[] = []
  return {
    calls,
    run: () =>
      new Promise<void>((resolve, reject) => {
        calls.push({ resolve, reject })
      }),
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve))

/** Whether `promise` has settled (and how) after the pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let outcome: 'pending' | 'resolved' | 'rejected' = 'pending'
  promise.then(
    () => {
      outcome = 'resolved'
    },
    () => {
      outcome = 'rejected'
    },
  )
  await flush()
  return outcome
}

const guards: RealmGuard[] = []
afterEach(() => {
  for (const guard of guards.splice(0)) {
    guard.stop()
  }
})

function aGuard(waitMs = 60_000, retryMs = () => 1, trustedAtFirstReady?: () => Promise<boolean>) {
  const keycloak = fakeRuntime()
  const bootstrap = manualBootstrap()
  const guard = createRealmGuard({
    keycloak,
    bootstrap: bootstrap.run,
    log: silentLogger(),
    waitMs,
    retryMs,
    ...(trustedAtFirstReady ? { trustedAtFirstReady } : {}),
  })
  guards.push(guard)
  return { keycloak, bootstrap, guard }
}

describe('realm guard', () => {
  it('passes requests through before Keycloak was ever ready', async () => {
    const { guard, bootstrap } = aGuard()
    await expect(guard.ready()).resolves.toBeUndefined()
    expect(bootstrap.calls).toHaveLength(0)
  })

  it('re-asserts the realm after a crash and restart, and holds requests until it is done', async () => {
    const { keycloak, bootstrap, guard } = aGuard()
    keycloak.send('start')
    keycloak.send('probe-ok')
    expect(bootstrap.calls).toHaveLength(0)
    await flush()
    expect(bootstrap.calls).toHaveLength(1)
    bootstrap.calls[0]?.resolve()
    await flush()
    await expect(guard.ready()).resolves.toBeUndefined()

    keycloak.send('exited')
    expect(keycloak.status()).toBe('crashed')
    await expect(guard.ready()).rejects.toMatchObject({ code: 'KEYCLOAK_UNAVAILABLE' })
    keycloak.send('backoff-elapsed')
    keycloak.send('probe-ok')
    expect(keycloak.status()).toBe('ready')
    const waiting = guard.ready()
    await flush()
    expect(bootstrap.calls).toHaveLength(2)
    expect(await settled(waiting)).toBe('pending')
    bootstrap.calls[1]?.resolve()
    expect(await settled(waiting)).toBe('resolved')
    await expect(guard.ready()).resolves.toBeUndefined()
  })

  it('re-asserts after a hung Keycloak was killed and restarted', async () => {
    const { keycloak, bootstrap } = aGuard()
    keycloak.send('start')
    keycloak.send('probe-ok')
    await flush()
    bootstrap.calls[0]?.resolve()
    for (let i = 0; i < 6; i++) {
      keycloak.send('probe-failed')
    }
    expect(keycloak.status()).toBe('stopping')
    keycloak.send('exited')
    keycloak.send('backoff-elapsed')
    keycloak.send('probe-ok')
    await flush()
    expect(bootstrap.calls).toHaveLength(2)
  })

  it('retries a failed re-assertion until it succeeds', async () => {
    const { keycloak, bootstrap, guard } = aGuard()
    keycloak.send('start')
    keycloak.send('probe-ok')
    const waiting = guard.ready()
    await flush()
    bootstrap.calls[0]?.reject(new Error('Keycloak answered 503'))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(bootstrap.calls).toHaveLength(2)
    expect(await settled(waiting)).toBe('pending')
    bootstrap.calls[1]?.resolve()
    expect(await settled(waiting)).toBe('resolved')
  })

  it('answers KEYCLOAK_UNAVAILABLE to a caller that waited too long', async () => {
    const { keycloak, guard } = aGuard(10)
    keycloak.send('start')
    keycloak.send('probe-ok')
    const err = await guard.ready().catch((e: unknown) => e)
    expect(isAppError(err, 'KEYCLOAK_UNAVAILABLE')).toBe(true)
    expect(String(err)).toMatch(/being restored/)
  })

  it('does not let an assertion of an earlier life settle a later one', async () => {
    const { keycloak, bootstrap, guard } = aGuard()
    keycloak.send('start')
    keycloak.send('probe-ok')
    await flush()
    // Keycloak crashes and comes back while the first assertion is still running.
    keycloak.send('exited')
    keycloak.send('backoff-elapsed')
    keycloak.send('probe-ok')
    const waiting = guard.ready()
    bootstrap.calls[0]?.resolve()
    await flush()
    expect(await settled(waiting)).toBe('pending')
    expect(bootstrap.calls).toHaveLength(2)
    bootstrap.calls[1]?.resolve()
    expect(await settled(waiting)).toBe('resolved')
  })

  it('lets tokens go ahead at the first ready when the realm is trusted, and still re-asserts it', async () => {
    const { keycloak, bootstrap, guard } = aGuard(
      60_000,
      () => 1,
      async () => true,
    )
    keycloak.send('start')
    keycloak.send('probe-ok')
    expect(await settled(guard.ready())).toBe('resolved')
    await flush()
    expect(bootstrap.calls).toHaveLength(1)
    bootstrap.calls[0]?.resolve()

    // Trust is for the first life only: after a crash, requests wait for the re-assertion.
    keycloak.send('exited')
    keycloak.send('backoff-elapsed')
    keycloak.send('probe-ok')
    const waiting = guard.ready()
    await flush()
    expect(await settled(waiting)).toBe('pending')
    bootstrap.calls[1]?.resolve()
    expect(await settled(waiting)).toBe('resolved')
  })

  it('holds requests at the first ready when the realm is not trusted, or the check fails', async () => {
    for (const trusted of [async () => false, () => Promise.reject(new Error('disk'))]) {
      const { keycloak, bootstrap, guard } = aGuard(60_000, () => 1, trusted)
      keycloak.send('start')
      keycloak.send('probe-ok')
      const waiting = guard.ready()
      await flush()
      expect(await settled(waiting)).toBe('pending')
      bootstrap.calls[0]?.resolve()
      expect(await settled(waiting)).toBe('resolved')
    }
  })
})
