import { describe, expect, it } from 'vitest'
import { localise, readmeRecipe } from './recipe.js'

const README = `# app

### Registering the running ExApp in Nextcloud (manual install)

Some words.

\`\`\`sh
# once: a deploy daemon
occ app_api:daemon:register manual_install "Manual Install" manual-install http <host> http://nextcloud.local

NEXTCLOUD_URL=http://nextcloud.local APP_HOST=0.0.0.0 npm start
occ app_api:app:register keycloak manual_install --wait-finish \\
  --json-info "$(npm run --silent registration)"
\`\`\`

\`\`\`sh
not this one
\`\`\`

## Next
`

const place = {
  occ: "bash '/x/start.sh' occ",
  nextcloudUrl: 'http://127.0.0.1:38190',
  host: '127.0.0.1',
}

describe('the README recipe', () => {
  it('takes the commands of the block under the heading, continuations joined, comments dropped', () => {
    expect(readmeRecipe(README)).toEqual([
      'occ app_api:daemon:register manual_install "Manual Install" manual-install http <host> http://nextcloud.local',
      'NEXTCLOUD_URL=http://nextcloud.local APP_HOST=0.0.0.0 npm start',
      'occ app_api:app:register keycloak manual_install --wait-finish --json-info "$(npm run --silent registration)"',
    ])
  })

  it('localises occ, the Nextcloud URL and the host; npm start runs in the background', () => {
    const [daemon, start, register] = readmeRecipe(README).map((c) => localise(c, place))
    expect(daemon).toEqual({
      background: false,
      command:
        'bash \'/x/start.sh\' occ app_api:daemon:register manual_install "Manual Install" manual-install http 127.0.0.1 http://127.0.0.1:38190',
    })
    expect(start).toEqual({
      background: true,
      command: 'NEXTCLOUD_URL=http://127.0.0.1:38190 APP_HOST=0.0.0.0 npm start',
    })
    expect(register?.background).toBe(false)
    expect(register?.command).toBe(
      'bash \'/x/start.sh\' occ app_api:app:register keycloak manual_install --wait-finish --json-info "$(npm run --silent registration)"',
    )
  })

  it('says what is missing', () => {
    expect(() => readmeRecipe('# app\n')).toThrow(/no "Registering the running ExApp/)
    expect(() =>
      readmeRecipe(
        '### Registering the running ExApp in Nextcloud (manual install)\ntext\n## Other\n```sh\nx\n```\n',
      ),
    ).toThrow(/no ```sh block/)
  })
})
