/**
 * The `--json-info` of `occ app_api:app:register` for a manual install, built from the app's own
 * appinfo/info.xml. AppAPI 5.0.2 takes a manual install's port and secret only from the info it is
 * given (without them it picks a free port from 23000 and a random secret the app cannot know), so
 * the registration must carry the port and secret the running app uses, with the manifest's routes.
 */

/** AppAPI's access levels as `--json-info` wants them (info.xml spells them out). */
const ACCESS_LEVELS = { PUBLIC: 0, USER: 1, ADMIN: 2 } as const

export interface RegistrationRoute {
  url: string
  verb: string
  access_level: 0 | 1 | 2
  headers_to_exclude: string[]
  bruteforce_protection?: number[]
}

export interface Manifest {
  id: string
  name: string
  version: string
  routes: RegistrationRoute[]
}

export interface RegistrationInfo extends Manifest {
  port: number
  secret: string
}

/**
 * Reads id, name, version and routes from info.xml. This is a reader for the app's own manifest,
 * not a general XML parser: elements without attributes, comments and CDATA, no nesting inside a
 * route's fields.
 */
export function readManifest(xml: string): Manifest {
  const source = xml.replace(/<!--[\s\S]*?-->/g, '')
  const info = element(source, 'info')
  if (info === undefined) {
    throw new Error('info.xml has no <info> element')
  }
  // Fields of <info> itself: the nested blocks also have <name> elements (variables, roles).
  const own = ['external-app', 'dependencies'].reduce(
    (rest, tag) => rest.replace(new RegExp(`<${tag}\\b[\\s\\S]*?</${tag}>`, 'g'), ''),
    info,
  )
  const routes = [...(element(source, 'routes') ?? '').matchAll(/<route>([\s\S]*?)<\/route>/g)]
  return {
    id: required(own, 'id'),
    name: required(own, 'name'),
    version: required(own, 'version'),
    routes: routes.map(([, body]) => routeOf(body ?? '')),
  }
}

/** The JSON AppAPI registers: the manifest with the port and secret the app runs with. */
export function registrationInfo(
  xml: string,
  run: { id?: string; port: number; secret: string },
): RegistrationInfo {
  const manifest = readManifest(xml)
  return {
    id: run.id ?? manifest.id,
    name: manifest.name,
    version: manifest.version,
    port: run.port,
    secret: run.secret,
    routes: manifest.routes,
  }
}

function routeOf(body: string): RegistrationRoute {
  const url = required(body, 'url')
  const level = required(body, 'access_level').toUpperCase()
  if (!(level in ACCESS_LEVELS)) {
    throw new Error(`route ${url}: access_level "${level}" is not PUBLIC, USER or ADMIN`)
  }
  const route: RegistrationRoute = {
    url,
    verb: required(body, 'verb'),
    access_level: ACCESS_LEVELS[level as keyof typeof ACCESS_LEVELS],
    headers_to_exclude: jsonList(
      url,
      'headers_to_exclude',
      field(body, 'headers_to_exclude'),
      'string',
    ),
  }
  const bruteforce = field(body, 'bruteforce_protection')
  if (bruteforce !== undefined) {
    route.bruteforce_protection = jsonList(url, 'bruteforce_protection', bruteforce, 'number')
  }
  return route
}

function jsonList<T extends 'string' | 'number'>(
  url: string,
  name: string,
  text: string | undefined,
  type: T,
): (T extends 'string' ? string : number)[] {
  if (text === undefined || text === '') {
    return []
  }
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    list = undefined
  }
  if (!Array.isArray(list) || list.some((v) => typeof v !== type)) {
    throw new Error(`route ${url}: ${name} must be a JSON array of ${type}s`)
  }
  return list as (T extends 'string' ? string : number)[]
}

function element(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml)?.[1]
}

function field(xml: string, tag: string): string | undefined {
  const raw = element(xml, tag)
  return raw === undefined ? undefined : text(raw).trim()
}

function required(xml: string, tag: string): string {
  const value = field(xml, tag)
  if (value === undefined || value === '') {
    throw new Error(`info.xml: <${tag}> is missing or empty`)
  }
  return value
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

/** Character data: CDATA sections as they are, entities and character references decoded. */
function text(raw: string): string {
  return raw
    .split(/(<!\[CDATA\[[\s\S]*?\]\]>)/)
    .map((part) =>
      part.startsWith('<![CDATA[')
        ? part.slice(9, -3)
        : part.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
            if (name.startsWith('#x') || name.startsWith('#X')) {
              return String.fromCodePoint(Number.parseInt(name.slice(2), 16))
            }
            if (name.startsWith('#')) {
              return String.fromCodePoint(Number.parseInt(name.slice(1), 10))
            }
            return ENTITIES[name] ?? whole
          }),
    )
    .join('')
}
