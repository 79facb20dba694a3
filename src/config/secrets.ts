import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Secrets the sidecar generates when the admin leaves them unset. */
export const GENERATED_SECRETS = [
  'APP_SECRET',
  'KC_BOOTSTRAP_ADMIN_PASSWORD',
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

/**
 * Reads `secrets.json` under the persistent storage, adds any secret it lacks, and writes it back
 * (mode 0600, atomically) when something was added. A second start reads the same values.
 */
export async function loadOrCreateSecrets(storageDir: string): Promise<GeneratedSecrets> {
  const file = secretsFile(storageDir)
  let stored: Partial<Record<string, string>> = {}
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read ${file}: ${(err as Error).message}`)
    }
  }
  const missing = GENERATED_SECRETS.filter((name) => typeof stored[name] !== 'string')
  const secrets = Object.fromEntries(
    GENERATED_SECRETS.map((name) => [name, stored[name] ?? randomSecret()]),
  ) as GeneratedSecrets
  if (missing.length > 0) {
    await mkdir(storageDir, { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, `${JSON.stringify({ ...stored, ...secrets }, null, 2)}\n`, { mode: 0o600 })
    await chmod(tmp, 0o600)
    await rename(tmp, file)
  }
  return secrets
}
