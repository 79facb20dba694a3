// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to PGlite under
// APP_PERSISTENT_STORAGE, and exits non-zero with one line when that fails.
import { resolve } from 'node:path'
import { errorMessage } from '../errors.js'
import { silentLogger } from '../log.js'
import { openDatabase } from './client.js'

async function runMigrations(): Promise<void> {
  const url = process.env.DATABASE_URL?.trim() || undefined
  const storageDir = resolve(process.env.APP_PERSISTENT_STORAGE?.trim() || './data')
  const database = await openDatabase({ url, storageDir, log: silentLogger() })
  await database.close()
  console.log(`db:migrate: up to date (${database.kind})`)
}

runMigrations().catch((err: unknown) => {
  console.error(`db:migrate failed: ${errorMessage(err)}`)
  process.exitCode = 1
})
