import { AppError } from '../errors.js'
import type { Logger } from '../log.js'
import { type AdminLogin, type AdminToken, type KcAdmin, kc } from './admin.js'
import { MANAGED_CLIENT_ATTRIBUTE } from './bootstrap.js'

/**
 * The app's own identity in the master realm: a confidential client whose service account holds
 * the master role `admin`. The app talks to Keycloak as it, not as the bootstrap admin, so the
 * temporary bootstrap admin can go.
 */
export interface ServiceAccount {
  clientId: string
  secret: string
}

/** The attribute Keycloak 26 sets on the admin it creates from KC_BOOTSTRAP_ADMIN_*. */
export const TEMPORARY_ADMIN_ATTRIBUTE = 'is_temporary_admin'

export interface SwitchingLoginDeps {
  /** the service account's client-credentials login */
  client: AdminLogin
  /** the bootstrap admin's password login, used only when the client's is refused */
  bootstrap: AdminLogin
  /** creates or repairs the service account, with the bootstrap admin's token */
  repair(token: AdminToken): Promise<void>
  /** run once the service account works (until it succeeds once), with its token */
  afterSwitch?(token: AdminToken): Promise<void>
  /** names the settings in the error when both logins fail */
  settings: string
  log: Logger
}

/**
 * The service account's login, falling back once to the bootstrap admin: when Keycloak refuses
 * the client (first start, its client deleted or its secret changed), the bootstrap admin logs in,
 * creates or repairs the client, and the client's login is tried again. Every later token comes
 * from the client; the bootstrap admin is asked again only after another refusal.
 */
export function switchingLogin(deps: SwitchingLoginDeps): AdminLogin {
  let switched = false
  return async () => {
    let token: AdminToken
    try {
      token = await deps.client()
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'UNAUTHORIZED') {
        throw err
      }
      deps.log.info('keycloak.service_account_repair')
      let bootstrapToken: AdminToken
      try {
        bootstrapToken = await deps.bootstrap()
      } catch (bootstrapErr) {
        if (bootstrapErr instanceof AppError && bootstrapErr.code === 'UNAUTHORIZED') {
          throw new AppError(
            'UNAUTHORIZED',
            `Keycloak refused the app's service account and the bootstrap admin; check ${deps.settings}`,
            { cause: bootstrapErr },
          )
        }
        throw bootstrapErr
      }
      await deps.repair(bootstrapToken)
      token = await deps.client()
      deps.log.info('keycloak.service_account_repaired')
    }
    if (!switched && deps.afterSwitch) {
      try {
        await deps.afterSwitch(token)
        switched = true
      } catch (err) {
        // Tried again with the next token; the app works without it.
        deps.log.warn({ err }, 'keycloak.after_switch_failed')
      }
    }
    return token
  }
}

/**
 * Creates the service account's client in master, or repairs it (flags, secret), and gives its
 * user the master role `admin`. A client of that id the app did not create is left alone.
 */
export async function ensureServiceAccount(admin: KcAdmin, account: ServiceAccount): Promise<void> {
  const realm = 'master'
  const rep = {
    clientId: account.clientId,
    name: 'Nextcloud Keycloak ExApp',
    description: "The Nextcloud app's own admin access (client credentials)",
    protocol: 'openid-connect',
    enabled: true,
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    secret: account.secret,
    serviceAccountsEnabled: true,
    standardFlowEnabled: false,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: false,
    attributes: { [MANAGED_CLIENT_ATTRIBUTE]: 'true' },
  }
  const [current] = await kc('find the service account client', () =>
    admin.clients.find({ realm, clientId: account.clientId }),
  )
  let id = current?.id
  if (!current || !id) {
    id = (
      await kc('create the service account client', () => admin.clients.create({ realm, ...rep }))
    ).id
  } else {
    if (current.attributes?.[MANAGED_CLIENT_ATTRIBUTE] !== 'true') {
      throw new AppError(
        'CONFLICT',
        `the master realm has a client "${account.clientId}" the app did not create; delete or rename it`,
      )
    }
    const clientId = id
    await kc('repair the service account client', () =>
      admin.clients.update(
        { realm, id: clientId },
        { ...current, ...rep, attributes: { ...current.attributes, ...rep.attributes } },
      ),
    )
  }
  const clientId = id
  const user = await kc('find the service account user', () =>
    admin.clients.getServiceAccountUser({ realm, id: clientId }),
  )
  const role = await kc('find the master role admin', () =>
    admin.roles.findOneByName({ realm, name: 'admin' }),
  )
  if (!user.id || !role?.id || !role.name) {
    throw new AppError('KEYCLOAK_UNAVAILABLE', 'master has no service account user or admin role')
  }
  const userId = user.id
  const held = await kc('read the service account roles', () =>
    admin.users.listRealmRoleMappings({ realm, id: userId }),
  )
  if (!held.some((r) => r.id === role.id)) {
    await kc('give the service account the master role admin', () =>
      admin.users.addRealmRoleMappings({
        realm,
        id: userId,
        roles: [{ id: role.id as string, name: role.name as string }],
      }),
    )
  }
}

/**
 * Deletes the master user `username` if Keycloak made it as its temporary bootstrap admin
 * (attribute is_temporary_admin=true); any other user of that name stays. Returns whether it
 * deleted one.
 */
export async function removeTemporaryAdmin(admin: KcAdmin, username: string): Promise<boolean> {
  const realm = 'master'
  const found = await kc('find the bootstrap admin', () =>
    admin.users.find({ realm, username, exact: true, briefRepresentation: false }),
  )
  const user = found.find((u) => u.username === username.toLowerCase())
  if (!user?.id || user.attributes?.[TEMPORARY_ADMIN_ATTRIBUTE]?.[0] !== 'true') {
    return false
  }
  const id = user.id
  await kc('delete the temporary bootstrap admin', () => admin.users.del({ realm, id }))
  return true
}
