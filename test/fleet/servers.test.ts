// Schools on two real PostgreSQL servers: the suite's ('default') and a
// cluster of this file's own ('east'). migrate puts each school's database
// and role on its server only; one API process serves both, and the bound on
// pools holds per server, so a busy server cannot take the other's share.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import type { Knex } from 'knex'
import { openCatalog } from '../../src/catalog/catalog.js'
import { projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { testServerUrl } from '../helpers/databases.js'
import { clusterPort } from '../helpers/cluster.js'
import { sleep } from '../helpers/timing.js'

const east: EmbeddedPostgresConfig = {
  dataDir: path.resolve(projectRoot, '.data/test-fleet-servers'),
  port: clusterPort(4),
  password: 'postgres',
  maxConnections: 100,
  fsync: false
}

async function wipeEast (): Promise<void> {
  await stopEmbeddedPostgres(east.dataDir)
  fs.rmSync(east.dataDir, { recursive: true, force: true })
  fs.rmSync(`${east.dataDir}.leases`, { recursive: true, force: true })
}

await wipeEast() // leftovers of an interrupted run
t.teardown(wipeEast)
const eastUrl = (await attachEmbeddedPostgres(east, { holder: 'fleet-servers-test', log: () => {} })).url
const suiteUrl = await testServerUrl()
const TENANT_SERVERS = `default=${suiteUrl},east=${eastUrl}`

const suiteAdmin = createKnex(suiteUrl, { max: 2 })
const eastAdmin = createKnex(eastUrl, { max: 2 })
t.teardown(async () => { await Promise.all([suiteAdmin.destroy(), eastAdmin.destroy()]) })

/** Names on a server starting with `<prefix>_` (databases) or `school_<prefix>_` (roles). */
async function namesOn (admin: Knex, prefix: string): Promise<{ databases: string[], roles: string[] }> {
  const databases = await admin.raw<{ rows: Array<{ datname: string }> }>(
    "SELECT datname FROM pg_database WHERE datname LIKE ? ESCAPE '\\' ORDER BY 1", [`${prefix}\\_%`])
  const roles = await admin.raw<{ rows: Array<{ rolname: string }> }>(
    "SELECT rolname FROM pg_roles WHERE rolname LIKE ? ESCAPE '\\' ORDER BY 1", [`school\\_${prefix}\\_%`])
  return { databases: databases.rows.map((r) => r.datname), roles: roles.rows.map((r) => r.rolname) }
}

/** The API's connections on a server to this test's databases: `database role` pairs. */
async function apiConnections (admin: Knex, prefix: string): Promise<string[]> {
  const { rows } = await admin.raw<{ rows: Array<{ datname: string, usename: string }> }>(
    `SELECT DISTINCT datname, usename FROM pg_stat_activity
     WHERE application_name = 'school-lunch:api' AND datname LIKE ? ESCAPE '\\' ORDER BY 1, 2`, [`${prefix}\\_%`])
  return rows.map((r) => `${r.datname} ${r.usename}`)
}

async function addSchools (app: TestApp, schools: Array<[slug: string, server: string]>): Promise<void> {
  const catalog = openCatalog(app.dbs.catalogUrl, 1)
  try {
    await catalog('schools').insert(schools.map(([slug, server]) => ({ slug, name: `School ${slug}`, database_name: app.dbs.databaseName(slug), server })))
  } finally {
    await catalog.destroy()
  }
}

t.test('migrate places each school on its server; one app serves both', async (t) => {
  const app = await testApp(t, 'sv', { env: { TENANT_SERVERS } })
  const { dbs } = app
  await addSchools(app, [['d1', 'default'], ['d2', 'default'], ['e1', 'east'], ['e2', 'east'], ['lost', 'nowhere']])

  const report = await migrateSchools({ ...dbs.topology, servers: { default: suiteUrl, east: eastUrl } }, { concurrency: 4 })
  t.equal(hasFailures(report), true, 'the school on an unknown server fails')
  const bySlug = Object.fromEntries(report.schools.map((s) => [s.slug, s]))
  for (const slug of ['d1', 'd2', 'e1', 'e2']) {
    t.equal(bySlug[slug]?.error, null, `${slug} succeeded`)
    // The suite's template is shared with other test files: a clone may fall back to a plain create.
    t.ok(['cloned', 'created'].includes(bySlug[slug]?.database ?? ''), `${slug}: its database is new (${bySlug[slug]?.database})`)
  }
  // Nobody else uses the east cluster, so its template cannot be busy.
  t.same([bySlug.e1?.database, bySlug.e2?.database], ['cloned', 'cloned'], "east's schools are cloned from east's own template")
  t.equal(report.templates.east, 'created')
  t.same([bySlug.e1?.server, bySlug.d1?.server, bySlug.lost?.server], ['east', 'default', 'nowhere'])
  t.equal(bySlug.lost?.error, 'server "nowhere" is not configured (known: default, east)', 'a clear error for the unknown server')

  t.same(await namesOn(suiteAdmin, 'sv'), {
    databases: ['sv_catalog', 'sv_d1', 'sv_d2'],
    roles: [schoolRoleName('sv_d1'), schoolRoleName('sv_d2')]
  }, 'the suite server holds the catalog and the default schools, with their roles, and nothing of east')
  t.same(await namesOn(eastAdmin, 'sv'), {
    databases: ['sv_e1', 'sv_e2'],
    roles: [schoolRoleName('sv_e1'), schoolRoleName('sv_e2')]
  }, 'the east server holds the east schools and their roles only')
  const eastTemplate = await eastAdmin.raw<{ rows: unknown[] }>("SELECT 1 FROM pg_database WHERE datname = 'tenant.template'")
  t.equal(eastTemplate.rows.length, 1, 'east got its own template')

  const catalog = openCatalog(dbs.catalogUrl, 1)
  const lostStatus = await catalog('school_migration_status as m').join('schools as s', 's.id', 'm.school_id')
    .where('s.slug', 'lost').first('m.last_error', 'm.migration').finally(async () => { await catalog.destroy() })
  t.same(lostStatus, { last_error: 'server "nowhere" is not configured (known: default, east)', migration: null }, 'the failure is recorded')

  // One app, both servers.
  const weeks: Record<string, string> = { d1: '2026-11-23', d2: '2026-11-30', e1: '2026-12-07', e2: '2026-12-14' }
  for (const [slug, weekOf] of Object.entries(weeks)) {
    const created = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth(slug), payload: { weekOf } })
    t.equal(created.statusCode, 201, `${slug}: a week is created`)
    const listed = await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth(slug) })
    t.same(listed.json<Array<{ weekOf: string }>>().map((w) => w.weekOf), [weekOf], `${slug}: sees its own week only`)
  }
  const lost = await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('lost') })
  t.equal(lost.statusCode, 503)
  t.equal(lost.json<{ code: string }>().code, 'SCHOOL_DATABASE_UNAVAILABLE', 'the school on no known server gets a 503')

  // The rows landed on the right server.
  for (const [slug, admin] of [['e1', eastAdmin], ['d1', suiteAdmin]] as const) {
    const db = createKnex(databaseUrl(admin === eastAdmin ? eastUrl : suiteUrl, dbs.databaseName(slug)), { max: 1 })
    const rows = await db('lunch_week').select('week_of').finally(async () => { await db.destroy() })
    t.same(rows, [{ week_of: weeks[slug] }], `${slug}'s week is in its database on its server`)
  }

  t.same(await apiConnections(suiteAdmin, 'sv'), ['sv_d1', 'sv_d2'].map((d) => `${d} ${schoolRoleName(d)}`),
    "the suite server sees the app's connections to the default schools only, each as the school's role")
  t.same(await apiConnections(eastAdmin, 'sv'), ['sv_e1', 'sv_e2'].map((d) => `${d} ${schoolRoleName(d)}`),
    "the east server sees the app's connections to the east schools only")
})

t.test('the pool bound is per server: under load neither server goes over it, and both are used at once', async (t) => {
  const app = await testApp(t, 'svpool', { env: { TENANT_SERVERS, TENANT_CONNECTIONS_MAX: '2', TENANT_POOL_SIZE: '1' } })
  const defaults = ['d1', 'd2', 'd3', 'd4']
  const easts = ['e1', 'e2', 'e3', 'e4']
  await addSchools(app, [...defaults.map((s) => [s, 'default'] as [string, string]), ...easts.map((s) => [s, 'east'] as [string, string])])
  const report = await migrateSchools({ ...app.dbs.topology, servers: { default: suiteUrl, east: eastUrl } }, { concurrency: 4, useTemplate: false })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools.filter((s) => s.error !== null)))

  // ---- One request at a time: what each server's bound evicts.
  const stats = (): ReturnType<typeof app.app.tenancy.pools.stats> => app.app.tenancy.pools.stats()
  const get = async (slug: string): Promise<number> => (await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth(slug) })).statusCode
  t.same([await get('d1'), await get('d2')], [200, 200])
  t.match(stats(), { open: 2, misses: 2, evictions: 0 }, 'd1 and d2: the default server is at its bound of 2 pools')
  t.same([await get('e1'), await get('e2')], [200, 200])
  t.match(stats(), { open: 4, misses: 4, evictions: 0 }, "east's pools do not count against default's bound: nothing evicted")
  t.equal(await get('d3'), 200)
  t.match(stats(), { open: 4, misses: 5 }, 'd3 took one slot on default')
  t.equal(stats().evictions, 1, 'making room for d3 evicted one pool, the least recently used (d1), not every idle one')
  const hitsBefore = stats().hits
  t.equal(await get('d2'), 200)
  t.equal(stats().hits, hitsBefore + 1, 'd2, used more recently than d1, kept its pool (a hit, not a new pool)')
  const eastHitsBefore = stats().hits
  t.equal(await get('e1'), 200)
  t.equal(stats().hits, eastHitsBefore + 1, "east's pools were untouched by default's eviction")

  // Samplers on connections of their own, outside the API's pools.
  const samplers = await Promise.all([suiteUrl, eastUrl].map(async (url) => {
    const client = new pg.Client({ connectionString: url, application_name: 'svpool-sampler' })
    await client.connect()
    return client
  }))
  t.teardown(async () => { await Promise.all(samplers.map(async (c) => await c.end().catch(() => {}))) })
  const count = async (client: pg.Client): Promise<number> => (await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'school-lunch:api' AND datname LIKE 'svpool\\_%'")).rows[0]?.n ?? -1
  const samples: Array<{ suite: number, east: number }> = []
  const stopped = new AbortController()
  const sampling = (async () => {
    while (!stopped.signal.aborted) {
      const [suite, eastCount] = await Promise.all(samplers.map(count)) as [number, number]
      samples.push({ suite, east: eastCount })
      await sleep(5)
    }
  })()

  // The default server gets four times the load of east. Two busy schools
  // per server fill its budget; a third busy one would wait for a slot that
  // no busy school gives up, by design.
  const busy = { default: defaults.slice(0, 2), east: easts.slice(0, 2) }
  const outcomes: Array<{ slug: string, status: number, code: string | null, ms: number }> = []
  const headers = new Map([...defaults, ...easts].map((slug) => [slug, app.auth(slug)]))
  const worker = async (slug: string): Promise<void> => {
    while (!stopped.signal.aborted) {
      const started = Date.now()
      const res = await app.app.inject({ url: '/api/lunch-weeks', headers: headers.get(slug) })
      outcomes.push({ slug, status: res.statusCode, code: res.statusCode === 200 ? null : res.json<{ code: string }>().code, ms: Date.now() - started })
    }
  }
  const workers = [...busy.default.flatMap((slug) => Array.from({ length: 4 }, async () => { await worker(slug) })),
    ...busy.east.flatMap((slug) => Array.from({ length: 1 }, async () => { await worker(slug) }))]
  await sleep(4_000)
  stopped.abort()
  await Promise.all(workers)
  await sampling

  const failures = outcomes.filter((o) => o.status !== 200)
  t.same(failures.slice(0, 10), [], `every request answered 200 (${outcomes.length} requests, ${failures.length} not 200)`)
  for (const slug of [...busy.default, ...busy.east]) {
    t.ok(outcomes.filter((o) => o.slug === slug && o.status === 200).length >= 5, `${slug} was served (${outcomes.filter((o) => o.slug === slug).length} requests)`)
  }
  const maxSuite = Math.max(...samples.map((s) => s.suite))
  const maxEast = Math.max(...samples.map((s) => s.east))
  const together = samples.filter((s) => s.suite > 0 && s.east > 0).length
  const maxTotal = Math.max(...samples.map((s) => s.suite + s.east))
  t.ok(samples.length >= 20, `sampled often enough (${samples.length} samples)`)
  t.ok(maxSuite <= 2, `connections on the suite server never exceeded 2 (max ${maxSuite})`)
  t.ok(maxEast <= 2, `connections on east never exceeded 2 (max ${maxEast})`)
  t.ok(together >= 5, `both servers had connections at once in ${together} of ${samples.length} samples`)
  t.ok(maxTotal > 2, `the bound is per server, not shared: up to ${maxTotal} connections over both at once`)
  const eastMs = outcomes.filter((o) => busy.east.includes(o.slug)).map((o) => o.ms).sort((a, b) => a - b)
  const suiteMs = outcomes.filter((o) => busy.default.includes(o.slug)).map((o) => o.ms).sort((a, b) => a - b)
  const pct = (ms: number[], p: number): number => ms[Math.min(ms.length - 1, Math.floor(ms.length * p))] ?? -1
  t.comment(`default: ${suiteMs.length} requests, p50 ${pct(suiteMs, 0.5)} ms, p99 ${pct(suiteMs, 0.99)} ms; ` +
    `east: ${eastMs.length} requests, p50 ${pct(eastMs, 0.5)} ms, p99 ${pct(eastMs, 0.99)} ms; evictions ${app.app.tenancy.pools.stats().evictions}`)
})
