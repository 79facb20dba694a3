import { Hono } from 'hono'
import type { NextcloudClient } from '../appapi/nextcloud-client.js'
import type { AppEnv } from '../http/types.js'

/** The top-menu entry's name; its script and style attach to it (specs/appapi.md §6). */
export const TOP_MENU = 'keycloak'
const LOADER_PATH = 'app/loader'
const ICON_PATH = 'app/icon.svg'

/** Registers the admin-only "Keycloak" entry and its loader script; both calls upsert. */
export async function registerTopMenu(nextcloud: NextcloudClient): Promise<void> {
  await nextcloud.registerScript({ name: TOP_MENU, path: LOADER_PATH })
  await nextcloud.registerTopMenu({
    name: TOP_MENU,
    displayName: 'Keycloak',
    icon: ICON_PATH,
    adminRequired: true,
  })
}

/** Removes the entry (AppAPI drops its scripts with it) and the script itself. */
export async function unregisterTopMenu(nextcloud: NextcloudClient): Promise<void> {
  await nextcloud.unregisterScript({ name: TOP_MENU, path: LOADER_PATH })
  await nextcloud.unregisterTopMenu(TOP_MENU)
}

/**
 * Runs inside Nextcloud's embedded page (`<div id="content">`): fills it with a same-origin iframe
 * on the Keycloak admin console as served through this app's proxy prefix. The prefix is the one
 * the script itself was loaded from, so it works behind the PHP proxy and HaRP alike.
 */
const LOADER = `(function () {
  var script = document.currentScript
  var prefix = script ? script.src.replace(/\\/app\\/loader\\.js(\\?.*)?$/, '') : ''
  function mount() {
    var content = document.getElementById('content')
    if (!content) { return }
    content.innerHTML = ''
    var frame = document.createElement('iframe')
    frame.src = prefix + '/admin/master/console/'
    frame.title = 'Keycloak'
    frame.style.cssText = 'border:0;width:100%;height:calc(100vh - 50px);display:block'
    content.appendChild(frame)
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', mount) } else { mount() }
})()
`

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="#fff"><path d="M12 1 3 5v6c0 5.5 3.8 10.7 9 12 5.2-1.3 9-6.5 9-12V5l-9-4zm0 6a3 3 0 0 1 1 5.8V17h-2v-4.2A3 3 0 0 1 12 7z"/></svg>
`

/** `/app/loader.js` and `/app/icon.svg`, the assets AppAPI loads for the top-menu page. */
export function topMenuAssets() {
  return new Hono<AppEnv>()
    .get('/loader.js', (c) => {
      c.header('Content-Type', 'text/javascript; charset=utf-8')
      c.header('Cache-Control', 'no-cache')
      return c.body(LOADER)
    })
    .get('/icon.svg', (c) => {
      c.header('Content-Type', 'image/svg+xml')
      c.header('Cache-Control', 'public, max-age=86400')
      return c.body(ICON)
    })
}
