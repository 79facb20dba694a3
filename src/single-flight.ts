/**
 * Wraps `run` so concurrent callers share one run: while a call is in flight, further calls get its
 * promise; once it settles (either way), the next call starts a new run.
 */
export function singleFlight<T>(run: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined
  return () => {
    inFlight ??= run().finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
}

/**
 * One run per key at a time: concurrent callers for a key share its promise. `keep` gets a run's
 * result unless the key was forgotten while it ran (what it read may predate the change that made
 * the caller forget it); the callers that waited get the result either way.
 */
export function keyedFlights<K, V>(keep: (key: K, value: V) => void) {
  const running = new Map<K, Promise<V>>()
  return {
    run(key: K, start: () => Promise<V>): Promise<V> {
      const current = running.get(key)
      if (current) {
        return current
      }
      const pending: Promise<V> = start()
        .then((value) => {
          if (running.get(key) === pending) {
            keep(key, value)
          }
          return value
        })
        .finally(() => {
          if (running.get(key) === pending) {
            running.delete(key)
          }
        })
      running.set(key, pending)
      return pending
    },
    /** whether a run for `key` is under way */
    has: (key: K) => running.has(key),
    /** a run under way for `key` is not kept, and the next caller starts a new one */
    forget(key: K) {
      running.delete(key)
    },
    forgetAll() {
      running.clear()
    },
  }
}
