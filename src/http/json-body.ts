import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { z } from 'zod'
import { AppError } from '../errors.js'
import type { AppEnv } from './types.js'

/** Bodies of the JSON API are tiny; anything larger is refused before it is read. */
export const MAX_JSON_BODY_BYTES = 16 * 1024

export const limitBody = bodyLimit({
  maxSize: MAX_JSON_BODY_BYTES,
  onError: () => {
    throw new AppError('INVALID_INPUT', `request body larger than ${MAX_JSON_BODY_BYTES} bytes`)
  },
})

/** Parses a JSON body against `schema`; every failure is a 400 INVALID_INPUT with the reason. */
export async function jsonBody<T extends z.ZodType>(
  c: Context<AppEnv>,
  schema: T,
): Promise<z.infer<T>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) {
    throw new AppError('INVALID_INPUT', 'Content-Type must be application/json')
  }
  let raw: unknown
  try {
    raw = await c.req.json()
  } catch {
    throw new AppError('INVALID_INPUT', 'body is not valid JSON')
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const reasons = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
    throw new AppError('INVALID_INPUT', reasons.join('; '))
  }
  return parsed.data
}

/** `1`, `true` or `yes` in the query. */
export function queryFlag(c: Context<AppEnv>, name: string): boolean {
  const value = c.req.query(name)
  return value !== undefined && ['1', 'true', 'yes'].includes(value.toLowerCase())
}
