import { silentLogger } from '../src/log.js'
import { NextcloudSource } from '../src/sync/nextcloud-source.js'
import { DirectoryPoller, type PollResult } from '../src/sync/poller.js'
import { aDirectory, aUser } from '../test/builders.js'
import type { FakeNextcloud } from '../test/fake-nextcloud/index.js'
import { clientAgainstFake } from '../test/nextcloud-client-setup.js'
import { progress } from './lib.js'

/** What Nextcloud served for one piece of work: requests, response bytes (uncompressed), per path. */
export interface NcCost {
  requests: number
  bytes: number
  byPath: Record<string, number>
}

export interface PollFigures {
  users: number
  groups: number
  /** a full read (paged users/details and groups/details), as a full run does */
  fullRead: NcCost
  /** one poll with nothing changed */
  idle: NcCost & { outcome: PollResult['outcome'] }
  /** one poll after a user was created, one disabled, one deleted and one moved between groups */
  changed: NcCost & { outcome: PollResult['outcome']; changes: number }
}

function costSince(nc: FakeNextcloud, from: number): NcCost {
  const requests = nc.requests().slice(from)
  const byPath: Record<string, number> = {}
  for (const r of requests) {
    // one key per endpoint: a user's or a group's own path counts under its pattern
    const path = r.path
      .replace(/^\/ocs\/v[12]\.php/, '')
      .replace(/^\/cloud\/users\/(?!disabled$|details$)[^/]+$/, '/cloud/users/{uid}')
      .replace(/^\/cloud\/groups\/(?!details$)[^/]+\/users$/, '/cloud/groups/{gid}/users')
    byPath[path] = (byPath[path] ?? 0) + 1
  }
  return {
    requests: requests.length,
    bytes: requests.reduce((n, r) => n + r.bytes, 0),
    byPath,
  }
}

/**
 * The Nextcloud side of the poll at `users` users (100 groups, 3 each), against the fake
 * Nextcloud's traffic recorder: a full read, an idle poll, and a poll after four changes, each
 * re-read user synced as the engine would (one `cloud/users/{uid}` read each). Keycloak is not
 * involved: this counts what Nextcloud is asked.
 */
export async function pollCost(users: number): Promise<PollFigures> {
  const directory = aDirectory({ users, groups: 100, membershipsPerUser: 3, seed: 7 })
  const { nc, client } = await clientAgainstFake(directory)
  try {
    const source = new NextcloudSource({ client, pageSize: 500 })
    const poller = new DirectoryPoller({
      source,
      engine: {
        runUser: async (uid) => {
          await source.readUser(uid)
          return true
        },
        runFull: () => source.readAll(),
        busy: () => false,
      },
      intervalSeconds: 0,
      pageSize: 500,
      log: silentLogger(),
    })
    // The admin to act as is found once per process; not part of either cost.
    await source.admin()
    let from = nc.requests().length
    await source.readAll()
    const fullRead = costSince(nc, from)
    progress(`nc-poll: full read ${JSON.stringify(fullRead)}`)

    from = nc.requests().length
    const idleResult = await poller.pollOnce()
    const idle = { ...costSince(nc, from), outcome: idleResult.outcome }
    progress(`nc-poll: idle poll ${JSON.stringify(idle)}`)

    const [disabled, deleted, moved] = directory.users.slice(1, 4)
    const movedTo = ['g001', 'g002', 'g003', 'g004'].filter((g) => !moved?.groups.includes(g))
    nc.addUser(aUser({ id: 'newcomer', groups: ['g001'] }))
    nc.updateUser(disabled?.id ?? '', { enabled: false })
    nc.removeUser(deleted?.id ?? '')
    nc.setMembership(moved?.id ?? '', movedTo.slice(0, 3))
    from = nc.requests().length
    const changedResult = await poller.pollOnce()
    const changed = {
      ...costSince(nc, from),
      outcome: changedResult.outcome,
      changes: changedResult.changes.length,
    }
    progress(`nc-poll: poll after 4 changes ${JSON.stringify(changed)}`)
    await poller.close()
    return {
      users: directory.users.length,
      groups: directory.groups.length,
      fullRead,
      idle,
      changed,
    }
  } finally {
    await nc.close()
  }
}
