import type {
  UserProfileAttribute,
  UserProfileConfig,
} from '@keycloak/keycloak-admin-client/lib/defs/userProfileMetadata.js'

/** Keycloak's column and default validator limit for usernames, names and group names. */
export const KEYCLOAK_NAME_MAX = 255

const USERNAME_VALIDATORS_REPLACED = [
  'length',
  'pattern',
  'username-prohibited-characters',
  'up-username-not-idn-homograph',
]

const ADMIN_ONLY = { view: ['admin'], edit: ['admin'] }
const ADMIN_EDIT_USER_VIEW = { view: ['admin', 'user'], edit: ['admin'] }

export interface ProfileSpec {
  /**
   * the pattern every username must match (a regular expression's source): Keycloak's defaults
   * (3 characters minimum, its prohibited-characters and homograph validators) refuse some valid
   * Nextcloud uids, such as "jo" or "o'neil", so usernames follow Nextcloud's rule instead
   */
  usernamePattern: string
  /** marker attributes only the sidecar (an admin) writes */
  markerAttributes: string[]
  /** attributes filled from Nextcloud profile fields */
  profileAttributes: string[]
}

function withoutRequired(attr: UserProfileAttribute): UserProfileAttribute {
  const { required: _required, ...rest } = attr
  return rest
}

function withoutValidators(attr: UserProfileAttribute, names: string[]): UserProfileAttribute {
  const validations = Object.fromEntries(
    Object.entries(attr.validations ?? {}).filter(([name]) => !names.includes(name)),
  )
  return { ...attr, validations }
}

/**
 * Read-only to the user (the account console and API), still editable by realm admins: synced
 * fields come from Nextcloud, and a user who changes them in Keycloak would forge the claims of
 * their own tokens until the next sync.
 */
function adminEditOnly(attr: UserProfileAttribute): UserProfileAttribute {
  return {
    ...attr,
    permissions: { view: attr.permissions?.view ?? ['admin', 'user'], edit: ['admin'] },
  }
}

function customAttribute(name: string, permissions: typeof ADMIN_ONLY): UserProfileAttribute {
  return {
    name,
    displayName: name,
    multivalued: false,
    permissions,
    validations: { length: { max: 2048 } },
  }
}

/**
 * The realm's user profile as synced users need it, derived from the current one so the admin's
 * own additions survive: usernames accept every Nextcloud uid; email and names are optional (a
 * Nextcloud user may have no email, and a required-but-empty field fails every grant with "Account
 * is not fully set up"); names accept any character Nextcloud display names contain; our marker
 * and profile attributes are declared, so Keycloak keeps them. Everything the sync writes is
 * read-only to users: Nextcloud is its only source. Applying it twice gives the same.
 */
export function desiredUserProfile(
  current: UserProfileConfig,
  spec: ProfileSpec,
): UserProfileConfig {
  const ours = new Set([...spec.markerAttributes, ...spec.profileAttributes])
  const attributes: UserProfileAttribute[] = (current.attributes ?? [])
    .filter((attr) => !ours.has(attr.name ?? ''))
    .map((attr) => {
      switch (attr.name) {
        case 'username': {
          const rest = adminEditOnly(withoutValidators(attr, USERNAME_VALIDATORS_REPLACED))
          return {
            ...rest,
            validations: {
              ...rest.validations,
              length: { min: 1, max: KEYCLOAK_NAME_MAX },
              pattern: {
                pattern: spec.usernamePattern,
                'error-message': 'Use only the characters Nextcloud allows in a user id',
              },
            },
          }
        }
        case 'email':
          return adminEditOnly(withoutRequired(attr))
        case 'firstName':
        case 'lastName':
          return adminEditOnly(
            withoutRequired(withoutValidators(attr, ['person-name-prohibited-characters'])),
          )
        default:
          return attr
      }
    })
  for (const name of spec.markerAttributes) {
    attributes.push(customAttribute(name, ADMIN_ONLY))
  }
  for (const name of spec.profileAttributes) {
    attributes.push(customAttribute(name, ADMIN_EDIT_USER_VIEW))
  }
  return { ...current, attributes }
}
