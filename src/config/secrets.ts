import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Secrets the sidecar generates when the admin leaves them unset. */
export const GENERATED_SECRETS = [
  'APP_SECRET',
  'KC_BOOTSTRAP_ADMIN_PASSWORD',
  'KEYCLOAK_ADMIN_CLIENT_SECRET',
  'KEYCLOAK_API_SECRET',
  'ENCRYPTION_KEY',
] as const
export type GeneratedSecret = (typeof GENERATED_SECRETS)[number]
export type GeneratedSecrets = Record<GeneratedSecret, string>

/** URL-safe random string without `$`, which Keycloak would expand in option values. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

export function secretsFile(storageDir: string): string {
  return join(storageDir, 'secrets.json')
}

/** Secrets set in the environment; these are used as given and never written to the file. */
export type GivenSecrets = Partial<Record<GeneratedSecret, string | undefined>>

/** The generated secrets among `env`'s variables. */
export function givenSecrets(env: Partial<Record<string, unknown>>): GivenSecrets {
  return Object.fromEntries(
    GENERATED_SECRETS.flatMap((name) => {
      const value = env[name]
      return typeof value === 'string' && value !== '' ? [[name, value]] : []
    }),
  )
}

/** What `secrets.json` under the persistent storage holds; `{}` when there is no file yet. */
export async function readStoredSecrets(
  storageDir: string,
): Promise<Partial<Record<string, string>>> {
  const file = secretsFile(storageDir)
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, string>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return {}
    }
    throw new Error(`cannot read ${file}: ${(err as Error).message}`)
  }
}

/**
 * The secrets in use: each one `given` in the environment, else the one in `secrets.json` under
 * the persistent storage, else a new one, which is added to the file (mode 0600, written
 * atomically) so a second start reads the same value. A secret given in the environment is never
 * generated nor written: a second, different value in the file would only mislead whoever reads it.
 */
export async function loadOrCreateSecrets(
  storageDir: string,
  given: GivenSecrets = {},
): Promise<GeneratedSecrets> {
  const file = secretsFile(storageDir)
  const stored = await readStoredSecrets(storageDir)
  const generated: Partial<Record<string, string>> = {}
  for (const name of GENERATED_SECRETS) {
    if (given[name] === undefined && typeof stored[name] !== 'string') {
      generated[name] = randomSecret()
    }
  }
  if (Object.keys(generated).length > 0) {
    await mkdir(storageDir, { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, `${JSON.stringify({ ...stored, ...generated }, null, 2)}\n`, {
      mode: 0o600,
    })
    await chmod(tmp, 0o600)
    await rename(tmp, file)
  }
  return Object.fromEntries(
    GENERATED_SECRETS.map((name) => [name, given[name] ?? stored[name] ?? generated[name]]),
  ) as GeneratedSecrets
}
