/*
 * School slugs and database names are checked here before any SQL is built
 * from them, independently of the catalog's CHECK constraints that enforce
 * the same rule. PostgreSQL cuts identifiers at 63 bytes, so a longer name
 * would silently address a different database.
 */
export const NAME_PATTERN = /^[a-z0-9_-]{1,63}$/
export const NAME_RULE = 'lowercase letters, digits, _ and -, at most 63 characters'

export function isSafeName (value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERN.test(value)
}

export function assertSafeName (value: unknown, what: string): asserts value is string {
  if (!isSafeName(value)) {
    throw new Error(`${what} ${JSON.stringify(value)} is not allowed: use ${NAME_RULE}`)
  }
}

/** Double-quotes an identifier the way PostgreSQL's quote_ident does. */
export function quoteIdentifier (name: string): string {
  if (name.length === 0 || name.includes('\0') || Buffer.byteLength(name) > 63) {
    throw new Error(`Not a usable PostgreSQL identifier: ${JSON.stringify(name)}`)
  }
  return `"${name.replaceAll('"', '""')}"`
}

/** Databases a school may never be given: PostgreSQL's own. */
export const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1'])

/** A school database name: safe, and not one of PostgreSQL's own. */
export function assertSchoolDatabaseName (value: unknown): asserts value is string {
  assertSafeName(value, 'Database name')
  if (RESERVED_DATABASES.has(value)) throw new Error(`Database name "${value}" is reserved by PostgreSQL`)
}
