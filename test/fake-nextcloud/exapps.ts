export interface ExAppRegistration {
  appId: string
  secret: string
  version: string
  /** where Nextcloud reaches the ExApp, e.g. `http://127.0.0.1:23002` */
  url: string
  /** default true, init 100: an installed app. `install()` resets both. */
  enabled?: boolean
  init?: number
}

/** The `status` column of AppAPI's `ex_apps` row. */
export interface ExAppStatus {
  deploy: number
  init: number
  action: string
  type: string
  error: string
}

export interface TopMenuRecord {
  id: number
  appid: string
  name: string
  display_name: string
  icon: string
  admin_required: number
}

export interface UiResourceRecord {
  id: number
  appid: string
  type: string
  name: string
  path: string
  after_app_id?: string
}

export interface ExAppRecord {
  appId: string
  secret: string
  version: string
  url: string
  enabled: boolean
  status: ExAppStatus
  /** while AppAPI runs its enable sequence (heartbeat, `PUT /enabled`) */
  enabling: boolean
  /** the `error` of the last `/enabled` reply, or why the call failed */
  lastEnabledError: string
  topMenus: Map<string, TopMenuRecord>
  scripts: Map<string, UiResourceRecord>
  styles: Map<string, UiResourceRecord>
}

export interface ExAppRegistry {
  register(reg: ExAppRegistration): ExAppRecord
  get(appId: string): ExAppRecord | undefined
  require(appId: string): ExAppRecord
  /** failed AppAPI logins (wrong secret, unknown app id), as Nextcloud's throttler counts them */
  bruteForceAttempts: number
  nextId(): number
}

export function createExAppRegistry(): ExAppRegistry {
  const apps = new Map<string, ExAppRecord>()
  let id = 0
  return {
    register(reg) {
      const record: ExAppRecord = {
        appId: reg.appId,
        secret: reg.secret,
        version: reg.version,
        url: reg.url.replace(/\/+$/, ''),
        enabled: reg.enabled ?? true,
        status: { deploy: 100, init: reg.init ?? 100, action: '', type: '', error: '' },
        enabling: false,
        lastEnabledError: '',
        topMenus: new Map(),
        scripts: new Map(),
        styles: new Map(),
      }
      apps.set(reg.appId, record)
      return record
    },
    get: (appId) => apps.get(appId),
    require(appId) {
      const app = apps.get(appId)
      if (!app) {
        throw new Error(`fake Nextcloud has no ExApp "${appId}"; registerExApp() it first`)
      }
      return app
    },
    bruteForceAttempts: 0,
    nextId: () => ++id,
  }
}
