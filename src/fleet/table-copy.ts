import { Transform, type Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { databaseUrl, openConnection } from '../postgres/connection.js'
import { quoteIdentifier } from '../postgres/names.js'

/*
 * A school database's app tables, read and written with COPY: a move streams
 * them from one server to another, a backup into a file, a restore out of
 * one. Rows pass through in chunks with backpressure, so memory stays
 * bounded whatever the size of a table.
 *
 * knex's own tables stay behind: every database has its history, written by
 * the migrations that built it.
 */

export interface AppTable {
  name: string
  /** The columns COPY carries, in table order; generated columns are computed again. */
  columns: string[]
}

/** What the same query says of a table on either side of a copy. */
export interface TableSum {
  name: string
  rows: number
  checksum: string
}

export interface SequenceValue {
  name: string
  lastValue: string
  isCalled: boolean
}

/**
 * Row text depends on session settings (time zone, date style, float
 * digits). Set alike on every connection of a copy, COPY text reads back
 * what it wrote and a checksum means the same on two servers.
 */
export const STABLE_OUTPUT_SQL = [
  "SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
  'SET extra_float_digits = 3', "SET bytea_output = 'hex'"
].join('; ')

/** An admin connection to one database of a server, with the stable output settings; the caller ends it. */
export async function openCopyClient (serverUrl: string, database: string, applicationName: string): Promise<pg.Client> {
  const client = await openConnection(databaseUrl(serverUrl, database), { applicationName, connectTimeoutMillis: 5_000 })
  try {
    await client.query(STABLE_OUTPUT_SQL)
    return client
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
}

const relation = (table: string): string => `public.${quoteIdentifier(table)}`
const columnList = (table: AppTable): string => table.columns.map(quoteIdentifier).join(', ')

/** The app's tables, each after the tables it references, so COPY never breaks a foreign key. */
export async function listAppTables (client: pg.Client): Promise<AppTable[]> {
  const { rows } = await client.query<{ oid: string, name: string, columns: string[], parents: string[] }>(`
    SELECT c.oid::text AS oid, c.relname AS name,
      array(SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum)::text[] AS columns,
      array(SELECT DISTINCT f.confrelid::text FROM pg_constraint f
            WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid)::text[] AS parents
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE 'knex\\_migrations%'
    ORDER BY c.relname`)
  const ordered: AppTable[] = []
  const placed = new Set<string>()
  let left = rows
  while (left.length > 0) {
    const ready = left.filter((row) => row.parents.every((parent) => placed.has(parent) || !rows.some((r) => r.oid === parent)))
    if (ready.length === 0) throw new Error(`tables ${left.map((r) => r.name).join(', ')} reference each other in a cycle; COPY cannot order them`)
    for (const row of ready) {
      ordered.push({ name: row.name, columns: row.columns })
      placed.add(row.oid)
    }
    left = left.filter((row) => !placed.has(row.oid))
  }
  return ordered
}

/**
 * The migrations the database records, oldest first. Fails (42P01) when it
 * has no knex_migrations table: a caller that can meet a never-migrated
 * database checks for the table first.
 */
export async function readMigrationHistory (client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('SELECT name FROM knex_migrations ORDER BY id')
  return rows.map((row) => row.name)
}

/**
 * Row count and an order-free checksum: the sum of the first 64 bits of
 * each row's md5. Same rows, same sum, whatever order a server returns
 * them in, with constant memory; a changed, lost or extra row changes it.
 */
export async function tableSum (client: pg.Client, table: string): Promise<TableSum> {
  const { rows } = await client.query<{ rows: string, checksum: string }>(`
    SELECT count(*)::text AS rows,
      coalesce(sum(('x' || left(md5(ROW(r.*)::text), 16))::bit(64)::bigint), 0)::text AS checksum
    FROM ONLY ${relation(table)} AS r`)
  return { name: table, rows: Number(rows[0]?.rows), checksum: rows[0]?.checksum ?? '' }
}

export async function tableSums (client: pg.Client, tables: readonly AppTable[]): Promise<TableSum[]> {
  const sums: TableSum[] = []
  for (const table of tables) sums.push(await tableSum(client, table.name))
  return sums
}

/** Where each side's sums differ, one line per table; empty when they agree. */
export function compareSums (expected: readonly TableSum[], actual: readonly TableSum[]): string[] {
  const problems: string[] = []
  for (const want of expected) {
    const got = actual.find((sum) => sum.name === want.name)
    if (got === undefined) problems.push(`table ${want.name}: missing`)
    else if (got.rows !== want.rows) problems.push(`table ${want.name}: ${want.rows} row(s) expected, ${got.rows} found`)
    else if (got.checksum !== want.checksum) problems.push(`table ${want.name}: the rows differ (checksum ${got.checksum}, expected ${want.checksum})`)
  }
  return problems
}

/** The app's sequences and where they stand (knex's own are left to its tables). */
export async function readSequences (client: pg.Client): Promise<SequenceValue[]> {
  const { rows } = await client.query<{ name: string }>(`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relname NOT LIKE 'knex\\_migrations%' ORDER BY 1`)
  const values: SequenceValue[] = []
  for (const { name } of rows) {
    const value = await client.query<{ last_value: string, is_called: boolean }>(`SELECT last_value::text, is_called FROM ${relation(name)}`)
    values.push({ name, lastValue: value.rows[0]?.last_value ?? '1', isCalled: value.rows[0]?.is_called ?? false })
  }
  return values
}

/** Sets each sequence where it stood on the other side, so new rows get the ids they would have got there. */
export async function writeSequences (client: pg.Client, values: readonly SequenceValue[]): Promise<void> {
  for (const value of values) {
    await client.query('SELECT setval($1::regclass, $2::bigint, $3)', [relation(value.name), value.lastValue, value.isCalled])
  }
}

/** Empties the app's tables: a database built by migrations may hold rows they inserted. */
export async function truncateTables (client: pg.Client, tables: readonly AppTable[]): Promise<void> {
  if (tables.length > 0) await client.query(`TRUNCATE ${tables.map((t) => relation(t.name)).join(', ')}`)
}

/** A table's rows as COPY text, streamed. */
export function copyOut (client: pg.Client, table: AppTable): Readable {
  return client.query(copyTo(`COPY ${relation(table.name)} (${columnList(table)}) TO STDOUT`))
}

/** A stream that COPY-loads its input into a table; `rowCount` once finished. */
export function copyIn (client: pg.Client, table: AppTable): Writable & { rowCount: number } {
  return client.query(copyFrom(`COPY ${relation(table.name)} (${columnList(table)}) FROM STDIN`))
}

/** Counts the bytes that pass. */
export function byteCounter (): Transform & { bytes: number } {
  const counter = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      counter.bytes += chunk.length
      done(null, chunk)
    }
  }) as Transform & { bytes: number }
  counter.bytes = 0
  return counter
}

/** One table from one database to another, streamed; the rows and bytes that went. */
export async function copyTable (source: pg.Client, target: pg.Client, table: AppTable): Promise<{ rows: number, bytes: number }> {
  const counter = byteCounter()
  const into = copyIn(target, table)
  await pipeline(copyOut(source, table), counter, into)
  return { rows: into.rowCount, bytes: counter.bytes }
}
