import { describe, expect, it } from 'vitest'
import { testConfig } from '../../test/config.js'
import { nextcloudIdentityProvider } from '../keycloak/nextcloud-login.js'
import { loopbackUrl } from '../oidc/from-config.js'
import { realmSpecFor } from './realm-spec.js'

const secret = async (clientId: string) => `secret-of-${clientId}-0123456789`

describe('the realm login in the realm spec', () => {
  const broker = (url: string | undefined) => ({
    backchannelUrl: async () => loopbackUrl(url),
    secret: async () => 'broker-secret-0123456789',
    consoleSecret: async () => 'console-secret-0123456789',
  })

  it('points the browser at the public prefix and Keycloak at the app’s loopback address', async () => {
    const config = testConfig({ NEXTCLOUD_URL: 'https://cloud.example', APP_ID: 'keycloak' })
    const spec = await realmSpecFor(config, secret, undefined, broker('http://0.0.0.0:23000'))
    expect(spec.nextcloudLogin).toEqual({
      alias: 'nextcloud',
      issuer: 'https://cloud.example/index.php/apps/app_api/proxy/keycloak/oidc',
      backchannelUrl: 'http://127.0.0.1:23000/oidc',
      clientId: 'keycloak-broker',
      clientSecret: 'broker-secret-0123456789',
      login: 'nextcloud',
    })
    const idp = nextcloudIdentityProvider(
      spec.nextcloudLogin as NonNullable<typeof spec.nextcloudLogin>,
    )
    expect(idp.config).toMatchObject({
      authorizationUrl:
        'https://cloud.example/index.php/apps/app_api/proxy/keycloak/oidc/authorize',
      tokenUrl: 'http://127.0.0.1:23000/oidc/token',
      jwksUrl: 'http://127.0.0.1:23000/oidc/jwks',
      issuer: 'https://cloud.example/index.php/apps/app_api/proxy/keycloak/oidc',
      pkceEnabled: 'true',
      pkceMethod: 'S256',
      clientAuthMethod: 'client_secret_post',
    })
  })

  it('keeps Keycloak’s form with KEYCLOAK_LOGIN=keycloak, and the issuer apart from KC_HOSTNAME', async () => {
    const config = testConfig({
      NEXTCLOUD_URL: 'https://cloud.example',
      KEYCLOAK_LOGIN: 'keycloak',
      KC_HOSTNAME: 'https://sso.example',
    })
    const spec = await realmSpecFor(config, secret, undefined, broker('http://127.0.0.1:4000'))
    expect(spec.nextcloudLogin).toMatchObject({
      login: 'keycloak',
      issuer: 'https://cloud.example/index.php/apps/app_api/proxy/keycloak/oidc',
    })
  })

  it('configures no Nextcloud login when the only address given for the back-channel is a unix socket', async () => {
    const config = testConfig({ NEXTCLOUD_URL: 'https://cloud.example' })
    const spec = await realmSpecFor(config, secret, undefined, broker('/tmp/exapp.sock'))
    expect(spec.nextcloudLogin).toBeUndefined()
  })

  it('configures the master realm’s console login only with KEYCLOAK_CONSOLE_LOGIN=nextcloud', async () => {
    const on = testConfig({
      NEXTCLOUD_URL: 'https://cloud.example',
      KEYCLOAK_CONSOLE_LOGIN: 'nextcloud',
      KEYCLOAK_LOGIN: 'keycloak',
    })
    const spec = await realmSpecFor(on, secret, undefined, broker('http://127.0.0.1:23000'))
    expect(spec.console?.login).toEqual({
      alias: 'nextcloud',
      issuer: 'https://cloud.example/index.php/apps/app_api/proxy/keycloak/oidc',
      backchannelUrl: 'http://127.0.0.1:23000/oidc',
      clientId: 'keycloak-console-broker',
      clientSecret: 'console-secret-0123456789',
      login: 'nextcloud',
      firstLogin: 'deny',
    })
    expect(spec.console?.profile.markerAttributes).toEqual(['nextcloud_console', 'nextcloud_uid'])
    const off = testConfig({
      NEXTCLOUD_URL: 'https://cloud.example',
      KEYCLOAK_CONSOLE_LOGIN: 'keycloak',
    })
    expect(
      (await realmSpecFor(off, secret, undefined, broker('http://127.0.0.1:23000'))).console,
    ).toBeUndefined()
  })

  it('refuses a KEYCLOAK_LOGIN it does not know', () => {
    expect(() => testConfig({ KEYCLOAK_LOGIN: 'both' })).toThrow(/KEYCLOAK_LOGIN/)
  })
})
