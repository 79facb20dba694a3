import { join } from 'node:path'
import type { Config } from '../config/config.js'
import { startArgsFor, startEnvFor } from './options.js'

/**
 * The environment variable the break-glass password reaches `kc.sh` in (`--password:env`), so it
 * never shows in `ps`. Not `KC_`-prefixed: Keycloak would read it as one of its own options.
 */
export const BREAK_GLASS_PASSWORD_VAR = 'BREAK_GLASS_ADMIN_PASSWORD'

const RELEVANT = ['--db', '--http-management-host=', '--http-management-port=']

export interface BootstrapAdminInvocation {
  command: string
  args: string[]
  /** merged over the caller's environment; `undefined` removes a variable */
  env: Record<string, string | undefined>
}

/**
 * `kc.sh bootstrap-admin user` for the bundled Keycloak in `home`, with the database and options
 * the app starts it with (so it writes into the same master realm), creating `username` with the
 * password given in the environment. The app's own bootstrap admin variables are left out: this
 * admin is the one named here.
 */
export function bootstrapAdminInvocation(
  config: Config,
  home: string,
  javaHome: string,
  username: string,
  password: string,
): BootstrapAdminInvocation {
  return {
    command: join(home, 'bin', 'kc.sh'),
    args: [
      'bootstrap-admin',
      'user',
      '--optimized',
      // The database, and the management interface on loopback as at start; Keycloak calls the
      // other start options irrelevant to this command.
      ...startArgsFor(config).filter((arg) => RELEVANT.some((prefix) => arg.startsWith(prefix))),
      `--username=${username}`,
      `--password:env=${BREAK_GLASS_PASSWORD_VAR}`,
      '--no-prompt',
    ],
    env: {
      ...startEnvFor(config, javaHome),
      KC_BOOTSTRAP_ADMIN_USERNAME: undefined,
      KC_BOOTSTRAP_ADMIN_PASSWORD: undefined,
      KCRAW_BOOTSTRAP_ADMIN_PASSWORD: undefined,
      [BREAK_GLASS_PASSWORD_VAR]: password,
    },
  }
}
