import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { createSchoolDirectory } from '../../src/tenancy/school-directory.js'
import { createTenantPools, type TenantPools } from '../../src/tenancy/tenant-pools.js'
import { testApp } from '../helpers/app.js'
import { testDatabases, testServerUrl, type TestDatabases } from '../helpers/databases.js'
import { sleep } from '../helpers/timing.js'

const APP_NAME = 'pools-test'

async function createDatabases (dbs: TestDatabases, slugs: string[]): Promise<void> {
  for (const slug of slugs) await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName(slug)}`)
}

function poolsFor (dbs: TestDatabases, maxPools: number, poolSize: number): TenantPools {
  return createTenantPools({
    maxPools,
    createKnex: (target) => createKnex(target.url, { max: poolSize, applicationName: APP_NAME })
  })
}

const target = (dbs: TestDatabases, slug: string): { key: string, server: string, url: string } =>
  ({ key: `default/${dbs.databaseName(slug)}`, server: 'default', url: databaseUrl(dbs.serverUrl, dbs.databaseName(slug)) })

/** Connections to this test's school databases only; other files share the server. */
async function openConnections (admin: Knex, applicationName: string, prefix: string): Promise<number> {
  const { rows } = await admin.raw<{ rows: Array<{ n: string }> }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ? AND datname LIKE ? ESCAPE '!'", [applicationName, `${prefix}!_%`])
  return Number(rows[0]?.n ?? 0)
}

t.test('concurrent first requests for one school create exactly one pool', async (t) => {
  const dbs = await testDatabases(t, 'poolone')
  await createDatabases(dbs, ['a'])
  const pools = poolsFor(dbs, 5, 2)
  t.teardown(async () => { await pools.close() })

  const leases = await Promise.all(Array.from({ length: 25 }, async () => await pools.acquire(target(dbs, 'a'))))
  t.equal(new Set(leases.map((l) => l.db)).size, 1, 'all 25 got the same Knex')
  t.match(pools.stats(), { open: 1, misses: 1, hits: 0 })
  const results = await Promise.all(leases.map(async (l) => (await l.db.raw('SELECT 1 AS one')).rows[0].one))
  t.same(new Set(results), new Set([1]))
  t.ok(pools.stats().connectionsOpened >= 1 && pools.stats().connectionsOpened <= 2, 'one pool opened at most its two connections')
  for (const l of leases) l.release()
  await pools.acquire(target(dbs, 'a')).then((l) => l.release())
  t.match(pools.stats(), { open: 1, misses: 1, hits: 1 }, 'the next request is a hit')
})

t.test('a newcomer replaces the least used idle pool, not the least recent; counts age', async (t) => {
  const dbs = await testDatabases(t, 'poollfu')
  await createDatabases(dbs, ['hot', 'cold', 'n1', 'n2', 'n3'])
  const pools = createTenantPools({
    maxPools: 2,
    agingPeriod: 8,
    createKnex: (target) => createKnex(target.url, { max: 1, applicationName: APP_NAME })
  })
  t.teardown(async () => { await pools.close() })
  const use = async (slug: string): Promise<boolean> => {
    const before = pools.stats().misses
    const lease = await pools.acquire(target(dbs, slug))
    await lease.db.raw('SELECT 1')
    lease.release()
    return pools.stats().misses > before
  }
  for (let i = 0; i < 6; i++) await use('hot')
  await use('cold')
  // `hot` is now the least recent of the two, but by far the more used.
  t.equal(await use('n1'), true, 'a newcomer opens a pool')
  t.equal(await use('hot'), false, 'hot kept its pool')
  t.equal(await use('cold'), true, 'cold, used once, was the one closed')

  // Newcomers that each come once replace one another, while `hot`, idle
  // from now on, loses half its count every 8 acquires and then its place.
  let newcomerMisses = 0
  for (let i = 0; i < 40; i++) if (await use(['n2', 'n3', 'n1'][i % 3] ?? 'n1')) newcomerMisses++
  t.equal(newcomerMisses, 40, 'each newcomer had to open a pool: they replaced one another or hot')
  t.equal(await use('hot'), true, 'quiet for 40 acquires, hot lost its pool')
})

t.test('connectionsOpened counts every new backend, across pools', async (t) => {
  const dbs = await testDatabases(t, 'poolopened')
  await createDatabases(dbs, ['a', 'b'])
  const pools = poolsFor(dbs, 2, 2)
  t.teardown(async () => { await pools.close() })
  t.equal(pools.stats().connectionsOpened, 0)
  for (const slug of ['a', 'b', 'a']) {
    const lease = await pools.acquire(target(dbs, slug))
    await lease.db.raw('SELECT 1')
    lease.release()
  }
  t.equal(pools.stats().connectionsOpened, 2, 'one per pool: the third request reused a connection')
  const lease = await pools.acquire(target(dbs, 'a'))
  // Two queries at once on one pool need its second connection.
  await Promise.all([lease.db.raw('SELECT pg_sleep(0.1)'), lease.db.raw('SELECT pg_sleep(0.1)')])
  lease.release()
  t.equal(pools.stats().connectionsOpened, 3)
})

t.test('an evicted pool serves its in-flight request to the end, then closes', async (t) => {
  const dbs = await testDatabases(t, 'poolevict')
  await createDatabases(dbs, ['a', 'b', 'c'])
  const pools = poolsFor(dbs, 2, 2)
  t.teardown(async () => { await pools.close() })

  const a = await pools.acquire(target(dbs, 'a'))
  const b = await pools.acquire(target(dbs, 'b'))
  // A request on `a` with two queries in a row, the first one slow.
  const requestOnA = (async () => {
    await a.db.raw('SELECT pg_sleep(0.4)')
    return (await a.db.raw('SELECT 2 AS two')).rows[0].two as number
  })()
  b.release()
  // `c` needs a slot: idle `b` goes first, busy `a` stays.
  const c = await pools.acquire(target(dbs, 'c'))
  t.match(pools.stats(), { open: 2, evictions: 1 }, 'the idle pool was evicted, not the busy one')

  // Now `d` arrives while `a` and `c` are both busy: `a` (least recent) is retired.
  const cQuery = c.db.raw('SELECT pg_sleep(0.6)')
  await createDatabases(dbs, ['d'])
  const dPromise = pools.acquire(target(dbs, 'd'))
  await sleep(50)
  t.match(pools.stats(), { retiring: 1, evictions: 2 }, 'the busy pool is retiring, not destroyed')
  t.equal(await requestOnA, 2, 'both queries of the in-flight request succeed after its pool was evicted')
  a.release()
  const d = await dPromise
  t.equal((await d.db.raw('SELECT 3 AS three')).rows[0].three, 3)
  await cQuery
  c.release()
  d.release()
  t.match(pools.stats(), { retiring: 0, open: 2 })
})

t.test('open connections never exceed TENANT_POOLS_MAX x TENANT_POOL_SIZE under many schools', async (t) => {
  const slugs = Array.from({ length: 12 }, (_, i) => `s${i}`)
  const { app, dbs, auth } = await testApp(t, 'poolbound', {
    schools: slugs,
    env: { TENANT_POOLS_MAX: '3', TENANT_POOL_SIZE: '2' }
  })
  // Create one week per school so each request runs real queries.
  for (const slug of slugs) {
    const res = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth(slug), payload: { weekOf: '2026-11-23' } })
    t.equal(res.statusCode, 201)
  }

  let peak = 0
  const stopped = new AbortController()
  const sampler = (async () => {
    while (!stopped.signal.aborted) {
      peak = Math.max(peak, await openConnections(dbs.admin, 'school-lunch:api', 'poolbound'))
      await sleep(5)
    }
  })()
  const statuses = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
    const slug = slugs[(i * 7) % slugs.length] as string
    const res = await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })
    const weeks = res.json() as Array<{ weekOf: string }>
    return res.statusCode === 200 && weeks.length === 1 ? 'ok' : `${res.statusCode} ${res.body}`
  }))
  stopped.abort()
  await sampler

  t.same(statuses.filter((s) => s !== 'ok'), [], 'every request succeeded')
  t.ok(peak > 0, `connections were sampled (peak ${peak})`)
  t.ok(peak <= 6, `peak ${peak} connections <= 3 pools x 2`)
  const stats = app.tenancy.pools.stats()
  t.ok(stats.open <= 3, 'at most 3 pools open')
  t.ok(stats.evictions > 0, 'pools were evicted to stay within the bound')
})

t.test('catalog lookups: concurrent misses make one query, unknown slugs are cached, TTL expires', async (t) => {
  const dbs = await testDatabases(t, 'poolcat')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 2)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert({ slug: 'pine', name: 'Pine', database_name: 'poolcat_pine' })
  let queries = 0
  catalog.on('query', () => { queries++ })

  const directory = createSchoolDirectory({ catalog, ttlMs: 300, unknownTtlMs: 150 })
  const found = await Promise.all(Array.from({ length: 20 }, async () => await directory.resolve('pine')))
  t.equal(queries, 1, '20 concurrent lookups, one catalog query')
  t.ok(found.every((s) => s?.slug === 'pine' && s.databaseName === 'poolcat_pine'))

  await Promise.all(Array.from({ length: 10 }, async () => await directory.resolve('forged')))
  await directory.resolve('forged')
  t.equal(queries, 2, 'an unknown slug is asked once, then remembered')
  t.equal(await directory.resolve('forged'), null)

  await sleep(200)
  await directory.resolve('forged')
  t.equal(queries, 3, 'unknown slugs are remembered only briefly')
  await directory.resolve('pine')
  t.equal(queries, 3, 'a known school is still cached')

  await catalog('schools').where({ slug: 'pine' }).update({ status: 'suspended' })
  queries = 0
  await sleep(350)
  t.equal((await directory.resolve('pine'))?.status, 'suspended', 'a change shows once the TTL has passed')
  t.equal(queries, 1)
  t.match(directory.stats(), { entries: 2 })
})

t.test('an unreachable catalog is a 503 CATALOG_UNAVAILABLE, not a hang', async (t) => {
  const dead = openCatalog('postgres://postgres:postgres@127.0.0.1:1/catalog', 1)
  t.teardown(async () => { await dead.destroy() })
  const directory = createSchoolDirectory({ catalog: dead, ttlMs: 1000 })
  const started = Date.now()
  await t.rejects(directory.resolve('pine'), { code: 'CATALOG_UNAVAILABLE', statusCode: 503 })
  t.ok(Date.now() - started < 2000, 'fails fast')
})

t.test('a school on an unreachable server gets a fast 503; other schools are untouched', async (t) => {
  // "dead" is a server nobody listens on.
  const serverUrl = await testServerUrl()
  const { app, dbs, auth } = await testApp(t, 'pooldead', {
    schools: ['healthy'],
    env: { TENANT_SERVERS: `default=${serverUrl},dead=postgres://postgres:postgres@127.0.0.1:1` }
  })
  const catalog = openCatalog(dbs.catalogUrl, 1)
  await catalog('schools').insert({ slug: 'faraway', name: 'Far Away', database_name: 'pooldead_faraway', server: 'dead' })
  await catalog.destroy()

  const ask = async (slug: string): Promise<{ slug: string, status: number, code: string, ms: number, retryAfter: unknown }> => {
    const started = Date.now()
    const res = await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })
    return { slug, status: res.statusCode, code: res.statusCode === 200 ? '' : res.json().code, ms: Date.now() - started, retryAfter: res.headers['retry-after'] }
  }
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await ask(i % 2 === 0 ? 'faraway' : 'healthy')))
  const far = results.filter((r) => r.slug === 'faraway')
  t.same(far.map((r) => [r.status, r.code, r.retryAfter]), Array(10).fill([503, 'SCHOOL_DATABASE_UNAVAILABLE', '5']),
    'the unreachable school gets 503 with Retry-After')
  t.ok(far.every((r) => r.ms < 2000), `every 503 in under 2 s (slowest ${Math.max(...far.map((r) => r.ms))} ms)`)
  t.same(results.filter((r) => r.slug === 'healthy').map((r) => r.status), Array(10).fill(200), 'the healthy school kept answering 200')
})

t.test('every pool is closed when the app closes', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'poolclose', { schools: ['x1', 'x2'] })
  for (const slug of ['x1', 'x2']) t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })).statusCode, 200)
  t.ok(await openConnections(dbs.admin, 'school-lunch:api', 'poolclose') >= 2, 'connections were open')
  await app.close()
  t.equal(await openConnections(dbs.admin, 'school-lunch:api', 'poolclose'), 0, 'none left after close')
})
