import { createHash } from 'node:crypto'
import type ClientRepresentation from '@keycloak/keycloak-admin-client/lib/defs/clientRepresentation.js'
import type IdentityProviderRepresentation from '@keycloak/keycloak-admin-client/lib/defs/identityProviderRepresentation.js'
import type RealmRepresentation from '@keycloak/keycloak-admin-client/lib/defs/realmRepresentation.js'
import { isAppError } from '../errors.js'
import type { Logger } from '../log.js'
import { singleFlight } from '../single-flight.js'
import { type KcAdmin, kc } from './admin.js'
import { canonical, differs, ensureIdentityProvider } from './identity-provider.js'
import { ensureNextcloudLogin, type NextcloudLoginSpec } from './nextcloud-login.js'
import { desiredUserProfile, type ProfileSpec } from './user-profile.js'

/** Client attribute that marks a client as created and owned by the sidecar. */
export const MANAGED_CLIENT_ATTRIBUTE = 'nextcloud.managed'
/** Role attribute that marks a realm role as created by the sidecar for a group mapping. */
export const MANAGED_ROLE_ATTRIBUTE = 'nextcloud_managed'

export interface ClientSpec {
  clientId: string
  secret: string
  /** allow the password grant (password mode only) */
  directAccessGrants: boolean
  /** extra client attributes (e.g. the JWT Authorization Grant switches) */
  attributes: Record<string, string>
}

export interface RealmSpec {
  realm: string
  profile: ProfileSpec
  clients: ClientSpec[]
  /** realm roles that group mappings grant */
  roles: string[]
  /** the identity provider that trusts the sidecar's assertions, when tokens use the JWT grant */
  identityProvider?: IdentityProviderRepresentation & { alias: string }
  /** the realm's browser login through the app's OpenID provider (absent: not configured) */
  nextcloudLogin?: NextcloudLoginSpec
  /**
   * the master realm's login for the admin console, through the same provider (its first login
   * denies: only the console identities the app links get in), and the marker attributes its
   * user profile must keep on them (absent: not configured)
   */
  console?: { login: NextcloudLoginSpec; profile: ProfileSpec }
}

/** The realm the admin console signs in to. */
export const MASTER_REALM = 'master'

export interface BootstrapReport {
  /** one entry per write, e.g. "realm created", "client opentalk updated"; empty when nothing changed */
  changes: string[]
  /** clients that exist but are not ours: used as they are */
  warnings: string[]
}

/** How long a realm keeps its admin events when the app turned them on: 30 days. */
export const ADMIN_EVENTS_EXPIRATION_SECONDS = 30 * 24 * 3600
/** the realm attribute Keycloak reads it from (seconds; absent: kept for ever) */
const ADMIN_EVENTS_EXPIRATION = 'adminEventsExpiration'

/** Realm settings we own; anything else an admin sets is left alone. */
export function realmSettings(realm: string): RealmRepresentation {
  return {
    realm,
    enabled: true,
    bruteForceProtected: true,
    registrationAllowed: false,
    duplicateEmailsAllowed: false,
    // The sync reads them to find what an admin changed behind its back.
    adminEventsEnabled: true,
  }
}

/**
 * Makes the realm what the sidecar needs, reading before it writes and changing only what differs,
 * so it runs on every start and a second run reports no changes.
 *
 * Once the realm exists, its parts are independent resources, asserted side by side: the start-up
 * waits for the longest of them, not for their sum (each first call of an endpoint is slow on a
 * freshly started Keycloak). Two of them touch the realm's own representation: its browser flow
 * is bound by the login's branch, which also creates the login's identity provider, so the JWT
 * grant's provider comes before it in the same branch and no realm update is made from a read
 * older than another branch's identity provider. The report lists changes in the same order
 * whatever finished first.
 */
export async function bootstrapRealm(
  admin: KcAdmin,
  spec: RealmSpec,
  log: Logger,
): Promise<BootstrapReport> {
  const started = performance.now()
  const report: BootstrapReport = { changes: [], warnings: [] }
  await ensureRealm(admin, spec.realm, report)
  const branch = async (steps: (part: BootstrapReport) => Promise<void>) => {
    const part: BootstrapReport = { changes: [], warnings: [] }
    await steps(part)
    return part
  }
  const parts = await settledInOrder([
    branch((part) => ensureProfile(admin, spec.realm, spec.profile, part)),
    ...spec.roles.map((role) => branch((part) => ensureRole(admin, spec.realm, role, part))),
    ...spec.clients.map((client) =>
      branch((part) => ensureClient(admin, spec.realm, client, part)),
    ),
    branch(async (part) => {
      if (spec.identityProvider) {
        await ensureIdentityProvider(admin, spec.realm, spec.identityProvider, part)
      }
      if (spec.nextcloudLogin) {
        await ensureNextcloudLogin(admin, spec.realm, spec.nextcloudLogin, part)
      }
    }),
    branch(async (part) => {
      if (spec.console) {
        const master = { changes: [] as string[] }
        await ensureProfile(admin, MASTER_REALM, spec.console.profile, master)
        await ensureNextcloudLogin(admin, MASTER_REALM, spec.console.login, master)
        part.changes.push(...master.changes.map((c) => `${MASTER_REALM}: ${c}`))
      }
    }),
  ])
  for (const part of parts) {
    report.changes.push(...part.changes)
    report.warnings.push(...part.warnings)
  }
  log.info(
    {
      realm: spec.realm,
      changes: report.changes,
      warnings: report.warnings,
      durationMs: Math.round(performance.now() - started),
    },
    'realm.bootstrapped',
  )
  return report
}

/**
 * Waits for every promise, then gives their values in order, or throws the first failure in
 * that order: a failed branch never leaves another one still writing behind the caller's back.
 */
async function settledInOrder<T>(pending: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(pending)
  return settled.map((s) => {
    if (s.status === 'rejected') {
      throw s.reason
    }
    return s.value
  })
}

/** A digest of everything a bootstrap asserts (secrets included, so only the digest is kept). */
export function specFingerprint(spec: RealmSpec): string {
  return createHash('sha256').update(canonical(spec)).digest('base64url')
}

/**
 * `bootstrapRealm` for the spec `spec()` gives at each run (client secrets and trusted keys are
 * read then). Init, the start-up resume and the realm guard may all ask at once: concurrent
 * callers share one run. `onAsserted` is told the fingerprint of each spec a run asserted.
 */
export function realmBootstrapper(
  admin: KcAdmin,
  spec: () => Promise<RealmSpec>,
  log: Logger,
  onAsserted?: (fingerprint: string) => void,
): () => Promise<BootstrapReport> {
  return singleFlight(async () => {
    const current = await spec()
    const report = await bootstrapRealm(admin, current, log)
    onAsserted?.(specFingerprint(current))
    return report
  })
}

async function ensureRealm(admin: KcAdmin, realm: string, report: BootstrapReport): Promise<void> {
  const desired = realmSettings(realm)
  const current = await kc('read realm', () => admin.realms.findOne({ realm }))
  if (!current) {
    try {
      await kc('create realm', () =>
        admin.realms.create({ ...desired, attributes: eventsExpiration(undefined) }),
      )
      report.changes.push(`realm ${realm} created`)
    } catch (err) {
      // Another sidecar on the same database created it first.
      if (!isAppError(err, 'CONFLICT')) {
        throw err
      }
    }
    return
  }
  if (differs(current, desired)) {
    // Admin events an admin had on keep the expiration they chose, or none.
    const attributes =
      current.adminEventsEnabled === true
        ? current.attributes
        : eventsExpiration(current.attributes)
    await kc('update realm', () =>
      admin.realms.update({ realm }, { ...current, ...desired, attributes }),
    )
    report.changes.push(`realm ${realm} updated`)
  }
}

/**
 * Keycloak keeps admin events for ever unless the realm says how long. The sync turns them on to
 * see what an admin changed behind its back, and its own writes are events too (measured: a first
 * sync of 1 001 users and 21 groups left 1 022, about one per object created; then one per
 * change), so where the app turns them on it also sets how long they are kept, unless the realm
 * already says. Events gone before a run reads them only make that run read the whole realm.
 */
function eventsExpiration(
  attributes: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const set = attributes?.[ADMIN_EVENTS_EXPIRATION]
  return set !== undefined && set !== ''
    ? { ...attributes }
    : { ...attributes, [ADMIN_EVENTS_EXPIRATION]: String(ADMIN_EVENTS_EXPIRATION_SECONDS) }
}

async function ensureProfile(
  admin: KcAdmin,
  realm: string,
  spec: ProfileSpec,
  report: { changes: string[] },
) {
  const current = await kc('read user profile', () => admin.users.getProfile({ realm }))
  const desired = desiredUserProfile(current, spec)
  if (canonical(current) !== canonical(desired)) {
    await kc('update user profile', () => admin.users.updateProfile({ ...desired, realm }))
    report.changes.push('user profile updated')
  }
}

async function ensureRole(admin: KcAdmin, realm: string, name: string, report: BootstrapReport) {
  const current = await kc('read role', () => admin.roles.findOneByName({ realm, name }))
  if (!current) {
    await kc(`create role ${name}`, () =>
      admin.roles.create({
        realm,
        name,
        description: 'Granted from a Nextcloud group by keycloak-exapp',
        attributes: { [MANAGED_ROLE_ATTRIBUTE]: ['true'] },
      }),
    )
    report.changes.push(`role ${name} created`)
  }
}

function clientRep(spec: ClientSpec): ClientRepresentation {
  return {
    clientId: spec.clientId,
    name: spec.clientId,
    protocol: 'openid-connect',
    enabled: true,
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    standardFlowEnabled: true,
    directAccessGrantsEnabled: spec.directAccessGrants,
    serviceAccountsEnabled: false,
    secret: spec.secret,
    attributes: { [MANAGED_CLIENT_ATTRIBUTE]: 'true', ...spec.attributes },
  }
}

async function ensureClient(
  admin: KcAdmin,
  realm: string,
  spec: ClientSpec,
  report: BootstrapReport,
) {
  const [current] = await kc('read client', () =>
    admin.clients.find({ realm, clientId: spec.clientId }),
  )
  const desired = clientRep(spec)
  if (!current?.id) {
    await kc(`create client ${spec.clientId}`, () => admin.clients.create({ ...desired, realm }))
    report.changes.push(`client ${spec.clientId} created`)
    return
  }
  if (current.attributes?.[MANAGED_CLIENT_ATTRIBUTE] !== 'true') {
    report.warnings.push(`client ${spec.clientId} exists and is not managed by the sidecar`)
    return
  }
  const { secret, attributes, ...settings } = desired
  const storedSecret = await kc('read client secret', () =>
    admin.clients.getClientSecret({ realm, id: current.id as string }),
  )
  const attributesDiffer = differs(current.attributes ?? {}, attributes ?? {})
  if (differs(current, settings) || attributesDiffer || storedSecret.value !== secret) {
    await kc(`update client ${spec.clientId}`, () =>
      admin.clients.update(
        { realm, id: current.id as string },
        { ...current, ...settings, secret, attributes: { ...current.attributes, ...attributes } },
      ),
    )
    report.changes.push(`client ${spec.clientId} updated`)
  }
}
