import type { Hono } from 'hono'
import { mergePath } from 'hono/utils/url'
import { ACCESS, type AccessEntry, type Part } from './access.js'
import type { AppEnv } from './types.js'

/**
 * Mounts `routes` under `prefix`, but only routes the access table declares: each route's path
 * must be one of an entry's paths (of `part`) and its method one the entry lists. A route without
 * an entry is a programming error and stops the app from being built (fail closed).
 */
export function mountDeclared(
  app: Hono<AppEnv>,
  prefix: string,
  routes: Hono<AppEnv>,
  part: Part,
): void {
  for (const route of routes.routes) {
    const path = mergePath(prefix, route.path)
    const method = route.method.toUpperCase()
    const entry = (ACCESS as readonly AccessEntry[]).find(
      (e) =>
        e.part === part &&
        e.paths.includes(path) &&
        (method === 'ALL' || (e.methods as readonly string[]).includes(method)),
    )
    if (!entry) {
      throw new Error(`${method} ${path} has no entry in the access table; declare who may call it`)
    }
  }
  app.route(prefix, routes)
}
