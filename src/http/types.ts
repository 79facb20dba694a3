import type { ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'

/** Who is calling, once a middleware has verified it. */
export type Caller =
  | { kind: 'nextcloud'; userId: string; isAdmin?: boolean }
  | { kind: 'consumer'; consumer: string; clients: string[] }

export interface AppEnv {
  Variables: {
    requestId: string
    log: Logger
    errorCode?: ErrorCode
    caller?: Caller
  }
}
