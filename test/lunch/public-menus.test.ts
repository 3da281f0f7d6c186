import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Knex } from 'knex'
import { buildApp, type AppOptions } from '../../src/app.js'
import { openCatalog } from '../../src/catalog/catalog.js'
import { forEachSchool } from '../../src/fleet/for-each-school.js'
import { quoteIdentifier } from '../../src/postgres/names.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { withDatabase } from '../helpers/databases.js'

/*
 * The public menus come from the catalog's copy (design A of issue 15):
 * anonymous reads never reach a school database, repeats are answered from
 * the process's cache, bad weeks and noisy addresses are refused before any
 * lookup, and a copy that could not be written is repaired and never served
 * past the stale bound.
 */

interface Day { id: string, day: string, menuDetails: string }
interface Week { id: string, weekOf: string, isPublished: boolean, days: Day[] }

const DAY_MS = 86_400_000

/** The Monday `weeks` weeks from this one: tests stay inside the public window whenever they run. */
function monday (weeks: number): string {
  const now = new Date()
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  const thisMonday = today - ((now.getUTCDay() + 6) % 7) * DAY_MS
  return new Date(thisMonday + weeks * 7 * DAY_MS).toISOString().slice(0, 10)
}

const publicUrl = (slug: string, weekOf: string): string => `/api/public/schools/${slug}/lunch-weeks/${weekOf}`

async function staff (ctx: TestApp, slug: string, method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object): Promise<LightMyRequestResponse> {
  return await ctx.app.inject({ method, url, headers: ctx.auth(slug), ...(payload === undefined ? {} : { payload }) })
}

/** A week created, its Monday's menu set, and published, through the staff API. */
async function publishedWeek (ctx: TestApp, slug: string, weekOf: string, menu: string): Promise<Week> {
  const created = await staff(ctx, slug, 'POST', '/api/lunch-weeks', { weekOf })
  if (created.statusCode !== 201) throw new Error(`create failed: ${created.body}`)
  const week = created.json<Week>()
  await setMenu(ctx, slug, week, menu)
  const published = await staff(ctx, slug, 'PATCH', `/api/lunch-weeks/${week.id}`, { isPublished: true })
  if (published.statusCode !== 200) throw new Error(`publish failed: ${published.body}`)
  return week
}

async function setMenu (ctx: TestApp, slug: string, week: Week, menu: string): Promise<LightMyRequestResponse> {
  return await staff(ctx, slug, 'PATCH', `/api/lunch-weeks/${week.id}/days/${week.days[0]?.id ?? 0}`, { menuDetails: menu })
}

/** What the public page shows: the Monday's menu, or the error code. */
async function shown (app: FastifyInstance, slug: string, weekOf: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url: publicUrl(slug, weekOf) })
  return res.statusCode === 200 ? `200 ${res.json<Week>().days[0]?.menuDetails ?? ''}` : `${res.statusCode} ${res.json<{ code: string }>().code}`
}

async function metrics (app: FastifyInstance): Promise<Record<string, number>> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return Object.fromEntries(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const [name = '', value] = l.split(' ')
    return [name, Number(value)]
  }))
}

/** A second API process on the same databases: no pools, no cache of its own yet. */
async function anotherProcess (t: Test, ctx: TestApp, publicMenus?: AppOptions['publicMenus']): Promise<FastifyInstance> {
  const app = await buildApp({ config: ctx.dbs.config(), catalogUrl: ctx.dbs.catalogUrl, servers: ctx.dbs.topology.servers, logger: false, publicMenus })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

/** Backends now connected to this test's school databases, by pid. */
async function schoolBackends (ctx: TestApp, slugs: string[]): Promise<Set<number>> {
  const { rows } = await ctx.dbs.admin.raw<{ rows: Array<{ pid: number }> }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = ANY(?)', [slugs.map((slug) => ctx.dbs.databaseName(slug))])
  return new Set(rows.map((row) => row.pid))
}

async function withCatalog<T> (ctx: TestApp, fn: (catalog: Knex) => Promise<T>): Promise<T> {
  const catalog = openCatalog(ctx.dbs.catalogUrl, 1)
  try {
    return await fn(catalog)
  } finally {
    await catalog.destroy()
  }
}

async function pendingNotes (ctx: TestApp): Promise<number> {
  return await withCatalog(ctx, async (catalog) => Number((await catalog('public_lunch_pending').count<Array<{ count: string }>>({ count: '*' }))[0]?.count))
}

/** Makes writes to one catalog table fail until told otherwise: a real failure of the second write. */
async function breakable (t: Test, ctx: TestApp, table: 'public_lunch_weeks' | 'public_lunch_pending'): Promise<(broken: boolean) => Promise<void>> {
  await withCatalog(ctx, async (catalog) => {
    await catalog.raw('CREATE TABLE IF NOT EXISTS test_broken (name text PRIMARY KEY)')
    await catalog.raw(`CREATE OR REPLACE FUNCTION test_fail_when_broken() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM test_broken WHERE name = TG_TABLE_NAME) THEN RAISE EXCEPTION 'injected failure on %', TG_TABLE_NAME; END IF;
        RETURN COALESCE(NEW, OLD);
      END $$`)
    await catalog.raw(`CREATE TRIGGER test_fail_when_broken BEFORE INSERT OR UPDATE OR DELETE ON ${quoteIdentifier(table)}
      FOR EACH ROW EXECUTE FUNCTION test_fail_when_broken()`)
  })
  return async (broken) => {
    await withCatalog(ctx, async (catalog) => {
      if (broken) await catalog('test_broken').insert({ name: table }).onConflict('name').ignore()
      else await catalog('test_broken').where({ name: table }).delete()
    })
  }
}

t.test('an anonymous scan across every school touches no school database', async (t) => {
  const slugs = Array.from({ length: 10 }, (_, i) => `s${i}`)
  const ctx = await testApp(t, 'pubscan', { schools: slugs })
  for (const slug of slugs.slice(0, 5)) await publishedWeek(ctx, slug, monday(1), `Soup of ${slug}`)

  // A fresh process, as an attacker would meet it: no pool open, nothing cached.
  const app = await anotherProcess(t, ctx)
  const before = await schoolBackends(ctx, slugs)
  const answers = new Map<string, number>()
  const urls: string[] = []
  for (const slug of [...slugs, 'nowhere-1', 'nowhere-2']) {
    for (let week = -20; week <= 20; week++) urls.push(publicUrl(slug, monday(week)))
  }
  for (const url of urls) {
    const res = await app.inject({ method: 'GET', url })
    const key = res.statusCode === 200 ? '200' : `${res.statusCode} ${res.json<{ code: string }>().code}`
    answers.set(key, (answers.get(key) ?? 0) + 1)
  }
  t.same(Object.fromEntries(answers), {
    200: 5,
    '404 PUBLISHED_WEEK_NOT_FOUND': 10 * 41 - 5,
    '404 SCHOOL_NOT_FOUND': 2 * 41
  }, 'every answer is right')

  const after = await schoolBackends(ctx, slugs)
  t.same([...after].filter((pid) => !before.has(pid)), [], 'no new backend in any school database (pg_stat_activity)')
  const figures = await metrics(app)
  t.equal(figures.tenant_connections_opened_total, 0, 'the process opened no school connection')
  t.equal(figures.tenant_pool_misses_total, 0, 'nor asked for a pool')
  t.equal(figures.public_school_connections_opened_total, 0, 'nor did its public menus')
  t.equal(figures.public_cache_misses_total, 10 + 5, 'the catalog was asked once per school for its weeks, and once per published week')
  t.equal(figures.public_cache_hits_total, 10 * 41 - 15, 'every other read of a known school was answered from the cache')
})

t.test('public menus stay up while the school\'s database is down', async (t) => {
  const ctx = await testApp(t, 'pubdown', { schools: ['alpha'] })
  await publishedWeek(ctx, 'alpha', monday(1), 'Lentil stew')
  // Gone from under the API (the name keeps the prefix, so the test's cleanup still finds it).
  await ctx.dbs.admin.raw('SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = ?', [ctx.dbs.databaseName('alpha')])
  await ctx.dbs.admin.raw(`ALTER DATABASE ${quoteIdentifier(ctx.dbs.databaseName('alpha'))} RENAME TO ${quoteIdentifier(ctx.dbs.databaseName('alpha_away'))}`)

  const other = await anotherProcess(t, ctx)
  const staffRead = await other.inject({ method: 'GET', url: '/api/lunch-weeks', headers: ctx.auth('alpha') })
  t.equal(staffRead.statusCode, 503, 'staff cannot reach the school')
  t.equal(await shown(other, 'alpha', monday(1)), '200 Lentil stew', 'the public page still shows the menu')
  t.equal(await shown(other, 'alpha', monday(2)), '404 PUBLISHED_WEEK_NOT_FOUND', 'and knows what is not published')
})

t.test('repeated public reads inside max-age do not reach the database', async (t) => {
  const ctx = await testApp(t, 'pubcache', { schools: ['alpha'] })
  const week = await publishedWeek(ctx, 'alpha', monday(1), 'Fish pie')
  const { app } = ctx
  const first = await app.inject({ method: 'GET', url: publicUrl('alpha', monday(1)) })
  t.equal(first.statusCode, 200)
  t.equal(first.headers['cache-control'], 'public, max-age=60')
  t.equal(await shown(app, 'alpha', monday(2)), '404 PUBLISHED_WEEK_NOT_FOUND')
  const before = await metrics(app)

  // Changed behind the API's back: a read that reached the catalog would see it.
  await withCatalog(ctx, async (catalog) => {
    await catalog('public_lunch_weeks').update({ week: catalog.raw("jsonb_set(week, '{days,0,menuDetails}', '\"changed\"')") })
    await catalog('public_lunch_weeks').insert({ school_id: 1, week_of: monday(2), week: { ...week, weekOf: monday(2), isPublished: true } })
  })
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ method: 'GET', url: publicUrl('alpha', monday(1)) })
    t.equal(res.body, first.body, `read ${i + 1}: the cached week`)
    t.equal(res.headers.etag, first.headers.etag)
    t.equal(await shown(app, 'alpha', monday(2)), '404 PUBLISHED_WEEK_NOT_FOUND', `read ${i + 1}: the cached 404`)
  }
  const after = await metrics(app)
  t.equal(after.public_cache_misses_total, before.public_cache_misses_total, 'no miss')
  t.equal((after.public_cache_hits_total ?? 0) - (before.public_cache_hits_total ?? 0), 40, 'forty hits')
  t.equal(after.catalog_cache_misses_total, before.catalog_cache_misses_total, 'no catalog lookup either')

  const other = await anotherProcess(t, ctx)
  t.equal(await shown(other, 'alpha', monday(1)), '200 changed', 'a process without the cache does read the catalog')
})

t.test('a copy written while ids were JSON numbers is served with string ids', async (t) => {
  const ctx = await testApp(t, 'pubids', { schools: ['alpha'] })
  const week = await publishedWeek(ctx, 'alpha', monday(1), 'Bean chili')
  // What a copy looked like before ids were strings: the week's and the days' ids as numbers.
  await withCatalog(ctx, async (catalog) => {
    await catalog('public_lunch_weeks').update({
      week: catalog.raw(`jsonb_set(week, '{id}', to_jsonb((week->>'id')::bigint)) || jsonb_build_object('days',
        (SELECT jsonb_agg(jsonb_set(d, '{id}', to_jsonb((d->>'id')::bigint)) ORDER BY n) FROM jsonb_array_elements(week->'days') WITH ORDINALITY AS x(d, n)))`)
    })
    const [row] = await catalog('public_lunch_weeks').select(catalog.raw("jsonb_typeof(week->'id') AS type"))
    t.equal((row as { type: string }).type, 'number', 'the copy holds a numeric id')
  })
  const res = await (await anotherProcess(t, ctx)).inject({ method: 'GET', url: publicUrl('alpha', monday(1)) })
  t.equal(res.statusCode, 200)
  const shownWeek = res.json<Week>()
  t.equal(shownWeek.id, week.id, 'the week id as a string')
  t.same(shownWeek.days.map((d) => d.id), week.days.map((d) => d.id), 'the day ids as strings')
})

t.test('concurrent edits of published weeks, one connection to each database: no write waits on another', async (t) => {
  // A copy must not hold the catalog's only connection while it waits for
  // the school's, which a write holds while it waits for the catalog's.
  const ctx = await testApp(t, 'pubwait', { schools: ['alpha'], env: { CATALOG_POOL_SIZE: '1', TENANT_POOL_SIZE: '1' } })
  const weeks = [await publishedWeek(ctx, 'alpha', monday(1), 'One'), await publishedWeek(ctx, 'alpha', monday(2), 'Two')]
  const answers: string[] = []
  for (let round = 0; round < 5; round++) {
    const edits = await Promise.all(weeks.map(async (week) => await setMenu(ctx, 'alpha', week, `Round ${round}`)))
    answers.push(...edits.map((res) => res.statusCode === 200 ? '200' : `${res.statusCode} ${res.json<{ code: string }>().code}`))
  }
  t.same([...new Set(answers)], ['200'], 'every edit answered 200')
  t.equal((await metrics(ctx.app)).public_copy_failures_total, 0, 'every copy was written before its edit answered, none left to the repairer')
  t.equal(await shown(ctx.app, 'alpha', monday(2)), '200 Round 4', 'the public page shows the last edit')
})

t.test('publish, edit, unpublish and delete show up on the public page, here and in another process', async (t) => {
  const ctx = await testApp(t, 'pubflow', { schools: ['alpha', 'beta'] })
  const { app } = ctx
  const other = await anotherProcess(t, ctx)
  const weekOf = monday(2)
  const both = async (): Promise<[string, string]> => [await shown(app, 'alpha', weekOf), await shown(other, 'alpha', weekOf)]

  const created = await staff(ctx, 'alpha', 'POST', '/api/lunch-weeks', { weekOf })
  const week = created.json<Week>()
  await setMenu(ctx, 'alpha', week, 'Draft curry')
  t.same(await both(), ['404 PUBLISHED_WEEK_NOT_FOUND', '404 PUBLISHED_WEEK_NOT_FOUND'], 'a draft is not public')
  t.equal(await pendingNotes(ctx), 0, 'editing a draft leaves nothing to copy')

  t.equal((await staff(ctx, 'alpha', 'PATCH', `/api/lunch-weeks/${week.id}`, { isPublished: true })).statusCode, 200)
  t.equal(await shown(app, 'alpha', weekOf), '200 Draft curry', 'published: shown at once by the writing process')
  // The other process cached its 404 for max-age; a process that has not cached it sees the copy.
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '200 Draft curry', 'and by any process reading the catalog')
  t.equal(await shown(app, 'beta', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND', 'beta publishes nothing of alpha\'s')

  t.equal((await setMenu(ctx, 'alpha', week, 'Green curry')).statusCode, 200)
  t.equal(await shown(app, 'alpha', weekOf), '200 Green curry', 'an edit of a published day shows')
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '200 Green curry')

  t.equal((await staff(ctx, 'alpha', 'PATCH', `/api/lunch-weeks/${week.id}`, { isPublished: false })).statusCode, 200)
  t.equal(await shown(app, 'alpha', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND', 'unpublished: gone')
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND')

  t.equal((await staff(ctx, 'alpha', 'PATCH', `/api/lunch-weeks/${week.id}`, { isPublished: true })).statusCode, 200)
  t.equal(await shown(app, 'alpha', weekOf), '200 Green curry', 'published again')
  t.equal((await staff(ctx, 'alpha', 'DELETE', `/api/lunch-weeks/${week.id}`)).statusCode, 204)
  t.equal(await shown(app, 'alpha', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND', 'deleted: gone')
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND')
  t.equal(await pendingNotes(ctx), 0, 'every note was settled')
  t.same(await withCatalog(ctx, async (catalog) => await catalog('public_lunch_weeks').select('week_of')), [], 'no copy is left behind')
})

t.test('a weekOf that is not a Monday or lies beyond two years is refused before any lookup', async (t) => {
  const ctx = await testApp(t, 'pubweek', { schools: ['alpha'] })
  const { app } = ctx
  const before = await metrics(app)
  const farFuture = monday(2 * 53 + 1)
  const farPast = monday(-(2 * 53 + 1))
  const refused: Array<[string, string, string]> = [
    ['alpha', '2026-12-01', 'WEEK_NOT_MONDAY'],
    ['nowhere', '2026-12-01', 'WEEK_NOT_MONDAY'],
    ['alpha', farFuture, 'WEEK_OUT_OF_RANGE'],
    ['alpha', farPast, 'WEEK_OUT_OF_RANGE'],
    ['nowhere', '9999-12-27', 'WEEK_OUT_OF_RANGE'],
    ['alpha', '1970-01-05', 'WEEK_OUT_OF_RANGE']
  ]
  for (const [slug, weekOf, code] of refused) {
    const res = await app.inject({ method: 'GET', url: publicUrl(slug, weekOf) })
    t.equal(res.statusCode, 400, `${slug} ${weekOf}: 400`)
    t.match(res.json(), { statusCode: 400, code, error: 'Bad Request', message: String }, `${slug} ${weekOf}: ${code}`)
  }
  const after = await metrics(app)
  t.equal(after.catalog_cache_misses_total, before.catalog_cache_misses_total, 'no school was looked up')
  t.equal(after.catalog_cache_hits_total, before.catalog_cache_hits_total)
  t.equal(after.public_cache_misses_total, before.public_cache_misses_total, 'no copy was read')
  t.equal((after['public_refusals_total{reason="bad_week"}'] ?? 0) - (before['public_refusals_total{reason="bad_week"}'] ?? 0), refused.length, 'counted as refusals')

  t.equal(await shown(app, 'alpha', monday(2 * 52 - 1)), '404 PUBLISHED_WEEK_NOT_FOUND', 'just inside the window is looked up')
  t.equal(await shown(app, 'alpha', monday(-(2 * 52 - 1))), '404 PUBLISHED_WEEK_NOT_FOUND')
})

t.test('PUBLIC_WEEK_WINDOW_YEARS widens the window, copies included', async (t) => {
  const ctx = await testApp(t, 'pubwide', { schools: ['alpha'], env: { PUBLIC_WEEK_WINDOW_YEARS: '5' } })
  const far = monday(4 * 52)
  await publishedWeek(ctx, 'alpha', far, 'Far ahead')
  t.equal(await shown(ctx.app, 'alpha', far), '200 Far ahead', 'four years ahead is public with a five-year window')
  t.equal(await shown(ctx.app, 'alpha', monday(6 * 53)), '400 WEEK_OUT_OF_RANGE', 'six is not')
})

t.test('the per-address limit answers 429 with Retry-After', async (t) => {
  const ctx = await testApp(t, 'pubrate', { schools: ['alpha'], env: { PUBLIC_RATE_LIMIT_MAX: '3', PUBLIC_RATE_LIMIT_WINDOW_MS: '60000' } })
  const { app } = ctx
  const read = async (remoteAddress: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
    await app.inject({ method: 'GET', url: publicUrl('alpha', monday(1)), remoteAddress, headers })

  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await read('198.51.100.7')).statusCode)
  t.same(statuses, [404, 404, 404, 429, 429], 'three reads, then refused')
  const limited = await read('198.51.100.7')
  t.match(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'says when to retry')
  t.equal((await read('198.51.100.8')).statusCode, 404, 'another address has its own budget')
  t.equal((await read('2001:db8::1')).statusCode, 404)
  t.equal((await read('2001:db8::2')).statusCode, 404)
  t.equal((await read('2001:db8::3')).statusCode, 404)
  t.equal((await read('2001:db8::4')).statusCode, 429, 'one IPv6 /64 is one address')
  t.equal((await read('198.51.100.7', { 'x-forwarded-for': '203.0.113.1' })).statusCode, 429, 'X-Forwarded-For is not believed without TRUST_PROXY')
  t.equal((await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: ctx.auth('alpha'), remoteAddress: '198.51.100.7' })).statusCode, 200, 'staff routes are not counted by address')
  const figures = await metrics(app)
  t.equal(figures['public_refusals_total{reason="rate_limited"}'], 5, 'refusals are counted')
})

t.test('behind a trusted proxy each client address has its own budget', async (t) => {
  const ctx = await testApp(t, 'pubproxy', { schools: ['alpha'], env: { PUBLIC_RATE_LIMIT_MAX: '2', TRUST_PROXY: '10.0.0.0/8' } })
  const read = async (remoteAddress: string, client: string): Promise<number> =>
    (await ctx.app.inject({ method: 'GET', url: publicUrl('alpha', monday(1)), remoteAddress, headers: { 'x-forwarded-for': client } })).statusCode
  t.same([await read('10.1.2.3', '203.0.113.1'), await read('10.1.2.3', '203.0.113.1'), await read('10.1.2.3', '203.0.113.1')], [404, 404, 429], 'one client through the balancer')
  t.equal(await read('10.1.2.3', '203.0.113.2'), 404, 'another client through the same balancer is not refused')
  t.same([await read('192.0.2.9', '203.0.113.3'), await read('192.0.2.9', '203.0.113.4'), await read('192.0.2.9', '203.0.113.5')], [404, 404, 429],
    'an untrusted peer cannot pick its address with the header')
})

t.test('a copy write that fails: the staff write stands, the old copy is never served past the bound, the repairer catches up', async (t) => {
  const ctx = await testApp(t, 'pubfail', { schools: ['alpha'], publicMenus: { repairIntervalMs: 0 } })
  const { app } = ctx
  const weekOf = monday(1)
  const week = await publishedWeek(ctx, 'alpha', weekOf, 'Old menu')
  const setBroken = await breakable(t, ctx, 'public_lunch_weeks')
  // A process whose bound is already past: it must refuse rather than show the old copy.
  const strict = await anotherProcess(t, ctx, { repairIntervalMs: 0, staleAfterMs: 0 })

  await setBroken(true)
  const edit = await setMenu(ctx, 'alpha', week, 'New menu')
  t.equal(edit.statusCode, 200, 'the staff write is answered: it has committed')
  const inSchool = await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName('alpha'), async (db) =>
    (await db('lunch_day').where({ id: week.days[0]?.id }).first<{ menu_details: string }>()).menu_details)
  t.equal(inSchool, 'New menu', 'the school database has the new menu')
  t.equal(await pendingNotes(ctx), 1, 'its note stays for the repairer')
  t.equal((await metrics(app)).public_copy_failures_total, 1, 'counted')

  t.equal(await shown(app, 'alpha', weekOf), '200 Old menu', 'inside the bound the old copy may still be shown')
  const refused = await strict.inject({ method: 'GET', url: publicUrl('alpha', weekOf) })
  t.equal(refused.statusCode, 503, 'past the bound it is refused')
  t.equal(refused.json<{ code: string }>().code, 'PUBLIC_MENU_STALE')
  t.equal(refused.headers['retry-after'], '5')
  t.equal((await metrics(strict))['public_refusals_total{reason="stale"}'], 1)

  t.equal(await app.publicMenus.repair({ olderThanMs: 0 }), 0, 'a repair while the catalog still fails repairs nothing')
  t.equal((await metrics(app)).public_repair_failures_total, 1, 'and is counted as failed')
  await setBroken(false)
  // The failed school waits out its backoff in `app`; the strict process has none.
  t.equal(await strict.publicMenus.repair({ olderThanMs: 0 }), 1, 'once the catalog accepts writes, one school is repaired')
  t.equal(await pendingNotes(ctx), 0, 'its note is gone')
  t.equal(await shown(strict, 'alpha', weekOf), '200 New menu', 'the copy has the new menu')
  t.equal((await metrics(strict)).public_school_connections_opened_total, 1, 'the repair opened one school connection')
})

t.test('a note that cannot be written rolls the staff write back', async (t) => {
  const ctx = await testApp(t, 'pubnote', { schools: ['alpha'], publicMenus: { repairIntervalMs: 0 } })
  const weekOf = monday(1)
  const week = await publishedWeek(ctx, 'alpha', weekOf, 'Kept menu')
  const setBroken = await breakable(t, ctx, 'public_lunch_pending')
  await setBroken(true)
  const edit = await setMenu(ctx, 'alpha', week, 'Lost menu')
  t.equal(edit.statusCode, 503)
  t.equal(edit.json<{ code: string }>().code, 'CATALOG_UNAVAILABLE')
  const inSchool = await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName('alpha'), async (db) =>
    (await db('lunch_day').where({ id: week.days[0]?.id }).first<{ menu_details: string }>()).menu_details)
  t.equal(inSchool, 'Kept menu', 'the school database is unchanged')
  t.equal(await shown(ctx.app, 'alpha', weekOf), '200 Kept menu', 'and so is its copy')

  const draft = (await staff(ctx, 'alpha', 'POST', '/api/lunch-weeks', { weekOf: monday(3) })).json<Week>()
  t.equal((await setMenu(ctx, 'alpha', draft, 'Draft only')).statusCode, 200, 'a draft needs no note, so it can still be edited')
  await setBroken(false)
  t.equal((await setMenu(ctx, 'alpha', week, 'Lost menu')).statusCode, 200, 'once the catalog is back the edit goes through')
  t.equal(await shown(ctx.app, 'alpha', weekOf), '200 Lost menu')
})

/**
 * What a process that died between the school's commit and the copy leaves,
 * and what the catalog migration leaves for weeks published before it: a
 * published week in alpha with no copy, and an old note for every school.
 */
async function weekWithoutCopy (ctx: TestApp, weekOf: string): Promise<void> {
  await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName('alpha'), async (db) => {
    const [row] = await db('lunch_week').insert({ week_of: weekOf, is_published: true }).returning('id') as Array<{ id: string }>
    await db('lunch_day').insert({ lunch_week_id: row?.id, day: weekOf, menu_details: 'Written before the copy' })
  })
  await withCatalog(ctx, async (catalog) => {
    const ids = await catalog('schools').select('id').orderBy('slug') as Array<{ id: string }>
    await catalog('public_lunch_pending').insert(ids.map(({ id }) => ({ school_id: id, created_at: '-infinity' })))
  })
}

t.test('a week the catalog never saw is refused until repaired, never a wrong 404', async (t) => {
  const ctx = await testApp(t, 'pubheal', { schools: ['alpha', 'beta'], publicMenus: { repairIntervalMs: 0 } })
  const weekOf = monday(1)
  await weekWithoutCopy(ctx, weekOf)
  t.equal(await shown(ctx.app, 'alpha', weekOf), '503 PUBLIC_MENU_STALE', 'alpha is refused')
  t.equal(await shown(ctx.app, 'beta', weekOf), '503 PUBLIC_MENU_STALE', 'so is beta, whose copies are just as unknown')
  t.equal(await ctx.app.publicMenus.repair(), 2, 'both schools repaired')
  t.equal(await pendingNotes(ctx), 0, 'no note is left')
  t.equal(await shown(ctx.app, 'alpha', weekOf), '200 Written before the copy', 'alpha\'s week is copied')
  t.equal(await shown(ctx.app, 'beta', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND', 'beta has nothing to show')
  t.equal(await ctx.app.publicMenus.repair(), 0, 'a second pass has nothing to do')
  t.equal((await metrics(ctx.app)).public_school_connections_opened_total, 2, 'one school connection per repaired school')
})

t.test('the repairer runs by itself', async (t) => {
  const ctx = await testApp(t, 'pubtimer', { schools: ['alpha', 'beta'], publicMenus: { repairIntervalMs: 20, repairAfterMs: 0 } })
  const weekOf = monday(1)
  await weekWithoutCopy(ctx, weekOf)
  let notes = await pendingNotes(ctx)
  for (const started = Date.now(); notes > 0 && Date.now() - started < 10_000; notes = await pendingNotes(ctx)) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(notes, 0, 'the timer settled every note')
  t.equal(await shown(ctx.app, 'alpha', weekOf), '200 Written before the copy')
})

t.test('a task run across schools (npm run schools -- exec) keeps the public copies', async (t) => {
  const ctx = await testApp(t, 'pubtask', { schools: ['alpha', 'beta'], publicMenus: { repairIntervalMs: 0 } })
  const weekOf = monday(1)
  await publishedWeek(ctx, 'beta', monday(2), 'Beta keeps this')
  await staff(ctx, 'alpha', 'POST', '/api/lunch-weeks', { weekOf })
  const fleet = { catalogUrl: ctx.dbs.catalogUrl, servers: ctx.dbs.topology.servers, roleSecret: ctx.dbs.config().tenantRoleSecret }
  // What scripts/tasks/publish-next-week.ts does: straight to the school's database.
  const results = await forEachSchool(fleet, async ({ db }) => await db('lunch_week').where({ week_of: weekOf }).update({ is_published: true }), { concurrency: 2 })
  t.same(results.map((r) => r.ok), [true, true])
  t.equal(await pendingNotes(ctx), 0, 'every note was settled by the run itself')
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '200 ', 'the week published by the task is public')
  t.equal(await shown(await anotherProcess(t, ctx), 'beta', monday(2)), '200 Beta keeps this', 'a school the task did not change keeps its copy')

  const failed = await forEachSchool(fleet, async ({ school, db }) => {
    await db('lunch_week').where({ week_of: weekOf }).update({ is_published: false })
    if (school.slug === 'alpha') throw new Error('the task failed after its write')
  }, { concurrency: 2, only: ['alpha'] })
  t.equal(failed[0]?.ok, false)
  t.equal(await shown(await anotherProcess(t, ctx), 'alpha', weekOf), '404 PUBLISHED_WEEK_NOT_FOUND', 'what a failed task wrote is copied too')
})
