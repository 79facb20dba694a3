import { readdirSync, readFileSync } from 'node:fs'
import { join, posix, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/**
 * The parts of src/ as layers, lowest first. A node is a folder (`keycloak`) or a file at the top
 * of src/ (`errors.ts`). A file may import from its own node, from any node of a lower layer, and
 * from a node of its own layer only along an edge `within` lists. A node that no layer lists is
 * refused until it is given one. Test files (`*.test.ts`) are exempt.
 *
 * The allowed graph, top to bottom (→: may import, besides every lower layer):
 *
 *   composition  main.ts → exapp.ts → app.ts, exapp/          registration-cli.ts
 *   edge         ui/ → proxy/ → http/                          metrics.ts → http/
 *                oidc/ → proxy/, http/
 *   domain       tokens/ → sync/
 *   adapters     db/    appapi/    keycloak/                   (none imports another)
 *   base         errors.ts  log.ts  config/  single-flight.ts  state.ts  storage-modes.ts
 *                http-request.ts  free-port.ts  batches.ts  lru.ts  heap.ts
 *
 * So `keycloak/` knows nothing of `sync/`, `tokens/` or `http/`: what it needs from them is
 * passed in by its callers.
 */
interface Layer {
  name: string
  nodes: string[]
  /** edges allowed inside this layer: node → the nodes of the same layer it may import */
  within?: Record<string, string[]>
}

const LAYERS: Layer[] = [
  {
    name: 'base',
    nodes: [
      'errors.ts',
      'log.ts',
      'config',
      'single-flight.ts',
      'state.ts',
      'storage-modes.ts',
      'http-request.ts',
      'free-port.ts',
      'batches.ts',
      'lru.ts',
      'heap.ts',
    ],
    within: { 'storage-modes.ts': ['log.ts'] },
  },
  { name: 'adapters', nodes: ['db', 'appapi', 'keycloak'] },
  { name: 'domain', nodes: ['sync', 'tokens'], within: { tokens: ['sync'] } },
  {
    name: 'edge',
    nodes: ['http', 'proxy', 'ui', 'metrics.ts', 'oidc'],
    within: {
      proxy: ['http'],
      ui: ['http', 'proxy'],
      'metrics.ts': ['http'],
      oidc: ['http', 'proxy'],
    },
  },
  {
    name: 'composition',
    nodes: ['exapp', 'app.ts', 'exapp.ts', 'main.ts', 'registration-cli.ts'],
    within: { 'main.ts': ['exapp.ts'], 'exapp.ts': ['app.ts', 'exapp'] },
  },
]

/** The node of a path relative to src/ (posix): its first folder, or the file itself. */
function nodeOf(path: string): string {
  const slash = path.indexOf('/')
  return slash < 0 ? path : path.slice(0, slash)
}

/** The relative specifiers a file imports: `import … from`, `export … from`, `import()`. */
function relativeImports(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((name) => name.startsWith('.'))
}

/**
 * Every import that crosses the layers the wrong way, as `file → specifier (from → to)`.
 * `files` maps paths relative to src/ (posix) to their source.
 */
function forbiddenEdges(files: Map<string, string>, layers: Layer[] = LAYERS): string[] {
  const layerOf = new Map<string, number>()
  layers.forEach((layer, index) => {
    for (const node of layer.nodes) {
      layerOf.set(node, index)
    }
  })
  const allowed = (from: string, to: string): boolean => {
    const a = layerOf.get(from)
    const b = layerOf.get(to)
    if (a === undefined || b === undefined) {
      return false
    }
    return b < a || (a === b && (layers[a]?.within?.[from] ?? []).includes(to))
  }
  const found: string[] = []
  for (const [path, source] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (path.endsWith('.test.ts')) {
      continue
    }
    const from = nodeOf(path)
    if (!layerOf.has(from)) {
      found.push(`${path}: ${from} has no layer`)
      continue
    }
    for (const spec of relativeImports(source)) {
      const target = posix.normalize(posix.join(posix.dirname(path), spec))
      if (target.startsWith('../')) {
        found.push(`${path} → ${spec} (outside src/)`)
        continue
      }
      const to = nodeOf(target.replace(/\.js$/, '.ts'))
      if (to !== from && !allowed(from, to)) {
        found.push(`${path} → ${spec} (${from} → ${to})`)
      }
    }
  }
  return found
}

const SRC = fileURLToPath(new URL('.', import.meta.url))

/** Every .ts file under src/, keyed by its posix path relative to src/. */
function sourceFiles(dir = SRC, files = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      sourceFiles(path, files)
    } else if (entry.name.endsWith('.ts')) {
      files.set(relative(SRC, path).split(sep).join('/'), readFileSync(path, 'utf8'))
    }
  }
  return files
}

describe('folder layers', () => {
  it('reads every kind of import and ignores packages and comments', () => {
    const source = [
      "import type { A } from './a.js'",
      "import { b,\n  c } from '../b/c.js'",
      "export { d } from './d.js'",
      "export * from './e.js'",
      "import './f.js'",
      "const g = await import('./g.js')",
      "import { Hono } from 'hono'",
      "// import { h } from './h.js'",
    ].join('\n')
    expect(relativeImports(source)).toEqual([
      './a.js',
      '../b/c.js',
      './d.js',
      './e.js',
      './f.js',
      './g.js',
    ])
  })

  it('lists every forbidden edge of a synthetic tree, and nothing else', () => {
    const files = new Map([
      ['errors.ts', ''],
      // allowed: down a layer, and within a layer along a declared edge
      ['keycloak/admin.ts', "import { AppError } from '../errors.js'"],
      ['tokens/service.ts', "import type { SyncEngine } from '../sync/engine.js'"],
      ['sync/engine.ts', "import { kc } from '../keycloak/admin.js'"],
      ['proxy/proxy.ts', "import { onError } from '../http/errors.js'"],
      // forbidden: up a layer, within a layer without an edge, a node without a layer, outside
      ['keycloak/realm-spec.ts', "import type { Jwks } from '../tokens/signing-key-store.js'"],
      ['keycloak/user.ts', "export { UID } from '../sync/model.js'"],
      ['keycloak/lazy.ts', "const m = await import('../http/types.js')"],
      ['db/store.ts', "import { kc } from '../keycloak/admin.js'"],
      ['sync/revoke.ts', "import type { TokenService } from '../tokens/service.js'"],
      ['http/pages.ts', "import { keycloakProxy } from '../proxy/proxy.js'"],
      ['extra/x.ts', "import { AppError } from '../errors.js'"],
      ['log.ts', "import pkg from '../package.json'"],
      // exempt
      ['keycloak/admin.test.ts', "import { tokens } from '../tokens/service.js'"],
    ])
    expect(forbiddenEdges(files)).toEqual([
      'db/store.ts → ../keycloak/admin.js (db → keycloak)',
      'extra/x.ts: extra has no layer',
      'http/pages.ts → ../proxy/proxy.js (http → proxy)',
      'keycloak/lazy.ts → ../http/types.js (keycloak → http)',
      'keycloak/realm-spec.ts → ../tokens/signing-key-store.js (keycloak → tokens)',
      'keycloak/user.ts → ../sync/model.js (keycloak → sync)',
      'log.ts → ../package.json (outside src/)',
      'sync/revoke.ts → ../tokens/service.js (sync → tokens)',
    ])
  })

  it('allows no cycle between nodes', () => {
    // Edges go down the layers, so a cycle could only run inside one layer.
    for (const layer of LAYERS) {
      const within = layer.within ?? {}
      const visiting = new Set<string>()
      const visit = (node: string, path: string[]) => {
        expect(visiting.has(node), `cycle in ${layer.name}: ${[...path, node].join(' → ')}`).toBe(
          false,
        )
        visiting.add(node)
        for (const next of within[node] ?? []) {
          expect(layer.nodes, `${node} → ${next} leaves ${layer.name}`).toContain(next)
          visit(next, [...path, node])
        }
        visiting.delete(node)
      }
      for (const node of layer.nodes) {
        visit(node, [])
      }
    }
  })

  it('holds for src/', () => {
    const files = sourceFiles()
    expect(files.size).toBeGreaterThan(50)
    expect(forbiddenEdges(files)).toEqual([])
  })
})
