import t from 'tap'
import { testApp } from '../helpers/app.js'
import { waitFor } from '../helpers/timing.js'

t.test('a school database that accepts no connections is a 503, not a 500, and comes back', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'noconn', { schools: ['shut', 'open'], tenancy: { unavailableForMs: 50 } })
  const database = dbs.databaseName('shut')
  await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`)
  t.teardown(async () => { await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`).catch(() => {}) })

  const shut = await app.inject({ url: '/api/lunch-weeks', headers: auth('shut') })
  t.equal(shut.statusCode, 503)
  t.equal(shut.json().code, 'SCHOOL_DATABASE_UNAVAILABLE')
  t.equal(shut.headers['retry-after'], '5')
  t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth('open') })).statusCode, 200, 'the other school is served')

  await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`)
  await waitFor('the school to answer again', 10_000, async () =>
    (await app.inject({ url: '/api/lunch-weeks', headers: auth('shut') })).statusCode === 200)
  t.pass('once it accepts connections again, the school answers 200')
})
