import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { AppError, type ErrorCode } from '../errors.js'
import type { AppEnv } from './types.js'

/** The one place that knows which HTTP status an error code gets. */
export function statusFor(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case 'INVALID_INPUT':
      return 400
    case 'METHOD_NOT_ALLOWED':
      return 405
    case 'UNAUTHORIZED':
      return 401
    case 'FORBIDDEN':
      return 403
    case 'NOT_FOUND':
      return 404
    case 'CONFLICT':
    case 'GUARD_TRIPPED':
      return 409
    case 'RATE_LIMITED':
      return 429
    case 'KEYCLOAK_UNAVAILABLE':
    case 'NEXTCLOUD_UNAVAILABLE':
      return 502
    case 'INTERNAL':
      return 500
  }
}

const CODE_FOR_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_INPUT',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  429: 'RATE_LIMITED',
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string }
}

/** Builds the error body every route answers with. */
export function errorBody(c: Context<AppEnv>, code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message, requestId: c.get('requestId') ?? '' } }
}

/**
 * The one place that writes an error response. AppError → its status; Hono's HTTPException → its
 * status; anything else → 500. Every 5xx is logged with its cause, and an INTERNAL error (or any
 * 5xx that is not an AppError) never shows its message: the request id finds it in the logs.
 */
export function onError(err: Error, c: Context<AppEnv>): Response {
  let code: ErrorCode
  let status: ContentfulStatusCode
  let message: string
  if (err instanceof AppError) {
    code = err.code
    status = statusFor(code)
    message = code === 'INTERNAL' ? 'internal error' : err.message
  } else if (err instanceof HTTPException) {
    status = err.status as ContentfulStatusCode
    code = CODE_FOR_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_INPUT')
    message = status >= 500 ? 'internal error' : err.message || 'bad request'
  } else {
    code = 'INTERNAL'
    status = 500
    message = 'internal error'
  }
  c.set('errorCode', code)
  if (status >= 500) {
    c.get('log')?.error({ err, code }, 'request.failed')
  }
  const details = err instanceof AppError ? err.details : undefined
  return c.json({ ...details, ...errorBody(c, code, message) }, status)
}

export function notFound(c: Context<AppEnv>): Response {
  c.set('errorCode', 'NOT_FOUND')
  return c.json(errorBody(c, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), 404)
}
