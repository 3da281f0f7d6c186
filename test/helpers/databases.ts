import type { Test } from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { loadConfig, type Config } from '../../src/config.js'
import { dropPrefixedDatabases } from '../../src/postgres/admin.js'
import { attachEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import type { Topology } from '../../src/postgres/topology.js'
import { externalServerUrl, testCluster } from './cluster.js'

let serverUrl: Promise<string> | null = null

/** The suite's server, attached once per test process. */
export async function testServerUrl (): Promise<string> {
  serverUrl ??= externalServerUrl !== null
    ? Promise.resolve(databaseUrl(externalServerUrl, 'postgres'))
    : attachEmbeddedPostgres(testCluster, { log: () => {} }).then((s) => s.url)
  return await serverUrl
}

export interface TestDatabases {
  serverUrl: string
  catalogUrl: string
  topology: Topology
  /** Environment for a child process (server or script) on these databases. */
  env: Record<string, string>
  /** A validated config on these databases, with overrides. */
  config: (overrides?: Record<string, string>) => Config
  /** A school database name inside this file's namespace. */
  databaseName: (slug: string) => string
  /** An admin connection to the server's maintenance database. */
  admin: Knex
}

/**
 * A namespace of databases for one test file: `<prefix>_catalog` and
 * `<prefix>_<slug>` schools. Test files run in parallel on one server, so
 * each uses its own prefix; leftovers of an earlier run are dropped first,
 * and everything is dropped again when the test ends.
 */
export async function testDatabases (t: Test, prefix: string): Promise<TestDatabases> {
  const url = await testServerUrl()
  const admin = createKnex(url, { max: 2 })
  await dropPrefixedDatabases(admin, prefix)
  t.teardown(async () => {
    await dropPrefixedDatabases(admin, prefix)
    await admin.destroy()
  })
  const catalogUrl = databaseUrl(url, `${prefix}_catalog`)
  const env = { DATABASE_URL: catalogUrl, TENANT_SERVERS: `default=${url}`, NODE_ENV: 'test', LOG_LEVEL: 'warn' }
  return {
    serverUrl: url,
    catalogUrl,
    topology: { catalogUrl, servers: { default: url }, embedded: null, release: () => {} },
    env,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    databaseName: (slug) => `${prefix}_${slug}`,
    admin
  }
}

/** Runs `fn` with a short-lived connection to one database. */
export async function withDatabase<T> (serverUrl: string, database: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  const db = createKnex(databaseUrl(serverUrl, database), { max: 1 })
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

/** A namespace of databases whose catalog is ready and lists `slugs` (named by slug, not migrated), with a connection to it. */
export async function testCatalog (t: Test, prefix: string, slugs: string[]): Promise<{ dbs: TestDatabases, catalog: Knex }> {
  const dbs = await testDatabases(t, prefix)
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  if (slugs.length > 0) await catalog('schools').insert(slugs.map((slug) => ({ slug, name: slug, database_name: dbs.databaseName(slug) })))
  return { dbs, catalog }
}
