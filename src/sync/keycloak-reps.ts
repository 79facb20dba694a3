import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js'
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js'
import { federatedIdentityRep } from '../keycloak/jwt-grant.js'
import {
  type ActualGroup,
  type ActualUser,
  type Attributes,
  byCodeUnit,
  type DesiredGroup,
  GROUP_DISPLAY_NAME_ATTRIBUTE,
  groupMarkers,
  type NewUser,
  RESERVED_ATTRIBUTES,
  type UserPatch,
  userMarkers,
} from './model.js'

/**
 * Mapping between the sync's model and Keycloak's representations, both ways. Pure: the target
 * reads and writes, this only says what a representation holds.
 */

/**
 * The representation of a user the sync creates: markers, profile attributes, no required
 * actions, the email verified when there is one, and the identity links (`idpAliases`: the JWT
 * grant's, the realm login's), so the plan's link-identity change for this user costs no second
 * request.
 */
export function newUserRep(user: NewUser, idpAliases: readonly string[]): UserRepresentation {
  return {
    username: user.username,
    enabled: user.enabled,
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email ?? undefined,
    emailVerified: user.email !== null,
    attributes: { ...user.attributes, ...userMarkers(user.uid) },
    requiredActions: [],
    ...(idpAliases.length === 0
      ? {}
      : { federatedIdentities: idpAliases.map((alias) => federatedIdentityRep(user.uid, alias)) }),
  }
}

/** The representation of a group the sync creates: named by its gid, marked, with its display name. */
export function newGroupRep(group: DesiredGroup): GroupRepresentation {
  return { name: group.gid, attributes: groupMarkers(group) }
}

/** What changes in a user's representation for `patch`; an attribute set to null is removed. */
export function userChange(
  current: UserRepresentation,
  patch: UserPatch,
): Partial<UserRepresentation> {
  const change: Partial<UserRepresentation> = {}
  if (patch.firstName !== undefined) {
    change.firstName = patch.firstName
  }
  if (patch.lastName !== undefined) {
    change.lastName = patch.lastName
  }
  if (patch.email !== undefined) {
    change.email = patch.email ?? ''
    change.emailVerified = patch.email !== null
  }
  if (patch.attributes !== undefined) {
    const attributes: Record<string, unknown> = { ...current.attributes }
    for (const [name, value] of Object.entries(patch.attributes)) {
      if (value === null) {
        delete attributes[name]
      } else {
        attributes[name] = value
      }
    }
    change.attributes = attributes
  }
  return change
}

/** A group's representation with another display name. */
export function renamedGroupRep(
  current: GroupRepresentation,
  displayName: string,
): GroupRepresentation {
  return {
    ...current,
    attributes: { ...current.attributes, [GROUP_DISPLAY_NAME_ATTRIBUTE]: [displayName] },
  }
}

/** The attributes the sync owns, as the planner compares them (markers excluded). */
export function syncedAttributes(
  attributes: Record<string, unknown> | undefined,
  profileAttributes: readonly string[],
): Attributes {
  const result: Attributes = {}
  for (const name of profileAttributes) {
    const value = attributes?.[name]
    if (Array.isArray(value) && value.length > 0 && !RESERVED_ATTRIBUTES.has(name)) {
      result[name] = value.map(String)
    }
  }
  return result
}

/** A managed user as the planner sees it, from its representation and what else was read. */
export function toActualUser(
  uid: string,
  rep: UserRepresentation,
  read: {
    groups: string[]
    roles: string[]
    linked: boolean
    profileAttributes: readonly string[]
  },
): ActualUser {
  return {
    id: rep.id as string,
    uid,
    username: rep.username ?? '',
    email: rep.email ? rep.email.toLowerCase() : null,
    firstName: rep.firstName ?? '',
    lastName: rep.lastName ?? '',
    enabled: rep.enabled !== false,
    attributes: syncedAttributes(rep.attributes, read.profileAttributes),
    groups: read.groups.sort(byCodeUnit),
    roles: read.roles.sort(byCodeUnit),
    linked: read.linked,
  }
}

/** A managed group as the planner sees it. */
export function toActualGroup(gid: string, rep: GroupRepresentation): ActualGroup {
  return {
    id: rep.id as string,
    gid,
    displayName: rep.attributes?.[GROUP_DISPLAY_NAME_ATTRIBUTE]?.[0] ?? rep.name ?? gid,
  }
}
