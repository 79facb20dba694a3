import { describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { silentLogger } from '../log.js'
import { singleFlight } from '../single-flight.js'
import type { AdminToken } from './admin.js'
import { switchingLogin } from './service-account.js'

const refused = () => new AppError('UNAUTHORIZED', 'refused')
const token = (value: string): AdminToken => ({ value, expiresAt: Date.now() + 60_000 })

/** A Keycloak as the login sees it: whether the client's secret works, and what was asked. */
function keycloak(opts: { clientWorks: boolean; bootstrapWorks?: boolean; repairFixes?: boolean }) {
  const calls: string[] = []
  let clientWorks = opts.clientWorks
  return {
    calls,
    breakClient() {
      clientWorks = false
    },
    deps: {
      client: async () => {
        calls.push('client')
        if (!clientWorks) {
          throw refused()
        }
        return token('client-token')
      },
      bootstrap: async () => {
        calls.push('bootstrap')
        if (opts.bootstrapWorks === false) {
          throw refused()
        }
        return token('bootstrap-token')
      },
      repair: async (t: AdminToken) => {
        calls.push(`repair:${t.value}`)
        clientWorks = opts.repairFixes ?? true
      },
      afterSwitch: async (t: AdminToken) => {
        calls.push(`afterSwitch:${t.value}`)
      },
      settings: 'THE_SETTINGS',
      log: silentLogger(),
    },
  }
}

describe('switchingLogin', () => {
  it('uses the service account alone when its secret works', async () => {
    const kc = keycloak({ clientWorks: true })
    const login = switchingLogin(kc.deps)
    expect((await login()).value).toBe('client-token')
    expect((await login()).value).toBe('client-token')
    expect(kc.calls).toEqual(['client', 'afterSwitch:client-token', 'client'])
  })

  it('first start: the bootstrap admin creates the client, then the client logs in', async () => {
    const kc = keycloak({ clientWorks: false })
    const login = switchingLogin(kc.deps)
    expect((await login()).value).toBe('client-token')
    expect(kc.calls).toEqual([
      'client',
      'bootstrap',
      'repair:bootstrap-token',
      'client',
      'afterSwitch:client-token',
    ])
  })

  it('a client deleted later is repaired with the bootstrap admin at the next renewal', async () => {
    const kc = keycloak({ clientWorks: true })
    const login = switchingLogin(kc.deps)
    await login()
    kc.breakClient()
    kc.calls.length = 0
    expect((await login()).value).toBe('client-token')
    expect(kc.calls).toEqual(['client', 'bootstrap', 'repair:bootstrap-token', 'client'])
  })

  it('both refused: the error names the settings to check', async () => {
    const kc = keycloak({ clientWorks: false, bootstrapWorks: false })
    const err = await switchingLogin(kc.deps)().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AppError)
    expect((err as AppError).code).toBe('UNAUTHORIZED')
    expect((err as AppError).message).toContain('THE_SETTINGS')
    expect(kc.calls).toEqual(['client', 'bootstrap'])
  })

  it('a repair that does not make the client work fails instead of looping', async () => {
    const kc = keycloak({ clientWorks: false, repairFixes: false })
    const err = await switchingLogin(kc.deps)().catch((e: unknown) => e)
    expect((err as AppError).code).toBe('UNAUTHORIZED')
    expect(kc.calls).toEqual(['client', 'bootstrap', 'repair:bootstrap-token', 'client'])
  })

  it('Keycloak unreachable is passed on without asking the bootstrap admin', async () => {
    const kc = keycloak({ clientWorks: true })
    const login = switchingLogin({
      ...kc.deps,
      client: async () => {
        throw new AppError('KEYCLOAK_UNAVAILABLE', 'down')
      },
    })
    const err = await login().catch((e: unknown) => e)
    expect((err as AppError).code).toBe('KEYCLOAK_UNAVAILABLE')
    expect(kc.calls).toEqual([])
  })

  it('a failed cleanup does not fail the login and is tried again with the next token', async () => {
    const kc = keycloak({ clientWorks: true })
    let attempts = 0
    const login = switchingLogin({
      ...kc.deps,
      afterSwitch: async () => {
        attempts += 1
        if (attempts === 1) {
          throw new Error('cleanup failed')
        }
      },
    })
    expect((await login()).value).toBe('client-token')
    expect((await login()).value).toBe('client-token')
    await login()
    expect(attempts).toBe(2)
  })

  it('concurrent renewals behind single-flight share one repair', async () => {
    const kc = keycloak({ clientWorks: false })
    const login = singleFlight(switchingLogin(kc.deps))
    const tokens = await Promise.all([login(), login(), login()])
    expect(tokens.map((t) => t.value)).toEqual(['client-token', 'client-token', 'client-token'])
    expect(kc.calls.filter((c) => c === 'bootstrap')).toHaveLength(1)
  })
})
