import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'

/** A request to the thread that runs PGlite. */
export type PgliteRequest =
  | {
      op: 'query'
      sql: string
      params: unknown[]
      rowMode: 'array' | 'object'
      /** type OIDs whose values come back as the text Postgres sent */
      rawTypes: number[]
    }
  | { op: 'exec'; sql: string }
  | { op: 'close' }
  /** the bytes in use in the thread's JavaScript heap (its memory policy is tested by it) */
  | { op: 'heap' }

/** A result as PGlite gives it, minus what cannot cross threads. */
export interface PgliteResult {
  rows: unknown[]
  fields: { name: string; dataTypeID: number }[]
  /** set by `exec`: e.g. ROLLBACK for a COMMIT after a failed statement */
  command?: string
  affectedRows?: number
}

/** An error from the thread: its message and its primitive fields (`code`, `detail`, …). */
export type SerializedError = { message: string } & Record<string, string | number | boolean>

/** What the thread did with PGlite's file bundle once the database was open. */
export interface BundleRelease {
  /** files dropped as unused by an existing database */
  dropped: number
  /** files copied out of the bundle */
  kept: number
  /** size of the bundle's buffer, released */
  bytes: number
}

/** `id` 0 is the thread's start: `ready`, or `failed`; any other id answers that request. */
interface Reply {
  id: number
  ready?: true
  bundle?: BundleRelease
  failed?: SerializedError
  ok?: boolean
  result?: unknown
  error?: SerializedError
}

/*
 * The thread's code, plain JavaScript run with `eval` so that it is the same under the compiled
 * app, tsx and the test runner. It owns one PGlite and answers one message per request.
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { existsSync, readdirSync, renameSync, rmSync } = require('node:fs')
const { basename, dirname, join } = require('node:path')
const { execFileSync } = require('node:child_process')
const serialize = (err) => {
  const out = { message: String((err && err.message) || err) }
  if (err && typeof err === 'object') {
    for (const key of Object.keys(err)) {
      const value = err[key]
      if (['string', 'number', 'boolean'].includes(typeof value)) out[key] = value
    }
  }
  return out
}
const plain = (r) => ({ rows: r.rows, fields: r.fields, command: r.command, affectedRows: r.affectedRows })
const raw = (value) => value
// One full collection once PGlite is open: the 9 MB WebAssembly file it read to compile is garbage
// then, held outside the heap, and an idle thread's V8 has no reason to collect it (measured: the
// process's native memory 10 MiB smaller once open).
const v8 = require('node:v8')
const collect = (() => {
  v8.setFlagsFromString('--expose-gc')
  return require('node:vm').runInNewContext('gc')
})()
// Statements and their parameters arrive as strings that die once answered, but the larger ones
// (a changelog chunk, 100-150 kB) are born in the old generation, which V8 collects only once it
// has grown: the thread's heap went 14 -> 20 MB over the writes at the end of a 10 000-user sync.
// A full collection once the heap has grown by COLLECT_AFTER since the last one keeps it near
// its live size; it runs after the answer is sent, and costs a few milliseconds each time.
const COLLECT_AFTER = 2 * 1024 * 1024
const usedHeap = () => v8.getHeapStatistics().used_heap_size
let settled = 0
const collectOnce = () => {
  collect()
  settled = usedHeap()
}
const collectWhenGrown = () => {
  if (usedHeap() - settled > COLLECT_AFTER) collectOnce()
}
// A new database is set up (initdb) by a process of its own: the setup needs several hundred
// MiB that the app's process would otherwise keep for its whole life. It is made beside the
// data folder and moved in when complete, so a setup cut short leaves nothing half-made there.
const setUp = (dataDir) => {
  const parent = dirname(dataDir)
  const staging = basename(dataDir) + '.setup-'
  for (const name of readdirSync(parent)) {
    if (name.startsWith(staging)) rmSync(join(parent, name), { recursive: true, force: true })
  }
  const target = join(parent, staging + process.pid)
  execFileSync(process.execPath, ['--input-type=module', '-e', workerData.setup], {
    env: { ...process.env, PGLITE_MODULE: workerData.pglite, PGLITE_DATA: target },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  try {
    renameSync(target, dataDir)
  } catch {
    // a data folder with files but no database in it: PGlite decides, as it always did
    rmSync(target, { recursive: true, force: true })
  }
}
// PGlite unpacks a 6 MB bundle (share/, lib/, icu/) into an in-memory file system, each file a
// view of the one buffer, which its own code keeps for the database's life. Once the database
// exists Postgres reads only some of them. Dropped: what initdb alone reads (postgres.bki, the
// .sql scripts, the samples), the encoding conversions (client and server are UTF-8), the build
// files, the replication modules, and the ICU data when the database's locale provider is libc.
// The rest (time zones, plpgsql, text search, ...) is copied out and the buffer released
// (measured, PGlite opened alone: array buffers 8 -> 3 MB, 3-6 MiB less resident). Unless
// exactly one buffer is shared, nothing is touched.
const UNUSED = new RegExp(
  '^/pglite/(lib/postgresql/(pgxs/|[^/]*_and_[^/]*[.]so$|libpqwalreceiver[.]so$|pgoutput[.]so$)' +
    '|share/postgresql/[^/]*[.](bki|sql|sample|txt)$)',
)
const releaseBundle = async (db) => {
  const FS = db.mod.FS
  const { rows } = await db.query(
    'select datlocprovider from pg_database where datname = current_database()',
  )
  const libc = rows[0] && rows[0].datlocprovider === 'c'
  const unused = (path) => UNUSED.test(path) || (libc && path.startsWith('/pglite/icu/'))
  const shared = []
  const visit = (path) => {
    const { node } = FS.lookupPath(path)
    if (FS.isDir(node.mode)) {
      if (path === '/pglite/data') return
      for (const name of FS.readdir(path)) {
        if (name !== '.' && name !== '..') visit(path + '/' + name)
      }
    } else if (FS.isFile(node.mode) && node.contents instanceof Uint8Array) {
      const c = node.contents
      if (c.byteOffset !== 0 || c.byteLength !== c.buffer.byteLength) shared.push({ path, node })
    }
  }
  visit('/pglite')
  visit('/home')
  const buffers = new Set(shared.map(({ node }) => node.contents.buffer))
  if (buffers.size !== 1) return undefined
  const [buffer] = buffers
  let dropped = 0
  for (const { path, node } of shared) {
    if (unused(path)) {
      FS.unlink(path)
      dropped++
    } else {
      node.contents = node.contents.slice(0, node.usedBytes)
    }
  }
  const bytes = buffer.byteLength
  structuredClone(buffer, { transfer: [buffer] })
  return { dropped, kept: shared.length - dropped, bytes }
}
;(async () => {
  let db
  let bundle
  try {
    const inMemory = workerData.dataDir.startsWith('memory://')
    if (!inMemory && !existsSync(join(workerData.dataDir, 'PG_VERSION'))) {
      setUp(workerData.dataDir)
    }
    const { PGlite } = await import(workerData.pglite)
    db = new PGlite(workerData.dataDir, {
      startParams: [...PGlite.defaultStartParams, ...workerData.settings],
    })
    await db.waitReady
    try {
      bundle = await releaseBundle(db)
    } catch {
      // what was done stands: each file is still its view of the buffer, a copy, or gone as unused
    }
    collectOnce()
  } catch (err) {
    parentPort.postMessage({ id: 0, failed: serialize(err) })
    return
  }
  parentPort.postMessage({ id: 0, ready: true, bundle })
  parentPort.on('message', async (msg) => {
    try {
      let result = null
      if (msg.op === 'query') {
        const parsers = {}
        for (const oid of msg.rawTypes) parsers[oid] = raw
        result = plain(await db.query(msg.sql, msg.params, { rowMode: msg.rowMode, parsers }))
      } else if (msg.op === 'exec') {
        result = (await db.exec(msg.sql)).map(plain)
      } else if (msg.op === 'close') {
        await db.close()
      } else if (msg.op === 'heap') {
        result = usedHeap()
      }
      parentPort.postMessage({ id: msg.id, ok: true, result })
    } catch (err) {
      parentPort.postMessage({ id: msg.id, ok: false, error: serialize(err) })
    }
    collectWhenGrown()
  })
})()
`

/** The setup of a new database, run by `node -e` in a process that ends when it is done. */
const SETUP = `
const { PGlite } = await import(process.env.PGLITE_MODULE)
const db = await PGlite.create(process.env.PGLITE_DATA)
await db.close()
`

/**
 * Postgres settings for a small, single-session store. Postgres's default shared_buffers is
 * 128 MB, all of it touched at start inside WebAssembly memory. One MB (128 pages) holds what a
 * statement of this app works on, and the OS page cache keeps the files warm: against 4 MB, the
 * WebAssembly memory of a sidecar after a 10 000-user cold sync is 15 MiB instead of 19, and the
 * sync took no longer (39-40 s against 42-43 s in the memory bench).
 */
export const PGLITE_SETTINGS = [
  '-c',
  'shared_buffers=1MB',
  '-c',
  'temp_buffers=2MB',
  '-c',
  'work_mem=2MB',
  '-c',
  'maintenance_work_mem=16MB',
]

const PGLITE_MODULE = pathToFileURL(
  createRequire(import.meta.url).resolve('@electric-sql/pglite'),
).href

/** One thread running PGlite on `dataDir`. */
export interface PgliteThread {
  /** resolves once PGlite is open; rejects with its error, or when the thread dies first */
  ready: Promise<void>
  /** sends a request; rejects with the thread's error (fields kept) or when the thread dies */
  send(request: PgliteRequest): Promise<unknown>
  /** requests sent and not answered yet */
  pending(): number
  /** what became of PGlite's file bundle (known once ready; undefined when it was left alone) */
  bundle(): BundleRelease | undefined
  /** stops the thread at once, even in the middle of a query that never ends */
  terminate(): Promise<void>
}

/**
 * Starts a thread that runs PGlite. Postgres in WebAssembly runs on the thread that calls it and
 * cannot be interrupted there; on its own thread it can be stopped, and the event loop of the app
 * keeps answering whatever it does. The thread keeps the process alive only while requests wait.
 */
export function startPgliteThread(dataDir: string): PgliteThread {
  useBaselineWasmCompiler()
  const worker = new Worker(SOURCE, {
    eval: true,
    workerData: { pglite: PGLITE_MODULE, dataDir, settings: PGLITE_SETTINGS, setup: SETUP },
    // The thread's own JavaScript is a message loop; its young generation need not be the
    // default 16-32 MB that stays resident once touched (measured in the thread once open: 4 MB
    // resident with a 4 MB limit, 2 MB with 2, the least V8 keeps).
    resourceLimits: { maxYoungGenerationSizeMb: 2 },
  })
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  let nextId = 1
  let dead: Error | undefined
  let bundle: BundleRelease | undefined
  let settleReady: { resolve(): void; reject(e: Error): void } | undefined
  const ready = new Promise<void>((resolve, reject) => {
    settleReady = { resolve, reject }
  })
  ready.catch(() => undefined)

  const die = (err: Error) => {
    dead ??= err
    settleReady?.reject(dead)
    for (const { reject } of waiting.values()) {
      reject(dead)
    }
    waiting.clear()
  }
  worker.on('message', (reply: Reply) => {
    if (reply.id === 0) {
      if (reply.ready) {
        bundle = reply.bundle
        settleReady?.resolve()
      } else {
        settleReady?.reject(toError(reply.failed ?? { message: 'PGlite failed to open' }))
      }
      worker.unref()
      return
    }
    const entry = waiting.get(reply.id)
    waiting.delete(reply.id)
    if (waiting.size === 0) {
      worker.unref()
    }
    if (reply.ok) {
      entry?.resolve(reply.result)
    } else {
      entry?.reject(toError(reply.error ?? { message: 'PGlite failed' }))
    }
  })
  worker.on('error', (err) => die(err))
  worker.on('exit', (code) => die(new Error(`the PGlite thread ended (exit code ${code})`)))

  return {
    ready,
    send(request) {
      if (dead) {
        return Promise.reject(dead)
      }
      const id = nextId++
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject })
        worker.ref()
        worker.postMessage({ id, ...request })
      })
    },
    pending: () => waiting.size,
    bundle: () => bundle,
    async terminate() {
      die(new Error('the PGlite thread was stopped'))
      await worker.terminate()
    },
  }
}

/**
 * V8 compiles WebAssembly twice by default: at once with its baseline compiler, then again,
 * optimized, in the background. For Postgres's 9 MB module the optimized code and the compiler's
 * work cost ~50 MiB of resident memory for speed this store does not need. PGlite is the only
 * WebAssembly the app runs; the flag is read when a module is compiled, so setting it before the
 * thread starts is enough.
 */
function useBaselineWasmCompiler(): void {
  setFlagsFromString('--liftoff-only --no-wasm-dynamic-tiering --no-wasm-tier-up')
}

/** The thread's error as an Error with the same message and fields (Postgres `code` and so on). */
function toError(serialized: SerializedError): Error {
  const { message, name: _name, ...fields } = serialized
  return Object.assign(new Error(message), fields)
}
