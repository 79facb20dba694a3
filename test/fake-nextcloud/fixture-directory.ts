import { aGroup, aUser, type Directory } from '../builders.js'

/** The ExApp the fixtures were captured with (its secret is masked there; any value works). */
export const FIXTURE_APP = { appId: 'nc_stub', version: '1.0.0', secret: 'fixture-secret' }

/** The directory of fixtures/nextcloud: admin, alice (engineering), bob (engineering, sales), carol (sales). */
export function fixtureDirectory(): Directory {
  return {
    groups: [
      aGroup({ id: 'admin', displayname: 'admin' }),
      aGroup({ id: 'engineering', displayname: 'Engineering' }),
      aGroup({ id: 'sales', displayname: 'Sales' }),
    ],
    users: [
      aUser({
        id: 'admin',
        displayname: 'admin',
        email: null,
        firstLoginTimestamp: 1795381064,
        lastLoginTimestamp: 1795381291,
        lastLogin: 1795381291000,
        groups: ['admin'],
      }),
      aUser({
        id: 'alice',
        displayname: 'Alice Anders',
        firstLoginTimestamp: 1795381330,
        lastLoginTimestamp: 1795381330,
        lastLogin: 1795381330000,
        groups: ['engineering'],
      }),
      aUser({ id: 'bob', displayname: 'Bob Berg', groups: ['engineering', 'sales'] }),
      aUser({ id: 'carol', displayname: 'Carol Castro', groups: ['sales'] }),
    ],
  }
}
