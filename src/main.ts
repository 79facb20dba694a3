import { readFile } from 'node:fs/promises'
import { setFlagsFromString } from 'node:v8'
import { buildConfig, parseEnv } from './config/config.js'
import { givenSecrets, loadOrCreateSecrets, secretsFile } from './config/secrets.js'
import { errorMessage } from './errors.js'
import { keycloakRuntime } from './keycloak/runtime-from-config.js'
import { createLogger } from './log.js'
import { readState } from './state.js'
import { keepStateOwnerOnly, OWNER_ONLY_UMASK } from './storage-modes.js'

/**
 * V8 sizes its heap for speed: the old generation may fill with hundreds of MB of garbage before
 * its first full collection, and each limit after one grows by up to 4× the live objects. Promoted request garbage (the 1 MB semi-space of the image promotes whatever is in
 * flight) then stays resident: the sidecar reached 409 MiB during a token load with a live set of
 * a few tens of MB. Optimizing for size keeps each limit close to the live objects (more full
 * collections, more CPU) and sets no cap: a larger directory gets a larger heap, never an
 * out-of-memory abort. The flag applies to every thread started from here on (the PGlite worker
 * too) and is read at each collection, so setting it at start is enough.
 */
function favourMemoryOverSpeed(): void {
  setFlagsFromString('--optimize-for-size')
}

/** Composition root: env → config → everything else; the only reader of process.env. */
async function main(): Promise<void> {
  favourMemoryOverSpeed()
  const parsed = parseEnv(process.env)
  if (!parsed.ok) {
    for (const line of parsed.errors) {
      console.error(`invalid configuration: ${line}`)
    }
    process.exit(1)
  }
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  // State is for the owner alone: what is created from here on (Keycloak's files too) gets 0600/0700.
  process.umask(OWNER_ONLY_UMASK)
  const secrets = await loadOrCreateSecrets(
    parsed.env.APP_PERSISTENT_STORAGE,
    givenSecrets(parsed.env),
  )
  const config = buildConfig(parsed.env, secrets, pkg.version)
  const log = createLogger(config.log)
  log.info(
    {
      appId: config.app.id,
      version: config.app.version,
      nextcloud: config.nextcloud.url,
      keycloak: config.keycloak.mode,
      realm: config.keycloak.realm,
      storage: config.app.storageDir,
      // where generated secrets (APP_SECRET for registration, the console password) are kept
      secretsFile: secretsFile(config.app.storageDir),
      // since the process started: module loading and reading the secrets
      uptimeMs: Math.round(process.uptime() * 1000),
    },
    'exapp.starting',
  )
  // What earlier versions created is fixed while Keycloak boots: what is created from here on
  // (Keycloak's files too) already gets owner-only modes from the umask.
  const restricted = keepStateOwnerOnly(config.app.storageDir, log)
  // Keycloak takes longest to boot: it starts before the rest of the app is loaded (unless
  // Nextcloud disabled the app; startExApp reads the same flag and leaves it stopped then).
  const keycloak = keycloakRuntime(config, log)
  if ((await readState(config.app.storageDir))?.enabled !== false) {
    keycloak.start()
  }
  await restricted
  const { startExApp } = await import('./exapp.js')
  const exapp = await startExApp(config, log, { keycloak })

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) {
      return
    }
    stopping = true
    log.info({ signal }, 'exapp.stopping')
    // Keycloak must not outlive us: give it time, then leave anyway.
    const timer = setTimeout(() => process.exit(1), 60_000)
    timer.unref()
    try {
      await exapp.close()
      process.exit(0)
    } catch (err) {
      log.error({ err }, 'exapp.stop_failed')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

main().catch((err: unknown) => {
  console.error(`keycloak-exapp failed to start: ${errorMessage(err)}`)
  process.exit(1)
})
