import { AppError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { restrictToOwner } from '../storage-modes.js'
import { type PgliteResult, type PgliteThread, startPgliteThread } from './pglite-worker.js'

/** What the app knows about its database right now; `/healthz` reports it. */
export interface DatabaseHealth {
  status: 'ok' | 'failing' | 'stalled' | 'reopening'
  /** why it is not ok (an error message, never data) */
  detail?: string
  /** ISO time the status began */
  since: string
}

/** The part of PGlite's client that drizzle's PGlite driver calls. */
export interface PgliteLike {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<PgliteResult>
  exec(sql: string): Promise<PgliteResult[]>
  transaction<T>(fn: (tx: PgliteTx) => Promise<T>): Promise<T>
}

interface PgliteTx {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<PgliteResult>
  exec(sql: string): Promise<PgliteResult[]>
  rollback(): Promise<void>
  readonly closed: boolean
}

interface QueryOptions {
  rowMode?: 'array' | 'object'
  parsers?: Record<number, (value: string, typeId: number) => unknown>
}

export interface RemotePglite {
  client: PgliteLike
  health(): DatabaseHealth
  close(): Promise<void>
}

export interface RemotePgliteOptions {
  dataDir: string
  log: Logger
  /** a call not answered within this is taken for a hung database (default 60 s) */
  callTimeoutMs?: number
  /** time allowed to open the files, recovery included (default 120 s) */
  openTimeoutMs?: number
  /** pause between checks of a failing database (default 5 s) */
  probeIntervalMs?: number
  /** tests: the thread to run PGlite on */
  startThread?: (dataDir: string) => PgliteThread
}

/**
 * PGlite on a thread of its own, watched. A call that fails because of the files (disk full, a
 * file that cannot be opened or written) fails its caller, and the database is reported
 * `failing` until a checkpoint, tried every few seconds, succeeds again. A call not answered in
 * time (PGlite can loop forever after such an error) stops the thread: waiting callers fail, the
 * database is `stalled`, then `reopening` until PGlite opens the same files again (Postgres
 * recovery replays what was committed), retried with backoff for as long as it takes. The app's
 * own thread never waits for any of it.
 */
export async function openRemotePglite(opts: RemotePgliteOptions): Promise<RemotePglite> {
  const log = opts.log
  const callTimeoutMs = opts.callTimeoutMs ?? 60_000
  const openTimeoutMs = opts.openTimeoutMs ?? 120_000
  const probeIntervalMs = opts.probeIntervalMs ?? 5_000
  const start = opts.startThread ?? startPgliteThread

  let health: DatabaseHealth = { status: 'ok', since: new Date().toISOString() }
  const setHealth = (status: DatabaseHealth['status'], detail?: string) => {
    if (status !== health.status || detail !== health.detail) {
      health = { status, ...(detail ? { detail } : {}), since: new Date().toISOString() }
    }
  }
  let thread: PgliteThread | undefined
  let closed = false
  let probeTimer: NodeJS.Timeout | undefined
  let reopening: Promise<void> | undefined

  /** The connection is one session: a transaction has it to itself, as in PGlite. */
  let queue: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn)
    queue = run.catch(() => undefined)
    return run
  }

  const openThread = async (): Promise<PgliteThread> => {
    const t = start(opts.dataDir)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`PGlite did not open within ${Math.round(openTimeoutMs / 1000)} s`)),
        openTimeoutMs,
      )
    })
    try {
      await Promise.race([t.ready, timeout])
      // PGlite unpacks its initial files 0666 and rewrites its relation cache file 0644 on every
      // open, whatever the umask: the state is the owner's alone.
      await restrictToOwner(opts.dataDir)
      log.debug({ bundle: t.bundle() ?? null }, 'db.thread_ready')
      return t
    } catch (err) {
      await t.terminate()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  const stall = (t: PgliteThread, what: string) => {
    if (t !== thread || closed) {
      return
    }
    thread = undefined
    const detail = `${what} got no answer within ${Math.round(callTimeoutMs / 1000)} s`
    log.error({ detail }, 'db.stalled')
    setHealth('stalled', detail)
    void t.terminate()
    reopen()
  }

  const reopen = () => {
    if (reopening || closed) {
      return
    }
    stopProbing()
    reopening = (async () => {
      for (let attempt = 1; !closed; attempt++) {
        setHealth('reopening', health.detail)
        try {
          const t = await openThread()
          if (closed) {
            await t.terminate()
            return
          }
          thread = t
          setHealth('ok')
          log.warn({ attempt }, 'db.reopened')
          return
        } catch (err) {
          const wait = Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5))
          setHealth('reopening', `cannot reopen the database: ${errorMessage(err)}`)
          log.error({ attempt, retryInMs: wait, err: errorMessage(err) }, 'db.reopen_failed')
          await new Promise((resolve) => setTimeout(resolve, wait).unref())
        }
      }
    })().finally(() => {
      reopening = undefined
    })
  }

  const stopProbing = () => {
    clearTimeout(probeTimer)
    probeTimer = undefined
  }
  const probeLater = () => {
    if (probeTimer || closed) {
      return
    }
    probeTimer = setTimeout(() => {
      probeTimer = undefined
      void exclusive(() => send({ op: 'exec', sql: 'CHECKPOINT' }, 'a checkpoint')).then(
        () => {
          if (health.status === 'failing') {
            setHealth('ok')
            log.warn('db.recovered')
          }
        },
        () => probeLater(),
      )
    }, probeIntervalMs)
    probeTimer.unref()
  }

  /** One request to the current thread, watched. */
  const send = async (request: Parameters<PgliteThread['send']>[0], what: string) => {
    const t = thread
    if (!t) {
      throw new AppError(
        'INTERNAL',
        `the embedded database is unavailable (${health.status}${health.detail ? `: ${health.detail}` : ''})`,
      )
    }
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        t.send(request),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            stall(t, what)
            reject(
              new AppError(
                'INTERNAL',
                `the embedded database did not answer within ${Math.round(callTimeoutMs / 1000)} s; it is being reopened`,
              ),
            )
          }, callTimeoutMs)
        }),
      ])
    } catch (err) {
      if (t === thread && isFileError(err)) {
        if (health.status !== 'failing') {
          log.error({ err: errorMessage(err) }, 'db.failing')
        }
        setHealth('failing', errorMessage(err))
        probeLater()
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  const query = (sql: string, params: unknown[] = [], options: QueryOptions = {}) =>
    send(
      {
        op: 'query',
        sql,
        params,
        rowMode: options.rowMode ?? 'object',
        rawTypes: rawTypesOf(options.parsers),
      },
      'a query',
    ) as Promise<PgliteResult>
  const exec = (sql: string) => send({ op: 'exec', sql }, 'a statement') as Promise<PgliteResult[]>

  const client: PgliteLike = {
    query: (sql, params, options) => exclusive(() => query(sql, params, options)),
    exec: (sql) => exclusive(() => exec(sql)),
    transaction: (fn) =>
      exclusive(async () => {
        await exec('BEGIN')
        let done = false
        const open = () => {
          if (done) {
            throw new Error('Transaction is closed')
          }
        }
        const tx: PgliteTx = {
          query: async (sql, params, options) => {
            open()
            return query(sql, params, options)
          },
          exec: async (sql) => {
            open()
            return exec(sql)
          },
          async rollback() {
            open()
            await exec('ROLLBACK')
            done = true
          },
          get closed() {
            return done
          },
        }
        try {
          const result = await fn(tx)
          if (!done) {
            done = true
            const [commit] = await exec('COMMIT')
            // A failed statement inside turns COMMIT into ROLLBACK: the caller must know.
            if (commit?.command === 'ROLLBACK') {
              throw new AppError('INTERNAL', 'the transaction was rolled back')
            }
          }
          return result
        } catch (err) {
          if (!done) {
            done = true
            await exec('ROLLBACK').catch(() => undefined)
          }
          throw err
        }
      }),
  }

  thread = await openThread()
  return {
    client,
    health: () => health,
    async close() {
      closed = true
      stopProbing()
      const t = thread
      thread = undefined
      if (t) {
        await Promise.race([
          t.send({ op: 'close' }).catch(() => undefined),
          new Promise((resolve) => setTimeout(resolve, 10_000).unref()),
        ])
        await t.terminate()
      }
    },
  }
}

/**
 * drizzle asks PGlite to hand back some types as the text Postgres sent (its parsers are the
 * identity); those type ids cross to the thread. Any other parser cannot, and is refused.
 */
function rawTypesOf(parsers: QueryOptions['parsers'] = {}): number[] {
  return Object.entries(parsers).map(([oid, parse]) => {
    const probe = 'probe'
    if (parse(probe, Number(oid)) !== probe) {
      throw new AppError('INTERNAL', `a PGlite parser for type ${oid} cannot cross threads`)
    }
    return Number(oid)
  })
}

/**
 * Errors that come from the files rather than from the SQL: out of disk or memory (class 53),
 * the operating system (58), an internal error (XX), or a file Postgres may not open or write
 * (42501 with "could not …", e.g. a read-only or immutable file).
 */
function isFileError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string') {
    return false
  }
  return (
    code.startsWith('53') ||
    code.startsWith('58') ||
    code.startsWith('XX') ||
    (code === '42501' && /^could not /.test(errorMessage(err)))
  )
}
