import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppOptions } from '../../src/app.js'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { createDevSigner } from '../../src/cli/dev-signer.js'
import { DEVELOPMENT_JWT_SECRET } from '../../src/config.js'
import { migrateSchools } from '../../src/fleet/migrate-schools.js'
import { testDatabases, type TestDatabases } from './databases.js'

export const TEST_SECRET = DEVELOPMENT_JWT_SECRET

export interface TestApp {
  app: FastifyInstance
  dbs: TestDatabases
  /** Everything the app logged, one parsed JSON object per line. */
  logs: Array<Record<string, unknown>>
  /** An HS256 token for the test secret; claims as given (add `exp` etc. yourself). */
  token: (claims: Record<string, unknown>) => string
  /** `Authorization` header for a token naming one school. */
  auth: (slug: string, extra?: Record<string, unknown>) => { authorization: string }
  /** The catalog's row of a school, for tests that change it. */
  setStatus: (slug: string, status: 'active' | 'suspended') => Promise<void>
}

export interface TestAppOptions {
  /** Schools to add to the catalog and migrate. */
  schools?: string[]
  /** Schools to add to the catalog only (no database). */
  unmigrated?: string[]
  /** Extra settings, e.g. { CATALOG_CACHE_TTL_MS: '100' }. */
  env?: Record<string, string>
  /** Tenancy plugin options that are not configuration (see AppOptions). */
  tenancy?: AppOptions['tenancy']
  /** The token key set's clock, for tests that move time on. */
  clock?: () => number
  /** Timings of the public copies' repairer. */
  publicMenus?: AppOptions['publicMenus']
}

/**
 * An app on its own catalog and school databases (named `<prefix>_<slug>`),
 * torn down with the test. School `slug` is named "School <slug>".
 */
export async function testApp (t: Test, prefix: string, options: TestAppOptions = {}): Promise<TestApp> {
  const dbs = await testDatabases(t, prefix)
  const schools = options.schools ?? []
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  try {
    const rows = [...schools, ...(options.unmigrated ?? [])].map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug) }))
    if (rows.length > 0) await catalog('schools').insert(rows)
  } finally {
    await catalog.destroy()
  }
  if (schools.length > 0) {
    const report = await migrateSchools(dbs.topology, { concurrency: 4, only: schools })
    const failed = report.schools.filter((s) => s.error !== null)
    if (failed.length > 0) throw new Error(`migrate failed: ${JSON.stringify(failed)}`)
  }

  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const config = dbs.config(options.env ?? {})
  const app = await buildApp({ config, catalogUrl: dbs.catalogUrl, servers: config.tenantServers ?? dbs.topology.servers, logger: { level: 'info', stream }, tenancy: options.tenancy, publicMenus: options.publicMenus, ...(options.clock === undefined ? {} : { clock: options.clock }) })
  await app.ready()
  t.teardown(async () => { await app.close() })

  const token = await createDevSigner({ secret: TEST_SECRET, expiresInMs: 3_600_000 })
  const setStatus = async (slug: string, status: 'active' | 'suspended'): Promise<void> => {
    const db = openCatalog(dbs.catalogUrl, 1)
    try {
      await db('schools').where({ slug }).update({ status })
    } finally {
      await db.destroy()
    }
  }
  return {
    app,
    dbs,
    logs,
    token,
    auth: (slug, extra = {}) => ({ authorization: `Bearer ${token({ sub: `user-of-${slug}`, school: slug, ...extra })}` }),
    setStatus
  }
}
