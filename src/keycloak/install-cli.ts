/**
 * `npm run keycloak:install`: puts the pinned Keycloak into ./.keycloak (or KEYCLOAK_CACHE_DIR),
 * picks a Java and runs the build with the default options, so CI and the Docker image start
 * from a ready home. Prints the home and Java; on failure prints one line and exits 1.
 */
import { resolve } from 'node:path'
import { KEYCLOAK_VERSION } from '../config/schema.js'
import { isAppError } from '../errors.js'
import { createLogger } from '../log.js'
import { buildKeycloak, installKeycloak } from './install.js'
import { findJava } from './java.js'
import { buildOptionsFor } from './options.js'

async function main() {
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' })
  const cacheDir = resolve(process.env.KEYCLOAK_CACHE_DIR || './.keycloak')
  const java = await findJava({ javaHome: process.env.JAVA_HOME || undefined })
  const { home } = await installKeycloak({ version: KEYCLOAK_VERSION, cacheDir, log })
  const buildOptions = buildOptionsFor({ keycloak: { db: { kind: 'dev-file' } } })
  const { built } = await buildKeycloak({ home, javaHome: java.javaHome, buildOptions, log })
  console.log(`keycloak ${KEYCLOAK_VERSION}: ${home}${built ? ' (built)' : ''}`)
  console.log(`java ${java.version}: ${java.javaHome}`)
}

main().catch((err: unknown) => {
  const message = isAppError(err) ? err.message : String((err as Error)?.message ?? err)
  console.error(`keycloak:install failed: ${message.split('\n')[0]}`)
  process.exit(1)
})
