import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { restrictToOwner } from './storage-modes.js'

describe('restrictToOwner', () => {
  const made: string[] = []
  afterAll(async () => {
    for (const dir of made) {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('leaves folders 0700 and files 0600 (an owner execute bit kept), links untouched', async () => {
    const root = await mkdtemp(join(tmpdir(), 'owner-only-'))
    const outside = await mkdtemp(join(tmpdir(), 'owner-only-outside-'))
    made.push(root, outside)
    await mkdir(join(root, 'pglite', 'base'), { recursive: true })
    await writeFile(join(root, 'pglite', 'base', '1247'), 'catalog')
    await writeFile(join(root, 'secrets.json'), '{}')
    await writeFile(join(root, 'kc.sh'), '#!/bin/sh')
    await writeFile(join(outside, 'elsewhere'), 'not ours')
    await symlink(join(outside, 'elsewhere'), join(root, 'link'))
    for (const [path, mode] of [
      [root, 0o755],
      [join(root, 'pglite'), 0o777],
      [join(root, 'pglite', 'base'), 0o755],
      [join(root, 'pglite', 'base', '1247'), 0o666],
      [join(root, 'secrets.json'), 0o644],
      [join(root, 'kc.sh'), 0o755],
      [join(outside, 'elsewhere'), 0o644],
    ] as const) {
      await chmod(path, mode)
    }

    expect(await restrictToOwner(root)).toEqual({ changed: 6, refused: 0 })
    const mode = async (path: string) => (await stat(path)).mode & 0o777
    expect(await mode(root)).toBe(0o700)
    expect(await mode(join(root, 'pglite'))).toBe(0o700)
    expect(await mode(join(root, 'pglite', 'base'))).toBe(0o700)
    expect(await mode(join(root, 'pglite', 'base', '1247'))).toBe(0o600)
    expect(await mode(join(root, 'secrets.json'))).toBe(0o600)
    expect(await mode(join(root, 'kc.sh'))).toBe(0o700)
    expect(await mode(join(outside, 'elsewhere'))).toBe(0o644)
    expect(await restrictToOwner(root)).toEqual({ changed: 0, refused: 0 })
  })

  it('does nothing for a folder that does not exist yet', async () => {
    expect(await restrictToOwner(join(tmpdir(), 'owner-only-missing-dir'))).toEqual({
      changed: 0,
      refused: 0,
    })
  })
})
