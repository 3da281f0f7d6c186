import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { databaseUrl, openConnection } from '../../src/postgres/connection.js'
import { createSchoolDirectory } from '../../src/tenancy/school-directory.js'
import { createTenantPools, type TenantPools, type TenantPoolsOptions } from '../../src/tenancy/tenant-pools.js'
import { testApp } from '../helpers/app.js'
import { testDatabases, testServerUrl, type TestDatabases } from '../helpers/databases.js'
import { sleep, waitFor } from '../helpers/timing.js'

const APP_NAME = 'pools-test'

async function createDatabases (dbs: TestDatabases, slugs: string[]): Promise<void> {
  for (const slug of slugs) await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName(slug)}`)
}

function poolsFor (budget: number, poolSize: number, extra: Partial<TenantPoolsOptions> = {}): TenantPools {
  return createTenantPools({
    budgetOf: () => budget,
    poolSize,
    connect: async (target) => await openConnection(target.url, { applicationName: APP_NAME, connectTimeoutMillis: 5_000 }),
    ...extra
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

async function query (pools: TenantPools, dbs: TestDatabases, slug: string, sql = 'SELECT 1'): Promise<void> {
  const lease = await pools.acquire(target(dbs, slug))
  try {
    await lease.db.raw(sql)
  } finally {
    lease.release()
  }
}

t.test('concurrent first requests for one school create exactly one pool', async (t) => {
  const dbs = await testDatabases(t, 'poolone')
  await createDatabases(dbs, ['a'])
  const pools = poolsFor(5, 2)
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

t.test('a newcomer takes the connection of the least used idle school, not the least recent; counts age', async (t) => {
  const dbs = await testDatabases(t, 'poollfu')
  await createDatabases(dbs, ['hot', 'cold', 'n1', 'n2', 'n3'])
  const pools = poolsFor(2, 1, { agingPeriod: 8 })
  t.teardown(async () => { await pools.close() })
  const use = async (slug: string): Promise<boolean> => {
    const before = pools.stats().misses
    await query(pools, dbs, slug)
    return pools.stats().misses > before
  }
  for (let i = 0; i < 6; i++) await use('hot')
  await use('cold')
  // `hot` is now the least recent of the two, but by far the more used.
  t.equal(await use('n1'), true, 'a newcomer opens a pool')
  t.equal(await use('hot'), false, 'hot kept its connection')
  t.equal(await use('cold'), true, 'cold, used once, was the one closed')

  // Newcomers that each come once replace one another, while `hot`, idle
  // from now on, loses half its count every 8 acquires and then its place.
  let newcomerMisses = 0
  for (let i = 0; i < 40; i++) if (await use(['n2', 'n3', 'n1'][i % 3] ?? 'n1')) newcomerMisses++
  t.equal(newcomerMisses, 40, 'each newcomer had to open a pool: they replaced one another or hot')
  t.equal(await use('hot'), true, 'quiet for 40 acquires, hot lost its connection')
  t.equal(pools.stats().servers[0]?.evictions, pools.stats().misses - 2, 'every miss past the first two took an idle school\'s connection')
})

t.test('connectionsOpened counts every new backend, across pools', async (t) => {
  const dbs = await testDatabases(t, 'poolopened')
  await createDatabases(dbs, ['a', 'b'])
  const pools = poolsFor(4, 2)
  t.teardown(async () => { await pools.close() })
  t.equal(pools.stats().connectionsOpened, 0)
  for (const slug of ['a', 'b', 'a']) await query(pools, dbs, slug)
  t.equal(pools.stats().connectionsOpened, 2, 'one per pool: the third request reused a connection')
  const lease = await pools.acquire(target(dbs, 'a'))
  // Two queries at once on one pool need its second connection.
  await Promise.all([lease.db.raw('SELECT pg_sleep(0.1)'), lease.db.raw('SELECT pg_sleep(0.1)')])
  lease.release()
  t.equal(pools.stats().connectionsOpened, 3)
})

t.test('a pool grows while its requests queue and the budget has room, and shrinks when idle', async (t) => {
  const dbs = await testDatabases(t, 'poolgrow')
  await createDatabases(dbs, ['a', 'b'])
  let clock = 0
  const pools = poolsFor(4, 3, { now: () => clock, extraIdleMs: 1_000, idleTimeoutMs: 60_000, sweepIntervalMs: 5 })
  t.teardown(async () => { await pools.close() })

  await query(pools, dbs, 'a')
  t.equal(await openConnections(dbs.admin, APP_NAME, 'poolgrow'), 1, 'a pool starts with one connection')
  await Promise.all(Array.from({ length: 5 }, async () => await query(pools, dbs, 'a', 'SELECT pg_sleep(0.2)')))
  t.match(pools.stats().servers, [{ growths: 2, shrinks: 0 }], 'five queued queries grew it to TENANT_POOL_SIZE (3), no further')
  t.equal(await openConnections(dbs.admin, APP_NAME, 'poolgrow'), 3)

  // b's first connection and a second one: the budget of 4 is then full.
  await Promise.all(Array.from({ length: 2 }, async () => await query(pools, dbs, 'b', 'SELECT pg_sleep(0.2)')))
  t.equal(pools.stats().servers[0]?.connectionsHeld, 4, 'the budget is full: a 3, b 1')
  t.match(pools.stats().servers, [{ growths: 2 }], 'b queued, but could not grow past the budget')

  clock += 1_001
  await waitFor('the extra connections to close', 10_000, () => pools.stats().servers[0]?.shrinks === 2, 5)
  await waitFor('PostgreSQL to let them go', 10_000, async () => await openConnections(dbs.admin, APP_NAME, 'poolgrow') === 2, 5)
  t.pass('unused past extraIdleMs, a\'s two extra connections closed; each school keeps its last one')

  clock += 60_000
  await waitFor('the idle pools to close', 10_000, () => pools.stats().open === 0 && pools.stats().retiring === 0 && pools.stats().servers[0]?.connectionsHeld === 0, 5)
  t.equal(await openConnections(dbs.admin, APP_NAME, 'poolgrow'), 0, 'unused past idleTimeoutMs, the last connections close too')
})

t.test('a busy school is never taken from: the newcomer waits for an idle one, or gets a 503', async (t) => {
  const dbs = await testDatabases(t, 'poolbusy')
  await createDatabases(dbs, ['a', 'b', 'c'])
  const pools = poolsFor(2, 1, { slotTimeoutMs: 300 })
  t.teardown(async () => { await pools.close() })

  const a = await pools.acquire(target(dbs, 'a'))
  const b = await pools.acquire(target(dbs, 'b'))
  // A request on `a` with two queries in a row, the first one slow.
  const requestOnA = (async () => {
    await a.db.raw('SELECT pg_sleep(0.2)')
    return (await a.db.raw('SELECT 2 AS two')).rows[0].two as number
  })()
  await b.db.raw('SELECT 1')
  await t.rejects(query(pools, dbs, 'c'), { code: 'TENANT_POOLS_EXHAUSTED', statusCode: 503 },
    'with both schools busy past the slot timeout, the newcomer gets a 503')
  t.match(pools.stats(), { evictions: 0, servers: [{ connectionsHeld: 2 }] }, 'and neither busy school lost its connection')

  const c = pools.acquire(target(dbs, 'c'))
  const cQuery = c.then(async (lease) => (await lease.db.raw('SELECT 3 AS three')).rows[0].three as number)
  await waitFor('c to wait for a slot', 10_000, () => pools.stats().servers[0]?.slotWaits === 2, 5)
  b.release()
  t.equal(await cQuery, 3, 'once b is idle, the newcomer gets its slot')
  t.match(pools.stats(), { evictions: 1 }, 'b was taken from; a, still busy, was not')
  t.equal(await requestOnA, 2, 'both queries of the request on a succeeded')
  a.release()
  ;(await c).release()
})

t.test('the budget is never exceeded: many schools, a small budget, concurrent first requests', async (t) => {
  const slugs = Array.from({ length: 12 }, (_, i) => `s${i}`)
  const { app, dbs, auth } = await testApp(t, 'poolbound', {
    schools: slugs,
    env: { TENANT_CONNECTIONS_MAX: '5', TENANT_POOL_SIZE: '2' }
  })
  // Create one week per school so each request runs real queries.
  for (const slug of slugs) {
    const res = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth(slug), payload: { weekOf: '2026-11-23' } })
    t.equal(res.statusCode, 201)
  }
  // Every pool closed, so the requests below are all first requests.
  for (const slug of slugs) app.tenancy.pools.drop(`default/${dbs.databaseName(slug)}`)
  await waitFor('every pool to close', 10_000, () => app.tenancy.pools.stats().servers[0]?.connectionsHeld === 0, 5)

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
  t.ok(peak <= 5, `peak ${peak} connections <= TENANT_CONNECTIONS_MAX (5)`)
  const stats = app.tenancy.pools.stats()
  t.ok(stats.servers[0]!.connectionsHeld <= 5, 'the budget counts no more than 5')
  t.ok(stats.evictions > 0, 'idle schools gave their connection to others')
  t.ok(stats.servers[0]!.slotWaits > 0, 'and first requests waited for a slot')
})

t.test('closing hundreds of open pools closes every connection at once', async (t) => {
  const dbs = await testDatabases(t, 'poolmany')
  await createDatabases(dbs, ['a'])
  const pools = poolsFor(200, 1)
  // 300 pools under distinct keys, all on one database: the pools do not care.
  const targets = Array.from({ length: 200 }, (_, i) => ({ ...target(dbs, 'a'), key: `default/many-${i}` }))
  for (let i = 0; i < targets.length; i += 30) {
    await Promise.all(targets.slice(i, i + 30).map(async (each) => {
      const lease = await pools.acquire(each)
      await lease.db.raw('SELECT 1')
      lease.release()
    }))
  }
  t.equal(await openConnections(dbs.admin, APP_NAME, 'poolmany'), 200, '200 pools, a connection each')
  await pools.close()
  t.equal(await openConnections(dbs.admin, APP_NAME, 'poolmany'), 0, 'none left once close() resolves')
  t.match(pools.stats(), { open: 0, retiring: 0, servers: [{ connectionsHeld: 0 }] })
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
