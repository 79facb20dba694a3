import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { ACCESS, type AccessEntry } from './access.js'
import { openApiDocument, securityFor } from './openapi.js'

const doc = openApiDocument('0.0.0-test')
const documented = new Set(
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
  ),
)

describe('the OpenAPI document', () => {
  it('describes every /api route of the access table, and nothing the table lacks', () => {
    const served = (ACCESS as readonly AccessEntry[])
      .filter((e) => e.part === 'api' && e.id !== 'api-other' && e.id !== 'openapi')
      .flatMap((e) => e.paths.flatMap((p) => e.methods.map((m) => `${m} ${p}`)))
    expect([...documented].sort()).toEqual(served.sort())
  })

  it('takes who may call each operation from the access table', () => {
    const ops = doc.paths as Record<string, Record<string, { security?: unknown }>>
    expect(ops['/api/token']?.post?.security).toEqual([{ apiSecret: [] }, { appApi: [] }])
    for (const path of ['/api/sync-all', '/api/sync-runs/{id}', '/api/signing-key/rotate']) {
      const [method] = Object.keys(ops[path] ?? {})
      expect(ops[path]?.[method as string]?.security, path).toEqual([{ appApi: [] }])
    }
  })

  it('refuses to describe an operation the table does not know', () => {
    expect(() => securityFor('/api/resync', 'post')).toThrow(/not in the access table/)
  })
})

describe('the run list and a run take the same limit rules', () => {
  it('answers 400 for a limit that is not a number, on both', async () => {
    const t = await buildTestApp()
    const headers = t.as('admin')
    for (const path of ['/api/sync-runs?limit=x', '/api/sync-runs/1?limit=x']) {
      const res = await t.app.request(path, { headers })
      expect(res.status, path).toBe(400)
      expect(await res.json()).toMatchObject({ error: { code: 'INVALID_INPUT' } })
    }
    const fine = await t.app.request('/api/sync-runs?limit=5', { headers })
    expect(fine.status).toBe(200)
  })
})
