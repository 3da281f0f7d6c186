import knexFactory, { type Knex } from 'knex'
import pg from 'pg'

// DATE columns stay 'YYYY-MM-DD' strings: a Date object would shift with
// the process time zone, and a lunch day is a calendar day, not an instant.
pg.types.setTypeParser(pg.types.builtins.DATE, (value: string) => value)

/** The URL of `database` on the server that `serverUrl` points at. */
export function databaseUrl (serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${encodeURIComponent(database)}`
  return url.toString()
}

/** The database a URL names, `postgres` when it names none. */
export function databaseOf (url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
  return name === '' ? 'postgres' : name
}

/** host:port/database with the credentials left out, for logs and messages. */
export function describeUrl (url: string): string {
  const parsed = new URL(url)
  return `${parsed.hostname}:${parsed.port || '5432'}/${databaseOf(url)}`
}

/** What PostgreSQL said, for a summary line: knex prefixes it with the failing SQL. */
export function databaseMessage (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return (message.replace(/^[\s\S]*? - /, '').split('\n')[0] ?? message).slice(0, 300)
}

const QUIET: Knex.Logger = { warn: () => {}, error: () => {}, deprecate: () => {}, debug: () => {} }

export interface PoolOptions {
  max: number
  min?: number
  /** Label shown in pg_stat_activity.application_name. */
  applicationName?: string
  acquireTimeoutMillis?: number
  idleTimeoutMillis?: number
  connectTimeoutMillis?: number
  statementTimeoutMillis?: number
  /** Settings every session starts with (sent at connect: no extra round trip). */
  settings?: Record<string, string>
  log?: Knex.Logger
}

export interface ConnectionOptions {
  applicationName: string
  connectTimeoutMillis: number
  statementTimeoutMillis?: number
}

/**
 * One connection, for a pool of our own. A broken connection is marked the
 * way knex marks its own (`__knex__disposed`), so the pool can tell; and a
 * backend that dies while the connection sits idle must not crash the
 * process with an unheard 'error' event.
 */
export async function openConnection (url: string, options: ConnectionOptions): Promise<pg.Client & { __knex__disposed?: unknown }> {
  const client: pg.Client & { __knex__disposed?: unknown } = new pg.Client({
    connectionString: url,
    application_name: options.applicationName,
    connectionTimeoutMillis: options.connectTimeoutMillis,
    ...(options.statementTimeoutMillis === undefined ? {} : { statement_timeout: options.statementTimeoutMillis })
  })
  client.on('error', (error) => { client.__knex__disposed = error })
  client.on('end', () => { client.__knex__disposed ??= 'connection ended' })
  markBrokenOnFatal(client)
  await client.connect()
  return client
}

/**
 * A FATAL error ends the session (pg_terminate_backend, a shutdown), but the
 * socket closes a moment later: a pool must not lend the connection in
 * between. The mark is set as pg reads the error message, ahead of pg's own
 * handler (so before the query hears of it), and is there when knex
 * releases the connection.
 */
function markBrokenOnFatal (client: pg.Client & { __knex__disposed?: unknown }): void {
  client.connection.prependListener('errorMessage', (message: { severity?: string }) => {
    if (message.severity === 'FATAL' || message.severity === 'PANIC') client.__knex__disposed ??= message
  })
}

/*
 * Every connection createKnex opens, by server (host:port), so that a
 * program can cut off a server that stopped answering: a query on a hung
 * server never returns, and closing its connection politely waits for an
 * answer that never comes. Destroying the sockets fails what is in flight
 * at once. A connection leaves the set when it ends.
 */
const openByServer = new Map<string, Set<pg.Client>>()

function serverKey (url: string): string {
  const { hostname, port } = new URL(url)
  return `${hostname}:${port || '5432'}`
}

function trackConnection (url: string, client: pg.Client): void {
  const key = serverKey(url)
  let open = openByServer.get(key)
  if (open === undefined) openByServer.set(key, open = new Set())
  const set = open
  set.add(client)
  client.once('end', () => {
    set.delete(client)
    if (set.size === 0 && openByServer.get(key) === set) openByServer.delete(key)
  })
}

/**
 * Destroys the socket of every connection this process opened with
 * createKnex to the server of `url` (any database on it): their queries in
 * flight fail with "Connection terminated unexpectedly". Returns how many.
 */
export function severConnections (url: string): number {
  const open = [...openByServer.get(serverKey(url)) ?? []]
  for (const client of open) client.connection.stream.destroy()
  return open.length
}

/** A Knex over a pool of our own (knex's `connectionPool`), which it only borrows from. */
export function knexOverPool (pool: Knex.TarnPoolLike): Knex {
  return knexFactory({ client: 'pg', connectionPool: pool, version: '13', log: QUIET })
}

/** `-c name=value …`, the startup packet's options; values are plain words, so nothing needs escaping. */
function startupOptions (settings: Record<string, string>): string {
  return Object.entries(settings).map(([name, value]) => {
    if (!/^[a-z_]+$/.test(name) || !/^[\w.]+$/.test(value)) throw new Error(`unsupported session setting ${name}=${value}`)
    return `-c ${name}=${value}`
  }).join(' ')
}

/** A Knex instance on one database, with the pool settings this project wants. */
export function createKnex (url: string, pool: PoolOptions): Knex {
  return knexFactory({
    client: 'pg',
    connection: {
      connectionString: url,
      application_name: pool.applicationName ?? 'school-lunch',
      connectionTimeoutMillis: pool.connectTimeoutMillis ?? 5_000,
      ...(pool.statementTimeoutMillis === undefined ? {} : { statement_timeout: pool.statementTimeoutMillis }),
      ...(pool.settings === undefined ? {} : { options: startupOptions(pool.settings) })
    },
    // Saves knex a `select version()` round trip on every new pool.
    version: '13',
    pool: {
      min: pool.min ?? 0,
      max: pool.max,
      idleTimeoutMillis: pool.idleTimeoutMillis ?? 30_000,
      // A dead server must fail the acquire at once, not after a minute.
      propagateCreateError: true,
      afterCreate: (client: pg.Client, done: (error: Error | null, client: pg.Client) => void) => {
        markBrokenOnFatal(client)
        trackConnection(url, client)
        done(null, client)
      }
    },
    acquireConnectionTimeout: pool.acquireTimeoutMillis ?? 10_000,
    // knex prints connection failures with a stack trace to the console; the
    // callers report them in their own words (CLI summaries, 503s).
    log: pool.log ?? QUIET
  })
}
