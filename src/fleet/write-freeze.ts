import type pg from 'pg'
import { quoteIdentifier } from '../postgres/names.js'
import { tableAccessSql } from '../postgres/roles.js'

/*
 * A school's writes are frozen in PostgreSQL itself, for every client of
 * its role (each API process, task scripts, a stray psql), not by a flag
 * the API would have to honour:
 *
 * 1. `ALTER DATABASE … SET default_transaction_read_only = on`: every new
 *    session of the database is read-only. A write fails with
 *    read_only_sql_transaction (25006), an error nothing else in the service
 *    produces, which the API answers with 503 SCHOOL_MOVING.
 * 2. The role's write grants are revoked: a client that turns read-only
 *    off in its own session still cannot write (the role owns nothing, so
 *    it cannot grant itself anything back).
 * 3. The role's sessions opened before are ended, and waited for: their
 *    transactions in flight roll back (their clients are told), and the
 *    pools reconnect into read-only sessions. Reads work again at once.
 *
 * `client` is an admin connection to the school's database, opened before
 * the freeze (so not read-only itself).
 */

/** How long ending the role's sessions may take before the freeze fails (and is undone). */
export const END_SESSIONS_TIMEOUT_MS = 10_000

export async function freezeWrites (client: pg.Client, role: string, timeoutMs = END_SESSIONS_TIMEOUT_MS): Promise<void> {
  const grantee = quoteIdentifier(role)
  await client.query('ALTER DATABASE ' + quoteIdentifier(await currentDatabase(client)) + ' SET default_transaction_read_only = on')
  await client.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM ${grantee}; ` +
    `REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM ${grantee}`)
  await endSessions(client, role, timeoutMs)
}

/**
 * Writes allowed again: the default and the grants as migrate leaves them,
 * and the role's sessions ended once more, since those opened during the
 * freeze stay read-only for as long as they last.
 */
export async function thawWrites (client: pg.Client, role: string, timeoutMs = END_SESSIONS_TIMEOUT_MS): Promise<void> {
  await client.query('ALTER DATABASE ' + quoteIdentifier(await currentDatabase(client)) + ' RESET default_transaction_read_only')
  await client.query(tableAccessSql(role).join(';\n'))
  await endSessions(client, role, timeoutMs)
}

async function currentDatabase (client: pg.Client): Promise<string> {
  return (await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]?.name ?? ''
}

/** Ends every session of `role` on this database that began before now, and waits until they are gone. */
async function endSessions (client: pg.Client, role: string, timeoutMs: number): Promise<void> {
  const { rows } = await client.query<{ pid: number }>(`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 AND backend_start < statement_timestamp()`, [role])
  const pids = rows.map((row) => row.pid)
  if (pids.length === 0) return
  // Waits for each to exit; one that already has, or does not in time, is counted below.
  await client.query('SELECT pg_terminate_backend(pid, $2) FROM unnest($1::int[]) AS pid', [pids, Math.max(1, Math.round(timeoutMs))])
  // A statement of its own: pg_stat_activity holds still within a transaction.
  const left = (await client.query<{ left: number }>('SELECT count(*)::int AS left FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids])).rows[0]?.left ?? 0
  if (left > 0) throw new Error(`${left} session(s) of role ${role} did not end within ${timeoutMs} ms`)
}
