import type { Config } from '../config/config.js'
import { listen, type Server } from '../http/listen.js'
import type { Logger } from '../log.js'
import { listenBackchannel } from '../oidc/backchannel.js'
import type { OidcProvider } from '../oidc/provider.js'

export interface Listening {
  /** where the app listens: its TCP URL, or HaRP's unix socket path */
  url: string
  /** where Keycloak reaches the OpenID provider's token endpoint and keys (TCP) */
  keycloakUrl: string
  /** stops both listeners */
  close(): Promise<void>
}

/**
 * The app's listener and, when that is HaRP's unix socket, the provider's back-channel on a
 * loopback port of its own (Keycloak calls over TCP and cannot use the socket).
 */
export async function listenAll(
  server: Server,
  config: Config,
  port: number | undefined,
  oidc: OidcProvider,
  log: Logger,
): Promise<Listening> {
  const url = await listen(server, config, port)
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()))
  const backchannel = config.app.socketPath
    ? await listenBackchannel(oidc, log).catch(async (err: unknown) => {
        await close()
        throw err
      })
    : undefined
  return {
    url,
    keycloakUrl: backchannel?.url ?? url,
    async close() {
      await close()
      await backchannel?.close()
    },
  }
}
