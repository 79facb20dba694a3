import type { ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'

/** Who is calling, once a middleware has verified it. */
export type Caller =
  | { kind: 'nextcloud'; userId: string; isAdmin?: boolean }
  | {
      kind: 'consumer'
      consumer: string
      clients: string[]
      /** Nextcloud groups whose members it may ask tokens for (any user when unset) */
      groups?: string[]
      /** whether it may ask tokens for members of Nextcloud's `admin` group */
      allowAdmins?: boolean
    }
  | { kind: 'metrics' }

export interface AppEnv {
  Variables: {
    requestId: string
    log: Logger
    errorCode?: ErrorCode
    caller?: Caller
  }
}
