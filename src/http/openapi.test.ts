import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../../test/app-builder.js'
import { ACCESS, type AccessEntry } from './access.js'
import { securityFor } from './openapi.js'

type Operation = { security?: unknown; parameters?: { name: string; in: string }[] }
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> }

/** The document as the app serves it, generated from the declared routes. */
async function servedDocument(): Promise<Document> {
  const t = await buildTestApp()
  const res = await t.app.request('/api/openapi.json')
  expect(res.status).toBe(200)
  return (await res.json()) as Document
}

describe('the OpenAPI document', () => {
  it('describes every /api route of the access table, and nothing the table lacks', async () => {
    const doc = await servedDocument()
    expect(doc.openapi).toBe('3.1.0')
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    const served = (ACCESS as readonly AccessEntry[])
      .filter((e) => e.part === 'api' && e.id !== 'api-other' && e.id !== 'openapi')
      .flatMap((e) => e.paths.flatMap((p) => e.methods.map((m) => `${m} ${p}`)))
    expect(documented.sort()).toEqual(served.sort())
  })

  it('takes who may call each operation from the access table', async () => {
    const ops = (await servedDocument()).paths
    expect(ops['/api/token']?.post?.security).toEqual([{ apiSecret: [] }, { appApi: [] }])
    for (const path of ['/api/sync-all', '/api/sync-runs/{id}', '/api/signing-key/rotate']) {
      const [method] = Object.keys(ops[path] ?? {})
      expect(ops[path]?.[method as string]?.security, path).toEqual([{ appApi: [] }])
    }
  })

  it("states the token API's contract: client_id and scope in the query, X-NC-USER-ID", async () => {
    const op = (await servedDocument()).paths['/api/token']?.post
    const params = (op?.parameters ?? []).map((p) => `${p.in}:${p.name.toLowerCase()}`)
    expect(params.sort()).toEqual(['header:x-nc-user-id', 'query:client_id', 'query:scope'])
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
