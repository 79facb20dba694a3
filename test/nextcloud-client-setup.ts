import {
  createNextcloudClient,
  type NextcloudClient,
  type NextcloudClientOptions,
} from '../src/appapi/nextcloud-client.js'
import { silentLogger } from '../src/log.js'
import type { Directory } from './builders.js'
import {
  createFakeNextcloud,
  type FakeNextcloud,
  FIXTURE_APP,
  fixtureDirectory,
} from './fake-nextcloud/index.js'

/** A fake Nextcloud seeded with `directory` and a client registered with it as the fixtures' app. */
export async function clientAgainstFake(
  directory: Directory = fixtureDirectory(),
  overrides: Partial<NextcloudClientOptions> = {},
): Promise<{ nc: FakeNextcloud; client: NextcloudClient }> {
  const nc = await createFakeNextcloud({
    ...directory,
    apps: [{ ...FIXTURE_APP, url: 'http://127.0.0.1:9' }],
  })
  const client = createNextcloudClient({
    url: nc.url,
    appId: FIXTURE_APP.appId,
    appSecret: FIXTURE_APP.secret,
    appVersion: FIXTURE_APP.version,
    log: silentLogger(),
    ...overrides,
  })
  return { nc, client }
}
