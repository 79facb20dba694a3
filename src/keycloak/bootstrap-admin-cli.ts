/**
 * `npm run keycloak:bootstrap-admin [-- --username NAME]`: the break-glass path into the bundled
 * Keycloak's master realm, which has no shared admin password. Run it with the app stopped and
 * with the environment the app runs with: it runs the installed Keycloak's
 * `kc.sh bootstrap-admin user` on the same database and options, creating a temporary admin NAME
 * (default `break-glass-admin`). The password is KEYCLOAK_BREAK_GLASS_PASSWORD when set, else one
 * generated here and printed once to this terminal; it reaches kc.sh through the environment only.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildConfig, parseEnv } from '../config/config.js'
import {
  GENERATED_SECRETS,
  type GeneratedSecrets,
  randomSecret,
  readStoredSecrets,
} from '../config/secrets.js'
import { errorMessage } from '../errors.js'
import { createLogger } from '../log.js'
import { bootstrapAdminInvocation } from './bootstrap-admin.js'
import { installedKeycloak } from './embedded.js'
import { findGroupMembers } from './process-group.js'

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { username: { type: 'string', default: 'break-glass-admin' } },
  })
  const parsed = parseEnv(process.env)
  if (!parsed.ok) {
    throw new Error(`invalid configuration: ${parsed.errors.join('; ')}`)
  }
  const env = parsed.env
  // Only the Keycloak options matter here; no secret is generated or written.
  const stored = await readStoredSecrets(env.APP_PERSISTENT_STORAGE)
  const secrets = Object.fromEntries(
    GENERATED_SECRETS.map((name) => [name, stored[name] ?? randomSecret()]),
  ) as GeneratedSecrets
  const config = buildConfig(env, secrets, '0.0.0')
  if (config.keycloak.mode === 'external') {
    throw new Error(
      'KEYCLOAK_URL is set: this Keycloak is not the bundled one; use its own kc.sh bootstrap-admin',
    )
  }
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' })
  const { home, javaHome } = await installedKeycloak(config, log)
  const pidFile = join(config.app.storageDir, 'keycloak', 'keycloak.pid')
  const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10)
  if (Number.isInteger(pid) && pid > 1 && (await findGroupMembers(pid, home)).length > 0) {
    throw new Error(`the app's Keycloak is running (pid ${pid}): stop the app first`)
  }
  const given = process.env.KEYCLOAK_BREAK_GLASS_PASSWORD
  const password = given || randomSecret(18)
  const run = bootstrapAdminInvocation(config, home, javaHome, values.username, password)
  const childEnv: Record<string, string> = {}
  for (const [name, value] of Object.entries({ ...process.env, ...run.env })) {
    if (value !== undefined) {
      childEnv[name] = value
    }
  }
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(run.command, run.args, { cwd: home, env: childEnv, stdio: 'inherit' })
    child.on('error', reject)
    child.on('exit', (exitCode) => resolve(exitCode ?? 1))
  })
  if (code !== 0) {
    throw new Error(`kc.sh bootstrap-admin failed (exit ${code})`)
  }
  console.log(`\nmaster realm admin "${values.username}" created (temporary).`)
  if (!given) {
    // Printed once, to this terminal only; it is stored nowhere.
    console.log(`password: ${password}`)
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`keycloak:bootstrap-admin failed: ${errorMessage(err)}`)
    process.exit(1)
  },
)
