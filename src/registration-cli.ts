/**
 * `npm run --silent registration`: prints the `--json-info` for registering this ExApp through a
 * manual-install daemon, and nothing else on stdout:
 *
 *   occ app_api:app:register keycloak manual_install --wait-finish \
 *     --json-info "$(npm run --silent registration)"
 *
 * id (APP_ID), name, version and routes come from appinfo/info.xml; port is APP_PORT (or its
 * default); secret is APP_SECRET from the environment, else the one the app generated into
 * $APP_PERSISTENT_STORAGE/secrets.json. Run it with the environment the app runs with.
 */
import { readFile } from 'node:fs/promises'
import { registrationInfo } from './appapi/registration.js'
import { parseEnv } from './config/config.js'
import { readStoredSecrets, secretsFile } from './config/secrets.js'
import { errorMessage } from './errors.js'

async function main(): Promise<void> {
  const parsed = parseEnv(process.env)
  if (!parsed.ok) {
    throw new Error(`invalid configuration: ${parsed.errors.join('; ')}`)
  }
  const env = parsed.env
  const secret = env.APP_SECRET ?? (await readStoredSecrets(env.APP_PERSISTENT_STORAGE)).APP_SECRET
  if (secret === undefined) {
    throw new Error(
      `no APP_SECRET: set it, or start the app once so that it generates one into ${secretsFile(env.APP_PERSISTENT_STORAGE)}`,
    )
  }
  const xml = await readFile(new URL('../appinfo/info.xml', import.meta.url), 'utf8')
  const info = registrationInfo(xml, { id: env.APP_ID, port: env.APP_PORT, secret })
  process.stdout.write(`${JSON.stringify(info)}\n`)
}

main().catch((err: unknown) => {
  console.error(`registration failed: ${errorMessage(err)}`)
  process.exit(1)
})
