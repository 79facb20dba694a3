import { AppError } from '../errors.js'
import { type KcAdmin, kc } from '../keycloak/admin.js'
import { UID_ATTRIBUTE } from '../sync/model.js'

/** Password mode: sets a managed user's password (never temporary: that would block the grant). */
export async function setUserPassword(
  admin: KcAdmin,
  realm: string,
  uid: string,
  password: string,
) {
  // By username (the lower-cased uid), then the marker: an attribute query (`q=key:value`) splits
  // a uid with a space into two terms and finds nobody.
  const users = await kc('find user', () =>
    admin.users.find({
      realm,
      username: uid.toLowerCase(),
      exact: true,
      briefRepresentation: false,
      max: 2,
    }),
  )
  const user = users.find((u) => u.attributes?.[UID_ATTRIBUTE]?.[0] === uid && u.id)
  if (!user?.id) {
    throw new AppError('NOT_FOUND', `no managed Keycloak user for Nextcloud user "${uid}"`)
  }
  await kc('set password', () =>
    admin.users.resetPassword({
      realm,
      id: user.id as string,
      credential: { type: 'password', value: password, temporary: false },
    }),
  )
}
