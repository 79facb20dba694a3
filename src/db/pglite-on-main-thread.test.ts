import { readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { types as pgliteTypes } from '@electric-sql/pglite'
import { describe, expect, it } from 'vitest'
import { PGlite, types } from './pglite-on-main-thread.js'

describe("the app thread's stand-in for @electric-sql/pglite", () => {
  it("has every type OID drizzle's PGlite driver names, each as PGlite has it", async () => {
    const driver = dirname(createRequire(import.meta.url).resolve('drizzle-orm/pglite'))
    const named = new Set<string>()
    for (const file of (await readdir(driver)).filter((f) => f.endsWith('.js'))) {
      for (const [, name] of (await readFile(join(driver, file), 'utf8')).matchAll(
        /\btypes\.([A-Z_0-9]+)/g,
      )) {
        named.add(name as string)
      }
    }
    expect(named.size).toBeGreaterThan(0)
    for (const name of named) {
      expect(types, name).toHaveProperty(name)
    }
    for (const [name, oid] of Object.entries(types)) {
      expect(oid, name).toBe(pgliteTypes[name as keyof typeof pgliteTypes])
    }
  })

  it('refuses to be a database', () => {
    expect(() => new PGlite()).toThrow(/its own thread/)
  })
})
