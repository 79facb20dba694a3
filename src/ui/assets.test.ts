import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Hono } from 'hono'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { appWithUi } from '../../test/ui-app.js'
import type { AppEnv } from '../http/types.js'
import { loadStatusPage, STATIC_DIR, STATUS_PAGE_FILES, type StatusPageFile } from './assets.js'
import { appAssets, STATUS_PAGE_CSP } from './top-menu.js'

const modules = Object.keys(STATUS_PAGE_FILES).filter((name) => name.endsWith('.js'))
const source = (name: string) => readFileSync(join(STATIC_DIR, name), 'utf8')

/** The specifiers a module imports (`import … from`, `export … from`, `import()`). */
function importsOf(name: string): string[] {
  return ts.preProcessFile(source(name), true, true).importedFiles.map((f) => f.fileName)
}

describe('the status page modules', () => {
  it('are exactly the files of the static folder, so none is left unserved', () => {
    expect(readdirSync(STATIC_DIR).sort()).toEqual(Object.keys(STATUS_PAGE_FILES).sort())
  })

  it('import only each other, by relative path, and all are reached from the entry', () => {
    const reached = new Set<string>()
    const visit = (name: string) => {
      if (reached.has(name)) {
        return
      }
      reached.add(name)
      for (const specifier of importsOf(name)) {
        expect(specifier, `${name} imports ${specifier}`).toMatch(/^\.\/[\w-]+\.js$/)
        const target = specifier.slice(2)
        expect(modules, `${name} imports ${specifier}`).toContain(target)
        visit(target)
      }
    }
    visit('status.js')
    expect([...reached].sort()).toEqual([...modules].sort())
    const html = source('index.html')
    expect(html).toMatch(/<script type="module" src="status\.js"><\/script>/)
  })

  it('are each type-checked', () => {
    for (const name of modules) {
      expect(source(name).startsWith('// @ts-check\n'), name).toBe(true)
    }
  })

  it('are served as JavaScript to admins, under the page policy', async () => {
    const files = loadStatusPage()
    const ui = new Hono<AppEnv>().route(
      '/app',
      appAssets({ publicPath: '/exapps/keycloak', isAdmin: async (uid) => uid === 'admin', files }),
    )
    const { app, as } = appWithUi(ui)
    for (const name of modules) {
      const res = await app.request(`/app/${name}`, { headers: as('admin') })
      expect(res.status, name).toBe(200)
      // Browsers run a module script only with a JavaScript type.
      expect(res.headers.get('content-type'), name).toBe('text/javascript; charset=utf-8')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(await res.text()).toBe(source(name))
      expect((await app.request(`/app/${name}`, { headers: as('alice') })).status).toBe(403)
    }
    // Module scripts and their imports are scripts: the page's policy must take them from itself.
    expect(STATUS_PAGE_CSP).toContain("script-src 'self'")
    expect(files.get('status.js' satisfies StatusPageFile)?.type).toMatch(/^text\/javascript/)
  })
})
