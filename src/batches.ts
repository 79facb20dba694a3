/**
 * `items` in consecutive batches of `size` (the last may be shorter), each made only when asked
 * for: a lazily produced sequence is never held whole.
 */
export function* batchesOf<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = []
  for (const item of items) {
    batch.push(item)
    if (batch.length === size) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) {
    yield batch
  }
}
