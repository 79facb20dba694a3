import { resolve } from 'node:path'
import { type Env, envSchema, KEYCLOAK_VERSION } from './schema.js'
import type { GeneratedSecrets } from './secrets.js'

export interface Consumer {
  name: string
  secret: string
  /** client_ids this consumer may ask tokens for */
  clients: string[]
  /**
   * Nextcloud groups whose members it may ask tokens for; unset: any user. A member of Nextcloud's
   * `admin` group needs `allowAdmins` (or `admin` listed here).
   */
  groups?: string[]
  /** may ask tokens for Nextcloud admins; default false */
  allowAdmins?: boolean
}

export type KeycloakDb =
  | { kind: 'dev-file' }
  | {
      kind: Exclude<NonNullable<Env['KC_DB']>, 'dev-file'>
      url?: string
      username?: string
      password?: string
    }

/** Typed, resolved configuration. Built once in main.ts and passed down; never read from env elsewhere. */
export interface Config {
  app: {
    id: string
    secret: string
    version: string
    host: string
    port: number
    storageDir: string
    /** the app as browsers reach it through Nextcloud (the PHP proxy's or HaRP's prefix) */
    publicUrl: string
    /** set under HaRP: serve on this unix socket instead of TCP */
    socketPath?: string
  }
  nextcloud: { url: string; adminUser?: string; aaVersion?: string }
  keycloak: {
    mode: 'embedded' | 'external'
    version: string
    /** where the sidecar reaches Keycloak (backchannel): loopback in embedded mode */
    url: string
    /** public URL of the proxied Keycloak, used as its `hostname` (frontend URLs, issuer) */
    publicUrl: string
    realm: string
    httpPort: number
    managementPort: number
    home?: string
    cacheDir: string
    javaHome?: string
    startTimeoutMs: number
    heap: string
    adminUser: string
    adminPassword: string
    /** the app's own master-realm client: it administers Keycloak as this service account */
    serviceAccount: { clientId: string; secret: string }
    db: KeycloakDb
    clients: string[]
    tokenMode: 'jwt' | 'password'
    /** the realm's browser login: straight to Nextcloud, or Keycloak's own form */
    login: 'nextcloud' | 'keycloak'
    /** Nextcloud groups whose members get a console identity for the synced realm (beside `admin`) */
    consoleGroups: string[]
    /** `nextcloud`: the master realm's console login and the admins' console identities; `keycloak`: master untouched */
    consoleLogin: 'nextcloud' | 'keycloak'
  }
  consumers: Consumer[]
  sync: {
    /** seconds between full runs; 0 = no periodic work at all (no poll either) */
    intervalSeconds: number
    /** seconds between polls of Nextcloud's cheap lists; 0 or absent = no poll */
    pollSeconds?: number
    /**
     * seconds between full reconciliations, which read the whole realm from Keycloak; the runs
     * between plan against the stored state and the realm's admin events (0 = every run is full;
     * absent = 6 h)
     */
    fullIntervalSeconds?: number
    deletePolicy: 'disable' | 'delete'
    guardPercent: number
    gateGroups: string[]
    roleMappings: { group: string; role: string }[]
    profileFields: { field: string; attribute: string }[]
    pageSize: number
    concurrency: number
  }
  databaseUrl?: string
  encryptionKey: string
  metricsToken?: string
  log: { level: string; pretty: boolean }
}

export type ParseResult = { ok: true; env: Env } | { ok: false; errors: string[] }

/** Validates the environment; on failure returns one line per bad variable. */
export function parseEnv(raw: Record<string, string | undefined>): ParseResult {
  const result = envSchema.safeParse(raw)
  if (result.success) {
    return { ok: true, env: result.data }
  }
  const errors = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)'
    const value = raw[String(issue.path[0])]
    const shown =
      value === undefined || /SECRET|PASSWORD|KEY|TOKEN/.test(name) ? '' : ` (got "${value}")`
    return `${name}: ${issue.message}${shown}`
  })
  return { ok: false, errors }
}

/** Public prefix under which Nextcloud serves this ExApp to browsers. */
export function publicPrefix(env: Pick<Env, 'NEXTCLOUD_URL' | 'APP_ID' | 'HP_SHARED_KEY'>): string {
  return env.HP_SHARED_KEY
    ? `${env.NEXTCLOUD_URL}/exapps/${env.APP_ID}`
    : `${env.NEXTCLOUD_URL}/index.php/apps/app_api/proxy/${env.APP_ID}`
}

/** Combines the validated env with the persisted generated secrets into the typed Config. */
export function buildConfig(env: Env, secrets: GeneratedSecrets, packageVersion: string): Config {
  const apiSecret = env.KEYCLOAK_API_SECRET ?? secrets.KEYCLOAK_API_SECRET
  const consumers: Consumer[] =
    env.KEYCLOAK_CONSUMERS.length > 0
      ? env.KEYCLOAK_CONSUMERS
      : [{ name: 'default', secret: apiSecret, clients: env.KEYCLOAK_CLIENTS }]
  const external = env.KEYCLOAK_URL !== undefined
  const db: KeycloakDb =
    env.KC_DB === undefined || env.KC_DB === 'dev-file'
      ? { kind: 'dev-file' }
      : {
          kind: env.KC_DB,
          url: env.KC_DB_URL,
          username: env.KC_DB_USERNAME,
          password: env.KC_DB_PASSWORD,
        }
  return {
    app: {
      id: env.APP_ID,
      secret: env.APP_SECRET ?? secrets.APP_SECRET,
      version: env.APP_VERSION ?? packageVersion,
      host: env.APP_HOST,
      port: env.APP_PORT,
      storageDir: resolve(env.APP_PERSISTENT_STORAGE),
      publicUrl: publicPrefix(env),
      ...(env.HP_SHARED_KEY ? { socketPath: '/tmp/exapp.sock' } : {}),
    },
    nextcloud: {
      url: env.NEXTCLOUD_URL,
      adminUser: env.NEXTCLOUD_ADMIN_USER,
      aaVersion: env.AA_VERSION,
    },
    keycloak: {
      mode: external ? 'external' : 'embedded',
      version: KEYCLOAK_VERSION,
      url: (env.KEYCLOAK_URL ?? `http://127.0.0.1:${env.KEYCLOAK_HTTP_PORT}`).replace(/\/+$/, ''),
      publicUrl: (env.KC_HOSTNAME ?? publicPrefix(env)).replace(/\/+$/, ''),
      realm: env.KEYCLOAK_REALM,
      httpPort: env.KEYCLOAK_HTTP_PORT,
      managementPort: env.KEYCLOAK_MANAGEMENT_PORT,
      home: env.KEYCLOAK_HOME ? resolve(env.KEYCLOAK_HOME) : undefined,
      cacheDir: resolve(env.KEYCLOAK_CACHE_DIR),
      javaHome: env.JAVA_HOME,
      startTimeoutMs: env.KEYCLOAK_START_TIMEOUT_MS,
      heap: env.KEYCLOAK_HEAP,
      adminUser: env.KC_BOOTSTRAP_ADMIN_USERNAME,
      adminPassword: env.KC_BOOTSTRAP_ADMIN_PASSWORD ?? secrets.KC_BOOTSTRAP_ADMIN_PASSWORD,
      serviceAccount: {
        // One per synced realm, so two apps sharing a Keycloak do not take over each other's.
        clientId: `keycloak-exapp-${env.KEYCLOAK_REALM}`,
        secret: env.KEYCLOAK_ADMIN_CLIENT_SECRET ?? secrets.KEYCLOAK_ADMIN_CLIENT_SECRET,
      },
      db,
      clients: env.KEYCLOAK_CLIENTS,
      tokenMode: env.KEYCLOAK_TOKEN_MODE,
      login: env.KEYCLOAK_LOGIN,
      consoleGroups: env.KEYCLOAK_CONSOLE_GROUPS,
      consoleLogin: env.KEYCLOAK_CONSOLE_LOGIN,
    },
    consumers,
    sync: {
      intervalSeconds: env.SYNC_INTERVAL,
      pollSeconds: env.SYNC_INTERVAL === 0 ? 0 : env.SYNC_POLL_INTERVAL,
      fullIntervalSeconds: env.SYNC_FULL_INTERVAL,
      deletePolicy: env.SYNC_DELETE_POLICY,
      guardPercent: env.SYNC_DELETION_GUARD_PERCENT,
      gateGroups: env.SYNC_GATE_GROUPS,
      roleMappings: env.SYNC_ROLE_MAPPINGS,
      profileFields: env.SYNC_PROFILE_FIELDS,
      pageSize: env.SYNC_PAGE_SIZE,
      concurrency: env.SYNC_CONCURRENCY,
    },
    databaseUrl: env.DATABASE_URL,
    encryptionKey: env.ENCRYPTION_KEY ?? secrets.ENCRYPTION_KEY,
    metricsToken: env.METRICS_TOKEN,
    log: { level: env.LOG_LEVEL, pretty: env.NODE_ENV === 'development' },
  }
}
