import { createHash } from 'node:crypto'
import { createAdaptorServer } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { startHarpProxy } from '../../test/harp-proxy.js'
import {
  closeServer,
  listenOn,
  NC_CSP,
  type RunningTestProxy,
  routesFromInfoXml,
  startPhpProxy,
} from '../../test/php-proxy.js'
import { BROKER_CLIENT_ID, clientSecretName, NEXTCLOUD_IDP_ALIAS } from './clients.js'

/**
 * The authorize step through the stand-ins of Nextcloud's two proxies, with the routes of
 * appinfo/info.xml: AppAPI's PHP proxy follows a 302 itself, so what reaches the browser must be
 * a page; HaRP hands the 302 on.
 */
const VERIFIER = 'verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG'

describe('the OpenID provider behind Nextcloud’s proxies', () => {
  let t: Awaited<ReturnType<typeof buildTestApp>>
  let php: RunningTestProxy
  let harp: RunningTestProxy
  const closers: (() => Promise<void>)[] = []

  beforeAll(async () => {
    t = await buildTestApp()
    const server = createAdaptorServer({ fetch: t.app.fetch })
    const target = await listenOn(server as Parameters<typeof listenOn>[0])
    closers.push(() => closeServer(server as Parameters<typeof closeServer>[0]))
    const opts = {
      target,
      appId: t.config.app.id,
      appSecret: t.config.app.secret,
      routes: routesFromInfoXml(new URL('../../appinfo/info.xml', import.meta.url).pathname),
      users: { alice: { admin: false }, admin: { admin: true } },
    }
    php = await startPhpProxy(opts)
    harp = await startHarpProxy(opts)
    closers.push(
      () => php.close(),
      () => harp.close(),
    )
  })
  afterAll(async () => {
    for (const close of closers.splice(0).reverse()) {
      await close()
    }
  })

  const redirectUri = () =>
    `${t.config.keycloak.publicUrl}/realms/${t.config.keycloak.realm}/broker/${NEXTCLOUD_IDP_ALIAS}/endpoint`
  const query = () =>
    new URLSearchParams({
      response_type: 'code',
      client_id: BROKER_CLIENT_ID,
      redirect_uri: redirectUri(),
      scope: 'openid',
      state: 'st',
      nonce: 'nn',
      code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString()
  const get = (proxy: RunningTestProxy, user?: string) =>
    fetch(`${proxy.publicUrl}/oidc/authorize?${query()}`, {
      redirect: 'manual',
      headers: user ? { cookie: `nc_session_id=${user}` } : {},
    })
  /** The URL a page moves the browser to (its meta refresh). */
  const pageTarget = (html: string) =>
    new URL((/content="0;url=([^"]+)"/.exec(html)?.[1] ?? '').replace(/&#38;/g, '&'))

  it('PHP proxy: a signed-in user gets a page, under its own CSP, that carries the code on', async () => {
    const res = await get(php, 'alice')
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    const csp = res.headers.get('content-security-policy')
    expect(csp).not.toBe(NC_CSP)
    expect(csp).toBe("default-src 'none'; frame-ancestors 'self'")
    const to = pageTarget(await res.text())
    expect(`${to.origin}${to.pathname}`).toBe(redirectUri())
    expect(to.searchParams.get('state')).toBe('st')
    // Keycloak redeems it directly at the app.
    const secret = await t.memory.store.getOrCreateSecret(
      clientSecretName(BROKER_CLIENT_ID),
      () => 'unused',
    )
    const token = await t.app.request('/oidc/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: to.searchParams.get('code') ?? '',
        redirect_uri: redirectUri(),
        code_verifier: VERIFIER,
        client_id: BROKER_CLIENT_ID,
        client_secret: secret,
      }).toString(),
    })
    expect(token.status).toBe(200)
  })

  it('PHP proxy: a visitor gets a page to Nextcloud’s login, with the way back', async () => {
    const res = await get(php)
    expect(res.status).toBe(200)
    expect(res.headers.get('location')).toBeNull()
    const to = pageTarget(await res.text())
    expect(to.pathname.endsWith('/index.php/login')).toBe(true)
    expect(to.searchParams.get('redirect_url')).toBe(
      `${new URL(t.config.keycloak.publicUrl).pathname}/oidc/authorize?${query()}&from_nextcloud_login=1`,
    )
  })

  it('HaRP: the 302 reaches the browser', async () => {
    const res = await get(harp, 'alice')
    expect(res.status).toBe(302)
    const to = new URL(res.headers.get('location') ?? '')
    expect(`${to.origin}${to.pathname}`).toBe(redirectUri())
    expect(to.searchParams.get('code')).toBeTruthy()
    const visitor = await get(harp)
    expect(visitor.status).toBe(302)
    expect(
      new URL(visitor.headers.get('location') ?? '').pathname.endsWith('/index.php/login'),
    ).toBe(true)
  })

  it('neither proxy lets the browser reach the token endpoint, keys or discovery of a visitor', async () => {
    for (const proxy of [php, harp]) {
      for (const [method, path] of [
        ['POST', '/oidc/token'],
        ['GET', '/oidc/jwks'],
        ['GET', '/oidc/.well-known/openid-configuration'],
      ] as const) {
        const res = await fetch(`${proxy.publicUrl}${path}`, { method, redirect: 'manual' })
        expect([403, 404], `${method} ${path}`).toContain(res.status)
      }
    }
  })
})
