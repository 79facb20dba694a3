import { Hono } from 'hono'
import { z } from 'zod'
import type { Store } from '../db/store.js'
import { AppError } from '../errors.js'
import type { RunSummary, SyncEngine } from '../sync/engine.js'
import { errorBody, statusFor } from './errors.js'
import { jsonBody, limitBody, queryFlag } from './json-body.js'
import type { AppEnv } from './types.js'

/** A Nextcloud uid: 1–64 of the characters Nextcloud allows. */
export const userIdSchema = z
  .string({ error: 'user_id must be a string' })
  .min(1, 'user_id must not be empty')
  .max(64, 'user_id is longer than Nextcloud allows')
  .regex(/^[a-zA-Z0-9 _.@'-]+$/, 'user_id has characters Nextcloud does not allow in a uid')
  // Nextcloud refuses these too; "." and ".." would also move the URL the app calls Nextcloud at.
  .refine((uid) => !/^\.+$/.test(uid), 'user_id cannot consist of dots only')

const userBody = z.object({ user_id: userIdSchema })

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

/** `/api/sync-*` and `/api/delete-user`; authentication is applied by the caller. */
export function syncRoutes({ sync, store, realm }: SyncRoutesDeps) {
  return new Hono<AppEnv>()
    .post('/sync-all', async (c) => {
      const dryRun = queryFlag(c, 'dryRun')
      const force = queryFlag(c, 'force')
      if (queryFlag(c, 'background')) {
        if (dryRun) {
          throw new AppError('INVALID_INPUT', 'a dry run answers with its plan: drop background')
        }
        // The status page's "Sync now": answer at once, progress via /api/sync-status. The run
        // that ends this one is the first with an id above `after`.
        const [last] = await store.listRuns({ realm, limit: 1 })
        const log = c.get('log')
        sync.runFull({ trigger: 'ui', force }).catch((err: unknown) => {
          log.error({ err }, 'sync.background_run_failed')
        })
        return c.json({ status: 'started', after: last?.id ?? 0 }, 202)
      }
      // A call of the API (an admin's script, or the status page's dry run); "Sync now" is the
      // background run above.
      const summary = await sync.runFull({ trigger: dryRun ? 'ui' : 'api', dryRun, force })
      const body = runResponse(summary)
      if (summary.status === 'guard_tripped') {
        c.set('errorCode', 'GUARD_TRIPPED')
        return c.json({ ...body, ...errorBody(c, 'GUARD_TRIPPED', summary.message) }, 409)
      }
      if (summary.status === 'failed') {
        const code = summary.errorCode ?? 'INTERNAL'
        c.set('errorCode', code)
        return c.json({ ...body, ...errorBody(c, code, summary.message) }, statusFor(code))
      }
      return c.json(body)
    })
    .post('/sync-user', limitBody, async (c) => {
      const { user_id } = await jsonBody(c, userBody)
      const result = await sync.runUser(user_id, 'user')
      return c.json({ ...result, run: result.run.runId })
    })
    .post('/delete-user', limitBody, async (c) => {
      const { user_id } = await jsonBody(c, userBody)
      // Nextcloud stays the source of truth: the user is re-read, and removed only if it is gone.
      const result = await sync.runUser(user_id, 'user')
      const deleted =
        result.action === 'deleted' || result.action === 'disabled' || result.action === 'absent'
      return c.json({ ...result, run: result.run.runId, deleted, still_in_nextcloud: !deleted })
    })
    .get('/sync-status', async (c) => {
      const [last] = await store.listRuns({ realm, limit: 1 })
      return c.json({
        running: sync.progress() ?? null,
        lastRun: last ?? null,
        nextRun: sync.nextScheduledRun()?.toISOString() ?? null,
      })
    })
    .get('/sync-runs', async (c) => {
      const limit = z.coerce
        .number()
        .int()
        .min(1)
        .max(200)
        .default(20)
        .safeParse(c.req.query('limit') || undefined)
      if (!limit.success) {
        throw new AppError('INVALID_INPUT', 'limit must be a whole number of runs from 1 to 200')
      }
      return c.json({ runs: await store.listRuns({ realm, limit: limit.data }) })
    })
    .get('/sync-runs/:id', async (c) => {
      const id = z.coerce.number().int().positive().safeParse(c.req.param('id'))
      if (!id.success) {
        throw new AppError('INVALID_INPUT', 'run id must be a positive integer')
      }
      const limit = z.coerce
        .number()
        .int()
        .min(0)
        .optional()
        .safeParse(c.req.query('limit') || undefined)
      if (!limit.success) {
        throw new AppError('INVALID_INPUT', 'limit must be a whole number of changes, 0 or more')
      }
      // A 10 000-user run's changelog is megabytes; the status page asks for its head only.
      const run = await store.getRun(id.data, { limit: limit.data })
      if (!run || run.realm !== realm) {
        throw new AppError('NOT_FOUND', `no sync run ${id.data}`)
      }
      return c.json(run)
    })
}
