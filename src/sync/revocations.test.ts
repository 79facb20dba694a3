import { describe, expect, it } from 'vitest'
import { UserRevocations } from './revocations.js'

describe('UserRevocations', () => {
  it('tells every listener, in the order they subscribed, until they unsubscribe', () => {
    const revocations = new UserRevocations()
    const heard: string[] = []
    const stop = revocations.subscribe((uid) => heard.push(`first:${uid}`))
    revocations.subscribe((uid) => heard.push(`second:${uid}`))
    // detached from the object, as the engine holds it
    const publish = revocations.publish
    publish('alice')
    stop()
    publish('bob')
    expect(heard).toEqual(['first:alice', 'second:alice', 'second:bob'])
  })

  it('publishes to nobody without a listener', () => {
    expect(() => new UserRevocations().publish('alice')).not.toThrow()
  })
})
