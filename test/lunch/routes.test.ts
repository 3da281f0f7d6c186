import t from 'tap'
import type { Test } from 'tap'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Knex } from 'knex'
import { testApp, type TestApp } from '../helpers/app.js'
import { assertError } from '../helpers/assertions.js'
import { withDatabase } from '../helpers/databases.js'

/*
 * The lunch API end to end: every route through app.inject against real
 * school databases, its validation and error codes, the public page with
 * its caching headers, isolation between schools, and the OpenAPI document.
 */

interface Day { id: string, day: string, menuDetails: string }
interface Week { id: string, weekOf: string, isPublished: boolean, createdAt: string, updatedAt: string }
interface WeekWithDays extends Week { days: Day[] }

interface WeekRow { id: string | number, week_of: string, is_published: boolean, created_at: Date, updated_at: Date }
interface DayRow { id: string | number, lunch_week_id: string | number, day: string, menu_details: string }

// Mondays, and the weekdays that follow them.
const JAN_05 = '2026-01-05'
const NOV_23 = '2026-11-23'
const NOV_30 = '2026-11-30'
const DEC_07 = '2026-12-07'
const DEC_14 = '2026-12-14'
const NOV_23_WEEKDAYS = ['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27']
// A week that crosses a month end and a year end.
const DEC_28 = '2026-12-28'
const DEC_28_WEEKDAYS = ['2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31', '2027-01-01']

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

async function inSchool<T> (ctx: TestApp, slug: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  return await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName(slug), fn)
}

/** Every week and day row of a school, in a stable order, for before/after comparisons. */
async function snapshot (ctx: TestApp, slug: string): Promise<{ weeks: WeekRow[], days: DayRow[] }> {
  return await inSchool(ctx, slug, async (db) => ({
    weeks: await db<WeekRow>('lunch_week').orderBy('id'),
    days: await db<DayRow>('lunch_day').orderBy('id')
  }))
}

async function weekCount (ctx: TestApp, slug: string): Promise<number> {
  return await inSchool(ctx, slug, async (db) => {
    const row = await db('lunch_week').count<Array<{ count: string }>>({ count: '*' }).first()
    return Number(row?.count)
  })
}

function json<T> (res: LightMyRequestResponse): T {
  return res.json<T>()
}

async function post (ctx: TestApp, slug: string, payload: unknown): Promise<LightMyRequestResponse> {
  return await ctx.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: ctx.auth(slug), payload: payload as InjectOptions['payload'] })
}

async function createWeek (ctx: TestApp, slug: string, weekOf: string): Promise<WeekWithDays> {
  const res = await post(ctx, slug, { weekOf })
  if (res.statusCode !== 201) throw new Error(`creating ${weekOf} in ${slug} failed: ${res.statusCode} ${res.body}`)
  return json<WeekWithDays>(res)
}

async function setMenu (ctx: TestApp, slug: string, week: WeekWithDays, index: number, menuDetails: string): Promise<void> {
  const day = week.days[index]
  if (day === undefined) throw new Error(`week ${week.weekOf} has no day ${index}`)
  const res = await ctx.app.inject({
    method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, headers: ctx.auth(slug), payload: { menuDetails }
  })
  if (res.statusCode !== 200) throw new Error(`setting a menu failed: ${res.statusCode} ${res.body}`)
}

async function publish (ctx: TestApp, slug: string, week: WeekWithDays): Promise<void> {
  const res = await ctx.app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: ctx.auth(slug), payload: { isPublished: true } })
  if (res.statusCode !== 200) throw new Error(`publishing failed: ${res.statusCode} ${res.body}`)
}

async function listWeekOfs (ctx: TestApp, headers: Record<string, string>): Promise<string[]> {
  const res = await ctx.app.inject({ method: 'GET', url: '/api/lunch-weeks', headers })
  if (res.statusCode !== 200) throw new Error(`listing failed: ${res.statusCode} ${res.body}`)
  return json<Week[]>(res).map((w) => w.weekOf)
}

t.test('every staff route works against the school\'s database', async (t) => {
  const ctx = await testApp(t, 'lrroutes', { schools: ['alpha'] })
  const { app, auth } = ctx
  const headers = auth('alpha')

  t.test('GET /api/me names the subject, the active school and the allowed schools', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/api/me', headers })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { subject: 'user-of-alpha', school: { slug: 'alpha', name: 'School alpha' }, schools: ['alpha'] })
  })

  t.test('staff routes need a token', async (t) => {
    assertError(t, await app.inject({ method: 'GET', url: '/api/lunch-weeks' }), 401, 'TOKEN_MISSING', 'list without token')
    assertError(t, await app.inject({ method: 'POST', url: '/api/lunch-weeks', payload: { weekOf: NOV_23 } }), 401, 'TOKEN_MISSING', 'create without token')
    t.equal(await weekCount(ctx, 'alpha'), 0, 'nothing created without a token')
  })

  t.test('a new school has no weeks', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers })
    t.equal(res.statusCode, 200)
    t.same(res.json(), [])
  })

  let nov23: WeekWithDays
  t.test('POST /api/lunch-weeks creates the week and its five weekdays', async (t) => {
    const res = await post(ctx, 'alpha', { weekOf: NOV_23 })
    t.equal(res.statusCode, 201)
    nov23 = json<WeekWithDays>(res)
    t.equal(nov23.weekOf, NOV_23)
    t.equal(nov23.isPublished, false, 'new weeks are drafts')
    t.match(nov23.id, /^[1-9][0-9]*$/, 'the id is a decimal string')
    t.match(nov23.createdAt, ISO_INSTANT)
    t.match(nov23.updatedAt, ISO_INSTANT)
    t.same(nov23.days.map((d) => d.day), NOV_23_WEEKDAYS, 'Monday to Friday, in order')
    t.same(nov23.days.map((d) => d.menuDetails), ['', '', '', '', ''], 'empty menus')
    t.equal(new Set(nov23.days.map((d) => d.id)).size, 5, 'distinct day ids')

    const { weeks, days } = await snapshot(ctx, 'alpha')
    t.same(weeks.map((w) => [String(w.id), w.week_of, w.is_published]), [[nov23.id, NOV_23, false]], 'one lunch_week row')
    t.same(days.map((d) => [String(d.id), String(d.lunch_week_id), d.day, d.menu_details]),
      nov23.days.map((d) => [d.id, nov23.id, d.day, '']), 'exactly five lunch_day rows of that week')
  })

  t.test('a week across the year end gets the right dates', async (t) => {
    const week = await createWeek(ctx, 'alpha', DEC_28)
    t.same(week.days.map((d) => d.day), DEC_28_WEEKDAYS)
    const rows = await inSchool(ctx, 'alpha', async (db) => await db<DayRow>('lunch_day').where({ lunch_week_id: week.id }).orderBy('day'))
    t.same(rows.map((r) => r.day), DEC_28_WEEKDAYS)
  })

  t.test('GET /api/lunch-weeks lists newest first', async (t) => {
    // Created out of order, so neither insertion nor id order is week order.
    await createWeek(ctx, 'alpha', JAN_05)
    await createWeek(ctx, 'alpha', NOV_30)
    const res = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers })
    t.equal(res.statusCode, 200)
    const list = json<Array<Week & { days?: unknown }>>(res)
    t.same(list.map((w) => w.weekOf), [DEC_28, NOV_30, NOV_23, JAN_05])
    const first = list.find((w) => w.weekOf === NOV_23)
    t.match(first, { id: nov23.id, isPublished: false, createdAt: ISO_INSTANT, updatedAt: ISO_INSTANT })
    t.equal(first?.days, undefined, 'the list carries no days')
  })

  t.test('GET /api/lunch-weeks/:id returns the week with its days', async (t) => {
    const res = await app.inject({ method: 'GET', url: `/api/lunch-weeks/${nov23.id}`, headers })
    t.equal(res.statusCode, 200)
    t.same(res.json(), nov23)
  })

  t.test('PATCH /api/lunch-weeks/:id publishes and unpublishes', async (t) => {
    const published = await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${nov23.id}`, headers, payload: { isPublished: true } })
    t.equal(published.statusCode, 200)
    const body = json<WeekWithDays>(published)
    t.match(body, { id: nov23.id, weekOf: NOV_23, isPublished: true, createdAt: nov23.createdAt })
    t.same(body.days, nov23.days, 'answers with the days')
    t.ok(Date.parse(body.updatedAt) >= Date.parse(nov23.updatedAt), 'updatedAt does not go back')
    let row = await inSchool(ctx, 'alpha', async (db) => await db<WeekRow>('lunch_week').where({ id: nov23.id }).first())
    t.equal(row?.is_published, true, 'published in the database')

    const unpublished = await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${nov23.id}`, headers, payload: { isPublished: false } })
    t.equal(unpublished.statusCode, 200)
    t.equal(json<WeekWithDays>(unpublished).isPublished, false)
    row = await inSchool(ctx, 'alpha', async (db) => await db<WeekRow>('lunch_week').where({ id: nov23.id }).first())
    t.equal(row?.is_published, false, 'unpublished in the database')
  })

  t.test('PATCH /api/lunch-weeks/:id/days/:dayId sets one day\'s menu', async (t) => {
    const wednesday = nov23.days[2] as Day
    const res = await app.inject({
      method: 'PATCH', url: `/api/lunch-weeks/${nov23.id}/days/${wednesday.id}`, headers, payload: { menuDetails: 'Lasagne, salad, apple' }
    })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { id: wednesday.id, day: '2026-11-25', menuDetails: 'Lasagne, salad, apple' })

    const rows = await inSchool(ctx, 'alpha', async (db) => await db<DayRow>('lunch_day').where({ lunch_week_id: nov23.id }).orderBy('day'))
    t.same(rows.map((r) => r.menu_details), ['', '', 'Lasagne, salad, apple', '', ''], 'only that day changed in the database')

    const week = json<WeekWithDays>(await app.inject({ method: 'GET', url: `/api/lunch-weeks/${nov23.id}`, headers }))
    t.same(week.days.map((d) => d.menuDetails), ['', '', 'Lasagne, salad, apple', '', ''], 'the week shows the menu')

    const cleared = await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${nov23.id}/days/${wednesday.id}`, headers, payload: { menuDetails: '' } })
    t.equal(cleared.statusCode, 200, 'an empty menu is allowed')
    t.equal(json<Day>(cleared).menuDetails, '')
  })

  t.test('DELETE /api/lunch-weeks/:id removes the week and, by cascade, its days', async (t) => {
    const before = await snapshot(ctx, 'alpha')
    t.equal(before.days.filter((d) => String(d.lunch_week_id) === nov23.id).length, 5, 'the days exist before')

    const res = await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${nov23.id}`, headers })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')

    const after = await snapshot(ctx, 'alpha')
    t.notOk(after.weeks.some((w) => String(w.id) === nov23.id), 'the week row is gone')
    t.equal(after.days.filter((d) => String(d.lunch_week_id) === nov23.id).length, 0, 'its days are gone')
    t.same(after.weeks.map((w) => w.week_of).sort(), [JAN_05, NOV_30, DEC_28], 'the other weeks stay')
    t.equal(after.days.length, 15, 'the other weeks keep their five days each')

    assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${nov23.id}`, headers }), 404, 'LUNCH_WEEK_NOT_FOUND', 'get deleted week')
    assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${nov23.id}`, headers }), 404, 'LUNCH_WEEK_NOT_FOUND', 'delete twice')
    t.same(await listWeekOfs(ctx, headers), [DEC_28, NOV_30, JAN_05], 'the list no longer has it')

    const again = await post(ctx, 'alpha', { weekOf: NOV_23 })
    t.equal(again.statusCode, 201, 'the week can be created again')
    t.not(json<WeekWithDays>(again).id, nov23.id, 'as a new week')
  })
})

t.test('requests are validated and rejected writes change nothing', async (t) => {
  const ctx = await testApp(t, 'lrvalid', { schools: ['alpha'] })
  const { app, auth } = ctx
  const headers = auth('alpha')
  const week = await createWeek(ctx, 'alpha', NOV_23)
  const other = await createWeek(ctx, 'alpha', NOV_30)
  await setMenu(ctx, 'alpha', other, 0, 'Fish and chips')
  // Refreshed by the subtests that write on purpose.
  let before = await snapshot(ctx, 'alpha')

  async function unchanged (t: Test, what: string): Promise<void> {
    t.same(await snapshot(ctx, 'alpha'), before, `${what}: the database is unchanged`)
  }

  t.test('a week that exists already is 409 LUNCH_WEEK_EXISTS', async (t) => {
    assertError(t, await post(ctx, 'alpha', { weekOf: NOV_23 }), 409, 'LUNCH_WEEK_EXISTS', 'duplicate week')
    await unchanged(t, 'duplicate week')
  })

  t.test('an unknown week id is 404 LUNCH_WEEK_NOT_FOUND', async (t) => {
    const id = String(Number(other.id) + 1000)
    assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${id}`, headers }), 404, 'LUNCH_WEEK_NOT_FOUND', 'GET')
    assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${id}`, headers, payload: { isPublished: true } }), 404, 'LUNCH_WEEK_NOT_FOUND', 'PATCH')
    assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${id}`, headers }), 404, 'LUNCH_WEEK_NOT_FOUND', 'DELETE')
    // The largest id bigint holds passes validation and is simply not there.
    assertError(t, await app.inject({ method: 'GET', url: '/api/lunch-weeks/9223372036854775807', headers }), 404, 'LUNCH_WEEK_NOT_FOUND', 'GET max bigint')
    await unchanged(t, 'unknown week')
  })

  t.test('a day of another week is 404 LUNCH_DAY_NOT_FOUND', async (t) => {
    const foreignDay = other.days[0] as Day
    const res = await app.inject({
      method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${foreignDay.id}`, headers, payload: { menuDetails: 'Hijacked' }
    })
    assertError(t, res, 404, 'LUNCH_DAY_NOT_FOUND', 'day of another week')
    const noWeek = await app.inject({
      method: 'PATCH', url: `/api/lunch-weeks/${Number(other.id) + 1000}/days/${foreignDay.id}`, headers, payload: { menuDetails: 'Hijacked' }
    })
    assertError(t, noWeek, 404, 'LUNCH_DAY_NOT_FOUND', 'day under an unknown week')
    const noDay = await app.inject({
      method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/9223372036854775807`, headers, payload: { menuDetails: 'Hijacked' }
    })
    assertError(t, noDay, 404, 'LUNCH_DAY_NOT_FOUND', 'unknown day')
    const row = await inSchool(ctx, 'alpha', async (db) => await db<DayRow>('lunch_day').where({ id: foreignDay.id }).first())
    t.equal(row?.menu_details, 'Fish and chips', 'the other week\'s day keeps its menu')
    await unchanged(t, 'day of another week')
  })

  t.test('malformed and out-of-range ids are 400', async (t) => {
    const day = week.days[0] as Day
    for (const bad of ['abc', '-1', '0', '1.5', '01', '1e3', '%20']) {
      const what = `id "${bad}"`
      assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${bad}`, headers }), 400, 'INVALID_REQUEST', `GET ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${bad}`, headers, payload: { isPublished: true } }), 400, 'INVALID_REQUEST', `PATCH ${what}`)
      assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${bad}`, headers }), 400, 'INVALID_REQUEST', `DELETE ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${bad}/days/${day.id}`, headers, payload: { menuDetails: 'x' } }), 400, 'INVALID_REQUEST', `PATCH day, week ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${bad}`, headers, payload: { menuDetails: 'x' } }), 400, 'INVALID_REQUEST', `PATCH day, day ${what}`)
    }
    // 2^63 matches the digits pattern but not bigint; 25 digits fail the pattern.
    const tooBig: Array<[string, string]> = [['9223372036854775808', 'INVALID_ID'], ['9999999999999999999', 'INVALID_ID'], ['1234567890123456789012345', 'INVALID_REQUEST']]
    for (const [bad, code] of tooBig) {
      const what = `id ${bad}`
      assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${bad}`, headers }), 400, code, `GET ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${bad}`, headers, payload: { isPublished: true } }), 400, code, `PATCH ${what}`)
      assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${bad}`, headers }), 400, code, `DELETE ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${bad}/days/${day.id}`, headers, payload: { menuDetails: 'x' } }), 400, code, `PATCH day, week ${what}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${bad}`, headers, payload: { menuDetails: 'x' } }), 400, code, `PATCH day, day ${what}`)
    }
    await unchanged(t, 'bad ids')
  })

  t.test('weekOf must be a real date and a Monday', async (t) => {
    for (const notMonday of ['2026-11-24', '2026-11-29', '2026-11-28']) {
      assertError(t, await post(ctx, 'alpha', { weekOf: notMonday }), 400, 'WEEK_NOT_MONDAY', `weekOf ${notMonday}`)
    }
    for (const bad of ['2025-02-30', '2026-13-01', 'not-a-date', '', '2026-11-23T00:00:00Z', '23.11.2026', '2026-1-5']) {
      assertError(t, await post(ctx, 'alpha', { weekOf: bad }), 400, 'INVALID_REQUEST', `weekOf "${bad}"`)
    }
    await unchanged(t, 'bad weekOf')
  })

  t.test('unknown properties, missing properties and wrong types are 400 INVALID_REQUEST', async (t) => {
    const day = week.days[1] as Day
    const cases: Array<[string, InjectOptions]> = [
      ['create with an extra property', { method: 'POST', url: '/api/lunch-weeks', payload: { weekOf: DEC_07, isPublished: true } }],
      ['create without weekOf', { method: 'POST', url: '/api/lunch-weeks', payload: {} }],
      ['create with a numeric weekOf', { method: 'POST', url: '/api/lunch-weeks', payload: { weekOf: 20261123 } }],
      ['create with a null weekOf', { method: 'POST', url: '/api/lunch-weeks', payload: { weekOf: null } }],
      ['create with an array body', { method: 'POST', url: '/api/lunch-weeks', payload: [{ weekOf: DEC_07 }] }],
      ['publish with an extra property', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, payload: { isPublished: true, weekOf: DEC_07 } }],
      ['publish without isPublished', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, payload: {} }],
      ['publish with the string "true"', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, payload: { isPublished: 'true' } }],
      ['publish with 1', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, payload: { isPublished: 1 } }],
      ['menu with an extra property', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, payload: { menuDetails: 'Soup', day: DEC_07 } }],
      ['menu without menuDetails', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, payload: {} }],
      ['menu as a number', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, payload: { menuDetails: 5 } }],
      ['menu as null', { method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, payload: { menuDetails: null } }]
    ]
    for (const [what, options] of cases) {
      assertError(t, await app.inject({ ...options, headers }), 400, 'INVALID_REQUEST', what)
    }
    await unchanged(t, 'bad bodies')
  })

  t.test('menuDetails may be 2000 characters, not more', async (t) => {
    const day = week.days[4] as Day
    const url = `/api/lunch-weeks/${week.id}/days/${day.id}`
    assertError(t, await app.inject({ method: 'PATCH', url, headers, payload: { menuDetails: 'a'.repeat(2001) } }), 400, 'INVALID_REQUEST', '2001 characters')
    await unchanged(t, '2001 characters')

    for (const menu of ['a'.repeat(2000), 'é'.repeat(2000)]) {
      const res = await app.inject({ method: 'PATCH', url, headers, payload: { menuDetails: menu } })
      t.equal(res.statusCode, 200, `2000 characters of "${menu[0] ?? ''}" are accepted`)
      t.equal(json<Day>(res).menuDetails, menu, 'and answered back whole')
      const row = await inSchool(ctx, 'alpha', async (db) => await db<DayRow>('lunch_day').where({ id: day.id }).first())
      t.equal(row?.menu_details, menu, 'and stored whole')
    }
    // Put it back; the week's updatedAt moved, so later comparisons start from here.
    const reset = await app.inject({ method: 'PATCH', url, headers, payload: { menuDetails: '' } })
    t.equal(reset.statusCode, 200)
    before = await snapshot(ctx, 'alpha')
  })

  t.test('a body that is not JSON, too large or of another type is refused', async (t) => {
    const jsonHeaders = { ...headers, 'content-type': 'application/json' }
    const day = week.days[0] as Day
    for (const [url, method] of [['/api/lunch-weeks', 'POST'], [`/api/lunch-weeks/${week.id}`, 'PATCH'], [`/api/lunch-weeks/${week.id}/days/${day.id}`, 'PATCH']] as const) {
      for (const payload of ['{"weekOf": ', '{weekOf: "2026-12-07"}', "{'isPublished': true}"]) {
        assertError(t, await app.inject({ method, url, headers: jsonHeaders, payload }), 400, 'INVALID_JSON', `${method} ${url} with ${payload}`)
      }
    }
    await unchanged(t, 'invalid JSON')

    const padded = JSON.stringify({ weekOf: DEC_07, padding: 'x'.repeat(17 * 1024) })
    assertError(t, await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: jsonHeaders, payload: padded }), 413, 'BODY_TOO_LARGE', 'create over 16 KiB')
    const bigMenu = JSON.stringify({ menuDetails: 'x'.repeat(17 * 1024) })
    assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, headers: jsonHeaders, payload: bigMenu }), 413, 'BODY_TOO_LARGE', 'menu over 16 KiB')
    await unchanged(t, 'too large')

    const types: Array<[string, string]> = [
      ['application/x-www-form-urlencoded', `weekOf=${DEC_07}`],
      ['application/xml', `<week><weekOf>${DEC_07}</weekOf></week>`],
      ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="weekOf"\r\n\r\n${DEC_07}\r\n--x--\r\n`]
    ]
    for (const [contentType, payload] of types) {
      const res = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: { ...headers, 'content-type': contentType }, payload })
      assertError(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE', `create as ${contentType}`)
    }
    await unchanged(t, 'other content types')
  })

  t.test('a text/plain body is 415 UNSUPPORTED_MEDIA_TYPE, like any other non-JSON type', async (t) => {
    // What fetch() sends for a string body when the client forgets Content-Type.
    for (const contentType of ['text/plain;charset=UTF-8', 'text/plain']) {
      const created = await app.inject({
        method: 'POST', url: '/api/lunch-weeks', headers: { ...headers, 'content-type': contentType }, payload: JSON.stringify({ weekOf: DEC_07 })
      })
      assertError(t, created, 415, 'UNSUPPORTED_MEDIA_TYPE', `create as ${contentType}`)
      const published = await app.inject({
        method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: { ...headers, 'content-type': contentType }, payload: JSON.stringify({ isPublished: true })
      })
      assertError(t, published, 415, 'UNSUPPORTED_MEDIA_TYPE', `publish as ${contentType}`)
    }
    await unchanged(t, 'text/plain')
  })
})

t.test('the public page shows published weeks, cacheably, without a token', async (t) => {
  const ctx = await testApp(t, 'lrpublic', { schools: ['alpha'] })
  const { app } = ctx
  const week = await createWeek(ctx, 'alpha', NOV_23)
  await setMenu(ctx, 'alpha', week, 0, 'Tomato soup')
  await setMenu(ctx, 'alpha', week, 4, 'Pizza')
  await publish(ctx, 'alpha', week)
  await createWeek(ctx, 'alpha', NOV_30) // a draft
  const url = `/api/public/schools/alpha/lunch-weeks/${NOV_23}`

  let etag = ''
  t.test('a published week with its days, cache-control and an ETag', async (t) => {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200)
    const body = json<WeekWithDays>(res)
    t.match(body, { id: week.id, weekOf: NOV_23, isPublished: true })
    t.same(body.days.map((d) => [d.day, d.menuDetails]), [
      ['2026-11-23', 'Tomato soup'], ['2026-11-24', ''], ['2026-11-25', ''], ['2026-11-26', ''], ['2026-11-27', 'Pizza']
    ])
    const cacheControl = String(res.headers['cache-control'])
    t.match(cacheControl, /\bpublic\b/, 'public')
    t.match(cacheControl, /\bmax-age=\d+\b/, 'max-age')
    etag = String(res.headers.etag ?? '')
    t.match(etag, /^(W\/)?"[^"]+"$/, 'an ETag')
  })

  t.test('If-None-Match with that ETag is 304 without a body', async (t) => {
    const res = await app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } })
    t.equal(res.statusCode, 304)
    t.equal(res.body, '')
    const stale = await app.inject({ method: 'GET', url, headers: { 'if-none-match': '"not-the-etag"' } })
    t.equal(stale.statusCode, 200, 'another ETag gets the week')
    t.equal(stale.headers.etag, etag, 'the same ETag for the same week')
  })

  t.test('a changed menu gets a new ETag and the old one no longer matches', async (t) => {
    await setMenu(ctx, 'alpha', week, 0, 'Pumpkin soup')
    const res = await app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } })
    t.equal(res.statusCode, 200)
    t.equal(json<WeekWithDays>(res).days[0]?.menuDetails, 'Pumpkin soup')
    t.not(res.headers.etag, etag)
  })

  t.test('drafts, missing weeks and unknown schools are 404', async (t) => {
    assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/alpha/lunch-weeks/${NOV_30}` }), 404, 'PUBLISHED_WEEK_NOT_FOUND', 'draft week')
    assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/alpha/lunch-weeks/${DEC_14}` }), 404, 'PUBLISHED_WEEK_NOT_FOUND', 'missing week')
    assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/gamma/lunch-weeks/${NOV_23}` }), 404, 'SCHOOL_NOT_FOUND', 'unknown school')

    const res = await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: ctx.auth('alpha'), payload: { isPublished: false } })
    t.equal(res.statusCode, 200)
    assertError(t, await app.inject({ method: 'GET', url }), 404, 'PUBLISHED_WEEK_NOT_FOUND', 'unpublished again')
    t.equal((await app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } })).statusCode, 404, 'an old ETag does not reveal an unpublished week')
  })

  t.test('a malformed slug or date is 400', async (t) => {
    assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/UPPER/lunch-weeks/${NOV_23}` }), 400, 'INVALID_REQUEST', 'slug UPPER')
    assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/${'a'.repeat(64)}/lunch-weeks/${NOV_23}` }), 400, 'INVALID_REQUEST', '64-character slug')
    for (const bad of ['not-a-date', '2025-02-30', '2026-13-01']) {
      assertError(t, await app.inject({ method: 'GET', url: `/api/public/schools/alpha/lunch-weeks/${bad}` }), 400, 'INVALID_REQUEST', `date ${bad}`)
    }
  })
})

t.test('a suspended school has no public page', async (t) => {
  const ctx = await testApp(t, 'lrsusp', { schools: ['alpha'], env: { CATALOG_CACHE_TTL_MS: '0' } })
  const { app } = ctx
  const week = await createWeek(ctx, 'alpha', NOV_23)
  await setMenu(ctx, 'alpha', week, 1, 'Secret stew')
  await publish(ctx, 'alpha', week)
  const url = `/api/public/schools/alpha/lunch-weeks/${NOV_23}`
  t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, 'visible while active')

  await ctx.setStatus('alpha', 'suspended')
  const res = await app.inject({ method: 'GET', url })
  assertError(t, res, 404, 'SCHOOL_NOT_FOUND', 'suspended school')
  t.notMatch(res.body, /Secret stew/, 'no menu leaks')
  assertError(t, await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: ctx.auth('alpha') }), 403, 'SCHOOL_SUSPENDED', 'staff API of a suspended school')

  await ctx.setStatus('alpha', 'active')
  t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, 'visible again once active')
})

t.test('schools never see each other\'s weeks', async (t) => {
  const ctx = await testApp(t, 'lriso', { schools: ['alpha', 'beta'] })
  const { app, auth, token } = ctx
  const alphaHeaders = auth('alpha')
  const both = `Bearer ${token({ sub: 'district-admin', schools: ['alpha', 'beta'] })}`

  // alpha: one week. beta: four, one of them the same Monday as alpha's, so
  // beta has week and day ids that alpha lacks.
  const alphaWeek = await createWeek(ctx, 'alpha', JAN_05)
  await setMenu(ctx, 'alpha', alphaWeek, 0, 'Alpha pasta')
  await publish(ctx, 'alpha', alphaWeek)
  const betaWeeks: WeekWithDays[] = []
  for (const weekOf of [NOV_23, NOV_30, DEC_07, JAN_05]) betaWeeks.push(await createWeek(ctx, 'beta', weekOf))
  for (const week of betaWeeks) {
    await setMenu(ctx, 'beta', week, 0, `Beta curry ${week.weekOf}`)
    await publish(ctx, 'beta', week)
  }
  const betaOnly = betaWeeks.filter((w) => w.id > alphaWeek.id)
  t.ok(betaOnly.length >= 3, 'beta has week ids alpha lacks')
  const betaBefore = await snapshot(ctx, 'beta')
  const alphaBefore = await snapshot(ctx, 'alpha')

  t.test('each school\'s list holds only its own weeks', async (t) => {
    t.same(await listWeekOfs(ctx, alphaHeaders), [JAN_05])
    t.same(await listWeekOfs(ctx, auth('beta')), [DEC_07, NOV_30, NOV_23, JAN_05])
  })

  t.test('alpha\'s token cannot read, change or delete beta\'s weeks', async (t) => {
    for (const week of betaOnly) {
      const day = week.days[0] as Day
      assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers: alphaHeaders }), 404, 'LUNCH_WEEK_NOT_FOUND', `GET beta week ${week.id}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: alphaHeaders, payload: { isPublished: false } }), 404, 'LUNCH_WEEK_NOT_FOUND', `PATCH beta week ${week.id}`)
      assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${week.id}`, headers: alphaHeaders }), 404, 'LUNCH_WEEK_NOT_FOUND', `DELETE beta week ${week.id}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, headers: alphaHeaders, payload: { menuDetails: 'Hacked' } }), 404, 'LUNCH_DAY_NOT_FOUND', `PATCH beta day ${day.id}`)
      assertError(t, await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${alphaWeek.id}/days/${day.id}`, headers: alphaHeaders, payload: { menuDetails: 'Hacked' } }), 404, 'LUNCH_DAY_NOT_FOUND', `beta day ${day.id} under alpha's week`)
    }
    t.same(await snapshot(ctx, 'beta'), betaBefore, 'beta\'s database is unchanged')
    t.same(await snapshot(ctx, 'alpha'), alphaBefore, 'alpha\'s database is unchanged')
  })

  t.test('a colliding id means alpha\'s own week, never beta\'s', async (t) => {
    const res = await app.inject({ method: 'GET', url: `/api/lunch-weeks/${alphaWeek.id}`, headers: alphaHeaders })
    t.equal(res.statusCode, 200)
    const body = json<WeekWithDays>(res)
    t.equal(body.weekOf, JAN_05)
    t.equal(body.days[0]?.menuDetails, 'Alpha pasta')
    t.notMatch(res.body, /Beta curry/)
  })

  t.test('X-School for a school the token does not allow is 403 SCHOOL_NOT_ALLOWED', async (t) => {
    const list = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { ...alphaHeaders, 'x-school': 'beta' } })
    assertError(t, list, 403, 'SCHOOL_NOT_ALLOWED', 'list beta with alpha\'s token')
    t.notMatch(list.body, /2026-11-23/)
    const week = betaOnly[0] as WeekWithDays
    assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers: { ...alphaHeaders, 'x-school': 'beta' } }), 403, 'SCHOOL_NOT_ALLOWED', 'get beta week')
    assertError(t, await app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${week.id}`, headers: { ...alphaHeaders, 'x-school': 'beta' } }), 403, 'SCHOOL_NOT_ALLOWED', 'delete beta week')
    assertError(t, await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: { ...alphaHeaders, 'x-school': 'beta' }, payload: { weekOf: DEC_14 } }), 403, 'SCHOOL_NOT_ALLOWED', 'create in beta')
    assertError(t, await app.inject({ method: 'GET', url: '/api/me', headers: { ...alphaHeaders, 'x-school': 'beta' } }), 403, 'SCHOOL_NOT_ALLOWED', 'me as beta')
    t.same(await snapshot(ctx, 'beta'), betaBefore, 'beta\'s database is unchanged')
    t.same(await snapshot(ctx, 'alpha'), alphaBefore, 'alpha\'s database is unchanged')
  })

  t.test('a token for both schools acts for the one X-School names', async (t) => {
    const me = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: both, 'x-school': 'beta' } })
    t.equal(me.statusCode, 200)
    t.same(me.json(), { subject: 'district-admin', school: { slug: 'beta', name: 'School beta' }, schools: ['alpha', 'beta'] })

    t.same(await listWeekOfs(ctx, { authorization: both, 'x-school': 'beta' }), [DEC_07, NOV_30, NOV_23, JAN_05], 'beta\'s weeks as beta')
    t.same(await listWeekOfs(ctx, { authorization: both, 'x-school': 'alpha' }), [JAN_05], 'alpha\'s weeks as alpha')
    const week = betaOnly[0] as WeekWithDays
    const asBeta = await app.inject({ method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers: { authorization: both, 'x-school': 'beta' } })
    t.equal(asBeta.statusCode, 200)
    t.equal(json<WeekWithDays>(asBeta).weekOf, week.weekOf)
    assertError(t, await app.inject({ method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers: { authorization: both, 'x-school': 'alpha' } }), 404, 'LUNCH_WEEK_NOT_FOUND', 'the same id as alpha')
    assertError(t, await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { authorization: both } }), 400, 'SCHOOL_NOT_SELECTED', 'no X-School')

    const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: { authorization: both, 'x-school': 'beta' }, payload: { weekOf: DEC_14 } })
    t.equal(created.statusCode, 201)
    t.equal(await weekCount(ctx, 'beta'), 5, 'created in beta\'s database')
    t.same(await snapshot(ctx, 'alpha'), alphaBefore, 'not in alpha\'s')
  })

  t.test('alpha\'s public page never shows beta\'s menu', async (t) => {
    const same = await app.inject({ method: 'GET', url: `/api/public/schools/alpha/lunch-weeks/${JAN_05}` })
    t.equal(same.statusCode, 200)
    t.equal(json<WeekWithDays>(same).days[0]?.menuDetails, 'Alpha pasta')
    t.notMatch(same.body, /Beta curry/)
    const betaSame = await app.inject({ method: 'GET', url: `/api/public/schools/beta/lunch-weeks/${JAN_05}` })
    t.equal(json<WeekWithDays>(betaSame).days[0]?.menuDetails, `Beta curry ${JAN_05}`)
    t.not(betaSame.headers.etag, same.headers.etag, 'different ETags')

    for (const weekOf of [NOV_23, NOV_30, DEC_07]) {
      const res = await app.inject({ method: 'GET', url: `/api/public/schools/alpha/lunch-weeks/${weekOf}` })
      assertError(t, res, 404, 'PUBLISHED_WEEK_NOT_FOUND', `alpha ${weekOf}, published only in beta`)
      t.notMatch(res.body, /Beta curry/)
    }
  })
})

t.test('ids past 2^53 come back exactly, as strings, in every answer', async (t) => {
  const ctx = await testApp(t, 'lrbigid', { schools: ['alpha'] })
  // 2^53 + 1 is the first integer a JSON number in JavaScript cannot hold.
  const FIRST = 9_007_199_254_740_993n
  await inSchool(ctx, 'alpha', async (db) => {
    for (const table of ['lunch_week', 'lunch_day']) await db.raw(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), ?)`, [String(FIRST - 1n)])
  })
  const headers = ctx.auth('alpha')
  const week = await createWeek(ctx, 'alpha', NOV_23)
  t.equal(week.id, String(FIRST), 'the week id')
  t.same(week.days.map((d) => d.id), [0n, 1n, 2n, 3n, 4n].map((n) => String(FIRST + n)), 'the day ids')

  const read = await ctx.app.inject({ url: `/api/lunch-weeks/${week.id}`, headers })
  t.equal(read.statusCode, 200, 'read back by the id it came with')
  t.match(read.body, `"id":"${FIRST}"`, 'as a JSON string, digit for digit')
  const day = await ctx.app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${week.days[4]?.id ?? ''}`, headers, payload: { menuDetails: 'Soup' } })
  t.same(day.json(), { id: String(FIRST + 4n), day: '2026-11-27', menuDetails: 'Soup' }, 'a day by its id')
  await publish(ctx, 'alpha', week)
  const listed = await ctx.app.inject({ url: '/api/lunch-weeks', headers })
  t.same(listed.json<Week[]>().map((w) => w.id), [String(FIRST)], 'the list')
  const shown = await ctx.app.inject({ url: `/api/public/schools/alpha/lunch-weeks/${NOV_23}` })
  t.same(shown.json<WeekWithDays>().days.map((d) => d.id), week.days.map((d) => d.id), 'the public page')
})

t.test('the OpenAPI document describes every route', async (t) => {
  const ctx = await testApp(t, 'lrdocs')
  const res = await ctx.app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  interface Operation { security?: unknown, requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown>, required?: string[] } }> }, parameters?: Array<{ name: string, in: string }> }
  const doc = json<{ openapi: string, paths: Record<string, Record<string, Operation>>, components?: { securitySchemes?: Record<string, unknown> } }>(res)
  t.match(doc.openapi, /^3\.\d+\.\d+$/)

  const expected: Record<string, string[]> = {
    '/api/lunch-weeks': ['get', 'post'],
    '/api/lunch-weeks/{id}': ['get', 'patch', 'delete'],
    '/api/lunch-weeks/{id}/days/{dayId}': ['patch'],
    '/api/me': ['get'],
    '/api/public/schools/{slug}/lunch-weeks/{weekOf}': ['get']
  }
  for (const [path, methods] of Object.entries(expected)) {
    for (const method of methods) t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`)
  }
  t.notOk(doc.paths['/docs/json'], 'the document itself is hidden')

  const bodyOf = (path: string, method: string): { properties?: Record<string, unknown>, required?: string[] } | undefined =>
    doc.paths[path]?.[method]?.requestBody?.content?.['application/json']?.schema
  t.match(bodyOf('/api/lunch-weeks', 'post'), { properties: { weekOf: { type: 'string', format: 'date' } }, required: ['weekOf'] }, 'POST body schema')
  t.match(bodyOf('/api/lunch-weeks/{id}', 'patch'), { properties: { isPublished: { type: 'boolean' } }, required: ['isPublished'] }, 'PATCH week body schema')
  t.match(bodyOf('/api/lunch-weeks/{id}/days/{dayId}', 'patch'), { properties: { menuDetails: { type: 'string', maxLength: 2000 } }, required: ['menuDetails'] }, 'PATCH day body schema')

  const dayParams = (doc.paths['/api/lunch-weeks/{id}/days/{dayId}']?.patch?.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort()
  t.same(dayParams, ['dayId', 'id'], 'path parameters of the day route')

  t.match(doc.components?.securitySchemes?.bearerAuth, { type: 'http', scheme: 'bearer' }, 'bearerAuth scheme')
  t.same(doc.paths['/api/lunch-weeks']?.get?.security, [{ bearerAuth: [] }], 'staff routes require bearerAuth')
  t.same(doc.paths['/api/me']?.get?.security, [{ bearerAuth: [] }], '/api/me requires bearerAuth')
  t.equal(doc.paths['/api/public/schools/{slug}/lunch-weeks/{weekOf}']?.get?.security, undefined, 'the public route needs no token')
})

t.test('a week read while it is deleted is either whole or gone, never without its days', async (t) => {
  const { app, auth } = await testApp(t, 'lrrace', { schools: ['alpha'] })
  const headers = auth('alpha')
  const seen: string[] = []
  for (let i = 0; i < 60; i++) {
    const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers, payload: { weekOf: '2026-11-23' } })
    const id = (created.json() as { id: string }).id
    const [read, publish] = await Promise.all([
      app.inject({ url: `/api/lunch-weeks/${id}`, headers }),
      app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${id}`, headers, payload: { isPublished: true } }),
      app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${id}`, headers })
    ])
    for (const res of [read, publish]) {
      seen.push(res.statusCode === 200 ? `200 with ${(res.json() as { days: unknown[] }).days.length} days` : String(res.statusCode))
    }
  }
  t.same([...new Set(seen)].filter((s) => s !== '200 with 5 days' && s !== '404'), [], 'only whole weeks or 404')
})
