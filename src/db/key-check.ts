import type { Logger } from '../log.js'
import type { Database } from './client.js'
import type { SecretBox } from './crypto.js'
import { appSecrets } from './schema.js'

/** Whether the configured key opens the secrets stored in the database; `/healthz` reports it. */
export interface SecretsHealth {
  status: 'ok' | 'undecryptable'
  /** stored secrets the key does not open (the check value included) */
  undecryptable: number
  stored: number
}

/** A row sealed with the key, so a new key is noticed before any secret is needed. */
export const KEY_CHECK_NAME = 'encryption-key-check'
const KEY_CHECK_VALUE = 'keycloak-exapp encryption key check'

/**
 * Tries the key on every stored secret at start. A key that opens none of them (secrets.json lost
 * or replaced, ENCRYPTION_KEY changed) is logged once, clearly, and reported; tokens and client
 * secrets fail until the previous key is back. When all open, a check value is stored if missing,
 * so that a later change of key is noticed even before the first secret is stored.
 */
export async function checkEncryptionKey(
  database: Pick<Database, 'db'>,
  box: SecretBox,
  log: Logger,
): Promise<SecretsHealth> {
  const rows = await database.db
    .select({ name: appSecrets.name, ciphertext: appSecrets.ciphertext })
    .from(appSecrets)
  let undecryptable = 0
  for (const row of rows) {
    try {
      box.open(row.ciphertext)
    } catch {
      undecryptable++
    }
  }
  if (undecryptable > 0) {
    log.error(
      {
        undecryptable,
        stored: rows.length,
        hint:
          `ENCRYPTION_KEY cannot open ${undecryptable} of the ${rows.length} secrets stored in ` +
          'the database: secrets.json was lost or replaced, or ENCRYPTION_KEY changed. Tokens ' +
          'and client secrets fail until the previous key is back: restore secrets.json from a ' +
          'backup or set the previous ENCRYPTION_KEY, then restart',
      },
      'secrets.undecryptable',
    )
    return { status: 'undecryptable', undecryptable, stored: rows.length }
  }
  if (!rows.some((row) => row.name === KEY_CHECK_NAME)) {
    await database.db
      .insert(appSecrets)
      .values({ name: KEY_CHECK_NAME, ciphertext: box.seal(KEY_CHECK_VALUE) })
      .onConflictDoNothing({ target: appSecrets.name })
  }
  return { status: 'ok', undecryptable: 0, stored: rows.length }
}
