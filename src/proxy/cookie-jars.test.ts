import { describe, expect, it } from 'vitest'
import { JarStore } from './cookie-jars.js'

/** a clock's start; lru-cache takes a start time of 0 for "no expiry" */
const T0 = 1_000_000

describe('cookie jar store', () => {
  it('finds a jar only for its own user, and not once it has been idle too long', () => {
    let t = T0
    const store = new JarStore({ idleMs: 100, anonymousIdleMs: 10, now: () => t })
    const alice = store.create('alice')
    const anon = store.create('')
    expect(store.get(alice.id, 'alice')).toBe(alice.jar)
    expect(store.get(alice.id, 'bob')).toBeUndefined()
    expect(store.get(alice.id, '')).toBeUndefined()
    t = T0 + 50
    expect(store.get(anon.id, '')).toBeUndefined()
    expect(store.get(alice.id, 'alice')).toBe(alice.jar)
    t = T0 + 200
    expect(store.get(alice.id, 'alice')).toBeUndefined()
    expect(store.size()).toEqual({ anonymous: 0, users: 0 })
  })

  it('gives a live anonymous jar to the first user who presents it, and to nobody after', () => {
    const store = new JarStore({ perUser: 2 })
    const anon = store.create('')
    anon.jar.cookies.set('/realms/r/ AUTH_SESSION_ID', { value: 'v', path: '/realms/r/' })
    // A visitor signed in to Nextcloud in the middle of a login: their Keycloak cookies follow.
    expect(store.get(anon.id, 'alice')).toBe(anon.jar)
    expect(anon.jar.uid).toBe('alice')
    expect(store.get(anon.id, 'alice')).toBe(anon.jar)
    expect(store.get(anon.id, '')).toBeUndefined()
    expect(store.get(anon.id, 'bob')).toBeUndefined()
    expect(store.size()).toEqual({ anonymous: 0, users: 1 })
    // It counts among alice's jars: her newer ones push it out, nobody else's.
    store.create('bob')
    store.create('bob')
    store.create('bob')
    expect(store.get(anon.id, 'alice')).toBe(anon.jar)
    store.create('alice')
    store.create('alice')
    expect(store.get(anon.id, 'alice')).toBeUndefined()
  })

  it('keeps at most the bound per user and for anonymous callers together', () => {
    const store = new JarStore({ perUser: 2, anonymous: 3 })
    for (let i = 0; i < 10; i++) {
      store.create('alice')
      store.create('bob')
      store.create('')
    }
    expect(store.size()).toEqual({ anonymous: 3, users: 4 })
  })

  it('drops idle jars of everyone when a new one is made', () => {
    let t = T0
    const store = new JarStore({ idleMs: 100, now: () => t })
    store.create('alice')
    store.create('bob')
    t = T0 + 500
    store.create('carol')
    expect(store.size()).toEqual({ anonymous: 0, users: 1 })
  })
})
