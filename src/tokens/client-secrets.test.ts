import { describe, expect, it } from 'vitest'
import { clientSecrets } from './client-secrets.js'

/** A store whose reads are counted; the first `failures` reads fail. */
function countingStore(failures = 0) {
  const kept = new Map<string, string>()
  const reads: string[] = []
  return {
    reads,
    store: {
      async getOrCreateSecret(name: string, generate: () => string | Promise<string>) {
        reads.push(name)
        if (reads.length <= failures) {
          throw new Error('database unavailable')
        }
        const secret = kept.get(name) ?? (await generate())
        kept.set(name, secret)
        return secret
      },
    },
  }
}

describe('clientSecrets', () => {
  it('reads each client secret from the store once, under its own name', async () => {
    const { store, reads } = countingStore()
    const secretOf = clientSecrets(store)
    const [a, again, b] = await Promise.all([
      secretOf('opentalk'),
      secretOf('opentalk'),
      secretOf('files'),
    ])
    expect(a).toBe(again)
    expect(b).not.toBe(a)
    expect(a.length).toBeGreaterThanOrEqual(16)
    expect(await secretOf('opentalk')).toBe(a)
    expect(reads).toEqual(['client-secret:opentalk', 'client-secret:files'])
  })

  it('does not remember a failed read: the next call reads again', async () => {
    const { store, reads } = countingStore(1)
    const secretOf = clientSecrets(store)
    await expect(secretOf('opentalk')).rejects.toThrow('database unavailable')
    const secret = await secretOf('opentalk')
    expect(await secretOf('opentalk')).toBe(secret)
    expect(reads).toEqual(['client-secret:opentalk', 'client-secret:opentalk'])
  })
})
