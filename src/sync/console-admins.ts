import type RoleRepresentation from '@keycloak/keycloak-admin-client/lib/defs/roleRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import { AppError, errorMessage, isAppError } from '../errors.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { MASTER_REALM } from '../keycloak/bootstrap.js'
import type { Logger } from '../log.js'
import {
  type ActualIdentity,
  CONSOLE_ADMIN_ROLE,
  CONSOLE_ATTRIBUTE,
  CONSOLE_REALM_ROLES,
  type ConsoleCandidate,
  type ConsoleRoles,
  type ConsoleStep,
  type DesiredIdentity,
  desiredIdentities,
  NEXTCLOUD_ADMIN_GROUP,
  planConsole,
  realmManagementClient,
} from './console-plan.js'
import { UID_ATTRIBUTE } from './model.js'
import type { RunSummary } from './run-types.js'

export interface ConsoleAdminsDeps {
  admin: KcAdmin
  /** the synced realm: the realm console-group members administer, and our marker's value */
  realm: string
  /** KEYCLOAK_CONSOLE_GROUPS */
  consoleGroups: readonly string[]
  /** the master realm's identity provider for Nextcloud */
  idpAlias: string
  nextcloud: Pick<NextcloudClient, 'groupMemberIds' | 'userDetails'>
  /** the Nextcloud admin the app reads users as */
  actingAdmin(): Promise<string>
  log: Logger
}

export interface ConsoleReport {
  /** uids per step kind */
  done: Partial<Record<ConsoleStep['kind'], string[]>>
  /** steps Keycloak refused, and why */
  failed: string[]
  warnings: string[]
}

/** Runs whose end starts a reconciliation: every real run but the token service's one-user runs. */
function triggersReconcile(run: RunSummary): boolean {
  return (
    !run.dryRun &&
    run.trigger !== 'token' &&
    (run.status === 'succeeded' || run.status === 'partial')
  )
}

/**
 * Keeps one console identity per Nextcloud admin in the master realm (see console-plan.ts):
 * reads the members of `admin` and the console groups from Nextcloud and the marked master users
 * from Keycloak, then creates, updates, links, grants, revokes and deletes. One reconciliation at
 * a time; calls during one share a single follow-up.
 */
export class ConsoleAdmins {
  private running: Promise<ConsoleReport> | undefined
  private followUp: Promise<ConsoleReport> | undefined

  constructor(private readonly deps: ConsoleAdminsDeps) {}

  /** After a sync run: reconciles in the background; a failure is logged, the next run retries. */
  readonly afterRun = (run: RunSummary): void => {
    if (!triggersReconcile(run)) {
      return
    }
    void this.reconcile().catch((err: unknown) =>
      this.deps.log.warn({ err: errorMessage(err) }, 'console.reconcile_failed'),
    )
  }

  reconcile(): Promise<ConsoleReport> {
    if (!this.running) {
      return this.start()
    }
    this.followUp ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.followUp = undefined
        return this.start()
      })
    return this.followUp
  }

  /** Waits for the reconciliations under way (before Keycloak stops). */
  async settled(): Promise<void> {
    await Promise.allSettled([this.running, this.followUp])
  }

  private start(): Promise<ConsoleReport> {
    const run = this.run().finally(() => {
      if (this.running === run) {
        this.running = undefined
      }
    })
    this.running = run
    return run
  }

  private async run(): Promise<ConsoleReport> {
    const started = performance.now()
    const report: ConsoleReport = { done: {}, failed: [], warnings: [] }
    // Nextcloud first: a read that fails ends the run before Keycloak is changed.
    const candidates = await this.readNextcloud(report)
    const desired = desiredIdentities(candidates, this.deps.consoleGroups)
    const roles = await this.readRoles()
    const actual = await this.readActual()
    const taken = new Set<string>()
    for (const want of desired) {
      if (actual.some((a) => a.uid === want.uid)) {
        continue
      }
      // A marked user under another spelling of the uid is not taken over either.
      const clash =
        actual.some((a) => a.username === want.username) ||
        (await this.usernameTaken(want.username))
      if (clash) {
        taken.add(want.username)
      }
    }
    const plan = planConsole(desired, actual, taken)
    report.warnings.push(...plan.warnings)
    for (const step of plan.steps) {
      const uid = step.kind === 'create' || step.kind === 'update' ? step.identity.uid : step.uid
      try {
        await this.apply(step, roles)
        report.done[step.kind] = [...(report.done[step.kind] ?? []), uid]
      } catch (err) {
        if (step.kind === 'create' && isAppError(err, 'CONFLICT')) {
          report.warnings.push(
            `master realm refused a console identity for ${uid} (a user of that name or email exists): ${errorMessage(err)}`,
          )
        } else {
          report.failed.push(`${step.kind} ${uid}: ${errorMessage(err)}`)
        }
      }
    }
    this.deps.log.info(
      {
        realm: this.deps.realm,
        desired: desired.length,
        done: report.done,
        failed: report.failed,
        warnings: report.warnings,
        durationMs: Math.round(performance.now() - started),
      },
      'console.reconciled',
    )
    return report
  }

  /** The members of `admin` and of every console group, with their details. */
  private async readNextcloud(report: ConsoleReport): Promise<ConsoleCandidate[]> {
    const { nextcloud } = this.deps
    const asUser = await this.deps.actingAdmin()
    const uids = new Set<string>()
    for (const gid of [NEXTCLOUD_ADMIN_GROUP, ...this.deps.consoleGroups]) {
      const members = await nextcloud.groupMemberIds(asUser, gid)
      if (members === null) {
        if (gid === NEXTCLOUD_ADMIN_GROUP) {
          // Never read as "no admins": every identity would go.
          throw new AppError('NEXTCLOUD_UNAVAILABLE', 'Nextcloud has no group admin')
        }
        report.warnings.push(`KEYCLOAK_CONSOLE_GROUPS names ${gid}, which Nextcloud does not have`)
        continue
      }
      for (const uid of members) {
        uids.add(uid)
      }
    }
    const users: ConsoleCandidate[] = []
    for (const uid of uids) {
      const user = await nextcloud.userDetails(asUser, uid)
      if (user) {
        users.push(user)
      }
    }
    return users
  }

  private async readRoles(): Promise<{
    admin: RoleRepresentation
    clientId: string
    client: Map<string, RoleRepresentation>
  }> {
    const { admin } = this.deps
    const name = realmManagementClient(this.deps.realm)
    const master = await kc('read the master admin role', () =>
      admin.roles.findOneByName({ realm: MASTER_REALM, name: CONSOLE_ADMIN_ROLE }),
    )
    const [client] = await kc('read the realm management client', () =>
      admin.clients.find({ realm: MASTER_REALM, clientId: name }),
    )
    if (!master?.id || !client?.id) {
      throw new AppError('KEYCLOAK_UNAVAILABLE', `master realm has no role admin or client ${name}`)
    }
    const clientId = client.id
    const roles = await kc('read the realm management roles', () =>
      admin.clients.listRoles({ realm: MASTER_REALM, id: clientId }),
    )
    return {
      admin: master,
      clientId,
      client: new Map(
        roles.filter((r) => CONSOLE_REALM_ROLES.includes(r.name ?? '')).map((r) => [r.name, r]),
      ) as Map<string, RoleRepresentation>,
    }
  }

  /** The master users marked as this app's console identities for the synced realm. */
  private async readActual(): Promise<ActualIdentity[]> {
    const { admin, realm } = this.deps
    const found: UserRepresentation[] = []
    for (let first = 0; ; first += 100) {
      const page = await kc('read console identities', () =>
        admin.users.find({
          realm: MASTER_REALM,
          q: `${CONSOLE_ATTRIBUTE}:${realm}`,
          briefRepresentation: false,
          first,
          max: 100,
        }),
      )
      found.push(...page)
      if (page.length < 100) {
        break
      }
    }
    const clientName = realmManagementClient(realm)
    const actual: ActualIdentity[] = []
    for (const user of found) {
      // The search may match loosely: only an exact marker counts.
      if (user.attributes?.[CONSOLE_ATTRIBUTE]?.[0] !== realm || !user.id) {
        continue
      }
      const id = user.id
      const [realmRoles, mappings, links] = await Promise.all([
        kc('read role mappings', () =>
          admin.users.listRealmRoleMappings({ realm: MASTER_REALM, id }),
        ),
        kc('read role mappings', () => admin.users.listRoleMappings({ realm: MASTER_REALM, id })),
        kc('read identity links', () =>
          admin.users.listFederatedIdentities({ realm: MASTER_REALM, id }),
        ),
      ])
      const clientRoles = Object.values(mappings.clientMappings ?? {}).find(
        (m) => m.client === clientName,
      )
      actual.push({
        id,
        uid: user.attributes?.[UID_ATTRIBUTE]?.[0] ?? user.username ?? '',
        username: user.username ?? '',
        enabled: user.enabled !== false,
        email: user.email || null,
        firstName: user.firstName ?? '',
        lastName: user.lastName ?? '',
        links: links
          .filter((l) => l.identityProvider === this.deps.idpAlias)
          .map((l) => l.userId ?? ''),
        roles: {
          realm: realmRoles.map((r) => r.name ?? '').filter((n) => n === CONSOLE_ADMIN_ROLE),
          client: ((clientRoles?.mappings ?? []) as RoleRepresentation[])
            .map((r) => r.name ?? '')
            .filter((n) => CONSOLE_REALM_ROLES.includes(n)),
        },
      })
    }
    return actual
  }

  private async usernameTaken(username: string): Promise<boolean> {
    const users = await kc('read a master user', () =>
      this.deps.admin.users.find({ realm: MASTER_REALM, username, exact: true }),
    )
    return users.length > 0
  }

  private attributes(uid: string): Record<string, string[]> {
    return { [CONSOLE_ATTRIBUTE]: [this.deps.realm], [UID_ATTRIBUTE]: [uid] }
  }

  private profile(want: DesiredIdentity): UserRepresentation {
    return {
      username: want.username,
      enabled: want.enabled,
      email: want.email ?? '',
      emailVerified: want.email !== null,
      firstName: want.firstName,
      lastName: want.lastName,
    }
  }

  private async apply(
    step: ConsoleStep,
    roles: Awaited<ReturnType<ConsoleAdmins['readRoles']>>,
  ): Promise<void> {
    const { admin, idpAlias } = this.deps
    const realm = MASTER_REALM
    const link = (uid: string) => ({ identityProvider: idpAlias, userId: uid, userName: uid })
    switch (step.kind) {
      case 'create': {
        const { uid } = step.identity
        const { id } = await kc('create a console identity', () =>
          admin.users.create({
            realm,
            ...this.profile(step.identity),
            attributes: this.attributes(uid),
            federatedIdentities: [link(uid)],
          }),
        )
        await this.grant(id, step.roles, roles)
        return
      }
      case 'update': {
        const id = step.id
        const current = await kc('read a console identity', () =>
          admin.users.findOne({ realm, id, userProfileMetadata: false }),
        )
        if (!current) {
          throw new AppError('NOT_FOUND', 'the console identity vanished')
        }
        // The whole representation goes back: Keycloak drops attributes a PUT leaves out.
        await kc('update a console identity', () =>
          admin.users.update(
            { realm, id },
            {
              ...current,
              ...this.profile(step.identity),
              attributes: { ...current.attributes, ...this.attributes(step.identity.uid) },
            },
          ),
        )
        if (!step.identity.enabled) {
          await kc('sign out a console identity', () => admin.users.logout({ realm, id }))
        }
        return
      }
      case 'link':
        // One link per provider: a stale one (another user id) goes first.
        if (step.stale.length > 0) {
          await kc('unlink a console identity', () =>
            admin.users.delFromFederatedIdentity({
              realm,
              id: step.id,
              federatedIdentityId: idpAlias,
            }),
          )
        }
        await kc('link a console identity', () =>
          admin.users.addToFederatedIdentity({
            realm,
            id: step.id,
            federatedIdentityId: idpAlias,
            federatedIdentity: link(step.uid),
          }),
        )
        return
      case 'grant':
        await this.grant(step.id, step.roles, roles)
        return
      case 'revoke': {
        const id = step.id
        if (step.roles.realm.length > 0) {
          await kc('revoke console roles', () =>
            admin.users.delRealmRoleMappings({ realm, id, roles: [roleRef(roles.admin)] }),
          )
        }
        const client = pick(step.roles.client, roles.client)
        if (client.length > 0) {
          await kc('revoke console roles', () =>
            admin.users.delClientRoleMappings({
              realm,
              id,
              clientUniqueId: roles.clientId,
              roles: client,
            }),
          )
        }
        return
      }
      case 'delete':
        await kc('delete a console identity', () => admin.users.del({ realm, id: step.id }))
        return
    }
  }

  private async grant(
    id: string,
    want: ConsoleRoles,
    roles: Awaited<ReturnType<ConsoleAdmins['readRoles']>>,
  ): Promise<void> {
    const { admin } = this.deps
    if (want.realm.length > 0) {
      await kc('grant console roles', () =>
        admin.users.addRealmRoleMappings({
          realm: MASTER_REALM,
          id,
          roles: [roleRef(roles.admin)],
        }),
      )
    }
    const client = pick(want.client, roles.client)
    if (client.length > 0) {
      await kc('grant console roles', () =>
        admin.users.addClientRoleMappings({
          realm: MASTER_REALM,
          id,
          clientUniqueId: roles.clientId,
          roles: client,
        }),
      )
    }
  }
}

function roleRef(role: RoleRepresentation): { id: string; name: string } {
  return { id: role.id as string, name: role.name as string }
}

function pick(
  names: readonly string[],
  roles: Map<string, RoleRepresentation>,
): { id: string; name: string }[] {
  return names.flatMap((n) => {
    const role = roles.get(n)
    return role ? [roleRef(role)] : []
  })
}
