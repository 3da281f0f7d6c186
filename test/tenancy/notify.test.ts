import t from 'tap'
import { openCatalog } from '../../src/catalog/catalog.js'
import { testApp } from '../helpers/app.js'
import { waitFor } from '../helpers/timing.js'

// Well inside the default 30 s catalog cache TTL: only the notification can
// explain a change seen this soon. How soon it comes is the bench's business.
const BEFORE_THE_TTL_MS = 10_000

t.test('catalog changes reach the API at once, not after the cache TTL', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'notify', { schools: ['alpha', 'beta'] })
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  const status = async (slug: string): Promise<number> => (await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })).statusCode
  t.equal(await status('alpha'), 200, 'alpha is cached and its pool open')
  t.equal(await status('beta'), 200)
  await app.tenancy.listening

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'suspended' })
  await t.resolves(waitFor('the suspension', BEFORE_THE_TTL_MS, async () => await status('alpha') === 403), 'the suspension took effect before the TTL')
  t.equal(await status('beta'), 200, 'other schools are untouched')

  await catalog('schools').where({ slug: 'alpha' }).update({ status: 'active' })
  await t.resolves(waitFor('the resumption', BEFORE_THE_TTL_MS, async () => await status('alpha') === 200), 'resuming took effect before the TTL')

  // Deleting the row drops the school's pool as well as its cache entry.
  const before = app.tenancy.pools.stats().open
  await catalog('schools').where({ slug: 'beta' }).delete()
  await t.resolves(waitFor('the removal', BEFORE_THE_TTL_MS, async () => await status('beta') === 403), 'a removed school is refused before the TTL')
  t.equal(app.tenancy.pools.stats().open, before - 1, 'its pool was closed')
})
