/**
 * Long pure computations (planning a 10 000-user run) are generators that yield now and then.
 * `runSteps` runs one at once (unit tests, single users); `runStepsCooperatively` gives the event
 * loop a turn between steps, so heartbeats and token requests are served during a large run.
 */
export type Steps<T> = Generator<void, T, void>

/** How many items a stepped loop handles between two yields. */
export const STEP_ITEMS = 250

/** Runs `steps` to the end without pausing. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next()
    if (next.done) {
      return next.value
    }
  }
}

/** Runs `steps`, waiting for one setImmediate whenever `budgetMs` of work has passed. */
export async function runStepsCooperatively<T>(steps: Steps<T>, budgetMs = 8): Promise<T> {
  let since = performance.now()
  for (;;) {
    const next = steps.next()
    if (next.done) {
      return next.value
    }
    if (performance.now() - since >= budgetMs) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      since = performance.now()
    }
  }
}

/** `items.map(fn)` in steps. */
export function* mapSteps<T, U>(items: readonly T[], fn: (item: T) => U): Steps<U[]> {
  const result: U[] = []
  for (const item of items) {
    result.push(fn(item))
    if (result.length % STEP_ITEMS === 0) {
      yield
    }
  }
  return result
}
