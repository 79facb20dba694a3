import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `url` until `signal` aborts, reporting each result. An answer other than 2xx, a refused
 * connection and a 5 s timeout all count as not ready. `intervalMs` is asked before each wait,
 * so the caller can probe slower once the child is ready.
 */
export async function pollReady(opts: {
  url: string
  signal: AbortSignal
  intervalMs: () => number
  onResult: (ok: boolean) => void
  fetch?: typeof fetch
}): Promise<void> {
  try {
    while (!opts.signal.aborted) {
      await sleep(opts.intervalMs(), undefined, { signal: opts.signal })
      const ok = await probeOnce(opts.url, opts.signal, opts.fetch ?? fetch)
      if (!opts.signal.aborted) {
        opts.onResult(ok)
      }
    }
  } catch {
    // aborted while sleeping
  }
}

async function probeOnce(url: string, signal: AbortSignal, get: typeof fetch): Promise<boolean> {
  try {
    const res = await get(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) })
    await res.body?.cancel()
    return res.ok
  } catch {
    return false
  }
}
