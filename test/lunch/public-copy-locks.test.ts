// A staff write holds its school connection while it notes the change in the
// catalog; the copy afterwards must not hold a catalog connection while it
// waits for a school connection, or the two wait on each other. With one
// connection per school and one to the catalog, concurrent edits of a
// published week show it at once.
import t from 'tap'
import { testApp } from '../helpers/app.js'

t.test('concurrent edits of a published week, one school connection, one catalog connection: no wait on each other', async (t) => {
  const { app, auth } = await testApp(t, 'publock', {
    schools: ['alpha'],
    env: { TENANT_POOL_SIZE: '1', CATALOG_POOL_SIZE: '1' }
  })
  const headers = auth('alpha')
  const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers, payload: { weekOf: '2026-11-30' } })
  t.equal(created.statusCode, 201)
  const week = created.json<{ id: string, days: Array<{ id: string }> }>()
  t.equal((await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers, payload: { isPublished: true } })).statusCode, 200)

  const edits = await Promise.all(week.days.flatMap((day, i) => [1, 2, 3].map(async (round) => {
    const res = await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${day.id}`, headers, payload: { menuDetails: `day ${i}, edit ${round}` } })
    return res.statusCode === 200 ? 'ok' : `${res.statusCode} ${res.body}`
  })))
  t.same(edits.filter((e) => e !== 'ok'), [], 'all 15 edits answered 200')

  const mine = await app.inject({ url: `/api/lunch-weeks/${week.id}`, headers })
  const shown = await app.inject({ url: '/api/public/schools/alpha/lunch-weeks/2026-11-30' })
  t.equal(shown.statusCode, 200)
  t.same(shown.json<{ days: unknown[] }>().days, mine.json<{ days: unknown[] }>().days, 'and the public page shows the days as the school has them')
})
