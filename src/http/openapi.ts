import type { Hook } from '@hono/zod-openapi'
import { OpenAPIHono, z } from '@hono/zod-openapi'
import { AppError } from '../errors.js'
import { ACCESS, type AccessEntry } from './access.js'
import type { AppEnv } from './types.js'

/** The body of every error answer (see src/http/errors.ts). */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'FORBIDDEN' }),
      message: z.string(),
      requestId: z.string(),
    }),
  })
  .openapi('Error')

/** Error responses of an operation, by status. */
export function errors<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: 'error', content: { 'application/json': { schema: ErrorSchema } } },
    ]),
  ) as Record<
    S,
    { description: string; content: { 'application/json': { schema: typeof ErrorSchema } } }
  >
}

/**
 * The one place a request that does not fit its route's schemas is refused: a 400 INVALID_INPUT
 * naming each field and what is wrong with it, written by the app's onError.
 */
export const invalidInput: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const reasons = result.error.issues.map(
      (i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`,
    )
    throw new AppError('INVALID_INPUT', reasons.join('; '))
  }
}

/** A router whose routes are declared with their schemas and validated through `invalidInput`. */
export function routes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: invalidInput })
}

/**
 * Who may call an operation, as the access table says (src/http/access.ts): a consumer shows as
 * the `apiSecret` scheme, Nextcloud callers through AppAPI as `appApi`; an anonymous route has none.
 */
export function securityFor(path: string, method: string): Record<string, string[]>[] {
  const honoPath = path.replace(/\{(\w+)\}/g, ':$1')
  const entry = (ACCESS as readonly AccessEntry[]).find(
    (e) => e.paths.includes(honoPath) && e.methods.includes(method.toUpperCase() as never),
  )
  if (!entry) {
    throw new Error(
      `${method.toUpperCase()} ${path} is in the OpenAPI document but not in the access table`,
    )
  }
  if (entry.callers.includes('anonymous')) {
    return []
  }
  const schemes: Record<string, string[]>[] = []
  if (entry.callers.includes('consumer')) {
    schemes.push({ apiSecret: [] })
  }
  if (entry.callers.some((k) => k.startsWith('nextcloud-') || k === 'appapi-system')) {
    schemes.push({ appApi: [] })
  }
  return schemes
}

/**
 * The document of the routes of `api`, mounted at `prefix`, as served at `/api/openapi.json`.
 * Security comes from the access table, so the document cannot promise what the app refuses.
 */
export function openApiDocument(api: OpenAPIHono<AppEnv>, prefix: string, version: string) {
  const doc = api.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'keycloak-exapp API',
      version,
      description:
        'Tokens for Nextcloud users, for other external apps (server-side), and the sync of Nextcloud into the Keycloak realm.',
    },
  })
  const paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>> = {}
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const full = `${prefix}${path}`
    const ops = item as Record<string, { security?: Record<string, string[]>[] }>
    for (const [method, op] of Object.entries(ops)) {
      op.security = securityFor(full, method)
    }
    paths[full] = ops
  }
  return {
    ...doc,
    paths,
    components: {
      ...doc.components,
      securitySchemes: {
        apiSecret: { type: 'apiKey', in: 'header', name: 'X-API-SECRET' },
        appApi: {
          type: 'apiKey',
          in: 'header',
          name: 'AUTHORIZATION-APP-API',
          description: "Set by Nextcloud's AppAPI proxy for the logged-in user",
        },
      },
    },
  }
}
