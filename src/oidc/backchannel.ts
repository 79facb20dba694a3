import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { accessLog } from '../http/access-log.js'
import { notFound, onError } from '../http/errors.js'
import type { AppEnv } from '../http/types.js'
import type { Logger } from '../log.js'
import type { OidcProvider } from './provider.js'
import { oidcBackchannelRoutes } from './routes.js'

export interface Backchannel {
  /** `http://127.0.0.1:<port>`: where Keycloak calls the provider's token endpoint and keys */
  url: string
  close(): Promise<void>
}

/**
 * The provider's back-channel alone: the token endpoint, the keys and discovery, every other path
 * 404. Nothing else of the app is here, so nothing here needs the access table: these routes are
 * `anonymous` in it too, and the token endpoint authenticates its clients itself.
 */
export function backchannelApp(provider: OidcProvider, log: Logger): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.use(accessLog(log))
  app.onError(onError)
  app.notFound(notFound)
  return app.route('/', oidcBackchannelRoutes(provider))
}

/**
 * Under HaRP the app listens on a unix socket only, which Keycloak (beside the app, over TCP)
 * cannot call; this gives it a loopback port of its own, chosen by the system (`port` 0). The
 * realm bootstrap, run at every start, points the identity provider at it.
 */
export async function listenBackchannel(
  provider: OidcProvider,
  log: Logger,
  port = 0,
): Promise<Backchannel> {
  const server = createAdaptorServer({ fetch: backchannelApp(provider, log).fetch })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  log.info({ url }, 'oidc.backchannel_listening')
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
