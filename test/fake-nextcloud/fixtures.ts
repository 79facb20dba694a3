import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeAuth } from './auth.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The captures of a real Nextcloud 31.0.2 + AppAPI 5.0.2, kept in the repo (see its README). */
export const FIXTURES_DIR = path.resolve(REPO_ROOT, 'test/fixtures/nextcloud')

/** One captured exchange (the files with a `request` and a `response`). */
export interface Capture {
  name: string
  request: {
    method: string
    path: string
    headers: Record<string, string | number>
    body: unknown
  }
  response: { status: number; headers: Record<string, unknown>; body: unknown }
}

export interface IndexEntry {
  file: string
  request_line?: string
  status?: number
}

export function loadFixture<T = Capture>(file: string): T {
  const name = file.endsWith('.json') ? file : `${file}.json`
  return JSON.parse(readFileSync(path.join(FIXTURES_DIR, name), 'utf8')) as T
}

const MASKED_AUTH = /^<base64\("([^"]*):" \+ APP_SECRET\)>/

/**
 * The captured request headers, ready to send again: the masked AUTHORIZATION-APP-API is
 * re-encoded with `secret` for the same user, and Content-Length is left to fetch.
 */
export function replayHeaders(
  headers: Capture['request']['headers'],
  secret: string,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'content-length') {
      continue
    }
    const masked = MASKED_AUTH.exec(String(value))
    out[name] = masked ? encodeAuth(masked[1] ?? '', secret) : String(value)
  }
  return out
}
