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
