import t from 'tap'
import { openCatalog } from '../../src/catalog/catalog.js'
import { testApp } from '../helpers/app.js'

async function until (what: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await what()) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return -1
}

t.test('catalog changes reach the API at once, not after the cache TTL', async (t) => {
  // The default 30 s TTL: only the notification can explain a quick change.
  const { app, dbs, auth } = await testApp(t, 'notify', { schools: ['alpha', 'beta'] })
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  const status = async (slug: string): Promise<number> => (await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })).statusCode
  t.equal(await status('alpha'), 200, 'alpha is cached and its pool open')
  t.equal(await status('beta'), 200)
  await new Promise((resolve) => setTimeout(resolve, 200)) // the listener connects in the background

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'suspended' })
  const suspendedAfter = await until(async () => await status('alpha') === 403, 2000)
  t.ok(suspendedAfter >= 0 && suspendedAfter < 1000, `suspension took effect in ${suspendedAfter} ms`)
  t.equal(await status('beta'), 200, 'other schools are untouched')

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'active' })
  const resumedAfter = await until(async () => await status('alpha') === 200, 2000)
  t.ok(resumedAfter >= 0 && resumedAfter < 1000, `resuming took effect in ${resumedAfter} ms`)

  // Deleting the row drops the school's pool as well as its cache entry.
  const before = app.tenancy.pools.stats().open
  await catalog('schools').where({ slug: 'beta' }).delete()
  const goneAfter = await until(async () => await status('beta') === 403, 2000)
  t.ok(goneAfter >= 0 && goneAfter < 1000, `a removed school is refused after ${goneAfter} ms`)
  t.equal(app.tenancy.pools.stats().open, before - 1, 'its pool was closed')
})
