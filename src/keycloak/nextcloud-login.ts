import type IdentityProviderRepresentation from '@keycloak/keycloak-admin-client/lib/defs/identityProviderRepresentation.js'
import { type KcAdmin, kc } from './admin.js'
import { ensureIdentityProvider } from './identity-provider.js'

/** The realm's login through the app's OpenID provider (the signed-in Nextcloud user). */
export interface NextcloudLoginSpec {
  alias: string
  /** the provider's issuer; its authorize endpoint is `<issuer>/authorize` (through Nextcloud) */
  issuer: string
  /** where Keycloak calls the provider itself (token, keys), beside the app */
  backchannelUrl: string
  clientId: string
  clientSecret: string
  /** `nextcloud`: the realm's browser login goes straight to the provider; `keycloak`: its form */
  login: 'nextcloud' | 'keycloak'
  /**
   * what a first login of a Nextcloud user with no linked account does: `link` the synced account
   * of the same username (the synced realm; the default), or `deny` (the master realm: only the
   * console identities the app made and linked itself get in)
   */
  firstLogin?: 'link' | 'deny'
}

/** First-login flow: link the account the sync made (same username), ask nothing, create none. */
export const FIRST_LOGIN_FLOW = 'nextcloud first login'
/** First-login flow of the master realm: its one step denies (nobody unlinked gets in). */
export const DENY_FIRST_LOGIN_FLOW = 'nextcloud deny first login'
/** A copy of Keycloak's browser flow whose identity provider redirector goes to Nextcloud. */
export const BROWSER_FLOW = 'nextcloud browser'
const REDIRECTOR = 'identity-provider-redirector'

/** Keycloak masks a stored client secret when read: compared apart, written always. */
const SECRET_KEY = 'clientSecret'

export function nextcloudIdentityProvider(
  spec: NextcloudLoginSpec,
): IdentityProviderRepresentation & { alias: string } {
  return {
    alias: spec.alias,
    displayName: 'Nextcloud',
    providerId: 'oidc',
    enabled: true,
    trustEmail: true,
    storeToken: false,
    addReadTokenRoleOnCreate: false,
    linkOnly: false,
    firstBrokerLoginFlowAlias: firstLoginFlowOf(spec).alias,
    config: {
      issuer: spec.issuer,
      authorizationUrl: `${spec.issuer}/authorize`,
      tokenUrl: `${spec.backchannelUrl}/token`,
      jwksUrl: `${spec.backchannelUrl}/jwks`,
      useJwksUrl: 'true',
      validateSignature: 'true',
      clientId: spec.clientId,
      [SECRET_KEY]: spec.clientSecret,
      clientAuthMethod: 'client_secret_post',
      pkceEnabled: 'true',
      pkceMethod: 'S256',
      defaultScope: 'openid',
      // The ID token carries everything; the provider has no userinfo endpoint.
      disableUserInfo: 'true',
      // The sync keeps the profile; a login changes nothing in it.
      syncMode: 'IMPORT',
      backchannelSupported: 'false',
      sendClientIdOnLogout: 'false',
    },
  }
}

interface FirstLoginFlow {
  alias: string
  description: string
  /** its executions, all required, in order */
  steps: readonly string[]
}

function firstLoginFlowOf(spec: Pick<NextcloudLoginSpec, 'firstLogin'>): FirstLoginFlow {
  return spec.firstLogin === 'deny'
    ? {
        alias: DENY_FIRST_LOGIN_FLOW,
        description: 'Denies every Nextcloud user without a linked account; creates and links none',
        steps: ['deny-access-authenticator'],
      }
    : {
        alias: FIRST_LOGIN_FLOW,
        description: 'Links the synced account of the Nextcloud user; never asks, never creates',
        // No existing account (not synced, or outside the gate groups): the login fails.
        steps: ['idp-detect-existing-broker-user', 'idp-auto-link'],
      }
}

export interface LoginReport {
  changes: string[]
}

/** Makes the identity provider, its first-login flow and the realm's browser flow what `spec` says. */
export async function ensureNextcloudLogin(
  admin: KcAdmin,
  realm: string,
  spec: NextcloudLoginSpec,
  report: LoginReport,
): Promise<void> {
  await ensureFirstLoginFlow(admin, realm, firstLoginFlowOf(spec), report)
  await ensureIdentityProvider(admin, realm, nextcloudIdentityProvider(spec), report, [SECRET_KEY])
  await ensureBrowserFlow(admin, realm, spec.alias, report)
  const browserFlow = spec.login === 'nextcloud' ? BROWSER_FLOW : 'browser'
  const current = await kc('read realm', () => admin.realms.findOne({ realm }))
  if (current && current.browserFlow !== browserFlow) {
    await kc('bind the browser flow', () =>
      admin.realms.update({ realm }, { ...current, browserFlow }),
    )
    report.changes.push(`browser flow ${browserFlow} bound`)
  }
}

async function flowExists(admin: KcAdmin, realm: string, alias: string): Promise<boolean> {
  const flows = await kc('read flows', () => admin.authenticationManagement.getFlows({ realm }))
  return flows.some((f) => f.alias === alias)
}

async function ensureFirstLoginFlow(
  admin: KcAdmin,
  realm: string,
  flow: FirstLoginFlow,
  report: LoginReport,
) {
  const { alias } = flow
  if (!(await flowExists(admin, realm, alias))) {
    await kc('create the first-login flow', () =>
      admin.authenticationManagement.createFlow({
        realm,
        alias,
        description: flow.description,
        providerId: 'basic-flow',
        topLevel: true,
        builtIn: false,
      }),
    )
    report.changes.push(`flow ${alias} created`)
  }
  let executions = await kc('read executions', () =>
    admin.authenticationManagement.getExecutions({ realm, flow: alias }),
  )
  for (const provider of flow.steps) {
    if (!executions.some((e) => e.providerId === provider)) {
      await kc('add a first-login step', () =>
        admin.authenticationManagement.addExecutionToFlow({ realm, flow: alias, provider }),
      )
      report.changes.push(`flow ${alias}: ${provider} added`)
    }
  }
  executions = await kc('read executions', () =>
    admin.authenticationManagement.getExecutions({ realm, flow: alias }),
  )
  for (const execution of executions) {
    if (execution.requirement !== 'REQUIRED') {
      await kc('require a first-login step', () =>
        admin.authenticationManagement.updateExecution(
          { realm, flow: alias },
          { ...execution, requirement: 'REQUIRED' },
        ),
      )
      report.changes.push(`flow ${alias}: ${execution.providerId} required`)
    }
  }
}

async function ensureBrowserFlow(
  admin: KcAdmin,
  realm: string,
  alias: string,
  report: LoginReport,
) {
  if (!(await flowExists(admin, realm, BROWSER_FLOW))) {
    await kc('copy the browser flow', () =>
      admin.authenticationManagement.copyFlow({ realm, flow: 'browser', newName: BROWSER_FLOW }),
    )
    report.changes.push(`flow ${BROWSER_FLOW} created`)
  }
  const executions = await kc('read executions', () =>
    admin.authenticationManagement.getExecutions({ realm, flow: BROWSER_FLOW }),
  )
  const redirector = executions.find((e) => e.providerId === REDIRECTOR)
  if (!redirector?.id) {
    await kc('add the identity provider redirector', () =>
      admin.authenticationManagement.addExecutionToFlow({
        realm,
        flow: BROWSER_FLOW,
        provider: REDIRECTOR,
      }),
    )
    report.changes.push(`flow ${BROWSER_FLOW}: redirector added`)
    return ensureBrowserFlow(admin, realm, alias, report)
  }
  const desired = { defaultProvider: alias }
  if (!redirector.authenticationConfig) {
    await kc('configure the identity provider redirector', () =>
      admin.authenticationManagement.createConfig({
        realm,
        id: redirector.id as string,
        alias: `${BROWSER_FLOW} redirector`,
        config: desired,
      }),
    )
    report.changes.push(`flow ${BROWSER_FLOW}: redirector to ${alias}`)
    return
  }
  const config = await kc('read the redirector config', () =>
    admin.authenticationManagement.getConfig({
      realm,
      id: redirector.authenticationConfig as string,
    }),
  )
  if (config.config?.defaultProvider !== alias) {
    await kc('configure the identity provider redirector', () =>
      admin.authenticationManagement.updateConfig({
        ...config,
        realm,
        config: { ...config.config, ...desired },
      }),
    )
    report.changes.push(`flow ${BROWSER_FLOW}: redirector to ${alias}`)
  }
}
