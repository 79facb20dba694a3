import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAdaptorServer } from '@hono/node-server'
import { afterEach, describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { silentLogger } from '../log.js'
import { BROKER_CLIENT_ID, clientSecretName, NEXTCLOUD_IDP_ALIAS } from '../oidc/clients.js'
import { type Listening, listenAll } from './listening.js'

const VERIFIER = 'verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG'

/** One request over the unix socket; resolves with the status. */
function overSocket(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('listenAll', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) {
      await step()
    }
  })

  async function start(socket: boolean) {
    const t = await buildTestApp()
    let config = t.config
    if (socket) {
      const dir = await mkdtemp(join(tmpdir(), 'exapp-socket-'))
      cleanup.push(() => rm(dir, { recursive: true, force: true }))
      config = { ...t.config, app: { ...t.config.app, socketPath: join(dir, 'exapp.sock') } }
    }
    const server = createAdaptorServer({ fetch: t.app.fetch })
    const listening: Listening = await listenAll(server, config, 0, t.oidc, silentLogger())
    cleanup.push(() => listening.close())
    return { t, config, listening }
  }

  it('on a unix socket, serves Keycloak the provider’s back-channel, and only that, on loopback', async () => {
    const { t, config, listening } = await start(true)
    const socketPath = config.app.socketPath as string
    expect(listening.url).toBe(socketPath)
    expect(await overSocket(socketPath, '/heartbeat')).toBe(200)
    const base = listening.keycloakUrl
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const discovery = (await (
      await fetch(`${base}/oidc/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>
    expect(discovery).toMatchObject({
      issuer: t.oidc.issuer,
      token_endpoint: `${base}/oidc/token`,
      jwks_uri: `${base}/oidc/jwks`,
    })
    const jwks = await fetch(`${base}/oidc/jwks`)
    expect(jwks.status).toBe(200)
    expect(await jwks.json()).toEqual(await (await t.app.request('/oidc/jwks')).json())

    // A code the browser got through Nextcloud is redeemed here, as Keycloak does.
    const secret = await t.memory.store.getOrCreateSecret(
      clientSecretName(BROKER_CLIENT_ID),
      () => 'broker-secret-0123456789abcdef',
    )
    const redirectUri = `${t.config.keycloak.publicUrl}/realms/${t.config.keycloak.realm}/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
    const authorize = new URLSearchParams({
      response_type: 'code',
      client_id: BROKER_CLIENT_ID,
      redirect_uri: redirectUri,
      scope: 'openid',
      state: 's',
      code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
      code_challenge_method: 'S256',
    })
    const to = await t.app.request(`/oidc/authorize?${authorize}`, { headers: t.as('alice') })
    const code = new URL(to.headers.get('location') ?? '').searchParams.get('code') as string
    expect(code).toBeTruthy()
    const token = await fetch(`${base}/oidc/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${BROKER_CLIENT_ID}:${secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: VERIFIER,
      }).toString(),
    })
    expect(token.status).toBe(200)
    expect(await token.json()).toHaveProperty('id_token')

    for (const [method, path] of [
      ['GET', `/oidc/authorize?${authorize}`],
      ['GET', '/oidc/token'],
      ['GET', '/oidc/userinfo'],
      ['POST', '/api/token'],
      ['GET', '/api/ui/overview'],
      ['GET', '/heartbeat'],
      ['GET', '/healthz'],
      ['POST', '/init'],
      ['PUT', '/enabled?enabled=0'],
      ['GET', '/metrics'],
      ['GET', '/'],
      ['GET', '/admin/master/console/'],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, headers: t.as('admin') })
      expect(res.status, `${method} ${path}`).toBe(404)
      await res.body?.cancel()
    }
  })

  it('on TCP, Keycloak calls the app’s own address and there is no second listener', async () => {
    const { listening } = await start(false)
    expect(listening.keycloakUrl).toBe(listening.url)
    expect((await fetch(`${listening.url}/heartbeat`)).status).toBe(200)
  })
})
