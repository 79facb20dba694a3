import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import { AppError } from '../errors.js'

/** Seals secrets before they reach the database; opens them on the way back. */
export interface SecretBox {
  seal(plaintext: string): string
  open(ciphertext: string): string
}

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
// Fixed on purpose: every replica must derive the same key from the same ENCRYPTION_KEY, and the
// key string is either generated (high entropy) or an admin's choice that scrypt stretches.
const SALT = 'keycloak-exapp/secret-box/v1'

/**
 * AES-256-GCM with a key derived by scrypt from the configured `ENCRYPTION_KEY`. Output is
 * `v1:<base64url(iv | ciphertext | tag)>`; the version prefix leaves room for another key or cipher
 * without guessing at old rows.
 *
 * @example
 * const box = createSecretBox(config.encryptionKey)
 * box.open(box.seal('s3cret')) // 's3cret'
 */
export function createSecretBox(encryptionKey: string): SecretBox {
  if (encryptionKey.length === 0) {
    throw new AppError('INTERNAL', 'ENCRYPTION_KEY is empty')
  }
  const key = scryptSync(encryptionKey, SALT, 32)
  return {
    seal(plaintext) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return `${VERSION}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`
    },
    open(ciphertext) {
      const [version, payload, ...rest] = ciphertext.split(':')
      if (version !== VERSION || payload === undefined || rest.length > 0) {
        throw new AppError('INTERNAL', `stored secret has an unknown format (expected ${VERSION})`)
      }
      const raw = Buffer.from(payload, 'base64url')
      if (raw.length < IV_BYTES + TAG_BYTES) {
        throw new AppError('INTERNAL', 'stored secret is truncated')
      }
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES))
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
      try {
        const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES)
        return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
      } catch (cause) {
        throw new AppError(
          'INTERNAL',
          'cannot decrypt a stored secret: the ENCRYPTION_KEY probably changed since it was ' +
            'stored (or the data was altered); restore the previous key',
          { cause },
        )
      }
    },
  }
}
