import { describe, expect, it } from 'vitest'
import { secretsEqual, verifyAppApi } from './appapi-auth.js'

const expected = { appId: 'keycloak', secret: 's3cret-value' }
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

function headers(h: Record<string, string>) {
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]))
  return (name: string) => lower[name.toLowerCase()]
}

const valid = {
  'EX-APP-ID': 'keycloak',
  'EX-APP-VERSION': '1.0.0',
  'AUTHORIZATION-APP-API': b64('alice:s3cret-value'),
}

describe('verifyAppApi', () => {
  it('accepts valid headers and returns the user', () => {
    expect(verifyAppApi(headers(valid), expected)).toEqual({ ok: true, userId: 'alice' })
  })

  it('treats an empty user as the system context', () => {
    const h = { ...valid, 'AUTHORIZATION-APP-API': b64(':s3cret-value') }
    expect(verifyAppApi(headers(h), expected)).toEqual({ ok: true, userId: '' })
  })

  it('splits at the first colon, so a secret may contain colons', () => {
    const h = { ...valid, 'AUTHORIZATION-APP-API': b64('bob:a:b') }
    expect(verifyAppApi(headers(h), { appId: 'keycloak', secret: 'a:b' })).toEqual({
      ok: true,
      userId: 'bob',
    })
  })

  it('never compares EX-APP-VERSION, only requires it', () => {
    const h = { ...valid, 'EX-APP-VERSION': '9.9.9' }
    expect(verifyAppApi(headers(h), expected).ok).toBe(true)
  })

  it.each([
    ['no headers', {}, 'missing-header'],
    ['no version', { ...valid, 'EX-APP-VERSION': '' }, 'missing-header'],
    ['no app id', { ...valid, 'EX-APP-ID': '' }, 'missing-header'],
    ['no auth', { ...valid, 'AUTHORIZATION-APP-API': '' }, 'missing-header'],
    ['another app', { ...valid, 'EX-APP-ID': 'other' }, 'wrong-app'],
    ['wrong secret', { ...valid, 'AUTHORIZATION-APP-API': b64('alice:nope') }, 'wrong-secret'],
    ['secret prefix', { ...valid, 'AUTHORIZATION-APP-API': b64('alice:s3cret') }, 'wrong-secret'],
    ['no colon', { ...valid, 'AUTHORIZATION-APP-API': b64('alices3cret-value') }, 'bad-encoding'],
    ['not base64', { ...valid, 'AUTHORIZATION-APP-API': 'alice:s3cret-value' }, 'bad-encoding'],
    ['plain secret', { ...valid, 'AUTHORIZATION-APP-API': 's3cret-value' }, 'bad-encoding'],
  ])('rejects %s', (_name, h, reason) => {
    expect(verifyAppApi(headers(h), expected)).toEqual({ ok: false, reason })
  })
})

describe('secretsEqual', () => {
  it.each([
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['abc', 'abcd', false],
    ['', 'abc', false],
  ])('%s vs %s → %s', (a, b, result) => {
    expect(secretsEqual(a, b)).toBe(result)
  })
})
