import { describe, expect, it } from 'vitest'
import { AppError } from '../errors.js'
import { groupMembers } from './group-members.js'

function setup(groups: Record<string, string[]>) {
  let t = 1_000_000
  const reads: string[] = []
  const held: (() => void)[] = []
  let hold = false
  let fail = false
  const members = groupMembers({
    now: () => t,
    read: async (gid) => {
      reads.push(gid)
      if (hold) {
        await new Promise<void>((resolve) => held.push(resolve))
      }
      if (fail) {
        throw new AppError('NEXTCLOUD_UNAVAILABLE', 'Nextcloud did not answer')
      }
      return groups[gid] ? [...groups[gid]] : null
    },
  })
  return {
    members,
    groups,
    reads,
    advance: (ms: number) => {
      t += ms
    },
    hold: (on: boolean) => {
      hold = on
    },
    release: () => {
      for (const resolve of held.splice(0)) {
        resolve()
      }
    },
    fail: (on: boolean) => {
      fail = on
    },
  }
}

describe('groupMembers', () => {
  it('answers case-insensitively, and a group Nextcloud does not have has no members', async () => {
    const t = setup({ admin: ['Root'] })
    const isMember = await t.members.memberOf(['admin', 'ghosts'])
    expect(isMember('admin', 'root')).toBe(true)
    expect(isMember('admin', 'ROOT')).toBe(true)
    expect(isMember('admin', 'alice')).toBe(false)
    expect(isMember('ghosts', 'root')).toBe(false)
  })

  it('reads a group once for concurrent callers and keeps the list for its lifetime', async () => {
    const t = setup({ admin: ['root'] })
    t.hold(true)
    const asked = [t.members.memberOf(['admin']), t.members.memberOf(['admin'])]
    await Promise.resolve()
    t.release()
    await Promise.all(asked)
    t.hold(false)
    t.advance(14_000)
    await t.members.memberOf(['admin'])
    expect(t.reads).toEqual(['admin'])
  })

  it('reads a list again behind its caller past half its life, and waits for one past its life', async () => {
    const t = setup({ admin: ['root'] })
    await t.members.memberOf(['admin'])
    t.groups.admin = ['root', 'alice']
    t.advance(16_000)
    // The caller gets the list it had at once; the new one is read behind it.
    expect((await t.members.memberOf(['admin']))('admin', 'alice')).toBe(false)
    await new Promise((resolve) => setImmediate(resolve))
    expect((await t.members.memberOf(['admin']))('admin', 'alice')).toBe(true)
    expect(t.reads).toEqual(['admin', 'admin'])

    t.groups.admin = ['root']
    t.advance(31_000)
    expect((await t.members.memberOf(['admin']))('admin', 'alice')).toBe(false)
    expect(t.reads).toHaveLength(3)
  })

  it('reads a list again when the caller needs it younger than it is', async () => {
    const t = setup({ staff: ['alice'] })
    await t.members.memberOf(['staff'])
    t.groups.staff = ['alice', 'bob']
    expect((await t.members.memberOf(['staff'], 1000))('staff', 'bob')).toBe(false)
    t.advance(1500)
    expect((await t.members.memberOf(['staff'], 1000))('staff', 'bob')).toBe(true)
    expect(t.reads).toEqual(['staff', 'staff'])
  })

  it('does not keep a list read while the lists expired', async () => {
    const t = setup({ admin: ['root'] })
    t.hold(true)
    const before = t.members.memberOf(['admin'])
    await Promise.resolve()
    t.members.expire()
    t.release()
    expect((await before)('admin', 'root')).toBe(true)
    t.hold(false)
    await t.members.memberOf(['admin'])
    expect(t.reads).toEqual(['admin', 'admin'])
  })

  it('passes a failed read on and keeps nothing of it', async () => {
    const t = setup({ admin: ['root'] })
    t.fail(true)
    await expect(t.members.memberOf(['admin'])).rejects.toMatchObject({
      code: 'NEXTCLOUD_UNAVAILABLE',
    })
    t.fail(false)
    expect((await t.members.memberOf(['admin']))('admin', 'root')).toBe(true)
    expect(t.reads).toEqual(['admin', 'admin'])
  })
})
