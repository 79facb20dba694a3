import { chmod, rm } from 'node:fs/promises'
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { createAdaptorServer } from '@hono/node-server'
import type { Config } from '../config/config.js'
import { acceptEmptyContentLength } from './empty-content-length.js'

export type Server = ReturnType<typeof createAdaptorServer>

/**
 * TCP on APP_HOST:APP_PORT, or under HaRP the unix socket FRP forwards to. Requests with an empty
 * `Content-Length` header (AppAPI's PHP proxy behind nginx + php-fpm) reach the app.
 */
export async function listen(server: Server, config: Config, port?: number): Promise<string> {
  acceptEmptyContentLength(server as HttpServer)
  const socketPath = config.app.socketPath
  if (socketPath) {
    await rm(socketPath, { force: true })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, () => resolve())
    })
    // frpc runs as another user in some images; the socket is the only way in.
    await chmod(socketPath, 0o666)
    return socketPath
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port ?? config.app.port, config.app.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  return `http://${config.app.host}:${address.port}`
}
