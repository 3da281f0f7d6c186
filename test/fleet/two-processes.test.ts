// Two real API processes on one catalog, with the default 30 s cache TTL: a
// suspension written to the catalog reaches both at once (school_changed
// notification), not after the TTL.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { DEVELOPMENT_JWT_SECRET } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { testDatabases } from '../helpers/databases.js'
import { startServerProcess, type ServerProcess } from '../helpers/run.js'
import { waitFor } from '../helpers/timing.js'

// Well inside the 30 s TTL: only the notification explains a change seen this soon.
const BEFORE_THE_TTL_MS = 10_000

t.test('a suspension reaches two API processes before the cache TTL, and so does resuming', async (t) => {
  const dbs = await testDatabases(t, 'tproc')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert({ slug: 'alpha', name: 'School alpha', database_name: dbs.databaseName('alpha') })
  const report = await migrateSchools(dbs.topology, { concurrency: 1, useTemplate: false })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools))

  // No CATALOG_CACHE_TTL_MS: the default 30 s.
  const servers = await Promise.all([startServerProcess(dbs.env), startServerProcess(dbs.env)])
  t.teardown(() => { for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL') })
  t.not(servers[0]?.address, servers[1]?.address, 'two processes, two addresses')

  const token = createSigner({ key: DEVELOPMENT_JWT_SECRET, algorithm: 'HS256', expiresIn: 600_000 })({ sub: 'staff', school: 'alpha' })
  const ask = async (server: ServerProcess): Promise<{ status: number, code: string | null }> => {
    const res = await fetch(`${server.address}/api/lunch-weeks`, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.json() as { code?: string }
    return { status: res.status, code: res.status === 200 ? null : (body.code ?? null) }
  }
  /** Polls one process until it answers `status` (and `code`); the ms it took. */
  const until = async (server: ServerProcess, status: number, code: string | null): Promise<number> =>
    await waitFor(`${server.address} to answer ${status}`, BEFORE_THE_TTL_MS, async () => {
      const answer = await ask(server)
      return answer.status === status && answer.code === code
    }, 10)

  for (const [i, server] of servers.entries()) {
    t.same(await ask(server), { status: 200, code: null }, `process ${i + 1} serves alpha (and caches it for 30 s)`)
  }
  // Both LISTEN on the catalog once their listener has connected (in the background).
  const listening = async (): Promise<number> => Number((await catalog.raw<{ rows: Array<{ n: string }> }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'school-lunch:listen' AND datname = ?", ['tproc_catalog'])).rows[0]?.n)
  await t.resolves(waitFor('both listeners', 5_000, async () => await listening() === 2, 50), 'both processes listen for catalog changes')

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'suspended' })
  const suspended = Promise.all(servers.map(async (s) => await until(s, 403, 'SCHOOL_SUSPENDED')))
  await t.resolves(suspended, 'both processes answer 403 SCHOOL_SUSPENDED before the TTL')
  t.comment(`suspension seen by the processes after ${(await suspended).join(' ms and ')} ms`)

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'active' })
  const resumed = Promise.all(servers.map(async (s) => await until(s, 200, null)))
  await t.resolves(resumed, 'both processes serve alpha again before the TTL')
  t.comment(`resuming seen by the processes after ${(await resumed).join(' ms and ')} ms`)

  for (const server of servers) server.child.kill('SIGTERM')
  const codes = await Promise.all(servers.map(async (s) => await s.exited))
  t.same(codes, [0, 0], 'both exit 0 on SIGTERM')
  for (const [i, server] of servers.entries()) t.match(server.output(), /shutting down/, `process ${i + 1} shut down gracefully`)
})
