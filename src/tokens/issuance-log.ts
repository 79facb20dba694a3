import type { Consumer } from '../config/config.js'
import type { Issuance, Store } from '../db/store.js'
import { errorMessage } from '../errors.js'
import type { Logger } from '../log.js'

/** issued: minted for this request; cached: served from the cache; denied: 4xx; failed: 5xx */
export type IssuanceOutcome = 'issued' | 'cached' | 'denied' | 'failed'

export interface IssuanceRequest {
  consumer: Pick<Consumer, 'name'>
  userId: string
  clientId: string
}

export interface IssuanceLogOptions {
  /** how long a record waits at most before it is written; default 1000 ms */
  flushEveryMs?: number
  /** a write starts once this many records wait, and one insert takes at most this many; 500 */
  batchSize?: number
  /** records held in memory at most; beyond that the oldest go and are counted; 10 000 */
  maxQueued?: number
  /** issuances kept in the store; default 10 000, pruned every `pruneEvery` (1000) written */
  keep?: number
  pruneEvery?: number
  /** called with how many records were dropped (queue full, or a write failed at stop) */
  onDropped?(count: number): void
  /** milliseconds since the epoch; a record's time is when it was made, not when it is written */
  now?: () => number
}

export interface IssuanceLog {
  /** Queues one record; never waits for the store. */
  record(req: IssuanceRequest, outcome: IssuanceOutcome): void
  /** Writes what is queued now (and what arrives meanwhile); a failed write is logged, kept. */
  flush(): Promise<void>
  /** Writes everything still queued, then stops the timer; what cannot be written is counted lost. */
  stop(): Promise<void>
  /** records waiting to be written */
  readonly queued: number
  /** records dropped since the start */
  readonly dropped: number
}

/**
 * The issuance log: who got a token for whom and for which client, never the token. Records are
 * queued in memory and written in multi-row inserts off the request path, at most `flushEveryMs`
 * late; a stop writes what is left. A failed write is logged, not fatal (the audit log must not take
 * the token API down with it): its records stay queued for the next write. The queue is bounded:
 * when the store cannot keep up, the oldest records go and `onDropped` counts them.
 */
export function createIssuanceLog(
  store: Pick<Store, 'recordIssuances' | 'pruneIssuances'>,
  log: Logger,
  opts: IssuanceLogOptions = {},
): IssuanceLog {
  const flushEveryMs = Math.max(0, opts.flushEveryMs ?? 1000)
  const batchSize = Math.max(1, opts.batchSize ?? 500)
  const maxQueued = Math.max(batchSize, opts.maxQueued ?? 10_000)
  const keep = opts.keep ?? 10_000
  const pruneEvery = Math.max(1, opts.pruneEvery ?? 1000)
  const now = opts.now ?? Date.now
  let queue: Issuance[] = []
  let dropped = 0
  let written = 0
  let timer: NodeJS.Timeout | undefined
  let writing: Promise<void> | undefined
  let pruning: Promise<void> | undefined

  const drop = (count: number) => {
    if (count > 0) {
      dropped += count
      opts.onDropped?.(count)
    }
  }

  const prune = () => {
    pruning ??= store
      .pruneIssuances({ keep })
      .then(() => undefined)
      .catch((err: unknown) => {
        log.warn({ err: errorMessage(err) }, 'tokens.prune_failed')
      })
      .finally(() => {
        pruning = undefined
      })
  }

  /** Writes batches until the queue is empty or a write fails (its batch goes back in front). */
  const drain = async () => {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchSize)
      queue = queue.slice(batch.length)
      try {
        await store.recordIssuances(batch)
      } catch (err) {
        log.warn({ err: errorMessage(err), records: batch.length }, 'tokens.record_failed')
        const kept = [...batch, ...queue]
        drop(kept.length - maxQueued)
        queue = kept.slice(Math.max(0, kept.length - maxQueued))
        return
      }
      const before = written
      written += batch.length
      if (Math.floor(written / pruneEvery) > Math.floor(before / pruneEvery)) {
        prune()
      }
    }
  }

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer)
      timer = undefined
    }
    writing ??= drain().finally(() => {
      writing = undefined
      // Records queued behind a failed write wait for the timer.
      schedule()
    })
    return writing
  }

  const schedule = () => {
    if (queue.length > 0 && !timer && !writing) {
      timer = setTimeout(() => {
        timer = undefined
        void flush()
      }, flushEveryMs)
      timer.unref()
    }
  }

  return {
    record(req, outcome) {
      if (queue.length >= maxQueued) {
        queue.shift()
        drop(1)
      }
      queue.push({
        consumer: req.consumer.name,
        userId: req.userId,
        clientId: req.clientId,
        outcome,
        issuedAt: new Date(now()),
      })
      if (queue.length >= batchSize) {
        void flush()
      } else {
        schedule()
      }
    },
    flush,
    async stop() {
      // A write in flight first, then one more round for what failed or arrived meanwhile.
      await flush()
      await flush()
      if (timer) {
        clearTimeout(timer)
        timer = undefined
      }
      if (queue.length > 0) {
        log.error({ records: queue.length }, 'tokens.records_lost')
        drop(queue.length)
        queue = []
      }
      await pruning
    },
    get queued() {
      return queue.length
    },
    get dropped() {
      return dropped
    },
  }
}
