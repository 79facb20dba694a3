import { createRoute, z } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Store } from '../db/store.js'
import { AppError } from '../errors.js'
import type { RunSummary, SyncEngine } from '../sync/engine.js'
import { errors, routes } from './openapi.js'

/** A Nextcloud uid: 1–64 of the characters Nextcloud allows. */
export const userIdSchema = z
  .string({ error: 'user_id must be a string' })
  .min(1, 'user_id must not be empty')
  .max(64, 'user_id is longer than Nextcloud allows')
  .regex(/^[a-zA-Z0-9 _.@'-]+$/, 'user_id has characters Nextcloud does not allow in a uid')
  // Nextcloud refuses these too; "." and ".." would also move the URL the app calls Nextcloud at.
  .refine((uid) => !/^\.+$/.test(uid), 'user_id cannot consist of dots only')

/** Bodies of the JSON API are tiny; anything larger is refused before it is read. */
export const MAX_JSON_BODY_BYTES = 16 * 1024

const limitBody = bodyLimit({
  maxSize: MAX_JSON_BODY_BYTES,
  onError: () => {
    throw new AppError('INVALID_INPUT', `request body larger than ${MAX_JSON_BODY_BYTES} bytes`)
  },
})

const userBody = {
  required: true,
  content: {
    'application/json': {
      schema: z.object({ user_id: userIdSchema.openapi({ example: 'alice' }) }),
    },
  },
}

/** A query flag: `1`, `true` or `yes` sets it. */
const flag = z.string().optional().openapi({ example: '1' })
const isSet = (value: string | undefined) =>
  value !== undefined && ['1', 'true', 'yes'].includes(value.toLowerCase())

/** A whole number in the query, from `min` (to `max`); an empty value is no value. */
function queryInt(message: string, min: number, max?: number) {
  let n = z.coerce.number({ error: message }).int(message).min(min, message)
  if (max !== undefined) {
    n = n.max(max, message)
  }
  return z.preprocess((v) => (v === '' ? undefined : v), n.optional())
}

/** The JSON API takes JSON only: any other body is refused as the input it cannot be. */
const jsonOnly: MiddlewareHandler = async (c, next) => {
  if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
    throw new AppError('INVALID_INPUT', 'Content-Type must be application/json')
  }
  await next()
}

const anyObject = z.looseObject({})
const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
})

const RunResponse = z
  .looseObject({
    status: z.string().openapi({ description: 'success, partial, guard_tripped or failed' }),
    runStatus: z.string(),
    synced: z.number().int(),
  })
  .openapi('RunResponse')

const UserResult = z
  .looseObject({ status: z.string(), user_id: z.string(), action: z.string(), run: z.number() })
  .openapi('UserResult')

export interface SyncRoutesDeps {
  sync: SyncEngine
  store: Store
  realm: string
}

/** The response of a full run: the original's `status` and `synced`, plus the whole summary. */
function runResponse(summary: RunSummary) {
  const synced = Object.values(summary.counts).reduce((a, b) => a + b, 0)
  const { status, ...rest } = summary
  // `partial`: the run went through but some writes failed; `errors` says which.
  const shown = status !== 'succeeded' ? status : summary.failed > 0 ? 'partial' : 'success'
  return { status: shown, runStatus: status, synced, ...rest }
}

const syncAll = createRoute({
  method: 'post',
  path: '/sync-all',
  summary: 'Full sync of Nextcloud into the realm',
  request: {
    query: z.object({
      dryRun: flag,
      force: flag.openapi({ description: 'pass the deletion guard (and read the whole realm)' }),
      full: flag.openapi({
        description:
          'a full reconciliation: read the managed realm from Keycloak instead of the stored state',
      }),
      background: flag.openapi({
        description:
          'answer 202 {status:"started", after} at once; the run is the first in /api/sync-runs with an id above `after`',
      }),
    }),
  },
  responses: {
    200: json('run summary', RunResponse),
    202: json(
      'run started in the background',
      z.object({ status: z.literal('started'), after: z.number().int() }),
    ),
    ...errors(400, 401, 403, 409, 429, 502),
  },
})

const syncUser = createRoute({
  method: 'post',
  path: '/sync-user',
  summary: 'Sync one user, re-read from Nextcloud',
  middleware: [limitBody, jsonOnly] as const,
  request: { body: userBody },
  responses: {
    200: json(
      'action is created, updated, unchanged, disabled, deleted or absent; run is the stored run id',
      UserResult,
    ),
    ...errors(400, 401, 403, 502),
  },
})

const deleteUser = createRoute({
  method: 'post',
  path: '/delete-user',
  summary: 'Disable or delete a user Nextcloud no longer has',
  middleware: [limitBody, jsonOnly] as const,
  request: { body: userBody },
  responses: {
    200: json(
      'disabled or deleted only when Nextcloud no longer has the user',
      UserResult.extend({ deleted: z.boolean(), still_in_nextcloud: z.boolean() }),
    ),
    ...errors(400, 401, 403, 502),
  },
})

const syncStatus = createRoute({
  method: 'get',
  path: '/sync-status',
  summary: 'The run in progress, the last run and the next scheduled one',
  responses: {
    200: json(
      'state of the sync',
      z.object({
        running: anyObject.nullable(),
        lastRun: anyObject.nullable(),
        nextRun: z.string().nullable(),
      }),
    ),
    ...errors(401, 403),
  },
})

const syncRuns = createRoute({
  method: 'get',
  path: '/sync-runs',
  summary: 'Stored sync runs, newest first',
  request: {
    query: z.object({
      limit: queryInt('must be a whole number of runs from 1 to 200', 1, 200).openapi({
        description: 'how many runs (default 20)',
        type: 'integer',
      }),
    }),
  },
  responses: {
    200: json('the runs', z.object({ runs: z.array(anyObject) })),
    ...errors(400, 401, 403),
  },
})

const syncRun = createRoute({
  method: 'get',
  path: '/sync-runs/{id}',
  summary: 'One stored run with its changelog',
  request: {
    params: z.object({
      id: z.coerce
        .number({ error: 'run id must be a positive integer' })
        .int('run id must be a positive integer')
        .positive('run id must be a positive integer')
        .openapi({ type: 'integer' }),
    }),
    query: z.object({
      limit: queryInt('must be a whole number of changes, 0 or more', 0).openapi({
        description: 'return only the first `limit` changes (`changelogTotal` says how many)',
        type: 'integer',
      }),
    }),
  },
  responses: {
    200: json('the run', anyObject),
    ...errors(400, 401, 403, 404),
  },
})

/** `/api/sync-*` and `/api/delete-user`; authentication is applied by the caller. */
export function syncRoutes({ sync, store, realm }: SyncRoutesDeps) {
  return routes()
    .openapi(syncAll, async (c) => {
      const query = c.req.valid('query')
      const dryRun = isSet(query.dryRun)
      const force = isSet(query.force)
      const full = isSet(query.full)
      if (isSet(query.background)) {
        if (dryRun) {
          throw new AppError('INVALID_INPUT', 'a dry run answers with its plan: drop background')
        }
        // The status page's "Sync now": answer at once, progress via /api/sync-status. The run
        // that ends this one is the first with an id above `after`.
        const [last] = await store.listRuns({ realm, limit: 1 })
        const log = c.get('log')
        sync.runFull({ trigger: 'ui', force, full }).catch((err: unknown) => {
          log.error({ err }, 'sync.background_run_failed')
        })
        return c.json({ status: 'started' as const, after: last?.id ?? 0 }, 202)
      }
      // A call of the API (an admin's script, or the status page's dry run); "Sync now" is the
      // background run above.
      const summary = await sync.runFull({ trigger: dryRun ? 'ui' : 'api', dryRun, force, full })
      const body = runResponse(summary)
      // A run that did not succeed is an error answer that still carries the run's summary.
      if (summary.status === 'guard_tripped') {
        throw new AppError('GUARD_TRIPPED', summary.message, { details: body })
      }
      if (summary.status === 'failed') {
        throw new AppError(summary.errorCode ?? 'INTERNAL', summary.message, { details: body })
      }
      return c.json(body, 200)
    })
    .openapi(syncUser, async (c) => {
      const { user_id } = c.req.valid('json')
      const result = await sync.runUser(user_id, 'user')
      return c.json({ ...result, run: result.run.runId }, 200)
    })
    .openapi(deleteUser, async (c) => {
      const { user_id } = c.req.valid('json')
      // Nextcloud stays the source of truth: the user is re-read, and removed only if it is gone.
      const result = await sync.runUser(user_id, 'user')
      const deleted =
        result.action === 'deleted' || result.action === 'disabled' || result.action === 'absent'
      return c.json(
        { ...result, run: result.run.runId, deleted, still_in_nextcloud: !deleted },
        200,
      )
    })
    .openapi(syncStatus, async (c) => {
      const [last] = await store.listRuns({ realm, limit: 1 })
      return c.json(
        {
          running: sync.progress() ?? null,
          lastRun: last ?? null,
          nextRun: sync.nextScheduledRun()?.toISOString() ?? null,
        },
        200,
      )
    })
    .openapi(syncRuns, async (c) => {
      const { limit } = c.req.valid('query')
      return c.json({ runs: await store.listRuns({ realm, limit: limit ?? 20 }) }, 200)
    })
    .openapi(syncRun, async (c) => {
      const { id } = c.req.valid('param')
      const { limit } = c.req.valid('query')
      // A 10 000-user run's changelog is megabytes; the status page asks for its head only.
      const run = await store.getRun(id, { limit })
      if (!run || run.realm !== realm) {
        throw new AppError('NOT_FOUND', `no sync run ${id}`)
      }
      return c.json(run, 200)
    })
}
