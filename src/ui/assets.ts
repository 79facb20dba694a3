import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One file of the status page, read once at start. */
export interface Asset {
  body: Buffer
  type: string
  etag: string
}

const JS = 'text/javascript; charset=utf-8'

/**
 * The status page's files: a fixed list, so no request path ever reaches the file system.
 * `status.js` is the entry module; the others are the ES modules it imports (a module script
 * needs a JavaScript type, and the page's CSP takes scripts from the app itself only).
 */
export const STATUS_PAGE_FILES = {
  'index.html': 'text/html; charset=utf-8',
  'status.css': 'text/css; charset=utf-8',
  'status.js': JS,
  'api.js': JS,
  'credentials.js': JS,
  'dom.js': JS,
  'dry-run.js': JS,
  'errors.js': JS,
  'format.js': JS,
  'overview.js': JS,
  'results.js': JS,
  'runs.js': JS,
  'state.js': JS,
  'sync.js': JS,
  'theme.js': JS,
  'vocabulary.js': JS,
} as const

export type StatusPageFile = keyof typeof STATUS_PAGE_FILES

/**
 * `src/ui/static` when run from source; in the image `dist/static` beside the bundled
 * `dist/main.js` (the build copies it there, and to `dist/ui/static` for the per-module files).
 */
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url))

export function asset(body: string | Buffer, type: string): Asset {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  const hash = createHash('sha256').update(bytes).digest('base64url').slice(0, 22)
  return { body: bytes, type, etag: `"${hash}"` }
}

/** Reads every status-page file; a missing one fails the start with its path. */
export function loadStatusPage(dir = STATIC_DIR): Map<StatusPageFile, Asset> {
  const files = new Map<StatusPageFile, Asset>()
  for (const [name, type] of Object.entries(STATUS_PAGE_FILES) as [StatusPageFile, string][]) {
    files.set(name, asset(readFileSync(join(dir, name)), type))
  }
  return files
}
