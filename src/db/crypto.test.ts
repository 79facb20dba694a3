import { describe, expect, it } from 'vitest'
import { createSecretBox } from './crypto.js'

const KEY = 'test-encryption-key-0123456789abcdef'

describe('createSecretBox', () => {
  const box = createSecretBox(KEY)

  it('opens what it sealed, including unicode and empty strings', () => {
    for (const plaintext of ['s3cret', '', 'ünïcödé 🔑', 'x'.repeat(10_000)]) {
      expect(box.open(box.seal(plaintext))).toBe(plaintext)
    }
  })

  it('seals with a version prefix and a fresh IV each time', () => {
    const a = box.seal('same')
    const b = box.seal('same')
    expect(a).toMatch(/^v1:[A-Za-z0-9_-]+$/)
    expect(a).not.toBe(b)
    expect(a).not.toContain('same')
  })

  it('derives the same key from the same string, so replicas can share rows', () => {
    expect(createSecretBox(KEY).open(box.seal('shared'))).toBe('shared')
  })

  it('refuses another key with a message that names ENCRYPTION_KEY', () => {
    const other = createSecretBox('another-encryption-key-0123456789ab')
    expect(() => other.open(box.seal('value'))).toThrow(
      expect.objectContaining({
        code: 'INTERNAL',
        message: expect.stringContaining('ENCRYPTION_KEY'),
      }),
    )
  })

  it('refuses tampered ciphertext, truncation and unknown formats', () => {
    const raw = Buffer.from(box.seal('value').slice(3), 'base64url')
    for (const i of [0, 12, raw.length - 1]) {
      const bytes = Buffer.from(raw)
      bytes[i] = (bytes[i] ?? 0) ^ 0x80
      expect(() => box.open(`v1:${bytes.toString('base64url')}`), `byte ${i}`).toThrow(
        expect.objectContaining({ code: 'INTERNAL' }),
      )
    }
    for (const bad of ['v1:AAAA', 'v2:abc', 'plaintext', 'v1:a:b']) {
      expect(() => box.open(bad), bad).toThrow(expect.objectContaining({ code: 'INTERNAL' }))
    }
  })

  it('rejects an empty key', () => {
    expect(() => createSecretBox('')).toThrow(expect.objectContaining({ code: 'INTERNAL' }))
  })
})
