import { ACCESS, type AccessEntry } from './access.js'

type Operation = { security?: Record<string, string[]>[] } & Record<string, unknown>

/**
 * Who may call an operation, as the access table says (src/http/access.ts): a consumer shows as
 * the `apiSecret` scheme, Nextcloud callers through AppAPI as `appApi`; an anonymous route has none.
 */
export function securityFor(path: string, method: string): Record<string, string[]>[] {
  const honoPath = path.replace(/\{(\w+)\}/g, ':$1')
  const entry = (ACCESS as readonly AccessEntry[]).find(
    (e) => e.paths.includes(honoPath) && e.methods.includes(method.toUpperCase() as never),
  )
  if (!entry) {
    throw new Error(
      `${method.toUpperCase()} ${path} is in the OpenAPI document but not in the access table`,
    )
  }
  if (entry.callers.includes('anonymous')) {
    return []
  }
  const schemes: Record<string, string[]>[] = []
  if (entry.callers.includes('consumer')) {
    schemes.push({ apiSecret: [] })
  }
  if (entry.callers.some((k) => k.startsWith('nextcloud-') || k === 'appapi-system')) {
    schemes.push({ appApi: [] })
  }
  return schemes
}

/** The consumer and admin API, as served at `/api/openapi.json`. */
export function openApiDocument(version: string) {
  const doc = openApiBody(version)
  // Security comes from the access table, so the document cannot promise what the app refuses.
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      op.security = securityFor(path, method)
    }
  }
  return doc
}

function openApiBody(version: string) {
  const error = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'requestId'],
        properties: {
          code: { type: 'string', example: 'FORBIDDEN' },
          message: { type: 'string' },
          requestId: { type: 'string' },
        },
      },
    },
  }
  const errors = (...codes: number[]) =>
    Object.fromEntries(
      codes.map((code) => [
        String(code),
        {
          description: 'error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      ]),
    )
  const userBody = {
    required: true,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['user_id'],
          properties: { user_id: { type: 'string', example: 'alice' } },
        },
      },
    },
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'keycloak-exapp API',
      version,
      description:
        'Tokens for Nextcloud users, for other external apps (server-side), and the sync of Nextcloud into the Keycloak realm.',
    },
    components: {
      securitySchemes: {
        apiSecret: { type: 'apiKey', in: 'header', name: 'X-API-SECRET' },
        appApi: {
          type: 'apiKey',
          in: 'header',
          name: 'AUTHORIZATION-APP-API',
          description: "Set by Nextcloud's AppAPI proxy for the logged-in user",
        },
      },
      schemas: {
        Error: error,
        Token: {
          type: 'object',
          required: ['access_token', 'refresh_token', 'id_token', 'expires_in', 'token_type'],
          properties: {
            access_token: { type: 'string' },
            refresh_token: {
              type: 'string',
              description: 'empty when Keycloak gives none (JWT grant)',
            },
            id_token: { type: 'string' },
            expires_in: { type: 'integer', description: 'seconds left' },
            token_type: { type: 'string', example: 'Bearer' },
          },
        },
      },
    },
    paths: {
      '/api/token': {
        post: {
          summary: 'Keycloak tokens for a Nextcloud user',
          parameters: [
            {
              name: 'client_id',
              in: 'query',
              required: true,
              schema: { type: 'string', example: 'opentalk' },
            },
            {
              name: 'scope',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'extra scopes; openid is always included',
            },
            {
              name: 'X-NC-USER-ID',
              in: 'header',
              required: false,
              schema: { type: 'string' },
              description: 'the Nextcloud uid (with X-API-SECRET)',
            },
          ],
          responses: {
            '200': {
              description: 'tokens',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Token' } } },
            },
            ...errors(400, 401, 403, 404, 429, 502),
          },
        },
      },
      '/api/sync-all': {
        post: {
          summary: 'Full sync of Nextcloud into the realm',
          parameters: [
            { name: 'dryRun', in: 'query', schema: { type: 'string', enum: ['1'] } },
            { name: 'force', in: 'query', schema: { type: 'string', enum: ['1'] } },
            {
              name: 'background',
              in: 'query',
              description:
                'answer 202 {status:"started", after} at once; the run is the first in /api/sync-runs with an id above `after`',
              schema: { type: 'string', enum: ['1'] },
            },
          ],
          responses: {
            '200': { description: 'run summary' },
            '202': { description: 'run started in the background' },
            ...errors(400, 401, 403, 409, 429, 502),
          },
        },
      },
      '/api/ui/overview': {
        get: {
          summary:
            "State of Keycloak, the sync schedule and the token API (the status page's data)",
          responses: { '200': { description: 'overview' }, ...errors(401, 403, 429) },
        },
      },
      '/api/ui/credentials': {
        post: {
          summary: 'The consumer secrets and the console login, for a Nextcloud admin',
          responses: {
            '200': {
              description: '{consumers:[{name,secret,clients}], console:{username,password,url}}',
            },
            ...errors(401, 403, 429),
          },
        },
      },
      '/api/sync-user': {
        post: {
          summary: 'Sync one user, re-read from Nextcloud',
          requestBody: userBody,
          responses: {
            '200': {
              description:
                '{status, user_id, synced, action, run}: action is created, updated, unchanged, disabled, deleted or absent; run is the stored run id',
            },
            ...errors(400, 401, 403, 502),
          },
        },
      },
      '/api/delete-user': {
        post: {
          summary: 'Disable or delete a user Nextcloud no longer has',
          requestBody: userBody,
          responses: {
            '200': {
              description:
                '{status, user_id, synced, action, run, deleted, still_in_nextcloud}: disabled or deleted only when Nextcloud no longer has the user',
            },
            ...errors(400, 401, 403, 502),
          },
        },
      },
      '/api/sync-status': {
        get: {
          summary: 'The run in progress, the last run and the next scheduled one',
          responses: { '200': { description: '{running, lastRun, nextRun}' }, ...errors(401, 403) },
        },
      },
      '/api/sync-runs': {
        get: {
          summary: 'Stored sync runs, newest first',
          parameters: [
            {
              name: 'limit',
              in: 'query',
              description: 'how many runs (default 20)',
              schema: { type: 'integer', minimum: 1, maximum: 200 },
            },
          ],
          responses: { '200': { description: '{runs}' }, ...errors(400, 401, 403) },
        },
      },
      '/api/sync-runs/{id}': {
        get: {
          summary: 'One stored run with its changelog',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
            {
              name: 'limit',
              in: 'query',
              description: 'return only the first `limit` changes (`changelogTotal` says how many)',
              schema: { type: 'integer', minimum: 0 },
            },
          ],
          responses: { '200': { description: 'the run' }, ...errors(400, 401, 403, 404) },
        },
      },
      '/api/signing-key/rotate': {
        post: {
          summary: 'Rotate the token signing key',
          responses: { '200': { description: '{kid, previousKid}' }, ...errors(401, 403) },
        },
      },
    },
  }
}
