import type { Consumer } from '../config/config.js'
import type { Store } from '../db/store.js'
import { errorMessage } from '../errors.js'
import type { Logger } from '../log.js'

/** issued: minted for this request; cached: served from the cache; denied: 4xx; failed: 5xx */
export type IssuanceOutcome = 'issued' | 'cached' | 'denied' | 'failed'

export interface IssuanceRequest {
  consumer: Pick<Consumer, 'name'>
  userId: string
  clientId: string
}

/**
 * Writes the issuance log: who got a token for whom and for which client, never the token. A
 * failed write is logged, not fatal: the audit log must not take the token API down with it.
 */
export function issuanceRecorder(
  store: Pick<Store, 'recordIssuance' | 'pruneIssuances'>,
  log: Logger,
  opts: { keep?: number; pruneEvery?: number } = {},
) {
  const keep = opts.keep ?? 10_000
  const every = Math.max(1, opts.pruneEvery ?? 1000)
  let count = 0
  let pruning: Promise<void> | undefined

  return async (req: IssuanceRequest, outcome: IssuanceOutcome) => {
    try {
      await store.recordIssuance({
        consumer: req.consumer.name,
        userId: req.userId,
        clientId: req.clientId,
        outcome,
      })
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'tokens.record_failed')
    }
    count++
    if (count % every === 0 && !pruning) {
      pruning = store
        .pruneIssuances({ keep })
        .then(() => undefined)
        .catch((err: unknown) => {
          log.warn({ err: errorMessage(err) }, 'tokens.prune_failed')
        })
        .finally(() => {
          pruning = undefined
        })
    }
  }
}
