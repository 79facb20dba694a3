/**
 * What drizzle's PGlite driver imports from `@electric-sql/pglite`, for the app's bundle only.
 * PGlite runs on a thread of its own (pglite-worker.ts); the app's thread gives drizzle a client
 * that sends it queries, and needs of the package only the type OIDs drizzle's session names.
 * Loading the package there anyway (its module graph, 0.4 MB of source) kept about 1.8 MiB
 * resident for nothing. The build aliases the package to this module; the thread still loads
 * the real one (resolved by path at run time). A test checks these OIDs against PGlite's own and
 * against every one drizzle's driver names.
 */
export const types = {
  DATE: 1082,
  TIMESTAMP: 1114,
  TIMESTAMPTZ: 1184,
  INTERVAL: 1186,
} as const

/** drizzle's driver builds a PGlite only when given none; the app always gives its client. */
export class PGlite {
  constructor() {
    throw new Error('PGlite runs on its own thread: the app passes drizzle a client for it')
  }
}
