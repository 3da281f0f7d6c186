import t from 'tap'
import type { Test } from 'tap'
import {
  runIsolationCheck, summarizeReasons, type IsolationRequest, type IsolationResponse, type IsolationResult, type Send
} from '../../scripts/isolation/check.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { withDatabase } from '../helpers/databases.js'

/*
 * Isolation under concurrency: 24 schools, thousands of interleaved reads
 * and writes with random token shapes, through app.inject on real school
 * databases. With at most 8 school pools of 2 connections, pools are evicted
 * and recreated all along. Every response is checked against the school its
 * token names (scripts/isolation/); then every school database is read
 * directly, so a write that reached the wrong database shows too.
 */

const SCHOOLS = Array.from({ length: 24 }, (_, i) => `iso${String(i + 1).padStart(2, '0')}`)
// Each school owns twelve Mondays from 2030 on (scripts/isolation.ts), beyond
// the public page's default window of two years around today.
const WIDE_WINDOW = { PUBLIC_WEEK_WINDOW_YEARS: '100' }

function injectSend (ctx: TestApp): Send {
  return async (request: IsolationRequest): Promise<IsolationResponse> => {
    const res = await ctx.app.inject({
      method: request.method,
      url: request.url,
      headers: request.headers,
      ...(request.payload === undefined ? {} : { payload: request.payload })
    })
    return { statusCode: res.statusCode, body: res.body }
  }
}

/** The first few entries, for a readable failure. */
function sample<T> (items: T[]): { count: number, first: T[] } {
  return { count: items.length, first: items.slice(0, 5) }
}

function assertClean (t: Test, result: IsolationResult): void {
  t.equal(result.leaks.length, 0, 'no response carried another school\'s data', sample(result.leaks))
  t.equal(result.unexpected.length, 0, 'every response had a status (and code, and body) expected for its request',
    { byReason: summarizeReasons(result.unexpected), ...sample(result.unexpected) })
}

t.test('24 schools under thousands of interleaved concurrent requests: zero leaks', async (t) => {
  const ctx = await testApp(t, 'isoload', { schools: SCHOOLS, env: { TENANT_CONNECTIONS_MAX: '10', TENANT_POOL_SIZE: '2', ...WIDE_WINDOW } })
  const names = Object.fromEntries(SCHOOLS.map((slug) => [slug, `School ${slug}`]))

  const result = await runIsolationCheck({
    send: injectSend(ctx),
    schools: SCHOOLS,
    requests: 3000,
    concurrency: 40,
    seed: 20260123,
    token: ctx.token,
    schoolNames: names
  })
  t.comment(`${result.requests} requests in ${result.durationMs} ms; statuses ${JSON.stringify(result.byStatus)}; ` +
    `seed ${result.seedRequests}, sweep ${result.sweepRequests}`)

  assertClean(t, result)

  t.test('the load really was the intended mix', async (t) => {
    const total = Object.values(result.byStatus).reduce((a, b) => a + b, 0)
    t.equal(total, 3000, 'every load request was answered and counted')
    t.equal(result.requests, 3000)
    for (const status of [200, 201, 204, 401, 403, 404, 409]) {
      t.ok((result.byStatus[status] ?? 0) > 0, `some ${status} responses (${result.byStatus[status] ?? 0})`)
    }
    t.same(Object.keys(result.byStatus).filter((s) => Number(s) >= 500), [], 'no 5xx at all')
    for (const operation of ['list', 'get', 'create', 'menu', 'publish', 'delete', 'me', 'public']) {
      t.ok((result.byOperation[operation] ?? 0) > 0, `some ${operation} requests (${result.byOperation[operation] ?? 0})`)
    }
    for (const shape of ['single', 'multi', 'cross', 'expired', 'badSignature', 'forgedPayload', 'algNone', 'unknownSchool', 'missing', 'none', 'otherSchoolToken']) {
      t.ok((result.byTokenShape[shape] ?? 0) > 0, `some requests with token shape ${shape} (${result.byTokenShape[shape] ?? 0})`)
    }
    const written = Object.keys(result.writesBySchool)
    t.ok(written.length > 20, `more than 20 schools received writes (${written.length})`)
    t.ok(written.every((slug) => SCHOOLS.includes(slug)), 'writes only to the schools of the test')
    t.ok(result.seedRequests >= SCHOOLS.length * 3 * 7, `every school was seeded (${result.seedRequests} requests)`)
    t.ok(result.sweepRequests > SCHOOLS.length, `every school was read back (${result.sweepRequests} requests)`)
  })

  t.test('pools were evicted and recreated under the load', async (t) => {
    const stats = ctx.app.tenancy.pools.stats()
    t.ok(stats.evictions > 0, `evictions: ${stats.evictions}`)
    t.ok(stats.misses > SCHOOLS.length, `pools created more often than there are schools: ${stats.misses}`)
  })

  t.test('every school database holds only its own menus and Mondays', async (t) => {
    let menus = 0
    for (const [index, slug] of SCHOOLS.entries()) {
      const rows = await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName(slug), async (db) => ({
        days: await db('lunch_day').select<Array<{ day: string, menu_details: string }>>('day', 'menu_details'),
        weeks: await db('lunch_week').select<Array<{ week_of: string }>>('week_of')
      }))
      const foreignMenus = rows.days.filter((d) => d.menu_details !== '' && !d.menu_details.startsWith(`menu of ${slug} #`))
      t.same(foreignMenus, [], `${slug}: no menu written for another school`)
      menus += rows.days.filter((d) => d.menu_details !== '').length
      // School number i owns the 12 Mondays from 2030-01-07 + 12 i weeks.
      const first = Date.UTC(2030, 0, 7) + index * 12 * 7 * 86_400_000
      const last = first + 11 * 7 * 86_400_000
      const foreignWeeks = rows.weeks.filter((w) => {
        const ms = Date.parse(`${w.week_of}T00:00:00Z`)
        return ms < first || ms > last
      })
      t.same(foreignWeeks, [], `${slug}: no week created for another school`)
      t.ok(rows.weeks.length >= 3, `${slug}: its seeded weeks are still there`)
    }
    t.ok(menus > SCHOOLS.length * 15, `menus written: ${menus}`)
  })
})

t.test('the checker catches what it is meant to catch', async (t) => {
  const schools = ['leaka', 'leakb', 'leakc']
  const ctx = await testApp(t, 'isoleak', { schools, env: WIDE_WINDOW })
  const send = injectSend(ctx)
  const schoolOf = (request: IsolationRequest): string | null => {
    const jwt = request.headers.authorization?.split(' ')[1]
    const payload = jwt?.split('.')[1]
    if (payload === undefined) return null
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { school?: unknown }
    return request.headers['x-school'] ?? (typeof claims.school === 'string' ? claims.school : null)
  }
  const options = { schools, requests: 250, concurrency: 8, seed: 7, token: ctx.token }

  t.test('a clean run of the same size finds nothing', async (t) => {
    assertClean(t, await runIsolationCheck({ ...options, send }))
  })

  t.test('one staff response swapped for another school\'s is a leak', async (t) => {
    let swapped = null as { acting: string, other: string, url: string } | null
    let calls = 0
    const leaky: Send = async (request) => {
      const response = await send(request)
      const acting = schoolOf(request)
      // Past the seeding (3 schools × 22 requests), which stops at its first failure.
      calls++
      if (swapped === null && calls > 100 && request.method === 'GET' && request.url === '/api/lunch-weeks' && response.statusCode === 200 && acting !== null) {
        // By now every school has seeded weeks, so the other school's list is not empty.
        const other = schools.find((s) => s !== acting) as string
        const theirs = await send({ method: 'GET', url: request.url, headers: ctx.auth(other) })
        if (JSON.parse(theirs.body).length > 0) {
          swapped = { acting, other, url: request.url }
          return theirs
        }
      }
      return response
    }
    const result = await runIsolationCheck({ ...options, send: leaky })
    t.not(swapped, null, 'a response was swapped')
    t.ok(result.leaks.length > 0, `the swap was reported as a leak (${result.leaks.length})`)
    // Requests run concurrently, so the swapped one need not be reported first.
    const leak = result.leaks.find((l) => l.expectedSchool === swapped?.acting && l.foundSchool === swapped?.other)
    t.match(leak, { expectedSchool: swapped?.acting, foundSchool: swapped?.other, method: 'GET', url: '/api/lunch-weeks', statusCode: 200 },
      'a leak names the school asked for and the school whose data came back')
  })

  t.test('a public page answered with another school\'s week is a leak', async (t) => {
    let swapped = false
    const leaky: Send = async (request) => {
      const response = await send(request)
      const match = /^\/api\/public\/schools\/([^/]+)\/lunch-weeks\//.exec(request.url)
      if (!swapped && match !== null && response.statusCode === 200) {
        const other = schools.find((s) => s !== match[1]) as string
        // The other school's published (pinned) week: the first Monday it owns.
        const index = schools.indexOf(other)
        const monday = new Date(Date.UTC(2030, 0, 7) + index * 12 * 7 * 86_400_000).toISOString().slice(0, 10)
        const theirs = await send({ method: 'GET', url: `/api/public/schools/${other}/lunch-weeks/${monday}`, headers: {} })
        if (theirs.statusCode === 200) {
          swapped = true
          return theirs
        }
      }
      return response
    }
    const result = await runIsolationCheck({ ...options, send: leaky })
    t.ok(swapped, 'a public response was swapped')
    t.ok(result.leaks.some((l) => l.operation === 'public' && l.field.endsWith('weekOf')), 'reported as a leak of weekOf on the public page', sample(result.leaks))
    t.ok(result.leaks.some((l) => l.operation === 'public' && l.field.endsWith('menuDetails')), 'and of its menus', sample(result.leaks))
  })

  t.test('a server error or a wrong status is reported as unexpected', async (t) => {
    let broken = 0
    const failing: Send = async (request) => {
      const response = await send(request)
      if (broken === 0 && request.url === '/api/me') {
        broken++
        return { statusCode: 500, body: JSON.stringify({ statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'x' }) }
      }
      if (broken === 1 && response.statusCode === 403) {
        broken++
        return { statusCode: 200, body: '{}' }
      }
      return response
    }
    const result = await runIsolationCheck({ ...options, send: failing })
    t.equal(broken, 2, 'both responses were altered')
    t.ok(result.unexpected.some((u) => u.statusCode === 500 && u.reason === 'server error'), 'the 500 is reported', sample(result.unexpected))
    t.ok(result.unexpected.some((u) => u.statusCode === 200 && /^403/.test(u.expected)), 'the 200 for a refused token is reported', sample(result.unexpected))
    t.equal(result.leaks.length, 0, 'no leak invented')
  })
})
