import { z } from 'zod'

/** The Keycloak release this project installs, builds and tests against. Change it here only. */
export const KEYCLOAK_VERSION = '26.7.3'

const csv = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  )

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v))

const optionalUrl = optionalString.pipe(z.url().optional())

const port = z.coerce.number().int().min(1).max(65535)

/** The shortest secret or password accepted from the environment. */
export const MIN_SECRET_LENGTH = 16

/** A secret set by the admin: unset (generated, or the feature off) or at least 16 characters. */
const secret = optionalString.pipe(
  z
    .string()
    .min(MIN_SECRET_LENGTH, `too weak: needs at least ${MIN_SECRET_LENGTH} characters`)
    .optional(),
)

/** `ncgroup:role,other:role2` → [{ group, role }] */
const roleMappings = csv.pipe(
  z.array(
    z
      .string()
      .regex(/^[^:]+:[^:]+$/, 'each entry must be "nextcloudGroup:realmRole"')
      .transform((entry) => {
        const [group = '', role = ''] = entry.split(':')
        return { group: group.trim(), role: role.trim() }
      }),
  ),
)

/** `phone:phone,organisation:org` → [{ field, attribute }] (Nextcloud field → Keycloak attribute) */
const profileFields = csv.pipe(
  z.array(
    z
      .string()
      .regex(
        /^[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)?$/,
        'each entry must be "field" or "field:attribute"',
      )
      .transform((entry) => {
        const [field = '', attribute] = entry.split(':')
        return { field, attribute: attribute ?? field }
      }),
  ),
)

const consumer = z.object({
  name: z.string().min(1),
  secret: z
    .string()
    .min(
      MIN_SECRET_LENGTH,
      `a consumer secret is too weak: needs at least ${MIN_SECRET_LENGTH} characters`,
    ),
  clients: z.array(z.string().min(1)).min(1),
  groups: z.array(z.string().min(1)).min(1).optional(),
  allowAdmins: z.boolean().optional(),
})

/**
 * `[{"name":"opentalk","secret":"…","clients":["opentalk"],"groups":["staff"],"allowAdmins":false}]`
 * as JSON; `groups` and `allowAdmins` are optional.
 */
const consumers = optionalString.transform((raw, ctx) => {
  if (raw === undefined) {
    return []
  }
  try {
    const parsed = z.array(consumer).safeParse(JSON.parse(raw))
    if (parsed.success) {
      return parsed.data
    }
    ctx.addIssue({ code: 'custom', message: parsed.error.issues.map((i) => i.message).join('; ') })
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON array' })
  }
  return z.NEVER
})

/**
 * Environment schema. Names of the original ExApp and of AppAPI keep their meaning; secrets left
 * unset are generated and persisted (src/config/secrets.ts), never defaulted to a public value.
 */
export const envSchema = z.object({
  // AppAPI
  APP_ID: z
    .string()
    .regex(/^[a-z0-9_-]+$/i)
    .default('keycloak'),
  APP_SECRET: secret,
  APP_VERSION: z.string().min(1).optional(),
  APP_HOST: z.string().min(1).default('127.0.0.1'),
  APP_PORT: port.default(23000),
  APP_PERSISTENT_STORAGE: z.string().min(1).default('./data'),
  NEXTCLOUD_URL: z
    .url()
    .default('http://localhost')
    .transform((u) => u.replace(/\/+$/, '').replace(/\/index\.php$/, '')),
  AA_VERSION: optionalString,
  HP_SHARED_KEY: optionalString,
  // Keycloak
  KEYCLOAK_URL: optionalUrl,
  KEYCLOAK_HOME: optionalString,
  KEYCLOAK_CACHE_DIR: z.string().min(1).default('./.keycloak'),
  KEYCLOAK_HTTP_PORT: port.default(8080),
  KEYCLOAK_MANAGEMENT_PORT: port.default(9000),
  KEYCLOAK_START_TIMEOUT_MS: z.coerce.number().int().positive().default(240_000),
  KEYCLOAK_HEAP: z.string().default('-Xms128m -Xmx768m'),
  KEYCLOAK_REALM: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
    // In any letter case: "Master" beside master misleads admins, and MySQL/MariaDB compare names
    // case-insensitively by default.
    .refine((r) => r.toLowerCase() !== 'master', 'the master realm cannot be the synced realm')
    .default('commonground'),
  KEYCLOAK_CLIENTS: csv.pipe(z.array(z.string().regex(/^[A-Za-z0-9_.:-]+$/))).default(['opentalk']),
  KEYCLOAK_API_SECRET: secret,
  KEYCLOAK_CONSUMERS: consumers,
  KEYCLOAK_TOKEN_MODE: z.enum(['jwt', 'password']).default('jwt'),
  KEYCLOAK_LOGIN: z.enum(['nextcloud', 'keycloak']).default('nextcloud'),
  // Nextcloud groups whose members administer the synced realm in Keycloak's console (besides admin).
  KEYCLOAK_CONSOLE_GROUPS: csv,
  KEYCLOAK_CONSOLE_LOGIN: z.enum(['nextcloud', 'keycloak']).default('nextcloud'),
  KC_BOOTSTRAP_ADMIN_USERNAME: z.string().min(1).default('admin'),
  KC_BOOTSTRAP_ADMIN_PASSWORD: secret,
  KEYCLOAK_ADMIN_CLIENT_SECRET: secret,
  KC_HOSTNAME: optionalUrl,
  KC_DB: optionalString.pipe(
    z.enum(['dev-file', 'postgres', 'mariadb', 'mysql', 'mssql', 'oracle']).optional(),
  ),
  KC_DB_URL: optionalString,
  KC_DB_USERNAME: optionalString,
  KC_DB_PASSWORD: optionalString,
  JAVA_HOME: optionalString,
  // Nextcloud directory and sync
  NEXTCLOUD_ADMIN_USER: optionalString,
  SYNC_INTERVAL: z.coerce.number().int().min(0).default(900),
  SYNC_POLL_INTERVAL: z.coerce.number().int().min(0).default(30),
  SYNC_FULL_INTERVAL: z.coerce.number().int().min(0).default(21_600),
  SYNC_DELETE_POLICY: z.enum(['disable', 'delete']).default('disable'),
  SYNC_DELETION_GUARD_PERCENT: z.coerce.number().min(0).max(100).default(20),
  SYNC_GATE_GROUPS: csv,
  SYNC_ROLE_MAPPINGS: roleMappings,
  SYNC_PROFILE_FIELDS: profileFields,
  SYNC_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(500),
  SYNC_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(6),
  // State
  DATABASE_URL: optionalString.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
  ),
  ENCRYPTION_KEY: optionalString.pipe(
    z.string().min(32, 'needs at least 32 characters').optional(),
  ),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  NODE_ENV: z.string().default('production'),
  METRICS_TOKEN: secret,
})

export type Env = z.infer<typeof envSchema>
