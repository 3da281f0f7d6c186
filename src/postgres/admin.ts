import type { Knex } from 'knex'
import { quoteIdentifier } from './names.js'

export type CreateOutcome = 'created' | 'existed'

export type CreateStrategy = 'wal_log' | 'file_copy'

/** How FILE_COPY copies the template's files (PostgreSQL 18's file_copy_method). */
export type CopyMethod = 'clone' | 'copy'

/**
 * The session settings of a connection that runs CREATE DATABASE. With
 * `clone`, FILE_COPY hands each file to the kernel (copy_file_range on
 * Linux), which copies it without a trip through PostgreSQL's memory, or
 * shares its blocks where the file system can (XFS with reflink, Btrfs).
 * Servers before 18 lack the setting and would refuse the connection.
 */
export function createDatabaseSettings (serverVersion: number, copyMethod: CopyMethod): Record<string, string> {
  return serverVersion >= 180000 && copyMethod === 'clone' ? { file_copy_method: 'clone' } : {}
}

/**
 * CREATE DATABASE, which PostgreSQL only runs as a statement of its own and
 * outside any transaction. A database that appeared meanwhile, created by a
 * concurrent run, counts as there: 42P04 (duplicate_database), or 23505 when
 * both runs raced on pg_database's unique index.
 */
export async function createDatabase (admin: Knex, name: string, { template, strategy }: { template?: string, strategy?: CreateStrategy } = {}): Promise<CreateOutcome> {
  const sql = `CREATE DATABASE ${quoteIdentifier(name)}` +
    (template === undefined ? '' : ` TEMPLATE ${quoteIdentifier(template)}`) +
    (strategy === undefined ? '' : ` STRATEGY ${strategy === 'file_copy' ? 'FILE_COPY' : 'WAL_LOG'}`)
  try {
    await admin.raw(sql)
    return 'created'
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === '42P04' || code === '23505') return 'existed'
    throw error
  }
}

export async function listDatabases (admin: Knex): Promise<Set<string>> {
  const { rows } = await admin.raw<{ rows: Array<{ datname: string }> }>('SELECT datname FROM pg_database')
  return new Set(rows.map((row) => row.datname))
}

export async function databaseExists (admin: Knex, name: string): Promise<boolean> {
  const { rows } = await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_database WHERE datname = ?', [name])
  return rows.length > 0
}

/** Connections still free for clients: max_connections less reserved and in use. */
export async function freeConnections (admin: Knex): Promise<number> {
  const { rows } = await admin.raw<{ rows: Array<{ free: number }> }>(`
    SELECT current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int
         - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS free`)
  return rows[0]?.free ?? 0
}

/**
 * Drops every database named `<prefix>_…` and the school roles made for
 * them (`school_<prefix>_…`): roles are cluster-wide and outlive their
 * databases. For namespaces that tests and the bench own on a shared server.
 */
export async function dropPrefixedDatabases (admin: Knex, prefix: string): Promise<void> {
  const like = `${prefix.replaceAll('_', '\\_')}\\_%`
  const databases = await admin.raw<{ rows: Array<{ datname: string }> }>("SELECT datname FROM pg_database WHERE datname LIKE ? ESCAPE '\\'", [like])
  for (const { datname } of databases.rows) await admin.raw(`DROP DATABASE IF EXISTS ${quoteIdentifier(datname)} WITH (FORCE)`)
  const roles = await admin.raw<{ rows: Array<{ rolname: string }> }>("SELECT rolname FROM pg_roles WHERE rolname LIKE ? ESCAPE '\\'", [`school\\_${like}`])
  for (const { rolname } of roles.rows) await admin.raw(`DROP ROLE IF EXISTS ${quoteIdentifier(rolname)}`)
}
