/** Error codes domain code may throw. HTTP knows how to map them (src/http/errors.ts); domain code does not. */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_INPUT'
  | 'METHOD_NOT_ALLOWED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'GUARD_TRIPPED'
  | 'KEYCLOAK_UNAVAILABLE'
  | 'NEXTCLOUD_UNAVAILABLE'
  | 'INTERNAL'

/**
 * The one error class domain code throws. Adapters wrap foreign errors into it at the boundary and
 * keep the original as `cause`, so callers never need to know what a library's error looks like.
 */
export class AppError extends Error {
  override readonly name = 'AppError'
  /** fields an answer carries beside `error` (e.g. the summary of a sync run that failed) */
  readonly details?: Record<string, unknown>
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options)
    if (options?.details) {
      this.details = options.details
    }
  }
}

/** True when `err` is an AppError with one of `codes` (any code when none is given). */
export function isAppError(err: unknown, ...codes: ErrorCode[]): err is AppError {
  return err instanceof AppError && (codes.length === 0 || codes.includes(err.code))
}

/** The message of an Error, or the value itself as text when something else was thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
