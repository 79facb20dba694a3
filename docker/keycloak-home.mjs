// Which Keycloak home a container start uses. Runs from /app/docker, next to the compiled dist/.
//
//   node docker/keycloak-home.mjs stamp --db=postgres ...   (image build) writes the build stamp
//                                                          of /opt/keycloak for those options
//   node docker/keycloak-home.mjs                           (entrypoint) prints the home to use
//
// The image's /opt/keycloak is built for one set of build-time options (Dockerfile,
// KC_BUILD_OPTIONS) and is read-only for the app user. When the options this start wants differ
// (for example KC_DB unset, so dev-file, while the image was built for postgres), the home is
// copied once to $APP_PERSISTENT_STORAGE/keycloak-home and the sidecar's buildKeycloak() rebuilds
// that copy and stamps it; later starts find the stamp and skip the build. A new image (another
// Keycloak, other files) replaces the copy, and a copy no longer needed is removed.
//
// The stamp and the wanted options come from the sidecar's own code (buildStamp, buildOptionsFor,
// findJava), so this script and the app cannot disagree on whether a rebuild is needed.

import { createHash } from 'node:crypto'
import { cp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { buildConfig, parseEnv } from '../dist/config/config.js'
import { GENERATED_SECRETS } from '../dist/config/secrets.js'
import { BUILD_STAMP_FILE, buildStamp } from '../dist/keycloak/install.js'
import { findJava } from '../dist/keycloak/java.js'
import { buildOptionsFor } from '../dist/keycloak/options.js'

const IMAGE_HOME = '/opt/keycloak'
const COPY_NAME = 'keycloak-home'
const ORIGIN_FILE = '.exapp-origin'

// biome-ignore lint/style/noProcessEnv: a container start script; the environment is its input
const env = process.env

const say = (line) => process.stderr.write(`keycloak-home: ${line}\n`)

/** Files of a Keycloak home except data/ (written at run time): path, size and mtime, hashed. */
async function fingerprint(home) {
  const lines = []
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      const rel = relative(home, path)
      if (rel === 'data' || rel === ORIGIN_FILE) {
        continue
      }
      if (entry.isDirectory()) {
        await walk(path)
      } else {
        const s = await stat(path).catch(() => undefined)
        lines.push(`${rel}\t${s?.size ?? -1}\t${Math.trunc(s?.mtimeMs ?? 0)}`)
      }
    }
  }
  await walk(home)
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex')
}

const readText = (path) => readFile(path, 'utf8').catch(() => undefined)

/** `stamp <options…>`: the image was built with these options and runs with this JAVA_HOME. */
async function writeImageStamp(options) {
  if (options.length === 0) {
    throw new Error('stamp needs the build options the image was built with')
  }
  const java = await findJava({ javaHome: env.JAVA_HOME || undefined })
  await writeFile(join(IMAGE_HOME, BUILD_STAMP_FILE), buildStamp(options, java.javaHome))
  say(`stamped ${IMAGE_HOME} for ${options.join(' ')} with ${java.javaHome}`)
}

/** The home for this start: the image's when its stamp is what this start wants, else the copy. */
async function chooseHome() {
  const requested = env.KEYCLOAK_HOME ? resolve(env.KEYCLOAK_HOME) : IMAGE_HOME
  if (requested !== IMAGE_HOME) {
    say(`KEYCLOAK_HOME=${requested} was set explicitly; using it as is`)
    return requested
  }
  const parsed = parseEnv(env)
  if (!parsed.ok) {
    // The app reports the bad variables itself, one line each.
    return IMAGE_HOME
  }
  const placeholders = Object.fromEntries(GENERATED_SECRETS.map((name) => [name, '']))
  const config = buildConfig(parsed.env, placeholders, '0.0.0')
  if (config.keycloak.mode === 'external') {
    return IMAGE_HOME
  }
  const java = await findJava({ javaHome: config.keycloak.javaHome })
  const wanted = buildStamp(buildOptionsFor(config), java.javaHome)
  const copy = join(config.app.storageDir, COPY_NAME)
  if ((await readText(join(IMAGE_HOME, BUILD_STAMP_FILE))) === wanted) {
    await rm(copy, { recursive: true, force: true })
    return IMAGE_HOME
  }
  const origin = await fingerprint(IMAGE_HOME)
  if ((await readText(join(copy, ORIGIN_FILE))) === origin) {
    say(`build options differ from the image's; using ${copy} (rebuilt there once)`)
    return copy
  }
  say(`build options differ from the image's; copying ${IMAGE_HOME} to ${copy} for one rebuild`)
  const partial = `${copy}.partial`
  await rm(partial, { recursive: true, force: true })
  await cp(IMAGE_HOME, partial, { recursive: true, verbatimSymlinks: true })
  await writeFile(join(partial, ORIGIN_FILE), origin)
  await rm(copy, { recursive: true, force: true })
  await rename(partial, copy)
  return copy
}

async function main() {
  const [command, ...rest] = process.argv.slice(2)
  if (command === 'stamp') {
    await writeImageStamp(rest)
    return
  }
  if (command !== undefined) {
    throw new Error(`unknown command "${command}"`)
  }
  process.stdout.write(`${await chooseHome()}\n`)
}

main().catch((err) => {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
