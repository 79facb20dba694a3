import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aUser } from './builders.js'
import { bootstrapped, startTestExApp, type TestExApp } from './exapp-harness.js'
import { fixtureDirectory } from './fake-nextcloud/index.js'

// Nextcloud is the only source of a synced user's profile: the user's own token (which carries
// Keycloak's default `manage-account` role) must not change it through Keycloak's account API.

function claims(jwt: string): Record<string, unknown> {
  const [, payload = ''] = jwt.split('.')
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
}

describe("a synced user's own token against Keycloak's account API", () => {
  let t: TestExApp
  let secret: string

  const accessToken = async (uid: string): Promise<string> => {
    // A fresh token, not one cached from before the attempt.
    t.exapp.tokens.revokeUser(uid)
    const res = await fetch(`${t.exapp.url}/api/token?client_id=opentalk`, {
      method: 'POST',
      headers: { 'X-API-SECRET': secret, 'X-NC-USER-ID': uid },
    })
    const body = (await res.json()) as { access_token: string }
    expect(res.status, JSON.stringify(body)).toBe(200)
    return body.access_token
  }

  beforeAll(async () => {
    const directory = fixtureDirectory()
    const bob = directory.users.find((u) => u.id === 'bob')
    if (bob) {
      bob.organisation = 'Sales'
    }
    t = await startTestExApp({
      directory: { ...directory, users: [...directory.users, aUser({ id: 'dave' })] },
      enabled: true,
      env: { SYNC_PROFILE_FIELDS: 'organisation' },
    })
    secret = t.exapp.config.consumers[0]?.secret ?? ''
    await bootstrapped(t)
    const run = await t.exapp.sync.runFull({ trigger: 'api' })
    expect(run.status, run.message).toBe('succeeded')
  })
  afterAll(async () => {
    await t?.close()
  })

  it('cannot change the email, names or synced attributes: the next token carries Nextcloud’s', async () => {
    const token = await accessToken('bob')
    const before = claims(token)
    expect(before).toMatchObject({ email: 'bob@example.com', given_name: 'Bob' })
    const account = `${t.exapp.config.keycloak.url}/realms/${t.realm}/account/`
    const auth = { Authorization: `Bearer ${token}`, Accept: 'application/json' }
    const read = await fetch(account, { headers: auth })
    expect(read.status).toBe(200)
    const profile = (await read.json()) as Record<string, unknown>
    expect(profile).toMatchObject({ username: 'bob', email: 'bob@example.com' })

    const forged = {
      ...profile,
      email: 'ceo@victim.example',
      firstName: 'The',
      lastName: 'CEO',
      attributes: { organisation: ['Board'] },
    }
    const post = await fetch(account, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify(forged),
    })
    expect(post.status, await post.text()).toBe(400)
    for (const field of [
      { firstName: 'The' },
      { lastName: 'CEO' },
      { email: 'ceo@victim.example' },
      { attributes: { organisation: ['Board'] } },
    ]) {
      const one = await fetch(account, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...profile, ...field }),
      })
      expect(one.status, JSON.stringify(field)).toBe(400)
    }

    const [stored] = await t.admin.users.find({ username: 'bob', exact: true })
    expect(stored).toMatchObject({ email: 'bob@example.com', firstName: 'Bob' })
    expect(stored?.attributes?.organisation).toEqual(['Sales'])
    const after = claims(await accessToken('bob'))
    expect(after).toMatchObject({
      email: 'bob@example.com',
      given_name: before.given_name,
      family_name: before.family_name,
    })
  })

  it('leaves the names and email editable by the realm admin', async () => {
    const [dave] = await t.admin.users.find({ username: 'dave', exact: true })
    expect(dave?.id).toBeDefined()
    await t.admin.users.update({ id: dave?.id ?? '' }, { ...dave, firstName: 'David' })
    const [changed] = await t.admin.users.find({ username: 'dave', exact: true })
    expect(changed?.firstName).toBe('David')
  })
})
