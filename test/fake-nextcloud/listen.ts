import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'

export interface Listening {
  url: string
  close(): Promise<void>
}

// biome-ignore lint/suspicious/noExplicitAny: accepts a Hono app of any env
type AnyHono = Hono<any>

/** Serves `app` on a free loopback port; `close()` also drops kept-alive connections. */
export function listen(app: AnyHono): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: '127.0.0.1', port: 0 },
      (info: AddressInfo) =>
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              const http = server as Server
              http.close(() => done())
              http.closeAllConnections()
            }),
        }),
    ) as Server
    server.once('error', reject)
  })
}
