import { assertSafeName, assertSchoolDatabaseName } from '../postgres/names.js'

/** A school's `server` is not in TENANT_SERVERS: its database cannot be reached from here. */
export class ServerNotConfigured extends Error {
  override name = 'ServerNotConfigured'
  constructor (readonly server: string, known: readonly string[]) {
    super(`server "${server}" is not configured (known: ${known.join(', ')})`)
  }
}

/**
 * The URL of the server that holds a school's database. The school's names
 * are checked first: the catalog checks them too, but no SQL or connection
 * is built from a name it let slip.
 */
export function resolveSchoolServer (
  school: { slug: string, databaseName: string, server: string },
  servers: Readonly<Record<string, string>>
): string {
  assertSafeName(school.slug, 'School slug')
  assertSchoolDatabaseName(school.databaseName)
  const url = servers[school.server]
  if (url === undefined) throw new ServerNotConfigured(school.server, Object.keys(servers))
  return url
}
