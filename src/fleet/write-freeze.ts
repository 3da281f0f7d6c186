import type pg from 'pg'
import { quoteIdentifier } from '../postgres/names.js'
import { tableAccessSql } from '../postgres/roles.js'
import type { AppTable } from './table-copy.js'

/*
 * A school's writes are frozen in PostgreSQL itself by taking its role's
 * write privileges away, not by a flag the API would have to honour: every
 * API process, task script or stray client logged in as the role is held
 * to it, and the role (which owns nothing) cannot give them back to itself.
 * Reads go on untouched, on the connections already open; nobody's session
 * is ended. A write then fails with insufficient_privilege, which the API
 * answers with 503 SCHOOL_MOVING.
 *
 * A write already under way checked its privileges before the REVOKE, so
 * the freeze then waits for it: a SHARE lock on every table is granted only
 * once no transaction holds a write lock on one, and every later write
 * reads the new privileges when it takes its own lock.
 */

/** How long the freeze waits for writes in flight before giving up (the move then fails, nothing lost). */
export const DRAIN_TIMEOUT_MS = 10_000

/** `client` is an admin connection to the school's database. */
export async function freezeWrites (client: pg.Client, role: string, tables: readonly AppTable[], drainTimeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
  const grantee = quoteIdentifier(role)
  await client.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM ${grantee}`)
  await client.query(`REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM ${grantee}`)
  if (tables.length === 0) return
  await client.query('BEGIN')
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(drainTimeoutMs))}`)
    await client.query(`LOCK TABLE ${tables.map((t) => `public.${quoteIdentifier(t.name)}`).join(', ')} IN SHARE MODE`)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

/** The role's row access as migrate grants it, writes included. */
export async function thawWrites (client: pg.Client, role: string): Promise<void> {
  for (const statement of tableAccessSql(role)) await client.query(statement)
}
