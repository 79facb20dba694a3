import { mkdir } from 'node:fs/promises'
import type { Config } from '../config/config.js'
import type { Logger } from '../log.js'
import { type Database, openDatabase } from './client.js'
import { createSecretBox } from './crypto.js'
import { checkEncryptionKey, type SecretsHealth } from './key-check.js'
import { createStore, type Store } from './store.js'

/** The app's folder (PGlite keeps its files under it), the database URL (none: PGlite), the key. */
export type StorageOptions = Pick<Config, 'databaseUrl' | 'encryptionKey'> & {
  app: Pick<Config['app'], 'storageDir'>
}

export interface Storage {
  database: Database
  store: Store
  /** whether the key opens the secrets stored before */
  secretsHealth: SecretsHealth
  /** the database's and the stored secrets' state, as `/healthz` reports them */
  health(): Record<'database' | 'secrets', { ok: boolean; status: string }>
}

/** The app's state: its folder, the database (migrated), and the store over it. */
export async function openStorage(opts: StorageOptions, log: Logger): Promise<Storage> {
  const storageDir = opts.app.storageDir
  await mkdir(storageDir, { recursive: true })
  const database = await openDatabase({ url: opts.databaseUrl, storageDir, log })
  const box = createSecretBox(opts.encryptionKey)
  const store = createStore(database, box)
  // A key that cannot open the stored secrets is logged once here and reported by /healthz.
  const secretsHealth = await checkEncryptionKey(database, box, log)
  return {
    database,
    store,
    secretsHealth,
    health: () => ({
      database: { ok: database.health().status === 'ok', status: database.health().status },
      secrets: { ok: secretsHealth.status === 'ok', status: secretsHealth.status },
    }),
  }
}
