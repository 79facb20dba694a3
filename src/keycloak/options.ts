import { join } from 'node:path'
import type { Config } from '../config/config.js'

/**
 * Build-time options, baked into `lib/quarkus` by `kc.sh build`. They are stored in plain text
 * there, so nothing secret may ever be one.
 *
 * Checked on 26.7.3 (`/admin/serverinfo`): `jwt-authorization-grant` and
 * `token-exchange-standard:v2` are DEFAULT features and enabled without any flag, so no feature
 * option is needed for the JWT Authorization Grant. `cache` is a runtime option on 26.7.3 (the
 * build prints "run time options … will be ignored during build time: kc.cache"), so it lives in
 * `startArgsFor`.
 */
export function buildOptionsFor(config: { keycloak: Pick<Config['keycloak'], 'db'> }): string[] {
  return [`--db=${config.keycloak.db.kind}`, '--health-enabled=true', '--metrics-enabled=true']
}

export type StartConfig = {
  app: Pick<Config['app'], 'storageDir'>
  keycloak: Pick<
    Config['keycloak'],
    'httpPort' | 'managementPort' | 'publicUrl' | 'db' | 'heap' | 'adminUser' | 'adminPassword'
  >
}

/** Where the dev-file H2 database lives: under persistent storage, so a new install keeps it. */
export function h2Path(storageDir: string): string {
  return join(storageDir, 'keycloak', 'h2', 'keycloakdb')
}

/**
 * Runtime arguments for `kc.sh start --optimized` (without those two words). None is secret: they
 * show up in `ps` and in the supervisor's spawn log line.
 */
export function startArgsFor(config: StartConfig): string[] {
  const keycloak = config.keycloak
  const args = [
    '--http-enabled=true',
    // Both interfaces on loopback: only the sidecar talks to Keycloak; browsers go through it.
    '--http-host=127.0.0.1',
    `--http-port=${keycloak.httpPort}`,
    '--http-management-host=127.0.0.1',
    `--http-management-port=${keycloak.managementPort}`,
    `--hostname=${keycloak.publicUrl}`,
    // Lets the sidecar call token/JWKS endpoints on 127.0.0.1 while `iss` stays the public URL.
    '--hostname-backchannel-dynamic=true',
    '--proxy-headers=xforwarded',
    '--proxy-trusted-addresses=127.0.0.1',
    // One supervised node: no Infinispan cluster, no JGroups discovery through the database.
    '--cache=local',
  ]
  if (keycloak.db.kind === 'dev-file') {
    // The default dev-file URL points into the install's data/ dir, which a reinstall replaces.
    // The two properties are the ones Keycloak appends to its own default H2 URL. H2 flushes
    // commits within ~1 s, so a SIGKILL can lose the last second of writes; WRITE_DELAY=0 closes
    // that gap but cost ~2.5 s per warm start on 26.7.3, and the bootstrap and sync redo any
    // lost write on the next start anyway.
    args.push(
      `--db-url=jdbc:h2:file:${h2Path(config.app.storageDir)};NON_KEYWORDS=VALUE;DB_CLOSE_ON_EXIT=FALSE`,
    )
  }
  return args
}

/**
 * Environment for the Keycloak child, merged over the sidecar's own. Secrets travel only here.
 * They use the `KCRAW_` prefix (26.6+) so a `$` in an admin-chosen password is taken literally;
 * the matching `KC_` names are removed because Keycloak refuses to start when both are set.
 */
export function startEnvFor(
  config: StartConfig,
  javaHome: string,
  aotCache?: string,
): Record<string, string | undefined> {
  const keycloak = config.keycloak
  const env: Record<string, string | undefined> = {
    JAVA_HOME: javaHome,
    JAVA_OPTS_KC_HEAP: keycloak.heap,
    KC_BOOTSTRAP_ADMIN_USERNAME: keycloak.adminUser,
    KC_BOOTSTRAP_ADMIN_PASSWORD: undefined,
    KCRAW_BOOTSTRAP_ADMIN_PASSWORD: keycloak.adminPassword,
    KC_DB_PASSWORD: undefined,
  }
  if (aotCache !== undefined) {
    // the classes of its start, loaded and linked ahead of time (see aot-cache.ts)
    env.JAVA_OPTS_APPEND = `-XX:AOTCache=${aotCache}`
  }
  if (keycloak.db.kind !== 'dev-file') {
    env.KC_DB_URL = keycloak.db.url
    env.KC_DB_USERNAME = keycloak.db.username
    env.KCRAW_DB_PASSWORD = keycloak.db.password
  }
  return env
}
