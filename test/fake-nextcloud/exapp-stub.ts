import { Hono } from 'hono'
import { listen } from './listen.js'

export interface StubRequest {
  method: string
  /** with the query, as in the fixtures' request lines */
  path: string
  /** lower-cased names */
  headers: Record<string, string>
}

export interface ExAppStubOptions {
  /**
   * What `POST /init` starts in the background after answering `{}` (e.g. reporting progress
   * with the Nextcloud client); `'absent'` answers 404, which tells AppAPI no init is needed.
   */
  init?: 'absent' | (() => Promise<void>)
  /** pause between answering `/init` and starting `init`; default 10 ms */
  initDelayMs?: number
  /** the `error` of `/enabled` replies; default '' */
  enabledError?: string
  /** `/heartbeat` answers 503 while false; default true */
  healthy?: boolean
}

export interface ExAppStub {
  url: string
  requests: StubRequest[]
  /** change behaviour between calls */
  settings: { enabledError: string; healthy: boolean }
  /** settles when the background init started by the last `/init` has finished */
  initDone(): Promise<void>
  close(): Promise<void>
}

/**
 * A minimal ExApp for driving the fake's AppAPI side, like the "nc_stub" the fixtures were
 * captured with: it records what reaches it and performs no authentication.
 */
export async function startExAppStub(opts: ExAppStubOptions = {}): Promise<ExAppStub> {
  const requests: StubRequest[] = []
  const settings = { enabledError: opts.enabledError ?? '', healthy: opts.healthy ?? true }
  let init: Promise<void> = Promise.resolve()

  const app = new Hono()
    .use('*', async (c, next) => {
      const url = new URL(c.req.url)
      requests.push({
        method: c.req.method,
        path: url.pathname + url.search,
        headers: c.req.header(),
      })
      await next()
    })
    .get('/heartbeat', (c) => (settings.healthy ? c.json({ status: 'ok' }) : c.json({}, 503)))
    .post('/init', (c) => {
      if (opts.init === 'absent') {
        return c.json({ detail: 'Not Found' }, 404)
      }
      const work = opts.init
      // After the reply, as the fixtures' stub did (200 ms there).
      init = new Promise<void>((resolve) => setTimeout(resolve, opts.initDelayMs ?? 10)).then(() =>
        work?.(),
      )
      init.catch(() => undefined)
      return c.json({})
    })
    .put('/enabled', (c) => c.json({ error: settings.enabledError }))

  const server = await listen(app)
  return {
    url: server.url,
    requests,
    settings,
    initDone: () => init,
    close: server.close,
  }
}
