import type IdentityProviderRepresentation from '@keycloak/keycloak-admin-client/lib/defs/identityProviderRepresentation.js'
import { type KcAdmin, kc } from './admin.js'

/** JSON with object keys sorted, so two equal values compare equal whatever order Keycloak uses. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  )
}

/** True when a field `desired` names has another value in `current`. */
export function differs<T extends object>(current: T, desired: Partial<T>): boolean {
  return Object.entries(desired).some(
    ([key, value]) => canonical(current[key as keyof T]) !== canonical(value),
  )
}

/**
 * Creates the identity provider, or updates it when a field or config entry differs. Config keys in
 * `hidden` (a client secret: Keycloak masks it when read) are written but never compared.
 */
export async function ensureIdentityProvider(
  admin: KcAdmin,
  realm: string,
  desired: IdentityProviderRepresentation & { alias: string },
  report: { changes: string[] },
  hidden: readonly string[] = [],
): Promise<void> {
  const current = await kc('read identity provider', () =>
    admin.identityProviders.findOne({ realm, alias: desired.alias }),
  )
  if (!current) {
    await kc('create identity provider', () =>
      admin.identityProviders.create({ ...desired, realm }),
    )
    report.changes.push(`identity provider ${desired.alias} created`)
    return
  }
  const { config: desiredConfig = {}, ...rest } = desired
  const compared = Object.fromEntries(
    Object.entries(desiredConfig).filter(([key]) => !hidden.includes(key)),
  )
  if (differs(current.config ?? {}, compared) || differs(current, rest)) {
    await kc('update identity provider', () =>
      admin.identityProviders.update(
        { realm, alias: desired.alias },
        { ...current, ...rest, config: { ...current.config, ...desiredConfig } },
      ),
    )
    report.changes.push(`identity provider ${desired.alias} updated`)
  }
}
