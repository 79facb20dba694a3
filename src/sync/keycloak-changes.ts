import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import { isAppError } from '../errors.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { linkAliases } from './keycloak-read.js'
import { toActualUser } from './keycloak-reps.js'
import { byCodeUnit, GROUP_DISPLAY_NAME_ATTRIBUTE, managedGid, managedUid } from './model.js'
import type { AdminEvent, ChangeFeed, ReadGroup, ReadUser, RealmInfo } from './realm-changes.js'

export interface KeycloakChangeFeedOptions {
  admin: KcAdmin
  realm: string
  managedRoles: readonly string[]
  profileAttributes: readonly string[]
  idpAlias?: string
  loginIdpAlias?: string
}

/** `kc` for a read where 404 means "gone". */
async function orGone<T>(what: string, call: () => Promise<T>): Promise<T | null> {
  try {
    return await kc(what, call)
  } catch (err) {
    if (isAppError(err, 'NOT_FOUND')) {
      return null
    }
    throw err
  }
}

/**
 * The realm's admin events and single users and groups, read by Keycloak id: what an ordinary
 * run needs to bring the stored state up to date without reading the whole realm.
 */
export class KeycloakChangeFeed implements ChangeFeed {
  constructor(private readonly opts: KeycloakChangeFeedOptions) {}

  async realm(): Promise<RealmInfo> {
    const rep = await kc('read realm', () =>
      this.opts.admin.realms.findOne({ realm: this.opts.realm }),
    )
    return { id: rep?.id ?? '', adminEventsEnabled: rep?.adminEventsEnabled === true }
  }

  events(fromTime: number, first: number, max: number): Promise<AdminEvent[]> {
    // Keycloak takes dateFrom as epoch milliseconds too; `direction` orders oldest first.
    return this.query({ dateFrom: fromTime, direction: 'asc', first, max })
  }

  latest(): Promise<AdminEvent[]> {
    return this.query({ first: 0, max: 1 })
  }

  private async query(params: Record<string, unknown>): Promise<AdminEvent[]> {
    const query = { realm: this.opts.realm, ...params }
    const reps = await kc('read admin events', () =>
      this.opts.admin.realms.findAdminEvents(
        query as unknown as Parameters<KcAdmin['realms']['findAdminEvents']>[0],
      ),
    )
    return reps.map((rep) => {
      const { id, time, operationType, resourceType, resourcePath } = rep as typeof rep & {
        id?: string
      }
      return {
        id: id ?? '',
        time: time ?? 0,
        operationType: operationType ?? '',
        resourceType: resourceType ?? '',
        resourcePath: resourcePath ?? '',
      }
    })
  }

  async readUser(id: string): Promise<ReadUser> {
    const { admin, realm } = this.opts
    const rep = await orGone(`read user ${id}`, () => admin.users.findOne({ realm, id }))
    if (!rep) {
      return { kind: 'gone' }
    }
    const uid = managedUid(rep.attributes)
    if (uid === null) {
      return { kind: 'unmanaged', username: rep.username ?? '', email: rep.email ?? null }
    }
    const groups = await kc(`read groups of ${uid}`, () =>
      admin.users.listGroups({ realm, id, briefRepresentation: false, max: 10_000 }),
    )
    const managed = new Set(this.opts.managedRoles)
    const roles = await kc(`read roles of ${uid}`, () =>
      admin.users.listRealmRoleMappings({ realm, id }),
    )
    const aliases = linkAliases(this.opts)
    const links =
      aliases.length === 0
        ? []
        : await kc(`read links of ${uid}`, () => admin.users.listFederatedIdentities({ realm, id }))
    return {
      kind: 'managed',
      user: toActualUser(
        uid,
        { ...rep, id },
        {
          groups: groups
            .map((g: GroupRepresentation) => managedGid(g.attributes))
            .filter((gid): gid is string => gid !== null),
          roles: roles.map((r) => r.name ?? '').filter((name) => managed.has(name)),
          linked: aliases.every((alias) => links.some((l) => l.identityProvider === alias)),
          profileAttributes: [...this.opts.profileAttributes].sort(byCodeUnit),
        },
      ),
    }
  }

  async readGroup(id: string): Promise<ReadGroup> {
    const { admin, realm } = this.opts
    const rep = await orGone(`read group ${id}`, () => admin.groups.findOne({ realm, id }))
    if (!rep) {
      return { kind: 'gone' }
    }
    const gid = managedGid(rep.attributes)
    if (gid === null) {
      return { kind: 'unmanaged', name: rep.name ?? '' }
    }
    const displayName = rep.attributes?.[GROUP_DISPLAY_NAME_ATTRIBUTE]?.[0] ?? rep.name ?? gid
    return { kind: 'managed', group: { id, gid, displayName } }
  }
}
